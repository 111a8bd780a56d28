// stasis-test: timeout=30
/* TCP sockets that need no repair mode (so every flavor runs them, non-root ones too): a
 * listener on 127.0.0.1 with SO_REUSEADDR and an empty queue, an IPv6 listener on ::1, a
 * socket bound but not listening, one never bound. After the restore the listeners keep
 * their ports and options and take new connections, the bound socket keeps its port and
 * can listen, the unbound one connects. */
#include "tcplib.h"

static int opt(int fd, int level, int name)
{
	int v = -1;
	socklen_t l = sizeof(v);
	getsockopt(fd, level, name, &v, &l);
	return v;
}

int main(int argc, char **argv)
{
	int on = 1;

	test_init(argc, argv);
	tcp_lo_up();
	int l = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_storage ss;
	socklen_t sl = tcp_addr(AF_INET, "127.0.0.1", 0, &ss);
	if (l < 0 || setsockopt(l, SOL_SOCKET, SO_REUSEADDR, &on, sizeof(on)) ||
	    bind(l, (struct sockaddr *)&ss, sl) || listen(l, 7))
		test_fail("listener: %s", strerror(errno));
	uint16_t lport = tcp_port(l);
	int l6 = tcp_listener(AF_INET6, "::1", 3);
	uint16_t l6port = tcp_port(l6);
	int b = socket(AF_INET, SOCK_STREAM, 0);
	sl = tcp_addr(AF_INET, "127.0.0.1", 0, &ss);
	if (b < 0 || bind(b, (struct sockaddr *)&ss, sl))
		test_fail("bind: %s", strerror(errno));
	uint16_t bport = tcp_port(b);
	int u = socket(AF_INET, SOCK_STREAM, 0);
	test_ready();
	test_wait();

	if (test_sabotage())
		close(l6);
	TEST_CHECK(tcp_state(l) == TCP_LISTEN && tcp_port(l) == lport, "listener changed");
	TEST_CHECK(opt(l, SOL_SOCKET, SO_REUSEADDR) == 1, "SO_REUSEADDR lost");
	TEST_CHECK(opt(l, SOL_SOCKET, SO_ACCEPTCONN) == 1, "SO_ACCEPTCONN lost");
	TEST_CHECK(tcp_state(l6) == TCP_LISTEN && tcp_port(l6) == l6port, "v6 listener changed");
	TEST_CHECK(tcp_state(b) == TCP_CLOSE && tcp_port(b) == bport, "bound socket changed");
	TEST_CHECK(tcp_port(u) == 0, "the unbound socket is bound");
	int c = tcp_connect(AF_INET, "127.0.0.1", lport);
	int s = accept(l, NULL, NULL);
	TEST_CHECK(s >= 0 && send(c, "ab", 2, 0) == 2, "listener: %s", strerror(errno));
	char buf[2];
	TEST_CHECK(test_read_within(s, buf, 2, 2000) == 0 && !memcmp(buf, "ab", 2),
		   "listener: no data");
	int c6 = tcp_connect(AF_INET6, "::1", l6port);
	TEST_CHECK(accept(l6, NULL, NULL) >= 0, "v6 listener: %s", strerror(errno));
	TEST_CHECK(listen(b, 1) == 0, "the bound socket cannot listen: %s", strerror(errno));
	sl = tcp_addr(AF_INET, "127.0.0.1", bport, &ss);
	TEST_CHECK(connect(u, (struct sockaddr *)&ss, sl) == 0, "the unbound socket cannot "
		   "connect to the bound one: %s", strerror(errno));
	close(c);
	close(c6);
	test_pass();
}
