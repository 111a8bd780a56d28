/* The network lock: nftables rules that drop the packets of the tree's TCP connections
 * while the tree is frozen and until its restore runs (see netlock.h).
 *
 * Finding the connections: the inodes of the TCP sockets of every fd table of the frozen
 * tree (the "socket:[INO]" links of /proc/PID/fd; SO_DOMAIN and SO_PROTOCOL of a
 * pidfd_getfd duplicate tell TCP, so that a tree without any needs nothing more), matched
 * against an inet_diag dump of every TCP
 * socket (v4 and v6, all states) of stasis's net namespace and of each net namespace of
 * the tree's tasks. A matched socket in a state with a peer (not LISTEN, not CLOSE) is a
 * connection. A TCP socket found in none of those namespaces (made in another one and
 * carried in) cannot be locked and is refused, unless it has no peer.
 *
 * The rules: one table `inet stasis-lock-PID` (PID: the dumper's; "-N" appended when a
 * stale table of that name exists), created with `create table` in one nftables
 * transaction with its sets and chains (atomic: all or nothing), hooks input, output
 * (and forward for a whole namespace) at priority -300 (after defragmentation, before
 * conntrack and the usual filter chains, so that no reject rule of another table sees the
 * packet first), removed with `delete table`. No other table is ever named. */
#include "net/netlock.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <linux/inet_diag.h>
#include <linux/netlink.h>
#include <linux/sock_diag.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <nftables/libnftables.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "core/log.h"
#include "core/util.h"
#include "net/sk_inet.h"
#include "ns/nsrun.h"
#include "sys/syscalls.h"

#define LOCK_PRIO "-300"
#define DIAG_TIMEOUT_S 5
#define NS_WAIT_MS 10000
#define TCP_LISTEN_ST 10
#define TCP_CLOSE_ST 7

/* One TCP connection of the tree: its end (l) and the peer (r), network byte order. */
struct nl_conn {
	bool v6;
	uint8_t laddr[16], raddr[16];
	uint16_t lport, rport; /* host order */
	bool inner;            /* the peer is the tree's too (see mark_internal) */
};

/* A net namespace the tree's sockets may live in: [0] is stasis's own. */
struct nl_ns {
	int fd; /* its nsfs file (-1 for stasis's) */
	uint64_t ino;
	pid_t pid;     /* a task of the tree in it */
	size_t n_conn; /* connections of the tree in it */
	bool locked;   /* a table is installed there */
};

/* A socket held by the tree. */
struct nl_sock {
	uint64_t ino;
	const struct dump_ctx *c;
	int fd;
	bool found;
};

struct netlock {
	char table[64];        /* the table in stasis's net namespace (host lock) */
	char ns_table[64];     /* the table in the tree's namespaces */
	struct nl_conn *conns; /* in stasis's namespace */
	size_t n_conns, cap_conns;
	struct nl_conn *locals; /* local ends of the tree's TCP sockets there (laddr, lport) */
	size_t n_locals, cap_locals;
	struct nl_ns *ns;
	size_t n_ns;
	bool host_locked;
	NetLock *img; /* restore: the image's record */
};

int netlock_parse_mode(const char *s, bool *none)
{
	if (!strcmp(s, "nftables"))
		*none = false;
	else if (!strcmp(s, "none"))
		*none = true;
	else
		return -EINVAL;
	return 0;
}

/* ------------------------------------------------------------- nftables ---- */

/* The errno of a failed nftables command, from the library's message. */
static int nft_errno(const char *msg)
{
	static const struct {
		const char *text;
		int err;
	} map[] = {
		{ "Operation not permitted", EPERM },
		{ "Permission denied", EACCES },
		{ "File exists", EEXIST },
		{ "No such file or directory", ENOENT },
		{ "Protocol not supported", EPROTONOSUPPORT },
		{ "Cannot allocate memory", ENOMEM },
	};
	for (size_t i = 0; i < ARRAY_SIZE(map); i++)
		if (strstr(msg, map[i].text))
			return -map[i].err;
	return -EINVAL; /* refused for another reason: not an I/O error of the images */
}

static int nft_run(const char *cmd, char *err, size_t errlen)
{
	return netlock_nft(cmd, NULL, err, errlen);
}

int netlock_nft(const char *cmd, char **out, char *err, size_t errlen)
{
	struct nft_ctx *nft = nft_ctx_new(NFT_CTX_DEFAULT);
	int ret = 0;

	err[0] = '\0';
	if (!nft) {
		snprintf(err, errlen, "cannot create an nftables context");
		return -ENOMEM;
	}
	if (nft_ctx_buffer_output(nft) || nft_ctx_buffer_error(nft)) {
		nft_ctx_free(nft);
		snprintf(err, errlen, "cannot buffer the nftables messages");
		return -ENOMEM;
	}
	/* libnftables writes a few messages straight to stderr ("Operation not permitted
	 * (you must be root)"): they would make a second error line; its error buffer has
	 * the reason */
	int saved = dup(STDERR_FILENO);
	_cleanup_close_ int null = open("/dev/null", O_WRONLY | O_CLOEXEC);
	if (saved >= 0 && null >= 0)
		dup2(null, STDERR_FILENO);
	int r = nft_run_cmd_from_buffer(nft, cmd);
	if (saved >= 0) {
		dup2(saved, STDERR_FILENO);
		close(saved);
	}
	if (!r && out) {
		const char *o = nft_ctx_get_output_buffer(nft);
		if (!(*out = strdup(o ? o : "")))
			r = -1, ret = -ENOMEM, snprintf(err, errlen, "out of memory");
	}
	if (r && !ret) {
		const char *m = nft_ctx_get_error_buffer(nft);
		m = m ? m : "";
		ret = nft_errno(m);
		/* the line saying why, without the echoed command */
		const char *e = strstr(m, "Error: ");
		e = e ? e + 7 : m;
		snprintf(err, errlen, "%.*s", (int)strcspn(e, "\n"), e);
		if (!err[0])
			snprintf(err, errlen, "%s", strerror(-ret));
	}
	nft_ctx_free(nft);
	return ret;
}

static void put_addr(FILE *f, const struct nl_conn *c, bool local)
{
	char buf[INET6_ADDRSTRLEN];
	inet_ntop(c->v6 ? AF_INET6 : AF_INET, local ? c->laddr : c->raddr, buf, sizeof(buf));
	fputs(buf, f);
}

static void put_set(FILE *f, const char *table, const char *name, bool v6, bool inner,
		    const struct nl_conn *conns, size_t n)
{
	const char *a = v6 ? "ipv6_addr" : "ipv4_addr";
	bool first = true;
	fprintf(f, "add set inet %s %s { type %s . inet_service . %s . inet_service; }\n", table,
		name, a, a);
	for (size_t i = 0; i < n; i++) {
		if (conns[i].v6 != v6 || conns[i].inner != inner)
			continue;
		fprintf(f, first ? "add element inet %s %s { " : ", ", table, name);
		first = false;
		put_addr(f, &conns[i], true);
		fprintf(f, " . %u . ", conns[i].lport);
		put_addr(f, &conns[i], false);
		fprintf(f, " . %u", conns[i].rport);
	}
	if (!first)
		fputs(" }\n", f);
}

/* The lock of @n connections as one transaction; @replace: an existing table of that name
 * is replaced (restore), else its existence fails the command (dump). */
