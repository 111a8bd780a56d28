/* AF_INET / AF_INET6 datagram sockets (row fd_inet_dgram_ops, kind FILE_INET_DGRAM,
 * FileDesc.inet_dgram): UDP, ping sockets (SOCK_DGRAM IPPROTO_ICMP/ICMPV6) and
 * raw sockets (SOCK_RAW, any protocol).
 *
 * Dump, from outside, on a pidfd_getfd duplicate (the same socket):
 *   - the socket must belong to one process of the tree and live in its task's network
 *     namespace (a UDP socket must be in that namespace's inet_diag dump, below; a ping
 *     or raw socket's SO_NETNS_COOKIE must be a socket's made there);
 *   - getsockname / getpeername: the bound and connected addresses (a port or address
 *     the kernel picked at the first send or at connect is bound again: the same state
 *     but for the "bound by the program" locks, which only matter to a later disconnect:
 *     the restored socket keeps its port and address);
 *   - the shutdown bits: one inet_diag dump per family and protocol and network
 *     namespace for the whole tree (the merge hook); a ping or raw socket has no diag:
 *     a read shutdown is seen with poll, a write-only shutdown cannot be read (not kept);
 *   - the socket options (SOL_SOCKET, IP, IPv6, UDP: src/net/sockopt.c);
 *   - UDP: data pending in the write queue (UDP_CORK, MSG_MORE) cannot be read: refused
 *     while SIOCOUTQ is not 0;
 *   - a pending error (sk_err: an ICMP error of a connected socket) or a non-empty error
 *     queue (IP_RECVERR) is refused (poll: POLLERR): reading it clears it, and a peek of
 *     the queue would clear it too;
 *   - raw: ICMP_FILTER / ICMP6_FILTER (IP_HDRINCL is a sockopt; IPV6_HDRINCL refused);
 *   - UDP-Lite (deprecated, still in 6.18) as UDP, with its checksum coverage options;
 *   - multicast memberships are not in sock_diag: every group of the namespace
 *     (/proc/PID/net/igmp, igmp6) is asked of the socket with MCAST_MSFILTER, which
 *     answers EADDRNOTAVAIL unless it is a member, else gives its source filter (include
 *     or exclude, the sources); joined again at restore (MCAST_JOIN_GROUP on the same
 *     interface index, then the filter);
 *   - the receive queue (UDP): each datagram peeked at an explicit SO_PEEK_OFF (nothing
 *     consumed) with its source address (msg_name) and original destination
 *     (IP_ORIGDSTADDR / IPV6_ORIGDSTADDR, switched on for the peek and put back), TTL
 *     and TOS; the
 *     task's SO_PEEK_OFF is put back. Ping and raw sockets do not support SO_PEEK_OFF:
 *     a non-empty queue is refused.
 *
 * Restore, in the task's restore child once its other fds are placed (a late row: the
 * socket is made by the task itself, in its network namespace, with its credentials):
 * socket(), the early options, bind; then each queued datagram is sent again, in order, to its original destination
 * from its original source: from a socket of the task already restored and bound to that
 * address, else from a temporary socket bound there (SO_REUSEADDR, IP_FREEBIND, and
 * IP_TRANSPARENT where allowed, for an address that is not local), else (that address
 * held by a socket made before that cannot send it: one several processes share) built
 * whole and sent through a raw socket (CAP_NET_RAW). The queue is then
 * peeked to check that every datagram arrived, whole, from its source, in order
 * (a refill that does not match fails the restore; the receive buffer is raised for the
 * refill, the late options set it back). Then SO_PEEK_OFF, connect, shutdown, the late
 * options (the filter last).
 * Each is re-sent with the TTL / hop limit and TOS / traffic class it arrived with
 * (read with IP_RECVTTL / IP_RECVTOS / IPV6_RECVHOPLIMIT / IPV6_RECVTCLASS switched on
 * for the peek); its arrival time is new. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <linux/icmp.h>
#include <netinet/icmp6.h>
#include <linux/inet_diag.h>
#include <linux/rtnetlink.h>
#include <linux/sock_diag.h>
#include <linux/sockios.h>
#include <linux/udp.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include "core/log.h"
#include "core/util.h"
#include "files/fd_ops.h"
#include "net/sk_dgram.h"
#include "net/sk_inet.h"
#include "net/sockopt.h"

#ifndef SOL_UDP
#define SOL_UDP 17
#endif
#define CMSG_BUF 1024
/* Images are untrusted: bounds of a queue. */
#define DG_QUEUE_MAX (64u << 20)
#define DG_MSGS_MAX (1u << 16)
#define DG_MSG_MAX 65535u
#define MC_GROUPS_MAX 4096u  /* multicast memberships of a socket */
#define MC_SOURCES_MAX 4096u /* sources in the filter of one */
#define REFILL_WAIT_MS 2000

static const char *dg_name(int family, int type, int proto)
{
	if (type == SOCK_RAW)
		return family == AF_INET ? "a raw IPv4 socket" : "a raw IPv6 socket";
	if (proto == IPPROTO_ICMP || proto == IPPROTO_ICMPV6)
		return family == AF_INET ? "a ping socket" : "an IPv6 ping socket";
	if (proto == IPPROTO_UDPLITE)
		return family == AF_INET ? "a UDP-Lite socket" : "a UDP-Lite IPv6 socket";
	return family == AF_INET ? "a UDP socket" : "a UDP IPv6 socket";
}

/* UDP and UDP-Lite (its checksum coverage options aside, the same socket) */
static bool is_udp(int proto) { return proto == IPPROTO_UDP || proto == IPPROTO_UDPLITE; }

/* A kind this row restores: family, type and protocol. */
static bool dg_supported(int family, int type, int proto)
{
	if (family != AF_INET && family != AF_INET6)
		return false;
	if (type == SOCK_RAW)
		return proto >= 0 && proto <= 255;
	if (type != SOCK_DGRAM)
		return false;
	return is_udp(proto) || (family == AF_INET && proto == IPPROTO_ICMP) ||
	       (family == AF_INET6 && proto == IPPROTO_ICMPV6);
}

static int int_opt(int sk, int level, int opt, int *val)
{
	socklen_t l = sizeof(*val);
	return getsockopt(sk, level, opt, val, &l) ? -errno : 0;
}

/* ---- addresses ------------------------------------------------------------------ */

static InetAddr *addr_to_img(const struct sockaddr_storage *ss)
{
	InetAddr *a = calloc(1, sizeof(*a));
	uint8_t *b = NULL;
	if (!a)
		return NULL;
	inet_addr__init(a);
	if (ss->ss_family == AF_INET) {
		const struct sockaddr_in *s4 = (const struct sockaddr_in *)ss;
		b = malloc(4);
		if (b)
			memcpy(b, &s4->sin_addr, 4);
		a->addr.len = 4;
		a->port = ntohs(s4->sin_port);
	} else {
		const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)ss;
		b = malloc(16);
		if (b)
			memcpy(b, &s6->sin6_addr, 16);
		a->addr.len = 16;
		a->port = ntohs(s6->sin6_port);
		a->has_scope_id = s6->sin6_scope_id != 0;
		a->scope_id = s6->sin6_scope_id;
		a->has_flowinfo = s6->sin6_flowinfo != 0;
		a->flowinfo = s6->sin6_flowinfo;
	}
	if (!b) {
		free(a);
		return NULL;
	}
	a->addr.data = b;
	return a;
}

/* An image address of @family (validated) as a sockaddr. */
static socklen_t addr_from_img(const InetAddr *a, int family, struct sockaddr_storage *ss)
{
	memset(ss, 0, sizeof(*ss));
	if (family == AF_INET) {
		struct sockaddr_in *s4 = (struct sockaddr_in *)ss;
		s4->sin_family = AF_INET;
		s4->sin_port = htons((uint16_t)a->port);
		memcpy(&s4->sin_addr, a->addr.data, 4);
		return sizeof(*s4);
	}
	struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)ss;
	s6->sin6_family = AF_INET6;
	s6->sin6_port = htons((uint16_t)a->port);
	memcpy(&s6->sin6_addr, a->addr.data, 16);
	s6->sin6_scope_id = a->has_scope_id ? a->scope_id : 0;
	s6->sin6_flowinfo = a->has_flowinfo ? a->flowinfo : 0;
	return sizeof(*s6);
}

