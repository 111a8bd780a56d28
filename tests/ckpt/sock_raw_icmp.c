// stasis-test: timeout=30 needs=root
/* A raw IPv4 ICMP socket (SOCK_RAW, IPPROTO_ICMP) in a network namespace of the test's
 * own, bound to 127.0.0.1, connected to 127.0.0.1, with an ICMP_FILTER that passes only
 * echo replies: after the restore it keeps its address, its connection and its filter,
 * and an echo request it sends (the kernel answers it) comes back to it as the reply only
 * (the request itself, also looped back to raw sockets, is filtered out). */
#include "lib.h"
#include "sock_dgram_lib.h"

#include <arpa/inet.h>
#include <errno.h>
#include <linux/icmp.h>
#include <netinet/in.h>
#include <poll.h>
#include <sched.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	struct sockaddr_in a = { .sin_family = AF_INET }, got;
	socklen_t l = sizeof(got);
	/* a set bit drops that ICMP type: everything but echo replies (type 0) */
	struct icmp_filter flt = { .data = ~(1u << ICMP_ECHOREPLY) }, now;

	test_init(argc, argv);
	if (unshare(CLONE_NEWNET))
		test_fail("unshare(CLONE_NEWNET): %s", strerror(errno));
	if (dg_lo_up())
		test_fail("lo is down and cannot be brought up");
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	int s = socket(AF_INET, SOCK_RAW, IPPROTO_ICMP);
	if (s < 0 || bind(s, (struct sockaddr *)&a, sizeof(a)) ||
	    connect(s, (struct sockaddr *)&a, sizeof(a)) ||
	    setsockopt(s, SOL_RAW, ICMP_FILTER, &flt, sizeof(flt)))
		test_fail("raw socket: %s", strerror(errno));
	test_ready();
	test_wait();

	if (test_sabotage()) {
		struct icmp_filter none = { 0 };
		(void)setsockopt(s, SOL_RAW, ICMP_FILTER, &none, sizeof(none));
	}
	memset(&got, 0, sizeof(got));
	TEST_CHECK(getsockname(s, (struct sockaddr *)&got, &l) == 0 &&
		   got.sin_addr.s_addr == htonl(INADDR_LOOPBACK), "bound address lost");
	l = sizeof(now);
	TEST_CHECK(getsockopt(s, SOL_RAW, ICMP_FILTER, &now, &l) == 0 && now.data == flt.data,
		   "ICMP_FILTER %#x, was %#x", now.data, flt.data);
	struct {
		struct icmphdr h;
		char data[8];
	} req = { .h = { .type = ICMP_ECHO }, .data = "raw-ok!" };
	req.h.un.echo.id = htons(0x5151);
	/* checksum of the 16 bytes */
	uint32_t sum = 0;
	const uint16_t *w = (const uint16_t *)&req;
	for (size_t i = 0; i < sizeof(req) / 2; i++)
		sum += w[i];
	sum = (sum >> 16) + (sum & 0xffff);
	sum += sum >> 16;
	req.h.checksum = (uint16_t)~sum;
	TEST_CHECK(send(s, &req, sizeof(req), 0) == (ssize_t)sizeof(req), "send (connected): %s",
		   strerror(errno));
	char buf[256];
	struct pollfd p = { .fd = s, .events = POLLIN };
	TEST_CHECK(poll(&p, 1, 3000) == 1, "no echo reply");
	ssize_t n = recv(s, buf, sizeof(buf), MSG_DONTWAIT);
	/* a raw IPv4 socket receives the IP header too */
	size_t ihl = n > 0 ? (size_t)(buf[0] & 0xf) * 4 : 0;
	const struct icmphdr *h = (const struct icmphdr *)(buf + ihl);
	TEST_CHECK(n == (ssize_t)(ihl + sizeof(req)) && h->type == ICMP_ECHOREPLY &&
		   h->un.echo.id == htons(0x5151) && !memcmp(buf + ihl + 8, "raw-ok!", 8),
		   "expected the echo reply only, got %zd bytes of ICMP type %d", n,
		   n > (ssize_t)ihl ? h->type : -1);
	test_pass();
}
