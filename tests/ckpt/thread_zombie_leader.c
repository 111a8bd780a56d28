// stasis-test: timeout=60
/* A child process whose main thread exited with the raw exit syscall and status 3 while
 * two other threads run on (a zombie thread-group leader below the root of the tree).
 * The threads count in memory shared with the parent; one has a name of its own, the
 * leader another. After the restore the parent checks, from outside, that the child's
 * leader is still a zombie with its name and ids, that the same threads (tids) are
 * listed and count on; the child's threads check from inside that getpid() and their
 * tids are the same and that /proc/self shows the zombie leader. The leader's exit code
 * (/proc/PID/stat's exit_code, 3 << 8), its nice value and its blocked mask (set by the
 * main thread alone before it exited) must be what they were. Then the threads exit one by
 * one (SYS_exit, not exit_group): the parent must reap the child with the status of the
 * last one (the kernel reports the last thread's exit code). */
#include "lib.h"

#include <dirent.h>
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#define LEADER_STATUS 3
#define LAST_STATUS 9
#define LEADER_NICE 4

struct shared {
	_Atomic unsigned long counter[2];
	atomic_int phase; /* 0 running, 1 check and exit */
	atomic_int ready, done;
	pid_t pid, tids[2];
	char fail[2][200];
};

static struct shared *sh;

/* the tids listed in /proc/@pid/task, sorted, into @out (at most @max); their number */
static int list_tasks(pid_t pid, pid_t *out, int max)
{
	char path[64];
	struct dirent *de;
	DIR *d;
	int n = 0;

	snprintf(path, sizeof(path), "/proc/%d/task", (int)pid);
	d = opendir(path);
	if (!d)
		return -1;
	while ((de = readdir(d)))
		if (de->d_name[0] != '.' && n < max)
			out[n++] = (pid_t)atoi(de->d_name);
	closedir(d);
	for (int i = 1; i < n; i++)
		for (int j = i; j > 0 && out[j - 1] > out[j]; j--) {
			pid_t t = out[j];
			out[j] = out[j - 1];
			out[j - 1] = t;
		}
	return n;
}

static void *worker(void *arg)
{
	int i = (int)(intptr_t)arg;
	char *fail = sh->fail[i];

	sh->tids[i] = (pid_t)syscall(SYS_gettid);
	if (i == 1)
		prctl(PR_SET_NAME, "zl-other");
	atomic_fetch_add(&sh->ready, 1);
	while (atomic_load(&sh->phase) == 0) {
		atomic_fetch_add(&sh->counter[i], 1);
		if (i == 1)
			test_sleep_ms(1);
	}
	if (getpid() != sh->pid || (pid_t)syscall(SYS_gettid) != sh->tids[i])
		snprintf(fail, sizeof(sh->fail[0]), "thread %d: pid %d tid %d, were %d %d", i,
			 (int)getpid(), (int)syscall(SYS_gettid), (int)sh->pid, (int)sh->tids[i]);
	else if (test_task_state(getpid(), getpid()) != 'Z')
		snprintf(fail, sizeof(sh->fail[0]), "thread %d: /proc/self/task/%d is not a zombie",
			 i, (int)getpid());
	atomic_fetch_add(&sh->done, 1);
	/* the first thread waits for the other to be gone: the last one's exit ends the
	 * process, whose status is then the leader's */
	for (char st; i == 0 && (st = test_task_state(0, sh->tids[1])) && st != 'Z' && st != 'X';)
		test_sleep_ms(1);
	if (test_sabotage() && i == 0)
		syscall(SYS_exit_group, 0);
	syscall(SYS_exit, i == 0 ? LAST_STATUS : 0);
	return NULL;
}

static void child(void)
{
	pthread_t th;
	sigset_t usr2;

	prctl(PR_SET_NAME, "zl-leader");
	sigemptyset(&usr2);
	sigaddset(&usr2, SIGUSR2);
	for (int i = 0; i < 2; i++)
		if (pthread_create(&th, NULL, worker, (void *)(intptr_t)i))
			_exit(90);
	while (atomic_load(&sh->ready) < 2)
		test_sleep_ms(1);
	/* settings of the main thread only, which its zombie shows */
	if (setpriority(PRIO_PROCESS, (id_t)syscall(SYS_gettid), LEADER_NICE) ||
	    pthread_sigmask(SIG_BLOCK, &usr2, NULL))
		_exit(91);
	syscall(SYS_exit, LEADER_STATUS); /* the main thread only */
}

/* The blocked mask (SigBlk) of the main thread of @pid, or ~0. */
static unsigned long long leader_sigblk(pid_t pid)
{
	char path[64], buf[4096], *p;
	snprintf(path, sizeof(path), "/proc/%d/task/%d/status", (int)pid, (int)pid);
	test_read_text(path, buf, sizeof(buf));
	p = strstr(buf, "SigBlk:");
	return p ? strtoull(p + 7, NULL, 16) : ~0ULL;
}

