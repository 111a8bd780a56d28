// stasis-test: timeout=40 needs=root
// stasis-test: rootless-known=same as cgroup_member
// stasis-test: uns-known=same as cgroup_member
/* A cgroup namespace owned by a user namespace of the tree. The root makes A and A/B
 * (cgroup v2) and moves its child into A; the child unshares a user namespace and a
 * cgroup namespace at once (the cgroup namespace is then owned by the new user
 * namespace), the root writes its maps (0..1999 -> 10000..) and moves it into A/B. After
 * restore: the child sees itself at /B, its cgroup namespace is owned by its own user
 * namespace (NS_GET_USERNS), both differ from the root's, and from outside it is in A/B.
 * Sabotage: the root moves the child back into A after the restore. */
#include "lib.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/nsfs.h>
#include <poll.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define TXT 4096

static char v2[128], a_path[400];
static pid_t child = -1;

struct answer {
	char self[TXT];
	uint64_t user, cgns, owner; /* inodes: its user and cgroup namespaces, the owner */
	int32_t uid;
};

static int move(pid_t pid, const char *sub)
{
	char path[600], s[32];
	snprintf(path, sizeof(path), "%s%s/cgroup.procs", a_path, sub);
	snprintf(s, sizeof(s), "%d", (int)pid);
	return test_write_text(path, s);
}

static int find_v2(void)
{
	char own[256];
	if (test_cgroup2(v2, sizeof(v2), own, sizeof(own)) < 0)
		return -1;
	snprintf(a_path, sizeof(a_path), "%s%s/stasis-cgns-%d", v2, strcmp(own, "/") ? own : "",
		 (int)getpid());
	return 0;
}

static void cleanup(void)
{
	char b[600];
	if (child > 0) {
		test_reap(child, true, 10);
		child = -1;
	}
	snprintf(b, sizeof(b), "%s/B", a_path);
	for (int tries = 0; rmdir(b) < 0 && errno == EBUSY && tries < 100; tries++)
		usleep(20000);
	for (int tries = 0; rmdir(a_path) < 0 && errno == EBUSY && tries < 100; tries++)
		usleep(20000);
}

#define CHECK(cond, ...)                                                                           \
	do {                                                                                       \
		if (!(cond)) {                                                                     \
			cleanup();                                                                 \
			test_fail(__VA_ARGS__);                                                    \
		}                                                                                  \
	} while (0)

static uint64_t ino_of(int fd)
{
	struct stat st;
	return fd >= 0 && fstat(fd, &st) == 0 ? (uint64_t)st.st_ino : 0;
}

static uint64_t ns_ino(const char *path)
{
	struct stat st;
	return stat(path, &st) == 0 ? (uint64_t)st.st_ino : 0;
}

static __attribute__((noreturn)) void child_main(int q, int a)
{
	char c;
	/* moved into A by the root; once its maps are written it takes uid 0 inside */
	if (read(q, &c, 1) != 1 || unshare(CLONE_NEWUSER | CLONE_NEWCGROUP) < 0 ||
	    write(a, "u", 1) != 1 || read(q, &c, 1) != 1 || setresgid(0, 0, 0) < 0 ||
	    setresuid(0, 0, 0) < 0)
		_exit(1);
	static struct answer ans;
	while (read(q, &c, 1) == 1 && c == 'v') {
		memset(&ans, 0, sizeof(ans));
		test_read_text("/proc/self/cgroup", ans.self, sizeof(ans.self));
		ans.user = ns_ino("/proc/self/ns/user");
		ans.cgns = ns_ino("/proc/self/ns/cgroup");
		int fd = open("/proc/self/ns/cgroup", O_RDONLY | O_CLOEXEC);
		int ufd = fd >= 0 ? ioctl(fd, NS_GET_USERNS) : -1;
		ans.owner = ino_of(ufd);
		if (fd >= 0)
			close(fd);
		if (ufd >= 0)
			close(ufd);
		ans.uid = (int32_t)getuid();
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

static void verify(const struct answer *ans, const char *when)
{
	char path[64], outside[TXT], full[500];
	CHECK(strstr(ans->self, "0::/B\n") != NULL, "%s: the child sees itself as:\n%s", when,
	      ans->self);
	CHECK(ans->uid == 0, "%s: the child is uid %d inside", when, ans->uid);
	CHECK(ans->user && ans->user != ns_ino("/proc/self/ns/user"),
	      "%s: the child is not in a user namespace of its own", when);
	CHECK(ans->cgns && ans->cgns != ns_ino("/proc/self/ns/cgroup"),
	      "%s: the child is not in a cgroup namespace of its own", when);
	CHECK(ans->owner == ans->user,
	      "%s: the child's cgroup namespace is owned by user namespace %llu, not its own %llu",
	      when, (unsigned long long)ans->owner, (unsigned long long)ans->user);
	snprintf(path, sizeof(path), "/proc/%d/cgroup", (int)child);
	test_read_text(path, outside, sizeof(outside));
	snprintf(full, sizeof(full), "0::%s/B\n", a_path + strlen(v2));
	CHECK(strstr(outside, full) != NULL, "%s: from outside the child is in:\n%s", when,
	      outside);
}

int main(int argc, char **argv)
{
	int q[2], a[2];
	char b[600];
	test_init(argc, argv);
	if (find_v2() < 0)
		test_fail("no cgroup v2 mount or no cgroup v2 line in /proc/self/cgroup");
	snprintf(b, sizeof(b), "%s/B", a_path);
	CHECK((mkdir(a_path, 0755) == 0 || errno == EEXIST) && (mkdir(b, 0755) == 0 || errno == EEXIST),
	      "mkdir %s: %s", b, strerror(errno));
	CHECK(pipe(q) == 0 && pipe(a) == 0, "pipe: %s", strerror(errno));
	child = fork();
	CHECK(child >= 0, "fork: %s", strerror(errno));
	if (child == 0) {
		signal(SIGTERM, SIG_IGN);
		child_main(q[0], a[1]);
	}
	char c = 'g', path[64];
	CHECK(move(child, "") == 0 && write(q[1], &c, 1) == 1, "cannot move the child into A");
	CHECK(test_read_within(a[0], &c, 1, 10000) == 0 && c == 'u', "the child did not unshare");
	snprintf(path, sizeof(path), "/proc/%d/uid_map", (int)child);
	CHECK(test_write_text(path, "0 10000 2000") == 0, "write %s: %s", path, strerror(errno));
	snprintf(path, sizeof(path), "/proc/%d/gid_map", (int)child);
	CHECK(test_write_text(path, "0 10000 2000") == 0, "write %s: %s", path, strerror(errno));
	CHECK(move(child, "/B") == 0 && write(q[1], &c, 1) == 1, "cannot move the child into A/B");
	struct answer ans;
	ask(q[1], a[0], &ans);
	verify(&ans, "before");
	test_ready();
	test_wait();
	if (test_sabotage())
		(void)!move(child, "");
	ask(q[1], a[0], &ans);
	verify(&ans, "after restore");
	c = 'q';
	CHECK(write(q[1], &c, 1) == 1, "write: %s", strerror(errno));
	int st = test_reap(child, false, 10);
	if (st != -1)
		child = -1;
	CHECK(st != -1 && WIFEXITED(st) && !WEXITSTATUS(st), "child status %#x", st);
	cleanup();
	test_pass();
}
