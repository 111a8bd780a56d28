// stasis-test: timeout=60
/* The heap grown with sbrk() by several MiB and filled: sbrk(0) and contents survive. */
#include "lib.h"

#include <errno.h>
#include <string.h>
#include <unistd.h>

#define GROW (6ul << 20)
#define SEED 0x0F1E2D3C4B5A6978ull

int main(int argc, char **argv)
{
	void *start, *end, *now;
	uintptr_t base;
	long bad;

	test_init(argc, argv);
	start = sbrk(0);
	/* align the filled area to 8 bytes */
	base = ((uintptr_t)start + 4095) & ~(uintptr_t)4095;
	if (sbrk((intptr_t)(base - (uintptr_t)start + GROW)) == (void *)-1)
		test_fail("sbrk: %s", strerror(errno));
	test_fill((void *)base, GROW, SEED);
	end = sbrk(0);
	TEST_CHECK((uintptr_t)end == base + GROW, "sbrk(0) %p != %p", end, (void *)(base + GROW));
	test_ready();
	test_wait();

	if (test_sabotage())
		((char *)base)[GROW - 5] ^= 1;
	now = sbrk(0);
	TEST_CHECK(now == end, "sbrk(0) is %p, was %p", now, end);
	bad = test_check((void *)base, GROW, SEED);
	TEST_CHECK(bad < 0, "heap differs at offset %ld", bad);
	/* the heap must still be growable and shrinkable from there */
	if (sbrk(1 << 20) == (void *)-1)
		test_fail("sbrk after restore: %s", strerror(errno));
	((char *)end)[(1 << 20) - 1] = 1;
	if (sbrk(-(1 << 20)) == (void *)-1)
		test_fail("sbrk shrink: %s", strerror(errno));
	TEST_CHECK(sbrk(0) == end, "sbrk(0) after grow/shrink %p != %p", sbrk(0), end);
	test_pass();
}
