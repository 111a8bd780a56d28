// stasis-test: timeout=30
/* The owner of a file description and its signal: a pipe read end with O_ASYNC owned by
 * the process (F_OWNER_PID) with F_SETSIG SIGUSR1, another owned by the process group
 * (F_OWNER_PGRP) with the default SIGIO, a third owned by this thread (F_OWNER_TID). After
 * the restore the owners and signals are the same, and a write to the first pipe still
 * raises SIGUSR1 in the task. */
#include "lib.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

static volatile sig_atomic_t got_usr1;

static void on_usr1(int sig)
{
	(void)sig;
	got_usr1++;
}

static void own(int fd, int type, pid_t pid, int sig)
{
	struct f_owner_ex o = { .type = type, .pid = pid };
	if (fcntl(fd, F_SETOWN_EX, &o) < 0 || (sig && fcntl(fd, F_SETSIG, sig) < 0) ||
	    fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_ASYNC) < 0)
		test_fail("own fd %d: %s", fd, strerror(errno));
}

static void check_owner(int fd, int type, pid_t pid, int sig)
{
	struct f_owner_ex o = { 0 };
	int s = fcntl(fd, F_GETSIG);
	TEST_CHECK(fcntl(fd, F_GETOWN_EX, &o) == 0 && (int)o.type == type && o.pid == pid,
		   "fd %d: owner type %d pid %d, expected type %d pid %d", fd, o.type, o.pid, type,
		   pid);
	TEST_CHECK(s == sig, "fd %d: F_GETSIG %d, expected %d", fd, s, sig);
	TEST_CHECK(fcntl(fd, F_GETFL) & O_ASYNC, "fd %d lost O_ASYNC", fd);
}

int main(int argc, char **argv)
{
	int a[2], b[2], t[2];
	struct sigaction sa;

	test_init(argc, argv);
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_usr1;
	sigaction(SIGUSR1, &sa, NULL);
	signal(SIGIO, SIG_IGN);
	if (pipe(a) || pipe(b) || pipe(t))
		test_fail("pipe: %s", strerror(errno));
	/* a group of its own: the SIGIO of the group's pipe (when the original dies with its
	 * pipes, the kernel signals the readers' owners) must not reach the runner */
	if (setpgid(0, 0) < 0)
		test_fail("setpgid: %s", strerror(errno));
	pid_t tid = (pid_t)syscall(SYS_gettid);
	own(a[0], F_OWNER_PID, getpid(), SIGUSR1);
	own(b[0], F_OWNER_PGRP, getpgrp(), 0);
	own(t[0], F_OWNER_TID, tid, 0);
	test_ready();
	test_wait();

	if (test_sabotage())
		fcntl(a[0], F_SETSIG, 0);
	check_owner(a[0], F_OWNER_PID, getpid(), SIGUSR1);
	check_owner(b[0], F_OWNER_PGRP, getpgrp(), 0);
	check_owner(t[0], F_OWNER_TID, tid, 0);
	if (write(a[1], "x", 1) != 1)
		test_fail("write: %s", strerror(errno));
	for (int i = 0; i < 100 && !got_usr1; i++)
		test_sleep_ms(10);
	TEST_CHECK(got_usr1, "no SIGUSR1 after a write to the O_ASYNC pipe");
	test_pass();
}
