// stasis-test: timeout=60
/* A MAP_PRIVATE mapping of a file the test creates in its cwd, partly written: the
 * written pages hold the new data, the others the file data, and the file is unchanged. */
#include "lib.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#define PAGES 16
#define PG 4096ul
#define SIZE (PAGES * PG)
#define FILE_SEED 0x1111111111111111ull
#define NEW_SEED 0x2222222222222222ull

static bool page_written(int i)
{
	return i == 0 || i == 5 || i == 6 || i == 15;
}

static void fill_expected(uint64_t *buf, bool written, int i)
{
	test_fill(buf, PG, (written ? NEW_SEED : FILE_SEED) + (uint64_t)i);
}

int main(int argc, char **argv)
{
	static uint64_t page[PG / 8], expect[PG / 8];
	char before[1024], after[1024];
	struct stat st0, st1;
	char *map;
	int fd, i;

	test_init(argc, argv);
	fd = open("mapped.dat", O_RDWR | O_CREAT | O_TRUNC, 0644);
	if (fd < 0)
		test_fail("create mapped.dat: %s", strerror(errno));
	for (i = 0; i < PAGES; i++) {
		fill_expected(page, false, i);
		if (pwrite(fd, page, PG, (off_t)(i * PG)) != (ssize_t)PG)
			test_fail("write mapped.dat: %s", strerror(errno));
	}
	map = mmap(NULL, SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
	if (map == MAP_FAILED)
		test_fail("mmap: %s", strerror(errno));
	close(fd);
	for (i = 0; i < PAGES; i++) {
		if (page_written(i))
			fill_expected((uint64_t *)(map + i * PG), true, i);
		else /* fault the page in read-only */
			(void)*(volatile char *)(map + i * PG + 100);
	}
	if (stat("mapped.dat", &st0) < 0)
		test_fail("stat: %s", strerror(errno));
	test_maps_lines((uintptr_t)map, (uintptr_t)map + SIZE, before, sizeof(before));
	test_ready();
	test_wait();

	if (test_sabotage())
		map[9 * PG + 33] ^= 4; /* a page that was not written */
	test_maps_lines((uintptr_t)map, (uintptr_t)map + SIZE, after, sizeof(after));
	TEST_CHECK(strcmp(before, after) == 0, "maps lines changed: '%s' -> '%s'", before, after);
	TEST_CHECK(strstr(after, "mapped.dat") != NULL, "mapping not file-backed: '%s'", after);
	for (i = 0; i < PAGES; i++) {
		fill_expected(expect, page_written(i), i);
		TEST_CHECK(memcmp(map + i * PG, expect, PG) == 0, "page %d of the mapping (%s) differs",
			   i, page_written(i) ? "written" : "file data");
	}
	if (stat("mapped.dat", &st1) < 0)
		test_fail("stat after: %s", strerror(errno));
	TEST_CHECK(st0.st_ino == st1.st_ino && st0.st_size == st1.st_size,
		   "file replaced or resized");
	fd = open("mapped.dat", O_RDONLY);
	if (fd < 0)
		test_fail("reopen: %s", strerror(errno));
	for (i = 0; i < PAGES; i++) {
		fill_expected(expect, false, i);
		TEST_CHECK(pread(fd, page, PG, (off_t)(i * PG)) == (ssize_t)PG, "short read");
		TEST_CHECK(memcmp(page, expect, PG) == 0, "file page %d changed", i);
	}
	close(fd);
	/* still private: a write must not reach the file */
	map[1 * PG] ^= 0xFF;
	fd = open("mapped.dat", O_RDONLY);
	TEST_CHECK(fd >= 0 && pread(fd, page, PG, PG) == (ssize_t)PG, "reread failed");
	fill_expected(expect, false, 1);
	TEST_CHECK(memcmp(page, expect, PG) == 0, "mapping is no longer private");
	test_pass();
}
