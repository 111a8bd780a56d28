/* Network namespaces, first level: links (lo, veth, dummy: name, ifindex, MTU, MAC, UP),
 * IPv4/IPv6 addresses, main-table routes that the kernel did not make itself, and a few
 * per-namespace sysctls. Everything goes through raw NETLINK_ROUTE sockets.
 *
 * Dump: a forked child setns()es into the namespace and reads it; the result comes back
 * to stasis as a packed NetNs (or an error message) over a pipe.
 * Restore: the restore child of the task that created the namespace, first thing after
 * clone3(CLONE_NEWNET): sysctls, links (created with their ifindex, so addresses and
 * routes keep naming them by ifindex), UP flags, addresses, routes.
 * A veth pair between two namespaces of the tree is created once, by the namespace whose
 * owner descends from a task of the other one (that task exists, and is in its namespace,
 * when the descendant is restored): the peer is created directly in the other namespace
 * (IFLA_NET_NS_FD of /proc/ANCESTOR/ns/net) and configured with a socket opened there. */
#include <arpa/inet.h>
#include <fcntl.h>
#include <linux/if.h>
#include <linux/if_arp.h>
#include <linux/fib_rules.h>
#include <linux/if_link.h>
#include <linux/neighbour.h>
#include <linux/net_namespace.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <linux/sockios.h>
#include <linux/veth.h>
#include <sched.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/log.h"
#include "core/util.h"
#include "image/img.h"
#include "net/netns.h"
#include "net/netlock.h"
#include "ns/ns.h"
#include "ns/nsrun.h"

/* The namespace's own settings programs and runtimes change (a router, kube-proxy's
 * route_localnet, rootless Podman's unprivileged port start, a server's port range and
 * keepalive): read at dump, written at restore where the new namespace's value differs,
 * first and in this order; every other one after them (src/net/sysctl.c). Each link's
 * own are in link_confs. */
static const char *const sysctls[] = {
	"ipv4/ip_forward",
	"ipv4/conf/all/forwarding",
	"ipv6/conf/all/disable_ipv6",
	"ipv4/ping_group_range",
	"core/somaxconn",
	"ipv4/conf/default/forwarding",
	"ipv4/conf/all/rp_filter",
	"ipv4/conf/default/rp_filter",
	"ipv4/conf/all/route_localnet",
	"ipv4/conf/default/route_localnet",
	"ipv4/conf/all/accept_redirects",
	"ipv4/conf/default/accept_redirects",
	"ipv4/conf/all/send_redirects",
	"ipv4/conf/default/send_redirects",
	"ipv6/conf/all/forwarding",
	"ipv6/conf/default/forwarding",
	"ipv6/conf/default/disable_ipv6",
	"ipv4/ip_local_port_range",
	"ipv4/ip_local_reserved_ports",
	"ipv4/ip_unprivileged_port_start",
	"ipv4/ip_default_ttl",
	"ipv4/ip_nonlocal_bind",
	"ipv4/icmp_echo_ignore_all",
	"ipv4/icmp_echo_ignore_broadcasts",
	"ipv4/tcp_syncookies",
	"ipv4/tcp_keepalive_time",
	"ipv4/tcp_keepalive_intvl",
	"ipv4/tcp_keepalive_probes",
	"ipv4/tcp_fin_timeout",
	"ipv4/tcp_tw_reuse",
	"ipv4/tcp_max_syn_backlog",
	"ipv4/tcp_ecn",
	"unix/max_dgram_qlen",
};

/* A link's own settings (ipv4/conf/NAME/KEY, ipv6/conf/NAME/KEY), the same way. */
static const char *const link_confs[] = {
	"ipv4/forwarding",     "ipv4/rp_filter",      "ipv4/route_localnet",
	"ipv4/accept_redirects", "ipv4/send_redirects", "ipv4/proxy_arp",
	"ipv4/accept_local",   "ipv4/arp_ignore",     "ipv4/arp_announce",
	"ipv6/forwarding",     "ipv6/disable_ipv6",   "ipv6/accept_ra",
	"ipv6/autoconf",       "ipv6/accept_redirects",
};

/* "/proc/sys/net/ipv4/conf/NAME/KEY" of @key "ipv4/KEY", ".../ipv4/neigh/NAME/KEY" of
 * "ipv4/neigh/KEY" (@prefix "" or "/proc/"); 0, -EINVAL (a key or link name that is no
 * path component) or -ENAMETOOLONG. */
static int link_conf_path(char *buf, size_t len, const char *prefix, const char *link,
			  const char *key)
{
	const char *slash = strchr(key, '/');
	if (!slash || strchr(link, '/') || !strcmp(link, ".") || !strcmp(link, ".."))
		return -EINVAL;
	bool neigh = !strncmp(slash + 1, "neigh/", 6);
	int n = snprintf(buf, len, "%ssys/net/%.*s/%s/%s/%s", prefix, (int)(slash - key), key,
			 neigh ? "neigh" : "conf", link, slash + 1 + (neigh ? 6 : 0));
	return n < 0 || (size_t)n >= len ? -ENAMETOOLONG : 0;
}

/* ---------------------------------------------------------------------------------- */
/* netlink plumbing */

#define NL_BUF 16384

struct nlmsg {
	struct nlmsghdr *h;
	size_t cap;
	bool dump; /* NLM_F_DUMP (whose bits overlap NLM_F_EXCL in other requests) */
	char buf[NL_BUF] __attribute__((aligned(NLMSG_ALIGNTO)));
};

static void nl_init(struct nlmsg *m, int type, int flags, const void *hdr, size_t hlen)
{
	memset(m->buf, 0, sizeof(m->buf));
	m->h = (struct nlmsghdr *)m->buf;
	m->cap = sizeof(m->buf);
	m->dump = (flags & NLM_F_DUMP) == NLM_F_DUMP && !(flags & NLM_F_CREATE);
	m->h->nlmsg_len = (uint32_t)NLMSG_LENGTH(hlen);
	m->h->nlmsg_type = (uint16_t)type;
	m->h->nlmsg_flags = (uint16_t)(NLM_F_REQUEST | flags);
	memcpy(NLMSG_DATA(m->h), hdr, hlen);
}

static struct rtattr *nla_put(struct nlmsg *m, int type, const void *data, size_t len)
{
	size_t off = NLMSG_ALIGN(m->h->nlmsg_len);
	if (off + RTA_SPACE(len) > m->cap)
		return NULL;
	struct rtattr *a = (struct rtattr *)(m->buf + off);
	a->rta_type = (unsigned short)type;
	a->rta_len = (unsigned short)RTA_LENGTH(len);
	if (len)
		memcpy(RTA_DATA(a), data, len);
	m->h->nlmsg_len = (uint32_t)(off + RTA_SPACE(len));
	return a;
}

static int nla_u32(struct nlmsg *m, int type, uint32_t v)
{
	return nla_put(m, type, &v, sizeof(v)) ? 0 : -E2BIG;
}

static int nla_str(struct nlmsg *m, int type, const char *s)
{
	return nla_put(m, type, s, strlen(s) + 1) ? 0 : -E2BIG;
}

static void nla_end(struct nlmsg *m, struct rtattr *nest)
{
	nest->rta_len = (unsigned short)(m->buf + m->h->nlmsg_len - (char *)nest);
}

/* Set up an rtnetlink socket: a receive timeout, bound. */
static int nl_setup(int fd)
{
	struct timeval tv = { .tv_sec = 5 };
	struct sockaddr_nl sa = { .nl_family = AF_NETLINK };
	if (setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) < 0 ||
	    bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		int e = -errno;
		close(fd);
		return e;
	}
	return fd;
}

static int nl_open(void)
{
	int fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE);
	return fd < 0 ? -errno : nl_setup(fd);
}

static uint32_t nl_seq;

/* Send @m; for each reply message call @cb (dumps: until NLMSG_DONE); without NLM_F_DUMP,
 * wait for the ack. Returns 0 or -errno (the kernel's error for the request). */
