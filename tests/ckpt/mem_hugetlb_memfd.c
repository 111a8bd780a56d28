// stasis-test: timeout=30 hugepages=12
/* Huge-page memfds (MFD_HUGETLB, 2 MiB pages), refused at dump before: memfd A of three
 * pages held by an fd and mapped shared (two pages written through the mapping, the third
 * never touched), with a private mapping of it whose first page the task wrote (its own
 * copy); memfd B of one page written, mapped shared, its fd closed (only the mapping holds
 * it); memfd C of two pages held by an fd only, sealed against growing. After the restore:
 * each still on hugetlbfs with 2 MiB pages (fstatfs, smaps' KernelPageSize), the same
 * names, sizes, seals and maps lines (but inodes), the data in place (the private copy's
 * page in the task's page tables), the fd and the shared mapping of A still one file both
 * ways, the private copy its own. */
#include "lib.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/magic.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <unistd.h>

#define HP (2ul << 20)
#define SEED 0x4d4644485547ull
#ifndef MFD_HUGE_2MB
#define MFD_HUGE_2MB (21u << 26)
#endif

static int huge_memfd(const char *name, size_t len)
{
	int fd = memfd_create(name, MFD_HUGETLB | MFD_HUGE_2MB | MFD_ALLOW_SEALING);
	if (fd < 0)
		test_fail("memfd_create %s MFD_HUGETLB: %s", name, strerror(errno));
	if (ftruncate(fd, (off_t)len) < 0)
		test_fail("ftruncate %s: %s", name, strerror(errno));
	return fd;
}

static void *map(int fd, size_t len, int flags)
{
	void *p = mmap(NULL, len, PROT_READ | PROT_WRITE, flags, fd, 0);
	if (p == MAP_FAILED)
		test_fail("mmap a huge memfd: %s", strerror(errno));
	return p;
}

static void on_huge(int fd, const char *what)
{
	struct statfs sf;
	if (fstatfs(fd, &sf) < 0 || sf.f_type != HUGETLBFS_MAGIC || sf.f_bsize != (long)HP)
		test_fail("%s is not on 2 MiB huge pages (type %#lx, block %ld)", what,
			  (unsigned long)sf.f_type, (long)sf.f_bsize);
}

static void link_of(int fd, char *out, size_t len)
{
	char path[64];
	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	ssize_t n = readlink(path, out, len - 1);
	if (n < 0)
		test_fail("readlink %s: %s", path, strerror(errno));
	out[n] = '\0';
}

int main(int argc, char **argv)
{
	char lines[4][512], now[512], la[256], lc[256], l2[256];
	unsigned hb[4];

	test_init(argc, argv);
	int a = huge_memfd("stasis-huge-a", 3 * HP);
	uint8_t *as = map(a, 3 * HP, MAP_SHARED);
	test_fill(as, 2 * HP, SEED);
	uint8_t *ap = map(a, 2 * HP, MAP_PRIVATE);
	ap[100] ^= 0x5a; /* the private copy of the first page */
	int b = huge_memfd("stasis-huge-b", HP);
	uint8_t *bs = map(b, HP, MAP_SHARED);
	test_fill(bs, HP, SEED + 1);
	close(b);
	int c = huge_memfd("stasis-huge-c", 2 * HP);
	uint8_t buf[4096];
	test_fill(buf, sizeof(buf), SEED + 2);
	uint8_t *cm = map(c, 2 * HP, MAP_SHARED);
	memcpy(cm + HP + 4096, buf, sizeof(buf));
	munmap(cm, 2 * HP);
	if (fcntl(c, F_ADD_SEALS, F_SEAL_GROW | F_SEAL_SHRINK) < 0)
		test_fail("seal memfd c: %s", strerror(errno));
	link_of(a, la, sizeof(la));
	link_of(c, lc, sizeof(lc));
	const void *at[4] = { as, ap, bs, NULL };
	for (int i = 0; i < 3; i++) {
		test_area_line(at[i], lines[i], sizeof(lines[i]));
		hb[i] = (unsigned)(test_area_kb(at[i], "Private_Hugetlb") +
				   test_area_kb(at[i], "Shared_Hugetlb"));
		if (test_area_kb(at[i], "KernelPageSize") != 2048)
			test_fail("area %d has no 2 MiB pages", i);
	}
	if (hb[0] != 4096)
		test_fail("memfd a maps %u KiB of huge pages, 4096 expected", hb[0]);

	test_ready();
	test_wait();
	if (test_sabotage())
		as[7] ^= 1;

	on_huge(a, "memfd a");
	on_huge(c, "memfd c");
	link_of(a, l2, sizeof(l2));
	if (strcmp(la, l2))
		test_fail("memfd a is now %s, was %s", l2, la);
	link_of(c, l2, sizeof(l2));
	if (strcmp(lc, l2))
		test_fail("memfd c is now %s, was %s", l2, lc);
	for (int i = 0; i < 3; i++) {
		test_area_line(at[i], now, sizeof(now));
		unsigned h = (unsigned)(test_area_kb(at[i], "Private_Hugetlb") +
					test_area_kb(at[i], "Shared_Hugetlb"));
		/* (a shared area's pages are in its file, not yet in the restored task's page
		 * tables: only the private copy is counted) */
		if (strcmp(now, lines[i]) || test_area_kb(at[i], "KernelPageSize") != 2048 ||
		    (i == 1 && h != hb[i]))
			test_fail("area %d: %s (%u KiB of huge pages) now %s (%u)", i, lines[i], hb[i],
				  now, h);
	}
	long bad = test_check(as, 2 * HP, SEED);
	if (bad >= 0)
		test_fail("memfd a differs at %ld", bad);
	ap[100] ^= 0x5a;
	if ((bad = test_check(ap, 2 * HP, SEED)) >= 0)
		test_fail("the private copy of memfd a differs at %ld", bad);
	if ((bad = test_check(bs, HP, SEED + 1)) >= 0)
		test_fail("memfd b differs at %ld", bad);
	struct stat st;
	if (fstat(a, &st) < 0 || st.st_size != (off_t)(3 * HP) || fstat(c, &st) < 0 ||
	    st.st_size != (off_t)(2 * HP))
		test_fail("sizes of memfds a and c");
	if (fcntl(c, F_GET_SEALS) != (F_SEAL_GROW | F_SEAL_SHRINK))
		test_fail("memfd c's seals are %#x", fcntl(c, F_GET_SEALS));
	cm = map(c, 2 * HP, MAP_SHARED);
	if (memcmp(cm + HP + 4096, buf, sizeof(buf)) || cm[0] || cm[HP + 8192])
		test_fail("memfd c's contents differ");
	/* the fd and the shared mapping of a: one file */
	uint64_t v = 0x0123456789abcdefull, r = 0;
	*(volatile uint64_t *)(as + HP + 64) = v;
	if (pread(a, &r, sizeof(r), (off_t)(HP + 64)) != sizeof(r) || r != v)
		test_fail("a write through the mapping of a is not seen through its fd");
	ap[HP + 64] = 1; /* (a second private page: its own, the shared one untouched) */
	if (*(volatile uint64_t *)(as + HP + 64) != v)
		test_fail("the private mapping of a wrote through to the shared one");
	test_pass();
}
