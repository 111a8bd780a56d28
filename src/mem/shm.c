/* MAP_SHARED anonymous objects (see vma_is_shm in internal.h).
 *
 * Dump: the pages an object holds are not those its views have in their page tables: a
 * page written by a process that exited since (a database backend that read a page into
 * the shared buffers), or dropped from a view with MADV_DONTNEED (which only unmaps a
 * shared page), is in the object and in no process's page tables. So a view's runs are
 * the object's pages in the view's range, found in the object itself: SEEK_DATA /
 * SEEK_HOLE on its file (/proc/PID/map_files, which needs CAP_CHECKPOINT_RESTORE in the
 * initial user namespace; swapped-out pages count), else mincore() run by the task
 * (resident pages of the object; a view whose range has swapped-out pages is then
 * refused). A page is stored once: by the first process in dump order (parents first)
 * whose view covers it; a view's range also covered by a view of the same object in one
 * of the process's ancestors is left to that ancestor (the object is made once at
 * restore, so its data reaches every view). A hugetlb object is read through its file
 * (scan_huge_by_read); without map_files only its views' page tables are seen (a huge
 * page that no process of the tree maps is then missed: not detectable without it).
 *
 * Restore: made once by stasis before any process exists, inherited by every restore
 * child, which makes its views of them (src/mem/mem.c map_vmas). */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "core/log.h"
#include "core/util.h"
#include "cr/ctx.h"
#include "mem/internal.h"
#include "proc/parse.h"
#include "ptrace/rsys.h"

struct span {
	uint64_t s, e;
};

/* The first part of [*@s, @e) that no span of @cov covers: [*@s, *@gap_end) with *@s
 * moved to its start; false if there is none. */
static bool next_gap(const struct span *cov, size_t ncov, uint64_t *s, uint64_t e,
		     uint64_t *gap_end)
{
	while (*s < e) {
		const struct span *first = NULL;
		for (size_t i = 0; i < ncov; i++)
			if (cov[i].s < e && cov[i].e > *s && (!first || cov[i].s < first->s))
				first = &cov[i];
		if (!first || first->s > *s) {
			*gap_end = first ? first->s : e;
			return true;
		}
		*s = first->e;
	}
	return false;
}

/* Object range [@s, @e) of view @v added to @l as runs, but what @cov covers. */
static int add_uncovered(struct run_list *l, const Vma *v, const struct span *cov, size_t ncov,
			 uint64_t s, uint64_t e)
{
	uint64_t pg = v->has_pgoff ? v->pgoff : 0, ge;
	for (; next_gap(cov, ncov, &s, e, &ge); s = ge) {
		int ret = mem_run_add(l, v->start, v->start + (s - pg), (ge - s) / PAGE_SIZE);
		if (ret)
			return ret;
	}
	return 0;
}

/* The object ranges of @v's object that views in the ancestors of @c cover. */
static int ancestor_views(const struct dump_ctx *c, const Vma *v, struct span **out, size_t *n)
{
	*out = NULL;
	*n = 0;
	for (const struct dump_ctx *a = c->parent; a; a = a->parent) {
		for (size_t i = 0; a->mm && i < a->mm->n_vmas; i++) {
			const Vma *u = a->mm->vmas[i];
			if (!vma_is_shm(u) || u->shmid != v->shmid || vma_huge_kb(u) != vma_huge_kb(v))
				continue;
			struct span *nb = realloc(*out, (*n + 1) * sizeof(*nb));
			if (!nb)
				return -ENOMEM;
			*out = nb;
			uint64_t pg = u->has_pgoff ? u->pgoff : 0;
			nb[(*n)++] = (struct span){ pg, pg + (u->end - u->start) };
		}
	}
	return 0;
}

/* The object's pages in the view's range, found by SEEK_DATA on the object's file @fd. */
static int scan_by_seek(int fd, const Vma *v, struct run_list *l, const struct span *cov,
			size_t ncov)
{
	uint64_t pg = v->has_pgoff ? v->pgoff : 0, end = pg + (v->end - v->start);
	for (uint64_t o = pg; o < end;) {
		off_t d = lseek(fd, (off_t)o, SEEK_DATA);
		if (d < 0 && errno == ENXIO)
			break;
		off_t h = d < 0 ? d : lseek(fd, d, SEEK_HOLE);
		if (h < 0)
			return pr_perror("mem: shared memory at %llx: SEEK_DATA/SEEK_HOLE",
					 (unsigned long long)v->start);
		if ((uint64_t)d >= end)
			break;
		uint64_t ds = (uint64_t)d & ~(uint64_t)(PAGE_SIZE - 1);
		uint64_t de = MIN(ALIGN_UP((uint64_t)h, PAGE_SIZE), end);
		int ret = add_uncovered(l, v, cov, ncov, MAX(ds, pg), de);
		if (ret)
			return ret;
		o = de;
	}
	return 0;
}

