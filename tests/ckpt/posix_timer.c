// stasis-test: timeout=30
/* A POSIX timer (CLOCK_MONOTONIC, SIGEV_SIGNAL with a payload, periodic 50 ms) that is
 * not the first one created: after the restore it has the same id, the same interval,
 * and keeps firing with the right si_value, si_code and si_timerid. */
#include "lib.h"

#include <errno.h>
#include <string.h>

#define INTERVAL_NS 50000000L
#define PAYLOAD 0x5EB0BEEF

static volatile int ticks, bad_value, bad_code, bad_id, last_id;

static void on_timer(int sig, siginfo_t *si, void *uc)
{
	(void)sig;
	(void)uc;
	if (si->si_value.sival_int != PAYLOAD)
		bad_value++;
	if (si->si_code != SI_TIMER)
		bad_code++;
	last_id = si->si_timerid;
	ticks++;
}

static timer_t make_timer(int sig, int value)
{
	struct sigevent sev;
	timer_t t;

	memset(&sev, 0, sizeof(sev));
	sev.sigev_notify = SIGEV_SIGNAL;
	sev.sigev_signo = sig;
	sev.sigev_value.sival_int = value;
	if (timer_create(CLOCK_MONOTONIC, &sev, &t) < 0)
		test_fail("timer_create: %s", strerror(errno));
	return t;
}

int main(int argc, char **argv)
{
	struct itimerspec its = { { 0, INTERVAL_NS }, { 0, INTERVAL_NS } }, cur;
	const int sig = SIGRTMIN + 3;
	struct sigaction sa;
	timer_t dummy[2], t;
	int start, n, id;
	uint64_t t0;

	test_init(argc, argv);
	memset(&sa, 0, sizeof(sa));
	sa.sa_sigaction = on_timer;
	sa.sa_flags = SA_SIGINFO | SA_RESTART;
	sigemptyset(&sa.sa_mask);
	if (sigaction(sig, &sa, NULL) < 0)
		test_fail("sigaction: %s", strerror(errno));
	/* two timers first, one deleted: ours gets an id that is not the lowest */
	dummy[0] = make_timer(SIGUSR2, 1);
	dummy[1] = make_timer(SIGUSR2, 2);
	t = make_timer(sig, PAYLOAD);
	timer_delete(dummy[0]);
	id = (int)(intptr_t)t;
	if (timer_settime(t, 0, &its, NULL) < 0)
		test_fail("timer_settime: %s", strerror(errno));
	t0 = test_now_ns();
	while (ticks < 3 && test_now_ns() - t0 < 5000000000ull)
		test_sleep_ms(10);
	TEST_CHECK(ticks >= 3, "timer did not fire before the checkpoint");
	TEST_CHECK(last_id == id, "si_timerid %d, timer id %d", last_id, id);
	test_msg("timer id %d", id);
	test_ready();
	test_wait();

	if (test_sabotage())
		timer_delete(t);
	if (timer_gettime(t, &cur) < 0)
		test_fail("timer_gettime(id %d): %s", id, strerror(errno));
	TEST_CHECK(cur.it_interval.tv_sec == 0 && cur.it_interval.tv_nsec == INTERVAL_NS,
		   "interval %ld.%09ld, expected 0.%09ld", (long)cur.it_interval.tv_sec,
		   cur.it_interval.tv_nsec, INTERVAL_NS);
	TEST_CHECK(cur.it_value.tv_sec == 0 && cur.it_value.tv_nsec > 0 &&
			   cur.it_value.tv_nsec <= INTERVAL_NS,
		   "remaining %ld.%09ld out of bounds", (long)cur.it_value.tv_sec,
		   cur.it_value.tv_nsec);
	TEST_CHECK(timer_gettime(dummy[1], &cur) == 0, "the other timer is gone: %s",
		   strerror(errno));
	TEST_CHECK(cur.it_value.tv_sec == 0 && cur.it_value.tv_nsec == 0,
		   "the other timer got armed");
	start = ticks;
	last_id = -1;
	t0 = test_now_ns();
	do {
		test_sleep_ms(5);
		n = ticks - start;
	} while (n < 5 && test_now_ns() - t0 < 3000000000ull);
	TEST_CHECK(n >= 5, "only %d timer signals in 3 s after the restore", n);
	TEST_CHECK(test_now_ns() - t0 >= 4ull * INTERVAL_NS - 10000000ull,
		   "5 signals came faster than the interval allows");
	TEST_CHECK(last_id == id, "si_timerid %d after the restore, expected %d", last_id, id);
	TEST_CHECK(bad_value == 0 && bad_code == 0,
		   "%d signals with a wrong si_value, %d with a wrong si_code", bad_value, bad_code);
	TEST_CHECK(timer_getoverrun(t) >= 0, "timer_getoverrun: %s", strerror(errno));
	test_pass();
}
