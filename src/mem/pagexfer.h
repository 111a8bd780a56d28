/* The page transport: where page contents go at dump and come from at restore.
 *
 * The memory module (src/mem/mem.c: which pages, VMAs, the page-run index;
 * src/mem/pages.c: copying the runs out of and into the task, checksums) moves the bytes
 * through two small interfaces and never knows which implementation is behind them:
 *
 *   struct page_sink     dump: receives the bytes of a process's own runs as one
 *                        stream, in index order, one buffer at a time; each buffer comes
 *                        with the task addresses its bytes were read from (iovecs).
 *   struct page_source   restore: serves any range of any run of the index, either as a
 *                        pointer into mapped bytes (map: zero copy, process_vm_writev
 *                        straight from the page cache) or by filling a caller's buffer
 *                        (read).
 *
 * The page stream. The bytes of a process's own runs, back to back in index order, are
 * its page stream; a run's PageRun.offset is its position in it, counted from
 * PAGE_STREAM_START. The local pages file holds the stream right after its one-page
 * header, so there an offset is also the file offset (image format 1). A run with
 * src_pid lies in another process's stream of the same image (copy-on-write sharing,
 * stored once): the source resolves it. The index (addresses, lengths, offsets,
 * checksums) is the memory module's and stays the same whatever the transport; how the
 * stream is stored, framed, compressed, sent or spread over images is the transport's.
 *
 * Implementations: the local pages file (src/mem/pagefile.c). page_sink_open() and
 * page_source_open() (src/mem/pagexfer.c) choose one from the context; they are the only
 * place that knows them all. What comes next, and what each needs of the interface:
 *  - socket sink (page server, live migration: pages sent, metadata local): put() sends
 *    the buffer with its iovecs (target addresses) and stream offset; get_buf() hands
 *    out a slot of its send pipeline; commit() waits for the server's acknowledgement
 *    that the stream is complete (and durable there when the dump syncs). A source over
 *    the same connection (read() = a request for a range) can serve page_sink_reopen()
 *    (shared runs of a child are checksummed from the parent's stream; without it the
 *    child stores them again) and lazy restore.
 *  - userfaultfd source (lazy restore): the restorer registers the areas with
 *    userfaultfd instead of filling them now; on a fault it looks the address up in the
 *    index and asks the source for that range of the run: read() into the UFFDIO_COPY
 *    buffer, or map(). Hence ranges within a run, and read() safe from several threads.
 *  - compressing sink / decompressing source (zstd, `dump --compress`, built:
 *    src/mem/pagez.c): the sink compresses each buffer in its writer thread into a frame
 *    with its own checksum, and writes a frame index at commit; the pages-file source
 *    reads such a file through pagez_read() (the frames covering a range, verified and
 *    decompressed) and its map() fails with EOPNOTSUPP for it, so the memory module
 *    fills through a buffer. Offsets stay positions in the uncompressed stream: the
 *    index does not change.
 *  - parent-image source (incremental dumps): a run may live in an earlier image; the
 *    source opens that image's stream and resolves the run there, as it resolves src_pid
 *    runs today (a new PageRun field would say which image: an image version bump).
 *
 * Errors follow the project's rule: 0 or -errno, logged once by the implementation that
 * saw the failure. Index fields are untrusted at restore: a source checks every range it
 * is asked for against what it holds. */
#ifndef STASIS_MEM_PAGEXFER_H
#define STASIS_MEM_PAGEXFER_H

#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

#include "cr/ctx.h"
#include "image/img.h"

/* Where PageRun offsets start: the size of the local pages file's header (format 1). */
#define PAGE_STREAM_START IMG_PAGES_HDR_SIZE

struct page_sink;
struct page_sink_ops {
	/* A buffer for the next bytes of the stream, of *cap bytes: the sink's own (a free
	 * slot of its writer pipeline: it may wait for one). 0, or the sink's first error
	 * (-errno; the sink logs it when it is committed or aborted). */
	int (*get_buf)(struct page_sink *s, void **buf, size_t *cap);
	/* The buffer last returned by get_buf() holds the next @len bytes of the stream, read
	 * from the task at @iov[0..@niov) in that order (the lengths add up to @len); it
	 * belongs to the sink again. 0 or -errno. */
	int (*put)(struct page_sink *s, void *buf, size_t len, const struct iovec *iov,
		   size_t niov);
	/* Every run was put: finish the stream (flush, frame it, make it durable when the
	 * image is synced: fsync here, the server's acknowledgement for a remote sink). 0 or
	 * the first error, logged. Frees @s. */
	int (*commit)(struct page_sink *s);
	/* The dump failed: stop and free @s (what was written goes with the temporary image
	 * directory). A write error not reported yet is logged. */
	void (*abort)(struct page_sink *s);
	/* The process went away while its pages were read (a pre-dump copies while the tree
	 * runs): stop, remove what was written of its stream, free @s. 0 or -errno. */
	int (*discard)(struct page_sink *s);
};
struct page_sink {
	const struct page_sink_ops *ops;
	void *priv;
};

