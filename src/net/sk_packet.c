/* AF_PACKET sockets (row fd_packet_ops, kind FILE_PACKET, FileDesc.packet).
 *
 * Dump, on a pidfd_getfd duplicate (the same socket), which must belong to one process of
 * the tree and live in its task's network namespace (it must be in the packet_diag dump
 * of that namespace, below):
 *   - SO_TYPE (SOCK_RAW, SOCK_DGRAM; the obsolete SOCK_PACKET refused); getsockname: the
 *     protocol it receives (as bound) and the bound interface index (0: every one;
 *     interfaces are those of the namespace, rebuilt with their ifindex by netns.c);
 *   - PACKET_VERSION, PACKET_RESERVE, PACKET_AUXDATA, PACKET_ORIGDEV, PACKET_VNET_HDR,
 *     PACKET_TIMESTAMP, PACKET_LOSS, PACKET_QDISC_BYPASS, PACKET_IGNORE_OUTGOING with
 *     getsockopt; a fanout group (PACKET_FANOUT) is refused;
 *   - packet_diag, one dump per network namespace for the whole tree (merge hook): the
 *     multicast list (PACKET_ADD_MEMBERSHIP entries, with their counts), PACKET_COPY_THRESH,
 *     and the rings: an mmap'ed RX/TX ring is refused;
 *   - the socket options, the BPF filter among them (src/net/sockopt.c);
 *   - the receive queue must be empty: a frame re-sent on an interface would be seen by
 *     every other socket of the namespace (refused while poll says POLLIN).
 *
 * Restore, in the task's restore child once its other fds are placed (a late row: made by
 * the task itself): socket(type, 0) (no frame can arrive before the
 * options are set), the PACKET_* options and early options, bind (protocol, ifindex)
 * when it receives anything, the multicast list, the late options (the filter last). */
#include <arpa/inet.h>
#include <errno.h>
#include <linux/if_packet.h>
#include <linux/packet_diag.h>
#include <linux/rtnetlink.h>
#include <linux/sock_diag.h>
#include <net/ethernet.h>
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

#ifndef PACKET_IGNORE_OUTGOING
#define PACKET_IGNORE_OUTGOING 23
#endif
#define PK_MC_MAX 1024
#define PK_ADDR_MAX 8 /* packet_mreq.mr_address */

static int pk_opt(int sk, int opt, int *v)
{
	socklen_t l = sizeof(*v);
	*v = 0;
	return getsockopt(sk, SOL_PACKET, opt, v, &l) ? -errno : 0;
}

static int pk_opts(pid_t pid, int fd, int dup, const char *link, PacketSk *k)
{
	int v;
	if (!pk_opt(dup, PACKET_FANOUT, &v) && v)
		return sk_refuse(pid, fd, link, "a packet socket in a fanout group");
	if (pk_opt(dup, PACKET_VERSION, &v))
		return pr_perror("fd %d of pid %d: PACKET_VERSION", fd, pid);
	k->has_version = v != TPACKET_V1;
	k->version = (uint32_t)v;
	if (!pk_opt(dup, PACKET_RESERVE, &v) && v)
		k->has_reserve = true, k->reserve = (uint32_t)v;
	if (!pk_opt(dup, PACKET_AUXDATA, &v) && v)
		k->has_auxdata = k->auxdata = true;
	if (!pk_opt(dup, PACKET_ORIGDEV, &v) && v)
		k->has_origdev = k->origdev = true;
	if (!pk_opt(dup, PACKET_VNET_HDR, &v) && v)
		k->has_vnet_hdr = k->vnet_hdr = true;
	if (!pk_opt(dup, PACKET_TIMESTAMP, &v) && v)
		k->has_timestamp = true, k->timestamp = (uint32_t)v;
	if (!pk_opt(dup, PACKET_LOSS, &v) && v)
		k->has_loss = k->loss = true;
	if (!pk_opt(dup, PACKET_QDISC_BYPASS, &v) && v)
		k->has_qdisc_bypass = k->qdisc_bypass = true;
	if (!pk_opt(dup, PACKET_IGNORE_OUTGOING, &v) && v)
		k->has_ignore_outgoing = k->ignore_outgoing = true;
	return 0;
}

