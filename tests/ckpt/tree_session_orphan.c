// stasis-test: timeout=30
/* Sessions that are neither a task's own nor its parent's. The root R is a child
 * subreaper. (1) L calls setsid and forks M, M forks T and exits: T, in L's session and
 * group, is reparented to R. (2) A forks E, then calls setsid: E stays in R's session and
 * group, its parent A leads a session of its own. After the restore every task has its
 * parent, process group and session again (read from /proc), T and E still answer, and
 * T's and E's exits are seen by R (E's once A is gone). */
#include "lib.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

/* a task that sleeps until SIGTERM and answers a byte on @in with one on @out */
static __attribute__((noreturn)) void echo_loop(int in, int out)
{
	char b;
	for (int fd = 3; fd < 64; fd++)
		if (fd != in && fd != out)
			close(fd);
	while (read(in, &b, 1) == 1)
		if (write(out, &b, 1) != 1)
			_exit(3);
	_exit(0);
}

static int pipes[2][2][2]; /* [task T/E][to, from][rd, wr] */

static int ask(int k)
{
	char b = 'x' + (char)k, r = 0;
	if (write(pipes[k][0][1], &b, 1) != 1 || test_read_within(pipes[k][1][0], &r, 1, 5000) != 0)
		return -1;
	return r == b ? 0 : -1;
}

int main(int argc, char **argv)
{
	pid_t l, a, t = 0, e = 0;
	int ready[2];

	test_init(argc, argv);
	if (prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) < 0)
		test_fail("PR_SET_CHILD_SUBREAPER: %s", strerror(errno));
	for (int k = 0; k < 2; k++)
		for (int d = 0; d < 2; d++)
			if (pipe(pipes[k][d]) < 0)
				test_fail("pipe: %s", strerror(errno));
	if (pipe(ready) < 0)
		test_fail("pipe: %s", strerror(errno));
	l = fork();
	if (l == 0) {
		setsid();
		pid_t m = fork();
		if (m == 0) {
			pid_t x = fork();
			if (x == 0)
				echo_loop(pipes[0][0][0], pipes[0][1][1]);
			if (write(ready[1], &x, sizeof(x)) != sizeof(x))
				_exit(4);
			_exit(0); /* T is orphaned: given to R */
		}
		waitpid(m, NULL, 0);
		for (;;)
			pause();
	}
	a = fork();
	if (a == 0) {
		pid_t x = fork();
		if (x == 0)
			echo_loop(pipes[1][0][0], pipes[1][1][1]);
		if (write(ready[1], &x, sizeof(x)) != sizeof(x))
			_exit(4);
		setsid(); /* E stays in R's session */
		for (;;)
			pause();
	}
	if (l < 0 || a < 0)
		test_fail("fork: %s", strerror(errno));
	for (int k = 0; k < 2; k++) {
		pid_t x;
		if (test_read_within(ready[0], &x, sizeof(x), 5000) != 0)
			test_fail("the grandchildren did not start");
		if (!t)
			t = x;
		else
			e = x;
	}
	/* which one came first is a race: T is the one in L's session */
	struct test_ids it, ie;
	for (int k = 0; k < 1000; k++) {
		if (test_proc_ids(t, &it) || test_proc_ids(e, &ie))
			test_fail("read /proc stat");
		if (it.sid == l || ie.sid == l)
			break;
		test_sleep_ms(10);
	}
	if (ie.sid == l) {
		pid_t x = t;
		t = e;
		e = x;
	}
	/* wait until T was reparented and A is a session leader */
	struct test_ids want[4];
	pid_t pids[4] = { l, a, t, e };
	for (int k = 0; k < 1000; k++) {
		for (int i = 0; i < 4; i++)
			if (test_proc_ids(pids[i], &want[i]))
				test_fail("read /proc stat");
		if (want[2].ppid == getpid() && want[1].sid == a)
			break;
		test_sleep_ms(10);
	}
	if (want[2].ppid != getpid() || want[2].sid != l || want[1].sid != a ||
	    want[3].sid != getsid(0) || want[3].ppid != a)
		test_fail("setup: T %d/%d/%d E %d/%d/%d", want[2].ppid, want[2].pgid, want[2].sid,
			  want[3].ppid, want[3].pgid, want[3].sid);
	test_ready();
	test_wait();

	for (int i = 0; i < 4; i++) {
		struct test_ids got;
		if (test_proc_ids(pids[i], &got))
			test_fail("pid %d is gone after the restore", pids[i]);
		if (test_sabotage() && i == 2)
			got.sid = 0;
		if (got.ppid != want[i].ppid || got.pgid != want[i].pgid || got.sid != want[i].sid)
			test_fail("pid %d: parent %d group %d session %d, was %d %d %d", pids[i], got.ppid,
				  got.pgid, got.sid, want[i].ppid, want[i].pgid, want[i].sid);
	}
	if (ask(0) || ask(1))
		test_fail("T or E does not answer after the restore");
	/* (L and A hold copies of the pipes: they go first) */
	kill(l, SIGKILL);
	kill(a, SIGKILL);
	if (test_reap(l, false, 10) < 0 || test_reap(a, false, 10) < 0)
		test_fail("L or A not reaped");
	/* T's exit is seen by its parent, R; E's too, given to R once A is gone */
	close(pipes[0][0][1]);
	close(pipes[1][0][1]);
	if (test_reap(t, false, 10) != 0)
		test_fail("T did not exit to R");
	if (test_reap(e, false, 10) != 0)
		test_fail("E did not exit to R");
	test_pass();
}