static bool addr_is_any(const InetAddr *a)
{
	for (size_t i = 0; i < a->addr.len; i++)
		if (a->addr.data[i])
			return false;
	return true;
}

static bool addr_eq(const InetAddr *a, const InetAddr *b)
{
	return a->port == b->port && a->addr.len == b->addr.len &&
	       !memcmp(a->addr.data, b->addr.data, a->addr.len);
}

static void addr_str(const InetAddr *a, char *buf, size_t len)
{
	char h[INET6_ADDRSTRLEN] = "?";
	if (a->addr.len == 4 || a->addr.len == 16)
		inet_ntop(a->addr.len == 4 ? AF_INET : AF_INET6, a->addr.data, h, sizeof(h));
	snprintf(buf, len, a->addr.len == 16 ? "[%s]:%u" : "%s:%u", h, a->port);
}

static bool addr_ok(const InetAddr *a, int family, bool scoped)
{
	size_t want = family == AF_INET ? 4 : 16;
	if (!a || a->addr.len != want || a->port > 65535 || !a->addr.data)
		return false;
	if (family == AF_INET && (a->has_scope_id || a->has_flowinfo))
		return false;
	return scoped || !a->has_scope_id;
}

/* ---- dump ----------------------------------------------------------------------- */

/* The membership of @dup in multicast group @grp (4 or 16 bytes, joined at @level) on
 * interface @ifindex, with its source filter, into *@out; 0 and *@out NULL when it is not
 * a member (MCAST_MSFILTER answers EADDRNOTAVAIL). */
static int mc_get(int dup, int level, const uint8_t *grp, int ifindex, McGroup **out)
{
	size_t glen = level == SOL_IP ? 4 : 16;
	size_t cap = 0;
	*out = NULL;
	for (int attempt = 0; attempt < 4; attempt++) {
		socklen_t l = (socklen_t)GROUP_FILTER_SIZE(cap);
		_cleanup_free_ struct group_filter *gf = calloc(1, MAX(l, sizeof(*gf)));
		if (!gf)
			return -ENOMEM;
		gf->gf_interface = (uint32_t)ifindex;
		gf->gf_group.ss_family = level == SOL_IP ? AF_INET : AF_INET6;
		gf->gf_numsrc = (uint32_t)cap;
		if (level == SOL_IP)
			memcpy(&((struct sockaddr_in *)&gf->gf_group)->sin_addr, grp, 4);
		else
			memcpy(&((struct sockaddr_in6 *)&gf->gf_group)->sin6_addr, grp, 16);
		if (getsockopt(dup, level, MCAST_MSFILTER, gf, &l))
			return errno == EADDRNOTAVAIL ? 0 : -errno;
		if (gf->gf_numsrc > MC_SOURCES_MAX)
			return -E2BIG;
		if (gf->gf_numsrc > cap) { /* the list did not fit: again with room for it */
			cap = gf->gf_numsrc;
			continue;
		}
		McGroup *m = malloc(sizeof(*m));
		if (!m)
			return -ENOMEM;
		mc_group__init(m);
		*out = m;
		m->ifindex = (uint32_t)ifindex;
		m->fmode = gf->gf_fmode;
		m->group.len = glen;
		m->group.data = malloc(glen);
		m->sources = calloc(gf->gf_numsrc ? gf->gf_numsrc : 1, sizeof(*m->sources));
		if (!m->group.data || !m->sources)
			return -ENOMEM;
		memcpy(m->group.data, grp, glen);
		for (uint32_t i = 0; i < gf->gf_numsrc; i++) {
			const struct sockaddr_storage *ss = &gf->gf_slist[i];
			const void *a = level == SOL_IP
						? (const void *)&((const struct sockaddr_in *)ss)->sin_addr
						: (const void *)&((const struct sockaddr_in6 *)ss)->sin6_addr;
			if (!(m->sources[i].data = malloc(glen)))
				return -ENOMEM;
			memcpy(m->sources[i].data, a, glen);
			m->sources[i].len = glen;
			m->n_sources++;
		}
		return 0;
	}
	return -EAGAIN; /* the list kept growing */
}

static int hexbyte(const char *s)
{
	int v = 0;
	for (int k = 0; k < 2; k++) {
		char ch = s[k];
		int d = ch >= '0' && ch <= '9'   ? ch - '0'
			: ch >= 'a' && ch <= 'f' ? ch - 'a' + 10
			: ch >= 'A' && ch <= 'F' ? ch - 'A' + 10
						 : -1;
		if (d < 0)
			return -1;
		v = v * 16 + d;
	}
	return v;
}

/* Add the membership of @dup in @grp on @ifindex, if it is one, to @u. */
static int mc_add(pid_t pid, int fd, int dup, InetDgramSk *u, int level, const uint8_t *grp,
		  int ifindex)
{
	McGroup *m = NULL;
	int ret = mc_get(dup, level, grp, ifindex, &m);
	if (!ret && m && u->n_mc >= MC_GROUPS_MAX)
		ret = -E2BIG;
	if (!ret && m) {
		McGroup **n = realloc(u->mc, (u->n_mc + 1) * sizeof(*n));
		if (!n)
			ret = -ENOMEM;
		else
			(u->mc = n)[u->n_mc++] = m;
	}
	if (ret && m)
		mc_group__free_unpacked(m, NULL);
	if (ret == -E2BIG)
		pr_err("fd %d of pid %d: more than %u multicast groups or %u sources of one: not "
		       "supported", fd, pid, MC_GROUPS_MAX, MC_SOURCES_MAX);
	else if (ret)
		pr_errno(ret, "fd %d of pid %d: MCAST_MSFILTER", fd, pid);
	return ret;
}

/* The multicast memberships of @dup, not in sock_diag: the groups joined in the namespace
 * are listed per interface in /proc/PID/net/igmp (IPv4) and igmp6; each is asked of the
 * socket (an IPv6 socket may join IPv4 groups too). */
static int mc_dump(pid_t pid, int fd, int dup, InetDgramSk *u)
{
	char path[64], *save = NULL;
	_cleanup_free_ char *txt = NULL;
	size_t len = 0;
	int ifindex = 0, ret;

	snprintf(path, sizeof(path), "/proc/%d/net/igmp", pid);
	txt = read_file_at(AT_FDCWD, path, 1u << 22, &len);
	if (txt) {
		for (char *l = strtok_r(txt, "\n", &save); l; l = strtok_r(NULL, "\n", &save)) {
			unsigned int g;
			if (l[0] >= '0' && l[0] <= '9')
				ifindex = atoi(l);
			else if (l[0] == '\t' && sscanf(l, " %8x", &g) == 1 && ifindex > 0 &&
				 (ret = mc_add(pid, fd, dup, u, SOL_IP, (const uint8_t *)&g, ifindex)))
				return ret;
		}
	}
	if ((int)u->family != AF_INET6)
		return 0;
	free(txt);
	txt = NULL;
	snprintf(path, sizeof(path), "/proc/%d/net/igmp6", pid);
	txt = read_file_at(AT_FDCWD, path, 1u << 22, &len);
	if (!txt)
		return 0; /* no IPv6 in the namespace */
	for (char *l = strtok_r(txt, "\n", &save); l; l = strtok_r(NULL, "\n", &save)) {
		char dev[64], hex[40];
		uint8_t g[16];
		bool ok = sscanf(l, "%d %63s %39s", &ifindex, dev, hex) == 3 && strlen(hex) == 32 &&
			  ifindex > 0;
		for (int k = 0; ok && k < 16; k++) {
			int v = hexbyte(hex + 2 * k);
			ok = v >= 0;
			g[k] = (uint8_t)v;
		}
		if (ok && (ret = mc_add(pid, fd, dup, u, SOL_IPV6, g, ifindex)))
			return ret;
	}
	return 0;
}

/* What the peek switches on to read, with each datagram, its original destination
 * (required), and the TTL / hop limit and TOS / traffic class it arrived with: the SOL_IP
 * ones on an IPv6 socket too (its IPv4 datagrams, v4-mapped). */
