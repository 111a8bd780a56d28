// stasis-test: timeout=40
/* One SOCK_DGRAM socket bound to a path receiving from many, across processes: the
 * parent holds the receiver; child A is bound to a path of its own and connected to the
 * receiver, child B bound to another path sends with sendto, and the parent's unbound
 * socket sends too. At the dump 5 datagrams are queued, interleaved from the three
 * senders. After the restore the parent reads them in order with their boundaries and
 * sender addresses; each child then sends one more datagram (A through its connection,
 * B with sendto) and exits 0 if that worked. */
#include "lib.h"

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

static char dir[96];

static socklen_t mkaddr(struct sockaddr_un *a, const char *leaf)
{
	memset(a, 0, sizeof(*a));
	a->sun_family = AF_UNIX;
	snprintf(a->sun_path, sizeof(a->sun_path), "%s/%s", dir, leaf);
	return (socklen_t)(offsetof(struct sockaddr_un, sun_path) + strlen(a->sun_path) + 1);
}

static int bound(const char *leaf)
{
	struct sockaddr_un a;
	socklen_t l = mkaddr(&a, leaf);
	int fd = socket(AF_UNIX, SOCK_DGRAM, 0);
	unlink(a.sun_path); /* left by an earlier run with the same pid */
	if (fd < 0 || bind(fd, (struct sockaddr *)&a, l))
		test_fail("bind %s: %s", a.sun_path, strerror(errno));
	return fd;
}

/* a child: sends @first (and, for A, @second later) then waits on @go */
static pid_t sender(const char *leaf, bool conn, const char *first, int step_out, int go)
{
	pid_t pid = fork();
	if (pid < 0)
		test_fail("fork: %s", strerror(errno));
	if (pid)
		return pid;
	struct sockaddr_un to;
	socklen_t tl = mkaddr(&to, "server");
	int s = bound(leaf);
	if (conn && connect(s, (struct sockaddr *)&to, tl))
		_exit(10);
	char c;
	for (const char *m = first; *m; m += strlen(m) + 1) {
		/* one datagram per step the parent asks for (to interleave the senders) */
		if (read(go, &c, 1) != 1)
			_exit(11);
		ssize_t n = conn ? send(s, m, strlen(m), 0)
				 : sendto(s, m, strlen(m), 0, (struct sockaddr *)&to, tl);
		if (n != (ssize_t)strlen(m) || write(step_out, "k", 1) != 1)
			_exit(12);
	}
	/* the checkpoint happens while we wait here */
	for (;;) {
		ssize_t n = read(go, &c, 1);
		if (n == 1)
			break;
		if (n < 0 && errno == EINTR)
			continue;
		_exit(13);
	}
	const char *after = conn ? "A-after" : "B-after";
	ssize_t n = conn ? send(s, after, strlen(after), 0)
			 : sendto(s, after, strlen(after), 0, (struct sockaddr *)&to, tl);
	_exit(n == (ssize_t)strlen(after) ? 0 : 14);
}

static void step(int go, int done)
{
	char c;
	struct pollfd p = { .fd = done, .events = POLLIN };
	if (write(go, "g", 1) != 1 || poll(&p, 1, 5000) != 1 || read(done, &c, 1) != 1)
		test_fail("a sender did not send");
}

static void expect(int srv, const char *want, const char *from)
{
	char buf[32];
	struct sockaddr_un f, w;
	socklen_t fl = sizeof(f), wl = from ? mkaddr(&w, from) : 0;
	memset(&f, 0, sizeof(f));
	struct pollfd p = { .fd = srv, .events = POLLIN };
	if (poll(&p, 1, 5000) != 1)
		test_fail("no datagram '%s'", want);
	ssize_t n = recvfrom(srv, buf, sizeof(buf), 0, (struct sockaddr *)&f, &fl);
	if (n != (ssize_t)strlen(want) || memcmp(buf, want, (size_t)n))
		test_fail("got %zd bytes '%.*s', want '%s'", n, (int)(n > 0 ? n : 0), buf, want);
	if (fl != wl || (from && strcmp(f.sun_path, w.sun_path)))
		test_fail("datagram '%s' from '%s', want '%s'", want, fl > 2 ? f.sun_path : "",
			  from ? w.sun_path : "an unbound socket");
}

int main(int argc, char **argv)
{
	int ga[2], gb[2], da[2], db[2], status;
	test_init(argc, argv);
	/* in the test's own directory: its socket files go with it */
	if (!getcwd(dir, sizeof(dir)) || strlen(dir) > 80)
		test_fail("cwd too long for socket paths");
	int srv = bound("server");
	int anon = socket(AF_UNIX, SOCK_DGRAM, 0);
	if (anon < 0 || pipe(ga) || pipe(gb) || pipe(da) || pipe(db))
		test_fail("set up: %s", strerror(errno));
	pid_t a = sender("a", true, "A-one\0A-two-longer\0", da[1], ga[0]);
	pid_t b = sender("b", false, "B-one\0", db[1], gb[0]);
	struct sockaddr_un to;
	socklen_t tl = mkaddr(&to, "server");
	step(ga[1], da[0]);
	step(gb[1], db[0]);
	if (sendto(anon, "anon", 4, 0, (struct sockaddr *)&to, tl) != 4)
		test_fail("sendto: %s", strerror(errno));
	step(ga[1], da[0]);
	if (sendto(anon, "", 0, 0, (struct sockaddr *)&to, tl) != 0)
		test_fail("sendto an empty datagram: %s", strerror(errno));

	test_ready();
	if (test_sabotage())
		(void)recv(srv, &to, 1, MSG_DONTWAIT);
	test_wait();

	expect(srv, "A-one", "a");
	expect(srv, "B-one", "b");
	expect(srv, "anon", NULL);
	expect(srv, "A-two-longer", "a");
	expect(srv, "", NULL);
	if (write(ga[1], "g", 1) != 1)
		test_fail("wake sender A");
	expect(srv, "A-after", "a");
	if (write(gb[1], "g", 1) != 1)
		test_fail("wake sender B");
	expect(srv, "B-after", "b");
	for (int i = 0; i < 2; i++) {
		pid_t p = i ? b : a;
		if (waitpid(p, &status, 0) != p || !WIFEXITED(status) || WEXITSTATUS(status))
			test_fail("sender %c failed (status %#x)", 'A' + i, status);
	}
	for (const char *const *l = (const char *const[]){ "server", "a", "b", NULL }; *l; l++) {
		mkaddr(&to, *l);
		unlink(to.sun_path);
	}
	test_pass();
}
