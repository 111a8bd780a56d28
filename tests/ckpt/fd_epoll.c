// stasis-test: timeout=30
/* An epoll (fd 5, below its targets) watching a pipe read end (fd 20, level-triggered)
 * and an eventfd (fd 21, EPOLLET) with distinct 64-bit data, and a second epoll (fd 22)
 * watching the first: after the restore, writes make epoll_wait report the right data
 * and events, and nothing is reported before. */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "lib.h"

#define D_PIPE 0xdeadbeef00000001ULL
#define D_EFD 0x4200000000000042ULL
#define D_EP 99

static int wait_set(int ep, struct epoll_event *ev, int max)
{
	int n = epoll_wait(ep, ev, max, 0);
	if (n < 0)
		test_fail("epoll_wait: %d", errno);
	return n;
}

int main(int argc, char **argv)
{
	test_init(argc, argv);
	int p[2];
	TEST_CHECK(!pipe(p), "pipe: %d", errno);
	int e = eventfd(0, EFD_NONBLOCK);
	int ep = epoll_create1(EPOLL_CLOEXEC);
	int ep2 = epoll_create1(0);
	TEST_CHECK(e >= 0 && ep >= 0 && ep2 >= 0, "create: %d", errno);
	TEST_CHECK(dup2(p[0], 20) == 20 && dup2(e, 21) == 21 && dup2(ep2, 22) == 22 &&
			   dup2(p[1], 23) == 23,
		   "dup2: %d", errno);
	close(p[0]);
	close(p[1]);
	close(e);
	close(ep2);
	TEST_CHECK(dup3(ep, 5, O_CLOEXEC) == 5, "dup3: %d", errno);
	close(ep);
	ep = 5;
	struct epoll_event ev = { .events = EPOLLIN, .data.u64 = D_PIPE };
	TEST_CHECK(!epoll_ctl(ep, EPOLL_CTL_ADD, 20, &ev), "add pipe: %d", errno);
	ev = (struct epoll_event){ .events = EPOLLIN | EPOLLET, .data.u64 = D_EFD };
	TEST_CHECK(!epoll_ctl(ep, EPOLL_CTL_ADD, 21, &ev), "add eventfd: %d", errno);
	ev = (struct epoll_event){ .events = EPOLLIN, .data.u64 = D_EP };
	TEST_CHECK(!epoll_ctl(22, EPOLL_CTL_ADD, ep, &ev), "add epoll: %d", errno);

	test_ready();
	test_wait();
	if (test_sabotage()) {
		ev = (struct epoll_event){ .events = EPOLLIN, .data.u64 = 1 };
		epoll_ctl(ep, EPOLL_CTL_MOD, 20, &ev);
	}

	struct epoll_event out[4];
	TEST_CHECK(fcntl(ep, F_GETFD) == FD_CLOEXEC, "epoll fd 5 lost FD_CLOEXEC");
	TEST_CHECK(fcntl(22, F_GETFD) == 0, "epoll fd 22 became close-on-exec");
	int n = wait_set(ep, out, 4);
	TEST_CHECK(n == 0, "%d events before any write (data %#llx)", n,
		   (unsigned long long)out[0].data.u64);
	TEST_CHECK(wait_set(22, out, 4) == 0, "outer epoll ready before any write");

	TEST_CHECK(write(23, "x", 1) == 1, "pipe write: %d", errno);
	n = wait_set(ep, out, 4);
	TEST_CHECK(n == 1 && out[0].data.u64 == D_PIPE && out[0].events == EPOLLIN,
		   "after a pipe write: %d events, data %#llx events %#x", n,
		   (unsigned long long)out[0].data.u64, out[0].events);
	n = wait_set(22, out, 4);
	TEST_CHECK(n == 1 && out[0].data.u64 == D_EP && out[0].events == EPOLLIN,
		   "outer epoll: %d events, data %#llx", n, (unsigned long long)out[0].data.u64);

	uint64_t one = 1;
	TEST_CHECK(write(21, &one, sizeof(one)) == sizeof(one), "eventfd write: %d", errno);
	n = wait_set(ep, out, 4);
	bool seen_pipe = false, seen_efd = false;
	for (int i = 0; i < n; i++) {
		if (out[i].data.u64 == D_PIPE && out[i].events == EPOLLIN)
			seen_pipe = true;
		else if (out[i].data.u64 == D_EFD && out[i].events == EPOLLIN)
			seen_efd = true;
		else
			test_fail("unexpected event: data %#llx events %#x",
				  (unsigned long long)out[i].data.u64, out[i].events);
	}
	TEST_CHECK(n == 2 && seen_pipe && seen_efd, "after the eventfd write: %d events", n);
	/* edge-triggered: reported once */
	n = wait_set(ep, out, 4);
	TEST_CHECK(n == 1 && out[0].data.u64 == D_PIPE, "eventfd (EPOLLET) reported twice");
	test_pass();
}