/* the last field of /proc/@pid/stat: the exit code of the main thread, or -1 */
static long exit_code_of(pid_t pid)
{
	char path[64], buf[1024], *sp;
	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	test_read_text(path, buf, sizeof(buf));
	buf[strcspn(buf, "\n")] = '\0';
	sp = strrchr(buf, ' ');
	return sp ? strtol(sp + 1, NULL, 10) : -1;
}

static void read_comm(pid_t pid, pid_t tid, char *out, size_t len)
{
	char path[64];
	snprintf(path, sizeof(path), "/proc/%d/task/%d/comm", (int)pid, (int)tid);
	test_read_text(path, out, len);
	out[strcspn(out, "\n")] = '\0';
}

int main(int argc, char **argv)
{
	pid_t pid, before[4], after[4];
	unsigned long c1[2];
	char comm[32];
	int nb, na, st;
	uint64_t deadline;

	test_init(argc, argv);
	sh = mmap(NULL, sizeof(*sh), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (sh == MAP_FAILED)
		test_fail("mmap: %s", strerror(errno));
	pid = fork();
	if (pid < 0)
		test_fail("fork: %s", strerror(errno));
	if (pid == 0)
		child();
	sh->pid = pid;
	deadline = test_now_ns() + 10000000000ull;
	while ((atomic_load(&sh->ready) < 2 || test_task_state(pid, pid) != 'Z') &&
	       test_now_ns() < deadline)
		test_sleep_ms(2);
	TEST_CHECK(test_task_state(pid, pid) == 'Z', "the child's main thread did not exit");
	TEST_CHECK(exit_code_of(pid) == LEADER_STATUS << 8, "the leader's exit code reads %ld",
		   exit_code_of(pid));
	TEST_CHECK(leader_sigblk(pid) == 1ULL << (SIGUSR2 - 1) &&
		   getpriority(PRIO_PROCESS, (id_t)pid) == LEADER_NICE,
		   "the leader's mask %llx or nice %d are not what it set",
		   leader_sigblk(pid), getpriority(PRIO_PROCESS, (id_t)pid));
	nb = list_tasks(pid, before, 4);
	TEST_CHECK(nb == 3, "%d tasks listed before the checkpoint, expected 3", nb);

	test_ready();
	test_wait();

	/* the leader exits as the restored threads are let go: a moment */
	deadline = test_now_ns() + 5000000000ull;
	while (test_task_state(pid, pid) != 'Z' && test_now_ns() < deadline)
		test_sleep_ms(1);
	char st0 = test_task_state(pid, pid);
	TEST_CHECK(st0 == 'Z', "the child's main thread is in state %c, not a zombie",
		   st0 ? st0 : '?');
	TEST_CHECK(exit_code_of(pid) == LEADER_STATUS << 8,
		   "the leader's exit code reads %ld after the restore, was %d", exit_code_of(pid),
		   LEADER_STATUS << 8);
	TEST_CHECK(leader_sigblk(pid) == 1ULL << (SIGUSR2 - 1),
		   "the leader's blocked mask is %llx after the restore, was %llx",
		   leader_sigblk(pid), 1ULL << (SIGUSR2 - 1));
	TEST_CHECK(getpriority(PRIO_PROCESS, (id_t)pid) == LEADER_NICE,
		   "the leader's nice value is %d after the restore, was %d",
		   getpriority(PRIO_PROCESS, (id_t)pid), LEADER_NICE);
	na = list_tasks(pid, after, 4);
	TEST_CHECK(na == nb && !memcmp(before, after, sizeof(pid_t) * (size_t)nb),
		   "tasks listed after the restore differ (%d, were %d)", na, nb);
	read_comm(pid, pid, comm, sizeof(comm));
	TEST_CHECK(!strcmp(comm, "zl-leader"), "the leader's name is '%s'", comm);
	read_comm(pid, sh->tids[1], comm, sizeof(comm));
	TEST_CHECK(!strcmp(comm, "zl-other"), "thread %d's name is '%s'", (int)sh->tids[1], comm);
	for (int i = 0; i < 2; i++)
		c1[i] = atomic_load(&sh->counter[i]);
	deadline = test_now_ns() + 5000000000ull;
	for (int i = 0; i < 2; i++) {
		while (atomic_load(&sh->counter[i]) <= c1[i] + 2 && test_now_ns() < deadline)
			test_sleep_ms(2);
		TEST_CHECK(atomic_load(&sh->counter[i]) > c1[i] + 2,
			   "thread %d does not run after the restore", i);
	}

	atomic_store(&sh->phase, 1);
	st = test_reap(pid, false, 10);
	for (int i = 0; i < 2; i++)
		TEST_CHECK(!sh->fail[i][0], "%s", sh->fail[i]);
	TEST_CHECK(atomic_load(&sh->done) == 2, "%d threads checked themselves", atomic_load(&sh->done));
	TEST_CHECK(st >= 0 && WIFEXITED(st) && WEXITSTATUS(st) == LAST_STATUS,
		   "the child ended with status %#x, expected exit %d (its last thread's)", st,
		   LAST_STATUS);
	test_pass();
}
