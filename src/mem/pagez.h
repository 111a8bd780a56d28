/* Compressed pages files (src/mem/pagez.c): the page stream stored as zstd frames, one
 * per buffer the memory module put, then a frame index at the end of the file; the
 * header (IMG_F_PAGES_ZSTD, struct img_pages_z) says where the index is. PageRun offsets
 * stay positions in the uncompressed stream. */
#ifndef STASIS_MEM_PAGEZ_H
#define STASIS_MEM_PAGEZ_H

#include <stddef.h>
#include <stdint.h>

#include "image/img.h"
#include "mem/pagexfer.h"

/* The writer's buffers, hence the largest frame: 2 MiB, measured best with
 * process_vm_readv on this machine (src/mem/pages.c copy_pages). */
#define PAGEFILE_BUF (2u << 20)
#define PAGEZ_LEVEL_MAX 19

/* One entry of the frame index (little-endian on disk). */
struct pagez_frame {
	uint64_t ustart; /* position in the uncompressed stream (from PAGE_STREAM_START) */
	uint64_t coff;   /* file offset of the compressed bytes */
	uint32_t clen, ulen;
	uint64_t xxh64; /* XXH3-64 of the compressed bytes */
};
_Static_assert(sizeof(struct pagez_frame) == 32, "pagez_frame layout");

struct pagez;

/* Dump: a sink writing pages-@pid.img compressed at zstd @level (1..PAGEZ_LEVEL_MAX). */
int pagez_sink_open(struct img_dir *d, int pid, int level, struct page_sink **out)
	__must_check;
/* Restore: a reader over the compressed pages file @pg (opened by img_pages_open(): the
 * file is mapped, the caller keeps its fd). The index is read and checked now. */
int pagez_open(const struct img_pages *pg, int pid, struct pagez **out) __must_check;
/* Bytes [@off, @off + @len) of the uncompressed stream (@off counted like PageRun.offset)
 * into @buf. Thread-safe. 0 or -errno, logged. */
int pagez_read(struct pagez *z, uint64_t off, void *buf, size_t len) __must_check;
uint64_t pagez_stream_len(const struct pagez *z);
void pagez_close(struct pagez *z); /* NULL-safe */
/* Check a frame index read from a file of @file_len bytes against its header @zh: every
 * frame in bounds, back to back in both streams, ending at the index. 0 or -EBADMSG,
 * logged naming @what. */
int pagez_check_index(const struct pagez_frame *f, uint64_t n, const struct img_pages_z *zh,
		      uint64_t file_len, const char *what) __must_check;

#endif