static int nl_talk(int fd, struct nlmsg *m, int (*cb)(struct nlmsghdr *, void *), void *arg)
{
	m->h->nlmsg_seq = ++nl_seq;
	if (!m->dump)
		m->h->nlmsg_flags |= NLM_F_ACK;
	struct sockaddr_nl sa = { .nl_family = AF_NETLINK };
	if (sendto(fd, m->h, m->h->nlmsg_len, 0, (struct sockaddr *)&sa, sizeof(sa)) < 0)
		return -errno;
	static char rb[65536] __attribute__((aligned(NLMSG_ALIGNTO)));
	for (;;) {
		ssize_t n = recv(fd, rb, sizeof(rb), 0);
		if (n < 0)
			return errno == EAGAIN ? -ETIMEDOUT : -errno;
		for (struct nlmsghdr *h = (struct nlmsghdr *)rb; NLMSG_OK(h, (size_t)n);
		     h = NLMSG_NEXT(h, n)) {
			if (h->nlmsg_seq != nl_seq)
				continue;
			if (h->nlmsg_type == NLMSG_DONE)
				return 0;
			if (h->nlmsg_type == NLMSG_ERROR) {
				const struct nlmsgerr *e = NLMSG_DATA(h);
				return e->error;
			}
			if (cb) {
				int r = cb(h, arg);
				if (r)
					return r;
			}
			if (!m->dump && !(h->nlmsg_flags & NLM_F_MULTI))
				return 0;
		}
	}
}

static void parse_attrs(struct rtattr **tb, int max, struct rtattr *a, int len)
{
	memset(tb, 0, sizeof(*tb) * (size_t)(max + 1));
	for (; RTA_OK(a, len); a = RTA_NEXT(a, len))
		if (a->rta_type <= max)
			tb[a->rta_type] = a;
}

static uint32_t rta_u32(const struct rtattr *a)
{
	uint32_t v;
	memcpy(&v, RTA_DATA(a), sizeof(v));
	return v;
}

/* ---------------------------------------------------------------------------------- */
/* dump, in the child inside the namespace */

static char errmsg[512];

static int __attribute__((format(printf, 2, 3))) fail(int err, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(errmsg, sizeof(errmsg), fmt, ap);
	va_end(ap);
	return err;
}

#define PUSH(arr, n, item)                                                                  \
	({                                                                                  \
		__typeof__(arr) _a = realloc((arr), sizeof(*(arr)) * ((n) + 1));          \
		int _pr = -ENOMEM;                                                           \
		if (_a) {                                                                   \
			(arr) = _a;                                                         \
			(arr)[(n)++] = (item);                                              \
			_pr = 0;                                                             \
		}                                                                           \
		_pr;                                                                         \
	})

static ProtobufCBinaryData bin(const struct rtattr *a)
{
	ProtobufCBinaryData b = { RTA_PAYLOAD(a), NULL };
	b.data = malloc(b.len ? b.len : 1);
	if (b.data)
		memcpy(b.data, RTA_DATA(a), b.len);
	return b;
}

struct dump_arg {
	NetNs *ns;
	pid_t pid;
	const uint64_t *cand_ids; /* namespaces of the tree, and their nsid seen from here */
	const int32_t *cand_nsid;
	size_t n_cand;
	const struct dump_opts *opts; /* --external veth[NAME] */
};

static bool ifname_ok(const char *n)
{
	size_t len = strlen(n);
	if (!len || len >= IFNAMSIZ || !strcmp(n, ".") || !strcmp(n, ".."))
		return false;
	for (const char *p = n; *p; p++)
		if (*p == '/' || *p == ':' || *p == '@' || *p <= ' ' || *p == 0x7f)
			return false;
	return true;
}

int net_parse_external(const char *arg, bool at_dump, char **name, char **out, char **bridge)
{
	*name = *out = *bridge = NULL;
	const char *close_b = str_starts(arg, "veth[") ? strchr(arg + 5, ']') : NULL;
	const char *rest = close_b ? close_b + 1 : NULL;
	if (!close_b || (at_dump && *rest) || (!at_dump && (rest[0] != ':' || !rest[1]))) {
		pr_err("external '%s': expected veth[NAME]%s", arg,
		       at_dump ? "" : ":HOSTNAME[@BRIDGE]");
		return -EINVAL;
	}
	*name = strndup(arg + 5, (size_t)(close_b - arg - 5));
	if (!at_dump) {
		const char *at = strchr(rest + 1, '@');
		*out = at ? strndup(rest + 1, (size_t)(at - rest - 1)) : strdup(rest + 1);
		if (at)
			*bridge = strdup(at + 1);
	}
	int ret = 0;
	if (!*name || (!at_dump && !*out) || (!at_dump && strchr(rest + 1, '@') && !*bridge))
		ret = -ENOMEM;
	else if (!ifname_ok(*name) || (*out && !ifname_ok(*out)) ||
		 (*bridge && !ifname_ok(*bridge))) {
		pr_err("external '%s': interface names are 1 to %d bytes without '/', ':', '@' "
		       "or blanks",
		       arg, IFNAMSIZ - 1);
		ret = -EINVAL;
	}
	if (ret) {
		free(*name);
		free(*out);
		free(*bridge);
		*name = *out = *bridge = NULL;
	}
	return ret;
}

/* The --external veth[NAME]... value for @name among @ext (dump or restore form): 0 and,
 * at restore, its HOSTNAME and BRIDGE (malloc'd, BRIDGE maybe NULL), or -ENOENT. */
static int veth_lookup(char *const *ext, size_t n, bool at_dump, const char *name, char **out,
		       char **bridge)
{
	for (size_t i = 0; i < n; i++) {
		char *nm, *x, *b;
		if (!str_starts(ext[i], "veth[") || net_parse_external(ext[i], at_dump, &nm, &x, &b))
			continue;
		bool hit = !strcmp(nm, name);
		free(nm);
		if (hit && out) {
			*out = x;
			*bridge = b;
			return 0;
		}
		free(x);
		free(b);
		if (hit)
			return 0;
	}
	return -ENOENT;
}

static int link_cb(struct nlmsghdr *h, void *arg)
{
	struct dump_arg *d = arg;
	struct ifinfomsg *ifi = NLMSG_DATA(h);
	struct rtattr *tb[IFLA_MAX + 1], *li[IFLA_INFO_MAX + 1];
	if (h->nlmsg_type != RTM_NEWLINK)
		return 0;
	parse_attrs(tb, IFLA_MAX, IFLA_RTA(ifi), (int)IFLA_PAYLOAD(h));
	const char *name = tb[IFLA_IFNAME] ? RTA_DATA(tb[IFLA_IFNAME]) : "?";
	const char *kind = NULL;
	if (tb[IFLA_LINKINFO]) {
		parse_attrs(li, IFLA_INFO_MAX, RTA_DATA(tb[IFLA_LINKINFO]),
			    (int)RTA_PAYLOAD(tb[IFLA_LINKINFO]));
		if (li[IFLA_INFO_KIND])
			kind = RTA_DATA(li[IFLA_INFO_KIND]);
	}
	if (ifi->ifi_type == ARPHRD_LOOPBACK && (ifi->ifi_flags & IFF_LOOPBACK))
		kind = "lo";
	if (!kind || (strcmp(kind, "lo") && strcmp(kind, "veth") && strcmp(kind, "dummy")))
		return fail(-EOPNOTSUPP,
			    "net: link %s (ifindex %d) in the net namespace of pid %d is of kind "
			    "%s: only lo, veth and dummy links are supported",
			    name, ifi->ifi_index, d->pid, kind ? kind : "(none)");
	NetLink *l = malloc(sizeof(*l));
	if (!l)
		return -ENOMEM;
	net_link__init(l);
	l->ifindex = (uint32_t)ifi->ifi_index;
	l->name = strdup(name);
	l->kind = strdup(kind);
	l->flags = ifi->ifi_flags;
	if (tb[IFLA_MTU]) {
		l->has_mtu = true;
		l->mtu = rta_u32(tb[IFLA_MTU]);
	}
	if (tb[IFLA_ADDRESS] && strcmp(kind, "lo")) {
		l->has_mac = true;
		l->mac = bin(tb[IFLA_ADDRESS]);
	}
	if (PUSH(d->ns->links, d->ns->n_links, l) || !l->name || !l->kind ||
	    (l->has_mac && !l->mac.data))
		return -ENOMEM;
	if (strcmp(kind, "veth"))
		return 0;
	if (!tb[IFLA_LINK])
		return fail(-EOPNOTSUPP, "net: veth %s in the net namespace of pid %d has no peer",
			    name, d->pid);
	l->has_peer_ifindex = true;
	l->peer_ifindex = rta_u32(tb[IFLA_LINK]);
	if (tb[IFLA_LINK_NETNSID]) {
		int32_t nsid = (int32_t)rta_u32(tb[IFLA_LINK_NETNSID]);
		for (size_t i = 0; i < d->n_cand; i++)
			if (d->cand_nsid[i] == nsid && nsid >= 0) {
				l->has_peer_ns = true;
				l->peer_ns = d->cand_ids[i];
			}
		if (!l->has_peer_ns) {
			/* the peer end is not ours (a container's veth to the host): only this
			 * end is recorded; the restore recreates the other end as its
			 * --external veth[NAME]:HOSTNAME[@BRIDGE] says (declaring it at dump
			 * with --external veth[NAME] is accepted and changes nothing) */
			pr_info("net: veth %s (net namespace of pid %d) has its peer outside the "
				"tree: recorded as external",
				name, d->pid);
			l->has_peer_ifindex = false;
			l->has_external = l->external = true;
			return 0;
		}
	}
	return 0;
}

