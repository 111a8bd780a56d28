/* Queued data of unix sockets: read at dump with MSG_PEEK at an explicit SO_PEEK_OFF, so
 * nothing is consumed (a stream as bytes, SIOCINQ telling how many; datagrams and
 * seqpackets one message per call, MSG_TRUNC telling the real length, with the sender's
 * address of each datagram), and sent again at restore from the peer or from a socket
 * bound to the sender's address (sk_unix_rst.c chooses it); the socket options and
 * shutdown bits set once the queue is filled.
 *
 * A message carrying file descriptors (SCM_RIGHTS) is refused: the peek installed them
 * in stasis, they are closed at once. Credentials (SCM_CREDENTIALS) are not kept: at
 * restore a queued message would carry the credentials of the process that sent it again
 * (stasis, or the restored task itself), so a socket whose reader takes them
 * (SO_PASSCRED, SO_PASSPIDFD) is refused at dump when messages are queued (sk_unix.c).
 *
 * Limitation: a zero-length datagram queued at an end that is shut down for reading
 * cannot be told from the end of the queue (both peek as 0 bytes); it is dropped. */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <linux/sockios.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "core/log.h"
#include "core/util.h"
#include "helper/client.h"
#include "net/sk_unix_int.h"
#include "net/sockopt.h"

#define CMSG_BUF 4096

static ssize_t peek_at(int dup, int off, void *buf, size_t len, int extra, struct msghdr *mh,
		       char *cbuf, struct sockaddr_un *from)
{
	if (setsockopt(dup, SOL_SOCKET, SO_PEEK_OFF, &off, sizeof(off)))
		return -errno;
	struct iovec iov = { .iov_base = buf, .iov_len = len };
	memset(mh, 0, sizeof(*mh));
	mh->msg_iov = &iov;
	mh->msg_iovlen = 1;
	mh->msg_control = cbuf;
	mh->msg_controllen = CMSG_BUF;
	if (from) {
		memset(from, 0, sizeof(*from));
		mh->msg_name = from;
		mh->msg_namelen = sizeof(*from);
	}
	ssize_t r = recvmsg(dup, mh, MSG_PEEK | MSG_DONTWAIT | MSG_CMSG_CLOEXEC | extra);
	return r < 0 ? -errno : r;
}

/* The control messages of one peek: the file descriptors in flight (SCM_RIGHTS) are
 * counted and closed (the peek installed copies in stasis; the merge hook peeks again to
 * identify them); *@nfds gets how many. Truncated control data is refused. */
static int scan_cmsgs(pid_t pid, int fd, struct msghdr *mh, size_t *nfds)
{
	*nfds = 0;
	for (struct cmsghdr *cm = CMSG_FIRSTHDR(mh); cm; cm = CMSG_NXTHDR(mh, cm)) {
		if (cm->cmsg_level != SOL_SOCKET || cm->cmsg_type != SCM_RIGHTS)
			continue;
		size_t n = (cm->cmsg_len - CMSG_LEN(0)) / sizeof(int);
		for (size_t i = 0; i < n; i++) {
			int x;
			memcpy(&x, CMSG_DATA(cm) + i * sizeof(int), sizeof(int));
			close(x);
		}
		*nfds += n;
	}
	if (mh->msg_flags & MSG_CTRUNC) {
		pr_err("fd %d of pid %d: control data of a queued unix message truncated: not "
		       "supported yet",
		       fd, pid);
		return -EOPNOTSUPP;
	}
	return 0;
}

/* Record that message (or stream chunk) @at carries @n descriptors, ids filled by the
 * merge hook. */
static int add_rights(UnixSk *u, uint64_t at, size_t n)
{
	UnixRights **nr = realloc(u->rights, (u->n_rights + 1) * sizeof(*nr));
	if (!nr)
		return -ENOMEM;
	u->rights = nr;
	UnixRights *r = malloc(sizeof(*r));
	uint32_t *ids = calloc(n, sizeof(*ids));
	if (!r || !ids) {
		free(r);
		free(ids);
		return -ENOMEM;
	}
	unix_rights__init(r);
	r->at = at;
	r->files = ids;
	r->n_files = n;
	u->rights[u->n_rights++] = r;
	return 0;
}

