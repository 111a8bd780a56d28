// stasis-test: timeout=90
/* A fork storm at the moment of the dump: 3 spawners (children of the root) fork
 * short-lived children in a loop without pause; every 4th of those forks a grandchild of
 * its own first. Each short-lived child checks its parent and exits with (n & 0x7f); the
 * spawner reaps it with waitpid and checks the pid and the status. Whatever state the
 * dump catches (running, exiting, zombie), after the restore every started child must be
 * reaped with its own status, the storm must go on (the iteration counts, asked through
 * pipes, keep growing) and no error may be counted. */
#include "lib.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define SPAWNERS 3
#define BEFORE_READY 200

struct report {
	uint64_t iterations, errors;
};

static int cmd[SPAWNERS][2], ans[SPAWNERS][2], ready_pipe[2];

static int wr(int f, const void *buf, size_t len)
{
	return write(f, buf, len) == (ssize_t)len ? 0 : -1;
}

static int rd(int f, void *buf, size_t len)
{
	size_t got = 0;

	while (got < len) {
		ssize_t n = read(f, (char *)buf + got, len - got);

		if (n > 0)
			got += (size_t)n;
		else if (n == 0 || errno != EINTR)
			return -1;
	}
	return 0;
}

static __attribute__((noreturn)) void shortlived(pid_t parent, uint64_t n)
{
	if (n % 4 == 0) {
		pid_t g = fork(), w;
		int st;

		if (g == 0)
			_exit(getppid() == getpid() ? 1 : 5);
		if (g < 0)
			_exit(0xfe);
		do
			w = waitpid(g, &st, 0);
		while (w < 0 && errno == EINTR);
		if (w != g || !WIFEXITED(st) || WEXITSTATUS(st) != 5)
			_exit(0xfd);
	}
	_exit(getppid() == parent ? (int)(n & 0x7f) : 0xff);
}

static __attribute__((noreturn)) void spawner(int k, pid_t root)
{
	struct report r = { 0, 0 };
	pid_t self = getpid(), pid, w;
	struct pollfd pfd;
	char c;
	int st;

	close(cmd[k][1]);
	close(ans[k][0]);
	close(ready_pipe[0]);
	pfd.fd = cmd[k][0];
	pfd.events = POLLIN;
	for (;;) {
		pid = fork();
		if (pid == 0)
			shortlived(self, r.iterations);
		if (pid < 0) {
			r.errors++;
			test_msg("spawner %d: fork: %s", k, strerror(errno));
			test_sleep_ms(10);
			continue;
		}
		do
			w = waitpid(pid, &st, 0);
		while (w < 0 && errno == EINTR);
		if (w != pid || !WIFEXITED(st) || WEXITSTATUS(st) != (int)(r.iterations & 0x7f)) {
			r.errors++;
			test_msg("spawner %d: child %d (#%llu): waitpid %d status %#x", k, (int)pid,
				 (unsigned long long)r.iterations, (int)w, st);
		}
		r.iterations++;
		if (r.iterations == BEFORE_READY) {
			if (wr(ready_pipe[1], "r", 1) < 0)
				_exit(2);
			close(ready_pipe[1]);
		}
		pfd.revents = 0;
		if (poll(&pfd, 1, 0) == 1) {
			if (rd(cmd[k][0], &c, 1) < 0)
				_exit(3);
			if (getpid() != self || getppid() != root) {
				r.errors++;
				test_msg("spawner %d: pid %d ppid %d", k, (int)getpid(), (int)getppid());
			}
			if (wr(ans[k][1], &r, sizeof(r)) < 0)
				_exit(4);
			if (c == 'q')
				_exit(0);
		}
	}
}

static struct report ask(int k, char c)
{
	struct pollfd pfd = { .fd = ans[k][0], .events = POLLIN };
	struct report r;

	TEST_CHECK(wr(cmd[k][1], &c, 1) == 0, "spawner %d: command: %s", k, strerror(errno));
	TEST_CHECK(poll(&pfd, 1, 5000) == 1, "spawner %d: no answer within 5 s", k);
	TEST_CHECK(rd(ans[k][0], &r, sizeof(r)) == 0, "spawner %d does not answer", k);
	return r;
}

int main(int argc, char **argv)
{
	pid_t pids[SPAWNERS], root, w;
	struct report r1[SPAWNERS], r2, r3;
	int k, st;
	char c;

	test_init(argc, argv);
	signal(SIGPIPE, SIG_IGN);
	root = getpid();
	if (pipe(ready_pipe) < 0)
		test_fail("pipe: %s", strerror(errno));
	for (k = 0; k < SPAWNERS; k++) {
		if (pipe(cmd[k]) < 0 || pipe(ans[k]) < 0)
			test_fail("pipe: %s", strerror(errno));
		pids[k] = fork();
		if (pids[k] < 0)
			test_fail("fork: %s", strerror(errno));
		if (pids[k] == 0)
			spawner(k, root);
		close(cmd[k][0]);
		close(ans[k][1]);
	}
	close(ready_pipe[1]);
	for (k = 0; k < SPAWNERS; k++)
		TEST_CHECK(rd(ready_pipe[0], &c, 1) == 0, "a spawner died before ready");
	close(ready_pipe[0]);
	test_ready();
	test_wait();

	if (test_sabotage())
		kill(pids[1], SIGSTOP); /* the storm stops in one spawner */
	alarm(30);
	for (k = 0; k < SPAWNERS; k++)
		r1[k] = ask(k, 'p');
	test_sleep_ms(500);
	for (k = 0; k < SPAWNERS; k++) {
		r2 = ask(k, 'p');
		TEST_CHECK(r2.iterations >= r1[k].iterations + 10,
			   "spawner %d: %llu -> %llu iterations in 500 ms: the storm stopped", k,
			   (unsigned long long)r1[k].iterations, (unsigned long long)r2.iterations);
		r3 = ask(k, 'q');
		TEST_CHECK(r3.errors == 0, "spawner %d: %llu errors (see the log)", k,
			   (unsigned long long)r3.errors);
		test_msg("spawner %d: %llu iterations, %llu since the first probe after SIGTERM", k,
			 (unsigned long long)r3.iterations,
			 (unsigned long long)(r3.iterations - r1[k].iterations));
		do
			w = waitpid(pids[k], &st, 0);
		while (w < 0 && errno == EINTR);
		TEST_CHECK(w == pids[k] && WIFEXITED(st) && WEXITSTATUS(st) == 0,
			   "spawner %d: status %#x", k, st);
	}
	test_pass();
}
