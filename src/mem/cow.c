/* Private anonymous pages a child shares copy-on-write with its parent in the tree,
 * stored once (the child's runs point into the parent's page stream); the state between
 * the two dump phases of the memory module. */
#include "mem/internal.h"

#include <fcntl.h>
#include <stdlib.h>
#include <unistd.h>

#include "core/log.h"
#include "core/util.h"

static int xref_add(struct mem_dump_state *ms, PageRun *r, const PageRun *src)
{
	if (ms->n_xref % 64 == 0) {
		struct mem_xref *n = realloc(ms->xref, (ms->n_xref + 64) * sizeof(*n));
		if (!n)
			return -ENOMEM;
		ms->xref = n;
	}
	ms->xref[ms->n_xref++] = (struct mem_xref){ r, src };
	return 0;
}

void mem_dump_state_free(struct mem_dump_state *ms)
{
	if (!ms)
		return;
	mem_track_proc_free(ms->trk);
	free(ms->own.runs);
	free(ms->xref);
	free(ms);
}

#define PM_PRESENT (1ULL << 63)
#define PM_PFN_MASK ((1ULL << 55) - 1)

static int read_pagemap(int fd, uint64_t start, size_t n, uint64_t *out)
{
	ssize_t r = pread(fd, out, n * sizeof(uint64_t), (off_t)(start / PAGE_SIZE * 8));
	if (r != (ssize_t)(n * sizeof(uint64_t)))
		return r < 0 ? -errno : -EIO;
	return 0;
}

const PageRun *mem_run_at(const Mm *mm, uint64_t va, size_t *idx, uint64_t *next)
{
	size_t lo = 0, hi = mm ? mm->n_pages : 0;
	if (next)
		*next = UINT64_MAX;
	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		const PageRun *r = mm->pages[mid];
		if (va < r->vaddr) {
			if (next)
				*next = r->vaddr;
			hi = mid;
		} else if (va >= r->vaddr + r->nr_pages * PAGE_SIZE) {
			lo = mid + 1;
		} else {
			if (idx)
				*idx = mid;
			return r;
		}
	}
	return NULL;
}

/* The parent's run holding @vaddr stored in its own stream, or NULL. */
static const PageRun *parent_run(const Mm *pm, uint64_t vaddr)
{
	const PageRun *r = mem_run_at(pm, vaddr, NULL, NULL);
	return r && !r->has_src_pid ? r : NULL;
}

int mem_run_push(struct run_list *l, PageRun *r)
{
	if (l->nr == l->cap) {
		size_t ncap = l->cap ? l->cap * 2 : 64;
		PageRun **n = realloc(l->runs, ncap * sizeof(*n));
		if (!n)
			return -ENOMEM;
		l->runs = n;
		l->cap = ncap;
	}
	l->runs[l->nr++] = r;
	return 0;
}

/* Private anonymous pages a child still shares copy-on-write with its parent (same
 * physical page at the same address: fork) are stored once: the child's run points into
 * the parent's page stream. Needs PFNs in /proc/PID/pagemap (CAP_SYS_ADMIN); without
 * them every page is the process's own. @in's runs end up in @all (address order);
 * @own lists those whose data this process's own page stream holds. */
int mem_split_cow_shared(struct dump_ctx *c, int pmfd, struct run_list *in,
			    struct run_list *own, struct run_list *all, struct mem_dump_state *ms)
{
	const Mm *pm = c->parent ? c->parent->mm : NULL;
	_cleanup_close_ int ppm = -1;
	_cleanup_free_ uint64_t *ce = NULL, *pe = NULL;
	const size_t batch = 65536;
	int ret = 0;

	if (pm && pm->n_pages)
		ppm = openat(c->parent->procfd, "pagemap", O_RDONLY | O_CLOEXEC);

	if (ppm >= 0) {
		ce = malloc(batch * sizeof(uint64_t));
		pe = malloc(batch * sizeof(uint64_t));
		if (!ce || !pe)
			return -ENOMEM;
	}
	uint64_t shared_bytes = 0;
	for (size_t i = 0; i < in->nr && !ret; i++) {
		PageRun *r = in->runs[i];
		if (ppm < 0) {
			ret = mem_run_push(own, r);
			if (!ret)
				ret = mem_run_push(all, r);
			if (!ret)
				in->runs[i] = NULL; /* owned by @all now */
			continue;
		}
		/* walk the run, cutting it where sharing starts or stops */
		uint64_t cur = r->vaddr, end = r->vaddr + r->nr_pages * PAGE_SIZE;
		uint64_t seg = cur;
		int seg_shared = -1;
		const PageRun *seg_prun = NULL;
		while (cur < end && !ret) {
			size_t n = (size_t)MIN((end - cur) / PAGE_SIZE, (uint64_t)batch);
			if (read_pagemap(pmfd, cur, n, ce) || read_pagemap(ppm, cur, n, pe)) {
				close(ppm);
				ppm = -1; /* no PFNs to compare: keep the rest as own data */
				n = (end - cur) / PAGE_SIZE;
			}
			for (size_t k = 0; k < n; k++) {
				uint64_t va = cur + k * PAGE_SIZE;
				const PageRun *pr = NULL;
				int sh = 0;
				if (ppm >= 0 && (ce[k] & PM_PRESENT) && (pe[k] & PM_PRESENT) &&
				    (ce[k] & PM_PFN_MASK) && (ce[k] & PM_PFN_MASK) == (pe[k] & PM_PFN_MASK)) {
					pr = parent_run(pm, va);
					sh = pr != NULL;
				}
				if (seg_shared >= 0 && (sh != seg_shared || (sh && pr != seg_prun))) {
					PageRun *nr = calloc(1, sizeof(*nr));
					if (!nr)
						return -ENOMEM;
					page_run__init(nr);
					nr->vaddr = seg;
					nr->nr_pages = (va - seg) / PAGE_SIZE;
					if (seg_shared) {
						nr->has_src_pid = true;
						nr->src_pid = c->parent->pid;
						shared_bytes += va - seg;
						ret = xref_add(ms, nr, seg_prun);
					}
					if (!ret)
						ret = mem_run_push(all, nr);
					if (!ret && !seg_shared)
						ret = mem_run_push(own, nr);
					if (ret)
						return ret;
					seg = va;
				}
				seg_shared = sh;
				seg_prun = pr;
			}
			cur += n * PAGE_SIZE;
		}
		/* the last segment reuses @r */
		r->vaddr = seg;
		r->nr_pages = (end - seg) / PAGE_SIZE;
		if (seg_shared == 1) {
			r->has_src_pid = true;
			r->src_pid = c->parent->pid;
			shared_bytes += end - seg;
			ret = xref_add(ms, r, seg_prun);
		}
		if (!ret)
			ret = mem_run_push(all, r);
		if (!ret)
			in->runs[i] = NULL; /* owned by @all now */
		if (!ret && seg_shared != 1)
			ret = mem_run_push(own, r);
	}
	in->nr = 0; /* every run now belongs to @all */
	if (!ret && shared_bytes)
		pr_info("mem: pid %d shares %llu bytes copy-on-write with pid %d: stored once",
			c->pid, (unsigned long long)shared_bytes, c->parent->pid);
	return ret;
}
