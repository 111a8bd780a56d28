/* Remote image directories: the server side, one connection (src/image/remote.h).
 * Everything the client sends is checked before it is used: message kinds and lengths,
 * file names (image file names only: nothing outside the image directory can be
 * named), ids, offsets; the image is written into a temporary directory of its own and
 * renamed into place only at the commit. */
#include "image/remote.h"

#include <endian.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>
#include <xxhash.h>

#include "core/log.h"
#include "image/img.h"

struct ps_conn {
	int fd;
	struct img_dir d;
	bool begun;
	char (*names)[PS_NAME_MAX]; /* by file id; "" unused */
	uint32_t cap;
	uint32_t cur_id; /* the file cur_fd is open on */
	int cur_fd;
	bool linked;
	char *buf;
	uint32_t version; /* the client's (hello) */
};

static void send_reply(int fd, int err, const char *msg)
{
	struct ps_msg m;
	size_t len = strnlen(msg, PS_MAX_REPLY - 1);
	ps_msg_encode(&m, PS_REPLY, 0, (uint32_t)len, (uint64_t)err);
	struct iovec iov[2] = { { &m, sizeof(m) }, { (void *)msg, len } };
	struct msghdr mh = { .msg_iov = iov, .msg_iovlen = 2 };
	/* best effort: a client that went away does not hear it */
	if (sendmsg(fd, &mh, MSG_NOSIGNAL) < 0)
		pr_debug("page server: reply: %s", strerror(errno));
}

/* Refuse: logged, said to the client. Evaluates to @err (-errno). */
__attribute__((format(printf, 3, 4))) static int refuse(struct ps_conn *c, int err,
							 const char *fmt, ...)
{
	char msg[PS_MAX_REPLY];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	pr_err("page server: %s", msg);
	send_reply(c->fd, -err, msg);
	return err;
}

static bool valid_image_name(const char *n)
{
	if (!n[0] || n[0] == '.')
		return false;
	for (const char *p = n; *p; p++)
		if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
		      (*p >= '0' && *p <= '9') || *p == '.' || *p == '_' || *p == '-'))
			return false;
	return true;
}

/* The first message: a hello of this version naming a valid image, with the flags
 * @allowed and all of @required; the image's path (@dir or @dir/NAME) into @path. */
static int read_hello(struct ps_conn *c, const char *dir, uint32_t allowed, uint32_t required,
		      uint32_t *flags, char *path, size_t path_len)
{
	struct ps_hello h;
	struct ps_msg m;
	int ret = read_all(c->fd, &m, sizeof(m));
	if (ret) {
		pr_err("page server: the client sent nothing: %s",
		       ret == -EIO ? "connection closed" : strerror(-ret));
		return ret;
	}
	if (le32toh(m.magic) != PS_MAGIC)
		return refuse(c, -EPROTO, "not a stasis page server client");
	if (le16toh(m.type) != PS_HELLO || le32toh(m.len) != sizeof(h))
		return refuse(c, -EPROTO, "the client did not start with a hello");
	ret = read_all(c->fd, &h, sizeof(h));
	if (ret)
		return refuse(c, ret, "read the hello: %s", strerror(-ret));
	uint32_t v = le32toh(h.version);
	if (v < PS_VERSION_MIN || v > PS_VERSION)
		return refuse(c, -EPROTONOSUPPORT,
			      "protocol version %u not served (this page server speaks %u to %u)",
			      v, PS_VERSION_MIN, PS_VERSION);
	c->version = v;
	*flags = le32toh(h.flags);
	if ((*flags & PS_F_READ) != (required & PS_F_READ))
		return refuse(c, -EPROTO, required & PS_F_READ
						  ? "this page server serves images (--serve): it "
						    "receives none"
						  : "this page server receives images: start one "
						    "with --serve to read them");
	if (*flags & ~allowed)
		return refuse(c, -EPROTO, "unknown hello flags %#x", *flags);
	if (!memchr(h.name, '\0', sizeof(h.name)) || (h.name[0] && !valid_image_name(h.name)))
		return refuse(c, -EINVAL, "invalid image name in the hello");
	int n = h.name[0] ? snprintf(path, path_len, "%s/%s", dir, h.name)
			  : snprintf(path, path_len, "%s", dir);
	if (n < 0 || (size_t)n >= path_len)
		return refuse(c, -ENAMETOOLONG, "image path too long");
	return 0;
}

