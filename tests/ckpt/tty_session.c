// stasis-test: timeout=40
/* Job control on a pty across a checkpoint. The root (a subreaper) holds the master of a
 * pty pair; its child S is a session leader whose controlling terminal is the slave
 * (setsid, then open without O_NOCTTY); S has two jobs, F (its own process group, the
 * terminal's foreground group) and B (its own group, in the background).
 * After the restore, each of S, F and B checks its session, its controlling terminal
 * (/proc/self/stat tty_nr) and the foreground group (tcgetpgrp: F's); then
 *   - F reads a line typed on the master (a foreground read);
 *   - B's read fails with EIO (background read, SIGTTIN ignored);
 *   - ^Z typed on the master stops F (SIGTSTP to the foreground group: S sees it stopped);
 *   - S puts B in the foreground ("fg"), and B reads the next line typed.
 * Every step is reported over a pipe to the root, which fails the test on any report
 * that is not "ok" or a missing one (bounded waits). */
#include "lib.h"

#include <errno.h>
#include <stdarg.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

#define MSG 80

static int rep_w = -1;
static char slave_path[64];
static volatile sig_atomic_t got_usr1, got_usr2;

static void on_sig(int sig)
{
	if (sig == SIGUSR1)
		got_usr1 = 1;
	else
		got_usr2 = 1;
}

static void report(const char *fmt, ...)
{
	char m[MSG] = { 0 };
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(m, sizeof(m), fmt, ap);
	va_end(ap);
	(void)!write(rep_w, m, sizeof(m));
}

static void wait_flag(volatile sig_atomic_t *flag)
{
	sigset_t none;
	sigemptyset(&none);
	while (!*flag)
		sigsuspend(&none);
}

/* The session, controlling terminal and foreground group every member must see. */
static void check_common(const char *who, int tty, pid_t sid, pid_t fg)
{
	struct stat st;
	char buf[1024];
	if (fstat(tty, &st)) {
		report("%s: fstat: %s", who, strerror(errno));
		return;
	}
	int fd = open("/proc/self/stat", O_RDONLY);
	ssize_t n = fd >= 0 ? read(fd, buf, sizeof(buf) - 1) : -1;
	if (fd >= 0)
		close(fd);
	buf[n > 0 ? n : 0] = 0;
	char *p = strrchr(buf, ')');
	int ppid = 0, pgrp = 0, session = 0, tty_nr = 0;
	if (!p || sscanf(p + 2, "%*c %d %d %d %d", &ppid, &pgrp, &session, &tty_nr) != 4) {
		report("%s: cannot parse /proc/self/stat", who);
		return;
	}
	unsigned int want = (major(st.st_rdev) << 8) | (minor(st.st_rdev) & 0xff) |
			    ((minor(st.st_rdev) & ~0xffu) << 12);
	pid_t pg = tcgetpgrp(tty);
	if (getsid(0) != sid || (unsigned int)tty_nr != want || pg != fg)
		report("%s: session %d (want %d), tty_nr %#x (want %#x), foreground %d (want %d)",
		       who, getsid(0), sid, tty_nr, want, pg, fg);
	else
		report("ok %s", who);
}

static void read_line(const char *who, int tty, const char *want)
{
	char buf[64] = { 0 };
	alarm(5);
	ssize_t n = read(tty, buf, sizeof(buf) - 1);
	alarm(0);
	if (n != (ssize_t)strlen(want) || memcmp(buf, want, (size_t)n))
		report("%s: read %zd (%s), want %s", who, n, n < 0 ? strerror(errno) : buf, want);
	else
		report("ok %s read", who);
}

static void job_f(pid_t sid)
{
	int tty = open(slave_path, O_RDWR);
	wait_flag(&got_usr1);
	check_common("F", tty, sid, getpid());
	read_line("F", tty, "fg-input\n");
	for (;;)
		pause();
}

static void job_b(pid_t sid, pid_t fg)
{
	int tty = open(slave_path, O_RDWR);
	wait_flag(&got_usr1);
	check_common("B", tty, sid, fg);
	signal(SIGTTIN, SIG_IGN);
	char c;
	errno = 0;
	ssize_t n = read(tty, &c, 1);
	if (n < 0 && errno == EIO)
		report("ok B background read");
	else
		report("B: background read gave %zd (%s)", n, strerror(errno));
	signal(SIGTTIN, SIG_DFL);
	wait_flag(&got_usr2);
	read_line("B", tty, "b-input\n");
	for (;;)
		pause();
}

