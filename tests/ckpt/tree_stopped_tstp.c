// stasis-test: timeout=30
/* A child stopped by SIGTSTP (its own process group, so the stop is not discarded) is
 * restored stopped by SIGTSTP, not SIGSTOP: its parent's waitpid and /proc/PID/stat's
 * exit_code report the signal that stopped it. SIGCONT lets it go on (it exits 7). */
#include "lib.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

/* state and exit_code (field 52: the stop signal of a stopped task) of @pid */
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

int main(int argc, char **argv)
{
	int code = 0, st = 0;

	test_init(argc, argv);
	pid_t c = fork();
	if (c == 0) {
		signal(SIGTERM, SIG_IGN);
		setpgid(0, 0);
		raise(SIGTSTP);
		_exit(7);
	}
	setpgid(c, c);
	TEST_CHECK(waitpid(c, &st, WUNTRACED) == c && WIFSTOPPED(st) && WSTOPSIG(st) == SIGTSTP,
		   "child did not stop by SIGTSTP (status %#x)", st);
	test_ready();
	test_wait();
	if (test_sabotage()) {
		kill(c, SIGCONT);
		kill(c, SIGSTOP);
	}
	test_sleep_ms(100);
	char s = stat_of(c, &code);
	TEST_CHECK(s == 'T' && code == SIGTSTP,
		   "after restore the child is in state %c stopped by signal %d, expected T by %d",
		   s, code, SIGTSTP);
	kill(c, SIGCONT);
	alarm(10);
	TEST_CHECK(waitpid(c, &st, 0) == c && WIFEXITED(st) && WEXITSTATUS(st) == 7,
		   "child status %#x", st);
	test_pass();
}
