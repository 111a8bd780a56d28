// stasis-test: timeout=30
/* An open file that was unlinked (a "ghost"): contents, offset, access mode and the
 * unlinked state survive; the restored fd still works. */
#include "lib.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define SIZE 100000

static unsigned char want[SIZE];

int main(int argc, char **argv)
{
	test_init(argc, argv);
	for (size_t i = 0; i < SIZE; i++)
		want[i] = (unsigned char)(i * 7 + 3);
	int fd = open("ghost.dat", O_RDWR | O_CREAT | O_TRUNC, 0640);
	int ro = fd >= 0 ? open("ghost.dat", O_RDONLY) : -1;
	if (fd < 0 || ro < 0 || write(fd, want, SIZE) != SIZE)
		test_fail("setup: %s", strerror(errno));
	if (unlink("ghost.dat") < 0 || lseek(fd, 12345, SEEK_SET) != 12345)
		test_fail("unlink/lseek: %s", strerror(errno));
	test_ready();
	test_wait();
	if (test_sabotage())
		(void)!pwrite(fd, "X", 1, 500);

	struct stat st;
	TEST_CHECK(fstat(fd, &st) == 0 && S_ISREG(st.st_mode), "fstat");
	TEST_CHECK(st.st_nlink == 0, "the file is linked again (%lu links)",
		   (unsigned long)st.st_nlink);
	TEST_CHECK(st.st_size == SIZE, "size %lld, expected %d", (long long)st.st_size, SIZE);
	TEST_CHECK((st.st_mode & 0777) == 0640, "mode %o", st.st_mode & 0777);
	TEST_CHECK(lseek(fd, 0, SEEK_CUR) == 12345, "offset lost");
	TEST_CHECK((fcntl(fd, F_GETFL) & O_ACCMODE) == O_RDWR, "access mode of fd");
	TEST_CHECK((fcntl(ro, F_GETFL) & O_ACCMODE) == O_RDONLY, "access mode of ro");
	static unsigned char got[SIZE];
	TEST_CHECK(pread(ro, got, SIZE, 0) == SIZE, "read: %s", strerror(errno));
	TEST_CHECK(!memcmp(got, want, SIZE), "contents differ");
	/* both fds are one file: a write through one is read through the other */
	TEST_CHECK(pwrite(fd, "Z", 1, 7) == 1, "write");
	char z = 0;
	TEST_CHECK(pread(ro, &z, 1, 7) == 1 && z == 'Z', "the two fds are not the same file");
	char link[256];
	ssize_t n = readlink("/proc/self/fd/3", link, sizeof(link) - 1);
	(void)n;
	test_pass();
}