static int addr_cb(struct nlmsghdr *h, void *arg)
{
	struct dump_arg *d = arg;
	struct ifaddrmsg *ifa = NLMSG_DATA(h);
	struct rtattr *tb[IFA_MAX + 1];
	if (h->nlmsg_type != RTM_NEWADDR)
		return 0;
	parse_attrs(tb, IFA_MAX, IFA_RTA(ifa), (int)IFA_PAYLOAD(h));
	uint32_t flags = tb[IFA_FLAGS] ? rta_u32(tb[IFA_FLAGS]) : ifa->ifa_flags;
	if (ifa->ifa_family != AF_INET && ifa->ifa_family != AF_INET6)
		return 0;
	/* IPv6 link-local and autoconfigured addresses come back by themselves (the
	 * restore waits for the link-local ones) */
	if (ifa->ifa_family == AF_INET6 &&
	    (ifa->ifa_scope == RT_SCOPE_LINK || !(flags & IFA_F_PERMANENT))) {
		for (size_t i = 0; ifa->ifa_scope == RT_SCOPE_LINK && i < d->ns->n_links; i++)
			if (d->ns->links[i]->ifindex == ifa->ifa_index)
				d->ns->links[i]->has_ipv6_ll = d->ns->links[i]->ipv6_ll = true;
		return 0;
	}
	struct rtattr *local = tb[IFA_LOCAL] ? tb[IFA_LOCAL] : tb[IFA_ADDRESS];
	if (!local)
		return 0;
	NetAddr *a = malloc(sizeof(*a));
	if (!a)
		return -ENOMEM;
	net_addr__init(a);
	a->family = ifa->ifa_family;
	a->ifindex = ifa->ifa_index;
	a->prefixlen = ifa->ifa_prefixlen;
	a->flags = flags;
	a->scope = ifa->ifa_scope;
	a->local = bin(local);
	if (PUSH(d->ns->addrs, d->ns->n_addrs, a) || !a->local.data)
		return -ENOMEM;
	if (tb[IFA_LOCAL] && tb[IFA_ADDRESS] &&
	    (RTA_PAYLOAD(tb[IFA_LOCAL]) != RTA_PAYLOAD(tb[IFA_ADDRESS]) ||
	     memcmp(RTA_DATA(tb[IFA_LOCAL]), RTA_DATA(tb[IFA_ADDRESS]),
		    RTA_PAYLOAD(tb[IFA_LOCAL])))) {
		a->has_address = true;
		a->address = bin(tb[IFA_ADDRESS]);
	}
	if (tb[IFA_BROADCAST]) {
		a->has_broadcast = true;
		a->broadcast = bin(tb[IFA_BROADCAST]);
	}
	if (tb[IFA_LABEL])
		a->label = strdup(RTA_DATA(tb[IFA_LABEL]));
	return 0;
}

static int route_cb(struct nlmsghdr *h, void *arg)
{
	struct dump_arg *d = arg;
	struct rtmsg *rt = NLMSG_DATA(h);
	struct rtattr *tb[RTA_MAX + 1];
	if (h->nlmsg_type != RTM_NEWROUTE)
		return 0;
	parse_attrs(tb, RTA_MAX, RTM_RTA(rt), (int)RTM_PAYLOAD(h));
	uint32_t table = tb[RTA_TABLE] ? rta_u32(tb[RTA_TABLE]) : rt->rtm_table;
	if ((rt->rtm_flags & RTM_F_CLONED) || rt->rtm_protocol == RTPROT_KERNEL ||
	    rt->rtm_protocol == RTPROT_RA ||
	    (rt->rtm_family != AF_INET && rt->rtm_family != AF_INET6))
		return 0;
	if (table != RT_TABLE_MAIN) /* only the main table is carried */
		return fail(-EOPNOTSUPP, "net: a route in table %u of the net namespace of pid %d "
			    "(policy routing): not carried", table, d->pid);
	if (tb[RTA_MULTIPATH] || tb[RTA_VIA] || tb[RTA_ENCAP])
		return fail(-EOPNOTSUPP,
			    "net: a multipath, via or encap route in the net namespace of pid %d: "
			    "not supported yet",
			    d->pid);
	NetRoute *r = malloc(sizeof(*r));
	if (!r)
		return -ENOMEM;
	net_route__init(r);
	r->family = rt->rtm_family;
	r->dst_len = rt->rtm_dst_len;
	r->scope = rt->rtm_scope;
	r->protocol = rt->rtm_protocol;
	r->type = rt->rtm_type;
	r->has_flags = true;
	r->flags = rt->rtm_flags & RTNH_F_ONLINK;
	if (PUSH(d->ns->routes, d->ns->n_routes, r))
		return -ENOMEM;
	if (tb[RTA_DST]) {
		r->has_dst = true;
		r->dst = bin(tb[RTA_DST]);
	}
	if (tb[RTA_GATEWAY]) {
		r->has_gateway = true;
		r->gateway = bin(tb[RTA_GATEWAY]);
	}
	if (tb[RTA_PREFSRC]) {
		r->has_prefsrc = true;
		r->prefsrc = bin(tb[RTA_PREFSRC]);
	}
	if (tb[RTA_OIF]) {
		r->has_oif = true;
		r->oif = rta_u32(tb[RTA_OIF]);
	}
	if (tb[RTA_PRIORITY]) {
		r->has_priority = true;
		r->priority = rta_u32(tb[RTA_PRIORITY]);
	}
	if (tb[RTA_METRICS]) {
		/* every metric, replayed whole (window, rtt, advmss, initcwnd, congctl, ...) */
		r->has_metrics = true;
		r->metrics = bin(tb[RTA_METRICS]);
		if (!r->metrics.data)
			return -ENOMEM;
		struct rtattr *mx[RTAX_MAX + 1];
		parse_attrs(mx, RTAX_MAX, RTA_DATA(tb[RTA_METRICS]),
			    (int)RTA_PAYLOAD(tb[RTA_METRICS]));
		if (mx[RTAX_MTU]) {
			r->has_mtu = true;
			r->mtu = rta_u32(mx[RTAX_MTU]);
		}
	}
	return 0;
}

/* Traffic control is not carried: a qdisc someone added (any handle but the 0: of the
 * default qdiscs the kernel attaches to a new interface, ingress and clsact included)
 * would be missing after the restore: refused. */