static int on_hello(struct ps_conn *c, const char *dir, uint32_t *flags, char *done,
		    size_t done_len)
{
	int ret = read_hello(c, dir, PS_F_SYNC | PS_F_FINAL, 0, flags, done, done_len);
	if (ret)
		return ret;
	ret = img_dir_begin(&c->d, done, *flags & PS_F_SYNC);
	if (ret)
		return refuse(c, ret, "cannot write an image to %s: %s", done, strerror(-ret));
	c->begun = true;
	send_reply(c->fd, 0, "ready");
	pr_info("page server: receiving the image %s", done);
	return 0;
}

static int on_open(struct ps_conn *c, uint32_t id, uint32_t len)
{
	char name[PS_NAME_MAX];
	if (id >= PS_MAX_FILES || !len || len >= PS_NAME_MAX)
		return refuse(c, -EPROTO, "bad file id %u or name length %u", id, len);
	int ret = read_all(c->fd, name, len);
	if (ret)
		return refuse(c, ret, "read a file name: %s", strerror(-ret));
	name[len] = '\0';
	if (strlen(name) != len || !img_kind_by_filename(name))
		return refuse(c, -EINVAL, "refusing a file that is not an image file");
	if (id >= c->cap) {
		uint32_t cap = c->cap ? c->cap : 64;
		while (cap <= id)
			cap *= 2;
		if (cap > PS_MAX_FILES)
			cap = PS_MAX_FILES;
		void *p = realloc(c->names, cap * sizeof(*c->names));
		if (!p)
			return refuse(c, -ENOMEM, "out of memory");
		c->names = p;
		memset(c->names + c->cap, 0, (cap - c->cap) * sizeof(*c->names));
		c->cap = cap;
	}
	if (c->names[id][0] || c->names[id][1])
		return refuse(c, -EPROTO, "file id %u opened twice", id);
	int fd = openat(c->d.dfd, name, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd < 0) {
		ret = -errno;
		return refuse(c, ret, "create %s: %s", name, strerror(-ret));
	}
	if (c->cur_fd >= 0)
		close(c->cur_fd);
	c->cur_fd = fd;
	c->cur_id = id;
	memcpy(c->names[id], name, len + 1);
	return 0;
}

static int on_write(struct ps_conn *c, uint32_t id, uint32_t len, uint64_t off)
{
	if (id >= c->cap || !c->names[id][0])
		return refuse(c, -EPROTO, "write to file id %u, never opened", id);
	if (len > PS_MAX_DATA || off > PS_MAX_OFF || len > PS_MAX_OFF - off)
		return refuse(c, -EPROTO, "write of %u bytes at %llu out of bounds", len,
			      (unsigned long long)off);
	int ret = read_all(c->fd, c->buf, len);
	if (ret)
		return refuse(c, ret, "read pages: %s", strerror(-ret));
	if (c->cur_fd < 0 || c->cur_id != id) {
		if (c->cur_fd >= 0)
			close(c->cur_fd);
		c->cur_fd = openat(c->d.dfd, c->names[id], O_WRONLY | O_CLOEXEC);
		c->cur_id = id;
		if (c->cur_fd < 0) {
			ret = -errno;
			return refuse(c, ret, "open %s: %s", c->names[id], strerror(-ret));
		}
	}
	ret = pwrite_all(c->cur_fd, c->buf, len, (off_t)off);
	if (ret)
		return refuse(c, ret, "write %s in %s: %s", c->names[id], c->d.path,
			      strerror(-ret));
	return 0;
}

static int on_drop(struct ps_conn *c, uint32_t id, uint32_t len)
{
	if (len || id >= c->cap || !c->names[id][0])
		return refuse(c, -EPROTO, "drop of file id %u, never opened", id);
	if (c->cur_fd >= 0 && c->cur_id == id) {
		close(c->cur_fd);
		c->cur_fd = -1;
	}
	if (unlinkat(c->d.dfd, c->names[id], 0) < 0) {
		int ret = -errno;
		return refuse(c, ret, "remove %s: %s", c->names[id], strerror(-ret));
	}
	c->names[id][0] = '\0';
	c->names[id][1] = 'x'; /* dropped: never opened again under this id */
	return 0;
}

static int on_link(struct ps_conn *c, uint32_t len)
{
	char target[PATH_MAX];
	if (c->linked || !len || len >= sizeof(target))
		return refuse(c, -EPROTO, "bad parent link (length %u)", len);
	int ret = read_all(c->fd, target, len);
	if (ret)
		return refuse(c, ret, "read the parent link: %s", strerror(-ret));
	target[len] = '\0';
	if (strlen(target) != len)
		return refuse(c, -EINVAL, "bad parent link");
	/* the link is only ever followed by a restore, which checks the image it finds
	 * there against the id this image names */
	if (symlinkat(target, c->d.dfd, IMG_PARENT_LINK) < 0) {
		ret = -errno;
		return refuse(c, ret, "make the parent link: %s", strerror(-ret));
	}
	c->linked = true;
	return 0;
}

