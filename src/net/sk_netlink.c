/* AF_NETLINK sockets (row fd_netlink_ops, kind FILE_NETLINK, FileDesc.netlink).
 *
 * Dump, on a pidfd_getfd duplicate (the same socket), which must belong to one process of
 * the tree and live in its task's network namespace (it must be in the netlink_diag dump
 * of that namespace, below):
 *   - SO_TYPE / SO_PROTOCOL; getsockname: the bound port id (nl_pid: picked by the kernel
 *     at autobind, or by the program) — 0 when never bound; getpeername: the connected
 *     destination (port id, group);
 *   - NETLINK_LIST_MEMBERSHIPS: every group (not only the first 32 of nl_groups);
 *   - NETLINK_PKTINFO, NETLINK_BROADCAST_ERROR, NETLINK_NO_ENOBUFS,
 *     NETLINK_LISTEN_ALL_NSID, NETLINK_CAP_ACK, NETLINK_EXT_ACK, NETLINK_GET_STRICT_CHK;
 *   - the socket options (src/net/sockopt.c);
 *   - the receive queue must be empty: a reply or notification waiting there cannot be
 *     made again by the kernel, and re-sending it from user space would not carry the
 *     kernel's credentials (refused while poll says POLLIN). A dump in progress (the
 *     kernel holds its continuation: NDIAG_FLAG_CB_RUNNING, one netlink_diag dump per
 *     network namespace for the whole tree in the merge hook) is refused as well. mmap'ed
 *     rings do not exist on this kernel any more.
 *
 * Restore, in the task's restore child once its other fds are placed (a late row: made by
 * the task itself, in its network namespace, with its credentials): socket(); the flags and early options; bind to the
 * same port id (exact: the bind fails if it is taken); the groups with
 * NETLINK_ADD_MEMBERSHIP; connect; the late options.
 */
#include <errno.h>
#include <linux/netlink.h>
#include <linux/netlink_diag.h>
#include <linux/rtnetlink.h>
#include <linux/sock_diag.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "core/log.h"
#include "core/util.h"
#include "files/fd_ops.h"
#include "net/sk_dgram.h"
#include "net/sockopt.h"

#ifndef NETLINK_EXT_ACK
#define NETLINK_EXT_ACK 11
#endif
#ifndef NETLINK_GET_STRICT_CHK
#define NETLINK_GET_STRICT_CHK 12
#endif
#define NL_GROUP_WORDS 1024 /* 32768 groups: far above any family's */

struct nl_flag {
	int opt;
	uint32_t bit; /* NDIAG_FLAG_* in NetlinkSk.flags */
	const char *name;
};

static const struct nl_flag nl_flags[] = {
	{ NETLINK_PKTINFO, NDIAG_FLAG_PKTINFO, "NETLINK_PKTINFO" },
	{ NETLINK_BROADCAST_ERROR, NDIAG_FLAG_BROADCAST_ERROR, "NETLINK_BROADCAST_ERROR" },
	{ NETLINK_NO_ENOBUFS, NDIAG_FLAG_NO_ENOBUFS, "NETLINK_NO_ENOBUFS" },
	{ NETLINK_LISTEN_ALL_NSID, NDIAG_FLAG_LISTEN_ALL_NSID, "NETLINK_LISTEN_ALL_NSID" },
	{ NETLINK_CAP_ACK, NDIAG_FLAG_CAP_ACK, "NETLINK_CAP_ACK" },
};
#define NL_FLAGS_ALL                                                               \
	(NDIAG_FLAG_PKTINFO | NDIAG_FLAG_BROADCAST_ERROR | NDIAG_FLAG_NO_ENOBUFS | \
	 NDIAG_FLAG_LISTEN_ALL_NSID | NDIAG_FLAG_CAP_ACK)

static int nl_opt(int sk, int opt, int *v)
{
	socklen_t l = sizeof(*v);
	*v = 0;
	return getsockopt(sk, SOL_NETLINK, opt, v, &l) ? -errno : 0;
}

