// stasis-test: timeout=60
/* Sessions, process groups and zombies of a process tree:
 *   root
 *   +- S   setsid(): leader of a new session and group
 *   |  +- S1  in S's session and group
 *   |  +- S2  setpgid(0, 0): its own group inside S's session
 *   +- G   setpgid(0, 0): leader of a group in the root's session
 *   |  +- G1  in G's group
 *   +- Z7  exited with status 7, not reaped (a zombie)
 *   +- ZU  killed by SIGUSR1, not reaped (a zombie)
 * After the restore the root reads /proc/PID/stat of each: state, ppid, pgrp, session as
 * before; each live process checks getpid/getppid/getpgrp/getsid itself on SIGTERM; and
 * waitpid() on the zombies returns exit 7 and "killed by SIGUSR1". */
#include "lib.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

enum { S, S1, S2, G, G1, Z7, ZU, N };
static const char *const names[N] = { "S", "S1", "S2", "G", "G1", "Z7", "ZU" };

struct ids {
	pid_t pid, ppid, pgrp, sid;
	char state;
};

static int ready_pipe[2];

static int read_stat(pid_t pid, struct ids *out)
{
	char path[64], buf[512], *p;
	FILE *f;
	size_t n;
	int ppid, pgrp, sid;

	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	f = fopen(path, "re");
	if (!f)
		return -1;
	n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = '\0';
	p = strrchr(buf, ')');
	if (!p || sscanf(p + 2, "%c %d %d %d", &out->state, &ppid, &pgrp, &sid) != 4)
		return -1;
	out->pid = pid;
	out->ppid = ppid;
	out->pgrp = pgrp;
	out->sid = sid;
	return 0;
}

static void say_ready(void)
{
	if (write(ready_pipe[1], "r", 1) != 1)
		_exit(90);
}

/* A live member: waits for SIGTERM, forwards it to its children, checks its own ids and
 * collects the children's verdicts. Exit 0 only if everything matched. */
static __attribute__((noreturn)) void member(const pid_t *kids, int nkids)
{
	pid_t pid = getpid(), ppid = getppid(), pgrp = getpgrp(), sid = getsid(0);
	int bad = 0, i, st;

	close(ready_pipe[0]);
	say_ready();
	close(ready_pipe[1]);
	test_wait();
	alarm(20);
	if (getpid() != pid || getppid() != ppid || getpgrp() != pgrp || getsid(0) != sid) {
		test_msg("pid %d: pid/ppid/pgrp/sid %d/%d/%d/%d, expected %d/%d/%d/%d", (int)pid,
			 (int)getpid(), (int)getppid(), (int)getpgrp(), (int)getsid(0), (int)pid,
			 (int)ppid, (int)pgrp, (int)sid);
		bad = 1;
	}
	for (i = 0; i < nkids; i++)
		kill(kids[i], SIGTERM);
	for (i = 0; i < nkids; i++) {
		pid_t w;

		do
			w = waitpid(kids[i], &st, 0);
		while (w < 0 && errno == EINTR);
		if (w != kids[i] || !WIFEXITED(st) || WEXITSTATUS(st) != 0) {
			test_msg("pid %d: child %d: waitpid %d status %#x", (int)pid, (int)kids[i],
				 (int)w, st);
			bad = 1;
		}
	}
	_exit(bad);
}

static pid_t spawn(void (*fn)(void))
{
	pid_t p = fork();

	if (p < 0) {
		test_msg("fork: %s", strerror(errno));
		_exit(91);
	}
	if (p == 0)
		fn();
	return p;
}

static void run_s1(void)
{
	member(NULL, 0);
}

static void run_s2(void)
{
	if (setpgid(0, 0) < 0)
		_exit(92);
	member(NULL, 0);
}

static void run_s(void)
{
	pid_t kids[2];

	if (setsid() < 0)
		_exit(93);
	kids[0] = spawn(run_s1);
	kids[1] = spawn(run_s2);
	member(kids, 2);
}

static void run_g1(void)
{
	member(NULL, 0);
}

static void run_g(void)
{
	pid_t kid;

	if (setpgid(0, 0) < 0)
		_exit(94);
	kid = spawn(run_g1);
	member(&kid, 1);
}

static void run_z7(void)
{
	_exit(7);
}

static void run_zu(void)
{
	signal(SIGUSR1, SIG_DFL);
	raise(SIGUSR1);
	_exit(95);
}

