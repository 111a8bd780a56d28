// stasis-test: timeout=60 nonroot-known=TCP repair mode needs CAP_NET_ADMIN over the net namespace
// stasis-test: rootless-known=TCP repair mode needs CAP_NET_ADMIN over the host's net namespace
/* TCP connections over 127.0.0.1 caught half closed, both ends in the process:
 *   1: FIN_WAIT2 / CLOSE_WAIT ("abc" and EOF waiting for the second end);
 *   2: both ends closed (the sockets left in CLOSE, "x" and "y" still to read);
 *   3: FIN_WAIT1 (the first end shut down behind data its peer has no room for) /
 *      ESTABLISHED;
 *   4: FIN_WAIT2 / LAST_ACK (the second end shut down behind data not yet sent);
 *   5: CLOSING / FIN_WAIT2 (the first end's FIN waits behind data, the second end's FIN
 *      came in);
 *   6: reset by its peer (closed with SO_LINGER 0 after sending 3000 bytes): CLOSE, the
 *      data still to read, then EOF.
 * After the restore each socket is in the state it was in (TCP_INFO), each end reads
 * exactly what the other sent, then EOF, and what may still be sent gets through. */
#include "tcplib.h"

struct pair {
	int a, b;
	struct tcp_stream ab, ba;
};

static void mkpair(struct pair *p, uint64_t seed)
{
	tcp_pair(AF_INET, "127.0.0.1", "127.0.0.1", &p->a, &p->b);
	p->ab.seed = seed;
	p->ba.seed = seed ^ 0xBABABAull;
}

static void expect(int fd, int st, const char *what)
{
	int got = tcp_state(fd);
	TEST_CHECK(got == st, "%s: state %d, expected %d", what, got, st);
}

/* Read the whole stream @s from @fd, then EOF. */
static void drain(int fd, struct tcp_stream *s, const char *what)
{
	bool eof = tcp_recv_until(fd, s, s->sent, 10000, what);
	if (!eof)
		tcp_recv_some(fd, s, 3000, &eof);
	TEST_CHECK(eof, "%s: no EOF after %llu bytes", what, (unsigned long long)s->rcvd);
}

static void wait_state(int fd, int st, const char *what)
{
	for (int i = 0; i < 300 && tcp_state(fd) != st; i++)
		test_sleep_ms(10);
	expect(fd, st, what);
}

int main(int argc, char **argv)
{
	struct pair p[7];

	test_init(argc, argv);
	tcp_lo_up();
	/* 1 */
	mkpair(&p[1], 0x1001);
	tcp_send_some(p[1].a, &p[1].ab, 3);
	shutdown(p[1].a, SHUT_WR);
	/* 2 */
	mkpair(&p[2], 0x2002);
	tcp_send_some(p[2].a, &p[2].ab, 1);
	tcp_send_some(p[2].b, &p[2].ba, 1);
	shutdown(p[2].a, SHUT_WR);
	test_sleep_ms(20);
	shutdown(p[2].b, SHUT_WR);
	/* 3 */
	mkpair(&p[3], 0x3003);
	tcp_fill(p[3].a, &p[3].ab);
	shutdown(p[3].a, SHUT_WR);
	/* 4 */
	mkpair(&p[4], 0x4004);
	shutdown(p[4].a, SHUT_WR);
	test_sleep_ms(20);
	tcp_fill(p[4].b, &p[4].ba);
	shutdown(p[4].b, SHUT_WR);
	/* 5 */
	mkpair(&p[5], 0x5005);
	tcp_fill(p[5].a, &p[5].ab);
	shutdown(p[5].a, SHUT_WR);
	test_sleep_ms(20);
	shutdown(p[5].b, SHUT_WR);
	/* 6 */
	mkpair(&p[6], 0x6006);
	tcp_send_some(p[6].a, &p[6].ab, 3000);
	test_sleep_ms(20);
	struct linger lg = { .l_onoff = 1, .l_linger = 0 };
	if (setsockopt(p[6].a, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg)) || close(p[6].a))
		test_fail("reset pair 6: %s", strerror(errno));
	test_sleep_ms(50);
	int err6 = 0;
	socklen_t l6 = sizeof(err6);
	getsockopt(p[6].b, SOL_SOCKET, SO_ERROR, &err6, &l6); /* not carried: read now */
	TEST_CHECK(err6 == ECONNRESET, "pair 6: SO_ERROR %d", err6);
	TEST_CHECK(tcp_state(p[6].b) == TCP_CLOSE, "pair 6: state %d", tcp_state(p[6].b));
	static const int st[6][2] = {
		{ 0, 0 },
		{ TCP_FIN_WAIT2, TCP_CLOSE_WAIT },
		{ TCP_CLOSE, TCP_CLOSE },
		{ TCP_FIN_WAIT1, TCP_ESTABLISHED },
		{ TCP_FIN_WAIT2, TCP_LAST_ACK },
		{ TCP_CLOSING, TCP_FIN_WAIT2 },
	};
	for (int i = 1; i < 6; i++) {
		expect(p[i].a, st[i][0], "before: first end");
		expect(p[i].b, st[i][1], "before: second end");
	}
	test_ready();
	test_wait();

	if (test_sabotage())
		shutdown(p[3].b, SHUT_WR);
	for (int i = 1; i < 6; i++) {
		char w[64];
		snprintf(w, sizeof(w), "pair %d, first end", i);
		expect(p[i].a, st[i][0], w);
		snprintf(w, sizeof(w), "pair %d, second end", i);
		expect(p[i].b, st[i][1], w);
	}
	/* 1: the second end reads abc + EOF, may still send */
	drain(p[1].b, &p[1].ab, "pair 1, second end");
	tcp_send_some(p[1].b, &p[1].ba, 5000);
	tcp_recv_until(p[1].a, &p[1].ba, 5000, 3000, "pair 1, first end");
	TEST_CHECK(send(p[1].a, "q", 1, MSG_NOSIGNAL) < 0 && errno == EPIPE,
		   "pair 1: the shut end can send");
	close(p[1].b);
	bool eof = false;
	tcp_recv_some(p[1].a, &p[1].ba, 3000, &eof);
	TEST_CHECK(eof, "pair 1: no EOF after the second end closed");
	/* 2 */
	drain(p[2].a, &p[2].ba, "pair 2, first end");
	drain(p[2].b, &p[2].ab, "pair 2, second end");
	/* 3 */
	drain(p[3].b, &p[3].ab, "pair 3, second end");
	wait_state(p[3].a, TCP_FIN_WAIT2, "pair 3, first end after its FIN was read");
	tcp_send_some(p[3].b, &p[3].ba, 7000);
	shutdown(p[3].b, SHUT_WR);
	drain(p[3].a, &p[3].ba, "pair 3, first end");
	/* 4 */
	drain(p[4].a, &p[4].ba, "pair 4, first end");
	wait_state(p[4].b, TCP_CLOSE, "pair 4, second end after its FIN was acknowledged");
	/* 5 */
	drain(p[5].b, &p[5].ab, "pair 5, second end");
	bool e5 = false;
	tcp_recv_some(p[5].a, &p[5].ba, 3000, &e5);
	TEST_CHECK(e5, "pair 5: the first end reads no EOF");
	/* 6 */
	TEST_CHECK(tcp_state(p[6].b) == TCP_CLOSE, "pair 6: state %d", tcp_state(p[6].b));
	drain(p[6].b, &p[6].ab, "pair 6");
	TEST_CHECK(send(p[6].b, "x", 1, MSG_NOSIGNAL) < 0, "pair 6: a reset socket sends");
	test_pass();
}
