/* The blob store: bulk contents (file data, queues, segments) kept out of the metadata
 * images, in one file per image directory, blobs.img, and named from a protobuf record
 * by a small BlobRef (src/image/stasis.proto). Metadata images are bounded
 * (IMG_MAX_META) and read whole into memory; a blob is neither: it is streamed in
 * bounded chunks at dump and at restore, so its size has no limit but the disk's.
 *
 * Format of blobs.img: a header page (IMG_BLOB_HDR_SIZE bytes: struct img_hdr of kind
 * IMG_BLOBS, payload_xxh64 0, then struct blob_file_hdr, zero padded), then the payload:
 * every blob's stored bytes back to back, in the order they were written. A blob is a
 * byte range of logical length `size` whose data extents (sorted, disjoint) are stored;
 * the rest is holes (zeros). Its stored bytes (the extents' data, concatenated) are cut
 * into BLOB_CHUNK pieces (the last one shorter), each with its XXH3-64 in the BlobRef, so
 * that a reader checks every piece before it hands it on and never holds more than one.
 *
 * Dump (writer). The writer belongs to the image directory (struct img_dir): blobs.img is
 * created at the first blob in the temporary directory and finished (header, fsync) by
 * img_dir_commit(); an aborted dump removes it with the rest. One blob is written at a
 * time, from one thread (the writer is not thread-safe; a multi-threaded producer
 * serializes its calls). Each call returns 0 or -errno with the reason logged once.
 *   - blob_put_buf(): bytes already in memory (a queue read whole, a small segment);
 *   - blob_put_file(): a regular file (tmpfs file, unlinked file, memfd: any fd that
 *     pread()s), read in BLOB_CHUNK pieces, never whole; its holes found with
 *     SEEK_DATA/SEEK_HOLE are not stored and come back as holes. The fd's offset is not
 *     used or moved;
 *   - blob_begin(), blob_write(), blob_hole(), blob_end() (or blob_abort()): a blob
 *     produced in pieces (messages of a queue read one by one, pages read from a task):
 *     bytes appended at the current position, holes skipped over. blob_put_buf and
 *     blob_put_file are built on these.
 * The BlobRef returned is malloc'd (every array too), so it can be hung into a record
 * freed with protobuf_c_message_free_unpacked(msg, NULL), or freed alone with
 * blob_ref__free_unpacked(ref, NULL).
 *
 * Restore (reader). blob_open() once, before any process exists (the fd is inherited by
 * forks: a restore child reads through it even inside a user namespace that could no
 * longer open the image directory; move it out of the task's fd range like the other
 * service fds). A directory without blobs.img opens as a reader without blobs, and any
 * BlobRef then fails with a clear error. The reader is read-only, uses pread only and
 * keeps no state between calls: it can be used from several processes or threads.
 *   - blob_check(): bounds of a BlobRef against the file, without reading data (call it
 *     from the validate stage, so that a bad image is refused before anything exists);
 *   - blob_read(): the blob's data, piece by piece, each piece verified before it is
 *     given to the sink with its logical position (holes are skipped: the sink sees
 *     only data, in increasing positions);
 *   - blob_read_fd(): into a regular file, holes recreated (ftruncate to the size, data
 *     written with pwrite at its position; the fd's offset is not used);
 *   - blob_read_buf(): into a buffer of exactly the blob's size (holes zeroed).
 * Every error is one logged line naming blobs.img, the caller's @what (the blob's owner:
 * "tmpfs file a/b at /run") and what is wrong: offsets or lengths past the file, extents
 * unsorted or overlapping, absurd counts, a chunk whose checksum differs, a short file.
 * On an error part of the data may already be in the target: the caller discards it.
 *
 * Moving a module's contents here (what src/ns/mnt.c does for tmpfs files,
 * src/files/unlinked.c and memfd.c for unlinked files and memfds, src/mem/mem.c for
 * mapped ones):
 *   - schema: an `optional BlobRef NAME = N;` in the module's record instead of `bytes`
 *     (a new field number; the old one `reserved`), plus whatever structure the bytes
 *     had (message lengths of a queue, a segment's size) in the record itself;
 *   - dump: the writer is the image directory, dump_ctx.img (dump_tree.img for a
 *     tree-wide hook). An unlinked file or a memfd: blob_put_file() on the fd (a
 *     pidfd_getfd() duplicate shares the task's offset: it is put back; the size from
 *     fstat; a description that cannot be read, O_WRONLY or O_PATH, opened again read-only
 *     through /proc/PID/fd/N); a mapped memfd: the same on /proc/PID/map_files/...; a
 *     SysV queue or a socket queue: blob_begin(), blob_write() per message, blob_end(),
 *     the lengths in the record; a shm segment: blob_put_buf() or
 *     blob_begin()/blob_write() per piece. No size caps are needed: only the record's
 *     own bound (IMG_MAX_META) remains;
 *   - restore: rst_ctx.blobs, in stasis and in every restore child (the fd is there
 *     until the task's memory is rebuilt). blob_check() in the module's validate hook;
 *     blob_read_fd() into the file recreated (memfd_create, O_TMPFILE...), or blob_read()
 *     with a sink that sends each piece (a queue refilled in order: pieces come in
 *     increasing positions and may split a message, so the sink reassembles by the
 *     lengths in the record), or blob_read_buf() for what must be whole in memory. */
