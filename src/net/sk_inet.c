/* What every AF_INET/AF_INET6 socket kind needs (see sk_inet.h).
 *
 * sock_diag is read in bulk: the first inet socket of a (network namespace, family,
 * protocol) asks for one NLM_F_DUMP of every socket there, kept sorted by inode for the
 * rest of the dump; later sockets are looked up in it. The namespace of a socket is its
 * own (SIOCGSKNS, which needs CAP_NET_ADMIN over it), else its task's. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/inet_diag.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <linux/sock_diag.h>
#include <linux/sockios.h>
#include <netinet/in.h>
#include <netinet/ip6.h>
#include <netinet/ip.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <unistd.h>

#include "core/log.h"
#include "core/util.h"
#include "net/sk_inet.h"
#include "ns/nsrun.h"

#ifndef SIOCGSKNS
#define SIOCGSKNS 0x894C
#endif
#define DIAG_BUF (64u << 10)
#define DIAG_MAX_SOCKETS (1u << 22)

struct sk_hold {
	int fd;
	void (*undo)(int fd);
};

struct sk_dump *sk_dump_new(void)
{
	return calloc(1, sizeof(struct sk_dump));
}

void sk_dump_release(struct sk_dump *s, bool tree_killed)
{
	if (!s)
		return;
	for (size_t i = 0; i < s->n_holds; i++) {
		if (!tree_killed && s->holds[i].undo)
			s->holds[i].undo(s->holds[i].fd);
		close(s->holds[i].fd);
	}
	for (size_t i = 0; i < s->n_tabs; i++)
		free(s->tabs[i].e);
	free(s->tabs);
	free(s->holds);
	free(s->tcp);
	free(s);
}

int sk_dump_hold(struct sk_dump *s, int fd, void (*undo)(int fd))
{
	if (s->n_holds % 64 == 0) {
		struct sk_hold *n = realloc(s->holds, (s->n_holds + 64) * sizeof(*n));
		if (!n) {
			if (undo)
				undo(fd);
			close(fd);
			return pr_errno(-ENOMEM, "dump: sockets held");
		}
		s->holds = n;
	}
	s->holds[s->n_holds++] = (struct sk_hold){ .fd = fd, .undo = undo };
	return 0;
}

static int ent_cmp(const void *a, const void *b)
{
	uint64_t x = ((const struct inet_diag_ent *)a)->ino;
	uint64_t y = ((const struct inet_diag_ent *)b)->ino;
	return x < y ? -1 : x > y;
}

static void parse_one(const struct nlmsghdr *h, struct inet_diag_ent *o)
{
	const struct inet_diag_msg *m = NLMSG_DATA(h);
	memset(o, 0, sizeof(*o));
	o->ino = m->idiag_inode;
	o->family = m->idiag_family;
	o->state = m->idiag_state;
	o->v6only = -1;
	o->rqueue = m->idiag_rqueue;
	o->wqueue = m->idiag_wqueue;
	memcpy(o->src, m->id.idiag_src, 16);
	memcpy(o->dst, m->id.idiag_dst, 16);
	o->sport = ntohs(m->id.idiag_sport);
	o->dport = ntohs(m->id.idiag_dport);
	int len = (int)(h->nlmsg_len - NLMSG_LENGTH(sizeof(*m)));
	for (const struct rtattr *a = (const struct rtattr *)(m + 1); RTA_OK(a, len);
	     a = RTA_NEXT(a, len)) {
		if (a->rta_type == INET_DIAG_SHUTDOWN && RTA_PAYLOAD(a) >= 1)
			o->shutdown = *(const uint8_t *)RTA_DATA(a) & 3;
		else if (a->rta_type == INET_DIAG_SKV6ONLY && RTA_PAYLOAD(a) >= 1)
			o->v6only = *(const uint8_t *)RTA_DATA(a) != 0;
	}
}

/* One NLM_F_DUMP of @family/@proto sockets on @nl into @t. */
static int diag_dump(int nl, struct inet_diag_tab *t, const char *what)
{
	struct {
		struct nlmsghdr h;
		struct inet_diag_req_v2 r;
	} req;
	size_t cap = 0;

	memset(&req, 0, sizeof(req));
	req.h.nlmsg_len = sizeof(req);
	req.h.nlmsg_type = SOCK_DIAG_BY_FAMILY;
	req.h.nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP;
	req.h.nlmsg_seq = 1;
	req.r.sdiag_family = (uint8_t)t->family;
	req.r.sdiag_protocol = (uint8_t)t->proto;
	req.r.idiag_states = ~0u;
	if (send(nl, &req, sizeof(req), 0) != (ssize_t)sizeof(req))
		return pr_perror("sock_diag request (%s)", what);
	_cleanup_free_ char *buf = malloc(DIAG_BUF);
	if (!buf)
		return pr_errno(-ENOMEM, "sock_diag (%s)", what);
	for (;;) {
		ssize_t n = recv(nl, buf, DIAG_BUF, 0);
		if (n < 0)
			return pr_perror("sock_diag reply (%s)", what);
		if (n == 0) {
			pr_err("sock_diag (%s): the reply ended early", what);
			return -EIO;
		}
		for (const struct nlmsghdr *h = (const struct nlmsghdr *)buf; NLMSG_OK(h, (size_t)n);
		     h = NLMSG_NEXT(h, n)) {
			if (h->nlmsg_type == NLMSG_DONE)
				return 0;
			if (h->nlmsg_type == NLMSG_ERROR) {
				const struct nlmsgerr *e = NLMSG_DATA(h);
				return pr_errno(e->error ? e->error : -EIO, "sock_diag (%s)", what);
			}
			if (h->nlmsg_type != SOCK_DIAG_BY_FAMILY ||
			    h->nlmsg_len < NLMSG_LENGTH(sizeof(struct inet_diag_msg)))
				continue;
			if (t->n == cap) {
				if (cap >= DIAG_MAX_SOCKETS) {
					pr_err("sock_diag (%s): more than %u sockets", what,
					       DIAG_MAX_SOCKETS);
					return -E2BIG;
				}
				size_t nc = cap ? cap * 2 : 256;
				struct inet_diag_ent *ne = realloc(t->e, nc * sizeof(*ne));
				if (!ne)
					return pr_errno(-ENOMEM, "sock_diag (%s)", what);
				t->e = ne;
				cap = nc;
			}
			parse_one(h, &t->e[t->n++]);
		}
	}
}

