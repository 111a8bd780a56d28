// stasis-test: timeout=60 nonroot-known=TCP repair mode needs CAP_NET_ADMIN over the net namespace
// stasis-test: rootless-known=TCP repair mode needs CAP_NET_ADMIN over the host's net namespace
/* A listening TCP socket on 127.0.0.1 with 3 connections that completed the handshake
 * and wait in its accept queue (their clients in the process), a socket bound but not listening, one never bound, and an empty listener:
 * after the restore the 3 connections are accepted (from the clients' own addresses),
 * carry data both ways, the bound socket keeps its port, the unbound one connects to
 * the listener, and the empty listener takes a new connection. */
#include "tcplib.h"

int main(int argc, char **argv)
{
	int cl[3];
	uint16_t cport[3];

	test_init(argc, argv);
	tcp_lo_up();
	int l = tcp_listener(AF_INET, "127.0.0.1", 8);
	uint16_t lport = tcp_port(l);
	for (int i = 0; i < 3; i++) {
		cl[i] = tcp_connect(AF_INET, "127.0.0.1", lport);
		cport[i] = tcp_port(cl[i]);
	}
	int b = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_storage ss;
	socklen_t sl = tcp_addr(AF_INET, "127.0.0.1", 0, &ss);
	if (b < 0 || bind(b, (struct sockaddr *)&ss, sl))
		test_fail("bind: %s", strerror(errno));
	uint16_t bport = tcp_port(b);
	int u = socket(AF_INET, SOCK_STREAM, 0);
	int e = tcp_listener(AF_INET, "127.0.0.1", 2);
	uint16_t eport = tcp_port(e);
	test_sleep_ms(20);
	test_ready();
	test_wait();

	if (test_sabotage())
		close(accept(l, NULL, NULL));
	TEST_CHECK(tcp_state(l) == TCP_LISTEN && tcp_port(l) == lport, "listener changed");
	TEST_CHECK(tcp_port(b) == bport && tcp_state(b) == TCP_CLOSE, "bound socket changed");
	TEST_CHECK(tcp_port(u) == 0, "unbound socket is bound");
	fcntl(l, F_SETFL, O_NONBLOCK);
	bool seen[3] = { false, false, false };
	for (int k = 0; k < 3; k++) {
		struct pollfd p = { .fd = l, .events = POLLIN };
		TEST_CHECK(poll(&p, 1, 3000) == 1, "connection %d not in the accept queue", k);
		struct sockaddr_in peer;
		socklen_t pl = sizeof(peer);
		int s = accept(l, (struct sockaddr *)&peer, &pl);
		TEST_CHECK(s >= 0, "accept %d: %s", k, strerror(errno));
		int i;
		for (i = 0; i < 3 && cport[i] != ntohs(peer.sin_port); i++)
			;
		TEST_CHECK(i < 3 && !seen[i], "accepted a connection from port %u",
			   ntohs(peer.sin_port));
		seen[i] = true;
		struct tcp_stream up = { .seed = 0x100u + (unsigned)i }, down = { .seed = 0x200u + (unsigned)i };
		tcp_send_some(cl[i], &up, 50000);
		tcp_recv_until(s, &up, up.sent, 5000, "server");
		tcp_send_some(s, &down, 70000);
		tcp_recv_until(cl[i], &down, down.sent, 5000, "client");
		close(s);
	}
	struct pollfd p = { .fd = l, .events = POLLIN };
	TEST_CHECK(poll(&p, 1, 100) == 0, "a fourth connection in the accept queue");
	sl = tcp_addr(AF_INET, "127.0.0.1", lport, &ss);
	TEST_CHECK(connect(u, (struct sockaddr *)&ss, sl) == 0, "unbound socket: connect: %s",
		   strerror(errno));
	int s = accept(l, NULL, NULL);
	TEST_CHECK(s >= 0, "accept the unbound socket's connection: %s", strerror(errno));
	int c = tcp_connect(AF_INET, "127.0.0.1", eport);
	int s2 = accept(e, NULL, NULL);
	TEST_CHECK(s2 >= 0 && send(c, "hi", 2, 0) == 2, "empty listener: %s", strerror(errno));
	char buf[2];
	TEST_CHECK(test_read_within(s2, buf, 2, 2000) == 0, "empty listener: no data");
	test_pass();
}
