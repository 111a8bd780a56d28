// stasis-test: timeout=30
/* A memfd (not mapped): name, contents, offset and seals survive. */
#include "lib.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#define SIZE 70000

static unsigned char want[SIZE];

int main(int argc, char **argv)
{
	test_init(argc, argv);
	for (size_t i = 0; i < SIZE; i++)
		want[i] = (unsigned char)(i * 13 + 1);
	int fd = memfd_create("stasis-test", MFD_ALLOW_SEALING);
	if (fd < 0 || write(fd, want, SIZE) != SIZE || lseek(fd, 4242, SEEK_SET) != 4242 ||
	    fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK) < 0)
		test_fail("setup: %s", strerror(errno));
	test_ready();
	test_wait();
	if (test_sabotage())
		(void)!pwrite(fd, "X", 1, 9);

	char self[64], link[256];
	snprintf(self, sizeof(self), "/proc/self/fd/%d", fd);
	ssize_t n = readlink(self, link, sizeof(link) - 1);
	TEST_CHECK(n > 0, "readlink: %s", strerror(errno));
	link[n] = '\0';
	TEST_CHECK(strstr(link, "/memfd:stasis-test") == link, "link is %s", link);
	TEST_CHECK(lseek(fd, 0, SEEK_CUR) == 4242, "offset lost");
	int seals = fcntl(fd, F_GET_SEALS);
	TEST_CHECK(seals == F_SEAL_SHRINK, "seals %#x, expected %#x", seals, F_SEAL_SHRINK);
	static unsigned char got[SIZE];
	TEST_CHECK(pread(fd, got, SIZE, 0) == SIZE && !memcmp(got, want, SIZE), "contents differ");
	TEST_CHECK(ftruncate(fd, 10) < 0 && errno == EPERM, "the shrink seal is gone");
	test_pass();
}
