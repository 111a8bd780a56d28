// stasis-test: timeout=60 nonroot-known=TCP repair mode needs CAP_NET_ADMIN over the net namespace
// stasis-test: rootless-known=TCP repair mode needs CAP_NET_ADMIN over the host's net namespace
/* IPv6 and v4-mapped TCP, both ends in the process, data in flight both ways:
 *   - a connection over ::1 (a listener with IPV6_V6ONLY left listening);
 *   - an IPv4 client accepted by a dual-stack listener on :: (the server end is an
 *     AF_INET6 socket with ::ffff:127.0.0.1 addresses);
 *   - an AF_INET6 client connected to ::ffff:127.0.0.1 (v4-mapped at both ends).
 * After the restore: families, addresses and IPV6_V6ONLY as they were, each stream
 * read exactly, and the connections go on. */
#include "tcplib.h"

struct conn {
	int c, s;
	struct tcp_stream up, down;
};

static void addr_of(int fd, bool peer, struct sockaddr_storage *ss)
{
	socklen_t l = sizeof(*ss);
	memset(ss, 0, sizeof(*ss));
	if ((peer ? getpeername : getsockname)(fd, (struct sockaddr *)ss, &l))
		test_fail("get%sname: %s", peer ? "peer" : "sock", strerror(errno));
}

static int v6only(int fd)
{
	int v = -1;
	socklen_t l = sizeof(v);
	getsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &v, &l);
	return v;
}

static void load(struct conn *k, uint64_t seed)
{
	k->up = (struct tcp_stream){ .seed = seed };
	k->down = (struct tcp_stream){ .seed = ~seed };
	tcp_send_some(k->s, &k->down, 30000);
	tcp_fill(k->c, &k->up);
}

static void check(struct conn *k, const char *what)
{
	tcp_recv_until(k->s, &k->up, k->up.sent, 20000, what);
	tcp_recv_until(k->c, &k->down, k->down.sent, 5000, what);
	tcp_send_some(k->c, &k->up, 100000);
	tcp_send_some(k->s, &k->down, 100000);
	tcp_recv_until(k->s, &k->up, k->up.sent, 5000, what);
	tcp_recv_until(k->c, &k->down, k->down.sent, 5000, what);
}

int main(int argc, char **argv)
{
	struct conn k[3];
	struct sockaddr_storage before[3][4], after;
	int on = 1, off = 0;

	test_init(argc, argv);
	tcp_lo_up();
	int l6 = socket(AF_INET6, SOCK_STREAM, 0);
	struct sockaddr_storage ss;
	socklen_t sl = tcp_addr(AF_INET6, "::1", 0, &ss);
	if (l6 < 0 || setsockopt(l6, IPPROTO_IPV6, IPV6_V6ONLY, &on, sizeof(on)) ||
	    bind(l6, (struct sockaddr *)&ss, sl) || listen(l6, 4))
		test_fail("v6only listener: %s", strerror(errno));
	k[0].c = tcp_connect(AF_INET6, "::1", tcp_port(l6));
	k[0].s = accept(l6, NULL, NULL);
	int ld = socket(AF_INET6, SOCK_STREAM, 0);
	sl = tcp_addr(AF_INET6, "::", 0, &ss);
	if (ld < 0 || setsockopt(ld, IPPROTO_IPV6, IPV6_V6ONLY, &off, sizeof(off)) ||
	    bind(ld, (struct sockaddr *)&ss, sl) || listen(ld, 4))
		test_fail("dual-stack listener: %s", strerror(errno));
	k[1].c = tcp_connect(AF_INET, "127.0.0.1", tcp_port(ld));
	k[1].s = accept(ld, NULL, NULL);
	k[2].c = tcp_connect(AF_INET6, "::ffff:127.0.0.1", tcp_port(ld));
	k[2].s = accept(ld, NULL, NULL);
	close(ld);
	for (int i = 0; i < 3; i++) {
		TEST_CHECK(k[i].s >= 0, "accept %d: %s", i, strerror(errno));
		load(&k[i], 0x6000u + (unsigned)i);
		addr_of(k[i].c, false, &before[i][0]);
		addr_of(k[i].c, true, &before[i][1]);
		addr_of(k[i].s, false, &before[i][2]);
		addr_of(k[i].s, true, &before[i][3]);
	}
	int v6[3] = { v6only(k[0].s), v6only(k[1].s), v6only(k[2].c) };
	test_ready();
	test_wait();

	if (test_sabotage())
		(void)!recv(k[1].s, (char[1]){ 0 }, 1, 0);
	TEST_CHECK(v6only(l6) == 1, "IPV6_V6ONLY of the listener lost");
	TEST_CHECK(v6only(k[0].s) == v6[0] && v6only(k[1].s) == v6[1] && v6only(k[2].c) == v6[2],
		   "IPV6_V6ONLY of a connection changed");
	for (int i = 0; i < 3; i++) {
		int fds[4] = { k[i].c, k[i].c, k[i].s, k[i].s };
		for (int j = 0; j < 4; j++) {
			addr_of(fds[j], j & 1, &after);
			TEST_CHECK(!memcmp(&after, &before[i][j], sizeof(after)),
				   "connection %d: address %d changed", i, j);
		}
		char w[32];
		snprintf(w, sizeof(w), "connection %d", i);
		check(&k[i], w);
	}
	int c = tcp_connect(AF_INET6, "::1", tcp_port(l6));
	TEST_CHECK(accept(l6, NULL, NULL) >= 0, "v6only listener: accept: %s", strerror(errno));
	close(c);
	test_pass();
}
