// stasis-test: timeout=30 needs=root
/* A mount hidden under a later one: in a mount namespace of its own the test mounts a
 * shared tmpfs S at m, a tmpfs X at m/a/b (a file f in it), then a tmpfs Y at m/a, which
 * hides X and the directory a/b of S it sits on. The dump cannot see a/b in S; the
 * restore must still put X there before Y covers it. After restore: m/a shows Y's file,
 * and once Y is unmounted a mount (X) is at m/a/b again. (A file held open on X is refused
 * at dump: no path reaches it. X's contents cannot be read while Y hides it: recreated
 * empty, with a warning.) */
#include "lib.h"

#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

static int put(const char *path, const char *data)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
	if (fd < 0)
		return -1;
	ssize_t n = write(fd, data, strlen(data));
	close(fd);
	return n == (ssize_t)strlen(data) ? 0 : -1;
}

static int is(const char *path, const char *data)
{
	char buf[64] = "";
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return 0;
	ssize_t n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	return n == (ssize_t)strlen(data) && !memcmp(buf, data, (size_t)n);
}

int main(int argc, char **argv)
{
	test_init(argc, argv);
	if (unshare(CLONE_NEWNS) < 0 || mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0)
		test_fail("mount namespace: %s", strerror(errno));
	if ((mkdir("m", 0755) < 0 && errno != EEXIST) ||
	    mount("stasis-s", "m", "tmpfs", 0, "size=1m") < 0 ||
	    mount(NULL, "m", NULL, MS_SHARED, NULL) < 0 || mkdir("m/a", 0755) < 0 ||
	    mkdir("m/a/b", 0755) < 0 || mount("stasis-x", "m/a/b", "tmpfs", 0, "size=1m") < 0 ||
	    put("m/a/b/f", "under\n") < 0)
		test_fail("S and X: %s", strerror(errno));
	if (mount("stasis-y", "m/a", "tmpfs", 0, "size=1m") < 0 ||
	    put("m/a/z", "over\n") < 0)
		test_fail("Y over X: %s", strerror(errno));
	test_ready();
	test_wait();
	if (test_sabotage())
		(void)umount2("m/a", MNT_DETACH);
	TEST_CHECK(is("m/a/z", "over\n"), "m/a is not Y (no z)");
	TEST_CHECK(access("m/a/b", F_OK) < 0, "m/a shows a b: Y does not hide X");
	TEST_CHECK(umount2("m/a", MNT_DETACH) == 0, "unmount Y: %s", strerror(errno));
	struct stat sm, sb;
	TEST_CHECK(stat("m", &sm) == 0 && stat("m/a/b", &sb) == 0 && sm.st_dev != sb.st_dev,
		   "no mount at m/a/b once Y is gone");
	test_pass();
}
