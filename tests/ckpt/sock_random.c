// stasis-test: timeout=90 nonroot-known=TCP repair mode needs CAP_NET_ADMIN over the net namespace
// stasis-test: rootless-known=TCP repair mode needs CAP_NET_ADMIN over the host's net namespace
/* Random TCP and UDP sockets, IPv4 and IPv6 over loopback, grown from fixed seeds in one
 * process: connections (both ends here) with data queued each way, partly read, half
 * closed (shutdown) or closed on one side (the other left in CLOSE_WAIT), listeners with
 * connections not accepted yet, sockets bound and not listening,
 * sockets never bound, UDP sockets with datagrams queued from several senders (connected
 * or not), and socket options set at random (SO_*, IP_*, IPV6_*, TCP_*: keepalive,
 * buffers, priority, TOS/TTL, cork, congestion control, linger...). Recorded before the
 * checkpoint: every socket's options (the whole table, set or not), names, peers, TCP
 * state and negotiated options. After the restore: the same, then every byte queued in
 * each direction comes in order with no gap or duplicate and the end of the stream where
 * it was shut, every pending connection is accepted with its data, every datagram comes
 * with its sender's address, and every connection, listener and UDP socket still carries
 * new traffic. A child forked at the end holds every socket too (not with an odd
 * STASIS_TEST_SEED). UDP sockets are UDP-Lite one time in four. STASIS_TEST_SEED=N grows
 * from seed N only. */
#include "tcplib.h"

#include <netinet/ip.h>
#include <stdlib.h>
#include <sys/mman.h>

#define MAX_C 40  /* connections */
#define MAX_L 8   /* listeners */
#define MAX_U 16  /* UDP sockets */
#define MAX_F 8   /* TCP sockets bound or fresh */
#define MAX_Q 32  /* datagrams queued per UDP socket (well below the smallest buffer) */
#define STEPS 120

struct conn {
	int fd[2];        /* 0: client, 1: server (-1: not accepted yet, or closed) */
	int fam;
	int lst;          /* listener it waits in (-1: accepted) */
	bool shut[2];     /* end d shut down writing */
	bool closed[2];   /* end d closed by the program */
	struct tcp_stream st[2]; /* st[d]: from end d to end 1 - d */
};

struct dgram {
	int from; /* sender index */
	uint32_t len, seq;
};

struct udp {
	int fd, fam, proto, peer; /* proto: UDP or UDP-Lite; peer: connected to (-1: not) */
	uint16_t port;
	struct dgram q[MAX_Q];
	int nq, head;
	uint32_t sent; /* datagrams this socket sent (their sequence) */
};

struct lst {
	int fd, fam, backlog, pending;
};

struct fresh {
	int fd, fam;
	bool bound;
};

static struct conn C[MAX_C];
static struct udp U[MAX_U];
static struct lst L[MAX_L];
static struct fresh F[MAX_F];
static int nc, nu, nl, nf;

enum { K_END = 1, K_LST = 2, K_UDP = 4, K_FRESH = 8, K_TCP = K_END | K_LST | K_FRESH };
enum { F4 = 16, F6 = 32, FALL = F4 | F6 };

struct opt {
	int level, name, where;
	int vals[3];
	const char *what;
};

