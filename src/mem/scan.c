/* Which pages of an area hold data (PAGEMAP_SCAN), and the same asked ahead of time.
 *
 * The areas and their flags come from /proc/PID/smaps, whose every record walks each page
 * table entry of its area to count it: 20 ms for an area of 2 GiB here, the largest part
 * of an incremental pass (bench/incr.py). The page scan of the same area walks the same
 * entries again (6 ms). Both only read, and the task is frozen: so while one thread reads
 * smaps (cr/dump.c read_vmas), the other asks the present pages of the plain anonymous
 * areas that /proc/PID/maps lists (no page walk there), and mem_dump takes those answers
 * for the areas that turn out, once classified with smaps' flags, to be scanned exactly so
 * (same bounds, anonymous, private, pages wanted). Any other area is scanned then, as
 * before. Measured (bench/incr.py's workload, 2 GiB, 1% rewritten a pass, medians of 10
 * passes, the previous binary run alternately): the memory stage 10.5 -> 4.4 ms, frozen
 * 35.5 -> 32 ms (smaps takes 26 ms instead of 20 while the scan runs beside it: the two
 * share the machine's memory bandwidth). */
#include "mem/internal.h"

#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>

#include "core/log.h"
#include "core/util.h"
#include "sys/uapi.h"

int mem_pm_scan(int pmfd, struct pm_scan_arg *a, const char *what,
		int (*each)(void *arg, const struct page_region *r), void *arg)
{
	const struct page_region *vec = (const struct page_region *)(uintptr_t)a->vec;
	const uint64_t end = a->end;
	for (;;) {
		long n = ioctl(pmfd, PAGEMAP_SCAN, a);
		if (n < 0)
			return pr_perror("mem: PAGEMAP_SCAN%s %llx-%llx", what,
					 (unsigned long long)a->start, (unsigned long long)end);
		for (long i = 0; i < n; i++) {
			int ret = each(arg, &vec[i]);
			if (ret)
				return ret;
		}
		if (a->walk_end >= end || (uint64_t)n < a->vec_len)
			return 0;
		a->start = a->walk_end;
	}
}

static int guard_add(Vma *v, uint64_t start, uint64_t end)
{
	if (v->n_guards && v->guards[v->n_guards - 1] == start) {
		v->guards[v->n_guards - 1] = end;
		return 0;
	}
	if (v->n_guards % 64 == 0) {
		uint64_t *n = realloc(v->guards, (v->n_guards + 64) * sizeof(*n));
		if (!n)
			return -ENOMEM;
		v->guards = n;
	}
	v->guards[v->n_guards++] = start;
	v->guards[v->n_guards++] = end;
	return 0;
}

struct run_add {
	struct run_list *l; /* NULL: guard regions only */
	Vma *v;
};

static int run_add_one(void *arg, const struct page_region *r)
{
	const struct run_add *x = arg;
	if (r->categories & PAGE_IS_GUARD)
		return guard_add(x->v, r->start, r->end);
	return mem_run_add(x->l, x->v->start, r->start, (r->end - r->start) / PAGE_SIZE);
}

/* A scan of the whole of @v into @vec, without categories yet. */
static struct pm_scan_arg scan_of(const Vma *v, struct page_region *vec, size_t vec_len)
{
	return (struct pm_scan_arg){ .size = sizeof(struct pm_scan_arg),
				     .start = v->start,
				     .end = v->end,
				     .vec = (uint64_t)(uintptr_t)vec,
				     .vec_len = vec_len };
}

int mem_scan_guards(int pmfd, Vma *v, struct page_region *vec, size_t vec_len)
{
	struct pm_scan_arg a = scan_of(v, vec, vec_len);
	a.category_mask = a.return_mask = PAGE_IS_GUARD;
	struct run_add x = { NULL, v };
	return mem_pm_scan(pmfd, &a, " (guard regions)", run_add_one, &x);
}

int mem_scan_vma(int pmfd, Vma *v, struct run_list *l, struct page_region *vec,
		 size_t vec_len)
{
	struct pm_scan_arg a = scan_of(v, vec, vec_len);
	a.category_anyof_mask = a.return_mask = PAGE_IS_PRESENT | PAGE_IS_SWAPPED;
	a.category_mask = a.category_inverted = PAGE_IS_PFNZERO;
	if (v->kind == VMA_KIND__VMA_FILE) {
		/* private file mapping: only pages written (now anonymous) */
		a.category_mask |= PAGE_IS_FILE;
		a.category_inverted |= PAGE_IS_FILE;
	}
	if (mem_guard_scan(pmfd)) /* a guard region is not data: apart */
		a.return_mask |= PAGE_IS_GUARD;
	struct run_add x = { l, v };
	return mem_pm_scan(pmfd, &a, "", run_add_one, &x);
}