static int qdisc_cb(struct nlmsghdr *h, void *arg)
{
	struct dump_arg *d = arg;
	struct tcmsg *tc = NLMSG_DATA(h);
	struct rtattr *tb[TCA_MAX + 1];
	if (h->nlmsg_type != RTM_NEWQDISC || h->nlmsg_len < NLMSG_LENGTH(sizeof(*tc)))
		return 0;
	if (!tc->tcm_handle)
		return 0;
	parse_attrs(tb, TCA_MAX, TCA_RTA(tc), (int)(h->nlmsg_len - NLMSG_LENGTH(sizeof(*tc))));
	char kind[32] = "?";
	if (tb[TCA_KIND])
		snprintf(kind, sizeof(kind), "%.*s", (int)RTA_PAYLOAD(tb[TCA_KIND]),
			 (const char *)RTA_DATA(tb[TCA_KIND]));
	char name[IFNAMSIZ] = "?";
	for (size_t i = 0; i < d->ns->n_links; i++)
		if (d->ns->links[i]->ifindex == (uint32_t)tc->tcm_ifindex && d->ns->links[i]->name)
			snprintf(name, sizeof(name), "%s", d->ns->links[i]->name);
	return fail(-EOPNOTSUPP, "net: interface %s of the net namespace of pid %d has a "
		    "traffic-control qdisc (%s, handle %x:): not carried (tc settings are "
		    "not restored)", name, d->pid, kind, tc->tcm_handle >> 16);
}

/* Neighbour entries are learnt again, but one set by hand (permanent) is not carried:
 * refused. */
static int neigh_cb(struct nlmsghdr *h, void *arg)
{
	struct dump_arg *d = arg;
	struct ndmsg *nd = NLMSG_DATA(h);
	if (h->nlmsg_type != RTM_NEWNEIGH || h->nlmsg_len < NLMSG_LENGTH(sizeof(*nd)) ||
	    !(nd->ndm_state & NUD_PERMANENT) || (nd->ndm_flags & NTF_PROXY))
		return 0;
	return fail(-EOPNOTSUPP, "net: a permanent neighbour entry (interface %d) in the net "
		    "namespace of pid %d: not carried", nd->ndm_ifindex, d->pid);
}

/* Policy routing rules are not carried: any but the kernel's defaults is refused. */
static int rule_cb(struct nlmsghdr *h, void *arg)
{
	struct dump_arg *d = arg;
	struct fib_rule_hdr *fr = NLMSG_DATA(h);
	struct rtattr *tb[FRA_MAX + 1];
	if (h->nlmsg_type != RTM_NEWRULE || h->nlmsg_len < NLMSG_LENGTH(sizeof(*fr)))
		return 0;
	parse_attrs(tb, FRA_MAX, (struct rtattr *)((char *)fr + NLMSG_ALIGN(sizeof(*fr))),
		    (int)(h->nlmsg_len - NLMSG_LENGTH(sizeof(*fr))));
	if (tb[FRA_PROTOCOL] && RTA_PAYLOAD(tb[FRA_PROTOCOL]) >= 1 &&
	    *(const uint8_t *)RTA_DATA(tb[FRA_PROTOCOL]) == RTPROT_KERNEL)
		return 0;
	uint32_t prio = tb[FRA_PRIORITY] ? rta_u32(tb[FRA_PRIORITY]) : 0;
	return fail(-EOPNOTSUPP, "net: a policy routing rule (priority %u, table %u) in the net "
		    "namespace of pid %d: not carried", prio,
		    tb[FRA_TABLE] ? rta_u32(tb[FRA_TABLE]) : fr->table, d->pid);
}

#define NFT_RULESET_MAX (16u << 20)

/* The nftables tables of the namespace the caller is in, as `nft list table` prints them
 * (what `nft -f` loads back), but stasis's own lock tables, into ns->nft_ruleset. Rules
 * of iptables-nft that use xtables extensions ("xt match", "xt target") cannot be loaded
 * by nft: refused; so are legacy iptables tables (x_tables), which nft does not see. */
static int dump_nft(struct dump_arg *d)
{
	static const char *const legacy[] = { "ip_tables_names", "ip6_tables_names",
					      "arp_tables_names" };
	for (size_t i = 0; i < ARRAY_SIZE(legacy); i++) {
		char path[64];
		size_t len = 0;
		snprintf(path, sizeof(path), "/proc/self/net/%s", legacy[i]);
		_cleanup_free_ char *t = read_file_at(AT_FDCWD, path, 1u << 16, &len);
		if (t && len)
			return fail(-EOPNOTSUPP, "net: the net namespace of pid %d has legacy "
				    "iptables tables (%s: %.*s): not carried", d->pid, legacy[i],
				    (int)strcspn(t, "\n"), t);
	}
	char err[256];
	_cleanup_free_ char *tables = NULL;
	int ret = netlock_nft("list tables", &tables, err, sizeof(err));
	if (ret == -EPROTONOSUPPORT) /* a kernel without nf_tables: no ruleset */
		return 0;
	if (ret)
		return fail(ret, "net: nftables tables of the net namespace of pid %d: %s", d->pid,
			    err);
	char *buf = NULL;
	size_t blen = 0;
	FILE *f = open_memstream(&buf, &blen);
	if (!f)
		return -ENOMEM;
	char *save = NULL;
	for (char *l = strtok_r(tables, "\n", &save); l && !ret; l = strtok_r(NULL, "\n", &save)) {
		char fam[16], name[256];
		if (sscanf(l, "table %15s %255s", fam, name) != 2) {
			ret = fail(-EIO, "net: unexpected nft output: %.80s", l);
			break;
		}
		/* (the dumper's own: the network lock, the accept queues' drain) */
		if (str_starts(name, "stasis-lock-") || str_starts(name, NETLOCK_DRAIN_PREFIX))
			continue;
		char cmd[320];
		_cleanup_free_ char *t = NULL;
		snprintf(cmd, sizeof(cmd), "list table %s %s", fam, name);
		ret = netlock_nft(cmd, &t, err, sizeof(err));
		if (ret) {
			ret = fail(ret, "net: nftables table %s %s of the net namespace of pid %d: %s",
				   fam, name, d->pid, err);
		} else if (strstr(t, " xt match ") || strstr(t, " xt target ") ||
			   strstr(t, "xt match \"") || strstr(t, "xt target \"")) {
			ret = fail(-EOPNOTSUPP, "net: nftables table %s %s of the net namespace of "
				   "pid %d holds iptables-nft rules with xtables extensions, which "
				   "nft cannot load again: not carried", fam, name, d->pid);
		} else {
			fputs(t, f);
		}
	}
	if (fclose(f) && !ret)
		ret = -ENOMEM;
	if (!ret && blen > NFT_RULESET_MAX)
		ret = fail(-E2BIG, "net: the nftables ruleset of the net namespace of pid %d is "
			   "larger than %u bytes", d->pid, NFT_RULESET_MAX);
	if (!ret && blen)
		d->ns->nft_ruleset = buf, buf = NULL;
	free(buf);
	return ret;
}

static int nsid_cb(struct nlmsghdr *h, void *arg)
{
	struct rtattr *tb[NETNSA_MAX + 1];
	if (h->nlmsg_type != RTM_NEWNSID)
		return 0;
	parse_attrs(tb, NETNSA_MAX,
		    (struct rtattr *)((char *)NLMSG_DATA(h) + NLMSG_ALIGN(sizeof(struct rtgenmsg))),
		    (int)(h->nlmsg_len - NLMSG_LENGTH(NLMSG_ALIGN(sizeof(struct rtgenmsg)))));
	if (tb[NETNSA_NSID])
		*(int32_t *)arg = (int32_t)rta_u32(tb[NETNSA_NSID]);
	return 0;
}

static int dump_link_confs(NetNs *ns)
{
	for (size_t i = 0; i < ns->n_links; i++)
		for (size_t k = 0; k < ARRAY_SIZE(link_confs); k++) {
			NetLink *l = ns->links[i];
			char path[160];
			int ret = link_conf_path(path, sizeof(path), "/proc/", l->name,
						 link_confs[k]);
			if (!ret)
				ret = net_setting_read(path, link_confs[k], &l->conf, &l->n_conf, errmsg,
						       sizeof(errmsg));
			if (ret)
				return ret;
		}
	for (size_t i = 0; i < ns->n_links; i++) {
		NetLink *l = ns->links[i];
		int ret = net_link_confs_walk(l->name, &l->conf, &l->n_conf, errmsg, sizeof(errmsg));
		if (ret)
			return ret;
	}
	return 0;
}

