// stasis-test: timeout=30
/* Datagram and netlink sockets shared through fork (a daemon's workers inheriting its UDP
 * socket; a library's netlink socket): the root binds a UDP socket on 127.0.0.1 with two
 * datagrams queued from a client socket, makes a NETLINK_ROUTE socket (autobound), and
 * forks a child that keeps both. After the restore: each is one socket in both
 * processes (kcmp), a status flag set by one shows in the other, the UDP socket keeps
 * its port and its queue (the child reads the first datagram, the root the second, with
 * their source), a datagram sent after the restore is received, and the netlink socket
 * keeps its port id and answers a request (RTM_GETLINK of lo) made by the child. In
 * the ns and uns flavors the sockets live in the tree's network namespace. */
#include "lib.h"
#include "sock_dgram_lib.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/kcmp.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

static int to_child[2], to_root[2];

/* The next datagram on @u (waiting at most 5 s): its text, checked to come from @port. */
static void expect_dgram(int u, const char *want, uint16_t port, const char *who)
{
	char buf[64] = { 0 };
	struct sockaddr_in src;
	socklen_t sl = sizeof(src);
	struct timeval tv = { .tv_sec = 5 };
	setsockopt(u, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	ssize_t n = recvfrom(u, buf, sizeof(buf) - 1, 0, (struct sockaddr *)&src, &sl);
	TEST_CHECK(n == (ssize_t)strlen(want) && !strcmp(buf, want) && ntohs(src.sin_port) == port,
		   "%s: received \"%s\" (%zd bytes) from port %u, wanted \"%s\" from %u", who, buf, n,
		   ntohs(src.sin_port), want, port);
}

/* RTM_GETLINK of lo (index 1) on @nl: the answer names lo. */
static void ask_lo(int nl)
{
	struct {
		struct nlmsghdr h;
		struct ifinfomsg i;
	} req = { .h = { .nlmsg_len = sizeof(req), .nlmsg_type = RTM_GETLINK,
			 .nlmsg_flags = NLM_F_REQUEST, .nlmsg_seq = 77 },
		  .i = { .ifi_family = AF_UNSPEC, .ifi_index = 1 } };
	struct sockaddr_nl k = { .nl_family = AF_NETLINK };
	TEST_CHECK(sendto(nl, &req, sizeof(req), 0, (struct sockaddr *)&k, sizeof(k)) ==
			   (ssize_t)sizeof(req),
		   "netlink send: %d", errno);
	char buf[8192];
	struct timeval tv = { .tv_sec = 5 };
	setsockopt(nl, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	for (;;) {
		ssize_t n = recv(nl, buf, sizeof(buf), 0);
		TEST_CHECK(n > 0, "netlink recv: %d", errno);
		const struct nlmsghdr *h = (const void *)buf;
		if (h->nlmsg_seq != 77)
			continue; /* (a notification of the group) */
		TEST_CHECK(h->nlmsg_type == RTM_NEWLINK && memmem(buf, (size_t)n, "lo", 3),
			   "netlink answer of type %u", h->nlmsg_type);
		return;
	}
}

static uint32_t portid(int nl)
{
	struct sockaddr_nl a;
	socklen_t l = sizeof(a);
	TEST_CHECK(!getsockname(nl, (struct sockaddr *)&a, &l), "getsockname: %d", errno);
	return a.nl_pid;
}

int main(int argc, char **argv)
{
	test_init(argc, argv);
	TEST_CHECK(!dg_lo_up(), "lo up: %d", errno);
	int u = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	int c = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	int nl = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE);
	TEST_CHECK(u >= 0 && c >= 0 && nl >= 0, "socket: %d", errno);
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t al = sizeof(a);
	struct sockaddr_nl k = { .nl_family = AF_NETLINK, .nl_groups = RTMGRP_LINK };
	TEST_CHECK(!bind(u, (struct sockaddr *)&a, sizeof(a)) &&
			   !getsockname(u, (struct sockaddr *)&a, &al) &&
			   !bind(c, (struct sockaddr *)&(struct sockaddr_in){
					    .sin_family = AF_INET,
					    .sin_addr.s_addr = htonl(INADDR_LOOPBACK) },
				 sizeof(a)) &&
			   !bind(nl, (struct sockaddr *)&k, sizeof(k)),
		   "bind: %d", errno);
	struct sockaddr_in ca;
	socklen_t cl = sizeof(ca);
	TEST_CHECK(!getsockname(c, (struct sockaddr *)&ca, &cl), "getsockname: %d", errno);
	uint16_t cport = ntohs(ca.sin_port), uport = ntohs(a.sin_port);
	TEST_CHECK(sendto(c, "one", 3, 0, (struct sockaddr *)&a, sizeof(a)) == 3 &&
			   sendto(c, "two", 3, 0, (struct sockaddr *)&a, sizeof(a)) == 3,
		   "sendto: %d", errno);
	uint32_t nlport = portid(nl);
	TEST_CHECK(!pipe2(to_child, O_CLOEXEC) && !pipe2(to_root, O_CLOEXEC), "pipes: %d", errno);

	pid_t pid = fork();
	TEST_CHECK(pid >= 0, "fork: %d", errno);
	if (pid == 0) {
		TEST_CHECK(test_hear(to_child[0]) == 'c', "child: no command");
		expect_dgram(u, "one", cport, "child");
		TEST_CHECK(fcntl(u, F_SETFL, O_NONBLOCK) == 0, "child: F_SETFL: %d", errno);
		ask_lo(nl);
		test_say(to_root[1], 'k');
		_exit(0);
	}
	test_ready();
	test_wait();
	if (test_sabotage())
		recv(u, (char[8]){ 0 }, 8, MSG_DONTWAIT);

	for (int i = 0; i < 2; i++) {
		int fd = i ? nl : u;
		TEST_CHECK(syscall(SYS_kcmp, getpid(), pid, KCMP_FILE, fd, fd) == 0,
			   "fd %d is not one socket in the root and its child", fd);
	}
	al = sizeof(a);
	TEST_CHECK(!getsockname(u, (struct sockaddr *)&a, &al) && ntohs(a.sin_port) == uport,
		   "the UDP socket moved to port %u from %u", ntohs(a.sin_port), uport);
	TEST_CHECK(portid(nl) == nlport, "the netlink port id is %u, was %u", portid(nl), nlport);
	test_say(to_child[1], 'c');
	TEST_CHECK(test_hear(to_root[0]) == 'k', "the child's checks failed");
	TEST_CHECK(test_reap(pid, false, 10) == 0, "the child exited badly");
	TEST_CHECK(fcntl(u, F_GETFL) & O_NONBLOCK, "the child's O_NONBLOCK is not on the root's fd");
	TEST_CHECK(fcntl(u, F_SETFL, 0) == 0, "F_SETFL: %d", errno);
	expect_dgram(u, "two", cport, "root");
	TEST_CHECK(sendto(c, "three", 5, 0, (struct sockaddr *)&a, sizeof(a)) == 5, "sendto: %d",
		   errno);
	expect_dgram(u, "three", cport, "root");
	test_pass();
}
