// stasis-test: timeout=30
/* Unix sockets whose peer closed with data unread: the kernel leaves them the error
 * ECONNRESET. A stream end with "hello" still queued for it, and a seqpacket end with
 * nothing queued. After the restore (and the dump must not take the error): the stream
 * end reads "hello", then fails with ECONNRESET, then reads end of file; the seqpacket
 * end fails with ECONNRESET, then reads end of file. */
#include "lib.h"

#include <errno.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static ssize_t rd(int fd, char *buf, size_t len)
{
	ssize_t n = recv(fd, buf, len, MSG_DONTWAIT);
	return n < 0 ? -errno : n;
}

int main(int argc, char **argv)
{
	int st[2], sq[2];
	char buf[64];

	test_init(argc, argv);
	if (socketpair(AF_UNIX, SOCK_STREAM, 0, st) < 0 ||
	    socketpair(AF_UNIX, SOCK_SEQPACKET, 0, sq) < 0)
		test_fail("socketpair: %s", strerror(errno));
	if (send(st[1], "hello", 5, 0) != 5 || send(st[0], "unread", 6, 0) != 6 ||
	    send(sq[0], "unread", 6, 0) != 6)
		test_fail("send: %s", strerror(errno));
	close(st[1]);
	close(sq[1]);
	test_ready();
	test_wait();

	ssize_t a = rd(st[0], buf, sizeof(buf));
	if (a != 5 || memcmp(buf, "hello", 5))
		test_fail("the stream end reads %zd, not its 5 queued bytes", a);
	ssize_t b = rd(st[0], buf, sizeof(buf)), c = rd(st[0], buf, sizeof(buf));
	if (test_sabotage())
		b = 0;
	if (b != -ECONNRESET || c != 0)
		test_fail("the stream end then reads %zd and %zd (was ECONNRESET, then end of file)",
			  b, c);
	b = rd(sq[0], buf, sizeof(buf));
	c = rd(sq[0], buf, sizeof(buf));
	if (b != -ECONNRESET || c != 0)
		test_fail("the seqpacket end reads %zd and %zd (was ECONNRESET, then end of file)", b,
			  c);
	test_pass();
}
