// stasis-test: timeout=30
/* Unix sockets bound to paths and unbound ones in one process (a connection the stream
 * listener accepted too): a SOCK_DGRAM socket bound
 * to a path with three datagrams queued (from an unbound socket, from a socket bound to
 * another path, and from a socket closed since, whose stale socket file stays), a SOCK_STREAM and a SOCK_SEQPACKET socket listening on paths
 * (backlog 7), an unbound SOCK_DGRAM socket. After the restore: every name (getsockname),
 * the socket files exist at their paths as sockets, the queued datagrams with their
 * boundaries and sender addresses (the stale file of the sender that is gone put back), the listeners accept new connections that carry data,
 * a datagram sent to the bound path arrives. */
#include "lib.h"

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

static char dir[96];

static socklen_t mkaddr(struct sockaddr_un *a, const char *leaf)
{
	memset(a, 0, sizeof(*a));
	a->sun_family = AF_UNIX;
	snprintf(a->sun_path, sizeof(a->sun_path), "%s/%s", dir, leaf);
	return (socklen_t)(offsetof(struct sockaddr_un, sun_path) + strlen(a->sun_path) + 1);
}

static int bound(int type, const char *leaf)
{
	struct sockaddr_un a;
	socklen_t l = mkaddr(&a, leaf);
	int fd = socket(AF_UNIX, type, 0);
	unlink(a.sun_path); /* left by an earlier run with the same pid */
	if (fd < 0 || bind(fd, (struct sockaddr *)&a, l))
		test_fail("bind %s: %s", a.sun_path, strerror(errno));
	return fd;
}

static void check_name(int fd, const char *leaf)
{
	struct sockaddr_un a, b;
	socklen_t l = mkaddr(&a, leaf), bl = sizeof(b);
	struct stat st;
	if (getsockname(fd, (struct sockaddr *)&b, &bl) || bl != l ||
	    strcmp(a.sun_path, b.sun_path))
		test_fail("name of %s is '%s' (%u bytes, want %u)", leaf, b.sun_path, bl, l);
	if (stat(a.sun_path, &st) || !S_ISSOCK(st.st_mode))
		test_fail("%s is not a socket file", a.sun_path);
}

static void check_dgram(int fd, const char *want, const char *from)
{
	char buf[64];
	struct sockaddr_un a;
	socklen_t al = sizeof(a);
	memset(&a, 0, sizeof(a));
	ssize_t n = recvfrom(fd, buf, sizeof(buf), MSG_DONTWAIT, (struct sockaddr *)&a, &al);
	if (n != (ssize_t)strlen(want) || memcmp(buf, want, (size_t)n))
		test_fail("datagram: got %zd bytes, want '%s'", n, want);
	if (from) {
		struct sockaddr_un w;
		socklen_t wl = mkaddr(&w, from);
		if (al != wl || strcmp(a.sun_path, w.sun_path))
			test_fail("datagram '%s' from '%s', want '%s'", want, a.sun_path, w.sun_path);
	} else if (al > offsetof(struct sockaddr_un, sun_path)) {
		test_fail("datagram '%s' from '%s', want an unbound sender", want, a.sun_path);
	}
}

static void check_listener(int l, int type, const char *leaf)
{
	struct sockaddr_un a;
	socklen_t al = mkaddr(&a, leaf);
	int c = socket(AF_UNIX, type, 0);
	if (c < 0 || connect(c, (struct sockaddr *)&a, al))
		test_fail("connect to %s: %s", leaf, strerror(errno));
	if (send(c, "hello", 5, 0) != 5)
		test_fail("send to %s", leaf);
	struct pollfd p = { .fd = l, .events = POLLIN };
	if (poll(&p, 1, 5000) != 1)
		test_fail("%s: no connection to accept", leaf);
	int s = accept(l, NULL, NULL);
	char buf[8];
	if (s < 0 || recv(s, buf, sizeof(buf), 0) != 5 || memcmp(buf, "hello", 5))
		test_fail("%s: accepted connection does not carry the data", leaf);
	int v = 0;
	socklen_t vl = sizeof(v);
	if (getsockopt(l, SOL_SOCKET, SO_ACCEPTCONN, &v, &vl) || !v)
		test_fail("%s is not listening", leaf);
	close(s);
	close(c);
}

