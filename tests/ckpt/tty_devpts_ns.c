// stasis-test: timeout=30 needs=root
/* A pty pair of a devpts instance of the task's own mount namespace (unshare(CLONE_NEWNS),
 * devpts mounted with newinstance under the test's directory; the master opened at its
 * ptmx, the slave at its pts/N), with data queued both ways and a window size. After
 * the restore: the master and slave paths are the same, the slave is a node of the
 * namespace's (rebuilt) devpts instance, not of the host's /dev/pts, the index is the
 * same, the window size is kept, the queued data comes out, and the pair still talks. */
#include "lib.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <termios.h>
#include <unistd.h>

static char pts[PATH_MAX - 32];

static void expect_read(int fd, const char *want, const char *what)
{
	char buf[128];
	size_t len = strlen(want), got = 0;
	while (got < len) {
		struct pollfd p = { .fd = fd, .events = POLLIN };
		ssize_t n = poll(&p, 1, 2000) == 1 ? read(fd, buf + got, sizeof(buf) - got) : -1;
		TEST_CHECK(n > 0, "%s: read after %zu bytes: %s", what, got,
			   n < 0 ? strerror(errno) : "EOF");
		got += (size_t)n;
	}
	TEST_CHECK(got == len && !memcmp(buf, want, len), "%s: read %.*s, expected %s", what,
		   (int)got, buf, want);
}

static void check_link(int fd, const char *want)
{
	char p[64], l[PATH_MAX];
	snprintf(p, sizeof(p), "/proc/self/fd/%d", fd);
	ssize_t n = readlink(p, l, sizeof(l) - 1);
	TEST_CHECK(n > 0, "readlink %s: %s", p, strerror(errno));
	l[n] = 0;
	TEST_CHECK(!strcmp(l, want), "fd %d is %s, was %s", fd, l, want);
}

int main(int argc, char **argv)
{
	char cwd[PATH_MAX - 64], ptmx[PATH_MAX + 8], slave[PATH_MAX + 16];
	struct winsize ws = { .ws_row = 12, .ws_col = 34 }, ws2;
	int idx = -1;

	test_init(argc, argv);
	TEST_CHECK(getcwd(cwd, sizeof(cwd)), "getcwd: %s", strerror(errno));
	snprintf(pts, sizeof(pts), "%s/pts", cwd);
	snprintf(ptmx, sizeof(ptmx), "%s/ptmx", pts);
	int m, s;
	test_devpts_pair(pts, &m, &s, &idx);
	snprintf(slave, sizeof(slave), "%s/%d", pts, idx);
	TEST_CHECK(!ioctl(m, TIOCSWINSZ, &ws), "TIOCSWINSZ: %s", strerror(errno));
	TEST_CHECK(write(m, "typed\n", 6) == 6, "write: %s", strerror(errno));
	TEST_CHECK(write(s, "shown\n", 6) == 6, "write: %s", strerror(errno));
	test_sleep_ms(50);
	test_ready();
	test_wait();

	if (test_sabotage()) {
		char c;
		(void)!read(s, &c, 1);
	}
	check_link(m, ptmx);
	check_link(s, slave);
	struct stat a, b, host;
	TEST_CHECK(!fstat(s, &a) && !stat(pts, &b) && a.st_dev == b.st_dev,
		   "the slave is not a node of the namespace's devpts");
	TEST_CHECK(stat("/dev/pts", &host) || host.st_dev != a.st_dev, "the slave is the host's");
	int n = -1;
	TEST_CHECK(!ioctl(m, TIOCGPTN, &n) && n == idx, "index %d, was %d", n, idx);
	TEST_CHECK(!ioctl(s, TIOCGWINSZ, &ws2) && ws2.ws_row == 12 && ws2.ws_col == 34,
		   "window size %ux%u", ws2.ws_row, ws2.ws_col);
	expect_read(s, "typed\n", "slave");
	expect_read(m, "shown\r\n", "master");
	TEST_CHECK(write(m, "again\n", 6) == 6, "write: %s", strerror(errno));
	expect_read(s, "again\n", "slave");
	test_pass();
}
