// stasis-test: timeout=40
/* pidfds: of a running child A made by clone3(CLONE_PIDFD) (fd A1, dup'd at fd 40 with
 * close-on-exec, and inherited by a second child B: one description in two processes),
 * by pidfd_open (A2) and with PIDFD_NONBLOCK (A3); of a thread of the test with
 * PIDFD_THREAD (T); of a child that exited 5 and was reaped (R) and, with PIDFD_THREAD,
 * of one killed by SIGPIPE and reaped (RT). After the restore: every fdinfo's flags,
 * Pid and NSpid lines as before, the fd flags; A1, its dup and B's fd still one
 * description (kcmp), A2 another, F_SETFL O_NONBLOCK on A1 shows in B's fd; A3 is
 * non-blocking (waitid EAGAIN); pidfd_send_signal through A2 reaches A (it answers with
 * its pid); R and RT give ESRCH to pidfd_send_signal, ECHILD to waitid, and keep their exit
 * status (PIDFD_GET_INFO, where the kernel has it); A1 is not readable and an epoll
 * watching A2 quiet until A is told to exit, then poll says readable, the epoll reports
 * A2 with its data, and waitid(P_PIDFD) reaps A with its status 7. */
#include "lib.h"
#include "pidfdlib.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/kcmp.h>
#include <linux/sched.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#ifndef PIDFD_THREAD
#define PIDFD_THREAD O_EXCL
#endif
#ifndef P_PIDFD
#define P_PIDFD 3
#endif


enum { A1, A1DUP, A2, A3, T, R, RT, NFD };
static const char *const names[NFD] = { "A1", "A1dup", "A2", "A3", "T", "R", "RT" };
static int fds[NFD];
static char info[NFD][256];
static int fdflags[NFD];
static int cmd_a[2], rep_a[2], cmd_b[2];
static pid_t a, b;
static int ep; /* an epoll watching A2 (as asyncio's PidfdChildWatcher does) */

static int pidfd_open(pid_t pid, unsigned int flags)
{
	return (int)syscall(SYS_pidfd_open, pid, flags);
}

static int send_sig(int fd, int sig)
{
	return (int)syscall(SYS_pidfd_send_signal, fd, sig, NULL, 0);
}

/* The flags, Pid and NSpid lines of the fdinfo of @fd (of @pid: 0 is ours). */
static void fdinfo_lines(pid_t pid, int fd, char *out, size_t size)
{
	char path[64], buf[1024];
	snprintf(path, sizeof(path), "/proc/%d/fdinfo/%d", pid ? pid : getpid(), fd);
	int f = open(path, O_RDONLY | O_CLOEXEC);
	ssize_t n = f >= 0 ? read(f, buf, sizeof(buf) - 1) : -1;
	if (f >= 0)
		close(f);
	if (n < 0)
		test_fail("read %s: %s", path, strerror(errno));
	buf[n] = 0;
	out[0] = 0;
	for (char *l = strtok(buf, "\n"); l; l = strtok(NULL, "\n"))
		if (!strncmp(l, "flags:", 6) || !strncmp(l, "Pid:", 4) || !strncmp(l, "NSpid:", 6))
			snprintf(out + strlen(out), size - strlen(out), "%s|", l);
}

static void on_usr1(int sig)
{
	(void)sig;
	pid_t me = getpid();
	(void)!write(rep_a[1], &me, sizeof(me));
}

static pid_t spawn_a(void)
{
	int pidfd = -1;
	struct clone_args ca = { .flags = CLONE_PIDFD, .pidfd = (uintptr_t)&pidfd,
				 .exit_signal = SIGCHLD };
	pid_t c = (pid_t)syscall(SYS_clone3, &ca, sizeof(ca));
	if (c < 0)
		test_fail("clone3(CLONE_PIDFD): %s", strerror(errno));
	if (!c) {
		char x;
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		signal(SIGUSR1, on_usr1);
		for (;;) {
			ssize_t n = read(cmd_a[0], &x, 1);
			if (n == 1 && x == 'q')
				_exit(7);
			if (n == 0)
				_exit(1);
		}
	}
	fds[A1] = pidfd;
	return c;
}

