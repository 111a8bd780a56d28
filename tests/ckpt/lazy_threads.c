// stasis-test: restore-opts=--lazy-pages timeout=240
// stasis-test: nonroot-known=lazy restore needs CAP_SYS_PTRACE (userfaultfd for faults in kernel mode)
// stasis-test: rootless-known=lazy restore needs CAP_SYS_PTRACE in the initial user namespace
// stasis-test: uns-known=lazy restore needs CAP_SYS_PTRACE in the initial user namespace
/* Lazy restore (restore --lazy-pages) of 1 GiB of private anonymous memory while four
 * threads use it from the first instant: random reads and writes checked against the
 * pattern, write()s of pattern chunks to a pipe and read()s of them into an area of its own (faults
 * in kernel mode, in both directions), and a watcher that, right after the restore (a gap
 * in CLOCK_MONOTONIC), drops the last 8 MiB with MADV_DONTNEED and writes a marker into
 * the first page of it. At SIGTERM (most likely while pages are still being streamed in):
 * a forked child checks pattern words all over the memory, then every thread is stopped
 * and the whole memory checked (the dropped area zero but its marker). Also a plain checkpoint test. */
#include "lib.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#define SIZE (1ul << 30)
#define WORDS (SIZE / 8)
#define DROP (8ul << 20)
#define DROP_AT (SIZE - DROP)
#define DST (16ul << 20) /* the pipe's destination, right below the dropped area */
#define DST_AT (DROP_AT - DST)
#define CHUNK (64ul << 10)
#define SEED 0x5eed1a2b3c4d5e6full

static uint64_t *mem;
static volatile int dropped, failed;
static char why[256];