static int dump_sysctls(NetNs *ns)
{
	for (size_t i = 0; i < ARRAY_SIZE(sysctls); i++) {
		char path[128];
		snprintf(path, sizeof(path), "/proc/sys/net/%s", sysctls[i]);
		int ret = net_setting_read(path, sysctls[i], &ns->sysctls, &ns->n_sysctls, errmsg,
					   sizeof(errmsg));
		if (ret)
			return ret;
	}
	int ret = net_sysctls_walk(&ns->sysctls, &ns->n_sysctls, errmsg, sizeof(errmsg));
	return ret ? ret : dump_link_confs(ns);
}

static int dump_inside(struct dump_arg *d, const int *cand_fd, int32_t *cand_nsid)
{
	int fd = nl_open();
	if (fd < 0)
		return fail(fd, "net: netlink socket: %s", strerror(-fd));
	struct nlmsg *m = malloc(sizeof(*m));
	if (!m)
		return -ENOMEM;
	int ret = 0;
	for (size_t i = 0; i < d->n_cand && !ret; i++) {
		struct rtgenmsg g = { .rtgen_family = AF_UNSPEC };
		cand_nsid[i] = -1;
		nl_init(m, RTM_GETNSID, 0, &g, sizeof(g));
		ret = nla_u32(m, NETNSA_FD, (uint32_t)cand_fd[i]);
		if (!ret)
			ret = nl_talk(fd, m, nsid_cb, &cand_nsid[i]);
		if (ret)
			ret = fail(ret, "net: RTM_GETNSID: %s", strerror(-ret));
	}
	/* the links first: the others name them */
	struct ifinfomsg ifi = { .ifi_family = AF_UNSPEC };
	struct ifaddrmsg ifa = { .ifa_family = AF_UNSPEC };
	struct rtmsg rt = { .rtm_family = AF_UNSPEC };
	struct fib_rule_hdr frh = { .family = AF_UNSPEC };
	struct tcmsg tcm = { .tcm_family = AF_UNSPEC };
	struct ndmsg nd = { .ndm_family = AF_UNSPEC };
	const struct {
		uint16_t type;
		const void *hdr;
		size_t len;
		int (*cb)(struct nlmsghdr *, void *);
	} dumps[] = {
		{ RTM_GETLINK, &ifi, sizeof(ifi), link_cb },
		{ RTM_GETADDR, &ifa, sizeof(ifa), addr_cb },
		{ RTM_GETROUTE, &rt, sizeof(rt), route_cb },
		{ RTM_GETRULE, &frh, sizeof(frh), rule_cb },
		{ RTM_GETQDISC, &tcm, sizeof(tcm), qdisc_cb },
		{ RTM_GETNEIGH, &nd, sizeof(nd), neigh_cb },
	};
	for (size_t i = 0; i < ARRAY_SIZE(dumps) && !ret; i++) {
		nl_init(m, dumps[i].type, NLM_F_DUMP, dumps[i].hdr, dumps[i].len);
		ret = nl_talk(fd, m, dumps[i].cb, d);
	}
	if (!ret)
		ret = dump_nft(d);
	if (ret && !errmsg[0])
		fail(ret, "net: reading the net namespace of pid %d: %s", d->pid, strerror(-ret));
	if (!ret)
		ret = dump_sysctls(d->ns);
	free(m);
	close(fd);
	return ret;
}

struct read_arg {
	NetNs ns;
	struct dump_arg d;
	const int *cand_fd;
};

/* In the child, inside the namespace. */
static ProtobufCMessage *read_child(void *arg, int *err)
{
	struct read_arg *a = arg;
	int32_t *nsids = calloc(a->d.n_cand + 1, sizeof(*nsids));
	a->d.cand_nsid = nsids;
	int r = nsids ? dump_inside(&a->d, a->cand_fd, nsids) : -ENOMEM;
	if (!r)
		return &a->ns.base;
	if (!errmsg[0])
		fail(r, "net: reading the net namespace of pid %d: %s", a->d.pid, strerror(-r));
	*err = nsrun_error(r, "%s", errmsg);
	return NULL;
}

/* Read the net namespace of @pid (id @id) from a child that joins it. @cand: the
 * namespaces of the tree (ids and open fds), to name the namespace of a veth's peer. */
static int read_netns(const struct dump_opts *o, pid_t pid, uint64_t id,
		      const uint64_t *cand_ids, const int *cand_fd, size_t n_cand, NetNs **out)
{
	char what[64];
	snprintf(what, sizeof(what), "the net namespace of pid %d", pid);
	struct nsrun r = { .tag = "net", .what = what, .n_ns = 1, .timeout_ms = 10000,
			   .max_reply = IMG_MAX_META };
	_cleanup_close_ int nsfd = ns_open_of(pid, "net", "net");
	if (nsfd < 0)
		return nsfd;
	r.ns[0] = (struct nsrun_ns){ nsfd, CLONE_NEWNET };
	struct read_arg a = { .ns = NET_NS__INIT, .cand_fd = cand_fd };
	a.ns.id = id;
	a.d = (struct dump_arg){ &a.ns, pid, cand_ids, NULL, n_cand, o };
	ProtobufCMessage *m;
	int ret = ns_run_msg(&r, &net_ns__descriptor, read_child, &a, &m);
	if (!ret)
		*out = (NetNs *)m;
	return ret;
}

/* Move the elements of @arr (@n) for which @match is true to @dst (@dn). */
#define MOVE_IF(arr, n, dst, dn, match)                                                     \
	({                                                                                  \
		int _r = 0;                                                                 \
		size_t _k = 0;                                                              \
		for (size_t _i = 0; _i < (n); _i++) {                                       \
			__typeof__(*(arr)) it = (arr)[_i];                                  \
			if ((match) && !_r)                                                 \
				_r = PUSH(dst, dn, it);                                     \
			else                                                                \
				(arr)[_k++] = it;                                           \
		}                                                                           \
		(n) = _k;                                                                   \
		_r;                                                                         \
	})

/* The pid of an ancestor (by parent links) of procs[i] that is in net namespace @net. */
static pid_t ancestor_in(struct dump_ctx **procs, size_t n, const pid_t *ppid, size_t i,
			 uint64_t net)
{
	for (size_t guard = 0; guard < n; guard++) {
		size_t j = n;
		for (size_t k = 0; k < n; k++)
			if (procs[k]->pid == ppid[i])
				j = k;
		if (j == n)
			return 0;
		if (procs[j]->core->ns->net == net)
			return procs[j]->pid;
		i = j;
	}
	return 0;
}

