// stasis-test: timeout=30
/* Abstract unix names in one process: a SOCK_STREAM listener on an abstract name with one
 * connection accepted (data queued both ways, the accepting end shut down for writing)
 * and a SOCK_SEQPACKET listener with one accepted connection (two records queued at the
 * accepted end), a SOCK_DGRAM socket bound to an abstract name with a datagram queued
 * from another abstract-bound socket. After the restore: names (getsockname,
 * getpeername), queued data and records, the shutdown state, sender addresses, and the
 * listeners still take connections. */
#include "lib.h"

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

static char tag[32];

static socklen_t mkaddr(struct sockaddr_un *a, const char *leaf)
{
	memset(a, 0, sizeof(*a));
	a->sun_family = AF_UNIX;
	int n = snprintf(a->sun_path + 1, sizeof(a->sun_path) - 1, "%s.%s", tag, leaf);
	return (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 + (size_t)n);
}

static int bound(int type, const char *leaf)
{
	struct sockaddr_un a;
	socklen_t l = mkaddr(&a, leaf);
	int fd = socket(AF_UNIX, type, 0);
	if (fd < 0 || bind(fd, (struct sockaddr *)&a, l))
		test_fail("bind @%s: %s", a.sun_path + 1, strerror(errno));
	return fd;
}

static void check_addr(int fd, bool peer, const char *leaf, const char *what)
{
	struct sockaddr_un a, b;
	socklen_t l = leaf ? mkaddr(&a, leaf) : (socklen_t)sizeof(sa_family_t), bl = sizeof(b);
	memset(&b, 0, sizeof(b));
	int r = peer ? getpeername(fd, (struct sockaddr *)&b, &bl)
		     : getsockname(fd, (struct sockaddr *)&b, &bl);
	if (r || bl != l || (leaf && memcmp(a.sun_path, b.sun_path, l - sizeof(sa_family_t))))
		test_fail("%s: %s is '@%s' (%u bytes, want %u)", what, peer ? "peer" : "name",
			  b.sun_path + 1, bl, l);
}

static int connect_to(int type, const char *leaf, int l)
{
	struct sockaddr_un a;
	socklen_t al = mkaddr(&a, leaf);
	int c = socket(AF_UNIX, type, 0);
	if (c < 0 || connect(c, (struct sockaddr *)&a, al))
		test_fail("connect to @%s: %s", leaf, strerror(errno));
	struct pollfd p = { .fd = l, .events = POLLIN };
	if (poll(&p, 1, 5000) != 1)
		test_fail("@%s: nothing to accept", leaf);
	return c;
}

static void expect(int fd, const char *want, const char *what)
{
	char buf[64];
	ssize_t n = recv(fd, buf, sizeof(buf), MSG_DONTWAIT);
	if (n != (ssize_t)strlen(want) || memcmp(buf, want, (size_t)n))
		test_fail("%s: got %zd bytes, want '%s'", what, n, want);
}

int main(int argc, char **argv)
{
	test_init(argc, argv);
	snprintf(tag, sizeof(tag), "stasis-abs.%d", getpid());

	int ls = bound(SOCK_STREAM, "stream"), lp = bound(SOCK_SEQPACKET, "seq");
	if (listen(ls, 4) || listen(lp, 4))
		test_fail("listen: %s", strerror(errno));
	int cs = connect_to(SOCK_STREAM, "stream", ls), as = accept(ls, NULL, NULL);
	int cp = connect_to(SOCK_SEQPACKET, "seq", lp), ap = accept(lp, NULL, NULL);
	int dg = bound(SOCK_DGRAM, "dgram"), from = bound(SOCK_DGRAM, "from");
	struct sockaddr_un a;
	socklen_t al = mkaddr(&a, "dgram");
	if (as < 0 || ap < 0 || send(cs, "to-server", 9, 0) != 9 || send(as, "to-client", 9, 0) != 9 ||
	    shutdown(as, SHUT_WR) || send(cp, "rec1", 4, 0) != 4 || send(cp, "record-2", 8, 0) != 8 ||
	    sendto(from, "dgram", 5, 0, (struct sockaddr *)&a, al) != 5)
		test_fail("set up: %s", strerror(errno));

	test_ready();
	if (test_sabotage())
		(void)send(cs, "x", 1, 0);
	test_wait();

	check_addr(ls, false, "stream", "stream listener");
	check_addr(as, false, "stream", "accepted stream");
	check_addr(as, true, NULL, "accepted stream");
	check_addr(cs, true, "stream", "stream client");
	check_addr(cs, false, NULL, "stream client");
	check_addr(ap, false, "seq", "accepted seqpacket");
	check_addr(cp, true, "seq", "seqpacket client");
	check_addr(dg, false, "dgram", "dgram");
	expect(as, "to-server", "accepted stream");
	expect(cs, "to-client", "stream client");
	if (recv(cs, &a, 1, MSG_DONTWAIT) != 0)
		test_fail("stream client: no end of file after the peer's SHUT_WR");
	if (send(cs, "more", 4, MSG_NOSIGNAL) != 4)
		test_fail("stream client cannot send any more: %s", strerror(errno));
	expect(as, "more", "accepted stream after restore");
	expect(ap, "rec1", "seqpacket record 1");
	expect(ap, "record-2", "seqpacket record 2");
	struct sockaddr_un f, w;
	socklen_t fl = sizeof(f), wl = mkaddr(&w, "from");
	char buf[16];
	if (recvfrom(dg, buf, sizeof(buf), MSG_DONTWAIT, (struct sockaddr *)&f, &fl) != 5 ||
	    fl != wl || memcmp(f.sun_path, w.sun_path, wl - sizeof(sa_family_t)))
		test_fail("datagram or its sender lost");
	int c2 = connect_to(SOCK_STREAM, "stream", ls), a2 = accept(ls, NULL, NULL);
	if (a2 < 0 || send(c2, "x", 1, 0) != 1)
		test_fail("new connection to the stream listener");
	expect(a2, "x", "new connection");
	test_pass();
}
