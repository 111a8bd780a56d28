// stasis-test: timeout=30 needs=root
/* A mount namespace of its own (unshare(CLONE_NEWNS), / made private recursively) with,
 * under the test's directory: a tmpfs with files (data, modes, owners, a symlink, a
 * subdirectory, a hard link, a fifo); a read-only nosuid bind of its subdirectory; a
 * noexec tmpfs; a fresh proc (hidepid), devpts (its own instance) and mqueue; a shared
 * tmpfs with a slave bind of it; an unbindable tmpfs; two tmpfs stacked on one mount
 * point. After restore: the whole of /proc/self/mountinfo is the same (ids normalized),
 * the files are intact, a mount under the shared tmpfs propagates to the slave and not
 * back, the ro bind refuses writes, and the namespace is not the parent's. */
#include "lib.h"
#include "mntlib.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#define DATA_LEN (96 * 1024)

static char base[PATH_MAX];

static const char *at(const char *rel)
{
	static char buf[4][2 * PATH_MAX];
	static int k;
	k = (k + 1) % 4;
	snprintf(buf[k], sizeof(buf[k]), "%s/%s", base, rel);
	return buf[k];
}

static void must(int r, const char *what)
{
	if (r < 0)
		test_fail("setup: %s: %s", what, strerror(errno));
}

static void put(const char *rel, const char *data, size_t len, mode_t mode)
{
	int fd = open(at(rel), O_WRONLY | O_CREAT | O_TRUNC, mode);
	must(fd, rel);
	must(test_write_full(fd, data, len), rel);
	close(fd);
	must(chmod(at(rel), mode), rel);
}

static bool own_ns(void)
{
	char a[64], b[64], p[64];
	if (getppid() == 0)
		return true; /* a pid namespace's init: its parent is not visible */
	snprintf(p, sizeof(p), "/proc/%d/ns/mnt", getppid());
	ssize_t n = readlink("/proc/self/ns/mnt", a, sizeof(a) - 1);
	ssize_t m = readlink(p, b, sizeof(b) - 1);
	if (n <= 0 || m <= 0)
		return false;
	a[n] = b[m] = '\0';
	return strcmp(a, b) != 0;
}

static bool exists(const char *rel)
{
	struct stat st;
	return lstat(at(rel), &st) == 0;
}

