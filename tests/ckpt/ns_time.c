// stasis-test: timeout=30 needs=root
/* Time namespaces: the root unshares CLONE_NEWTIME, sets the monotonic clock 1000 s
 * ahead and boottime 2000 s ahead, and forks a child that lives in that namespace. After
 * restore the child's clocks are still ahead of the root's by those offsets. */
#include "lib.h"

#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#ifndef CLONE_NEWTIME
#define CLONE_NEWTIME 0x00000080
#endif

static double now(clockid_t c)
{
	struct timespec ts;
	clock_gettime(c, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
	int req[2], ans[2];
	test_init(argc, argv);
	if (unshare(CLONE_NEWTIME) < 0 || pipe(req) < 0 || pipe(ans) < 0)
		test_fail("setup: %s", strerror(errno));
	int fd = open("/proc/self/timens_offsets", O_WRONLY);
	const char *off = "monotonic 1000 0\nboottime 2000 0\n";
	if (fd < 0 || write(fd, off, strlen(off)) != (ssize_t)strlen(off))
		test_fail("timens_offsets: %s", strerror(errno));
	close(fd);
	pid_t c = fork();
	if (c == 0) {
		signal(SIGTERM, SIG_IGN);
		close(req[1]);
		close(ans[0]);
		char x;
		while (read(req[0], &x, 1) == 1) {
			double v[2] = { now(CLOCK_MONOTONIC), now(CLOCK_BOOTTIME) };
			if (write(ans[1], v, sizeof(v)) != sizeof(v))
				_exit(2);
		}
		_exit(0);
	}
	close(req[0]);
	close(ans[1]);
	char x = '?';
	double v[2] = { 0, 0 };
	/* one answer before ready: the child's setup is done when the runner looks at it */
	TEST_CHECK(write(req[1], &x, 1) == 1 && read(ans[0], v, sizeof(v)) == sizeof(v), "child");
	test_ready();
	test_wait();
	TEST_CHECK(write(req[1], &x, 1) == 1 && read(ans[0], v, sizeof(v)) == sizeof(v), "child");
	double dm = v[0] - now(CLOCK_MONOTONIC), db = v[1] - now(CLOCK_BOOTTIME);
	if (test_sabotage())
		dm = 0;
	TEST_CHECK(dm > 999 && dm < 1001, "monotonic offset is %.3f s, expected 1000", dm);
	TEST_CHECK(db > 1999 && db < 2001, "boottime offset is %.3f s, expected 2000", db);
	close(req[1]);
	int st;
	alarm(10);
	TEST_CHECK(waitpid(c, &st, 0) == c && WIFEXITED(st) && !WEXITSTATUS(st), "child %#x", st);
	test_pass();
}