int sk_unix_peek_fds(int dup, int off, size_t len, bool msg, int *fds, size_t max, size_t *n)
{
	_Alignas(struct cmsghdr) char cbuf[CMSG_BUF];
	struct msghdr mh;
	char one;
	_cleanup_free_ char *buf = malloc(len ? len : 1);
	*n = 0;
	if (!buf)
		return -ENOMEM;
	ssize_t r = peek_at(dup, off, msg ? &one : buf, msg ? 1 : len, 0, &mh, cbuf, NULL);
	if (r < 0)
		return (int)r;
	for (struct cmsghdr *cm = CMSG_FIRSTHDR(&mh); cm; cm = CMSG_NXTHDR(&mh, cm)) {
		if (cm->cmsg_level != SOL_SOCKET || cm->cmsg_type != SCM_RIGHTS)
			continue;
		size_t k = (cm->cmsg_len - CMSG_LEN(0)) / sizeof(int);
		for (size_t i = 0; i < k; i++) {
			int x;
			memcpy(&x, CMSG_DATA(cm) + i * sizeof(int), sizeof(int));
			if (*n < max)
				fds[(*n)++] = x;
			else
				close(x);
		}
	}
	return 0;
}

int sk_unix_peek_stream(pid_t pid, int fd, int dup, UnixSk *u)
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
		       "supported yet",
		       fd, pid, queued, SK_QUEUE_MAX);
		return -EOPNOTSUPP;
	}
	_cleanup_free_ uint8_t *buf = malloc((size_t)queued);
	if (!buf)
		return pr_errno(-ENOMEM, "queue of fd %d of pid %d", fd, pid);
	size_t got = 0;
	while (got < (size_t)queued) {
		ssize_t r = peek_at(dup, (int)got, buf + got, (size_t)queued - got, 0, &mh, cbuf, NULL);
		if (r < 0)
			return pr_errno((int)r, "peek at the queue of fd %d of pid %d", fd, pid);
		size_t nfds;
		int ret = scan_cmsgs(pid, fd, &mh, &nfds);
		if (!ret && nfds && add_rights(u, got + (size_t)r, nfds))
			ret = pr_errno(-ENOMEM, "queue of fd %d of pid %d", fd, pid);
		if (ret)
			return ret;
		if (r == 0) {
			pr_err("fd %d of pid %d: peeked %zu of %d queued bytes (out-of-band data?): "
			       "not supported yet",
			       fd, pid, got, queued);
			return -EOPNOTSUPP;
		}
		got += (size_t)r;
	}
	u->has_data = true;
	u->data.data = steal_ptr(&buf);
	u->data.len = got;
	return 0;
}

/* Append message @buf (@len bytes) from @from (@flen bytes of address) to @u. */
static int add_msg(UnixSk *u, size_t *cap, const uint8_t *buf, size_t len,
		   const struct sockaddr_un *from, socklen_t flen)
{
	if (u->n_msgs == *cap) {
		size_t nc = *cap ? *cap * 2 : 16;
		ProtobufCBinaryData *nm = realloc(u->msgs, nc * sizeof(*nm));
		if (!nm)
			return -ENOMEM;
		u->msgs = nm;
		ProtobufCBinaryData *nn = realloc(u->msg_names, nc * sizeof(*nn));
		if (!nn)
			return -ENOMEM;
		u->msg_names = nn;
		*cap = nc;
	}
	size_t nlen = flen > offsetof(struct sockaddr_un, sun_path)
			      ? (size_t)flen - offsetof(struct sockaddr_un, sun_path)
			      : 0;
	if (nlen > SK_NAME_MAX)
		nlen = SK_NAME_MAX;
	ProtobufCBinaryData *m = &u->msgs[u->n_msgs], *n = &u->msg_names[u->n_msgs];
	m->len = len;
	m->data = malloc(len ? len : 1);
	n->len = nlen;
	n->data = malloc(nlen ? nlen : 1);
	if (!m->data || !n->data) {
		free(m->data);
		free(n->data);
		return -ENOMEM;
	}
	memcpy(m->data, buf, len);
	memcpy(n->data, from->sun_path, nlen);
	u->n_msgs++;
	u->n_msg_names++;
	return 0;
}

