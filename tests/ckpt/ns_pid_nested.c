// stasis-test: timeout=40 needs=root
/* Nested PID namespaces, 3 levels below the host: the root unshares CLONE_NEWPID and
 * forks A (pid 1 of ns1); A does the same for B (pid 1 of ns2), B for C (pid 1 of ns3);
 * C forks D (pid 2 of ns3). After restore every task has the same pid at EVERY level:
 * the NSpid lines of /proc/PID/status are identical, and the tasks are still there; and
 * the innermost namespace's last pid is kept (its next fork gets the pid it would have). */
#include "lib.h"

#include <errno.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#define DEPTH 3

static int host_pids[DEPTH + 1]; /* A, B, C, D as the root sees them */

static int nspid_line(pid_t pid, char *out, size_t len)
{
	char path[64], buf[4096];
	snprintf(path, sizeof(path), "/proc/%d/status", pid);
	FILE *f = fopen(path, "r");
	if (!f)
		return -1;
	size_t n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = '\0';
	char *z = strstr(buf, "\nState:\tZ");
	char *p = strstr(buf, "\nNSpid:");
	if (!p || z)
		return -1; /* gone, or a zombie */
	p++;
	char *e = strchr(p, '\n');
	snprintf(out, len, "%.*s", e ? (int)(e - p) : (int)strlen(p), p);
	return 0;
}

static volatile sig_atomic_t usr1;
static void on_usr1(int sig)
{
	(void)sig;
	usr1 = 1;
}

/* Each level: unshare, fork the next level's init, report its pid, then sleep. */
static __attribute__((noreturn)) void level(int k, int wr)
{
	signal(SIGTERM, SIG_IGN);
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	if (k == DEPTH) { /* C: fork D, a plain member of ns3 */
		pid_t d = fork();
		if (d == 0) {
			signal(SIGTERM, SIG_IGN);
			for (;;)
				pause();
		}
		/* two short-lived children: ns3's last pid is now above every live pid */
		for (int i = 0; i < 2; i++) {
			pid_t e = fork();
			if (e == 0)
				_exit(0);
			waitpid(e, NULL, 0);
		}
		struct sigaction sa = { .sa_handler = on_usr1 };
		sigaction(SIGUSR1, &sa, NULL);
		(void)!write(wr, &d, sizeof(d));
		for (;;) {
			pause();
			if (!usr1)
				continue;
			usr1 = 0;
			pid_t n = fork(); /* the pid the next fork gets in ns3 */
			if (n == 0)
				_exit(0);
			waitpid(n, NULL, 0);
			(void)!write(wr, &n, sizeof(n));
		}
	}
	if (unshare(CLONE_NEWPID) < 0)
		_exit(1);
	pid_t next = fork();
	if (next == 0)
		level(k + 1, wr);
	(void)!write(wr, &next, sizeof(next));
	for (;;)
		pause();
}

int main(int argc, char **argv)
{
	int p[2];
	char before[DEPTH + 1][256], after[256];

	test_init(argc, argv);
	if (pipe(p) < 0 || unshare(CLONE_NEWPID) < 0)
		test_fail("setup: %s", strerror(errno));
	pid_t a = fork();
	if (a < 0)
		test_fail("fork: %s", strerror(errno));
	if (a == 0)
		level(1, p[1]);
	host_pids[0] = a;
	/* the pids the others reported are in their parents' namespaces: read the host
	 * view from /proc/<pid>/task/<pid>/children instead */
	for (int k = 0; k < DEPTH; k++) {
		pid_t ignored;
		if (read(p[0], &ignored, sizeof(ignored)) != sizeof(ignored))
			test_fail("level %d did not report", k + 1);
	}
	for (int k = 1; k <= DEPTH; k++) {
		char path[64], buf[64] = "";
		snprintf(path, sizeof(path), "/proc/%d/task/%d/children", host_pids[k - 1],
			 host_pids[k - 1]);
		for (int tries = 0; tries < 200 && !buf[0]; tries++) {
			FILE *f = fopen(path, "r");
			if (f) {
				if (!fgets(buf, sizeof(buf), f))
					buf[0] = '\0';
				fclose(f);
			}
			if (!buf[0])
				usleep(10000);
		}
		if (sscanf(buf, "%d", &host_pids[k]) != 1)
			test_fail("no child of %d", host_pids[k - 1]);
	}
	for (int k = 0; k <= DEPTH; k++)
		if (nspid_line(host_pids[k], before[k], sizeof(before[k])))
			test_fail("no NSpid for %d", host_pids[k]);
	TEST_CHECK(strstr(before[DEPTH - 1], "\t1") != NULL, "C is not an init: %s",
		   before[DEPTH - 1]);
	test_ready();
	test_wait();
	if (test_sabotage()) {
		kill(host_pids[DEPTH], SIGKILL);
		usleep(200000);
	}
	/* ns3 had pids 1-4 given out (2 still alive): its next fork must get 5 */
	pid_t next = 0;
	kill(host_pids[DEPTH - 1], SIGUSR1);
	alarm(10);
	TEST_CHECK(read(p[0], &next, sizeof(next)) == sizeof(next), "C did not fork");
	alarm(0);
	TEST_CHECK(next == 5, "next pid in the innermost namespace is %d, expected 5 "
		   "(ns_last_pid not kept)", next);
	for (int k = 0; k <= DEPTH; k++) {
		TEST_CHECK(nspid_line(host_pids[k], after, sizeof(after)) == 0,
			   "task %d (level %d) is gone", host_pids[k], k + 1);
		TEST_CHECK(!strcmp(before[k], after),
			   "task %d: '%s' before, '%s' after", host_pids[k], before[k], after);
	}
	kill(a, SIGKILL); /* the namespace inits take everything below with them */
	int st;
	alarm(10);
	waitpid(a, &st, 0);
	test_pass();
}