static void setup(char *data)
{
	static const char *dirs[] = { "t", "ro", "nx", "p", "pts", "mq", "sh", "sl", "ub", "ov" };
	for (size_t i = 0; i < sizeof(dirs) / sizeof(dirs[0]); i++)
		must(mkdir(at(dirs[i]), 0755), dirs[i]);
	must(mount("stasis-t", at("t"), "tmpfs", 0, "size=4m,mode=751"), "tmpfs t");
	put("t/data", data, DATA_LEN, 0640);
	must(chown(at("t/data"), 1234, 5678), "chown data");
	must(symlink("data", at("t/link")), "symlink");
	must(link(at("t/data"), at("t/hard")), "hard link");
	must(mkfifo(at("t/fifo"), 0620), "fifo");
	must(chmod(at("t/fifo"), 0620), "chmod fifo");
	must(mkdir(at("t/sub"), 0705), "sub");
	put("t/sub/inner", "inner text", 10, 0604);
	must(chown(at("t/sub"), 42, 43), "chown sub");
	struct timespec ts[2] = { { 1000000000, 5 }, { 1200000000, 7 } };
	must(utimensat(AT_FDCWD, at("t/sub/inner"), ts, 0), "utimensat");
	/* read-only, nosuid bind of the subdirectory */
	must(mount(at("t/sub"), at("ro"), NULL, MS_BIND, NULL), "bind ro");
	must(mount(NULL, at("ro"), NULL, MS_BIND | MS_REMOUNT | MS_RDONLY | MS_NOSUID, NULL),
	     "remount ro");
	must(mount("stasis-nx", at("nx"), "tmpfs", MS_NOEXEC | MS_NOSUID | MS_NODEV | MS_NOATIME,
		   "size=1m"),
	     "tmpfs nx");
	must(mount("proc", at("p"), "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, "hidepid=invisible"),
	     "proc");
	must(mount("devpts", at("pts"), "devpts", MS_NOSUID | MS_NOEXEC,
		   "newinstance,ptmxmode=0666,mode=620"),
	     "devpts");
	/* an mqueue mount needs rights over the IPC namespace's owner: in a rootless
	 * container the test makes an IPC namespace of its own first */
	int mq = mount("mqueue", at("mq"), "mqueue", MS_NOSUID, NULL);
	if (mq < 0 && errno == EPERM && unshare(CLONE_NEWIPC) == 0)
		mq = mount("mqueue", at("mq"), "mqueue", MS_NOSUID, NULL);
	must(mq, "mqueue");
	/* shared tmpfs, a slave bind of it */
	must(mount("stasis-sh", at("sh"), "tmpfs", 0, "size=1m"), "tmpfs sh");
	must(mkdir(at("sh/new"), 0755) < 0 ? -1 : mkdir(at("sh/back"), 0755), "sh dirs");
	must(mount(NULL, at("sh"), NULL, MS_SHARED, NULL), "make shared");
	must(mount(at("sh"), at("sl"), NULL, MS_BIND, NULL), "bind sl");
	must(mount(NULL, at("sl"), NULL, MS_SLAVE, NULL), "make slave");
	must(mount("stasis-ub", at("ub"), "tmpfs", 0, "size=1m"), "tmpfs ub");
	must(mount(NULL, at("ub"), NULL, MS_UNBINDABLE, NULL), "make unbindable");
	/* two on one mount point */
	must(mount("stasis-ov1", at("ov"), "tmpfs", 0, "size=1m"), "tmpfs ov1");
	put("ov/a", "a", 1, 0644);
	must(mount("stasis-ov2", at("ov"), "tmpfs", 0, "size=2m"), "tmpfs ov2");
	put("ov/b", "b", 1, 0644);
}

static void check_files(const char *data)
{
	static char buf[DATA_LEN + 1];
	struct stat st, st2;
	int fd = open(at("t/data"), O_RDONLY);
	TEST_CHECK(fd >= 0 && test_read_full(fd, buf, DATA_LEN) == 0 && read(fd, buf, 1) == 0 &&
			   !memcmp(buf, data, DATA_LEN),
		   "tmpfs file contents differ");
	close(fd);
	TEST_CHECK(stat(at("t/data"), &st) == 0 && (st.st_mode & 07777) == 0640 &&
			   st.st_uid == 1234 && st.st_gid == 5678 && st.st_nlink == 2,
		   "t/data: mode %o owner %d:%d links %d", st.st_mode & 07777, st.st_uid,
		   st.st_gid, (int)st.st_nlink);
	TEST_CHECK(stat(at("t/hard"), &st2) == 0 && st2.st_ino == st.st_ino, "hard link lost");
	char l[64] = "";
	TEST_CHECK(readlink(at("t/link"), l, sizeof(l) - 1) == 4 && !strcmp(l, "data"),
		   "symlink target '%s'", l);
	TEST_CHECK(lstat(at("t/fifo"), &st) == 0 && S_ISFIFO(st.st_mode) &&
			   (st.st_mode & 07777) == 0620,
		   "fifo lost");
	TEST_CHECK(stat(at("t/sub"), &st) == 0 && (st.st_mode & 07777) == 0705 && st.st_uid == 42 &&
			   st.st_gid == 43,
		   "t/sub: mode %o owner %d:%d", st.st_mode & 07777, st.st_uid, st.st_gid);
	TEST_CHECK(stat(at("ro/inner"), &st) == 0 && (st.st_mode & 07777) == 0604 &&
			   st.st_mtim.tv_sec == 1200000000 && st.st_mtim.tv_nsec == 7,
		   "ro/inner: mode %o mtime %ld", st.st_mode & 07777, (long)st.st_mtim.tv_sec);
	fd = open(at("ro/inner"), O_RDONLY);
	memset(buf, 0, 16);
	TEST_CHECK(fd >= 0 && read(fd, buf, 16) == 10 && !memcmp(buf, "inner text", 10),
		   "ro/inner contents");
	close(fd);
	errno = 0;
	TEST_CHECK(open(at("ro/new"), O_WRONLY | O_CREAT, 0600) < 0 && errno == EROFS,
		   "the read-only bind is writable (%s)", strerror(errno));
	TEST_CHECK(exists("ov/b") && !exists("ov/a"), "stacked tmpfs in the wrong order");
	fd = open(at("pts/ptmx"), O_RDWR | O_NOCTTY);
	TEST_CHECK(fd >= 0, "the devpts instance has no usable ptmx: %s", strerror(errno));
	close(fd);
}

int main(int argc, char **argv)
{
	static char data[DATA_LEN];
	test_init(argc, argv);
	test_fill(data, DATA_LEN, 0x6d6e74);
	if (!getcwd(base, sizeof(base) - 64))
		test_fail("getcwd: %s", strerror(errno));
	if (unshare(CLONE_NEWNS) < 0 || mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0)
		test_fail("setup: private mount namespace: %s", strerror(errno));
	setup(data);
	char *before = mnt_picture();
	TEST_CHECK(before != NULL, "cannot read mountinfo");
	test_ready();
	test_wait();
	if (test_sabotage()) {
		umount2(at("ro"), MNT_DETACH);
		chmod(at("t/data"), 0600);
	}
	char *after = mnt_picture(), diff[512];
	TEST_CHECK(after && !strcmp(before, after), "mountinfo changed: %s",
		   after ? mnt_picture_diff(before, after, diff, sizeof(diff)) : "unreadable");
	TEST_CHECK(own_ns(), "not in a mount namespace of its own");
	check_files(data);
	/* propagation: master -> slave, not back */
	TEST_CHECK(mount("stasis-p1", at("sh/new"), "tmpfs", 0, "size=1m") == 0,
		   "mount under the shared tmpfs: %s", strerror(errno));
	put("sh/new/x", "x", 1, 0644);
	TEST_CHECK(exists("sl/new/x"), "a mount under the master did not reach the slave");
	TEST_CHECK(mount("stasis-p2", at("sl/back"), "tmpfs", 0, "size=1m") == 0,
		   "mount under the slave: %s", strerror(errno));
	put("sl/back/y", "y", 1, 0644);
	TEST_CHECK(!exists("sh/back/y"), "a mount under the slave reached the master");
	test_pass();
}
