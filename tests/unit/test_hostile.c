/* Hostile memory images beyond fuzzing: well-framed Mm messages (the checksums of a real
 * image would be right) whose contents lie — overlapping or unaligned areas, an area
 * past the user address space, page runs past the end of the pages file, runs outside
 * any area or overlapping each other, a parent depth beyond the chain. mem_validate must
 * refuse each before a task is touched, and accept the well-formed one. */
#include <stdint.h>
#include <sys/mman.h>

#include "core/log.h"
#include "mem/mem.h"
#include "mem/pagexfer.h"
#include "image/img.h"
#include "unit.h"

#define PG 4096ull
#define BASE 0x10000000ull

static Vma vma_at(uint64_t start, uint64_t end)
{
	Vma v = VMA__INIT;
	v.start = start;
	v.end = end;
	v.kind = VMA_KIND__VMA_ANON;
	v.prot = PROT_READ | PROT_WRITE;
	v.flags = MAP_PRIVATE;
	return v;
}

static PageRun run_at(uint64_t vaddr, uint64_t nr, uint64_t offset)
{
	PageRun r = PAGE_RUN__INIT;
	r.vaddr = vaddr;
	r.nr_pages = nr;
	r.offset = offset;
	return r;
}

/* mem_validate of @nv areas and @nr runs over a pages stream of @len bytes. */
static int validate(Vma *v, size_t nv, PageRun *r, size_t nr, uint64_t len)
{
	Vma *vp[4];
	PageRun *rp[4];
	Mm mm = MM__INIT;
	struct page_source src = { .len = len };

	for (size_t i = 0; i < nv; i++)
		vp[i] = &v[i];
	for (size_t i = 0; i < nr; i++)
		rp[i] = &r[i];
	mm.n_vmas = nv;
	mm.vmas = vp;
	mm.n_pages = nr;
	mm.pages = rp;
	return mem_validate(&mm, &src);
}

static void test_good(void)
{
	Vma v[2] = { vma_at(BASE, BASE + 4 * PG), vma_at(BASE + 8 * PG, BASE + 9 * PG) };
	PageRun r[2] = { run_at(BASE, 2, PAGE_STREAM_START),
			 run_at(BASE + 8 * PG, 1, PAGE_STREAM_START + 2 * PG) };
	CHECK_EQ(validate(v, 2, r, 2, 3 * PG), 0);
}

static void test_bad_areas(void)
{
	Vma overlap[2] = { vma_at(BASE, BASE + 4 * PG), vma_at(BASE + 2 * PG, BASE + 6 * PG) };
	CHECK_EQ(validate(overlap, 2, NULL, 0, 0), -EINVAL);
	Vma unaligned[1] = { vma_at(BASE + 1, BASE + PG) };
	CHECK_EQ(validate(unaligned, 1, NULL, 0, 0), -EINVAL);
	Vma empty[1] = { vma_at(BASE, BASE) };
	CHECK_EQ(validate(empty, 1, NULL, 0, 0), -EINVAL);
	Vma huge[1] = { vma_at(BASE, 0xffff800000000000ull) };
	CHECK_EQ(validate(huge, 1, NULL, 0, 0), -EINVAL);
	Vma wrapped[1] = { vma_at(0xfffffffffffff000ull, PG) };
	CHECK_EQ(validate(wrapped, 1, NULL, 0, 0), -EINVAL);
	Vma prot[1] = { vma_at(BASE, BASE + PG) };
	prot[0].prot |= 0x1000;
	CHECK_EQ(validate(prot, 1, NULL, 0, 0), -EINVAL);
	Vma flags[1] = { vma_at(BASE, BASE + PG) };
	flags[0].flags |= MAP_FIXED;
	CHECK_EQ(validate(flags, 1, NULL, 0, 0), -EINVAL);
	Vma kind[1] = { vma_at(BASE, BASE + PG) };
	kind[0].kind = (VmaKind)77;
	CHECK_EQ(validate(kind, 1, NULL, 0, 0), -EINVAL);
	Vma relpath[1] = { vma_at(BASE, BASE + PG) };
	relpath[0].kind = VMA_KIND__VMA_FILE;
	relpath[0].path = (char *)"../../etc/shadow";
	CHECK_EQ(validate(relpath, 1, NULL, 0, 0), -EINVAL);
}

static void test_bad_runs(void)
{
	Vma v[1] = { vma_at(BASE, BASE + 4 * PG) };
	/* past the end of the pages file */
	PageRun past[1] = { run_at(BASE, 2, PAGE_STREAM_START) };
	CHECK_EQ(validate(v, 1, past, 1, PG), -EINVAL);
	/* an offset that skips or rewinds the stream */
	PageRun skip[1] = { run_at(BASE, 1, PAGE_STREAM_START + PG) };
	CHECK_EQ(validate(v, 1, skip, 1, 2 * PG), -EINVAL);
	/* outside every area, or spilling out of one */
	PageRun outside[1] = { run_at(BASE + 16 * PG, 1, PAGE_STREAM_START) };
	CHECK_EQ(validate(v, 1, outside, 1, PG), -EINVAL);
	PageRun spill[1] = { run_at(BASE + 3 * PG, 2, PAGE_STREAM_START) };
	CHECK_EQ(validate(v, 1, spill, 1, 2 * PG), -EINVAL);
	/* overlapping runs, a run of no pages, a count that overflows the address space */
	PageRun twice[2] = { run_at(BASE, 2, PAGE_STREAM_START),
			     run_at(BASE + PG, 1, PAGE_STREAM_START + 2 * PG) };
	CHECK_EQ(validate(v, 1, twice, 2, 3 * PG), -EINVAL);
	PageRun none[1] = { run_at(BASE, 0, PAGE_STREAM_START) };
	CHECK_EQ(validate(v, 1, none, 1, PG), -EINVAL);
	PageRun wrap[1] = { run_at(BASE, (1ull << 52), PAGE_STREAM_START) };
	CHECK_EQ(validate(v, 1, wrap, 1, PG), -EINVAL);
	/* a parent image deeper than any chain, another process's stream with a bad pid */
	PageRun deep[1] = { run_at(BASE, 1, 0) };
	deep[0].has_parent_depth = true;
	deep[0].parent_depth = 100000;
	CHECK_EQ(validate(v, 1, deep, 1, 0), -EINVAL);
	PageRun srcpid[1] = { run_at(BASE, 1, 0) };
	srcpid[0].has_src_pid = true;
	srcpid[0].src_pid = -5;
	CHECK_EQ(validate(v, 1, srcpid, 1, 0), -EINVAL);
}

int main(void)
{
	log_set_level(LOG_NONE);
	RUN(test_good);
	RUN(test_bad_areas);
	RUN(test_bad_runs);
	return unit_done();
}
