// stasis-test: timeout=30 needs=root
/* A pty pair of a devpts instance of the tree's own mount namespace held by two
 * processes (refused at dump before): the root unshares a mount namespace, mounts a
 * devpts instance under the test's directory and opens a pair; its child C makes a
 * session whose controlling terminal is the slave, with C's group in the foreground, and
 * answers the lines it reads from it when the root tells it to over a pipe. A line is
 * typed into the master before the dump and waits in the slave's input. After the
 * restore: the pair is the namespace's instance's at the same index, still C's
 * controlling terminal with C's group in the foreground, the waiting line reaches C and
 * its answer the master, and the pair goes on talking. */
#include "lib.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

static pid_t child = -1;

static void expect_read(int fd, const char *want, const char *what)
{
	char buf[128];
	size_t len = strlen(want), got = 0;
	while (got < len) {
		struct pollfd p = { .fd = fd, .events = POLLIN };
		ssize_t n = poll(&p, 1, 3000) == 1 ? read(fd, buf + got, sizeof(buf) - got) : -1;
		if (n <= 0) {
			kill(child, SIGKILL);
			test_fail("%s: read after %zu bytes: %s", what, got,
				  n < 0 ? strerror(errno) : "EOF");
		}
		got += (size_t)n;
	}
	if (got != len || memcmp(buf, want, len)) {
		kill(child, SIGKILL);
		test_fail("%s: read %.*s, expected %s", what, (int)got, buf, want);
	}
}

/* C: a session on the slave @s, its group in the foreground; on each byte from @go, a
 * line of the slave answered. */
static __attribute__((noreturn)) void session(int s, int go)
{
	char line[64];
	if (setsid() < 0 || ioctl(s, TIOCSCTTY, 0) < 0 || tcsetpgrp(s, getpid()) < 0)
		_exit(2);
	for (;;) {
		char c;
		if (read(go, &c, 1) != 1)
			_exit(0);
		ssize_t n = read(s, line, sizeof(line) - 1);
		if (n <= 0)
			_exit(3);
		line[n] = 0;
		line[strcspn(line, "\n")] = 0;
		dprintf(s, "got:%s\n", line);
	}
}

int main(int argc, char **argv)
{
	char cwd[PATH_MAX - 64], pts[PATH_MAX];
	int idx = -1, go[2];

	test_init(argc, argv);
	TEST_CHECK(getcwd(cwd, sizeof(cwd)), "getcwd: %s", strerror(errno));
	snprintf(pts, sizeof(pts), "%s/pts", cwd);
	int m, s;
	test_devpts_pair(pts, &m, &s, &idx);
	TEST_CHECK(!pipe(go), "pipe: %s", strerror(errno));
	child = fork();
	TEST_CHECK(child >= 0, "fork: %s", strerror(errno));
	if (!child) {
		close(m);
		close(go[1]);
		session(s, go[0]);
	}
	close(go[0]);
	close(s); /* (the slave is C's alone now) */
	/* C's session and foreground group in place, a line waiting for it */
	for (int i = 0; i < 100 && tcgetpgrp(m) != child; i++)
		test_sleep_ms(10);
	TEST_CHECK(tcgetpgrp(m) == child, "C's group is not in the foreground (%d)", tcgetpgrp(m));
	TEST_CHECK(write(m, "typed\n", 6) == 6, "write: %s", strerror(errno));
	test_sleep_ms(50);
	test_ready();
	test_wait();

	if (test_sabotage())
		TEST_CHECK(write(m, "x", 1) == 1, "sabotage");
	int n = -1;
	TEST_CHECK(!ioctl(m, TIOCGPTN, &n) && n == idx, "index %d, was %d", n, idx);
	struct stat a, b;
	TEST_CHECK(!fstat(m, &a) && !stat(pts, &b) && a.st_dev == b.st_dev,
		   "the master is not of the namespace's devpts instance");
	pid_t sid = -1;
	TEST_CHECK(!ioctl(m, TIOCGSID, &sid) && sid == child, "the pty's session is %d, not %d",
		   sid, child);
	TEST_CHECK(tcgetpgrp(m) == child, "foreground group %d, not %d", tcgetpgrp(m), child);
	TEST_CHECK(write(go[1], "1", 1) == 1, "go: %s", strerror(errno));
	expect_read(m, "got:typed\r\n", "the answer to the waiting line");
	TEST_CHECK(write(m, "again\n", 6) == 6 && write(go[1], "1", 1) == 1, "write: %s",
		   strerror(errno));
	expect_read(m, "got:again\r\n", "the answer to a new line");
	close(go[1]);
	int st = 0;
	TEST_CHECK(waitpid(child, &st, 0) == child && WIFEXITED(st) && !WEXITSTATUS(st),
		   "C ended with %#x", st);
	test_pass();
}
