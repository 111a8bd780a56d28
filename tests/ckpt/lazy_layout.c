// stasis-test: restore-opts=--lazy-pages timeout=180
// stasis-test: nonroot-known=lazy restore needs CAP_SYS_PTRACE (userfaultfd for faults in kernel mode)
// stasis-test: rootless-known=lazy restore needs CAP_SYS_PTRACE in the initial user namespace
// stasis-test: uns-known=lazy restore needs CAP_SYS_PTRACE in the initial user namespace
/* Lazy restore (restore --lazy-pages) while the task changes its layout where the page
 * server copies in the background: 256 MiB of pattern; right after the restore (a gap in
 * CLOCK_MONOTONIC) the main thread, without touching the memory, drops blocks of its
 * upper half (MADV_DONTNEED), unmaps others and maps fresh memory in their place, and
 * moves others away and back (mremap), thousands of times, each where the page server is
 * copying then (the first page mincore shows missing after one present). Each change
 * reaches the page server as an event while its copiers fill that memory: a copy still
 * running when the change goes on would leave old bytes where the task dropped them.
 * At SIGTERM every word is checked: a dropped or remapped page reads zero, every other
 * the pattern. Also a plain checkpoint test (the changes then happen before the dump, or
 * not at all). The layout changes after the restore: statecmp_allow.py lets its maps
 * differ. */
#include "lib.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>

#define SIZE (256ul << 20)
#define PAGES (SIZE / 4096)
#define WORDS (SIZE / 8)
#define SEED 0x1a2e0a7bdc94e3f1ull
#define CHANGES_NS 300000000ull /* changes for 300 ms after the restore */
#define BLOCK (128ul << 10)
#define BLOCK_PAGES (BLOCK / 4096)

static uint8_t zero[PAGES]; /* page i dropped: it must read zero */

static uint64_t pat(uint64_t i)
{
	uint64_t z = (i ^ SEED) * 0x9e3779b97f4a7c15ull;
	return z ^ (z >> 29);
}

/* One change to a random block of the upper half; @away: where a block goes and comes
 * back from. A block at a time: a madvise(MADV_DONTNEED) over two areas of which one is
 * registered with a userfaultfd (UFFD_FEATURE_EVENT_REMOVE) and one not (mapped again)
 * fails with ENOMEM on this kernel (6.18), without stasis too. */
static void change(uint64_t *rng, char *mem, char *away, uint64_t first)
{
	uint64_t pages = BLOCK_PAGES;
	char *at = mem + first * 4096;
	size_t len = BLOCK;
	switch (test_xorshift64(rng) % 3) {
	case 0:
		if (madvise(at, len, MADV_DONTNEED))
			test_fail("madvise: %s", strerror(errno));
		memset(zero + first, 1, pages);
		break;
	case 1:
		if (munmap(at, len) || mmap(at, len, PROT_READ | PROT_WRITE,
					    MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0) != at)
			test_fail("unmap and map again: %s", strerror(errno));
		memset(zero + first, 1, pages);
		break;
	default:
		if (mremap(at, len, len, MREMAP_MAYMOVE | MREMAP_FIXED, away) != away ||
		    mremap(away, len, len, MREMAP_MAYMOVE | MREMAP_FIXED, at) != at ||
		    mmap(away, len, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0) !=
			    away)
			test_fail("mremap away and back: %s", strerror(errno));
		break;
	}
}

/* A block of the upper half where the page server is copying now, if mincore shows one:
 * the block holding the first page missing after a present one, from a random place on;
 * else a random block. */
static uint64_t target(uint64_t *rng, char *mem, unsigned char *vec)
{
	uint64_t from = test_xorshift64(rng) % (PAGES / 2);
	uint64_t at = PAGES / 2 + test_xorshift64(rng) % (PAGES / 2 / BLOCK_PAGES) * BLOCK_PAGES;
	if (mincore(mem + SIZE / 2, SIZE / 2, vec))
		test_fail("mincore: %s", strerror(errno));
	for (uint64_t k = 1; k < PAGES / 2; k++) {
		uint64_t i = (from + k) % (PAGES / 2);
		if (i && !(vec[i] & 1) && (vec[i - 1] & 1))
			return PAGES / 2 + i / BLOCK_PAGES * BLOCK_PAGES;
	}
	return at;
}

int main(int argc, char **argv)
{
	test_init(argc, argv);
	char *mem = mmap(NULL, SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	/* a place for the pieces moved away, reserved so that nothing else lands there */
	char *away = mmap(NULL, BLOCK, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (mem == MAP_FAILED || away == MAP_FAILED)
		test_fail("mmap: %s", strerror(errno));
	uint64_t *w = (uint64_t *)mem;
	for (uint64_t i = 0; i < WORDS; i++)
		w[i] = pat(i);
	uint64_t rng = 0x5157a515ull, last = test_now_ns();
	int done = 0, changes = 0;
	static unsigned char vec[PAGES / 2];
	test_ready();
	while (!test_stop_requested()) {
		test_sleep_ms(1);
		uint64_t now = test_now_ns();
		bool gap = now - last > 30000000ull; /* restored (or a long stall) */
		last = now;
		/* a change every 50 us or so, where the page server copies */
		for (uint64_t t = now; gap && !done && t - now < CHANGES_NS; t = test_now_ns()) {
			change(&rng, mem, away, target(&rng, mem, vec));
			changes++;
			while (test_now_ns() - t < 50000)
				;
		}
		done |= gap;
	}
	test_msg("%d changes", changes);
	if (test_sabotage())
		w[WORDS / 2 + 5] ^= 1ull << 17;
	for (uint64_t i = 0; i < WORDS; i++) {
		uint64_t want = zero[i / 512] ? 0 : pat(i);
		TEST_CHECK(w[i] == want, "memory differs at offset %llx (%s; %s)",
			   (unsigned long long)i * 8, zero[i / 512] ? "dropped" : "kept",
			   done ? "changed after the restore" : "no change");
	}
	test_pass();
}