/* A child that exits at once (status @how: 5 = exit 5, else killed by SIGPIPE), reaped;
 * its pidfd opened with @flags before. */
static int reaped(unsigned int flags, int how)
{
	int go[2];
	if (pipe(go))
		test_fail("pipe");
	pid_t c = fork();
	if (!c) {
		char x;
		close(go[1]);
		if (read(go[0], &x, 1) < 0 || how == 5)
			_exit(5);
		pause();
		_exit(0);
	}
	close(go[0]);
	int fd = pidfd_open(c, flags);
	if (fd < 0)
		test_fail("pidfd_open(%d, %#x): %s", c, flags, strerror(errno));
	if (how != 5) {
		kill(c, SIGPIPE);
	}
	close(go[1]);
	int st;
	if (waitpid(c, &st, 0) != c)
		test_fail("waitpid");
	return fd;
}

static pid_t thread_tid;
static void *thread_main(void *arg)
{
	sigset_t all;
	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, NULL);
	__atomic_store_n(&thread_tid, (pid_t)syscall(SYS_gettid), __ATOMIC_SEQ_CST);
	for (;;)
		pause();
	return arg;
}

static void check_reaped(int i, int status)
{
	siginfo_t si;
	if (send_sig(fds[i], 0) == 0 || errno != ESRCH)
		test_fail("%s: pidfd_send_signal: %s, not ESRCH", names[i], strerror(errno));
	if (waitid(P_PIDFD, (id_t)fds[i], &si, WEXITED | WNOHANG) == 0 || errno != ECHILD)
		test_fail("%s: waitid: %s, not ECHILD", names[i], strerror(errno));
	struct pidfd_info pi = { .mask = PIDFD_INFO_EXIT };
	if (ioctl(fds[i], PIDFD_GET_INFO, &pi) == 0 && (pi.mask & PIDFD_INFO_EXIT) &&
	    pi.exit_code != status)
		test_fail("%s: exit status %#x, not %#x", names[i], pi.exit_code, status);
}

static void check_after(void)
{
	char now[256];
	for (int i = 0; i < NFD; i++) {
		fdinfo_lines(0, fds[i], now, sizeof(now));
		if (strcmp(now, info[i]))
			test_fail("%s (fd %d): fdinfo '%s', was '%s'", names[i], fds[i], now, info[i]);
	}
	for (int i = 0; i < NFD; i++)
		if (fcntl(fds[i], F_GETFD) != fdflags[i])
			test_fail("%s: fd flags %d, were %d", names[i], fcntl(fds[i], F_GETFD),
				  fdflags[i]);
	pid_t me = getpid();
	if (syscall(SYS_kcmp, me, me, KCMP_FILE, fds[A1], fds[A1DUP]) != 0 ||
	    syscall(SYS_kcmp, me, b, KCMP_FILE, fds[A1], fds[A1]) != 0)
		test_fail("A1, its dup and B's A1 are no longer one description");
	if (syscall(SYS_kcmp, me, me, KCMP_FILE, fds[A1], fds[A2]) == 0)
		test_fail("A1 and A2 became one description");
	/* one description: its status flags are B's too */
	if (fcntl(fds[A1], F_SETFL, O_NONBLOCK))
		test_fail("F_SETFL");
	fdinfo_lines(b, fds[A1], now, sizeof(now));
	if (!strstr(now, "flags:\t02004002"))
		test_fail("B's A1 does not share the status flags: %s", now);
	fcntl(fds[A1], F_SETFL, 0);
	if (!(fcntl(fds[A3], F_GETFL) & O_NONBLOCK) || (fcntl(fds[A2], F_GETFL) & O_NONBLOCK))
		test_fail("O_NONBLOCK of A2/A3 wrong");
	siginfo_t si;
	if (waitid(P_PIDFD, (id_t)fds[A3], &si, WEXITED) == 0 || errno != EAGAIN)
		test_fail("waitid on the non-blocking A3: %s, not EAGAIN", strerror(errno));
	if (!(fcntl(fds[T], F_GETFL) & PIDFD_THREAD))
		test_fail("T lost PIDFD_THREAD");
	check_reaped(R, 5 << 8);
	check_reaped(RT, SIGPIPE);

	/* a signal through A2 reaches A */
	if (send_sig(fds[A2], SIGUSR1))
		test_fail("pidfd_send_signal(A2): %s", strerror(errno));
	struct pollfd pr = { rep_a[0], POLLIN, 0 };
	pid_t got = 0;
	if (poll(&pr, 1, 5000) != 1 || read(rep_a[0], &got, sizeof(got)) != sizeof(got) || got != a)
		test_fail("A did not answer SIGUSR1 (got %d, A is %d)", got, a);
	/* A exits: A1 becomes readable, the epoll reports A2, waitid reaps it */
	struct pollfd pa = { fds[A1], POLLIN, 0 };
	struct epoll_event ev;
	if (poll(&pa, 1, 0) != 0 || epoll_wait(ep, &ev, 1, 0) != 0)
		test_fail("A1 or the epoll readable while A runs");
	if (write(cmd_a[1], "q", 1) != 1)
		test_fail("write to A");
	if (poll(&pa, 1, 5000) != 1 || !(pa.revents & POLLIN))
		test_fail("A1 not readable after A exited");
	if (epoll_wait(ep, &ev, 1, 5000) != 1 || ev.data.u64 != 0x1234 || !(ev.events & EPOLLIN))
		test_fail("the epoll did not report A2 after A exited");
	memset(&si, 0, sizeof(si));
	if (waitid(P_PIDFD, (id_t)fds[A1], &si, WEXITED) || si.si_pid != a ||
	    si.si_code != CLD_EXITED || si.si_status != 7)
		test_fail("waitid(A1): pid %d code %d status %d", si.si_pid, si.si_code,
			  si.si_status);
}

