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
/* The page contents, once every process of the tree went through mem_dump. */
int mem_dump_pages(struct dump_ctx *c) __must_check;
void mem_dump_state_free(struct mem_dump_state *ms);
int mem_restore_child(struct rst_ctx *c) __must_check; /* opens files to be mapped */
int mem_restore_remote(struct rst_ctx *c) __must_check; /* layout, contents, mm */
/* In the restoring stasis, before any process exists: create every MAP_SHARED anonymous
 * object of the tree once, in a place free everywhere. */
int mem_shm_prepare(struct rst_ctx *const *procs, size_t n, struct shm_obj **out,
		    size_t *nout) __must_check;
void mem_shm_release(struct shm_obj *objs, size_t n);

/* Incremental dumps (src/mem/track.c): the state of a pre-dump or of a dump with
 * --prev-images-dir, NULL for a plain dump (every call takes NULL). */
struct mem_track;
/* This kernel can track writes (PAGEMAP_SCAN and userfaultfd WP_ASYNC): what the CRIU
 * interfaces answer as "memory tracking" (FEATURE_CHECK mem_track, check mem_dirty_track). */
bool mem_track_is_available(void);
int mem_track_open(const struct dump_opts *o, struct mem_track **out) __must_check;
int mem_track_link(struct mem_track *t, struct img_dir *d) __must_check; /* `parent` */
/* A pre-dump: the new keeper takes the userfaultfds (before the images are written). */
int mem_track_keep(struct mem_track *t, struct dump_ctx **procs, size_t nr) __must_check;
void mem_track_inventory(struct mem_track *t, Inventory *inv);
void mem_track_close(struct mem_track *t, bool ok);

#endif