/* The network namespace of socket @sk (SIOCGSKNS), else of @pid. */
static int sk_netns(pid_t pid, int sk)
{
	int ns = ioctl(sk, SIOCGSKNS);
	if (ns >= 0)
		return ns;
	return ns_open_of(pid, "net", "sock_diag");
}

/* The table of network namespace @ns (its inode @st) for @family/@proto, read once. */
static int table_in(struct sk_dump *s, int ns, const struct stat *st, int family, int proto,
		    const struct inet_diag_tab **out);

int inet_diag_table(struct sk_dump *s, pid_t pid, int fd, int sk, int family, int proto,
		    const struct inet_diag_tab **out)
{
	struct stat st;
	_cleanup_close_ int ns = sk_netns(pid, sk);
	if (ns < 0)
		return ns;
	if (fstat(ns, &st) < 0)
		return pr_perror("fd %d of pid %d: its network namespace", fd, pid);
	return table_in(s, ns, &st, family, proto, out);
}

int inet_diag_table_mine(struct sk_dump *s, int family, int proto, uint64_t *netns,
			 const struct inet_diag_tab **out)
{
	struct stat st;
	_cleanup_close_ int ns = open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC);
	if (ns < 0 || fstat(ns, &st) < 0)
		return pr_perror("stasis's network namespace");
	*netns = st.st_ino;
	return table_in(s, ns, &st, family, proto, out);
}

