// stasis-test: timeout=60 nonroot-known=TCP repair mode needs CAP_NET_ADMIN over the net namespace
// stasis-test: rootless-known=TCP repair mode needs CAP_NET_ADMIN over the host's net namespace
/* TCP sockets of two processes: a listener shared by parent and child (inherited by
 * fork), and a connection whose client end only the child holds while the parent holds
 * the server end, with 20000 bytes queued each way, and a connection the child made to
 * the shared listener, waiting in its accept queue. After the restore the parent accepts
 * the child's connection (from the child's port) and reads "c2!" on it; the child reads
 * what the parent sent and answers, then accepts a connection the parent makes to the
 * shared listener; the child reports with its exit status. */
#include "tcplib.h"

#include <sys/wait.h>

static int child(int l, int c, int go, int rp)
{
	struct tcp_stream down = { .seed = 0xD0D0 }, up = { .seed = 0x0B0B, .sent = 20000 };
	char g;
	int c2 = tcp_connect(AF_INET, "127.0.0.1", tcp_port(l));
	uint16_t port = tcp_port(c2);
	if (write(rp, &port, sizeof(port)) != sizeof(port))
		return 5;
	if (read(go, &g, 1) != 1)
		return 2;
	if (send(c2, "c2!", 3, 0) != 3)
		return 6;
	tcp_recv_until(c, &down, 20000, 5000, "child");
	tcp_send_some(c, &up, 20000);
	fcntl(l, F_SETFL, O_NONBLOCK);
	struct pollfd p = { .fd = l, .events = POLLIN };
	if (poll(&p, 1, 5000) != 1)
		return 3;
	int s = accept(l, NULL, NULL);
	if (s < 0 || send(s, "hello", 5, 0) != 5)
		return 4;
	return 0;
}

int main(int argc, char **argv)
{
	struct tcp_stream down = { .seed = 0xD0D0 }, up = { .seed = 0x0B0B };
	int go[2], rp[2], status = 0;
	uint16_t c2port = 0;

	test_init(argc, argv);
	tcp_lo_up();
	int l = tcp_listener(AF_INET, "127.0.0.1", 4);
	int c = tcp_connect(AF_INET, "127.0.0.1", tcp_port(l));
	int s = accept(l, NULL, NULL);
	if (s < 0 || pipe(go) || pipe(rp))
		test_fail("accept/pipe: %s", strerror(errno));
	tcp_send_some(s, &down, 20000);
	tcp_send_some(c, &up, 20000);
	pid_t pid = fork();
	if (pid < 0)
		test_fail("fork: %s", strerror(errno));
	if (pid == 0) {
		close(s);
		close(go[1]);
		close(rp[0]);
		_exit(child(l, c, go[0], rp[1]));
	}
	close(c);
	close(go[0]);
	close(rp[1]);
	if (test_read_within(rp[0], &c2port, sizeof(c2port), 5000))
		test_fail("the child did not connect");
	test_sleep_ms(20);
	test_ready();
	test_wait();

	if (test_sabotage())
		(void)!recv(s, (char[4]){ 0 }, 4, 0);
	struct sockaddr_in peer;
	socklen_t pl = sizeof(peer);
	struct pollfd lp = { .fd = l, .events = POLLIN };
	TEST_CHECK(poll(&lp, 1, 5000) == 1, "the child's connection is not in the accept queue");
	int s2 = accept(l, (struct sockaddr *)&peer, &pl);
	TEST_CHECK(s2 >= 0 && ntohs(peer.sin_port) == c2port, "accepted a connection from "
		   "port %u, not the child's %u", ntohs(peer.sin_port), c2port);
	TEST_CHECK(write(go[1], "g", 1) == 1, "wake the child: %s", strerror(errno));
	char c2b[3];
	TEST_CHECK(test_read_within(s2, c2b, 3, 5000) == 0 && !memcmp(c2b, "c2!", 3),
		   "no c2! from the child's connection");
	tcp_recv_until(s, &up, 40000, 5000, "parent (queued, then the answer)");
	int k = tcp_connect(AF_INET, "127.0.0.1", tcp_port(l));
	char b[5];
	TEST_CHECK(test_read_within(k, b, 5, 5000) == 0 && !memcmp(b, "hello", 5),
		   "no hello through the shared listener");
	uint64_t deadline = test_now_ns() + 5000000000ull;
	pid_t w;
	while ((w = waitpid(pid, &status, WNOHANG)) == 0 && test_now_ns() < deadline)
		test_sleep_ms(10);
	TEST_CHECK(w == pid && WIFEXITED(status) && WEXITSTATUS(status) == 0,
		   "child failed: status %#x", status);
	test_pass();
}
