// stasis-test: timeout=30
/* NUMA memory policies of threads (what `numactl --interleave=all` sets before exec):
 * the main thread interleaves over node 0, a second thread binds to node 0 with
 * MPOL_F_STATIC_NODES, a third prefers node 0, a fourth keeps the default. After the
 * restore each thread's get_mempolicy gives its mode and node mask again. */
#include "lib.h"

#include <errno.h>
#include <linux/mempolicy.h>
#include <pthread.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#define NT 4
static const int modes[NT] = { MPOL_INTERLEAVE, MPOL_BIND | MPOL_F_STATIC_NODES, MPOL_PREFERRED,
			       MPOL_DEFAULT };
static int got[NT];
static unsigned long masks[NT];
static volatile int phase;
static pthread_barrier_t bar;

static long set_policy(int mode)
{
	unsigned long node0 = 1;
	return syscall(SYS_set_mempolicy, mode, mode == MPOL_DEFAULT ? NULL : &node0,
		       mode == MPOL_DEFAULT ? 0 : 2);
}

static void read_policy(int i)
{
	unsigned long mask[16] = { 0 };
	if (syscall(SYS_get_mempolicy, &got[i], mask, 1025, NULL, 0) < 0)
		got[i] = -errno;
	masks[i] = mask[0];
}

static void *worker(void *arg)
{
	int i = (int)(long)arg;
	if (set_policy(modes[i]) < 0)
		got[i] = -errno;
	pthread_barrier_wait(&bar);
	while (phase == 0)
		usleep(1000);
	read_policy(i);
	pthread_barrier_wait(&bar);
	return NULL;
}

int main(int argc, char **argv)
{
	pthread_t th[NT];
	test_init(argc, argv);
	if (set_policy(modes[0]) < 0)
		test_fail("set_mempolicy: %s", strerror(errno));
	pthread_barrier_init(&bar, NULL, NT);
	for (long i = 1; i < NT; i++)
		if (pthread_create(&th[i], NULL, worker, (void *)i))
			test_fail("pthread_create");
	pthread_barrier_wait(&bar);
	for (int i = 1; i < NT; i++)
		if (got[i] < 0)
			test_fail("thread %d: set_mempolicy: %s", i, strerror(-got[i]));
	test_ready();
	test_wait();

	phase = 1;
	read_policy(0);
	pthread_barrier_wait(&bar);
	if (test_sabotage())
		got[2] = MPOL_DEFAULT;
	for (int i = 0; i < NT; i++) {
		unsigned long want = modes[i] == MPOL_DEFAULT ? 0 : 1;
		TEST_CHECK(got[i] == modes[i] && masks[i] == want,
			   "thread %d: policy %#x mask %#lx, was %#x mask %#lx", i, got[i], masks[i],
			   modes[i], want);
	}
	test_pass();
}
