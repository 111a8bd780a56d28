/* MAP_SHARED anonymous objects at restore (see vma_is_shm in internal.h): made once by
 * stasis before any process exists, inherited by every restore child, which makes its
 * views of them (src/mem/mem.c map_vmas). */
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "core/log.h"
#include "core/util.h"
#include "mem/internal.h"
#include "proc/parse.h"

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

