// stasis-test: timeout=40
/* Parent and child ping-pong over a SOCK_STREAM socketpair (one end each); at dump time
 * 5 records are queued in each direction and the child is blocked reading a pipe from
 * the parent. A SOCK_DGRAM pair is held (both ends) by both processes with 2 messages
 * queued. After the restore the parent wakes the child; each side first reads the
 * records queued for it, then 200 rounds of ping-pong run; the child reports its verdict
 * with its exit status and the parent checks the datagrams. */
#include "lib.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#define QUEUED 5
#define ROUNDS 200

static int get_rec(int fd, uint64_t *v)
{
	size_t off = 0;
	while (off < sizeof(*v)) {
		struct pollfd p = { .fd = fd, .events = POLLIN };
		if (poll(&p, 1, 5000) != 1)
			return -1;
		ssize_t n = recv(fd, (char *)v + off, sizeof(*v) - off, 0);
		if (n <= 0) {
			if (n < 0 && errno == EINTR)
				continue;
			return -1;
		}
		off += (size_t)n;
	}
	return 0;
}

static int put_rec(int fd, uint64_t v)
{
	return send(fd, &v, sizeof(v), MSG_NOSIGNAL) == (ssize_t)sizeof(v) ? 0 : -1;
}

static __attribute__((noreturn)) void child(int sk, int go)
{
	uint64_t v;
	char c;

	for (uint64_t i = 0; i < QUEUED; i++)
		if (put_rec(sk, 101 + i))
			_exit(10);
	/* blocked here during the checkpoint */
	for (;;) {
		ssize_t n = read(go, &c, 1);
		if (n == 1)
			break;
		if (n < 0 && errno == EINTR)
			continue;
		_exit(11);
	}
	for (uint64_t i = 0; i < QUEUED; i++)
		if (get_rec(sk, &v) || v != 1 + i)
			_exit(12);
	for (int r = 0; r < ROUNDS; r++) {
		if (get_rec(sk, &v) || v != 1000 + 2 * (uint64_t)r)
			_exit(13);
		if (put_rec(sk, v + 1))
			_exit(14);
	}
	_exit(0);
}

int main(int argc, char **argv)
{
	int sv[2], dg[2], go[2], avail = 0, status = 0;
	uint64_t v;

	test_init(argc, argv);
	if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) || socketpair(AF_UNIX, SOCK_DGRAM, 0, dg) ||
	    pipe(go))
		test_fail("socketpair/pipe: %s", strerror(errno));
	if (send(dg[0], "first", 5, 0) != 5 || send(dg[0], "second!", 7, 0) != 7)
		test_fail("send datagrams: %s", strerror(errno));
	pid_t pid = fork();
	if (pid < 0)
		test_fail("fork: %s", strerror(errno));
	if (pid == 0) {
		close(sv[0]);
		close(go[1]);
		child(sv[1], go[0]);
	}
	close(sv[1]);
	close(go[0]);
	for (uint64_t i = 0; i < QUEUED; i++)
		if (put_rec(sv[0], 1 + i))
			test_fail("send record: %s", strerror(errno));
	/* wait until the child queued its records */
	for (int t = 0; t < 500 && avail < QUEUED * 8; t++) {
		if (ioctl(sv[0], FIONREAD, &avail))
			test_fail("FIONREAD: %s", strerror(errno));
		if (avail < QUEUED * 8)
			test_sleep_ms(10);
	}
	if (avail != QUEUED * 8)
		test_fail("child queued %d bytes", avail);
	test_ready();
	test_wait();

	if (test_sabotage())
		(void)!recv(dg[1], &v, sizeof(v), MSG_DONTWAIT);
	TEST_CHECK(ioctl(sv[0], FIONREAD, &avail) == 0 && avail == QUEUED * 8,
		   "%d bytes queued at the parent's end, expected %d", avail, QUEUED * 8);
	TEST_CHECK(write(go[1], "g", 1) == 1, "wake the child: %s", strerror(errno));
	for (uint64_t i = 0; i < QUEUED; i++)
		TEST_CHECK(get_rec(sv[0], &v) == 0 && v == 101 + i,
			   "queued record %llu from the child: %llu", (unsigned long long)i,
			   (unsigned long long)v);
	for (int r = 0; r < ROUNDS; r++) {
		TEST_CHECK(put_rec(sv[0], 1000 + 2 * (uint64_t)r) == 0, "ping %d: %s", r,
			   strerror(errno));
		TEST_CHECK(get_rec(sv[0], &v) == 0 && v == 1001 + 2 * (uint64_t)r,
			   "pong %d: got %llu", r, (unsigned long long)v);
	}
	uint64_t deadline = test_now_ns() + 5000000000ull;
	pid_t w;
	while ((w = waitpid(pid, &status, WNOHANG)) == 0 && test_now_ns() < deadline)
		test_sleep_ms(10);
	TEST_CHECK(w == pid, "child %d did not exit", (int)pid);
	TEST_CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0, "child failed: status %#x",
		   status);
	char b[16];
	TEST_CHECK(recv(dg[1], b, sizeof(b), MSG_DONTWAIT) == 5 && memcmp(b, "first", 5) == 0,
		   "first datagram");
	TEST_CHECK(recv(dg[1], b, sizeof(b), MSG_DONTWAIT) == 7 && memcmp(b, "second!", 7) == 0,
		   "second datagram");
	TEST_CHECK(recv(dg[1], b, sizeof(b), MSG_DONTWAIT) < 0 && errno == EAGAIN,
		   "more datagrams than sent");
	test_pass();
}
