/* Shared by the files of the memory module (mem.c: areas, the page scan, the layout;
 * pages.c: page contents). Not included outside src/mem/. */
#ifndef STASIS_MEM_INTERNAL_H
#define STASIS_MEM_INTERNAL_H

#include "mem/mem.h"

/* process_vm_readv/writev: bytes and ranges per call. */
#define COPY_CHUNK (2u << 20)
#define MAX_IOV 1024
/* A page run's checksum is the XXH3-64 of the XXH3-64s of its successive 2 MiB pieces
 * (the last one shorter): pieces can be verified in parallel at restore. */
#define HASH_PIECE (2u << 20)

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
struct mem_dump_state {
	struct run_list own;
	struct mem_xref *xref;
	size_t n_xref;
};

/* Restore: copy every page run from c->pages into the task, verifying checksums. */
int mem_fill_pages(struct rst_ctx *c) __must_check;

#endif
