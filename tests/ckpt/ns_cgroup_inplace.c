// stasis-test: timeout=30 needs=root
/* Cgroup namespaces rooted where their creators already are (no cgroup is created or
 * joined, so the test runs in a rootless container too): the root unshares a cgroup
 * namespace, its child unshares another one inside it. After restore: both see every
 * hierarchy's cgroup as "/", the child's namespace is not the root's, and the root's is
 * not its parent's. Sabotage: the root joins the child's namespace (setns). */
#include "lib.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define TXT 4096

struct answer {
	char self[TXT];
	char ns[64];
};

static void ns_link(const char *path, char *out, size_t len)
{
	ssize_t n = readlink(path, out, len - 1);
	out[n > 0 ? n : 0] = '\0';
}

/* Every line "ID:CONTROLLERS:/" (and at least one). */
static bool all_at_root(const char *text)
{
	int lines = 0;
	for (const char *p = text; *p;) {
		const char *e = strchr(p, '\n');
		if (!e || e - p < 3 || strncmp(e - 2, ":/", 2))
			return false;
		lines++;
		p = e + 1;
	}
	return lines > 0;
}

static pid_t child = -1;

static void stop_child(void)
{
	if (child <= 0)
		return;
	test_reap(child, true, 10);
	child = -1;
}

#define CHECK(cond, ...)                                                                           \
	do {                                                                                       \
		if (!(cond)) {                                                                     \
			stop_child();                                                              \
			test_fail(__VA_ARGS__);                                                    \
		}                                                                                  \
	} while (0)

static void ask(int q, int a, struct answer *ans)
{
	char c = 'v';
	struct pollfd p = { .fd = a, .events = POLLIN };
	CHECK(write(q, &c, 1) == 1 && poll(&p, 1, 10000) == 1 &&
		      test_read_full(a, ans, sizeof(*ans)) == 0,
	      "no answer from the child");
}

static void verify(const struct answer *ans, const char *when)
{
	char self[TXT], mine[64], parent[64], path[64];
	test_read_text("/proc/self/cgroup", self, sizeof(self));
	ns_link("/proc/self/ns/cgroup", mine, sizeof(mine));
	CHECK(all_at_root(self), "%s: the root sees its cgroups as:\n%s", when, self);
	CHECK(all_at_root(ans->self), "%s: the child sees its cgroups as:\n%s", when, ans->self);
	CHECK(mine[0] && ans->ns[0] && strcmp(mine, ans->ns),
	      "%s: the child's cgroup namespace is the root's (%s)", when, mine);
	/* (a pid namespace's init cannot see its parent: nothing to compare with) */
	if (getppid() > 0) {
		snprintf(path, sizeof(path), "/proc/%d/ns/cgroup", (int)getppid());
		ns_link(path, parent, sizeof(parent));
		CHECK(parent[0] && strcmp(mine, parent),
		      "%s: the root's cgroup namespace is its parent's (%s)", when, mine);
	}
}

int main(int argc, char **argv)
{
	int q[2], a[2];
	test_init(argc, argv);
	if (unshare(CLONE_NEWCGROUP) < 0 || pipe(q) < 0 || pipe(a) < 0)
		test_fail("setup: %s", strerror(errno));
	child = fork();
	CHECK(child >= 0, "fork: %s", strerror(errno));
	if (child == 0) {
		char c;
		signal(SIGTERM, SIG_IGN);
		if (unshare(CLONE_NEWCGROUP) < 0)
			_exit(1);
		static struct answer ans;
		while (read(q[0], &c, 1) == 1 && c == 'v') {
			memset(&ans, 0, sizeof(ans));
			test_read_text("/proc/self/cgroup", ans.self, sizeof(ans.self));
			ns_link("/proc/self/ns/cgroup", ans.ns, sizeof(ans.ns));
			if (test_write_full(a[1], &ans, sizeof(ans)) < 0)
				_exit(2);
		}
		_exit(0);
	}
	struct answer ans;
	ask(q[1], a[0], &ans);
	verify(&ans, "before");
	test_ready();
	test_wait();
	if (test_sabotage()) {
		char path[64];
		snprintf(path, sizeof(path), "/proc/%d/ns/cgroup", (int)child);
		int fd = open(path, O_RDONLY | O_CLOEXEC);
		if (fd >= 0) {
			(void)!setns(fd, CLONE_NEWCGROUP);
			close(fd);
		}
	}
	ask(q[1], a[0], &ans);
	verify(&ans, "after restore");
	char c = 'q';
	CHECK(write(q[1], &c, 1) == 1, "write: %s", strerror(errno));
	int st = test_reap(child, false, 10);
	if (st != -1)
		child = -1;
	CHECK(st != -1 && WIFEXITED(st) && !WEXITSTATUS(st), "child status %#x", st);
	test_pass();
}
