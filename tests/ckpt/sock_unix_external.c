// stasis-test: timeout=30 dump-opts=--ext-unix-sk
/* A unix socket whose peer is outside the dumped tree: a server (a grandchild that was
 * orphaned, so not in the tree; it exits by itself after 60 s) listens on a path and
 * echoes what it reads on each connection it accepts, one after the other. The test's SOCK_STREAM socket is
 * connected to it and declared external (--ext-unix-sk, CRIU's spelling of --external
 * unix[INODE]). After the restore the socket is connected to the same path again: its
 * peer is the server's (getpeername) and a message comes back echoed. The test kills the
 * server by pid at the end. (In the ns flavor the orphan is the test's own child: then
 * the peer is in the tree.) */
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

static __attribute__((noreturn)) void server(const struct sockaddr_un *a, socklen_t al, int out)
{
	alarm(60);
	int l = socket(AF_UNIX, SOCK_STREAM, 0);
	unlink(a->sun_path);
	if (l < 0 || bind(l, (const struct sockaddr *)a, al) || listen(l, 4))
		_exit(1);
	pid_t me = getpid();
	if (write(out, &me, sizeof(me)) != sizeof(me))
		_exit(1);
	close(out);
	for (;;) { /* one connection at a time (no process of its own: in the ns flavor the
		    * server is in the tree) */
		int s = accept(l, NULL, NULL);
		if (s < 0)
			continue;
		char buf[64];
		ssize_t n;
		while ((n = read(s, buf, sizeof(buf))) > 0)
			if (write(s, buf, (size_t)n) != n)
				break;
		close(s);
	}
}

int main(int argc, char **argv)
{
	struct sockaddr_un a = { .sun_family = AF_UNIX };
	int pp[2], status;
	pid_t srv = 0;

	test_init(argc, argv);
	char cwd[80];
	if (!getcwd(cwd, sizeof(cwd)))
		test_fail("cwd too long for a socket path");
	snprintf(a.sun_path, sizeof(a.sun_path), "%s/ext.sock", cwd);
	socklen_t al = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + strlen(a.sun_path) + 1);
	if (pipe(pp))
		test_fail("pipe: %s", strerror(errno));
	pid_t mid = fork();
	if (mid < 0)
		test_fail("fork: %s", strerror(errno));
	if (!mid) {
		if (fork() == 0)
			server(&a, al, pp[1]);
		_exit(0);
	}
	close(pp[1]);
	if (waitpid(mid, &status, 0) != mid || read(pp[0], &srv, sizeof(srv)) != sizeof(srv))
		test_fail("the server did not start");
	close(pp[0]);
	int c = socket(AF_UNIX, SOCK_STREAM, 0);
	if (c < 0 || connect(c, (struct sockaddr *)&a, al))
		test_fail("connect to %s: %s", a.sun_path, strerror(errno));

	test_ready();
	if (test_sabotage())
		(void)write(c, "x", 1);
	test_wait();

	struct sockaddr_un p;
	socklen_t pl = sizeof(p);
	if (getpeername(c, (struct sockaddr *)&p, &pl) || pl != al || strcmp(p.sun_path, a.sun_path))
		test_fail("the peer is not %s after the restore", a.sun_path);
	char buf[16];
	struct pollfd pf = { .fd = c, .events = POLLIN };
	if (write(c, "echo", 4) != 4 || poll(&pf, 1, 5000) != 1 || read(c, buf, sizeof(buf)) != 4 ||
	    memcmp(buf, "echo", 4))
		test_fail("no echo from the server");
	kill(srv, SIGKILL);
	unlink(a.sun_path);
	test_pass();
}
