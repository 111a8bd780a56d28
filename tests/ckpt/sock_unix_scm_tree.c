// stasis-test: timeout=40
/* File descriptors in flight between two processes: the child holds one end of a
 * SOCK_STREAM socketpair and the write end of a pipe and one end of a SOCK_DGRAM
 * socketpair; it sent the pipe's read end and the other datagram end to the parent in one
 * message ("gift", not received yet) and closed them. After the restore the parent
 * receives the message and both descriptors: the pipe has its 8 queued bytes, the datagram
 * socket its queued datagram; woken through a second pipe, the child writes into the pipe
 * and sends a datagram, which the parent reads through the descriptors it received. */
#include "lib.h"

#include <errno.h>
#include <poll.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

static void expect(int fd, const char *want, const char *what)
{
	char buf[64];
	struct pollfd p = { .fd = fd, .events = POLLIN };
	if (poll(&p, 1, 5000) != 1)
		test_fail("%s: nothing to read", what);
	ssize_t r = read(fd, buf, sizeof(buf));
	if (r != (ssize_t)strlen(want) || memcmp(buf, want, (size_t)r))
		test_fail("%s: got %zd bytes, want '%s'", what, r, want);
}

static __attribute__((noreturn)) void child(int sk, int go, int ready)
{
	int pp[2], dg[2];
	char c;
	if (pipe(pp) || socketpair(AF_UNIX, SOCK_DGRAM, 0, dg) || write(pp[1], "piped-8b", 8) != 8 ||
	    send(dg[1], "queued", 6, 0) != 6)
		_exit(10);
	union {
		char buf[CMSG_SPACE(2 * sizeof(int))];
		struct cmsghdr align;
	} cb;
	struct iovec iov = { .iov_base = (void *)"gift", .iov_len = 4 };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = cb.buf,
			     .msg_controllen = sizeof(cb.buf) };
	struct cmsghdr *cm = &cb.align;
	cm->cmsg_level = SOL_SOCKET;
	cm->cmsg_type = SCM_RIGHTS;
	cm->cmsg_len = CMSG_LEN(2 * sizeof(int));
	memcpy(CMSG_DATA(cm), (int[]){ pp[0], dg[0] }, 2 * sizeof(int));
	if (sendmsg(sk, &mh, 0) != 4)
		_exit(11);
	close(pp[0]);
	close(dg[0]);
	if (write(ready, "r", 1) != 1)
		_exit(12);
	for (;;) { /* the checkpoint happens here */
		ssize_t n = read(go, &c, 1);
		if (n == 1)
			break;
		if (n < 0 && errno == EINTR)
			continue;
		_exit(13);
	}
	if (write(pp[1], "later", 5) != 5 || send(dg[1], "dgram-later", 11, 0) != 11)
		_exit(14);
	_exit(0);
}

int main(int argc, char **argv)
{
	int st[2], go[2], rd[2], status;
	char c;
	test_init(argc, argv);
	if (socketpair(AF_UNIX, SOCK_STREAM, 0, st) || pipe(go) || pipe(rd))
		test_fail("set up: %s", strerror(errno));
	pid_t pid = fork();
	if (pid < 0)
		test_fail("fork: %s", strerror(errno));
	if (!pid) {
		close(st[1]);
		child(st[0], go[0], rd[1]);
	}
	close(st[0]);
	struct pollfd p = { .fd = rd[0], .events = POLLIN };
	if (poll(&p, 1, 5000) != 1 || read(rd[0], &c, 1) != 1)
		test_fail("the child did not send its gift");

	test_ready();
	if (test_sabotage()) /* the gift taken (its descriptors dropped) */
		(void)recv(st[1], &c, 1, MSG_DONTWAIT);
	test_wait();

	char buf[16];
	union {
		char buf[CMSG_SPACE(4 * sizeof(int))];
		struct cmsghdr align;
	} cb;
	struct iovec iov = { .iov_base = buf, .iov_len = sizeof(buf) };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = cb.buf,
			     .msg_controllen = sizeof(cb.buf) };
	p.fd = st[1];
	if (poll(&p, 1, 5000) != 1 || recvmsg(st[1], &mh, 0) != 4 || memcmp(buf, "gift", 4))
		test_fail("the gift is not there");
	struct cmsghdr *cm = CMSG_FIRSTHDR(&mh);
	int fds[2];
	if (!cm || cm->cmsg_type != SCM_RIGHTS || cm->cmsg_len != CMSG_LEN(2 * sizeof(int)))
		test_fail("the gift came without its two descriptors");
	memcpy(fds, CMSG_DATA(cm), sizeof(fds));
	expect(fds[0], "piped-8b", "pipe in flight");
	expect(fds[1], "queued", "datagram socket in flight");
	if (write(go[1], "g", 1) != 1)
		test_fail("wake the child");
	expect(fds[0], "later", "pipe in flight, written after the restore");
	expect(fds[1], "dgram-later", "datagram socket in flight, after the restore");
	if (waitpid(pid, &status, 0) != pid || !WIFEXITED(status) || WEXITSTATUS(status))
		test_fail("child failed (status %#x)", status);
	test_pass();
}
