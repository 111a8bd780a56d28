// stasis-test: timeout=30
/* The task is blocked in pause() when it is checkpointed. After the restore the runner's
 * SIGTERM (the lib's handler) must interrupt it: pause() returns -1 with EINTR, once,
 * with the stop flag set, and no other signal (a SIGUSR1 handler counts them) came. A
 * syscall restart done wrong shows as another return value or errno (e.g. 514,
 * ERESTARTNOHAND) or as a return without the stop flag. */
#include "lib.h"

#include <errno.h>
#include <string.h>
#include <unistd.h>

static volatile sig_atomic_t others;

static void on_other(int sig)
{
	(void)sig;
	others++;
}

int main(int argc, char **argv)
{
	const int sigs[] = { SIGUSR1, SIGUSR2, SIGHUP, SIGALRM, SIGCONT };
	struct sigaction sa;
	sigset_t mask;
	unsigned int i;
	int r, err;

	test_init(argc, argv);
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_other;
	sigemptyset(&sa.sa_mask);
	for (i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++)
		if (sigaction(sigs[i], &sa, NULL) < 0)
			test_fail("sigaction(%d): %s", sigs[i], strerror(errno));
	sigemptyset(&mask);
	if (sigprocmask(SIG_SETMASK, &mask, NULL) < 0)
		test_fail("sigprocmask: %s", strerror(errno));

	test_ready();
	r = pause();
	err = errno;

	if (test_sabotage())
		raise(SIGUSR1);
	TEST_CHECK(r == -1 && err == EINTR, "pause returned %d errno %d (%s), expected -1 EINTR",
		   r, err, strerror(err));
	TEST_CHECK(test_stop_requested(), "pause returned without SIGTERM");
	TEST_CHECK(others == 0, "%d other signals (SIGUSR1/USR2/HUP/ALRM/CONT) were handled",
		   (int)others);
	test_pass();
}
