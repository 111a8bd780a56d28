// stasis-test: timeout=60
/* Random process trees of sessions and groups. The root R (a child subreaper) grows
 * several trees of worker tasks from fixed seeds: a worker, told by R, forks a worker
 * (optionally with CLONE_PARENT, a sibling), calls setsid, moves into another worker's
 * group or a group of its own, turns child-subreaper on or off, or exits (reaped by its
 * parent, or left a zombie). Orphans go to the nearest subreaper; sessions and groups
 * lose their leaders. After the restore every worker has its parent, process group and
 * session again (read from /proc), every zombie is still a zombie of the same parent,
 * and every live worker still answers. STASIS_TEST_SEED=N grows one tree from seed N. */
#include "lib.h"

#include <errno.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#define MAX_W 144 /* workers over all trees */
#define PER_TREE 24 /* workers per tree */

enum op { OP_FORK, OP_SIBLING, OP_SETSID, OP_PGRP_OWN, OP_PGRP_JOIN, OP_REAPER_ON, OP_REAPER_OFF,
	  OP_EXIT_REAPED, OP_EXIT_ZOMBIE, OP_PING, OP_N };

enum wstate { W_FREE, W_LIVE, W_REAPED, W_ZOMBIE };

struct worker {
	pid_t pid;
	int state; /* enum wstate, written by R only */
	int cmd[2], ans[2];
	struct test_ids ids; /* before the checkpoint */
};

struct cmd {
	int op, arg;
};

static struct worker *w; /* shared: a worker reads pids of others (its group to join) */
static int nw;

/* every task reaps its own children that exited with status 2 (told to); a status 0 exit
 * stays a zombie */
static void on_chld(int sig)
{
	(void)sig;
	int saved = errno;
	for (int i = 0; i < nw; i++) {
		siginfo_t si = { 0 };
		if (w[i].pid > 0 &&
		    waitid(P_PID, (id_t)w[i].pid, &si, WEXITED | WNOHANG | WNOWAIT) == 0 &&
		    si.si_pid == w[i].pid && si.si_code == CLD_EXITED && si.si_status == 2)
			waitpid(w[i].pid, NULL, WNOHANG);
	}
	errno = saved;
}

static __attribute__((noreturn)) void worker_loop(int me);

static pid_t spawn(int id, bool sibling)
{
	pid_t pid = (pid_t)syscall(SYS_clone, SIGCHLD | (sibling ? CLONE_PARENT : 0), NULL, NULL,
				   NULL, 0L);
	if (pid == 0)
		worker_loop(id);
	return pid;
}

static int run_op(int me, const struct cmd *c)
{
	switch (c->op) {
	case OP_FORK:
	case OP_SIBLING: {
		pid_t pid = spawn(c->arg, c->op == OP_SIBLING);
		if (pid < 0)
			return errno;
		w[c->arg].pid = pid;
		return 0;
	}
	case OP_SETSID:
		return setsid() < 0 ? errno : 0;
	case OP_PGRP_OWN:
		return setpgid(0, 0) < 0 ? errno : 0;
	case OP_PGRP_JOIN:
		return setpgid(0, getpgid(w[c->arg].pid)) < 0 ? errno : 0;
	case OP_REAPER_ON:
	case OP_REAPER_OFF:
		return prctl(PR_SET_CHILD_SUBREAPER, c->op == OP_REAPER_ON, 0, 0, 0) < 0 ? errno : 0;
	case OP_EXIT_REAPED:
		_exit(2);
	case OP_EXIT_ZOMBIE:
		_exit(0);
	default:
		(void)me;
		return 0;
	}
}

static __attribute__((noreturn)) void worker_loop(int me)
{
	struct cmd c;
	/* keep only its own ends and the pipes of the workers it may still fork (later ones
	 * of its tree): thousands of fds would make the checkpoint slow for nothing */
	int end = (me / PER_TREE + 1) * PER_TREE;
	for (int i = 0; i < nw; i++) {
		if (i > me && i < end)
			continue;
		if (i != me)
			close(w[i].cmd[0]), close(w[i].ans[1]);
		close(w[i].cmd[1]);
		close(w[i].ans[0]);
	}
	for (;;) {
		if (test_read_full(w[me].cmd[0], &c, sizeof(c)) != 0)
			_exit(3);
		int st = run_op(me, &c);
		if (test_write_full(w[me].ans[1], &st, sizeof(st)) != 0)
			_exit(3);
	}
}

/* 0: done (the answer, an errno, in *st; an exit answers nothing) */
static int tell(int id, int op, int arg, int *st)
{
	struct cmd c = { op, arg };
	*st = 0;
	if (test_write_full(w[id].cmd[1], &c, sizeof(c)) != 0)
		return -1;
	if (op == OP_EXIT_REAPED || op == OP_EXIT_ZOMBIE)
		return 0;
	return test_read_within(w[id].ans[0], st, sizeof(*st), 5000);
}

static int live_in(int lo, int hi, uint64_t *rng)
{
	int n = 0, pick[PER_TREE];
	for (int i = lo; i < hi; i++)
		if (w[i].state == W_LIVE)
			pick[n++] = i;
	return n ? pick[test_xorshift64(rng) % (uint64_t)n] : -1;
}

