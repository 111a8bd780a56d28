// stasis-test: timeout=30
/* The task sits in nanosleep(3 s) when it is checkpointed: the call must return 0 and
 * at least 3 s must have elapsed since it started. SIGTERM is blocked during the sleep
 * (a signal handler would end nanosleep with EINTR) and delivered afterwards. */
#include "lib.h"

#include <errno.h>
#include <string.h>

#define SLEEP_S 3

int main(int argc, char **argv)
{
	struct timespec req = { SLEEP_S, 0 }, rem = { 0, 0 };
	uint64_t t0, elapsed;
	sigset_t term, old;
	int ret, err;

	test_init(argc, argv);
	sigemptyset(&term);
	sigaddset(&term, SIGTERM);
	sigprocmask(SIG_BLOCK, &term, &old);
	if (test_sabotage())
		req.tv_sec = 1;
	test_ready();
	t0 = test_now_ns();
	ret = nanosleep(&req, &rem);
	err = errno;
	elapsed = test_now_ns() - t0;
	sigprocmask(SIG_SETMASK, &old, NULL);
	test_wait();

	TEST_CHECK(ret == 0, "nanosleep returned %d (%s), %ld.%09ld s remaining", ret, strerror(err),
		   (long)rem.tv_sec, rem.tv_nsec);
	TEST_CHECK(elapsed >= SLEEP_S * 1000000000ull, "nanosleep(%d s) returned after %llu ms",
		   SLEEP_S, (unsigned long long)(elapsed / 1000000));
	test_pass();
}
