/* TCP sockets, IPv4 and IPv6 (row fd_tcp_ops of the files module, kind FILE_TCP_SK,
 * FileDesc.tcp_sk).
 *
 * Dump, from outside the frozen task, on a pidfd_getfd duplicate (the same socket):
 *   - state, shutdown bits, queue lengths and IPV6_V6ONLY from sock_diag (one dump per
 *     network namespace and family for the whole dump, sk_inet.c); addresses with
 *     getsockname/getpeername. A socket the diag tables do not list (never bound, or
 *     closed and unhashed) is read with TCP_INFO and poll.
 *   - a connection (ESTABLISHED, FIN_WAIT1/2, CLOSE_WAIT, LAST_ACK, CLOSING, or closed
 *     after it was one) in TCP repair mode, read by src/net/sk_tcp_repair.c (queues,
 *     sequence numbers, window, options; all connections of the tree read again until
 *     none moved, in the merge hook). The socket stays in repair mode until the dump
 *     ends: closed by the killed tree it goes away silently (no FIN, no RST to the
 *     peer); if the tree runs on (failure, --leave-running) repair mode is turned off
 *     again without a window probe. Repair mode needs CAP_NET_ADMIN over the socket's
 *     network namespace: without it a connection is refused with one line.
 *   - a listening socket: its backlog, and the connections waiting in its accept queue
 *     (diag entries with no inode on its port in state ESTABLISHED, CLOSE_WAIT or CLOSE:
 *     the others are orphans of connections it accepted): each must have its client end
 *     in the tree and nothing sent by it unread, else it is refused (the dump first let
 *     the tree accept what waited there: netlock_drain_start). They are made again
 *     by new handshakes, in the order of the fd tables, not the queue's (not recorded),
 *     with window scales from the buffers at that moment. So are the half-open ones
 *     (SYN_RECV: a TCP_DEFER_ACCEPT listener waiting for the client's first data) whose
 *     client is in the tree and established (TcpSk.deferred); those of clients outside
 *     retry their handshake with the restored listener.
 *
 * Restore, in the restore child (the task's network namespace):
 *   - never bound: a new socket; bound: bind (in repair mode where allowed, so that a
 *     port still in TIME_WAIT or held elsewhere is taken again: SK_FORCE_REUSE);
 *     listening: bind + listen(backlog); SYN_SENT, and a client waiting in an accept
 *     queue: bind (their connect() later).
 *   - a connection: in repair mode, both sequence numbers, bind (an IPv6 socket that got
 *     its address from connect(), not IPV6_V6ONLY, on the any address with its port, the
 *     address then from the routes, when they give it: a bind to the address would turn
 *     IPV6_V6ONLY on), connect (no packet),
 *     options, timestamp, the receive queue and the sent part of the send queue queued
 *     without sending, the window. It stays in repair mode: nothing is sent yet.
 * Then, in stasis, every task of the tree rebuilt and none running yet (the final hook,
 * on pidfd_getfd duplicates), so that whatever a socket sends finds its peer if the peer
 * is in the tree: the FINs the state implies are replayed: ours by shutdown(SHUT_WR) in
 * repair mode (queued as sent), the peer's (and its ACK of our FIN, or its RST for a
 * connection closed before the dump) injected through a raw socket made in the socket's
 * network namespace, as segments from the peer with the right sequence numbers (so the
 * state is exact and nothing goes to the peer but ACKs it has seen); repair mode off
 * without a window probe; the unsent data sent normally; the late socket options. A
 * connecting socket's connect() is made again there (a new SYN). A client whose
 * connection waited in an accept queue (bound to its old address) makes a real
 * handshake with the restored listener, first, and sends again what it had to send:
 * absolute sequence numbers are not visible to programs, so both ends are consistent.
 *
 * --tcp-close: connections are restored closed (as if reset, the data still queued for
 * reading kept), for a peer that is gone. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/sockios.h>
#include <netinet/in.h>
#include <netinet/ip.h>
#include <netinet/ip6.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/log.h"
#include "core/util.h"
#include "files/fd_ops.h"
#include "net/netlock.h"
#include "net/netns.h"
#include "net/sk_dgram.h"
#include "net/sk_inet.h"
#include "net/sk_tcp_int.h"
#include "net/sockopt.h"
#include "ns/nsrun.h"
#include "sys/syscalls.h"

/* Repair mode turned off leaves SO_REUSEADDR off: the recorded value again. */
static int reuse_again(int sk, const TcpSk *t, const char *what)
{
	for (size_t i = 0; t->opts && i < t->opts->n_opts; i++) {
		const SockOpt *o = t->opts->opts[i];
		int v = (int)o->ival;
		if (o->level == SOL_SOCKET && o->name == SO_REUSEADDR && o->has_ival && v &&
		    setsockopt(sk, SOL_SOCKET, SO_REUSEADDR, &v, sizeof(v)))
			return pr_perror("restore %s: SO_REUSEADDR", what);
	}
	return 0;
}

/* The socket options of phase @ph, if recorded. */
static int set_opts(int sk, const TcpSk *t, enum sockopt_phase ph, const char *what)
{
	return t->opts ? sockopt_restore(sk, t->opts, ph, what) : 0;
}


/* ---- dump ------------------------------------------------------------------------ */

static int get_addr(int dup, int family, bool peer, InetAddr **out)
{
	struct sockaddr_storage ss;
	socklen_t l = sizeof(ss);
	int r = peer ? getpeername(dup, (struct sockaddr *)&ss, &l)
		     : getsockname(dup, (struct sockaddr *)&ss, &l);
	if (r)
		return errno == ENOTCONN ? 0 : -errno;
	if (ss.ss_family != family)
		return -EAFNOSUPPORT;
	const uint8_t *a;
	uint16_t port;
	if (family == AF_INET) {
		const struct sockaddr_in *s4 = (const struct sockaddr_in *)&ss;
		a = (const uint8_t *)&s4->sin_addr;
		port = ntohs(s4->sin_port);
	} else {
		const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)&ss;
		a = (const uint8_t *)&s6->sin6_addr;
		port = ntohs(s6->sin6_port);
	}
	if (!peer && !port)
		return 0; /* not bound */
	*out = inet_addr_new(family, a, port);
	return *out ? 0 : -ENOMEM;
}

/* A listener: the connections in its accept queue (diag entries on its port with no
 * file), their client addresses into t->pending; then the half-open ones (t->deferred:
 * tcp_merge keeps those whose client is in the tree). */