static const struct {
	int level, name;
	bool v6, required;
} peek_opts[] = {
	{ SOL_IP, IP_RECVORIGDSTADDR, false, true },
	{ SOL_IP, IP_RECVTTL, false, false },
	{ SOL_IP, IP_RECVTOS, false, false },
	{ SOL_IPV6, IPV6_RECVORIGDSTADDR, true, true },
	{ SOL_IPV6, IPV6_RECVHOPLIMIT, true, false },
	{ SOL_IPV6, IPV6_RECVTCLASS, true, false },
};
#define N_PEEK_OPTS (sizeof(peek_opts) / sizeof(peek_opts[0]))

struct peek_state {
	int peek_off;
	int saved[N_PEEK_OPTS];
	bool set[N_PEEK_OPTS];
};

/* Switch on what the peek needs, remember the task's values. */
static int peek_begin(int dup, int family, struct peek_state *p)
{
	int on = 1;
	memset(p, 0, sizeof(*p));
	if (int_opt(dup, SOL_SOCKET, SO_PEEK_OFF, &p->peek_off))
		return -errno;
	for (size_t i = 0; i < N_PEEK_OPTS; i++) {
		if (peek_opts[i].v6 && family != AF_INET6)
			continue;
		p->set[i] = !int_opt(dup, peek_opts[i].level, peek_opts[i].name, &p->saved[i]) &&
			    !setsockopt(dup, peek_opts[i].level, peek_opts[i].name, &on, sizeof(on));
		/* the original destination of the socket's own family is needed */
		if (!p->set[i] && peek_opts[i].required && (family == AF_INET6) == peek_opts[i].v6)
			return -errno;
	}
	return 0;
}

static int peek_end(int dup, const struct peek_state *p)
{
	int ret = 0;
	if (setsockopt(dup, SOL_SOCKET, SO_PEEK_OFF, &p->peek_off, sizeof(p->peek_off)))
		ret = -errno;
	for (size_t i = 0; i < N_PEEK_OPTS; i++)
		if (p->set[i] && setsockopt(dup, peek_opts[i].level, peek_opts[i].name,
					    &p->saved[i], sizeof(p->saved[i])))
			ret = -errno;
	return ret;
}

/* What a peeked datagram arrived with (-1: not known). */
struct dg_meta {
	int ttl, tos;
};

static void cmsg_meta(const struct cmsghdr *cm, struct dg_meta *m)
{
	int v = -1;
	if (cm->cmsg_len == CMSG_LEN(sizeof(int)))
		memcpy(&v, CMSG_DATA(cm), sizeof(int));
	else if (cm->cmsg_len == CMSG_LEN(1))
		v = *(const uint8_t *)CMSG_DATA(cm);
	if ((cm->cmsg_level == SOL_IP && cm->cmsg_type == IP_TTL) ||
	    (cm->cmsg_level == SOL_IPV6 && cm->cmsg_type == IPV6_HOPLIMIT))
		m->ttl = v;
	else if ((cm->cmsg_level == SOL_IP && cm->cmsg_type == IP_TOS) ||
		 (cm->cmsg_level == SOL_IPV6 && cm->cmsg_type == IPV6_TCLASS))
		m->tos = v;
}

/* One datagram at byte offset @off of the queue of @sk: its length (MSG_TRUNC), source
 * in *@src, original destination in *@dst (ss_family 0 if none). */
static ssize_t peek_one(int sk, int off, void *buf, size_t cap, struct sockaddr_storage *src,
			struct sockaddr_storage *dst, struct dg_meta *meta)
{
	_Alignas(struct cmsghdr) char cbuf[CMSG_BUF];
	struct iovec iov = { .iov_base = buf, .iov_len = cap };
	struct msghdr mh = {
		.msg_name = src,
		.msg_namelen = sizeof(*src),
		.msg_iov = &iov,
		.msg_iovlen = 1,
		.msg_control = cbuf,
		.msg_controllen = sizeof(cbuf),
	};
	if (setsockopt(sk, SOL_SOCKET, SO_PEEK_OFF, &off, sizeof(off)))
		return -errno;
	memset(src, 0, sizeof(*src));
	memset(dst, 0, sizeof(*dst));
	meta->ttl = meta->tos = -1;
	ssize_t r = recvmsg(sk, &mh, MSG_PEEK | MSG_DONTWAIT | MSG_TRUNC);
	if (r < 0)
		return -errno;
	for (struct cmsghdr *cm = CMSG_FIRSTHDR(&mh); cm; cm = CMSG_NXTHDR(&mh, cm)) {
		if (cm->cmsg_level == SOL_IP && cm->cmsg_type == IP_ORIGDSTADDR &&
		    cm->cmsg_len >= CMSG_LEN(sizeof(struct sockaddr_in)))
			memcpy(dst, CMSG_DATA(cm), sizeof(struct sockaddr_in));
		else if (cm->cmsg_level == SOL_IPV6 && cm->cmsg_type == IPV6_ORIGDSTADDR &&
			 cm->cmsg_len >= CMSG_LEN(sizeof(struct sockaddr_in6)))
			memcpy(dst, CMSG_DATA(cm), sizeof(struct sockaddr_in6));
		else
			cmsg_meta(cm, meta);
	}
	return r;
}

/* A v4 original destination seen by an IPv6 socket, as the v4-mapped address. */
static void dst_to_family(struct sockaddr_storage *dst, int family)
{
	if (family != AF_INET6 || dst->ss_family != AF_INET)
		return;
	struct sockaddr_in s4;
	memcpy(&s4, dst, sizeof(s4));
	struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)dst;
	memset(dst, 0, sizeof(*dst));
	s6->sin6_family = AF_INET6;
	s6->sin6_port = s4.sin_port;
	s6->sin6_addr.s6_addr[10] = s6->sin6_addr.s6_addr[11] = 0xff;
	memcpy(&s6->sin6_addr.s6_addr[12], &s4.sin_addr, 4);
}

static int add_msg(InetDgramSk *u, const uint8_t *buf, size_t len, const struct sockaddr_storage *src,
		   const struct sockaddr_storage *dst, const struct dg_meta *meta)
{
	DgramMsg **nq = realloc(u->queue, (u->n_queue + 1) * sizeof(*nq));
	if (!nq)
		return -ENOMEM;
	u->queue = nq;
	DgramMsg *m = calloc(1, sizeof(*m));
	if (!m)
		return -ENOMEM;
	dgram_msg__init(m);
	u->queue[u->n_queue++] = m;
	m->data.data = malloc(len ? len : 1);
	m->src = addr_to_img(src);
	m->dst = addr_to_img(dst);
	if (!m->data.data || !m->src || !m->dst)
		return -ENOMEM;
	memcpy(m->data.data, buf, len);
	m->data.len = len;
	m->has_ttl = meta->ttl >= 0 && meta->ttl <= 255;
	m->ttl = m->has_ttl ? (uint32_t)meta->ttl : 0;
	m->has_tos = meta->tos >= 0 && meta->tos <= 255;
	m->tos = m->has_tos ? (uint32_t)meta->tos : 0;
	return 0;
}

/* The receive queue of UDP socket @dup, peeked without consuming it. */
static int peek_queue(pid_t pid, int fd, int dup, InetDgramSk *u)
{
	_cleanup_free_ uint8_t *buf = malloc(DG_MSG_MAX);
	struct sockaddr_storage src, dst;
	struct dg_meta meta;
	struct peek_state ps;
	size_t total = 0;
	int off = 0, ret;

	if (!buf)
		return pr_errno(-ENOMEM, "queue of fd %d of pid %d", fd, pid);
	if ((ret = peek_begin(dup, (int)u->family, &ps)))
		return pr_errno(ret, "fd %d of pid %d: prepare to read the queue", fd, pid);
	for (;;) {
		ssize_t r = peek_one(dup, off, buf, DG_MSG_MAX, &src, &dst, &meta);
		if (r == -EAGAIN)
			break;
		if (r < 0) {
			ret = pr_errno((int)r, "peek at the queue of fd %d of pid %d", fd, pid);
			break;
		}
		dst_to_family(&dst, (int)u->family);
		if ((size_t)r > DG_MSG_MAX || src.ss_family != u->family || dst.ss_family != u->family) {
			pr_err("fd %d of pid %d: a queued datagram of %zd bytes without its "
			       "addresses: not supported yet",
			       fd, pid, r);
			ret = -EOPNOTSUPP;
			break;
		}
		if (u->n_queue >= DG_MSGS_MAX || (size_t)r > DG_QUEUE_MAX - total) {
			pr_err("fd %d of pid %d: more than %u datagrams or %u bytes queued: not "
			       "supported yet",
			       fd, pid, DG_MSGS_MAX, DG_QUEUE_MAX);
			ret = -EOPNOTSUPP;
			break;
		}
		if ((ret = add_msg(u, buf, (size_t)r, &src, &dst, &meta))) {
			pr_errno(ret, "queue of fd %d of pid %d", fd, pid);
			break;
		}
		total += (size_t)r;
		off += (int)r;
	}
	int e = peek_end(dup, &ps);
	if (e && !ret)
		ret = pr_errno(e, "fd %d of pid %d: cannot put back its options after the peek", fd,
			       pid);
	return ret;
}

