/* Socket options programs set (see sockopt.h): one table, read at dump, set at restore
 * where the new socket differs.
 *
 * Values are recorded as getsockopt returns them, which is the effective value (an
 * option left at a sysctl default reads as that default): the restore sets it where a
 * new socket of the restoring namespace reads otherwise, so the restored socket reads the
 * same. Buffer sizes are recorded with their locks (SO_BUF_LOCK): a size the program set
 * is locked and must be reached; an unlocked one (autotuned, or the default) is set back
 * best effort and unlocked again, so autotuning goes on. */
#include <errno.h>
#include <linux/filter.h>
#include <net/if.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <netinet/udp.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>

#include "core/log.h"
#include "core/util.h"
#include "helper/client.h"
#include "net/sockopt.h"
#include "sys/uapi.h"

#ifndef SOL_TCP
#define SOL_TCP IPPROTO_TCP
#endif
#ifndef SOL_UDP
#define SOL_UDP IPPROTO_UDP
#endif

#define SOCK_BUF_LOCKS 3u     /* SOCK_SNDBUF_LOCK | SOCK_RCVBUF_LOCK */
#define FILTER_MAX_INSNS 4096 /* BPF_MAXINSNS */
#define OPT_BYTES_MAX 64

enum {
	F_EARLY = 1 << 0,  /* set before bind/connect/listen */
	F_BYTES = 1 << 1,  /* a struct or a string, not an int */
	F_U64 = 1 << 2,    /* an int read and set as 8 bytes */
	F_REFUSE = 1 << 3, /* not carried: refused at dump unless empty / zero */
	F_BUF = 1 << 4,    /* SO_SNDBUF / SO_RCVBUF */
	F_STR = 1 << 5,    /* F_BYTES holding a NUL-terminated name */
	/* not on a SOCK_STREAM socket: the kernel refuses to set it there (and accept gives
	 * a TCP socket the SYN's TTL as IP_MULTICAST_TTL) */
	F_NOSTREAM = 1 << 6,
	/* TCP_MAXSEG: the program's clamp (user_mss), which getsockopt gives only on a socket
	 * not connected (else the connection's MSS, carried by repair mode), the MSS in use
	 * when none was set: kept when the socket is not connected and it is neither */
	F_MSS = 1 << 7,
};

struct opt_desc {
	int level, name;
	const char *str;
	unsigned int flags;
	unsigned int size; /* F_BYTES: the exact size, or the maximum for F_STR */
};

#define I(l, n, f) { l, n, #n, f, 0 }
#define B(l, n, f, sz) { l, n, #n, (f) | F_BYTES, sz }