static int dump_pending(pid_t pid, int fd, const struct inet_diag_tab *tab,
			const struct inet_diag_ent *l, TcpSk *t)
{
	size_t n = 0;
	for (int half = 0; half < 2; half++)
		for (size_t i = 0; i < tab->n; i++) {
			const struct inet_diag_ent *e = &tab->e[i];
			bool syn = e->state == ST_SYN_RECV || e->state == ST_NEW_SYN_RECV;
			/* (the server end of a connection it accepted, then closed, has no file
			 * either: an orphan the kernel finishes, FIN_WAIT1/2, CLOSING, LAST_ACK,
			 * TIME_WAIT; an accepted connection is ESTABLISHED, CLOSE_WAIT or CLOSE) */
			if (e->ino || e->sport != l->sport || syn != (half == 1) ||
			    (!syn && e->state != ST_ESTABLISHED && e->state != ST_CLOSE_WAIT &&
			     e->state != ST_CLOSE))
				continue;
			if (!inet_addr_is_any(t->src) &&
			    memcmp(e->src, t->src->addr.data, t->src->addr.len))
				continue;
			if (!syn && (e->state != ST_ESTABLISHED || e->rqueue)) {
				pr_err("fd %d of pid %d is a listening TCP socket with a connection in "
				       "its accept queue in state %s with %u bytes its server has not "
				       "read: not supported yet",
				       fd, pid, tcp_state_name(e->state), e->rqueue);
				return -EOPNOTSUPP;
			}
			if (n >= TCP_PENDING_MAX)
				return pr_errno(-E2BIG, "fd %d of pid %d: accept queue", fd, pid);
			InetAddr **np = realloc(t->pending, (n + 1) * sizeof(*np));
			if (!np)
				return -ENOMEM;
			t->pending = np;
			t->pending[n] = inet_addr_new(t->family, e->dst, e->dport);
			if (!t->pending[n])
				return -ENOMEM;
			t->n_pending = ++n;
			t->has_deferred = true;
			t->deferred += half;
		}
	if (n - t->deferred != l->rqueue) {
		pr_err("fd %d of pid %d: %u connections in the accept queue, %zu found", fd, pid,
		       l->rqueue, n - t->deferred);
		return -EIO;
	}
	return 0;
}

/* A socket error the program has not read (poll's POLLERR: SO_ERROR would take it):
 * ECONNRESET, EPIPE, ECONNREFUSED, ETIMEDOUT... which one cannot be told without taking
 * it, and the replayed reset would give ECONNRESET whatever the program was to get. */
static int pending_error(int fd, pid_t pid)
{
	pr_err("fd %d of pid %d: a TCP socket with an error the program has not read yet "
	       "(SO_ERROR: a reset or a timeout): not supported", fd, pid);
	return -EOPNOTSUPP;
}

/* An unlisted socket's namespace is told by SIOCGSKNS alone: where that is refused
 * (a namespace of a user namespace above stasis's) and its holder is in another one than
 * stasis, it may be of either: could be made again in the wrong one. */
static bool unlisted_netns_unknown(const struct dump_ctx *c, int dup)
{
	int ns = ioctl(dup, SIOCGSKNS);
	if (ns >= 0) {
		close(ns);
		return false;
	}
	if (errno != EPERM)
		return false;
	uint64_t mine = self_ns_ino("net");
	return mine && mine != sk_netns_ino(c);
}

/* A socket sock_diag does not list: never bound, or closed and unhashed. */
static int dump_unlisted(const struct dump_ctx *c, int fd, int dup, TcpSk *t)
{
	struct tcp_info ti;
	memset(&ti, 0, sizeof(ti));
	int ret = tcp_getopt(dup, TCP_INFO, &ti, sizeof(ti));
	if (ret)
		return pr_errno(ret, "fd %d of pid %d: TCP_INFO", fd, c->pid);
	t->state = ti.tcpi_state;
	if (t->state != ST_CLOSE) {
		pr_err("fd %d of pid %d: a TCP socket in state %s that sock_diag does not list "
		       "(another network namespace?)", fd, c->pid, tcp_state_name(t->state));
		return -EIO;
	}
	struct pollfd p = { .fd = dup, .events = POLLIN | POLLRDHUP };
	if (poll(&p, 1, 0) < 0)
		return pr_perror("fd %d of pid %d: poll", fd, c->pid);
	if (p.revents & POLLERR)
		return pending_error(fd, c->pid);
	if (p.revents & POLLRDHUP)
		t->shutdown = SK_RCV_SHUTDOWN;
	t->has_shutdown = true;
	if (!(p.revents & POLLRDHUP) || !t->src)
		return 0;
	/* closed after it was a connection: what is left to read, then EOF */
	int hold = fcntl(dup, F_DUPFD_CLOEXEC, 0);
	if (hold < 0)
		return pr_perror("fd %d of pid %d: dup", fd, c->pid);
	return tcp_dump_repair(c, fd, hold, t);
}

static int tcp_classify(const struct dump_ctx *c, struct fd_ent *e)
{
	(void)c;
	if (!S_ISSOCK(e->st.st_mode))
		return 0;
	if ((e->sk_domain != AF_INET && e->sk_domain != AF_INET6) || e->sk_type != SOCK_STREAM ||
	    e->sk_proto != IPPROTO_TCP)
		return 0;
	e->kind = FILE_KIND__FILE_TCP_SK;
	return 1;
}

static int dump_state(const struct dump_ctx *c, const struct fd_ent *e, int dup, TcpSk *t,
		      const struct inet_diag_tab *tab)
{
	const struct inet_diag_ent *ent = inet_diag_find(tab, e->st.st_ino);
	int fd = e->fd;
	pid_t pid = c->ospid; /* (a live thread of a zombie leader: its /proc/PID/net) */

	if (!ent && unlisted_netns_unknown(c, dup)) {
		pr_err("fd %d of pid %d: a TCP socket sock_diag does not list, whose network "
		       "namespace stasis may not read (SIOCGSKNS refused: it may be another than "
		       "its task's): not supported", fd, c->pid);
		return -EOPNOTSUPP;
	}
	if (!ent)
		return dump_unlisted(c, fd, dup, t);
	t->state = ent->state;
	t->has_shutdown = true;
	t->shutdown = ent->shutdown;
	if (ent->v6only >= 0) {
		t->has_v6only = true;
		t->v6only = ent->v6only;
	}
	switch (t->state) {
	case ST_CLOSE: /* bound (sock_diag lists bound sockets too): as if unlisted */
		return dump_unlisted(c, fd, dup, t);
	case ST_LISTEN:
		t->has_backlog = true;
		t->backlog = ent->wqueue;
		return dump_pending(pid, fd, tab, ent, t);
	case ST_SYN_SENT: /* getpeername says ENOTCONN: the peer sock_diag shows */
		if (!t->dst && !(t->dst = inet_addr_new(t->family, ent->dst, ent->dport)))
			return pr_errno(-ENOMEM, "fd %d of pid %d", fd, pid);
		return 0;
	default:
		break;
	}
	if (!is_conn_state(t->state)) {
		pr_err("fd %d of pid %d is a TCP socket in state %s: not supported", fd, pid,
		       tcp_state_name(t->state));
		return -EOPNOTSUPP;
	}
	if (!t->dst || !t->src) {
		pr_err("fd %d of pid %d: a TCP connection without addresses", fd, pid);
		return -EIO;
	}
	struct pollfd p = { .fd = dup, .events = 0 };
	if (poll(&p, 1, 0) == 1 && (p.revents & POLLERR))
		return pending_error(fd, pid);
	/* An urgent mark (MSG_OOB) ahead of the reader, its byte taken or not: SIOCINQ
	 * counts the bytes up to it, sock_diag all of them (and a FIN received). Data only
	 * comes in: a count sock_diag took earlier cannot exceed today's. (An urgent byte
	 * at the read position is seen by the repair dump.) */
	int inq = 0;
	if (ioctl(dup, SIOCINQ, &inq) == 0 && inq >= 0 &&
	    ent->rqueue > (uint32_t)inq + (fin_rcvd(t->state) ? 1u : 0u))
		return tcp_refuse_urgent(fd, pid);
	int hold = fcntl(dup, F_DUPFD_CLOEXEC, 0);
	if (hold < 0)
		return pr_perror("fd %d of pid %d: dup", fd, pid);
	return tcp_dump_repair(c, fd, hold, t);
}

