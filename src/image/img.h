/* Image files: framing, the image directory, and the registry of image kinds.
 *
 * Every file in an image directory starts with struct img_hdr (little-endian, 40 bytes):
 * magic, format version, kind, flags, payload length and an XXH3-64 of the payload
 * (metadata) or 0 (pages: each PageRun carries its own checksum; blobs: each BlobRef
 * carries its chunks' checksums). Metadata payloads are one protobuf message whose type
 * is fixed by the kind, at most IMG_MAX_META bytes. The pages and blobs files' headers
 * are padded to one page so the payload is page-aligned and can be mmap'd or read
 * straight into a task; their payloads have no bound. */
#ifndef STASIS_IMAGE_IMG_H
#define STASIS_IMAGE_IMG_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "core/util.h"
#include "image/stasis.pb-c.h"

#define IMG_MAGIC 0x53415453u /* "STAS" */
/* 2: a message per fd kind; 3: bulk contents in blobs.img, the namespaces a task created
 * in ns-PID.img; 4: the contents of unlinked files and memfds (open or mapped) in
 * blobs.img instead of inline bytes, their owner and mode, Vma.ghost_in_fd; 5: sockets of
 * every kind (unix names, queues with descriptors in flight, TCP, datagram), ptys, cgroup
 * settings, removed directories, incremental dumps (page runs in parent images): an older
 * stasis would drop those fields silently; 6: attached SysV memory, helper-made tasks,
 * IPv6 link-local marks, seccomp, file locks, pidfds, dump stats, multicast memberships */
#define IMG_VERSION 6
/* The symlink of an incremental image naming its parent image (src/mem/track.c). */
#define IMG_PARENT_LINK "parent"
#define IMG_MAX_META (64u << 20) /* bound on a metadata payload */
#define IMG_PAGES_HDR_SIZE 4096
/* img_hdr.flags: a pages file whose stream is stored as zstd frames, with a frame index
 * at its end (src/mem/pagez.c); struct img_pages_z follows the header. Pages files only. */
#define IMG_F_PAGES_ZSTD 0x1u

enum img_kind {
	IMG_INVENTORY = 1,
	IMG_CORE = 2,
	IMG_MM = 3,
	IMG_FILES = 4,
	IMG_PAGES = 5,
	IMG_BLOBS = 6, /* blobs.img: bulk contents, src/image/blob.h */
	IMG_NS = 7,    /* the namespaces a task created (TaskNs), only where it did */
	IMG_NETLOCK = 8, /* the network lock of the dumper's net namespace (NetLock) */
	IMG_STATS = 9,   /* stats-dump.img: what the dump measured (DumpStats) */
	IMG_SECCOMP = 10, /* the tree's seccomp filter programs (SeccompFilters) */
	IMG_KIND_MAX
};

struct img_hdr {
	uint32_t magic;
	uint16_t version;
	uint16_t kind;
	uint32_t flags;
	uint32_t reserved;
	uint64_t payload_len;
	uint64_t payload_xxh64;
	uint64_t hdr_xxh64; /* of the 32 bytes above */
};
_Static_assert(sizeof(struct img_hdr) == 40, "img_hdr layout");

/* Registry: one row per kind. File names are printf patterns taking the pid (or none). */
struct img_kind_desc {
	enum img_kind kind;
	const char *name;    /* "core" */
	const char *pattern; /* "core-%d.img" */
	const ProtobufCMessageDescriptor *desc; /* NULL for pages and blobs (raw data) */
};
const struct img_kind_desc *img_kind_get(enum img_kind kind);
/* The file name of image @kind of @pid ("core-42.img") in @buf. */
void img_name(enum img_kind kind, int pid, char *buf, size_t len);
/* Identify a file by name ("core-42.img" -> IMG_CORE), or NULL. */
const struct img_kind_desc *img_kind_by_filename(const char *fname);

/* An image directory being written: files go to a temporary sibling directory which
 * img_dir_commit() syncs and renames into place (blobs.img finished first). */
struct blob_writer;
struct img_remote;
struct img_dir {
	int dfd;       /* the directory files are written in */
	char *path;    /* final path */
	char *tmp;     /* temporary path while writing (NULL when reading) */
	bool sync;     /* fsync files and directories */
	bool keep_foreign; /* files of DIR that are not images are kept (moved over) */
	struct blob_writer *blobs; /* blobs.img being written (src/image/blob.h), or NULL */
	/* a page server (src/image/remote.h): the pages files go there as they are
	 * written, the other files at the commit, which the server confirms first; owned
	 * (freed by img_dir_close). NULL: a local image. */
	struct img_remote *remote;
};

/* The temporary directory is DIR.stasis-tmp.PID, locked (flock, LOCK_EX on the directory
 * itself) by the dumper from before it holds anything until it is renamed into place: a
 * dumper killed midway leaves it unlocked, "stale" whatever process has its pid since.
 * img_dir_begin() first removes the stale ones of DIR (img_gc()). */