static int table_in(struct sk_dump *s, int ns, const struct stat *st, int family, int proto,
		    const struct inet_diag_tab **out)
{
	char what[96];
	for (size_t i = 0; i < s->n_tabs; i++)
		if (s->tabs[i].netns == st->st_ino && s->tabs[i].family == family &&
		    s->tabs[i].proto == proto) {
			*out = &s->tabs[i];
			return 0;
		}
	snprintf(what, sizeof(what), "family %d, protocol %d, net namespace %llu", family,
		 proto, (unsigned long long)st->st_ino);
	_cleanup_close_ int nl = ns_socket_in(-1, ns, AF_NETLINK, SOCK_DGRAM | SOCK_CLOEXEC,
					      NETLINK_SOCK_DIAG, "sock_diag", what);
	if (nl < 0)
		return nl;
	struct timeval tv = { .tv_sec = 5 };
	(void)setsockopt(nl, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	struct inet_diag_tab *n = realloc(s->tabs, (s->n_tabs + 1) * sizeof(*n));
	if (!n)
		return pr_errno(-ENOMEM, "sock_diag (%s)", what);
	s->tabs = n;
	struct inet_diag_tab *t = &s->tabs[s->n_tabs];
	*t = (struct inet_diag_tab){ .netns = st->st_ino, .family = family, .proto = proto };
	int ret = diag_dump(nl, t, what);
	if (ret) {
		free(t->e);
		return ret;
	}
	qsort(t->e, t->n, sizeof(*t->e), ent_cmp);
	s->n_tabs++;
	pr_debug("sock_diag: %zu sockets (%s)", t->n, what);
	*out = t;
	return 0;
}

const struct inet_diag_ent *inet_diag_find(const struct inet_diag_tab *t, uint64_t ino)
{
	struct inet_diag_ent key = { .ino = ino };
	if (!ino)
		return NULL;
	return bsearch(&key, t->e, t->n, sizeof(key), ent_cmp);
}

InetAddr *inet_addr_new(int family, const uint8_t *a, uint16_t port)
{
	InetAddr *m = malloc(sizeof(*m));
	uint8_t *b = malloc(16);
	if (!m || !b) {
		free(m);
		free(b);
		return NULL;
	}
	inet_addr__init(m);
	memcpy(b, a, inet_addr_len(family));
	m->addr.data = b;
	m->addr.len = inet_addr_len(family);
	m->port = port;
	return m;
}

int inet_addr_check(const InetAddr *a, int family, const char *what)
{
	if (!a)
		return 0;
	if ((family != AF_INET && family != AF_INET6) || a->addr.len != inet_addr_len(family) ||
	    a->port > 65535) {
		pr_err("files image: %s: an address of %zu bytes, port %u, for family %d", what,
		       a->addr.len, a->port, family);
		return -EINVAL;
	}
	return 0;
}

socklen_t inet_sockaddr(int family, const InetAddr *a, struct sockaddr_storage *ss)
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
	return sizeof(*s6);
}

const char *inet_addr_str(int family, const InetAddr *a, char *buf, size_t len)
{
	char ip[INET6_ADDRSTRLEN] = "?";
	if (!a) {
		snprintf(buf, len, "-");
		return buf;
	}
	inet_ntop(family, a->addr.data, ip, sizeof(ip));
	snprintf(buf, len, family == AF_INET6 ? "[%s]:%u" : "%s:%u", ip, a->port);
	return buf;
}

static uint32_t csum_add(uint32_t sum, const void *p, size_t len)
{
	const uint8_t *b = p;
	for (size_t i = 0; i + 1 < len; i += 2)
		sum += (uint32_t)(b[i] << 8 | b[i + 1]);
	if (len & 1)
		sum += (uint32_t)(b[len - 1] << 8);
	return sum;
}

