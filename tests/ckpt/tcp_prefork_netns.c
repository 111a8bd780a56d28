// stasis-test: timeout=60 needs=root
/* A pre-forking server in a network namespace of its own (nginx, apache, gunicorn in a
 * container): the root enters a new network namespace, listens on 127.0.0.1 and forks
 * two workers that share the listening socket: A blocks in accept(), B waits in an epoll
 * of its own watching the socket, then accepts (non-blocking, as nginx does). After the
 * restore: the three processes still hold one socket (kcmp), the root is in a namespace
 * other than its parent's, and 24 connections from the root are each answered
 * by a worker with its name and a running count (no connection lost or answered twice). */
#include <linux/kcmp.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>

#include "tcplib.h"

#define CONNS 24

static void serve(int c, char name, int *count)
{
	char req;
	if (test_read_within(c, &req, 1, 5000) || req != 'q')
		_exit(3);
	char ans[16];
	int n = snprintf(ans, sizeof(ans), "%c%d\n", name, ++*count);
	if (write(c, ans, (size_t)n) != n)
		_exit(4);
	close(c);
}

static __attribute__((noreturn)) void worker_a(int l)
{
	int count = 0;
	for (;;) {
		int c = accept(l, NULL, NULL);
		if (c < 0 && errno != EINTR)
			_exit(2);
		if (c >= 0)
			serve(c, 'A', &count);
	}
}

static __attribute__((noreturn)) void worker_b(int l)
{
	int count = 0, ep = epoll_create1(EPOLL_CLOEXEC);
	struct epoll_event ev = { .events = EPOLLIN, .data.fd = l };
	if (ep < 0 || epoll_ctl(ep, EPOLL_CTL_ADD, l, &ev))
		_exit(2);
	for (;;) {
		if (epoll_wait(ep, &ev, 1, -1) < 0 && errno != EINTR)
			_exit(2);
		int c = accept4(l, NULL, NULL, SOCK_NONBLOCK);
		if (c < 0 && errno != EAGAIN && errno != EINTR)
			_exit(2);
		if (c >= 0) {
			fcntl(c, F_SETFL, 0);
			serve(c, 'B', &count);
		}
	}
}

int main(int argc, char **argv)
{
	test_init(argc, argv);
	struct stat parent, now;
	TEST_CHECK(!unshare(CLONE_NEWNET), "unshare(CLONE_NEWNET): %s", strerror(errno));
	tcp_lo_up();
	int l = tcp_listener(AF_INET, "127.0.0.1", 64);
	uint16_t port = tcp_port(l);
	pid_t w[2];
	for (int i = 0; i < 2; i++) {
		w[i] = fork();
		TEST_CHECK(w[i] >= 0, "fork: %d", errno);
		if (w[i] == 0)
			i ? worker_b(l) : worker_a(l);
	}
	test_sleep_ms(100); /* (both workers waiting) */
	test_ready();
	test_wait();
	if (test_sabotage()) {
		int other = tcp_listener(AF_INET, "127.0.0.1", 4);
		dup2(other, l);
	}

	/* (nsfs inode numbers are reused: compared with the parent's namespace, when the
	 * parent is visible, i.e. not in the flavors where the root is a pid namespace's init) */
	char pp[64];
	snprintf(pp, sizeof(pp), "/proc/%d/ns/net", getppid());
	TEST_CHECK(!stat("/proc/self/ns/net", &now), "stat ns/net: %d", errno);
	TEST_CHECK(getppid() == 0 || stat(pp, &parent) || now.st_ino != parent.st_ino,
		   "the root is no longer in a network namespace of its own");
	for (int i = 0; i < 2; i++)
		TEST_CHECK(syscall(SYS_kcmp, getpid(), w[i], KCMP_FILE, l, l) == 0,
			   "worker %c's fd %d is not the root's listening socket", 'A' + i, l);
	TEST_CHECK(tcp_port(l) == port, "the listener moved to port %u from %u", tcp_port(l), port);
	int seen[2] = { 0, 0 };
	for (int k = 0; k < CONNS; k++) {
		int c = tcp_connect(AF_INET, "127.0.0.1", port);
		struct timeval tv = { .tv_sec = 5 };
		setsockopt(c, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
		TEST_CHECK(write(c, "q", 1) == 1, "connection %d: write: %d", k, errno);
		char ans[16] = { 0 };
		ssize_t n = 0, r;
		while ((r = read(c, ans + n, sizeof(ans) - 1 - (size_t)n)) > 0)
			n += r;
		close(c);
		int who = ans[0] - 'A', count = atoi(ans + 1);
		TEST_CHECK(n > 1 && (who == 0 || who == 1) && count == seen[who] + 1,
			   "connection %d answered \"%s\" (A had %d, B %d)", k, ans, seen[0], seen[1]);
		seen[who] = count;
	}
	for (int i = 0; i < 2; i++)
		TEST_CHECK(test_reap(w[i], true, 10) >= 0, "worker %c", 'A' + i);
	test_pass();
}