int main(int argc, char **argv)
{
	test_init(argc, argv);
	/* in the test's own directory: its socket files go with it */
	if (!getcwd(dir, sizeof(dir)) || strlen(dir) > 80)
		test_fail("cwd too long for socket paths");

	int dg = bound(SOCK_DGRAM, "dgram");
	int other = bound(SOCK_DGRAM, "other");
	int st = bound(SOCK_STREAM, "stream");
	int sp = bound(SOCK_SEQPACKET, "seqpacket");
	int anon = socket(AF_UNIX, SOCK_DGRAM, 0);
	if (anon < 0 || listen(st, 7) || listen(sp, 7))
		test_fail("listen: %s", strerror(errno));
	struct sockaddr_un a;
	socklen_t al = mkaddr(&a, "dgram");
	/* a connection the stream listener accepted, data queued both ways */
	socklen_t sl = mkaddr(&a, "stream");
	int cs = socket(AF_UNIX, SOCK_STREAM, 0);
	if (cs < 0 || connect(cs, (struct sockaddr *)&a, sl))
		test_fail("connect: %s", strerror(errno));
	int as = accept(st, NULL, NULL);
	if (as < 0 || send(cs, "up", 2, 0) != 2 || send(as, "down", 4, 0) != 4)
		test_fail("accepted connection: %s", strerror(errno));
	al = mkaddr(&a, "dgram");
	int gone = bound(SOCK_DGRAM, "gone");
	if (sendto(anon, "first", 5, 0, (struct sockaddr *)&a, al) != 5 ||
	    sendto(other, "second!", 7, 0, (struct sockaddr *)&a, al) != 7 ||
	    sendto(gone, "third", 5, 0, (struct sockaddr *)&a, al) != 5)
		test_fail("sendto: %s", strerror(errno));
	close(gone); /* its socket file stays, stale */

	test_ready();
	if (test_sabotage()) {
		char b[8];
		(void)recv(dg, b, sizeof(b), MSG_DONTWAIT);
	}
	test_wait();

	check_name(dg, "dgram");
	check_name(other, "other");
	check_name(st, "stream");
	check_name(sp, "seqpacket");
	check_dgram(dg, "first", NULL);
	check_dgram(dg, "second!", "other");
	check_dgram(dg, "third", "gone");
	struct stat gst;
	mkaddr(&a, "gone");
	if (lstat(a.sun_path, &gst) || !S_ISSOCK(gst.st_mode))
		test_fail("the stale socket file of the sender that is gone was not put back");
	al = mkaddr(&a, "dgram");
	if (recv(dg, &a, 1, MSG_DONTWAIT) != -1 || errno != EAGAIN)
		test_fail("more datagrams queued than sent");
	/* the accepted end has its listener's name (and binds nothing of its own) */
	check_name(as, "stream");
	char ab[8];
	if (recv(as, ab, sizeof(ab), MSG_DONTWAIT) != 2 || memcmp(ab, "up", 2) ||
	    recv(cs, ab, sizeof(ab), MSG_DONTWAIT) != 4 || memcmp(ab, "down", 4))
		test_fail("the accepted connection lost its data");
	check_listener(st, SOCK_STREAM, "stream");
	check_listener(sp, SOCK_SEQPACKET, "seqpacket");
	if (sendto(anon, "again", 5, 0, (struct sockaddr *)&a, al) != 5)
		test_fail("sendto after restore: %s", strerror(errno));
	check_dgram(dg, "again", NULL);
	for (const char *const *l = (const char *const[]){ "dgram", "other", "gone", "stream",
							   "seqpacket", NULL }; *l; l++) {
		mkaddr(&a, *l);
		unlink(a.sun_path);
	}
	test_pass();
}