static const struct opt OPTS[] = {
	{ SOL_SOCKET, SO_KEEPALIVE, K_TCP | FALL, { 0, 1, 1 }, "SO_KEEPALIVE" },
	/* (listeners have it, as servers do: see new_listener) */
	{ SOL_SOCKET, SO_REUSEADDR, K_END | K_FRESH | K_UDP | FALL, { 0, 1, 1 }, "SO_REUSEADDR" },
	{ SOL_SOCKET, SO_PRIORITY, K_TCP | K_UDP | FALL, { 0, 3, 6 }, "SO_PRIORITY" },
	{ SOL_SOCKET, SO_RCVLOWAT, K_TCP | K_UDP | FALL, { 1, 7, 100 }, "SO_RCVLOWAT" },
	{ SOL_SOCKET, SO_RCVBUF, K_TCP | K_UDP | FALL, { 65536, 131072, 300000 }, "SO_RCVBUF" },
	{ SOL_SOCKET, SO_SNDBUF, K_TCP | K_UDP | FALL, { 65536, 131072, 300000 }, "SO_SNDBUF" },
	{ SOL_SOCKET, SO_OOBINLINE, K_TCP | FALL, { 0, 1, 1 }, "SO_OOBINLINE" },
	{ SOL_SOCKET, SO_BROADCAST, K_UDP | FALL, { 0, 1, 1 }, "SO_BROADCAST" },
	{ SOL_SOCKET, SO_TIMESTAMP, K_UDP | FALL, { 0, 1, 1 }, "SO_TIMESTAMP" },
	{ SOL_SOCKET, SO_DONTROUTE, K_TCP | K_UDP | FALL, { 0, 1, 1 }, "SO_DONTROUTE" },
	{ SOL_SOCKET, SO_ZEROCOPY, K_END | K_FRESH | K_UDP | FALL, { 0, 1, 1 }, "SO_ZEROCOPY" },
	{ IPPROTO_IP, IP_MTU_DISCOVER, K_TCP | K_UDP | F4, { 0, 2, 3 }, "IP_MTU_DISCOVER" },
	{ IPPROTO_IP, IP_RECVERR, K_UDP | F4, { 0, 1, 1 }, "IP_RECVERR" },
	{ IPPROTO_IPV6, IPV6_MTU_DISCOVER, K_TCP | K_UDP | F6, { 0, 2, 3 }, "IPV6_MTU_DISCOVER" },
	{ IPPROTO_IPV6, IPV6_RECVERR, K_UDP | F6, { 0, 1, 1 }, "IPV6_RECVERR" },
	{ IPPROTO_IPV6, IPV6_DONTFRAG, K_UDP | F6, { 0, 1, 1 }, "IPV6_DONTFRAG" },
	{ IPPROTO_IPV6, IPV6_V6ONLY, K_TCP | K_UDP | F6, { 0, 1, 1 }, "IPV6_V6ONLY" },
	{ IPPROTO_TCP, TCP_THIN_LINEAR_TIMEOUTS, K_TCP | FALL, { 0, 1, 1 }, "TCP_THIN_LINEAR_TIMEOUTS" },
	{ IPPROTO_TCP, TCP_FASTOPEN, K_LST | FALL, { 0, 5, 16 }, "TCP_FASTOPEN" },
	{ IPPROTO_TCP, TCP_MAXSEG, K_FRESH | FALL, { 536, 1000, 1400 }, "TCP_MAXSEG" },
	{ IPPROTO_IP, IP_TOS, K_TCP | K_UDP | F4, { 0, 0x10, 0x28 }, "IP_TOS" },
	{ IPPROTO_IP, IP_TTL, K_TCP | K_UDP | F4, { 1, 17, 200 }, "IP_TTL" },
	{ IPPROTO_IP, IP_RECVTOS, K_UDP | F4, { 0, 1, 1 }, "IP_RECVTOS" },
	{ IPPROTO_IP, IP_PKTINFO, K_UDP | F4, { 0, 1, 1 }, "IP_PKTINFO" },
	{ IPPROTO_IP, IP_RECVTTL, K_UDP | F4, { 0, 1, 1 }, "IP_RECVTTL" },
	{ IPPROTO_IP, IP_FREEBIND, K_TCP | K_UDP | F4, { 0, 1, 1 }, "IP_FREEBIND" },
	{ IPPROTO_IPV6, IPV6_TCLASS, K_TCP | K_UDP | F6, { 0, 0x20, 0x48 }, "IPV6_TCLASS" },
	{ IPPROTO_IPV6, IPV6_UNICAST_HOPS, K_TCP | K_UDP | F6, { 1, 33, 255 }, "IPV6_UNICAST_HOPS" },
	{ IPPROTO_IPV6, IPV6_RECVPKTINFO, K_UDP | F6, { 0, 1, 1 }, "IPV6_RECVPKTINFO" },
	{ IPPROTO_IPV6, IPV6_RECVTCLASS, K_UDP | F6, { 0, 1, 1 }, "IPV6_RECVTCLASS" },
	{ IPPROTO_TCP, TCP_NODELAY, K_TCP | FALL, { 0, 1, 1 }, "TCP_NODELAY" },
	{ IPPROTO_TCP, TCP_KEEPIDLE, K_TCP | FALL, { 30, 600, 7200 }, "TCP_KEEPIDLE" },
	{ IPPROTO_TCP, TCP_KEEPINTVL, K_TCP | FALL, { 5, 30, 75 }, "TCP_KEEPINTVL" },
	{ IPPROTO_TCP, TCP_KEEPCNT, K_TCP | FALL, { 3, 5, 9 }, "TCP_KEEPCNT" },
	{ IPPROTO_TCP, TCP_USER_TIMEOUT, K_TCP | FALL, { 0, 5000, 60000 }, "TCP_USER_TIMEOUT" },
	{ IPPROTO_TCP, TCP_NOTSENT_LOWAT, K_TCP | FALL, { 4096, 16384, 100000 }, "TCP_NOTSENT_LOWAT" },
	{ IPPROTO_TCP, TCP_SYNCNT, K_TCP | FALL, { 2, 4, 6 }, "TCP_SYNCNT" },
	{ IPPROTO_TCP, TCP_LINGER2, K_TCP | FALL, { 10, 30, 60 }, "TCP_LINGER2" },
	{ IPPROTO_TCP, TCP_CORK, K_END | FALL, { 0, 1, 0 }, "TCP_CORK" },
	{ IPPROTO_TCP, TCP_WINDOW_CLAMP, K_END | FALL, { 20000, 60000, 200000 }, "TCP_WINDOW_CLAMP" },
};
#define NOPT ((int)(sizeof(OPTS) / sizeof(OPTS[0])))
/* the options, then SO_LINGER (on, seconds) and TCP_CONGESTION (its first byte) */
#define NVAL (NOPT + 3)

