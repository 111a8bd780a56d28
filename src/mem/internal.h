/* Shared by the files of the memory module (mem.c: areas, the page scan, the layout;
 * pages.c: page contents). Not included outside src/mem/. */
#ifndef STASIS_MEM_INTERNAL_H
#define STASIS_MEM_INTERNAL_H

#include <sys/mman.h>

#include "mem/mem.h"

/* process_vm_readv/writev: bytes and ranges per call. */
#define COPY_CHUNK (2u << 20)
#define MAX_IOV 1024
/* A page run's checksum is the XXH3-64 of the XXH3-64s of its successive 2 MiB pieces
 * (the last one shorter): pieces can be verified in parallel at restore. */
#define HASH_PIECE (2u << 20)

/* Vma.madv: the madvise flags (and mlock) an area is given back at restore. */
#define MADV_BIT_DONTFORK (1u << 0)
#define MADV_BIT_DONTDUMP (1u << 1)
#define MADV_BIT_HUGEPAGE (1u << 2)
#define MADV_BIT_NOHUGEPAGE (1u << 3)
#define MADV_BIT_WIPEONFORK (1u << 4)
#define MADV_BIT_MERGEABLE (1u << 5)
#define MADV_BIT_LOCKED (1u << 6)      /* mlock: not an madvise, set with mlock2 */
#define MADV_BIT_LOCKONFAULT (1u << 7) /* ... MLOCK_ONFAULT */
#define MADV_BIT_SEQUENTIAL (1u << 8)
#define MADV_BIT_RANDOM (1u << 9)
/* not an madvise: a private area not writable now that was once (VmFlags ac: its memory
 * is committed, so mprotect to writable never fails for want of it): mapped writable at
 * restore, then given its protection */
#define MADV_BIT_ACCOUNT (1u << 10)

struct run_list {
	PageRun **runs;
	size_t nr, cap;
};

/* Between the two dump phases: the runs whose data this process's page stream will
 * hold, and the runs stored once in the parent's (with the parent's run they lie in). */
struct mem_xref {
	PageRun *r;
	const PageRun *src;
};
struct track_proc;
struct mem_dump_state {
	struct track_proc *trk; /* incremental dumps (src/mem/track.c), or NULL */
	struct run_list own;
	struct mem_xref *xref;
	size_t n_xref;
};

/* The longest chain of parent images a run may reach into. */
#define MEM_MAX_CHAIN 64

int mem_run_push(struct run_list *l, PageRun *r) __must_check;
/* Pages [@vaddr, + @nr_pages) appended to @l (joined to the last run if it follows it
 * inside the area starting at @vma_start: runs never cross an area's boundary). */
int mem_run_add(struct run_list *l, uint64_t vma_start, uint64_t vaddr, uint64_t nr_pages)
	__must_check;
/* A file holding the contents of deleted file or memfd @v mapped by a task (made in the
 * same directory, unlinked; /tmp if it cannot be made there; @tag tells files of one
 * process apart): its fd, or -errno (logged). */
int mem_ghost_create(const struct blob_reader *blobs, const Vma *v, size_t tag) __must_check;
/* src/mem/droot.c: is @at a place in @path where a detached tree's root can have been;
 * @path (the dumper's view) opened in the copy of that root (-ENOENT: there is none,
 * open it by its full path; else an fd or -errno, logged). */
bool mem_droot_valid(const char *path, uint32_t at);
/* Dump: the view and name of each mapped file of @mm (Vma.in_task_root, detached_at);
 * the same for one path (an O_PATH @fd of it) no view reaches, found by its file handle
 * (0, or -1: not found), and for one found in stasis's view (path_view 0). */
int mem_file_views(struct dump_ctx *c, Mm *mm) __must_check;
int mem_view_by_handle(const struct dump_ctx *c, int fd, char **path,
		       protobuf_c_boolean *has_at, uint32_t *at);
void mem_view_name(const struct dump_ctx *c, char **path, protobuf_c_boolean *has_at,
		   uint32_t *at);
