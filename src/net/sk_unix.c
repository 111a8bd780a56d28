/* AF_UNIX socketpairs (row fd_unix_ops of the files module, kind FILE_UNIX_SK,
 * FileDesc.unix_sk): one end per description, both ends in the dumped tree.
 *
 * Dump, from outside the frozen task, on a pidfd_getfd duplicate of the socket (the same
 * socket, not a copy):
 *   - sock_diag (NETLINK_SOCK_DIAG, UNIX_DIAG by inode) gives the type, state, name,
 *     peer inode and shutdown bits; only connected, unnamed sockets are accepted (what
 *     socketpair(2) makes); whether the peer is in the tree is checked by the merge hook;
 *   - the queue is read with MSG_PEEK at an explicit SO_PEEK_OFF, so nothing is
 *     consumed: a stream is read as bytes (SIOCINQ tells how many), datagrams and
 *     seqpackets one message per call (MSG_TRUNC tells the real length), boundaries
 *     kept. The task's own SO_PEEK_OFF is put back afterwards. A message carrying
 *     file descriptors (SCM_RIGHTS) is refused: the peek installed them in stasis, they
 *     are closed at once. Credentials (SCM_CREDENTIALS) are not kept: at restore the
 *     queued data carries the restorer's.
 *
 * Restore: socketpair(type) once per pair; the data queued at end A was sent by B, so it
 * is sent again from B (one send per message), with both send buffers raised while
 * filling and set back to the dumped sizes after; then SO_PASSCRED, SO_PEEK_OFF and the
 * shutdown bits (the caller sets the status flags). Both ends are made together: in the
 * restore child when both are in the task (open_task), else once in stasis (open_tree).
 *
 * Limitation: a zero-length datagram queued at an end that is shut down for reading
 * cannot be told from the end of the queue (both peek as 0 bytes); it is dropped. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <linux/sock_diag.h>
#include <linux/sockios.h>
#include <linux/unix_diag.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/log.h"
#include "helper/client.h"
#include "core/util.h"
#include "files/fd_ops.h"
#include "ns/nsrun.h"
#include "sys/syscalls.h"

#ifndef TCP_ESTABLISHED
#define TCP_ESTABLISHED 1
#endif
#define TCP_LISTEN_STATE 10
#define SK_RCV_SHUTDOWN 1
#define SK_SEND_SHUTDOWN 2
#define CMSG_BUF 4096
/* Images are untrusted: bounds of what one end's queue may hold. */
#define SK_QUEUE_MAX (64u << 20)
#define SK_MSGS_MAX (1u << 20)

struct sk_diag {
	uint8_t type, state, shutdown;
	bool has_peer, has_name;
	uint32_t peer;
};

static const char *type_name(unsigned int t)
{
	switch (t) {
	case SOCK_STREAM: return "SOCK_STREAM";
	case SOCK_DGRAM: return "SOCK_DGRAM";
	case SOCK_SEQPACKET: return "SOCK_SEQPACKET";
	default: return "?";
	}
}

static int sk_unsupported(pid_t pid, int fd, const char *link, const char *what)
{
	pr_err("fd %d of pid %d is %s (%s): not supported yet", fd, pid, what, link);
	return -EOPNOTSUPP;
}

/* A NETLINK_SOCK_DIAG socket in the network namespace of @pid (sock_diag only sees
 * the sockets of the namespace the netlink socket was created in). */
static int diag_socket(pid_t pid)
{
	char what[64];
	snprintf(what, sizeof(what), "the network namespace of pid %d", pid);
	_cleanup_close_ int ns = ns_open_of(pid, "net", "sock_diag");
	if (ns < 0)
		return ns;
	return ns_socket_in(-1, ns, AF_NETLINK, SOCK_DGRAM | SOCK_CLOEXEC, NETLINK_SOCK_DIAG,
			    "sock_diag", what);
}

