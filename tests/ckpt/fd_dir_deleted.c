// stasis-test: timeout=30
/* An open directory that was removed: the test opens a directory (mode 0751) and removes
 * it. After restore the fd is still a removed directory (its link is the old path with
 * " (deleted)", no links, mode 0751, open read-only), it can be entered, and nothing is
 * left at the old path. */
#include "lib.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	char cwd[PATH_MAX], want[PATH_MAX + 32], link[PATH_MAX + 32], path[64];
	struct stat st;

	test_init(argc, argv);
	if (!getcwd(cwd, sizeof(cwd)) || mkdir("gone", 0751) < 0 || chmod("gone", 0751) < 0)
		test_fail("setup: %s", strerror(errno));
	int fd = open("gone", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0 || rmdir("gone") < 0)
		test_fail("open and remove: %s", strerror(errno));
	snprintf(want, sizeof(want), "%s/gone (deleted)", cwd);
	test_ready();
	test_wait();
	if (test_sabotage()) {
		close(fd);
		fd = open(".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	}
	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	ssize_t n = readlink(path, link, sizeof(link) - 1);
	link[n > 0 ? n : 0] = '\0';
	TEST_CHECK(!strcmp(link, want), "the fd is %s, not %s", link, want);
	TEST_CHECK(fstat(fd, &st) == 0 && S_ISDIR(st.st_mode) && st.st_nlink == 0 &&
			   (st.st_mode & 07777) == 0751,
		   "the fd: nlink %lu mode %o", (unsigned long)st.st_nlink, st.st_mode & 07777);
	int fl = fcntl(fd, F_GETFL);
	TEST_CHECK(fl >= 0 && (fl & O_ACCMODE) == O_RDONLY && (fl & O_DIRECTORY),
		   "the fd's flags are %#x", fl);
	TEST_CHECK(fstatat(AT_FDCWD, "gone", &st, AT_SYMLINK_NOFOLLOW) < 0 && errno == ENOENT,
		   "something is at the old path");
	TEST_CHECK(fchdir(fd) == 0, "cannot enter the removed directory: %s", strerror(errno));
	test_pass();
}
