// stasis-test: timeout=180
/* A crowd of processes grown at random the way the reference suite grows its largest
 * session test: 341 unix socketpairs opened by the root R (a child subreaper) and
 * inherited by everyone, then commands drawn with lrand48 from its default seed (the same
 * tree every run): a worker forks a worker (half of the time with CLONE_PARENT), exits
 * and is reaped by its parent (status 2, reaped by the SIGCHLD handler every worker
 * inherits), exits and stays a zombie, turns child-subreaper on or off, or calls setsid,
 * until 341 workers were made (some 250 live and 25 zombies). After the restore every
 * live worker has its session again and still answers through its socketpair. (Each
 * worker keeps only the channels of itself and of the workers to come.) */
#include "lib.h"

#include <errno.h>
#include <sched.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

struct worker {
	pid_t pid, sid;
	int sk[2]; /* [0]: the worker's end, [1]: R's */
	int dead;
};

#define NW (8192 / sizeof(struct worker))

enum op { OP_FORK, OP_EXIT_REAPED, OP_EXIT, OP_REAPER, OP_SETSID, OP_PING, OP_N };
static const int weight[OP_PING] = { 10, 3, 1, 10, 7 };

struct cmd {
	int op, a1, a2;
};

static struct worker *w; /* shared by all */
static int nw, me;

/* The reference suite's draw: m in [0, 31), each op taking the weights in turn, where
 * m equal to a weight still picks that op (its weights act one apart). */
static int draw_op(void)
{
	int m = (int)(lrand48() % 31);
	for (int i = 0; i < OP_PING; i++) {
		if (m > weight[i]) {
			m -= weight[i];
			continue;
		}
		return i;
	}
	return -1;
}

static void on_chld(int sig, siginfo_t *si, void *uc)
{
	(void)sig;
	(void)uc;
	if (si->si_status == 2)
		waitpid(si->si_pid, NULL, WNOHANG);
}

static __attribute__((noreturn)) void serve(void);

static pid_t make(int id, bool sibling)
{
	pid_t pid = (pid_t)syscall(SYS_clone, SIGCHLD | (sibling ? CLONE_PARENT : 0), NULL, NULL,
				   NULL, 0L);
	if (pid == 0) {
		me = id;
		serve();
	}
	if (pid > 0)
		w[id].pid = pid;
	return pid;
}

static __attribute__((noreturn)) void serve(void)
{
	/* R's ends and the channels of the workers made before this one: not needed (the
	 * reference's workers keep all 682; bench/fdtree.py measures that, the crowd's
	 * 170000 fds made this test's state comparison alone take 24 s) */
	for (int i = 0; i < (int)NW; i++) {
		close(w[i].sk[1]);
		if (i < me)
			close(w[i].sk[0]);
	}
	for (;;) {
		struct cmd c;
		int sk = w[me].sk[0], st = 0;
		if (test_read_full(sk, &c, sizeof(c)))
			_exit(1);
		switch (c.op) {
		case OP_FORK:
			st = make(c.a1, c.a2) < 0 ? -1 : 0;
			break;
		case OP_REAPER:
			st = prctl(PR_SET_CHILD_SUBREAPER, c.a1, 0, 0, 0);
			break;
		case OP_SETSID:
			if (getsid(0) != getpid())
				st = setsid() < 0 ? -1 : 0;
			break;
		case OP_EXIT_REAPED:
		case OP_EXIT:
			w[me].dead = 1;
			shutdown(sk, SHUT_RDWR);
			_exit(c.op == OP_EXIT_REAPED ? 2 : 0);
		case OP_PING:
			break;
		}
		if (write(sk, &st, sizeof(st)) != sizeof(st))
			_exit(1);
	}
}

