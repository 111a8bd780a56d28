// stasis-test: timeout=30
/* A periodic ITIMER_REAL whose SIGALRM is pending (blocked) at the freeze: the kernel
 * re-arms such a timer only when the signal is dequeued, so getitimer reads a value of 0
 * with the interval kept. After the restore the interval must still be there (a restore
 * that sets a zero value disarms it for good) and, once SIGALRM is unblocked, the timer
 * must keep firing. */
#include "lib.h"

#include <errno.h>
#include <signal.h>
#include <string.h>
#include <sys/time.h>

#define INTERVAL_US 50000

static volatile int ticks;

static void on_alarm(int sig)
{
	(void)sig;
	ticks++;
}

static long tv_us(const struct timeval *tv)
{
	return tv->tv_sec * 1000000L + tv->tv_usec;
}

static bool alarm_pending(void)
{
	sigset_t p;
	sigpending(&p);
	return sigismember(&p, SIGALRM);
}

int main(int argc, char **argv)
{
	struct itimerval it = { { 0, INTERVAL_US }, { 0, INTERVAL_US } }, cur;
	struct sigaction sa;
	sigset_t alrm;
	uint64_t t0;

	test_init(argc, argv);
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_alarm;
	sa.sa_flags = SA_RESTART;
	sigemptyset(&sa.sa_mask);
	if (sigaction(SIGALRM, &sa, NULL) < 0)
		test_fail("sigaction: %s", strerror(errno));
	sigemptyset(&alrm);
	sigaddset(&alrm, SIGALRM);
	sigprocmask(SIG_BLOCK, &alrm, NULL);
	if (setitimer(ITIMER_REAL, &it, NULL) < 0)
		test_fail("setitimer: %s", strerror(errno));
	t0 = test_now_ns();
	while (!alarm_pending() && test_now_ns() - t0 < 2000000000ull)
		test_sleep_ms(10);
	TEST_CHECK(alarm_pending(), "SIGALRM never became pending");
	getitimer(ITIMER_REAL, &cur);
	TEST_CHECK(tv_us(&cur.it_value) == 0 && tv_us(&cur.it_interval) == INTERVAL_US,
		   "before the checkpoint: value %ld us, interval %ld us (expected 0, %d)",
		   tv_us(&cur.it_value), tv_us(&cur.it_interval), INTERVAL_US);
	test_ready();
	test_wait();

	if (test_sabotage()) {
		struct itimerval off = { { 0, 0 }, { 0, 0 } };

		setitimer(ITIMER_REAL, &off, NULL);
	}
	if (getitimer(ITIMER_REAL, &cur) < 0)
		test_fail("getitimer: %s", strerror(errno));
	TEST_CHECK(tv_us(&cur.it_interval) == INTERVAL_US,
		   "interval is %ld us after the restore, expected %d (the timer was disarmed)",
		   tv_us(&cur.it_interval), INTERVAL_US);
	TEST_CHECK(alarm_pending(), "the pending SIGALRM was lost");
	sigprocmask(SIG_UNBLOCK, &alrm, NULL);
	t0 = test_now_ns();
	while (ticks < 4 && test_now_ns() - t0 < 1000000000ull)
		test_sleep_ms(10);
	TEST_CHECK(ticks >= 4, "itimer stopped: %d ticks in 1 s after SIGALRM was unblocked",
		   ticks);
	test_pass();
}