/* The same with mincore() run by the task: the object's resident pages. */
static int scan_by_mincore(struct dump_ctx *c, const Vma *v, uint64_t swap_kb,
			   struct run_list *l, const struct span *cov, size_t ncov)
{
	if (swap_kb) {
		pr_err("pid %d: shared memory at %llx-%llx has %llu KiB swapped out: which pages "
		       "its object holds cannot be told without CAP_CHECKPOINT_RESTORE "
		       "(/proc/PID/map_files): not supported",
		       c->pid, (unsigned long long)v->start, (unsigned long long)v->end,
		       (unsigned long long)swap_kb);
		return -EOPNOTSUPP;
	}
	size_t per = c->rs.scratch_len;
	if (!c->rs.scratch || per < 4096)
		return pr_errno(-EINVAL, "mem: pid %d: no scratch memory for mincore", c->pid);
	_cleanup_free_ unsigned char *vec = malloc(per);
	if (!vec)
		return -ENOMEM;
	uint64_t pg = v->has_pgoff ? v->pgoff : 0, run = 0;
	bool in = false;
	for (uint64_t a = v->start; a < v->end;) {
		size_t n = (size_t)MIN((uint64_t)per, (v->end - a) / PAGE_SIZE);
		long r;
		int ret = rsys_call(&c->rs, SYS_mincore, a, n * PAGE_SIZE, c->rs.scratch, 0, 0, 0, &r);
		if (!ret && r < 0)
			ret = pr_errno((int)r, "mem: pid %d: mincore %llx", c->pid,
				       (unsigned long long)a);
		if (!ret)
			ret = rsys_peek(&c->rs, c->rs.scratch, vec, n);
		for (size_t k = 0; k < n && !ret; k++) {
			uint64_t off = pg + (a - v->start) + k * PAGE_SIZE;
			if ((vec[k] & 1) != in) {
				if (in)
					ret = add_uncovered(l, v, cov, ncov, run, off);
				run = off;
				in = !in;
			}
		}
		if (ret)
			return ret;
		a += n * PAGE_SIZE;
	}
	return in ? add_uncovered(l, v, cov, ncov, run, pg + (v->end - v->start)) : 0;
}

/* A hugetlb object: SEEK_DATA sees everything as data, mincore only the view's page
 * tables, and a read through a view would allocate its holes; read through its file,
 * holes read as zeros without allocating (hugetlbfs_read_iter). Its pages holding
 * anything but zeros (a zero page left out reads the same after the restore). */
static int scan_huge_by_read(int fd, const Vma *v, struct run_list *l, const struct span *cov,
			     size_t ncov)
{
	uint64_t hs = (uint64_t)vma_huge_kb(v) << 10, chunk = MIN(hs, (uint64_t)(2u << 20));
	uint64_t pg = v->has_pgoff ? v->pgoff : 0, end = pg + (v->end - v->start);
	_cleanup_free_ char *buf = malloc(chunk);
	if (!buf)
		return -ENOMEM;
	for (uint64_t o = pg; o < end; o += hs) {
		bool data = false;
		for (uint64_t k = 0; k < hs && !data; k += chunk) {
			ssize_t n = pread(fd, buf, chunk, (off_t)(o + k));
			if (n < 0)
				return pr_perror("mem: shared hugetlb memory at %llx: read",
						 (unsigned long long)v->start);
			data = n > 0 && (buf[0] || memcmp(buf, buf + 1, (size_t)n - 1));
			if (n < (ssize_t)chunk)
				break; /* the end of the object */
		}
		int ret = data ? add_uncovered(l, v, cov, ncov, o, MIN(o + hs, end)) : 0;
		if (ret)
			return ret;
	}
	return 0;
}

int mem_shm_scan(struct dump_ctx *c, const Vma *v, size_t vi, struct run_list *l)
{
	struct span *cov;
	size_t ncov;
	int ret = ancestor_views(c, v, &cov, &ncov);
	if (ret)
		return ret;
	uint64_t s = v->has_pgoff ? v->pgoff : 0, ge;
	if (!next_gap(cov, ncov, &s, s + (v->end - v->start), &ge)) {
		free(cov); /* every page of its range is an ancestor's to store */
		return 0;
	}
	char name[64];
	snprintf(name, sizeof(name), "map_files/%llx-%llx", (unsigned long long)v->start,
		 (unsigned long long)v->end);
	int fd = openat(c->procfd, name, O_RDONLY | O_CLOEXEC);
	if (fd >= 0) {
		ret = vma_huge_kb(v) ? scan_huge_by_read(fd, v, l, cov, ncov)
				     : scan_by_seek(fd, v, l, cov, ncov);
		close(fd);
	} else if (vma_huge_kb(v)) {
		ret = 1;
	} else {
		ret = scan_by_mincore(c, v, c->vmas[vi].swap_kb, l, cov, ncov);
	}
	free(cov);
	return ret;
}

