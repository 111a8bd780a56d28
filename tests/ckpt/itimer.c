// stasis-test: timeout=30
/* ITIMER_REAL with a 100 ms interval and a counting SIGALRM handler: after the restore
 * the interval is unchanged, the remaining time within bounds, and it keeps firing at
 * about the right rate. */
#include "lib.h"

#include <errno.h>
#include <string.h>
#include <sys/time.h>

#define INTERVAL_US 100000

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

int main(int argc, char **argv)
{
	struct itimerval it = { { 0, INTERVAL_US }, { 0, INTERVAL_US } }, cur;
	struct sigaction sa;
	uint64_t t0, t1;
	int c0, start;

	test_init(argc, argv);
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_alarm;
	sa.sa_flags = SA_RESTART;
	sigemptyset(&sa.sa_mask);
	if (sigaction(SIGALRM, &sa, NULL) < 0)
		test_fail("sigaction: %s", strerror(errno));
	if (setitimer(ITIMER_REAL, &it, NULL) < 0)
		test_fail("setitimer: %s", strerror(errno));
	t0 = test_now_ns();
	while (ticks < 3 && test_now_ns() - t0 < 5000000000ull)
		test_sleep_ms(10);
	TEST_CHECK(ticks >= 3, "timer did not fire before the checkpoint (%d ticks)", ticks);
	test_ready();
	test_wait();

	if (test_sabotage()) {
		struct itimerval off = { { 0, 0 }, { 0, 0 } };

		setitimer(ITIMER_REAL, &off, NULL);
	}
	if (getitimer(ITIMER_REAL, &cur) < 0)
		test_fail("getitimer: %s", strerror(errno));
	TEST_CHECK(tv_us(&cur.it_interval) == INTERVAL_US, "interval is %ld us, expected %d",
		   tv_us(&cur.it_interval), INTERVAL_US);
	TEST_CHECK(tv_us(&cur.it_value) > 0 && tv_us(&cur.it_value) <= INTERVAL_US,
		   "remaining time %ld us out of (0, %d]", tv_us(&cur.it_value), INTERVAL_US);
	/* keeps firing: 5 more ticks within 3 s, and not faster than the interval allows */
	start = ticks;
	t0 = test_now_ns();
	do {
		test_sleep_ms(5);
		c0 = ticks;
		t1 = test_now_ns();
	} while (c0 - start < 5 && t1 - t0 < 3000000000ull);
	TEST_CHECK(c0 - start >= 5, "only %d ticks in %llu ms after the restore", c0 - start,
		   (unsigned long long)((t1 - t0) / 1000000));
	TEST_CHECK(t1 - t0 >= 4ull * INTERVAL_US * 1000 - 20000000ull,
		   "5 ticks in %llu ms: faster than the 100 ms interval",
		   (unsigned long long)((t1 - t0) / 1000000));
	test_pass();
}