/* grows workers [lo, lo + PER_TREE) from @seed; the first is R's child */
static void grow(int lo, uint64_t seed)
{
	static const int weight[OP_N] = { 10, 5, 6, 3, 3, 5, 2, 3, 2, 0 };
	uint64_t rng = seed * 0x9E3779B97F4A7C15ull + 1;
	int next = lo, st;

	w[next].pid = spawn(next, false);
	if (w[next].pid < 0)
		test_fail("fork: %s", strerror(errno));
	w[next++].state = W_LIVE;
	for (int steps = 0; steps < 400 && next < lo + PER_TREE; steps++) {
		int op = test_pick_weighted(&rng, weight, OP_N);
		int who = live_in(lo, next, &rng);
		if (who < 0)
			break;
		int arg = 0;
		if (op == OP_FORK || op == OP_SIBLING)
			arg = next;
		else if (op == OP_PGRP_JOIN && (arg = live_in(lo, next, &rng)) < 0)
			continue;
		if (tell(who, op, arg, &st) != 0)
			test_fail("worker %d did not answer op %d", who, op);
		if (op == OP_FORK || op == OP_SIBLING) {
			if (st)
				test_fail("worker %d: fork: %s", who, strerror(st));
			w[next++].state = W_LIVE;
		} else if (op == OP_EXIT_REAPED || op == OP_EXIT_ZOMBIE) {
			w[who].state = op == OP_EXIT_REAPED ? W_REAPED : W_ZOMBIE;
		}
	}
	if (next > nw)
		nw = next;
}

/* the ids of every worker settle (orphans are given to their reapers asynchronously, a
 * reaped worker disappears once its parent's handler ran) */
static void record(void)
{
	for (int tries = 0; tries < 500; tries++) {
		bool settled = true;
		for (int i = 0; i < nw; i++) {
			struct test_ids x;
			if (w[i].state == W_FREE)
				continue;
			int r = test_proc_ids(w[i].pid, &x);
			if (w[i].state == W_REAPED) {
				settled &= r != 0;
				continue;
			}
			if (r != 0)
				test_fail("worker %d (pid %d) is gone before the checkpoint", i, w[i].pid);
			settled &= w[i].state == W_ZOMBIE ? x.state == 'Z' : x.state != 'Z';
			w[i].ids = x;
		}
		if (settled) {
			for (int i = 0; i < nw; i++)
				if (w[i].state == W_LIVE || w[i].state == W_ZOMBIE)
					test_msg("worker %d: pid %d parent %d group %d session %d %c", i,
						 w[i].pid, w[i].ids.ppid, w[i].ids.pgid, w[i].ids.sid,
						 w[i].ids.state);
			return;
		}
		test_sleep_ms(10);
	}
	test_fail("the trees did not settle");
}

int main(int argc, char **argv)
{
	static const uint64_t seeds[] = { 2, 5, 11, 15, 24, 26 };
	uint64_t one = 0;
	const char *env = getenv("STASIS_TEST_SEED");
	int ntrees = env ? 1 : (int)(sizeof(seeds) / sizeof(seeds[0]));

	test_init(argc, argv);
	if (env)
		one = strtoull(env, NULL, 10);
	if (prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) < 0)
		test_fail("PR_SET_CHILD_SUBREAPER: %s", strerror(errno));
	w = mmap(NULL, sizeof(*w) * MAX_W, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1,
		 0);
	if (w == MAP_FAILED)
		test_fail("mmap: %s", strerror(errno));
	nw = ntrees * PER_TREE;
	for (int i = 0; i < nw; i++)
		if (pipe(w[i].cmd) < 0 || pipe(w[i].ans) < 0)
			test_fail("pipe: %s", strerror(errno));
	struct sigaction sa = { .sa_handler = on_chld, .sa_flags = SA_RESTART | SA_NOCLDSTOP };
	sigemptyset(&sa.sa_mask);
	if (sigaction(SIGCHLD, &sa, NULL) < 0)
		test_fail("sigaction: %s", strerror(errno));
	for (int t = 0; t < ntrees; t++)
		grow(t * PER_TREE, env ? one : seeds[t]);
	record();
	test_ready();
	test_wait();

	int bad = 0, sabotaged = 0;
	for (int i = 0; i < nw; i++) {
		struct test_ids now;
		if (w[i].state != W_LIVE && w[i].state != W_ZOMBIE)
			continue;
		if (test_proc_ids(w[i].pid, &now)) {
			test_msg("worker %d (pid %d) is gone after the restore", i, w[i].pid);
			bad++;
			continue;
		}
		if (test_sabotage() && !sabotaged++)
			now.ppid = 0;
		if (now.ppid != w[i].ids.ppid || now.pgid != w[i].ids.pgid ||
		    now.sid != w[i].ids.sid || (now.state == 'Z') != (w[i].state == W_ZOMBIE)) {
			test_msg("worker %d (pid %d): parent %d group %d session %d state %c, was "
				 "%d %d %d %c", i, w[i].pid, now.ppid, now.pgid, now.sid, now.state,
				 w[i].ids.ppid, w[i].ids.pgid, w[i].ids.sid, w[i].ids.state);
			bad++;
		}
	}
	for (int i = 0; i < nw && !bad; i++) {
		int st;
		if (w[i].state == W_LIVE && (tell(i, OP_PING, 0, &st) != 0 || st != 0)) {
			test_msg("worker %d does not answer after the restore", i);
			bad++;
		}
	}
	/* the end: every live worker killed; orphans come to R, a subreaper */
	for (int i = 0; i < nw; i++)
		if (w[i].state == W_LIVE)
			kill(w[i].pid, SIGKILL);
	sa.sa_handler = SIG_DFL;
	sigaction(SIGCHLD, &sa, NULL);
	for (int tries = 0; tries < 1000; tries++) {
		if (waitpid(-1, NULL, WNOHANG) < 0 && errno == ECHILD)
			break;
		test_sleep_ms(5);
	}
	if (bad)
		test_fail("%d workers differ after the restore", bad);
	test_pass();
}