/* In the order they are set within a phase: buffers, then their locks, first. */
static const struct opt_desc opts[] = {
	I(SOL_SOCKET, SO_SNDBUF, F_BUF),
	I(SOL_SOCKET, SO_RCVBUF, F_BUF),
	I(SOL_SOCKET, SO_BUF_LOCK, 0),
	I(SOL_SOCKET, SO_REUSEADDR, F_EARLY),
	I(SOL_SOCKET, SO_REUSEPORT, F_EARLY),
	I(SOL_SOCKET, SO_MARK, F_EARLY),
	B(SOL_SOCKET, SO_BINDTODEVICE, F_EARLY | F_STR, IFNAMSIZ),
	I(SOL_SOCKET, SO_DEBUG, 0),
	I(SOL_SOCKET, SO_KEEPALIVE, 0),
	I(SOL_SOCKET, SO_BROADCAST, 0),
	I(SOL_SOCKET, SO_DONTROUTE, 0),
	I(SOL_SOCKET, SO_OOBINLINE, 0),
	I(SOL_SOCKET, SO_NO_CHECK, 0),
	I(SOL_SOCKET, SO_RCVLOWAT, 0),
	I(SOL_SOCKET, SO_PASSCRED, 0),
	I(SOL_SOCKET, SO_PASSSEC, 0),
	I(SOL_SOCKET, SO_PASSPIDFD, 0),
	I(SOL_SOCKET, SO_PASSRIGHTS, 0),
	I(SOL_SOCKET, SO_TIMESTAMP_OLD, 0),
	I(SOL_SOCKET, SO_TIMESTAMPNS_OLD, 0),
	I(SOL_SOCKET, SO_TIMESTAMPING_OLD, 0),
	I(SOL_SOCKET, SO_RCVMARK, 0),
	I(SOL_SOCKET, SO_RCVPRIORITY, 0),
	I(SOL_SOCKET, SO_RXQ_OVFL, 0),
	I(SOL_SOCKET, SO_WIFI_STATUS, 0),
	I(SOL_SOCKET, SO_NOFCS, 0),
	I(SOL_SOCKET, SO_SELECT_ERR_QUEUE, 0),
	I(SOL_SOCKET, SO_BUSY_POLL, 0),
	I(SOL_SOCKET, SO_PREFER_BUSY_POLL, 0),
	I(SOL_SOCKET, SO_BUSY_POLL_BUDGET, 0),
	I(SOL_SOCKET, SO_INCOMING_CPU, 0),
	I(SOL_SOCKET, SO_ZEROCOPY, 0),
	I(SOL_SOCKET, SO_TXREHASH, 0),
	I(SOL_SOCKET, SO_RESERVE_MEM, 0),
	{ SOL_SOCKET, SO_MAX_PACING_RATE, "SO_MAX_PACING_RATE", F_U64, 0 },
	B(SOL_SOCKET, SO_LINGER, 0, sizeof(struct linger)),
	B(SOL_SOCKET, SO_RCVTIMEO_OLD, 0, sizeof(struct timeval)),
	B(SOL_SOCKET, SO_SNDTIMEO_OLD, 0, sizeof(struct timeval)),
	B(SOL_SOCKET, SO_TXTIME, 0, 8 /* struct sock_txtime */),

	I(SOL_IP, IP_FREEBIND, F_EARLY),
	I(SOL_IP, IP_TRANSPARENT, F_EARLY),
	I(SOL_IP, IP_BIND_ADDRESS_NO_PORT, F_EARLY),
	I(SOL_IP, IP_LOCAL_PORT_RANGE, F_EARLY),
	I(SOL_IP, IP_TOS, 0),
	I(SOL_IP, IP_TTL, 0),
	I(SOL_IP, IP_HDRINCL, 0),
	I(SOL_IP, IP_RECVOPTS, 0),
	I(SOL_IP, IP_RETOPTS, 0),
	I(SOL_IP, IP_PKTINFO, 0),
	I(SOL_IP, IP_RECVTTL, 0),
	I(SOL_IP, IP_RECVTOS, 0),
	I(SOL_IP, IP_MTU_DISCOVER, 0),
	I(SOL_IP, IP_RECVERR, 0),
	I(SOL_IP, IP_RECVERR_RFC4884, 0),
	I(SOL_IP, IP_MULTICAST_TTL, F_NOSTREAM),
	I(SOL_IP, IP_MULTICAST_LOOP, 0),
	I(SOL_IP, IP_MULTICAST_ALL, 0),
	B(SOL_IP, IP_MULTICAST_IF, F_NOSTREAM, sizeof(struct in_addr)),
	I(SOL_IP, IP_UNICAST_IF, 0),
	I(SOL_IP, IP_PASSSEC, 0),
	I(SOL_IP, IP_MINTTL, 0),
	I(SOL_IP, IP_NODEFRAG, 0),
	I(SOL_IP, IP_RECVORIGDSTADDR, 0),
	I(SOL_IP, IP_CHECKSUM, 0),
	I(SOL_IP, IP_RECVFRAGSIZE, 0),
	B(SOL_IP, IP_OPTIONS, F_REFUSE, 40),

	I(SOL_IPV6, IPV6_V6ONLY, F_EARLY),
	I(SOL_IPV6, IPV6_FREEBIND, F_EARLY),
	I(SOL_IPV6, IPV6_TRANSPARENT, F_EARLY),
	I(SOL_IPV6, IPV6_UNICAST_HOPS, 0),
	I(SOL_IPV6, IPV6_MULTICAST_IF, F_NOSTREAM),
	I(SOL_IPV6, IPV6_MULTICAST_HOPS, F_NOSTREAM),
	I(SOL_IPV6, IPV6_MULTICAST_LOOP, 0),
	I(SOL_IPV6, IPV6_MULTICAST_ALL, 0),
	I(SOL_IPV6, IPV6_UNICAST_IF, 0),
	I(SOL_IPV6, IPV6_RECVPKTINFO, 0),
	I(SOL_IPV6, IPV6_RECVHOPLIMIT, 0),
	I(SOL_IPV6, IPV6_RECVRTHDR, 0),
	I(SOL_IPV6, IPV6_RECVHOPOPTS, 0),
	I(SOL_IPV6, IPV6_RECVDSTOPTS, 0),
	I(SOL_IPV6, IPV6_RECVTCLASS, 0),
	I(SOL_IPV6, IPV6_TCLASS, 0),
	I(SOL_IPV6, IPV6_RECVPATHMTU, 0),
	I(SOL_IPV6, IPV6_DONTFRAG, 0),
	I(SOL_IPV6, IPV6_MTU_DISCOVER, 0),
	I(SOL_IPV6, IPV6_RECVERR, 0),
	I(SOL_IPV6, IPV6_AUTOFLOWLABEL, 0),
	I(SOL_IPV6, IPV6_ADDR_PREFERENCES, 0),
	I(SOL_IPV6, IPV6_MINHOPCOUNT, 0),
	I(SOL_IPV6, IPV6_RECVORIGDSTADDR, 0),
	I(SOL_IPV6, IPV6_RECVFRAGSIZE, 0),
	I(SOL_IPV6, IPV6_FLOWINFO, 0),
	I(SOL_IPV6, IPV6_FLOWINFO_SEND, 0),
	B(SOL_IPV6, IPV6_HOPOPTS, F_REFUSE, OPT_BYTES_MAX),
	B(SOL_IPV6, IPV6_RTHDR, F_REFUSE, OPT_BYTES_MAX),
	B(SOL_IPV6, IPV6_DSTOPTS, F_REFUSE, OPT_BYTES_MAX),
	B(SOL_IPV6, IPV6_RTHDRDSTOPTS, F_REFUSE, OPT_BYTES_MAX),

	I(SOL_TCP, TCP_FASTOPEN_CONNECT, F_EARLY),
	I(SOL_TCP, TCP_MAXSEG, F_EARLY | F_MSS),
	I(SOL_TCP, TCP_NODELAY, 0),
	I(SOL_TCP, TCP_CORK, 0),
	I(SOL_TCP, TCP_KEEPIDLE, 0),
	I(SOL_TCP, TCP_KEEPINTVL, 0),
	I(SOL_TCP, TCP_KEEPCNT, 0),
	I(SOL_TCP, TCP_SYNCNT, 0),
	I(SOL_TCP, TCP_LINGER2, 0),
	I(SOL_TCP, TCP_DEFER_ACCEPT, 0),
	I(SOL_TCP, TCP_USER_TIMEOUT, 0),
	I(SOL_TCP, TCP_NOTSENT_LOWAT, 0),
	I(SOL_TCP, TCP_WINDOW_CLAMP, 0),
	I(SOL_TCP, TCP_THIN_LINEAR_TIMEOUTS, 0),
	I(SOL_TCP, TCP_FASTOPEN, 0),
	I(SOL_TCP, TCP_FASTOPEN_NO_COOKIE, 0),
	I(SOL_TCP, TCP_SAVE_SYN, 0),
	I(SOL_TCP, TCP_TX_DELAY, 0),
	I(SOL_TCP, TCP_INQ, 0),
	B(SOL_TCP, TCP_CONGESTION, F_STR, 16 /* TCP_CA_NAME_MAX */),
	B(SOL_TCP, TCP_ULP, F_STR | F_REFUSE, 16 /* TCP_ULP_NAME_MAX */),

	I(SOL_UDP, UDP_CORK, 0),
	I(SOL_UDP, UDP_ENCAP, 0),
	I(SOL_UDP, UDP_NO_CHECK6_TX, 0),
	I(SOL_UDP, UDP_NO_CHECK6_RX, 0),
	I(SOL_UDP, UDP_SEGMENT, 0),
	I(SOL_UDP, UDP_GRO, 0),
	/* UDP-Lite's checksum coverage (read as 0 on UDP, never set there: equal) */
	I(SOL_UDP, UDPLITE_SEND_CSCOV, 0),
	I(SOL_UDP, UDPLITE_RECV_CSCOV, 0),
	/* after IP_TOS, which sets a stream socket's priority from the TOS (rt_tos2priority):
	 * the priority the program set last is the one recorded */
	I(SOL_SOCKET, SO_PRIORITY, 0),
};

