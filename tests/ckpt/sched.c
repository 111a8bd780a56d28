// stasis-test: timeout=30
/* Scheduling settings that restore must keep, per thread and per process: the main
 * thread SCHED_BATCH at nice 7 bound to the last CPU, I/O priority best-effort 6, a second thread SCHED_OTHER at nice
 * 3 with SCHED_RESET_ON_FORK bound to CPU 0 (not SCHED_IDLE: on a busy machine it would
 * starve), oom_score_adj 345, PR_SET_THP_DISABLE with
 * PR_THP_DISABLE_EXCEPT_ADVISED (where the kernel has it). A restore that forgets them
 * leaves the restorer's: SCHED_OTHER, nice 0, every CPU, 0, THP enabled. */
#include "lib.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#ifndef SCHED_RESET_ON_FORK
#define SCHED_RESET_ON_FORK 0x40000000
#endif

#define IOPRIO_BE6 (2 << 13 | 6) /* best effort, level 6 */

static int ncpu;
static pthread_barrier_t bar;
static volatile int thread_ok = -1;
static char thread_why[200];

static int last_cpu(void)
{
	cpu_set_t s;
	sched_getaffinity(0, sizeof(s), &s);
	int last = 0;
	for (int i = 0; i < CPU_SETSIZE; i++)
		if (CPU_ISSET(i, &s))
			last = i;
	return last;
}

static void bind_to(int cpu)
{
	cpu_set_t s;
	CPU_ZERO(&s);
	CPU_SET(cpu, &s);
	if (sched_setaffinity(0, sizeof(s), &s) < 0)
		test_fail("sched_setaffinity %d: %s", cpu, strerror(errno));
}

static bool bound_to(int cpu)
{
	cpu_set_t s;
	sched_getaffinity(0, sizeof(s), &s);
	return CPU_COUNT(&s) == 1 && CPU_ISSET(cpu, &s);
}

static void *second(void *arg)
{
	struct sched_param p = { 0 };
	sigset_t term;
	(void)arg;
	/* SIGTERM is the main thread's to take (test_wait) */
	sigemptyset(&term);
	sigaddset(&term, SIGTERM);
	pthread_sigmask(SIG_BLOCK, &term, NULL);
	if (sched_setscheduler(0, SCHED_OTHER | SCHED_RESET_ON_FORK, &p) < 0 ||
	    setpriority(PRIO_PROCESS, (id_t)syscall(SYS_gettid), 3) < 0)
		test_fail("SCHED_RESET_ON_FORK, nice 3: %s", strerror(errno));
	if (ncpu > 1)
		bind_to(0);
	pthread_barrier_wait(&bar); /* set up */
	pthread_barrier_wait(&bar); /* restored: check */
	int pol = sched_getscheduler(0);
	int nice = getpriority(PRIO_PROCESS, (id_t)syscall(SYS_gettid));
	if (pol != (SCHED_OTHER | SCHED_RESET_ON_FORK))
		snprintf(thread_why, sizeof(thread_why), "second thread: policy %#x, expected %#x",
			 pol, SCHED_OTHER | SCHED_RESET_ON_FORK);
	else if (nice != 3)
		snprintf(thread_why, sizeof(thread_why), "second thread: nice %d, expected 3", nice);
	else if (ncpu > 1 && !bound_to(0))
		snprintf(thread_why, sizeof(thread_why), "second thread: not bound to CPU 0");
	thread_ok = !thread_why[0];
	pthread_barrier_wait(&bar);
	return NULL;
}

static int read_oom(void)
{
	char buf[16] = { 0 };
	int fd = open("/proc/self/oom_score_adj", O_RDONLY);
	if (fd < 0 || read(fd, buf, sizeof(buf) - 1) <= 0)
		test_fail("read oom_score_adj: %s", strerror(errno));
	close(fd);
	return atoi(buf);
}

int main(int argc, char **argv)
{
	struct sched_param p = { 0 };
	pthread_t th;
	int thp_want;

	test_init(argc, argv);
	ncpu = last_cpu() + 1;
	pthread_barrier_init(&bar, NULL, 2);
	if (pthread_create(&th, NULL, second, NULL))
		test_fail("pthread_create");
	if (sched_setscheduler(0, SCHED_BATCH, &p) < 0 || setpriority(PRIO_PROCESS, 0, 7) < 0)
		test_fail("SCHED_BATCH, nice 7: %s", strerror(errno));
	if (ncpu > 1)
		bind_to(ncpu - 1);
	if (syscall(SYS_ioprio_set, 1, 0, IOPRIO_BE6) < 0)
		test_fail("ioprio_set: %s", strerror(errno));
	if (test_write_text("/proc/self/oom_score_adj", "345"))
		test_fail("oom_score_adj: %s", strerror(errno));
	thp_want = prctl(PR_SET_THP_DISABLE, 1, 1 << 1, 0, 0) == 0 ? 3 : 1;
	if (thp_want == 1 && prctl(PR_SET_THP_DISABLE, 1, 0, 0, 0) < 0)
		test_fail("PR_SET_THP_DISABLE: %s", strerror(errno));
	pthread_barrier_wait(&bar);
	test_ready();
	test_wait();

	if (test_sabotage())
		setpriority(PRIO_PROCESS, 0, 9);
	pthread_barrier_wait(&bar);
	pthread_barrier_wait(&bar);
	TEST_CHECK(thread_ok == 1, "%s", thread_why);
	TEST_CHECK(sched_getscheduler(0) == SCHED_BATCH, "main thread: policy %d, expected %d",
		   sched_getscheduler(0), SCHED_BATCH);
	errno = 0;
	int nice = getpriority(PRIO_PROCESS, 0);
	TEST_CHECK(nice == 7, "main thread: nice %d, expected 7", nice);
	TEST_CHECK(ncpu == 1 || bound_to(ncpu - 1), "main thread: not bound to CPU %d", ncpu - 1);
	long io = syscall(SYS_ioprio_get, 1, 0);
	TEST_CHECK(io == IOPRIO_BE6, "main thread: I/O priority %#lx, expected %#x", io, IOPRIO_BE6);
	TEST_CHECK(read_oom() == 345, "oom_score_adj %d, expected 345", read_oom());
	int thp = prctl(PR_GET_THP_DISABLE, 0, 0, 0, 0);
	TEST_CHECK(thp == thp_want, "PR_GET_THP_DISABLE %d, expected %d", thp, thp_want);
	pthread_join(th, NULL);
	test_pass();
}
