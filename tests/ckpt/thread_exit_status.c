// stasis-test: timeout=60 mode=exit-status
/* A zombie-leader process: the main thread calls pthread_exit while a second thread goes
 * on running; the leader stays a zombie task until the whole process exits. The second
 * thread writes "ready" once the leader is a zombie, waits for SIGTERM (delivered to it,
 * the only live thread), checks that its TID, a counter of its own and the leader's
 * state (still a zombie, two tasks listed) are as before, and exits the process with
 * status 42, which `stasis restore` (without -d) must report. */
#include "lib.h"

#include <dirent.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

static pid_t leader, worker_tid;
static volatile unsigned long ticks;

static int count_tasks(void)
{
	DIR *d = opendir("/proc/self/task");
	struct dirent *de;
	int n = 0;

	if (!d)
		return -1;
	while ((de = readdir(d)))
		if (de->d_name[0] != '.')
			n++;
	closedir(d);
	return n;
}

static void *worker(void *arg)
{
	uint64_t deadline = test_now_ns() + 10000000000ull;
	unsigned long before;
	char st;
	int n;

	(void)arg;
	worker_tid = gettid();
	while ((st = test_task_state(0, leader)) != 'Z' && test_now_ns() < deadline)
		test_sleep_ms(5);
	TEST_CHECK(st == 'Z', "the main thread did not become a zombie (state %c)", st ? st : '?');
	n = count_tasks();
	TEST_CHECK(n == 2, "%d tasks listed before the checkpoint, expected 2", n);
	ticks = 1000;
	before = ticks;

	test_ready();
	test_wait();

	if (test_sabotage())
		worker_tid ^= 1;
	TEST_CHECK((pid_t)syscall(SYS_gettid) == worker_tid, "worker tid %d, was %d",
		   (int)syscall(SYS_gettid), (int)worker_tid);
	TEST_CHECK(ticks == before, "worker data %lu, expected %lu", ticks, before);
	st = test_task_state(0, leader);
	TEST_CHECK(st == 'Z', "the main thread (tid %d) is in state %c, expected a zombie",
		   (int)leader, st ? st : '?');
	n = count_tasks();
	TEST_CHECK(n == 2, "%d tasks listed after the restore, expected 2", n);
	test_pass_code(42); /* exit_group(42): the process's exit status */
}

int main(int argc, char **argv)
{
	pthread_t th;
	int err;

	test_init(argc, argv);
	leader = getpid();
	err = pthread_create(&th, NULL, worker, NULL);
	if (err)
		test_fail("pthread_create: %s", strerror(err));
	pthread_exit(NULL);
}
