// stasis-test: timeout=120
/* A thread storm: three spawner threads continuously create short-lived joinable threads
 * (up to four outstanding each; one in three exits at once, the others sleep 1 or
 * 2 ms first) and join the oldest, so threads are being created and are
 * exiting at the moment of the dump (stasis must re-list threads until the set is stable).
 * Every short-lived thread, numbered by a global sequence, records itself under a mutex
 * (started, live, sum of sequence numbers) and again on its way out (finished, live).
 * After the restore the storm must go on (at least 2000 more threads); the invariants are
 * sampled under the mutex while it runs (started - finished == live, live <= created -
 * joined); at the end, after every spawner stopped and joined its children (bounded):
 * created == started == finished == joined, the sequence sums agree, and live == 0. */
#include "lib.h"

#include <dirent.h>
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#define NSPAWN 3
#define RING 4
#define MAGIC 0x5a5a5a5aUL

struct counts {
	unsigned long created, started, finished, joined, live;
	unsigned long sum_created, sum_started;
};

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static struct counts cnt;
static atomic_ulong next_seq;
static atomic_int stop;
static char spawn_fail[NSPAWN][256];
static pthread_attr_t child_attr;

static void *child(void *arg)
{
	unsigned long seq = (unsigned long)(uintptr_t)arg;
	volatile unsigned long x = seq;

	pthread_mutex_lock(&lock);
	cnt.started++;
	cnt.live++;
	cnt.sum_started += seq;
	pthread_mutex_unlock(&lock);
	for (int i = 0; i < 200; i++)
		x = x * 6364136223846793005UL + 1442695040888963407UL;
	if (seq % 3) { /* two threads in three live 1 or 2 ms: some are alive at the dump */
		struct timespec ts = { 0, (long)(seq % 3) * 1000000L };

		nanosleep(&ts, NULL);
	}
	pthread_mutex_lock(&lock);
	cnt.finished++;
	cnt.live--;
	pthread_mutex_unlock(&lock);
	return (void *)(uintptr_t)(seq ^ MAGIC);
}

static void *spawner(void *arg)
{
	int id = (int)(intptr_t)arg;
	pthread_t ring[RING];
	unsigned long seqs[RING];
	bool used[RING] = { false };
	unsigned long n = 0;

	for (;;) {
		int k = (int)(n % RING);

		if (used[k]) {
			struct timespec ts;
			void *ret = NULL;
			int err;

			clock_gettime(CLOCK_REALTIME, &ts);
			ts.tv_sec += 10;
			err = pthread_timedjoin_np(ring[k], &ret, &ts);
			if (err) {
				snprintf(spawn_fail[id], sizeof(spawn_fail[id]),
					 "spawner %d: join of thread #%lu: %s", id, seqs[k], strerror(err));
				return NULL;
			}
			if ((unsigned long)(uintptr_t)ret != (seqs[k] ^ MAGIC)) {
				snprintf(spawn_fail[id], sizeof(spawn_fail[id]),
					 "spawner %d: thread #%lu returned %#lx", id, seqs[k],
					 (unsigned long)(uintptr_t)ret);
				return NULL;
			}
			used[k] = false;
			pthread_mutex_lock(&lock);
			cnt.joined++;
			pthread_mutex_unlock(&lock);
		}
		if (atomic_load(&stop)) {
			bool any = false;

			for (int j = 0; j < RING; j++)
				any |= used[j];
			if (!any)
				return NULL;
			n++;
			continue;
		}
		seqs[k] = atomic_fetch_add(&next_seq, 1) + 1;
		pthread_mutex_lock(&lock);
		cnt.created++;
		cnt.sum_created += seqs[k];
		pthread_mutex_unlock(&lock);
		{
			int err = pthread_create(&ring[k], &child_attr, child, (void *)(uintptr_t)seqs[k]);

			if (err) {
				snprintf(spawn_fail[id], sizeof(spawn_fail[id]),
					 "spawner %d: pthread_create #%lu: %s", id, seqs[k],
					 strerror(err));
				return NULL;
			}
		}
		used[k] = true;
		n++;
	}
}

static struct counts snapshot(void)
{
	struct counts c;

