/* AF_UNIX sockets (row fd_unix_ops of the files module, kind FILE_UNIX_SK,
 * FileDesc.unix_sk): stream, datagram and seqpacket; unbound, bound to a path (also one
 * unlinked since) or to an abstract name; listening with the connections queued but not
 * yet accepted; connected to a socket of the tree (a socketpair, a client and the socket
 * its server accepted, datagram sockets connected to a bound one), to a peer that was
 * closed, or to a peer outside the tree declared with --external unix[INODE].
 *
 * Dump, from outside the frozen task, on a pidfd_getfd duplicate of the socket (the same
 * socket, not a copy): sock_diag (NETLINK_SOCK_DIAG in the task's network namespace, by
 * inode) gives the type, state, name, socket file (VFS), peer inode, shutdown bits,
 * backlog and the client inodes of the queued connections; the queue is peeked
 * (sk_unix_queue.c). The merge hook, once per tree, links every socket to its peer, tells
 * which end of a connection was made by accept(), and refuses a peer outside the tree
 * unless it is declared.
 *
 * Restore (sk_unix_rst.c): every unix socket of the tree is made at once, by stasis for a
 * tree of several processes (open_tree), else by the restore child for its own
 * (open_task): bound, listening, connected with connect()/accept() as the originals were,
 * the queues sent again (from the sender's address for datagrams), the queued connections
 * connected again in accept order. */
#include <errno.h>
#include <fcntl.h>
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
#include <sys/sysmacros.h>
#include <sys/un.h>
#include <poll.h>
#include <unistd.h>

#include "core/log.h"
#include "core/util.h"
#include "net/sk_dgram.h"
#include "net/sk_unix_int.h"
#include "net/sockopt.h"
#include "ns/nsrun.h"
#include "sys/syscalls.h"

struct sk_diag {
	uint8_t type, state, shutdown;
	bool has_vfs, has_rqlen;
	bool has_peer; /* (a peer of inode 0: a closed one the socket still points to) */
	uint32_t peer, vfs_ino, vfs_dev, rqueue, wqueue;
	uint8_t name[SK_NAME_MAX];
	size_t name_len; /* 0: no name */
	uint32_t *icons;
	size_t n_icons;
};

const char *sk_unix_type_name(unsigned int t)
{
	switch (t) {
	case SOCK_STREAM: return "SOCK_STREAM";
	case SOCK_DGRAM: return "SOCK_DGRAM";
	case SOCK_SEQPACKET: return "SOCK_SEQPACKET";
	default: return "?";
	}
}

const char *sk_unix_name_str(const ProtobufCBinaryData *name, bool has, char *buf, size_t len)
{
	if (!has || !name->len)
		return "unnamed";
	size_t n = name->len < SK_NAME_MAX ? name->len : SK_NAME_MAX;
	size_t o = 0;
	for (size_t i = 0; i < n && o + 1 < len; i++) {
		uint8_t ch = name->data[i];
		if (i == 0 && ch == 0)
			buf[o++] = '@';
		else if (ch == 0 && name->data[0] != 0)
			break;
		else
			buf[o++] = (ch >= 0x20 && ch < 0x7f) ? (char)ch : '?';
	}
	buf[o] = 0;
	return buf;
}

static bool named(const UnixSk *u)
{
	return u->has_name && u->name.len > 0;
}

static bool same_bytes(const ProtobufCBinaryData *a, const ProtobufCBinaryData *b)
{
	return a->len == b->len && (!a->len || !memcmp(a->data, b->data, a->len));
}

static int sk_unsupported(pid_t pid, int fd, uint64_t ino, const char *what)
{
	pr_err("fd %d of pid %d is %s (socket:[%llu]): not supported yet", fd, pid, what,
	       (unsigned long long)ino);
	return -EOPNOTSUPP;
}

/* A NETLINK_SOCK_DIAG socket in network namespace @skns, or (-1) the one of @pid
 * (sock_diag only sees the sockets of the namespace the netlink socket was created in). */
static int diag_socket(pid_t pid, int skns)
{
	char what[64];
	snprintf(what, sizeof(what), "the network namespace of pid %d%s", pid,
		 skns >= 0 ? "'s socket" : "");
	_cleanup_close_ int ns = skns >= 0 ? -1 : ns_open_of(pid, "net", "sock_diag");
	if (skns < 0 && ns < 0)
		return ns;
	return ns_socket_in(-1, skns >= 0 ? skns : ns, AF_NETLINK, SOCK_DGRAM | SOCK_CLOEXEC,
			    NETLINK_SOCK_DIAG, "sock_diag", what);
}

static int diag_attr(const struct rtattr *a, struct sk_diag *out)
{
	size_t len = RTA_PAYLOAD(a);
	switch (a->rta_type) {
	case UNIX_DIAG_NAME:
		out->name_len = len < SK_NAME_MAX ? len : SK_NAME_MAX;
		memcpy(out->name, RTA_DATA(a), out->name_len);
		break;
	case UNIX_DIAG_VFS:
		if (len >= sizeof(struct unix_diag_vfs)) {
			const struct unix_diag_vfs *v = RTA_DATA(a);
			out->has_vfs = true;
			out->vfs_ino = v->udiag_vfs_ino;
			out->vfs_dev = v->udiag_vfs_dev;
		}
		break;
	case UNIX_DIAG_PEER:
		if (len >= sizeof(uint32_t)) {
			memcpy(&out->peer, RTA_DATA(a), sizeof(uint32_t));
			out->has_peer = true;
		}
		break;
	case UNIX_DIAG_ICONS:
		out->n_icons = len / sizeof(uint32_t);
		out->icons = malloc(out->n_icons ? out->n_icons * sizeof(uint32_t) : 1);
		if (!out->icons)
			return -ENOMEM;
		memcpy(out->icons, RTA_DATA(a), out->n_icons * sizeof(uint32_t));
		break;
	case UNIX_DIAG_RQLEN:
		if (len >= sizeof(struct unix_diag_rqlen)) {
			const struct unix_diag_rqlen *q = RTA_DATA(a);
			out->has_rqlen = true;
			out->rqueue = q->udiag_rqueue;
			out->wqueue = q->udiag_wqueue;
		}
		break;
	case UNIX_DIAG_SHUTDOWN:
		if (len >= 1)
			out->shutdown = *(const uint8_t *)RTA_DATA(a);
		break;
	default:
		break;
	}
	return 0;
}

/* sock_diag of the AF_UNIX socket with inode @ino, seen from the network namespace of
 * @pid (fd @fd for messages). -ENOENT (not logged) if there is no such socket. */
