// stasis-test: timeout=40 needs=root
// stasis-test: rootless-known=same as cgroup_member
// stasis-test: uns-known=same as cgroup_member
/* A fresh cgroup2 mount inside a cgroup namespace. The root makes A and A/B (cgroup v2),
 * opens their cgroup.procs, then unshares a mount namespace without the cgroup2 mount
 * (so that a later cgroup2 mount cannot be a bind of what it sees). Its child, moved into
 * A, unshares a cgroup namespace (root A), moves itself into A/B through the open file,
 * unshares a mount namespace and mounts cgroup2 at "cg2": that mount shows A as its root.
 * After restore: the child sees itself at /B, its cg2 mount's root is still A (cg2/B holds
 * its pid, the root's inode is A's, mountinfo shows "/" inside and A from outside).
 * Sabotage: the root moves the child into A after the restore. */
#include "lib.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define TXT 4096

static char v2[128];           /* the cgroup2 mount point (host view) */
static char own[256];          /* the test's cgroup */
static char a_rel[300];        /* own/stasis-cgns-PID */
static char cwd[PATH_MAX];
static pid_t child = -1;
static bool unshared;          /* the root is in its mount namespace without cgroup2 */
static bool remounted;         /* "p2" is the root's own cgroup2 mount (after restore) */

struct answer {
	char self[TXT];   /* its /proc/self/cgroup */
	char procs[TXT];  /* cg2/B/cgroup.procs */
	char minfo[512];  /* its mountinfo line of cg2 */
	uint64_t ino;     /* of cg2 */
	int32_t pid;      /* its getpid() */
};

/* The mountinfo line of the mount at @mp (or ""). */
static void mount_line(const char *mountinfo, const char *mp, char *out, size_t len)
{
	char buf[65536], pat[PATH_MAX + 8];
	test_read_text(mountinfo, buf, sizeof(buf));
	snprintf(pat, sizeof(pat), " %s ", mp);
	out[0] = '\0';
	char *save = NULL;
	for (char *l = strtok_r(buf, "\n", &save); l; l = strtok_r(NULL, "\n", &save)) {
		char *sp = strchr(l, ' ');
		sp = sp ? strchr(sp + 1, ' ') : NULL;
		sp = sp ? strchr(sp + 1, ' ') : NULL; /* before the root */
		char *mpos = sp ? strchr(sp + 1, ' ') : NULL;
		if (mpos && !strncmp(mpos, pat, strlen(pat)))
			snprintf(out, len, "%s", l);
	}
}

/* The root field of a mountinfo line. */
static void root_of(const char *line, char *out, size_t len)
{
	char r[PATH_MAX] = "";
	if (sscanf(line, "%*s %*s %*s %4095s", r) != 1)
		r[0] = '\0';
	snprintf(out, len, "%s", r);
}

static int find_v2(void)
{
	if (test_cgroup2(v2, sizeof(v2), own, sizeof(own)) < 0)
		return -1;
	snprintf(a_rel, sizeof(a_rel), "%s/stasis-cgns-%d", strcmp(own, "/") ? own : "",
		 (int)getpid());
	return 0;
}

/* A path of A (@sub: "", "/B") through the host's mount (before the root unshares) or
 * through the root's own p2 mount (after the restore). */
static const char *a_path(const char *sub, const char *file)
{
	static char buf[2][2 * PATH_MAX];
	static int k;
	k ^= 1;
	if (remounted)
		snprintf(buf[k], sizeof(buf[k]), "%s/p2%s%s%s", cwd, a_rel, sub, file);
	else
		snprintf(buf[k], sizeof(buf[k]), "%s%s%s%s", v2, a_rel, sub, file);
	return buf[k];
}

