// stasis-test: timeout=30 needs=root
/* A veth pair between two net namespaces of the tree: the root enters a net namespace
 * (va, 10.30.0.1/24), its child another one (vb, 10.30.0.2/24, default route via
 * 10.30.0.1). After restore: a UDP datagram from the root to the child across the pair,
 * and the child's echo back (sockets are made after restore). */
#include "lib.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

static void sh(const char *cmd)
{
	int st = system(cmd);
	if (st != 0)
		test_fail("setup: '%s' failed (%#x)", cmd, st);
}

static int udp_sock(const char *addr, int port)
{
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons(port),
				  .sin_addr.s_addr = inet_addr(addr) };
	struct timeval tv = { .tv_sec = 3 };
	int fd = socket(AF_INET, SOCK_DGRAM, 0);
	if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) < 0 ||
	    bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
		return -1;
	return fd;
}

/* child: on each request, a socket on 10.30.0.2:5555, 'r', then echo one datagram */
static void child_loop(int rq, int an)
{
	char c;
	while (read(rq, &c, 1) == 1) {
		int fd = udp_sock("10.30.0.2", 5555);
		char ok = fd >= 0 ? 'r' : 'n', buf[16];
		struct sockaddr_in from;
		socklen_t fl = sizeof(from);
		if (write(an, &ok, 1) != 1)
			_exit(2);
		if (fd < 0)
			continue;
		ssize_t n = recvfrom(fd, buf, sizeof(buf), 0, (struct sockaddr *)&from, &fl);
		if (n > 0)
			sendto(fd, buf, (size_t)n, 0, (struct sockaddr *)&from, fl);
		close(fd);
	}
	_exit(0);
}

static int across(int rq, int an)
{
	char c = '?', r = 'n', buf[16];
	if (write(rq, &c, 1) != 1 || read(an, &r, 1) != 1 || r != 'r')
		return 0;
	int fd = udp_sock("10.30.0.1", 0);
	struct sockaddr_in to = { .sin_family = AF_INET, .sin_port = htons(5555),
				  .sin_addr.s_addr = inet_addr("10.30.0.2") };
	int ok = fd >= 0 && sendto(fd, "hello", 5, 0, (struct sockaddr *)&to, sizeof(to)) == 5 &&
		 recv(fd, buf, sizeof(buf), 0) == 5 && !memcmp(buf, "hello", 5);
	if (fd >= 0)
		close(fd);
	return ok;
}

int main(int argc, char **argv)
{
	int req[2], ans[2], go[2];
	char cmd[256], c = 'g';

	test_init(argc, argv);
	if (unshare(CLONE_NEWNET) < 0 || pipe(req) < 0 || pipe(ans) < 0 || pipe(go) < 0)
		test_fail("setup: %s", strerror(errno));
	sh("ip link set lo up");
	pid_t child = fork();
	if (child == 0) {
		signal(SIGTERM, SIG_IGN);
		close(req[1]);
		close(ans[0]);
		close(go[1]);
		char ok = unshare(CLONE_NEWNET) == 0 ? 'u' : 'n';
		if (write(ans[1], &ok, 1) != 1 || read(go[0], &ok, 1) != 1)
			_exit(1);
		if (system("ip link set lo up && ip addr add 10.30.0.2/24 dev vb && "
			   "ip link set vb up && ip route add default via 10.30.0.1") != 0)
			ok = 'n';
		if (write(ans[1], &ok, 1) != 1)
			_exit(1);
		child_loop(req[0], ans[1]);
	}
	close(req[0]);
	close(ans[1]);
	close(go[0]);
	TEST_CHECK(read(ans[0], &c, 1) == 1 && c == 'u', "child unshare");
	snprintf(cmd, sizeof(cmd),
		 "ip link add va type veth peer name vb netns %d && "
		 "ip addr add 10.30.0.1/24 dev va && ip link set va up",
		 child);
	sh(cmd);
	TEST_CHECK(write(go[1], &c, 1) == 1 && read(ans[0], &c, 1) == 1 && c != 'n',
		   "child setup");
	TEST_CHECK(across(req[1], ans[0]), "no UDP across the veth pair before checkpoint");
	test_ready();
	test_wait();
	if (test_sabotage())
		sh("ip link set va down");
	TEST_CHECK(across(req[1], ans[0]), "no UDP across the veth pair after restore");
	close(req[1]);
	int st;
	alarm(10);
	TEST_CHECK(waitpid(child, &st, 0) == child && WIFEXITED(st) && !WEXITSTATUS(st),
		   "child status %#x", st);
	test_pass();
}