static int diag_query(pid_t pid, int skns, int fd, uint64_t ino, struct sk_diag *out)
{
	struct {
		struct nlmsghdr h;
		struct unix_diag_req r;
	} req;
	const size_t bufsz = 1 << 20;

	memset(out, 0, sizeof(*out));
	if (ino > UINT32_MAX) {
		pr_err("fd %d of pid %d: socket inode %llu does not fit sock_diag", fd, pid,
		       (unsigned long long)ino);
		return -EOVERFLOW;
	}
	_cleanup_free_ char *buf = aligned_alloc(sizeof(long), bufsz);
	if (!buf)
		return pr_errno(-ENOMEM, "sock_diag of fd %d of pid %d", fd, pid);
	_cleanup_close_ int nl = diag_socket(pid, skns);
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
	req.r.udiag_show = UDIAG_SHOW_NAME | UDIAG_SHOW_VFS | UDIAG_SHOW_PEER |
			   UDIAG_SHOW_ICONS | UDIAG_SHOW_RQLEN;
	req.r.udiag_cookie[0] = req.r.udiag_cookie[1] = ~0u;
	if (send(nl, &req, sizeof(req), 0) != (ssize_t)sizeof(req))
		return pr_perror("fd %d of pid %d: sock_diag request", fd, pid);
	ssize_t n = recv(nl, buf, bufsz, 0);
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
		if (err == -ENOENT)
			return err;
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
	out->type = m->udiag_type;
	out->state = m->udiag_state;
	int len = (int)(h->nlmsg_len - NLMSG_LENGTH(sizeof(*m)));
	for (const struct rtattr *a = (const struct rtattr *)(m + 1); RTA_OK(a, len);
	     a = RTA_NEXT(a, len))
		if (diag_attr(a, out))
			return pr_errno(-ENOMEM, "sock_diag of fd %d of pid %d", fd, pid);
	return 0;
}

static int get_int_opt(int sk, int opt, int *val)
{
	socklen_t l = sizeof(*val);
	return getsockopt(sk, SOL_SOCKET, opt, val, &l) ? -errno : 0;
}

static int set_bytes(ProtobufCBinaryData *b, protobuf_c_boolean *has, const void *p, size_t len)
{
	b->data = malloc(len ? len : 1);
	if (!b->data)
		return -ENOMEM;
	memcpy(b->data, p, len);
	b->len = len;
	*has = true;
	return 0;
}

/* A socket bound to a path: is its file still there (same inode), and is the path the
 * one the dumper sees, or one only the task's mount namespace shows? */
static int check_path(const struct dump_ctx *c, int fd, const struct sk_diag *dg, UnixSk *u)
{
	char path[SK_NAME_MAX + 1], in_root[SK_NAME_MAX + 8];
	struct stat st, rt;

	memcpy(path, dg->name, dg->name_len);
	path[dg->name_len] = 0;
	if (path[0] != '/')
		return sk_unsupported(c->pid, fd, u->ino, "a unix socket bound to a relative path");
	if (!dg->has_vfs) {
		u->has_accepted = u->accepted = true; /* its listener's name, no file */
		return 0;
	}
	dev_t dev = makedev(dg->vfs_dev >> 20, dg->vfs_dev & 0xfffff);
	bool mine = !stat(path, &st) && st.st_ino == dg->vfs_ino && st.st_dev == dev;
	snprintf(in_root, sizeof(in_root), "root%s", path);
	bool task = !fstatat(c->procfd, in_root, &rt, 0) && rt.st_ino == dg->vfs_ino &&
		    rt.st_dev == dev;
	if (task && !mine)
		u->has_in_task_root = u->in_task_root = true; /* (checked by the merge hook) */
	else if (!mine)
		u->has_unlinked = u->unlinked = true;
	if (mine || task) {
		const struct stat *f = mine ? &st : &rt;
		u->has_file_mode = u->has_file_uid = u->has_file_gid = true;
		u->file_mode = f->st_mode & 07777;
		u->file_uid = f->st_uid;
		u->file_gid = f->st_gid;
	}
	return 0;
}

/* The socket's state, name, peer and backlog from sock_diag @dg. */
static int fill_from_diag(const struct dump_ctx *c, int fd, int dup, const struct sk_diag *dg,
			  UnixSk *u)
{
	if (dg->state != SK_ESTABLISHED && dg->state != SK_CLOSE && dg->state != SK_LISTEN) {
		char what[64];
		snprintf(what, sizeof(what), "a unix socket in state %u", dg->state);
		return sk_unsupported(c->pid, fd, u->ino, what);
	}
	u->has_state = true;
	u->state = dg->state;
	u->peer_ino = dg->peer;
	u->has_shutdown = true;
	u->shutdown = dg->shutdown & (SK_RCV_SHUTDOWN | SK_SEND_SHUTDOWN);
	if (dg->name_len && set_bytes(&u->name, &u->has_name, dg->name, dg->name_len))
		return -ENOMEM;
	if (dg->name_len && dg->name[0]) {
		int ret = check_path(c, fd, dg, u);
		if (ret)
			return ret;
	}
	if (dg->state == SK_LISTEN) {
		if (!dg->has_rqlen || !u->has_name)
			return sk_unsupported(c->pid, fd, u->ino, "a listening unix socket without "
								  "a backlog or a name");
		u->has_backlog = true;
		u->backlog = dg->wqueue;
		u->icons = malloc((dg->n_icons ? dg->n_icons : 1) * sizeof(uint64_t));
		if (!u->icons)
			return -ENOMEM;
		for (size_t i = 0; i < dg->n_icons; i++)
			u->icons[i] = dg->icons[i];
		u->n_icons = dg->n_icons;
	} else if (dg->state == SK_ESTABLISHED && !dg->peer &&
		   (u->type != SOCK_DGRAM || dg->has_peer)) {
		/* (a datagram socket some other connected to is "established" too, with no
		 * peer; one connected to a peer that was closed still points to it, of inode
		 * 0, until it sends: then it is restored so, its peer closed after the fill,
		 * with the name the peer had: what getpeername still says) */
		struct sockaddr_un sa;
		socklen_t sl = sizeof(sa);
		size_t off = offsetof(struct sockaddr_un, sun_path);
		if (u->type == SOCK_DGRAM && getpeername(dup, (struct sockaddr *)&sa, &sl))
			return sk_unsupported(c->pid, fd, u->ino, "a datagram unix socket whose "
								  "closed peer cannot be named");
		if (u->type == SOCK_DGRAM && sl > off &&
		    set_bytes(&u->peer_name, &u->has_peer_name, sa.sun_path,
			      MIN((size_t)sl - off, (size_t)SK_NAME_MAX)))
			return -ENOMEM;
		u->has_peer_gone = u->peer_gone = true;
	}
	return 0;
}

/* Socket @dup's network namespace if it is not its holder's (@c), its inode in *@ino;
 * else -1. (SIOCGSKNS needs CAP_NET_ADMIN over the namespace: else -1.) */
static int other_netns(const struct dump_ctx *c, int dup, uint64_t *ino)
{
	int ns = ioctl(dup, SIOCGSKNS);
	struct stat st;
	if (ns >= 0 && !fstat(ns, &st) && st.st_ino != sk_netns_ino(c)) {
		*ino = st.st_ino;
		return ns;
	}
	if (ns >= 0)
		close(ns);
	return -1;
}

/* The sock_diag of unix socket @dup (fd @fd of @c, inode @ino) in @dg: in its holder's
 * network namespace, or in its own (FileDesc.netns: another one, found by SIOCGSKNS, or
 * where that is refused stasis's). */
