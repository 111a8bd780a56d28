// stasis-test: timeout=30
/* Anonymous private mappings with madvise flags: MADV_DONTFORK (dc), MADV_WIPEONFORK
 * (wf), MADV_HUGEPAGE (hg, 4 MiB 2 MiB-aligned), MADV_NOHUGEPAGE (nh), one with both
 * DONTFORK and NOHUGEPAGE, MADV_SEQUENTIAL (sr), MADV_RANDOM (rr) and a MAP_GROWSDOWN
 * mapping (gd). They lie in a PROT_NONE
 * reservation with gaps so that none merges with a neighbour. After the restore each
 * range is still one VMA with the same bounds, its VmFlags (restricted to rd wr ex dc wf
 * hg nh gd sr rr; others such as ac, sd, mg may differ) are the expected ones, and its data is
 * intact. */
#include "lib.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#define KB 1024ul
#define MB (1024ul * 1024ul)

struct region {
	const char *name;
	size_t off, size;	/* within the reservation; growsdown: own mapping */
	int advice[2];		/* 0-terminated */
	const char *expect;	/* filtered VmFlags */
	char *addr;
	char before[64], after[64];
	uintptr_t end_before, end_after;
};

static struct region regions[] = {
	{ "dontfork", 64 * KB, 64 * KB, { MADV_DONTFORK, 0 }, "rd wr dc" },
	{ "wipeonfork", 256 * KB, 128 * KB, { MADV_WIPEONFORK, 0 }, "rd wr wf" },
	{ "hugepage", 2 * MB, 4 * MB, { MADV_HUGEPAGE, 0 }, "rd wr hg" },
	{ "nohugepage", 8 * MB, 1 * MB, { MADV_NOHUGEPAGE, 0 }, "rd wr nh" },
	{ "dontfork+nohugepage", 10 * MB, 64 * KB, { MADV_DONTFORK, MADV_NOHUGEPAGE },
	  "rd wr dc nh" },
	{ "sequential", 9 * MB + 256 * KB, 64 * KB, { MADV_SEQUENTIAL, 0 }, "rd wr sr" },
	{ "random", 11 * MB, 64 * KB, { MADV_RANDOM, 0 }, "rd wr rr" },
	{ "growsdown", 0, 128 * KB, { 0 }, "rd wr gd" },
};
#define NREG (sizeof(regions) / sizeof(regions[0]))
#define RESERVE (12 * MB)

static const char *const kept[] = { "rd", "wr", "ex", "dc", "wf", "hg", "nh", "gd", "sr", "rr" };

static void filter_flags(const char *vmflags, char *out, size_t size)
{
	size_t k, used = 0;

	out[0] = '\0';
	for (k = 0; k < sizeof(kept) / sizeof(kept[0]); k++) {
		const char *p = vmflags;

		while ((p = strstr(p, kept[k])) != NULL) {
			if ((p == vmflags || p[-1] == ' ') && (p[2] == ' ' || p[2] == '\n' || !p[2]))
				break;
			p += 2;
		}
		if (p)
			used += (size_t)snprintf(out + used, size - used, "%s%s", used ? " " : "",
						 kept[k]);
	}
}

/* Fills @before or @after of every region from /proc/self/smaps. */
static void read_smaps(bool after)
{
	char line[1024];
	struct region *cur = NULL;
	FILE *f = fopen("/proc/self/smaps", "re");
	size_t i;

	if (!f)
		test_fail("open /proc/self/smaps: %s", strerror(errno));
	for (i = 0; i < NREG; i++) {
		strcpy(after ? regions[i].after : regions[i].before, "(no vma)");
		*(after ? &regions[i].end_after : &regions[i].end_before) = 0;
	}
	while (fgets(line, sizeof(line), f)) {
		unsigned long lo, hi;

		if (sscanf(line, "%lx-%lx ", &lo, &hi) == 2 && strchr(line, '-') < strchr(line, ' ')) {
			cur = NULL;
			for (i = 0; i < NREG; i++) {
				if ((uintptr_t)regions[i].addr == lo) {
					cur = &regions[i];
					*(after ? &cur->end_after : &cur->end_before) = hi;
				}
			}
			continue;
		}
		if (cur && !strncmp(line, "VmFlags:", 8)) {
			filter_flags(line + 8 + strspn(line + 8, " "), after ? cur->after : cur->before,
				     sizeof(cur->before));
			cur = NULL;
		}
	}
	fclose(f);
}

static uint64_t seed_of(size_t i)
{
	return 0x5eed0000ull + i * 0x1001;
}

int main(int argc, char **argv)
{
	char *raw, *base;
	size_t i;
	int k;

	test_init(argc, argv);
	raw = mmap(NULL, RESERVE + 2 * MB, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE,
		   -1, 0);
	if (raw == MAP_FAILED)
		test_fail("mmap reservation: %s", strerror(errno));
	base = (char *)(((uintptr_t)raw + 2 * MB - 1) & ~(uintptr_t)(2 * MB - 1));

	for (i = 0; i < NREG; i++) {
		struct region *r = &regions[i];

		if (r->advice[0] == 0) {
			r->addr = mmap(NULL, r->size, PROT_READ | PROT_WRITE,
				       MAP_PRIVATE | MAP_ANONYMOUS | MAP_GROWSDOWN, -1, 0);
		} else {
			r->addr = mmap(base + r->off, r->size, PROT_READ | PROT_WRITE,
				       MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
		}
		if (r->addr == MAP_FAILED)
			test_fail("mmap %s: %s", r->name, strerror(errno));
		for (k = 0; k < 2 && r->advice[k]; k++)
			if (madvise(r->addr, r->size, r->advice[k]) < 0)
				test_fail("madvise %s (%d): %s", r->name, r->advice[k],
					  strerror(errno));
		test_fill(r->addr, r->size, seed_of(i));
	}
	read_smaps(false);
	for (i = 0; i < NREG; i++) {
		struct region *r = &regions[i];

		TEST_CHECK(r->end_before == (uintptr_t)r->addr + r->size,
			   "before: %s is not one vma of its own (ends at %#lx)", r->name,
			   (unsigned long)r->end_before);
		TEST_CHECK(!strcmp(r->before, r->expect), "before: %s VmFlags [%s], expected [%s]",
			   r->name, r->before, r->expect);
	}

	test_ready();
	test_wait();

	if (test_sabotage())
		madvise(regions[0].addr, regions[0].size, MADV_DOFORK);
	read_smaps(true);
	for (i = 0; i < NREG; i++) {
		struct region *r = &regions[i];
		long off;

		TEST_CHECK(r->end_after == r->end_before,
			   "%s: vma %p-%#lx became %p-%#lx (0: no vma starts there)", r->name,
			   (void *)r->addr, (unsigned long)r->end_before, (void *)r->addr,
			   (unsigned long)r->end_after);
		TEST_CHECK(!strcmp(r->after, r->before), "%s: VmFlags [%s] became [%s]", r->name,
			   r->before, r->after);
		off = test_check(r->addr, r->size, seed_of(i));
		TEST_CHECK(off < 0, "%s: data differs at offset %ld", r->name, off);
	}
	test_pass();
}
