// stasis-test: timeout=30
/* Files without a name open only for writing (their contents cannot be read through the
 * task's own description: the dump reads them another way): an unlinked file opened
 * O_WRONLY and a memfd reopened O_WRONLY (the read-write description closed, a shared
 * mapping of it kept). Contents, size, offsets, access modes and the mapping (still of
 * the fd's file) survive. */
#include "lib.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#define SIZE 65536

static uint64_t want[SIZE / 8], got[SIZE / 8];

static void check(const char *what, int fd, uint64_t seed, off_t pos)
{
	char self[64];
	TEST_CHECK((fcntl(fd, F_GETFL) & O_ACCMODE) == O_WRONLY, "%s: access mode", what);
	TEST_CHECK(lseek(fd, 0, SEEK_CUR) == pos, "%s: offset lost", what);
	struct stat st;
	TEST_CHECK(fstat(fd, &st) == 0 && st.st_size == SIZE && st.st_nlink == 0,
		   "%s: size %lld, %lu links", what, (long long)st.st_size,
		   (unsigned long)st.st_nlink);
	snprintf(self, sizeof(self), "/proc/self/fd/%d", fd);
	int r = open(self, O_RDONLY | O_CLOEXEC);
	TEST_CHECK(r >= 0, "%s: reopen: %s", what, strerror(errno));
	TEST_CHECK(pread(r, got, SIZE, 0) == SIZE, "%s: read: %s", what, strerror(errno));
	TEST_CHECK(test_check(got, SIZE, seed) < 0, "%s: contents differ", what);
	/* still the file the fd writes */
	TEST_CHECK(pwrite(fd, "W", 1, 3) == 1, "%s: write: %s", what, strerror(errno));
	char c = 0;
	TEST_CHECK(pread(r, &c, 1, 3) == 1 && c == 'W', "%s: not the same file", what);
	close(r);
}

int main(int argc, char **argv)
{
	test_init(argc, argv);
	test_fill(want, SIZE, 11);
	int wo = open("wronly.dat", O_WRONLY | O_CREAT | O_TRUNC, 0600);
	if (wo < 0 || write(wo, want, SIZE) != SIZE || unlink("wronly.dat") < 0 ||
	    lseek(wo, 777, SEEK_SET) != 777)
		test_fail("unlinked file setup: %s", strerror(errno));

	test_fill(want, SIZE, 22);
	int rw = memfd_create("stasis-wronly", 0);
	char self[64];
	snprintf(self, sizeof(self), "/proc/self/fd/%d", rw);
	int mwo = rw >= 0 ? open(self, O_WRONLY | O_CLOEXEC) : -1;
	if (mwo < 0 || write(rw, want, SIZE) != SIZE || lseek(mwo, 888, SEEK_SET) != 888)
		test_fail("memfd setup: %s", strerror(errno));
	char *map = mmap(NULL, SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, rw, 0);
	if (map == MAP_FAILED)
		test_fail("mmap: %s", strerror(errno));
	close(rw);

	test_ready();
	test_wait();
	if (test_sabotage())
		(void)!pwrite(wo, "X", 1, 100);
	check("unlinked file", wo, 11, 777);
	check("memfd", mwo, 22, 888);
	TEST_CHECK(map[3] == 'W', "the memfd's mapping is no longer the fd's file");
	TEST_CHECK(!memcmp(map + 8, (char *)want + 8, SIZE - 8),
		   "the memfd's mapping lost its contents");
	test_pass();
}