int net_dump_tree(struct dump_ctx **procs, size_t n, const pid_t *ppid, uint64_t mine)
{
	size_t *own = calloc(n + 1, sizeof(*own)), n_own = 0;
	uint64_t *ids = calloc(n + 1, sizeof(*ids));
	int *fds = calloc(n + 1, sizeof(*fds));
	int ret = own && ids && fds ? 0 : -ENOMEM;
	for (size_t i = 0; i < n && !ret; i++) {
		uint64_t net = procs[i]->core->ns->net, pnet = mine;
		for (size_t j = 0; j < i; j++)
			if (procs[j]->pid == ppid[i])
				pnet = procs[j]->core->ns->net;
		if (!net || net == pnet || ns_task_joined(procs[i]->tns, CLONE_NEWNET))
			continue; /* (entered again at restore: an ancestor's or the dumper's) */
		if (net == mine) {
			pr_err("pid %d went back to stasis's net namespace (setns): not supported yet",
			       procs[i]->pid);
			ret = -EOPNOTSUPP;
			break;
		}
		for (size_t k = 0; k < n_own; k++)
			if (ids[k] == net) {
				pr_err("pid %d joined the net namespace of pid %d (setns): not "
				       "supported yet",
				       procs[i]->pid, procs[own[k]]->pid);
				ret = -EOPNOTSUPP;
			}
		char path[64];
		snprintf(path, sizeof(path), "/proc/%d/ns/net", procs[i]->ospid);
		fds[n_own] = open(path, O_RDONLY | O_CLOEXEC);
		if (fds[n_own] < 0 && !ret)
			ret = pr_perror("net: open %s", path);
		own[n_own] = i;
		ids[n_own++] = net;
	}
	for (size_t k = 0; k < n_own && !ret; k++)
		ret = read_netns(procs[own[k]]->opts, procs[own[k]]->ospid, ids[k], ids, fds, n_own,
				 &procs[own[k]]->tns->net);
	/* veth pairs across namespaces: one side creates the pair */
	for (size_t k = 0; k < n_own && !ret; k++) {
		NetNs *b = procs[own[k]]->tns->net;
		for (size_t li = 0; li < b->n_links && !ret; li++) {
			NetLink *l = b->links[li];
			if (!l->has_peer_ns || l->peer_ns == b->id || l->peer)
				continue;
			size_t ka = 0;
			while (ka < n_own && ids[ka] != l->peer_ns)
				ka++;
			NetNs *a = ka < n_own ? procs[own[ka]]->tns->net : NULL;
			NetLink *p = NULL;
			for (size_t j = 0; a && j < a->n_links; j++)
				if (a->links[j]->ifindex == l->peer_ifindex)
					p = a->links[j];
			if (!p) {
				pr_err("net: the peer of veth %s (pid %d) was not found", l->name,
				       procs[own[k]]->pid);
				ret = -EIO;
				break;
			}
			NetNs *from = a, *to = b;
			NetLink *moved = p, *keeper = l;
			pid_t anc = ancestor_in(procs, n, ppid, own[k], a->id);
			if (!anc) {
				anc = ancestor_in(procs, n, ppid, own[ka], b->id);
				from = b, to = a, moved = l, keeper = p;
			}
			if (!anc) {
				pr_err("net: veth %s (pid %d) and its peer %s (pid %d): neither "
				       "namespace is an ancestor's of the other: not supported yet",
				       l->name, procs[own[k]]->pid, p->name, procs[own[ka]]->pid);
				ret = -EOPNOTSUPP;
				break;
			}
			(void)to;
			uint32_t idx = moved->ifindex;
			keeper->has_peer_pid = true;
			keeper->peer_pid = anc;
			keeper->peer = moved;
			for (size_t j = 0; j < from->n_links; j++)
				if (from->links[j] == moved) {
					memmove(&from->links[j], &from->links[j + 1],
						(from->n_links - j - 1) * sizeof(*from->links));
					from->n_links--;
					break;
				}
			if (!ret)
				ret = MOVE_IF(from->addrs, from->n_addrs, keeper->peer_addrs,
					      keeper->n_peer_addrs, it->ifindex == idx);
			if (!ret)
				ret = MOVE_IF(from->routes, from->n_routes, keeper->peer_routes,
					      keeper->n_peer_routes, it->has_oif && it->oif == idx);
			if (from == b)
				li = (size_t)-1; /* b->links changed: start over */
		}
	}
	for (size_t k = 0; fds && k < n_own; k++)
		if (fds[k] >= 0)
			close(fds[k]);
	free(own);
	free(ids);
	free(fds);
	return ret;
}

/* ---------------------------------------------------------------------------------- */
/* restore, in the restore child, inside the new namespace */

static int put_link_attrs(struct nlmsg *m, const NetLink *l)
{
	int r = nla_str(m, IFLA_IFNAME, l->name);
	if (!r && l->has_mtu)
		r = nla_u32(m, IFLA_MTU, l->mtu);
	if (!r && l->has_mac && !nla_put(m, IFLA_ADDRESS, l->mac.data, l->mac.len))
		r = -E2BIG;
	return r;
}

/* Create dummy @l, or the veth pair @l/@peer (@peer_nsfd >= 0: the peer in that ns). */
static int create_link(int fd, const NetLink *l, const NetLink *peer, int peer_nsfd)
{
	struct nlmsg *m = malloc(sizeof(*m));
	if (!m)
		return -ENOMEM;
	struct ifinfomsg ifi = { .ifi_family = AF_UNSPEC, .ifi_index = (int)l->ifindex };
	nl_init(m, RTM_NEWLINK, NLM_F_CREATE | NLM_F_EXCL, &ifi, sizeof(ifi));
	int r = put_link_attrs(m, l);
	struct rtattr *info = r ? NULL : nla_put(m, IFLA_LINKINFO, NULL, 0);
	if (!info || nla_str(m, IFLA_INFO_KIND, l->kind))
		r = -E2BIG;
	if (!r && peer) {
		struct rtattr *data = nla_put(m, IFLA_INFO_DATA, NULL, 0);
		struct ifinfomsg pi = { .ifi_family = AF_UNSPEC, .ifi_index = (int)peer->ifindex };
		struct rtattr *pa = data ? nla_put(m, VETH_INFO_PEER, &pi, sizeof(pi)) : NULL;
		if (!pa)
			r = -E2BIG;
		if (!r)
			r = put_link_attrs(m, peer);
		if (!r && peer_nsfd >= 0)
			r = nla_u32(m, IFLA_NET_NS_FD, (uint32_t)peer_nsfd);
		if (!r) {
			nla_end(m, pa);
			nla_end(m, data);
		}
	}
	if (!r) {
		nla_end(m, info);
		r = nl_talk(fd, m, NULL, NULL);
	}
	free(m);
	if (r)
		pr_errno(r, "restore: create %s link %s (ifindex %u)%s%s", l->kind, l->name,
			 l->ifindex, peer ? " with peer " : "", peer ? peer->name : "");
	return r;
}

/* MTU of lo, and IFF_UP of any link */
static int set_link(int fd, const NetLink *l, bool mtu)
{
	struct nlmsg *m = malloc(sizeof(*m));
	if (!m)
		return -ENOMEM;
	struct ifinfomsg ifi = { .ifi_family = AF_UNSPEC, .ifi_index = (int)l->ifindex };
	if (!mtu) {
		ifi.ifi_flags = l->flags & IFF_UP;
		ifi.ifi_change = IFF_UP;
	}
	nl_init(m, RTM_NEWLINK, 0, &ifi, sizeof(ifi));
	int r = mtu && l->has_mtu ? nla_u32(m, IFLA_MTU, l->mtu) : 0;
	if (!r)
		r = nl_talk(fd, m, NULL, NULL);
	free(m);
	if (r)
		pr_errno(r, "restore: set %s of link %s", mtu ? "the MTU" : "the flags", l->name);
	return r;
}

static int add_addr(int fd, const NetAddr *a)
{
	struct nlmsg *m = malloc(sizeof(*m));
	if (!m)
		return -ENOMEM;
	uint32_t flags = a->flags & (IFA_F_NODAD | IFA_F_HOMEADDRESS | IFA_F_NOPREFIXROUTE |
				     IFA_F_MANAGETEMPADDR | IFA_F_MCAUTOJOIN);
	if (a->family == AF_INET6)
		flags |= IFA_F_NODAD; /* it was valid already */
	struct ifaddrmsg ifa = { .ifa_family = (uint8_t)a->family,
				 .ifa_prefixlen = (uint8_t)a->prefixlen,
				 .ifa_flags = (uint8_t)flags,
				 .ifa_scope = (uint8_t)a->scope,
				 .ifa_index = a->ifindex };
	nl_init(m, RTM_NEWADDR, NLM_F_CREATE | NLM_F_EXCL, &ifa, sizeof(ifa));
	int r = nla_put(m, IFA_LOCAL, a->local.data, a->local.len) ? 0 : -E2BIG;
	const ProtobufCBinaryData *peer = a->has_address ? &a->address : &a->local;
	if (!r && !nla_put(m, IFA_ADDRESS, peer->data, peer->len))
		r = -E2BIG;
	if (!r && a->has_broadcast && !nla_put(m, IFA_BROADCAST, a->broadcast.data, a->broadcast.len))
		r = -E2BIG;
	if (!r && a->label && a->label[0])
		r = nla_str(m, IFA_LABEL, a->label);
	if (!r)
		r = nla_u32(m, IFA_FLAGS, flags);
	if (!r)
		r = nl_talk(fd, m, NULL, NULL);
	free(m);
	if (r == -EEXIST)
		r = 0; /* lo's 127.0.0.1 and ::1 come with lo going up */
	if (r)
		pr_errno(r, "restore: add an address to ifindex %u", a->ifindex);
	return r;
}

