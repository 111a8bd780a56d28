// stasis-test: timeout=30
/* The task is blocked in read() on a pipe whose write end it holds itself when it is
 * checkpointed. An ITIMER_REAL fires 2 s after ready, and its SA_RESTART handler writes
 * one byte into the pipe: after the restore the read completes with that byte. */
#include "lib.h"

#include <errno.h>
#include <string.h>
#include <sys/time.h>
#include <unistd.h>

static int pfd[2];
static volatile int alarms;

static void on_alarm(int sig)
{
	char c = test_sabotage() ? 'Y' : 'Z';

	(void)sig;
	alarms++;
	(void)!write(pfd[1], &c, 1);
}

int main(int argc, char **argv)
{
	struct itimerval it = { { 0, 0 }, { 2, 0 } };
	struct sigaction sa;
	sigset_t term, old;
	uint64_t t0, elapsed;
	ssize_t n;
	char c = 0;
	int err;

	test_init(argc, argv);
	if (pipe(pfd) < 0)
		test_fail("pipe: %s", strerror(errno));
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_alarm;
	sa.sa_flags = SA_RESTART;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGALRM, &sa, NULL);
	/* SIGTERM stays blocked during the read so that it cannot end it */
	sigemptyset(&term);
	sigaddset(&term, SIGTERM);
	sigprocmask(SIG_BLOCK, &term, &old);
	test_ready();
	t0 = test_now_ns();
	if (setitimer(ITIMER_REAL, &it, NULL) < 0)
		test_fail("setitimer: %s", strerror(errno));
	n = read(pfd[0], &c, 1);
	err = errno;
	elapsed = test_now_ns() - t0;
	sigprocmask(SIG_SETMASK, &old, NULL);
	test_wait();

	TEST_CHECK(n == 1, "read returned %zd: %s", n, n < 0 ? strerror(err) : "EOF");
	TEST_CHECK(c == 'Z', "read byte '%c', expected 'Z'", c);
	TEST_CHECK(alarms == 1, "%d alarms, expected 1", alarms);
	TEST_CHECK(elapsed >= 1900000000ull, "read completed after %llu ms, before the alarm",
		   (unsigned long long)(elapsed / 1000000));
	test_pass();
}
