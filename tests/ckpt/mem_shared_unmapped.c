// stasis-test: timeout=60
/* Pages of a MAP_SHARED|MAP_ANONYMOUS object that no process of the tree has mapped in
 * its page tables at the dump, the way a database's shared buffers are (postgres: a
 * backend read a page into a buffer, then exited): the object holds them, so must the
 * restored one.
 *  - 4 MiB written by a child that exited since (the parent never touched them);
 *  - a page the parent wrote, then dropped from its own page tables (MADV_DONTNEED on a
 *    shared mapping only unmaps: the object keeps the data);
 *  - pages written by a live child through its view, which it then unmapped;
 *  - a live child's own object (not the parent's) holding 1 MiB, half of it dropped
 *    from the child's page tables;
 * the rest of each object was never written (zero). The parent and the live children
 * keep their views; after the restore each page reads what it held (the children report
 * through a pipe), and the objects are still shared between the processes. */
#include "lib.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#define PG 4096ul
#define SIZE (16ul << 20)
#define GONE_AT 0ul    /* written by a child that exited */
#define GONE_LEN (4ul << 20)
#define DROP_AT (6ul << 20) /* written by the parent, then MADV_DONTNEED */
#define KID_AT (8ul << 20)  /* written by a live child, then unmapped by it */
#define KID_LEN (256ul << 10)
#define OWN_SIZE (1ul << 20) /* a live child's own object */
#define SEED 0x5eed0f5a4edull

/* What the parent's object holds at @off (0: never written). */
static uint64_t seed_at(size_t off)
{
	if (off < GONE_AT + GONE_LEN) /* (GONE_AT is 0) */
		return SEED + 1;
	if (off >= DROP_AT && off < DROP_AT + PG)
		return SEED + 2;
	if (off >= KID_AT && off < KID_AT + KID_LEN)
		return SEED + 3;
	return 0;
}

static long check_object(const char *m, size_t size, uint64_t (*want)(size_t))
{
	static const char zero[PG];
	for (size_t off = 0; off < size; off += PG) {
		uint64_t s = want(off);
		if (s ? test_check(m + off, PG, s + off) >= 0 : memcmp(m + off, zero, PG) != 0)
			return (long)off;
	}
	return -1;
}

static void fill(char *m, size_t at, size_t len, uint64_t seed)
{
	for (size_t off = at; off < at + len; off += PG)
		test_fill(m + off, PG, seed + off);
}

static uint64_t own_seed(size_t off)
{
	(void)off;
	return SEED + 4;
}

/* The live child holding its own object: at SIGTERM it checks it and reports. */
static void own_child(int wfd)
{
	char *own = mmap(NULL, OWN_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (own == MAP_FAILED)
		_exit(2);
	fill(own, 0, OWN_SIZE, SEED + 4);
	if (madvise(own, OWN_SIZE / 2, MADV_DONTNEED))
		_exit(2);
	char c = 'r';
	if (write(wfd, &c, 1) != 1)
		_exit(2);
	sigset_t set;
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	int sig;
	sigwait(&set, &sig);
	c = check_object(own, OWN_SIZE, own_seed) < 0 ? 'y' : 'n';
	_exit(write(wfd, &c, 1) == 1 ? 0 : 2);
}

int main(int argc, char **argv)
{
	test_init(argc, argv);
	char *m = mmap(NULL, SIZE, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (m == MAP_FAILED)
		test_fail("mmap: %s", strerror(errno));
	pid_t gone = fork();
	if (gone < 0)
		test_fail("fork: %s", strerror(errno));
	if (gone == 0) {
		fill(m, GONE_AT, GONE_LEN, SEED + 1);
		_exit(0);
	}
	if (test_reap(gone, false, 10))
		test_fail("the writing child did not exit");
	fill(m, DROP_AT, PG, SEED + 2);
	if (madvise(m + DROP_AT, PG, MADV_DONTNEED))
		test_fail("madvise: %s", strerror(errno));

	int p[2];
	if (pipe(p))
		test_fail("pipe: %s", strerror(errno));
	sigset_t set;
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigprocmask(SIG_BLOCK, &set, NULL); /* the children wait for it with sigwait */
	pid_t kid = fork();
	if (kid == 0) {
		fill(m, KID_AT, KID_LEN, SEED + 3);
		if (munmap(m + KID_AT, KID_LEN))
			_exit(2);
		char c = 'r';
		if (write(p[1], &c, 1) != 1)
			_exit(2);
		int sig;
		sigwait(&set, &sig);
		c = ((volatile char *)m)[SIZE - 1] == 0x11 ? 'y' : 'n'; /* written after the restore */
		_exit(write(p[1], &c, 1) == 1 ? 0 : 2);
	}
	pid_t own = fork();
	if (own == 0)
		own_child(p[1]);
	sigprocmask(SIG_UNBLOCK, &set, NULL);
	if (kid < 0 || own < 0)
		test_fail("fork: %s", strerror(errno));
	char c[2];
	if (test_read_within(p[0], c, 2, 10000) || c[0] != 'r' || c[1] != 'r')
		test_fail("the children did not get ready");
	test_ready();
	test_wait();

	if (test_sabotage())
		madvise(m + GONE_AT, PG, MADV_REMOVE); /* what a lost page looks like */
	long bad = check_object(m, SIZE, seed_at);
	m[SIZE - 1] = 0x11; /* the live child must see it: still one object */
	kill(kid, SIGTERM);
	kill(own, SIGTERM);
	int n = test_read_within(p[0], c, 2, 10000);
	test_reap(kid, true, 10);
	test_reap(own, true, 10);
	TEST_CHECK(bad < 0, "the shared object differs at offset %#lx (%s)", bad,
		   bad < 0 ? "" : seed_at((size_t)bad) ? "data lost" : "should be zero");
	TEST_CHECK(n == 0, "the children did not report");
	TEST_CHECK(c[0] == 'y' && c[1] == 'y', "a child saw wrong memory (%c%c)", c[0], c[1]);
	test_pass();
}
