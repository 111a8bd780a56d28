// stasis-test: timeout=40
/* timerfds: a periodic CLOCK_MONOTONIC one (50 ms) keeps firing at its interval, an
 * armed CLOCK_REALTIME one-shot (3 s) fires neither early nor much late, and an expired
 * one-shot keeps its unread expiration. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdint.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include "lib.h"

#define PERIOD_NS 50000000ULL
#define ONESHOT_NS 3000000000ULL

static uint64_t ticks_of(int fd)
{
	uint64_t v = 0;
	if (read(fd, &v, sizeof(v)) != (ssize_t)sizeof(v))
		return 0;
	return v;
}

static uint64_t ts_ns(struct timespec t)
{
	return (uint64_t)t.tv_sec * 1000000000ULL + (uint64_t)t.tv_nsec;
}

int main(int argc, char **argv)
{
	test_init(argc, argv);
	int per = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK);
	int one = timerfd_create(CLOCK_REALTIME, TFD_CLOEXEC);
	int done = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK);
	TEST_CHECK(per >= 0 && one >= 0 && done >= 0, "timerfd_create: %d", errno);
	struct itimerspec p = { { 0, (long)PERIOD_NS }, { 0, (long)PERIOD_NS } };
	struct itimerspec o = { { 0, 0 }, { (time_t)(ONESHOT_NS / 1000000000ULL), 0 } };
	struct itimerspec d = { { 0, 0 }, { 0, 1000000 } };
	TEST_CHECK(!timerfd_settime(per, 0, &p, NULL), "settime periodic: %d", errno);
	uint64_t armed = test_now_ns();
	TEST_CHECK(!timerfd_settime(one, 0, &o, NULL), "settime one-shot: %d", errno);
	TEST_CHECK(!timerfd_settime(done, 0, &d, NULL), "settime expired: %d", errno);
	test_sleep_ms(20);

	test_ready();
	test_wait();
	if (test_sabotage()) {
		struct itimerspec z = { { 0, 0 }, { 0, 0 } };
		timerfd_settime(per, 0, &z, NULL);
	}

	/* the expired one-shot: one unread expiration, nothing more */
	uint64_t t = ticks_of(done);
	TEST_CHECK(t == 1, "expired timerfd has %llu unread expirations, want 1",
		   (unsigned long long)t);
	TEST_CHECK(fcntl(done, F_GETFL) & O_NONBLOCK, "expired timerfd lost O_NONBLOCK");

	/* the periodic one */
	struct itimerspec cur;
	TEST_CHECK(!timerfd_gettime(per, &cur), "gettime periodic: %d", errno);
	TEST_CHECK(ts_ns(cur.it_interval) == PERIOD_NS, "periodic interval is %llu ns",
		   (unsigned long long)ts_ns(cur.it_interval));
	TEST_CHECK(ts_ns(cur.it_value) <= PERIOD_NS, "periodic remaining %llu ns",
		   (unsigned long long)ts_ns(cur.it_value));
	ticks_of(per); /* drain */
	uint64_t t0 = test_now_ns();
	test_sleep_ms(1000);
	t = ticks_of(per);
	uint64_t el = test_now_ns() - t0;
	uint64_t want = el / PERIOD_NS;
	TEST_CHECK(t + 2 >= want && t <= want + 2,
		   "periodic timerfd fired %llu times in %llu ms, want about %llu",
		   (unsigned long long)t, (unsigned long long)(el / 1000000),
		   (unsigned long long)want);

	/* the one-shot: not early, not far late */
	TEST_CHECK(fcntl(one, F_GETFD) == FD_CLOEXEC, "one-shot timerfd lost FD_CLOEXEC");
	TEST_CHECK(!timerfd_gettime(one, &cur), "gettime one-shot: %d", errno);
	TEST_CHECK(cur.it_interval.tv_sec == 0 && cur.it_interval.tv_nsec == 0,
		   "one-shot got an interval");
	struct pollfd pf = { .fd = one, .events = POLLIN };
	int r = poll(&pf, 1, 15000);
	uint64_t fired = test_now_ns() - armed;
	TEST_CHECK(r == 1, "one-shot timerfd did not fire within 15 s (poll %d, errno %d)", r,
		   errno);
	t = ticks_of(one);
	TEST_CHECK(t == 1, "one-shot fired %llu times", (unsigned long long)t);
	TEST_CHECK(fired + 20000000ULL >= ONESHOT_NS, "one-shot fired early: after %llu ms",
		   (unsigned long long)(fired / 1000000));
	TEST_CHECK(fired <= ONESHOT_NS + 15000000000ULL, "one-shot fired late: after %llu ms",
		   (unsigned long long)(fired / 1000000));
	test_pass();
}
