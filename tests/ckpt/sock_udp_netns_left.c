// stasis-test: timeout=30 needs=root
/* A UDP socket of a network namespace its holder has left (a DNS or syslog service
 * handed its socket, then run in a private network namespace). The root R binds a UDP
 * socket on 127.0.0.1 and sends it two datagrams from a socket of its own; its child S
 * unshares a network namespace and holds the socket. After the
 * restore: S reads the two queued datagrams with their source address (R's sender's), a
 * third R sends to the socket's address in its namespace reaches S, and the socket is of
 * R's namespace (SIOCGSKNS, where allowed). R keeps its copy of the socket: one
 * description held in two namespaces. */
#include "lib.h"
#include "nslib.h"
#include "tcplib.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

/* a datagram within 5 s: @what, from @from's port */
static bool got(int u, const char *what, in_port_t from)
{
	char buf[32] = "";
	struct sockaddr_in src;
	socklen_t sl = sizeof(src);
	struct pollfd p = { .fd = u, .events = POLLIN };
	if (poll(&p, 1, 5000) != 1)
		return false;
	ssize_t n = recvfrom(u, buf, sizeof(buf) - 1, MSG_DONTWAIT, (struct sockaddr *)&src, &sl);
	return n == (ssize_t)strlen(what) && !memcmp(buf, what, (size_t)n) &&
	       src.sin_port == from;
}

static void __attribute__((noreturn)) child_s(int wr, int u, in_port_t from, pid_t r)
{
	if (unshare(CLONE_NEWNET))
		_exit(20);
	(void)!write(wr, "s", 1);
	ns_wait_usr1();
	if (!ns_sk_in(u, ns_ino(r, "net")))
		ns_say(wr, 'S', "its socket is not of R's network namespace");
	if (ns_ino(getpid(), "net") == ns_ino(r, "net"))
		ns_say(wr, 'S', "it is in R's network namespace");
	if (!got(u, "one", from) || !got(u, "two", from))
		ns_say(wr, 'S', "the queued datagrams are not there, or not from R's sender");
	ns_say(wr, 'S',
	       got(u, "three", from) ? NULL : "R's datagram after the restore did not come");
}

int main(int argc, char **argv)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	struct sockaddr_in b = a;
	socklen_t al = sizeof(a), bl = sizeof(b);
	int res[2];

	test_init(argc, argv);
	tcp_lo_up();
	int u = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	int snd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (u < 0 || snd < 0 || bind(u, (struct sockaddr *)&a, sizeof(a)) ||
	    getsockname(u, (struct sockaddr *)&a, &al) ||
	    bind(snd, (struct sockaddr *)&b, sizeof(b)) ||
	    getsockname(snd, (struct sockaddr *)&b, &bl) || pipe(res))
		test_fail("sockets: %s", strerror(errno));
	if (sendto(snd, "one", 3, 0, (struct sockaddr *)&a, sizeof(a)) != 3 ||
	    sendto(snd, "two", 3, 0, (struct sockaddr *)&a, sizeof(a)) != 3)
		test_fail("sendto: %s", strerror(errno));
	ns_block_usr1();
	pid_t s = fork();
	if (s == 0)
		child_s(res[1], u, b.sin_port, getppid());
	ns_started(res[0], s, "S");

	test_ready();
	test_wait();

	if (test_sabotage())
		kill(s, SIGKILL);
	TEST_CHECK(sendto(snd, "three", 5, 0, (struct sockaddr *)&a, sizeof(a)) == 5,
		   "R cannot send to the socket's address: %s", strerror(errno));
	ns_finish(res[0], s, "S");
	test_pass();
}