static int nl_groups(pid_t pid, int fd, int dup, NetlinkSk *n)
{
	_cleanup_free_ uint32_t *g = calloc(NL_GROUP_WORDS, sizeof(*g));
	socklen_t l = NL_GROUP_WORDS * sizeof(*g);
	if (!g)
		return pr_errno(-ENOMEM, "fd %d of pid %d", fd, pid);
	if (getsockopt(dup, SOL_NETLINK, NETLINK_LIST_MEMBERSHIPS, g, &l))
		return pr_perror("fd %d of pid %d: NETLINK_LIST_MEMBERSHIPS", fd, pid);
	if (l > NL_GROUP_WORDS * sizeof(*g)) {
		pr_err("fd %d of pid %d: a netlink socket in more than %u groups: not supported",
		       fd, pid, NL_GROUP_WORDS * 32);
		return -EOPNOTSUPP;
	}
	size_t words = l / sizeof(*g);
	while (words && !g[words - 1])
		words--;
	n->n_groups = words;
	n->groups = words ? steal_ptr(&g) : NULL;
	return 0;
}

static int nl_dump(const struct dump_ctx *c, const struct fd_ent *e, FileDesc *d)
{
	pid_t pid = c->ospid; /* (a live thread of a zombie leader: its /proc/PID/net) */
	int fd = e->fd, type = 0, proto = 0, ret;
	_cleanup_close_ int dup = fd_dup(c, e);
	if (dup < 0)
		return dup;
	socklen_t l = sizeof(int);
	if (getsockopt(dup, SOL_SOCKET, SO_TYPE, &type, &l) ||
	    getsockopt(dup, SOL_SOCKET, SO_PROTOCOL, &proto, &l))
		return pr_perror("fd %d of pid %d: netlink socket type", fd, pid);
	if ((ret = sk_refuse_error(pid, fd, dup, e->link, "a netlink socket")))
		return ret;
	if (sk_has_queued(dup))
		return sk_refuse(pid, fd, e->link,
				 "a netlink socket with messages queued (a "
				 "kernel reply cannot be made again)");

	NetlinkSk *n = malloc(sizeof(*n));
	if (!n)
		return pr_errno(-ENOMEM, "fd %d of pid %d", fd, pid);
	netlink_sk__init(n);
	d->netlink = n;
	n->type = (uint32_t)type;
	n->protocol = (uint32_t)proto;

	struct sockaddr_nl a;
	l = sizeof(a);
	memset(&a, 0, sizeof(a));
	if (getsockname(dup, (struct sockaddr *)&a, &l))
		return pr_perror("fd %d of pid %d: getsockname", fd, pid);
	n->has_portid = a.nl_pid != 0;
	n->portid = a.nl_pid;
	l = sizeof(a);
	memset(&a, 0, sizeof(a));
	if (getpeername(dup, (struct sockaddr *)&a, &l) == 0 && (a.nl_pid || a.nl_groups)) {
		n->has_dst_portid = n->has_dst_group = true;
		n->dst_portid = a.nl_pid;
		n->dst_group = a.nl_groups;
	}
	if ((ret = nl_groups(pid, fd, dup, n)))
		return ret;
	for (size_t i = 0; i < sizeof(nl_flags) / sizeof(nl_flags[0]); i++) {
		int v;
		if (!nl_opt(dup, nl_flags[i].opt, &v) && v)
			n->flags |= nl_flags[i].bit;
	}
	n->has_flags = n->flags != 0;
	int v;
	if (!nl_opt(dup, NETLINK_EXT_ACK, &v) && v)
		n->has_ext_ack = n->ext_ack = true;
	if (!nl_opt(dup, NETLINK_GET_STRICT_CHK, &v) && v)
		n->has_strict_chk = n->strict_chk = true;
	if ((ret = sockopt_dump(dup, pid, fd, &n->opts)))
		return ret;
	pr_debug("pid %d fd %d: netlink protocol %d, port id %u, %zu group words", pid, fd, proto,
		 n->portid, n->n_groups);
	return 0;
}

/* ---- the tree: dumps in progress, from one netlink_diag dump per namespace ------- */