static int diag_of(const struct dump_ctx *c, int dup, int fd, uint64_t ino, struct sk_diag *dg,
		   FileDesc *d)
{
	uint64_t skns_ino = 0;
	pid_t pid = c->ospid;
	_cleanup_close_ int skns = other_netns(c, dup, &skns_ino);
	int ret = diag_query(pid, skns, fd, ino, dg);
	if (ret == -ENOENT && skns < 0) {
		/* not in its holder's: in stasis's, where SIOCGSKNS was refused (a namespace
		 * of a user namespace above stasis's)? */
		struct stat st;
		skns = open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC);
		if (skns >= 0 && !fstat(skns, &st) && st.st_ino != sk_netns_ino(c)) {
			skns_ino = st.st_ino;
			free(dg->icons);
			ret = diag_query(pid, skns, fd, ino, dg);
		}
		if (ret == -ENOENT && skns >= 0) {
			close(skns);
			skns = -1;
		}
	}
	if (ret == -ENOENT)
		return pr_errno(ret, "fd %d of pid %d: sock_diag of unix socket %llu", fd, pid,
				(unsigned long long)ino);
	d->has_netns = !ret && skns >= 0; /* (its creator: files_netns_merge) */
	d->netns = skns_ino;
	return ret;
}

/* Dump fd @e of the task, @dup its pidfd_getfd duplicate: fill d->unix_sk. */
int sk_unix_dump_fd(const struct dump_ctx *c, const struct fd_ent *e, int dup, FileDesc *d)
{
	int domain = -1, type = -1, ret, fd = e->fd;
	pid_t pid = c->ospid; /* (a live thread of a zombie leader: its /proc/PID/net) */
	uint64_t ino = e->st.st_ino;

	if ((ret = get_int_opt(dup, SO_DOMAIN, &domain)))
		return pr_errno(ret, "SO_DOMAIN of fd %d of pid %d", fd, pid);
	if (domain != AF_UNIX) {
		char what[64];
		snprintf(what, sizeof(what), "a socket of address family %d", domain);
		return sk_unsupported(pid, fd, ino, what);
	}
	if ((ret = get_int_opt(dup, SO_TYPE, &type)))
		return pr_errno(ret, "SO_TYPE of fd %d of pid %d", fd, pid);
	if (type != SOCK_STREAM && type != SOCK_DGRAM && type != SOCK_SEQPACKET)
		return sk_unsupported(pid, fd, ino, "a unix socket of an unknown type");

	struct sk_diag dg;
	ret = diag_of(c, dup, fd, ino, &dg, d);
	if (ret) {
		free(dg.icons);
		return ret;
	}
	if (dg.type != type) {
		free(dg.icons);
		pr_err("fd %d of pid %d: sock_diag type %u, SO_TYPE %d", fd, pid, dg.type, type);
		return -EIO;
	}
	UnixSk *u = malloc(sizeof(*u));
	if (!u) {
		free(dg.icons);
		return pr_errno(-ENOMEM, "fd %d of pid %d", fd, pid);
	}
	unix_sk__init(u);
	d->unix_sk = u;
	u->ino = ino;
	u->type = (uint32_t)type;
	ret = fill_from_diag(c, fd, dup, &dg, u);
	free(dg.icons);
	if (!ret)
		ret = sk_unix_peer_cred(c, fd, dup, u);
	if (ret)
		return ret == -ENOMEM ? pr_errno(ret, "fd %d of pid %d", fd, pid) : ret;

	struct sockaddr_un pa;
	socklen_t pl = sizeof(pa);
	size_t off = offsetof(struct sockaddr_un, sun_path);
	if (u->peer_ino && !getpeername(dup, (struct sockaddr *)&pa, &pl) && pl > off &&
	    set_bytes(&u->peer_name, &u->has_peer_name, pa.sun_path,
		      MIN((size_t)pl - off, (size_t)SK_NAME_MAX)))
		return pr_errno(-ENOMEM, "fd %d of pid %d", fd, pid);

	int passcred = 0, passsec = 0, peek_off = -1;
	if ((ret = get_int_opt(dup, SO_PASSCRED, &passcred)) ||
	    (ret = get_int_opt(dup, SO_PASSSEC, &passsec)) ||
	    (ret = get_int_opt(dup, SO_PEEK_OFF, &peek_off)))
		return pr_errno(ret, "socket options of fd %d of pid %d", fd, pid);
	u->has_passcred = u->has_peek_off = u->has_passsec = true;
	u->passcred = passcred != 0;
	u->passsec = passsec != 0;
	u->peek_off = peek_off;

	ret = sockopt_dump(dup, pid, fd, &u->opts);
	if (ret)
		return ret;
	int outq = 0;
	if (u->state == SK_ESTABLISHED && !ioctl(dup, SIOCOUTQ, &outq) && outq >= 0) {
		u->has_outq = true;
		u->outq = (uint32_t)outq;
	}
	/* a pending error (ECONNRESET: a peer closed with data unread, or a datagram peer
	 * dropped it): any read of a datagram or seqpacket socket's queue takes it, one of a
	 * stream's when it finds the queue empty (never: the peek stops at its length);
	 * poll shows it without taking it */
	struct pollfd pf = { .fd = dup };
	if (u->state != SK_LISTEN && poll(&pf, 1, 0) == 1 && (pf.revents & POLLERR)) {
		if (!u->peer_gone || type == SOCK_DGRAM || (type == SOCK_SEQPACKET && dg.rqueue))
			return sk_unsupported(pid, fd, ino, "a unix socket with a pending error "
							    "(ECONNRESET) and no closed peer, or "
							    "messages queued");
		u->has_pending_reset = u->pending_reset = true;
	}
	if (u->state == SK_LISTEN || (u->pending_reset && type == SOCK_SEQPACKET))
		ret = 0; /* its queue holds connections (icons), not data; or nothing */
	else if (type == SOCK_STREAM)
		ret = sk_unix_peek_stream(pid, fd, dup, u);
	else
		ret = sk_unix_peek_msgs(pid, fd, dup, (u->shutdown & SK_RCV_SHUTDOWN) != 0, u);
	/* a receiver that reads its senders' credentials (SO_PASSCRED, SO_PASSPIDFD) would read
	 * the restorer's on the messages queued now */
	int passpidfd = 0;
	if (!ret && (u->data.len || u->n_msgs) &&
	    (u->passcred || (!get_int_opt(dup, SO_PASSPIDFD, &passpidfd) && passpidfd))) {
		pr_err("fd %d of pid %d: unix socket %llu has messages queued whose senders' "
		       "credentials its reader takes (SO_PASSCRED/SO_PASSPIDFD): not supported yet",
		       fd, pid, (unsigned long long)ino);
		ret = -EOPNOTSUPP;
	}
	/* the task's own peek offset back, whatever happened */
	if (setsockopt(dup, SOL_SOCKET, SO_PEEK_OFF, &peek_off, sizeof(peek_off)) && !ret)
		ret = pr_perror("fd %d of pid %d: cannot put back SO_PEEK_OFF %d", fd, pid,
				peek_off);
	if (!ret) {
		char nb[SK_NAME_MAX + 2];
		pr_debug("pid %d fd %d: unix %s socket %llu (%s), state %u, peer %llu, shutdown %u, "
			 "%zu bytes / %zu messages queued, %zu connections queued", pid, fd,
			 sk_unix_type_name((unsigned int)type), (unsigned long long)ino,
			 sk_unix_name_str(&u->name, u->has_name, nb, sizeof(nb)), u->state,
			 (unsigned long long)u->peer_ino, u->shutdown,
			 u->has_data ? u->data.len : 0, u->n_msgs, u->n_icons);
	}
	return ret;
}

/* ---- image check ------------------------------------------------------------------- */

