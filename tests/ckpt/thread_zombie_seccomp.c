// stasis-test: timeout=30
// stasis-test: nonroot-known=reading a seccomp filter (PTRACE_SECCOMP_GET_FILTER) needs
//   CAP_SYS_ADMIN in the initial user namespace: the dump is refused
// stasis-test: rootless-known=reading a seccomp filter (PTRACE_SECCOMP_GET_FILTER) needs
//   CAP_SYS_ADMIN in the initial user namespace: the dump is refused
/* A zombie thread-group leader under seccomp: the main thread installs filter A on every
 * thread (TSYNC: getppid fails with EDOM), thread 1 adds filter B of its own (getpgid
 * fails with ENOEXEC), then the main thread exits (SYS_exit). The image puts the exited
 * main thread first with the filters its threads share (A), so that A is still installed
 * once for all and B on thread 1 only. After the restore: in both threads getppid fails
 * with EDOM; getpgid fails with ENOEXEC in thread 1 only; /proc shows filter counts 1 and
 * 2; the leader is still a zombie. */
#include "lib.h"

#include <errno.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

static pid_t leader, tids[2];
static atomic_int ready, done;
static char fails[2][160];

static int install(long nr, int err, unsigned int flags)
{
	struct sock_filter f[] = {
		BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, (unsigned int)nr, 0, 1),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | (unsigned int)err),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
	};
	struct sock_fprog p = { 4, f };
	return (int)syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, flags, &p);
}

/* Seccomp_filters of thread @tid (this process), -1 if unreadable */
static int nfilters(pid_t tid)
{
	char path[64], buf[4096], *p;
	snprintf(path, sizeof(path), "/proc/self/task/%d/status", (int)tid);
	test_read_text(path, buf, sizeof(buf));
	p = strstr(buf, "Seccomp_filters:");
	return p ? atoi(p + strlen("Seccomp_filters:")) : -1;
}

static void check(int i)
{
	char *f = fails[i];
	long r = syscall(SYS_getppid);
	int e = errno;
	if (r != -1 || e != EDOM) {
		snprintf(f, sizeof(fails[0]), "thread %d: getppid gave %ld/%s, expected EDOM", i, r,
			 strerror(e));
		return;
	}
	r = syscall(SYS_getpgid, 0);
	e = errno;
	if (i == 1 ? (r != -1 || e != ENOEXEC) : r < 0)
		snprintf(f, sizeof(fails[0]), "thread %d: getpgid gave %ld/%s", i, r, strerror(e));
	else if (nfilters(tids[i]) != i + 1)
		snprintf(f, sizeof(fails[0]), "thread %d: %d filters, expected %d", i,
			 nfilters(tids[i]), i + 1);
}

static void *worker(void *arg)
{
	int i = (int)(intptr_t)arg;
	sigset_t term;
	sigemptyset(&term);
	sigaddset(&term, SIGTERM);
	if (i == 1) /* the runner's SIGTERM goes to thread 0, which waits for it */
		pthread_sigmask(SIG_BLOCK, &term, NULL);
	tids[i] = (pid_t)syscall(SYS_gettid);
	atomic_fetch_add(&ready, 1);
	while (atomic_load(&ready) < 3) /* the main thread installed A */
		test_sleep_ms(1);
	if (i == 1 && install(SYS_getpgid, ENOEXEC, 0))
		snprintf(fails[1], sizeof(fails[0]), "filter B: %s", strerror(errno));
	atomic_fetch_add(&ready, 1);
	if (i == 1) {
		while (!test_stop_requested()) /* (the restore is over) */
			test_sleep_ms(5);
		check(1);
		atomic_store(&done, 1);
		return NULL;
	}
	uint64_t deadline = test_now_ns() + 10000000000ull;
	while (test_task_state(0, leader) != 'Z' && test_now_ns() < deadline)
		test_sleep_ms(2);
	TEST_CHECK(test_task_state(0, leader) == 'Z', "the main thread did not exit");
	TEST_CHECK(!fails[1][0], "%s", fails[1]);

	test_ready();
	test_wait();

	deadline = test_now_ns() + 5000000000ull;
	while (test_task_state(0, leader) != 'Z' && test_now_ns() < deadline)
		test_sleep_ms(1);
	TEST_CHECK(test_task_state(0, leader) == 'Z',
		   "the main thread is not a zombie after the restore");
	if (test_sabotage())
		install(SYS_getppid, EPERM, 0); /* a filter the image does not have */
	check(0);
	TEST_CHECK(!fails[0][0], "%s", fails[0]);
	deadline = test_now_ns() + 5000000000ull;
	while (!atomic_load(&done) && test_now_ns() < deadline)
		test_sleep_ms(1);
	TEST_CHECK(atomic_load(&done), "thread 1 did not check itself");
	TEST_CHECK(!fails[1][0], "%s", fails[1]);
	test_pass();
}

int main(int argc, char **argv)
{
	pthread_t th;

	test_init(argc, argv);
	leader = getpid();
	for (int i = 0; i < 2; i++)
		if (pthread_create(&th, NULL, worker, (void *)(intptr_t)i))
			test_fail("pthread_create failed");
	while (atomic_load(&ready) < 2)
		test_sleep_ms(1);
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) ||
	    install(SYS_getppid, EDOM, SECCOMP_FILTER_FLAG_TSYNC))
		test_fail("filter A: %s", strerror(errno));
	atomic_fetch_add(&ready, 1);
	while (atomic_load(&ready) < 5)
		test_sleep_ms(1);
	syscall(SYS_exit, 0);
}