static int nl_diag_one(const struct nlmsghdr *h, void *arg)
{
	struct sk_scan *s = arg;
	if (h->nlmsg_type != SOCK_DIAG_BY_FAMILY ||
	    h->nlmsg_len < NLMSG_LENGTH(sizeof(struct netlink_diag_msg)))
		return 0;
	const struct netlink_diag_msg *m = NLMSG_DATA(h);
	uint32_t flags = 0;
	if (sk_inos_add(&s->seen, m->ndiag_ino))
		return pr_errno(-ENOMEM, "netlink sockets of the tree");
	int len = (int)(h->nlmsg_len - NLMSG_LENGTH(sizeof(*m)));
	for (const struct rtattr *a = (const struct rtattr *)(m + 1); RTA_OK(a, len);
	     a = RTA_NEXT(a, len))
		if (a->rta_type == NETLINK_DIAG_FLAGS && RTA_PAYLOAD(a) >= 4)
			memcpy(&flags, RTA_DATA(a), 4);
	if (!(flags & NDIAG_FLAG_CB_RUNNING))
		return 0;
	for (size_t p = 0; p < s->n; p++) {
		const Files *f = s->procs[p]->files;
		if (s->ns[p] != s->netns)
			continue;
		for (size_t i = 0; i < f->n_files; i++)
			if (f->files[i]->kind == FILE_KIND__FILE_NETLINK &&
			    f->files[i]->ino == m->ndiag_ino) {
				pr_err("fd %d of pid %d is a netlink socket with a dump in progress "
				       "(the kernel holds its continuation): not supported",
				       fd_desc_fd(f, i), s->procs[p]->pid);
				return -EOPNOTSUPP;
			}
	}
	return 0;
}

static int nl_merge(struct dump_ctx **procs, size_t n)
{
	int ret = sk_refuse_shared(procs, n, FILE_KIND__FILE_NETLINK, "a netlink socket");
	if (ret)
		return ret;
	struct {
		struct nlmsghdr h;
		struct netlink_diag_req r;
	} req;
	memset(&req, 0, sizeof(req));
	req.r.sdiag_family = AF_NETLINK;
	req.r.sdiag_protocol = NDIAG_PROTO_ALL;
	req.r.ndiag_show = NDIAG_SHOW_FLAGS;
	return sk_diag_scan(procs, n, FILE_KIND__FILE_NETLINK, &req, sizeof(req), nl_diag_one,
			    "netlink socket");
}

/* ---- restore -------------------------------------------------------------------- */

static int nl_validate(const FileDesc *d, const struct blob_reader *blobs)
{
	(void)blobs;
	const NetlinkSk *n = d->netlink;
	if (!n) {
		pr_err("files image: netlink socket %u has no socket data", d->id);
		return -EINVAL;
	}
	if ((n->type != SOCK_RAW && n->type != SOCK_DGRAM) || n->protocol >= MAX_LINKS ||
	    n->n_groups > NL_GROUP_WORDS || (n->flags & ~(uint32_t)NL_FLAGS_ALL) ||
	    (n->has_peek_off && n->peek_off < -1)) {
		pr_err("files image: netlink socket %u has bad socket data (type %u, protocol "
		       "%u, %zu group words, flags %#x)",
		       d->id, n->type, n->protocol, n->n_groups, n->flags);
		return -EINVAL;
	}
	char what[64];
	snprintf(what, sizeof(what), "files image: netlink socket %u", d->id);
	if (n->opts && sockopt_validate(n->opts, AF_NETLINK, (int)n->type, (int)n->protocol, what))
		return -EINVAL;
	return 0;
}

static int nl_set(int sk, int opt, int v, uint32_t id, const char *name)
{
	if (setsockopt(sk, SOL_NETLINK, opt, &v, sizeof(v)))
		return pr_perror("restore netlink socket %u: %s", id, name);
	return 0;
}

