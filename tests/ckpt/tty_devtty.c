// stasis-test: timeout=30
/* A session leader (the test itself, after setsid) whose controlling terminal is the
 * slave of a pty pair it holds, with /dev/tty open (its controlling terminal by name)
 * and the slave's fd closed: a single-process restore takes the terminal in the task's
 * own late stage. After the restore: /dev/tty is still open as /dev/tty, is the
 * controlling terminal (tty_nr, TIOCGSID), its foreground group is the task's, and what
 * is written to it comes out of the master and what is typed on the master is read
 * from it. */
#include "lib.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <termios.h>
#include <unistd.h>

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

int main(int argc, char **argv)
{
	test_init(argc, argv);
	TEST_CHECK(setsid() > 0, "setsid: %s", strerror(errno));
	int m = posix_openpt(O_RDWR | O_NOCTTY);
	TEST_CHECK(m >= 0 && !grantpt(m) && !unlockpt(m), "openpt: %s", strerror(errno));
	int s = open(ptsname(m), O_RDWR); /* the controlling terminal */
	TEST_CHECK(s >= 0, "open %s: %s", ptsname(m), strerror(errno));
	int tty = open("/dev/tty", O_RDWR);
	TEST_CHECK(tty >= 0, "open /dev/tty: %s", strerror(errno));
	close(s);
	struct termios t;
	TEST_CHECK(!tcgetattr(tty, &t), "tcgetattr: %s", strerror(errno));
	t.c_lflag &= ~(tcflag_t)ECHO;
	TEST_CHECK(!tcsetattr(tty, TCSANOW, &t), "tcsetattr: %s", strerror(errno));
	test_ready();
	test_wait();

	if (test_sabotage())
		(void)!write(tty, "!", 1);
	char p[64], l[64];
	snprintf(p, sizeof(p), "/proc/self/fd/%d", tty);
	ssize_t n = readlink(p, l, sizeof(l) - 1);
	l[n > 0 ? n : 0] = 0;
	TEST_CHECK(!strcmp(l, "/dev/tty"), "fd %d is %s", tty, l);
	pid_t sid = 0;
	TEST_CHECK(!ioctl(tty, TIOCGSID, &sid) && sid == getpid(), "TIOCGSID %d: %s", sid,
		   strerror(errno));
	TEST_CHECK(tcgetpgrp(tty) == getpgrp(), "foreground group %d, mine %d", tcgetpgrp(tty),
		   getpgrp());
	TEST_CHECK(write(tty, "out\n", 4) == 4, "write /dev/tty: %s", strerror(errno));
	expect_read(m, "out\r\n", "master");
	TEST_CHECK(write(m, "in\n", 3) == 3, "write master: %s", strerror(errno));
	expect_read(tty, "in\n", "/dev/tty");
	test_pass();
}
