// stasis-test: timeout=60
/* Random memory layouts across a tree. The root R, from fixed seeds, maps areas
 * (anonymous private and shared, a file's private and shared mappings, at random
 * sizes), writes into random pages, changes the protection of random ranges, unmaps
 * holes, moves and resizes areas (mremap), marks ranges MADV_DONTFORK, WIPEONFORK or
 * DONTNEED, and forks children that go on doing the same in their copy. Before the
 * checkpoint and after the restore every task hashes every readable page of every area
 * it made or inherited (the runner compares the maps); then, for every area still mapped
 * in R and a child, R writes a new value into it: the child must see it in a shared
 * area and must not in a private one. STASIS_TEST_SEED=N runs seed N only. */
#include "lib.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#define MAX_T 4
#define MAX_A 48
#define PG 4096UL
#define MAX_PAGES 64 /* per area */

enum akind { A_ANON, A_SHARED, A_FILE_PRIV, A_FILE_SHARED, A_N };
enum op { OP_MAP, OP_TOUCH, OP_PROT, OP_HOLE, OP_REMAP, OP_ADVISE, OP_FORK, OP_N };

struct area {
	int kind;
	uintptr_t at;  /* (the same address in every task that has it) */
	size_t pages;
	int owner;    /* the task that mapped it; its descendants forked after have it too */
	bool gone[MAX_T]; /* unmapped whole in that task */
	bool holed;       /* a range was unmapped in some task (another area may be there) */
};

struct shared {
	struct area a[MAX_A];
	int na;
	int nt;
	pid_t pid[MAX_T];
	int parent[MAX_T];
	int born_after[MAX_T]; /* the number of areas when the task was forked */
	uint32_t hash[MAX_T][MAX_A][MAX_PAGES]; /* 0: unreadable or unmapped */
	int bad;
	char why[200];
};

struct cmd {
	int op, a, b, c;
};

static struct shared *S;
static int me, file_fd = -1;

static bool has_area(int t, int a)
{
	/* made by t or by an ancestor before t was forked, and not unmapped whole */
	if (S->a[a].gone[t])
		return false;
	for (int k = t; k >= 0; k = k ? S->parent[k] : -1) {
		if (S->a[a].owner == k)
			return true;
		if (a >= S->born_after[k])
			return false;
	}
	return false;
}

/* the mapping at @p: 's' or 'p' and its offset there in *@off (0 when none) */
static char mapping_at(uintptr_t p, unsigned long *off)
{
	char line[512], perm[8] = "";
	FILE *f = fopen("/proc/self/maps", "r");
	char kind = 0;
	while (f && fgets(line, sizeof(line), f)) {
		unsigned long lo, hi, o;
		if (sscanf(line, "%lx-%lx %7s %lx", &lo, &hi, perm, &o) == 4 && p >= lo && p < hi) {
			kind = perm[3];
			*off = o + (p - lo);
			break;
		}
	}
	if (f)
		fclose(f);
	return kind;
}

/* the page's contents, or 0 when it cannot be read (PROT_NONE, a hole) */
static uint32_t page_hash(uintptr_t p)
{
	char path[64], line[512];
	snprintf(path, sizeof(path), "/proc/self/maps");
	FILE *f = fopen(path, "r");
	bool readable = false;
	while (f && fgets(line, sizeof(line), f)) {
		unsigned long lo, hi;
		char perm[8];
		if (sscanf(line, "%lx-%lx %7s", &lo, &hi, perm) == 3 && p >= lo && p < hi) {
			readable = perm[0] == 'r';
			break;
		}
	}
	if (f)
		fclose(f);
	if (!readable)
		return 0;
	uint32_t h = 2166136261u;
	const unsigned char *b = (const unsigned char *)p;
	for (size_t i = 0; i < PG; i++)
		h = (h ^ b[i]) * 16777619u;
	return h | 1;
}

static void hash_all(uint32_t out[MAX_A][MAX_PAGES])
{
	for (int a = 0; a < S->na; a++)
		for (size_t p = 0; p < MAX_PAGES; p++)
			out[a][p] = has_area(me, a) && p < S->a[a].pages
					    ? page_hash(S->a[a].at + p * PG)
					    : 0;
}

static int do_map(int kind, int pages)
{
	if (S->na >= MAX_A)
		return 0;
	int flags = kind == A_ANON || kind == A_FILE_PRIV ? MAP_PRIVATE : MAP_SHARED;
	int fd = -1;
	off_t off = 0;
	if (kind == A_ANON || kind == A_SHARED) {
		flags |= MAP_ANONYMOUS;
	} else {
		fd = file_fd;
		off = (off_t)(S->na * MAX_PAGES * PG);
	}
	void *p = mmap(NULL, (size_t)pages * PG, PROT_READ | PROT_WRITE, flags, fd, off);
	if (p == MAP_FAILED)
		return errno;
	struct area *ar = &S->a[S->na];
	memset(ar, 0, sizeof(*ar));
	ar->kind = kind;
	ar->at = (uintptr_t)p;
	ar->pages = (size_t)pages;
	ar->owner = me;
	S->na++;
	return 0;
}

