// stasis-test: timeout=40 needs=root
// stasis-test: rootless-known=same as cgroup_member (the test makes the cgroups its
//   namespaces are rooted in)
// stasis-test: uns-known=same as cgroup_member
/* Cgroup namespaces, nested. The test makes A, A/B and A/B/C under its own cgroup (in
 * cgroup v2 and, when mounted, in the v1 pids hierarchy), moves a child into A; the child
 * unshares CLONE_NEWCGROUP (root A) and moves itself into A/B; its child (the grandchild)
 * unshares another one (root A/B) and moves itself into A/B/C. After restore, in every
 * task: /proc/self/cgroup as seen inside each namespace is what it was ("0::/B" and
 * "0::/C", every hierarchy's line the same), each sees the other through its own root
 * (the child sees the grandchild at /B/C, the grandchild its parent at /), the three
 * cgroup namespaces differ, and from outside the paths are the full ones. Sabotage: the
 * child is moved into A/B/C after the restore. */
#include "lib.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define NH 2      /* hierarchies: [0] cgroup v2, [1] v1 pids (if mounted) */
#define TXT 2048

struct hier {
	char mnt[128];  /* mount point */
	char own[256];  /* the test's own cgroup in it ("/" or "/x/y") */
	char a[300];    /* own/stasis-cgns-PID, relative to the hierarchy's root */
	char line[64];  /* "0::" or "8:pids:" (the start of its /proc/PID/cgroup line) */
};

static struct hier h[NH];
static int nh;
static pid_t child = -1, grandchild = -1;
static int q1[2], a1[2], q2[2], a2[2];

/* A task's answer: its /proc/self/cgroup, the other task's as it sees it, its
 * namespace link. */
struct view {
	char self[TXT], other[TXT], ns[64];
};

/* Move @pid (0: the caller) into @sub ("", "/B", "/B/C") of A in every hierarchy. */
static int move_to(pid_t pid, const char *sub)
{
	char path[2048], s[32];
	snprintf(s, sizeof(s), "%d", (int)pid);
	for (int i = 0; i < nh; i++) {
		snprintf(path, sizeof(path), "%s%s%s/cgroup.procs", h[i].mnt, h[i].a, sub);
		if (test_write_text(path, s) < 0)
			return -1;
	}
	return 0;
}

/* The cgroup2 mount and the v1 pids one, and the test's own cgroup in each. */
static int find_hierarchies(void)
{
	char mi[65536], cg[TXT];
	test_read_text("/proc/self/mountinfo", mi, sizeof(mi));
	test_read_text("/proc/self/cgroup", cg, sizeof(cg));
	for (int want = 0; want < NH; want++) {
		char *save = NULL, buf[sizeof(mi)];
		memcpy(buf, mi, sizeof(mi));
		for (char *l = strtok_r(buf, "\n", &save); l; l = strtok_r(NULL, "\n", &save)) {
			char mnt[128], fstype[64], opts[512];
			char *sep = strstr(l, " - ");
			if (!sep || sscanf(l, "%*s %*s %*s %*s %127s", mnt) != 1 ||
			    sscanf(sep + 3, "%63s %*s %511s", fstype, opts) != 2)
				continue;
			char o[520];
			snprintf(o, sizeof(o), ",%s,", opts);
			if (want == 0 ? strcmp(fstype, "cgroup2")
				      : strcmp(fstype, "cgroup") || !strstr(o, ",pids,"))
				continue;
			struct hier *x = &h[nh];
			snprintf(x->mnt, sizeof(x->mnt), "%s", mnt);
			/* the test's line of this hierarchy */
			char *p = want == 0 ? strstr(cg, "0::/") : strstr(cg, ":pids:/");
			if (!p || (want == 0 && p != cg && p[-1] != '\n'))
				return -1;
			const char *start = p;
			while (start > cg && start[-1] != '\n')
				start--;
			p = strchr(p, '/');
			size_t n = strcspn(p, "\n");
			snprintf(x->own, sizeof(x->own), "%.*s", (int)n, p);
			snprintf(x->line, sizeof(x->line), "%.*s", (int)(p - start), start);
			snprintf(x->a, sizeof(x->a), "%s/stasis-cgns-%d",
				 strcmp(x->own, "/") ? x->own : "", (int)getpid());
			nh++;
			break;
		}
		if (want == 0 && nh == 0)
			return -1; /* cgroup v2 is required */
	}
	return 0;
}