static bool name_ok(const ProtobufCBinaryData *n)
{
	if (n->len == 0 || n->len > SK_NAME_MAX)
		return false;
	if (n->data[0] == 0)
		return true; /* abstract: any bytes */
	/* a path: absolute, NUL-terminated within the name, nothing after */
	void *nul = memchr(n->data, 0, n->len);
	return n->data[0] == '/' && nul && (size_t)((uint8_t *)nul - n->data) == n->len - 1;
}

static int bad(const FileDesc *d, const char *what)
{
	pr_err("files image: unix socket %u %s", d->id, what);
	return -EINVAL;
}

static int validate_queue(const FileDesc *d, const UnixSk *u)
{
	size_t total = u->has_data ? u->data.len : 0;
	if ((u->type == SOCK_STREAM && u->n_msgs) || (u->type != SOCK_STREAM && u->has_data) ||
	    u->n_msgs > SK_MSGS_MAX || (u->n_msg_names && u->n_msg_names != u->n_msgs) ||
	    (u->state == SK_LISTEN && (total || u->n_msgs)))
		return bad(d, "has queued data of the wrong shape");
	for (size_t i = 0; i < u->n_msgs; i++) {
		if (u->msgs[i].len > SK_QUEUE_MAX - total) {
			total = SK_QUEUE_MAX + 1ull;
			break;
		}
		total += u->msgs[i].len;
		if (u->n_msg_names && u->msg_names[i].len && !name_ok(&u->msg_names[i]))
			return bad(d, "has a queued message from a bad address");
	}
	if (total > SK_QUEUE_MAX) {
		pr_err("files image: unix socket %u queues more than %u bytes", d->id, SK_QUEUE_MAX);
		return -EINVAL;
	}
	uint64_t prev = 0, end = u->type == SOCK_STREAM ? total : u->n_msgs;
	for (size_t i = 0; i < u->n_rights; i++) {
		const UnixRights *r = u->rights[i];
		bool ok = r->n_files && r->n_files <= SK_RIGHTS_MAX && r->at <= end &&
			  (u->type == SOCK_STREAM ? r->at > prev : r->at < end && (!i || r->at > prev));
		for (size_t j = 0; j < r->n_files && ok; j++)
			ok = r->files[j] != 0;
		if (!ok)
			return bad(d, "has file descriptors in flight out of its queue");
		prev = r->at;
	}
	if (u->has_peek_off && u->peek_off > 0 && (uint64_t)u->peek_off > total) {
		pr_err("files image: unix socket %u has its peek offset %d past its queue of %zu "
		       "bytes", d->id, u->peek_off, total);
		return -EINVAL;
	}
	/* the kernel queues at most backlog + 1 connections */
	if (u->n_icons && (!u->has_backlog || u->n_icons > (uint64_t)u->backlog + 1)) {
		pr_err("files image: unix socket %u queues %zu connections, past its backlog of %u",
		       d->id, u->n_icons, u->backlog);
		return -EINVAL;
	}
	return 0;
}

static int sk_unix_validate(const FileDesc *d, const struct blob_reader *blobs)
{
	(void)blobs;
	const UnixSk *u = d->unix_sk;
	if (!u)
		return bad(d, "has no socket data");
	if (u->type != SOCK_STREAM && u->type != SOCK_DGRAM && u->type != SOCK_SEQPACKET) {
		pr_err("files image: unix socket %u has unknown type %u", d->id, u->type);
		return -EINVAL;
	}
	/* images of socketpairs only had no state: connected */
	unsigned int st = u->has_state ? u->state : SK_ESTABLISHED;
	if (st != SK_ESTABLISHED && st != SK_CLOSE && st != SK_LISTEN) {
		pr_err("files image: unix socket %u has bad state %u", d->id, st);
		return -EINVAL;
	}
	if (u->ino == u->peer_ino || (u->has_shutdown && u->shutdown > 3) ||
	    (u->has_peek_off && u->peek_off < -1))
		return bad(d, "has bad socket data");
	if (u->has_name && !name_ok(&u->name))
		return bad(d, "has a bad name");
	if (u->has_peer_name && u->peer_name.len && !name_ok(&u->peer_name))
		return bad(d, "has a bad peer address");
	/* (a pid: at most 4 Mi, PID_MAX_LIMIT) */
	if ((u->peer_cred && (u->peer_cred->pid < 0 || u->peer_cred->pid > (1 << 22))) ||
	    (u->connector && (u->connector->pid < 0 || u->connector->pid > (1 << 22))))
		return bad(d, "has bad peer credentials");
	char what[48];
	snprintf(what, sizeof(what), "unix socket %u", d->id);
	if (u->opts && sockopt_validate(u->opts, AF_UNIX, (int)u->type, 0, what))
		return -EINVAL;
	bool conn = st == SK_ESTABLISHED;
	if ((st == SK_LISTEN && (u->type == SOCK_DGRAM || !named(u) || u->accepted ||
				 u->peer_ino || u->n_icons > SK_ICONS_MAX)) ||
	    (st != SK_LISTEN && (u->n_icons || u->has_backlog)) ||
	    (!conn && (u->peer_ino || u->peer_gone)) ||
	    (u->peer_gone && u->peer_ino) || (u->external && !u->peer_ino) ||
	    (u->accepted && (!named(u) || !conn || u->type == SOCK_DGRAM)) ||
	    (u->unlinked && (!named(u) || u->name.data[0] == 0 || u->accepted)) ||
	    (u->in_task_root && (!named(u) || u->name.data[0] == 0 || u->unlinked)) ||
	    (u->has_file_mode && u->file_mode > 07777) ||
	    (d->has_netns_pid && u->in_task_root))
		return bad(d, "has a state that cannot be");
	return validate_queue(d, u);
}

/* ---- the tree: peers, accepted ends, queued connections, externals ---------------- */

struct uref {
	struct dump_ctx *c;
	size_t i;
	FileDesc *d;
};

struct uset {
	struct uref *r;
	size_t n;
};

static struct uref *uset_find(const struct uset *s, uint64_t ino)
{
	for (size_t k = 0; k < s->n; k++)
		if (s->r[k].d->unix_sk->ino == ino)
			return &s->r[k];
	return NULL;
}

static int uref_fd(const struct uref *r)
{
	return fd_desc_fd(r->c->files, r->i);
}

/* Is @ino (the socket, or its peer) declared with --external unix[INO]? */
static bool declared_external(const struct dump_opts *o, uint64_t ino, uint64_t peer)
{
	char a[48], b[48];
	snprintf(a, sizeof(a), "unix[%llu]", (unsigned long long)ino);
	snprintf(b, sizeof(b), "unix[%llu]", (unsigned long long)peer);
	for (size_t i = 0; o && i < o->n_externals; i++)
		if (!strcmp(o->externals[i], a) || !strcmp(o->externals[i], b) ||
		    !strcmp(o->externals[i], "unix[*]"))
			return true;
	return false;
}

/* The connections queued at listening socket @l: each client in the tree, the queued end
 * holding no data (it cannot be read without accepting it). */