static char *conn_lock_cmd(const char *table, const struct nl_conn *conns, size_t n, bool replace)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);
	if (!f)
		return NULL;
	if (replace)
		fprintf(f, "add table inet %s\ndelete table inet %s\nadd table inet %s\n", table,
			table, table);
	else
		fprintf(f, "create table inet %s\n", table);
	fprintf(f,
		"add chain inet %1$s lockin { type filter hook input priority " LOCK_PRIO
		"; policy accept; }\n"
		"add chain inet %1$s lockout { type filter hook output priority " LOCK_PRIO
		"; policy accept; }\n"
		"add rule inet %1$s lockin meta mark %2$#x accept\n"
		"add rule inet %1$s lockout meta mark %2$#x accept\n",
		table, NETLOCK_INJECT_MARK);
	/* connections with peers outside (conn4/6) and between the tree's own sockets
	 * (inner4/6: flushed first by the restore) */
	for (int inner = 0; inner < 2; inner++) {
		const char *s = inner ? "inner" : "conn";
		put_set(f, table, inner ? "inner4" : "conn4", false, inner, conns, n);
		put_set(f, table, inner ? "inner6" : "conn6", true, inner, conns, n);
		fprintf(f,
			"add rule inet %1$s lockin ip daddr . tcp dport . ip saddr . tcp sport "
			"@%2$s4 drop\n"
			"add rule inet %1$s lockin ip6 daddr . tcp dport . ip6 saddr . tcp sport "
			"@%2$s6 drop\n"
			"add rule inet %1$s lockout ip saddr . tcp sport . ip daddr . tcp dport "
			"@%2$s4 drop\n"
			"add rule inet %1$s lockout ip6 saddr . tcp sport . ip6 daddr . tcp dport "
			"@%2$s6 drop\n",
			table, s);
	}
	if (fclose(f)) {
		free(buf);
		return NULL;
	}
	return buf;
}

/* A whole namespace: everything but loopback dropped (the tree is all of it). */
static int ns_lock_cmd(const char *table, char *buf, size_t len)
{
	int n = snprintf(buf, len,
			 "create table inet %1$s\n"
			 "add chain inet %1$s lockin { type filter hook input priority " LOCK_PRIO
			 "; policy accept; }\n"
			 "add chain inet %1$s lockout { type filter hook output priority " LOCK_PRIO
			 "; policy accept; }\n"
			 "add chain inet %1$s lockfwd { type filter hook forward priority " LOCK_PRIO
			 "; policy accept; }\n"
			 "add rule inet %1$s lockin meta mark %2$#x accept\n"
			 "add rule inet %1$s lockout meta mark %2$#x accept\n"
			 "add rule inet %1$s lockin iifname != \"lo\" drop\n"
			 "add rule inet %1$s lockout oifname != \"lo\" drop\n"
			 "add rule inet %1$s lockfwd drop\n",
			 table, NETLOCK_INJECT_MARK);
	return n > 0 && (size_t)n < len ? 0 : -ENAMETOOLONG;
}

/* In a child inside a namespace: run the command @arg. */
static int nft_child(void *arg, struct nsrun_buf *out)
{
	char err[256];
	(void)out;
	int ret = nft_run(arg, err, sizeof(err));
	return ret ? nsrun_error(ret, "%s%s", err,
				 ret == -EPERM || ret == -EACCES ? " (CAP_NET_ADMIN is needed there)"
								 : "")
		   : 0;
}

/* Run @cmd inside the net namespace @nsfd (a child that entered it, running @fn); the
 * child's error is logged after @prefix. */
static int nft_run_with(int nsfd, pid_t pid, const char *cmd, const char *prefix,
			int (*fn)(void *, struct nsrun_buf *))
{
	char desc[96];
	snprintf(desc, sizeof(desc), "the net namespace of pid %d", pid);
	struct nsrun r = { .tag = "netlock",
			   .what = desc,
			   .err_prefix = prefix,
			   .n_ns = 1,
			   .via_owner = true,
			   .timeout_ms = NS_WAIT_MS,
			   .max_reply = 0 };
	r.ns[0] = (struct nsrun_ns){ nsfd, CLONE_NEWNET };
	void *data = NULL;
	size_t len = 0;
	int ret = ns_run(&r, fn, (void *)cmd, &data, &len);
	free(data);
	return ret;
}

static int nft_run_in(int nsfd, pid_t pid, const char *cmd, const char *prefix)
{
	return nft_run_with(nsfd, pid, cmd, prefix, nft_child);
}

static bool table_name_ok(const char *s)
{
	const char *p = "stasis-lock-";
	if (!str_starts(s, p) || strlen(s) > 40)
		return false;
	s += strlen(p);
	for (int part = 0; part < 2; part++) {
		if (*s < '1' || *s > '9')
			return false;
		while (*s >= '0' && *s <= '9')
			s++;
		if (!*s)
			return true;
		if (*s++ != '-')
			return false;
	}
	return false;
}

/* Until when the lock of the namespaces of the tree keeps dropping answers
 * (netlock_drop_reply): the unlock waits for it. */
static uint64_t drop_until_ns;

/* In a child inside a namespace: add the rule @arg to the lock there; a namespace not
 * locked (no table: --network-lock none, or nothing to lock) is not an error. */
static int nft_child_if_locked(void *arg, struct nsrun_buf *out)
{
	char err[256];
	(void)out;
	int ret = nft_run(arg, err, sizeof(err));
	return ret == -ENOENT ? 0 : ret ? nsrun_error(ret, "%s", err) : 0;
}

int netlock_drop_reply(int nsfd, pid_t pid, bool v6, const uint8_t *laddr, uint16_t lport,
		       const uint8_t *raddr, uint16_t rport)
{
	if (ns_fd_is_ours(nsfd, "net"))
		return 0; /* stasis's own: the connection's lock drops it (conn sets) */
	struct nl_conn c = { .v6 = v6, .lport = lport, .rport = rport };
	memcpy(c.laddr, laddr, v6 ? 16 : 4);
	memcpy(c.raddr, raddr, v6 ? 16 : 4);
	char *cmd = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&cmd, &len);
	if (!f)
		return -ENOMEM;
	fprintf(f, "add rule inet stasis-lock-%d lockout %s saddr ", (int)getpid(), v6 ? "ip6" : "ip");
	put_addr(f, &c, true);
	fprintf(f, " tcp sport %u %s daddr ", lport, v6 ? "ip6" : "ip");
	put_addr(f, &c, false);
	fprintf(f, " tcp dport %u drop\n", rport);
	if (fclose(f)) {
		free(cmd);
		return -ENOMEM;
	}
	int ret = nft_run_with(nsfd, pid, cmd,
			       "restore: drop a restored connection's answers until the tree runs: ",
			       nft_child_if_locked);
	if (!ret) /* (the answer may be a delayed ACK: up to TCP_DELACK_MAX, 200 ms) */
		drop_until_ns = now_ns() + 250000000ull;
	free(cmd);
	return ret;
}

/* ------------------------------------------------------------ collection ---- */

static int cmp_sock(const void *a, const void *b)
{
	const struct nl_sock *x = a, *y = b;
	return x->ino < y->ino ? -1 : x->ino > y->ino;
}

static int add_sock(struct nl_sock **v, size_t *n, size_t *cap, const struct dump_ctx *c, int fd,
		    uint64_t ino)
{
	if (*n == *cap) {
		size_t nc = *cap ? *cap * 2 : 64;
		struct nl_sock *p = realloc(*v, nc * sizeof(*p));
		if (!p)
			return -ENOMEM;
		*v = p;
		*cap = nc;
	}
	(*v)[(*n)++] = (struct nl_sock){ .ino = ino, .c = c, .fd = fd };
	return 0;
}

