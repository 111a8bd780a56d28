// stasis-test: timeout=30 needs=root
/* Tasks that entered (setns) namespaces an ancestor is in, rather than making them. The
 * root R binds an abstract unix name "r"; its child A unshares network, mount, UTS and
 * IPC namespaces, mounts a tmpfs on the test's "m", sets its host name and binds "a";
 * A's child C goes back into all four of R's namespaces (through fds A opened before
 * unsharing: with the test as the tree's root in the dumper's namespaces, those are the
 * dumper's); A's child K unshares a network namespace again and binds "k", and K's child G
 * enters A's network namespace (its grandparent's) through /proc/A/ns/net. After the
 * restore each child checks its namespaces by inode against R's, A's and K's, which names
 * it can reach (a datagram to each of "r", "a", "k" is delivered or refused), that C does
 * not see A's tmpfs and reads R's host name, not A's; R checks that A's namespaces are
 * still not its own. The children report through a pipe. */
#include "lib.h"
#include "nslib.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#define MSG NS_MSG
#define KINDS 4
static const char *const kind[KINDS] = { "net", "mnt", "uts", "ipc" };
static const int flag[KINDS] = { CLONE_NEWNET, CLONE_NEWNS, CLONE_NEWUTS, CLONE_NEWIPC };

static pid_t root_pid;

static int bind_name(char who)
{
	return ns_bind_name(root_pid, "join", who);
}

/* does a datagram to @who's name arrive (1), is it refused (0), or else (-1)? */
static int reach(char who)
{
	return ns_send_to(root_pid, "join", who, "x");
}

static bool is_tmpfs_root(const char *path)
{
	struct stat st, up;
	char parent[PATH_MAX + 4];
	snprintf(parent, sizeof(parent), "%s/..", path);
	return !stat(path, &st) && !stat(parent, &up) && st.st_dev != up.st_dev;
}

/* Is the caller's namespace of kind k that of @want[k] (the first @n kinds), and does it
 * reach exactly the names in @names? NULL, or why not. */
static const char *check_view(const pid_t *want, int n, const char *names)
{
	static char why[MSG];
	for (int k = 0; k < n; k++)
		if (ns_ino(getpid(), kind[k]) != ns_ino(want[k], kind[k])) {
			snprintf(why, sizeof(why), "its %s namespace is not pid %d's", kind[k],
				 (int)want[k]);
			return why;
		}
	for (const char *w = "rak"; *w; w++) {
		int r = reach(*w), want_it = strchr(names, *w) != NULL;
		if (r != want_it) {
			snprintf(why, sizeof(why), "a datagram to \"%c\" %s", *w,
				 r < 0 ? "failed oddly" : r ? "arrived" : "was refused");
			return why;
		}
	}
	return NULL;
}

/* C goes back into each of R's namespaces it may enter (in a rootless container R's
 * network namespace may belong to a user namespace above it: setns refuses it, and C
 * stays in A's of that kind): which ones is in its memory, restored with it. */
static void __attribute__((noreturn)) child_c(int wr, const int *back, const char *m,
					      const char *host, pid_t a)
{
	pid_t want[KINDS];
	for (int k = 0; k < KINDS; k++) {
		want[k] = setns(back[k], flag[k]) ? a : root_pid;
		if (want[k] == a && errno != EPERM)
			_exit(30 + k);
		close(back[k]);
	}
	(void)!write(wr, "c", 1);
	ns_wait_usr1();
	const char *why = check_view(want, KINDS, want[0] == a ? "a" : "r");
	char h[256] = "";
	if (!why && is_tmpfs_root(m) != (want[1] == a))
		why = want[1] == a ? "it does not see A's tmpfs" : "it sees A's tmpfs";
	if (!why && (gethostname(h, sizeof(h)) || strcmp(h, want[2] == a ? "stasis-a" : host)))
		why = "its host name is not the one of its UTS namespace";
	ns_say(wr, 'C', why);
}

static void __attribute__((noreturn)) child_g(int wr, pid_t a)
{
	char path[64];
	snprintf(path, sizeof(path), "/proc/%d/ns/net", (int)a);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0 || setns(fd, CLONE_NEWNET))
		_exit(40);
	close(fd);
	(void)!write(wr, "g", 1);
	ns_wait_usr1();
	ns_say(wr, 'G', check_view(&a, 1, "a"));
}