int main(int argc, char **argv)
{
	static void (*const fns[N])(void) = { run_s, NULL, NULL, run_g, NULL, run_z7, run_zu };
	struct ids before[N], after[N], root_before, root_after;
	pid_t pids[N] = { 0 };
	char c;
	int i, st, got;

	test_init(argc, argv);
	if (pipe(ready_pipe) < 0)
		test_fail("pipe: %s", strerror(errno));
	for (i = 0; i < N; i++)
		if (fns[i])
			pids[i] = spawn(fns[i]);
	close(ready_pipe[1]);
	/* S, S1, S2, G, G1 each say ready once their ids are set */
	for (got = 0; got < 5; got++)
		TEST_CHECK(read(ready_pipe[0], &c, 1) == 1, "a member died before ready");
	close(ready_pipe[0]);
	/* the grandchildren's pids from /proc/PID/task/PID/children of S and G */
	for (i = 0; i < N; i++) {
		char path[96], buf[256];
		FILE *f;
		int a = 0, b = 0, n;

		if (i != S && i != G)
			continue;
		snprintf(path, sizeof(path), "/proc/%d/task/%d/children", (int)pids[i],
			 (int)pids[i]);
		f = fopen(path, "re");
		TEST_CHECK(f != NULL, "%s: %s", path, strerror(errno));
		n = fgets(buf, sizeof(buf), f) ? sscanf(buf, "%d %d", &a, &b) : 0;
		fclose(f);
		TEST_CHECK(n == (i == S ? 2 : 1), "%s has %d children", names[i], n);
		if (i == S) {
			/* S1 keeps S's group, S2 has its own */
			struct ids x;

			TEST_CHECK(read_stat(a, &x) == 0, "stat of %d", a);
			pids[S1] = x.pgrp == a ? b : a;
			pids[S2] = x.pgrp == a ? a : b;
		} else {
			pids[G1] = a;
		}
	}
	/* wait until both zombies are zombies */
	for (i = 0; i < 500; i++) {
		TEST_CHECK(read_stat(pids[Z7], &before[Z7]) == 0 &&
				   read_stat(pids[ZU], &before[ZU]) == 0,
			   "a zombie disappeared");
		if (before[Z7].state == 'Z' && before[ZU].state == 'Z')
			break;
		test_sleep_ms(10);
	}
	for (i = 0; i < N; i++)
		TEST_CHECK(read_stat(pids[i], &before[i]) == 0, "stat of %s (%d)", names[i],
			   (int)pids[i]);
	TEST_CHECK(read_stat(getpid(), &root_before) == 0, "stat of the root");
	/* the layout is what the test means */
	TEST_CHECK(before[S].sid == pids[S] && before[S].pgrp == pids[S], "S is no session leader");
	TEST_CHECK(before[S1].sid == pids[S] && before[S1].pgrp == pids[S], "S1 not in S's group");
	TEST_CHECK(before[S2].sid == pids[S] && before[S2].pgrp == pids[S2], "S2 not its own group");
	TEST_CHECK(before[G].sid == root_before.sid && before[G].pgrp == pids[G], "G layout");
	TEST_CHECK(before[G1].sid == root_before.sid && before[G1].pgrp == pids[G], "G1 layout");
	TEST_CHECK(before[Z7].state == 'Z' && before[ZU].state == 'Z', "the zombies are not zombies");
	test_ready();
	test_wait();

	if (test_sabotage())
		waitpid(pids[Z7], &st, 0); /* reaped too early */
	TEST_CHECK(read_stat(getpid(), &root_after) == 0, "stat of the root");
	for (i = 0; i < N; i++) {
		const struct ids *b = &before[i], *a = &after[i];

		TEST_CHECK(read_stat(pids[i], &after[i]) == 0, "%s (pid %d) is gone", names[i],
			   (int)pids[i]);
		TEST_CHECK(a->state == 'Z' || a->state == 'S' || a->state == 'R',
			   "%s (pid %d) in state %c", names[i], (int)pids[i], a->state);
		TEST_CHECK((a->state == 'Z') == (b->state == 'Z'), "%s (pid %d): state %c, was %c",
			   names[i], (int)pids[i], a->state, b->state);
		TEST_CHECK(a->ppid == b->ppid, "%s (pid %d): ppid %d, was %d", names[i], (int)pids[i],
			   (int)a->ppid, (int)b->ppid);
		/* a member in the root's (outside) session or group follows the restored root */
		TEST_CHECK(a->pgrp == (b->pgrp == root_before.pgrp ? root_after.pgrp : b->pgrp),
			   "%s (pid %d): pgrp %d, was %d (root's %d -> %d)", names[i], (int)pids[i],
			   (int)a->pgrp, (int)b->pgrp, (int)root_before.pgrp, (int)root_after.pgrp);
		TEST_CHECK(a->sid == (b->sid == root_before.sid ? root_after.sid : b->sid),
			   "%s (pid %d): session %d, was %d (root's %d -> %d)", names[i],
			   (int)pids[i], (int)a->sid, (int)b->sid, (int)root_before.sid,
			   (int)root_after.sid);
	}
	if (root_after.sid != root_before.sid || root_after.pgrp != root_before.pgrp)
		test_msg("note: the root's session/group %d/%d -> %d/%d", (int)root_before.sid,
			 (int)root_before.pgrp, (int)root_after.sid, (int)root_after.pgrp);
	alarm(20);
	TEST_CHECK(waitpid(pids[Z7], &st, WNOHANG) == pids[Z7], "waitpid(Z7 %d): %s",
		   (int)pids[Z7], strerror(errno));
	TEST_CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 7, "Z7: status %#x, expected exit 7", st);
	TEST_CHECK(waitpid(pids[ZU], &st, WNOHANG) == pids[ZU], "waitpid(ZU %d): %s",
		   (int)pids[ZU], strerror(errno));
	TEST_CHECK(WIFSIGNALED(st) && WTERMSIG(st) == SIGUSR1,
		   "ZU: status %#x, expected killed by SIGUSR1", st);
	kill(pids[S], SIGTERM);
	kill(pids[G], SIGTERM);
	for (i = 0; i < 2; i++) {
		pid_t who = i ? pids[G] : pids[S], w;

		do
			w = waitpid(who, &st, 0);
		while (w < 0 && errno == EINTR);
		TEST_CHECK(w == who && WIFEXITED(st) && WEXITSTATUS(st) == 0,
			   "%s and its children: status %#x (see the log)", i ? "G" : "S", st);
	}
	test_pass();
}
