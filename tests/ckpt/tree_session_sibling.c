// stasis-test: timeout=30
/* A session leader born in the session of its sibling. The root R (a child subreaper)
 * forks P, which forks A; A calls setsid and makes B with CLONE_PARENT (B is P's child, in
 * A's session); B forks C there, then calls setsid itself and forks D in its own session.
 * So C is in A's session, neither its own nor its parent's (B's); P is no subreaper, so B
 * cannot be made by A through a helper and given to P: a restore must make B in A's
 * session by A, with CLONE_PARENT, have it make C, then setsid. After the restore every
 * task has its parent, process group and session again (/proc) and answers. */
#include "lib.h"

#include <errno.h>
#include <sched.h>
#include <signal.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

enum { P, A, B, C, D, N };
static const char *const name[N] = { "P", "A", "B", "C", "D" };
static int to[N][2], from[N][2];

static __attribute__((noreturn)) void echo_loop(int k)
{
	char b;
	while (read(to[k][0], &b, 1) == 1)
		if (write(from[k][1], &b, 1) != 1)
			_exit(3);
	_exit(0);
}

/* fork (@sibling: with CLONE_PARENT); the child runs @fn and never returns */
static pid_t spawn(bool sibling, void (*fn)(void))
{
	pid_t pid = (pid_t)syscall(SYS_clone, SIGCHLD | (sibling ? CLONE_PARENT : 0), NULL, NULL,
				   NULL, 0L);
	if (pid == 0) {
		fn();
		_exit(1);
	}
	return pid;
}

static pid_t pids[N];
static int ready[2];

/* one record (a task and its pid) to R: atomic in a pipe */
static void tell(int k, pid_t pid)
{
	int32_t r[2] = { k, pid };
	if (pid < 0 || write(ready[1], r, sizeof(r)) != sizeof(r))
		_exit(5);
}

static void run_c(void)
{
	echo_loop(C);
}

static void run_d(void)
{
	echo_loop(D);
}

static void run_b(void)
{
	pid_t c = spawn(false, run_c); /* in A's session */
	if (c < 0 || setsid() < 0)
		_exit(4);
	tell(C, c);
	tell(D, spawn(false, run_d)); /* in B's own */
	echo_loop(B);
}

static void run_a(void)
{
	if (setsid() < 0)
		_exit(4);
	tell(B, spawn(true, run_b)); /* P's child, in A's session */
	echo_loop(A);
}

static void run_p(void)
{
	tell(A, spawn(false, run_a));
	echo_loop(P);
}

static int ask(int k)
{
	char r = 0;
	if (write(to[k][1], "?", 1) != 1 || test_read_within(from[k][0], &r, 1, 5000) != 0)
		return -1;
	return r == '?' ? 0 : -1;
}

int main(int argc, char **argv)
{
	struct test_ids ids[N], now;

	test_init(argc, argv);
	TEST_CHECK(!prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0), "PR_SET_CHILD_SUBREAPER: %s",
		   strerror(errno));
	for (int k = 0; k < N; k++)
		TEST_CHECK(!pipe(to[k]) && !pipe(from[k]), "pipe: %s", strerror(errno));
	TEST_CHECK(!pipe(ready), "pipe: %s", strerror(errno));
	pids[P] = spawn(false, run_p);
	TEST_CHECK(pids[P] > 0, "fork: %s", strerror(errno));
	for (int i = A; i <= D; i++) {
		int32_t r[2];
		TEST_CHECK(test_read_within(ready[0], r, sizeof(r), 5000) == 0 && r[0] >= A &&
				   r[0] < N,
			   "the tasks did not start");
		pids[r[0]] = r[1];
	}
	for (int k = 0; k < N; k++) {
		TEST_CHECK(ask(k) == 0, "%s (pid %d) does not answer", name[k], pids[k]);
		TEST_CHECK(test_proc_ids(pids[k], &ids[k]) == 0, "%s: /proc", name[k]);
	}
	TEST_CHECK(ids[B].ppid == pids[P] && ids[C].sid == pids[A] && ids[C].ppid == pids[B] &&
			   ids[B].sid == pids[B] && ids[D].sid == pids[B],
		   "unexpected shape: B parent %d session %d, C parent %d session %d", ids[B].ppid,
		   ids[B].sid, ids[C].ppid, ids[C].sid);
	test_ready();
	if (test_sabotage())
		TEST_CHECK(!kill(pids[D], SIGKILL), "kill: %s", strerror(errno));
	test_wait();

	for (int k = 0; k < N; k++) {
		TEST_CHECK(test_proc_ids(pids[k], &now) == 0, "%s (pid %d) is gone", name[k], pids[k]);
		TEST_CHECK(now.ppid == ids[k].ppid && now.pgid == ids[k].pgid &&
				   now.sid == ids[k].sid && now.state != 'Z',
			   "%s: parent %d group %d session %d state %c, was %d %d %d", name[k],
			   now.ppid, now.pgid, now.sid, now.state, ids[k].ppid, ids[k].pgid,
			   ids[k].sid);
		TEST_CHECK(ask(k) == 0, "%s (pid %d) does not answer", name[k], pids[k]);
	}
	for (int k = 0; k < N; k++)
		kill(pids[k], SIGKILL);
	for (int k = 0; k < N; k++) /* (the others come to R, the subreaper, once P or B is gone) */
		TEST_CHECK(test_reap(pids[k], false, 10) >= 0, "%s (pid %d) not reaped", name[k],
			   pids[k]);
	test_pass();
}
