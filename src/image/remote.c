/* Remote image directories: the client side (src/image/remote.h). */
#include "image/remote.h"

#include <dirent.h>
#include <endian.h>
#include <fcntl.h>
#include <limits.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>
#include <xxhash.h>

#include "core/log.h"
#include "image/img.h"

#define PS_CONNECT_MS 10000
#define PS_SEND_TIMEOUT_S 60   /* a server that takes nothing for this long is gone */
#define PS_COMMIT_MS 600000    /* syncing a large image over there */
#define PS_READ_MS 60000       /* a read session's answer */

struct img_remote {
	int fd;
	pthread_mutex_t mu;
	uint32_t next_id;
	int err; /* the first failure, sticky */
	char where[96];
	/* a read session's request sent ahead (img_remote_prefetch), its answer not taken */
	struct {
		bool asked;
		uint32_t id;
		uint32_t len;
		uint64_t off;
		void *buf;
	} pf;
};

void ps_msg_encode(struct ps_msg *m, enum ps_type type, uint32_t id, uint32_t len, uint64_t off)
{
	*m = (struct ps_msg){ .magic = htole32(PS_MAGIC),
			      .type = htole16((uint16_t)type),
			      .id = htole32(id),
			      .len = htole32(len),
			      .off = htole64(off) };
}

/* Wait up to @ms for the server's REPLY: its errno in *@status, its message in @msg.
 * 0, or -errno when none came. */
static int read_reply(int fd, int ms, int *status, char *msg, size_t msg_len)
{
	struct pollfd p = { .fd = fd, .events = POLLIN };
	struct ps_msg m;
	int n = poll(&p, 1, ms);
	if (n <= 0)
		return n < 0 ? -errno : -ETIMEDOUT;
	int ret = read_all(fd, &m, sizeof(m));
	if (ret)
		return ret;
	uint32_t len = le32toh(m.len);
	uint64_t st = le64toh(m.off);
	if (le32toh(m.magic) != PS_MAGIC || le16toh(m.type) != PS_REPLY || len >= PS_MAX_REPLY ||
	    len >= msg_len || st > 4095)
		return -EPROTO;
	ret = read_all(fd, msg, len);
	if (ret)
		return ret;
	msg[len] = '\0';
	for (uint32_t i = 0; i < len; i++)
		if ((unsigned char)msg[i] < ' ')
			msg[i] = ' ';
	*status = (int)st;
	return 0;
}

/* The connection failed with @err: the server's reason when it sent one. Sticky. */
static int remote_fail(struct img_remote *r, int err, const char *doing)
{
	char msg[PS_MAX_REPLY];
	int st = 0;
	if (r->err)
		return r->err;
	if (!read_reply(r->fd, 2000, &st, msg, sizeof(msg)) && st) {
		pr_err("page server %s: %s", r->where, msg);
		err = -st;
	} else {
		pr_err("page server %s: %s: %s", r->where, doing,
		       err == -EPIPE || err == -ECONNRESET || err == -EIO
			       ? "the connection was lost"
			       : strerror(-err));
	}
	r->err = err;
	return err;
}

int ps_send_all(int fd, struct iovec *iov, int n)
{
	struct msghdr mh = { .msg_iov = iov, .msg_iovlen = (size_t)n };
	while (mh.msg_iovlen) {
		ssize_t w = sendmsg(fd, &mh, MSG_NOSIGNAL);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			return errno == EAGAIN ? -ETIMEDOUT : -errno;
		}
		while (mh.msg_iovlen && (size_t)w >= mh.msg_iov->iov_len) {
			w -= (ssize_t)mh.msg_iov->iov_len;
			mh.msg_iov++;
			mh.msg_iovlen--;
		}
		if (mh.msg_iovlen) {
			mh.msg_iov->iov_base = (char *)mh.msg_iov->iov_base + w;
			mh.msg_iov->iov_len -= (size_t)w;
		}
	}
	return 0;
}

/* One message, whole; the caller holds the lock. */
static int send_locked(struct img_remote *r, enum ps_type type, uint32_t id, uint64_t off,
		       const void *data, size_t len, const char *doing)
{
	struct ps_msg m;
	ps_msg_encode(&m, type, id, (uint32_t)len, off);
	struct iovec iov[2] = { { &m, sizeof(m) }, { (void *)data, len } };
	int ret = r->err ?: ps_send_all(r->fd, iov, len ? 2 : 1);
	if (ret && !r->err)
		ret = remote_fail(r, ret, doing);
	return ret;
}

/* One message, whole, under the lock (writers of several processes share the socket). */
static int send_msg(struct img_remote *r, enum ps_type type, uint32_t id, uint64_t off,
		    const void *data, size_t len, const char *doing)
{
	pthread_mutex_lock(&r->mu);
	int ret = send_locked(r, type, id, off, data, len, doing);
	pthread_mutex_unlock(&r->mu);
	return ret;
}

