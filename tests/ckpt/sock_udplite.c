// stasis-test: timeout=30
/* UDP-Lite sockets (IPPROTO_UDPLITE), IPv4 and IPv6 over loopback: a receiver asking for
 * a checksum coverage of at least 20 bytes (UDPLITE_RECV_CSCOV), a sender covering 12
 * (UDPLITE_SEND_CSCOV... the receiver drops what covers less than it asks: 24 then) and
 * one connected to the receiver with the default (all) coverage, datagrams of both
 * queued at the receiver. After the restore every socket is UDP-Lite with its coverage
 * options, names and peer, the datagrams come back in order with their senders' ports,
 * nothing more, and new datagrams still go (a UDP socket cannot reach a UDP-Lite one:
 * the senders must be UDP-Lite again). */
#include "sock_dgram_lib.h"
#include "tcplib.h" /* (its address helpers) */

#define SOL_UDPLITE 136
#define CSCOV_SEND 10
#define CSCOV_RECV 11

struct set {
	int fam, r, a, b; /* receiver, sender (coverage 24), connected sender */
	uint16_t rport, aport, bport;
};

static socklen_t addr(int fam, uint16_t port, struct sockaddr_storage *ss)
{
	return tcp_addr(fam, fam == AF_INET ? "127.0.0.1" : "::1", port, ss);
}

static int lite(int fam)
{
	struct sockaddr_storage ss;
	socklen_t l = addr(fam, 0, &ss);
	int fd = socket(fam, SOCK_DGRAM, IPPROTO_UDPLITE);
	if (fd < 0 || bind(fd, (struct sockaddr *)&ss, l))
		test_fail("UDP-Lite socket: %s", strerror(errno));
	return fd;
}

static int opt(int fd, int name)
{
	int v = -1;
	socklen_t l = sizeof(v);
	if (getsockopt(fd, SOL_UDPLITE, name, &v, &l))
		test_fail("getsockopt(%d): %s", name, strerror(errno));
	return v;
}

static void set_opt(int fd, int name, int v)
{
	if (setsockopt(fd, SOL_UDPLITE, name, &v, sizeof(v)))
		test_fail("setsockopt(%d): %s", name, strerror(errno));
}

static void send_one(struct set *s, int from, int k)
{
	char buf[200];
	int n = 30 + k * 7;
	memset(buf, 'a' + k, (size_t)n);
	buf[0] = (char)from;
	struct sockaddr_storage ss;
	socklen_t l = addr(s->fam, s->rport, &ss);
	ssize_t r = from == 'b' ? send(s->b, buf, (size_t)n, 0)
				: sendto(s->a, buf, (size_t)n, 0, (struct sockaddr *)&ss, l);
	if (r != n)
		test_fail("send: %s", strerror(errno));
}

static void recv_one(struct set *s, int from, int k, const char *when)
{
	char buf[256];
	struct sockaddr_storage ss;
	socklen_t l = sizeof(ss);
	ssize_t r = -1;
	for (int i = 0; i < 200 && r < 0; i++) {
		r = recvfrom(s->r, buf, sizeof(buf), MSG_DONTWAIT, (struct sockaddr *)&ss, &l);
		if (r < 0 && errno != EAGAIN)
			break;
		if (r < 0)
			test_sleep_ms(10);
	}
	int n = 30 + k * 7;
	uint16_t port = ntohs(ss.ss_family == AF_INET ? ((struct sockaddr_in *)&ss)->sin_port
						     : ((struct sockaddr_in6 *)&ss)->sin6_port);
	if (r != n || buf[0] != (char)from || buf[n - 1] != 'a' + k)
		test_fail("%s: datagram %d of %c: %zd bytes from %c (%s)", when, k, from, r,
			  r > 0 ? buf[0] : '?', r < 0 ? strerror(errno) : "");
	if (port != (from == 'b' ? s->bport : s->aport))
		test_fail("%s: datagram %d of %c came from port %u", when, k, from, port);
}

int main(int argc, char **argv)
{
	struct set set[2] = { { .fam = AF_INET }, { .fam = AF_INET6 } };
	test_init(argc, argv);
	if (dg_lo_up())
		test_fail("lo is down");
	for (int i = 0; i < 2; i++) {
		struct set *s = &set[i];
		s->r = lite(s->fam);
		s->a = lite(s->fam);
		s->b = lite(s->fam);
		s->rport = tcp_port(s->r);
		s->aport = tcp_port(s->a);
		s->bport = tcp_port(s->b);
		set_opt(s->r, CSCOV_RECV, 20);
		set_opt(s->a, CSCOV_SEND, 24);
		struct sockaddr_storage ss;
		socklen_t l = addr(s->fam, s->rport, &ss);
		if (connect(s->b, (struct sockaddr *)&ss, l))
			test_fail("connect: %s", strerror(errno));
		for (int k = 0; k < 4; k++)
			send_one(s, k % 2 ? 'b' : 'a', k);
	}
	test_sleep_ms(50);
	test_ready();
	test_wait();

	for (int i = 0; i < 2; i++) {
		struct set *s = &set[i];
		int p = -1;
		socklen_t l = sizeof(p);
		if (getsockopt(s->r, SOL_SOCKET, SO_PROTOCOL, &p, &l) || p != IPPROTO_UDPLITE)
			test_fail("set %d: the receiver is of protocol %d", i, p);
		TEST_CHECK(opt(s->r, CSCOV_RECV) == 20 && opt(s->a, CSCOV_SEND) == 24 &&
				   opt(s->b, CSCOV_SEND) == 0 && opt(s->r, CSCOV_SEND) == 0,
			   "set %d: coverage %d %d %d %d", i, opt(s->r, CSCOV_RECV),
			   opt(s->a, CSCOV_SEND), opt(s->b, CSCOV_SEND), opt(s->r, CSCOV_SEND));
		TEST_CHECK(tcp_port(s->r) == s->rport && tcp_port(s->a) == s->aport &&
				   tcp_port(s->b) == s->bport,
			   "set %d: ports moved", i);
		int skip = test_sabotage() && i == 0;
		for (int k = skip; k < 4; k++)
			recv_one(s, k % 2 ? 'b' : 'a', k, "queued");
		char c;
		TEST_CHECK(recv(s->r, &c, 1, MSG_DONTWAIT) < 0 && errno == EAGAIN,
			   "set %d: a datagram more", i);
		send_one(s, 'a', 5);
		send_one(s, 'b', 6);
		recv_one(s, 'a', 5, "new");
		recv_one(s, 'b', 6, "new");
	}
	test_pass();
}