#undef I
#undef B

static const struct opt_desc *find_opt(unsigned int level, unsigned int name)
{
	for (size_t i = 0; i < ARRAY_SIZE(opts); i++)
		if ((unsigned int)opts[i].level == level && (unsigned int)opts[i].name == name)
			return &opts[i];
	return NULL;
}

const char *sockopt_name(unsigned int level, unsigned int name)
{
	const struct opt_desc *d = find_opt(level, name);
	return d ? d->str : "?";
}

/* Does level @level apply to a socket of @family / @type / @protocol? */
static bool level_applies(int level, int family, int type, int protocol)
{
	bool inet = family == AF_INET || family == AF_INET6;
	switch (level) {
	case SOL_SOCKET:
		return true;
	case SOL_IP:
		/* an IPv6 socket has them too, for its v4-mapped traffic (not a raw one) */
		return family == AF_INET || (family == AF_INET6 && type != SOCK_RAW);
	case SOL_IPV6:
		return family == AF_INET6;
	case SOL_TCP:
		return inet && type == SOCK_STREAM && (protocol == IPPROTO_TCP || protocol == 0);
	case SOL_UDP:
		return inet && type == SOCK_DGRAM &&
		       (protocol == IPPROTO_UDP || protocol == IPPROTO_UDPLITE || protocol == 0);
	default:
		return false;
	}
}