static void __attribute__((noreturn)) child_k(int wr, pid_t a)
{
	if (unshare(CLONE_NEWNET))
		_exit(50);
	pid_t g = fork();
	if (g == 0)
		child_g(wr, a);
	if (bind_name('k') < 0) /* (after the fork: G holds no socket of this namespace) */
		_exit(51);
	ns_wait_usr1();
	kill(g, SIGUSR1);
	pid_t me = getpid();
	const char *why = check_view(&me, 1, "k");
	if (!why && ns_ino(getpid(), "net") == ns_ino(a, "net"))
		why = "it is in A's network namespace";
	if (!why && test_reap(g, false, 5) != 0)
		why = "G did not end well";
	ns_say(wr, 'K', why);
}

static void __attribute__((noreturn)) child_a(int wr, const char *m, const char *host)
{
	int back[KINDS];
	for (int k = 0; k < KINDS; k++) {
		char path[32];
		snprintf(path, sizeof(path), "/proc/self/ns/%s", kind[k]);
		if ((back[k] = open(path, O_RDONLY | O_CLOEXEC)) < 0)
			_exit(20);
	}
	if (unshare(CLONE_NEWNET | CLONE_NEWNS | CLONE_NEWUTS | CLONE_NEWIPC) ||
	    mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) ||
	    mount("stasis-join", m, "tmpfs", 0, "size=1m") || sethostname("stasis-a", 8))
		_exit(21);
	pid_t me = getpid(), c = fork(), k;
	if (c == 0)
		child_c(wr, back, m, host, me);
	for (int i = 0; i < KINDS; i++)
		close(back[i]);
	k = fork();
	if (k == 0)
		child_k(wr, me);
	if (bind_name('a') < 0) /* (after the forks: C and K hold no socket of it) */
		_exit(22);
	ns_wait_usr1();
	kill(c, SIGUSR1);
	kill(k, SIGUSR1);
	pid_t self[KINDS] = { me, me, me, me };
	const char *why = check_view(self, KINDS, "a");
	if (!why && !is_tmpfs_root(m))
		why = "no tmpfs at m";
	if (!why && (test_reap(c, false, 5) != 0 || test_reap(k, false, 5) != 0))
		why = "C or K did not end well";
	ns_say(wr, 'A', why);
}

int main(int argc, char **argv)
{
	char dir[PATH_MAX], m[PATH_MAX + 4], host[256];
	int res[2];

	test_init(argc, argv);
	root_pid = getpid();
	if (!getcwd(dir, sizeof(dir)) || gethostname(host, sizeof(host)))
		test_fail("getcwd/gethostname: %s", strerror(errno));
	snprintf(m, sizeof(m), "%s/m", dir);
	if (mkdir(m, 0755) && errno != EEXIST)
		test_fail("mkdir %s: %s", m, strerror(errno));
	if (pipe(res))
		test_fail("pipe: %s", strerror(errno));
	ns_block_usr1();
	pid_t a = fork();
	if (a == 0)
		child_a(res[1], m, host);
	if (bind_name('r') < 0) /* (after the fork: no child holds a socket of it) */
		test_fail("bind: %s", strerror(errno));
	char c[3];
	if (a < 0 || test_read_within(res[0], c, 2, 5000) || !strchr("cg", c[0]) ||
	    !strchr("cg", c[1]) || c[0] == c[1])
		test_fail("the children did not start (A: %#x)", test_reap(a, true, 5));

	test_ready();
	test_wait();

	if (test_sabotage())
		kill(a, SIGKILL);
	for (int k = 0; k < KINDS; k++)
		TEST_CHECK(ns_ino(a, kind[k]) && ns_ino(a, kind[k]) != ns_ino(getpid(), kind[k]),
			   "A's %s namespace is R's", kind[k]);
	TEST_CHECK(!is_tmpfs_root(m), "R sees A's tmpfs");
	kill(a, SIGUSR1);
	char why[NS_MSG + 64];
	TEST_CHECK(!ns_collect(res[0], "ACGK", why, sizeof(why)), "%s", why);
	TEST_CHECK(test_reap(a, false, 5) == 0, "A did not end well");
	test_pass();
}
