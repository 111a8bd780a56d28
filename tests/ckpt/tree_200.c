// stasis-test: timeout=240
/* A tree of 200 processes under the root: 10 children, each with 19 children of its own,
 * all sleeping in sigsuspend. The children report their pid and their grandchildren's
 * pids through a pipe; after the restore the root reads /proc/PID/stat of all 200: alive,
 * the right parent. Then SIGTERM goes down the tree: every process checks getpid() and
 * getppid() against the values from before the dump and exits 0; each child collects its
 * 19 verdicts and the root its 10. */
#include "lib.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define KIDS 10
#define GRANDKIDS 19

static pid_t tree[KIDS][1 + GRANDKIDS]; /* [i][0] the child, [i][1..] its children */

static int stat_of(pid_t pid, char *state, pid_t *ppid)
{
	char path[64], buf[512], *p;
	FILE *f;
	size_t n;
	int pp;

	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	f = fopen(path, "re");
	if (!f)
		return -1;
	n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = '\0';
	p = strrchr(buf, ')');
	if (!p || sscanf(p + 2, "%c %d", state, &pp) != 2)
		return -1;
	*ppid = pp;
	return 0;
}

static __attribute__((noreturn)) void grandchild(pid_t parent)
{
	pid_t self = getpid();

	test_wait();
	_exit(getpid() == self && getppid() == parent ? 0 : 1);
}

static __attribute__((noreturn)) void child(int out, pid_t root)
{
	pid_t self = getpid(), w, *mine = tree[0];
	int i, st, bad = 0;

	mine[0] = self;
	for (i = 1; i <= GRANDKIDS; i++) {
		mine[i] = fork();
		if (mine[i] < 0)
			_exit(100);
		if (mine[i] == 0) {
			close(out);
			grandchild(self);
		}
	}
	if (write(out, mine, sizeof(tree[0])) != sizeof(tree[0]))
		_exit(101);
	close(out);
	test_wait();
	alarm(60);
	if (getpid() != self || getppid() != root) {
		test_msg("child %d: pid %d ppid %d, expected ppid %d", (int)self, (int)getpid(),
			 (int)getppid(), (int)root);
		bad++;
	}
	for (i = 1; i <= GRANDKIDS; i++)
		kill(mine[i], SIGTERM);
	for (i = 1; i <= GRANDKIDS; i++) {
		do
			w = waitpid(mine[i], &st, 0);
		while (w < 0 && errno == EINTR);
		if (w != mine[i] || !WIFEXITED(st) || WEXITSTATUS(st) != 0) {
			test_msg("child %d: grandchild %d: waitpid %d status %#x", (int)self,
				 (int)mine[i], (int)w, st);
			bad++;
		}
	}
	_exit(bad > 99 ? 99 : bad);
}

static void check_all(const char *when)
{
	int i, j, n = 0;

	for (i = 0; i < KIDS; i++) {
		for (j = 0; j <= GRANDKIDS; j++) {
			pid_t pid = tree[i][j], want = j ? tree[i][0] : getpid(), ppid;
			char state;

			TEST_CHECK(stat_of(pid, &state, &ppid) == 0, "%s: pid %d is gone", when,
				   (int)pid);
			TEST_CHECK(state == 'S' || state == 'R', "%s: pid %d in state %c", when,
				   (int)pid, state);
			TEST_CHECK(ppid == want, "%s: pid %d has parent %d, expected %d", when,
				   (int)pid, (int)ppid, (int)want);
			n++;
		}
	}
	TEST_CHECK(n == KIDS * (1 + GRANDKIDS), "%s: %d processes checked", when, n);
}

int main(int argc, char **argv)
{
	pid_t root, pid, w;
	int p[2], i, st;

	test_init(argc, argv);
	root = getpid();
	if (pipe(p) < 0)
		test_fail("pipe: %s", strerror(errno));
	for (i = 0; i < KIDS; i++) {
		pid = fork();
		if (pid < 0)
			test_fail("fork: %s", strerror(errno));
		if (pid == 0) {
			close(p[0]);
			child(p[1], root);
		}
		/* one atomic write of 80 bytes per child */
		TEST_CHECK(read(p[0], tree[i], sizeof(tree[i])) == sizeof(tree[i]),
			   "child %d did not report", (int)pid);
		TEST_CHECK(tree[i][0] == pid, "child %d reported as %d", (int)pid, (int)tree[i][0]);
	}
	close(p[0]);
	close(p[1]);
	check_all("before ready");
	test_ready();
	test_wait();

	if (test_sabotage()) {
		kill(tree[3][7], SIGKILL);
		test_sleep_ms(100);
	}
	check_all("after restore");
	for (i = 0; i < KIDS; i++)
		kill(tree[i][0], SIGTERM);
	alarm(120);
	for (i = 0; i < KIDS; i++) {
		do
			w = waitpid(tree[i][0], &st, 0);
		while (w < 0 && errno == EINTR);
		TEST_CHECK(w == tree[i][0] && WIFEXITED(st) && WEXITSTATUS(st) == 0,
			   "child %d: status %#x (%d bad, see the log)", (int)tree[i][0], st,
			   WIFEXITED(st) ? WEXITSTATUS(st) : -1);
	}
	test_pass();
}