/* Images are untrusted: a route's metrics are a well-formed list of RTAX_* attributes. */
static bool metrics_ok(const ProtobufCBinaryData *b)
{
	if (b->len > 4096) {
		pr_err("net image: a route's metrics take %zu bytes", b->len);
		return false;
	}
	int len = (int)b->len;
	for (const struct rtattr *a = (const void *)b->data; len > 0; a = RTA_NEXT(a, len))
		if (!RTA_OK(a, len) || a->rta_type == 0 || a->rta_type > RTAX_MAX) {
			pr_err("net image: a route's metrics are malformed");
			return false;
		}
	return true;
}

static int add_route(int fd, const NetRoute *rt)
{
	struct nlmsg *m = malloc(sizeof(*m));
	if (!m)
		return -ENOMEM;
	struct rtmsg rm = { .rtm_family = (uint8_t)rt->family,
			    .rtm_dst_len = (uint8_t)rt->dst_len,
			    .rtm_table = RT_TABLE_MAIN,
			    .rtm_protocol = (uint8_t)rt->protocol,
			    .rtm_scope = (uint8_t)rt->scope,
			    .rtm_type = (uint8_t)rt->type,
			    .rtm_flags = rt->has_flags ? rt->flags & RTNH_F_ONLINK : 0 };
	nl_init(m, RTM_NEWROUTE, NLM_F_CREATE | NLM_F_EXCL, &rm, sizeof(rm));
	int r = 0;
	if (rt->has_dst && !nla_put(m, RTA_DST, rt->dst.data, rt->dst.len))
		r = -E2BIG;
	if (!r && rt->has_gateway && !nla_put(m, RTA_GATEWAY, rt->gateway.data, rt->gateway.len))
		r = -E2BIG;
	if (!r && rt->has_prefsrc && !nla_put(m, RTA_PREFSRC, rt->prefsrc.data, rt->prefsrc.len))
		r = -E2BIG;
	if (!r && rt->has_oif)
		r = nla_u32(m, RTA_OIF, rt->oif);
	if (!r && rt->has_priority)
		r = nla_u32(m, RTA_PRIORITY, rt->priority);
	if (!r && rt->has_metrics)
		r = metrics_ok(&rt->metrics) ? (nla_put(m, RTA_METRICS, rt->metrics.data,
							rt->metrics.len) ? 0 : -E2BIG)
					     : -EINVAL;
	else if (!r && rt->has_mtu) {
		struct rtattr *mx = nla_put(m, RTA_METRICS, NULL, 0);
		r = mx ? nla_u32(m, RTAX_MTU, rt->mtu) : -E2BIG;
		if (!r)
			nla_end(m, mx);
	}
	if (!r)
		r = nl_talk(fd, m, NULL, NULL);
	free(m);
	if (r == -EEXIST)
		r = 0;
	if (r)
		pr_errno(r, "restore: add a route (family %u, /%u, oif %u)", rt->family, rt->dst_len,
			 rt->oif);
	return r;
}

/* Write @v to @path (below @proc_dfd) unless it holds that already (the same value may
 * be read-only here). Through stasis's /proc: the task's own may be gone (pivot_root); a
 * net sysctl file shows the net namespace of whoever opens it. */
static int write_setting(int proc_dfd, const char *path, const char *value)
{
	_cleanup_free_ char *cur = read_file_at(proc_dfd, path, 4096, NULL);
	if (cur) {
		cur[strcspn(cur, "\n")] = '\0';
		if (!strcmp(cur, value))
			return 0;
	}
	_cleanup_close_ int fd = openat(proc_dfd, path, O_WRONLY | O_CLOEXEC);
	const char *v = value[0] ? value : "\n"; /* an empty list: cleared */
	if (fd < 0 || write_all(fd, v, strlen(v)))
		return pr_perror("restore: write /proc/%s (%s)", path, value);
	return 0;
}

static bool known_name(const char *name, const char *const *list, size_t n)
{
	for (size_t k = 0; k < n; k++)
		if (!strcmp(name, list[k]))
			return true;
	return false;
}

/* Every link's own settings, once the links exist. */
static int restore_link_confs(int proc_dfd, const NetNs *ns)
{
	for (size_t i = 0; i < ns->n_links; i++)
		for (size_t k = 0; k < ns->links[i]->n_conf; k++) {
			const NetLink *l = ns->links[i];
			const NetSysctl *s = l->conf[k];
			char path[160];
			if ((!known_name(s->name, link_confs, ARRAY_SIZE(link_confs)) &&
			     !net_link_conf_name_ok(s->name)) ||
			    link_conf_path(path, sizeof(path), "", l->name, s->name)) {
				pr_err("image: unexpected setting %s of link %s", s->name, l->name);
				return -EINVAL;
			}
			int ret = write_setting(proc_dfd, path, s->value);
			if (ret)
				return ret;
		}
	return 0;
}

static int restore_sysctls(int proc_dfd, const NetNs *ns)
{
	for (size_t i = 0; i < ns->n_sysctls; i++) {
		const NetSysctl *s = ns->sysctls[i];
		if (!known_name(s->name, sysctls, ARRAY_SIZE(sysctls)) &&
		    !net_sysctl_name_ok(s->name)) {
			pr_err("image: unexpected net sysctl %s", s->name);
			return -EINVAL;
		}
		char path[128];
		snprintf(path, sizeof(path), "sys/net/%s", s->name);
		int ret = write_setting(proc_dfd, path, s->value);
		if (ret)
			return ret;
	}
	return 0;
}

/* An rtnetlink socket in the net namespace @nsfd. @proc_dfd: stasis's /proc, where this
 * task is visible (its own /proc may belong to a pid namespace it is not in yet, or to an
 * ancestor's). */
static int nl_open_in(int proc_dfd, int nsfd)
{
	int fd = ns_socket_in(proc_dfd, nsfd, AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE,
			      "restore", "a peer's net namespace");
	if (fd < 0)
		return fd;
	fd = nl_setup(fd);
	return fd < 0 ? pr_errno(fd, "restore: netlink socket") : fd;
}

static int restore_peer(int proc_dfd, const NetLink *l)
{
	char path[64];
	snprintf(path, sizeof(path), "%d/ns/net", l->peer_pid);
	_cleanup_close_ int pfd = openat(proc_dfd, path, O_RDONLY | O_CLOEXEC);
	if (pfd < 0)
		return pr_perror("restore: open /proc/%s", path);
	_cleanup_close_ int fd = nl_open();
	if (fd < 0)
		return pr_errno(fd, "restore: netlink socket");
	int r = create_link(fd, l, l->peer, pfd);
	if (r)
		return r;
	_cleanup_close_ int pfd_nl = nl_open_in(proc_dfd, pfd);
	if (pfd_nl < 0)
		return pfd_nl;
	r = (l->peer->flags & IFF_UP) ? set_link(pfd_nl, l->peer, false) : 0;
	for (size_t i = 0; i < l->n_peer_addrs && !r; i++)
		r = add_addr(pfd_nl, l->peer_addrs[i]);
	for (size_t i = 0; i < l->n_peer_routes && !r; i++)
		r = add_route(pfd_nl, l->peer_routes[i]);
	return r;
}

/* The ifindex of link @name in the current net namespace, 0 (errno set) if none. */
static unsigned int ifindex_of(int sk, const char *name)
{
	struct ifreq ifr = { 0 };
	if (strlen(name) >= sizeof(ifr.ifr_name)) {
		errno = ENAMETOOLONG;
		return 0;
	}
	strcpy(ifr.ifr_name, name);
	/* a device ioctl acts in the net namespace of the socket it is made on */
	if (ioctl(sk, SIOCGIFINDEX, &ifr) < 0)
		return 0;
	return (unsigned int)ifr.ifr_ifindex;
}

/* Link @name of the net namespace of netlink socket @fd put on @master (> 0) and up. */
static int host_end_up(int fd, const char *name, unsigned int master)
{
	unsigned int idx = ifindex_of(fd, name);
	if (!idx)
		return pr_perror("restore: the host end %s of an external veth", name);
	struct nlmsg *m = malloc(sizeof(*m));
	if (!m)
		return -ENOMEM;
	struct ifinfomsg ifi = { .ifi_family = AF_UNSPEC, .ifi_index = (int)idx,
				 .ifi_flags = IFF_UP, .ifi_change = IFF_UP };
	nl_init(m, RTM_NEWLINK, 0, &ifi, sizeof(ifi));
	int r = master ? nla_u32(m, IFLA_MASTER, master) : 0;
	if (!r)
		r = nl_talk(fd, m, NULL, NULL);
	free(m);
	if (r)
		pr_errno(r, "restore: bring up the host end %s of an external veth%s", name,
			 master ? " on its bridge" : "");
	return r;
}

