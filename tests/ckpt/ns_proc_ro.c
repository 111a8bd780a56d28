// stasis-test: timeout=30 needs=root
/* A pid namespace whose init mounted its /proc read-only (in a mount namespace of its
 * own): its ns_last_pid is read through that /proc at dump and cannot be written there at
 * restore. After restore the namespace's next fork gets the pid it would have had (4: the
 * init gave out 2, a short-lived child, and 3, a sleeper), the sleeper is still there and
 * /proc is still read-only. */
#include "lib.h"

#include <errno.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

static volatile sig_atomic_t usr1;
static void on_usr1(int sig)
{
	(void)sig;
	usr1 = 1;
}

/* The namespace's init: /proc read-only, pids 2 (gone) and 3 (a sleeper) given out. */
static __attribute__((noreturn)) void init(int wr)
{
	signal(SIGTERM, SIG_IGN);
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0 ||
	    mount("proc", "/proc", "proc", MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL) < 0)
		_exit(1);
	pid_t e = fork();
	if (e == 0)
		_exit(0);
	waitpid(e, NULL, 0);
	pid_t s = fork();
	if (s == 0) {
		signal(SIGTERM, SIG_IGN);
		for (;;)
			pause();
	}
	struct sigaction sa = { .sa_handler = on_usr1 };
	sigaction(SIGUSR1, &sa, NULL);
	(void)!write(wr, &s, sizeof(s));
	for (;;) {
		pause();
		if (!usr1)
			continue;
		usr1 = 0;
		pid_t n = fork(); /* the pid the next fork gets */
		if (n == 0)
			_exit(0);
		waitpid(n, NULL, 0);
		int ro = 0;
		FILE *f = fopen("/proc/self/mountinfo", "r");
		char line[1024];
		while (f && fgets(line, sizeof(line), f)) {
			char mp[512], opts[256];
			if (sscanf(line, "%*s %*s %*s %*s %511s %255s", mp, opts) == 2 &&
			    !strcmp(mp, "/proc"))
				ro = !strncmp(opts, "ro", 2) && (opts[2] == ',' || !opts[2]);
		}
		if (f)
			fclose(f);
		int reply[2] = { n, ro };
		(void)!write(wr, reply, sizeof(reply));
	}
}

int main(int argc, char **argv)
{
	int p[2];

	test_init(argc, argv);
	if (pipe(p) < 0 || unshare(CLONE_NEWPID | CLONE_NEWNS) < 0)
		test_fail("setup: %s", strerror(errno));
	pid_t a = fork();
	if (a < 0)
		test_fail("fork: %s", strerror(errno));
	if (a == 0)
		init(p[1]);
	pid_t s = 0;
	alarm(10);
	if (read(p[0], &s, sizeof(s)) != sizeof(s))
		test_fail("the init did not start (mount a read-only /proc?)");
	alarm(0);
	TEST_CHECK(s == 3, "the sleeper is pid %d in the namespace, expected 3", s);
	test_ready();
	test_wait();
	if (test_sabotage()) {
		/* a fork in the namespace the test does not count: the next pid moves */
		kill(a, SIGUSR1);
		int junk[2];
		(void)!read(p[0], junk, sizeof(junk));
	}
	kill(a, SIGUSR1);
	int reply[2] = { 0, 0 };
	alarm(10);
	TEST_CHECK(read(p[0], reply, sizeof(reply)) == sizeof(reply), "the init did not fork");
	alarm(0);
	TEST_CHECK(reply[0] == 4, "next pid in the namespace is %d, expected 4 (ns_last_pid not "
		   "kept)", reply[0]);
	TEST_CHECK(reply[1] == 1, "/proc of the namespace is no longer read-only");
	kill(a, SIGKILL);
	int st;
	alarm(10);
	waitpid(a, &st, 0);
	test_pass();
}
