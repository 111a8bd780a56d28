// stasis-test: timeout=30
/* File descriptors in flight (SCM_RIGHTS) that no task holds any more: on a SOCK_STREAM
 * socketpair, one message carries the read end of a pipe (16 bytes queued in it, the
 * write end kept) and one end of a socketpair (with "inner" queued at it; the other end
 * kept); on a SOCK_DGRAM socketpair, a datagram carries a SOCK_SEQPACKET socket whose own
 * queue holds a record carrying yet another socket (a socket carrying a socket). After
 * the restore every descriptor arrives with its message and works: the pipe keeps its
 * data and its write end, the sockets their queues and their peers. */
#include "lib.h"

#include <errno.h>
#include <poll.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static void send_fds(int sk, const char *data, const int *fds, int n)
{
	union {
		char buf[CMSG_SPACE(4 * sizeof(int))];
		struct cmsghdr align;
	} c;
	struct iovec iov = { .iov_base = (void *)data, .iov_len = strlen(data) };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = c.buf,
			     .msg_controllen = CMSG_SPACE((size_t)n * sizeof(int)) };
	struct cmsghdr *cm = &c.align;
	cm->cmsg_level = SOL_SOCKET;
	cm->cmsg_type = SCM_RIGHTS;
	cm->cmsg_len = CMSG_LEN((size_t)n * sizeof(int));
	memcpy(CMSG_DATA(cm), fds, (size_t)n * sizeof(int));
	if (sendmsg(sk, &mh, 0) != (ssize_t)strlen(data))
		test_fail("sendmsg '%s': %s", data, strerror(errno));
}

/* receive @want with exactly @n descriptors into @fds */
static void recv_fds(int sk, const char *want, int *fds, int n)
{
	char buf[64], cbuf[CMSG_SPACE(8 * sizeof(int))];
	struct iovec iov = { .iov_base = buf, .iov_len = sizeof(buf) };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf,
			     .msg_controllen = sizeof(cbuf) };
	struct pollfd p = { .fd = sk, .events = POLLIN };
	if (poll(&p, 1, 5000) != 1)
		test_fail("nothing to receive (want '%s')", want);
	ssize_t r = recvmsg(sk, &mh, MSG_DONTWAIT);
	if (r != (ssize_t)strlen(want) || memcmp(buf, want, (size_t)r))
		test_fail("got %zd bytes, want '%s'", r, want);
	struct cmsghdr *cm = CMSG_FIRSTHDR(&mh);
	if (!cm || cm->cmsg_type != SCM_RIGHTS ||
	    cm->cmsg_len != CMSG_LEN((size_t)n * sizeof(int)))
		test_fail("'%s' came without its %d descriptors", want, n);
	memcpy(fds, CMSG_DATA(cm), (size_t)n * sizeof(int));
}

static void expect(int fd, const char *want, const char *what)
{
	char buf[64];
	struct pollfd p = { .fd = fd, .events = POLLIN };
	if (poll(&p, 1, 5000) != 1)
		test_fail("%s: nothing to read", what);
	ssize_t r = read(fd, buf, sizeof(buf));
	if (r != (ssize_t)strlen(want) || memcmp(buf, want, (size_t)r))
		test_fail("%s: got %zd bytes, want '%s'", what, r, want);
}

int main(int argc, char **argv)
{
	int st[2], pp[2], in[2], dg[2], sq[2], z[2];
	test_init(argc, argv);
	if (socketpair(AF_UNIX, SOCK_STREAM, 0, st) || pipe(pp) ||
	    socketpair(AF_UNIX, SOCK_STREAM, 0, in) || socketpair(AF_UNIX, SOCK_DGRAM, 0, dg) ||
	    socketpair(AF_UNIX, SOCK_SEQPACKET, 0, sq) || socketpair(AF_UNIX, SOCK_STREAM, 0, z))
		test_fail("set up: %s", strerror(errno));
	if (write(pp[1], "pipe-data-16byte", 16) != 16 || write(in[1], "inner", 5) != 5 ||
	    write(z[1], "zz", 2) != 2)
		test_fail("fill: %s", strerror(errno));
	send_fds(st[0], "before", (int[]){ pp[0] }, 1);
	send_fds(st[0], "carrier", (int[]){ pp[0], in[0] }, 2);
	if (write(st[0], "tail", 4) != 4)
		test_fail("write tail");
	/* a seqpacket socket carrying a socket, itself in flight in a datagram */
	send_fds(sq[1], "record", (int[]){ z[0] }, 1);
	send_fds(dg[1], "dgram", (int[]){ sq[0] }, 1);
	close(pp[0]);
	close(in[0]);
	close(z[0]);
	close(sq[0]);

	test_ready();
	if (test_sabotage())
		(void)write(in[1], "x", 1);
	test_wait();

	int fds[2], p0, i0, s0, z0;
	recv_fds(st[1], "before", fds, 1);
	close(fds[0]);
	recv_fds(st[1], "carrier", fds, 2);
	p0 = fds[0];
	i0 = fds[1];
	expect(st[1], "tail", "stream after the descriptors");
	expect(p0, "pipe-data-16byte", "pipe in flight");
	if (write(pp[1], "more", 4) != 4)
		test_fail("pipe write end: %s", strerror(errno));
	expect(p0, "more", "pipe in flight, new data");
	expect(i0, "inner", "socket in flight");
	if (write(i0, "back", 4) != 4)
		test_fail("socket in flight: cannot write");
	expect(in[1], "back", "peer of the socket in flight");
	recv_fds(dg[0], "dgram", &s0, 1);
	recv_fds(s0, "record", &z0, 1);
	expect(z0, "zz", "socket in flight in a socket in flight");
	if (write(sq[1], "again", 5) != 5)
		test_fail("seqpacket peer: %s", strerror(errno));
	expect(s0, "again", "seqpacket in flight");
	test_pass();
}