/* An external veth: this end (its ifindex, name, MAC, MTU) here, the peer named as the
 * restore's --external says in the restorer's net namespace (that of stasis, @proc_dfd's
 * pid @stasis), up, on the bridge if one was given. */
static int restore_external(const struct rst_ctx *c, int fd, const NetLink *l)
{
	_cleanup_free_ char *out = NULL, *bridge = NULL;
	if (veth_lookup(c->opts->externals, c->opts->n_externals, false, l->name, &out, &bridge)) {
		pr_err("restore: veth %s has its peer outside the tree: give its host end with "
		       "--external veth[%s]:HOSTNAME[@BRIDGE]",
		       l->name, l->name);
		return -ENOENT;
	}
	char path[64];
	snprintf(path, sizeof(path), "%d/ns/net", c->stasis_pid);
	_cleanup_close_ int hostns = openat(c->proc_dfd, path, O_RDONLY | O_CLOEXEC);
	if (hostns < 0)
		return pr_perror("restore: open the restorer's net namespace (/proc/%s)", path);
	NetLink peer = NET_LINK__INIT;
	peer.name = out;
	peer.kind = l->kind;
	peer.has_mtu = l->has_mtu;
	peer.mtu = l->mtu;
	int r = create_link(fd, l, &peer, hostns);
	if (r)
		return r;
	_cleanup_close_ int hfd = nl_open_in(c->proc_dfd, hostns);
	if (hfd < 0)
		return hfd;
	unsigned int master = bridge ? ifindex_of(hfd, bridge) : 0;
	if (bridge && !master)
		return pr_perror("restore: bridge %s for the host end %s", bridge, out);
	return host_end_up(hfd, out, master);
}

int net_restore(struct rst_ctx *c)
{
	const NetNs *ns = c->tns->net;
	if (!ns)
		return 0;
	/* locked before anything can reach it (a veth to the host comes next) */
	int r = netlock_restore_ns(c);
	if (!r)
		r = restore_sysctls(c->proc_dfd, ns);
	if (r)
		return r;
	_cleanup_close_ int fd = nl_open();
	if (fd < 0)
		return pr_errno(fd, "restore: netlink socket");
	for (size_t i = 0; i < ns->n_links && !r; i++) {
		const NetLink *l = ns->links[i];
		if (!strcmp(l->kind, "lo")) {
			r = l->has_mtu ? set_link(fd, l, true) : 0;
		} else if (!strcmp(l->kind, "dummy")) {
			r = create_link(fd, l, NULL, -1);
		} else if (!strcmp(l->kind, "veth") && l->has_external && l->external) {
			r = restore_external(c, fd, l);
		} else if (!strcmp(l->kind, "veth") && l->peer) {
			if (!l->has_peer_pid || strcmp(l->peer->kind, "veth")) {
				pr_err("image: veth %s has a malformed peer", l->name);
				r = -EINVAL;
			} else {
				r = restore_peer(c->proc_dfd, l);
			}
		} else if (!strcmp(l->kind, "veth") && !l->has_peer_ns && l->has_peer_ifindex) {
			/* both ends here: created once, by the end with the lower ifindex */
			const NetLink *p = NULL;
			for (size_t j = 0; j < ns->n_links; j++)
				if (ns->links[j]->ifindex == l->peer_ifindex)
					p = ns->links[j];
			if (!p || p == l || strcmp(p->kind, "veth")) {
				pr_err("image: the peer of veth %s is missing", l->name);
				r = -EINVAL;
			} else if (l->ifindex < p->ifindex) {
				r = create_link(fd, l, p, -1);
			}
		} else {
			pr_err("image: link %s of kind %s cannot be restored", l->name, l->kind);
			r = -EINVAL;
		}
	}
	if (!r)
		r = restore_link_confs(c->proc_dfd, ns);
	for (size_t i = 0; i < ns->n_links && !r; i++)
		if (ns->links[i]->flags & IFF_UP)
			r = set_link(fd, ns->links[i], false);
	for (size_t i = 0; i < ns->n_addrs && !r; i++)
		r = add_addr(fd, ns->addrs[i]);
	for (size_t i = 0; i < ns->n_routes && !r; i++)
		r = add_route(fd, ns->routes[i]);
	if (!r && ns->nft_ruleset) {
		char err[256];
		if (strlen(ns->nft_ruleset) > NFT_RULESET_MAX) {
			pr_err("image: an nftables ruleset of more than %u bytes", NFT_RULESET_MAX);
			return -EINVAL;
		}
		r = netlock_nft(ns->nft_ruleset, NULL, err, sizeof(err));
		if (r)
			pr_err("restore: the nftables ruleset of the net namespace: %s", err);
	}
	return r;
}

struct ll_seen {
	uint32_t idx[64];
	size_t n;
};

static int ll_cb(struct nlmsghdr *h, void *arg)
{
	struct ll_seen *s = arg;
	struct ifaddrmsg *ifa = NLMSG_DATA(h);
	if (h->nlmsg_type == RTM_NEWADDR && ifa->ifa_family == AF_INET6 &&
	    ifa->ifa_scope == RT_SCOPE_LINK && s->n < ARRAY_SIZE(s->idx))
		s->idx[s->n++] = ifa->ifa_index;
	return 0;
}

/* In a child inside the namespace: 0 once every link of @ns that had a kernel-made IPv6
 * link-local address has one again, 1 after 3 s without. */
static int ll_child(const NetNs *ns)
{
	int fd = nl_open();
	struct nlmsg *m = malloc(sizeof(*m));
	if (fd < 0 || !m)
		return 2;
	for (int round = 0; round < 600; round++) {
		struct ll_seen seen = { .n = 0 };
		struct ifaddrmsg ifa = { .ifa_family = AF_INET6 };
		nl_init(m, RTM_GETADDR, NLM_F_DUMP, &ifa, sizeof(ifa));
		if (nl_talk(fd, m, ll_cb, &seen))
			return 2;
		bool all = true;
		for (size_t i = 0; i < ns->n_links && all; i++) {
			const NetLink *l = ns->links[i];
			if (!l->has_ipv6_ll || !l->ipv6_ll)
				continue;
			unsigned int x = ifindex_of(fd, l->name);
			bool found = false;
			for (size_t k = 0; k < seen.n && !found; k++)
				found = seen.idx[k] == x;
			all = found;
		}
		if (all)
			return 0;
		usleep(5000);
	}
	return 1;
}

int net_wait_ll(const struct rst_ctx *c)
{
	const NetNs *ns = c->tns->net;
	bool want = false;
	for (size_t i = 0; ns && i < ns->n_links; i++)
		want |= ns->links[i]->has_ipv6_ll && ns->links[i]->ipv6_ll;
	if (!want)
		return 0;
	char path[64];
	snprintf(path, sizeof(path), "%d/ns/net", c->pid);
	_cleanup_close_ int nsfd = openat(c->proc_dfd, path, O_RDONLY | O_CLOEXEC);
	if (nsfd < 0)
		return pr_perror("restore: the net namespace of pid %d", c->pid);
	pid_t p = fork();
	if (p < 0)
		return pr_perror("restore: fork");
	if (p == 0)
		_exit(setns(nsfd, CLONE_NEWNET) ? 2 : ll_child(ns));
	int st = 0;
	while (waitpid(p, &st, 0) < 0 && errno == EINTR)
		;
	if (!WIFEXITED(st) || WEXITSTATUS(st) == 2) {
		pr_err("restore: cannot read the addresses of the net namespace of pid %d", c->pid);
		return -EIO;
	}
	if (WEXITSTATUS(st) == 1)
		pr_warn("restore: the net namespace of pid %d: an IPv6 link-local address the "
			"kernel makes did not come back within 3 s", c->pid);
	return 0;
}
