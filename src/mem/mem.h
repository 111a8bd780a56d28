/* Memory (src/mem/): VMAs, mm fields, page contents, MAP_SHARED objects. Its row is
 * mem_resource (src/cr/resource.h); these are for the row, the restore driver's planning
 * and the unit tests. */
#ifndef STASIS_MEM_H
#define STASIS_MEM_H

#include "cr/ctx.h"
#include "mem/pagexfer.h"

/* Validate the Mm image against itself and the page stream of @src (untrusted input;
 * runs in other processes' streams are checked by the source when they are used). */
int mem_validate(const Mm *mm, const struct page_source *src) __must_check;

int mem_dump(struct dump_ctx *c) __must_check; /* vmas, mm, page scan */
/* src/mem/scan.c: while smaps is read, the present pages of the plain anonymous areas
 * /proc/PID/maps lists, of the frozen task of /proc directory @procfd; mem_dump takes
 * them for the areas it scans the same way. -errno (not logged). */
int mem_prescan(int procfd, struct mem_prescan **out) __must_check;
void mem_prescan_free(struct mem_prescan *p);
/* The page contents, once every process of the tree went through mem_dump. */
int mem_dump_pages(struct dump_ctx *c) __must_check;
void mem_dump_state_free(struct mem_dump_state *ms);
int mem_restore_child(struct rst_ctx *c) __must_check; /* opens files to be mapped */
int mem_restore_remote(struct rst_ctx *c) __must_check; /* layout, contents, mm */
/* In the restoring stasis, before any process exists: create every MAP_SHARED anonymous
 * object of the tree once, in a place free everywhere. */
int mem_shm_prepare(struct rst_ctx *const *procs, size_t n, struct shm_obj **out,
		    size_t *nout, int *fd_top) __must_check;
void mem_shm_release(struct shm_obj *objs, size_t n);
/* The same for deleted files mapped (without an fd) by areas of several processes. */
int mem_ghost_prepare(struct rst_ctx *const *procs, size_t n, struct ghost_obj **out,
		      size_t *nout, int *fd_top) __must_check;
void mem_ghost_release(struct ghost_obj *g, size_t n);
/* src/mem/droot.c: a detached copy of each directory that was the root of a detached
 * mount tree a task reached a mapped file or its executable through, appended to @g. */
int mem_droot_prepare(struct rst_ctx *const *procs, size_t n, struct ghost_obj **g,
		      size_t *ng, int *fd_top) __must_check;

/* Lazy restore (src/mem/lazy.c, restore --lazy-pages). Start: before any task is
 * rebuilt (the page server is forked; refused when the restorer may not create
 * userfaultfds for faults in kernel mode); fill: in each task's memory stage (instead of
 * filling its lazy runs, they are registered and handed to the server); commit: the tree
 * runs (the server serves on and exits when done); abort: a failed restore. */
struct mem_lazy;
/* Free what the chain's validation kept for the lazy page server (rst_ctx.pruns). */
void mem_chain_free(struct rst_ctx *c);
int mem_lazy_start(struct rst_ctx *const *procs, size_t n, struct mem_lazy **out)
	__must_check;
int mem_lazy_fill(struct rst_ctx *c, struct mem_lazy *l) __must_check;
int mem_lazy_commit(struct mem_lazy *l) __must_check;
void mem_lazy_abort(struct mem_lazy *l);

/* Incremental dumps (src/mem/track.c): the state of a pre-dump or of a dump with
 * --prev-images-dir, NULL for a plain dump (every call takes NULL). */
struct mem_track;
/* This kernel can track writes (PAGEMAP_SCAN and userfaultfd WP_ASYNC): what the CRIU
 * interfaces answer as "memory tracking" (FEATURE_CHECK mem_track, check mem_dirty_track). */
bool mem_track_is_available(void);
int mem_track_open(const struct dump_opts *o, struct mem_track **out) __must_check;
/* A pre-dump: when the process's areas are as the parent pass left them, c->vmas from
 * /proc/PID/maps with their flags from the parent image (true; false: read smaps). */
bool mem_track_layout(struct dump_ctx *c) __must_check;
int mem_track_link(struct mem_track *t, struct img_dir *d) __must_check; /* `parent` */
/* A pre-dump: the new keeper takes the userfaultfds (before the images are written). */
int mem_track_keep(struct mem_track *t, struct dump_ctx **procs, size_t nr) __must_check;
void mem_track_inventory(struct mem_track *t, Inventory *inv);
void mem_track_close(struct mem_track *t, bool ok);

/* src/mem/cow.c: the run of @mm (runs sorted; NULL: none) holding @va, or NULL; *@idx
 * (when not NULL) its index, *@next (when not NULL) the start of the first run above @va
 * (UINT64_MAX). */
const PageRun *mem_run_at(const Mm *mm, uint64_t va, size_t *idx, uint64_t *next);

#endif