int img_dir_begin(struct img_dir *d, const char *path, bool sync) __must_check;
/* The same for a DIR that may hold files other than images (a runtime's own files, the
 * log of the dump): they are not refused, and the commit moves them into the new DIR. */
int img_dir_begin_keep(struct img_dir *d, const char *path, bool sync) __must_check;
int img_dir_commit(struct img_dir *d) __must_check;
/* Remove the temporary directory of an unfinished dump (images already committed are
 * never touched). */
void img_dir_abort(struct img_dir *d);
int img_dir_open(struct img_dir *d, const char *path) __must_check;
void img_dir_close(struct img_dir *d);

/* Stale temporary directories (see img_dir_begin). For an image directory @path:
 * its siblings PATH.stasis-tmp.N; with @inside, also the entries NAME.stasis-tmp.N of the
 * directory @path itself (dumps into PATH/NAME). A directory still locked by its dumper
 * is never touched; a stale one is removed only if it holds nothing but image files.
 * @report (may be NULL) is called for every temporary directory found: its path, what
 * happened (IMG_GC_*), its size in bytes (allocated blocks) and, for IMG_GC_FAILED, the
 * -errno or, for IMG_GC_FOREIGN, the name of the file that is not an image. Returns the
 * number removed, or -errno when @path cannot be read (ENOENT: 0). */
enum img_gc_what {
	IMG_GC_REMOVED, /* stale: removed */
	IMG_GC_LIVE,    /* locked by a dump in progress: left alone */
	IMG_GC_FOREIGN, /* stale but holds a file that is not an image: left alone */
	IMG_GC_FAILED,  /* stale, but the removal failed */
};
typedef void (*img_gc_report_fn)(void *arg, const char *tmp, enum img_gc_what what, uint64_t bytes,
				 int err, const char *foreign);
int img_gc(const char *path, bool inside, img_gc_report_fn report, void *arg) __must_check;
/* @fn is called for every stale temporary directory just before img_gc removes it (its
 * files still there): stasis removes the network lock a killed dumper left
 * (src/net/netlock.c). NULL: none. */
void img_gc_set_stale_hook(void (*fn)(const char *tmp));

/* Metadata images. */
int img_write_msg(struct img_dir *d, enum img_kind kind, int pid, const ProtobufCMessage *msg)
	__must_check;
/* Returns the unpacked message (free with protobuf_c_message_free_unpacked) or NULL with
 * errno set; the reason is logged with the file name. */
void *img_read_msg(int dfd, enum img_kind kind, int pid);
/* Decode a whole image file already in memory (used by `show` and the fuzz targets). */
void *img_decode(const void *buf, size_t len, enum img_kind expect, const char *what);
/* Validate a header; returns 0 or -EINVAL/-EPROTO with the reason logged. */
int img_check_hdr(const struct img_hdr *h, enum img_kind expect, uint64_t file_len,
		  const char *what) __must_check;
void img_fill_hdr(struct img_hdr *h, enum img_kind kind, uint64_t len, uint64_t xxh);

/* In the header page of a compressed pages file, right after struct img_hdr. */
struct img_pages_z {
	uint64_t stream_len; /* bytes of the uncompressed page stream */
	uint64_t index_off;  /* file offset of the frame index (it runs to the end) */
	uint64_t nr_frames;
	uint64_t index_xxh64; /* of the index */
	uint64_t xxh64;       /* of the 32 bytes above */
};
_Static_assert(sizeof(struct img_pages_z) == 40, "img_pages_z layout");

/* Pages file: open for writing (header written at close) or reading. */
struct img_pages {
	int fd;         /* -1 when written to a page server */
	struct img_remote *rem; /* the page server it is written to, or NULL */
	uint32_t rid;   /* its file id there */
	int pid;        /* whose pages (its file name) */
	uint64_t len;   /* payload bytes */
	uint32_t flags; /* IMG_F_PAGES_ZSTD: z is set (checked at open) */
	struct img_pages_z z;
};
int img_pages_create(struct img_dir *d, int pid, struct img_pages *p) __must_check;
int img_pages_finish(struct img_dir *d, struct img_pages *p) __must_check;
/* A pages file being written is not part of the image after all: removed (locally or on
 * the page server); its fd closed. 0 or -errno, logged. */
int img_pages_discard(struct img_dir *d, struct img_pages *p) __must_check;
/* Write @len bytes at @off of a pages file being written (local or remote). */
int img_pages_pwrite(const struct img_pages *p, const void *buf, size_t len, off_t off)
	__must_check;
int img_pages_open(int dfd, int pid, struct img_pages *p) __must_check;

uint64_t img_hash(const void *buf, size_t len);

#endif
