// stasis-test: timeout=300
/* 1000 threads on 64 KiB stacks, mostly asleep: each records its TID, then loops
 * incrementing its own counter slot, checking gettid() against the recorded TID and its
 * __thread copy, and sleeping in FUTEX_WAIT (200 ms timeout, or woken by the main thread
 * bumping a generation word). After the restore: /proc/self/task lists 1001 tasks, every
 * counter slot increases, and every thread, asked to check itself, confirms its TID and TLS
 * are unchanged; then all threads return and are joined (bounded). */
#include "lib.h"

#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <linux/futex.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#define NTHR 1000
#define SABOTAGED 777

struct slot {
	pthread_t th;
	volatile pid_t tid;
	_Atomic unsigned long counter;
	atomic_int bad;		/* gettid() differed from tid at least once */
	atomic_int checked;	/* 1: final check passed, 2: failed */
	pid_t seen;		/* the tid the final check saw */
};

static struct slot slots[NTHR];
static atomic_int gen;
static atomic_int phase; /* 0 run, 1 check and exit */
static atomic_int started;
static __thread int tls_index = -1;

static void futex_wake_all(void)
{
	atomic_fetch_add(&gen, 1);
	syscall(SYS_futex, &gen, FUTEX_WAKE_PRIVATE, INT_MAX, NULL, NULL, 0);
}

static void *worker(void *arg)
{
	int idx = (int)(intptr_t)arg;
	struct slot *s = &slots[idx];

	tls_index = idx;
	s->tid = gettid();
	atomic_fetch_add(&started, 1);
	while (!atomic_load(&phase)) {
		struct timespec ts = { 0, 200 * 1000000L };
		int g = atomic_load(&gen);

		atomic_fetch_add(&s->counter, 1);
		if ((pid_t)syscall(SYS_gettid) != s->tid || tls_index != idx)
			atomic_store(&s->bad, 1);
		if (atomic_load(&phase))
			break;
		syscall(SYS_futex, &gen, FUTEX_WAIT_PRIVATE, g, &ts, NULL, 0);
	}
	s->seen = (pid_t)syscall(SYS_gettid);
	atomic_store(&s->checked, s->seen == s->tid && tls_index == idx && !atomic_load(&s->bad) ? 1 : 2);
	return (void *)(intptr_t)idx;
}

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

int main(int argc, char **argv)
{
	static unsigned long c1[NTHR];
	pthread_attr_t attr;
	sigset_t term, old;
	uint64_t deadline;
	int i, err, n, lagging;

	test_init(argc, argv);
	/* the threads inherit a mask with SIGTERM blocked: SIGTERM is the main thread's */
	sigemptyset(&term);
	sigaddset(&term, SIGTERM);
	pthread_sigmask(SIG_BLOCK, &term, &old);
	pthread_attr_init(&attr);
	err = pthread_attr_setstacksize(&attr, 64 * 1024);
	if (err)
		test_fail("pthread_attr_setstacksize: %s", strerror(err));
	for (i = 0; i < NTHR; i++) {
		err = pthread_create(&slots[i].th, &attr, worker, (void *)(intptr_t)i);
		if (err)
			test_fail("pthread_create #%d: %s", i, strerror(err));
	}
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	deadline = test_now_ns() + 30000000000ull;
	while (atomic_load(&started) < NTHR && test_now_ns() < deadline)
		test_sleep_ms(10);
	TEST_CHECK(atomic_load(&started) == NTHR, "only %d threads started", atomic_load(&started));
	n = count_tasks();
	TEST_CHECK(n == NTHR + 1, "%d tasks before the checkpoint, expected %d", n, NTHR + 1);

	test_ready();
	test_wait();

	if (test_sabotage())
		slots[SABOTAGED].tid ^= 1;
	n = count_tasks();
	TEST_CHECK(n == NTHR + 1, "%d tasks after the restore, expected %d", n, NTHR + 1);
	for (i = 0; i < NTHR; i++)
		c1[i] = atomic_load(&slots[i].counter);
	deadline = test_now_ns() + 30000000000ull;
	do {
		futex_wake_all();
		test_sleep_ms(50);
		lagging = -1;
		for (i = 0; i < NTHR && lagging < 0; i++)
			if (atomic_load(&slots[i].counter) < c1[i] + 2)
				lagging = i;
	} while (lagging >= 0 && test_now_ns() < deadline);
	TEST_CHECK(lagging < 0, "thread %d (tid %d) does not run after the restore: counter %lu -> %lu",
		   lagging, (int)slots[lagging].tid, c1[lagging],
		   atomic_load(&slots[lagging].counter));

	atomic_store(&phase, 1);
	futex_wake_all();
	deadline = test_now_ns() + 30000000000ull;
	for (i = 0; i < NTHR; i++) {
		uint64_t now = test_now_ns();
		struct timespec ts;
		void *ret = NULL;

		/* pthread_timedjoin_np takes CLOCK_REALTIME: convert the remaining time */
		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_sec += now < deadline ? (time_t)((deadline - now) / 1000000000ull) : 0;
		err = pthread_timedjoin_np(slots[i].th, &ret, &ts);
		TEST_CHECK(err == 0, "pthread_join of thread %d (tid %d, checked %d): %s", i,
			   (int)slots[i].tid, atomic_load(&slots[i].checked), strerror(err));
		TEST_CHECK(ret == (void *)(intptr_t)i, "thread %d returned %p", i, ret);
		TEST_CHECK(atomic_load(&slots[i].checked) == 1,
			   "thread %d: tid %d, recorded %d (mismatch seen in the loop: %d)", i,
			   (int)slots[i].seen, (int)slots[i].tid, atomic_load(&slots[i].bad));
	}
	n = count_tasks();
	TEST_CHECK(n == 1, "%d tasks after joining every thread", n);
	test_pass();
}