/* 1 if fd @fd of @c is a TCP socket (IPv4 or IPv6), 0 if another socket, -EBADF if
 * closed meanwhile (a table shared with a task outside), or -errno (logged). */
static int is_tcp(const struct dump_ctx *c, int fd)
{
	_cleanup_close_ int sk = sys_pidfd_getfd(c->pidfd, fd, 0);
	int dom = 0, proto = 0;
	socklen_t l = sizeof(int);
	if (sk < 0) {
		if (errno == EBADF)
			return -EBADF;
		return pr_perror("netlock: fd %d of pid %d: pidfd_getfd", fd, c->pid);
	}
	if (getsockopt(sk, SOL_SOCKET, SO_DOMAIN, &dom, &l) < 0 || (dom != AF_INET && dom != AF_INET6))
		return 0;
	l = sizeof(int);
	return getsockopt(sk, SOL_SOCKET, SO_PROTOCOL, &proto, &l) == 0 && proto == IPPROTO_TCP;
}

/* The sockets in the fd table of @c (TCP or not: tree_socks tells, once a socket). */
static int list_socks(const struct dump_ctx *c, struct nl_sock **v, size_t *n, size_t *cap)
{
	int dfd = openat(c->procfd, "fd", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0)
		return pr_perror("netlock: open /proc/%d/fd", c->pid);
	DIR *d = fdopendir(dfd);
	if (!d) {
		int e = errno;
		close(dfd);
		return pr_errno(-e, "netlock: read /proc/%d/fd", c->pid);
	}
	int ret = 0;
	struct dirent *de;
	while (!ret && (de = readdir(d))) {
		char link[64];
		long long fd;
		unsigned long long ino;
		if (parse_int(de->d_name, 0, INT32_MAX, &fd))
			continue;
		ssize_t l = readlinkat(dirfd(d), de->d_name, link, sizeof(link) - 1);
		if (l <= 0)
			continue; /* closed meanwhile: the frozen tree cannot, a shared table can */
		link[l] = '\0';
		if (sscanf(link, "socket:[%llu]", &ino) == 1)
			ret = add_sock(v, n, cap, c, (int)fd, ino);
	}
	closedir(d);
	return ret;
}

static int push_conn(struct nl_conn **v, size_t *n, size_t *cap, const struct nl_conn *k)
{
	if (*n == *cap) {
		size_t nc = *cap ? *cap * 2 : 16;
		struct nl_conn *p = realloc(*v, nc * sizeof(*p));
		if (!p)
			return -ENOMEM;
		*v = p;
		*cap = nc;
	}
	(*v)[(*n)++] = *k;
	return 0;
}

static int add_conn(struct netlock *nl, const struct inet_diag_msg *m, bool local_only)
{
	struct nl_conn k = { .v6 = m->idiag_family == AF_INET6,
			     .lport = ntohs(m->id.idiag_sport),
			     .rport = ntohs(m->id.idiag_dport) };
	memcpy(k.laddr, m->id.idiag_src, 16);
	memcpy(k.raddr, m->id.idiag_dst, 16);
	/* an IPv4-mapped IPv6 connection carries IPv4 packets */
	if (k.v6 && inet_is_v4_mapped(k.laddr) && inet_is_v4_mapped(k.raddr)) {
		k.v6 = false;
		memmove(k.laddr, k.laddr + 12, 4);
		memmove(k.raddr, k.raddr + 12, 4);
	}
	if (local_only) {
		if (k.v6 && inet_is_v4_mapped(k.laddr)) {
			k.v6 = false;
			memmove(k.laddr, k.laddr + 12, 4);
		}
		return push_conn(&nl->locals, &nl->n_locals, &nl->cap_locals, &k);
	}
	if (nl->n_conns == NETLOCK_MAX_CONNS) {
		pr_err("netlock: the tree holds more than %d TCP connections: cannot lock them",
		       NETLOCK_MAX_CONNS);
		return -E2BIG;
	}
	return push_conn(&nl->conns, &nl->n_conns, &nl->cap_conns, &k);
}

/* Is (@v6, @addr, @port) the local end of a TCP socket of the tree (a wildcard address
 * matches any)? */
static bool is_local(const struct netlock *nl, bool v6, const uint8_t *addr, uint16_t port)
{
	static const uint8_t any[16];
	for (size_t i = 0; i < nl->n_locals; i++) {
		const struct nl_conn *l = &nl->locals[i];
		if (l->lport != port)
			continue;
		if (!memcmp(l->laddr, any, l->v6 ? 16 : 4) ||
		    (l->v6 == v6 && !memcmp(l->laddr, addr, v6 ? 16 : 4)))
			return true;
	}
	return false;
}

/* Connections whose peer is the tree's own (both ends held, or a listener of the tree):
 * locked too, in sets of their own (inner4, inner6). Nothing outside sees them, but a
 * segment between the two ends still in flight when the tree is killed (a slow link, a
 * qdisc's queue) would find no socket and draw a reset, which could reach the restored
 * peer; the restore talks over them (a handshake with the listener, a segment replayed
 * to the peer) once every socket exists again, so it unlocks those sets first
 * (netlock_restore_inner). */
static void mark_internal(struct netlock *nl)
{
	for (size_t i = 0; i < nl->n_conns; i++) {
		struct nl_conn *c = &nl->conns[i];
		c->inner = is_local(nl, c->v6, c->raddr, c->rport);
	}
}

/* One inet_diag message: a socket of the tree? a connection? */
static int diag_one(struct netlock *nl, struct nl_ns *ns, const struct inet_diag_msg *m,
		    struct nl_sock *socks, size_t n_socks)
{
	struct nl_sock key = { .ino = m->idiag_inode };
	if (!m->idiag_inode)
		return 0;
	struct nl_sock *s = bsearch(&key, socks, n_socks, sizeof(*socks), cmp_sock);
	if (!s)
		return 0;
	/* every fd of the same socket (sorted: neighbours) */
	while (s > socks && s[-1].ino == key.ino)
		s--;
	if (s->found)
		return 0; /* seen already (v4 and v6 dumps do not overlap, but be sure) */
	for (struct nl_sock *p = s; p < socks + n_socks && p->ino == key.ino; p++)
		p->found = true;
	if (m->idiag_state == TCP_CLOSE_ST)
		return 0;
	int ret = ns->fd < 0 ? add_conn(nl, m, true) : 0;
	if (ret || m->idiag_state == TCP_LISTEN_ST)
		return ret;
	ns->n_conn++;
	return ns->fd < 0 ? add_conn(nl, m, false) : 0;
}