static int on_commit(struct ps_conn *c, uint32_t len)
{
	if (len)
		return refuse(c, -EPROTO, "bad commit");
	if (c->cur_fd >= 0)
		close(c->cur_fd);
	c->cur_fd = -1;
	if (c->d.sync && syncfs(c->d.dfd) < 0) {
		int ret = -errno;
		return refuse(c, ret, "sync %s: %s", c->d.path, strerror(-ret));
	}
	int ret = img_dir_commit(&c->d);
	if (ret)
		return refuse(c, ret, "commit %s: %s", c->d.path, strerror(-ret));
	return 0;
}

int ps_serve_conn(int fd, const char *dir, uint32_t *flags, char *done, size_t done_len)
{
	struct ps_conn c = { .fd = fd, .cur_fd = -1 };
	struct ps_msg m;
	int ret;

	c.d.dfd = -1;
	*flags = 0;
	c.buf = malloc(PS_MAX_DATA);
	if (!c.buf)
		return -ENOMEM;
	ret = on_hello(&c, dir, flags, done, done_len);
	while (!ret) {
		ret = read_all(fd, &m, sizeof(m));
		if (ret) {
			pr_err("page server: the image %s was not complete when the connection "
			       "ended (%s): dropped",
			       done, ret == -EIO ? "closed by the client" : strerror(-ret));
			break;
		}
		uint32_t id = le32toh(m.id), len = le32toh(m.len);
		if (le32toh(m.magic) != PS_MAGIC || m.flags) {
			ret = refuse(&c, -EPROTO, "malformed message");
			break;
		}
		switch (le16toh(m.type)) {
		case PS_OPEN:
			ret = on_open(&c, id, len);
			break;
		case PS_WRITE:
			ret = on_write(&c, id, len, le64toh(m.off));
			break;
		case PS_LINK:
			ret = on_link(&c, len);
			break;
		case PS_DROP:
			ret = on_drop(&c, id, len);
			break;
		case PS_COMMIT:
			ret = on_commit(&c, len);
			if (!ret) {
				send_reply(fd, 0, done);
				goto out;
			}
			break;
		default:
			ret = refuse(&c, -EPROTO, "unknown message type %u", le16toh(m.type));
			break;
		}
	}
out:
	if (c.cur_fd >= 0)
		close(c.cur_fd);
	if (ret && c.begun)
		img_dir_abort(&c.d);
	else
		img_dir_close(&c.d);
	free(c.names);
	free(c.buf);
	return ret;
}

/* ------------------------------------------------------------ read sessions ---- */

struct ps_rd {
	struct ps_conn c; /* its fd */
	char rootp[PATH_MAX]; /* the server's directory, resolved */
	int img;              /* the image's directory */
	int files[PS_MAX_RFILES];
	/* files read with READC, mapped whole (without reading ahead: the pages a piece's
	 * checksum touches come in then), and the last piece hashed: the next READC of the
	 * same piece (the rest of it) does not hash it again */
	struct {
		const char *map;
		size_t len;
	} maps[PS_MAX_RFILES];
	struct {
		bool valid;
		uint32_t id, len;
		uint64_t off, xxh;
	} pc;
};

/* Is directory @dfd inside the server's directory? */
static bool rd_contained(const struct ps_rd *r, int dfd)
{
	char p[PATH_MAX];
	if (fd_link(dfd, p, sizeof(p)) < 0)
		return false;
	size_t rl = strlen(r->rootp);
	return !strncmp(p, r->rootp, rl) && (p[rl] == '\0' || p[rl] == '/' || rl == 1);
}

/* The answer to OPENR: DATA without bytes, the file's size as its offset. */
static int rd_send_size(struct ps_rd *r, uint32_t id, uint64_t size)
{
	struct ps_msg m;
	ps_msg_encode(&m, PS_DATA, id, 0, size);
	struct iovec iov = { &m, sizeof(m) };
	return ps_send_all(r->c.fd, &iov, 1);
}

