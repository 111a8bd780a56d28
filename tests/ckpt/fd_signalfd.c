// stasis-test: timeout=30
/* A signalfd for SIGUSR1 and SIGRTMIN+2 (non-blocking, at fd 30): a SIGUSR1 pending at
 * dump and a SIGRTMIN+2 sent after the restore are read from it with their signo and
 * value; SIGUSR2 (blocked, not in its mask) is not. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include "lib.h"

static void send(int sig, int val)
{
	union sigval v = { .sival_int = val };
	if (sigqueue(getpid(), sig, v))
		test_fail("sigqueue %d: %d", sig, errno);
}

static int rd(int fd, struct signalfd_siginfo *si)
{
	ssize_t n = read(fd, si, sizeof(*si));
	return n == (ssize_t)sizeof(*si) ? 0 : -1;
}

int main(int argc, char **argv)
{
	test_init(argc, argv);
	int rt = SIGRTMIN + 2;
	sigset_t m;
	sigemptyset(&m);
	sigaddset(&m, SIGUSR1);
	sigaddset(&m, rt);
	sigset_t blk = m;
	sigaddset(&blk, SIGUSR2);
	TEST_CHECK(!sigprocmask(SIG_BLOCK, &blk, NULL), "sigprocmask: %d", errno);
	int fd = signalfd(-1, &m, SFD_NONBLOCK);
	TEST_CHECK(fd >= 0, "signalfd: %d", errno);
	TEST_CHECK(dup2(fd, 30) == 30, "dup2: %d", errno);
	close(fd);
	fd = 30;
	send(SIGUSR1, 42);

	test_ready();
	test_wait();
	if (test_sabotage()) {
		sigset_t only2;
		sigemptyset(&only2);
		sigaddset(&only2, SIGUSR2);
		signalfd(fd, &only2, 0);
	}

	TEST_CHECK(fcntl(fd, F_GETFL) & O_NONBLOCK, "signalfd lost O_NONBLOCK");
	struct signalfd_siginfo si;
	TEST_CHECK(!rd(fd, &si), "pending SIGUSR1 not readable from the signalfd: %d", errno);
	TEST_CHECK(si.ssi_signo == SIGUSR1 && si.ssi_int == 42,
		   "read signo %u value %d, want SIGUSR1 value 42", si.ssi_signo, si.ssi_int);
	TEST_CHECK(rd(fd, &si) && errno == EAGAIN, "signalfd not empty (signo %u)", si.ssi_signo);
	send(SIGUSR2, 5);
	TEST_CHECK(rd(fd, &si) && errno == EAGAIN, "SIGUSR2 read from the signalfd");
	send(rt, 7);
	TEST_CHECK(!rd(fd, &si), "SIGRTMIN+2 not readable from the signalfd: %d", errno);
	TEST_CHECK(si.ssi_signo == (unsigned)rt && si.ssi_int == 7 &&
			   si.ssi_pid == (unsigned)getpid(),
		   "read signo %u value %d pid %u, want %d value 7", si.ssi_signo, si.ssi_int,
		   si.ssi_pid, rt);
	sigset_t u2;
	sigemptyset(&u2);
	sigaddset(&u2, SIGUSR2);
	struct timespec z = { 0, 0 };
	TEST_CHECK(sigtimedwait(&u2, NULL, &z) == SIGUSR2, "SIGUSR2 not pending");
	test_pass();
}