/* Every TCP socket of @family in the namespace of @nl_fd (a sock_diag socket). */
static int diag_dump(struct netlock *nl, struct nl_ns *ns, int nl_fd, int family,
		     struct nl_sock *socks, size_t n_socks)
{
	struct {
		struct nlmsghdr h;
		struct inet_diag_req_v2 r;
	} req = { 0 };
	req.h.nlmsg_len = sizeof(req);
	req.h.nlmsg_type = SOCK_DIAG_BY_FAMILY;
	req.h.nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP;
	req.h.nlmsg_seq = (uint32_t)family;
	req.r.sdiag_family = (uint8_t)family;
	req.r.sdiag_protocol = IPPROTO_TCP;
	req.r.idiag_states = ~0u;
	if (send(nl_fd, &req, sizeof(req), 0) < 0)
		return pr_perror("netlock: inet_diag request");
	_cleanup_free_ char *buf = malloc(65536);
	if (!buf)
		return -ENOMEM;
	for (;;) {
		ssize_t n = recv(nl_fd, buf, 65536, 0);
		if (n < 0)
			return pr_perror("netlock: inet_diag reply");
		if (n == 0) {
			pr_err("netlock: inet_diag reply ended early");
			return -EIO;
		}
		size_t left = (size_t)n;
		for (struct nlmsghdr *h = (struct nlmsghdr *)buf; NLMSG_OK(h, left);
		     h = NLMSG_NEXT(h, left)) {
			if (h->nlmsg_type == NLMSG_DONE)
				return 0;
			if (h->nlmsg_type == NLMSG_ERROR) {
				const struct nlmsgerr *e = NLMSG_DATA(h);
				int err = h->nlmsg_len >= NLMSG_LENGTH(sizeof(*e)) && e->error
						  ? e->error
						  : -EIO;
				return pr_errno(err, "netlock: inet_diag of TCP sockets");
			}
			if (h->nlmsg_type != SOCK_DIAG_BY_FAMILY ||
			    h->nlmsg_len < NLMSG_LENGTH(sizeof(struct inet_diag_msg)))
				continue;
			int ret = diag_one(nl, ns, NLMSG_DATA(h), socks, n_socks);
			if (ret)
				return ret;
		}
	}
}

static int diag_ns(struct netlock *nl, struct nl_ns *ns, struct nl_sock *socks, size_t n_socks)
{
	char what[64];
	snprintf(what, sizeof(what), "the net namespace of pid %d", ns->pid);
	_cleanup_close_ int fd =
		ns->fd < 0 ? socket(AF_NETLINK, SOCK_DGRAM | SOCK_CLOEXEC, NETLINK_SOCK_DIAG)
			   : ns_socket_in(-1, ns->fd, AF_NETLINK, SOCK_DGRAM | SOCK_CLOEXEC,
					  NETLINK_SOCK_DIAG, "netlock", what);
	if (fd < 0)
		return ns->fd < 0 ? pr_perror("netlock: sock_diag socket") : fd;
	struct timeval tv = { .tv_sec = DIAG_TIMEOUT_S };
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	int ret = diag_dump(nl, ns, fd, AF_INET, socks, n_socks);
	return ret ? ret : diag_dump(nl, ns, fd, AF_INET6, socks, n_socks);
}

/* The index in @ns (@n of them) of the net namespace of task @c into *@out: 1, 0 when
 * none is it, or -errno. */
static int ns_index(const struct nl_ns *ns, size_t n, const struct dump_ctx *c, size_t *out)
{
	struct stat st;
	if (fstatat(c->procfd, "ns/net", &st, 0) < 0)
		return pr_perror("netlock: stat /proc/%d/ns/net", c->pid);
	for (size_t k = 0; k < n; k++)
		if (ns[k].ino == st.st_ino) {
			*out = k;
			return 1;
		}
	return 0;
}

/* The net namespaces of the tree's tasks, each once, stasis's first: *@out (@n). */
static int list_ns(const struct dump_tree *t, struct nl_ns **out, size_t *n)
{
	struct stat st;
	if (stat("/proc/self/ns/net", &st) < 0)
		return pr_perror("netlock: stat /proc/self/ns/net");
	struct nl_ns *ns = *out = calloc(t->nr + 1, sizeof(*ns));
	if (!ns)
		return -ENOMEM;
	ns[0] = (struct nl_ns){ .fd = -1, .ino = st.st_ino, .pid = getpid() };
	*n = 1;
	for (size_t i = 0; i < t->nr; i++) {
		const struct dump_ctx *c = t->procs[i];
		size_t k;
		int ret = ns_index(ns, *n, c, &k);
		if (ret < 0)
			return ret;
		if (ret)
			continue; /* seen */
		int fd = openat(c->procfd, "ns/net", O_RDONLY | O_CLOEXEC);
		if (fd < 0)
			return pr_perror("netlock: open /proc/%d/ns/net", c->pid);
		if (fstat(fd, &st) < 0) {
			close(fd);
			return pr_perror("netlock: stat /proc/%d/ns/net", c->pid);
		}
		ns[(*n)++] = (struct nl_ns){ .fd = fd, .ino = st.st_ino, .pid = c->ospid };
	}
	return 0;
}

static void free_ns(struct nl_ns *ns, size_t n)
{
	for (size_t k = 0; k < n; k++)
		if (ns[k].fd >= 0)
			close(ns[k].fd);
	free(ns);
}

/* A TCP socket of the tree in none of the namespaces looked at: refused when it has a
 * peer (its packets could not be locked), else (a fresh, unbound socket) fine. */
static int check_unfound(const struct nl_sock *s)
{
	_cleanup_close_ int sk = sys_pidfd_getfd(s->c->pidfd, s->fd, 0);
	struct tcp_info ti = { 0 };
	socklen_t l = sizeof(ti);
	if (sk < 0)
		return pr_perror("netlock: fd %d of pid %d: pidfd_getfd", s->fd, s->c->pid);
	if (getsockopt(sk, IPPROTO_TCP, TCP_INFO, &ti, &l) < 0)
		return pr_perror("netlock: fd %d of pid %d: TCP_INFO", s->fd, s->c->pid);
	if (ti.tcpi_state == TCP_CLOSE_ST || ti.tcpi_state == TCP_LISTEN_ST)
		return 0;
	pr_err("fd %d of pid %d: a TCP connection in a net namespace that is neither the "
	       "tree's nor stasis's: it cannot be locked (use --network-lock none if it is "
	       "locked by other means)",
	       s->fd, s->c->pid);
	return -EOPNOTSUPP;
}

/* The TCP sockets of every fd table of the tree, sorted by inode: *@out (@n). */
static int tree_socks(const struct dump_tree *t, struct nl_sock **out, size_t *n)
{
	size_t cap = 0;
	int ret = 0;
	*out = NULL;
	*n = 0;
	for (size_t i = 0; i < t->nr && !ret; i++)
		ret = list_socks(t->procs[i], out, n, &cap);
	if (!ret && *n)
		qsort(*out, *n, sizeof(**out), cmp_sock);
	/* keep the TCP ones, asking once a socket (inherited by 245 processes, 341 socket
	 * pairs were 167000 questions): through its first holder that still has it */
	size_t k = 0;
	for (size_t i = 0, j; i < *n && !ret; i = j) {
		int tcp = -EBADF;
		for (j = i; j < *n && (*out)[j].ino == (*out)[i].ino; j++)
			if (tcp == -EBADF)
				tcp = is_tcp((*out)[j].c, (*out)[j].fd);
		if (tcp < 0 && tcp != -EBADF)
			ret = tcp;
		for (size_t m = i; m < j && tcp > 0; m++)
			(*out)[k++] = (*out)[m];
	}
	*n = k;
	return ret;
}

static int collect(struct netlock *nl, struct dump_tree *t)
{
	_cleanup_free_ struct nl_sock *socks = NULL;
	size_t n;
	int ret = tree_socks(t, &socks, &n);
	if (ret || !n)
		return ret; /* no TCP socket: nothing to lock, no namespace to look into */
	ret = list_ns(t, &nl->ns, &nl->n_ns);
	if (ret)
		return ret;
	for (size_t k = 0; k < nl->n_ns && !ret; k++)
		ret = diag_ns(nl, &nl->ns[k], socks, n);
	if (!ret)
		mark_internal(nl);
	for (size_t i = 0; i < n && !ret; i++)
		if (!socks[i].found && (!i || socks[i - 1].ino != socks[i].ino))
			ret = check_unfound(&socks[i]);
	return ret;
}

