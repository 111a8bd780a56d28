// stasis-test: timeout=30
/* Two pty pairs opened by the task (/dev/ptmx and /dev/pts/N):
 *   - pair A, in use: non-default termios (canonical without echo, ICRNL, VEOL '#',
 *     9600 baud, ONLCR), a window size with pixels, packet mode on the master, the slave
 *     exclusive (TIOCEXCL); queued for the slave: two complete lines, a line ended by the
 *     EOL character and a partial line; queued for the master: output written by the
 *     slave side (translated by ONLCR);
 *   - pair B: its slave opened and closed again (the master reads EIO), then locked;
 *   - pair C: a master alone (posix_openpt, still locked, its slave never opened).
 * After the restore: same indices and paths, termios, window size, packet mode, lock
 * and exclusive states; the slave reads the lines one by one (canonical boundaries kept)
 * and not the partial one until its end is typed; the master reads the output (after the
 * packet-mode data byte); both still talk. Pair C's master still has nothing to read
 * (not EIO), is locked, and its slave opens once unlocked. */
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

#define INPUT "line one\rline two\nthree#part"
#define OUTPUT "hello\nworld"

static int open_pair(int *slave, int *index, int sflags)
{
	int m = posix_openpt(O_RDWR | O_NOCTTY);
	TEST_CHECK(m >= 0, "posix_openpt: %s", strerror(errno));
	TEST_CHECK(!grantpt(m) && !unlockpt(m), "unlockpt: %s", strerror(errno));
	TEST_CHECK(!ioctl(m, TIOCGPTN, index), "TIOCGPTN: %s", strerror(errno));
	char path[64];
	snprintf(path, sizeof(path), "/dev/pts/%d", *index);
	*slave = open(path, sflags | O_NOCTTY);
	TEST_CHECK(*slave >= 0, "open %s: %s", path, strerror(errno));
	return m;
}

static void expect_read(int fd, const char *want, size_t len, const char *what)
{
	char buf[256];
	struct pollfd p = { .fd = fd, .events = POLLIN };
	ssize_t n = poll(&p, 1, 2000) == 1 ? read(fd, buf, sizeof(buf)) : -1;
	TEST_CHECK(n == (ssize_t)len && len <= sizeof(buf) && !memcmp(buf, want, len),
		   "%s: read %zd bytes (%.*s), expected %zu (%s)", what, n, n > 0 ? (int)n : 0,
		   buf, len, want);
}

static void check_link(int fd, const char *want)
{
	char p[64], l[64];
	snprintf(p, sizeof(p), "/proc/self/fd/%d", fd);
	ssize_t n = readlink(p, l, sizeof(l) - 1);
	TEST_CHECK(n > 0, "readlink %s: %s", p, strerror(errno));
	l[n] = 0;
	TEST_CHECK(!strcmp(l, want), "fd %d is %s, was %s", fd, l, want);
}