static int run(const struct cmd *c)
{
	struct area *ar = c->a >= 0 && c->a < S->na ? &S->a[c->a] : NULL;
	if (c->op != OP_MAP && c->op != OP_FORK && (!ar || !has_area(me, c->a)))
		return 0;
	size_t first = ar ? (size_t)c->b % ar->pages : 0;
	size_t n = ar ? 1 + (size_t)c->c % (ar->pages - first) : 0;
	void *at = ar ? (void *)(ar->at + first * PG) : NULL;
	switch (c->op) {
	case OP_MAP:
		return do_map(c->b % A_N, 1 + c->c % MAX_PAGES);
	case OP_TOUCH: {
		/* writes where it may (a page made read-only is skipped) */
		uint32_t h = page_hash((uintptr_t)at);
		if (!h)
			return 0;
		if (mprotect(at, PG, PROT_READ | PROT_WRITE) == 0) {
			memset(at, (int)(c->c & 0xff) | 1, 64 + (size_t)c->c % 512);
			((char *)at)[PG - 1] = (char)me;
		}
		return 0;
	}
	case OP_PROT: {
		static const int prots[] = { PROT_NONE, PROT_READ, PROT_READ | PROT_WRITE,
					     PROT_READ | PROT_EXEC };
		mprotect(at, n * PG, prots[c->c % 4]);
		return 0;
	}
	case OP_HOLE:
		if (c->a < A_N) /* (the first areas stay whole: R and task 1 share them) */
			return 0;
		ar->holed = true;
		if (n == ar->pages)
			ar->gone[me] = true;
		munmap(at, n * PG);
		return 0;
	case OP_REMAP:
		/* grow in place when the pages after are free (else nothing changes) */
		if (ar->pages < MAX_PAGES && (ar->kind == A_ANON || ar->kind == A_SHARED) &&
		    mremap((void *)ar->at, ar->pages * PG, (ar->pages + 1) * PG, 0) != MAP_FAILED &&
		    ar->owner == me && me == 0 && S->nt == 1)
			ar->pages++;
		return 0;
	case OP_ADVISE: {
		static const int adv[] = { MADV_DONTNEED, MADV_WIPEONFORK, MADV_DONTFORK,
					   MADV_NORMAL };
		/* (DONTFORK: the children forked after have holes there: kept simple, only
		 * areas no later task relies on, i.e. none: the model cannot tell; skipped) */
		int k = c->c % 4;
		if (adv[k] == MADV_DONTFORK || (adv[k] == MADV_WIPEONFORK && ar->kind != A_ANON))
			return 0;
		madvise(at, n * PG, adv[k]);
		return 0;
	}
	default:
		return 0;
	}
}

static int to[MAX_T][2], from[MAX_T][2];

static __attribute__((noreturn)) void task_loop(int cmd_rd, int ans_wr);

/* a child of this task, task @id */
static int fork_task(int id)
{
	pid_t p = fork();
	if (p == 0) {
		me = id;
		task_loop(to[id][0], from[id][1]);
	}
	if (p < 0)
		return errno;
	S->pid[id] = p;
	return 0;
}

static __attribute__((noreturn)) void task_loop(int cmd_rd, int ans_wr)
{
	struct cmd c;
	for (;;) {
		if (test_read_full(cmd_rd, &c, sizeof(c)) != 0)
			_exit(3);
		int st;
		if (c.op == OP_N) { /* hash every page: [0] before, [1] after */
			static uint32_t now[MAX_A][MAX_PAGES];
			if (c.a == 0) {
				hash_all(S->hash[me]);
			} else {
				hash_all(now);
				if (memcmp(now, S->hash[me], sizeof(now)) && !S->bad++)
					snprintf(S->why, sizeof(S->why), "task %d: a page differs", me);
			}
			st = 0;
		} else if (c.op == OP_N + 1) { /* read the word R just wrote at area c.a (the
						  * same mapping as R's: kind c.b, offset c.c) */
			unsigned long off = 0;
			st = has_area(me, c.a) && page_hash(S->a[c.a].at) &&
					     mapping_at(S->a[c.a].at, &off) == c.b &&
					     (unsigned int)off == (unsigned int)c.c
				     ? *(volatile int *)S->a[c.a].at
				     : -1;
		} else if (c.op == OP_FORK) {
			st = fork_task(c.a);
		} else {
			st = run(&c);
		}
		if (test_write_full(ans_wr, &st, sizeof(st)) != 0)
			_exit(3);
	}
}

static int ask(int t, int op, int a, int b, int c)
{
	struct cmd m = { op, a, b, c };
	int st = 0;
	if (t == 0 && op < OP_N && op != OP_FORK)
		return run(&m);
	if (test_write_full(to[t][1], &m, sizeof(m)) != 0 ||
	    test_read_within(from[t][0], &st, sizeof(st), 10000) != 0)
		test_fail("task %d does not answer (op %d)", t, op);
	return st;
}

