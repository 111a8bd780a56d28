// stasis-test: timeout=30
/* Peer credentials of unix sockets (SO_PEERCRED) shared by several processes: a stream
 * socketpair this process made before forking a child that keeps both ends too; a
 * listener of this process and a connection to it from that child, each keeping its
 * end (the accepted end names the child, the client end this process); a datagram
 * socketpair made by a second child with other ids (when the test may take them) that
 * sent it here and exited, one end passed on to the first child; a connection of the
 * first child to a second listener of this process, not accepted yet. After the restore
 * every end in every process reads the same pid, uid and gid as before, and the queued
 * connection, accepted then, names the child. */
#include "lib.h"

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

struct want {
	pid_t pid;
	uid_t uid;
	gid_t gid;
};

static struct want peer(int fd, const char *what)
{
	struct ucred c;
	socklen_t l = sizeof(c);
	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &c, &l) || l != sizeof(c))
		test_fail("%s: SO_PEERCRED: %s", what, strerror(errno));
	return (struct want){ c.pid, c.uid, c.gid };
}

static bool same(struct want a, struct want b)
{
	return a.pid == b.pid && a.uid == b.uid && a.gid == b.gid;
}

static void expect(int fd, const char *what, struct want w)
{
	struct want c = peer(fd, what);
	if (!same(c, w))
		test_fail("%s: pid %d uid %d gid %d, want %d %d %d", what, c.pid, (int)c.uid,
			  (int)c.gid, w.pid, (int)w.uid, (int)w.gid);
}

static void send_fd(int via, int fd)
{
	char cb[CMSG_SPACE(sizeof(int))] = { 0 }, f = 'f';
	struct iovec iov = { &f, 1 };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = cb,
			     .msg_controllen = sizeof(cb) };
	struct cmsghdr *cm = CMSG_FIRSTHDR(&mh);
	if (!cm)
		test_fail("no room for a descriptor");
	cm->cmsg_level = SOL_SOCKET;
	cm->cmsg_type = SCM_RIGHTS;
	cm->cmsg_len = CMSG_LEN(sizeof(int));
	memcpy(CMSG_DATA(cm), &fd, sizeof(int));
	if (sendmsg(via, &mh, 0) != 1)
		test_fail("send a descriptor: %s", strerror(errno));
}

static int recv_fd(int via)
{
	char cb[CMSG_SPACE(sizeof(int))], c;
	struct iovec iov = { &c, 1 };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = cb,
			     .msg_controllen = sizeof(cb) };
	struct pollfd p = { .fd = via, .events = POLLIN };
	int fd;
	if (poll(&p, 1, 10000) != 1 || recvmsg(via, &mh, 0) != 1)
		test_fail("receive a descriptor: %s", strerror(errno));
	struct cmsghdr *cm = CMSG_FIRSTHDR(&mh);
	if (!cm || cm->cmsg_type != SCM_RIGHTS)
		test_fail("receive a descriptor: none");
	memcpy(&fd, CMSG_DATA(cm), sizeof(int));
	return fd;
}

int main(int argc, char **argv)
{
	test_init(argc, argv);
	struct want me = { getpid(), geteuid(), getegid() };
	bool other_ids = me.uid == 0;
	int pair[2], via[2], back[2];
	if (socketpair(AF_UNIX, SOCK_STREAM, 0, pair) || socketpair(AF_UNIX, SOCK_DGRAM, 0, via) ||
	    socketpair(AF_UNIX, SOCK_DGRAM, 0, back))
		test_fail("socketpair: %s", strerror(errno));
	struct sockaddr_un a = { .sun_family = AF_UNIX };
	int n = snprintf(a.sun_path + 1, sizeof(a.sun_path) - 1, "stasis-pct.%d", me.pid);
	socklen_t al = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 + (size_t)n);
	int l = socket(AF_UNIX, SOCK_STREAM, 0);
	if (l < 0 || bind(l, (struct sockaddr *)&a, al) || listen(l, 4))
		test_fail("listener: %s", strerror(errno));
	struct sockaddr_un a2 = a;
	a2.sun_path[1] = 'q'; /* a second name */
	int l2 = socket(AF_UNIX, SOCK_STREAM, 0);
	if (l2 < 0 || bind(l2, (struct sockaddr *)&a2, al) || listen(l2, 4))
		test_fail("second listener: %s", strerror(errno));

	/* the second child: a datagram socketpair with other ids, sent here, gone */
	pid_t g = fork();
	if (g == 0) {
		int sv[2];
		if ((other_ids && (setresgid(2007, 2007, 2007) || setresuid(1007, 1007, 1007))) ||
		    socketpair(AF_UNIX, SOCK_DGRAM, 0, sv))
			_exit(2);
		send_fd(via[1], sv[0]);
		send_fd(via[1], sv[1]);
		_exit(0);
	}
	int d0 = recv_fd(via[0]), d1 = recv_fd(via[0]), st;
	if (g < 0 || waitpid(g, &st, 0) != g || st)
		test_fail("second child: %#x", st);
	struct want gone = { g, other_ids ? 1007 : me.uid, other_ids ? 2007 : me.gid };

	/* the first child: keeps both ends of the pair, connects to the listener, gets d1 */
	int ready[2];
	if (pipe(ready))
		test_fail("pipe: %s", strerror(errno));
	pid_t k = fork();
	if (k == 0) {
		close(ready[0]);
		int c = socket(AF_UNIX, SOCK_STREAM, 0), q = socket(AF_UNIX, SOCK_STREAM, 0);
		if (c < 0 || connect(c, (struct sockaddr *)&a, al) || q < 0 ||
		    connect(q, (struct sockaddr *)&a2, al))
			test_fail("child: connect: %s", strerror(errno));
		int dd = recv_fd(back[0]);
		test_say(ready[1], 'r');
		/* its ends, checked after the restore, on the parent's word */
		char w = test_hear(back[0]);
		expect(pair[0], "child: pair end", me);
		expect(pair[1], "child: other pair end", me);
		expect(c, "child: client end", me);
		expect(q, "child: queued client end", me);
		expect(dd, "child: the gone child's datagram end", gone);
		_exit(w == 'c' ? 0 : 3);
	}
	int acc = accept(l, NULL, NULL);
	if (k < 0 || acc < 0)
		test_fail("fork/accept: %s", strerror(errno));
	send_fd(back[1], d1);
	close(d1);
	if (test_hear(ready[0]) != 'r')
		test_fail("the child did not get ready");
	struct want kid = { k, me.uid, me.gid };
	expect(pair[0], "pair end", me);
	expect(acc, "accepted end", kid);
	expect(d0, "the gone child's datagram end", gone);

	test_ready();
	if (test_sabotage()) { /* the accepted end made again, from here */
		int c2 = socket(AF_UNIX, SOCK_STREAM, 0);
		if (c2 < 0 || connect(c2, (struct sockaddr *)&a, al) || dup2(accept(l, NULL, NULL), acc) < 0)
			test_fail("sabotage: %s", strerror(errno));
	}
	test_wait();

	expect(pair[0], "pair end", me);
	expect(pair[1], "other pair end", me);
	expect(acc, "accepted end", kid);
	expect(l, "listener", me);
	expect(d0, "the gone child's datagram end", gone);
	int qa = accept(l2, NULL, NULL);
	if (qa < 0)
		test_fail("accept the queued connection: %s", strerror(errno));
	expect(qa, "queued connection, accepted after the restore", kid);
	test_say(back[1], 'c');
	if (test_reap(k, false, 10))
		test_fail("the child's ends were not right after the restore (see its message)");
	test_pass();
}