static int tcp_dump(const struct dump_ctx *c, const struct fd_ent *e, FileDesc *d)
{
	int family = e->sk_domain, ret; /* (collect_ent) */
	const struct inet_diag_tab *tab;

	_cleanup_close_ int dup = fd_dup(c, e);
	if (dup < 0)
		return dup;
	ret = inet_diag_table(c->sk, c->ospid, e->fd, dup, family, IPPROTO_TCP, &tab);
	if (!ret && !d->has_netns && !inet_diag_find(tab, e->st.st_ino) &&
	    unlisted_netns_unknown(c, dup)) {
		/* not in its holder's namespace, and SIOCGSKNS did not tell: stasis's? */
		const struct inet_diag_tab *mine;
		uint64_t ns;
		ret = inet_diag_table_mine(c->sk, family, IPPROTO_TCP, &ns, &mine);
		if (!ret && inet_diag_find(mine, e->st.st_ino) && ns != sk_netns_ino(c)) {
			d->has_netns = true;
			d->netns = ns;
			tab = mine;
		} else if (!ret) { /* (reading that one may have moved the tables) */
			ret = inet_diag_table(c->sk, c->ospid, e->fd, dup, family, IPPROTO_TCP,
					      &tab);
		}
	}
	if (ret)
		return ret;
	TcpSk *t = malloc(sizeof(*t));
	if (!t)
		return pr_errno(-ENOMEM, "fd %d of pid %d", e->fd, c->pid);
	tcp_sk__init(t);
	d->tcp_sk = t;
	t->ino = e->st.st_ino;
	t->family = (uint32_t)family;
	if ((ret = get_addr(dup, family, false, &t->src)) ||
	    (ret = get_addr(dup, family, true, &t->dst)))
		return pr_errno(ret, "fd %d of pid %d: TCP socket addresses", e->fd, c->pid);
	/* before repair mode, which changes SO_REUSEADDR */
	if ((ret = sockopt_dump(dup, c->pid, e->fd, &t->opts)))
		return ret;
	ret = dump_state(c, e, dup, t, tab);
	if (!ret) {
		char a[64], b[64];
		pr_debug("pid %d fd %d: TCP socket %llu %s %s -> %s", c->pid, e->fd,
			 (unsigned long long)t->ino, tcp_state_name(t->state),
			 inet_addr_str(family, t->src, a, sizeof(a)),
			 inet_addr_str(family, t->dst, b, sizeof(b)));
	}
	return ret;
}


/* The client end of pending connection @p of listener @l, in any process of the tree. */
static TcpSk *find_client(struct dump_ctx **procs, size_t n, const TcpSk *l, const InetAddr *p,
			  pid_t *pid, int *fd)
{
	for (size_t q = 0; q < n; q++) {
		const Files *f = procs[q]->files;
		for (size_t i = 0; i < f->n_files; i++) {
			TcpSk *t = f->files[i]->tcp_sk;
			if (f->files[i]->kind != FILE_KIND__FILE_TCP_SK || !t || t->family != l->family)
				continue;
			if (addr_eq(t->src, p) && t->dst && t->dst->port == l->src->port) {
				*pid = procs[q]->pid;
				*fd = fd_desc_fd(f, i);
				return t;
			}
		}
	}
	return NULL;
}

/* Entry @k of @l's pending connections gone (one of the half-open ones). */
static void drop_pending(TcpSk *l, size_t k)
{
	inet_addr__free_unpacked(l->pending[k], NULL);
	memmove(l->pending + k, l->pending + k + 1, (l->n_pending - k - 1) * sizeof(*l->pending));
	l->n_pending--;
	l->deferred--;
}

/* The clients of the connections waiting in accept queues (and of half-open ones: a
 * TCP_DEFER_ACCEPT listener waiting for their data): in the tree, an established
 * connection with nothing to read, rebuilt by a handshake. */
static int tcp_merge(struct dump_ctx **procs, size_t n)
{
	char a[64];
	int ret = sk_refuse_shared(procs, n, FILE_KIND__FILE_TCP_SK, "a TCP socket");
	if (!ret && n && procs[0]->sk)
		ret = tcp_settle(procs[0]->sk);
	if (!ret && n && procs[0]->sk)
		ret = tcp_check_pairs(procs[0]->sk);
	if (ret)
		return ret;
	for (size_t p = 0; p < n; p++) {
		Files *f = procs[p]->files;
		for (size_t i = 0; i < f->n_files; i++) {
			TcpSk *t = f->files[i]->tcp_sk;
			bool earlier = false;
			for (size_t q = 0; q < p && !earlier; q++)
				earlier = fd_desc_index(procs[q]->files, f->files[i]->id) >= 0;
			if (f->files[i]->kind == FILE_KIND__FILE_TCP_SK && t)
				t->has_first_holder = t->first_holder = !earlier;
		}
	}
	for (size_t p = 0; p < n; p++) {
		Files *f = procs[p]->files;
		for (size_t i = 0; i < f->n_files; i++) {
			TcpSk *l = f->files[i]->tcp_sk;
			if (f->files[i]->kind != FILE_KIND__FILE_TCP_SK || !l)
				continue;
			for (size_t k = 0; k < l->n_pending; k++) {
				pid_t cpid = 0;
				int cfd = -1;
				TcpSk *cl = find_client(procs, n, l, l->pending[k], &cpid, &cfd);
				if (k >= l->n_pending - l->deferred &&
				    (!cl || cl->state != ST_ESTABLISHED)) {
					/* half-open, its client not in the tree (the peer retries its
					 * handshake) or not established (its SYN is sent again) */
					drop_pending(l, k--);
					continue;
				}
				if (!cl) {
					pr_err("fd %d of pid %d is a listening TCP socket with a "
					       "connection from %s in its accept queue whose client is "
					       "outside the dumped tree: not supported (its handshake "
					       "cannot be made again)", fd_desc_fd(f, i), procs[p]->pid,
					       inet_addr_str((int)l->family, l->pending[k], a,
							     sizeof(a)));
					return -EOPNOTSUPP;
				}
				if (cl->state != ST_ESTABLISHED ||
				    (cl->repair && cl->repair->has_rcvq && cl->repair->rcvq.len)) {
					pr_err("fd %d of pid %d: the client of a connection waiting in an "
					       "accept queue is %s with data to read: not supported yet",
					       cfd, cpid, tcp_state_name(cl->state));
					return -EOPNOTSUPP;
				}
				cl->has_handshake = cl->handshake = true;
			}
		}
	}
	return 0;
}

/* ---- validate ----------------------------------------------------------------------- */

static int bad(const FileDesc *d, const char *why)
{
	pr_err("files image: TCP socket %u: %s", d->id, why);
	return -EINVAL;
}

