// stasis-test: timeout=30 needs=root
// stasis-test: uns-known=net namespace sysctls holding ids (ping_group_range) are read at
//   dump in the host's view and written at restore in the container's (EINVAL): netns.c
/* Datagram sockets of a task in a user namespace of the tree (whose other files stasis
 * opens for it): a child creates a user namespace (mapped 0 -> the root's 0) and a
 * network namespace in it, brings lo up, queues three UDP datagrams from a sender at a
 * receiver, and binds a NETLINK_ROUTE socket to RTMGRP_LINK. After the restore the child
 * (asked over a pipe by the root) finds the datagrams in order with their sources, the
 * same netlink port id and groups, and the sockets owned by its own user namespace's
 * root (they were made by the task itself). */
#include "lib.h"
#include "sock_dgram_lib.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <netinet/in.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

static int rx, tx, nl;
static struct sockaddr_in rx_addr, tx_addr;
static struct sockaddr_nl nl_addr;

static int child_setup(void)
{
	socklen_t l = sizeof(rx_addr);
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	/* the default ping_group_range (1 0) names a gid this user namespace does not map:
	 * stasis could not write it back */
	if (unshare(CLONE_NEWNET) || dg_lo_up() ||
	    test_write_text("/proc/sys/net/ipv4/ping_group_range", "0 0"))
		return -1;
	rx = socket(AF_INET, SOCK_DGRAM, 0);
	tx = socket(AF_INET, SOCK_DGRAM, 0);
	if (rx < 0 || tx < 0 || bind(rx, (struct sockaddr *)&a, sizeof(a)) ||
	    bind(tx, (struct sockaddr *)&a, sizeof(a)) ||
	    getsockname(rx, (struct sockaddr *)&rx_addr, &l))
		return -1;
	l = sizeof(tx_addr);
	if (getsockname(tx, (struct sockaddr *)&tx_addr, &l))
		return -1;
	for (int i = 0; i < 3; i++) {
		char m[16];
		int n = snprintf(m, sizeof(m), "dgram-%d", i);
		if (sendto(tx, m, (size_t)n, 0, (struct sockaddr *)&rx_addr, sizeof(rx_addr)) != n)
			return -1;
	}
	nl_addr = (struct sockaddr_nl){ .nl_family = AF_NETLINK, .nl_groups = RTMGRP_LINK };
	nl = socket(AF_NETLINK, SOCK_RAW, NETLINK_ROUTE);
	l = sizeof(nl_addr);
	if (nl < 0 || bind(nl, (struct sockaddr *)&nl_addr, sizeof(nl_addr)) ||
	    getsockname(nl, (struct sockaddr *)&nl_addr, &l))
		return -1;
	return 0;
}

static bool child_check(void)
{
	for (int i = 0; i < 3; i++) {
		char m[16], want[16];
		struct sockaddr_in from;
		socklen_t l = sizeof(from);
		int n = snprintf(want, sizeof(want), "dgram-%d", i);
		ssize_t r = recvfrom(rx, m, sizeof(m), MSG_DONTWAIT, (struct sockaddr *)&from, &l);
		if (r != n || memcmp(m, want, (size_t)n) || from.sin_port != tx_addr.sin_port)
			return false;
	}
	struct sockaddr_nl got;
	socklen_t l = sizeof(got);
	struct stat st;
	/* made by the task: owned by uid 0 of its user namespace */
	return getsockname(nl, (struct sockaddr *)&got, &l) == 0 &&
	       got.nl_pid == nl_addr.nl_pid && got.nl_groups == RTMGRP_LINK &&
	       fstat(rx, &st) == 0 && st.st_uid == 0;
}

int main(int argc, char **argv)
{
	int up[2], down[2], req[2], ans[2];
	char c;

	test_init(argc, argv);
	if (pipe(up) || pipe(down) || pipe(req) || pipe(ans))
		test_fail("pipe: %s", strerror(errno));
	pid_t pid = fork();
	if (pid < 0)
		test_fail("fork: %s", strerror(errno));
	if (pid == 0) {
		signal(SIGTERM, SIG_IGN);
		close(req[1]);
		close(ans[0]);
		if (unshare(CLONE_NEWUSER) || write(up[1], "u", 1) != 1 || read(down[0], &c, 1) != 1 ||
		    setresgid(0, 0, 0) || setresuid(0, 0, 0) || prctl(PR_SET_DUMPABLE, 1) ||
		    child_setup())
			_exit(3);
		if (write(ans[1], "r", 1) != 1)
			_exit(4);
		while (read(req[0], &c, 1) == 1) {
			char ok = child_check() ? 'y' : 'n';
			if (write(ans[1], &ok, 1) != 1)
				_exit(5);
		}
		_exit(0);
	}
	char path[64];
	close(req[0]);
	close(ans[1]);
	if (read(up[0], &c, 1) != 1)
		test_fail("the child did not unshare");
	snprintf(path, sizeof(path), "/proc/%d/setgroups", (int)pid);
	if (test_write_text(path, "deny"))
		test_fail("write %s: %s", path, strerror(errno));
	snprintf(path, sizeof(path), "/proc/%d/uid_map", (int)pid);
	if (test_write_text(path, "0 0 1"))
		test_fail("write %s: %s", path, strerror(errno));
	snprintf(path, sizeof(path), "/proc/%d/gid_map", (int)pid);
	if (test_write_text(path, "0 0 1"))
		test_fail("write %s: %s", path, strerror(errno));
	if (write(down[1], "m", 1) != 1 || read(ans[0], &c, 1) != 1 || c != 'r')
		test_fail("the child did not set up its sockets");
	test_ready();
	test_wait();

	if (test_sabotage() && write(req[1], "?", 1) == 1)
		(void)!read(ans[0], &c, 1); /* the check drains the queue */
	c = 'n';
	TEST_CHECK(write(req[1], "?", 1) == 1 && read(ans[0], &c, 1) == 1 && c == 'y',
		   "the child's datagram queue, netlink socket or socket owner differ");
	close(req[1]);
	test_reap(pid, true, 5);
	test_pass();
}