/* ------------------------------------------------------------------ ahead of time */

struct prescan_area {
	uint64_t start, end;
	struct run_list runs;
	uint64_t *guards; /* as Vma.guards */
	size_t n_guards;
	bool taken;
};

struct mem_prescan {
	struct prescan_area *a;
	size_t n;
};

/* Listed by maps as private anonymous memory without a file: scanned as VMA_ANON (heap,
 * stack, named anonymous areas are scanned the same way). A MAP_HUGETLB area has a file
 * name; the vDSO and its kin are left out (no pages wanted). */
static bool prescan_wanted(const struct proc_vma *v)
{
	if (v->shared || v->ino || v->dev_major || v->dev_minor)
		return false;
	return !v->path || !strcmp(v->path, "[heap]") || !strcmp(v->path, "[stack]") ||
	       !strncmp(v->path, "[anon:", 6);
}

void mem_prescan_free(struct mem_prescan *p)
{
	if (!p)
		return;
	for (size_t i = 0; i < p->n; i++) {
		for (size_t k = 0; k < p->a[i].runs.nr; k++)
			free(p->a[i].runs.runs[k]);
		free(p->a[i].runs.runs);
		free(p->a[i].guards);
	}
	free(p->a);
	free(p);
}

/* The present pages of the areas of @v that prescan_wanted, in *@out. */
static int prescan_areas(int procfd, const struct proc_vma *v, size_t n,
			 struct mem_prescan **out)
{
	_cleanup_close_ int pmfd = openat(procfd, "pagemap", O_RDONLY | O_CLOEXEC);
	if (pmfd < 0)
		return -errno;
	const size_t vec_len = 4096;
	_cleanup_free_ struct page_region *vec = calloc(vec_len, sizeof(*vec));
	struct mem_prescan *p = calloc(1, sizeof(*p));
	if (p)
		p->a = calloc(n ? n : 1, sizeof(*p->a));
	if (!vec || !p || !p->a) {
		mem_prescan_free(p);
		return -ENOMEM;
	}
	for (size_t i = 0; i < n; i++) {
		if (!prescan_wanted(&v[i]))
			continue;
		struct prescan_area *a = &p->a[p->n++];
		a->start = v[i].start;
		a->end = v[i].end;
		Vma probe = { .start = a->start, .end = a->end, .kind = VMA_KIND__VMA_ANON };
		int ret = mem_scan_vma(pmfd, &probe, &a->runs, vec, vec_len);
		a->guards = probe.guards;
		a->n_guards = probe.n_guards;
		if (ret) {
			mem_prescan_free(p);
			return ret;
		}
	}
	*out = p;
	return 0;
}

int mem_read_maps(int procfd, struct proc_vma **v, size_t *n)
{
	_cleanup_free_ char *buf = read_records_at(procfd, "maps", 1 << 28);
	if (!buf)
		return errno ? -errno : -EIO;
	return proc_parse_smaps(buf, v, n);
}

int mem_prescan(int procfd, struct mem_prescan **out)
{
	struct proc_vma *v = NULL;
	size_t n = 0;
	*out = NULL;
	int ret = mem_read_maps(procfd, &v, &n);
	if (!ret) {
		ret = prescan_areas(procfd, v, n, out);
		proc_vmas_free(v, n);
	}
	return ret;
}

int mem_prescan_take(struct mem_prescan *p, Vma *v, struct run_list *l)
{
	if (!p || (v->flags & MAP_SHARED) || v->has_huge_kb ||
	    (v->kind != VMA_KIND__VMA_ANON && v->kind != VMA_KIND__VMA_HEAP &&
	     v->kind != VMA_KIND__VMA_STACK))
		return 1;
	size_t lo = 0, hi = p->n; /* the areas are in address order */
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (p->a[mid].end <= v->start)
			lo = mid + 1;
		else
			hi = mid;
	}
	struct prescan_area *a = lo < p->n ? &p->a[lo] : NULL;
	if (!a || a->taken || a->start != v->start || a->end != v->end)
		return 1;
	if (l->nr + a->runs.nr > l->cap) {
		size_t ncap = MAX(l->cap * 2, l->nr + a->runs.nr);
		PageRun **n = realloc(l->runs, ncap * sizeof(*n));
		if (!n)
			return -ENOMEM;
		l->runs = n;
		l->cap = ncap;
	}
	if (a->runs.nr)
		memcpy(l->runs + l->nr, a->runs.runs, a->runs.nr * sizeof(PageRun *));
	l->nr += a->runs.nr;
	a->runs.nr = 0;
	free(v->guards);
	v->guards = a->guards;
	v->n_guards = a->n_guards;
	a->guards = NULL;
	a->taken = true;
	return 0;
}
