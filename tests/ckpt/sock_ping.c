// stasis-test: timeout=30 needs=root
// stasis-test: uns-known=net namespace sysctls holding ids (ping_group_range) are read at
//   dump in the host's view and written at restore in the container's (EINVAL): netns.c
/* ICMP ping sockets (SOCK_DGRAM, IPPROTO_ICMP and IPPROTO_ICMPV6), allowed by
 * ping_group_range set in a network namespace of the test's own: an IPv4 one bound to
 * 127.0.0.1 with echo id 0x4242 and an IPv6 one bound to ::1 with id 0x4343, each
 * connected to its loopback address with port 0 (getpeername then says ENOTCONN: stasis
 * reads the connection from /proc/net/icmp). After the restore each keeps its id and its
 * connection (a send without an address works), and an echo request it sends gets its
 * reply (same id, the sequence and payload sent). */
#include "lib.h"
#include "sock_dgram_lib.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/icmp6.h>
#include <netinet/in.h>
#include <netinet/ip_icmp.h>
#include <poll.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static const int ids[2] = { 0x4242, 0x4343 };

static socklen_t loop_addr(int v6, int port, struct sockaddr_storage *ss)
{
	memset(ss, 0, sizeof(*ss));
	if (!v6) {
		struct sockaddr_in *a = (struct sockaddr_in *)ss;
		a->sin_family = AF_INET;
		a->sin_port = htons((uint16_t)port);
		a->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		return sizeof(*a);
	}
	struct sockaddr_in6 *a = (struct sockaddr_in6 *)ss;
	a->sin6_family = AF_INET6;
	a->sin6_port = htons((uint16_t)port);
	a->sin6_addr = in6addr_loopback;
	return sizeof(*a);
}

static int ping_socket(int v6)
{
	struct sockaddr_storage ss;
	int s = socket(v6 ? AF_INET6 : AF_INET, SOCK_DGRAM, v6 ? IPPROTO_ICMPV6 : IPPROTO_ICMP);
	socklen_t l = loop_addr(v6, ids[v6], &ss);
	if (s < 0 || bind(s, (struct sockaddr *)&ss, l))
		test_fail("ping socket (IPv%d): %s", v6 ? 6 : 4, strerror(errno));
	l = loop_addr(v6, 0, &ss);
	if (connect(s, (struct sockaddr *)&ss, l))
		test_fail("connect (IPv%d): %s", v6 ? 6 : 4, strerror(errno));
	return s;
}

static void check(int s, int v6)
{
	struct sockaddr_storage got;
	socklen_t l = sizeof(got);
	memset(&got, 0, sizeof(got));
	TEST_CHECK(getsockname(s, (struct sockaddr *)&got, &l) == 0, "getsockname: %s",
		   strerror(errno));
	uint16_t port = v6 ? ((struct sockaddr_in6 *)&got)->sin6_port : ((struct sockaddr_in *)&got)->sin_port;
	TEST_CHECK(port == htons((uint16_t)ids[v6]), "IPv%d: echo id %#x, was %#x", v6 ? 6 : 4,
		   ntohs(port), ids[v6]);
	struct {
		struct icmphdr h; /* the same 8 bytes as an icmp6_hdr */
		char data[8];
	} req = { .data = "stasis!" }, rep;
	req.h.type = v6 ? ICMP6_ECHO_REQUEST : ICMP_ECHO;
	req.h.un.echo.sequence = htons(7);
	TEST_CHECK(send(s, &req, sizeof(req), 0) == (ssize_t)sizeof(req),
		   "IPv%d: send (connected): %s", v6 ? 6 : 4, strerror(errno));
	struct pollfd p = { .fd = s, .events = POLLIN };
	TEST_CHECK(poll(&p, 1, 3000) == 1, "IPv%d: no echo reply", v6 ? 6 : 4);
	ssize_t n = recv(s, &rep, sizeof(rep), MSG_DONTWAIT);
	TEST_CHECK(n == (ssize_t)sizeof(rep) &&
		   rep.h.type == (v6 ? ICMP6_ECHO_REPLY : ICMP_ECHOREPLY) &&
		   rep.h.un.echo.id == htons((uint16_t)ids[v6]) &&
		   rep.h.un.echo.sequence == htons(7) && !memcmp(rep.data, "stasis!", 8),
		   "IPv%d: bad echo reply (%zd bytes)", v6 ? 6 : 4, n);
}

int main(int argc, char **argv)
{
	test_init(argc, argv);
	if (unshare(CLONE_NEWNET))
		test_fail("unshare(CLONE_NEWNET): %s", strerror(errno));
	if (dg_lo_up())
		test_fail("lo is down and cannot be brought up");
	char range[64];
	snprintf(range, sizeof(range), "%u %u", (unsigned)getegid(), (unsigned)getegid());
	if (test_write_text("/proc/sys/net/ipv4/ping_group_range", range))
		test_fail("ping_group_range: %s", strerror(errno));
	int s4 = ping_socket(0), s6 = ping_socket(1);
	test_ready();
	test_wait();

	if (test_sabotage())
		(void)connect(s6, &(struct sockaddr){ .sa_family = AF_UNSPEC },
			      sizeof(struct sockaddr));
	check(s4, 0);
	check(s6, 1);
	test_pass();
}