#ifndef STASIS_IMAGE_BLOB_H
#define STASIS_IMAGE_BLOB_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "core/util.h"
#include "image/img.h"

#define BLOB_FILE "blobs.img"
#define IMG_BLOB_HDR_SIZE 4096
#define BLOB_CHUNK (1u << 20)       /* stored bytes per checksum */
#define BLOB_MAX_EXTENTS (1u << 18) /* per blob (a file with more is refused at dump) */
#define BLOB_MAX_SIZE ((uint64_t)INT64_MAX) /* a blob's logical size (an off_t) */
#define BLOB_FILE_MAGIC 0x424f4c42u /* "BLOB" */

/* In the header page, right after struct img_hdr (little-endian). */
struct blob_file_hdr {
	uint32_t magic;
	uint32_t chunk;       /* BLOB_CHUNK */
	uint64_t n_blobs;
	uint64_t logical;     /* sum of the blobs' sizes */
	uint64_t stored;      /* the payload length */
	uint64_t xxh64;       /* of the 32 bytes above */
};
_Static_assert(sizeof(struct blob_file_hdr) == 40, "blob_file_hdr layout");

/* --- dump --- */
int blob_put_buf(struct img_dir *d, const void *buf, size_t len, const char *what,
		 BlobRef **ref) __must_check;
int blob_put_file(struct img_dir *d, int fd, uint64_t size, const char *what, BlobRef **ref)
	__must_check;
int blob_begin(struct img_dir *d, const char *what) __must_check;
int blob_write(struct img_dir *d, const void *buf, size_t len) __must_check;
int blob_hole(struct img_dir *d, uint64_t len) __must_check;
int blob_end(struct img_dir *d, BlobRef **ref) __must_check;
/* Drop the blob begun (its bytes are cut off the file); never fails. */
void blob_abort(struct img_dir *d);

/* For img.c: finish blobs.img (header, fsync if d->sync) / free the writer. */
int blob_writer_finish(struct img_dir *d) __must_check;
void blob_writer_free(struct img_dir *d);

/* --- restore --- */
struct blob_reader {
	int fd;           /* blobs.img, or -1: the image has no blobs */
	uint64_t len;     /* payload bytes */
	uint64_t n_blobs;
	uint64_t logical;
};

/* Open and check blobs.img of image directory @dfd (ENOENT is no error: r->fd = -1). */
int blob_open(int dfd, struct blob_reader *r) __must_check;
/* The same over an open blobs.img (@fd is taken, closed on failure too). */
int blob_open_fd(int fd, const char *what, struct blob_reader *r) __must_check;
void blob_close(struct blob_reader *r);
/* @r, or a reader without blobs when NULL (a restore context built without an image
 * directory, as unit tests do): any BlobRef then fails with a clear error. */
const struct blob_reader *blob_reader_or_none(const struct blob_reader *r);

/* Bounds of @ref against a payload of @payload_len bytes; pure. The stored length in
 * *stored if not NULL. */
int blob_ref_check(const BlobRef *ref, uint64_t payload_len, const char *what,
		   uint64_t *stored) __must_check;
int blob_check(const struct blob_reader *r, const BlobRef *ref, const char *what) __must_check;

/* The sink of blob_read: @len verified bytes of the blob at logical position @pos. */
typedef int (*blob_sink_fn)(void *arg, uint64_t pos, const void *buf, size_t len);
int blob_read(const struct blob_reader *r, const BlobRef *ref, const char *what,
	      blob_sink_fn sink, void *arg) __must_check;
int blob_read_fd(const struct blob_reader *r, const BlobRef *ref, int fd, const char *what)
	__must_check;
int blob_read_buf(const struct blob_reader *r, const BlobRef *ref, void *buf, size_t len,
		  const char *what) __must_check;

#endif
