// stasis-test: timeout=60
/* The ways a restore copies private anonymous memory in (src/mem/pages.c): an area no
 * fault would map huge pages in (MADV_NOHUGEPAGE, 40 MiB: through a userfaultfd) with
 * holes never written and a block dropped with MADV_DONTNEED, an area given
 * MADV_HUGEPAGE (8 MiB, 2 MiB-aligned, written whole), and a plain area (16 MiB, either
 * way depending on the THP settings). After the restore every byte is the same, the
 * holes read zeros and hold no page (the area's Rss is the same), and the MADV_HUGEPAGE
 * area is backed by huge pages again if it was before (its advice is given back before
 * its pages come in). */
#include "lib.h"

#include <errno.h>
#include <string.h>
#include <sys/mman.h>

#define KB 1024ul
#define MB (1024ul * 1024ul)
#define BLOCK (256 * KB)

struct area {
	const char *name;
	size_t size;
	int advice;
	bool holes;
	char *addr;
	unsigned long rss, huge;
};

static struct area areas[] = {
	{ "nohugepage", 40 * MB, MADV_NOHUGEPAGE, true, NULL, 0, 0 },
	{ "hugepage", 8 * MB, MADV_HUGEPAGE, false, NULL, 0, 0 },
	{ "plain", 16 * MB, 0, true, NULL, 0, 0 },
};
#define NAREA (sizeof(areas) / sizeof(areas[0]))

static uint64_t seed_of(size_t a, size_t b) { return 0xf111ull << 32 | a << 16 | b; }

/* Block @b of an area with holes: 0 never written, 1 written then dropped, 2 written. */
static int block_kind(const struct area *ar, size_t b)
{
	if (!ar->holes)
		return 2;
	return b % 5 == 3 ? 0 : b % 11 == 7 ? 1 : 2;
}

static char *map_aligned(size_t size)
{
	char *raw = mmap(NULL, size + 2 * MB, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (raw == MAP_FAILED)
		test_fail("mmap reservation: %s", strerror(errno));
	char *p = (char *)(((uintptr_t)raw + 2 * MB - 1) & ~(uintptr_t)(2 * MB - 1));
	if (mmap(p, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0) ==
	    MAP_FAILED)
		test_fail("mmap: %s", strerror(errno));
	return p;
}

static void check_area(const struct area *ar, size_t a)
{
	static const char zero[BLOCK];
	for (size_t b = 0; b < ar->size / BLOCK; b++) {
		const char *p = ar->addr + b * BLOCK;
		if (block_kind(ar, b) == 2) {
			long off = test_check(p, BLOCK, seed_of(a, b));
			TEST_CHECK(off < 0, "%s: block %zu differs at offset %ld", ar->name, b, off);
		} else {
			TEST_CHECK(!memcmp(p, zero, BLOCK), "%s: block %zu (a hole) is not zeros",
				   ar->name, b);
		}
	}
}

int main(int argc, char **argv)
{
	test_init(argc, argv);
	for (size_t a = 0; a < NAREA; a++) {
		struct area *ar = &areas[a];
		ar->addr = map_aligned(ar->size);
		if (ar->advice && madvise(ar->addr, ar->size, ar->advice) < 0)
			test_fail("madvise %s: %s", ar->name, strerror(errno));
		for (size_t b = 0; b < ar->size / BLOCK; b++) {
			char *p = ar->addr + b * BLOCK;
			int kind = block_kind(ar, b);
			if (kind)
				test_fill(p, BLOCK, seed_of(a, b));
			if (kind == 1 && madvise(p, BLOCK, MADV_DONTNEED) < 0)
				test_fail("MADV_DONTNEED: %s", strerror(errno));
		}
		ar->rss = test_area_kb(ar->addr, "Rss");
		ar->huge = test_area_kb(ar->addr, "AnonHugePages");
	}
	test_ready();
	test_wait();

	if (test_sabotage())
		areas[0].addr[3 * BLOCK + 100] = 1; /* a hole written */
	for (size_t a = 0; a < NAREA; a++) {
		const struct area *ar = &areas[a];
		check_area(ar, a);
		unsigned long rss = test_area_kb(ar->addr, "Rss");
		unsigned long huge = test_area_kb(ar->addr, "AnonHugePages");
		/* huge pages may fill the holes of an area THP covers: Rss only grows then */
		TEST_CHECK(rss == ar->rss || (huge && rss > ar->rss), "%s: Rss %lu kB, was %lu kB",
			   ar->name, rss, ar->rss);
		TEST_CHECK(!ar->huge || huge, "%s: AnonHugePages %lu kB, was %lu kB", ar->name,
			   huge, ar->huge);
	}
	test_pass();
}
