// stasis-test: timeout=60 nonroot-known=TCP repair mode needs CAP_NET_ADMIN over the net namespace
// stasis-test: rootless-known=TCP repair mode needs CAP_NET_ADMIN over the host's net namespace
/* A TCP client caught in SYN_SENT: its listener (backlog 1) has 2 connections waiting in
 * its full accept queue, so the kernel drops the client's SYNs. After the restore the
 * client is still connecting (SYN_SENT, non-blocking, its port kept); once the program
 * accepts the 2 waiting connections the client's SYN gets in, it connects and data
 * flows. */
#include "tcplib.h"

int main(int argc, char **argv)
{
	test_init(argc, argv);
	tcp_lo_up();
	int l = tcp_listener(AF_INET, "127.0.0.1", 1);
	uint16_t lport = tcp_port(l);
	int q[2];
	for (int i = 0; i < 2; i++)
		q[i] = tcp_connect(AF_INET, "127.0.0.1", lport);
	int c = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
	struct sockaddr_storage ss;
	socklen_t sl = tcp_addr(AF_INET, "127.0.0.1", lport, &ss);
	if (c < 0 || !connect(c, (struct sockaddr *)&ss, sl) || errno != EINPROGRESS)
		test_fail("non-blocking connect: %s", strerror(errno));
	test_sleep_ms(50);
	TEST_CHECK(tcp_state(c) == TCP_SYN_SENT, "the client is in state %d, not SYN_SENT",
		   tcp_state(c));
	uint16_t cport = tcp_port(c);
	test_ready();
	test_wait();

	if (test_sabotage())
		close(accept(l, NULL, NULL));
	TEST_CHECK(tcp_state(c) == TCP_SYN_SENT, "after the restore the client is in state %d",
		   tcp_state(c));
	TEST_CHECK(tcp_port(c) == cport, "the client's port changed");
	for (int i = 0; i < 2; i++) {
		struct pollfd p = { .fd = l, .events = POLLIN };
		TEST_CHECK(poll(&p, 1, 3000) == 1, "waiting connection %d gone", i);
		int s = accept(l, NULL, NULL);
		TEST_CHECK(s >= 0 && send(q[i], "q", 1, 0) == 1, "accept %d: %s", i, strerror(errno));
		char b;
		TEST_CHECK(test_read_within(s, &b, 1, 2000) == 0, "connection %d: no data", i);
	}
	struct pollfd p = { .fd = c, .events = POLLOUT };
	TEST_CHECK(poll(&p, 1, 10000) == 1, "the client never connected");
	int err = -1;
	socklen_t el = sizeof(err);
	TEST_CHECK(!getsockopt(c, SOL_SOCKET, SO_ERROR, &err, &el) && !err, "connect: %s",
		   strerror(err));
	p.fd = l;
	p.events = POLLIN;
	TEST_CHECK(poll(&p, 1, 3000) == 1, "the client's connection is not in the queue");
	struct sockaddr_in peer;
	socklen_t pl = sizeof(peer);
	int s = accept(l, (struct sockaddr *)&peer, &pl);
	TEST_CHECK(s >= 0 && ntohs(peer.sin_port) == cport, "accepted another connection");
	TEST_CHECK(send(c, "hi", 2, 0) == 2, "send: %s", strerror(errno));
	char b[2];
	TEST_CHECK(test_read_within(s, b, 2, 2000) == 0 && !memcmp(b, "hi", 2), "no hi");
	test_pass();
}
