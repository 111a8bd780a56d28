// stasis-test: timeout=30 needs=root
/* An ICMP ping socket (SOCK_DGRAM, IPPROTO_ICMP), allowed by ping_group_range set in a
 * network namespace of the test's own, bound to 127.0.0.1 with echo id 0x4242 and
 * connected to 127.0.0.1: after the restore it keeps its id and peer, and an echo request
 * it sends gets its reply (same id, the sequence and payload sent). */
#include "lib.h"
#include "sock_dgram_lib.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/ip_icmp.h>
#include <poll.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define ECHO_ID 0x4242

int main(int argc, char **argv)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons(ECHO_ID) }, got;
	socklen_t l = sizeof(got);

	test_init(argc, argv);
	if (unshare(CLONE_NEWNET))
		test_fail("unshare(CLONE_NEWNET): %s", strerror(errno));
	if (dg_lo_up())
		test_fail("lo is down and cannot be brought up");
	char range[64];
	snprintf(range, sizeof(range), "%u %u", (unsigned)getegid(), (unsigned)getegid());
	if (test_write_text("/proc/sys/net/ipv4/ping_group_range", range))
		test_fail("ping_group_range: %s", strerror(errno));
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	int s = socket(AF_INET, SOCK_DGRAM, IPPROTO_ICMP);
	if (s < 0 || bind(s, (struct sockaddr *)&a, sizeof(a)))
		test_fail("ping socket: %s", strerror(errno));
	a.sin_port = 0;
	if (connect(s, (struct sockaddr *)&a, sizeof(a)))
		test_fail("connect: %s", strerror(errno));
	test_ready();
	test_wait();

	if (test_sabotage())
		(void)connect(s, &(struct sockaddr){ .sa_family = AF_UNSPEC }, sizeof(struct sockaddr));
	memset(&got, 0, sizeof(got));
	TEST_CHECK(getsockname(s, (struct sockaddr *)&got, &l) == 0 &&
		   got.sin_port == htons(ECHO_ID), "echo id %#x, was %#x", ntohs(got.sin_port),
		   ECHO_ID);
	/* connected with port 0 (it means nothing to a ping socket): getpeername says
	 * ENOTCONN, a send without an address tells */
	struct {
		struct icmphdr h;
		char data[8];
	} req = { .h = { .type = ICMP_ECHO }, .data = "stasis!" }, rep;
	req.h.un.echo.sequence = htons(7);
	TEST_CHECK(send(s, &req, sizeof(req), 0) == (ssize_t)sizeof(req), "send (connected): %s",
		   strerror(errno));
	struct pollfd p = { .fd = s, .events = POLLIN };
	TEST_CHECK(poll(&p, 1, 3000) == 1, "no echo reply");
	ssize_t n = recv(s, &rep, sizeof(rep), MSG_DONTWAIT);
	TEST_CHECK(n == (ssize_t)sizeof(rep) && rep.h.type == ICMP_ECHOREPLY &&
		   rep.h.un.echo.id == htons(ECHO_ID) && rep.h.un.echo.sequence == htons(7) &&
		   !memcmp(rep.data, "stasis!", 8), "bad echo reply (%zd bytes)", n);
	test_pass();
}
