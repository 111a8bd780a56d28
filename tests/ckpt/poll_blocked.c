// stasis-test: timeout=40
/* The task is blocked in poll() (timeout 10 s) on the read end of its own pipe when it
 * is checkpointed. An ITIMER_REAL fires 2 s after ready and its SA_RESTART handler writes
 * one byte into the pipe. poll() is not restarted after a handler (it returns EINTR, and
 * a restart across the checkpoint may also end in EINTR), so the test polls again with
 * the time left; it must end with 1 ready fd, POLLIN, the byte 'P', well before the
 * 10 s timeout and not before the alarm. */
#include "lib.h"

#include <errno.h>
#include <poll.h>
#include <string.h>
#include <sys/time.h>
#include <unistd.h>

#define POLL_MS 10000

static int pfd[2];
static volatile sig_atomic_t alarms;

static void on_alarm(int sig)
{
	char c = test_sabotage() ? 'Q' : 'P';

	(void)sig;
	alarms++;
	(void)!write(pfd[1], &c, 1);
}

int main(int argc, char **argv)
{
	struct itimerval it = { { 0, 0 }, { 2, 0 } };
	struct sigaction sa;
	struct pollfd p;
	sigset_t term, old;
	uint64_t t0, elapsed = 0;
	int r = -1, err = 0, eintr = 0;
	char c = 0;
	ssize_t n;

	test_init(argc, argv);
	if (pipe(pfd) < 0)
		test_fail("pipe: %s", strerror(errno));
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_alarm;
	sa.sa_flags = SA_RESTART;
	sigemptyset(&sa.sa_mask);
	if (sigaction(SIGALRM, &sa, NULL) < 0)
		test_fail("sigaction: %s", strerror(errno));
	/* SIGTERM stays blocked during the poll so that it cannot end it */
	sigemptyset(&term);
	sigaddset(&term, SIGTERM);
	sigprocmask(SIG_BLOCK, &term, &old);
	test_ready();
	t0 = test_now_ns();
	if (setitimer(ITIMER_REAL, &it, NULL) < 0)
		test_fail("setitimer: %s", strerror(errno));
	for (;;) {
		int left = POLL_MS - (int)((test_now_ns() - t0) / 1000000);

		if (left < 0)
			left = 0;
		p.fd = pfd[0];
		p.events = POLLIN;
		p.revents = 0;
		r = poll(&p, 1, left);
		err = errno;
		if (r < 0 && err == EINTR && eintr < 5) {
			eintr++;
			continue;
		}
		break;
	}
	elapsed = test_now_ns() - t0;
	n = r == 1 ? read(pfd[0], &c, 1) : 0;
	sigprocmask(SIG_SETMASK, &old, NULL);
	test_wait();

	test_msg("poll returned %d after %llu ms, %d EINTR", r,
		 (unsigned long long)(elapsed / 1000000), eintr);
	TEST_CHECK(r == 1, "poll returned %d (%s) after %d EINTR", r,
		   r < 0 ? strerror(err) : r == 0 ? "timeout" : "?", eintr);
	TEST_CHECK(p.revents == POLLIN, "revents %#x, expected POLLIN", p.revents);
	TEST_CHECK(n == 1 && c == 'P', "read %zd byte '%c', expected 'P'", n, c);
	TEST_CHECK(alarms == 1, "%d alarms, expected 1", (int)alarms);
	TEST_CHECK(elapsed >= 1900000000ull, "poll completed after %llu ms, before the alarm",
		   (unsigned long long)(elapsed / 1000000));
	TEST_CHECK(elapsed < 9000000000ull, "poll completed after %llu ms: the byte was missed",
		   (unsigned long long)(elapsed / 1000000));
	TEST_CHECK(eintr <= 2, "%d EINTR returns", eintr);
	test_pass();
}
