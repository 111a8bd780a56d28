#include "ptrace/ptrace.h"

#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <unistd.h>
#include <string.h>
#include <sys/ptrace.h>
#include <sys/time.h>
#include <sys/wait.h>

#include "core/log.h"
#include "core/util.h"
#include "proc/parse.h"

static void on_alarm(int sig) { (void)sig; }

int pt_wait(pid_t tid, int *status, int timeout_ms)
{
	struct sigaction sa = { .sa_handler = on_alarm }, old;
	struct itimerval it = { .it_value = { timeout_ms / 1000, (timeout_ms % 1000) * 1000 } };
	struct itimerval zero = { 0 };
	pid_t r;
	int err = 0;

	/* Fast path: the stop is usually already there or comes within microseconds. */
	r = waitpid(tid, status, __WALL | WNOHANG);
	if (r == 0) {
		sigemptyset(&sa.sa_mask);
		sigaction(SIGALRM, &sa, &old); /* no SA_RESTART: waitpid gets EINTR */
		setitimer(ITIMER_REAL, &it, NULL);
		r = waitpid(tid, status, __WALL);
		err = errno;
		setitimer(ITIMER_REAL, &zero, NULL);
		sigaction(SIGALRM, &old, NULL);
	} else {
		err = errno;
	}
	if (r < 0) {
		if (err == EINTR) {
			pr_err("ptrace: task %d did not stop within %d ms", tid, timeout_ms);
			return -ETIMEDOUT;
		}
		pr_err("ptrace: waitpid %d: %s", tid, strerror(err));
		return -err;
	}
	if (WIFEXITED(*status) || WIFSIGNALED(*status))
		return -ESRCH;
	return 0;
}

bool pt_task_running(pid_t pid)
{
	char path[64];
	struct proc_stat st;
	if (pid <= 0)
		return false;
	snprintf(path, sizeof(path), "/proc/%d/stat", pid);
	_cleanup_free_ char *buf = read_file_at(AT_FDCWD, path, 4096, NULL);
	if (!buf)
		return false;
	if (proc_parse_stat(buf, &st))
		return true; /* text it cannot parse: not known to be gone */
	return st.state != 'Z' && st.state != 'X';
}

/* Is @tid exiting (ptrace refuses dying tasks with EPERM)? Waits up to 100 ms for the
 * exit to show in /proc. */
static bool task_is_exiting(pid_t tid)
{
	for (int i = 0; i < 100; i++) {
		if (!pt_task_running(tid))
			return true;
		usleep(1000);
	}
	return false;
}

/* A task that does not stop within 100 ms: if it is a vfork parent waiting for its child
 * (it sleeps in wait_for_vfork_done, which no ptrace stop interrupts, until the child
 * execs or exits) say so now instead of timing out after seconds. Peeks with WNOWAIT: the
 * stop, when it comes, is left for pt_wait(). */
static bool in_vfork_wait(pid_t tid)
{
	for (int i = 0; i < 100; i++) {
		siginfo_t si = { 0 };
		if (waitid(P_PID, (id_t)tid, &si, WEXITED | WSTOPPED | WNOHANG | WNOWAIT | __WALL) ||
		    si.si_pid)
			return false;
		usleep(1000);
	}
	char path[64];
	snprintf(path, sizeof(path), "/proc/%d/wchan", tid);
	_cleanup_free_ char *buf = read_file_at(AT_FDCWD, path, 256, NULL);
	/* wait_for_vfork_done() is inlined into kernel_clone(), which blocks for nothing
	 * else: vfork(), and clone/clone3 with CLONE_VFORK (posix_spawn, system) */
	return buf && (strstr(buf, "vfork") || strstr(buf, "kernel_clone"));
}

int pt_seize_stop(pid_t tid, bool exitkill)
{
	return pt_seize_stop_sig(tid, exitkill, NULL);
}

int pt_seize_stop_sig(pid_t tid, bool exitkill, int *stopsig)
{
	long opts = PTRACE_O_TRACESYSGOOD | (exitkill ? PTRACE_O_EXITKILL : 0);
	int status, ret;

	if (ptrace(PTRACE_SEIZE, tid, NULL, (void *)opts) < 0) {
		if (errno == ESRCH)
			return -ESRCH; /* gone: the caller decides whether that is an error */
		if (errno == EPERM && task_is_exiting(tid))
			return -ESRCH; /* dying (a zombie in a moment): same */
		return pr_perror("ptrace: cannot seize task %d", tid);
	}
	if (ptrace(PTRACE_INTERRUPT, tid, NULL, NULL) < 0) {
		ret = pr_perror("ptrace: cannot interrupt task %d", tid);
		ptrace(PTRACE_DETACH, tid, NULL, NULL);
		return ret;
	}
	if (in_vfork_wait(tid)) {
		pr_err("ptrace: task %d is a vfork parent waiting for its child, which shares its "
		       "memory until it execs or exits: not supported", tid);
		ptrace(PTRACE_DETACH, tid, NULL, NULL);
		return -EOPNOTSUPP;
	}
	for (int tries = 0; tries < 64; tries++) {
		ret = pt_wait(tid, &status, PT_WAIT_TIMEOUT_MS);
		if (ret) {
			if (ret == -ESRCH)
				pr_err("ptrace: task %d exited while being frozen", tid);
			else
				ptrace(PTRACE_DETACH, tid, NULL, NULL);
			return ret;
		}
		if (!WIFSTOPPED(status))
			continue;
		if ((status >> 16) == PTRACE_EVENT_STOP) {
			/* a group-stop's notification carries the signal that stopped it; our
			 * interrupt's carries SIGTRAP */
			int s = WSTOPSIG(status);
			if (stopsig)
				*stopsig = s == SIGSTOP || s == SIGTSTP || s == SIGTTIN ||
						   s == SIGTTOU
					   ? s
					   : 0;
			return 0;
		}
		/* A signal arrived before our interrupt: let it be delivered as usual (it
		 * stays visible to the program exactly as without us) and wait again. */
		int sig = WSTOPSIG(status);
		if (ptrace(PTRACE_CONT, tid, NULL, (void *)(long)sig) < 0)
			return pr_perror("ptrace: resume %d with signal %d", tid, sig);
	}
	pr_err("ptrace: task %d keeps receiving signals, cannot freeze it", tid);
	ptrace(PTRACE_DETACH, tid, NULL, NULL);
	return -EAGAIN;
}

int pt_stop_in_signal_path(pid_t tid)
{
	int status, ret;

	if (ptrace(PTRACE_INTERRUPT, tid, NULL, NULL) < 0)
		return pr_perror("ptrace: interrupt %d", tid);
	if (ptrace(PTRACE_CONT, tid, NULL, NULL) < 0)
		return pr_perror("ptrace: resume %d", tid);
	ret = pt_wait(tid, &status, PT_WAIT_TIMEOUT_MS);
	if (ret)
		return ret;
	if (!WIFSTOPPED(status) || (status >> 16) != PTRACE_EVENT_STOP) {
		pr_err("ptrace: task %d: unexpected stop 0x%x while parking it", tid, status);
		return -EIO;
	}
	return 0;
}

int pt_detach(pid_t tid, int sig)
{
	if (ptrace(PTRACE_DETACH, tid, NULL, (void *)(long)sig) < 0)
		return pr_perror("ptrace: detach %d", tid);
	return 0;
}
