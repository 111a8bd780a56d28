// stasis-test: timeout=30
/* Two children stopped by SIGTSTP (each in its own process group, so the stop is not
 * discarded), SIGCHLD blocked in the parent and every one it raised taken. The parent
 * collected the first child's stop (waitpid WUNTRACED) and only looked at the second's
 * (waitid WNOWAIT). After the restore both are stopped again, as the kernel shows it:
 * the first has nothing to report (its /proc/PID/stat exit_code 0), the second reports
 * its stop by SIGTSTP, not SIGSTOP (exit_code 20), and no SIGCHLD waits in the parent
 * (the restored stops raise none the original parent did not have). SIGCONT lets them
 * go on (they exit 7). */
#include "lib.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

/* state and exit_code (field 52: the stop signal of a stopped task until its parent
 * collects it) of @pid */
static char stat_of(pid_t pid, int *code)
{
	char path[64], buf[1024];
	snprintf(path, sizeof(path), "/proc/%d/stat", pid);
	FILE *f = fopen(path, "r");
	if (!f)
		return '?';
	size_t n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = '\0';
	char *p = strrchr(buf, ')');
	if (!p || p[1] != ' ')
		return '?';
	char state = p[2];
	int field = 3;
	for (char *q = p + 2; *q && field < 52; q++)
		if (*q == ' ')
			field++, *code = atoi(q + 1);
	return state;
}

static pid_t stopped_child(void)
{
	pid_t c = fork();
	if (c == 0) {
		signal(SIGTERM, SIG_IGN);
		setpgid(0, 0);
		raise(SIGTSTP);
		_exit(7);
	}
	setpgid(c, c);
	return c;
}

static void take_sigchld(void)
{
	sigset_t s;
	struct timespec zero = { 0, 0 };
	sigemptyset(&s);
	sigaddset(&s, SIGCHLD);
	while (sigtimedwait(&s, NULL, &zero) == SIGCHLD)
		;
}

int main(int argc, char **argv)
{
	int code = 0, st = 0;
	siginfo_t si;
	sigset_t blk, pend;

	test_init(argc, argv);
	sigemptyset(&blk);
	sigaddset(&blk, SIGCHLD);
	sigprocmask(SIG_BLOCK, &blk, NULL);
	pid_t c1 = stopped_child(), c2 = stopped_child();
	TEST_CHECK(waitpid(c1, &st, WUNTRACED) == c1 && WIFSTOPPED(st) && WSTOPSIG(st) == SIGTSTP,
		   "child 1 did not stop by SIGTSTP (status %#x)", st);
	memset(&si, 0, sizeof(si));
	TEST_CHECK(!waitid(P_PID, (id_t)c2, &si, WSTOPPED | WNOWAIT) && si.si_pid == c2 &&
			   si.si_status == SIGTSTP,
		   "child 2 did not stop by SIGTSTP: %s", strerror(errno));
	take_sigchld();
	TEST_CHECK(stat_of(c1, &code) == 'T' && code == 0, "child 1: exit_code %d", code);
	TEST_CHECK(stat_of(c2, &code) == 'T' && code == SIGTSTP, "child 2: exit_code %d", code);
	test_ready();
	test_wait();
	if (test_sabotage()) {
		kill(c1, SIGCONT);
		kill(c1, SIGTSTP);
	}
	test_sleep_ms(100);
	char s = stat_of(c1, &code);
	TEST_CHECK(s == 'T' && code == 0,
		   "after restore child 1 is in state %c with exit_code %d: expected T with its "
		   "stop collected (0)", s, code);
	s = stat_of(c2, &code);
	TEST_CHECK(s == 'T' && code == SIGTSTP,
		   "after restore child 2 is in state %c stopped by signal %d, expected T by %d",
		   s, code, SIGTSTP);
	sigpending(&pend);
	TEST_CHECK(!sigismember(&pend, SIGCHLD), "a SIGCHLD waits in the parent after the restore");
	TEST_CHECK(waitpid(c1, &st, WUNTRACED | WNOHANG) == 0,
		   "child 1's stop, collected before the dump, is reported again (status %#x)", st);
	TEST_CHECK(waitpid(c2, &st, WUNTRACED | WNOHANG) == c2 && WIFSTOPPED(st) &&
			   WSTOPSIG(st) == SIGTSTP,
		   "child 2's stop is not reported as by SIGTSTP (status %#x)", st);
	kill(c1, SIGCONT);
	kill(c2, SIGCONT);
	alarm(10);
	TEST_CHECK(waitpid(c1, &st, 0) == c1 && WIFEXITED(st) && WEXITSTATUS(st) == 7,
		   "child 1 status %#x", st);
	TEST_CHECK(waitpid(c2, &st, 0) == c2 && WIFEXITED(st) && WEXITSTATUS(st) == 7,
		   "child 2 status %#x", st);
	test_pass();
}
