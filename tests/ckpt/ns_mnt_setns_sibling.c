// stasis-test: timeout=30 needs=root
/* A task that entered (setns) the mount namespace its sibling made. The root forks A,
 * which unshares a mount namespace (/ private) and mounts a tmpfs on the test's "m" with
 * a file; then forks B, which enters A's namespace through /proc/A/ns/mnt, opens the file
 * (kept open), writes a second one and moves its cwd into the tmpfs. After the restore, B
 * checks that it is in A's namespace and not the root's, that the tmpfs is at "m" with
 * both files, that its open file is that file (inode, contents, offset) and its cwd the
 * tmpfs's directory; A checks the same tmpfs is its own; the root that neither sees it.
 * The three report through a pipe. */
#include "lib.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

static char dir[PATH_MAX];

static ino_t ns_ino(pid_t pid)
{
	char path[64];
	struct stat st;
	if (pid)
		snprintf(path, sizeof(path), "/proc/%d/ns/mnt", (int)pid);
	else
		snprintf(path, sizeof(path), "/proc/self/ns/mnt");
	return stat(path, &st) == 0 ? st.st_ino : 0;
}

static bool is_tmpfs_root(const char *path, struct stat *out)
{
	struct stat st, up;
	char parent[PATH_MAX + 4];
	snprintf(parent, sizeof(parent), "%s/..", path);
	if (stat(path, &st) || stat(parent, &up))
		return false;
	if (out)
		*out = st;
	return st.st_dev != up.st_dev;
}

#define MSG 128

/* the verdict of a child, "ok" or why not, as one MSG-byte message on @wr; then exit */
static void __attribute__((noreturn)) say(int wr, const char *why, const char *arg)
{
	char buf[MSG] = "ok";
	if (why)
		snprintf(buf, sizeof(buf), "%s%s", why, arg);
	(void)!write(wr, buf, sizeof(buf));
	_exit(0);
}

static void wait_term(void)
{
	sigset_t set;
	int sig;
	sigemptyset(&set);
	sigaddset(&set, SIGUSR1);
	sigwait(&set, &sig);
}

static void __attribute__((noreturn)) child_a(int ready, int wr, const char *m)
{
	if (unshare(CLONE_NEWNS) || mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) ||
	    mount("stasis-sib", m, "tmpfs", 0, "size=1m"))
		_exit(10);
	char path[PATH_MAX + 8];
	snprintf(path, sizeof(path), "%s/a", m);
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0 || write(fd, "made by A\n", 10) != 10)
		_exit(11);
	close(fd);
	(void)!write(ready, "a", 1);
	wait_term();
	say(wr, is_tmpfs_root(m, NULL) ? NULL : "A: no tmpfs at ", m);
}

static void __attribute__((noreturn)) child_b(int ready, int wr, const char *m, pid_t a)
{
	char path[PATH_MAX + 8];
	snprintf(path, sizeof(path), "/proc/%d/ns/mnt", (int)a);
	int ns = open(path, O_RDONLY | O_CLOEXEC);
	if (ns < 0 || setns(ns, CLONE_NEWNS))
		_exit(20);
	close(ns);
	snprintf(path, sizeof(path), "%s/a", m);
	int fd = open(path, O_RDONLY);
	char buf[16] = "";
	if (fd < 0 || read(fd, buf, 5) != 5)
		_exit(21);
	struct stat fst, mst;
	if (fstat(fd, &fst) || !is_tmpfs_root(m, &mst) || chdir(m))
		_exit(22);
	int w = open("b", O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (w < 0 || write(w, "B", 1) != 1)
		_exit(23);
	close(w);
	(void)!write(ready, "b", 1);
	wait_term();
	/* (the tmpfs is a new one: its inodes are compared with what is at the paths) */
	struct stat now, cwd;
	if (ns_ino(0) != ns_ino(a))
		say(wr, "B: not in A's mount namespace", "");
	if (fstat(fd, &now) || stat(path, &fst) || now.st_ino != fst.st_ino ||
	    now.st_dev != fst.st_dev)
		say(wr, "B: its open file is not the one at ", path);
	if (lseek(fd, 0, SEEK_CUR) != 5 || read(fd, buf, 5) != 5 || memcmp(buf, "by A\n", 5))
		say(wr, "B: its open file reads wrong: ", buf);
	if (stat(".", &cwd) || stat(m, &mst) || cwd.st_ino != mst.st_ino ||
	    cwd.st_dev != mst.st_dev || access("b", F_OK))
		say(wr, "B: its cwd is not the tmpfs", "");
	say(wr, is_tmpfs_root(m, NULL) ? NULL : "B: no tmpfs at ", m);
}

int main(int argc, char **argv)
{
	char m[PATH_MAX + 4];
	int ready[2], res[2];
	sigset_t set;
	pid_t a, b;

	test_init(argc, argv);
	if (!getcwd(dir, sizeof(dir)))
		test_fail("getcwd: %s", strerror(errno));
	snprintf(m, sizeof(m), "%s/m", dir);
	if (mkdir(m, 0755) && errno != EEXIST)
		test_fail("mkdir %s: %s", m, strerror(errno));
	if (pipe(ready) || pipe(res))
		test_fail("pipe: %s", strerror(errno));
	sigemptyset(&set);
	sigaddset(&set, SIGUSR1);
	sigprocmask(SIG_BLOCK, &set, NULL);
	a = fork();
	if (a == 0)
		child_a(ready[1], res[1], m);
	char c;
	if (a < 0 || read(ready[0], &c, 1) != 1)
		test_fail("A did not start");
	b = fork();
	if (b == 0)
		child_b(ready[1], res[1], m, a);
	if (b < 0 || read(ready[0], &c, 1) != 1)
		test_fail("B did not start (status of A: %d)", test_reap(a, true, 5));
	TEST_CHECK(ns_ino(b) == ns_ino(a) && ns_ino(a) != ns_ino(0), "the namespaces are not set up");

	test_ready();
	test_wait();

	if (test_sabotage())
		kill(b, SIGKILL);
	TEST_CHECK(!is_tmpfs_root(m, NULL), "the root sees the tmpfs of A's namespace");
	TEST_CHECK(ns_ino(b) == ns_ino(a), "B is not in A's mount namespace");
	for (int k = 0; k < 2; k++) { /* B first: it looks at A's namespace through A */
		char buf[MSG + 1] = "";
		kill(k ? a : b, SIGUSR1);
		TEST_CHECK(test_read_within(res[0], buf, MSG, 5000) == 0, "a child did not report");
		TEST_CHECK(!strcmp(buf, "ok"), "%s", buf);
	}
	int sa = test_reap(a, false, 5), sb = test_reap(b, false, 5);
	TEST_CHECK(sa == 0 && sb == 0, "the children ended with %#x and %#x", sa, sb);
	test_pass();
}