static bool overlaps(uint64_t s1, uint64_t e1, uint64_t s2, uint64_t e2)
{
	return s1 < e2 && s2 < e1;
}

/* A hugetlb object: made here, held by an fd at *fd_top or above (inherited by the
 * restore children above all their own fds), unmapped again. */
static int shm_make_huge(struct shm_obj *o, int *fd_top)
{
	uint64_t hs = (uint64_t)o->huge_kb << 10;
	o->size = ALIGN_UP(o->size, hs);
	void *m = mmap(NULL, o->size, PROT_READ | PROT_WRITE,
		       (int)(MAP_SHARED | MAP_ANONYMOUS | huge_map_flags(o->huge_kb)), -1, 0);
	if (m == MAP_FAILED)
		return pr_perror("restore: create shared hugetlb memory of %llu bytes (pages of %u "
				 "KiB; see /proc/sys/vm/nr_hugepages)",
				 (unsigned long long)o->size, o->huge_kb);
	char path[64];
	snprintf(path, sizeof(path), "/proc/self/map_files/%lx-%lx", (unsigned long)m,
		 (unsigned long)m + (unsigned long)o->size);
	int fd = open(path, O_RDWR | O_CLOEXEC);
	int ret = fd < 0 ? pr_perror("restore: open %s", path) : 0;
	munmap(m, o->size);
	if (!ret) {
		o->fd = fcntl(fd, F_DUPFD_CLOEXEC, *fd_top);
		ret = o->fd < 0 ? pr_perror("restore: dup shared hugetlb memory") : 0;
		if (!ret)
			*fd_top = o->fd + 1;
	}
	if (fd >= 0)
		close(fd);
	return ret;
}

static bool range_free(struct rst_ctx *const *procs, size_t n, const struct proc_vma *self,
		       size_t nself, const struct shm_obj *objs, size_t nobjs, uint64_t a,
		       uint64_t len, uint64_t *skip_to)
{
	for (size_t p = 0; p < n; p++)
		for (size_t i = 0; i < procs[p]->mm->n_vmas; i++) {
			const Vma *v = procs[p]->mm->vmas[i];
			if (overlaps(a, a + len, v->start, v->end)) {
				*skip_to = v->end;
				return false;
			}
		}
	for (size_t i = 0; i < nself; i++)
		if (overlaps(a, a + len, self[i].start, self[i].end)) {
			*skip_to = self[i].end;
			return false;
		}
	for (size_t i = 0; i < nobjs; i++)
		if (objs[i].tmp && overlaps(a, a + len, objs[i].tmp, objs[i].tmp + objs[i].size)) {
			*skip_to = objs[i].tmp + objs[i].size;
			return false;
		}
	return true;
}

int mem_shm_prepare(struct rst_ctx *const *procs, size_t n, struct shm_obj **out, size_t *nout,
		    int *fd_top)
{
	struct shm_obj *objs = NULL;
	size_t no = 0;
	int ret = 0;

	*out = NULL;
	*nout = 0;
	for (size_t p = 0; p < n; p++) {
		const Mm *mm = procs[p]->mm;
		for (size_t i = 0; i < mm->n_vmas; i++) {
			const Vma *v = mm->vmas[i];
			if (!vma_is_shm(v))
				continue;
			size_t k = shm_obj_of(objs, no, v);
			if (k == no) {
				struct shm_obj *nb = realloc(objs, (no + 1) * sizeof(*nb));
				if (!nb) {
					free(objs);
					return -ENOMEM;
				}
				objs = nb;
				objs[no++] = (struct shm_obj){ .shmid = v->shmid,
							       .huge_kb = vma_huge_kb(v),
							       .fd = -1 };
			}
			uint64_t pg = v->has_pgoff ? v->pgoff : 0;
			if (pg > ARCH_TASK_SIZE) {
				free(objs);
				pr_err("image: shared memory offset %llx out of range",
				       (unsigned long long)pg);
				return -EINVAL;
			}
			objs[k].size = MAX(objs[k].size, pg + (v->end - v->start));
		}
	}
	if (!no)
		return 0;
	struct proc_vma *self = NULL;
	size_t nself = 0;
	int r = proc_read_self_maps(&self, &nself);
	if (r) {
		free(objs);
		return pr_errno(r, "restore: read /proc/self/maps");
	}
	for (size_t k = 0; k < no && !ret; k++) {
		uint64_t a = 1ULL << 32, skip;
		if (objs[k].huge_kb) {
			ret = shm_make_huge(&objs[k], fd_top);
			continue;
		}
		int guard = 0;
		while (a + objs[k].size <= ARCH_TASK_SIZE && guard++ < 100000 &&
		       !range_free(procs, n, self, nself, objs, no, a, objs[k].size, &skip))
			a = ALIGN_UP(MAX(skip, a + PAGE_SIZE), PAGE_SIZE);
		void *m = a + objs[k].size <= ARCH_TASK_SIZE
				  ? mmap((void *)(uintptr_t)a, objs[k].size, PROT_READ | PROT_WRITE,
					 MAP_SHARED | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0)
				  : MAP_FAILED;
		if (m == MAP_FAILED) {
			ret = pr_perror("restore: create shared memory object of %llu bytes",
					(unsigned long long)objs[k].size);
			break;
		}
		objs[k].tmp = a;
	}
	proc_vmas_free(self, nself);
	if (ret) {
		mem_shm_release(objs, no);
		return ret;
	}
	*out = objs;
	*nout = no;
	return 0;
}