static int check_icons(const struct uset *s, const struct uref *l)
{
	const UnixSk *u = l->d->unix_sk;
	char nb[SK_NAME_MAX + 2];
	const char *name = sk_unix_name_str(&u->name, u->has_name, nb, sizeof(nb));

	for (size_t i = 0; i < u->n_icons; i++) {
		const struct uref *c = u->icons[i] ? uset_find(s, u->icons[i]) : NULL;
		if (!c) {
			pr_err("fd %d of pid %d is a listening unix socket (socket:[%llu], %s) with a "
			       "queued connection from %s: not supported yet", uref_fd(l), l->c->pid,
			       (unsigned long long)u->ino, name,
			       u->icons[i] ? "a socket outside the dumped tree" : "a closed socket");
			return -EOPNOTSUPP;
		}
		/* the queued end has no inode (sock_diag shows no peer) and cannot be
		 * read: what the client sent and nobody read is all in its queue */
		UnixSk *cu = c->d->unix_sk;
		cu->has_peer_gone = cu->peer_gone = false;
		if (!cu->has_outq || cu->outq) {
			pr_err("fd %d of pid %d is a unix socket (socket:[%llu]) whose connection to "
			       "%s is not accepted yet and holds data: not supported yet",
			       uref_fd(c), c->c->pid, (unsigned long long)cu->ino, name);
			return -EOPNOTSUPP;
		}
	}
	return 0;
}

/* Is @u's name the name of a listening socket of the tree? */
static bool listener_name(const struct uset *s, const UnixSk *u)
{
	for (size_t k = 0; k < s->n && named(u); k++) {
		const UnixSk *l = s->r[k].d->unix_sk;
		if (l->state == SK_LISTEN && l->type == u->type && same_bytes(&l->name, &u->name))
			return true;
	}
	return false;
}

/* @u got its name from its listener (accept()): it binds nothing at restore. */
static void mark_accepted(UnixSk *u)
{
	u->has_accepted = u->accepted = true;
	u->has_unlinked = u->unlinked = false;
}

/* Of two connected ends neither of which is known to be accept()'s: which one is? The
 * one with the name of a listener of the tree, else the only one with a name. (This
 * kernel gives an accepted socket its listener's socket file too: sock_diag cannot tell
 * them apart.) */
static int pick_accepted(const struct uset *s, struct uref *a, struct uref *b)
{
	UnixSk *ua = a->d->unix_sk, *ub = b->d->unix_sk;
	if (ua->accepted || ub->accepted || ua->type == SOCK_DGRAM || (!named(ua) && !named(ub)))
		return 0;
	bool la = listener_name(s, ua), lb = listener_name(s, ub);
	if (la != lb || named(ua) != named(ub)) {
		mark_accepted((la != lb ? la : named(ua)) ? ua : ub);
		return 0;
	}
	pr_err("fd %d of pid %d is a unix socket (socket:[%llu]) connected to socket:[%llu]: "
	       "cannot tell which end was accepted: not supported yet", uref_fd(a), a->c->pid,
	       (unsigned long long)ua->ino, (unsigned long long)ub->ino);
	return -EOPNOTSUPP;
}

static int merge_one(const struct uset *s, struct uref *r, const struct dump_opts *o)
{
	UnixSk *u = r->d->unix_sk;
	if (u->state == SK_LISTEN)
		return check_icons(s, r);
	/* (a socket whose peer is gone, named like a listener of the tree: accepted) */
	if (u->peer_gone && u->type != SOCK_DGRAM && !u->accepted && listener_name(s, u))
		mark_accepted(u);
	if (!u->peer_ino)
		return 0;
	struct uref *p = uset_find(s, u->peer_ino);
	if (p)
		return p->d->unix_sk->peer_ino == u->ino && r < p ? pick_accepted(s, r, p) : 0;
	for (size_t k = 0; k < s->n; k++) {
		const UnixSk *l = s->r[k].d->unix_sk;
		for (size_t i = 0; i < l->n_icons; i++)
			if (l->icons[i] == u->ino)
				return 0; /* connection queued at a listener of the tree */
	}
	if (!declared_external(o, u->ino, u->peer_ino)) {
		pr_err("fd %d of pid %d is a unix socket (socket:[%llu]) whose peer "
		       "(socket:[%llu]) is outside the dumped tree: declare it with --external "
		       "unix[%llu]", uref_fd(r), r->c->pid, (unsigned long long)u->ino,
		       (unsigned long long)u->peer_ino, (unsigned long long)u->ino);
		return -EOPNOTSUPP;
	}
	if ((u->has_data && u->data.len) || u->n_msgs) {
		pr_err("fd %d of pid %d is a unix socket (socket:[%llu]) with data queued from its "
		       "peer outside the tree: not supported yet", uref_fd(r), r->c->pid,
		       (unsigned long long)u->ino);
		return -EOPNOTSUPP;
	}
	u->has_external = u->external = true;
	return 0;
}

static bool related(const FileDesc *da, const FileDesc *db);

/* The group of @d[k] among @d[0..n): the closure of related(), marked in @in (zeroed by
 * the caller); each member is visited once, O(n) each. */
static int group_of(const FileDesc *const *d, size_t n, size_t k, bool *in)
{
	size_t *q = malloc((n ? n : 1) * sizeof(*q)), head = 0, tail = 0;
	if (!q)
		return -ENOMEM;
	in[k] = true;
	q[tail++] = k;
	while (head < tail) {
		size_t j = q[head++];
		for (size_t i = 0; i < n; i++)
			if (!in[i] && related(d[j], d[i])) {
				in[i] = true;
				q[tail++] = i;
			}
	}
	free(q);
	return 0;
}

static bool is_abstract(const ProtobufCBinaryData *n)
{
	return n->len > 0 && n->data[0] == 0;
}

/* Does restoring @u use an abstract name (its own, a sender's, its external peer's)? */
static bool uses_abstract(const UnixSk *u)
{
	bool a = (u->has_name && is_abstract(&u->name)) ||
		 (u->has_peer_name && u->external && is_abstract(&u->peer_name));
	for (size_t i = 0; i < u->n_msg_names && !a; i++)
		a = is_abstract(&u->msg_names[i]);
	return a;
}

/* Is the group of sockets of @s->r[k] (what it must be made with) in several processes? */
static bool group_spans(const struct uset *s, size_t k, struct dump_ctx **procs, size_t n)
{
	_cleanup_free_ bool *in = calloc(s->n + 1, sizeof(*in));
	_cleanup_free_ const FileDesc **d = calloc(s->n + 1, sizeof(*d));
	bool spans = false;
	if (!in || !d)
		return true;
	for (size_t i = 0; i < s->n; i++)
		d[i] = s->r[i].d;
	if (group_of(d, s->n, k, in))
		return true;
	for (size_t i = 0; i < s->n && !spans; i++) {
		if (!in[i])
			continue;
		spans = s->r[i].c != s->r[k].c;
		for (size_t p = 0; p < n && !spans; p++)
			spans = procs[p] != s->r[i].c && fd_desc_index(procs[p]->files,
								       s->r[i].d->id) >= 0;
	}
	return spans;
}

/* Is the group of @s->r[k] made at restore in the network namespace its users are in
 * (netns_owner): are all its users in network namespace @ns? */
static bool group_in_netns(const struct uset *s, size_t k, struct dump_ctx **procs, size_t n,
			   uint64_t ns)
{
	_cleanup_free_ bool *in = calloc(s->n + 1, sizeof(*in));
	_cleanup_free_ const FileDesc **d = calloc(s->n + 1, sizeof(*d));
	if (!in || !d)
		return false;
	for (size_t i = 0; i < s->n; i++)
		d[i] = s->r[i].d;
	if (group_of(d, s->n, k, in))
		return false;
	for (size_t i = 0; i < s->n; i++)
		for (size_t p = 0; in[i] && p < n; p++) {
			ssize_t j = fd_desc_index(procs[p]->files, s->r[i].d->id);
			if (j < 0 || fd_desc_fd(procs[p]->files, (size_t)j) < 0)
				continue; /* (in flight) */
			if (sk_netns_ino(procs[p]) != ns)
				return false;
		}
	return true; /* (the socket of @k is used in @ns) */
}

