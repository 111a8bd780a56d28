// stasis-test: timeout=30 needs=root
/* Unix sockets of a network namespace their holder has left (the shape of a socket
 * activated service in a private network namespace, of a runtime's sync socketpair with a
 * container's init, or of a task that went back with setns). The root R binds the
 * abstract name "r" and makes a socketpair. Its child D binds "d", then unshares a network
 * namespace: D holds a socket of R's namespace, and one end of the pair. Its child A
 * unshares one, binds "a", forks C and closes its socket; C goes back into R's namespace
 * (setns) holding A's socket. After the restore: R sends to "d" and D receives it on its
 * socket, A sends to "a" and C receives it on its socket; C reaches "r" and not "a", D
 * reaches neither; each socket's namespace (SIOCGSKNS) is the one it was made in; what R
 * writes into its end of the pair D reads from its own. Where setns back into R's
 * namespace is refused (a rootless container: R's belongs to a user namespace above), C
 * stays in A's and checks only its socket. */
#include "lib.h"
#include "nslib.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/sockios.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#define MSG NS_MSG
#define TAG "left"

static pid_t root_pid;

static int bind_name(char who)
{
	return ns_bind_name(root_pid, TAG, who);
}

static int send_to(char who, const char *what)
{
	return ns_send_to(root_pid, TAG, who, what);
}

/* @sk (made in the network namespace @pid is in) receives @what within 5 s; NULL or why
 * not */
static const char *receives(int sk, pid_t pid, const char *what)
{
	char buf[64] = "";
	if (!ns_sk_in(sk, ns_ino(pid, "net")))
		return "its socket is not in the namespace it was made in";
	if (test_read_within(sk, buf, strlen(what), 5000) || strcmp(buf, what))
		return "its socket did not receive the datagram sent to its name";
	return NULL;
}

/* C: A's socket @sk in R's namespace (or A's, @back refused) */
static void __attribute__((noreturn)) child_c(int wr, int sk, int back, pid_t a)
{
	bool in_r = !setns(back, CLONE_NEWNET);
	if (!in_r && errno != EPERM)
		_exit(30);
	close(back);
	(void)!write(wr, "c", 1);
	ns_wait_usr1();
	const char *why = receives(sk, a, "to-a");
	if (!why && in_r && (send_to('r', "c") != 1 || send_to('a', "c") != 0))
		why = "it does not see the names of R's namespace";
	ns_say(wr, 'C', why);
}

static void __attribute__((noreturn)) child_a(int wr, int back)
{
	if (unshare(CLONE_NEWNET))
		_exit(20);
	int sk = bind_name('a');
	pid_t me = getpid();
	if (sk < 0)
		_exit(21);
	pid_t c = fork();
	if (c == 0)
		child_c(wr, sk, back, me);
	close(sk);
	close(back);
	ns_wait_usr1();
	kill(c, SIGUSR1);
	const char *why = send_to('a', "to-a") == 1 ? NULL : "its name \"a\" is not there";
	if (!why && test_reap(c, false, 5) != 0)
		why = "C did not end well";
	ns_say(wr, 'A', why);
}

static void __attribute__((noreturn)) child_d(int wr, int pair)
{
	int sk = bind_name('d');
	if (sk < 0 || unshare(CLONE_NEWNET))
		_exit(40);
	(void)!write(wr, "d", 1);
	ns_wait_usr1();
	const char *why = receives(sk, root_pid, "to-d");
	if (!why && (send_to('r', "d") != 0 || send_to('d', "d") != 0))
		why = "it sees names of R's namespace";
	if (!why && receives(pair, root_pid, "pair"))
		why = "its end of the pair did not receive what R wrote";
	ns_say(wr, 'D', why);
}

int main(int argc, char **argv)
{
	int res[2];

	test_init(argc, argv);
	root_pid = getpid();
	if (pipe(res))
		test_fail("pipe: %s", strerror(errno));
	ns_block_usr1();
	int pair[2];
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, pair))
		test_fail("socketpair: %s", strerror(errno));
	pid_t d = fork();
	if (d == 0)
		child_d(res[1], pair[1]);
	close(pair[1]);
	int back = open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC);
	pid_t a = fork();
	if (a == 0)
		child_a(res[1], back);
	close(back);
	int rs = bind_name('r');
	char c[3];
	if (rs < 0 || d < 0 || a < 0 || test_read_within(res[0], c, 2, 5000) ||
	    !strchr("cd", c[0]) || !strchr("cd", c[1]) || c[0] == c[1])
		test_fail("the children did not start (D %#x, A %#x)", test_reap(d, true, 5),
			  test_reap(a, true, 5));

	test_ready();
	test_wait();

	if (test_sabotage())
		kill(d, SIGKILL);
	TEST_CHECK(ns_sk_in(rs, ns_ino(getpid(), "net")), "R's socket is not in its namespace");
	TEST_CHECK(send_to('d', "to-d") == 1, "the name \"d\" is not in R's namespace");
	TEST_CHECK(write(pair[0], "pair", 4) == 4, "R cannot write into the pair: %s",
		   strerror(errno));
	kill(d, SIGUSR1);
	kill(a, SIGUSR1);
	char why[NS_MSG + 64];
	TEST_CHECK(!ns_collect(res[0], "ACD", why, sizeof(why)), "%s", why);
	TEST_CHECK(test_reap(a, false, 5) == 0 && test_reap(d, false, 5) == 0,
		   "A or D did not end well");
	test_pass();
}
