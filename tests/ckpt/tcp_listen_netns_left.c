// stasis-test: timeout=30 needs=root
// stasis-test: rootless-known=S's unbound socket of the host's namespace cannot be placed: refused
/* TCP sockets of a network namespace their holder has left: the shape of a socket
 * activated service run in a private network namespace (its listener made outside). The
 * root R makes a listener on 127.0.0.1 and an unconnected socket; its child S unshares a
 * network namespace and holds both (R closes its copies). After the restore R connects to
 * the listener's address in its namespace and S accepts the connection and reads what R
 * sent; S connects its other socket to the same address (it is of R's namespace, where
 * that address is the listener) and accepts that one too; both sockets are of R's
 * namespace (SIOCGSKNS, where allowed) and S's is not R's. */
#include "lib.h"
#include "tcplib.h"
#include "nslib.h"

#include <arpa/inet.h>
#include <errno.h>
#include <linux/sockios.h>
#include <netinet/in.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

static ino_t ns_ino_net(pid_t pid)
{
	return ns_ino(pid, "net");
}

/* accept one connection on @l within 5 s and read @what from it */
static bool takes(int l, const char *what)
{
	char buf[32] = "";
	struct pollfd p = { .fd = l, .events = POLLIN };
	if (poll(&p, 1, 5000) != 1)
		return false;
	int c = accept(l, NULL, NULL);
	bool ok = c >= 0 && !test_read_within(c, buf, strlen(what), 5000) && !strcmp(buf, what);
	if (c >= 0)
		close(c);
	return ok;
}

static void __attribute__((noreturn)) child_s(int wr, int l, int u, const struct sockaddr_in *a,
					      pid_t r)
{
	if (unshare(CLONE_NEWNET))
		_exit(20);
	(void)!write(wr, "s", 1);
	ns_wait_usr1();
	if (!ns_sk_in(l, ns_ino_net(r)) || !ns_sk_in(u, ns_ino_net(r)))
		ns_say(wr, 'S', "its sockets are not of R's network namespace");
	if (ns_ino_net(getpid()) == ns_ino_net(r))
		ns_say(wr, 'S', "it is in R's network namespace");
	if (!takes(l, "from-r"))
		ns_say(wr, 'S', "R's connection did not come to its listener");
	if (connect(u, (const struct sockaddr *)a, sizeof(*a)) || write(u, "from-s", 6) != 6)
		ns_say(wr, 'S', "its other socket does not connect in R's namespace");
	ns_say(wr, 'S', takes(l, "from-s") ? NULL : "its own connection did not come");
}

int main(int argc, char **argv)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t al = sizeof(a);
	int res[2];

	test_init(argc, argv);
	tcp_lo_up();
	int l = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	int u = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (l < 0 || u < 0 || bind(l, (struct sockaddr *)&a, sizeof(a)) || listen(l, 8) ||
	    getsockname(l, (struct sockaddr *)&a, &al) || pipe(res))
		test_fail("listener: %s", strerror(errno));
	ns_block_usr1();
	pid_t s = fork();
	if (s == 0)
		child_s(res[1], l, u, &a, getppid());
	close(l);
	close(u);
	ns_started(res[0], s, "S");

	test_ready();
	test_wait();

	if (test_sabotage())
		kill(s, SIGKILL);
	int k = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	TEST_CHECK(k >= 0 && !connect(k, (struct sockaddr *)&a, sizeof(a)) &&
			   write(k, "from-r", 6) == 6,
		   "R cannot connect to the listener's address: %s", strerror(errno));
	ns_finish(res[0], s, "S");
	close(k);
	test_pass();
}