static int nl_make(const FileDesc *d)
{
	const NetlinkSk *n = d->netlink;
	int ret = 0;
	_cleanup_close_ int sk =
		socket(AF_NETLINK, (int)n->type | SOCK_CLOEXEC | SOCK_NONBLOCK, (int)n->protocol);
	if (sk < 0)
		return pr_perror("restore netlink socket %u: socket(protocol %u)", d->id, n->protocol);
	for (size_t i = 0; i < sizeof(nl_flags) / sizeof(nl_flags[0]) && !ret; i++)
		if (n->flags & nl_flags[i].bit)
			ret = nl_set(sk, nl_flags[i].opt, 1, d->id, nl_flags[i].name);
	if (!ret && n->ext_ack)
		ret = nl_set(sk, NETLINK_EXT_ACK, 1, d->id, "NETLINK_EXT_ACK");
	if (!ret && n->strict_chk)
		ret = nl_set(sk, NETLINK_GET_STRICT_CHK, 1, d->id, "NETLINK_GET_STRICT_CHK");
	char what[64];
	snprintf(what, sizeof(what), "netlink socket %u", d->id);
	if (!ret && n->opts)
		ret = sockopt_restore(sk, n->opts, SOCKOPT_EARLY, what);
	if (ret)
		return ret;
	if (n->has_portid && n->portid) {
		struct sockaddr_nl a = { .nl_family = AF_NETLINK, .nl_pid = n->portid };
		if (bind(sk, (struct sockaddr *)&a, sizeof(a)))
			return pr_perror("restore netlink socket %u: bind to port id %u", d->id,
					 n->portid);
	}
	for (size_t w = 0; w < n->n_groups; w++)
		for (unsigned int b = 0; b < 32; b++) {
			if (!(n->groups[w] & (1u << b)))
				continue;
			int g = (int)(w * 32 + b + 1);
			if (setsockopt(sk, SOL_NETLINK, NETLINK_ADD_MEMBERSHIP, &g, sizeof(g)))
				return pr_perror("restore netlink socket %u: join group %d", d->id, g);
		}
	if (n->has_dst_portid || n->has_dst_group) {
		struct sockaddr_nl a = { .nl_family = AF_NETLINK,
					 .nl_pid = n->dst_portid,
					 .nl_groups = n->dst_group };
		if (connect(sk, (struct sockaddr *)&a, sizeof(a)))
			return pr_perror("restore netlink socket %u: connect to port id %u group "
					 "%#x",
					 d->id, n->dst_portid, n->dst_group);
	}
	if (n->opts && (ret = sockopt_restore(sk, n->opts, SOCKOPT_LATE, what)))
		return ret;
	return take_fd(&sk);
}

/* In the restore child, every other fd placed (the task's network namespace, its
 * credentials): each netlink socket of the task. */
static int nl_late(struct fd_rst *s)
{
	for (size_t i = 0; i < s->f->n_files; i++) {
		const FileDesc *d = s->f->files[i];
		if (d->kind != FILE_KIND__FILE_NETLINK || s->staged[i] >= 0 || fd_desc_fd(s->f, i) < 0)
			continue;
		int sk = nl_make(d);
		if (sk < 0)
			return sk;
		int ret = fd_place_late(s, i, sk);
		if (ret)
			return ret;
	}
	return 0;
}

/* A socket several processes share, made once (by stasis, or by the creator of its
 * network namespace) before any of them exists. */
static int nl_open(const FileDesc *d, int target, int rootfd, const struct blob_reader *blobs)
{
	(void)target;
	(void)rootfd;
	(void)blobs;
	return nl_make(d);
}

static int nl_classify(const struct dump_ctx *c, struct fd_ent *e)
{
	struct sk_ident id;
	int ret = sk_ident_of(c, e, &id);
	if (ret <= 0 || id.domain != AF_NETLINK)
		return ret < 0 ? ret : 0;
	e->kind = FILE_KIND__FILE_NETLINK;
	return 1;
}

const struct fd_ops fd_netlink_ops = {
	.name = "netlink socket",
	.kind = FILE_KIND__FILE_NETLINK,
	.flags = FD_OPS_LATE | FD_OPS_NETNS,
	.classify = nl_classify,
	.dump = nl_dump,
	.merge = nl_merge,
	.validate = nl_validate,
	.open = nl_open,
	.late = nl_late,
};
