// stasis-test: timeout=30
/* An epoll watching files whose fd was closed without EPOLL_CTL_DEL while a dup stays
 * open (the kernel keeps such a target, keyed by the file and the number it was added
 * with; a well-known epoll trap real programs fall into): a pipe added as fd 20, then
 * dup'ed to 30 and fd 20 closed, fd 20 reused by an eventfd that is watched too; an
 * eventfd added as fd 21, dup'ed to 31, fd 21 closed and left closed (close-on-exec on
 * 31). After the restore: writes to the pipe and to both eventfds are reported with
 * their data, fd 20 is still the new eventfd (not close-on-exec), fd 21 is still closed,
 * and EPOLL_CTL_DEL of number 20 removes the eventfd added under it, not the pipe (the
 * kernel finds a target by file and number). */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "epolllib.h"

#define D_PIPE 0x1000000000000001ULL
#define D_NEW 0x2000000000000002ULL
#define D_GONE 0x3000000000000003ULL

static void drain(int fd)
{
	uint64_t v;
	TEST_CHECK(read(fd, &v, sizeof(v)) == sizeof(v), "eventfd %d read: %d", fd, errno);
}

int main(int argc, char **argv)
{
	test_init(argc, argv);
	uint64_t d[4];
	int p[2];
	TEST_CHECK(!pipe(p), "pipe: %d", errno);
	test_place_fd(p[0], 20);
	test_place_fd(p[1], 22);
	test_place_fd(eventfd(0, EFD_NONBLOCK), 21);
	int ep = epoll_create1(EPOLL_CLOEXEC);
	TEST_CHECK(ep >= 0, "epoll_create1: %d", errno);
	test_place_fd(ep, 5);
	ep = 5;
	struct epoll_event ev = { .events = EPOLLIN, .data.u64 = D_PIPE };
	TEST_CHECK(!epoll_ctl(ep, EPOLL_CTL_ADD, 20, &ev), "add pipe: %d", errno);
	ev.data.u64 = D_GONE;
	TEST_CHECK(!epoll_ctl(ep, EPOLL_CTL_ADD, 21, &ev), "add eventfd: %d", errno);
	TEST_CHECK(dup2(20, 30) == 30 && fcntl(21, F_DUPFD_CLOEXEC, 31) == 31, "dup: %d", errno);
	close(20);
	close(21);
	test_place_fd(eventfd(0, EFD_NONBLOCK), 20);
	ev.data.u64 = D_NEW;
	TEST_CHECK(!epoll_ctl(ep, EPOLL_CTL_ADD, 20, &ev), "add the new fd 20: %d", errno);

	test_ready();
	test_wait();
	if (test_sabotage())
		epoll_ctl(ep, EPOLL_CTL_DEL, 20, NULL); /* the new eventfd's target */

	TEST_CHECK(ep_events(ep, d) == 0, "events before any write");
	TEST_CHECK(fcntl(21, F_GETFD) < 0 && errno == EBADF, "fd 21 is open after the restore");
	TEST_CHECK(fcntl(20, F_GETFD) == 0 && fcntl(31, F_GETFD) == FD_CLOEXEC,
		   "close-on-exec of fd 20 or 31 changed");
	TEST_CHECK(write(22, "x", 1) == 1, "pipe write: %d", errno);
	ep_bump(20);
	ep_bump(31);
	int n = ep_events(ep, d);
	TEST_CHECK(n == 3 && ep_has(d, n, D_PIPE) && ep_has(d, n, D_NEW) && ep_has(d, n, D_GONE),
		   "after the writes: %d events", n);
	drain(20);
	drain(31);
	TEST_CHECK(!epoll_ctl(ep, EPOLL_CTL_DEL, 20, NULL), "DEL of fd 20: %d", errno);
	ep_bump(20);
	n = ep_events(ep, d);
	TEST_CHECK(n == 1 && d[0] == D_PIPE, "after DEL of fd 20: %d events (data %#llx)", n,
		   (unsigned long long)d[0]);
	test_pass();
}
