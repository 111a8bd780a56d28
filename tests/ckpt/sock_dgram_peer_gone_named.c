// stasis-test: timeout=30
/* Datagram unix sockets connected to a named peer that was closed (a syslog client whose
 * daemon restarted): A, bound itself, connected to S bound at a path, with a datagram S
 * sent it queued, then S closed and a new socket L bound at S's path (S's successor);
 * D connected to S2 bound to an abstract name, S2 closed. After the restore: getpeername
 * of A and D still says the closed peer's name, A's datagram is back with S's path as its
 * sender, each first send fails with ECONNREFUSED and the next with ENOTCONN, and L still
 * receives what is sent to the path. */
#include "lib.h"

#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

static socklen_t addr_of(struct sockaddr_un *sa, const char *path, bool abstract)
{
	memset(sa, 0, sizeof(*sa));
	sa->sun_family = AF_UNIX;
	size_t n = strlen(path);
	memcpy(sa->sun_path + abstract, path, n);
	return (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n + abstract);
}

static int send_errno(int fd)
{
	return send(fd, "x", 1, MSG_DONTWAIT) < 0 ? errno : 0;
}

/* (the kernel counts a path's terminating zero in its length, not an abstract name's) */
static bool same_addr(const struct sockaddr_un *got, socklen_t gl, const struct sockaddr_un *want,
		      socklen_t wl)
{
	if (want->sun_path[0])
		return gl == wl + 1 && !strcmp(got->sun_path, want->sun_path);
	return gl == wl && !memcmp(got, want, wl);
}

static bool peer_is(int fd, const struct sockaddr_un *want, socklen_t wl)
{
	struct sockaddr_un got;
	socklen_t gl = sizeof(got);
	return !getpeername(fd, (struct sockaddr *)&got, &gl) && same_addr(&got, gl, want, wl);
}

int main(int argc, char **argv)
{
	struct sockaddr_un sa_s, sa_a, sa_abs, from;
	char cwd[200], path[300], buf[64], abs_name[64];
	socklen_t fl = sizeof(from);

	test_init(argc, argv);
	if (!getcwd(cwd, sizeof(cwd)))
		test_fail("getcwd: %s", strerror(errno));
	snprintf(path, sizeof(path), "%s/srv.sock", cwd);
	socklen_t ls = addr_of(&sa_s, path, false);
	snprintf(path, sizeof(path), "%s/a.sock", cwd);
	socklen_t la = addr_of(&sa_a, path, false);
	snprintf(abs_name, sizeof(abs_name), "stasis-test-gone-%d", getpid());
	socklen_t lb = addr_of(&sa_abs, abs_name, true);
	int s = socket(AF_UNIX, SOCK_DGRAM, 0), a = socket(AF_UNIX, SOCK_DGRAM, 0);
	int s2 = socket(AF_UNIX, SOCK_DGRAM, 0), d = socket(AF_UNIX, SOCK_DGRAM, 0);
	if (bind(s, (struct sockaddr *)&sa_s, ls) || bind(a, (struct sockaddr *)&sa_a, la) ||
	    bind(s2, (struct sockaddr *)&sa_abs, lb) || connect(a, (struct sockaddr *)&sa_s, ls) ||
	    connect(d, (struct sockaddr *)&sa_abs, lb) ||
	    sendto(s, "from-srv", 8, 0, (struct sockaddr *)&sa_a, la) != 8)
		test_fail("setup: %s", strerror(errno));
	close(s);
	close(s2);
	/* S's successor at its path */
	int l = socket(AF_UNIX, SOCK_DGRAM, 0);
	if (unlink(sa_s.sun_path) || bind(l, (struct sockaddr *)&sa_s, ls))
		test_fail("setup: the successor: %s", strerror(errno));
	if (!peer_is(a, &sa_s, ls) || !peer_is(d, &sa_abs, lb))
		test_fail("setup: getpeername does not name the closed peers");
	test_ready();
	test_wait();

	TEST_CHECK(peer_is(a, &sa_s, ls), "A's peer is no longer named %s", sa_s.sun_path);
	TEST_CHECK(peer_is(d, &sa_abs, lb), "D's peer is no longer named @%s", abs_name);
	ssize_t n = recvfrom(a, buf, sizeof(buf), MSG_DONTWAIT, (struct sockaddr *)&from, &fl);
	TEST_CHECK(n == 8 && !memcmp(buf, "from-srv", 8), "A's queued datagram: %zd", n);
	TEST_CHECK(same_addr(&from, fl, &sa_s, ls), "A's datagram came from another name");
	int ea = send_errno(a), ed = send_errno(d);
	if (test_sabotage())
		ea = ENOTCONN;
	TEST_CHECK(ea == ECONNREFUSED && send_errno(a) == ENOTCONN,
		   "A's sends after the restore: %s (was ECONNREFUSED, then ENOTCONN)",
		   strerror(ea));
	TEST_CHECK(ed == ECONNREFUSED && send_errno(d) == ENOTCONN,
		   "D's sends after the restore: %s (was ECONNREFUSED, then ENOTCONN)",
		   strerror(ed));
	int c = socket(AF_UNIX, SOCK_DGRAM, 0);
	TEST_CHECK(sendto(c, "hi", 2, 0, (struct sockaddr *)&sa_s, ls) == 2 &&
			   recv(l, buf, sizeof(buf), MSG_DONTWAIT) == 2,
		   "S's successor does not receive at its path");
	test_pass();
}