/* A group of sockets spanning processes is made by stasis, in its own network namespace,
 * where an abstract name of another namespace would be wrong (unless the creator of that
 * namespace makes it: group_in_netns), and in its own mount tree, where a path only the
 * task's mount namespace shows is not. */
static int check_netns(const struct uset *s, struct dump_ctx **procs, size_t n)
{
	struct stat self, st;
	if (stat("/proc/self/ns/net", &self))
		return pr_perror("stat /proc/self/ns/net");
	for (size_t k = 0; k < s->n; k++) {
		const struct uref *r = &s->r[k];
		if (r->d->unix_sk->in_task_root && group_spans(s, k, procs, n)) {
			char nb[SK_NAME_MAX + 2];
			pr_err("fd %d of pid %d is a unix socket (socket:[%llu]) bound to %s, a path "
			       "only its mount namespace shows, with sockets of other processes: not "
			       "supported yet", uref_fd(r), r->c->pid,
			       (unsigned long long)r->d->unix_sk->ino,
			       sk_unix_name_str(&r->d->unix_sk->name, true, nb, sizeof(nb)));
			return -EOPNOTSUPP;
		}
		/* (of another namespace: its whole group is, other_netns_merge) */
		if (!uses_abstract(r->d->unix_sk) || r->d->has_netns)
			continue;
		if (fstatat(r->c->procfd, "ns/net", &st, 0))
			return pr_perror("stat /proc/%d/ns/net", r->c->pid);
		if ((st.st_ino == self.st_ino && st.st_dev == self.st_dev) ||
		    !group_spans(s, k, procs, n) || group_in_netns(s, k, procs, n, st.st_ino))
			continue;
		pr_err("fd %d of pid %d is a unix socket (socket:[%llu]) using an abstract name in "
		       "a network namespace of the tree, with sockets of other processes: not "
		       "supported yet", uref_fd(r), r->c->pid,
		       (unsigned long long)r->d->unix_sk->ino);
		return -EOPNOTSUPP;
	}
	return 0;
}

/* The clients of the connections queued at listener @r: who their accepted ends name. */
static int connectors(const struct uset *s, const struct uref *r)
{
	const UnixSk *u = r->d->unix_sk;
	for (size_t i = 0; i < u->n_icons; i++) {
		struct uref *c = uset_find(s, u->icons[i]);
		int ret = c && !c->d->unix_sk->connector
				  ? sk_unix_connector(r->c, c->c, c->d->unix_sk)
				  : 0;
		if (ret)
			return pr_errno(ret, "pid %d: the connections queued at unix socket %llu",
					r->c->pid, (unsigned long long)u->ino);
	}
	return 0;
}

/* Socket @s->r[k] of another network namespace than its holders' (FileDesc.netns) is made
 * with its group (its peer, a listener and its queued connections, ...) in that
 * namespace: every member must be of it (a member of no FileDesc.netns is of its
 * holder's). Whose namespace it is: files_netns_merge. */
static int other_netns_merge(const struct uset *s, size_t k)
{
	const struct uref *r = &s->r[k];
	const UnixSk *u = r->d->unix_sk;
	_cleanup_free_ bool *in = calloc(s->n + 1, sizeof(*in));
	_cleanup_free_ const FileDesc **d = calloc(s->n + 1, sizeof(*d));
	if (!in || !d)
		return pr_errno(-ENOMEM, "unix sockets of the tree");
	for (size_t i = 0; i < s->n; i++)
		d[i] = s->r[i].d;
	int ret = group_of(d, s->n, k, in);
	bool same = !ret && !u->in_task_root;
	for (size_t i = 0; i < s->n && same; i++) {
		const FileDesc *o = s->r[i].d;
		if (in[i])
			same = !o->unix_sk->in_task_root &&
			       (o->has_netns ? o->netns : sk_netns_ino(s->r[i].c)) == r->d->netns;
	}
	if (same)
		return 0;
	pr_err("fd %d of pid %d is a unix socket (socket:[%llu]) of another network namespace "
	       "than its task's, made with sockets of other namespaces: not supported yet",
	       uref_fd(r), r->c->pid, (unsigned long long)u->ino);
	return -EOPNOTSUPP;
}

static int unix_merge(struct dump_ctx **procs, size_t n)
{
	struct uset s = { 0 };
	int ret = sk_unix_flight(procs, n);

	for (size_t p = 0; p < n && !ret; p++) {
		Files *f = procs[p]->files;
		for (size_t i = 0; i < f->n_files; i++) {
			FileDesc *d = f->files[i];
			if (d->kind != FILE_KIND__FILE_UNIX_SK)
				continue;
			bool seen = false; /* one description in several processes */
			for (size_t k = 0; k < s.n && !seen; k++)
				seen = s.r[k].d->id == d->id && n > 1;
			if (seen)
				continue;
			struct uref *nr = realloc(s.r, (s.n + 1) * sizeof(*nr));
			if (!nr) {
				ret = pr_errno(-ENOMEM, "unix sockets of the tree");
				break;
			}
			s.r = nr;
			s.r[s.n++] = (struct uref){ procs[p], i, d };
		}
	}
	for (size_t k = 0; k < s.n && !ret; k++)
		ret = merge_one(&s, &s.r[k], procs[0]->opts) ?:
		      sk_unix_cred_merge(procs, n, s.r[k].c->pid, s.r[k].d->unix_sk) ?:
		      connectors(&s, &s.r[k]);
	for (size_t k = 0; k < s.n && !ret; k++)
		if (s.r[k].d->has_netns)
			ret = other_netns_merge(&s, k);
	if (!ret && n > 1)
		ret = check_netns(&s, procs, n);
	free(s.r);
	return ret;
}

/* ---- restore ------------------------------------------------------------------------ */

/* In the restore child, every socket of the tree in this task: all of them made at once,
 * staged. */
/* In the restore child: the fd of description @id in flight that is not a socket being
 * made: opened (and staged) by its own row if not yet, or the tree's (stasis's). */
static int task_rights_fd(void *arg, uint32_t id)
{
	struct fd_rst *s = arg;
	ssize_t j = fd_desc_index(s->f, id);
	if (j < 0) {
		if (s->gfd && id < s->n_gfd && s->gfd[id] >= 0)
			return s->gfd[id];
		pr_err("files image: file %u in flight is not in the image", id);
		return -EINVAL;
	}
	const FileDesc *d = s->f->files[j];
	const struct fd_ops *ops = fd_ops_of(d);
	if (s->staged[j] < 0 && ops && ops != &fd_unix_ops && ops->open_task) {
		int ret = ops->open_task(s, (size_t)j);
		if (ret)
			return ret;
	} else if (s->staged[j] < 0 && ops && ops != &fd_unix_ops && ops->open) {
		int tmp = ops->open(d, -1, -1, s->blobs);
		if (tmp < 0)
			return tmp;
		int r = fd_stage(tmp, s->stage_lo, -1, fd_desc_name(d));
		if (r < 0)
			return r;
		s->staged[j] = r;
	}
	if (s->staged[j] < 0) {
		pr_err("files image: file %u in flight cannot be opened", id);
		return -EINVAL;
	}
	return s->staged[j];
}