static void grow(uint64_t seed)
{
	static const int weight[OP_N] = { 6, 12, 5, 3, 2, 3, 1 };
	uint64_t rng = seed * 0x9E3779B97F4A7C15ull + 11;
	for (int step = 0; step < 200; step++) {
		int op = test_pick_weighted(&rng, weight, OP_N);
		int t = (int)(test_xorshift64(&rng) % (uint64_t)S->nt);
		int a = S->na ? (int)(test_xorshift64(&rng) % (uint64_t)S->na) : 0;
		int b = (int)(test_xorshift64(&rng) % 1000), c = (int)(test_xorshift64(&rng) % 1000);
		if (op == OP_FORK) {
			if (S->nt >= MAX_T)
				continue;
			int id = S->nt;
			S->parent[id] = t;
			S->born_after[id] = S->na;
			/* the child is forked by t: R asks t, or forks itself */
			int st = t ? ask(t, OP_FORK, id, 0, 0) : fork_task(id);
			if (st)
				test_fail("fork in task %d: %s", t, strerror(st));
			S->nt++;
			continue;
		}
		if (op == OP_MAP)
			b = (int)(test_xorshift64(&rng) % A_N);
		int st = ask(t, op, a, b, c);
		if (st)
			test_fail("task %d op %d: %s", t, op, strerror(st));
	}
}

int main(int argc, char **argv)
{
	static const uint64_t seeds[] = { 1, 2 };
	const char *env = getenv("STASIS_TEST_SEED");

	test_init(argc, argv);
	S = mmap(NULL, sizeof(*S), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (S == MAP_FAILED)
		test_fail("mmap: %s", strerror(errno));
	file_fd = open("mem_random.dat", O_RDWR | O_CREAT | O_TRUNC, 0600);
	if (file_fd < 0 || ftruncate(file_fd, (off_t)(MAX_A * MAX_PAGES * PG)) < 0)
		test_fail("data file: %s", strerror(errno));
	for (int t = 0; t < MAX_T; t++)
		if (pipe(to[t]) < 0 || pipe(from[t]) < 0)
			test_fail("pipe: %s", strerror(errno));
	S->pid[0] = getpid();
	S->nt = 1;
	/* one area of each kind, then task 1 forked: they are in both */
	for (int k = 0; k < A_N; k++)
		if (do_map(k, 8))
			test_fail("mmap: %s", strerror(errno));
	S->parent[1] = 0;
	S->born_after[1] = S->na;
	if (fork_task(1))
		test_fail("fork: %s", strerror(errno));
	S->nt = 2;
	if (env)
		grow(strtoull(env, NULL, 10));
	else
		for (size_t k = 0; k < sizeof(seeds) / sizeof(seeds[0]); k++)
			grow(seeds[k]);
	for (int t = 0; t < S->nt; t++)
		if (t)
			ask(t, OP_N, 0, 0, 0);
		else
			hash_all(S->hash[0]);
	test_ready();
	test_wait();

	static uint32_t now[MAX_A][MAX_PAGES];
	hash_all(now);
	if (test_sabotage())
		now[0][0] ^= 2;
	if (memcmp(now, S->hash[0], sizeof(now)))
		test_fail("task 0: a page differs after the restore");
	for (int t = 1; t < S->nt; t++)
		ask(t, OP_N, 1, 0, 0);
	if (S->bad)
		test_fail("%s", S->why);
	/* sharing: R writes a new word into each area it and a child have (first page,
	 * writable there); the child sees it in a shared area only */
	int checked = 0;
	for (int a = 0; a < S->na; a++) {
		bool shared = S->a[a].kind == A_SHARED || S->a[a].kind == A_FILE_SHARED;
		if (!has_area(0, a) || S->a[a].holed || !page_hash(S->a[a].at) ||
		    mprotect((void *)S->a[a].at, PG, PROT_READ | PROT_WRITE))
			continue;
		int word = 0x5a000000 | a;
		unsigned long off = 0;
		char kind = mapping_at(S->a[a].at, &off);
		*(volatile int *)S->a[a].at = word;
		for (int t = 1; t < S->nt; t++) {
			if (!has_area(t, a))
				continue;
			int seen = ask(t, OP_N + 1, a, kind, (int)off);
			checked += seen != -1;
			if ((seen == word) != shared && seen != -1)
				test_fail("area %d (%s) after the restore: task %d %s R's write", a,
					  shared ? "shared" : "private", t, shared ? "does not see" : "sees");
		}
	}
	test_msg("%d areas in %d tasks; sharing checked on %d (area, task) pairs", S->na, S->nt,
		 checked);
	for (int t = 1; t < S->nt; t++)
		kill(S->pid[t], SIGKILL);
	for (int t = 1; t < S->nt; t++)
		test_reap(S->pid[t], false, 10);
	test_pass();
}