int main(int argc, char **argv)
{
	int sa, sb, ia, ib, on = 1, x = 0;
	struct termios t, t2;
	struct winsize ws = { .ws_row = 37, .ws_col = 101, .ws_xpixel = 808, .ws_ypixel = 444 };
	struct winsize ws2;

	test_init(argc, argv);
	int ma = open_pair(&sa, &ia, O_RDWR);
	TEST_CHECK(!tcgetattr(sa, &t), "tcgetattr: %s", strerror(errno));
	t.c_lflag = ICANON | ISIG | IEXTEN;
	t.c_iflag = ICRNL;
	t.c_oflag = OPOST | ONLCR;
	t.c_cc[VEOL] = '#';
	cfsetispeed(&t, B9600);
	cfsetospeed(&t, B9600);
	TEST_CHECK(!tcsetattr(sa, TCSANOW, &t), "tcsetattr: %s", strerror(errno));
	TEST_CHECK(!ioctl(ma, TIOCSWINSZ, &ws), "TIOCSWINSZ: %s", strerror(errno));
	TEST_CHECK(!ioctl(ma, TIOCPKT, &on), "TIOCPKT: %s", strerror(errno));
	TEST_CHECK(!ioctl(sa, TIOCEXCL), "TIOCEXCL: %s", strerror(errno));
	TEST_CHECK(write(ma, INPUT, strlen(INPUT)) == (ssize_t)strlen(INPUT), "write input");
	TEST_CHECK(write(sa, OUTPUT, strlen(OUTPUT)) == (ssize_t)strlen(OUTPUT), "write output");
	test_sleep_ms(100); /* the line discipline processes the input */

	int mb = open_pair(&sb, &ib, O_RDONLY);
	close(sb);
	TEST_CHECK(!ioctl(mb, TIOCSPTLCK, &on), "TIOCSPTLCK: %s", strerror(errno));
	int mc = posix_openpt(O_RDWR | O_NOCTTY), ic = -1;
	TEST_CHECK(mc >= 0 && !ioctl(mc, TIOCGPTN, &ic), "pair C: %s", strerror(errno));
	char pa[32], pb[32];
	snprintf(pa, sizeof(pa), "/dev/pts/%d", ia);
	snprintf(pb, sizeof(pb), "/dev/pts/%d", ib);
	/* /dev/ptmx, or /dev/pts/ptmx where /dev/ptmx is a link to it (a container's) */
	char ptmx[64] = "";
	char lp[64];
	snprintf(lp, sizeof(lp), "/proc/self/fd/%d", ma);
	ssize_t pl = readlink(lp, ptmx, sizeof(ptmx) - 1);
	ptmx[pl > 0 ? pl : 0] = '\0';
	test_ready();
	test_wait();

	if (test_sabotage()) {
		char c;
		int fl = fcntl(sa, F_GETFL);
		fcntl(sa, F_SETFL, fl | O_NONBLOCK);
		(void)!read(sa, &c, 1);
		fcntl(sa, F_SETFL, fl);
	}
	int n = -1;
	TEST_CHECK(!ioctl(ma, TIOCGPTN, &n) && n == ia, "pair A index %d, was %d", n, ia);
	TEST_CHECK(!ioctl(mb, TIOCGPTN, &n) && n == ib, "pair B index %d, was %d", n, ib);
	check_link(sa, pa);
	check_link(ma, ptmx);
	TEST_CHECK(!tcgetattr(sa, &t2), "tcgetattr: %s", strerror(errno));
	TEST_CHECK(t2.c_lflag == t.c_lflag && t2.c_iflag == t.c_iflag && t2.c_oflag == t.c_oflag &&
			   t2.c_cflag == t.c_cflag && !memcmp(t2.c_cc, t.c_cc, sizeof(t.c_cc)) &&
			   cfgetospeed(&t2) == B9600,
		   "termios changed: lflag %o/%o iflag %o/%o oflag %o/%o cflag %o/%o", t2.c_lflag,
		   t.c_lflag, t2.c_iflag, t.c_iflag, t2.c_oflag, t.c_oflag, t2.c_cflag, t.c_cflag);
	TEST_CHECK(!ioctl(sa, TIOCGWINSZ, &ws2) && !memcmp(&ws, &ws2, sizeof(ws)),
		   "window size %ux%u (%ux%u px)", ws2.ws_row, ws2.ws_col, ws2.ws_xpixel,
		   ws2.ws_ypixel);
	TEST_CHECK(!ioctl(ma, TIOCGPKT, &x) && x, "packet mode off");
	TEST_CHECK(!ioctl(sa, TIOCGEXCL, &x) && x, "slave not exclusive");
	TEST_CHECK(!ioctl(ma, TIOCGPTLCK, &x) && !x, "pair A locked");
	TEST_CHECK(!ioctl(mb, TIOCGPTLCK, &x) && x, "pair B not locked");
	/* the input, line by line: \r became \n (ICRNL), '#' ends a line (VEOL) */
	int fl = fcntl(sa, F_GETFL);
	fcntl(sa, F_SETFL, fl | O_NONBLOCK);
	expect_read(sa, "line one\n", 9, "first line");
	expect_read(sa, "line two\n", 9, "second line");
	expect_read(sa, "three#", 6, "EOL line");
	char c;
	errno = 0;
	TEST_CHECK(read(sa, &c, 1) < 0 && errno == EAGAIN, "the partial line is readable (%s)",
		   strerror(errno));
	fcntl(sa, F_SETFL, fl);
	TEST_CHECK(write(ma, "ial\n", 4) == 4, "write: %s", strerror(errno));
	expect_read(sa, "partial\n", 8, "completed line");
	/* the output, with the packet-mode data byte, ONLCR applied at write time */
	expect_read(ma, "\0hello\r\nworld", 13, "output");
	TEST_CHECK(write(sa, "x\n", 2) == 2, "write: %s", strerror(errno));
	expect_read(ma, "\0x\r\n", 4, "new output");
	/* pair C: never opened */
	TEST_CHECK(!ioctl(mc, TIOCGPTN, &n) && n == ic, "pair C index %d, was %d", n, ic);
	TEST_CHECK(!ioctl(mc, TIOCGPTLCK, &x) && x, "pair C not locked");
	fl = fcntl(mc, F_GETFL);
	fcntl(mc, F_SETFL, fl | O_NONBLOCK);
	errno = 0;
	TEST_CHECK(read(mc, &c, 1) < 0 && errno == EAGAIN, "pair C master read: %s",
		   strerror(errno));
	fcntl(mc, F_SETFL, fl);
	TEST_CHECK(!unlockpt(mc), "unlockpt C: %s", strerror(errno));
	int sc = open(ptsname(mc), O_RDWR | O_NOCTTY);
	TEST_CHECK(sc >= 0 && write(sc, "c", 1) == 1, "pair C slave: %s", strerror(errno));
	expect_read(mc, "c", 1, "pair C output");
	/* pair B: the slave is gone */
	int ok = -1;
	fl = fcntl(mb, F_GETFL);
	fcntl(mb, F_SETFL, fl | O_NONBLOCK);
	errno = 0;
	ok = (int)read(mb, &c, 1);
	TEST_CHECK(ok < 0 && errno == EIO, "pair B master read: %d (%s), expected EIO", ok,
		   strerror(errno));
	test_pass();
}