/* ------------------------------------------------------- accept queues ---- */

/* How long the tree may run to accept what waits in its accept queues: until nothing
 * moved for DRAIN_IDLE_MS, DRAIN_MAX_MS in all; the SYNs held back expire by themselves
 * after DRAIN_HOLD_S (a dumper killed meanwhile holds nothing back for long). */
#define DRAIN_IDLE_MS 250
#define DRAIN_MAX_MS 3000
#define DRAIN_HOLD_S 60

/* A listener of the tree with connections waiting to be accepted. */
struct drain_lsn {
	int sk;    /* a duplicate: its TCP_INFO counts them */
	size_t ns; /* in netlock_drain.ns */
	bool v6, any;
	uint8_t addr[16]; /* network order */
	uint16_t port;
};

struct netlock_drain {
	char table[64];
	struct drain_lsn *l;
	size_t n;
	struct nl_ns *ns; /* the tree's (list_ns); .locked: the table is there */
	size_t n_ns;
};

/* The connections waiting in the accept queue of the TCP socket @sk (TCP_INFO's
 * tcpi_unacked of a listener is its accept queue's length); -1 when it is no listener. */
static int64_t queued(int sk)
{
	struct tcp_info ti = { 0 };
	socklen_t l = sizeof(ti);
	if (getsockopt(sk, IPPROTO_TCP, TCP_INFO, &ti, &l) < 0 || ti.tcpi_state != TCP_LISTEN_ST)
		return -1;
	return ti.tcpi_unacked;
}

/* Listener @s (fd @sk, its duplicate) into @d. */
static int drain_add(struct netlock_drain *d, const struct nl_sock *s, int *sk)
{
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);
	if (getsockname(*sk, (struct sockaddr *)&ss, &sl) < 0)
		return pr_perror("dump: fd %d of pid %d: getsockname", s->fd, s->c->pid);
	struct drain_lsn *n = realloc(d->l, (d->n + 1) * sizeof(*n));
	if (!n)
		return -ENOMEM;
	d->l = n;
	struct drain_lsn *x = &d->l[d->n];
	*x = (struct drain_lsn){ .sk = -1 };
	if (ss.ss_family == AF_INET6) {
		const struct sockaddr_in6 *a = (const struct sockaddr_in6 *)&ss;
		x->v6 = !inet_is_v4_mapped(a->sin6_addr.s6_addr);
		memcpy(x->addr, x->v6 ? a->sin6_addr.s6_addr : a->sin6_addr.s6_addr + 12,
		       x->v6 ? 16 : 4);
		x->port = ntohs(a->sin6_port);
	} else {
		const struct sockaddr_in *a = (const struct sockaddr_in *)&ss;
		memcpy(x->addr, &a->sin_addr, 4);
		x->port = ntohs(a->sin_port);
	}
	static const uint8_t zero[16];
	x->any = !memcmp(x->addr, zero, x->v6 ? 16 : 4);
	int ret = ns_index(d->ns, d->n_ns, s->c, &x->ns);
	if (ret <= 0) /* (every task's namespace is listed) */
		return ret ?: -EIO;
	x->sk = *sk;
	*sk = -1;
	d->n++;
	return 0;
}

/* The command holding back the SYNs to the listeners of @d in namespace @k. */
static char *drain_cmd(const struct netlock_drain *d, size_t k)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);
	if (!f)
		return NULL;
	fprintf(f,
		"add table inet %1$s\n"
		"add chain inet %1$s syn { type filter hook input priority " LOCK_PRIO
		"; policy accept; }\n"
		"add set inet %1$s a4 { type ipv4_addr . inet_service; flags timeout; }\n"
		"add set inet %1$s a6 { type ipv6_addr . inet_service; flags timeout; }\n"
		"add set inet %1$s p { type inet_service; flags timeout; }\n"
		"add rule inet %1$s syn tcp flags & (syn | ack) == syn ip daddr . tcp dport @a4 "
		"drop\n"
		"add rule inet %1$s syn tcp flags & (syn | ack) == syn ip6 daddr . tcp dport @a6 "
		"drop\n"
		"add rule inet %1$s syn tcp flags & (syn | ack) == syn tcp dport @p drop\n",
		d->table);
	for (size_t i = 0; i < d->n; i++) {
		const struct drain_lsn *x = &d->l[i];
		if (x->ns != k)
			continue;
		char a[INET6_ADDRSTRLEN];
		inet_ntop(x->v6 ? AF_INET6 : AF_INET, x->addr, a, sizeof(a));
		if (x->any)
			fprintf(f, "add element inet %s p { %u timeout %ds }\n", d->table, x->port,
				DRAIN_HOLD_S);
		else
			fprintf(f, "add element inet %s %s { %s . %u timeout %ds }\n", d->table,
				x->v6 ? "a6" : "a4", a, x->port, DRAIN_HOLD_S);
	}
	if (fclose(f)) {
		free(buf);
		return NULL;
	}
	return buf;
}

/* In a child inside a namespace: run @arg; its error is not logged (the caller goes on). */
static int nft_child_quiet(void *arg, struct nsrun_buf *out)
{
	char err[256];
	(void)out;
	return nft_run(arg, err, sizeof(err));
}

/* Hold back the SYNs to @d's listeners where stasis may (else the tree just runs). */
static void drain_hold(struct netlock_drain *d)
{
	for (size_t k = 0; k < d->n_ns; k++) {
		bool any = false;
		for (size_t i = 0; i < d->n; i++)
			any |= d->l[i].ns == k;
		if (!any)
			continue;
		_cleanup_free_ char *cmd = drain_cmd(d, k);
		char err[256];
		int ret = !cmd ? -ENOMEM
			  : k ? nft_run_with(d->ns[k].fd, d->ns[k].pid, cmd, NULL, nft_child_quiet)
			      : nft_run(cmd, err, sizeof(err));
		d->ns[k].locked = !ret;
		if (ret)
			pr_info("dump: new connections to the listeners of the tree in the net "
				"namespace of pid %d are not held back: %s", d->ns[k].pid,
				k ? strerror(-ret) : err);
	}
}

/* The connections waiting in the queues of @d's listeners; in *@busy (unless NULL) how
 * many listeners have some. */
static uint64_t waiting(const struct netlock_drain *d, uint64_t *busy)
{
	uint64_t total = 0, b = 0;
	for (size_t i = 0; i < d->n; i++) {
		int64_t q = queued(d->l[i].sk);
		total += q > 0 ? (uint64_t)q : 0;
		b += q > 0;
	}
	if (busy)
		*busy = b;
	return total;
}