int sk_unix_peek_msgs(pid_t pid, int fd, int dup, bool rcv_shut, UnixSk *u)
{
	_Alignas(struct cmsghdr) char cbuf[CMSG_BUF];
	struct msghdr mh;
	struct sockaddr_un from;
	size_t cap = 64 << 10, total = 0, nmsg_cap = 0;
	_cleanup_free_ uint8_t *buf = malloc(cap);
	int pos = 0;

	if (!buf)
		return pr_errno(-ENOMEM, "queue of fd %d of pid %d", fd, pid);
	for (;;) {
		ssize_t r = peek_at(dup, pos, buf, cap, MSG_TRUNC, &mh, cbuf, &from);
		if (r == -EAGAIN)
			break;
		if (r < 0)
			return pr_errno((int)r, "peek at the queue of fd %d of pid %d", fd, pid);
		size_t nfds;
		int ret = scan_cmsgs(pid, fd, &mh, &nfds);
		if (ret)
			return ret;
		if (r == 0 && rcv_shut)
			break; /* end of queue, or an empty message: cannot tell */
		if ((size_t)r > cap) {
			if ((size_t)r > SK_QUEUE_MAX - total) {
				pr_err("fd %d of pid %d: more than %u bytes queued in a unix socket: "
				       "not supported yet",
				       fd, pid, SK_QUEUE_MAX);
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
			       "socket: not supported yet",
			       fd, pid, SK_QUEUE_MAX, SK_MSGS_MAX);
			return -EOPNOTSUPP;
		}
		if (add_msg(u, &nmsg_cap, buf, (size_t)r, &from, mh.msg_namelen) ||
		    (nfds && add_rights(u, u->n_msgs - 1, nfds)))
			return pr_errno(-ENOMEM, "queue of fd %d of pid %d", fd, pid);
		total += (size_t)r;
		pos += (int)r;
	}
	return 0;
}

void sk_unix_raise_sndbuf(int sk)
{
	int big = INT_MAX / 4;
	if (setsockopt(sk, SOL_SOCKET, SO_SNDBUFFORCE, &big, sizeof(big)))
		(void)setsockopt(sk, SOL_SOCKET, SO_SNDBUF, &big, sizeof(big));
}

/* The fds of rights entry @r (borrowed) into a control message in @cbuf. */
static int rights_cmsg(const UnixRights *r, const struct sk_rights *src, struct msghdr *mh,
		       char *cbuf, uint64_t ino)
{
	if (!r)
		return 0;
	if (!src || r->n_files > SK_RIGHTS_MAX) {
		pr_err("files image: unix socket %llu carries file descriptors that cannot be sent",
		       (unsigned long long)ino);
		return -EINVAL;
	}
	mh->msg_control = cbuf;
	mh->msg_controllen = CMSG_SPACE(r->n_files * sizeof(int));
	struct cmsghdr *cm = CMSG_FIRSTHDR(mh);
	cm->cmsg_level = SOL_SOCKET;
	cm->cmsg_type = SCM_RIGHTS;
	cm->cmsg_len = CMSG_LEN(r->n_files * sizeof(int));
	for (size_t i = 0; i < r->n_files; i++) {
		int fd = src->fd(src->arg, r->files[i]);
		if (fd < 0)
			return fd;
		memcpy(CMSG_DATA(cm) + i * sizeof(int), &fd, sizeof(int));
	}
	return 0;
}

static const UnixRights *rights_at(const UnixSk *u, uint64_t at)
{
	for (size_t i = 0; i < u->n_rights; i++)
		if (u->rights[i]->at == at)
			return u->rights[i];
	return NULL;
}

/* One sendmsg of @len bytes of @buf with the descriptors of @r (NULL: none). */
static ssize_t send_with(int snd, const void *buf, size_t len, const void *to, unsigned int tolen,
			 const UnixRights *r, const struct sk_rights *src, uint64_t ino)
{
	_Alignas(struct cmsghdr) char cbuf[CMSG_SPACE(SK_RIGHTS_MAX * sizeof(int))];
	struct iovec iov = { .iov_base = (void *)buf, .iov_len = len };
	struct msghdr mh = { .msg_name = (void *)to,
			     .msg_namelen = tolen,
			     .msg_iov = &iov,
			     .msg_iovlen = 1 };
	int ret = rights_cmsg(r, src, &mh, cbuf, ino);
	if (ret) {
		errno = -ret;
		return -1;
	}
	return sendmsg(snd, &mh, MSG_DONTWAIT | MSG_NOSIGNAL);
}

