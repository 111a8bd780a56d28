// stasis-test: timeout=30
/* The access and modification times of files the restore recreates: an unlinked file
 * and a memfd with times set in the past (nanoseconds included). A restore that writes
 * their contents back without setting the times gives them the time of the restore. */
#include "lib.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

static const struct timespec times[2] = { { 1000000000, 123456789 }, { 978307200, 987654321 } };

static void set_times(int fd, const char *what)
{
	if (write(fd, "some contents\n", 14) != 14 || futimens(fd, times) < 0)
		test_fail("%s: %s", what, strerror(errno));
}

static void check_times(int fd, const char *what)
{
	struct stat st;
	if (fstat(fd, &st) < 0)
		test_fail("fstat %s: %s", what, strerror(errno));
	TEST_CHECK(st.st_atim.tv_sec == times[0].tv_sec && st.st_atim.tv_nsec == times[0].tv_nsec,
		   "%s: atime %lld.%09ld, expected %lld.%09ld", what, (long long)st.st_atim.tv_sec,
		   st.st_atim.tv_nsec, (long long)times[0].tv_sec, times[0].tv_nsec);
	TEST_CHECK(st.st_mtim.tv_sec == times[1].tv_sec && st.st_mtim.tv_nsec == times[1].tv_nsec,
		   "%s: mtime %lld.%09ld, expected %lld.%09ld", what, (long long)st.st_mtim.tv_sec,
		   st.st_mtim.tv_nsec, (long long)times[1].tv_sec, times[1].tv_nsec);
}

int main(int argc, char **argv)
{
	test_init(argc, argv);
	int u = open("times.tmp", O_RDWR | O_CREAT | O_TRUNC, 0640);
	int m = memfd_create("times", 0);
	if (u < 0 || m < 0 || unlink("times.tmp") < 0)
		test_fail("create: %s", strerror(errno));
	set_times(u, "unlinked file");
	set_times(m, "memfd");
	test_ready();
	test_wait();

	if (test_sabotage())
		futimens(m, NULL);
	check_times(u, "unlinked file");
	check_times(m, "memfd");
	test_pass();
}