/* Data pending in the write queue (corked, MSG_MORE) cannot be read: refused. */
static int udp_pending(pid_t pid, int fd, int dup)
{
	int outq = 0;
	if (ioctl(dup, SIOCOUTQ, &outq) < 0)
		return pr_perror("SIOCOUTQ on fd %d of pid %d", fd, pid);
	if (outq > 0) {
		pr_err("fd %d of pid %d is a UDP socket with %d bytes pending in its write queue "
		       "(UDP_CORK / MSG_MORE, or in flight): they cannot be read, not supported",
		       fd, pid, outq);
		return -EOPNOTSUPP;
	}
	return 0;
}

static int dump_raw_opts(pid_t pid, int fd, int dup, InetDgramSk *u)
{
	int v = 0;
	if (u->family == AF_INET && u->protocol == IPPROTO_ICMP) {
		uint32_t f = 0;
		socklen_t l = sizeof(f);
		if (getsockopt(dup, SOL_RAW, ICMP_FILTER, &f, &l))
			return pr_perror("fd %d of pid %d: ICMP_FILTER", fd, pid);
		u->has_icmp_filter = f != 0;
		u->icmp_filter = f;
	}
	if (u->family == AF_INET6 && u->protocol == IPPROTO_ICMPV6) {
		uint8_t f[32];
		socklen_t l = sizeof(f);
		static const uint8_t zero[32];
		if (getsockopt(dup, SOL_ICMPV6, ICMP6_FILTER, f, &l) || l != sizeof(f))
			return pr_perror("fd %d of pid %d: ICMP6_FILTER", fd, pid);
		if (memcmp(f, zero, sizeof(f))) {
			u->has_icmp6_filter = true;
			u->icmp6_filter.data = malloc(sizeof(f));
			if (!u->icmp6_filter.data)
				return -ENOMEM;
			memcpy(u->icmp6_filter.data, f, sizeof(f));
			u->icmp6_filter.len = sizeof(f);
		}
	}
	if (u->family == AF_INET6 && !int_opt(dup, SOL_IPV6, IPV6_HDRINCL, &v) && v)
		return sk_refuse(pid, fd, NULL, "a raw IPv6 socket with IPV6_HDRINCL");
	return 0;
}

/* Bound and connected addresses. */
static int dump_addrs(pid_t pid, int fd, int dup, InetDgramSk *u)
{
	struct sockaddr_storage ss;
	socklen_t l = sizeof(ss);

	memset(&ss, 0, sizeof(ss));
	if (getsockname(dup, (struct sockaddr *)&ss, &l))
		return pr_perror("getsockname on fd %d of pid %d", fd, pid);
	if (ss.ss_family != u->family) {
		pr_err("fd %d of pid %d: getsockname gives family %d", fd, pid, ss.ss_family);
		return -EIO;
	}
	InetAddr *a = addr_to_img(&ss);
	if (!a)
		return pr_errno(-ENOMEM, "fd %d of pid %d", fd, pid);
	if (u->type == SOCK_RAW)
		a->port = 0; /* the protocol */
	if (!a->port && addr_is_any(a))
		inet_addr__free_unpacked(a, NULL);
	else
		u->bound = a;
	l = sizeof(ss);
	memset(&ss, 0, sizeof(ss));
	if (getpeername(dup, (struct sockaddr *)&ss, &l)) {
		if (errno != ENOTCONN)
			return pr_perror("getpeername on fd %d of pid %d", fd, pid);
		return 0;
	}
	if (ss.ss_family != u->family) {
		pr_err("fd %d of pid %d: getpeername gives family %d", fd, pid, ss.ss_family);
		return -EIO;
	}
	u->peer = addr_to_img(&ss);
	if (!u->peer)
		return pr_errno(-ENOMEM, "fd %d of pid %d", fd, pid);
	if (u->type == SOCK_RAW)
		u->peer->port = 0;
	return 0;
}

/* A ping or raw socket connected with a zero port (the port means nothing to them)
 * answers ENOTCONN to getpeername: its state and remote address are read from the
 * namespace's /proc/PID/net/{icmp,icmp6,raw,raw6} by inode. A ping socket that never
 * got an id (not bound, nothing sent) is not listed there: its connection, if any, is
 * not seen (documented limitation). */
static int proc_peer(pid_t pid, int fd, uint64_t ino, InetDgramSk *u)
{
	const char *name = u->type == SOCK_RAW ? (u->family == AF_INET ? "raw" : "raw6")
					       : (u->family == AF_INET ? "icmp" : "icmp6");
	char path[64], *save = NULL;
	size_t len = 0, alen = u->family == AF_INET ? 4 : 16;
	snprintf(path, sizeof(path), "/proc/%d/net/%s", pid, name);
	_cleanup_free_ char *txt = read_file_at(AT_FDCWD, path, 16u << 20, &len);
	if (!txt)
		return pr_perror("fd %d of pid %d: read %s", fd, pid, path);
	for (char *l = strtok_r(txt, "\n", &save); l; l = strtok_r(NULL, "\n", &save)) {
		char rem[40];
		unsigned int port, st;
		unsigned long inode;
		if (sscanf(l,
			   " %*d: %*[0-9A-Fa-f]:%*x %39[0-9A-Fa-f]:%x %x %*x:%*x %*x:%*x %*x %*u "
			   "%*d %lu",
			   rem, &port, &st, &inode) != 4 ||
		    inode != ino)
			continue;
		if (st != 1 /* TCP_ESTABLISHED */ || strlen(rem) != alen * 2)
			return 0;
		uint8_t a[16];
		for (size_t w = 0; w < alen / 4; w++) {
			char word[9];
			memcpy(word, rem + 8 * w, 8);
			word[8] = '\0';
			uint32_t v = (uint32_t)strtoul(word, NULL, 16);
			memcpy(a + 4 * w, &v, 4);
		}
		struct sockaddr_storage ss;
		memset(&ss, 0, sizeof(ss));
		ss.ss_family = (sa_family_t)u->family;
		if (u->family == AF_INET)
			memcpy(&((struct sockaddr_in *)&ss)->sin_addr, a, 4);
		else
			memcpy(&((struct sockaddr_in6 *)&ss)->sin6_addr, a, 16);
		u->peer = addr_to_img(&ss);
		return u->peer ? 0 : pr_errno(-ENOMEM, "fd %d of pid %d", fd, pid);
	}
	return 0;
}

