// stasis-test: timeout=30 needs=root
/* A SOCK_DGRAM packet socket bound to lo for ethertype 0x88b5 (local experimental) with
 * PACKET_AUXDATA, in a network namespace of the test's own: after the restore it is
 * bound to the same interface and protocol, keeps the option, and receives a frame of
 * that ethertype sent on lo. */
#include "lib.h"
#include "sock_dgram_lib.h"

#include <arpa/inet.h>
#include <errno.h>
#include <linux/if_packet.h>
#include <net/if.h>
#include <poll.h>
#include <sched.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define ETH_TEST 0x88b5

int main(int argc, char **argv)
{
	struct sockaddr_ll a, got;
	socklen_t l = sizeof(got);
	int one = 1;

	test_init(argc, argv);
	if (unshare(CLONE_NEWNET))
		test_fail("unshare(CLONE_NEWNET): %s", strerror(errno));
	if (dg_lo_up())
		test_fail("lo is down and cannot be brought up");
	int lo = (int)if_nametoindex("lo");
	int pk = socket(AF_PACKET, SOCK_DGRAM, 0);
	memset(&a, 0, sizeof(a));
	a.sll_family = AF_PACKET;
	a.sll_protocol = htons(ETH_TEST);
	a.sll_ifindex = lo;
	if (pk < 0 || bind(pk, (struct sockaddr *)&a, sizeof(a)) ||
	    setsockopt(pk, SOL_PACKET, PACKET_AUXDATA, &one, sizeof(one)))
		test_fail("packet socket: %s", strerror(errno));
	test_ready();
	test_wait();

	if (test_sabotage()) {
		a.sll_protocol = htons(ETH_TEST + 1);
		(void)!bind(pk, (struct sockaddr *)&a, sizeof(a));
		a.sll_protocol = htons(ETH_TEST);
	}
	memset(&got, 0, sizeof(got));
	TEST_CHECK(getsockname(pk, (struct sockaddr *)&got, &l) == 0 && got.sll_ifindex == lo &&
		   got.sll_protocol == htons(ETH_TEST), "bound to ifindex %d protocol %#x, was "
		   "%d %#x", got.sll_ifindex, ntohs(got.sll_protocol), lo, ETH_TEST);
	int v = 0;
	l = sizeof(v);
	TEST_CHECK(getsockopt(pk, SOL_PACKET, PACKET_AUXDATA, &v, &l) == 0 && v == 1,
		   "PACKET_AUXDATA lost");
	int tx = socket(AF_PACKET, SOCK_DGRAM, 0);
	TEST_CHECK(tx >= 0 && sendto(tx, "frame-after", 11, 0, (struct sockaddr *)&a,
				     sizeof(a)) == 11, "send a frame on lo: %s", strerror(errno));
	char buf[256];
	struct pollfd p = { .fd = pk, .events = POLLIN };
	TEST_CHECK(poll(&p, 1, 3000) == 1, "no frame after restore");
	ssize_t n = recv(pk, buf, sizeof(buf), MSG_DONTWAIT);
	TEST_CHECK(n == 11 && !memcmp(buf, "frame-after", 11), "frame of %zd bytes", n);
	close(tx);
	test_pass();
}