static int pk_dump(const struct dump_ctx *c, const struct fd_ent *e, FileDesc *d)
{
	pid_t pid = c->ospid; /* (a live thread of a zombie leader: its /proc/PID/net) */
	int fd = e->fd, type = 0, ret;
	_cleanup_close_ int dup = fd_dup(c, e);
	if (dup < 0)
		return dup;
	socklen_t l = sizeof(type);
	if (getsockopt(dup, SOL_SOCKET, SO_TYPE, &type, &l))
		return pr_perror("fd %d of pid %d: packet socket type", fd, pid);
	if (type != SOCK_RAW && type != SOCK_DGRAM)
		return sk_refuse(pid, fd, e->link, "a SOCK_PACKET packet socket");
	if ((ret = sk_refuse_error(pid, fd, dup, e->link, "a packet socket")))
		return ret;
	if (sk_has_queued(dup))
		return sk_refuse(pid, fd, e->link, "a packet socket with frames queued");
	struct sockaddr_ll a;
	l = sizeof(a);
	memset(&a, 0, sizeof(a));
	if (getsockname(dup, (struct sockaddr *)&a, &l))
		return pr_perror("fd %d of pid %d: getsockname", fd, pid);

	PacketSk *k = malloc(sizeof(*k));
	if (!k)
		return pr_errno(-ENOMEM, "fd %d of pid %d", fd, pid);
	packet_sk__init(k);
	d->packet = k;
	k->type = (uint32_t)type;
	k->protocol = a.sll_protocol;
	k->has_ifindex = a.sll_ifindex != 0;
	k->ifindex = (uint32_t)a.sll_ifindex;
	if ((ret = pk_opts(pid, fd, dup, e->link, k)))
		return ret;
	if ((ret = sockopt_dump(dup, pid, fd, &k->opts)))
		return ret;
	pr_debug("pid %d fd %d: packet socket, protocol %#x, ifindex %d", pid, fd,
		 ntohs(a.sll_protocol), a.sll_ifindex);
	return 0;
}

/* ---- the tree: multicast lists and rings, one packet_diag dump per namespace ---- */

static int pk_add_mc(PacketSk *k, const struct packet_diag_mclist *m)
{
	if (k->n_mclist >= PK_MC_MAX || m->pdmc_alen > PK_ADDR_MAX)
		return -EOPNOTSUPP;
	PacketMc **nl = realloc(k->mclist, (k->n_mclist + 1) * sizeof(*nl));
	if (!nl)
		return -ENOMEM;
	k->mclist = nl;
	PacketMc *p = calloc(1, sizeof(*p));
	if (!p)
		return -ENOMEM;
	packet_mc__init(p);
	k->mclist[k->n_mclist++] = p;
	p->ifindex = m->pdmc_index;
	p->type = m->pdmc_type;
	p->has_count = true;
	p->count = m->pdmc_count;
	if (m->pdmc_alen) {
		p->has_addr = true;
		p->addr.data = malloc(m->pdmc_alen);
		if (!p->addr.data)
			return -ENOMEM;
		memcpy(p->addr.data, m->pdmc_addr, m->pdmc_alen);
		p->addr.len = m->pdmc_alen;
	}
	return 0;
}

static int pk_fill(const struct nlmsghdr *h, PacketSk *k, int fd, pid_t pid)
{
	const struct packet_diag_msg *m = NLMSG_DATA(h);
	int len = (int)(h->nlmsg_len - NLMSG_LENGTH(sizeof(*m)));
	for (const struct rtattr *a = (const struct rtattr *)(m + 1); RTA_OK(a, len);
	     a = RTA_NEXT(a, len)) {
		if (a->rta_type == PACKET_DIAG_RX_RING || a->rta_type == PACKET_DIAG_TX_RING) {
			pr_err("fd %d of pid %d is a packet socket with an mmap'ed %s ring: not "
			       "supported",
			       fd, pid, a->rta_type == PACKET_DIAG_RX_RING ? "RX" : "TX");
			return -EOPNOTSUPP;
		}
		if (a->rta_type == PACKET_DIAG_INFO &&
		    RTA_PAYLOAD(a) >= sizeof(struct packet_diag_info)) {
			const struct packet_diag_info *i = RTA_DATA(a);
			k->has_copy_thresh = i->pdi_copy_thresh != 0;
			k->copy_thresh = i->pdi_copy_thresh;
		}
		if (a->rta_type != PACKET_DIAG_MCLIST)
			continue;
		size_t n = RTA_PAYLOAD(a) / sizeof(struct packet_diag_mclist);
		const struct packet_diag_mclist *mc = RTA_DATA(a);
		for (size_t j = 0; j < n; j++) {
			struct packet_diag_mclist one;
			memcpy(&one, &mc[j], sizeof(one));
			int ret = pk_add_mc(k, &one);
			if (ret == -EOPNOTSUPP) {
				pr_err("fd %d of pid %d: a packet socket with more than %d multicast "
				       "entries or a long address: not supported",
				       fd, pid, PK_MC_MAX);
				return ret;
			}
			if (ret)
				return pr_errno(ret, "fd %d of pid %d", fd, pid);
		}
	}
	return 0;
}