/* Every socket, one row: its fd, where it is (K_*, F*) and what was read before. */
#define MAX_SK (2 * MAX_C + MAX_L + MAX_U + MAX_F)
struct row {
	int fd, where;
	int val[NVAL];
	char name[64], peer[64];
	int state, tcpopts, wscale;
	bool pending; /* the client of a connection in an accept queue */
};

static const char *ip_of(int fam)
{
	return fam == AF_INET ? "127.0.0.1" : "::1";
}

static int fam_bit(int fam)
{
	return fam == AF_INET ? F4 : F6;
}

/* The sockets now open, one row each. */
static int rows(struct row *r)
{
	int n = 0;
	for (int c = 0; c < nc; c++)
		for (int d = 0; d < 2; d++)
			if (C[c].fd[d] >= 0)
				r[n++] = (struct row){ .fd = C[c].fd[d], .where = K_END | fam_bit(C[c].fam),
						       .pending = C[c].lst >= 0 };
	for (int i = 0; i < nl; i++)
		r[n++] = (struct row){ .fd = L[i].fd, .where = K_LST | fam_bit(L[i].fam) };
	for (int i = 0; i < nu; i++)
		r[n++] = (struct row){ .fd = U[i].fd, .where = K_UDP | fam_bit(U[i].fam) };
	for (int i = 0; i < nf; i++)
		r[n++] = (struct row){ .fd = F[i].fd, .where = K_FRESH | fam_bit(F[i].fam) };
	return n;
}

static void read_row(struct row *r)
{
	for (int k = 0; k < NOPT; k++) {
		int v = -1;
		socklen_t l = sizeof(v);
		if ((OPTS[k].where & r->where & 15) && (OPTS[k].where & r->where & FALL) &&
		    getsockopt(r->fd, OPTS[k].level, OPTS[k].name, &v, &l) < 0)
			v = -errno;
		r->val[k] = v;
	}
	struct linger lg = { 0, 0 };
	socklen_t l = sizeof(lg);
	getsockopt(r->fd, SOL_SOCKET, SO_LINGER, &lg, &l);
	r->val[NOPT] = lg.l_onoff;
	r->val[NOPT + 1] = lg.l_linger;
	char cc[16] = "";
	l = sizeof(cc);
	r->val[NOPT + 2] = -1;
	if ((r->where & K_TCP) && !getsockopt(r->fd, IPPROTO_TCP, TCP_CONGESTION, cc, &l))
		r->val[NOPT + 2] = cc[0];
	tcp_name(r->fd, false, r->name, sizeof(r->name));
	tcp_name(r->fd, true, r->peer, sizeof(r->peer));
	if (r->where & K_TCP) {
		struct tcp_info ti;
		l = sizeof(ti);
		memset(&ti, 0, sizeof(ti));
		if (!getsockopt(r->fd, IPPROTO_TCP, TCP_INFO, &ti, &l)) {
			r->state = ti.tcpi_state;
			r->tcpopts = ti.tcpi_options;
			r->wscale = ti.tcpi_snd_wscale << 4 | ti.tcpi_rcv_wscale;
		}
	}
}

/* ---- growing ------------------------------------------------------------------------ */

static uint64_t rnd(uint64_t *rng, uint64_t n)
{
	return n ? test_xorshift64(rng) % n : 0;
}