static int get_int(int sk, int level, int name, int *v)
{
	socklen_t len = sizeof(*v);
	*v = 0;
	return getsockopt(sk, level, name, v, &len) ? -errno : 0;
}

/* Value of option @d of @sk: *@iv, or @buf (*@len bytes). 1: the socket has no such
 * option (not applicable to its kind, or an older kernel); 0; -errno. */
static int opt_read(int sk, const struct opt_desc *d, int64_t *iv, void *buf, socklen_t *len)
{
	int r;
	if (d->flags & F_BYTES) {
		*len = d->size;
		memset(buf, 0, d->size);
		r = getsockopt(sk, d->level, d->name, buf, len);
		if (!r && *len > d->size)
			return -EOVERFLOW;
	} else if (d->flags & F_U64) {
		uint64_t v = 0;
		*len = sizeof(v);
		r = getsockopt(sk, d->level, d->name, &v, len);
		*iv = (int64_t)v;
	} else {
		int v = 0;
		r = get_int(sk, d->level, d->name, &v);
		if (r) {
			errno = -r;
			r = -1;
		}
		*iv = v;
	}
	if (!r)
		return 0;
	/* not an option of this socket kind, not connected, or not in this kernel */
	if (errno == ENOPROTOOPT || errno == EOPNOTSUPP || errno == EINVAL || errno == ENOTCONN)
		return 1;
	return -errno;
}

/* A set option that is not carried (F_REFUSE), or a value that cannot be: its name. */
static const char *refused(const struct opt_desc *d, int64_t iv, const void *buf, socklen_t len)
{
	if (d->flags & F_REFUSE) {
		if (d->flags & F_STR)
			return len && ((const char *)buf)[0] ? d->str : NULL;
		return len ? d->str : NULL;
	}
	if (d->level == SOL_SOCKET && d->name == SO_TIMESTAMPING_OLD &&
	    (iv & SOF_TIMESTAMPING_BIND_PHC))
		return "SO_TIMESTAMPING bound to a PHC";
	return NULL;
}

