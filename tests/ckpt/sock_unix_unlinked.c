// stasis-test: timeout=30
/* Unix sockets whose socket files were removed after bind: a SOCK_DGRAM socket with two
 * datagrams queued (one sent by a socket also bound to a removed path) and a SOCK_STREAM
 * listener. After the restore: the names are the paths still (getsockname), the paths do
 * not exist, the datagrams and their sender's address are there, and the listener is
 * still listening (SO_ACCEPTCONN) but cannot be reached by its path. */
#include "lib.h"

#include <errno.h>
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

static void check_gone(int fd, const char *leaf)
{
	struct sockaddr_un a, b;
	socklen_t l = mkaddr(&a, leaf), bl = sizeof(b);
	struct stat st;
	if (getsockname(fd, (struct sockaddr *)&b, &bl) || bl != l ||
	    strcmp(a.sun_path, b.sun_path))
		test_fail("name of %s is '%s'", leaf, b.sun_path);
	if (!lstat(a.sun_path, &st))
		test_fail("%s exists again", a.sun_path);
}

int main(int argc, char **argv)
{
	test_init(argc, argv);
	/* in the test's own directory: its socket files go with it */
	if (!getcwd(dir, sizeof(dir)) || strlen(dir) > 80)
		test_fail("cwd too long for socket paths");
	int dg = bound(SOCK_DGRAM, "dgram"), from = bound(SOCK_DGRAM, "from");
	int l = bound(SOCK_STREAM, "listen");
	struct sockaddr_un a;
	socklen_t al = mkaddr(&a, "dgram");
	if (listen(l, 3) || sendto(from, "one", 3, 0, (struct sockaddr *)&a, al) != 3 ||
	    sendto(from, "two!", 4, 0, (struct sockaddr *)&a, al) != 4)
		test_fail("set up: %s", strerror(errno));
	for (const char *const *p = (const char *const[]){ "dgram", "from", "listen", NULL }; *p;
	     p++) {
		mkaddr(&a, *p);
		if (unlink(a.sun_path))
			test_fail("unlink %s: %s", a.sun_path, strerror(errno));
	}

	test_ready();
	if (test_sabotage())
		(void)recv(dg, &a, 1, MSG_DONTWAIT);
	test_wait();

	check_gone(dg, "dgram");
	check_gone(from, "from");
	check_gone(l, "listen");
	const char *want[] = { "one", "two!" };
	for (int i = 0; i < 2; i++) {
		char buf[16];
		struct sockaddr_un f, w;
		socklen_t fl = sizeof(f), wl = mkaddr(&w, "from");
		ssize_t n = recvfrom(dg, buf, sizeof(buf), MSG_DONTWAIT, (struct sockaddr *)&f, &fl);
		if (n != (ssize_t)strlen(want[i]) || memcmp(buf, want[i], (size_t)n) || fl != wl ||
		    strcmp(f.sun_path, w.sun_path))
			test_fail("datagram %d: %zd bytes from '%s'", i, n, fl > 2 ? f.sun_path : "");
	}
	int v = 0;
	socklen_t vl = sizeof(v);
	if (getsockopt(l, SOL_SOCKET, SO_ACCEPTCONN, &v, &vl) || !v)
		test_fail("the listener is not listening");
	test_pass();
}