static int new_conn(int fam)
{
	struct conn *k = &C[nc];
	memset(k, 0, sizeof(*k));
	tcp_pair(fam, ip_of(fam), ip_of(fam), &k->fd[0], &k->fd[1]);
	k->fam = fam;
	k->lst = -1;
	k->st[0].seed = (uint64_t)nc * 2 + 1;
	k->st[1].seed = (uint64_t)nc * 2 + 2;
	return nc++;
}

/* A listener with SO_REUSEADDR, as servers have it: without it, a listener whose port an
 * orphan of a connection it accepted still holds (FIN_WAIT2, TIME_WAIT: the server end
 * closed) cannot listen again in the same namespace until the orphan is gone. */
static void new_listener(int fam, int backlog)
{
	struct sockaddr_storage ss;
	socklen_t l = tcp_addr(fam, ip_of(fam), 0, &ss);
	int fd = socket(fam, SOCK_STREAM, 0), on = 1;
	if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof(on)) ||
	    bind(fd, (struct sockaddr *)&ss, l) || listen(fd, backlog))
		test_fail("listener: %s", strerror(errno));
	L[nl++] = (struct lst){ fd, fam, backlog, 0 };
}

/* A connection to listener @i, left in its accept queue. */
static int connect_to(int i)
{
	struct conn *k = &C[nc];
	memset(k, 0, sizeof(*k));
	k->fd[0] = tcp_connect(L[i].fam, ip_of(L[i].fam), tcp_port(L[i].fd));
	k->fd[1] = -1;
	k->fam = L[i].fam;
	k->lst = i;
	k->st[0].seed = (uint64_t)nc * 2 + 1;
	k->st[1].seed = (uint64_t)nc * 2 + 2;
	L[i].pending++;
	return nc++;
}

static void new_pending(uint64_t *rng)
{
	int cand[MAX_L], n = 0;
	for (int i = 0; i < nl; i++)
		if (L[i].pending < L[i].backlog)
			cand[n++] = i;
	if (n && nc < MAX_C - MAX_L) /* (room for a connection to each after the restore) */
		connect_to(cand[rnd(rng, (uint64_t)n)]);
}

static bool linger0(int fd)
{
	struct linger lg = { 0, 0 };
	socklen_t l = sizeof(lg);
	return !getsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, &l) && lg.l_onoff && !lg.l_linger;
}

static bool outq_empty(int fd)
{
	int q = -1;
	return ioctl(fd, TIOCOUTQ, &q) == 0 && q == 0;
}

/* Up to @max bytes of what is queued into end @d (non-blocking), checked. */
static void recv_part(struct conn *k, int d, size_t max)
{
	struct tcp_stream *s = &k->st[1 - d];
	uint8_t buf[4096];
	while (max) {
		ssize_t r = recv(k->fd[d], buf, max < sizeof(buf) ? max : sizeof(buf), MSG_DONTWAIT);
		if (r <= 0)
			break;
		for (ssize_t i = 0; i < r; i++)
			if (buf[i] != tcp_byte(s->seed, s->rcvd + (uint64_t)i))
				test_fail("stream %llu: byte %llu differs before the checkpoint",
					  (unsigned long long)s->seed,
					  (unsigned long long)(s->rcvd + (uint64_t)i));
		s->rcvd += (uint64_t)r;
		max -= (size_t)r;
	}
}

static void conn_op(uint64_t *rng, int op)
{
	if (!nc)
		return;
	struct conn *k = &C[rnd(rng, (uint64_t)nc)];
	int d = (int)rnd(rng, 2);
	if (k->fd[d] < 0)
		return;
	bool peer_gone = k->closed[1 - d];
	/* a connection waiting in an accept queue with data or a FIN queued in it is refused
	 * at dump (its bytes can only be read by accepting it): its client sends nothing
	 * before it is accepted */
	if (k->lst >= 0 && op != 1)
		return;
	switch (op) {
	case 0: /* write */
		if (!k->shut[d] && !peer_gone)
			tcp_send_some(k->fd[d], &k->st[d], 1 + rnd(rng, 30000));
		break;
	case 1: /* read part */
		recv_part(k, d, 1 + rnd(rng, 20000));
		break;
	case 2: /* shutdown writing */
		if (!k->shut[d] && !peer_gone) {
			if (shutdown(k->fd[d], SHUT_WR))
				test_fail("shutdown: %s", strerror(errno));
			k->shut[d] = true;
		}
		break;
	case 3: /* close, once all that came in was read and all that went out left (else
		 * a reset, or data only an orphan socket outside the tree would still send),
		 * not with SO_LINGER of 0 seconds (a reset too) */
		if (k->lst < 0 && k->fd[1 - d] >= 0 && k->st[1 - d].rcvd == k->st[1 - d].sent &&
		    outq_empty(k->fd[d]) && !linger0(k->fd[d]) &&
		    (k->shut[1 - d] || k->shut[d] || rnd(rng, 2))) {
			close(k->fd[d]);
			k->fd[d] = -1;
			k->closed[d] = true;
			k->shut[d] = true;
		}
		break;
	}
}

