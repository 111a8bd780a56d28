// stasis-test: timeout=30
/* A SOCK_DGRAM and a SOCK_SEQPACKET socketpair in one process, several messages of
 * different sizes (an empty one among them) queued in both directions: after the restore
 * every message comes back whole, in order, with its own length, nothing more; the pairs
 * still work and keep their type. */
#include "lib.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static const size_t sizes[] = { 1, 100, 0, 4096, 17, 60000, 3, 8191 };
#define NMSG (sizeof(sizes) / sizeof(sizes[0]))
#define MAXMSG 60000

static uint64_t pattern[(MAXMSG + 7) / 8 + 1];

static unsigned char msg_byte(int pair, int dir, size_t i, size_t k)
{
	return (unsigned char)(((const unsigned char *)pattern)[k] ^ (pair * 31 + dir * 7 + i));
}

static void queue_msgs(int fd, int pair, int dir)
{
	static unsigned char buf[MAXMSG];
	for (size_t i = 0; i < NMSG; i++) {
		/* each direction its own order of sizes */
		size_t sz = sizes[dir ? NMSG - 1 - i : i];
		for (size_t k = 0; k < sz; k++)
			buf[k] = msg_byte(pair, dir, i, k);
		ssize_t n = send(fd, buf, sz, MSG_DONTWAIT);
		if (n != (ssize_t)sz)
			test_fail("pair %d dir %d: send %zu bytes: %zd: %s", pair, dir, sz, n,
				  strerror(errno));
	}
}

static void check_msgs(int fd, int pair, int dir)
{
	static unsigned char buf[MAXMSG + 64];
	for (size_t i = 0; i < NMSG; i++) {
		size_t sz = sizes[dir ? NMSG - 1 - i : i];
		ssize_t n = recv(fd, buf, sizeof(buf), MSG_DONTWAIT | MSG_TRUNC);
		TEST_CHECK(n == (ssize_t)sz, "pair %d dir %d: message %zu has %zd bytes, expected "
			   "%zu (%s)", pair, dir, i, n, sz, n < 0 ? strerror(errno) : "");
		for (size_t k = 0; k < sz; k++)
			TEST_CHECK(buf[k] == msg_byte(pair, dir, i, k),
				   "pair %d dir %d: message %zu differs at byte %zu", pair, dir, i, k);
	}
	ssize_t n = recv(fd, buf, sizeof(buf), MSG_DONTWAIT);
	TEST_CHECK(n < 0 && errno == EAGAIN, "pair %d dir %d: more messages than sent (%zd)",
		   pair, dir, n);
}

int main(int argc, char **argv)
{
	static const int types[2] = { SOCK_DGRAM, SOCK_SEQPACKET };
	int sv[2][2], big = 1 << 20;

	test_init(argc, argv);
	test_fill(pattern, sizeof(pattern), 0xD6A3D6A3ull);
	for (int p = 0; p < 2; p++) {
		if (socketpair(AF_UNIX, types[p], 0, sv[p]))
			test_fail("socketpair type %d: %s", types[p], strerror(errno));
		for (int e = 0; e < 2; e++)
			(void)setsockopt(sv[p][e], SOL_SOCKET, SO_SNDBUF, &big, sizeof(big));
		queue_msgs(sv[p][0], p, 0); /* queued at sv[p][1] */
		queue_msgs(sv[p][1], p, 1); /* queued at sv[p][0] */
	}
	test_ready();
	test_wait();

	if (test_sabotage()) {
		char b[8];
		(void)!recv(sv[1][0], b, sizeof(b), MSG_DONTWAIT);
	}
	for (int p = 0; p < 2; p++) {
		for (int e = 0; e < 2; e++) {
			int type = 0;
			socklen_t l = sizeof(type);
			TEST_CHECK(getsockopt(sv[p][e], SOL_SOCKET, SO_TYPE, &type, &l) == 0 &&
				   type == types[p], "pair %d end %d: SO_TYPE %d, was %d", p, e, type,
				   types[p]);
		}
		check_msgs(sv[p][1], p, 0);
		check_msgs(sv[p][0], p, 1);
		/* still connected, boundaries still kept */
		char b[16];
		struct pollfd pfd = { .fd = sv[p][1], .events = POLLIN };
		TEST_CHECK(send(sv[p][0], "ab", 2, 0) == 2 && send(sv[p][0], "cde", 3, 0) == 3,
			   "pair %d: send after restore: %s", p, strerror(errno));
		TEST_CHECK(poll(&pfd, 1, 1000) == 1 && recv(sv[p][1], b, sizeof(b), 0) == 2 &&
			   recv(sv[p][1], b + 2, sizeof(b), 0) == 3 && memcmp(b, "abcde", 5) == 0,
			   "pair %d: the ends are not connected", p);
	}
	test_pass();
}
