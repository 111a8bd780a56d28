// stasis-test: timeout=60
/* 64 MiB of MAP_PRIVATE anonymous memory filled before fork: parent and child share its
 * pages copy-on-write (stasis stores them once). After the restore both still hold the
 * data, and the memory is PRIVATE in each: a write by one is never seen by the other
 * (sharing the pages must not turn into sharing the memory). */
#include "lib.h"

#include <errno.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#define SIZE (64 * 1024 * 1024)
#define SEED 0xc0c0a5a5123ull
#define PROBE_ROOT (SIZE / 2)     /* the root writes here, the child reads */
#define PROBE_CHILD (SIZE - 64)   /* the child writes here, the root reads */

static volatile uint64_t *mem;
static int to_child[2], to_root[2];

/* requests: {op, value}. 'c': is value at PROBE_ROOT? 'w': write value at PROBE_CHILD;
 * 'p': is the pattern intact (except the probes)? 'q': exit. Answer: 1 ok, 0 not. */
struct req {
	uint64_t op, value;
};

static int pattern_ok(void)
{
	uint64_t state = SEED;

	for (size_t i = 0; i < SIZE / 8; i++) {
		uint64_t v = test_xorshift64(&state);

		if (i == PROBE_ROOT / 8 || i == PROBE_CHILD / 8)
			continue;
		if (mem[i] != v)
			return 0;
	}
	return 1;
}

static __attribute__((noreturn)) void child(pid_t root)
{
	struct req r;
	uint64_t ans;

	close(to_child[1]);
	close(to_root[0]);
	for (;;) {
		if (test_read_full(to_child[0], &r, sizeof(r)) < 0)
			_exit(2);
		switch (r.op) {
		case 'q':
			_exit(getppid() == root ? 0 : 3);
		case 'c':
			ans = mem[PROBE_ROOT / 8] == r.value;
			break;
		case 'w':
			mem[PROBE_CHILD / 8] = r.value;
			ans = 1;
			break;
		case 'p':
			ans = pattern_ok();
			break;
		default:
			_exit(4);
		}
		if (test_write_full(to_root[1], &ans, sizeof(ans)) < 0)
			_exit(5);
	}
}

static uint64_t ask(uint64_t op, uint64_t value)
{
	struct req r = { op, value };
	uint64_t ans;

	TEST_CHECK(test_write_full(to_child[1], &r, sizeof(r)) == 0, "request: %s", strerror(errno));
	TEST_CHECK(test_read_full(to_root[0], &ans, sizeof(ans)) == 0, "no answer from the child");
	return ans;
}

static void exchange(uint64_t v, const char *when)
{
	uint64_t mine = mem[PROBE_ROOT / 8];
	mem[PROBE_ROOT / 8] = v;
	TEST_CHECK(ask('c', v) == 0, "%s: the root's private write is seen by the child", when);
	TEST_CHECK(ask('w', ~v) == 1, "%s: child write failed", when);
	TEST_CHECK(mem[PROBE_CHILD / 8] != ~v, "%s: the child's private write is seen by the root",
		   when);
	mem[PROBE_ROOT / 8] = mine;
}

int main(int argc, char **argv)
{
	pid_t pid, root;
	void *p;
	int st;

	test_init(argc, argv);
	root = getpid();
	p = mmap(NULL, SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED || pipe(to_child) < 0 || pipe(to_root) < 0)
		test_fail("mmap/pipe: %s", strerror(errno));
	mem = p;
	test_fill(p, SIZE, SEED);
	pid = fork();
	if (pid < 0)
		test_fail("fork: %s", strerror(errno));
	if (pid == 0)
		child(root);
	close(to_child[0]);
	close(to_root[1]);
	exchange(0x1111, "before ready");
	test_ready();
	test_wait();

	if (test_sabotage())
		mem[12345] ^= 1; /* the root's data differs from what it was */
	TEST_CHECK(pattern_ok(), "the root's data differs");
	TEST_CHECK(ask('p', 0) == 1, "the child's data differs");
	exchange(0x2222, "after restore");
	exchange(0x3333, "after restore (again)");
	TEST_CHECK(test_write_full(to_child[1], &(struct req){ 'q', 0 }, sizeof(struct req)) == 0, "quit");
	alarm(20);
	TEST_CHECK(waitpid(pid, &st, 0) == pid && WIFEXITED(st) && WEXITSTATUS(st) == 0,
		   "child status %#x", st);
	test_pass();
}
