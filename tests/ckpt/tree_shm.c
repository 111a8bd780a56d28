// stasis-test: timeout=30
/* MAP_SHARED|MAP_ANONYMOUS memory created before fork is one object in the root and its
 * child. After the restore: both still see the data written before the dump, a write by
 * the child is seen by the root and a write by the root is seen by the child. */
#include "lib.h"

#include <errno.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#define SIZE (256 * 1024)
#define SEED 0x5a4e5a4e12345ull
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
	mem[PROBE_ROOT / 8] = v;
	TEST_CHECK(ask('c', v) == 1, "%s: the root's write is not seen by the child", when);
	TEST_CHECK(ask('w', ~v) == 1, "%s: child write failed", when);
	TEST_CHECK(mem[PROBE_CHILD / 8] == ~v, "%s: the child's write is not seen by the root "
		   "(%#llx, expected %#llx)", when, (unsigned long long)mem[PROBE_CHILD / 8],
		   (unsigned long long)~v);
}

int main(int argc, char **argv)
{
	pid_t pid, root;
	void *p;
	int st;

	test_init(argc, argv);
	root = getpid();
	p = mmap(NULL, SIZE, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
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

	if (test_sabotage()) {
		/* the root's view becomes a private copy of the same data: only the sharing
		 * is gone */
		static uint64_t copy[SIZE / 8];
		void *q;

		memcpy(copy, p, SIZE);
		q = mmap(p, SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1,
			 0);
		if (q != MAP_FAILED)
			memcpy(q, copy, SIZE);
	}
	TEST_CHECK(mem[PROBE_ROOT / 8] == 0x1111 && mem[PROBE_CHILD / 8] == ~0x1111ull,
		   "the probes written before the dump are lost in the root");
	TEST_CHECK(pattern_ok(), "the root's shared data differs");
	TEST_CHECK(ask('c', 0x1111) == 1, "the child lost the root's write from before the dump");
	TEST_CHECK(ask('p', 0) == 1, "the child's shared data differs");
	exchange(0x2222, "after restore");
	exchange(0x3333, "after restore (again)");
	TEST_CHECK(test_write_full(to_child[1], &(struct req){ 'q', 0 }, sizeof(struct req)) == 0, "quit");
	alarm(20);
	TEST_CHECK(waitpid(pid, &st, 0) == pid && WIFEXITED(st) && WEXITSTATUS(st) == 0,
		   "child status %#x", st);
	test_pass();
}