static int validate_repair(const FileDesc *d, const TcpSk *t)
{
	const TcpRepair *r = t->repair;
	size_t sndq = r->has_sndq ? r->sndq.len : 0, rcvq = r->has_rcvq ? r->rcvq.len : 0;
	if (sndq > TCP_QUEUE_MAX || rcvq > TCP_QUEUE_MAX)
		return bad(d, "a queue longer than the limit");
	if (r->has_unsent && r->unsent > sndq)
		return bad(d, "more unsent bytes than its send queue holds");
	if (r->mss == 0 || r->mss > 65535)
		return bad(d, "an MSS out of range");
	if ((r->has_snd_wscale && r->snd_wscale > 14) || (r->has_rcv_wscale && r->rcv_wscale > 14))
		return bad(d, "a window scale over 14");
	if (t->state == ST_FIN_WAIT2 && sndq)
		return bad(d, "data in the send queue of FIN_WAIT2");
	if (t->state == ST_CLOSE && (sndq || (t->shutdown & SK_RCV_SHUTDOWN) == 0))
		return bad(d, "a closed connection with data to send, or not shut down");
	return 0;
}

static int tcp_validate(const FileDesc *d, const struct blob_reader *blobs)
{
	(void)blobs;
	const TcpSk *t = d->tcp_sk;
	int ret;

	if (!t)
		return bad(d, "no socket data");
	if (t->family != AF_INET && t->family != AF_INET6) {
		pr_err("files image: TCP socket %u: address family %u is not AF_INET or AF_INET6",
		       d->id, t->family);
		return -EINVAL;
	}
	int fam = (int)t->family;
	if ((ret = inet_addr_check(t->src, fam, "TCP socket source")) ||
	    (ret = inet_addr_check(t->dst, fam, "TCP socket peer")))
		return ret;
	for (size_t i = 0; i < t->n_pending; i++)
		if ((ret = inet_addr_check(t->pending[i], fam, "TCP pending connection")))
			return ret;
	if (t->has_shutdown && t->shutdown > 3)
		return bad(d, "bad shutdown bits");
	if (t->has_v6only && fam != AF_INET6)
		return bad(d, "IPV6_V6ONLY on an IPv4 socket");
	bool conn = is_conn_state(t->state);
	switch (t->state) {
	case ST_CLOSE:
		if (t->repair && (!t->src || !(t->has_shutdown)))
			return bad(d, "a closed connection without its address");
		break;
	case ST_LISTEN:
		if (!t->src || !t->has_backlog || t->backlog > TCP_BACKLOG_MAX ||
		    t->n_pending > TCP_PENDING_MAX || t->deferred > t->n_pending ||
		    t->n_pending - t->deferred > t->backlog + 1u)
			return bad(d, "a listening socket without an address or with a bad backlog");
		break;
	case ST_SYN_SENT:
		if (!t->dst)
			return bad(d, "a connecting socket without a peer");
		break;
	default:
		if (!conn) {
			pr_err("files image: TCP socket %u: impossible state %u", d->id, t->state);
			return -EINVAL;
		}
		if (!t->src || !t->dst || !t->repair)
			return bad(d, "a connection without addresses or repair state");
	}
	if (t->repair && !conn && t->state != ST_CLOSE)
		return bad(d, "repair state on a socket that is no connection");
	if (t->n_pending && t->state != ST_LISTEN)
		return bad(d, "pending connections on a socket that does not listen");
	if (t->handshake && t->state != ST_ESTABLISHED)
		return bad(d, "a handshake for a socket that is no connection");
	if (t->opts) {
		char what[64];
		snprintf(what, sizeof(what), "files image: TCP socket %u", d->id);
		if ((ret = sockopt_validate(t->opts, fam, SOCK_STREAM, IPPROTO_TCP, what)))
			return ret;
	}
	return t->repair ? validate_repair(d, t) : 0;
}

/* ---- restore -------------------------------------------------------------------------- */

/* A segment from the peer @from to @to (our socket), built and sent through a raw
 * socket: what the peer had sent before the dump (its FIN, its ACK of our FIN, its RST),
 * so that the restored socket reaches its state without anything sent to the peer. */
static int inject(int family, const InetAddr *from, const InetAddr *to, uint32_t seq,
		  uint32_t ack, uint8_t flags, uint16_t win, bool tstamp, int netns, const char *what)
{
	uint8_t tcp[32];
	size_t tlen = tstamp ? 32 : 20;
	const uint8_t *sa = from->addr.data, *da = to->addr.data;
	bool v4 = inet_wire_v4(family == AF_INET ? 4 : 16, &sa, &da);

	memset(tcp, 0, sizeof(tcp));
	struct tcphdr *th = (struct tcphdr *)tcp;
	th->source = htons((uint16_t)from->port);
	th->dest = htons((uint16_t)to->port);
	th->seq = htonl(seq);
	th->ack_seq = htonl(ack);
	th->doff = (uint16_t)(tlen / 4);
	tcp[13] = flags;
	th->window = htons(win);
	if (tstamp) { /* NOP NOP TS: tsval 0 is never refused by PAWS and not remembered */
		tcp[20] = 1;
		tcp[21] = 1;
		tcp[22] = 8;
		tcp[23] = 10;
	}
	th->check = htons(inet_l4_csum(v4, sa, da, IPPROTO_TCP, tcp, tlen, tlen));
	/* in the socket's network namespace (@netns; -1: ours) */
	_cleanup_close_ int raw = netns >= 0 ? ns_socket_in(-1, netns, v4 ? AF_INET : AF_INET6,
							 SOCK_RAW | SOCK_CLOEXEC, IPPROTO_RAW,
							 "restore", what)
					     : socket(v4 ? AF_INET : AF_INET6, SOCK_RAW | SOCK_CLOEXEC,
						      IPPROTO_RAW);
	if (raw < 0)
		return netns >= 0 ? raw : pr_perror("restore %s: a raw socket to replay the peer's "
						    "segment", what);
	/* marked: through the network lock of a connection whose peer is outside */
	unsigned int mark = NETLOCK_INJECT_MARK;
	if (setsockopt(raw, SOL_SOCKET, SO_MARK, &mark, sizeof(mark)))
		return pr_perror("restore %s: SO_MARK on the raw socket", what);
	int ret = inet_raw_send(raw, v4, sa, da, IPPROTO_TCP, 64, 0, tcp, tlen);
	return ret ? pr_errno(ret, "restore %s: replay the peer's segment", what) : 0;
}

static int bind_to(int sk, int family, const InetAddr *a, const char *what)
{
	struct sockaddr_storage ss;
	socklen_t l = inet_sockaddr(family, a, &ss);
	if (bind(sk, (struct sockaddr *)&ss, l))
		return pr_perror("restore %s: bind", what);
	return 0;
}

/* The source address the routes give for a connection to @peer (a UDP socket connected
 * there, nothing sent), into @ss; -errno. */