static int send_cmd(int id, int op, int arg)
{
	struct cmd c = { op, arg, 0 };
	int st = 0;
	if (op == OP_FORK) {
		c.a1 = nw++;
		c.a2 = arg;
	}
	if (test_write_full(w[id].sk[1], &c, sizeof(c)))
		return -errno;
	if (op == OP_EXIT || op == OP_EXIT_REAPED) { /* (its end shut down: it marked itself) */
		bool eof = test_read_within(w[id].sk[1], &st, sizeof(st), 5000) && w[id].dead;
		/* and its children given to their new reaper before the next command (a zombie
		 * or gone: exit_notify done), so that the tree is the same every run */
		struct test_ids ids;
		uint64_t end = test_now_ns() + 5000000000ull;
		while (eof && !test_proc_ids(w[id].pid, &ids) && ids.state != 'Z' &&
		       test_now_ns() < end)
			test_sleep_ms(1);
		return eof ? 0 : -EPROTO;
	}
	if (test_read_within(w[id].sk[1], &st, sizeof(st), 5000))
		return -ETIMEDOUT;
	return st;
}

static void grow(void)
{
	nw = 1;
	TEST_CHECK(make(0, false) > 0, "fork: %s", strerror(errno));
	while (nw < (int)NW) {
		int id, arg = (int)(lrand48() % 2), op = draw_op();
		if (op == OP_EXIT || op == OP_EXIT_REAPED || op == OP_REAPER) {
			if (nw == 1)
				continue;
			id = (int)(lrand48() % (nw - 1)) + 1;
		} else if (op == OP_FORK) {
			id = nw * 9 / 10 + (int)(lrand48() % nw / 10);
			while (w[id].dead)
				id--;
		} else {
			id = (int)(lrand48() % nw);
		}
		if (w[id].dead)
			continue;
		int r = send_cmd(id, op, arg);
		TEST_CHECK(r == 0, "worker %d: command %d: %d", id, op, r);
	}
}

int main(int argc, char **argv)
{
	test_init(argc, argv);
	TEST_CHECK(!prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0), "PR_SET_CHILD_SUBREAPER: %s",
		   strerror(errno));
	struct sigaction sa = { .sa_sigaction = on_chld,
				.sa_flags = SA_NOCLDSTOP | SA_SIGINFO | SA_RESTART };
	sigemptyset(&sa.sa_mask);
	sigaddset(&sa.sa_mask, SIGCHLD);
	TEST_CHECK(!sigaction(SIGCHLD, &sa, NULL), "sigaction: %s", strerror(errno));
	w = mmap(NULL, NW * sizeof(*w), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	TEST_CHECK(w != MAP_FAILED, "mmap: %s", strerror(errno));
	for (size_t i = 0; i < NW; i++)
		TEST_CHECK(!socketpair(AF_UNIX, SOCK_STREAM, 0, w[i].sk), "socketpair: %s",
			   strerror(errno));
	grow();
	int live = 0;
	for (int i = 0; i < nw; i++)
		if (!w[i].dead && w[i].pid > 0) {
			w[i].sid = getsid(w[i].pid);
			TEST_CHECK(w[i].sid > 0, "getsid(%d): %s", w[i].pid, strerror(errno));
			live++;
		}
	test_msg("%d workers made, %d live", nw, live);
	test_ready();
	if (test_sabotage())
		for (int i = nw - 1; i > 0; i--)
			if (!w[i].dead && w[i].pid > 0 && getsid(w[i].pid) != w[i].pid) {
				kill(w[i].pid, SIGKILL); /* one that answers no more */
				break;
			}
	test_wait();

	int bad = 0;
	for (int i = 0; i < nw; i++) {
		if (w[i].dead || w[i].pid <= 0)
			continue;
		pid_t sid = getsid(w[i].pid);
		if (sid != w[i].sid || send_cmd(i, OP_PING, 0)) {
			test_msg("worker %d (pid %d): session %d, was %d, or no answer", i, w[i].pid,
				 sid, w[i].sid);
			bad++;
		}
	}
	for (int i = 0; i < nw; i++)
		if (!w[i].dead && w[i].pid > 0)
			kill(w[i].pid, SIGKILL);
	uint64_t end = test_now_ns() + 30ull * 1000000000;
	while (test_now_ns() < end) { /* (orphans come to R once their reapers are gone) */
		pid_t p = waitpid(-1, NULL, WNOHANG);
		if (p < 0 && errno == ECHILD)
			break;
		if (p <= 0)
			test_sleep_ms(10);
	}
	TEST_CHECK(!bad, "%d of %d live workers changed session or do not answer", bad, live);
	test_pass();
}
