// stasis-test: timeout=60 nonroot-known=TCP repair mode needs CAP_NET_ADMIN over the net namespace
// stasis-test: rootless-known=TCP repair mode needs CAP_NET_ADMIN over the host's net namespace
/* A listener with TCP_DEFER_ACCEPT (nginx's "deferred") and two clients connected to it
 * that have sent nothing yet: established on their side, half-open on the listener's
 * (SYN_RECV: not in the accept queue until data comes), IPv4 and IPv6; beside it a
 * plain listener with a client in its accept queue. After the restore each client sends
 * its request, and the listeners accept every one of them (any order) with its request
 * and answer; TCP_DEFER_ACCEPT is still set. (Before, the half-open side was dropped:
 * the restored client sent into nothing and no connection ever came.) */
#include "tcplib.h"

#define NC 5

struct cl {
	int fd, lst; /* client fd, listener index */
	char name[64];
};

static int defer_of(int fd)
{
	int v = -1;
	socklen_t l = sizeof(v);
	if (getsockopt(fd, IPPROTO_TCP, TCP_DEFER_ACCEPT, &v, &l))
		test_fail("TCP_DEFER_ACCEPT: %s", strerror(errno));
	return v;
}

int main(int argc, char **argv)
{
	int lst[3], on = 30;
	struct cl c[NC];
	static const int where[NC] = { 0, 0, 1, 1, 2 };
	test_init(argc, argv);
	tcp_lo_up();
	lst[0] = tcp_listener(AF_INET, "127.0.0.1", 8);
	lst[1] = tcp_listener(AF_INET6, "::1", 8);
	lst[2] = tcp_listener(AF_INET, "127.0.0.1", 8);
	for (int i = 0; i < 2; i++)
		if (setsockopt(lst[i], IPPROTO_TCP, TCP_DEFER_ACCEPT, &on, sizeof(on)))
			test_fail("TCP_DEFER_ACCEPT: %s", strerror(errno));
	int defer[2] = { defer_of(lst[0]), defer_of(lst[1]) };
	for (int k = 0; k < NC; k++) {
		int i = where[k];
		c[k].lst = i;
		c[k].fd = tcp_connect(i == 1 ? AF_INET6 : AF_INET, i == 1 ? "::1" : "127.0.0.1",
				      tcp_port(lst[i]));
		tcp_name(c[k].fd, false, c[k].name, sizeof(c[k].name));
	}
	test_sleep_ms(50);
	for (int i = 0; i < 2; i++) {
		struct pollfd p = { .fd = lst[i], .events = POLLIN };
		TEST_CHECK(poll(&p, 1, 0) == 0, "listener %d: a connection to accept before data", i);
	}
	test_ready();
	test_wait();

	for (int i = 0; i < 2; i++)
		TEST_CHECK(defer_of(lst[i]) == defer[i], "listener %d: TCP_DEFER_ACCEPT %d, was %d",
			   i, defer_of(lst[i]), defer[i]);
	for (int k = 0; k < NC; k++) {
		char req[32];
		int n = snprintf(req, sizeof(req), "GET %d", k);
		if (!test_sabotage() || k)
			TEST_CHECK(send(c[k].fd, req, (size_t)n, MSG_NOSIGNAL) == n, "client %d: send: %s",
				   k, strerror(errno));
	}
	bool seen[NC] = { false };
	for (int got = 0; got < NC; got++) {
		struct pollfd p[3] = { { lst[0], POLLIN, 0 }, { lst[1], POLLIN, 0 },
				       { lst[2], POLLIN, 0 } };
		TEST_CHECK(poll(p, 3, 5000) > 0, "%d of %d connections accepted in 5 s", got, NC);
		int i = p[0].revents ? 0 : p[1].revents ? 1 : 2;
		int s = accept(lst[i], NULL, NULL);
		TEST_CHECK(s >= 0, "accept: %s", strerror(errno));
		char peer[64], buf[32] = "";
		tcp_name(s, true, peer, sizeof(peer));
		int k = 0;
		while (k < NC && (strcmp(c[k].name, peer) || c[k].lst != i))
			k++;
		TEST_CHECK(k < NC && !seen[k], "listener %d: accepted %s, no client of it", i, peer);
		seen[k] = true;
		struct pollfd q = { s, POLLIN, 0 };
		TEST_CHECK(poll(&q, 1, 5000) == 1, "connection %d: no request", k);
		ssize_t r = recv(s, buf, sizeof(buf) - 1, 0);
		char want[32];
		snprintf(want, sizeof(want), "GET %d", k);
		TEST_CHECK(r > 0 && !strcmp(buf, want), "connection %d: request \"%s\"", k, buf);
		TEST_CHECK(send(s, "OK", 2, MSG_NOSIGNAL) == 2, "answer: %s", strerror(errno));
		TEST_CHECK(recv(c[k].fd, buf, 2, MSG_WAITALL) == 2 && !memcmp(buf, "OK", 2),
			   "client %d: no answer", k);
		close(s);
	}
	test_pass();
}