static int dump_filter(int sk, pid_t pid, int fd, SockOpts *o)
{
	socklen_t n = 0;
	if (getsockopt(sk, SOL_SOCKET, SO_GET_FILTER, NULL, &n)) {
		if (errno == EACCES) {
			pr_err("fd %d of pid %d: the socket has an eBPF filter (SO_ATTACH_BPF): not "
			       "supported", fd, pid);
			return -EOPNOTSUPP;
		}
		return pr_perror("fd %d of pid %d: getsockopt(SO_GET_FILTER)", fd, pid);
	}
	if (!n)
		return 0;
	if (n > FILTER_MAX_INSNS) {
		pr_err("fd %d of pid %d: socket filter of %u instructions", fd, pid, n);
		return -EINVAL;
	}
	struct sock_filter *f = calloc(n, sizeof(*f));
	if (!f)
		return -ENOMEM;
	socklen_t got = n;
	if (getsockopt(sk, SOL_SOCKET, SO_GET_FILTER, f, &got) || got != n) {
		int e = pr_perror("fd %d of pid %d: read the socket filter (%u instructions)", fd,
				  pid, n);
		free(f);
		return e ? e : -EIO;
	}
	o->has_filter = true;
	o->filter.data = (uint8_t *)f;
	o->filter.len = (size_t)n * sizeof(*f);
	int locked = 0;
	if (!get_int(sk, SOL_SOCKET, SO_LOCK_FILTER, &locked) && locked) {
		o->has_filter_locked = true;
		o->filter_locked = true;
	}
	return 0;
}

static int add_opt(SockOpts *o, const struct opt_desc *d, int64_t iv, const void *buf,
		   socklen_t len)
{
	SockOpt *s = malloc(sizeof(*s));
	if (!s)
		return -ENOMEM;
	sock_opt__init(s);
	s->level = (uint32_t)d->level;
	s->name = (uint32_t)d->name;
	if (d->flags & F_BYTES) {
		s->has_bval = true;
		s->bval.len = len;
		s->bval.data = len ? malloc(len) : NULL;
		if (len && !s->bval.data) {
			free(s);
			return -ENOMEM;
		}
		if (len)
			memcpy(s->bval.data, buf, len);
	} else {
		s->has_ival = true;
		s->ival = iv;
	}
	o->opts[o->n_opts++] = s;
	return 0;
}

/* F_MSS: @v, read from @sk, is a clamp the program set (see F_MSS). */
static bool mss_kept(int sk, int64_t v)
{
	struct tcp_info ti;
	socklen_t l = sizeof(ti);
	memset(&ti, 0, sizeof(ti));
	if (getsockopt(sk, SOL_TCP, TCP_INFO, &ti, &l))
		return false;
	/* (with no clamp it reads the MSS in use: TCP_MSS_DEFAULT on a socket never
	 * connected, the last connection's on one closed after it) */
	return (ti.tcpi_state == TCP_CLOSE || ti.tcpi_state == TCP_LISTEN) &&
	       v != (int64_t)ti.tcpi_snd_mss && v != TCP_MSS_DEFAULT;
}

int sockopt_dump(int sk, pid_t pid, int fd, SockOpts **out)
{
	int family = 0, type = 0, protocol = 0, ret = 0;
	*out = NULL;
	if (get_int(sk, SOL_SOCKET, SO_DOMAIN, &family) || get_int(sk, SOL_SOCKET, SO_TYPE, &type) ||
	    get_int(sk, SOL_SOCKET, SO_PROTOCOL, &protocol))
		return pr_perror("fd %d of pid %d: socket domain/type/protocol", fd, pid);

	SockOpts *o = malloc(sizeof(*o));
	if (!o)
		return -ENOMEM;
	sock_opts__init(o);
	o->opts = calloc(ARRAY_SIZE(opts), sizeof(*o->opts));
	if (!o->opts) {
		free(o);
		return -ENOMEM;
	}
	for (size_t i = 0; i < ARRAY_SIZE(opts) && !ret; i++) {
		const struct opt_desc *d = &opts[i];
		_Alignas(8) char buf[OPT_BYTES_MAX];
		socklen_t len = 0;
		int64_t iv = 0;
		if (!level_applies(d->level, family, type, protocol) ||
		    ((d->flags & F_NOSTREAM) && type == SOCK_STREAM))
			continue;
		int r = opt_read(sk, d, &iv, buf, &len);
		if (r == 1 || ((d->flags & F_MSS) && !r && !mss_kept(sk, iv)))
			continue;
		if (r < 0) {
			ret = pr_errno(r, "fd %d of pid %d: getsockopt(%s)", fd, pid, d->str);
			break;
		}
		const char *no = refused(d, iv, buf, len);
		if (no) {
			pr_err("fd %d of pid %d: the socket has %s set: not supported", fd, pid, no);
			ret = -EOPNOTSUPP;
			break;
		}
		if (!(d->flags & F_REFUSE))
			ret = add_opt(o, d, iv, buf, len);
	}
	if (!ret)
		ret = dump_filter(sk, pid, fd, o);
	if (ret) {
		sock_opts__free_unpacked(o, NULL);
		return ret;
	}
	*out = o;
	return 0;
}

