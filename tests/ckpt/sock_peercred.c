// stasis-test: timeout=30
/* Peer credentials of unix sockets (SO_PEERCRED) held by one process: what the kernel
 * kept of the process that made a socketpair, called listen() or connected, pid and
 * effective ids, whether that process still exists or not.
 *   - a datagram socketpair made by a child with other ids and supplementary groups (when
 *     the test may take them) that sent both ends here and exited (the shape of the
 *     reference suite's test);
 *   - a stream socketpair made by this process with another effective uid and gid for a
 *     moment (its own pid, other ids);
 *   - a listener of this process, a connection to it made by a child with other ids that
 *     sent its end here and exited: the accepted end names that child, the client end
 *     this process (the listener's, copied at the connect);
 *   - a listener that a child with other ids called listen() on again (its credentials
 *     are the child's from then on), and a connection to it from this process: the client
 *     end names that child, the accepted end this process.
 * After the restore each end reads the same pid, uid, gid and groups (SO_PEERGROUPS) as
 * before. */
#include "lib.h"

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <grp.h>
#include <sys/wait.h>
#include <unistd.h>

#define NSK 12

static struct {
	int fd;
	const char *what;
	struct ucred want;
	gid_t groups[8];
	socklen_t glen;
} sk[NSK];
static int nsk;
static bool other_ids; /* ids can be changed (root of the test's user namespace) */

static struct ucred peer(int fd, const char *what)
{
	struct ucred c;
	socklen_t l = sizeof(c);
	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &c, &l) || l != sizeof(c))
		test_fail("%s: SO_PEERCRED: %s", what, strerror(errno));
	return c;
}

static void keep(int fd, const char *what, pid_t pid, uid_t uid, gid_t gid)
{
	struct ucred c = peer(fd, what);
	if (nsk == NSK)
		test_fail("more sockets than room");
	if (c.pid != pid || c.uid != uid || c.gid != gid)
		test_fail("%s before the dump: pid %d uid %d gid %d, want %d %d %d", what, c.pid,
			  (int)c.uid, (int)c.gid, pid, (int)uid, (int)gid);
	sk[nsk].fd = fd;
	sk[nsk].what = what;
	sk[nsk].glen = sizeof(sk[nsk].groups);
	if (getsockopt(fd, SOL_SOCKET, SO_PEERGROUPS, sk[nsk].groups, &sk[nsk].glen))
		test_fail("%s: SO_PEERGROUPS: %s", what, strerror(errno));
	sk[nsk++].want = c;
}

/* Effective ids of this thread only (raw: glibc would change every thread's). */
static void set_eids(uid_t uid, gid_t gid)
{
	if (!other_ids)
		return;
	if (syscall(SYS_setresgid, -1, gid, -1) || syscall(SYS_setresuid, -1, uid, -1))
		test_fail("setresuid/gid: %s", strerror(errno));
}

static void send_fds(int via, const int *fds, int n)
{
	char cb[CMSG_SPACE(2 * sizeof(int))] = { 0 }, f = 'f';
	struct iovec iov = { &f, 1 };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = cb,
			     .msg_controllen = CMSG_SPACE((size_t)n * sizeof(int)) };
	struct cmsghdr *cm = CMSG_FIRSTHDR(&mh);
	if (!cm)
		_exit(3);
	cm->cmsg_level = SOL_SOCKET;
	cm->cmsg_type = SCM_RIGHTS;
	cm->cmsg_len = CMSG_LEN((size_t)n * sizeof(int));
	memcpy(CMSG_DATA(cm), fds, (size_t)n * sizeof(int));
	if (sendmsg(via, &mh, 0) != 1)
		_exit(3);
}

static void recv_fds(int via, int *fds, int n)
{
	char cb[CMSG_SPACE(2 * sizeof(int))], c;
	struct iovec iov = { &c, 1 };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = cb,
			     .msg_controllen = sizeof(cb) };
	struct pollfd p = { .fd = via, .events = POLLIN };
	if (poll(&p, 1, 10000) != 1 || recvmsg(via, &mh, 0) != 1)
		test_fail("receive fds: %s", strerror(errno));
	struct cmsghdr *cm = CMSG_FIRSTHDR(&mh);
	if (!cm || cm->cmsg_type != SCM_RIGHTS ||
	    cm->cmsg_len != CMSG_LEN((size_t)n * sizeof(int)))
		test_fail("receive fds: no descriptors");
	memcpy(fds, CMSG_DATA(cm), (size_t)n * sizeof(int));
}

static socklen_t addr(struct sockaddr_un *a, const char *leaf)
{
	memset(a, 0, sizeof(*a));
	a->sun_family = AF_UNIX;
	int n = snprintf(a->sun_path + 1, sizeof(a->sun_path) - 1, "stasis-pc.%d.%s", getpid(),
			 leaf);
	return (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 + (size_t)n);
}

static int listener(const char *leaf)
{
	struct sockaddr_un a;
	socklen_t l = addr(&a, leaf);
	int fd = socket(AF_UNIX, SOCK_STREAM, 0);
	if (fd < 0 || bind(fd, (struct sockaddr *)&a, l) || listen(fd, 4))
		test_fail("listener %s: %s", leaf, strerror(errno));
	return fd;
}