static void remove_dirs(void)
{
	static const char *const sub[] = { "/B/C", "/B", "" };
	char path[2048];
	for (int i = 0; i < nh; i++)
		for (int k = 0; k < 3; k++) {
			snprintf(path, sizeof(path), "%s%s%s", h[i].mnt, h[i].a, sub[k]);
			/* the last members may take a moment to leave after being reaped */
			for (int tries = 0; rmdir(path) < 0 && errno == EBUSY && tries < 100; tries++)
				usleep(20000);
		}
}

/* Every process gone (by pid, waits bounded) and the cgroups removed. */
static void cleanup(void)
{
	if (grandchild > 0)
		kill(grandchild, SIGKILL);
	if (child > 0) {
		test_reap(child, true, 10);
		child = -1;
	}
	grandchild = -1;
	remove_dirs();
}

#define CHECK(cond, ...)                                                                           \
	do {                                                                                       \
		if (!(cond)) {                                                                     \
			cleanup();                                                                 \
			test_fail(__VA_ARGS__);                                                    \
		}                                                                                  \
	} while (0)

/* Read exactly @len bytes within @ms milliseconds. */

/* The request loop of a child: on 'v' send its view (@other: the pid whose cgroup it
 * reads), on 'q' stop. */
static void serve(int q, int a, pid_t other)
{
	char c, path[64];
	snprintf(path, sizeof(path), "/proc/%d/cgroup", (int)other);
	while (read(q, &c, 1) == 1 && c == 'v') {
		static struct view v;
		memset(&v, 0, sizeof(v));
		test_read_text("/proc/self/cgroup", v.self, sizeof(v.self));
		test_read_text(path, v.other, sizeof(v.other));
		ssize_t n = readlink("/proc/self/ns/cgroup", v.ns, sizeof(v.ns) - 1);
		if (n < 0 || test_write_full(a, &v, sizeof(v)) < 0)
			_exit(3);
	}
}

static __attribute__((noreturn)) void grandchild_main(void)
{
	if (unshare(CLONE_NEWCGROUP) < 0 || move_to(0, "/B/C") < 0)
		_exit(1);
	char ok = 'y';
	if (write(a2[1], &ok, 1) != 1)
		_exit(2);
	serve(q2[0], a2[1], getppid());
	_exit(0);
}

static __attribute__((noreturn)) void child_main(void)
{
	char c;
	/* the parent moves it into A first */
	if (read(q1[0], &c, 1) != 1 || unshare(CLONE_NEWCGROUP) < 0 || move_to(0, "/B") < 0)
		_exit(1);
	pid_t g = fork();
	if (g < 0)
		_exit(1);
	if (g == 0)
		grandchild_main();
	int32_t gp = g;
	if (test_write_full(a1[1], &gp, sizeof(gp)) < 0)
		_exit(2);
	serve(q1[0], a1[1], g);
	/* 'q' (or the parent gone): the grandchild goes first */
	kill(g, SIGKILL);
	alarm(10);
	while (waitpid(g, NULL, 0) < 0 && errno == EINTR)
		;
	_exit(0);
}

static void ask(int q, int a, struct view *v, const char *who)
{
	char c = 'v';
	CHECK(write(q, &c, 1) == 1 && test_read_within(a, v, sizeof(*v), 10000) == 0,
	      "no answer from the %s", who);
}

/* Does @text hold the line @prefix@path? */
static bool has_line(const char *text, const char *prefix, const char *path)
{
	char want[2200];
	snprintf(want, sizeof(want), "%s%s\n", prefix, path);
	size_t n = strlen(want);
	for (const char *p = text; p && *p; p = strchr(p, '\n') ? strchr(p, '\n') + 1 : NULL)
		if (!strncmp(p, want, n))
			return true;
	return false;
}