uint16_t inet_l4_csum(bool v4, const uint8_t *sa, const uint8_t *da, uint8_t proto,
		      const void *l4, size_t len, size_t cover)
{
	size_t alen = v4 ? 4 : 16;
	uint32_t sum = csum_add(0, sa, alen);
	sum = csum_add(sum, da, alen);
	sum += proto + (uint32_t)(len & 0xffff) + (uint32_t)(len >> 16);
	sum = csum_add(sum, l4, MIN(cover, len));
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	return (uint16_t)~sum;
}

int inet_raw_send(int raw, bool v4, const uint8_t *sa, const uint8_t *da, uint8_t proto,
		  uint8_t ttl, uint8_t tos, const void *l4, size_t len)
{
	size_t hlen = v4 ? 20 : 40;
	if (len > 65535 - hlen)
		return -EMSGSIZE;
	_cleanup_free_ uint8_t *pkt = calloc(1, hlen + len);
	if (!pkt)
		return -ENOMEM;
	struct sockaddr_storage ss;
	memset(&ss, 0, sizeof(ss));
	socklen_t sl;
	if (v4) {
		struct iphdr *ip = (struct iphdr *)pkt;
		ip->version = 4;
		ip->ihl = 5;
		ip->tos = tos;
		ip->tot_len = htons((uint16_t)(hlen + len));
		ip->frag_off = htons(IP_DF);
		ip->ttl = ttl;
		ip->protocol = proto;
		memcpy(&ip->saddr, sa, 4);
		memcpy(&ip->daddr, da, 4);
		struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;
		s4->sin_family = AF_INET;
		memcpy(&s4->sin_addr, da, 4);
		sl = sizeof(*s4);
	} else {
		struct ip6_hdr *ip6 = (struct ip6_hdr *)pkt;
		ip6->ip6_flow = htonl(6u << 28 | (uint32_t)tos << 20);
		ip6->ip6_plen = htons((uint16_t)len);
		ip6->ip6_nxt = proto;
		ip6->ip6_hlim = ttl;
		memcpy(&ip6->ip6_src, sa, 16);
		memcpy(&ip6->ip6_dst, da, 16);
		struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;
		s6->sin6_family = AF_INET6;
		memcpy(&s6->sin6_addr, da, 16);
		sl = sizeof(*s6);
	}
	memcpy(pkt + hlen, l4, len);
	if (sendto(raw, pkt, hlen + len, 0, (struct sockaddr *)&ss, sl) != (ssize_t)(hlen + len))
		return -errno ? -errno : -EIO;
	return 0;
}

bool inet_addr_eq_sockaddr(const InetAddr *a, const struct sockaddr_storage *ss, bool port)
{
	if (ss->ss_family == AF_INET) {
		const struct sockaddr_in *s4 = (const struct sockaddr_in *)ss;
		return a->addr.len == 4 && !memcmp(a->addr.data, &s4->sin_addr, 4) &&
		       (!port || a->port == ntohs(s4->sin_port));
	}
	const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)ss;
	return ss->ss_family == AF_INET6 && a->addr.len == 16 &&
	       !memcmp(a->addr.data, &s6->sin6_addr, 16) &&
	       (!port || a->port == ntohs(s6->sin6_port));
}

bool inet_is_v4_mapped(const uint8_t *a16)
{
	static const uint8_t pre[12] = { [10] = 0xff, [11] = 0xff };
	return !memcmp(a16, pre, sizeof(pre));
}

bool inet_wire_v4(size_t len, const uint8_t **a, const uint8_t **b)
{
	if (len == 4)
		return true;
	if (len != 16 || !inet_is_v4_mapped(*a) || !inet_is_v4_mapped(*b))
		return false;
	*a += 12;
	*b += 12;
	return true;
}

bool inet_addr_is_any(const InetAddr *a)
{
	for (size_t i = 0; i < a->addr.len; i++)
		if (a->addr.data[i])
			return false;
	return true;
}