static int route_source(int family, const InetAddr *peer, struct sockaddr_storage *ss)
{
	_cleanup_close_ int u = socket(family, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	socklen_t l = inet_sockaddr(family, peer, ss);
	if (u < 0 || connect(u, (struct sockaddr *)ss, l))
		return -errno;
	l = sizeof(*ss);
	return getsockname(u, (struct sockaddr *)ss, &l) ? -errno : 0;
}

/* After a connect: @sk's address and port are @t's own (the routes could give another
 * address than the one the dump recorded). */
static int check_source(int sk, const TcpSk *t, const char *what)
{
	struct sockaddr_storage ss;
	socklen_t l = sizeof(ss);
	if (getsockname(sk, (struct sockaddr *)&ss, &l) || !inet_addr_eq_sockaddr(t->src, &ss, true)) {
		pr_err("restore %s: connected from another address than its own", what);
		return -EADDRNOTAVAIL;
	}
	return 0;
}

/* Where a connection binds. An IPv6 socket bound to an address of its own (not the any
 * address, not v4-mapped) by bind() is IPV6_V6ONLY (the kernel sets it), one that got
 * its address from connect() is not: for that one the port is bound on the any address
 * and the connect (in repair mode) takes the address from the routes, when they give
 * the recorded one (checked after the connect); else the plain bind (and IPV6_V6ONLY
 * on, the only difference). */
static const InetAddr *bind_addr(const TcpSk *t, const InetAddr *peer, InetAddr *any)
{
	static const uint8_t zero[16];
	int64_t v6only = 1;
	struct sockaddr_storage ss;
	int fam = (int)t->family;
	if (fam != AF_INET6 || !peer || sockopt_find(t->opts, SOL_IPV6, IPV6_V6ONLY, &v6only) ||
	    v6only || inet_addr_is_any(t->src) || inet_is_v4_mapped(t->src->addr.data) ||
	    route_source(fam, peer, &ss) || !inet_addr_eq_sockaddr(t->src, &ss, false))
		return t->src;
	*any = *t->src;
	any->addr.data = (uint8_t *)zero;
	return any;
}

static int bind_conn(int sk, const TcpSk *t, const InetAddr *peer, const char *what)
{
	InetAddr any;
	return bind_to(sk, (int)t->family, bind_addr(t, peer, &any), what);
}

/* Queue @len bytes of @p on repair queue @q (sent in pieces: an skb per call). */
static int queue_data(int sk, int q, const uint8_t *p, size_t len, const char *what)
{
	int ret = q == TCP_NO_QUEUE ? 0 : tcp_opt(sk, TCP_REPAIR_QUEUE, q);
	if (ret)
		return pr_errno(ret, "restore %s: TCP_REPAIR_QUEUE", what);
	size_t off = 0;
	while (off < len) {
		size_t chunk = MIN(len - off, (size_t)(q == TCP_RECV_QUEUE ? 32768 : 65536));
		ssize_t r = send(sk, p + off, chunk, MSG_DONTWAIT | MSG_NOSIGNAL);
		struct pollfd pf = { .fd = sk, .events = POLLOUT };
		if (r < 0 && errno == EAGAIN && q == TCP_NO_QUEUE &&
		    poll(&pf, 1, TCP_CONNECT_WAIT_MS) == 1)
			continue; /* unsent data: the send buffer drains to the peer */
		if (r <= 0)
			return pr_perror("restore %s: queue %zu bytes of the %s queue (at %zu)", what,
					 len, q == TCP_RECV_QUEUE ? "receive" : "send", off);
		off += (size_t)r;
	}
	return 0;
}

static int set_options(int sk, const TcpRepair *r, const char *what)
{
	struct tcp_repair_opt o[4];
	int n = 0;
	o[n++] = (struct tcp_repair_opt){ TCPOPT_MAXSEG, r->mss };
	if (r->has_snd_wscale)
		o[n++] = (struct tcp_repair_opt){ TCPOPT_WINDOW, r->snd_wscale | r->rcv_wscale << 16 };
	if (r->sack)
		o[n++] = (struct tcp_repair_opt){ TCPOPT_SACK_PERMITTED, 0 };
	if (r->tstamp)
		o[n++] = (struct tcp_repair_opt){ TCPOPT_TIMESTAMP, 0 };
	if (setsockopt(sk, IPPROTO_TCP, TCP_REPAIR_OPTIONS, o, (socklen_t)(n * sizeof(o[0]))))
		return pr_perror("restore %s: TCP_REPAIR_OPTIONS", what);
	if (r->has_ts_val && tcp_opt(sk, TCP_TIMESTAMP, (int)r->ts_val))
		return pr_perror("restore %s: TCP_TIMESTAMP", what);
	return 0;
}

static int set_window(int sk, const TcpRepair *r, uint32_t rcv_nxt, const char *what)
{
	if (!r->has_snd_wnd)
		return 0;
	struct tcp_repair_window w = {
		.snd_wl1 = r->snd_wl1, .snd_wnd = r->snd_wnd, .max_window = r->max_window,
		.rcv_wnd = r->rcv_wnd, .rcv_wup = r->rcv_wup,
	};
	/* the kernel wants them at or before what is received so far (a FIN not yet) */
	if ((int32_t)(w.rcv_wup - rcv_nxt) > 0)
		w.rcv_wup = rcv_nxt;
	if ((int32_t)(w.snd_wl1 - (rcv_nxt + w.rcv_wnd)) > 0)
		w.snd_wl1 = rcv_nxt;
	if (setsockopt(sk, IPPROTO_TCP, TCP_REPAIR_WINDOW, &w, sizeof(w)))
		return pr_perror("restore %s: TCP_REPAIR_WINDOW", what);
	return 0;
}

/* Buffers that hold the queues: a queue refilled in repair mode must fit at once (a
 * sender waiting for memory transmits). The dumped sizes, locked, when a queue needs
 * more than a new socket has. */
static int set_bufs(int sk, const TcpRepair *r, size_t sndq, size_t rcvq, const char *what)
{
	int cur = 0;
	socklen_t l = sizeof(cur);
	if (sndq && !getsockopt(sk, SOL_SOCKET, SO_SNDBUF, &cur, &l) && (size_t)cur / 2 < sndq) {
		int v = (int)MAX((size_t)(r->has_sndbuf ? r->sndbuf : 0), 2 * sndq + 65536) / 2;
		int e = sockopt_force_buf(sk, SO_SNDBUF, v);
		if (e)
			return pr_errno(e, "restore %s: SO_SNDBUFFORCE %d", what, v);
	}
	l = sizeof(cur);
	if (rcvq && !getsockopt(sk, SOL_SOCKET, SO_RCVBUF, &cur, &l) && (size_t)cur / 2 < rcvq) {
		int v = (int)MAX((size_t)(r->has_rcvbuf ? r->rcvbuf : 0), 2 * rcvq + 65536) / 2;
		int e = sockopt_force_buf(sk, SO_RCVBUF, v);
		if (e)
			return pr_errno(e, "restore %s: SO_RCVBUFFORCE %d", what, v);
	}
	return 0;
}

struct conn_seqs {
	uint32_t snd_una, snd_nxt, rcv_nxt;
	uint16_t peer_win;
};

/* The peer's segment @flags (FIN, ACK of our FIN, RST) at the current sequence numbers. */
static int peer_says(int netns, const TcpSk *t, const InetAddr *peer, struct conn_seqs *s,
		     uint8_t flags, bool ack_all, const char *what)
{
	uint32_t ack = ack_all ? s->snd_nxt : s->snd_una;
	int ret = inject((int)t->family, peer, t->src, s->rcv_nxt, ack, flags, s->peer_win,
			 t->repair->tstamp, netns, what);
	if (ret)
		return ret;
	if (flags & TH_FIN)
		s->rcv_nxt++;
	if (ack_all)
		s->snd_una = s->snd_nxt;
	return 0;
}

/* Our FIN, queued as sent (repair mode, send queue). */
static int our_fin(int sk, struct conn_seqs *s, const char *what)
{
	int ret = tcp_opt(sk, TCP_REPAIR_QUEUE, TCP_SEND_QUEUE);
	if (ret || shutdown(sk, SHUT_WR))
		return pr_perror("restore %s: our FIN", what);
	s->snd_nxt++;
	return 0;
}

/* The FINs (and RST) the state implies, in the order they came. */
static int replay_close(int sk, int netns, const TcpSk *t, const InetAddr *peer,
			struct conn_seqs *s, bool fin_later, const char *what)
{
	unsigned int st = t->state;
	int ret = 0;
	if (st == ST_CLOSING) {
		ret = our_fin(sk, s, what);
		if (!ret)
			ret = peer_says(netns, t, peer, s, TH_FIN | TH_ACK, false, what);
	} else {
		if (fin_rcvd(st))
			ret = peer_says(netns, t, peer, s, TH_FIN | TH_ACK, false, what);
		if (!ret && fin_sent(st) && !fin_later)
			ret = our_fin(sk, s, what);
		if (!ret && st == ST_FIN_WAIT2)
			ret = peer_says(netns, t, peer, s, TH_ACK, true, what);
	}
	if (!ret && st == ST_CLOSE)
		ret = peer_says(netns, t, peer, s, TH_RST | TH_ACK, false, what);
	if (!ret && st == ST_CLOSE) {
		int err = 0;
		socklen_t l = sizeof(err);
		(void)getsockopt(sk, SOL_SOCKET, SO_ERROR, &err, &l); /* read before the dump */
	}
	return ret;
}

/* How much of the send queue restore_conn() queues in repair mode: what was sent, as
 * sent (the peer may have received it: its ACKs must not acknowledge data we did not
 * send; retransmitted on timeout). The unsent rest send_unsent() sends normally once no
 * peer of the tree is in repair mode (a socket in repair mode drops what it receives). */
static size_t repair_queued(const TcpSk *t)
{
	const TcpRepair *r = t->repair;
	size_t sndq = r->has_sndq ? r->sndq.len : 0, unsent = r->has_unsent ? r->unsent : 0;
	return sndq - unsent;
}

/* The unsent part of the send queue, sent normally now (repair mode off), then our FIN
 * if it was queued behind it. */
static int send_unsent(int sk, const TcpSk *t, const char *what)
{
	const TcpRepair *r = t->repair;
	size_t sndq = r->has_sndq ? r->sndq.len : 0;
	size_t left = sndq - repair_queued(t);
	int ret;

	if (!left || t->state == ST_CLOSE)
		return 0;
	if ((ret = queue_data(sk, TCP_NO_QUEUE, r->sndq.data + sndq - left, left, what)))
		return ret;
	if (fin_sent(t->state) && shutdown(sk, SHUT_WR))
		return pr_perror("restore %s: shutdown after the unsent data", what);
	return 0;
}

/* The peer of a connection: a closed one's is no longer known, any other address will
 * do (@fake). */
static const InetAddr *conn_peer(const TcpSk *t, InetAddr *fake)
{
	if (t->dst)
		return t->dst;
	inet_addr__init(fake);
	fake->addr = t->src->addr;
	fake->port = t->src->port == 1 ? 2 : 1;
	return fake;
}

/* The sequence numbers of a connection rebuilt by restore_conn, before the FINs: its
 * queues in place, what was unsent not yet queued. */
static void conn_seqs(const TcpSk *t, struct conn_seqs *s)
{
	const TcpRepair *r = t->repair;
	size_t sndq = r->has_sndq ? r->sndq.len : 0, rcvq = r->has_rcvq ? r->rcvq.len : 0;
	size_t unsent = r->has_unsent ? r->unsent : 0;
	unsigned int st = t->state;

	s->snd_una = r->snd_seq - (uint32_t)sndq - (fin_sent(st) ? 1u : 0u);
	s->rcv_nxt = r->rcv_seq - (fin_rcvd(st) ? 1u : 0u);
	if (st == ST_CLOSE) /* nothing queued to send, no FIN counted */
		s->snd_una = r->snd_seq, s->rcv_nxt = r->rcv_seq;
	s->snd_nxt = s->snd_una + (uint32_t)repair_queued(t);
	(void)unsent;
	s->peer_win = (uint16_t)MIN(65535u, r->snd_wnd >> (r->has_snd_wscale ? r->snd_wscale : 0));
	(void)rcvq;
}

/* A connection in repair mode (@sk new, bound nowhere), first part: sequence numbers,
 * addresses, options, both queues (but the unsent data), window. Repair mode stays on:
 * finish_conn() does the rest once the other sockets of the process exist. */
static int restore_conn(int sk, const TcpSk *t, const char *what)
{
	const TcpRepair *r = t->repair;
	int fam = (int)t->family, ret;
	size_t sndq = r->has_sndq ? r->sndq.len : 0, rcvq = r->has_rcvq ? r->rcvq.len : 0;
	InetAddr fake;
	const InetAddr *peer = conn_peer(t, &fake);
	struct conn_seqs s;

	conn_seqs(t, &s);
	ret = tcp_opt(sk, TCP_REPAIR, 1);
	if (ret == -EPERM) {
		pr_err("restore %s: TCP repair mode needs CAP_NET_ADMIN over the network namespace",
		       what);
		return ret;
	}
	if (!ret && !(ret = tcp_opt(sk, TCP_REPAIR_QUEUE, TCP_SEND_QUEUE)))
		ret = tcp_opt(sk, TCP_QUEUE_SEQ, (int)s.snd_una);
	if (!ret && !(ret = tcp_opt(sk, TCP_REPAIR_QUEUE, TCP_RECV_QUEUE)))
		ret = tcp_opt(sk, TCP_QUEUE_SEQ, (int)(s.rcv_nxt - (uint32_t)rcvq));
	if (ret)
		return pr_errno(ret, "restore %s: TCP repair sequence numbers", what);
	if ((ret = bind_conn(sk, t, peer, what)))
		return ret;
	struct sockaddr_storage ss;
	socklen_t l = inet_sockaddr(fam, peer, &ss);
	if (connect(sk, (struct sockaddr *)&ss, l))
		return pr_perror("restore %s: connect in repair mode", what);
	if ((ret = check_source(sk, t, what)))
		return ret;
	if ((ret = set_options(sk, r, what)) || (ret = set_bufs(sk, r, sndq, rcvq, what)))
		return ret;
	if (rcvq && (ret = queue_data(sk, TCP_RECV_QUEUE, r->rcvq.data, rcvq, what)))
		return ret;
	if (repair_queued(t) &&
	    (ret = queue_data(sk, TCP_SEND_QUEUE, r->sndq.data, repair_queued(t), what)))
		return ret;
	return set_window(sk, r, s.rcv_nxt, what);
}

/* What the socket answers to the segments replay_close() gives it, dropped until the tree
 * runs (netlock_drop_reply; a v4-mapped connection is IPv4 on the wire). */
static int drop_reply(int netns, pid_t pid, const TcpSk *t, const InetAddr *peer)
{
	const uint8_t *la = t->src->addr.data, *ra = peer->addr.data;
	bool v4 = inet_wire_v4(t->src->addr.len, &la, &ra);
	return netlock_drop_reply(netns, pid, !v4, la, (uint16_t)t->src->port, ra,
				  (uint16_t)peer->port);
}

/* Once the injected FIN made the socket's state (it arrives through the loopback, maybe
 * after sendto returned), its answer (the ACK, which the kernel may delay up to 200 ms:
 * TCP_QUICKACK sends one due unless the queue holds data, and the unlock waits for the
 * rest, netlock_drop_reply) goes while drop_reply's rule holds: later, it would reach a
 * peer gone with the dumped namespace, whose kernel answers with a reset. A state not
 * reached in a second fails the restore. */
static int flush_answer(int sk, unsigned int state, const char *what)
{
	for (int i = 0; tcp_state_of(sk) != state; i++) {
		if (i == 1000) {
			pr_err("restore %s: the socket is %s after the replayed segments, not %s",
			       what, tcp_state_name(tcp_state_of(sk)), tcp_state_name(state));
			return -EIO;
		}
		usleep(1000);
	}
	(void)tcp_opt(sk, TCP_QUICKACK, 1);
	return 0;
}

/* The second part: the FINs (and RST) the state implies, repair mode off, the unsent
 * data. Segments our socket answers with (an ACK of the peer's FIN) go to the peer: in
 * the restore child this runs once every socket of the process exists. */
static int finish_conn(int sk, int netns, pid_t pid, const TcpSk *t, const char *what)
{
	const TcpRepair *r = t->repair;
	size_t sndq = r->has_sndq ? r->sndq.len : 0;
	size_t unsent = r->has_unsent ? r->unsent : 0;
	bool fin_later = fin_sent(t->state) && unsent;
	InetAddr fake;
	const InetAddr *peer = conn_peer(t, &fake);
	struct conn_seqs s;
	int ret;

	conn_seqs(t, &s);
	if (t->state == ST_CLOSING && unsent) {
		/* our FIN behind data never sent, and the peer's FIN came: the data is queued
		 * as sent (retransmitted on timeout) so that our FIN can precede theirs */
		ret = queue_data(sk, TCP_SEND_QUEUE, r->sndq.data + sndq - unsent, unsent, what);
		if (ret)
			return ret;
		s.snd_nxt += (uint32_t)unsent;
		fin_later = false;
		unsent = 0;
	}
	if (t->state != ST_ESTABLISHED && (ret = drop_reply(netns, pid, t, peer)))
		return ret;
	if ((ret = replay_close(sk, netns, t, peer, &s, fin_later, what)))
		return ret;
	if ((ret = tcp_opt(sk, TCP_REPAIR, TCP_REPAIR_OFF_NO_WP)))
		return pr_errno(ret, "restore %s: TCP repair mode off", what);
	/* (the peer's FIN injected: our ACK of it; our FIN behind unsent data not yet) */
	unsigned int expect = !fin_later ? t->state : fin_rcvd(t->state) ? ST_CLOSE_WAIT
									  : ST_ESTABLISHED;
	if (fin_rcvd(t->state) && (ret = flush_answer(sk, expect, what)))
		return ret;
	return reuse_again(sk, t, what);
}

/* The connection's last part, every peer of the tree out of repair mode (a socket in
 * repair mode drops what it receives): the unsent data while the buffers are the large
 * ones set_bufs() made, then the options (the dumped buffer sizes among them). */
static int send_rest(int sk, const TcpSk *t, const char *what)
{
	int ret = t->state == ST_CLOSING ? 0 : send_unsent(sk, t, what);
	return ret ? ret : set_opts(sk, t, SOCKOPT_LATE, what);
}

static int new_socket(const TcpSk *t, const char *what)
{
	int sk = socket((int)t->family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, IPPROTO_TCP);
	if (sk < 0)
		return pr_perror("restore %s: socket", what);
	int on = t->v6only, ret = 0;
	if (t->family == AF_INET6 && t->has_v6only &&
	    setsockopt(sk, IPPROTO_IPV6, IPV6_V6ONLY, &on, sizeof(on)))
		ret = pr_perror("restore %s: IPV6_V6ONLY", what);
	if (!ret)
		ret = set_opts(sk, t, SOCKOPT_EARLY, what);
	if (ret) {
		close(sk);
		return ret;
	}
	return sk;
}

/* Bind @sk where @t was: in repair mode when allowed (SK_FORCE_REUSE: a port a socket
 * in TIME_WAIT or the dumped tree's own listener still holds), else plainly. */
static int bind_forced(int sk, const TcpSk *t, const char *what)
{
	InetAddr any;
	bool rep = tcp_opt(sk, TCP_REPAIR, 1) == 0;
	/* (a client waiting in an accept queue connects again: bound as bind_conn) */
	int ret = bind_to(sk, (int)t->family, bind_addr(t, t->handshake ? t->dst : NULL, &any),
			  what);
	if (rep && tcp_opt(sk, TCP_REPAIR, TCP_REPAIR_OFF_NO_WP) && !ret)
		ret = pr_perror("restore %s: TCP repair mode off", what);
	if (!ret && rep)
		ret = reuse_again(sk, t, what);
	return ret;
}

static int apply_shutdown(int sk, const TcpSk *t, const char *what)
{
	unsigned int want = t->has_shutdown ? t->shutdown : 0;
	if (t->repair) /* the replayed FINs did it */
		want &= (fin_rcvd(t->state) || t->state == ST_CLOSE ? 0 : SK_RCV_SHUTDOWN) |
			(fin_sent(t->state) ? 0 : SK_SEND_SHUTDOWN);
	if (!want)
		return 0;
	int how = want == 3 ? SHUT_RDWR : want == SK_RCV_SHUTDOWN ? SHUT_RD : SHUT_WR;
	if (shutdown(sk, how) && errno != ENOTCONN)
		return pr_perror("restore %s: shutdown(%d)", what, how);
	return 0;
}

static int restore_state(int sk, const TcpSk *t, const char *what)
{
	int ret = 0;

	if (t->handshake) /* bound now, connected by the final hook */
		return bind_forced(sk, t, what);
	if (t->repair)
		ret = restore_conn(sk, t, what);
	else if (t->state == ST_LISTEN) {
		ret = bind_forced(sk, t, what);
		if (!ret && listen(sk, (int)t->backlog))
			ret = pr_perror("restore %s: listen(%u)", what, t->backlog);
	} else if (t->src) /* SYN_SENT: its connect() by the final hook */
		ret = bind_forced(sk, t, what);
	if (!ret)
		ret = apply_shutdown(sk, t, what);
	if (!ret && !t->repair) /* a connection's: once finished */
		ret = set_opts(sk, t, SOCKOPT_LATE, what);
	return ret;
}

static const char *sk_what(const TcpSk *t, int target, char *buf, size_t len)
{
	char a[64], b[64];
	snprintf(buf, len, "fd %d (TCP %s %s -> %s)", target, tcp_state_name(t->state),
		 inet_addr_str((int)t->family, t->src, a, sizeof(a)),
		 inet_addr_str((int)t->family, t->dst, b, sizeof(b)));
	return buf;
}

static int tcp_open(const FileDesc *d, int target, int rootfd, const struct blob_reader *blobs)
{
	(void)rootfd;
	(void)blobs;
	char what[200];
	const TcpSk *t = d->tcp_sk;
	sk_what(t, target, what, sizeof(what));
	_cleanup_close_ int sk = new_socket(t, what);
	if (sk < 0)
		return sk;
	/* a connection is finished by the final hook, once every socket of the tree
	 * exists (its peer may be one of them) */
	int ret = restore_state(sk, t, what);
	if (ret)
		return ret;
	return take_fd(&sk);
}

/* A client waiting in a listener's accept queue: a new handshake from its old address
 * (the child bound it), on @dup once every listener of the tree exists; what it had to
 * send is sent again. */
static int final_handshake(int dup, const TcpSk *t, const char *what)
{
	struct sockaddr_storage ss;
	int fl = fcntl(dup, F_GETFL), ret = 0, err = 0;
	socklen_t el = sizeof(err);

	if (tcp_state_of(dup) != ST_CLOSE)
		return 0; /* a description shared by several tasks: done at its first */
	if (fl < 0 || fcntl(dup, F_SETFL, fl | O_NONBLOCK) < 0)
		return pr_perror("restore %s: O_NONBLOCK", what);
	socklen_t l = inet_sockaddr((int)t->family, t->dst, &ss);
	struct pollfd p = { .fd = dup, .events = POLLOUT };
	if (connect(dup, (struct sockaddr *)&ss, l) && errno != EINPROGRESS)
		ret = pr_perror("restore %s: connect to its listener again", what);
	else if (poll(&p, 1, TCP_CONNECT_WAIT_MS) != 1 ||
		 getsockopt(dup, SOL_SOCKET, SO_ERROR, &err, &el) || err) {
		pr_err("restore %s: the handshake with its listener failed: %s", what,
		       err ? strerror(err) : "timed out");
		ret = -ECONNREFUSED;
	}
	if (!ret)
		ret = check_source(dup, t, what);
	const TcpRepair *r = t->repair;
	if (!ret && r && r->has_sndq && r->sndq.len)
		ret = queue_data(dup, TCP_NO_QUEUE, r->sndq.data, r->sndq.len, what);
	if (fcntl(dup, F_SETFL, fl) < 0 && !ret)
		ret = pr_perror("restore %s: status flags", what);
	if (!ret)
		ret = apply_shutdown(dup, t, what);
	return ret ? ret : set_opts(dup, t, SOCKOPT_LATE, what);
}

/* A connecting socket's connect() again, a new SYN, on @dup: never blocking (the status
 * flags are the description's, the task's). A description shared by several tasks is
 * connected at its first. */
static int final_connect(int dup, const TcpSk *t, const char *what)
{
	struct sockaddr_storage ss;
	int fl = fcntl(dup, F_GETFL), ret = 0;
	if (tcp_state_of(dup) != ST_CLOSE)
		return 0;
	if (fl < 0 || fcntl(dup, F_SETFL, fl | O_NONBLOCK) < 0)
		return pr_perror("restore %s: O_NONBLOCK", what);
	socklen_t l = inet_sockaddr((int)t->family, t->dst, &ss);
	if (connect(dup, (struct sockaddr *)&ss, l) && errno != EINPROGRESS)
		ret = pr_perror("restore %s: connect", what);
	if (fcntl(dup, F_SETFL, fl) < 0 && !ret)
		ret = pr_perror("restore %s: status flags", what);
	return ret;
}

/* Every task rebuilt, in stasis: the connections of task @pid still in repair mode
 * (a description shared by several tasks is finished at its first) are finished on a
 * pidfd_getfd duplicate, the peer's segments injected in the socket's namespace; the
 * connecting sockets send their SYN. */
/* One TCP description of task @pid at fd @target, on a pidfd_getfd duplicate: pass 0
 * the handshakes of the clients of accept queues, 1 what the connections have left to
 * send, 2 the connecting sockets, 3 (the remote hook) the connections in repair mode. */
static int final_one(int pidfd, pid_t pid, const FileDesc *d, int target, int pass)
{
	const TcpSk *t = d->tcp_sk;
	char what[200];
	int rep = 0;

	sk_what(t, target, what, sizeof(what));
	_cleanup_close_ int dup = sys_pidfd_getfd(pidfd, target, 0);
	if (dup < 0)
		return pr_perror("restore %s of pid %d: pidfd_getfd", what, pid);
	if (pass == 0)
		return final_handshake(dup, t, what);
	if (pass == 1)
		return send_rest(dup, t, what);
	if (pass == 2)
		return final_connect(dup, t, what);
	if (tcp_getopt(dup, TCP_REPAIR, &rep, sizeof(rep)))
		return pr_perror("restore %s of pid %d: TCP_REPAIR", what, pid);
	if (!rep)
		return 0; /* finished through another task */
	_cleanup_close_ int ns = ioctl(dup, SIOCGSKNS);
	if (ns < 0)
		return pr_perror("restore %s of pid %d: its network namespace", what, pid);
	return finish_conn(dup, ns, pid, t, what);
}

/* The pass of final_one() description @t belongs to, -1 for none. */
static int pass_of(const TcpSk *t)
{
	if (t->handshake)
		return 0;
	if (t->repair)
		return 1;
	return t->state == ST_SYN_SENT ? 2 : -1;
}

/* Passes @first..@last of the TCP descriptions of task @pid (table @f). */
static int tcp_passes(const Files *f, pid_t pid, int first, int last)
{
	_cleanup_close_ int pidfd = -1;
	for (int pass = first; pass <= last; pass++)
		for (size_t i = 0; i < f->n_files; i++) {
			const FileDesc *d = f->files[i];
			const TcpSk *t = d->tcp_sk;
			int target = fd_desc_fd(f, i);
			if (d->kind != FILE_KIND__FILE_TCP_SK || !t || target < 0)
				continue;
			int p = pass_of(t);
			if (!(pass == p || (pass == 3 && p == 1)) || (pass == 1 && !t->first_holder))
				continue;
			if (pidfd < 0 && (pidfd = sys_pidfd_open(pid, 0)) < 0)
				return pr_perror("restore pid %d: pidfd", pid);
			int ret = final_one(pidfd, pid, d, target, pass);
			if (ret)
				return ret;
		}
	return 0;
}

/* Every task exists, task @pid being rebuilt: its connections out of repair mode (a
 * description shared by several tasks at its first), the FINs their state implies
 * replayed; nothing sent but ACKs, which a peer still in repair mode may drop. */
static int tcp_remote(const Files *f, pid_t pid)
{
	return tcp_passes(f, pid, 3, 3);
}

/* Every task rebuilt, none running yet, no socket of the tree in repair mode: the
 * clients of accept queues connect again first (before a connecting socket could take
 * their place), then the connections send what they had left to send (the first holder
 * of a shared description), then the connecting sockets send their SYN. */
static int tcp_final(struct rst_ctx *c)
{
	return tcp_passes(c->files, c->pid, 0, 2);
}

void tcp_close_connections(Files *f)
{
	for (size_t i = 0; i < f->n_files; i++) {
		TcpSk *t = f->files[i]->kind == FILE_KIND__FILE_TCP_SK ? f->files[i]->tcp_sk : NULL;
		if (!t || !t->repair || !is_conn_state(t->state) || t->handshake)
			continue;
		t->state = ST_CLOSE;
		t->has_shutdown = true;
		t->shutdown = SK_RCV_SHUTDOWN | SK_SEND_SHUTDOWN;
		t->repair->sndq.len = 0;
		t->repair->has_unsent = false;
	}
}

const struct fd_ops fd_tcp_ops = {
	.name = "TCP socket",
	.kind = FILE_KIND__FILE_TCP_SK,
	.flags = FD_OPS_NETNS,
	.classify = tcp_classify,
	.dump = tcp_dump,
	.merge = tcp_merge,
	.validate = tcp_validate,
	.open = tcp_open,
	.remote = tcp_remote,
	.final = tcp_final,
};