void mem_shm_release(struct shm_obj *objs, size_t n)
{
	for (size_t k = 0; k < n; k++) {
		if (objs[k].tmp) {
			munmap((void *)(uintptr_t)objs[k].tmp, objs[k].size);
			objs[k].tmp = 0;
		}
		if (objs[k].fd >= 0)
			close(objs[k].fd);
	}
	free(objs);
}


/* A deleted mapped file carried by the image (not held by an fd of the task). */
static bool ghost_vma(const Vma *v)
{
	return v->kind == VMA_KIND__VMA_FILE && v->has_deleted && v->deleted && v->ghost &&
	       !v->ghost_in_fd;
}

/* Does a process of @procs before @p map (dev, ino) of @v? */
static bool ghost_seen_before(struct rst_ctx *const *procs, size_t p, const Vma *v)
{
	for (size_t q = 0; q < p; q++)
		for (size_t i = 0; i < procs[q]->mm->n_vmas; i++) {
			const Vma *u = procs[q]->mm->vmas[i];
			if (ghost_vma(u) && u->dev == v->dev && u->ino == v->ino)
				return true;
		}
	return false;
}

/* Does a process of @procs map (dev, ino) of @v as the file of one of its fds? (That file
 * is the files module's: a copy made here would not be it.) */
static bool ghost_held_open(struct rst_ctx *const *procs, size_t n, const Vma *v)
{
	for (size_t q = 0; q < n; q++)
		for (size_t i = 0; i < procs[q]->mm->n_vmas; i++) {
			const Vma *u = procs[q]->mm->vmas[i];
			if (u->kind == VMA_KIND__VMA_FILE && u->deleted && u->ghost_in_fd &&
			    u->dev == v->dev && u->ino == v->ino)
				return true;
		}
	return false;
}

int mem_ghost_prepare(struct rst_ctx *const *procs, size_t n, struct ghost_obj **out,
		      size_t *nout, int *fd_top)
{
	struct ghost_obj *g = NULL;
	size_t ng = 0;
	int ret = 0;
	*out = NULL;
	*nout = 0;
	for (size_t p = 0; p < n && !ret; p++)
		for (size_t i = 0; i < procs[p]->mm->n_vmas && !ret; i++) {
			const Vma *v = procs[p]->mm->vmas[i];
			if (!ghost_vma(v))
				continue;
			if (ghost_held_open(procs, n, v)) {
				pr_err("restore: deleted file %s is mapped by pid %d and held open by "
				       "another process of the tree: not supported yet",
				       v->path, procs[p]->pid);
				ret = -EOPNOTSUPP;
				break;
			}
			if (!ghost_seen_before(procs, p, v))
				continue;
			size_t k = 0;
			while (k < ng && (g[k].dev != v->dev || g[k].ino != v->ino))
				k++;
			if (k < ng)
				continue;
			struct ghost_obj *nb = realloc(g, (ng + 1) * sizeof(*nb));
			if (!nb) {
				ret = -ENOMEM;
				break;
			}
			g = nb;
			int fd = mem_ghost_create(blob_reader_or_none(procs[p]->blobs), v, ng);
			int high = fd < 0 ? fd : fcntl(fd, F_DUPFD_CLOEXEC, *fd_top);
			if (fd >= 0)
				close(fd);
			if (high < 0) {
				ret = fd < 0 ? fd : pr_perror("restore: hold deleted file %s", v->path);
				break;
			}
			*fd_top = high + 1;
			g[ng++] = (struct ghost_obj){ v->dev, v->ino, high };
		}
	if (ret) {
		mem_ghost_release(g, ng);
		return ret;
	}
	*out = g;
	*nout = ng;
	return 0;
}

void mem_ghost_release(struct ghost_obj *g, size_t n)
{
	for (size_t k = 0; k < n; k++) {
		close(g[k].fd);
		free(g[k].droot);
	}
	free(g);
}