static int dg_dump(const struct dump_ctx *c, const struct fd_ent *e, FileDesc *d)
{
	pid_t pid = c->ospid; /* (a live thread of a zombie leader: its /proc/PID/net) */
	int fd = e->fd, ret, family = e->sk_domain, type = e->sk_type, proto = e->sk_proto;
	_cleanup_close_ int dup = fd_dup(c, e);
	if (dup < 0)
		return dup;
	/* a UDP socket of another namespace is not in its task's inet_diag dump (merge);
	 * ping and raw sockets have no diag: their namespace is checked here */
	if (!is_udp(proto)) {
		int nl = sk_diag_open(pid, fd, dup, e->link);
		if (nl < 0)
			return nl;
		close(nl);
	}

	InetDgramSk *u = malloc(sizeof(*u));
	if (!u)
		return pr_errno(-ENOMEM, "fd %d of pid %d", fd, pid);
	inet_dgram_sk__init(u);
	d->inet_dgram = u;
	u->family = (uint32_t)family;
	u->type = (uint32_t)type;
	u->protocol = (uint32_t)proto;
	/* before anything that receives: a pending error would be consumed */
	if ((ret = sk_refuse_error(pid, fd, dup, e->link, dg_name(family, type, proto))))
		return ret;
	if ((ret = dump_addrs(pid, fd, dup, u)))
		return ret;
	if (!is_udp(proto) && !u->peer && (ret = proc_peer(pid, fd, e->st.st_ino, u)))
		return ret;
	ret = is_udp(proto)      ? udp_pending(pid, fd, dup)
	      : type == SOCK_RAW ? dump_raw_opts(pid, fd, dup, u)
				 : 0;
	if (!ret)
		ret = sockopt_dump(dup, pid, fd, &u->opts);
	if (!ret)
		ret = mc_dump(pid, fd, dup, u);
	if (ret)
		return ret;
	if (is_udp(proto)) {
		int po = -1;
		if (!int_opt(dup, SOL_SOCKET, SO_PEEK_OFF, &po) && po >= 0) {
			u->has_peek_off = true;
			u->peek_off = po;
		}
		/* the shutdown bits come from inet_diag in the merge hook */
		ret = peek_queue(pid, fd, dup, u);
	} else {
		struct pollfd p = { .fd = dup, .events = POLLIN | POLLRDHUP };
		char b;
		if (poll(&p, 1, 0) == 1 && (p.revents & POLLRDHUP)) {
			u->has_shutdown = true;
			u->shutdown = 1;
		}
		/* shut down for reading, POLLIN says nothing: a peek does (no error pending,
		 * so it consumes nothing; a ping or raw datagram is never empty) */
		if (u->has_shutdown ? recv(dup, &b, 1, MSG_PEEK | MSG_DONTWAIT | MSG_TRUNC) > 0
				    : sk_has_queued(dup))
			return sk_refuse(pid, fd, e->link,
					 "a ping or raw socket with datagrams "
					 "queued (they cannot be peeked in order)");
	}
	if (!ret)
		pr_debug("pid %d fd %d: %s, bound %d, connected %d, %zu datagrams queued", pid, fd,
			 dg_name(family, type, proto), !!u->bound, !!u->peer, u->n_queue);
	return ret;
}

/* ---- the tree: shutdown bits from one inet_diag dump per namespace ------------ */

struct diag_scan {
	struct dump_ctx **procs;
	size_t n;
	uint64_t netns;     /* the namespace dumped */
	const uint64_t *ns; /* per process */
	int family, proto;
};

/* Its shutdown bits, from inet_diag message @h, on every copy of the socket (one in each
 * process sharing it). */
static int diag_one(const struct nlmsghdr *h, void *arg)
{
	const struct diag_scan *s = arg;
	if (h->nlmsg_type != SOCK_DIAG_BY_FAMILY ||
	    h->nlmsg_len < NLMSG_LENGTH(sizeof(struct inet_diag_msg)))
		return 0;
	const struct inet_diag_msg *m = NLMSG_DATA(h);
	unsigned int sh = 0;
	int len = (int)(h->nlmsg_len - NLMSG_LENGTH(sizeof(*m)));
	for (const struct rtattr *a = (const struct rtattr *)(m + 1); RTA_OK(a, len);
	     a = RTA_NEXT(a, len))
		if (a->rta_type == INET_DIAG_SHUTDOWN && RTA_PAYLOAD(a) >= 1)
			sh = *(const uint8_t *)RTA_DATA(a) & 3;
	for (size_t p = 0; p < s->n; p++) {
		const Files *f = s->procs[p]->files;
		for (size_t i = 0; i < f->n_files; i++) {
			FileDesc *d = f->files[i];
			InetDgramSk *u = d->inet_dgram;
			if (d->kind != FILE_KIND__FILE_INET_DGRAM || d->ino != m->idiag_inode ||
			    !u || (int)u->family != s->family || (int)u->protocol != s->proto)
				continue;
			/* (listed in another namespace than its holder's: of that one, where
			 * SIOCGSKNS could not tell — a rootless container's host sockets) */
			if ((d->has_netns ? d->netns : s->ns[p]) != s->netns) {
				if (d->has_netns)
					continue;
				d->has_netns = true;
				d->netns = s->netns;
			}
			u->has_shutdown = true;
			u->shutdown = sh;
		}
	}
	return 0;
}

/* Does the namespace @netns hold a UDP socket of @family/@proto to look up? (A socket's
 * namespace is its holder's, or its own when it is another: FileDesc.netns.) */
static bool ns_wants(const struct diag_scan *s, int family, int proto)
{
	for (size_t p = 0; p < s->n; p++) {
		const Files *f = s->procs[p]->files;
		for (size_t i = 0; i < f->n_files; i++) {
			const FileDesc *d = f->files[i];
			const InetDgramSk *u = d->inet_dgram;
			if (d->kind == FILE_KIND__FILE_INET_DGRAM && u &&
			    (d->has_netns ? d->netns : s->ns[p]) == s->netns &&
			    (int)u->family == family && (int)u->protocol == proto)
				return true;
		}
	}
	return false;
}

/* The UDP and UDP-Lite sockets of the namespace of process @pid (a process of the tree,
 * or stasis): one inet_diag dump per family and protocol. */
static int diag_netns(struct diag_scan *s, pid_t pid)
{
	static const int fams[] = { AF_INET, AF_INET6 };
	static const int protos[] = { IPPROTO_UDP, IPPROTO_UDPLITE };
	int nl = -1, ret = 0;

	for (size_t a = 0; a < 2 && !ret; a++)
		for (size_t b = 0; b < sizeof(protos) / sizeof(protos[0]) && !ret; b++) {
			if (!ns_wants(s, fams[a], protos[b]))
				continue;
			if (nl < 0 && (nl = sk_diag_open(pid, -1, -1, NULL)) < 0)
				return nl;
			struct {
				struct nlmsghdr h;
				struct inet_diag_req_v2 r;
			} req;
			memset(&req, 0, sizeof(req));
			req.r.sdiag_family = (uint8_t)fams[a];
			req.r.sdiag_protocol = (uint8_t)protos[b];
			req.r.idiag_states = ~0u;
			s->family = fams[a];
			s->proto = protos[b];
			char what[64];
			snprintf(what, sizeof(what), "the UDP sockets of pid %d", pid);
			ret = sk_diag_dump(nl, &req, sizeof(req), diag_one, s, what);
		}
	if (nl >= 0)
		close(nl);
	return ret;
}

static int dg_merge(struct dump_ctx **procs, size_t n)
{
	int ret;
	_cleanup_free_ uint64_t *ns = calloc(n, sizeof(*ns));
	if (!ns)
		return pr_errno(-ENOMEM, "inet datagram sockets of the tree");
	struct diag_scan s = { .procs = procs, .n = n, .ns = ns };
	for (size_t p = 0; p < n; p++)
		if (!(ns[p] = sk_netns_ino(procs[p])))
			return -EIO;
	for (size_t p = 0; p < n; p++) {
		bool first = true;
		for (size_t q = 0; q < p && first; q++)
			first = ns[q] != ns[p];
		s.netns = ns[p];
		if (first && (ret = diag_netns(&s, procs[p]->ospid)))
			return ret;
	}
	/* (sockets of stasis's namespace held where no process of the tree is in it) */
	uint64_t mine = self_ns_ino("net");
	bool seen = !mine;
	for (size_t p = 0; p < n && !seen; p++)
		seen = ns[p] == mine;
	s.netns = seen ? 0 : mine;
	if (!seen && (ret = diag_netns(&s, getpid())))
		return ret;
	/* (once each socket's namespace is known: shared across namespaces of their own) */
	ret = sk_refuse_shared(procs, n, FILE_KIND__FILE_INET_DGRAM, "an inet datagram socket");
	if (ret)
		return ret;
	for (size_t p = 0; p < n; p++) {
		const Files *f = procs[p]->files;
		for (size_t i = 0; i < f->n_files; i++) {
			const InetDgramSk *u = f->files[i]->inet_dgram;
			if (f->files[i]->kind != FILE_KIND__FILE_INET_DGRAM || !u ||
			    !is_udp((int)u->protocol) || u->has_shutdown)
				continue;
			return sk_refuse(procs[p]->pid, fd_desc_fd(f, i), f->files[i]->link,
					 "a UDP socket of another network namespace than its task's "
					 "(not in its inet_diag dump)");
		}
	}
	return 0;
}

