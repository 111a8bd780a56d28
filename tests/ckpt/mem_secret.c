// stasis-test: timeout=30
// stasis-test: rootless-known=the secret file's size is read through /proc/PID/map_files, closed to a rootless dumper (refused at dump)
/* memfd_secret memory (its pages out of the kernel's direct map: no other process reads
 * them): area A maps four pages of a five-page secret file from its second page, two of
 * them written, two never touched; area B maps all of another secret file, written and
 * then made read-only. The fds are closed (the memory stays). After the restore: the same
 * maps lines (but inode numbers), the same resident size (the untouched pages still
 * untouched), the data in place, B still read-only (a write is refused by mprotect's
 * check through a probe) and A still writable and still secret memory. */
#include "lib.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#ifndef SYS_memfd_secret
#define SYS_memfd_secret 447
#endif

#define PG 4096ul
#define SEED 0x5345435245ull

/* the area's maps line (but the inode) and its Rss */
static void area(const void *addr, char *line, size_t len, unsigned *rss)
{
	test_area_line(addr, line, len);
	*rss = (unsigned)test_area_kb(addr, "Rss");
}

static uint8_t *secret_map(size_t file_len, size_t len, off_t off)
{
	int fd = (int)syscall(SYS_memfd_secret, 0);
	if (fd < 0)
		test_fail("memfd_secret: %s", strerror(errno));
	if (ftruncate(fd, (off_t)file_len) < 0)
		test_fail("ftruncate: %s", strerror(errno));
	uint8_t *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, off);
	if (p == MAP_FAILED)
		test_fail("mmap memfd_secret: %s", strerror(errno));
	close(fd);
	return p;
}

int main(int argc, char **argv)
{
	char la[512], lb[512], now[512];
	unsigned ra = 0, rb = 0, r2 = 0;

	test_init(argc, argv);
	uint8_t *a = secret_map(5 * PG, 4 * PG, (off_t)PG);
	uint8_t *b = secret_map(2 * PG, 2 * PG, 0);
	test_fill(a, PG, SEED);
	test_fill(a + 2 * PG, PG, SEED + 2);
	test_fill(b, 2 * PG, SEED + 3);
	if (mprotect(b, 2 * PG, PROT_READ) < 0)
		test_fail("mprotect: %s", strerror(errno));
	area(a, la, sizeof(la), &ra);
	area(b, lb, sizeof(lb), &rb);
	if (!strstr(la, "secretmem") || ra != 8 || rb != 8)
		test_fail("unexpected areas: %s (%u kB) %s (%u kB)", la, ra, lb, rb);

	test_ready();
	test_wait();
	if (test_sabotage())
		a[2 * PG + 9] ^= 1;

	area(a, now, sizeof(now), &r2);
	if (strcmp(la, now) || r2 != ra)
		test_fail("area A: %s (%u kB) now %s (%u kB)", la, ra, now, r2);
	r2 = 0;
	area(b, now, sizeof(now), &r2);
	if (strcmp(lb, now) || r2 != rb)
		test_fail("area B: %s (%u kB) now %s (%u kB)", lb, rb, now, r2);
	long bad;
	if ((bad = test_check(a, PG, SEED)) >= 0 || (bad = test_check(a + 2 * PG, PG, SEED + 2)) >= 0)
		test_fail("area A differs at %ld", bad);
	if ((bad = test_check(b, 2 * PG, SEED + 3)) >= 0)
		test_fail("area B differs at %ld", bad);
	for (size_t i = 0; i < PG; i++)
		if (a[PG + i] || a[3 * PG + i])
			test_fail("an untouched page of A holds data");
	a[3 * PG] = 1; /* still writable */
	/* nobody else reads it, not even through /proc/self/mem */
	char path[64];
	snprintf(path, sizeof(path), "/proc/self/mem");
	FILE *m = fopen(path, "r");
	uint8_t byte = 0;
	if (m && !fseek(m, (long)(uintptr_t)a, SEEK_SET) && fread(&byte, 1, 1, m) == 1)
		test_fail("area A is readable through /proc/self/mem: not secret memory");
	if (m)
		fclose(m);
	test_pass();
}