static int pk_diag_one(const struct nlmsghdr *h, void *arg)
{
	struct sk_scan *s = arg;
	if (h->nlmsg_type != SOCK_DIAG_BY_FAMILY ||
	    h->nlmsg_len < NLMSG_LENGTH(sizeof(struct packet_diag_msg)))
		return 0;
	const struct packet_diag_msg *m = NLMSG_DATA(h);
	if (sk_inos_add(&s->seen, m->pdiag_ino))
		return pr_errno(-ENOMEM, "packet sockets of the tree");
	for (size_t p = 0; p < s->n; p++) {
		const Files *f = s->procs[p]->files;
		if (s->ns[p] != s->netns)
			continue;
		for (size_t i = 0; i < f->n_files; i++) {
			FileDesc *d = f->files[i];
			int ret = d->kind == FILE_KIND__FILE_PACKET && d->ino == m->pdiag_ino &&
						  d->packet
					  ? pk_fill(h, d->packet, fd_desc_fd(f, i), s->procs[p]->pid)
					  : 0; /* (every copy: one in each process sharing it) */
			if (ret)
				return ret;
		}
	}
	return 0;
}

static int pk_merge(struct dump_ctx **procs, size_t n)
{
	int ret = sk_refuse_shared(procs, n, FILE_KIND__FILE_PACKET, "a packet socket");
	if (ret)
		return ret;
	struct {
		struct nlmsghdr h;
		struct packet_diag_req r;
	} req;
	memset(&req, 0, sizeof(req));
	req.r.sdiag_family = AF_PACKET;
	req.r.pdiag_show = PACKET_SHOW_INFO | PACKET_SHOW_MCLIST | PACKET_SHOW_RING_CFG;
	return sk_diag_scan(procs, n, FILE_KIND__FILE_PACKET, &req, sizeof(req), pk_diag_one,
			    "packet socket");
}

/* ---- restore -------------------------------------------------------------------- */

static int pk_validate(const FileDesc *d, const struct blob_reader *blobs)
{
	(void)blobs;
	const PacketSk *k = d->packet;
	if (!k) {
		pr_err("files image: packet socket %u has no socket data", d->id);
		return -EINVAL;
	}
	if ((k->type != SOCK_RAW && k->type != SOCK_DGRAM) || k->protocol > 0xffff ||
	    k->ifindex > INT32_MAX || (k->has_version && k->version > TPACKET_V3) ||
	    k->n_mclist > PK_MC_MAX || (k->has_timestamp && k->timestamp > 0xffff)) {
		pr_err("files image: packet socket %u has bad socket data", d->id);
		return -EINVAL;
	}
	for (size_t i = 0; i < k->n_mclist; i++) {
		const PacketMc *m = k->mclist[i];
		if (!m || m->addr.len > PK_ADDR_MAX || m->ifindex > INT32_MAX || m->type > 0xffff ||
		    (m->has_count && (m->count == 0 || m->count > 1024))) {
			pr_err("files image: packet socket %u: bad multicast entry %zu", d->id, i);
			return -EINVAL;
		}
	}
	char what[64];
	snprintf(what, sizeof(what), "files image: packet socket %u", d->id);
	if (k->opts && sockopt_validate(k->opts, AF_PACKET, (int)k->type, 0, what))
		return -EINVAL;
	return 0;
}

static int pk_set(int sk, int opt, int v, uint32_t id, const char *name)
{
	if (setsockopt(sk, SOL_PACKET, opt, &v, sizeof(v)))
		return pr_perror("restore packet socket %u: %s", id, name);
	return 0;
}

