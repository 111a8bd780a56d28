// stasis-test: timeout=30
/* A SOCK_STREAM socketpair in one process with data queued in both directions (written
 * in irregular pieces, not read), one end non-blocking and close-on-exec, a peek offset
 * set by the task on the other: after the restore each end reads exactly what the other
 * wrote, in order, the flags and peek offset are kept, and the pair still talks.
 * A second pair is half shut down (SHUT_WR on one end after queueing "abc"): the reader
 * gets "abc" then EOF, writing to the shut end fails with EPIPE, the other way works. */
#include "lib.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#define A2B 60000  /* queued at sv[1] */
#define B2A 24000  /* queued at sv[0] */
#define SEED_A 0x50C0A2B0ull
#define SEED_B 0x50C0B2A0ull

static void send_pieces(int fd, const char *buf, size_t len)
{
	static const size_t pieces[] = { 1, 4095, 3, 8192, 777, 12345, 65536 };
	size_t off = 0, want;
	for (unsigned int i = 0; off < len; i++) {
		want = pieces[i % (sizeof(pieces) / sizeof(pieces[0]))];
		if (want > len - off)
			want = len - off;
		ssize_t n = send(fd, buf + off, want, MSG_DONTWAIT);
		if (n != (ssize_t)want)
			test_fail("send %zu bytes at %zu: %zd: %s", want, off, n, strerror(errno));
		off += want;
	}
}

static void recv_all(int fd, char *buf, size_t len, const char *what)
{
	size_t off = 0;
	while (off < len) {
		ssize_t n = recv(fd, buf + off, len - off, MSG_DONTWAIT);
		TEST_CHECK(n > 0, "%s: recv at %zu of %zu: %s", what, off, len,
			   n < 0 ? strerror(errno) : "EOF");
		off += (size_t)n;
	}
}

int main(int argc, char **argv)
{
	static uint64_t a2b[(A2B + 7) / 8], b2a[(B2A + 7) / 8];
	static char got[A2B];
	int sv[2], sh[2], fl[2], fdfl[2], peek = 7, avail;
	socklen_t l = sizeof(peek);

	test_init(argc, argv);
	test_fill(a2b, sizeof(a2b), SEED_A);
	test_fill(b2a, sizeof(b2a), SEED_B);
	if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv))
		test_fail("socketpair: %s", strerror(errno));
	if (fcntl(sv[0], F_SETFL, O_NONBLOCK) || fcntl(sv[0], F_SETFD, FD_CLOEXEC))
		test_fail("fcntl: %s", strerror(errno));
	send_pieces(sv[0], (const char *)a2b, A2B);
	send_pieces(sv[1], (const char *)b2a, B2A);
	/* the task's own peek offset (stasis peeks with one too, and must put it back) */
	if (setsockopt(sv[1], SOL_SOCKET, SO_PEEK_OFF, &peek, sizeof(peek)))
		test_fail("SO_PEEK_OFF: %s", strerror(errno));
	if (socketpair(AF_UNIX, SOCK_STREAM, 0, sh) || send(sh[0], "abc", 3, 0) != 3 ||
	    shutdown(sh[0], SHUT_WR) || send(sh[1], "xy", 2, 0) != 2)
		test_fail("half shut pair: %s", strerror(errno));
	for (int i = 0; i < 2; i++) {
		fl[i] = fcntl(sv[i], F_GETFL);
		fdfl[i] = fcntl(sv[i], F_GETFD);
	}
	test_ready();
	test_wait();

	if (test_sabotage())
		(void)!recv(sv[0], got, 1, MSG_DONTWAIT);
	for (int i = 0; i < 2; i++) {
		TEST_CHECK(fcntl(sv[i], F_GETFL) == fl[i], "end %d: F_GETFL %#x, was %#x", i,
			   fcntl(sv[i], F_GETFL), fl[i]);
		TEST_CHECK(fcntl(sv[i], F_GETFD) == fdfl[i], "end %d: F_GETFD changed", i);
	}
	int type = 0;
	l = sizeof(type);
	TEST_CHECK(getsockopt(sv[0], SOL_SOCKET, SO_TYPE, &type, &l) == 0 && type == SOCK_STREAM,
		   "SO_TYPE %d", type);
	peek = -2;
	l = sizeof(peek);
	TEST_CHECK(getsockopt(sv[1], SOL_SOCKET, SO_PEEK_OFF, &peek, &l) == 0 && peek == 7,
		   "SO_PEEK_OFF of end 1 is %d, was 7", peek);
	peek = -2;
	TEST_CHECK(getsockopt(sv[0], SOL_SOCKET, SO_PEEK_OFF, &peek, &l) == 0 && peek == -1,
		   "SO_PEEK_OFF of end 0 is %d, was -1", peek);
	peek = -1;
	TEST_CHECK(setsockopt(sv[1], SOL_SOCKET, SO_PEEK_OFF, &peek, sizeof(peek)) == 0,
		   "SO_PEEK_OFF off: %s", strerror(errno));
	TEST_CHECK(ioctl(sv[1], FIONREAD, &avail) == 0 && avail == A2B,
		   "%d bytes queued at end 1, expected %d", avail, A2B);
	TEST_CHECK(ioctl(sv[0], FIONREAD, &avail) == 0 && avail == B2A,
		   "%d bytes queued at end 0, expected %d", avail, B2A);
	recv_all(sv[1], got, A2B, "end 1");
	TEST_CHECK(memcmp(got, a2b, A2B) == 0, "data queued at end 1 differs");
	recv_all(sv[0], got, B2A, "end 0");
	TEST_CHECK(memcmp(got, b2a, B2A) == 0, "data queued at end 0 differs");
	struct pollfd p[2] = { { .fd = sv[0], .events = POLLIN }, { .fd = sv[1], .events = POLLIN } };
	TEST_CHECK(poll(p, 2, 0) == 0, "more data queued than was written");
	/* still one pair, both ways */
	TEST_CHECK(send(sv[0], "ping", 4, 0) == 4, "send ping: %s", strerror(errno));
	TEST_CHECK(poll(&p[1], 1, 1000) == 1 && recv(sv[1], got, 8, 0) == 4 &&
		   memcmp(got, "ping", 4) == 0, "end 1 did not get ping");
	TEST_CHECK(send(sv[1], "pong!", 5, 0) == 5, "send pong: %s", strerror(errno));
	TEST_CHECK(poll(&p[0], 1, 1000) == 1 && recv(sv[0], got, 8, 0) == 5 &&
		   memcmp(got, "pong!", 5) == 0, "end 0 did not get pong");
	/* the half shut pair */
	TEST_CHECK(recv(sh[1], got, 8, MSG_DONTWAIT) == 3 && memcmp(got, "abc", 3) == 0,
		   "half shut pair: data before EOF");
	TEST_CHECK(recv(sh[1], got, 8, MSG_DONTWAIT) == 0, "half shut pair: no EOF after the "
		   "data");
	TEST_CHECK(send(sh[0], "q", 1, MSG_NOSIGNAL | MSG_DONTWAIT) < 0 && errno == EPIPE,
		   "half shut pair: the shut end can still send");
	TEST_CHECK(recv(sh[0], got, 8, MSG_DONTWAIT) == 2 && memcmp(got, "xy", 2) == 0,
		   "half shut pair: data the other way");
	TEST_CHECK(send(sh[1], "z", 1, MSG_NOSIGNAL) == 1 && recv(sh[0], got, 8, 0) == 1 &&
		   got[0] == 'z', "half shut pair: the other way does not work");
	test_pass();
}
