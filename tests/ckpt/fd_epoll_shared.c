// stasis-test: timeout=30
/* An epoll shared through fork, as a server's child inherits it (redis saving in the
 * background): the root's epoll (fd 5) watches a pipe (fd 20, level-triggered) and its
 * eventfd at fd 22 (EPOLLET); the forked child closes fd 22, puts another eventfd there,
 * and adds its own eventfd at fd 24 (closed in the root) to the same epoll; the child's
 * own epoll (fd 26) watches the shared one. The kernel keys each target by file and fd
 * number, so after the restore: the root can MOD fd 22 and the child cannot (ENOENT: its
 * fd 22 is another file); the child can DEL fd 24 and the root sees it gone (one epoll);
 * every write is reported with its data, in both processes; nothing before. */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/wait.h>
#include <unistd.h>

#include "epolllib.h"

#define EP 5
#define D_PIPE 0x1111000000000001ULL
#define D_ROOT 0x2222000000000002ULL
#define D_ROOT2 0x2222000000000003ULL
#define D_CHILD 0x3333000000000004ULL
#define D_NEST 0x4444000000000005ULL

static int to_child[2], to_root[2];

/* After the restore, told 'c': the child's side of the checks; answers 'k'. */
static __attribute__((noreturn)) void child(void)
{
	uint64_t d[4];
	close(22);
	int x = eventfd(0, EFD_NONBLOCK), y = eventfd(0, EFD_NONBLOCK);
	int nest = epoll_create1(0);
	TEST_CHECK(x >= 0 && y >= 0 && nest >= 0, "child: create: %d", errno);
	test_place_fd(x, 22);
	test_place_fd(y, 24);
	test_place_fd(nest, 26);
	struct epoll_event ev = { .events = EPOLLIN, .data.u64 = D_CHILD };
	TEST_CHECK(!epoll_ctl(EP, EPOLL_CTL_ADD, 24, &ev), "child: add fd 24: %d", errno);
	ev = (struct epoll_event){ .events = EPOLLIN, .data.u64 = D_NEST };
	TEST_CHECK(!epoll_ctl(26, EPOLL_CTL_ADD, EP, &ev), "child: nest: %d", errno);
	test_say(to_root[1], 'r');

	TEST_CHECK(test_hear(to_child[0]) == 'c', "child: no command");
	int n = ep_events(EP, d);
	TEST_CHECK(n == 1 && d[0] == D_PIPE, "child: %d events before its write", n);
	TEST_CHECK(ep_events(26, d) == 1 && d[0] == D_NEST, "child: nested epoll not ready");
	ep_bump(24);
	n = ep_events(EP, d);
	TEST_CHECK(n == 2 && ep_has(d, n, D_PIPE) && ep_has(d, n, D_CHILD),
		   "child: %d events after its write", n);
	ev = (struct epoll_event){ .events = EPOLLIN, .data.u64 = 7 };
	errno = 0;
	TEST_CHECK(epoll_ctl(EP, EPOLL_CTL_MOD, 22, &ev) < 0 && errno == ENOENT,
		   "child: MOD of its own fd 22 (another file than the target): errno %d", errno);
	TEST_CHECK(!epoll_ctl(EP, EPOLL_CTL_DEL, 24, NULL), "child: DEL fd 24: %d", errno);
	test_say(to_root[1], 'k');
	_exit(0);
}

int main(int argc, char **argv)
{
	test_init(argc, argv);
	uint64_t d[4];
	int p[2];
	TEST_CHECK(!pipe(p), "pipe: %d", errno);
	int e = eventfd(0, EFD_NONBLOCK);
	int ep = epoll_create1(0);
	TEST_CHECK(e >= 0 && ep >= 0, "create: %d", errno);
	test_place_fd(p[0], 20);
	test_place_fd(p[1], 21);
	test_place_fd(e, 22);
	test_place_fd(ep, EP); /* (the others are above the first fds: 5 is free now) */
	struct epoll_event ev = { .events = EPOLLIN, .data.u64 = D_PIPE };
	TEST_CHECK(!epoll_ctl(EP, EPOLL_CTL_ADD, 20, &ev), "add pipe: %d", errno);
	ev = (struct epoll_event){ .events = EPOLLIN | EPOLLET, .data.u64 = D_ROOT };
	TEST_CHECK(!epoll_ctl(EP, EPOLL_CTL_ADD, 22, &ev), "add eventfd: %d", errno);
	TEST_CHECK(!pipe2(to_child, O_CLOEXEC) && !pipe2(to_root, O_CLOEXEC), "pipes: %d", errno);

	pid_t pid = fork();
	TEST_CHECK(pid >= 0, "fork: %d", errno);
	if (pid == 0)
		child();
	TEST_CHECK(test_hear(to_root[0]) == 'r', "child not ready");

	test_ready();
	test_wait();
	if (test_sabotage())
		epoll_ctl(EP, EPOLL_CTL_DEL, 20, NULL);

	int n = ep_events(EP, d);
	TEST_CHECK(n == 0, "%d events before any write (data %#llx)", n,
		   (unsigned long long)d[0]);
	TEST_CHECK(write(21, "x", 1) == 1, "pipe write: %d", errno);
	n = ep_events(EP, d);
	TEST_CHECK(n == 1 && d[0] == D_PIPE, "after the pipe write: %d events", n);
	ev = (struct epoll_event){ .events = EPOLLIN | EPOLLET, .data.u64 = D_ROOT2 };
	TEST_CHECK(!epoll_ctl(EP, EPOLL_CTL_MOD, 22, &ev), "MOD of fd 22: %d", errno);
	ep_bump(22);
	n = ep_events(EP, d);
	TEST_CHECK(n == 2 && ep_has(d, n, D_PIPE) && ep_has(d, n, D_ROOT2),
		   "after the eventfd write: %d events", n);
	n = ep_events(EP, d);
	TEST_CHECK(n == 1 && d[0] == D_PIPE, "the eventfd (EPOLLET) reported twice (%d)", n);
	errno = 0;
	TEST_CHECK(epoll_ctl(EP, EPOLL_CTL_MOD, 24, &ev) < 0 && errno == EBADF,
		   "MOD of fd 24 (closed in the root): errno %d", errno);

	test_say(to_child[1], 'c');
	TEST_CHECK(test_hear(to_root[0]) == 'k', "the child's checks failed");
	TEST_CHECK(test_reap(pid, false, 10) == 0, "the child exited badly");
	/* its DEL of fd 24 was in the one epoll; its eventfd is still 1 */
	n = ep_events(EP, d);
	TEST_CHECK(n == 1 && d[0] == D_PIPE, "the child's target still reported (%d)", n);
	test_pass();
}
