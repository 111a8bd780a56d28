// stasis-test: timeout=30
/* Datagram unix sockets whose peer was closed: A, one end of a socketpair, with two
 * datagrams its peer sent before it was closed; B, the same after it already sent once
 * (the kernel then dropped the dead peer). After the restore A still holds the two
 * datagrams, then its first send fails with ECONNREFUSED and the next ones with
 * ENOTCONN, as before; B's sends fail with ENOTCONN at once. */
#include "lib.h"

#include <errno.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static int send_errno(int fd)
{
	return send(fd, "x", 1, MSG_DONTWAIT) < 0 ? errno : 0;
}

int main(int argc, char **argv)
{
	int a[2], b[2];
	char buf[64];

	test_init(argc, argv);
	if (socketpair(AF_UNIX, SOCK_DGRAM, 0, a) < 0 || socketpair(AF_UNIX, SOCK_DGRAM, 0, b) < 0)
		test_fail("socketpair: %s", strerror(errno));
	if (send(a[1], "first", 5, 0) != 5 || send(a[1], "second!", 7, 0) != 7)
		test_fail("send: %s", strerror(errno));
	close(a[1]);
	close(b[1]);
	if (send_errno(b[0]) != ECONNREFUSED)
		test_fail("setup: B's first send after its peer closed did not fail with ECONNREFUSED");
	test_ready();
	test_wait();

	if (recv(a[0], buf, sizeof(buf), MSG_DONTWAIT) != 5 || memcmp(buf, "first", 5) ||
	    recv(a[0], buf, sizeof(buf), MSG_DONTWAIT) != 7 || memcmp(buf, "second!", 7))
		test_fail("A's two queued datagrams are not back");
	if (recv(a[0], buf, sizeof(buf), MSG_DONTWAIT) >= 0 || errno != EAGAIN)
		test_fail("A holds more than its two datagrams");
	int e1 = send_errno(a[0]);
	if (test_sabotage())
		e1 = ENOTCONN;
	if (e1 != ECONNREFUSED || send_errno(a[0]) != ENOTCONN)
		test_fail("A's sends after the restore: %s, then not ENOTCONN (was ECONNREFUSED, "
			  "then ENOTCONN)",
			  strerror(e1));
	if (send_errno(b[0]) != ENOTCONN)
		test_fail("B's send after the restore did not fail with ENOTCONN");
	test_pass();
}
