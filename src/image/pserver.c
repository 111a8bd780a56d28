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
#include <sys/socket.h>
#include <unistd.h>

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

static int on_hello(struct ps_conn *c, const struct ps_msg *m, const char *dir,
		    uint32_t *flags, char *done, size_t done_len)
{
	struct ps_hello h;
	if (le16toh(m->type) != PS_HELLO || le32toh(m->len) != sizeof(h))
		return refuse(c, -EPROTO, "the client did not start with a hello");
	int ret = read_all(c->fd, &h, sizeof(h));
	if (ret)
		return refuse(c, ret, "read the hello: %s", strerror(-ret));
	uint32_t v = le32toh(h.version);
	if (v != PS_VERSION)
		return refuse(c, -EPROTONOSUPPORT,
			      "protocol version %u not served (this page server speaks %u)", v,
			      PS_VERSION);
	*flags = le32toh(h.flags);
	if (*flags & ~(PS_F_SYNC | PS_F_FINAL))
		return refuse(c, -EPROTO, "unknown hello flags %#x", *flags);
	if (!memchr(h.name, '\0', sizeof(h.name)) || (h.name[0] && !valid_image_name(h.name)))
		return refuse(c, -EINVAL, "invalid image name in the hello");
	int n = h.name[0] ? snprintf(done, done_len, "%s/%s", dir, h.name)
			  : snprintf(done, done_len, "%s", dir);
	if (n < 0 || (size_t)n >= done_len)
		return refuse(c, -ENAMETOOLONG, "image path too long");
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
	ret = read_all(fd, &m, sizeof(m));
	if (ret)
		pr_err("page server: the client sent nothing: %s",
		       ret == -EIO ? "connection closed" : strerror(-ret));
	else if (le32toh(m.magic) != PS_MAGIC)
		ret = refuse(&c, -EPROTO, "not a stasis page server client");
	else
		ret = on_hello(&c, &m, dir, flags, done, done_len);
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
