// stasis-test: timeout=30
/* A SOCK_STREAM socket listening on a path (backlog 5) with 3 connections queued but not
 * yet accepted (their clients in the same process, each bound to a path of its own so
 * that the accepted end names it), and a second listener on an abstract name with one
 * queued connection from an unbound client. After the restore the connections are
 * accepted in the order they were made (getpeername of each accepted end), each client's
 * data reaches its accepted end and back, and no fourth connection is queued. */
#include "lib.h"

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#define NCLI 3

static char dir[96];

static socklen_t mkaddr(struct sockaddr_un *a, const char *leaf)
{
	memset(a, 0, sizeof(*a));
	a->sun_family = AF_UNIX;
	snprintf(a->sun_path, sizeof(a->sun_path), "%s/%s", dir, leaf);
	return (socklen_t)(offsetof(struct sockaddr_un, sun_path) + strlen(a->sun_path) + 1);
}

static int take(int l, const char *what)
{
	struct pollfd p = { .fd = l, .events = POLLIN };
	if (poll(&p, 1, 2000) != 1)
		test_fail("%s: no queued connection", what);
	int s = accept(l, NULL, NULL);
	if (s < 0)
		test_fail("%s: accept: %s", what, strerror(errno));
	return s;
}

static void talk(int c, int s, int i)
{
	char b[4] = { 'c', (char)('0' + i) }, r[4];
	if (send(c, b, 2, 0) != 2 || recv(s, r, sizeof(r), 0) != 2 || memcmp(b, r, 2))
		test_fail("client %d: data does not reach its accepted end", i);
	b[0] = 's';
	if (send(s, b, 2, 0) != 2 || recv(c, r, sizeof(r), 0) != 2 || memcmp(b, r, 2))
		test_fail("client %d: data does not come back", i);
}

int main(int argc, char **argv)
{
	struct sockaddr_un a, b;
	socklen_t al, bl;
	char leaf[16];
	int cli[NCLI];

	test_init(argc, argv);
	/* in the test's own directory: its socket files go with it */
	if (!getcwd(dir, sizeof(dir)) || strlen(dir) > 80)
		test_fail("cwd too long for socket paths");
	int l = socket(AF_UNIX, SOCK_STREAM, 0);
	al = mkaddr(&a, "listen");
	unlink(a.sun_path); /* left by an earlier run with the same pid */
	if (l < 0 || bind(l, (struct sockaddr *)&a, al) || listen(l, 5))
		test_fail("listen: %s", strerror(errno));
	for (int i = 0; i < NCLI; i++) {
		snprintf(leaf, sizeof(leaf), "client%d", i);
		bl = mkaddr(&b, leaf);
		unlink(b.sun_path);
		cli[i] = socket(AF_UNIX, SOCK_STREAM, 0);
		if (cli[i] < 0 || bind(cli[i], (struct sockaddr *)&b, bl) ||
		    connect(cli[i], (struct sockaddr *)&a, al))
			test_fail("client %d: %s", i, strerror(errno));
	}
	struct sockaddr_un abs = { .sun_family = AF_UNIX };
	int n = snprintf(abs.sun_path + 1, sizeof(abs.sun_path) - 1, "stasis-lq.%d", getpid());
	socklen_t absl = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 + (size_t)n);
	int l2 = socket(AF_UNIX, SOCK_STREAM, 0), c2 = socket(AF_UNIX, SOCK_STREAM, 0);
	if (l2 < 0 || c2 < 0 || bind(l2, (struct sockaddr *)&abs, absl) || listen(l2, 1) ||
	    connect(c2, (struct sockaddr *)&abs, absl))
		test_fail("abstract listener: %s", strerror(errno));

	test_ready();
	if (test_sabotage())
		close(take(l, "sabotage"));
	test_wait();

	for (int i = 0; i < NCLI; i++) {
		int s = take(l, "path listener");
		snprintf(leaf, sizeof(leaf), "client%d", i);
		bl = mkaddr(&b, leaf);
		struct sockaddr_un p;
		socklen_t pl = sizeof(p);
		if (getpeername(s, (struct sockaddr *)&p, &pl) || pl != bl ||
		    strcmp(p.sun_path, b.sun_path))
			test_fail("connection %d accepted from '%s', want '%s'", i, p.sun_path,
				  b.sun_path);
		talk(cli[i], s, i);
		close(s);
	}
	struct pollfd p = { .fd = l, .events = POLLIN };
	if (poll(&p, 1, 100) != 0)
		test_fail("more connections queued than were made");
	int s2 = take(l2, "abstract listener");
	talk(c2, s2, 9);
	for (int i = 0; i < NCLI; i++) {
		snprintf(leaf, sizeof(leaf), "client%d", i);
		mkaddr(&b, leaf);
		unlink(b.sun_path);
	}
	mkaddr(&a, "listen");
	unlink(a.sun_path);
	test_pass();
}