/* ---- restore -------------------------------------------------------------------- */

static int dg_validate(const FileDesc *d, const struct blob_reader *blobs)
{
	(void)blobs;
	const InetDgramSk *u = d->inet_dgram;
	if (!u) {
		pr_err("files image: inet datagram socket %u has no socket data", d->id);
		return -EINVAL;
	}
	int fam = (int)u->family;
	if (u->family > INT_MAX || u->type > INT_MAX || u->protocol > 255 ||
	    !dg_supported(fam, (int)u->type, (int)u->protocol)) {
		pr_err("files image: inet datagram socket %u: family %u, type %u, protocol %u "
		       "not supported",
		       d->id, u->family, u->type, u->protocol);
		return -EINVAL;
	}
	if ((u->bound && !addr_ok(u->bound, fam, true)) || (u->peer && !addr_ok(u->peer, fam, true))) {
		pr_err("files image: inet datagram socket %u: an address of the wrong family "
		       "or size",
		       d->id);
		return -EINVAL;
	}
	if ((u->has_shutdown && u->shutdown > 3) || (u->has_peek_off && u->peek_off < -1) ||
	    (u->has_icmp6_filter && u->icmp6_filter.len != 32) || u->n_queue > DG_MSGS_MAX) {
		pr_err("files image: inet datagram socket %u has bad socket data", d->id);
		return -EINVAL;
	}
	if (u->n_queue && (!is_udp((int)u->protocol) || !u->bound)) {
		pr_err("files image: inet datagram socket %u: a queue on a socket that cannot "
		       "have one",
		       d->id);
		return -EINVAL;
	}
	if (u->n_mc > MC_GROUPS_MAX) {
		pr_err("files image: inet datagram socket %u: %zu multicast groups", d->id,
		       u->n_mc);
		return -EINVAL;
	}
	for (size_t i = 0; i < u->n_mc; i++) {
		const McGroup *m = u->mc[i];
		size_t gl = m ? m->group.len : 0;
		bool ok = m && m->ifindex > 0 && m->ifindex <= INT_MAX &&
			  (gl == 4 || (gl == 16 && fam == AF_INET6)) && m->group.data &&
			  m->fmode <= MCAST_INCLUDE && m->n_sources <= MC_SOURCES_MAX &&
			  (m->fmode == MCAST_EXCLUDE || m->n_sources);
		for (size_t k = 0; ok && k < m->n_sources; k++)
			ok = m->sources[k].len == gl && m->sources[k].data;
		if (!ok) {
			pr_err("files image: inet datagram socket %u: bad multicast group %zu",
			       d->id, i);
			return -EINVAL;
		}
	}
	char what[64];
	snprintf(what, sizeof(what), "files image: inet datagram socket %u", d->id);
	if (u->opts && sockopt_validate(u->opts, fam, (int)u->type, (int)u->protocol, what))
		return -EINVAL;
	size_t total = 0;
	for (size_t i = 0; i < u->n_queue; i++) {
		const DgramMsg *m = u->queue[i];
		if (!m || !m->src || !m->dst || !addr_ok(m->src, fam, true) ||
		    !addr_ok(m->dst, fam, true) || !m->src->port || m->dst->port != u->bound->port) {
			pr_err("files image: inet datagram socket %u: queued datagram %zu has a bad "
			       "address (wrong family, size or port)",
			       d->id, i);
			return -EINVAL;
		}
		if (m->data.len > DG_MSG_MAX - 8 - (fam == AF_INET ? 20 : 0) ||
		    m->data.len > DG_QUEUE_MAX - total) {
			pr_err("files image: inet datagram socket %u: queued datagram %zu of %zu "
			       "bytes is longer than a datagram or the queue can be",
			       d->id, i, m->data.len);
			return -EINVAL;
		}
		total += m->data.len;
	}
	return 0;
}

static int set_int(int sk, int level, int opt, int v)
{
	return setsockopt(sk, level, opt, &v, sizeof(v)) ? -errno : 0;
}

/* The kind's own options of @u on the new socket @sk (the generic ones: sockopt). */
static int restore_opts(int sk, const InetDgramSk *u, uint32_t id)
{
	if (u->has_icmp_filter &&
	    setsockopt(sk, SOL_RAW, ICMP_FILTER, &u->icmp_filter, sizeof(u->icmp_filter)))
		return pr_perror("restore inet datagram socket %u: ICMP_FILTER", id);
	if (u->has_icmp6_filter &&
	    setsockopt(sk, SOL_ICMPV6, ICMP6_FILTER, u->icmp6_filter.data, u->icmp6_filter.len))
		return pr_perror("restore inet datagram socket %u: ICMP6_FILTER", id);
	return 0;
}

static void mc_addr(struct sockaddr_storage *ss, const ProtobufCBinaryData *a)
{
	memset(ss, 0, sizeof(*ss));
	if (a->len == 4) {
		ss->ss_family = AF_INET;
		memcpy(&((struct sockaddr_in *)ss)->sin_addr, a->data, 4);
	} else {
		ss->ss_family = AF_INET6;
		memcpy(&((struct sockaddr_in6 *)ss)->sin6_addr, a->data, 16);
	}
}

/* The multicast memberships of @u joined again on @sk, each with its source filter. */
static int mc_restore(int sk, const InetDgramSk *u, uint32_t id)
{
	for (size_t i = 0; i < u->n_mc; i++) {
		const McGroup *m = u->mc[i];
		int level = m->group.len == 4 ? SOL_IP : SOL_IPV6;
		struct group_req gr;
		memset(&gr, 0, sizeof(gr));
		gr.gr_interface = m->ifindex;
		mc_addr(&gr.gr_group, &m->group);
		if (setsockopt(sk, level, MCAST_JOIN_GROUP, &gr, sizeof(gr)))
			return pr_perror("restore inet datagram socket %u: join multicast group %zu "
					 "on interface %u", id, i, m->ifindex);
		if (m->fmode == MCAST_EXCLUDE && !m->n_sources)
			continue;
		socklen_t l = (socklen_t)GROUP_FILTER_SIZE(m->n_sources);
		_cleanup_free_ struct group_filter *gf = calloc(1, MAX(l, sizeof(*gf)));
		if (!gf)
			return pr_errno(-ENOMEM, "restore inet datagram socket %u", id);
		gf->gf_interface = m->ifindex;
		gf->gf_group = gr.gr_group;
		gf->gf_fmode = m->fmode;
		gf->gf_numsrc = (uint32_t)m->n_sources;
		for (size_t k = 0; k < m->n_sources; k++)
			mc_addr(&gf->gf_slist[k], &m->sources[k]);
		if (setsockopt(sk, level, MCAST_MSFILTER, gf, l))
			return pr_perror("restore inet datagram socket %u: the source filter of "
					 "multicast group %zu", id, i);
	}
	return 0;
}

/* The new socket of @d: created, its options set, bound. */
static int dg_make(const FileDesc *d)
{
	const InetDgramSk *u = d->inet_dgram;
	int fam = (int)u->family;
	_cleanup_close_ int sk =
		socket(fam, (int)u->type | SOCK_CLOEXEC | SOCK_NONBLOCK, (int)u->protocol);
	if (sk < 0)
		return pr_perror("restore %s %u: socket",
				 dg_name(fam, (int)u->type, (int)u->protocol), d->id);
	char what[64];
	snprintf(what, sizeof(what), "inet datagram socket %u", d->id);
	int ret = restore_opts(sk, u, d->id);
	if (!ret && u->opts)
		ret = sockopt_restore(sk, u->opts, SOCKOPT_EARLY, what);
	if (ret)
		return ret;
	if (u->bound) {
		struct sockaddr_storage ss;
		socklen_t l = addr_from_img(u->bound, fam, &ss);
		if (bind(sk, (struct sockaddr *)&ss, l)) {
			char a[80];
			addr_str(u->bound, a, sizeof(a));
			return pr_perror("restore %s %u: bind to %s",
					 dg_name(fam, (int)u->type, (int)u->protocol), d->id, a);
		}
	}
	if ((ret = mc_restore(sk, u, d->id)))
		return ret;
	return take_fd(&sk);
}