static int rd_open(struct ps_rd *r, uint32_t id, uint32_t len)
{
	char path[PS_MAX_DEPTH * 7 + PS_NAME_MAX];
	if (!len || len >= sizeof(path))
		return refuse(&r->c, -EPROTO, "bad file name length %u", len);
	/* the name read first: a refusal then reaches the client (unread bytes would turn
	 * the close into a reset) */
	int ret = read_all(r->c.fd, path, len);
	if (ret)
		return refuse(&r->c, ret, "read a file name: %s", strerror(-ret));
	if (id >= PS_MAX_RFILES || r->files[id] >= 0)
		return refuse(&r->c, -EPROTO, "bad file id %u", id);
	path[len] = '\0';
	const char *name = path;
	int depth = 0;
	while (!strncmp(name, IMG_PARENT_LINK "/", strlen(IMG_PARENT_LINK) + 1) &&
	       depth <= PS_MAX_DEPTH) {
		name += strlen(IMG_PARENT_LINK) + 1;
		depth++;
	}
	if (strlen(path) != len || depth > PS_MAX_DEPTH || strchr(name, '/') ||
	    !img_kind_by_filename(name))
		return refuse(&r->c, -EINVAL, "refusing a file that is not an image file");
	int d = dup(r->img);
	for (int k = 0; d >= 0 && k < depth; k++) {
		int nd = openat(d, IMG_PARENT_LINK, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		close(d);
		d = nd;
		if (d >= 0 && !rd_contained(r, d)) {
			close(d);
			return refuse(&r->c, -EACCES, "%s: a parent image outside the served "
						      "directory", path);
		}
	}
	int fd = d < 0 ? -1 : openat(d, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	ret = fd < 0 ? -errno : 0;
	if (d >= 0)
		close(d);
	struct stat st;
	if (!ret && (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)))
		ret = -EINVAL;
	if (ret) {
		if (fd >= 0)
			close(fd);
		return refuse(&r->c, ret, "open %s: %s", path, strerror(-ret));
	}
	r->files[id] = fd;
	return rd_send_size(r, id, (uint64_t)st.st_size);
}

/* READ: the header, then the bytes straight from the file to the socket (sendfile: no
 * copy through the server), fewer at the end of the file. */
static int rd_read(struct ps_rd *r, uint32_t id, uint32_t len, uint64_t off)
{
	uint32_t count;
	if (len != sizeof(count))
		return refuse(&r->c, -EPROTO, "bad read request");
	int ret = read_all(r->c.fd, &count, sizeof(count));
	if (ret)
		return refuse(&r->c, ret, "read a request: %s", strerror(-ret));
	if (id >= PS_MAX_RFILES || r->files[id] < 0)
		return refuse(&r->c, -EPROTO, "read of file id %u, never opened", id);
	count = le32toh(count);
	if (!count || count > PS_MAX_DATA || off > PS_MAX_OFF)
		return refuse(&r->c, -EPROTO, "read of %u bytes at %llu out of bounds", count,
			      (unsigned long long)off);
	struct stat st;
	if (fstat(r->files[id], &st) < 0)
		return refuse(&r->c, -errno, "stat: %s", strerror(errno));
	uint64_t size = (uint64_t)st.st_size, n = off < size ? MIN(size - off, count) : 0;
	struct ps_msg m;
	ps_msg_encode(&m, PS_DATA, id, (uint32_t)n, off);
	for (size_t done = 0; done < sizeof(m);) {
		ssize_t w = send(r->c.fd, (char *)&m + done, sizeof(m) - done,
				 MSG_NOSIGNAL | (n ? MSG_MORE : 0));
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return -errno;
		done += (size_t)w;
	}
	off_t at = (off_t)off;
	while (n) {
		ssize_t w = sendfile(r->c.fd, r->files[id], &at, n);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0) /* the file shrank: the bytes promised cannot come */
			return w < 0 ? -errno : -EIO;
		n -= (uint64_t)w;
	}
	return 0;
}

/* Where the piece [@off, @off + @len) of file @id is (its file mapped), hashed into
 * r->pc; NULL after a refusal. */
static const char *rd_piece(struct ps_rd *r, uint32_t id, uint64_t off, uint32_t len)
{
	if (!r->maps[id].map) {
		struct stat st;
		if (fstat(r->files[id], &st) < 0 || !st.st_size) {
			refuse(&r->c, -EIO, "a piece at %llu of an empty or unreadable file",
			       (unsigned long long)off);
			return NULL;
		}
		void *m = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_SHARED, r->files[id], 0);
		if (m == MAP_FAILED) {
			refuse(&r->c, -errno, "map a pages file: %s", strerror(errno));
			return NULL;
		}
		r->maps[id].map = m;
		r->maps[id].len = (size_t)st.st_size;
	}
	if (off > r->maps[id].len || len > r->maps[id].len - off) {
		refuse(&r->c, -EIO, "a piece at %llu of %u bytes: the file has %zu",
		       (unsigned long long)off, len, r->maps[id].len);
		return NULL;
	}
	const char *at = r->maps[id].map + off;
	if (!r->pc.valid || r->pc.id != id || r->pc.off != off || r->pc.len != len) {
		r->pc.xxh = XXH3_64bits(at, len);
		r->pc.valid = true;
		r->pc.id = id;
		r->pc.off = off;
		r->pc.len = len;
	}
	return at;
}

