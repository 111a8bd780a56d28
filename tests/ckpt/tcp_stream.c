// stasis-test: timeout=60 nonroot-known=TCP repair mode needs CAP_NET_ADMIN over the net namespace
// stasis-test: rootless-known=TCP repair mode needs CAP_NET_ADMIN over the host's net namespace
/* A TCP connection over 127.0.0.1 with both ends in the process, data in flight both
 * ways at the freeze: the client filled the server's receive buffer and its own send
 * buffer (data unacknowledged and never sent), the server sent 100000 bytes the client
 * did not read. After the restore each side reads exactly the byte sequence the other
 * sent, no gap and no duplicate, the connection goes on both ways (1 MB more each way)
 * and closes cleanly (EOF, no reset). Options the program set on the client
 * (TCP_NODELAY, SO_KEEPALIVE, TCP_KEEPIDLE, SO_REUSEADDR) are kept. */
#include "tcplib.h"

int main(int argc, char **argv)
{
	struct tcp_stream c2s = { .seed = 0xC25C25ull }, s2c = { .seed = 0x52C52Cull };
	int c, s;

	test_init(argc, argv);
	tcp_lo_up();
	tcp_pair(AF_INET, "127.0.0.1", "127.0.0.1", &c, &s);
	tcp_send_some(s, &s2c, 100000);
	TEST_CHECK(s2c.sent == 100000, "server sent %llu", (unsigned long long)s2c.sent);
	tcp_fill(c, &c2s);
	int outq = 0;
	ioctl(c, TIOCOUTQ, &outq);
	test_msg("client sent %llu bytes, %d in its send queue", (unsigned long long)c2s.sent,
		 outq);
	TEST_CHECK(outq > 0, "nothing in flight in the client's send queue");
	int fl = fcntl(c, F_GETFL), on = 1, idle = 77;
	if (setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &on, sizeof(on)) ||
	    setsockopt(c, SOL_SOCKET, SO_KEEPALIVE, &on, sizeof(on)) ||
	    setsockopt(c, IPPROTO_TCP, TCP_KEEPIDLE, &idle, sizeof(idle)) ||
	    setsockopt(c, SOL_SOCKET, SO_REUSEADDR, &on, sizeof(on)))
		test_fail("socket options: %s", strerror(errno));
	test_ready();
	test_wait();

	if (test_sabotage())
		(void)!recv(s, (char[1]){ 0 }, 1, 0);
	TEST_CHECK(tcp_state(c) == TCP_ESTABLISHED && tcp_state(s) == TCP_ESTABLISHED,
		   "states %d %d", tcp_state(c), tcp_state(s));
	TEST_CHECK(fcntl(c, F_GETFL) == fl, "status flags changed");
	int v[4] = { 0, 0, 0, 0 };
	socklen_t l = sizeof(int);
	getsockopt(c, IPPROTO_TCP, TCP_NODELAY, &v[0], &l);
	getsockopt(c, SOL_SOCKET, SO_KEEPALIVE, &v[1], &l);
	getsockopt(c, IPPROTO_TCP, TCP_KEEPIDLE, &v[2], &l);
	getsockopt(c, SOL_SOCKET, SO_REUSEADDR, &v[3], &l);
	TEST_CHECK(v[0] && v[1] && v[2] == 77 && v[3], "options lost: nodelay %d keepalive %d "
		   "keepidle %d reuseaddr %d", v[0], v[1], v[2], v[3]);
	/* everything in flight arrives, in order, both ways */
	uint64_t want = c2s.sent;
	for (uint64_t t0 = test_now_ns(); c2s.rcvd < want;) {
		bool eof;
		tcp_recv_some(s, &c2s, 100, &eof);
		TEST_CHECK(!eof, "server: EOF at %llu", (unsigned long long)c2s.rcvd);
		TEST_CHECK(test_now_ns() - t0 < 20000000000ull, "server got %llu of %llu",
			   (unsigned long long)c2s.rcvd, (unsigned long long)want);
	}
	tcp_recv_until(c, &s2c, s2c.sent, 5000, "client");
	/* and goes on */
	for (int round = 0; round < 64; round++) {
		tcp_send_some(c, &c2s, 16384);
		tcp_send_some(s, &s2c, 16384);
		tcp_recv_until(s, &c2s, c2s.sent, 5000, "server (more)");
		tcp_recv_until(c, &s2c, s2c.sent, 5000, "client (more)");
	}
	TEST_CHECK(shutdown(c, SHUT_WR) == 0, "shutdown: %s", strerror(errno));
	bool eof = false;
	tcp_recv_some(s, &c2s, 2000, &eof);
	TEST_CHECK(eof, "server: no EOF after the client's shutdown");
	TEST_CHECK(send(s, "bye", 3, MSG_NOSIGNAL) == 3, "server: send after EOF: %s",
		   strerror(errno));
	char b[8];
	TEST_CHECK(test_read_within(c, b, 3, 2000) == 0 && !memcmp(b, "bye", 3),
		   "client: no bye");
	close(s);
	TEST_CHECK(test_read_within(c, b, 1, 2000) != 0 && errno != ECONNRESET,
		   "client: data or a reset after the server closed");
	test_pass();
}
