// stasis-test: timeout=30 mode=exit-status
/* Restored without -d: stasis restore waits for the task and exits with its status. The
 * task verifies its memory and exits 42 on success (1 on failure). */
#include "lib.h"

#include <errno.h>
#include <string.h>
#include <sys/mman.h>

#define SIZE (1ul << 20)
#define SEED 0x42424242ull

int main(int argc, char **argv)
{
	uint64_t *mem;
	long bad;

	test_init(argc, argv);
	mem = mmap(NULL, SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (mem == MAP_FAILED)
		test_fail("mmap: %s", strerror(errno));
	test_fill(mem, SIZE, SEED);
	test_ready();
	test_wait();

	if (test_sabotage())
		mem[1000] = 0;
	bad = test_check(mem, SIZE, SEED);
	TEST_CHECK(bad < 0, "memory differs at offset %ld", bad);
	test_pass_code(42);
}
