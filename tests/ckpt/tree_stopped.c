// stasis-test: timeout=30
/* A child stopped by SIGSTOP (job control) at dump is restored stopped: after restore its
 * state is 'T', it does not run, and SIGCONT lets it go on (it then exits with 7). */
#include "lib.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static char state_of(pid_t pid)
{
	char path[64], buf[512];
	snprintf(path, sizeof(path), "/proc/%d/stat", pid);
	FILE *f = fopen(path, "r");
	if (!f)
		return '?';
	size_t n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = '\0';
	char *p = strrchr(buf, ')');
	return p && p[1] == ' ' ? p[2] : '?';
}

static void sleep_ms(long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000 };
	nanosleep(&ts, NULL);
}

int main(int argc, char **argv)
{
	test_init(argc, argv);
	pid_t c = fork();
	if (c == 0) {
		signal(SIGTERM, SIG_IGN);
		raise(SIGSTOP);
		_exit(7);
	}
	for (int i = 0; i < 200 && state_of(c) != 'T'; i++)
		sleep_ms(10);
	TEST_CHECK(state_of(c) == 'T', "child did not stop");
	test_ready();
	test_wait();
	if (test_sabotage())
		kill(c, SIGCONT);
	sleep_ms(100);
	TEST_CHECK(state_of(c) == 'T', "the child is not stopped after restore (state %c)",
		   state_of(c));
	kill(c, SIGCONT);
	int st = 0;
	alarm(10);
	TEST_CHECK(waitpid(c, &st, 0) == c && WIFEXITED(st) && WEXITSTATUS(st) == 7,
		   "child status %#x", st);
	test_pass();
}