int netlock_drain_start(struct dump_tree *t, struct netlock_drain **out)
{
	_cleanup_free_ struct nl_sock *socks = NULL;
	size_t n;

	*out = NULL;
	int ret = tree_socks(t, &socks, &n);
	if (ret || !n)
		return ret;
	struct netlock_drain *d = calloc(1, sizeof(*d));
	if (!d)
		return -ENOMEM;
	ret = list_ns(t, &d->ns, &d->n_ns);
	snprintf(d->table, sizeof(d->table), NETLOCK_DRAIN_PREFIX "%d", getpid());
	for (size_t i = 0; i < n && !ret; i++) {
		if (i && socks[i - 1].ino == socks[i].ino)
			continue;
		_cleanup_close_ int sk = sys_pidfd_getfd(socks[i].c->pidfd, socks[i].fd, 0);
		if (sk >= 0 && queued(sk) >= 0)
			ret = drain_add(d, &socks[i], &sk);
	}
	if (ret || !d->n) {
		netlock_drain_end(d);
		return ret;
	}
	if (!t->opts->network_lock_none)
		drain_hold(d);
	/* counted once new ones are held back: what came meanwhile is counted too */
	uint64_t busy, total = waiting(d, &busy);
	if (total)
		pr_info("dump: %" PRIu64 " connection%s waiting in the accept queues of %" PRIu64
			" listener%s: the tree runs on to accept them",
			total, total == 1 ? "" : "s", busy, busy == 1 ? "" : "s");
	*out = d;
	return total ? 1 : 0;
}

void netlock_drain_wait(struct netlock_drain *d)
{
	uint64_t t0 = now_ns(), moved = t0, last = UINT64_MAX, left = 0;
	while (now_ns() - moved < DRAIN_IDLE_MS * 1000000ull &&
	       now_ns() - t0 < DRAIN_MAX_MS * 1000000ull) {
		left = waiting(d, NULL);
		if (!left)
			break;
		if (left != last)
			moved = now_ns();
		last = left;
		struct timespec ts = { 0, 1000000 };
		nanosleep(&ts, NULL);
	}
	pr_info("dump: after %.1f ms, %" PRIu64 " connection%s still waiting to be accepted",
		(double)(now_ns() - t0) / 1e6, left, left == 1 ? "" : "s");
}

void netlock_drain_end(struct netlock_drain *d)
{
	if (!d)
		return;
	for (size_t k = 0; k < d->n_ns; k++) {
		if (d->ns[k].locked) {
			char cmd[128], err[256];
			snprintf(cmd, sizeof(cmd), "delete table inet %s\n", d->table);
			int ret = k ? nft_run_with(d->ns[k].fd, d->ns[k].pid, cmd, NULL,
						   nft_child_quiet)
				    : nft_run(cmd, err, sizeof(err));
			if (ret && k == 0)
				pr_warn("dump: cannot remove table inet %s: %s (its elements expire "
					"in %d s)", d->table, err, DRAIN_HOLD_S);
		}
	}
	free_ns(d->ns, d->n_ns);
	for (size_t i = 0; i < d->n; i++)
		close(d->l[i].sk);
	free(d->l);
	free(d);
}

/* ------------------------------------------------------------------ dump ---- */

static int refuse_lock(int err, const char *where, size_t n, const char *why)
{
	pr_err("dump: the tree holds %zu TCP connection%s in %s and stasis cannot lock them: "
	       "%s%s; use --network-lock none if they are locked by other means",
	       n, n == 1 ? "" : "s", where, why,
	       err == -EPERM || err == -EACCES ? " (CAP_NET_ADMIN is needed there)" : "");
	return err;
}

static int write_record(struct netlock *nl, struct img_dir *img);

/* The host lock: `stasis-lock-PID`, or `-N` after it while a stale table has the name (the
 * record, written before, is then written again with the name). */
static int lock_host(struct netlock *nl, struct img_dir *img)
{
	char err[256];
	int ret = -EEXIST;
	for (int k = 1; k <= 16 && ret == -EEXIST; k++) {
		if (k == 1)
			snprintf(nl->table, sizeof(nl->table), "stasis-lock-%d", getpid());
		else
			snprintf(nl->table, sizeof(nl->table), "stasis-lock-%d-%d", getpid(), k);
		_cleanup_free_ char *cmd = conn_lock_cmd(nl->table, nl->conns, nl->n_conns, false);
		if (!cmd)
			return -ENOMEM;
		ret = nft_run(cmd, err, sizeof(err));
	}
	if (ret)
		return refuse_lock(ret, "stasis's net namespace", nl->n_conns, err);
	nl->host_locked = true;
	return strcmp(nl->table, nl->ns_table) ? write_record(nl, img) : 0;
}

static int write_record(struct netlock *nl, struct img_dir *img)
{
	NetLock rec = NET_LOCK__INIT;
	_cleanup_free_ NetLockConn *cs = calloc(nl->n_conns + 1, sizeof(*cs));
	_cleanup_free_ NetLockConn **pcs = calloc(nl->n_conns + 1, sizeof(*pcs));
	_cleanup_free_ NetLockNs *ns = calloc(nl->n_ns + 1, sizeof(*ns));
	_cleanup_free_ NetLockNs **pns = calloc(nl->n_ns + 1, sizeof(*pns));
	if (!cs || !pcs || !ns || !pns)
		return -ENOMEM;
	for (size_t k = 1; k < nl->n_ns; k++) {
		if (!nl->ns[k].n_conn)
			continue;
		net_lock_ns__init(&ns[rec.n_ns]);
		ns[rec.n_ns].pid = nl->ns[k].pid;
		ns[rec.n_ns].table = nl->ns_table;
		pns[rec.n_ns] = &ns[rec.n_ns];
		rec.n_ns++;
	}
	rec.ns = pns;
	for (size_t i = 0; i < nl->n_conns; i++) {
		const struct nl_conn *c = &nl->conns[i];
		size_t alen = c->v6 ? 16 : 4;
		net_lock_conn__init(&cs[i]);
		cs[i].laddr = (ProtobufCBinaryData){ alen, (uint8_t *)c->laddr };
		cs[i].raddr = (ProtobufCBinaryData){ alen, (uint8_t *)c->raddr };
		cs[i].lport = c->lport;
		cs[i].rport = c->rport;
		cs[i].has_inner = cs[i].inner = c->inner;
		pcs[i] = &cs[i];
	}
	rec.table = nl->n_conns ? nl->table : nl->ns_table;
	rec.n_conns = nl->n_conns;
	rec.conns = pcs;
	unlinkat(img->dfd, "netlock.img", 0); /* a name changed by lock_host */
	return img_write_msg(img, IMG_NETLOCK, 0, &rec.base);
}

int netlock_dump(struct dump_tree *t, struct netlock **out)
{
	*out = NULL;
	if (t->opts->network_lock_none)
		return 0;
	uint64_t t0 = now_ns();
	struct netlock *nl = calloc(1, sizeof(*nl));
	if (!nl)
		return -ENOMEM;
	snprintf(nl->ns_table, sizeof(nl->ns_table), "stasis-lock-%d", getpid());
	snprintf(nl->table, sizeof(nl->table), "%s", nl->ns_table);
	int ret = collect(nl, t);
	size_t total = 0;
	for (size_t k = 0; k < nl->n_ns; k++)
		total += nl->ns[k].n_conn;
	/* recorded first: a dumper killed once it locked leaves the record for gc */
	if (!ret && total)
		ret = write_record(nl, &t->img);
	if (!ret && nl->n_conns)
		ret = lock_host(nl, &t->img);
	for (size_t k = 1; k < nl->n_ns && !ret; k++) {
		struct nl_ns *ns = &nl->ns[k];
		char cmd[1024], what[256];
		if (!ns->n_conn)
			continue;
		snprintf(what, sizeof(what),
			 "dump: the tree holds %zu TCP connection%s in the net namespace of pid %d "
			 "and stasis cannot lock them (use --network-lock none if they are locked "
			 "by other means): ",
			 ns->n_conn, ns->n_conn == 1 ? "" : "s", ns->pid);
		ret = ns_lock_cmd(nl->ns_table, cmd, sizeof(cmd));
		if (!ret)
			ret = nft_run_in(ns->fd, ns->pid, cmd, what);
		ns->locked = !ret;
	}
	if (ret) {
		netlock_unlock(nl);
		netlock_free(nl);
		return ret;
	}
	size_t whole = 0;
	for (size_t k = 1; k < nl->n_ns; k++)
		whole += nl->ns[k].locked;
	if (total)
		pr_info("dump: network locked in %.3f ms: %zu TCP connection%s, %zu by 4-tuple%s%s, "
			"%zu net namespace%s of the tree locked whole",
			(double)(now_ns() - t0) / 1e6, total, total == 1 ? "" : "s", nl->n_conns,
			nl->host_locked ? " in table inet " : "", nl->host_locked ? nl->table : "",
			whole, whole == 1 ? "" : "s");
	*out = nl;
	return 0;
}

