// stasis-test: timeout=30 needs=root
/* A NETLINK_ROUTE socket bound by the kernel (autobind, port id picked at bind) to the
 * RTMGRP_LINK group, NETLINK_NO_ENOBUFS set, in a network namespace of the test's own
 * (so that it may change a link): after the restore it has the same port id, the same
 * groups and option, and receives the RTM_NEWLINK notification of an MTU change of lo. */
#include "lib.h"
#include "sock_dgram_lib.h"

#include <errno.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <net/if.h>
#include <poll.h>
#include <sched.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

static void set_lo_mtu(int mtu)
{
	struct ifreq ifr;
	int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	memset(&ifr, 0, sizeof(ifr));
	strcpy(ifr.ifr_name, "lo");
	ifr.ifr_mtu = mtu;
	if (fd < 0 || ioctl(fd, SIOCSIFMTU, &ifr))
		test_fail("set the MTU of lo: %s", strerror(errno));
	close(fd);
}

int main(int argc, char **argv)
{
	struct sockaddr_nl a = { .nl_family = AF_NETLINK, .nl_groups = RTMGRP_LINK }, got;
	socklen_t l = sizeof(got);
	int one = 1;

	test_init(argc, argv);
	if (unshare(CLONE_NEWNET))
		test_fail("unshare(CLONE_NEWNET): %s", strerror(errno));
	if (dg_lo_up())
		test_fail("lo is down and cannot be brought up");
	int nl = socket(AF_NETLINK, SOCK_RAW, NETLINK_ROUTE);
	if (nl < 0 || bind(nl, (struct sockaddr *)&a, sizeof(a)) ||
	    setsockopt(nl, SOL_NETLINK, NETLINK_NO_ENOBUFS, &one, sizeof(one)) ||
	    getsockname(nl, (struct sockaddr *)&a, &l))
		test_fail("netlink socket: %s", strerror(errno));
	test_ready();
	test_wait();

	if (test_sabotage())
		(void)setsockopt(nl, SOL_NETLINK, NETLINK_DROP_MEMBERSHIP, &(int){ RTNLGRP_LINK },
				 sizeof(int));
	l = sizeof(got);
	memset(&got, 0, sizeof(got));
	TEST_CHECK(getsockname(nl, (struct sockaddr *)&got, &l) == 0 && got.nl_pid == a.nl_pid,
		   "port id %u, was %u", got.nl_pid, a.nl_pid);
	TEST_CHECK(got.nl_groups == RTMGRP_LINK, "groups %#x, were %#x", got.nl_groups,
		   RTMGRP_LINK);
	int v = 0;
	l = sizeof(v);
	TEST_CHECK(getsockopt(nl, SOL_NETLINK, NETLINK_NO_ENOBUFS, &v, &l) == 0 && v == 1,
		   "NETLINK_NO_ENOBUFS lost");
	set_lo_mtu(1500);
	char buf[16384];
	struct pollfd p = { .fd = nl, .events = POLLIN };
	TEST_CHECK(poll(&p, 1, 3000) == 1, "no notification after restore");
	ssize_t n = recv(nl, buf, sizeof(buf), MSG_DONTWAIT);
	const struct nlmsghdr *h = (const struct nlmsghdr *)buf;
	TEST_CHECK(n >= (ssize_t)sizeof(*h) && h->nlmsg_type == RTM_NEWLINK,
		   "expected RTM_NEWLINK, got %zd bytes of type %u", n,
		   n >= (ssize_t)sizeof(*h) ? h->nlmsg_type : 0);
	test_pass();
}
