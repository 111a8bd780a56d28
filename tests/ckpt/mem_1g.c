// stasis-test: timeout=240
/* 1 GiB of private anonymous memory filled with a seeded xorshift64 pattern. */
#include "lib.h"

#include <errno.h>
#include <string.h>
#include <sys/mman.h>

#define SIZE (1ul << 30)
#define SEED 0x1234567887654321ull

int main(int argc, char **argv)
{
	uint64_t *mem;
	long bad;

	test_init(argc, argv);
	mem = mmap(NULL, SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (mem == MAP_FAILED)
		test_fail("mmap 1 GiB: %s", strerror(errno));
	test_fill(mem, SIZE, SEED);
	test_ready();
	test_wait();

	if (test_sabotage())
		mem[SIZE / 16 + 3] ^= 1ull << 40;
	bad = test_check(mem, SIZE, SEED);
	TEST_CHECK(bad < 0, "memory differs at offset %ld (of 1 GiB)", bad);
	test_pass();
}