void netlock_dump_mark(const struct netlock *nl, struct dump_tree *t)
{
	if (!nl)
		return;
	for (size_t i = 0; i < t->nr; i++) {
		NetNs *net = t->procs[i]->tns ? t->procs[i]->tns->net : NULL;
		for (size_t k = 1; net && k < nl->n_ns; k++)
			if (nl->ns[k].locked && nl->ns[k].ino == net->id)
				net->has_locked = net->locked = true;
	}
}

static int delete_host(const char *table, const char *who)
{
	char cmd[128], err[256];
	snprintf(cmd, sizeof(cmd), "delete table inet %s\n", table);
	int ret = nft_run(cmd, err, sizeof(err));
	if (ret)
		pr_warn("%s: cannot remove the network lock (table inet %s): %s", who, table, err);
	return ret;
}

static int delete_in(int nsfd, pid_t pid, const char *table, const char *who)
{
	char cmd[128], what[128];
	snprintf(cmd, sizeof(cmd), "delete table inet %s\n", table);
	snprintf(what, sizeof(what),
		 "%s: remove the network lock of the net namespace of pid %d (it stays): ", who, pid);
	return nft_run_in(nsfd, pid, cmd, what);
}

void netlock_unlock(struct netlock *nl)
{
	if (!nl)
		return;
	uint64_t t0 = now_ns();
	bool any = nl->host_locked;
	if (nl->host_locked && !delete_host(nl->table, "dump"))
		nl->host_locked = false;
	for (size_t k = 1; k < nl->n_ns; k++) {
		if (!nl->ns[k].locked)
			continue;
		any = true;
		if (!delete_in(nl->ns[k].fd, nl->ns[k].pid, nl->ns_table, "dump"))
			nl->ns[k].locked = false;
	}
	if (any)
		pr_info("dump: network unlocked in %.3f ms", (double)(now_ns() - t0) / 1e6);
}

void netlock_keep(const struct netlock *nl, const char *dir)
{
	if (nl && nl->host_locked)
		pr_info("dump: the network lock (table inet %s) stays until the restore of %s "
			"(or stasis unlock-network -D %s)",
			nl->table, dir, dir);
}

void netlock_free(struct netlock *nl)
{
	if (!nl)
		return;
	free_ns(nl->ns, nl->n_ns);
	free(nl->conns);
	free(nl->locals);
	if (nl->img)
		protobuf_c_message_free_unpacked(&nl->img->base, NULL);
	free(nl);
}

/* --------------------------------------------------------------- restore ---- */

static int release_record(const NetLock *r, const char *who);

static int validate(const NetLock *r)
{
	if (!r->table || !table_name_ok(r->table)) {
		pr_err("image: netlock.img names table '%.64s', not a stasis lock table",
		       r->table ? r->table : "");
		return -EINVAL;
	}
	if (r->n_conns > NETLOCK_MAX_CONNS) {
		pr_err("image: netlock.img holds %zu connections, over %d", r->n_conns,
		       NETLOCK_MAX_CONNS);
		return -EINVAL;
	}
	if (r->n_ns > 4096) {
		pr_err("image: netlock.img names %zu net namespaces, over 4096", r->n_ns);
		return -EINVAL;
	}
	for (size_t i = 0; i < r->n_ns; i++)
		if (r->ns[i]->pid <= 0 || !r->ns[i]->table || !table_name_ok(r->ns[i]->table)) {
			pr_err("image: netlock.img: net namespace %zu is malformed", i);
			return -EINVAL;
		}
	for (size_t i = 0; i < r->n_conns; i++) {
		const NetLockConn *c = r->conns[i];
		if ((c->laddr.len != 4 && c->laddr.len != 16) || c->raddr.len != c->laddr.len ||
		    !c->lport || c->lport > 65535 || !c->rport || c->rport > 65535) {
			pr_err("image: netlock.img: connection %zu is malformed", i);
			return -EINVAL;
		}
	}
	return 0;
}

/* netlock.img of @dfd, validated: 0 with *@out (NULL when there is none) or -errno. */
static int load(int dfd, NetLock **out)
{
	*out = NULL;
	if (faccessat(dfd, "netlock.img", F_OK, AT_SYMLINK_NOFOLLOW) < 0)
		return errno == ENOENT ? 0 : pr_perror("images: netlock.img");
	NetLock *r = img_read_msg(dfd, IMG_NETLOCK, 0);
	if (!r)
		return -errno;
	int ret = validate(r);
	if (ret) {
		protobuf_c_message_free_unpacked(&r->base, NULL);
		return ret;
	}
	*out = r;
	return 0;
}

int netlock_restore(int img_dfd, bool none, bool tcp_close, struct netlock **out)
{
	NetLock *r;
	*out = NULL;
	if (none)
		return 0;
	struct netlock *nl = calloc(1, sizeof(*nl));
	if (!nl)
		return -ENOMEM;
	int ret = load(img_dfd, &r);
	if (ret || !r) {
		*out = ret ? NULL : nl;
		if (ret)
			free(nl);
		return ret;
	}
	nl->img = r;
	if (tcp_close) {
		/* the connections are restored closed: nothing to protect; the dump's lock
		 * (this machine) goes now */
		if (r->n_conns)
			(void)release_record(r, "restore");
		*out = nl;
		return 0;
	}
	if (!r->n_conns) {
		*out = nl; /* only namespaces of the tree were locked: NetNs.locked says which */
		return 0;
	}
	snprintf(nl->table, sizeof(nl->table), "%s", r->table);
	nl->conns = calloc(r->n_conns ? r->n_conns : 1, sizeof(*nl->conns));
	ret = nl->conns ? 0 : -ENOMEM;
	for (size_t i = 0; i < r->n_conns && !ret; i++) {
		struct nl_conn *c = &nl->conns[i];
		c->v6 = r->conns[i]->laddr.len == 16;
		memcpy(c->laddr, r->conns[i]->laddr.data, r->conns[i]->laddr.len);
		memcpy(c->raddr, r->conns[i]->raddr.data, r->conns[i]->raddr.len);
		c->lport = (uint16_t)r->conns[i]->lport;
		c->rport = (uint16_t)r->conns[i]->rport;
		c->inner = r->conns[i]->has_inner && r->conns[i]->inner;
	}
	nl->n_conns = r->n_conns;
	uint64_t t0 = now_ns();
	char err[256];
	_cleanup_free_ char *cmd = ret ? NULL : conn_lock_cmd(nl->table, nl->conns, nl->n_conns, true);
	if (!ret && !cmd)
		ret = -ENOMEM;
	if (!ret && (ret = nft_run(cmd, err, sizeof(err))))
		pr_err("restore: cannot lock the %zu TCP connection%s of the image (table inet "
		       "%s): %s%s; use --network-lock none if they are locked by other means",
		       nl->n_conns, nl->n_conns == 1 ? "" : "s", nl->table, err,
		       ret == -EPERM ? " (CAP_NET_ADMIN is needed)" : "");
	if (ret) {
		netlock_free(nl);
		return ret;
	}
	nl->host_locked = true;
	pr_info("restore: network locked (%zu TCP connections, table inet %s) in %.3f ms",
		nl->n_conns, nl->table, (double)(now_ns() - t0) / 1e6);
	*out = nl;
	return 0;
}

