/* Remote image directories: the page server (`stasis page-server`) and the dump that
 * sends its images to one (`dump --page-server`, `stasis migrate`).
 *
 * A dump with a page server writes its page streams straight into the connection (the
 * pages files never exist on the dumping side) and, once every image is written, sends the
 * other files of its temporary directory (metadata, blobs.img, the `parent` link) and
 * commits; the server writes them into a temporary directory of its own, syncs it when
 * the dump syncs, renames it into place and only then acknowledges the commit. So the
 * server's directory is a complete image a plain `stasis restore -D` reads, or nothing: a
 * dump whose connection ends before the commit leaves no directory behind there, and a
 * dump whose commit is not acknowledged fails (its tree keeps running). The dumping side
 * keeps the metadata in its own -D (enough for the next incremental dump to be made
 * against it, not enough to restore from).
 *
 * The protocol (version 2), one TCP connection per image, every field little-endian:
 * messages are struct ps_msg then `len` bytes of payload. The client sends HELLO (struct
 * ps_hello) and waits for a REPLY; then any number of OPEN (id, payload: an image file
 * name), WRITE (id, off, payload: bytes at that offset of that file), DROP (id: that file
 * is removed, its process went away during a pre-dump) and at most one LINK (payload: the
 * target of the `parent` link), then COMMIT and waits for the REPLY. A REPLY
 * carries 0 or an errno in `off` and a message as payload; the server sends one with the
 * error and closes the connection on anything it refuses. Every field is bounded (see
 * the PS_MAX_* values): the server trusts nothing its client sends.
 *
 * A read session (hello flag PS_F_READ, a server started with --serve) serves an image
 * that exists there to a restore (`restore --page-server`, lazy or not): OPENR names a
 * file (an image file name after at most PS_MAX_DEPTH "parent/": the image's parents),
 * answered by DATA with the file's size; READ asks for a range, answered by DATA with
 * the bytes; READC (version 2) asks for a part of a piece with the checksum of the whole
 * piece, so a lazy restore serves a fault without taking 2 MiB. Only files inside the
 * server's directory are served, however the `parent` links point. */
#ifndef STASIS_IMAGE_REMOTE_H
#define STASIS_IMAGE_REMOTE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/util.h"

#define PS_MAGIC 0x31505453u /* "STP1" */
#define PS_VERSION 2u     /* 2: READC; a server still takes version 1 clients */
#define PS_VERSION_MIN 1u
#define PS_MAX_DATA (8u << 20)    /* payload bytes of one message */
#define PS_MAX_FILES 65536u       /* file ids of one image */
#define PS_MAX_OFF (1ull << 46)   /* the end of any write (64 TiB) */
#define PS_NAME_MAX 64            /* file and image names, with their NUL */
#define PS_MAX_REPLY 1024         /* a reply's message */

enum ps_type {
	PS_HELLO = 1,
	PS_OPEN,
	PS_WRITE,
	PS_LINK,
	PS_COMMIT,
	PS_REPLY,
	PS_DROP,
	PS_OPENR, /* read session: id, payload a file name, maybe after "parent/"s */
	PS_READ,  /* read session: id, off, payload a u32 count (at most PS_MAX_DATA) */
	PS_DATA,  /* the answer: id, off, payload the bytes (fewer at the end of the file);
		   * to PS_OPENR: len 0, off the file's size; to PS_READC: see there */
	PS_READC, /* read session, version 2: id, off the start of a piece, payload a
		   * struct ps_readc; answered by DATA at off + sub_off, its payload the
		   * sub_len bytes, then the XXH3 of the whole piece and the XXH3 of those
		   * bytes (u64 each): the client checks the piece against its image's
		   * checksum and the bytes against the second (the wire) without taking the
		   * piece */
};
struct ps_readc {
	uint32_t piece_len; /* at most PS_MAX_DATA, all inside the file */
	uint32_t sub_off;   /* the bytes sent: [sub_off, sub_off + sub_len) of the piece */
	uint32_t sub_len;   /* at least 1 */
	uint32_t zero;
};
_Static_assert(sizeof(struct ps_readc) == 16, "ps_readc layout");
#define PS_READC_TAIL 16u /* the two checksums after the bytes */
#define PS_MAX_RFILES 1024u /* files open in one read session */
#define PS_MAX_DEPTH 64     /* "parent/" links one name may go up */

struct ps_msg {
	uint32_t magic;
	uint16_t type;
	uint16_t flags; /* 0 */
	uint32_t id;  /* OPEN, WRITE: the file (below PS_MAX_FILES) */
	uint32_t len; /* payload bytes that follow */
	uint64_t off; /* WRITE: file offset; REPLY: 0 or a positive errno */
};
_Static_assert(sizeof(struct ps_msg) == 24, "ps_msg layout");