static int pick_where(uint64_t *rng, struct row *r, int n, int k)
{
	int cand[MAX_SK], m = 0;
	for (int i = 0; i < n; i++)
		if ((OPTS[k].where & r[i].where & 15) && (OPTS[k].where & r[i].where & FALL))
			cand[m++] = i;
	return m ? cand[rnd(rng, (uint64_t)m)] : -1;
}

static void opt_op(uint64_t *rng)
{
	static struct row r[MAX_SK];
	int n = rows(r), k = (int)rnd(rng, NOPT + 2);
	if (!n)
		return;
	if (k == NOPT) { /* SO_LINGER */
		struct linger lg = { (int)rnd(rng, 2), (int)rnd(rng, 30) };
		setsockopt(r[rnd(rng, (uint64_t)n)].fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
		return;
	}
	if (k == NOPT + 1) { /* TCP_CONGESTION */
		int i = (int)rnd(rng, (uint64_t)n);
		const char *cc = rnd(rng, 2) ? "reno" : "cubic";
		if (r[i].where & K_TCP)
			setsockopt(r[i].fd, IPPROTO_TCP, TCP_CONGESTION, cc, (socklen_t)strlen(cc));
		return;
	}
	int i = pick_where(rng, r, n, k);
	if (i < 0)
		return;
	int v = OPTS[k].vals[rnd(rng, 3)];
	/* (some are refused in some states, e.g. TCP_WINDOW_CLAMP below half the MSS:
	 * what the kernel takes is what is compared) */
	setsockopt(r[i].fd, OPTS[k].level, OPTS[k].name, &v, sizeof(v));
}

static void udp_new(int fam, int proto)
{
	if (nu == MAX_U)
		return;
	struct udp *u = &U[nu];
	memset(u, 0, sizeof(*u));
	struct sockaddr_storage ss;
	socklen_t l = tcp_addr(fam, ip_of(fam), 0, &ss);
	u->fd = socket(fam, SOCK_DGRAM, proto);
	if (u->fd < 0 || bind(u->fd, (struct sockaddr *)&ss, l))
		test_fail("udp bind: %s", strerror(errno));
	u->fam = fam;
	u->proto = proto;
	u->peer = -1;
	u->port = tcp_port(u->fd);
	nu++;
}

static uint8_t dg_byte(int from, uint32_t seq, uint32_t i)
{
	return tcp_byte((uint64_t)from << 32 | seq, i);
}

static void udp_send(int from, int to)
{
	struct udp *a = &U[from], *b = &U[to];
	uint8_t buf[1500];
	uint32_t len = (uint32_t)((a->sent * 37 + (uint32_t)from * 11) % 600);
	/* (a connected socket takes datagrams from its peer only: others are refused) */
	if (b->nq - b->head >= MAX_Q || a->fam != b->fam || a->proto != b->proto ||
	    (a->peer >= 0 && a->peer != to) ||
	    (b->peer >= 0 && b->peer != from))
		return;
	for (uint32_t i = 0; i < len; i++)
		buf[i] = dg_byte(from, a->sent, i);
	struct sockaddr_storage ss;
	socklen_t l = tcp_addr(b->fam, ip_of(b->fam), b->port, &ss);
	ssize_t r = a->peer >= 0 ? send(a->fd, buf, len, MSG_DONTWAIT)
				 : sendto(a->fd, buf, len, MSG_DONTWAIT, (struct sockaddr *)&ss, l);
	if (r != (ssize_t)len)
		test_fail("udp send %d -> %d: %s", from, to, strerror(errno));
	if (b->nq == MAX_Q) { /* compact */
		memmove(b->q, b->q + b->head, (size_t)(b->nq - b->head) * sizeof(b->q[0]));
		b->nq -= b->head;
		b->head = 0;
	}
	b->q[b->nq++] = (struct dgram){ from, len, a->sent++ };
}

static void udp_recv_one(int i, const char *when)
{
	struct udp *u = &U[i];
	if (u->head == u->nq)
		return;
	struct dgram *g = &u->q[u->head];
	uint8_t buf[1500];
	struct sockaddr_storage ss;
	socklen_t l = sizeof(ss);
	struct pollfd p = { .fd = u->fd, .events = POLLIN };
	if (poll(&p, 1, 2000) != 1)
		test_fail("udp %d: datagram %d of %d did not come %s", i, u->head, u->nq, when);
	ssize_t r = recvfrom(u->fd, buf, sizeof(buf), MSG_DONTWAIT, (struct sockaddr *)&ss, &l);
	if (r != (ssize_t)g->len)
		test_fail("udp %d: datagram of %zd bytes %s, expected %u from %d (%s)", i, r, when,
			  g->len, g->from, r < 0 ? strerror(errno) : "");
	for (uint32_t k = 0; k < g->len; k++)
		if (buf[k] != dg_byte(g->from, g->seq, k))
			test_fail("udp %d: datagram %u from %d differs at %u %s", i, g->seq, g->from,
				  k, when);
	uint16_t port = ntohs(ss.ss_family == AF_INET ? ((struct sockaddr_in *)&ss)->sin_port
						     : ((struct sockaddr_in6 *)&ss)->sin6_port);
	if (port != U[g->from].port)
		test_fail("udp %d: datagram %u came from port %u %s, sent from %u", i, g->seq, port,
			  when, U[g->from].port);
	u->head++;
}

static void udp_op(uint64_t *rng, int op)
{
	if (nu < 2)
		return;
	int a = (int)rnd(rng, (uint64_t)nu), b = (int)rnd(rng, (uint64_t)nu);
	if (op == 0) {
		udp_send(a, U[a].peer >= 0 ? U[a].peer : b);
	} else if (op == 1) {
		udp_recv_one(a, "before the checkpoint");
	} else if (U[a].peer < 0 && a != b && U[a].fam == U[b].fam && U[a].proto == U[b].proto) {
		struct sockaddr_storage ss;
		socklen_t l = tcp_addr(U[b].fam, ip_of(U[b].fam), U[b].port, &ss);
		if (connect(U[a].fd, (struct sockaddr *)&ss, l))
			test_fail("udp connect: %s", strerror(errno));
		U[a].peer = b;
	}
}

/* A connection waiting in listener @i accepted; @in_order: it must be the oldest (the
 * accept queue is in the order of the handshakes; after the restore the pending
 * connections were made again in another order, see tests/README.md). */
static void accept_one(int i, bool in_order)
{
	struct pollfd p = { .fd = L[i].fd, .events = POLLIN };
	int s = poll(&p, 1, 2000) == 1 ? accept(L[i].fd, NULL, NULL) : -1;
	if (s < 0)
		test_fail("listener %d: no connection to accept (%d pending)", i, L[i].pending);
	char peer[64], want[64] = "";
	tcp_name(s, true, peer, sizeof(peer));
	for (int c = 0; c < nc; c++) {
		if (C[c].lst != i)
			continue;
		tcp_name(C[c].fd[0], false, want, sizeof(want));
		if (!strcmp(peer, want)) {
			C[c].fd[1] = s;
			C[c].lst = -1;
			L[i].pending--;
			return;
		}
		if (in_order)
			break;
	}
	test_fail("listener %d: accepted %s, expected %s%s", i, peer, in_order ? "" : "one of ",
		  want);
}

static void grow(uint64_t seed)
{
	enum { G_CONN, G_LST, G_PEND, G_ACCEPT, G_WRITE, G_READ, G_SHUT, G_CLOSE, G_OPT,
	       G_UDP, G_USEND, G_URECV, G_UCONN, G_FRESH, G_N };
	static const int weight[G_N] = { 5, 1, 3, 1, 14, 6, 2, 2, 10, 2, 12, 3, 1, 1 };
	uint64_t rng = seed * 0x9E3779B97F4A7C15ull + 11;
	for (int step = 0; step < STEPS; step++) {
		int g = test_pick_weighted(&rng, weight, G_N);
		int fam = rnd(&rng, 3) ? AF_INET : AF_INET6;
		if (g == G_CONN && nc < MAX_C - MAX_L) {
			new_conn(fam);
		} else if (g == G_LST && nl < MAX_L) {
			new_listener(fam, 1 + (int)rnd(&rng, 4));
		} else if (g == G_PEND) {
			new_pending(&rng);
		} else if (g == G_ACCEPT && nl) {
			int i = (int)rnd(&rng, (uint64_t)nl);
			if (L[i].pending)
				accept_one(i, true);
		} else if (g >= G_WRITE && g <= G_CLOSE) {
			conn_op(&rng, g - G_WRITE);
		} else if (g == G_OPT) {
			opt_op(&rng);
		} else if (g == G_UDP) {
			udp_new(fam, rnd(&rng, 4) ? IPPROTO_UDP : IPPROTO_UDPLITE);
		} else if (g >= G_USEND && g <= G_UCONN) {
			udp_op(&rng, g - G_USEND);
		} else if (g == G_FRESH && nf < MAX_F) {
			F[nf].fd = socket(fam, SOCK_STREAM, 0);
			F[nf].fam = fam;
			F[nf].bound = rnd(&rng, 2);
			int on = 1;
			if (fam == AF_INET6 && F[nf].fd >= 0 && !rnd(&rng, 3))
				setsockopt(F[nf].fd, IPPROTO_IPV6, IPV6_V6ONLY, &on, sizeof(on));
			struct sockaddr_storage ss;
			socklen_t l = tcp_addr(fam, ip_of(fam), 0, &ss);
			if (F[nf].fd < 0 || (F[nf].bound && bind(F[nf].fd, (struct sockaddr *)&ss, l)))
				test_fail("socket: %s", strerror(errno));
			nf++;
		}
	}
}

/* ---- checking ----------------------------------------------------------------------- */

static struct row before[MAX_SK], after[MAX_SK];
static int nbefore;

static void snapshot(struct row *r)
{
	int n = rows(r);
	for (int i = 0; i < n; i++)
		read_row(&r[i]);
	nbefore = nbefore ? nbefore : n;
}

static void compare_rows(void)
{
	int n = rows(after);
	TEST_CHECK(n == nbefore, "%d sockets, %d before", n, nbefore);
	snapshot(after);
	for (int i = 0; i < n; i++) {
		const struct row *a = &after[i], *b = &before[i];
		for (int k = 0; k < NVAL; k++)
			if (a->val[k] != b->val[k])
				test_fail("fd %d (%s, peer %s): %s is %d, was %d", a->fd, a->name,
					  a->peer,
					  k < NOPT ? OPTS[k].what
					  : k == NOPT ? "SO_LINGER on"
					  : k == NOPT + 1 ? "SO_LINGER seconds" : "TCP_CONGESTION",
					  a->val[k], b->val[k]);
		if (strcmp(a->name, b->name) || strcmp(a->peer, b->peer))
			test_fail("fd %d: name %s peer %s, was %s %s", a->fd, a->name, a->peer,
				  b->name, b->peer);
		/* (a connection still in an accept queue is made again by a new handshake: the
		 * window scales come from the buffers then, see tests/README.md) */
		if (a->state != b->state || a->tcpopts != b->tcpopts ||
		    (a->wscale != b->wscale && !b->pending))
			test_fail("fd %d (%s, peer %s): TCP state %d options %x window scales %x, "
				  "was %d %x %x",
				  a->fd, a->name, a->peer, a->state, a->tcpopts, a->wscale, b->state,
				  b->tcpopts, b->wscale);
	}
}

/* Everything end @d sent comes into the other end, then its end of file if it shut
 * down writing, else nothing more. */
static void drain(int c, int d)
{
	struct conn *k = &C[c];
	struct tcp_stream *s = &k->st[d];
	int fd = k->fd[1 - d];
	uint8_t buf[4096];
	uint64_t t0 = test_now_ns();
	bool eof = false;
	while (s->rcvd < s->sent || (k->shut[d] && !eof)) {
		ssize_t r = recv(fd, buf, sizeof(buf), MSG_DONTWAIT);
		if (r < 0 && errno != EAGAIN)
			test_fail("conn %d: stream %d after %llu of %llu bytes: %s", c, d,
				  (unsigned long long)s->rcvd, (unsigned long long)s->sent,
				  strerror(errno));
		if (r == 0 && s->rcvd < s->sent)
			test_fail("conn %d: stream %d ends after %llu of %llu bytes", c, d,
				  (unsigned long long)s->rcvd, (unsigned long long)s->sent);
		if (r == 0)
			eof = true;
		for (ssize_t i = 0; i < r; i++)
			if (buf[i] != tcp_byte(s->seed, s->rcvd + (uint64_t)i))
				test_fail("conn %d: stream %d: byte %llu differs (gap or duplicate)",
					  c, d, (unsigned long long)(s->rcvd + (uint64_t)i));
		if (r > 0)
			s->rcvd += (uint64_t)r;
		if (s->rcvd > s->sent)
			test_fail("conn %d: stream %d: %llu bytes, only %llu sent", c, d,
				  (unsigned long long)s->rcvd, (unsigned long long)s->sent);
		if (r < 0)
			test_sleep_ms(1);
		if (test_now_ns() - t0 > 5000000000ull)
			test_fail("conn %d: stream %d: %llu of %llu bytes%s in 5 s", c, d,
				  (unsigned long long)s->rcvd, (unsigned long long)s->sent,
				  k->shut[d] && !eof ? " and no end of file" : "");
	}
	if (!k->shut[d] && (recv(fd, buf, 1, MSG_DONTWAIT) != -1 || errno != EAGAIN))
		test_fail("conn %d: stream %d: more than was sent, or an end of file", c, d);
}

/* New bytes both ways where the program could still send them. */
static void live(int c)
{
	struct conn *k = &C[c];
	for (int d = 0; d < 2; d++) {
		if (k->shut[d] || k->fd[d] < 0 || k->fd[1 - d] < 0)
			continue;
		int v = 0;
		setsockopt(k->fd[d], IPPROTO_TCP, TCP_CORK, &v, sizeof(v));
		uint64_t want = k->st[d].sent + 5000;
		while (k->st[d].sent < want) {
			tcp_send_some(k->fd[d], &k->st[d], want - k->st[d].sent);
			drain(c, d);
		}
	}
}

static void check_listeners(void)
{
	for (int i = 0; i < nl; i++) {
		while (L[i].pending)
			accept_one(i, false);
		int c = connect_to(i);
		accept_one(i, true);
		live(c);
	}
}

static void check_udp(void)
{
	uint8_t b;
	for (int i = 0; i < nu; i++) {
		while (U[i].head < U[i].nq)
			udp_recv_one(i, "after the restore");
		if (recv(U[i].fd, &b, 1, MSG_DONTWAIT) != -1 || errno != EAGAIN)
			test_fail("udp %d: a datagram more than was sent", i);
	}
	for (int i = 0; i < nu; i++) {
		int to = U[i].peer;
		for (int j = 0; j < nu && to < 0; j++)
			if (j != i && U[j].fam == U[i].fam && U[j].proto == U[i].proto &&
			    (U[j].peer < 0 || U[j].peer == i))
				to = j;
		if (to < 0)
			continue;
		udp_send(i, to);
		udp_recv_one(to, "sent after the restore");
	}
}

int main(int argc, char **argv)
{
	static const uint64_t seeds[] = { 1, 2, 3 };
	const char *env = getenv("STASIS_TEST_SEED");

	test_init(argc, argv);
	signal(SIGPIPE, SIG_IGN);
	tcp_lo_up();
	if (env) {
		grow(strtoull(env, NULL, 10));
	} else {
		for (size_t k = 0; k < sizeof(seeds) / sizeof(seeds[0]); k++)
			grow(seeds[k]);
	}
	/* a child holding every socket too: each description shared by two processes */
	pid_t child = env && strtoull(env, NULL, 10) % 2 ? -1 : fork();
	if (child == 0) {
		for (;;)
			pause();
	}
	if (child < 0 && !(env && strtoull(env, NULL, 10) % 2))
		test_fail("fork: %s", strerror(errno));
	test_sleep_ms(500); /* what is in flight settles (ACKs, a FIN, corked data) */
	snapshot(before);
	test_msg("%d connections, %d listeners, %d UDP sockets, %d other TCP sockets", nc, nl,
		 nu, nf);
	test_ready();
	test_wait();

	if (test_sabotage())
		before[0].val[2]++; /* SO_PRIORITY as if it were another */
	compare_rows();
	for (int c = 0; c < nc; c++)
		for (int d = 0; d < 2; d++)
			if (C[c].fd[d] >= 0) {
				int v = 0; /* a program uncorks what it corked */
				setsockopt(C[c].fd[d], IPPROTO_TCP, TCP_CORK, &v, sizeof(v));
			}
	check_listeners(); /* (the pending connections accepted first) */
	for (int c = 0; c < nc; c++)
		for (int d = 0; d < 2; d++)
			if (C[c].fd[1 - d] >= 0)
				drain(c, d);
	for (int c = 0; c < nc; c++)
		live(c);
	check_udp();
	if (child > 0 && test_reap(child, true, 10) < 0)
		test_fail("the child holding the sockets is not there");
	test_pass();
}