/* A temporary socket bound to the source of @m (an address that may not be local). */
static int temp_sender(const InetDgramSk *u, const DgramMsg *m, uint32_t id)
{
	int fam = (int)u->family;
	char a[80];
	addr_str(m->src, a, sizeof(a));
	_cleanup_close_ int sk = socket(fam, SOCK_DGRAM | SOCK_CLOEXEC, (int)u->protocol);
	if (sk < 0)
		return pr_perror("restore inet datagram socket %u: a socket to re-send from %s", id, a);
	(void)set_int(sk, SOL_SOCKET, SO_REUSEADDR, 1);
	if (fam == AF_INET) {
		(void)set_int(sk, SOL_IP, IP_FREEBIND, 1);
		(void)set_int(sk, SOL_IP, IP_TRANSPARENT, 1);
	} else {
		(void)set_int(sk, SOL_IPV6, IPV6_V6ONLY, 0);
		(void)set_int(sk, SOL_IPV6, IPV6_FREEBIND, 1);
		(void)set_int(sk, SOL_IPV6, IPV6_TRANSPARENT, 1);
	}
	struct sockaddr_storage ss;
	socklen_t l = addr_from_img(m->src, fam, &ss);
	if (bind(sk, (struct sockaddr *)&ss, l)) {
		if (errno == EADDRINUSE) /* (the caller sends it through a raw socket) */
			return -EADDRINUSE;
		return pr_perror("restore inet datagram socket %u: bind to %s, the source of a "
				 "queued datagram",
				 id, a);
	}
	return take_fd(&sk);
}

/* Datagram @k of the queue, @m, built here (UDP or UDP-Lite header, checksum, IP header
 * with the TTL / hop limit and TOS / traffic class it came with) and sent through a raw
 * socket: its source address is bound by a socket that cannot send it (a socket several
 * processes share, made before, without SO_REUSEADDR). Needs CAP_NET_RAW. */
static int raw_send_one(const InetDgramSk *u, const DgramMsg *m, uint32_t id, size_t k)
{
	const uint8_t *sa = m->src->addr.data, *da = m->dst->addr.data;
	bool v4 = inet_wire_v4(m->src->addr.len, &sa, &da);
	size_t len = 8 + m->data.len;
	_cleanup_free_ uint8_t *dg = malloc(len);
	if (!dg)
		return -ENOMEM;
	bool lite = u->protocol == IPPROTO_UDPLITE;
	uint16_t h[4] = { htons((uint16_t)m->src->port), htons((uint16_t)m->dst->port),
			  htons(lite ? 0 : (uint16_t)len), 0 }; /* UDP-Lite: coverage 0, all */
	memcpy(dg, h, 8);
	if (m->data.len)
		memcpy(dg + 8, m->data.data, m->data.len);
	uint16_t c = inet_l4_csum(v4, sa, da, (uint8_t)u->protocol, dg, len, len);
	c = htons(c ? c : 0xffff);
	memcpy(dg + 6, &c, 2);
	char a[80], b[80];
	addr_str(m->src, a, sizeof(a));
	addr_str(m->dst, b, sizeof(b));
	_cleanup_close_ int raw = socket(v4 ? AF_INET : AF_INET6, SOCK_RAW | SOCK_CLOEXEC,
					 IPPROTO_RAW);
	int ret = raw < 0 ? -errno
			  : inet_raw_send(raw, v4, sa, da, (uint8_t)u->protocol,
					  (uint8_t)(m->has_ttl && m->ttl ? m->ttl : 64),
					  (uint8_t)(m->has_tos ? m->tos : 0), dg, len);
	if (ret)
		return pr_errno(ret,
				"restore inet datagram socket %u: queued datagram %zu (%zu bytes) "
				"from %s to %s, whose source another socket holds: through a raw "
				"socket%s",
				id, k, m->data.len, a, b,
				ret == -EPERM ? " (CAP_NET_RAW is needed)" : "");
	return 0;
}

/* A socket of the task already restored (@live: per description, its fd or -1) and
 * bound to the source of @m, or -1. */
static int live_sender(const FileDesc *d, const Files *f, const int *live, size_t self,
		       int self_fd, const DgramMsg *m)
{
	const InetDgramSk *me = d->inet_dgram;
	if (me->bound && addr_eq(me->bound, m->src))
		return self_fd;
	for (size_t j = 0; f && j < f->n_files; j++) {
		const FileDesc *o = f->files[j];
		const InetDgramSk *v = o->inet_dgram;
		if (j == self || live[j] < 0 || o->kind != FILE_KIND__FILE_INET_DGRAM || !v ||
		    v->family != me->family || v->type != SOCK_DGRAM ||
		    v->protocol != me->protocol || !v->bound || !addr_eq(v->bound, m->src))
			continue;
		return live[j];
	}
	return -1;
}

/* The TTL / hop limit and TOS / traffic class @m arrived with, as control messages of
 * the re-send into @cbuf (room for two ints; IPv4 ones for an IPv4 or v4-mapped
 * destination): the length used. */
static size_t meta_cmsgs(const DgramMsg *m, char *cbuf)
{
	bool v4 = m->dst->addr.len == 4 || (m->dst->addr.len == 16 && inet_is_v4_mapped(m->dst->addr.data));
	int vals[2], types[2];
	size_t n = 0, used = 0;
	if (m->has_ttl && (m->ttl || !v4)) {
		types[n] = v4 ? IP_TTL : IPV6_HOPLIMIT;
		vals[n++] = (int)m->ttl;
	}
	if (m->has_tos) {
		types[n] = v4 ? IP_TOS : IPV6_TCLASS;
		vals[n++] = (int)m->tos;
	}
	for (size_t i = 0; i < n; i++) {
		struct cmsghdr *cm = (struct cmsghdr *)(void *)(cbuf + used);
		cm->cmsg_level = v4 ? SOL_IP : SOL_IPV6;
		cm->cmsg_type = types[i];
		cm->cmsg_len = CMSG_LEN(sizeof(int));
		memcpy(CMSG_DATA(cm), &vals[i], sizeof(int));
		used += CMSG_SPACE(sizeof(int));
	}
	return used;
}

static int send_one(int from, const InetDgramSk *u, const DgramMsg *m, uint32_t id, size_t k)
{
	_Alignas(struct cmsghdr) char cbuf[2 * CMSG_SPACE(sizeof(int))];
	struct sockaddr_storage ss;
	socklen_t l = addr_from_img(m->dst, (int)u->family, &ss);
	struct iovec iov = { .iov_base = m->data.data, .iov_len = m->data.len };
	struct msghdr mh = { .msg_name = &ss,
			     .msg_namelen = l,
			     .msg_iov = &iov,
			     .msg_iovlen = 1,
			     .msg_control = cbuf };
	memset(cbuf, 0, sizeof(cbuf));
	mh.msg_controllen = meta_cmsgs(m, cbuf);
	if (!mh.msg_controllen)
		mh.msg_control = NULL;
	ssize_t r = sendmsg(from, &mh, MSG_DONTWAIT | MSG_NOSIGNAL);
	if (r != (ssize_t)m->data.len) {
		int e = r < 0 ? -errno : -EIO;
		char a[80], b[80];
		addr_str(m->src, a, sizeof(a));
		addr_str(m->dst, b, sizeof(b));
		return pr_errno(e,
				"restore inet datagram socket %u: re-send queued datagram %zu "
				"(%zu bytes) from %s to %s%s",
				id, k, m->data.len, a, b,
				e == -EINVAL ? " (a source that is not a local address needs "
					       "IP_TRANSPARENT: CAP_NET_ADMIN or CAP_NET_RAW)"
					     : "");
	}
	return 0;
}