static int pk_restore_opts(int sk, const PacketSk *k, uint32_t id)
{
	int ret = 0;
#define PK(cond, opt, val)                                           \
	do {                                                         \
		if (!ret && (cond))                                  \
			ret = pk_set(sk, opt, (int)(val), id, #opt); \
	} while (0)
	PK(k->has_version, PACKET_VERSION, k->version);
	PK(k->has_reserve, PACKET_RESERVE, k->reserve);
	PK(k->auxdata, PACKET_AUXDATA, 1);
	PK(k->origdev, PACKET_ORIGDEV, 1);
	PK(k->vnet_hdr, PACKET_VNET_HDR, 1);
	PK(k->has_timestamp, PACKET_TIMESTAMP, k->timestamp);
	PK(k->loss, PACKET_LOSS, 1);
	PK(k->qdisc_bypass, PACKET_QDISC_BYPASS, 1);
	PK(k->ignore_outgoing, PACKET_IGNORE_OUTGOING, 1);
	PK(k->has_copy_thresh, PACKET_COPY_THRESH, k->copy_thresh);
#undef PK
	return ret;
}

static int pk_make(const FileDesc *d)
{
	const PacketSk *k = d->packet;
	char what[64];
	snprintf(what, sizeof(what), "packet socket %u", d->id);
	_cleanup_close_ int sk = socket(AF_PACKET, (int)k->type | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (sk < 0)
		return pr_perror("restore %s: socket", what);
	int ret = pk_restore_opts(sk, k, d->id);
	if (!ret && k->opts)
		ret = sockopt_restore(sk, k->opts, SOCKOPT_EARLY, what);
	if (ret)
		return ret;
	if (k->protocol || k->ifindex) {
		struct sockaddr_ll a = { .sll_family = AF_PACKET,
					 .sll_protocol = (uint16_t)k->protocol,
					 .sll_ifindex = (int)k->ifindex };
		if (bind(sk, (struct sockaddr *)&a, sizeof(a)))
			return pr_perror("restore %s: bind to protocol %#x, ifindex %u", what,
					 ntohs((uint16_t)k->protocol), k->ifindex);
	}
	for (size_t i = 0; i < k->n_mclist; i++) {
		const PacketMc *m = k->mclist[i];
		struct packet_mreq mr = { .mr_ifindex = (int)m->ifindex,
					  .mr_type = (uint16_t)m->type,
					  .mr_alen = (uint16_t)m->addr.len };
		if (m->addr.len)
			memcpy(mr.mr_address, m->addr.data, m->addr.len < 8 ? m->addr.len : 8);
		for (uint32_t c = 0; c < (m->has_count ? m->count : 1); c++)
			if (setsockopt(sk, SOL_PACKET, PACKET_ADD_MEMBERSHIP, &mr, sizeof(mr)))
				return pr_perror("restore %s: multicast entry %zu", what, i);
	}
	if (k->opts && (ret = sockopt_restore(sk, k->opts, SOCKOPT_LATE, what)))
		return ret;
	return take_fd(&sk);
}

/* In the restore child, every other fd placed: each packet socket of the task. */
static int pk_late(struct fd_rst *s)
{
	for (size_t i = 0; i < s->f->n_files; i++) {
		const FileDesc *d = s->f->files[i];
		if (d->kind != FILE_KIND__FILE_PACKET || s->staged[i] >= 0 || fd_desc_fd(s->f, i) < 0)
			continue;
		int sk = pk_make(d);
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
static int pk_open(const FileDesc *d, int target, int rootfd, const struct blob_reader *blobs)
{
	(void)target;
	(void)rootfd;
	(void)blobs;
	return pk_make(d);
}

static int pk_classify(const struct dump_ctx *c, struct fd_ent *e)
{
	struct sk_ident id;
	int ret = sk_ident_of(c, e, &id);
	if (ret <= 0 || id.domain != AF_PACKET)
		return ret < 0 ? ret : 0;
	e->kind = FILE_KIND__FILE_PACKET;
	return 1;
}

const struct fd_ops fd_packet_ops = {
	.name = "packet socket",
	.kind = FILE_KIND__FILE_PACKET,
	.flags = FD_OPS_LATE | FD_OPS_NETNS,
	.classify = pk_classify,
	.dump = pk_dump,
	.merge = pk_merge,
	.validate = pk_validate,
	.open = pk_open,
	.late = pk_late,
};