int mem_droot_open(const struct rst_ctx *c, const char *path, uint32_t at, int flags);
struct page_region;
struct pm_scan_arg;
/* src/mem/scan.c: /proc/PID/maps of the task of /proc directory @procfd, parsed (no
 * VmFlags: reading it walks no page table); -errno, not logged. */
int mem_read_maps(int procfd, struct proc_vma **v, size_t *n) __must_check;
/* src/mem/scan.c: PAGEMAP_SCAN of [a->start, a->end) in batches of a->vec_len regions
 * (a->vec), each region handed to @each (its error stops the scan); @what names the
 * scan in the error line. */
int mem_pm_scan(int pmfd, struct pm_scan_arg *a, const char *what,
		int (*each)(void *arg, const struct page_region *r), void *arg) __must_check;
/* src/mem/scan.c: the present pages of @v (for a private file mapping: its written
 * ones) appended to @l, asked in batches of @vec_len regions; its guard regions into
 * v->guards where the kernel reports them (mem_guard_scan). */
int mem_scan_vma(int pmfd, Vma *v, struct run_list *l, struct page_region *vec,
		 size_t vec_len) __must_check;
/* The guard regions of @v alone (scan.c). src/mem/guard.c: whether PAGEMAP_SCAN (of
 * pagemap @pmfd) reports guard regions; an image's Vma.guards checked (area @i, logged),
 * whether [@s, @e) overlaps one; at restore, every area's installed again. */
int mem_scan_guards(int pmfd, Vma *v, struct page_region *vec, size_t vec_len) __must_check;
bool mem_guard_scan(int pmfd);
int mem_guards_validate(const Vma *v, size_t i) __must_check;
bool mem_guard_overlaps(const Vma *v, uint64_t s, uint64_t e);
int mem_guards_install(struct rst_ctx *c) __must_check;
/* The runs (and guard regions) mem_prescan found for @v appended to @l: 0, or 1 when it
 * has none for it (it was not scanned ahead as @v is to be scanned, or @p is NULL), or
 * -errno. */
int mem_prescan_take(struct mem_prescan *p, Vma *v, struct run_list *l) __must_check;
/* src/mem/shm.c: the runs of MAP_SHARED anonymous area @v (c->vmas[@vi]): the pages its
 * object holds in its range, but those a view in an ancestor covers. 1: a hugetlb object
 * whose file cannot be opened, for the page-table scan. */
int mem_shm_scan(struct dump_ctx *c, const Vma *v, size_t vi, struct run_list *l) __must_check;
/* src/mem/cow.c: @in's runs end up in @all (address order); @own lists those whose data
 * this process's own page stream holds, the others are in its parent's (ms->xref). */
int mem_split_cow_shared(struct dump_ctx *c, int pmfd, struct run_list *in,
			 struct run_list *own, struct run_list *all, struct mem_dump_state *ms)
	__must_check;

/* The stopped task @pid (@rs, @pidfd) creates a userfaultfd (O_CLOEXEC | O_NONBLOCK |
 * @flags: it belongs to the task's mm); stasis takes a duplicate into *@out and closes
 * the task's fd. The task's or stasis's failure to have it is logged, or with @quiet
 * returned as 1 (a failure to make the remote calls is an error either way). */
int mem_task_uffd(struct rsys *rs, pid_t pid, int pidfd, int flags, bool quiet,
		  int *out) __must_check;
/* A private anonymous area (not hugetlb): one a userfaultfd can fill (UFFDIO_COPY). */
bool mem_vma_uffd(const Vma *v);

/* Incremental dumps (src/mem/track.c), for a dump with c->track. */
int mem_track_proc(struct dump_ctx *c) __must_check; /* before the areas are read */
bool mem_track_allows_uffd(const struct dump_ctx *c); /* areas registered by our tracking */
int mem_track_scan(struct dump_ctx *c, int pmfd, struct run_list *in, struct run_list *own,
		   struct run_list *all) __must_check;