static int check_one(const SockOpt *s, int family, int type, int protocol, const char *what)
{
	const struct opt_desc *d = find_opt(s->level, s->name);
	if (!d || (d->flags & F_REFUSE) || !level_applies(d->level, family, type, protocol) ||
	    ((d->flags & F_NOSTREAM) && type == SOCK_STREAM)) {
		pr_err("%s: socket option %u/%u is not one stasis restores on this socket", what,
		       s->level, s->name);
		return -EINVAL;
	}
	if (d->flags & F_BYTES) {
		bool ok = s->has_bval && !s->has_ival &&
			  ((d->flags & F_STR) ? s->bval.len <= d->size : s->bval.len == d->size);
		if (ok && (d->flags & F_STR) && s->bval.len)
			ok = memchr(s->bval.data, 0, s->bval.len) != NULL;
		if (!ok) {
			pr_err("%s: socket option %s: bad value (%zu bytes)", what, d->str,
			       s->has_bval ? s->bval.len : 0);
			return -EINVAL;
		}
		return 0;
	}
	if (!s->has_ival || s->has_bval ||
	    (!(d->flags & F_U64) && (s->ival < INT32_MIN || s->ival > INT32_MAX))) {
		pr_err("%s: socket option %s: bad value", what, d->str);
		return -EINVAL;
	}
	return 0;
}

int sockopt_validate(const SockOpts *o, int family, int type, int protocol, const char *what)
{
	if (!o)
		return 0;
	if (o->n_opts > ARRAY_SIZE(opts)) {
		pr_err("%s: %zu socket options", what, o->n_opts);
		return -EINVAL;
	}
	for (size_t i = 0; i < o->n_opts; i++) {
		int r = check_one(o->opts[i], family, type, protocol, what);
		if (r)
			return r;
		for (size_t j = 0; j < i; j++)
			if (o->opts[j]->level == o->opts[i]->level &&
			    o->opts[j]->name == o->opts[i]->name) {
				pr_err("%s: socket option %s twice", what,
				       sockopt_name(o->opts[i]->level, o->opts[i]->name));
				return -EINVAL;
			}
	}
	if (o->has_filter && (!o->filter.len || o->filter.len % sizeof(struct sock_filter) ||
			      o->filter.len / sizeof(struct sock_filter) > FILTER_MAX_INSNS)) {
		pr_err("%s: socket filter of %zu bytes", what, o->filter.len);
		return -EINVAL;
	}
	if (o->has_filter_locked && o->filter_locked && !o->has_filter) {
		pr_err("%s: a locked socket filter without a filter", what);
		return -EINVAL;
	}
	return 0;
}

int sockopt_find(const SockOpts *o, int level, int name, int64_t *v)
{
	if (!o)
		return -ENOENT;
	for (size_t i = 0; i < o->n_opts; i++)
		if (o->opts[i]->level == (uint32_t)level && o->opts[i]->name == (uint32_t)name &&
		    o->opts[i]->has_ival) {
			*v = o->opts[i]->ival;
			return 0;
		}
	return -ENOENT;
}

static int (*forcer)(int sk, int opt, int half);

void sockopt_set_forcer(int (*fn)(int sk, int opt, int half))
{
	forcer = fn;
}

int sockopt_force_buf(int sk, int opt, int half)
{
	int force = opt == SO_SNDBUF ? SO_SNDBUFFORCE : SO_RCVBUFFORCE;
	if (!setsockopt(sk, SOL_SOCKET, force, &half, sizeof(half)))
		return 0;
	if (errno != EPERM)
		return -errno;
	struct helper *h = helper_default();
	if (h && !helper_sockbuf_force(h, sk, opt == SO_SNDBUF ? half : -1,
				       opt == SO_RCVBUF ? half : -1))
		return 0;
	return forcer ? forcer(sk, opt, half) : -EPERM;
}

/* A buffer size (getsockopt's doubled value @val): set to half, forced over the limits
 * (sockopt_force_buf). A locked size must be reached. */