	pthread_mutex_lock(&lock);
	c = cnt;
	pthread_mutex_unlock(&lock);
	return c;
}

static void check_running(const struct counts *c, const char *when)
{
	TEST_CHECK(c->started - c->finished == c->live,
		   "%s: started %lu - finished %lu != live %lu", when, c->started, c->finished,
		   c->live);
	TEST_CHECK(c->live <= c->created - c->joined && c->created - c->joined <= NSPAWN * RING,
		   "%s: live %lu, created %lu, joined %lu (at most %d outstanding)", when, c->live,
		   c->created, c->joined, NSPAWN * RING);
	TEST_CHECK(c->started <= c->created && c->joined <= c->finished,
		   "%s: created %lu started %lu finished %lu joined %lu", when, c->created,
		   c->started, c->finished, c->joined);
}

int main(int argc, char **argv)
{
	pthread_t sp[NSPAWN];
	struct counts c, at_restore;
	sigset_t term, old;
	uint64_t deadline, t0;
	int i, err, samples = 0;

	test_init(argc, argv);
	pthread_attr_init(&child_attr);
	pthread_attr_setstacksize(&child_attr, 64 * 1024);
	sigemptyset(&term);
	sigaddset(&term, SIGTERM);
	pthread_sigmask(SIG_BLOCK, &term, &old); /* inherited by the spawners and children */
	for (i = 0; i < NSPAWN; i++) {
		err = pthread_create(&sp[i], NULL, spawner, (void *)(intptr_t)i);
		if (err)
			test_fail("pthread_create: %s", strerror(err));
	}
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	deadline = test_now_ns() + 20000000000ull;
	while (snapshot().created < 2000 && test_now_ns() < deadline)
		test_sleep_ms(5);
	c = snapshot();
	TEST_CHECK(c.created >= 2000, "the storm did not start: %lu threads created", c.created);
	check_running(&c, "before the checkpoint");

	test_ready(); /* the storm is raging while the runner dumps */
	test_wait();

	at_restore = snapshot();
	check_running(&at_restore, "right after the restore");
	if (test_sabotage()) {
		pthread_mutex_lock(&lock);
		cnt.started++; /* a thread that never was */
		cnt.live++;
		pthread_mutex_unlock(&lock);
	}
	t0 = test_now_ns();
	deadline = t0 + 20000000000ull;
	do {
		test_sleep_ms(2);
		c = snapshot();
		check_running(&c, "after the restore");
		samples++;
		for (i = 0; i < NSPAWN; i++)
			TEST_CHECK(!spawn_fail[i][0], "%s", spawn_fail[i]);
	} while (c.created < at_restore.created + 2000 && test_now_ns() < deadline);
	TEST_CHECK(c.created >= at_restore.created + 2000,
		   "the storm does not go on after the restore: %lu -> %lu threads created",
		   at_restore.created, c.created);
	test_msg("%lu threads created before SIGTERM, %lu more in %.1f ms after (%d samples)",
		 at_restore.created, c.created - at_restore.created,
		 (double)(test_now_ns() - t0) / 1e6, samples);

	atomic_store(&stop, 1);
	for (i = 0; i < NSPAWN; i++) {
		struct timespec ts;

		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_sec += 20;
		err = pthread_timedjoin_np(sp[i], NULL, &ts);
		TEST_CHECK(err == 0, "join of spawner %d: %s", i, strerror(err));
		TEST_CHECK(!spawn_fail[i][0], "%s", spawn_fail[i]);
	}
	c = snapshot();
	TEST_CHECK(c.created == c.started && c.started == c.finished && c.finished == c.joined,
		   "at the end: created %lu started %lu finished %lu joined %lu", c.created,
		   c.started, c.finished, c.joined);
	TEST_CHECK(c.sum_created == c.sum_started, "sequence sums differ: created %lu, started %lu",
		   c.sum_created, c.sum_started);
	TEST_CHECK(c.live == 0, "live %lu at the end", c.live);
	TEST_CHECK(c.created == atomic_load(&next_seq), "created %lu, sequence %lu", c.created,
		   atomic_load(&next_seq));
	test_pass();
}