int main(int argc, char **argv)
{
	test_init(argc, argv);
	if (pipe2(cmd_a, O_CLOEXEC) || pipe2(rep_a, O_CLOEXEC) || pipe2(cmd_b, O_CLOEXEC))
		test_fail("pipe");
	a = spawn_a();
	fds[A1DUP] = fcntl(fds[A1], F_DUPFD, 40); /* A1 is close-on-exec, its dup not */
	fds[A2] = pidfd_open(a, 0);
	fds[A3] = pidfd_open(a, O_NONBLOCK);
	fds[R] = reaped(0, 5);
	fds[RT] = reaped(PIDFD_THREAD, 9);
	b = fork();
	if (b < 0)
		test_fail("fork");
	if (!b) {
		char x;
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		while (read(cmd_b[0], &x, 1) < 0 && errno == EINTR)
			;
		_exit(0);
	}
	pthread_t th;
	if (pthread_create(&th, NULL, thread_main, NULL))
		test_fail("pthread_create");
	while (!__atomic_load_n(&thread_tid, __ATOMIC_SEQ_CST))
		test_sleep_ms(1);
	fds[T] = pidfd_open(thread_tid, PIDFD_THREAD);
	/* after B's fork: an epoll of one process */
	struct epoll_event ev = { .events = EPOLLIN, .data.u64 = 0x1234 };
	ep = epoll_create1(EPOLL_CLOEXEC);
	if (ep < 0 || epoll_ctl(ep, EPOLL_CTL_ADD, fds[A2], &ev))
		test_fail("epoll: %s", strerror(errno));
	for (int i = 0; i < NFD; i++) {
		if (fds[i] < 0)
			test_fail("%s: %s", names[i], strerror(errno));
		fdinfo_lines(0, fds[i], info[i], sizeof(info[i]));
		fdflags[i] = fcntl(fds[i], F_GETFD);
	}

	test_ready();
	test_wait();
	if (test_sabotage()) {
		int other = pidfd_open(b, 0);
		dup2(other, fds[A2]);
		close(other);
	}
	check_after();
	if (write(cmd_b[1], "q", 1) != 1)
		test_fail("write to B");
	int st;
	if (waitpid(b, &st, 0) != b || !WIFEXITED(st) || WEXITSTATUS(st))
		test_fail("B ended with %#x", st);
	test_pass();
}
