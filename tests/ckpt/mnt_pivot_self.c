// stasis-test: timeout=30 needs=root
/* A process that pivot_roots itself: in a mount namespace of its own, a bind of a
 * directory becomes its root (with a tmpfs /tmp and, at the same path, the directory of
 * the status file), the old root detached. Its executable and libraries stay mapped from
 * paths it can no longer reach: the dumper reads them in its own view, and the restore
 * must open them there (not in the task's new tree). A file of the tmpfs is open.
 * After restore: the fd is /tmp/data of the restored tmpfs with its contents, the old
 * root is still gone, and the code keeps running. */
#include "lib.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

static int mkdirs(const char *path)
{
	char buf[PATH_MAX];
	snprintf(buf, sizeof(buf), "%s", path);
	for (char *p = buf + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(buf, 0755) < 0 && errno != EEXIST)
			return -1;
		*p = '/';
	}
	return mkdir(buf, 0755) < 0 && errno != EEXIST ? -1 : 0;
}

int main(int argc, char **argv)
{
	char cwd[PATH_MAX], sdir[PATH_MAX], inner[PATH_MAX * 2], self_exe[PATH_MAX];
	struct stat x, y;

	test_init(argc, argv);
	const char *status = getenv("STASIS_TEST_STATUS");
	if (!status || !getcwd(cwd, sizeof(cwd)))
		test_fail("no status path or cwd");
	char tmp[PATH_MAX];
	snprintf(tmp, sizeof(tmp), "%s", status);
	snprintf(sdir, sizeof(sdir), "%s", dirname(tmp));
	ssize_t n = readlink("/proc/self/exe", self_exe, sizeof(self_exe) - 1);
	if (n <= 0)
		test_fail("readlink exe: %s", strerror(errno));
	self_exe[n] = '\0';
	if (unshare(CLONE_NEWNS) < 0 || mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0)
		test_fail("unshare/private: %s", strerror(errno));
	if (mkdirs("root/tmp") < 0 || mkdirs("root/old") < 0 ||
	    mount("root", "root", NULL, MS_BIND, NULL) < 0 ||
	    mount("stasis-tmp", "root/tmp", "tmpfs", 0, "size=1m") < 0)
		test_fail("root: %s", strerror(errno));
	snprintf(inner, sizeof(inner), "root%s", sdir);
	if (mkdirs(inner) < 0 || mount(sdir, inner, NULL, MS_BIND, NULL) < 0)
		test_fail("status dir: %s", strerror(errno));
	if (chdir("root") < 0 || syscall(SYS_pivot_root, ".", "old") < 0 ||
	    umount2("/old", MNT_DETACH) < 0 || chdir("/") < 0)
		test_fail("pivot_root: %s", strerror(errno));
	/* the executable is out of reach by its path now */
	TEST_CHECK(access(self_exe, F_OK) < 0, "%s is still reachable after pivot_root", self_exe);
	int fd = open("/tmp/data", O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd < 0 || write(fd, "abc", 3) != 3)
		test_fail("/tmp/data: %s", strerror(errno));
	test_ready();
	test_wait();

	if (test_sabotage())
		lseek(fd, 0, SEEK_SET);
	TEST_CHECK(fstat(fd, &x) == 0 && stat("/tmp/data", &y) == 0 && x.st_ino == y.st_ino &&
			   x.st_dev == y.st_dev,
		   "the fd is not /tmp/data of the restored tmpfs");
	TEST_CHECK(lseek(fd, 0, SEEK_CUR) == 3, "offset %lld, not 3",
		   (long long)lseek(fd, 0, SEEK_CUR));
	TEST_CHECK(write(fd, "d", 1) == 1, "write: %s", strerror(errno));
	char buf[8] = "";
	TEST_CHECK(pread(fd, buf, sizeof(buf) - 1, 0) == 4 && !strcmp(buf, "abcd"),
		   "/tmp/data holds \"%s\"", buf);
	TEST_CHECK(access(self_exe, F_OK) < 0 && access("/old/proc", F_OK) < 0,
		   "the old root is reachable again");
	test_pass();
}