static void cleanup(void)
{
	if (child > 0) {
		test_reap(child, true, 10);
		child = -1;
	}
	char p2[PATH_MAX + 8];
	snprintf(p2, sizeof(p2), "%s/p2", cwd);
	/* after the unshare, the host's mount is out of reach: a mount of its own */
	if (unshared && !remounted && mount("none", p2, "cgroup2", 0, NULL) == 0)
		remounted = true;
	for (int tries = 0; rmdir(a_path("/B", "")) < 0 && errno == EBUSY && tries < 100; tries++)
		usleep(20000);
	for (int tries = 0; rmdir(a_path("", "")) < 0 && errno == EBUSY && tries < 100; tries++)
		usleep(20000);
	if (remounted)
		umount2(p2, MNT_DETACH);
}

#define CHECK(cond, ...)                                                                           \
	do {                                                                                       \
		if (!(cond)) {                                                                     \
			cleanup();                                                                 \
			test_fail(__VA_ARGS__);                                                    \
		}                                                                                  \
	} while (0)

static __attribute__((noreturn)) void child_main(int q, int a, int fd_b)
{
	char c, mp[PATH_MAX + 8];
	snprintf(mp, sizeof(mp), "%s/cg2", cwd);
	/* the root moves it into A first */
	if (read(q, &c, 1) != 1 || unshare(CLONE_NEWCGROUP) < 0 || write(fd_b, "0", 1) != 1 ||
	    unshare(CLONE_NEWNS) < 0 || mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0 ||
	    mount("none", mp, "cgroup2", 0, NULL) < 0)
		_exit(1);
	close(fd_b);
	static struct answer ans;
	while (read(q, &c, 1) == 1 && c == 'v') {
		char path[PATH_MAX + 32];
		struct stat st;
		memset(&ans, 0, sizeof(ans));
		test_read_text("/proc/self/cgroup", ans.self, sizeof(ans.self));
		snprintf(path, sizeof(path), "%s/B/cgroup.procs", mp);
		test_read_text(path, ans.procs, sizeof(ans.procs));
		mount_line("/proc/self/mountinfo", mp, ans.minfo, sizeof(ans.minfo));
		ans.ino = stat(mp, &st) == 0 ? st.st_ino : 0;
		ans.pid = getpid();
		if (test_write_full(a, &ans, sizeof(ans)) < 0)
			_exit(2);
	}
	_exit(0);
}

static void ask(int q, int a, struct answer *ans)
{
	char c = 'v';
	CHECK(write(q, &c, 1) == 1 && test_read_within(a, ans, sizeof(*ans), 10000) == 0,
	      "no answer from the child");
}

static bool has_pid(const char *procs, int pid)
{
	char want[32];
	snprintf(want, sizeof(want), "%d\n", pid);
	for (const char *p = procs; p && *p; p = strchr(p, '\n') ? strchr(p, '\n') + 1 : NULL)
		if (!strncmp(p, want, strlen(want)))
			return true;
	return false;
}

/* What must hold, seen from the child and from the root (which sees A at @a_ino). */
static void verify(const struct answer *ans, uint64_t a_ino, const char *when)
{
	char path[64], outside[TXT], line[512], root[PATH_MAX], mp[PATH_MAX + 8];
	CHECK(strstr(ans->self, "0::/B\n") != NULL, "%s: the child sees itself as:\n%s", when,
	      ans->self);
	CHECK(has_pid(ans->procs, ans->pid), "%s: cg2/B/cgroup.procs of the child lacks %d: %s",
	      when, ans->pid, ans->procs);
	CHECK(ans->ino == a_ino, "%s: the child's cg2 is inode %llu, A is %llu", when,
	      (unsigned long long)ans->ino, (unsigned long long)a_ino);
	root_of(ans->minfo, root, sizeof(root));
	CHECK(!strcmp(root, "/"), "%s: the child's cg2 mount shows root '%s' inside", when, root);
	snprintf(path, sizeof(path), "/proc/%d/mountinfo", (int)child);
	snprintf(mp, sizeof(mp), "%s/cg2", cwd);
	mount_line(path, mp, line, sizeof(line));
	root_of(line, root, sizeof(root));
	CHECK(!strcmp(root, a_rel), "%s: from outside the child's cg2 mount shows root '%s'",
	      when, root);
	snprintf(path, sizeof(path), "/proc/%d/cgroup", (int)child);
	test_read_text(path, outside, sizeof(outside));
	char full[400];
	snprintf(full, sizeof(full), "0::%s/B\n", a_rel);
	CHECK(strstr(outside, full) != NULL, "%s: from outside the child is in:\n%s", when,
	      outside);
}