/* sock_diag of the AF_UNIX socket with inode @ino. */
static int diag_query(pid_t pid, int fd, uint64_t ino, struct sk_diag *out)
{
	struct {
		struct nlmsghdr h;
		struct unix_diag_req r;
	} req;
	_Alignas(struct nlmsghdr) char buf[8192];

	if (ino > UINT32_MAX) {
		pr_err("fd %d of pid %d: socket inode %llu does not fit sock_diag", fd, pid,
		       (unsigned long long)ino);
		return -EOVERFLOW;
	}
	_cleanup_close_ int nl = diag_socket(pid);
	if (nl < 0)
		return nl;
	struct timeval tv = { .tv_sec = 5 };
	(void)setsockopt(nl, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	memset(&req, 0, sizeof(req));
	req.h.nlmsg_len = sizeof(req);
	req.h.nlmsg_type = SOCK_DIAG_BY_FAMILY;
	req.h.nlmsg_flags = NLM_F_REQUEST;
	req.h.nlmsg_seq = 1;
	req.r.sdiag_family = AF_UNIX;
	req.r.udiag_states = ~0u;
	req.r.udiag_ino = (uint32_t)ino;
	req.r.udiag_show = UDIAG_SHOW_NAME | UDIAG_SHOW_PEER | UDIAG_SHOW_RQLEN;
	req.r.udiag_cookie[0] = req.r.udiag_cookie[1] = ~0u;
	if (send(nl, &req, sizeof(req), 0) != (ssize_t)sizeof(req))
		return pr_perror("fd %d of pid %d: sock_diag request", fd, pid);
	ssize_t n = recv(nl, buf, sizeof(buf), 0);
	if (n < 0)
		return pr_perror("fd %d of pid %d: sock_diag reply", fd, pid);
	const struct nlmsghdr *h = (const struct nlmsghdr *)buf;
	if (!NLMSG_OK(h, (size_t)n)) {
		pr_err("fd %d of pid %d: short sock_diag reply", fd, pid);
		return -EIO;
	}
	if (h->nlmsg_type == NLMSG_ERROR) {
		const struct nlmsgerr *e = NLMSG_DATA(h);
		int err = e->error ? e->error : -EIO;
		return pr_errno(err, "fd %d of pid %d: sock_diag of unix socket %llu", fd, pid,
				(unsigned long long)ino);
	}
	if (h->nlmsg_type != SOCK_DIAG_BY_FAMILY ||
	    h->nlmsg_len < NLMSG_LENGTH(sizeof(struct unix_diag_msg))) {
		pr_err("fd %d of pid %d: unexpected sock_diag reply type %u", fd, pid,
		       h->nlmsg_type);
		return -EIO;
	}
	const struct unix_diag_msg *m = NLMSG_DATA(h);
	if (m->udiag_ino != (uint32_t)ino) {
		pr_err("fd %d of pid %d: sock_diag answered for inode %u, asked %llu", fd, pid,
		       m->udiag_ino, (unsigned long long)ino);
		return -EIO;
	}
	memset(out, 0, sizeof(*out));
	out->type = m->udiag_type;
	out->state = m->udiag_state;
	int len = (int)(h->nlmsg_len - NLMSG_LENGTH(sizeof(*m)));
	for (const struct rtattr *a = (const struct rtattr *)(m + 1); RTA_OK(a, len);
	     a = RTA_NEXT(a, len)) {
		switch (a->rta_type) {
		case UNIX_DIAG_NAME:
			out->has_name = true;
			break;
		case UNIX_DIAG_PEER:
			if (RTA_PAYLOAD(a) >= sizeof(uint32_t)) {
				memcpy(&out->peer, RTA_DATA(a), sizeof(uint32_t));
				out->has_peer = out->peer != 0;
			}
			break;
		case UNIX_DIAG_SHUTDOWN:
			if (RTA_PAYLOAD(a) >= 1)
				out->shutdown = *(const uint8_t *)RTA_DATA(a);
			break;
		default:
			break;
		}
	}
	return 0;
}

/* Check the control messages of one peek: file descriptors in flight are refused (and
 * the copies the peek installed in stasis closed). */
static int check_cmsgs(pid_t pid, int fd, struct msghdr *mh)
{
	int ret = 0;

	for (struct cmsghdr *cm = CMSG_FIRSTHDR(mh); cm; cm = CMSG_NXTHDR(mh, cm)) {
		if (cm->cmsg_level != SOL_SOCKET || cm->cmsg_type != SCM_RIGHTS)
			continue;
		size_t nfd = (cm->cmsg_len - CMSG_LEN(0)) / sizeof(int);
		for (size_t i = 0; i < nfd; i++) {
			int x;
			memcpy(&x, CMSG_DATA(cm) + i * sizeof(int), sizeof(int));
			close(x);
		}
		if (!ret) {
			pr_err("fd %d of pid %d is a unix socket with file descriptors in flight "
			       "(SCM_RIGHTS): not supported yet", fd, pid);
			ret = -EOPNOTSUPP;
		}
	}
	if (!ret && (mh->msg_flags & MSG_CTRUNC)) {
		pr_err("fd %d of pid %d: control data of a queued unix message truncated "
		       "(file descriptors in flight?): not supported yet", fd, pid);
		ret = -EOPNOTSUPP;
	}
	return ret;
}

static ssize_t peek_at(int dup, int off, void *buf, size_t len, int extra, struct msghdr *mh,
		       char *cbuf)
{
	if (setsockopt(dup, SOL_SOCKET, SO_PEEK_OFF, &off, sizeof(off)))
		return -errno;
	struct iovec iov = { .iov_base = buf, .iov_len = len };
	memset(mh, 0, sizeof(*mh));
	mh->msg_iov = &iov;
	mh->msg_iovlen = 1;
	mh->msg_control = cbuf;
	mh->msg_controllen = CMSG_BUF;
	ssize_t r = recvmsg(dup, mh, MSG_PEEK | MSG_DONTWAIT | MSG_CMSG_CLOEXEC | extra);
	return r < 0 ? -errno : r;
}

static int peek_stream(pid_t pid, int fd, int dup, UnixSk *u)
{
	_Alignas(struct cmsghdr) char cbuf[CMSG_BUF];
	struct msghdr mh;
	int queued = 0;

	if (ioctl(dup, SIOCINQ, &queued) < 0)
		return pr_perror("SIOCINQ on fd %d of pid %d", fd, pid);
	if (queued <= 0)
		return 0;
	if ((unsigned int)queued > SK_QUEUE_MAX) {
		pr_err("fd %d of pid %d: %d bytes queued in a unix socket, more than %u: not "
		       "supported yet", fd, pid, queued, SK_QUEUE_MAX);
		return -EOPNOTSUPP;
	}
	_cleanup_free_ uint8_t *buf = malloc((size_t)queued);
	if (!buf)
		return pr_errno(-ENOMEM, "queue of fd %d of pid %d", fd, pid);
	size_t got = 0;
	while (got < (size_t)queued) {
		ssize_t r = peek_at(dup, (int)got, buf + got, (size_t)queued - got, 0, &mh, cbuf);
		if (r < 0)
			return pr_errno((int)r, "peek at the queue of fd %d of pid %d", fd, pid);
		int ret = check_cmsgs(pid, fd, &mh);
		if (ret)
			return ret;
		if (r == 0) {
			pr_err("fd %d of pid %d: peeked %zu of %d queued bytes (out-of-band data?): "
			       "not supported yet", fd, pid, got, queued);
			return -EOPNOTSUPP;
		}
		got += (size_t)r;
	}
	u->has_data = true;
	u->data.data = steal_ptr(&buf);
	u->data.len = got;
	return 0;
}

static int peek_msgs(pid_t pid, int fd, int dup, bool rcv_shut, UnixSk *u)
{
	_Alignas(struct cmsghdr) char cbuf[CMSG_BUF];
	struct msghdr mh;
	size_t cap = 64 << 10, total = 0, nmsg_cap = 0;
	_cleanup_free_ uint8_t *buf = malloc(cap);
	int pos = 0;

	if (!buf)
		return pr_errno(-ENOMEM, "queue of fd %d of pid %d", fd, pid);
	for (;;) {
		ssize_t r = peek_at(dup, pos, buf, cap, MSG_TRUNC, &mh, cbuf);
		if (r == -EAGAIN)
			break;
		if (r < 0)
			return pr_errno((int)r, "peek at the queue of fd %d of pid %d", fd, pid);
		int ret = check_cmsgs(pid, fd, &mh);
		if (ret)
			return ret;
		if (r == 0 && rcv_shut)
			break; /* end of queue, or an empty message: cannot tell */
		if ((size_t)r > cap) {
			if ((size_t)r > SK_QUEUE_MAX - total) {
				pr_err("fd %d of pid %d: more than %u bytes queued in a unix socket: "
				       "not supported yet", fd, pid, SK_QUEUE_MAX);
				return -EOPNOTSUPP;
			}
			uint8_t *nb = realloc(buf, (size_t)r);
			if (!nb)
				return pr_errno(-ENOMEM, "queue of fd %d of pid %d", fd, pid);
			buf = nb;
			cap = (size_t)r;
			continue; /* again from the same offset */
		}
		if ((size_t)r > SK_QUEUE_MAX - total || u->n_msgs >= SK_MSGS_MAX ||
		    (size_t)pos + (size_t)r > INT32_MAX) {
			pr_err("fd %d of pid %d: more than %u bytes or %u messages queued in a unix "
			       "socket: not supported yet", fd, pid, SK_QUEUE_MAX, SK_MSGS_MAX);
			return -EOPNOTSUPP;
		}
		if (u->n_msgs == nmsg_cap) {
			size_t nc = nmsg_cap ? nmsg_cap * 2 : 16;
			ProtobufCBinaryData *nm = realloc(u->msgs, nc * sizeof(*nm));
			if (!nm)
				return pr_errno(-ENOMEM, "queue of fd %d of pid %d", fd, pid);
			u->msgs = nm;
			nmsg_cap = nc;
		}
		ProtobufCBinaryData *m = &u->msgs[u->n_msgs];
		m->len = (size_t)r;
		m->data = malloc(r ? (size_t)r : 1);
		if (!m->data)
			return pr_errno(-ENOMEM, "queue of fd %d of pid %d", fd, pid);
		memcpy(m->data, buf, (size_t)r);
		u->n_msgs++;
		total += (size_t)r;
		pos += (int)r;
	}
	return 0;
}

static int get_int_opt(int sk, int opt, int *val)
{
	socklen_t l = sizeof(*val);
	return getsockopt(sk, SOL_SOCKET, opt, val, &l) ? -errno : 0;
}

/* Dump, fd @fd of @pid, @dup its pidfd_getfd duplicate (shares the socket with the task),
 * @ino its inode: fill d->unix_sk (type, peer, shutdown, options and the queued data,
 * peeked without consuming it). Anything but a connected unnamed AF_UNIX socket, or
 * file descriptors in flight, is a logged -EOPNOTSUPP. */
static int sk_unix_dump(pid_t pid, int fd, int dup, const char *link, uint64_t ino,
			FileDesc *d)
{
	int domain = -1, type = -1, ret;

	if ((ret = get_int_opt(dup, SO_DOMAIN, &domain)))
		return pr_errno(ret, "SO_DOMAIN of fd %d of pid %d", fd, pid);
	if (domain != AF_UNIX) {
		char what[64];
		snprintf(what, sizeof(what), "a socket of address family %d", domain);
		return sk_unsupported(pid, fd, link, what);
	}
	if ((ret = get_int_opt(dup, SO_TYPE, &type)))
		return pr_errno(ret, "SO_TYPE of fd %d of pid %d", fd, pid);
	if (type != SOCK_STREAM && type != SOCK_DGRAM && type != SOCK_SEQPACKET)
		return sk_unsupported(pid, fd, link, "a unix socket of an unknown type");

	struct sk_diag dg;
	ret = diag_query(pid, fd, ino, &dg);
	if (ret)
		return ret;
	if (dg.type != type) {
		pr_err("fd %d of pid %d: sock_diag type %u, SO_TYPE %d", fd, pid, dg.type, type);
		return -EIO;
	}
	if (dg.state == TCP_LISTEN_STATE)
		return sk_unsupported(pid, fd, link, "a listening unix socket");
	if (dg.has_name)
		return sk_unsupported(pid, fd, link, "a bound (named) unix socket");
	if (!dg.has_peer || dg.state != TCP_ESTABLISHED)
		return sk_unsupported(pid, fd, link, "an unconnected unix socket (or its peer "
						     "is closed)");

	UnixSk *u = malloc(sizeof(*u));
	if (!u)
		return pr_errno(-ENOMEM, "fd %d of pid %d", fd, pid);
	unix_sk__init(u);
	d->unix_sk = u;
	u->ino = ino;
	u->peer_ino = dg.peer;
	u->type = (uint32_t)type;
	u->has_shutdown = true;
	u->shutdown = dg.shutdown & (SK_RCV_SHUTDOWN | SK_SEND_SHUTDOWN);

	int sndbuf = 0, rcvbuf = 0, passcred = 0, peek_off = -1;
	if ((ret = get_int_opt(dup, SO_SNDBUF, &sndbuf)) ||
	    (ret = get_int_opt(dup, SO_RCVBUF, &rcvbuf)) ||
	    (ret = get_int_opt(dup, SO_PASSCRED, &passcred)) ||
	    (ret = get_int_opt(dup, SO_PEEK_OFF, &peek_off)))
		return pr_errno(ret, "socket options of fd %d of pid %d", fd, pid);
	u->has_sndbuf = u->has_rcvbuf = u->has_passcred = u->has_peek_off = true;
	u->sndbuf = (uint32_t)sndbuf;
	u->rcvbuf = (uint32_t)rcvbuf;
	u->passcred = passcred != 0;
	u->peek_off = peek_off;

	if (type == SOCK_STREAM)
		ret = peek_stream(pid, fd, dup, u);
	else
		ret = peek_msgs(pid, fd, dup, (u->shutdown & SK_RCV_SHUTDOWN) != 0, u);
	/* the task's own peek offset back, whatever happened */
	if (setsockopt(dup, SOL_SOCKET, SO_PEEK_OFF, &peek_off, sizeof(peek_off)) && !ret)
		ret = pr_perror("fd %d of pid %d: cannot put back SO_PEEK_OFF %d", fd, pid,
				peek_off);
	if (!ret)
		pr_debug("pid %d fd %d: unix %s socket %llu, peer %llu, shutdown %u, %zu bytes "
			 "/ %zu messages queued", pid, fd, type_name((unsigned int)type),
			 (unsigned long long)ino, (unsigned long long)u->peer_ino, u->shutdown,
			 u->has_data ? u->data.len : 0, u->n_msgs);
	return ret;
}

static int sk_unix_validate(const FileDesc *d, const struct blob_reader *blobs)
{
	(void)blobs;
	const UnixSk *u = d->unix_sk;
	if (!u) {
		pr_err("files image: unix socket %u has no socket data", d->id);
		return -EINVAL;
	}
	if (u->type != SOCK_STREAM && u->type != SOCK_DGRAM && u->type != SOCK_SEQPACKET) {
		pr_err("files image: unix socket %u has unknown type %u", d->id, u->type);
		return -EINVAL;
	}
	if (u->ino == u->peer_ino || (u->has_shutdown && u->shutdown > 3) ||
	    (u->has_peek_off && u->peek_off < -1)) {
		pr_err("files image: unix socket %u has bad socket data", d->id);
		return -EINVAL;
	}
	size_t total = u->has_data ? u->data.len : 0;
	if ((u->type == SOCK_STREAM && u->n_msgs) ||
	    (u->type != SOCK_STREAM && u->has_data) || u->n_msgs > SK_MSGS_MAX) {
		pr_err("files image: unix socket %u has queued data of the wrong shape", d->id);
		return -EINVAL;
	}
	for (size_t i = 0; i < u->n_msgs; i++) {
		if (u->msgs[i].len > SK_QUEUE_MAX - total) {
			total = SK_QUEUE_MAX + 1ull;
			break;
		}
		total += u->msgs[i].len;
	}
	if (total > SK_QUEUE_MAX) {
		pr_err("files image: unix socket %u queues more than %u bytes", d->id,
		       SK_QUEUE_MAX);
		return -EINVAL;
	}
	return 0;
}

/* True if @b is the other end of @a (and @a of @b), same type. */
static bool sk_unix_is_peer(const FileDesc *a, const FileDesc *b)
{
	return a != b && a->kind == FILE_KIND__FILE_UNIX_SK && b->kind == FILE_KIND__FILE_UNIX_SK &&
	       a->unix_sk && b->unix_sk && a->unix_sk->peer_ino == b->unix_sk->ino &&
	       b->unix_sk->peer_ino == a->unix_sk->ino && a->unix_sk->type == b->unix_sk->type;
}

/* Raise @sk's send buffer so that a queue that fitted at dump (under other skb sizes)
 * fits again. */
static void raise_sndbuf(int sk)
{
	int big = INT_MAX / 4;
	if (setsockopt(sk, SOL_SOCKET, SO_SNDBUFFORCE, &big, sizeof(big)))
		(void)setsockopt(sk, SOL_SOCKET, SO_SNDBUF, &big, sizeof(big));
}

/* The dumped size of buffer @opt (getsockopt's doubled value); warn if not reachable. */
static int set_buf(int sk, int opt, int force, uint32_t val, uint64_t ino)
{
	int half = (int)(val / 2), cur = 0;
	if (!val)
		return 0;
	if (setsockopt(sk, SOL_SOCKET, opt, &half, sizeof(half)))
		return pr_perror("restore unix socket %llu: setsockopt(%d, %d)",
				 (unsigned long long)ino, opt, half);
	if (!get_int_opt(sk, opt, &cur) && (uint32_t)cur == val)
		return 0;
	if (!setsockopt(sk, SOL_SOCKET, force, &half, sizeof(half)) && !get_int_opt(sk, opt, &cur) &&
	    (uint32_t)cur == val)
		return 0;
	/* over {w,r}mem_max without CAP_NET_ADMIN: the stasis helper may force it */
	struct helper *h = (errno == EPERM) ? helper_default() : NULL;
	if (h && !helper_sockbuf_force(h, sk, opt == SO_SNDBUF ? half : -1,
				       opt == SO_RCVBUF ? half : -1) &&
	    !get_int_opt(sk, opt, &cur) && (uint32_t)cur == val)
		return 0;
	pr_warn("restore unix socket %llu: buffer option %d is %d, was %u", (unsigned long long)ino,
		opt, cur, val);
	return 0;
}

/* Queue what @u held (it is @rcv's end) by sending it from @snd. */
static int fill_queue(int snd, const UnixSk *u)
{
	if (u->type == SOCK_STREAM) {
		if (!u->has_data)
			return 0;
		size_t off = 0;
		while (off < u->data.len) {
			ssize_t r = send(snd, u->data.data + off, u->data.len - off,
					 MSG_DONTWAIT | MSG_NOSIGNAL);
			if (r <= 0)
				return pr_perror("restore unix socket %llu: queue %zu bytes (at %zu)",
						 (unsigned long long)u->ino, u->data.len, off);
			off += (size_t)r;
		}
		return 0;
	}
	for (size_t i = 0; i < u->n_msgs; i++) {
		ssize_t r = send(snd, u->msgs[i].data, u->msgs[i].len, MSG_DONTWAIT | MSG_NOSIGNAL);
		if (r != (ssize_t)u->msgs[i].len)
			return pr_perror("restore unix socket %llu: queue message %zu of %zu (%zu "
					 "bytes)", (unsigned long long)u->ino, i, u->n_msgs,
					 u->msgs[i].len);
	}
	return 0;
}

static int finish_end(int sk, const FileDesc *d)
{
	const UnixSk *u = d->unix_sk;
	unsigned long long ino = (unsigned long long)u->ino;
	int ret = 0;

	if (u->has_sndbuf)
		ret = set_buf(sk, SO_SNDBUF, SO_SNDBUFFORCE, u->sndbuf, u->ino);
	if (!ret && u->has_rcvbuf)
		ret = set_buf(sk, SO_RCVBUF, SO_RCVBUFFORCE, u->rcvbuf, u->ino);
	if (ret)
		return ret;
	int on = u->has_passcred && u->passcred;
	if (on && setsockopt(sk, SOL_SOCKET, SO_PASSCRED, &on, sizeof(on)))
		return pr_perror("restore unix socket %llu: SO_PASSCRED", ino);
	if (u->has_peek_off && u->peek_off >= 0 &&
	    setsockopt(sk, SOL_SOCKET, SO_PEEK_OFF, &u->peek_off, sizeof(u->peek_off)))
		return pr_perror("restore unix socket %llu: SO_PEEK_OFF %d", ino, u->peek_off);
	return 0;
}

static int apply_shutdown(int sk, const UnixSk *u)
{
	unsigned int s = u->has_shutdown ? u->shutdown : 0;
	int how = s == 3 ? SHUT_RDWR : s == SK_SEND_SHUTDOWN ? SHUT_WR : s ? SHUT_RD : -1;
	if (how >= 0 && shutdown(sk, how))
		return pr_perror("restore unix socket %llu: shutdown(%d)",
				 (unsigned long long)u->ino, how);
	return 0;
}

/* Restore: create the socketpair of ends @a and @b, queue each end's data (sent from
 * the other end, message boundaries kept), set options and shutdown state. *fa / *fb get
 * close-on-exec, non-blocking fds (any numbers); the caller sets the status flags. */
static int sk_unix_open_pair(const FileDesc *a, const FileDesc *b, int *fa, int *fb)
{
	int sv[2];

	if (!sk_unix_is_peer(a, b)) {
		pr_err("files image: unix sockets %u and %u are not the two ends of one pair",
		       a->id, b->id);
		return -EINVAL;
	}
	if (socketpair(AF_UNIX, (int)a->unix_sk->type | SOCK_CLOEXEC | SOCK_NONBLOCK, 0, sv))
		return pr_perror("restore unix socket %llu: socketpair(%s)",
				 (unsigned long long)a->unix_sk->ino, type_name(a->unix_sk->type));
	_cleanup_close_ int sa = sv[0];
	_cleanup_close_ int sb = sv[1];
	raise_sndbuf(sa);
	raise_sndbuf(sb);
	int ret = fill_queue(sb, a->unix_sk);
	if (!ret)
		ret = fill_queue(sa, b->unix_sk);
	if (!ret)
		ret = finish_end(sa, a);
	if (!ret)
		ret = finish_end(sb, b);
	if (!ret)
		ret = apply_shutdown(sa, a->unix_sk);
	if (!ret)
		ret = apply_shutdown(sb, b->unix_sk);
	if (ret)
		return ret;
	*fa = take_fd(&sa);
	*fb = take_fd(&sb);
	return 0;
}

/* ---- the row ------------------------------------------------------------------- */

static int unix_classify(const struct dump_ctx *c, struct fd_ent *e)
{
	if (!S_ISSOCK(e->st.st_mode) && !str_starts(e->link, "socket:"))
		return 0;
	_cleanup_close_ int dup = fd_dup(c, e);
	if (dup < 0)
		return dup;
	int domain = -1, ret = get_int_opt(dup, SO_DOMAIN, &domain);
	if (ret)
		return pr_errno(ret, "SO_DOMAIN of fd %d of pid %d", e->fd, c->pid);
	if (domain != AF_UNIX)
		return 0; /* the rows of other families, else kinds.c refuses it */
	/* type, peer and state are checked when it is dumped */
	e->kind = FILE_KIND__FILE_UNIX_SK;
	return 1;
}

static int unix_dump(const struct dump_ctx *c, const struct fd_ent *e, FileDesc *d)
{
	_cleanup_close_ int dup = fd_dup(c, e);
	if (dup < 0)
		return dup;
	return sk_unix_dump(c->pid, e->fd, dup, e->link, e->st.st_ino, d);
}

/* Every unix socket's other end must be in the tree (this process or another). */
static int unix_merge(struct dump_ctx **procs, size_t n)
{
	for (size_t p = 0; p < n; p++) {
		const Files *f = procs[p]->files;
		for (size_t i = 0; i < f->n_files; i++) {
			const FileDesc *d = f->files[i];
			if (d->kind != FILE_KIND__FILE_UNIX_SK)
				continue;
			bool found = false;
			for (size_t q = 0; q < n && !found; q++)
				for (size_t j = 0; j < procs[q]->files->n_files && !found; j++)
					found = sk_unix_is_peer(d, procs[q]->files->files[j]);
			if (!found) {
				pr_err("fd %d of pid %d is a unix socket (%s) whose peer "
				       "(socket:[%llu]) is outside the dumped tree: not supported yet",
				       fd_desc_fd(f, i), procs[p]->pid, d->link ?: "?",
				       (unsigned long long)d->unix_sk->peer_ino);
				return -EOPNOTSUPP;
			}
		}
	}
	return 0;
}

/* In the restore child: the socketpair of description @i and its peer (in this task),
 * data queued, both ends staged. */
static int unix_open_task(struct fd_rst *s, size_t i)
{
	const Files *f = s->f;
	ssize_t peer = -1;

	for (size_t j = 0; j < f->n_files; j++)
		if (sk_unix_is_peer(f->files[i], f->files[j])) {
			peer = (ssize_t)j;
			break;
		}
	if (peer < 0) {
		pr_err("files image: unix socket %llu (fd %d) has no other end in the task",
		       (unsigned long long)f->files[i]->unix_sk->ino, fd_desc_fd(f, i));
		return -EINVAL;
	}
	size_t j = (size_t)peer;
	int a, b;
	int ret = sk_unix_open_pair(f->files[i], f->files[j], &a, &b);
	if (ret)
		return ret;
	ret = fd_stage(a, s->stage_lo, fd_desc_fd(f, i), fd_desc_name(f->files[i]));
	if (ret < 0) {
		close(b);
		return ret;
	}
	s->staged[i] = ret;
	ret = fd_stage(b, s->stage_lo, fd_desc_fd(f, j), fd_desc_name(f->files[j]));
	if (ret < 0)
		return ret;
	s->staged[j] = ret;
	return 0;
}

/* In stasis, for a tree: the socketpair of @d and its peer, status flags set. */
static int unix_open_tree(struct fd_tree *t, const FileDesc *d)
{
	const FileDesc *o = NULL;
	for (size_t p = 0; p < t->n && !o; p++)
		for (size_t i = 0; i < t->f[p]->n_files && !o; i++)
			if (sk_unix_is_peer(d, t->f[p]->files[i]))
				o = t->f[p]->files[i];
	if (!o || t->gfd[o->id] >= 0) {
		pr_err("files image: unix socket %llu has no other end in the tree",
		       (unsigned long long)d->unix_sk->ino);
		return -EINVAL;
	}
	int sa, sb;
	int ret = sk_unix_open_pair(d, o, &sa, &sb);
	if (ret)
		return ret;
	if (fcntl(sa, F_SETFL, (int)(d->flags & SETFL_MASK)) < 0 ||
	    fcntl(sb, F_SETFL, (int)(o->flags & SETFL_MASK)) < 0) {
		ret = pr_perror("restore: status flags of unix socket %llu",
				(unsigned long long)d->unix_sk->ino);
		close(sa);
		close(sb);
		return ret;
	}
	ret = fd_gfd_place(sa, t->base, &t->gfd[d->id]);
	if (ret) {
		close(sb);
		return ret;
	}
	return fd_gfd_place(sb, t->base, &t->gfd[o->id]);
}

const struct fd_ops fd_unix_ops = {
	.name = "unix socket",
	.kind = FILE_KIND__FILE_UNIX_SK,
	.flags = FD_OPS_NETNS,
	.classify = unix_classify,
	.dump = unix_dump,
	.merge = unix_merge,
	.validate = sk_unix_validate,
	.open_task = unix_open_task,
	.open_tree = unix_open_tree,
};