/* A child with ids 1000+k (when other_ids) runs @what and exits; its pid. */
static pid_t child(int k, int via, int lfd, const struct sockaddr_un *to, socklen_t tl)
{
	pid_t pid = fork();
	if (pid < 0)
		test_fail("fork: %s", strerror(errno));
	if (pid)
		return pid;
	gid_t groups[2] = { 3000 + k, 3100 + k };
	if (other_ids && (setgroups(2, groups) || setresgid(2000 + k, 2000 + k, 2000 + k) ||
			  setresuid(1000 + k, 1000 + k, 1000 + k)))
		_exit(2);
	int sv[2];
	if (k == 1) { /* a datagram socketpair, sent */
		if (socketpair(AF_UNIX, SOCK_DGRAM, 0, sv))
			_exit(4);
		send_fds(via, sv, 2);
	} else if (k == 2) { /* a connection to the listener, its end sent */
		sv[0] = socket(AF_UNIX, SOCK_STREAM, 0);
		if (sv[0] < 0 || connect(sv[0], (const struct sockaddr *)to, tl))
			_exit(5);
		send_fds(via, sv, 1);
	} else if (listen(lfd, 4)) { /* the listener's credentials are ours from now */
		_exit(6);
	}
	_exit(0);
}

static void reap(pid_t pid)
{
	int st;
	if (waitpid(pid, &st, 0) != pid || !WIFEXITED(st) || WEXITSTATUS(st))
		test_fail("child %d failed (status %#x)", pid, st);
}

int main(int argc, char **argv)
{
	test_init(argc, argv);
	pid_t me = getpid();
	uid_t uid = geteuid();
	gid_t gid = getegid();
	other_ids = uid == 0;
	int via[2], sv[2];
	if (socketpair(AF_UNIX, SOCK_DGRAM, 0, via))
		test_fail("socketpair: %s", strerror(errno));

	/* a datagram socketpair made by a child that exited */
	pid_t c1 = child(1, via[1], -1, NULL, 0);
	recv_fds(via[0], sv, 2);
	reap(c1);
	uid_t u1 = other_ids ? 1001 : uid;
	gid_t g1 = other_ids ? 2001 : gid;
	keep(sv[0], "dgram pair of a gone child", c1, u1, g1);
	keep(sv[1], "its other end", c1, u1, g1);

	/* a stream socketpair made with other effective ids for a moment */
	set_eids(1234, 1235);
	int r = socketpair(AF_UNIX, SOCK_STREAM, 0, sv);
	set_eids(uid, gid);
	if (r)
		test_fail("socketpair: %s", strerror(errno));
	keep(sv[0], "stream pair, other ids", me, other_ids ? 1234 : uid, other_ids ? 1235 : gid);

	/* a connection to our listener from a child that exited */
	struct sockaddr_un a;
	socklen_t al = addr(&a, "l1");
	int l1 = listener("l1");
	pid_t c2 = child(2, via[1], -1, &a, al);
	recv_fds(via[0], sv, 1);
	reap(c2);
	int acc = accept(l1, NULL, NULL);
	if (acc < 0)
		test_fail("accept: %s", strerror(errno));
	keep(l1, "listener", me, uid, gid);
	keep(acc, "accepted from a gone child", c2, other_ids ? 1002 : uid, other_ids ? 2002 : gid);
	keep(sv[0], "the gone child's client end", me, uid, gid);

	/* a listener a child called listen() on again, and our connection to it */
	al = addr(&a, "l2");
	int l2 = listener("l2");
	pid_t c3 = child(3, -1, l2, NULL, 0);
	reap(c3);
	int cl = socket(AF_UNIX, SOCK_STREAM, 0);
	if (cl < 0 || connect(cl, (struct sockaddr *)&a, al) || (acc = accept(l2, NULL, NULL)) < 0)
		test_fail("connect to the listener: %s", strerror(errno));
	uid_t u3 = other_ids ? 1003 : uid;
	gid_t g3 = other_ids ? 2003 : gid;
	keep(l2, "listener listened again by a gone child", c3, u3, g3);
	keep(cl, "client of that listener", c3, u3, g3);
	keep(acc, "accepted by that listener", me, uid, gid);
	close(via[0]);
	close(via[1]);

	test_ready();
	if (test_sabotage()) { /* the first pair made again, by this process */
		close(sk[0].fd);
		close(sk[1].fd);
		if (socketpair(AF_UNIX, SOCK_DGRAM, 0, sv) || dup2(sv[0], sk[0].fd) < 0 ||
		    dup2(sv[1], sk[1].fd) < 0)
			test_fail("sabotage: %s", strerror(errno));
	}
	test_wait();

	for (int i = 0; i < nsk; i++) {
		gid_t g[8];
		socklen_t gl = sizeof(g);
		if (getsockopt(sk[i].fd, SOL_SOCKET, SO_PEERGROUPS, g, &gl) || gl != sk[i].glen ||
		    memcmp(g, sk[i].groups, gl))
			test_fail("%s: other supplementary groups (%u bytes, were %u)", sk[i].what,
				  gl, sk[i].glen);
		struct ucred c = peer(sk[i].fd, sk[i].what);
		if (c.pid != sk[i].want.pid || c.uid != sk[i].want.uid || c.gid != sk[i].want.gid)
			test_fail("%s: pid %d uid %d gid %d, were %d %d %d", sk[i].what, c.pid,
				  (int)c.uid, (int)c.gid, sk[i].want.pid, (int)sk[i].want.uid,
				  (int)sk[i].want.gid);
	}
	/* the listeners still take connections, with their own credentials */
	int n = socket(AF_UNIX, SOCK_STREAM, 0);
	al = addr(&a, "l2");
	if (n < 0 || connect(n, (struct sockaddr *)&a, al))
		test_fail("new connection: %s", strerror(errno));
	struct ucred c = peer(n, "new client");
	if (c.pid != c3 || c.uid != u3 || c.gid != g3)
		test_fail("new client of the listener: pid %d uid %d gid %d, want %d %d %d", c.pid,
			  (int)c.uid, (int)c.gid, c3, (int)u3, (int)g3);
	test_pass();
}