int main(int argc, char **argv)
{
	int q[2], a[2];
	struct stat st;
	test_init(argc, argv);
	if (!getcwd(cwd, sizeof(cwd)) || find_v2() < 0)
		test_fail("no cgroup v2 mount or no cgroup v2 line in /proc/self/cgroup");
	char cg2[PATH_MAX + 8], p2[PATH_MAX + 8];
	snprintf(cg2, sizeof(cg2), "%s/cg2", cwd);
	snprintf(p2, sizeof(p2), "%s/p2", cwd);
	CHECK((mkdir(cg2, 0755) == 0 || errno == EEXIST) &&
		      (mkdir(p2, 0755) == 0 || errno == EEXIST),
	      "mkdir: %s", strerror(errno));
	CHECK((mkdir(a_path("", ""), 0755) == 0 || errno == EEXIST) &&
		      (mkdir(a_path("/B", ""), 0755) == 0 || errno == EEXIST),
	      "mkdir %s: %s", a_path("/B", ""), strerror(errno));
	CHECK(stat(a_path("", ""), &st) == 0, "stat A: %s", strerror(errno));
	uint64_t a_ino = st.st_ino;
	int fd_a = open(a_path("", "/cgroup.procs"), O_WRONLY | O_CLOEXEC);
	int fd_b = open(a_path("/B", "/cgroup.procs"), O_WRONLY | O_CLOEXEC);
	CHECK(fd_a >= 0 && fd_b >= 0 && pipe(q) == 0 && pipe(a) == 0, "setup: %s",
	      strerror(errno));
	/* From here on the root has no cgroup2 mount (it mounts one of its own at p2 after
	 * the restore, or to clean up) */
	CHECK(unshare(CLONE_NEWNS) == 0, "unshare(CLONE_NEWNS): %s", strerror(errno));
	unshared = true;
	CHECK(mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) == 0 && umount2(v2, MNT_DETACH) == 0,
	      "cannot drop the cgroup2 mount: %s", strerror(errno));
	child = fork();
	CHECK(child >= 0, "fork: %s", strerror(errno));
	if (child == 0) {
		signal(SIGTERM, SIG_IGN);
		close(fd_a);
		child_main(q[0], a[1], fd_b);
	}
	close(fd_b);
	char s[32];
	int n = snprintf(s, sizeof(s), "%d", (int)child);
	bool moved = write(fd_a, s, (size_t)n) == n;
	close(fd_a);
	char c = 'g';
	struct answer ans0, ans;
	CHECK(moved && write(q[1], &c, 1) == 1, "cannot move the child into A: %s",
	      strerror(errno));
	ask(q[1], a[0], &ans0);
	verify(&ans0, a_ino, "before");
	test_ready();
	test_wait();
	/* the root's own cgroup2 mount again, for the checks and the cleanup */
	CHECK(mount("none", p2, "cgroup2", 0, NULL) == 0, "mount cgroup2: %s", strerror(errno));
	remounted = true;
	CHECK(stat(a_path("", ""), &st) == 0 && st.st_ino == a_ino, "A is not where it was");
	if (test_sabotage())
		(void)!test_write_text(a_path("", "/cgroup.procs"), s);
	ask(q[1], a[0], &ans);
	verify(&ans, a_ino, "after restore");
	c = 'q';
	CHECK(write(q[1], &c, 1) == 1, "write: %s", strerror(errno));
	int status = test_reap(child, false, 10);
	if (status != -1)
		child = -1;
	CHECK(status != -1 && WIFEXITED(status) && !WEXITSTATUS(status), "child status %#x",
	      status);
	cleanup();
	test_pass();
}