/* READC: part of a piece, with the checksum of the whole piece and of the part. */
static int rd_readc(struct ps_rd *r, uint32_t id, uint32_t len, uint64_t off)
{
	struct ps_readc q;
	if (len != sizeof(q) || r->c.version < 2)
		return refuse(&r->c, -EPROTO, "bad checked read request");
	int ret = read_all(r->c.fd, &q, sizeof(q));
	if (ret)
		return refuse(&r->c, ret, "read a request: %s", strerror(-ret));
	uint32_t plen = le32toh(q.piece_len), so = le32toh(q.sub_off), sl = le32toh(q.sub_len);
	if (id >= PS_MAX_RFILES || r->files[id] < 0)
		return refuse(&r->c, -EPROTO, "read of file id %u, never opened", id);
	if (!plen || plen > PS_MAX_DATA || !sl || so > plen || sl > plen - so || q.zero ||
	    off > PS_MAX_OFF)
		return refuse(&r->c, -EPROTO, "checked read of %u bytes at %u of a piece of %u "
					      "bytes at %llu out of bounds",
			      sl, so, plen, (unsigned long long)off);
	const char *piece = rd_piece(r, id, off, plen);
	if (!piece)
		return -EPROTO;
	const char *sub = piece + so;
	uint64_t tail[2] = { htole64(r->pc.xxh), htole64(XXH3_64bits(sub, sl)) };
	struct ps_msg m;
	ps_msg_encode(&m, PS_DATA, id, sl + PS_READC_TAIL, off + so);
	struct iovec iov[3] = { { &m, sizeof(m) }, { (void *)sub, sl }, { tail, sizeof(tail) } };
	return ps_send_all(r->c.fd, iov, 3);
}

int ps_serve_read_conn(int fd, const char *dir)
{
	struct ps_rd *r = calloc(1, sizeof(*r));
	char path[PATH_MAX];
	uint32_t flags;
	if (!r)
		return -ENOMEM;
	r->c.fd = fd;
	r->img = -1;
	for (uint32_t i = 0; i < PS_MAX_RFILES; i++)
		r->files[i] = -1;
	int ret = read_hello(&r->c, dir, PS_F_READ, PS_F_READ, &flags, path, sizeof(path));
	if (!ret && !realpath(dir, r->rootp))
		ret = refuse(&r->c, -errno, "%s: %s", dir, strerror(errno));
	if (!ret && (r->img = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0)
		ret = refuse(&r->c, -errno, "no image %s here: %s", path, strerror(errno));
	if (!ret) {
		send_reply(fd, 0, "ready");
		pr_info("page server: serving the image %s", path);
	}
	struct ps_msg m;
	while (!ret) {
		ret = read_all(fd, &m, sizeof(m));
		if (ret) {
			ret = ret == -EIO ? 0 : ret; /* the client is done */
			break;
		}
		uint32_t id = le32toh(m.id), len = le32toh(m.len);
		if (le32toh(m.magic) != PS_MAGIC || m.flags)
			ret = refuse(&r->c, -EPROTO, "malformed message");
		else if (le16toh(m.type) == PS_OPENR)
			ret = rd_open(r, id, len);
		else if (le16toh(m.type) == PS_READ)
			ret = rd_read(r, id, len, le64toh(m.off));
		else if (le16toh(m.type) == PS_READC)
			ret = rd_readc(r, id, len, le64toh(m.off));
		else
			ret = refuse(&r->c, -EPROTO, "unknown message type %u in a read session",
				     le16toh(m.type));
	}
	for (uint32_t i = 0; i < PS_MAX_RFILES; i++)
		if (r->files[i] >= 0)
			close(r->files[i]);
	if (r->img >= 0)
		close(r->img);
	for (uint32_t i = 0; i < PS_MAX_RFILES; i++)
		if (r->maps[i].map)
			munmap((void *)r->maps[i].map, r->maps[i].len);
	free(r);
	return ret;
}