struct iovec;
/* Send @iov[0..@n) whole (retrying short sends and EINTR; MSG_NOSIGNAL): 0 or -errno
 * (-ETIMEDOUT for a send timeout). Changes @iov. */
int ps_send_all(int fd, struct iovec *iov, int n) __must_check;

/* A message header in wire order. */
void ps_msg_encode(struct ps_msg *m, enum ps_type type, uint32_t id, uint32_t len,
		   uint64_t off);

#define PS_F_SYNC 0x1u  /* sync the image before acknowledging the commit */
#define PS_F_FINAL 0x2u /* a dump, the last image of a session (not a pre-dump) */
#define PS_F_READ 0x4u  /* a read session (a restore reading pages): `page-server --serve` */
struct ps_hello {
	uint32_t version;
	uint32_t flags;
	/* "" (the image goes into the server's directory itself) or the name of the
	 * image's directory below it ([A-Za-z0-9_-][A-Za-z0-9._-]*), NUL-terminated */
	char name[PS_NAME_MAX];
};
_Static_assert(sizeof(struct ps_hello) == 72, "ps_hello layout");

/* ---------------------------------------------------------------- client ---- */

struct img_remote;
/* Connect to the page server at @addr (a host name or address) and @port, and open an
 * image there: @name as in ps_hello (NULL: ""), @flags PS_F_*. 0 or -errno, logged. */
int img_remote_connect(const char *addr, const char *port, const char *name, uint32_t flags,
		       struct img_remote **out) __must_check;
/* A new file of the image, @fname an image file name: its id in *@id. */
int img_remote_open(struct img_remote *r, const char *fname, uint32_t *id) __must_check;
/* @len bytes at @off of file @id; may be called from several threads at once. The first
 * failure sticks: every later call returns it. 0 or -errno (logged once, with the
 * server's reason when it gave one). */
int img_remote_write(struct img_remote *r, uint32_t id, const void *buf, size_t len,
		     uint64_t off) __must_check;
/* File @id is not part of the image after all: removed there. */
int img_remote_drop(struct img_remote *r, uint32_t id) __must_check;
/* Send every image file and the `parent` link of directory @dfd (the dump's temporary
 * directory: its metadata), then commit and wait until the server says the image is in
 * place (and synced, with PS_F_SYNC). 0 or -errno, logged. */
int img_remote_commit(struct img_remote *r, int dfd) __must_check;
/* Closes the connection: an image not committed is dropped by the server. NULL-safe. */
void img_remote_free(struct img_remote *r);

/* Read sessions (img_remote_connect with PS_F_READ): open file @path of the image
 * ("pages-N.img", "parent/pages-N.img", ...): its id in *@id, its size in *@size. */
int img_remote_openr(struct img_remote *r, const char *path, uint32_t *id, uint64_t *size)
	__must_check;
/* @len bytes at @off of file @id into @buf (all of them: a short file is an error); may be
 * called from several threads at once. 0 or -errno, logged. */
int img_remote_pread(struct img_remote *r, uint32_t id, void *buf, size_t len, uint64_t off)
	__must_check;
/* Checked read (READC): bytes [@sub_off, @sub_off + @sub_len) of the piece of @plen
 * bytes at @poff of file @id into @buf, which has room for PS_READC_TAIL bytes more; the
 * server's checksum (XXH3) of the whole piece in *@piece_xxh, for the caller to compare
 * with its image's; the bytes are checked against the checksum the server sent with
 * them (-EBADMSG). 0 or -errno, logged. */
int img_remote_preadc(struct img_remote *r, uint32_t id, uint64_t poff, uint32_t plen,
		      uint32_t sub_off, void *buf, uint32_t sub_len, uint64_t *piece_xxh)
	__must_check;
/* Ask now for the @len bytes (at most PS_MAX_DATA) at @off of file @id that an
 * img_remote_pread with these very arguments will take next: the transfer overlaps the
 * caller's work until then. Any other request first takes that answer and drops it (the
 * data read again if asked for later). 0 or -errno, logged (sticky, as for a read). */
int img_remote_prefetch(struct img_remote *r, uint32_t id, void *buf, size_t len,
			uint64_t off) __must_check;

/* ---------------------------------------------------------------- server ---- */

/* Serve one connection on @fd into directory @dir: the image goes to @dir or to
 * @dir/NAME (the hello's name). 0 when an image was committed, with PS_F_* of its
 * hello in *@flags and its directory in @done (of @done_len bytes); -errno otherwise (the
 * image dropped, nothing left of it; the reason logged and sent to the client). */
int ps_serve_conn(int fd, const char *dir, uint32_t *flags, char *done, size_t done_len)
	__must_check;
/* Serve one read session on @fd from the images of @dir (page-server --serve): files of
 * the image (@dir or @dir/NAME) and of its parents, as long as each lies inside @dir.
 * Returns when the client closes: 0, or -errno for a session refused or failed. */
int ps_serve_read_conn(int fd, const char *dir) __must_check;

#endif
