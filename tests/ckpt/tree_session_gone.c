// stasis-test: timeout=30
/* Sessions whose leader is gone (a daemon's double fork). The root R is a child
 * subreaper. L calls setsid, forks T1 and T2 and exits (R reaps it): T1 and T2, in L's
 * session, are given to R; T1 moved into a group of its own, T2 stays in L's group and
 * forks G there. After the restore every task has its parent, process group and session
 * again (read from /proc), L's pid is no process, T1, T2 and G still answer, T1's and T2's
 * exits are seen by R, G's by T2. */
#include "lib.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

static int pipes[3][2][2]; /* [T1, T2, G][to, from][rd, wr] */

/* answer a byte on pipes[k] with the same byte; a task with a child (T2) reaps it and
 * reports its status on the way back first */
static __attribute__((noreturn)) void echo_loop(int k, pid_t child)
{
	char b;
	for (int fd = 3; fd < 64; fd++)
		if (fd != pipes[k][0][0] && fd != pipes[k][1][1])
			close(fd);
	while (read(pipes[k][0][0], &b, 1) == 1) {
		if (b == 'w' && child > 0) { /* reap G: its exit is seen by T2 */
			int st = 0;
			pid_t w = waitpid(child, &st, 0);
			b = w == child && WIFEXITED(st) && WEXITSTATUS(st) == 0 ? 'W' : '!';
		}
		if (write(pipes[k][1][1], &b, 1) != 1)
			_exit(3);
	}
	_exit(0);
}

static int ask(int k, char b, char want)
{
	char r = 0;
	if (write(pipes[k][0][1], &b, 1) != 1 || test_read_within(pipes[k][1][0], &r, 1, 5000) != 0)
		return -1;
	return r == want ? 0 : -1;
}

int main(int argc, char **argv)
{
	int ready[2];
	pid_t l, got[3];

	test_init(argc, argv);
	if (prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) < 0)
		test_fail("PR_SET_CHILD_SUBREAPER: %s", strerror(errno));
	for (int k = 0; k < 3; k++)
		for (int d = 0; d < 2; d++)
			if (pipe(pipes[k][d]) < 0)
				test_fail("pipe: %s", strerror(errno));
	if (pipe(ready) < 0)
		test_fail("pipe: %s", strerror(errno));
	l = fork();
	if (l == 0) {
		if (setsid() < 0)
			_exit(5);
		pid_t t1 = fork();
		if (t1 == 0) {
			if (setpgid(0, 0) < 0)
				_exit(5);
			echo_loop(0, 0);
		}
		pid_t t2 = fork();
		if (t2 == 0) {
			pid_t g = fork();
			if (g == 0)
				echo_loop(2, 0);
			if (write(ready[1], &g, sizeof(g)) != sizeof(g))
				_exit(4);
			echo_loop(1, g);
		}
		pid_t ids[2] = { t1, t2 };
		if (t1 < 0 || t2 < 0 || write(ready[1], ids, sizeof(ids)) != sizeof(ids))
			_exit(4);
		_exit(0); /* T1 and T2 are orphaned: given to R */
	}
	if (l < 0)
		test_fail("fork: %s", strerror(errno));
	if (test_read_within(ready[0], got, sizeof(pid_t), 5000) != 0 ||
	    test_read_within(ready[0], got + 1, 2 * sizeof(pid_t), 5000) != 0)
		test_fail("the daemon's tasks did not start");
	/* the first message is G's pid or T1's and T2's, whichever came first */
	pid_t g, t1, t2;
	{
		pid_t a = got[0], b = got[1], c = got[2];
		struct test_ids x;
		/* G is the one whose parent is neither R nor L (T2) */
		if (test_proc_ids(a, &x) == 0 && x.ppid != l && x.ppid != getpid()) {
			g = a, t1 = b, t2 = c;
		} else {
			t1 = a, t2 = b, g = c;
		}
	}
	int st = 0;
	if (waitpid(l, &st, 0) != l || !WIFEXITED(st) || WEXITSTATUS(st))
		test_fail("L did not exit cleanly (status %#x)", st);
	struct test_ids want[3];
	pid_t pids[3] = { t1, t2, g };
	for (int k = 0; k < 1000; k++) {
		for (int i = 0; i < 3; i++)
			if (test_proc_ids(pids[i], &want[i]))
				test_fail("read /proc stat");
		if (want[0].ppid == getpid() && want[1].ppid == getpid() && want[0].pgid == t1)
			break;
		test_sleep_ms(10);
	}
	if (want[0].ppid != getpid() || want[1].ppid != getpid() || want[2].ppid != t2 ||
	    want[0].sid != l || want[1].sid != l || want[2].sid != l || want[0].pgid != t1 ||
	    want[1].pgid != l || want[2].pgid != l)
		test_fail("setup: T1 %d/%d/%d T2 %d/%d/%d G %d/%d/%d", want[0].ppid, want[0].pgid,
			  want[0].sid, want[1].ppid, want[1].pgid, want[1].sid, want[2].ppid,
			  want[2].pgid, want[2].sid);
	test_ready();
	test_wait();

	for (int i = 0; i < 3; i++) {
		struct test_ids now;
		if (test_proc_ids(pids[i], &now))
			test_fail("pid %d is gone after the restore", pids[i]);
		if (test_sabotage() && i == 1)
			now.sid = 0;
		if (now.ppid != want[i].ppid || now.pgid != want[i].pgid || now.sid != want[i].sid)
			test_fail("pid %d: parent %d group %d session %d, was %d %d %d", pids[i],
				  now.ppid, now.pgid, now.sid, want[i].ppid, want[i].pgid, want[i].sid);
	}
	if (kill(l, 0) == 0 || errno != ESRCH)
		test_fail("pid %d (the gone session leader) is a process after the restore", l);
	if (ask(0, 'a', 'a') || ask(1, 'b', 'b') || ask(2, 'c', 'c'))
		test_fail("T1, T2 or G does not answer after the restore");
	/* G's exit is seen by T2, T1's and T2's by R */
	close(pipes[2][0][1]);
	if (ask(1, 'w', 'W'))
		test_fail("T2 did not see G exit");
	close(pipes[0][0][1]);
	close(pipes[1][0][1]);
	if (test_reap(t1, false, 10) != 0 || test_reap(t2, false, 10) != 0)
		test_fail("T1 or T2 did not exit to R");
	test_pass();
}