static int unix_open_task(struct fd_rst *s, size_t i)
{
	const Files *f = s->f;
	size_t n = 0;
	(void)i;
	_cleanup_free_ const FileDesc **d = calloc(f->n_files + 1, sizeof(*d));
	_cleanup_free_ int *fds = calloc(f->n_files + 1, sizeof(*fds));
	_cleanup_free_ size_t *idx = calloc(f->n_files + 1, sizeof(*idx));
	if (!d || !fds || !idx)
		return pr_errno(-ENOMEM, "restore unix sockets");
	for (size_t j = 0; j < f->n_files; j++)
		if (f->files[j]->kind == FILE_KIND__FILE_UNIX_SK && s->staged[j] < 0) {
			idx[n] = j;
			d[n++] = f->files[j];
		}
	struct sk_rights src = { task_rights_fd, s };
	struct sk_cred_ctx cx = { .exact = true, .netns = -1, .pidns = -1, .userns = -1,
				  .agent = -1 };
	int ret = sk_unix_build(d, n, fds, &src, &cx);
	if (ret)
		return ret;
	for (size_t k = 0; k < n; k++) {
		int r = ret ? -1 : fd_stage(fds[k], s->stage_lo, fd_desc_fd(f, idx[k]),
					    fd_desc_name(d[k]));
		if (ret)
			close(fds[k]);
		else if (r < 0)
			ret = r;
		else
			s->staged[idx[k]] = r;
	}
	return ret;
}

static bool has_msg_from(const UnixSk *r, const UnixSk *snd)
{
	for (size_t i = 0; named(snd) && i < r->n_msg_names; i++)
		if (same_bytes(&r->msg_names[i], &snd->name))
			return true;
	return false;
}

static bool has_icon(const UnixSk *l, uint64_t ino)
{
	for (size_t i = 0; i < l->n_icons; i++)
		if (l->icons[i] == ino)
			return true;
	return false;
}

static bool carries(const UnixSk *u, uint32_t id)
{
	for (size_t i = 0; i < u->n_rights; i++)
		for (size_t j = 0; j < u->rights[i]->n_files; j++)
			if (u->rights[i]->files[j] == id)
				return true;
	return false;
}

/* Must @da and @db be made together? (Peers, a queued connection and its listener, two
 * sockets of one name (a listener and what it accepted), a datagram and its sender, a
 * socket in flight and the one whose queue carries it.) */
static bool related(const FileDesc *da, const FileDesc *db)
{
	const UnixSk *a = da->unix_sk, *b = db->unix_sk;
	return carries(a, db->id) || carries(b, da->id) || (a->peer_ino && a->peer_ino == b->ino) || (b->peer_ino && b->peer_ino == a->ino) ||
	       has_icon(a, b->ino) || has_icon(b, a->ino) ||
	       (named(a) && named(b) && same_bytes(&a->name, &b->name)) || has_msg_from(a, b) ||
	       has_msg_from(b, a);
}

struct tdesc {
	const FileDesc *d;
	size_t proc;  /* the first process using it */
	bool multi;   /* used by several processes */
};

/* The unix descriptions of the tree not made yet, each once. */
static int tree_descs(struct fd_tree *t, struct tdesc **out, size_t *n)
{
	size_t cap = 0;
	for (size_t p = 0; p < t->n; p++)
		cap += t->f[p]->n_files;
	uint32_t maxid = 0;
	for (size_t p = 0; p < t->n; p++)
		for (size_t i = 0; i < t->f[p]->n_files; i++)
			maxid = MAX(maxid, t->f[p]->files[i]->id);
	struct tdesc *v = calloc(cap + 1, sizeof(*v));
	_cleanup_free_ size_t *pos = calloc((size_t)maxid + 1, sizeof(*pos)); /* k + 1 */
	if (!v || !pos) {
		free(v);
		return pr_errno(-ENOMEM, "restore unix sockets");
	}
	*n = 0;
	for (size_t p = 0; p < t->n; p++)
		for (size_t i = 0; i < t->f[p]->n_files; i++) {
			const FileDesc *x = t->f[p]->files[i];
			if (x->kind != FILE_KIND__FILE_UNIX_SK || t->gfd[x->id] >= 0)
				continue;
			if (pos[x->id]) {
				struct tdesc *o = &v[pos[x->id] - 1];
				o->multi |= o->proc != p;
			} else {
				v[*n] = (struct tdesc){ .d = x, .proc = p };
				pos[x->id] = ++*n;
			}
		}
	*out = v;
	return 0;
}

/* In stasis: the fd of description @id in flight that is not a socket being made,
 * opened for the tree by its own row if not yet. */
static int tree_rights_fd(void *arg, uint32_t id)
{
	struct fd_tree *t = arg;
	const FileDesc *d = NULL;
	for (size_t p = 0; p < t->n && !d; p++) {
		ssize_t j = fd_desc_index(t->f[p], id);
		d = j >= 0 ? t->f[p]->files[j] : NULL;
	}
	const struct fd_ops *ops = d ? fd_ops_of(d) : NULL;
	if (!d || !ops || ops == &fd_unix_ops) {
		pr_err("files image: file %u in flight is not in the image", id);
		return -EINVAL;
	}
	if (t->gfd[id] < 0 && ops->open_tree) {
		int ret = ops->open_tree(t, d);
		if (ret)
			return ret;
	} else if (t->gfd[id] < 0 && ops->open) {
		int fd = ops->open(d, -1, -1, t->blobs);
		if (fd < 0)
			return fd;
		if (fcntl(fd, F_SETFL, (int)(d->flags & SETFL_MASK)) < 0) {
			int e = pr_perror("restore: status flags of file %u", id);
			close(fd);
			return e;
		}
		int ret = fd_gfd_place(fd, t->base, &t->gfd[id]);
		if (ret)
			return ret;
	}
	if (t->gfd[id] < 0) {
		pr_err("files image: file %u in flight cannot be opened", id);
		return -EINVAL;
	}
	return t->gfd[id];
}

/* The process group @d (@m sockets) is left to when the tree made its network namespace:
 * its creator, if all the group's users are in that namespace (stasis makes the group
 * there once that process asks for its files: files_make_deferred; a socket in flight,
 * used by no process, goes with its group); else -1 (stasis makes it now, in its own). */
static ssize_t netns_owner(const struct fd_tree *t, const FileDesc *const *d, size_t m)
{
	ssize_t owner = -2;
	for (size_t k = 0; k < m; k++)
		for (size_t p = 0; p < t->n; p++) {
			ssize_t i = fd_desc_index(t->f[p], d[k]->id);
			if (i < 0 || fd_desc_fd(t->f[p], (size_t)i) < 0)
				continue; /* (a socket in flight: in a queue of the group) */
			if (t->net[p] < 0 || (owner != -2 && owner != t->net[p]))
				return -1;
			owner = t->net[p];
		}
	return owner < 0 ? -1 : owner;
}

/* The process of @t->f that makes the sockets of the network namespace task @pid created
 * (FileDesc.netns_pid): -1 for the dumper's (0), which stasis makes; -2 (logged) if no
 * such task makes one. */