int sk_unix_send_msg(int snd, const UnixSk *u, size_t i, const void *to, unsigned int tolen,
		     const struct sk_rights *src)
{
	ssize_t r = send_with(snd, u->msgs[i].data, u->msgs[i].len, to, tolen, rights_at(u, i), src,
			      u->ino);
	if (r != (ssize_t)u->msgs[i].len)
		return pr_perror("restore unix socket %llu: queue message %zu of %zu (%zu bytes)",
				 (unsigned long long)u->ino, i, u->n_msgs, u->msgs[i].len);
	return 0;
}

/* Bytes [@from, @to) of a stream's queue, the descriptors of @r with the first send. */
static int fill_stream(int snd, const UnixSk *u, size_t from, size_t to, const UnixRights *r,
		       const struct sk_rights *src)
{
	size_t off = from;
	while (off < to) {
		ssize_t n = send_with(snd, u->data.data + off, to - off, NULL, 0,
				      off == from ? r : NULL, src, u->ino);
		if (n <= 0)
			return pr_perror("restore unix socket %llu: queue %zu bytes (at %zu)",
					 (unsigned long long)u->ino, u->data.len, off);
		off += (size_t)n;
	}
	return 0;
}

int sk_unix_fill(int snd, const UnixSk *u, const struct sk_rights *src)
{
	if (u->type == SOCK_STREAM) {
		if (!u->has_data)
			return 0;
		size_t prev = 0;
		for (size_t i = 0; i < u->n_rights; i++) {
			size_t at = (size_t)u->rights[i]->at;
			int ret = fill_stream(snd, u, prev, at, u->rights[i], src);
			if (ret)
				return ret;
			prev = at;
		}
		return fill_stream(snd, u, prev, u->data.len, NULL, src);
	}
	for (size_t i = 0; i < u->n_msgs; i++) {
		int ret = sk_unix_send_msg(snd, u, i, NULL, 0, src);
		if (ret)
			return ret;
	}
	return 0;
}

int sk_unix_early(int sk, const UnixSk *u)
{
	char what[48];
	snprintf(what, sizeof(what), "unix socket %llu", (unsigned long long)u->ino);
	return u->opts ? sockopt_restore(sk, u->opts, SOCKOPT_EARLY, what) : 0;
}

int sk_unix_finish(int sk, const UnixSk *u)
{
	unsigned long long ino = (unsigned long long)u->ino;
	int ret = 0;

	char what[48];
	snprintf(what, sizeof(what), "unix socket %llu", ino);
	if (u->opts) /* buffers (with their locks) among them */
		ret = sockopt_restore(sk, u->opts, SOCKOPT_LATE, what);
	if (ret)
		return ret;
	int on = u->has_passcred && u->passcred;
	if (on && setsockopt(sk, SOL_SOCKET, SO_PASSCRED, &on, sizeof(on)))
		return pr_perror("restore unix socket %llu: SO_PASSCRED", ino);
	on = u->has_passsec && u->passsec;
	if (on && setsockopt(sk, SOL_SOCKET, SO_PASSSEC, &on, sizeof(on)))
		return pr_perror("restore unix socket %llu: SO_PASSSEC", ino);
	if (u->has_peek_off && u->peek_off >= 0 &&
	    setsockopt(sk, SOL_SOCKET, SO_PEEK_OFF, &u->peek_off, sizeof(u->peek_off)))
		return pr_perror("restore unix socket %llu: SO_PEEK_OFF %d", ino, u->peek_off);
	unsigned int s = u->has_shutdown ? u->shutdown : 0;
	int how = s == 3 ? SHUT_RDWR : s == SK_SEND_SHUTDOWN ? SHUT_WR : s ? SHUT_RD : -1;
	if (how >= 0 && sk_unix_state(u) != SK_LISTEN && shutdown(sk, how))
		return pr_perror("restore unix socket %llu: shutdown(%d)", ino, how);
	return 0;
}
