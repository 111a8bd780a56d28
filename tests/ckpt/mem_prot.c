// stasis-test: timeout=60
/* Mappings with PROT_NONE, read-only and read+exec protections holding data (mprotect'ed
 * after writing): /proc/self/maps lines and contents survive, the code still runs. */
#include "lib.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>

#define PG 4096ul
#define REGION (4 * PG)
#define NREG 4
/* regions separated by one-page holes so that the kernel cannot merge them */
#define STRIDE (REGION + PG)

/* mov $0x5157ab1e, %eax; ret */
static const unsigned char code[] = { 0xb8, 0x1e, 0xab, 0x57, 0x51, 0xc3 };

static const int prots[NREG] = { PROT_NONE, PROT_READ, PROT_READ | PROT_EXEC, PROT_WRITE | PROT_READ };
static const char *const names[NREG] = { "none", "ro", "rx", "rw" };

int main(int argc, char **argv)
{
	char before[2048], after[2048];
	static uint64_t expect[REGION / 8];
	char *base, *r[NREG];
	int i, n;
	long bad;

	test_init(argc, argv);
	base = mmap(NULL, NREG * STRIDE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (base == MAP_FAILED)
		test_fail("mmap: %s", strerror(errno));
	for (i = 0; i < NREG; i++) {
		r[i] = base + i * STRIDE;
		munmap(r[i] + REGION, PG);
		test_fill(r[i], REGION, 0x9000 + (uint64_t)i);
	}
	memcpy(r[2] + PG, code, sizeof(code));
	for (i = 0; i < NREG; i++) {
		if (mprotect(r[i], REGION, prots[i]) < 0)
			test_fail("mprotect %s: %s", names[i], strerror(errno));
	}
	n = test_maps_lines((uintptr_t)base, (uintptr_t)base + NREG * STRIDE, before, sizeof(before));
	TEST_CHECK(n == NREG, "expected %d maps lines, got %d:\n%s", NREG, n, before);
	test_ready();
	test_wait();

	if (test_sabotage()) {
		mprotect(r[1], REGION, PROT_READ | PROT_WRITE);
		r[1][PG + 9] ^= 2;
		mprotect(r[1], REGION, PROT_READ);
	}
	n = test_maps_lines((uintptr_t)base, (uintptr_t)base + NREG * STRIDE, after, sizeof(after));
	TEST_CHECK(strcmp(before, after) == 0, "maps lines changed:\n%s---- now:\n%s", before, after);
	TEST_CHECK(((int (*)(void))(void *)(r[2] + PG))() == 0x5157ab1e,
		   "code in the r-x mapping returned a wrong value");
	for (i = 0; i < NREG; i++) {
		if (prots[i] == PROT_NONE && mprotect(r[i], REGION, PROT_READ) < 0)
			test_fail("mprotect to read: %s", strerror(errno));
		test_fill(expect, REGION, 0x9000 + (uint64_t)i);
		if (i == 2)
			memcpy((char *)expect + PG, code, sizeof(code));
		for (bad = 0; bad < (long)REGION; bad++)
			if (r[i][bad] != ((char *)expect)[bad])
				break;
		TEST_CHECK(bad == (long)REGION, "%s mapping differs at offset %ld", names[i], bad);
	}
	test_pass();
}
