// stasis-test: timeout=30
/* Two UDP sockets on 127.0.0.1 connected to each other, a datagram queued at each:
 * after the restore both are still connected to each other (getpeername), the queued
 * datagrams are there, new ones flow both ways, and a third socket's datagram to one of
 * them is still filtered out by the connection. */
#include "lib.h"
#include "sock_dgram_lib.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static int udp_bound(struct sockaddr_in *a)
{
	socklen_t l = sizeof(*a);
	int fd = socket(AF_INET, SOCK_DGRAM, 0);
	memset(a, 0, sizeof(*a));
	a->sin_family = AF_INET;
	a->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (fd < 0 || bind(fd, (struct sockaddr *)a, sizeof(*a)) ||
	    getsockname(fd, (struct sockaddr *)a, &l))
		test_fail("socket/bind: %s", strerror(errno));
	return fd;
}

static ssize_t recv_within(int fd, char *buf, size_t len)
{
	struct pollfd p = { .fd = fd, .events = POLLIN };
	return poll(&p, 1, 2000) == 1 ? recv(fd, buf, len, MSG_DONTWAIT) : -1;
}

int main(int argc, char **argv)
{
	struct sockaddr_in aa, ba, ca, peer;
	char buf[64];

	test_init(argc, argv);
	if (dg_lo_up())
		test_fail("lo is down and cannot be brought up");
	int a = udp_bound(&aa), b = udp_bound(&ba), c = udp_bound(&ca);
	if (connect(a, (struct sockaddr *)&ba, sizeof(ba)) ||
	    connect(b, (struct sockaddr *)&aa, sizeof(aa)))
		test_fail("connect: %s", strerror(errno));
	if (send(a, "to-b", 4, 0) != 4 || send(b, "to-a!", 5, 0) != 5)
		test_fail("send: %s", strerror(errno));
	test_ready();
	test_wait();

	if (test_sabotage())
		(void)!recv(a, buf, sizeof(buf), MSG_DONTWAIT);
	socklen_t l = sizeof(peer);
	TEST_CHECK(getpeername(a, (struct sockaddr *)&peer, &l) == 0 &&
		   peer.sin_port == ba.sin_port && peer.sin_addr.s_addr == ba.sin_addr.s_addr,
		   "a is no longer connected to b");
	l = sizeof(peer);
	TEST_CHECK(getpeername(b, (struct sockaddr *)&peer, &l) == 0 &&
		   peer.sin_port == aa.sin_port, "b is no longer connected to a");
	ssize_t n = recv(a, buf, sizeof(buf), MSG_DONTWAIT);
	TEST_CHECK(n == 5 && !memcmp(buf, "to-a!", 5), "the datagram queued at a: %zd", n);
	n = recv(b, buf, sizeof(buf), MSG_DONTWAIT);
	TEST_CHECK(n == 4 && !memcmp(buf, "to-b", 4), "the datagram queued at b: %zd", n);
	/* a third socket is filtered out by a's connection */
	TEST_CHECK(sendto(c, "no", 2, 0, (struct sockaddr *)&aa, sizeof(aa)) == 2, "sendto: %s",
		   strerror(errno));
	TEST_CHECK(send(b, "again", 5, 0) == 5 && send(a, "back", 4, 0) == 4, "send: %s",
		   strerror(errno));
	n = recv_within(a, buf, sizeof(buf));
	TEST_CHECK(n == 5 && !memcmp(buf, "again", 5), "a got %zd bytes, not b's datagram", n);
	n = recv_within(b, buf, sizeof(buf));
	TEST_CHECK(n == 4 && !memcmp(buf, "back", 4), "b got %zd bytes", n);
	n = recv(a, buf, sizeof(buf), MSG_DONTWAIT);
	TEST_CHECK(n < 0 && errno == EAGAIN, "a got a datagram it should not (%zd)", n);
	test_pass();
}