static uint64_t pat(uint64_t i)
{
	uint64_t z = (i ^ SEED) + 0x9e3779b97f4a7c15ull;
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

static void fail(const char *what, uint64_t i)
{
	if (!__sync_lock_test_and_set(&failed, 1)) {
		snprintf(why, sizeof(why), "%s: word %llu (offset %llx)", what,
			 (unsigned long long)i, (unsigned long long)i * 8);
		test_msg("%s", why);
	}
}

static int started; /* threads running (ready once all are: their masks are final) */

static uint64_t rnd_word(uint64_t *s)
{
	return test_xorshift64(s) % (DST_AT / 8);
}

/* random reads, and writes of the same value (write faults) */
static void *rw_thread(void *arg)
{
	uint64_t s = (uint64_t)(uintptr_t)arg;
	__atomic_add_fetch(&started, 1, __ATOMIC_SEQ_CST);
	while (!test_stop_requested() && !failed) {
		uint64_t i = rnd_word(&s);
		if (mem[i] != pat(i))
			fail("read", i);
		i = rnd_word(&s);
		uint64_t v = mem[i];
		if (v != pat(i))
			fail("read before write", i);
		__atomic_store_n(&mem[i], v, __ATOMIC_RELAXED);
	}
	return NULL;
}

static int pfd[2];

/* the whole buffer, in as many write()s as it takes: a write interrupted by the freeze
 * of the dump returns what it wrote */
static int write_all(const void *buf, size_t len)
{
	const char *p = buf;
	while (len) {
		ssize_t n = write(pfd[1], p, len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			test_msg("write to the pipe: %s", n < 0 ? strerror(errno) : "0");
			return -1;
		}
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

/* write() of chunks of the memory into a pipe: the kernel reads lazy pages */
static void *writer_thread(void *arg)
{
	uint64_t s = (uint64_t)(uintptr_t)arg;
	__atomic_add_fetch(&started, 1, __ATOMIC_SEQ_CST);
	while (!test_stop_requested() && !failed) {
		uint64_t off = (rnd_word(&s) * 8) & ~(CHUNK - 1);
		if (write_all(&off, sizeof(off)) || write_all((char *)mem + off, CHUNK)) {
			fail("write to the pipe", off / 8);
			break;
		}
	}
	uint64_t end = ~0ull;
	if (write_all(&end, sizeof(end)))
		fail("write the end to the pipe", 0);
	return NULL;
}

/* read() of those chunks into the destination area: the kernel writes lazy pages;
 * checked, then the pattern put back */
static void *reader_thread(void *arg)
{
	(void)arg;
	__atomic_add_fetch(&started, 1, __ATOMIC_SEQ_CST);
	for (;;) {
		uint64_t off;
		if (test_read_full(pfd[0], &off, sizeof(off))) {
			fail("read from the pipe", 0);
			break;
		}
		if (off == ~0ull)
			break;
		uint64_t doff = DST_AT + off % DST;
		uint64_t *dst = (uint64_t *)((char *)mem + doff);
		if (test_read_full(pfd[0], dst, CHUNK)) {
			fail("read from the pipe", off / 8);
			break;
		}
		for (uint64_t k = 0; k < CHUNK / 8; k++)
			if (dst[k] != pat(off / 8 + k))
				fail("data through the pipe", off / 8 + k);
		for (uint64_t k = 0; k < CHUNK / 8; k++)
			dst[k] = pat(doff / 8 + k);
	}
	return NULL;
}

/* a child forked while pages are still coming checks words all over the memory */
static int child_check(void)
{
	uint64_t s = 0x77;
	for (int k = 0; k < 200000; k++) {
		uint64_t i = rnd_word(&s);
		if (mem[i] != pat(i))
			return 1;
	}
	return 0;
}

static void *watcher_thread(void *arg)
{
	(void)arg;
	__atomic_add_fetch(&started, 1, __ATOMIC_SEQ_CST);
	uint64_t last = test_now_ns();
	while (!test_stop_requested() && !failed) {
		test_sleep_ms(2);
		uint64_t now = test_now_ns();
		bool gap = now - last > 300000000ull;
		last = now;
		if (!gap || dropped)
			continue;
		/* restored (or a long stall): drop, mark, fork */
		if (madvise((char *)mem + DROP_AT, DROP, MADV_DONTNEED)) {
			fail("madvise", DROP_AT / 8);
			break;
		}
		memset((char *)mem + DROP_AT, 0xab, 4096);
		dropped = 1;
	}
	return NULL;
}

int main(int argc, char **argv)
{
	pthread_t th[5];

	test_init(argc, argv);
	mem = mmap(NULL, SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (mem == MAP_FAILED)
		test_fail("mmap 1 GiB: %s", strerror(errno));
	for (uint64_t i = 0; i < WORDS; i++)
		mem[i] = pat(i);
	if (pipe(pfd))
		test_fail("pipe: %s", strerror(errno));
	void *(*fn[5])(void *) = { rw_thread, rw_thread, writer_thread, reader_thread,
				   watcher_thread };
	/* SIGTERM for the main thread only: it forks at once */
	sigset_t term, old;
	sigemptyset(&term);
	sigaddset(&term, SIGTERM);
	pthread_sigmask(SIG_BLOCK, &term, &old);
	for (int k = 0; k < 5; k++)
		if (pthread_create(&th[k], NULL, fn[k], (void *)(uintptr_t)(k * 7919 + 13)))
			test_fail("pthread_create");
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	while (__atomic_load_n(&started, __ATOMIC_SEQ_CST) < 5)
		test_sleep_ms(1);
	test_ready();
	test_wait();
	/* forked before the threads stop: the memory is most likely still streaming in */
	pid_t c = fork();
	if (c == 0)
		_exit(child_check());
	TEST_CHECK(c > 0 && test_reap(c, false, 60) == 0,
		   "a child forked after the restore saw other memory");
	for (int k = 0; k < 5; k++)
		pthread_join(th[k], NULL);
	TEST_CHECK(!failed, "%s", why);
	if (test_sabotage())
		mem[SIZE / 16 + 3] ^= 1ull << 40;
	for (uint64_t i = 0; i < WORDS; i++) {
		uint64_t want = pat(i);
		if (dropped && i >= DROP_AT / 8)
			want = i < (DROP_AT + 4096) / 8 ? 0xababababababababull : 0;
		TEST_CHECK(mem[i] == want, "memory differs at offset %llx%s",
			   (unsigned long long)i * 8, dropped ? " (the last 8 MiB dropped)" : "");
	}
	test_pass();
}
