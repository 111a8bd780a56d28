// stasis-test: timeout=30
/* Sealed memory (mseal, Linux 6.10; Chrome seals its own areas): a private anonymous area
 * with data, a read-only one, a PROT_NONE reservation, a private file mapping and a shared
 * anonymous area, each sealed, and a forked child that inherited the first sealed. After
 * the restore each area is still sealed (VmFlags sl; munmap, mprotect and mremap fail
 * with EPERM) with the same protection, bounds and data, in the child too. Refused at
 * dump before ("sealed (mseal)"). */
#include "lib.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#ifndef __NR_mseal
#define __NR_mseal 462
#endif

#define PG 4096ul

struct area {
	const char *name;
	char *addr;
	size_t len;
	uint64_t seed; /* 0: no data to check */
	char maps[256];
};

static struct area areas[6];
static int nareas;

static void maps_line(const struct area *a, char *out, size_t len)
{
	int n = test_maps_lines((uintptr_t)a->addr, (uintptr_t)a->addr + a->len, out, len);
	TEST_CHECK(n == 1, "%s: %d maps lines", a->name, n);
	test_maps_strip_inode(out);
}

static bool sealed(const struct area *a)
{
	char f[256];
	test_area_vmflags(a->addr, f, sizeof(f));
	return strstr(f, "sl ") || (strlen(f) >= 2 && !strcmp(f + strlen(f) - 2, "sl"));
}

static void check_area(const struct area *a)
{
	char now[256];
	maps_line(a, now, sizeof(now));
	TEST_CHECK(!strcmp(now, a->maps), "%s: [%s], was [%s]", a->name, now, a->maps);
	TEST_CHECK(sealed(a), "%s: not sealed (VmFlags without sl)", a->name);
	TEST_CHECK(munmap(a->addr, PG) < 0 && errno == EPERM, "%s: munmap: %s", a->name,
		   strerror(errno));
	TEST_CHECK(mprotect(a->addr, PG, PROT_READ | PROT_WRITE | PROT_EXEC) < 0 && errno == EPERM,
		   "%s: mprotect: %s", a->name, strerror(errno));
	TEST_CHECK(mremap(a->addr, a->len, 2 * a->len, MREMAP_MAYMOVE) == MAP_FAILED && errno == EPERM,
		   "%s: mremap: %s", a->name, strerror(errno));
	if (a->seed) {
		long off = test_check(a->addr, a->len, a->seed);
		TEST_CHECK(off < 0, "%s: data differs at offset %ld", a->name, off);
	}
}

static char *area(const char *name, size_t len, int prot, int flags, int fd, uint64_t seed)
{
	char *p = mmap(NULL, len, PROT_READ | PROT_WRITE, flags, fd, 0);
	TEST_CHECK(p != MAP_FAILED, "mmap %s: %s", name, strerror(errno));
	if (seed)
		test_fill(p, len, seed);
	TEST_CHECK(mprotect(p, len, prot) == 0, "mprotect %s: %s", name, strerror(errno));
	if (syscall(__NR_mseal, p, len, 0) < 0) {
		if (errno == ENOSYS || errno == EINVAL) {
			printf("SKIP: mseal: %s\n", strerror(errno));
			_exit(77);
		}
		test_fail("mseal %s: %s", name, strerror(errno));
	}
	struct area *a = &areas[nareas++];
	a->name = name;
	a->addr = p;
	a->len = len;
	a->seed = prot == PROT_NONE ? 0 : seed;
	maps_line(a, a->maps, sizeof(a->maps));
	return p;
}

int main(int argc, char **argv)
{
	test_init(argc, argv);
	char *rw = area("anonymous", 8 * PG, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
			-1, 0x5ea1);
	area("read-only", 4 * PG, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0x5ea2);
	area("reservation", 16 * PG, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1,
	     0x5ea3);
	test_create("mapped");
	int fd = open("mapped", O_RDWR | O_CLOEXEC);
	TEST_CHECK(fd >= 0 && ftruncate(fd, 4 * PG) == 0, "file: %s", strerror(errno));
	area("file", 4 * PG, PROT_READ, MAP_PRIVATE, fd, 0x5ea4);
	close(fd);
	area("shared", 4 * PG, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0x5ea5);
	/* the top of the heap: an area the kernel names [heap] */
	char *brk0 = sbrk(0);
	char *top = (char *)(((uintptr_t)brk0 + PG - 1) & ~(PG - 1));
	TEST_CHECK(sbrk(top + 4 * PG - brk0) != (void *)-1, "sbrk: %s", strerror(errno));
	test_fill(top, 4 * PG, 0x5ea6);
	TEST_CHECK(syscall(__NR_mseal, top, 4 * PG, 0) == 0, "mseal the heap: %s", strerror(errno));
	struct area *h = &areas[nareas++];
	*h = (struct area){ "heap", top, 4 * PG, 0x5ea6, "" };
	maps_line(h, h->maps, sizeof(h->maps));

	int go[2], res[2];
	TEST_CHECK(pipe(go) == 0 && pipe(res) == 0, "pipe: %s", strerror(errno));
	pid_t child = fork();
	TEST_CHECK(child >= 0, "fork: %s", strerror(errno));
	if (child == 0) {
		close(go[1]);
		close(res[0]);
		char b;
		if (test_read_full(go[0], &b, 1) != 0)
			_exit(3);
		char ok = sealed(&areas[0]) && test_check(areas[0].addr, areas[0].len, 0x5ea1) < 0 &&
					  munmap(areas[0].addr, PG) < 0 && errno == EPERM
				  ? 'y'
				  : 'n';
		_exit(test_write_full(res[1], &ok, 1) == 0 ? 0 : 4);
	}
	close(go[0]);
	close(res[1]);
	test_ready();
	test_wait();

	if (test_sabotage())
		rw[100] ^= 1;
	for (int i = 0; i < nareas; i++)
		check_area(&areas[i]);
	char b = 'g', ok = 0;
	TEST_CHECK(test_write_full(go[1], &b, 1) == 0, "tell the child");
	TEST_CHECK(test_read_within(res[0], &ok, 1, 5000) == 0 && ok == 'y',
		   "the child's inherited sealed area: %c", ok ? ok : '?');
	TEST_CHECK(test_reap(child, false, 5) == 0, "the child's exit");
	test_pass();
}
