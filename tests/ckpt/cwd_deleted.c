// stasis-test: timeout=30
/* A cwd that was removed: the test makes a directory (mode 0750), enters it and removes
 * it. After restore the cwd is still a removed directory (/proc/self/cwd ends in
 * " (deleted)", no links, mode 0750), its parent is the same directory as before, and
 * nothing is left at the old path. */
#include "lib.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define SUFFIX " (deleted)"

int main(int argc, char **argv)
{
	char link[PATH_MAX];
	struct stat parent, st;

	test_init(argc, argv);
	if (stat(".", &parent) < 0 || mkdir("gone", 0750) < 0 || chmod("gone", 0750) < 0 ||
	    chdir("gone") < 0 || rmdir("../gone") < 0)
		test_fail("setup: %s", strerror(errno));
	test_ready();
	test_wait();
	if (test_sabotage())
		(void)!chdir("..");
	ssize_t n = readlink("/proc/self/cwd", link, sizeof(link) - 1);
	link[n > 0 ? n : 0] = '\0';
	size_t l = strlen(link), sl = strlen(SUFFIX);
	TEST_CHECK(l > sl && !strcmp(link + l - sl, SUFFIX), "the cwd is %s, not a removed "
		   "directory", link);
	TEST_CHECK(stat(".", &st) == 0 && S_ISDIR(st.st_mode) && st.st_nlink == 0 &&
			   (st.st_mode & 07777) == 0750,
		   "the cwd: nlink %lu mode %o", (unsigned long)st.st_nlink, st.st_mode & 07777);
	TEST_CHECK(stat("..", &st) == 0 && st.st_dev == parent.st_dev &&
			   st.st_ino == parent.st_ino,
		   "the parent of the cwd is another directory");
	TEST_CHECK(fstatat(AT_FDCWD, "../gone", &st, AT_SYMLINK_NOFOLLOW) < 0 && errno == ENOENT,
		   "something is at the old path of the cwd");
	TEST_CHECK(open("f", O_WRONLY | O_CREAT | O_CLOEXEC, 0600) < 0, "a file was made in "
		   "the removed cwd");
	test_pass();
}