int netlock_restore_ns(const struct rst_ctx *c)
{
	const NetNs *ns = c->tns ? c->tns->net : NULL;
	char table[64], cmd[1024], err[256];
	if (!ns || !ns->locked || c->opts->network_lock_none || c->opts->tcp_close)
		return 0;
	snprintf(table, sizeof(table), "stasis-lock-%d", c->stasis_pid);
	int ret = ns_lock_cmd(table, cmd, sizeof(cmd));
	if (!ret)
		ret = nft_run(cmd, err, sizeof(err));
	if (ret)
		return pr_errno(ret,
				"restore: cannot lock the new net namespace of pid %d: %s; "
				"use --network-lock none if it is locked by other means",
				c->pid, err);
	return 0;
}

int netlock_restore_inner(struct netlock *nl)
{
	char cmd[256], err[256];
	size_t n = 0;
	if (!nl || !nl->host_locked)
		return 0;
	for (size_t i = 0; i < nl->n_conns; i++)
		n += nl->conns[i].inner;
	if (!n)
		return 0;
	snprintf(cmd, sizeof(cmd), "flush set inet %1$s inner4\nflush set inet %1$s inner6\n",
		 nl->table);
	int ret = nft_run(cmd, err, sizeof(err));
	if (ret)
		return pr_errno(ret, "restore: cannot unlock the %zu TCP connections between the "
				"tree's own sockets (table inet %s): %s", n, nl->table, err);
	pr_info("restore: %zu TCP connections between the tree's own sockets unlocked", n);
	return 0;
}

void netlock_restore_done(struct netlock *nl, bool none, struct rst_ctx *const *procs, size_t n)
{
	char table[64];
	uint64_t t0 = now_ns();
	bool any = false;
	if (none)
		return;
	if (nl && nl->host_locked) {
		any = true;
		if (!delete_host(nl->table, "restore"))
			nl->host_locked = false;
	}
	snprintf(table, sizeof(table), "stasis-lock-%d", getpid());
	uint64_t now = now_ns();
	if (drop_until_ns > now) /* answers to drop still due */
		usleep((useconds_t)((drop_until_ns - now) / 1000));
	for (size_t i = 0; i < n; i++) {
		const struct rst_ctx *c = procs[i];
		if (!c || !c->tns || !c->tns->net || !c->tns->net->locked)
			continue;
		any = true;
		_cleanup_close_ int fd = ns_open_of(c->pid, "net", "netlock");
		if (fd >= 0)
			(void)delete_in(fd, c->pid, table, "restore");
	}
	if (any)
		pr_info("restore: network unlocked in %.3f ms", (double)(now_ns() - t0) / 1e6);
}

void netlock_restore_failed(const struct netlock *nl, const char *dir)
{
	size_t outer = 0;
	for (size_t i = 0; nl && i < nl->n_conns; i++)
		outer += !nl->conns[i].inner;
	if (nl && nl->host_locked && !outer) {
		/* only connections between the tree's own sockets: nobody outside waits */
		if (!delete_host(nl->table, "restore"))
			pr_info("restore: the network lock (table inet %s) removed: it held only "
				"connections between the tree's own sockets",
				nl->table);
		return;
	}
	if (nl && nl->host_locked)
		pr_warn("restore: the network lock of the image stays (table inet %s), so that the "
			"peers of its TCP connections see no reset: restore again, or remove it "
			"with stasis unlock-network -D %s",
			nl->table, dir);
}

/* Remove the locks record @r names (the host's table, each namespace's); @who for the
 * log. The number of tables removed, or -errno of the first failure (logged). */
static int release_record(const NetLock *r, const char *who)
{
	char cmd[128], err[256], what[160];
	int n = 0, ret = 0;
	if (r->n_conns) {
		snprintf(cmd, sizeof(cmd), "delete table inet %s\n", r->table);
		int e = nft_run(cmd, err, sizeof(err));
		if (!e)
			n++;
		else if (e != -ENOENT)
			ret = pr_errno(e, "%s: cannot remove table inet %s: %s", who, r->table, err);
	}
	for (size_t i = 0; i < r->n_ns; i++) {
		char path[64];
		snprintf(path, sizeof(path), "/proc/%d/ns/net", r->ns[i]->pid);
		_cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC);
		if (fd < 0)
			continue; /* gone: its lock with it */
		snprintf(cmd, sizeof(cmd), "delete table inet %s\n", r->ns[i]->table);
		snprintf(what, sizeof(what),
			 "%s: remove the lock of the net namespace of pid %d: ", who, r->ns[i]->pid);
		int e = nft_run_in(fd, r->ns[i]->pid, cmd, what);
		if (!e)
			n++;
		else if (e != -ENOENT && !ret)
			ret = e;
	}
	return ret ? ret : n;
}

void netlock_gc_stale(const char *tmp)
{
	NetLock *r;
	/* the drain of the killed dumper (in stasis's namespace; its elements expire anyway) */
	const char *p = strrchr(tmp, '.');
	long long pid;
	if (p && !parse_int(p + 1, 1, INT32_MAX, &pid)) {
		char cmd[96], err[256];
		snprintf(cmd, sizeof(cmd), "delete table inet " NETLOCK_DRAIN_PREFIX "%lld\n", pid);
		if (!nft_run(cmd, err, sizeof(err)))
			pr_info("images: removed table inet " NETLOCK_DRAIN_PREFIX "%lld of the "
				"killed dump into %s", pid, tmp);
	}
	_cleanup_close_ int dfd = open(tmp, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0 || load(dfd, &r) || !r)
		return;
	int n = release_record(r, "gc");
	if (n > 0)
		pr_info("images: removed the network lock (table inet %s) that the killed dump "
			"into %s held",
			r->table, tmp);
	protobuf_c_message_free_unpacked(&r->base, NULL);
}

int netlock_unlock_dir(const char *dir)
{
	NetLock *r;
	_cleanup_close_ int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0)
		return pr_perror("unlock-network: open %s", dir);
	int ret = load(dfd, &r);
	if (ret)
		return ret;
	if (!r) {
		printf("%s records no network lock\n", dir);
		return 0;
	}
	ret = release_record(r, "unlock-network");
	if (ret == 0)
		printf("the network lock of %s (table inet %s) is not there\n", dir, r->table);
	else if (ret > 0)
		printf("removed the network lock of %s (table inet %s, %zu TCP connections)\n", dir,
		       r->table, r->n_conns);
	protobuf_c_message_free_unpacked(&r->base, NULL);
	return ret < 0 ? ret : 0;
}