static int connect_to(const char *addr, const char *port, char *where, size_t wlen)
{
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM }, *res, *ai;
	int e = getaddrinfo(addr, port, &hints, &res), fd = -1, ret = -EHOSTUNREACH;
	if (e) {
		pr_err("page server %s:%s: %s", addr, port, gai_strerror(e));
		return -EINVAL;
	}
	snprintf(where, wlen, "%s:%s", addr, port);
	for (ai = res; ai && fd < 0; ai = ai->ai_next) {
		fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK,
			    ai->ai_protocol);
		if (fd < 0) {
			ret = -errno;
			continue;
		}
		if (connect(fd, ai->ai_addr, ai->ai_addrlen) < 0 && errno != EINPROGRESS) {
			ret = -errno;
			close(fd);
			fd = -1;
			continue;
		}
		struct pollfd p = { .fd = fd, .events = POLLOUT };
		int soerr = 0;
		socklen_t sl = sizeof(soerr);
		int n = poll(&p, 1, PS_CONNECT_MS);
		if (n <= 0 || getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) < 0 || soerr) {
			ret = n == 0 ? -ETIMEDOUT : n < 0 ? -errno : soerr ? -soerr : -errno;
			close(fd);
			fd = -1;
		}
	}
	freeaddrinfo(res);
	if (fd < 0)
		return pr_errno(ret, "page server %s: connect", where);
	int one = 1;
	struct timeval tv = { .tv_sec = PS_SEND_TIMEOUT_S };
	if (fcntl(fd, F_SETFL, 0) < 0 ||
	    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one)) < 0 ||
	    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv)) < 0) {
		ret = pr_perror("page server %s: set up the connection", where);
		close(fd);
		return ret;
	}
	return fd;
}

int img_remote_connect(const char *addr, const char *port, const char *name, uint32_t flags,
		       struct img_remote **out)
{
	struct ps_hello h = { .version = htole32(PS_VERSION), .flags = htole32(flags) };
	if (name && strlen(name) >= sizeof(h.name)) {
		pr_err("page server: image name '%s' too long", name);
		return -ENAMETOOLONG;
	}
	if (name)
		strcpy(h.name, name);
	struct img_remote *r = calloc(1, sizeof(*r));
	if (!r)
		return -ENOMEM;
	pthread_mutex_init(&r->mu, NULL);
	r->fd = connect_to(addr, port, r->where, sizeof(r->where));
	if (r->fd < 0) {
		int ret = r->fd;
		pthread_mutex_destroy(&r->mu);
		free(r);
		return ret;
	}
	char msg[PS_MAX_REPLY];
	int st = 0, ret = send_msg(r, PS_HELLO, 0, 0, &h, sizeof(h), "send the hello");
	if (!ret) {
		ret = read_reply(r->fd, PS_CONNECT_MS, &st, msg, sizeof(msg));
		if (ret)
			pr_errno(ret == -EIO ? -ECONNRESET : ret,
				 "page server %s: no answer to the hello (not a stasis page "
				 "server?)",
				 r->where);
		else if (st)
			ret = pr_errno(-st, "page server %s: %s", r->where, msg);
	}
	if (ret) {
		img_remote_free(r);
		return ret;
	}
	pr_info("page server %s: connected (image %s)", r->where, name && *name ? name : ".");
	*out = r;
	return 0;
}

int img_remote_open(struct img_remote *r, const char *fname, uint32_t *id)
{
	size_t n = strlen(fname);
	pthread_mutex_lock(&r->mu);
	uint32_t i = r->next_id < PS_MAX_FILES ? r->next_id++ : PS_MAX_FILES;
	pthread_mutex_unlock(&r->mu);
	if (i == PS_MAX_FILES) {
		pr_err("page server %s: more than %u files in one image", r->where, PS_MAX_FILES);
		return -E2BIG;
	}
	*id = i;
	return send_msg(r, PS_OPEN, i, 0, fname, n, "send a file");
}

int img_remote_write(struct img_remote *r, uint32_t id, const void *buf, size_t len,
		     uint64_t off)
{
	const char *p = buf;
	while (len) {
		size_t n = len < PS_MAX_DATA ? len : PS_MAX_DATA;
		int ret = send_msg(r, PS_WRITE, id, off, p, n, "send pages");
		if (ret)
			return ret;
		p += n;
		off += n;
		len -= n;
	}
	return 0;
}

int img_remote_drop(struct img_remote *r, uint32_t id)
{
	return send_msg(r, PS_DROP, id, 0, NULL, 0, "drop a file");
}

