// stasis-test: timeout=30 needs=root
/* Two mount namespaces in one tree: the root unshares one (a tmpfs "a" with a file), its
 * child unshares another below it (the copy of "a" plus a tmpfs "b" of its own, and "a"
 * made read-only there). After restore: each sees exactly its mounts (mountinfo pictures
 * unchanged), the namespaces are the root's own and the child's own, and "a" is still one
 * filesystem in both (a file the child writes through its copy shows in the root's). */
#include "lib.h"
#include "mntlib.h"

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

static char base[PATH_MAX];

static const char *at(const char *rel)
{
	static char buf[4][2 * PATH_MAX];
	static int k;
	k = (k + 1) % 4;
	snprintf(buf[k], sizeof(buf[k]), "%s/%s", base, rel);
	return buf[k];
}

static bool own_ns(pid_t parent)
{
	char a[64], b[64], p[64];
	if (parent == 0)
		return true; /* a pid namespace's init: its parent is not visible */
	snprintf(p, sizeof(p), "/proc/%d/ns/mnt", parent);
	ssize_t n = readlink("/proc/self/ns/mnt", a, sizeof(a) - 1);
	ssize_t m = readlink(p, b, sizeof(b) - 1);
	if (n <= 0 || m <= 0)
		return false;
	a[n] = b[m] = '\0';
	return strcmp(a, b) != 0;
}

static bool has(const char *rel, const char *want)
{
	char buf[64] = "";
	int fd = open(at(rel), O_RDONLY);
	ssize_t n = fd >= 0 ? read(fd, buf, sizeof(buf) - 1) : -1;
	if (fd >= 0)
		close(fd);
	return n == (ssize_t)strlen(want) && !memcmp(buf, want, (size_t)n);
}

static bool put(const char *rel, const char *data)
{
	int fd = open(at(rel), O_WRONLY | O_CREAT | O_TRUNC, 0644);
	bool ok = fd >= 0 && write(fd, data, strlen(data)) == (ssize_t)strlen(data);
	if (fd >= 0)
		close(fd);
	return ok;
}

static void child(pid_t root, int rq, int an)
{
	signal(SIGTERM, SIG_IGN);
	if (unshare(CLONE_NEWNS) < 0 || mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0 ||
	    mount("stasis-b", at("b"), "tmpfs", 0, "size=1m") < 0 || !put("b/f", "child b") ||
	    mount(at("a"), at("a"), NULL, MS_BIND, NULL) < 0 ||
	    mount(NULL, at("a"), NULL, MS_BIND | MS_REMOUNT | MS_RDONLY, NULL) < 0)
		_exit(1);
	char *before = mnt_picture();
	char c;
	if (!before || write(an, "r", 1) != 1)
		_exit(2);
	while (read(rq, &c, 1) == 1) {
		char *now = mnt_picture();
		bool ok = now && !strcmp(now, before) && own_ns(root) && has("b/f", "child b") &&
			  has("a/f", "root a");
		if (c == 'w') /* through the copy of "a" under the read-only bind */
			ok = ok && umount2(at("a"), 0) == 0 && put("a/g", "from child") &&
			     mount(at("a"), at("a"), NULL, MS_BIND, NULL) == 0 &&
			     mount(NULL, at("a"), NULL, MS_BIND | MS_REMOUNT | MS_RDONLY, NULL) == 0;
		if (!ok && now && before)
			fprintf(stderr, "child: mounts now:\n%s\nbefore:\n%s\n", now, before);
		free(now);
		if (write(an, ok ? "y" : "n", 1) != 1)
			_exit(3);
	}
	_exit(0);
}

int main(int argc, char **argv)
{
	int req[2], ans[2];
	test_init(argc, argv);
	if (!getcwd(base, sizeof(base) - 64))
		test_fail("getcwd: %s", strerror(errno));
	if (mkdir(at("a"), 0755) < 0 || mkdir(at("b"), 0755) < 0 || unshare(CLONE_NEWNS) < 0 ||
	    mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0 ||
	    mount("stasis-a", at("a"), "tmpfs", 0, "size=1m") < 0 || !put("a/f", "root a") ||
	    pipe(req) < 0 || pipe(ans) < 0)
		test_fail("setup: %s", strerror(errno));
	pid_t root = getpid();
	pid_t kid = fork();
	if (kid == 0) {
		close(req[1]);
		close(ans[0]);
		child(root, req[0], ans[1]);
	}
	close(req[0]);
	close(ans[1]);
	char c = '?';
	TEST_CHECK(read(ans[0], &c, 1) == 1 && c == 'r', "child setup failed");
	char *before = mnt_picture();
	TEST_CHECK(before != NULL, "cannot read mountinfo");
	test_ready();
	test_wait();
	if (test_sabotage())
		umount2(at("a"), MNT_DETACH);
	char *after = mnt_picture(), diff[512];
	TEST_CHECK(after && !strcmp(before, after), "the root's mounts changed: %s",
		   after ? mnt_picture_diff(before, after, diff, sizeof(diff)) : "unreadable");
	TEST_CHECK(own_ns(getppid()), "the root is not in a mount namespace of its own");
	TEST_CHECK(has("a/f", "root a"), "the root's tmpfs lost its file");
	struct stat st;
	TEST_CHECK(stat(at("b/f"), &st) < 0, "the child's tmpfs shows in the root's namespace");
	c = 'w';
	TEST_CHECK(write(req[1], &c, 1) == 1 && read(ans[0], &c, 1) == 1, "no answer");
	TEST_CHECK(c == 'y', "the child's mount namespace was not restored (see the log)");
	TEST_CHECK(has("a/g", "from child"), "the tmpfs is no longer shared by both namespaces");
	close(req[1]);
	int s;
	alarm(10);
	TEST_CHECK(waitpid(kid, &s, 0) == kid && WIFEXITED(s) && !WEXITSTATUS(s), "child status %#x",
		   s);
	test_pass();
}
