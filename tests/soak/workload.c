/* The soak workload (tests/soak.py): a busy process tree checkpointed and restored many
 * times in a row, checking itself all along (the tests/ckpt/lib.h protocol: ready, then
 * PASS or FAIL on SIGTERM).
 *   - SOAK_MB MiB (default 512) of anonymous memory: 4 threads rewrite random pages with
 *     (page index, generation) and check every page they touch against a generation table;
 *   - a child streaming numbered records through a pipe to the root, which checks that
 *     each is the next one (no gap, no duplicate);
 *   - a second child echoing checksummed blocks back over a unix socketpair.
 * Every failure is a FAIL with its reason; on SIGTERM everything is checked once more. */
#include "lib.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#define PAGE 4096
#define WORKERS 4
#define BLOCK 1024

static uint8_t *mem;
static size_t npages;
static _Atomic uint32_t *gen;   /* the generation each page holds */
static pthread_mutex_t *locks;  /* one per 1024 pages */
static atomic_int failed;
static atomic_int started; /* workers running (their signal mask their own again) */
static char why[256];

static void fail_later(size_t page, size_t got)
{
	if (atomic_exchange(&failed, 1) == 0)
		snprintf(why, sizeof(why), "page %zu holds another generation (%zu)", page, got);
}

static void check_page(size_t i)
{
	const uint64_t *w = (const uint64_t *)(mem + i * PAGE);
	uint32_t g = atomic_load(&gen[i]);
	if (w[0] != i || w[1] != g || w[PAGE / 8 - 1] != (i ^ g))
		fail_later(i, (size_t)w[1]);
}

static void write_page(size_t i, uint32_t g)
{
	uint64_t *w = (uint64_t *)(mem + i * PAGE);
	w[0] = i;
	w[1] = g;
	w[PAGE / 8 - 1] = i ^ g;
	atomic_store(&gen[i], g);
}

static void *worker(void *arg)
{
	uint64_t rng = (uintptr_t)arg * 0x9e3779b97f4a7c15ULL + 1;
	atomic_fetch_add(&started, 1);
	while (!test_stop_requested() && !atomic_load(&failed)) {
		size_t i = test_xorshift64(&rng) % npages;
		pthread_mutex_t *l = &locks[i / 1024];
		pthread_mutex_lock(l);
		check_page(i);
		write_page(i, atomic_load(&gen[i]) + 1);
		pthread_mutex_unlock(l);
	}
	return NULL;
}

static __attribute__((noreturn)) void producer(int wr)
{
	signal(SIGTERM, SIG_IGN);
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	for (uint64_t seq = 0;; seq++) {
		uint64_t rec[2] = { seq, seq * 0x2545f4914f6cdd1dULL };
		if (test_write_full(wr, rec, sizeof(rec)))
			_exit(1);
	}
}

static __attribute__((noreturn)) void echoer(int sk)
{
	signal(SIGTERM, SIG_IGN);
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	char buf[BLOCK];
	for (;;) {
		if (test_read_full(sk, buf, sizeof(buf)) || test_write_full(sk, buf, sizeof(buf)))
			_exit(1);
	}
}

static uint64_t next_seq;
static void drain_pipe(int rd)
{
	uint64_t rec[2];
	for (int k = 0; k < 64; k++) {
		if (test_read_full(rd, rec, sizeof(rec)))
			test_fail("the pipe from the producer ended");
		if (rec[0] != next_seq || rec[1] != rec[0] * 0x2545f4914f6cdd1dULL)
			test_fail("pipe record %llu, expected %llu", (unsigned long long)rec[0],
				  (unsigned long long)next_seq);
		next_seq++;
	}
}

static uint64_t echo_n;
static void echo_once(int sk)
{
	char out[BLOCK], in[BLOCK];
	for (size_t i = 0; i < sizeof(out); i++)
		out[i] = (char)(echo_n * 31 + i);
	if (test_write_full(sk, out, sizeof(out)) || test_read_full(sk, in, sizeof(in)))
		test_fail("the socketpair to the echoer broke");
	if (memcmp(in, out, sizeof(in)))
		test_fail("echo %llu came back different", (unsigned long long)echo_n);
	echo_n++;
}

int main(int argc, char **argv)
{
	int p[2], sp[2];
	const char *mb = getenv("SOAK_MB");
	size_t bytes = (size_t)(mb ? atol(mb) : 512) << 20;

	test_init(argc, argv);
	npages = bytes / PAGE;
	if (npages < 1024)
		npages = 1024;
	mem = mmap(NULL, npages * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	gen = calloc(npages, sizeof(*gen));
	locks = calloc(npages / 1024 + 1, sizeof(*locks));
	if (mem == MAP_FAILED || !gen || !locks)
		test_fail("no memory for %zu pages", npages);
	for (size_t i = 0; i < npages / 1024 + 1; i++)
		pthread_mutex_init(&locks[i], NULL);
	for (size_t i = 0; i < npages; i++)
		write_page(i, 1);
	if (pipe(p) < 0 || socketpair(AF_UNIX, SOCK_STREAM, 0, sp) < 0)
		test_fail("pipe/socketpair: %s", strerror(errno));
	pid_t a = fork();
	if (a == 0) {
		close(p[0]);
		close(sp[0]);
		close(sp[1]);
		producer(p[1]);
	}
	pid_t b = fork();
	if (a < 0 || b < 0)
		test_fail("fork: %s", strerror(errno));
	if (b == 0) {
		close(p[0]);
		close(p[1]);
		close(sp[0]);
		echoer(sp[1]);
	}
	close(p[1]);
	close(sp[1]);
	pthread_t t[WORKERS];
	for (uintptr_t k = 0; k < WORKERS; k++)
		if (pthread_create(&t[k], NULL, worker, (void *)(k + 1)))
			test_fail("pthread_create");
	/* ready once every worker runs: pthread_create blocks all signals in a new thread
	 * until it starts (the state comparison would see that mask) */
	while (atomic_load(&started) < WORKERS)
		usleep(1000);
	test_ready();
	while (!test_stop_requested() && !atomic_load(&failed)) {
		drain_pipe(p[0]);
		echo_once(sp[0]);
	}
	for (int k = 0; k < WORKERS; k++)
		pthread_join(t[k], NULL);
	if (atomic_load(&failed))
		test_fail("%s", why);
	for (size_t i = 0; i < npages; i++)
		check_page(i);
	if (atomic_load(&failed))
		test_fail("%s", why);
	drain_pipe(p[0]);
	echo_once(sp[0]);
	test_msg("%llu pipe records, %llu echoes", (unsigned long long)next_seq,
		 (unsigned long long)echo_n);
	kill(a, SIGKILL);
	kill(b, SIGKILL);
	waitpid(a, NULL, 0);
	waitpid(b, NULL, 0);
	test_pass();
}