/* File @name of @dfd, whole. */
static int send_file(struct img_remote *r, int dfd, const char *name)
{
	_cleanup_close_ int fd = openat(dfd, name, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return pr_perror("page server: open %s", name);
	uint32_t id;
	int ret = img_remote_open(r, name, &id);
	_cleanup_free_ char *buf = ret ? NULL : malloc(1u << 20);
	if (ret || !buf)
		return ret ?: -ENOMEM;
	uint64_t off = 0;
	for (;;) {
		ssize_t n = read(fd, buf, 1u << 20);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return pr_perror("page server: read %s", name);
		if (!n)
			return 0;
		ret = img_remote_write(r, id, buf, (size_t)n, off);
		if (ret)
			return ret;
		off += (uint64_t)n;
	}
}

int img_remote_commit(struct img_remote *r, int dfd)
{
	DIR *dir = fdopendir(dup(dfd));
	struct dirent *de;
	int ret = 0;
	if (!dir)
		return pr_perror("page server: read the image directory");
	while (!ret && (de = readdir(dir))) {
		if (!strcmp(de->d_name, IMG_PARENT_LINK)) {
			char target[PATH_MAX];
			ssize_t n = readlinkat(dfd, de->d_name, target, sizeof(target) - 1);
			if (n < 0) {
				ret = pr_perror("page server: read the parent link");
				break;
			}
			ret = send_msg(r, PS_LINK, 0, 0, target, (size_t)n, "send the parent link");
		} else if (img_kind_by_filename(de->d_name)) {
			ret = send_file(r, dfd, de->d_name);
		}
	}
	closedir(dir);
	if (!ret)
		ret = send_msg(r, PS_COMMIT, 0, 0, NULL, 0, "commit");
	if (ret)
		return ret;
	char msg[PS_MAX_REPLY];
	int st = 0;
	ret = read_reply(r->fd, PS_COMMIT_MS, &st, msg, sizeof(msg));
	if (ret)
		return remote_fail(r, ret == -EIO ? -ECONNRESET : ret, "wait for the commit");
	if (st)
		return r->err = pr_errno(-st, "page server %s: %s", r->where, msg);
	pr_info("page server %s: image committed (%s)", r->where, msg);
	return 0;
}

void img_remote_free(struct img_remote *r)
{
	if (!r)
		return;
	if (r->fd >= 0)
		close(r->fd);
	pthread_mutex_destroy(&r->mu);
	free(r);
}

/* The answer to a read-session request, the lock held: DATA for file @id (its offset in
 * *@off, at most @max bytes into @buf, their count in *@got), or the server's REPLY
 * saying why not. 0 or -errno, logged; sticky. */
static int read_data(struct img_remote *r, uint32_t id, uint64_t *off, void *buf, size_t max,
		     size_t *got, const char *doing)
{
	struct pollfd p = { .fd = r->fd, .events = POLLIN };
	struct ps_msg m;
	if (r->err)
		return r->err;
	int n = poll(&p, 1, PS_READ_MS);
	int ret = n <= 0 ? (n < 0 ? -errno : -ETIMEDOUT) : read_all(r->fd, &m, sizeof(m));
	if (ret)
		return remote_fail(r, ret, doing);
	uint16_t type = le16toh(m.type);
	uint32_t len = le32toh(m.len);
	if (le32toh(m.magic) == PS_MAGIC && type == PS_REPLY && len < PS_MAX_REPLY) {
		char msg[PS_MAX_REPLY];
		uint64_t st = le64toh(m.off);
		ret = read_all(r->fd, msg, len);
		msg[ret ? 0 : len] = '\0';
		for (uint32_t i = 0; i < len && !ret; i++)
			if ((unsigned char)msg[i] < ' ')
				msg[i] = ' ';
		pr_err("page server %s: %s: %s", r->where, doing, msg);
		return r->err = st && st < 4096 ? -(int)st : -EPROTO;
	}
	if (le32toh(m.magic) != PS_MAGIC || type != PS_DATA || le32toh(m.id) != id || len > max)
		return remote_fail(r, -EPROTO, doing);
	ret = len ? read_all(r->fd, buf, len) : 0;
	if (ret)
		return remote_fail(r, ret, doing);
	*off = le64toh(m.off);
	*got = len;
	return 0;
}

/* A READ of @n bytes at @off of file @id asked for, the lock held. */
static int ask_range(struct img_remote *r, uint32_t id, uint32_t n, uint64_t off)
{
	uint32_t wire = htole32(n);
	return send_locked(r, PS_READ, id, off, &wire, sizeof(wire), "ask for pages");
}

/* Its answer into @buf, the lock held. */
static int take_range(struct img_remote *r, uint32_t id, void *buf, uint32_t n, uint64_t off)
{
	uint64_t at = 0;
	size_t got = 0;
	int ret = read_data(r, id, &at, buf, n, &got, "read pages");
	if (!ret && (at != off || got != n))
		ret = r->err = pr_errno(-EIO, "page server %s: %zu bytes at %llu where %u at %llu "
				       "were asked for (a file shorter than its image says)",
				       r->where, got, (unsigned long long)at, n,
				       (unsigned long long)off);
	return ret;
}

/* The request sent ahead, before any other goes out on the connection: its answer read
 * into its buffer (the caller's again), its status returned. The lock held. */
static int pf_settle(struct img_remote *r)
{
	if (!r->pf.asked)
		return 0;
	r->pf.asked = false;
	return take_range(r, r->pf.id, r->pf.buf, r->pf.len, r->pf.off);
}

int img_remote_openr(struct img_remote *r, const char *path, uint32_t *id, uint64_t *size)
{
	size_t got = 0;
	int ret;
	pthread_mutex_lock(&r->mu);
	pf_settle(r);
	uint32_t i = r->next_id < PS_MAX_RFILES ? r->next_id++ : PS_MAX_RFILES;
	if (i == PS_MAX_RFILES)
		ret = pr_errno(-E2BIG, "page server %s: more than %u files read", r->where,
			       PS_MAX_RFILES);
	else
		ret = send_locked(r, PS_OPENR, i, 0, path, strlen(path), "open a file");
	if (!ret)
		ret = read_data(r, i, size, NULL, 0, &got, path);
	pthread_mutex_unlock(&r->mu);
	*id = i;
	return ret;
}

int img_remote_pread(struct img_remote *r, uint32_t id, void *buf, size_t len, uint64_t off)
{
	char *p = buf;
	while (len) {
		uint32_t n = len < PS_MAX_DATA ? (uint32_t)len : PS_MAX_DATA;
		int ret;
		pthread_mutex_lock(&r->mu);
		if (r->pf.asked && r->pf.id == id && r->pf.off == off && r->pf.len == n &&
		    r->pf.buf == p) { /* asked for ahead: its answer */
			ret = pf_settle(r);
		} else {
			pf_settle(r); /* (its failure sticks: the request below reports it) */
			ret = ask_range(r, id, n, off);
			if (!ret)
				ret = take_range(r, id, p, n, off);
		}
		pthread_mutex_unlock(&r->mu);
		if (ret)
			return ret;
		p += n;
		off += n;
		len -= n;
	}
	return 0;
}

int img_remote_preadc(struct img_remote *r, uint32_t id, uint64_t poff, uint32_t plen,
		      uint32_t sub_off, void *buf, uint32_t sub_len, uint64_t *piece_xxh)
{
	struct ps_readc q = { .piece_len = htole32(plen), .sub_off = htole32(sub_off),
			      .sub_len = htole32(sub_len) };
	if (!plen || plen > PS_MAX_DATA || !sub_len || sub_off > plen || sub_len > plen - sub_off)
		return -EINVAL;
	uint64_t at = 0;
	size_t got = 0;
	pthread_mutex_lock(&r->mu);
	pf_settle(r); /* (its failure sticks: the request below reports it) */
	int ret = send_locked(r, PS_READC, id, poff, &q, sizeof(q), "ask for pages");
	if (!ret)
		ret = read_data(r, id, &at, buf, sub_len + PS_READC_TAIL, &got, "read pages");
	if (!ret && (at != poff + sub_off || got != sub_len + PS_READC_TAIL))
		ret = r->err = pr_errno(-EIO, "page server %s: %zu bytes at %llu where %u at %llu "
				       "were asked for", r->where, got, (unsigned long long)at,
				       sub_len, (unsigned long long)(poff + sub_off));
	pthread_mutex_unlock(&r->mu);
	if (ret)
		return ret;
	uint64_t tail[2];
	memcpy(tail, (char *)buf + sub_len, sizeof(tail));
	if (XXH3_64bits(buf, sub_len) != le64toh(tail[1]))
		return pr_errno(-EBADMSG, "page server %s: %u bytes at %llu damaged on the way",
				r->where, sub_len, (unsigned long long)(poff + sub_off));
	*piece_xxh = le64toh(tail[0]);
	return 0;
}

int img_remote_prefetch(struct img_remote *r, uint32_t id, void *buf, size_t len, uint64_t off)
{
	if (!len || len > PS_MAX_DATA)
		return 0;
	pthread_mutex_lock(&r->mu);
	pf_settle(r);
	int ret = ask_range(r, id, (uint32_t)len, off);
	r->pf.asked = !ret;
	r->pf.id = id;
	r->pf.len = (uint32_t)len;
	r->pf.off = off;
	r->pf.buf = buf;
	pthread_mutex_unlock(&r->mu);
	return ret;
}