static bool same_src(const struct sockaddr_storage *ss, const InetAddr *a, int fam)
{
	struct sockaddr_storage want;
	addr_from_img(a, fam, &want);
	if (ss->ss_family != fam)
		return false;
	if (fam == AF_INET) {
		const struct sockaddr_in *x = (const void *)ss, *y = (const void *)&want;
		return x->sin_port == y->sin_port && x->sin_addr.s_addr == y->sin_addr.s_addr;
	}
	const struct sockaddr_in6 *x = (const void *)ss, *y = (const void *)&want;
	return x->sin6_port == y->sin6_port && !memcmp(&x->sin6_addr, &y->sin6_addr, 16);
}

/* The next datagram at byte offset @off of @sk, waiting for one still on its way through
 * the loopback until @deadline_ns. */
static ssize_t peek_wait(int sk, int off, void *buf, struct sockaddr_storage *src, uint64_t deadline_ns)
{
	struct sockaddr_storage dst;
	struct dg_meta meta;
	for (;;) {
		ssize_t r = peek_one(sk, off, buf, DG_MSG_MAX, src, &dst, &meta);
		if (r != -EAGAIN || now_ns() >= deadline_ns)
			return r;
		struct pollfd p = { .fd = sk, .events = POLLIN };
		(void)poll(&p, 1, 10);
	}
}

/* The queue of @sk must now be the image's: every datagram, whole, from its source, in
 * order (a datagram still on its way through the loopback is waited for, bounded). */
static int verify_queue(int sk, const InetDgramSk *u, uint32_t id)
{
	_cleanup_free_ uint8_t *buf = malloc(DG_MSG_MAX);
	struct sockaddr_storage src;
	uint64_t deadline = now_ns() + (uint64_t)REFILL_WAIT_MS * 1000000;
	int off = 0;

	if (!buf)
		return pr_errno(-ENOMEM, "restore inet datagram socket %u", id);
	for (size_t k = 0; k < u->n_queue; k++) {
		const DgramMsg *m = u->queue[k];
		ssize_t r = peek_wait(sk, off, buf, &src, deadline);
		if (r < 0 || (size_t)r != m->data.len || !same_src(&src, m->src, (int)u->family) ||
		    (m->data.len && memcmp(buf, m->data.data, m->data.len))) {
			pr_err("restore inet datagram socket %u: queued datagram %zu of %zu did not "
			       "arrive as it was (dropped by the receive buffer, or taken by "
			       "another socket)",
			       id, k, u->n_queue);
			return -EIO;
		}
		off += (int)r;
	}
	return 0;
}

/* Re-send the queue of @d (socket @sk) from the sources of its datagrams: @sk itself, a
 * socket of the task already made (@f: its table, @live: their fds, -1 if not made yet;
 * @i: @d's index there), else a temporary one. @f NULL: none of the task's. */
static int refill(const FileDesc *d, const Files *f, const int *live, size_t i, int sk)
{
	const InetDgramSk *u = d->inet_dgram;
	int ret = 0, big = INT_MAX / 4;

	if (u->n_queue && setsockopt(sk, SOL_SOCKET, SO_RCVBUFFORCE, &big, sizeof(big)))
		(void)setsockopt(sk, SOL_SOCKET, SO_RCVBUF, &big, sizeof(big));
	for (size_t k = 0; k < u->n_queue && !ret; k++) {
		const DgramMsg *m = u->queue[k];
		int from = live_sender(d, f, live, i, sk, m);
		if (from >= 0) {
			ret = send_one(from, u, m, d->id, k);
			continue;
		}
		int tmp = temp_sender(u, m, d->id);
		if (tmp == -EADDRINUSE) {
			ret = raw_send_one(u, m, d->id, k);
			continue;
		}
		if (tmp < 0)
			return tmp;
		ret = send_one(tmp, u, m, d->id, k);
		close(tmp);
	}
	if (!ret && u->n_queue)
		ret = verify_queue(sk, u, d->id);
	int po = u->has_peek_off ? u->peek_off : -1;
	if (!ret && is_udp((int)u->protocol) && set_int(sk, SOL_SOCKET, SO_PEEK_OFF, po))
		ret = pr_perror("restore inet datagram socket %u: SO_PEEK_OFF %d", d->id, po);
	return ret;
}

/* Connected, shut down, the late options: the last state of @d on @sk. */
static int dg_finish(int sk, const FileDesc *d)
{
	const InetDgramSk *u = d->inet_dgram;
	if (u->peer) {
		struct sockaddr_storage ss;
		socklen_t l = addr_from_img(u->peer, (int)u->family, &ss);
		if (connect(sk, (struct sockaddr *)&ss, l)) {
			char a[80];
			addr_str(u->peer, a, sizeof(a));
			return pr_perror("restore inet datagram socket %u: connect to %s", d->id, a);
		}
	}
	unsigned int sh = u->has_shutdown ? u->shutdown : 0;
	int how = sh == 3 ? SHUT_RDWR : sh == 2 ? SHUT_WR : sh ? SHUT_RD : -1;
	if (how >= 0 && shutdown(sk, how) && errno != ENOTCONN)
		return pr_perror("restore inet datagram socket %u: shutdown(%d)", d->id, how);
	char what[64];
	snprintf(what, sizeof(what), "inet datagram socket %u", d->id);
	return u->opts ? sockopt_restore(sk, u->opts, SOCKOPT_LATE, what) : 0;
}

/* In the restore child, every other fd placed (a late row: the socket is made by the
 * task itself, in its network namespace, with its credentials): each inet datagram
 * socket of the task, in order; a queue is re-sent from a socket of the task made before
 * it when that one is bound to the source. */
static int dg_late(struct fd_rst *s)
{
	const Files *f = s->f;
	_cleanup_free_ int *live = malloc((f->n_files ? f->n_files : 1) * sizeof(int));
	if (!live)
		return pr_errno(-ENOMEM, "restore inet datagram sockets");
	for (size_t i = 0; i < f->n_files; i++) /* (a shared one is in place) */
		live[i] = s->shared[i] ? fd_desc_fd(f, i) : -1;
	for (size_t i = 0; i < f->n_files; i++) {
		const FileDesc *d = f->files[i];
		int target = fd_desc_fd(f, i);
		if (d->kind != FILE_KIND__FILE_INET_DGRAM || s->staged[i] >= 0 || target < 0)
			continue;
		_cleanup_close_ int sk = dg_make(d);
		if (sk < 0)
			return sk;
		int ret = refill(d, f, live, i, sk);
		if (!ret)
			ret = dg_finish(sk, d);
		if (!ret)
			ret = fd_place_late(s, i, take_fd(&sk));
		if (ret)
			return ret;
		live[i] = target;
	}
	return 0;
}

/* A socket several processes share, made once (by stasis, or by the creator of its
 * network namespace) before any of them exists: its queue re-sent from itself or from
 * temporary sockets. */
static int dg_open(const FileDesc *d, int target, int rootfd, const struct blob_reader *blobs)
{
	(void)target;
	(void)rootfd;
	(void)blobs;
	_cleanup_close_ int sk = dg_make(d);
	if (sk < 0)
		return sk;
	int ret = refill(d, NULL, NULL, 0, sk);
	if (!ret)
		ret = dg_finish(sk, d);
	return ret ? ret : take_fd(&sk);
}

/* ---- the row -------------------------------------------------------------------- */

static int dg_classify(const struct dump_ctx *c, struct fd_ent *e)
{
	struct sk_ident id;
	int ret = sk_ident_of(c, e, &id);
	if (ret <= 0)
		return ret;
	if ((id.domain != AF_INET && id.domain != AF_INET6) ||
	    (id.type != SOCK_DGRAM && id.type != SOCK_RAW))
		return 0;
	if (!dg_supported(id.domain, id.type, id.protocol)) {
		char what[96];
		snprintf(what, sizeof(what), "an inet datagram socket of protocol %d", id.protocol);
		return sk_refuse(c->pid, e->fd, e->link, what);
	}
	e->kind = FILE_KIND__FILE_INET_DGRAM;
	return 1;
}

const struct fd_ops fd_inet_dgram_ops = {
	.name = "inet datagram socket",
	.kind = FILE_KIND__FILE_INET_DGRAM,
	.flags = FD_OPS_LATE | FD_OPS_NETNS,
	.classify = dg_classify,
	.dump = dg_dump,
	.merge = dg_merge,
	.validate = dg_validate,
	.open = dg_open,
	.late = dg_late,
};