static ssize_t netns_maker(const struct fd_tree *t, pid_t pid)
{
	for (size_t p = 0; pid && t->pids && p < t->n; p++)
		if (t->pids[p] == pid && t->net[p] == (ssize_t)p)
			return (ssize_t)p;
	if (!pid)
		return -1;
	pr_err("files image: a unix socket is of the network namespace of pid %d, which does "
	       "not make one", pid);
	return -2;
}

/* The peer credentials of the sockets @d[0..@m) were read in the dumper's pid and user
 * namespaces (stasis makes them as they were, see sk_unix_cred.c). */
static bool holders_ours(const FileDesc *const *d, size_t m)
{
	for (size_t k = 0; k < m; k++) {
		const PeerCred *pc = d[k]->unix_sk->peer_cred;
		if (pc && !pc->dumper_ns)
			return false;
	}
	return true;
}

/* The group of @all[@k] among @all[0..@n) (@v: where each is used), marked in @in, its
 * members appended to @d at *@m: 1 if stasis makes it now (*@exact: its peer credentials
 * as recorded), 0 if not (within one process: its restore child makes it; the creator of
 * its network namespace does), or -errno. */
static int tree_group(struct fd_tree *t, const struct tdesc *v, const FileDesc **all, size_t n,
		      size_t k, bool *in, const FileDesc **d, size_t *m, bool *exact)
{
	_cleanup_free_ bool *mine = calloc(n + 1, sizeof(*mine));
	if (!mine || group_of(all, n, k, mine))
		return -ENOMEM;
	size_t m0 = *m, proc0 = SIZE_MAX;
	bool spans = false;
	for (size_t j = 0; j < n; j++)
		if (mine[j]) {
			in[j] = true;
			if (proc0 == SIZE_MAX)
				proc0 = v[j].proc;
			spans |= v[j].multi || v[j].proc != proc0;
			d[(*m)++] = v[j].d;
		}
	const FileDesc **g = d + m0;
	size_t gm = *m - m0;
	*m = m0; /* (kept only if made now) */
	/* (a socket of another network namespace than its holder's: its group made there) */
	ssize_t other = -1;
	for (size_t j = 0; j < gm; j++)
		if (g[j]->has_netns_pid) {
			if (other >= 0 && g[j]->netns_pid != g[other]->netns_pid) {
				pr_err("files image: unix socket %llu is made with sockets of "
				       "another network namespace",
				       (unsigned long long)g[j]->unix_sk->ino);
				return -EINVAL;
			}
			other = (ssize_t)j;
		}
	if (!spans && other < 0)
		return 0;
	for (size_t j = 0; j < gm; j++)
		if (g[j]->unix_sk->in_task_root) {
			pr_err("files image: unix socket %llu bound in its task's mount namespace is "
			       "made with sockets of other processes",
			       (unsigned long long)g[j]->unix_sk->ino);
			return -EINVAL;
		}
	ssize_t owner = !t->net ? -1 : other >= 0 ? netns_maker(t, g[other]->netns_pid)
						  : netns_owner(t, g, gm);
	if (owner == -2)
		return -EINVAL;
	for (size_t j = 0; j < gm && owner >= 0; j++)
		t->defer[g[j]->id] = owner;
	if (owner >= 0)
		return 0; /* made by the creator of their network namespace */
	/* made by stasis: for holders in its own namespaces as recorded, or for the
	 * creator of their network namespace by children born in its pid and user
	 * namespaces (its tasks', unless one made its own since) */
	*exact = t->pidns >= 0 || t->userns >= 0 || holders_ours(g, gm);
	*m = m0 + gm;
	return 1;
}

/* In stasis, for a tree: the group of unix sockets @first belongs to (everything it must
 * be made together with), when it spans several processes, and with it every other such
 * group made the same way (one build: the sockets of one creator made by one child of
 * stasis, where a build per group was a fork per socketpair): made at once, status flags
 * set, placed at t->gfd[id]. A group within one process is left to its restore child,
 * which makes it in the task's own network namespace. */
static int unix_open_tree(struct fd_tree *t, const FileDesc *first)
{
	struct tdesc *v = NULL;
	size_t n = 0, m = 0, first_k;
	int ret = tree_descs(t, &v, &n);
	if (ret)
		return ret;
	_cleanup_free_ const FileDesc **d = calloc(n + 1, sizeof(*d));
	_cleanup_free_ int *fds = calloc(n + 1, sizeof(*fds));
	_cleanup_free_ bool *in = calloc(n + 1, sizeof(*in));
	_cleanup_free_ const FileDesc **all = calloc(n + 1, sizeof(*all));
	for (first_k = 0; first_k < n && all; first_k++)
		if (v[first_k].d->id == first->id)
			break;
	for (size_t k = 0; k < n && all; k++)
		all[k] = v[k].d;
	bool exact = false, same = false;
	ret = !d || !fds || !in || !all ? -ENOMEM
	      : first_k == n		 ? 0
					 : tree_group(t, v, all, n, first_k, in, d, &m, &exact);
	for (size_t k = 0; k < n && ret > 0; k++)
		if (!in[k] && v[k].d->id > first->id) {
			size_t m0 = m;
			int r = tree_group(t, v, all, n, k, in, d, &m, &same);
			if (r < 0)
				ret = r;
			else if (r > 0 && same != exact)
				m = m0; /* (made another way: by a call of its own) */
		}
	free(v);
	if (ret <= 0)
		return ret ? pr_errno(ret, "restore unix sockets") : 0;
	struct sk_rights src = { tree_rights_fd, t };
	struct sk_cred_ctx cx = { .exact = exact, .netns = t->netns, .pidns = t->pidns,
				  .userns = t->userns, .agent = t->agent,
				  .agent_pid = t->agent_pid };
	ret = sk_unix_build(d, m, fds, &src, &cx);
	if (ret)
		return ret;
	for (size_t k = 0; k < m; k++) {
		if (!ret && fcntl(fds[k], F_SETFL, (int)(d[k]->flags & SETFL_MASK)) < 0)
			ret = pr_perror("restore: status flags of unix socket %llu",
					(unsigned long long)d[k]->unix_sk->ino);
		if (ret)
			close(fds[k]);
		else
			ret = fd_gfd_place(fds[k], t->base, &t->gfd[d[k]->id]);
	}
	return ret;
}

static int unix_classify(const struct dump_ctx *c, struct fd_ent *e)
{
	if (!S_ISSOCK(e->st.st_mode) && !str_starts(e->link, "socket:"))
		return 0;
	int domain = e->sk_domain; /* (collect_ent) */
	if (!S_ISSOCK(e->st.st_mode)) {
		_cleanup_close_ int dup = fd_dup(c, e);
		if (dup < 0)
			return dup;
		int ret = get_int_opt(dup, SO_DOMAIN, &domain);
		if (ret)
			return pr_errno(ret, "SO_DOMAIN of fd %d of pid %d", e->fd, c->pid);
	}
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
	return sk_unix_dump_fd(c, e, dup, d);
}

const struct fd_ops fd_unix_ops = {
	.name = "unix socket",
	.kind = FILE_KIND__FILE_UNIX_SK,
	.fdinfo_keys = (const char *const[]){ "scm_fds", NULL },
	.flags = FD_OPS_NETNS,
	.classify = unix_classify,
	.dump = unix_dump,
	.merge = unix_merge,
	.validate = sk_unix_validate,
	.open_task = unix_open_task,
	.open_tree = unix_open_tree,
};