struct page_source;
struct page_source_ops {
	/* Zero copy: bytes [@off, @off + @len) of run @r, readable until release() or
	 * close(). NULL with errno set: EOPNOTSUPP if this source has no mapped bytes to
	 * offer (use read(); nothing logged), anything else is an error, logged (a run
	 * outside its stream: the index is untrusted). Not called by two threads at once. */
	const void *(*map)(struct page_source *s, const PageRun *r, uint64_t off, uint64_t len);
	/* Copy bytes [@off, @off + @len) of run @r into @buf. May be called from several
	 * threads at once. 0 or -errno, logged. */
	int (*read)(struct page_source *s, const PageRun *r, uint64_t off, void *buf,
		    size_t len);
	/* Optional (NULL: nothing to gain): a read() of exactly these arguments will come
	 * next from this thread; start it now (a page server: the request goes out, the
	 * transfer overlaps the caller's work). 0 or -errno, logged. */
	int (*prefetch)(struct page_source *s, const PageRun *r, uint64_t off, void *buf,
			size_t len);
	/* Optional (NULL: EOPNOTSUPP): bytes [@soff, @soff + @slen) of the piece
	 * [@poff, @poff + @plen) of run @r into @buf (room for 16 bytes more), and the
	 * XXH3 of the whole piece in *@xxh for the caller to check, without the piece being
	 * transferred (a page server hashes it there). 0, -EOPNOTSUPP (nothing logged: use
	 * read()), or -errno, logged. */
	int (*read_checked)(struct page_source *s, const PageRun *r, uint64_t poff,
			    uint32_t plen, uint32_t soff, void *buf, uint32_t slen, uint64_t *xxh);
	/* Optional: open now what this process's first read would open (a page server:
	 * the connection and the process's own pages file), so that the first read does
	 * not wait for it. 0 or -errno, logged. */
	int (*warm)(struct page_source *s);
	/* Drop what map() handed out (the caller is done with the pointers); the source
	 * stays usable. */
	void (*release)(struct page_source *s);
	void (*close)(struct page_source *s);
};
struct page_source {
	const struct page_source_ops *ops;
	void *priv;
	uint64_t len; /* bytes in this process's own stream (the index is checked against it) */
	bool no_populate; /* map() without reading ahead (lazy restore maps, then forks) */
};

/* Dump: the sink of process @c's page stream. */
int page_sink_open(const struct dump_ctx *c, struct page_sink **out) __must_check;
/* Dump: a source over what process @c's sink wrote, after its commit (the runs a child
 * shares with its parent are checksummed from the parent's stream). -EOPNOTSUPP, nothing
 * logged, from a transport that cannot read back: the child then stores those runs in
 * its own stream. */
int page_sink_reopen(const struct dump_ctx *c, struct page_source **out) __must_check;
/* Restore: the source of process @c's pages. */
int page_source_open(const struct rst_ctx *c, struct page_source **out) __must_check;
/* NULL-safe. */
void page_source_close(struct page_source *s);

static inline int __must_check page_sink_get(struct page_sink *s, void **buf, size_t *cap)
{
	return s->ops->get_buf(s, buf, cap);
}
static inline int __must_check page_sink_put(struct page_sink *s, void *buf, size_t len,
					     const struct iovec *iov, size_t niov)
{
	return s->ops->put(s, buf, len, iov, niov);
}
static inline int __must_check page_sink_commit(struct page_sink *s)
{
	return s->ops->commit(s);
}
static inline void page_sink_abort(struct page_sink *s)
{
	s->ops->abort(s);
}
static inline int __must_check page_sink_discard(struct page_sink *s)
{
	return s->ops->discard(s);
}
static inline const void *page_source_map(struct page_source *s, const PageRun *r,
					  uint64_t off, uint64_t len)
{
	return s->ops->map(s, r, off, len);
}
static inline int __must_check page_source_read(struct page_source *s, const PageRun *r,
						uint64_t off, void *buf, size_t len)
{
	return s->ops->read(s, r, off, buf, len);
}
static inline int __must_check page_source_prefetch(struct page_source *s, const PageRun *r,
						    uint64_t off, void *buf, size_t len)
{
	return s->ops->prefetch ? s->ops->prefetch(s, r, off, buf, len) : 0;
}
static inline int __must_check page_source_read_checked(struct page_source *s,
							const PageRun *r, uint64_t poff,
							uint32_t plen, uint32_t soff, void *buf,
							uint32_t slen, uint64_t *xxh)
{
	return s->ops->read_checked ? s->ops->read_checked(s, r, poff, plen, soff, buf, slen, xxh)
				    : -EOPNOTSUPP;
}
static inline int __must_check page_source_warm(struct page_source *s)
{
	return s->ops->warm ? s->ops->warm(s) : 0;
}
static inline void page_source_release(struct page_source *s)
{
	s->ops->release(s);
}

/* The local pages file (src/mem/pagefile.c): pages-PID.img in the image directory, the
 * stream after a one-page header, written by a writer thread (src/mem/pwriter.c); read
 * through an mmap (runs of other processes' files mapped as they are asked for), or,
 * for a compressed file (src/mem/pagez.h), through its frames. */
int pagefile_sink_open(struct img_dir *d, int pid, struct page_sink **out) __must_check;
int pagefile_source_open(int dfd, int pid, struct page_source **out) __must_check;
/* The same with the pages files of image @image on the page server at @addr:@port
 * (`page-server --serve`), the metadata of the chain in @dfd. */
int pageremote_source_open(int dfd, int pid, const char *addr, const char *port,
			   const char *image, struct page_source **out) __must_check;
/* The parent image directory @depth `parent` links up from a pages-file source's image
 * (opened once, then cached: the chain checked is the chain read), or -errno (logged). */
int pagefile_parent_dir(struct page_source *s, uint32_t depth) __must_check;

#endif