/* Everything that must hold, before the dump and after the restore. */
static void verify(const struct view *cv, const struct view *gv, const char *when)
{
	char path[64], out[TXT], mine[64] = "";
	ssize_t n = readlink("/proc/self/ns/cgroup", mine, sizeof(mine) - 1);
	CHECK(n > 0, "readlink /proc/self/ns/cgroup: %s", strerror(errno));
	CHECK(strcmp(mine, cv->ns) && strcmp(mine, gv->ns) && strcmp(cv->ns, gv->ns),
	      "%s: the cgroup namespaces are not three (%s, %s, %s)", when, mine, cv->ns, gv->ns);
	for (int i = 0; i < nh; i++) {
		char full[2048];
		CHECK(has_line(cv->self, h[i].line, "/B"), "%s: the child sees itself as:\n%s", when,
		      cv->self);
		CHECK(has_line(gv->self, h[i].line, "/C"), "%s: the grandchild sees itself as:\n%s",
		      when, gv->self);
		CHECK(has_line(cv->other, h[i].line, "/B/C"),
		      "%s: the child sees the grandchild as:\n%s", when, cv->other);
		CHECK(has_line(gv->other, h[i].line, "/"), "%s: the grandchild sees the child as:\n%s",
		      when, gv->other);
		/* from outside: the full paths */
		snprintf(path, sizeof(path), "/proc/%d/cgroup", (int)child);
		test_read_text(path, out, sizeof(out));
		snprintf(full, sizeof(full), "%s/B", h[i].a);
		CHECK(has_line(out, h[i].line, full), "%s: the child is not in %s:\n%s", when, full,
		      out);
		snprintf(path, sizeof(path), "/proc/%d/cgroup", (int)grandchild);
		test_read_text(path, out, sizeof(out));
		snprintf(full, sizeof(full), "%s/B/C", h[i].a);
		CHECK(has_line(out, h[i].line, full), "%s: the grandchild is not in %s:\n%s", when,
		      full, out);
	}
}

int main(int argc, char **argv)
{
	test_init(argc, argv);
	if (find_hierarchies() < 0)
		test_fail("no cgroup v2 mount or no cgroup v2 line in /proc/self/cgroup");
	for (int i = 0; i < nh; i++) {
		static const char *const sub[] = { "", "/B", "/B/C" };
		for (int k = 0; k < 3; k++) {
			char path[2048];
			snprintf(path, sizeof(path), "%s%s%s", h[i].mnt, h[i].a, sub[k]);
			CHECK(mkdir(path, 0755) == 0 || errno == EEXIST, "mkdir %s: %s", path,
			      strerror(errno));
		}
	}
	CHECK(pipe(q1) == 0 && pipe(a1) == 0 && pipe(q2) == 0 && pipe(a2) == 0, "pipe: %s",
	      strerror(errno));
	child = fork();
	CHECK(child >= 0, "fork: %s", strerror(errno));
	if (child == 0) {
		signal(SIGTERM, SIG_IGN);
		child_main();
	}
	CHECK(move_to(child, "") == 0, "cannot move the child into A: %s", strerror(errno));
	char c = 'g', ok = 0;
	int32_t gp = -1;
	CHECK(write(q1[1], &c, 1) == 1 && test_read_within(a1[0], &gp, sizeof(gp), 10000) == 0 &&
		      gp > 0,
	      "the child did not set up");
	grandchild = gp;
	CHECK(test_read_within(a2[0], &ok, 1, 10000) == 0 && ok == 'y', "the grandchild did not set up");

	struct view cv0, gv0, cv, gv;
	ask(q1[1], a1[0], &cv0, "child");
	ask(q2[1], a2[0], &gv0, "grandchild");
	verify(&cv0, &gv0, "before");
	test_ready();
	test_wait();
	if (test_sabotage()) {
		char s[32], path[2048];
		snprintf(s, sizeof(s), "%d", (int)child);
		snprintf(path, sizeof(path), "%s%s/B/C/cgroup.procs", h[0].mnt, h[0].a);
		(void)!test_write_text(path, s);
	}
	ask(q1[1], a1[0], &cv, "child");
	ask(q2[1], a2[0], &gv, "grandchild");
	verify(&cv, &gv, "after restore");
	CHECK(!strcmp(cv.self, cv0.self), "the child's view changed:\n%s---\n%s", cv0.self,
	      cv.self);
	CHECK(!strcmp(gv.self, gv0.self), "the grandchild's view changed:\n%s---\n%s", gv0.self,
	      gv.self);
	/* the child stops the grandchild and exits */
	c = 'q';
	CHECK(write(q1[1], &c, 1) == 1, "write: %s", strerror(errno));
	int st = test_reap(child, false, 10);
	if (st != -1)
		child = -1;
	CHECK(st != -1 && WIFEXITED(st) && !WEXITSTATUS(st), "child status %#x", st);
	grandchild = -1;
	remove_dirs();
	test_pass();
}