static int set_buf(int sk, int name, int64_t val, bool locked, const char *what)
{
	int half = (int)(val / 2), cur = 0;
	if (!get_int(sk, SOL_SOCKET, name, &cur) && cur == val)
		return 0;
	(void)setsockopt(sk, SOL_SOCKET, name, &half, sizeof(half));
	if (!get_int(sk, SOL_SOCKET, name, &cur) && cur == val)
		return 0;
	if (!sockopt_force_buf(sk, name, half) && !get_int(sk, SOL_SOCKET, name, &cur) &&
	    cur == val)
		return 0;
	if (!locked) {
		pr_debug("%s: %s is %d, was %lld (not locked: autotuned)", what,
			 sockopt_name(SOL_SOCKET, (unsigned int)name), cur, (long long)val);
		return 0;
	}
	pr_err("%s: cannot set %s to %lld (it is %d; over the limit without CAP_NET_ADMIN?)",
	       what, sockopt_name(SOL_SOCKET, (unsigned int)name), (long long)val, cur);
	return -EPERM;
}

static int set_one(int sk, const struct opt_desc *d, const SockOpt *s, unsigned int locks,
		   const char *what)
{
	_Alignas(8) char buf[OPT_BYTES_MAX];
	socklen_t len = 0;
	int64_t iv = 0;

	if (d->flags & F_BUF)
		return set_buf(sk, d->name, s->ival,
			       locks & (d->name == SO_SNDBUF ? 1u : 2u), what);
	int r = opt_read(sk, d, &iv, buf, &len);
	if (r < 0)
		return pr_errno(r, "%s: getsockopt(%s)", what, d->str);
	if (!r) {
		if ((d->flags & F_BYTES) && len == s->bval.len &&
		    (!len || !memcmp(buf, s->bval.data, len)))
			return 0;
		if (!(d->flags & F_BYTES) && iv == s->ival)
			return 0;
	}
	if (d->flags & F_BYTES)
		r = setsockopt(sk, d->level, d->name, s->bval.data, (socklen_t)s->bval.len);
	else if (d->flags & F_U64) {
		uint64_t v = (uint64_t)s->ival;
		r = setsockopt(sk, d->level, d->name, &v, sizeof(v));
	} else {
		int v = (int)s->ival;
		r = setsockopt(sk, d->level, d->name, &v, sizeof(v));
	}
	if (r)
		return pr_perror("%s: setsockopt(%s)", what, d->str);
	return 0;
}

static int set_filter(int sk, const SockOpts *o, const char *what)
{
	if (o->has_filter) {
		struct sock_fprog p = {
			.len = (unsigned short)(o->filter.len / sizeof(struct sock_filter)),
			.filter = (struct sock_filter *)o->filter.data,
		};
		if (setsockopt(sk, SOL_SOCKET, SO_ATTACH_FILTER, &p, sizeof(p)))
			return pr_perror("%s: attach the socket filter (%u instructions)", what,
					 p.len);
	}
	int on = 1;
	if (o->has_filter_locked && o->filter_locked &&
	    setsockopt(sk, SOL_SOCKET, SO_LOCK_FILTER, &on, sizeof(on)))
		return pr_perror("%s: SO_LOCK_FILTER", what);
	return 0;
}

int sockopt_restore(int sk, const SockOpts *o, enum sockopt_phase ph, const char *what)
{
	int64_t locks = 0;
	if (!o)
		return 0;
	(void)sockopt_find(o, SOL_SOCKET, SO_BUF_LOCK, &locks);
	/* in table order: buffers, then their locks, first */
	for (size_t t = 0; t < ARRAY_SIZE(opts); t++) {
		const struct opt_desc *d = &opts[t];
		if (!!(d->flags & F_EARLY) != (ph == SOCKOPT_EARLY))
			continue;
		for (size_t i = 0; i < o->n_opts; i++) {
			const SockOpt *s = o->opts[i];
			if (s->level != (uint32_t)d->level || s->name != (uint32_t)d->name)
				continue;
			int r = set_one(sk, d, s, (unsigned int)locks & SOCK_BUF_LOCKS, what);
			if (r)
				return r;
		}
	}
	return ph == SOCKOPT_LATE ? set_filter(sk, o, what) : 0;
}