void mem_track_proc_free(struct track_proc *p);

/* The checksum of bytes [@off, @off + @len) of run @r of @src (see HASH_PIECE). */
int mem_source_hash(struct page_source *src, const PageRun *r, uint64_t off, uint64_t len,
		    uint64_t *out) __must_check;
/* Restore: the runs of an incremental image lying in parent images (src/mem/chain.c):
 * the chain checked (ids, the same process), each run inside a run stored there, whose
 * checksum is verified. */
int mem_chain_validate(struct rst_ctx *c) __must_check;

/* Restore --lazy-pages (src/mem/lazy.c): lazy[i] for the runs of @mm the page server
 * serves, vreg[k] (may be NULL) for the areas it registers. */
void mem_lazy_plan(const Mm *mm, bool *lazy, bool *vreg);

/* Restore: copy every page run from c->pages into the task, verifying checksums. */
int mem_fill_pages(struct rst_ctx *c) __must_check;
/* The same but for the runs i with @skip[i] (lazy restore: served later). */
int mem_fill_runs(struct rst_ctx *c, const bool *skip) __must_check;

/* src/mem/sysv.c: attached SysV shared memory (VMA_SYSV). Dump: the segment's size,
 * key and state read by the task, refused when it cannot be restored; validate: the
 * area's fields (@i for messages); restore: attached in place, remotely. */
int mem_sysv_dump(struct dump_ctx *c, Vma *v) __must_check;
int mem_sysv_validate(const Vma *v, size_t i) __must_check;
int mem_sysv_map(struct rst_ctx *c, const Vma *v) __must_check;

/* src/mem/aio.c: the rings of AIO contexts (VMA_AIO), the same three steps. */
int mem_aio_dump(struct dump_ctx *c, Vma *v) __must_check;
int mem_aio_validate(const Vma *v, size_t i) __must_check;
int mem_aio_map(struct rst_ctx *c, const Vma *v) __must_check;

/* src/mem/secret.c: memfd_secret memory (VMA_SECRET): read out by the task itself at
 * dump; validated with its blob; its contents put in a memfd at fd @target by the
 * restore child; made again, mapped and filled from that fd (@dfd) by the task. */
int mem_secret_dump(struct dump_ctx *c, Vma *v) __must_check;
int mem_secret_validate(const Vma *v, const struct blob_reader *blobs, size_t i) __must_check;
int mem_secret_child(struct rst_ctx *c, const Vma *v, int target) __must_check;
int mem_secret_map(struct rst_ctx *c, const Vma *v, int dfd) __must_check;

/* MAP_SHARED anonymous memory: VMAs with the same shmid are views of one shmem object
 * (inherited across fork, or aliased with mremap), maybe in several processes. The
 * restoring stasis creates each object once before it creates any process
 * (mem_shm_prepare); every restore child inherits the mapping, makes each view from it
 * with mremap(old_size = 0), which keeps the object and the offset, then drops it. */
static inline bool vma_is_shm(const Vma *v)
{
	return v->kind == VMA_KIND__VMA_ANON && (v->flags & MAP_SHARED) && v->has_shmid;
}

static inline uint32_t vma_huge_kb(const Vma *v)
{
	return v->has_huge_kb ? v->huge_kb : 0;
}

/* The object @v is a view of, or @n. */
static inline size_t shm_obj_of(const struct shm_obj *objs, size_t n, const Vma *v)
{
	size_t k;
	for (k = 0; k < n && (objs[k].shmid != v->shmid || objs[k].huge_kb != vma_huge_kb(v));
	     k++)
		;
	return k;
}

/* MAP_HUGETLB with the page size of @kb KiB (a power of two). */
static inline uint64_t huge_map_flags(uint32_t kb)
{
	return MAP_HUGETLB | ((uint64_t)(__builtin_ctz(kb) + 10) << MAP_HUGE_SHIFT);
}

#endif
