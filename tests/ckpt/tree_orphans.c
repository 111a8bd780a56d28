// stasis-test: timeout=40
/* Sessions and groups that lost their leader's ancestry. The root is a child subreaper.
 *  - L leads a process group (setpgid) and forks M, then L exits: M stays in group L whose
 *    leader is gone, and is reparented to the root.
 *  - S calls setsid and forks X, X forks N, X exits: N (session S) is reparented to the
 *    root, whose session differs: its session leader is a sibling, not an ancestor.
 * After restore: every pid, parent, group and session as before, and the root is still
 * a subreaper (a new orphan is reparented to it). */
#include "lib.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static __attribute__((noreturn)) void sleeper(void)
{
	for (;;)
		pause();
}

static void wait_exit(pid_t pid)
{
	int st;
	alarm(10);
	while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
		;
	alarm(0);
}

/* wait until @pid shows @ppid as its parent */
static void wait_parent(pid_t pid, pid_t ppid)
{
	struct test_ids x;
	for (int i = 0; i < 500; i++) {
		if (!test_proc_ids(pid, &x) && x.ppid == ppid)
			return;
		struct timespec ts = { 0, 10000000 };
		nanosleep(&ts, NULL);
	}
	test_fail("pid %d was not reparented to %d", pid, ppid);
}

int main(int argc, char **argv)
{
	int pp[2];
	pid_t root, L, S, M, N;

	test_init(argc, argv);
	root = getpid();
	if (prctl(PR_SET_CHILD_SUBREAPER, 1) < 0 || pipe(pp) < 0)
		test_fail("setup: %s", strerror(errno));

	L = fork();
	if (L == 0) {
		setpgid(0, 0);
		pid_t m = fork();
		if (m == 0)
			sleeper();
		(void)!write(pp[1], &m, sizeof(m));
		_exit(0);
	}
	if (read(pp[0], &M, sizeof(M)) != sizeof(M))
		test_fail("no pid from L");
	wait_exit(L);
	wait_parent(M, root);

	S = fork();
	if (S == 0) {
		setsid();
		pid_t x = fork();
		if (x == 0) {
			pid_t n = fork();
			if (n == 0)
				sleeper();
			(void)!write(pp[1], &n, sizeof(n));
			_exit(0);
		}
		sleeper();
	}
	if (read(pp[0], &N, sizeof(N)) != sizeof(N))
		test_fail("no pid from X");
	wait_parent(N, root);

	struct test_ids m0, n0, s0;
	if (test_proc_ids(M, &m0) || test_proc_ids(N, &n0) || test_proc_ids(S, &s0))
		test_fail("cannot read ids");
	TEST_CHECK(m0.pgid == L && n0.sid == S && s0.sid == S, "setup did not give the shape");
	test_ready();
	test_wait();

	struct test_ids m1, n1, s1;
	TEST_CHECK(!test_proc_ids(M, &m1) && !test_proc_ids(N, &n1) && !test_proc_ids(S, &s1), "a task is missing");
	if (test_sabotage())
		m1.pgid = -1;
	TEST_CHECK(m1.ppid == root && m1.pgid == L && m1.sid == m0.sid,
		   "M: ppid %d pgid %d sid %d, expected %d %d %d", m1.ppid, m1.pgid, m1.sid, root, L,
		   m0.sid);
	TEST_CHECK(n1.ppid == root && n1.pgid == n0.pgid && n1.sid == S,
		   "N: ppid %d pgid %d sid %d, expected %d %d %d", n1.ppid, n1.pgid, n1.sid, root,
		   n0.pgid, S);
	TEST_CHECK(s1.ppid == root && s1.sid == S && s1.pgid == S, "S: ppid %d pgid %d sid %d",
		   s1.ppid, s1.pgid, s1.sid);
	int sub = 0;
	TEST_CHECK(prctl(PR_GET_CHILD_SUBREAPER, &sub) == 0 && sub == 1,
		   "the root is no longer a child subreaper");
	kill(M, SIGKILL);
	kill(N, SIGKILL);
	kill(S, SIGKILL);
	wait_exit(M);
	wait_exit(N);
	wait_exit(S);
	test_pass();
}