static void leader(int ready_w)
{
	setsid();
	int tty = open(slave_path, O_RDWR); /* becomes the controlling terminal */
	if (tty < 0)
		_exit(3);
	pid_t me = getpid(), f, b;
	if ((f = fork()) == 0) {
		setpgid(0, 0);
		job_f(me);
	}
	setpgid(f, f);
	if (tcsetpgrp(tty, f))
		_exit(4);
	if ((b = fork()) == 0) {
		setpgid(0, 0);
		job_b(me, f);
	}
	setpgid(b, b);
	char ids[32];
	int l = snprintf(ids, sizeof(ids), "%d %d\n", f, b);
	(void)!write(ready_w, ids, (size_t)l);
	close(ready_w);
	wait_flag(&got_usr1);
	check_common("S", tty, me, f);
	kill(f, SIGUSR1);
	kill(b, SIGUSR1);
	int st = 0;
	alarm(8);
	pid_t r = waitpid(f, &st, WUNTRACED);
	alarm(0);
	if (r == f && WIFSTOPPED(st) && WSTOPSIG(st) == SIGTSTP)
		report("ok S saw F stopped");
	else
		report("S: waitpid F: %d, status %#x", r, st);
	signal(SIGTTOU, SIG_IGN);
	if (tcsetpgrp(tty, b))
		report("S: tcsetpgrp B: %s", strerror(errno));
	else
		report("ok S fg B");
	kill(b, SIGUSR2);
	for (;;)
		pause();
}

static pid_t kids[3];

/* Kill and reap the session (by pid), then fail with @msg. */
static void die(const char *msg)
{
	for (int i = 0; i < 3; i++)
		if (kids[i] > 0)
			kill(kids[i], SIGKILL);
	for (int i = 0; i < 3; i++)
		if (kids[i] > 0)
			test_reap(kids[i], true, 5);
	test_fail("%s", msg);
}

static void expect(int r, const char *what)
{
	char m[MSG];
	if (test_read_within(r, m, sizeof(m), 8000)) {
		snprintf(m, sizeof(m), "no report (%s)", what);
		die(m);
	}
	m[MSG - 1] = 0;
	if (strncmp(m, "ok ", 3))
		die(m);
}

int main(int argc, char **argv)
{
	int rp[2], ready[2];
	struct sigaction sa = { .sa_handler = on_sig };

	test_init(argc, argv);
	sigaction(SIGUSR1, &sa, NULL);
	sigaction(SIGUSR2, &sa, NULL);
	prctl(PR_SET_CHILD_SUBREAPER, 1);
	int m = posix_openpt(O_RDWR | O_NOCTTY);
	TEST_CHECK(m >= 0 && !grantpt(m) && !unlockpt(m), "openpt: %s", strerror(errno));
	snprintf(slave_path, sizeof(slave_path), "%s", ptsname(m));
	TEST_CHECK(!pipe(rp) && !pipe(ready), "pipe: %s", strerror(errno));
	rep_w = rp[1];
	pid_t s = fork();
	TEST_CHECK(s >= 0, "fork: %s", strerror(errno));
	if (s == 0) {
		close(ready[0]);
		close(m);
		leader(ready[1]);
	}
	close(ready[1]);
	char ids[32] = { 0 };
	ssize_t n = 0;
	struct pollfd pf = { .fd = ready[0], .events = POLLIN };
	if (poll(&pf, 1, 5000) == 1)
		n = read(ready[0], ids, sizeof(ids) - 1);
	close(ready[0]);
	pid_t f = 0, b = 0;
	kids[0] = s;
	if (n <= 0 || sscanf(ids, "%d %d", &f, &b) != 2)
		die("the session did not start");
	kids[1] = f;
	kids[2] = b;
	test_sleep_ms(100); /* F and B opened the terminal and wait */
	test_ready();
	test_wait();

	if (test_sabotage())
		(void)!write(m, "junk\n", 5);
	kill(s, SIGUSR1);
	(void)!write(m, "fg-input\n", 9);
	/* S, F, B checked; F read its line; B's background read failed */
	for (int i = 0; i < 5; i++)
		expect(rp[0], "checks");
	(void)!write(m, "\x1a", 1); /* ^Z */
	expect(rp[0], "F stopped");
	expect(rp[0], "fg B");
	(void)!write(m, "b-input\n", 8);
	expect(rp[0], "B read");
	for (int i = 0; i < 3; i++)
		test_reap(kids[i], true, 5);
	test_pass();
}
