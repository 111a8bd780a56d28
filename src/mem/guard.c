/* Guard regions (MADV_GUARD_INSTALL, Linux 6.13): whether the page scan can tell them
 * (src/mem/scan.c finds them, into Vma.guards and Vma.guard_flag), their image checked,
 * and installed again at restore. */
#include "mem/internal.h"

#include <errno.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>

#include "core/log.h"
#include "sys/uapi.h"

/* Whether PAGEMAP_SCAN reports guard regions (PAGE_IS_GUARD, Linux 6.14): a guard
 * region's PTE marker is reported as a swapped-out page otherwise. Asked of the task's
 * pagemap (stasis's own is not readable by a stasis with file capabilities), once:
 * EINVAL (an unknown category) says no. */
static int guard_scan = -1;

bool mem_guard_scan(int pmfd)
{
	int g = __atomic_load_n(&guard_scan, __ATOMIC_RELAXED);
	if (g >= 0)
		return g;
	struct page_region reg;
	struct pm_scan_arg a = { .size = sizeof(a),
				 .start = 0,
				 .end = PAGE_SIZE,
				 .vec = (uint64_t)(uintptr_t)&reg,
				 .vec_len = 1,
				 .category_anyof_mask = PAGE_IS_PRESENT | PAGE_IS_GUARD,
				 .return_mask = PAGE_IS_GUARD };
	if (ioctl(pmfd, PAGEMAP_SCAN, &a) >= 0)
		g = 1;
	else if (errno == EINVAL)
		g = 0;
	else
		return false;
	__atomic_store_n(&guard_scan, g, __ATOMIC_RELAXED);
	return g;
}

/* Vma.guards: pairs of page-aligned bounds inside the area, in order, apart. */
int mem_guards_validate(const Vma *v, size_t i)
{
	uint64_t prev = v->start;
	bool ok = v->n_guards % 2 == 0 && v->n_guards <= 2 * ((v->end - v->start) / PAGE_SIZE);
	for (size_t k = 0; ok && k < v->n_guards; k += 2) {
		uint64_t s = v->guards[k], e = v->guards[k + 1];
		ok = s >= prev && s < e && e <= v->end && !((s | e) & (PAGE_SIZE - 1)) &&
		     (k == 0 || s > prev);
		prev = e;
	}
	if (!ok)
		pr_err("image: vma %zu (%llx-%llx) has malformed guard regions", i,
		       (unsigned long long)v->start, (unsigned long long)v->end);
	return ok ? 0 : -EINVAL;
}

/* [@s, @e) overlaps a guard region of @v (its pages could not be written). */
bool mem_guard_overlaps(const Vma *v, uint64_t s, uint64_t e)
{
	for (size_t k = 0; k + 1 < v->n_guards; k += 2)
		if (v->guards[k] < e && s < v->guards[k + 1])
			return true;
	return false;
}

/* Guard regions installed again, before the pages come in (no run lies in one; a
 * guard cannot be installed in a locked area, which mlock_vmas makes later). An area the
 * kernel had marked (VmFlags gu) with no guard left gets its mark back by a guard
 * installed and removed on its first page, still empty. */
int mem_guards_install(struct rst_ctx *c)
{
	for (size_t i = 0; i < c->mm->n_vmas; i++) {
		const Vma *v = c->mm->vmas[i];
		for (size_t k = 0; k + 1 < v->n_guards; k += 2) {
			long r = rsys_do(&c->rs, "restore: install guard regions", SYS_madvise,
					 v->guards[k], v->guards[k + 1] - v->guards[k],
					 MADV_GUARD_INSTALL, 0, 0, 0);
			if (r < 0)
				return pr_errno((int)r, "restore: pid %d: guard region %llx-%llx",
						c->pid, (unsigned long long)v->guards[k],
						(unsigned long long)v->guards[k + 1]);
		}
		if (v->n_guards || !v->guard_flag)
			continue;
		long r = rsys_do(&c->rs, "restore: mark an area guarded", SYS_madvise, v->start,
				 PAGE_SIZE, MADV_GUARD_INSTALL, 0, 0, 0);
		if (r >= 0)
			r = rsys_do(&c->rs, "restore: mark an area guarded", SYS_madvise, v->start,
				    PAGE_SIZE, MADV_GUARD_REMOVE, 0, 0, 0);
		if (r < 0)
			return pr_errno((int)r, "restore: pid %d: mark %llx-%llx as guarded", c->pid,
					(unsigned long long)v->start, (unsigned long long)v->end);
	}
	return 0;
}
