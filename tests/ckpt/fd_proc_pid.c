// stasis-test: timeout=30
/* Files of /proc/PID directories of the tree, which can only be opened once their task is
 * restored: the root P holds /proc/C/comm of its child C, C's mountinfo (watched by an epoll), C's
 * status read 10 bytes in, the /proc/C directory, /proc/P/task/T/comm and /proc/T/comm of
 * its thread T (threads are made last), and /proc/PPID/stat of its parent outside the
 * tree (when it sees one); /proc/self/status opened by P before the fork is one
 * description in P and C; C holds its parent's status. After the restore every fd has
 * its link and flags, reads its task's name or pid (the status from the same position),
 * the directory opens its task's files, the epoll reports the mountinfo fd, and P's and C's
 * shared fd are still one description (kcmp). */
#include "lib.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/kcmp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

enum { F_COMM, F_STATUS, F_DIR, F_TCOMM, F_TIDCOMM, F_PARENT, F_SELF, F_MOUNTS, F_EPOLL, NFD };
static const char *const names[NFD] = { "/proc/C/comm",      "/proc/C/status",
					"/proc/C",           "/proc/P/task/T/comm",
					"/proc/T/comm",      "/proc/PPID/stat",
					"/proc/self/status", "/proc/C/mountinfo",
					"epoll" };

static pid_t thread_tid;
static int go[2];

static void *thread_main(void *arg)
{
	(void)arg;
	thread_tid = (pid_t)syscall(SYS_gettid);
	prctl(PR_SET_NAME, "procpid-thr");
	for (;;)
		pause();
	return NULL;
}

static void link_of(int fd, char *buf, size_t len)
{
	char p[64];
	snprintf(p, sizeof(p), "/proc/self/fd/%d", fd);
	ssize_t n = readlink(p, buf, len - 1);
	buf[n > 0 ? n : 0] = '\0';
}

/* The first line of what @fd reads at offset 0 (a comm), or "?" */
static const char *first_line(int fd, char *buf, size_t len)
{
	ssize_t n = pread(fd, buf, len - 1, 0);
	buf[n > 0 ? n : 0] = '\0';
	buf[strcspn(buf, "\n")] = '\0';
	return n > 0 ? buf : "?";
}

static long status_pid(int fd)
{
	char buf[4096];
	ssize_t n = pread(fd, buf, sizeof(buf) - 1, 0);
	buf[n > 0 ? n : 0] = '\0';
	const char *p = strstr(buf, "\nPid:");
	return p ? strtol(p + 5, NULL, 10) : -1;
}

static void child(int self_fd, int res)
{
	prctl(PR_SET_NAME, "procpid-kid");
	char path[96];
	snprintf(path, sizeof(path), "/proc/%d/status", getppid());
	int ps = open(path, O_RDONLY);
	snprintf(path, sizeof(path), "/proc/%d/task/%d/comm", getppid(), thread_tid);
	int tc = open(path, O_RDONLY);
	if (ps < 0 || tc < 0)
		_exit(10);
	pid_t parent = getppid();
	test_say(res, 'r');
	if (test_hear(go[0]) != 'g')
		_exit(11);
	char buf[64];
	int bad = status_pid(ps) != parent ? 1 : 0;
	bad |= strcmp(first_line(tc, buf, sizeof(buf)), "procpid-thr") ? 2 : 0;
	bad |= status_pid(self_fd) != parent ? 4 : 0;
	test_say(res, (char)('0' + bad));
	for (;;)
		pause();
}

int main(int argc, char **argv)
{
	int fds[NFD], fl[NFD], res[2];
	char links[NFD][256], now[256], head[16], buf[64];
	pthread_t th;

	test_init(argc, argv);
	if (pipe(go) < 0 || pipe(res) < 0 || pthread_create(&th, NULL, thread_main, NULL))
		test_fail("setup: %s", strerror(errno));
	while (!__atomic_load_n(&thread_tid, __ATOMIC_SEQ_CST))
		test_sleep_ms(1);
	fds[F_SELF] = open("/proc/self/status", O_RDONLY);
	pid_t c = fork();
	if (c < 0)
		test_fail("fork: %s", strerror(errno));
	if (!c)
		child(fds[F_SELF], res[1]);
	if (test_hear(res[0]) != 'r')
		test_fail("the child did not start");
	char path[96];
	snprintf(path, sizeof(path), "/proc/%d/comm", c);
	fds[F_COMM] = open(path, O_RDONLY);
	snprintf(path, sizeof(path), "/proc/%d/status", c);
	fds[F_STATUS] = open(path, O_RDONLY | O_NONBLOCK);
	snprintf(path, sizeof(path), "/proc/%d", c);
	fds[F_DIR] = open(path, O_RDONLY | O_DIRECTORY);
	snprintf(path, sizeof(path), "/proc/%d/task/%d/comm", getpid(), thread_tid);
	fds[F_TCOMM] = open(path, O_RDONLY);
	snprintf(path, sizeof(path), "/proc/%d/comm", thread_tid);
	fds[F_TIDCOMM] = open(path, O_RDONLY);
	pid_t pp = getppid();
	snprintf(path, sizeof(path), "/proc/%d/stat", pp);
	fds[F_PARENT] = pp > 0 ? open(path, O_RDONLY) : -1;
	if (fds[F_PARENT] < 0) /* no parent in sight (pid 1 of a namespace): one more of C */
		fds[F_PARENT] = open("/proc/self/stat", O_RDONLY);
	snprintf(path, sizeof(path), "/proc/%d/mountinfo", c);
	fds[F_MOUNTS] = open(path, O_RDONLY);
	fds[F_EPOLL] = epoll_create1(0);
	struct epoll_event ev = { .events = EPOLLIN, .data.u64 = 0x1234 };
	if (fds[F_EPOLL] < 0 || epoll_ctl(fds[F_EPOLL], EPOLL_CTL_ADD, fds[F_MOUNTS], &ev) < 0)
		test_fail("epoll: %s", strerror(errno));
	if (read(fds[F_STATUS], head, 10) != 10)
		test_fail("read the child's status: %s", strerror(errno));
	for (int i = 0; i < NFD; i++) {
		if (fds[i] < 0)
			test_fail("open %s: %s", names[i], strerror(errno));
		fl[i] = fcntl(fds[i], F_GETFL);
		link_of(fds[i], links[i], sizeof(links[i]));
	}
	long ppstat = pp > 0 ? pp : getpid();
	test_ready();
	test_wait();

	if (test_sabotage()) {
		close(fds[F_TIDCOMM]);
		fds[F_TIDCOMM] = open("/proc/self/comm", O_RDONLY);
	}
	for (int i = 0; i < NFD; i++) {
		link_of(fds[i], now, sizeof(now));
		TEST_CHECK(fcntl(fds[i], F_GETFL) == fl[i], "%s: F_GETFL %#x -> %#x", names[i],
			   fl[i], fcntl(fds[i], F_GETFL));
		TEST_CHECK(!strcmp(now, links[i]), "%s: %s -> %s", names[i], links[i], now);
	}
	TEST_CHECK(!strcmp(first_line(fds[F_COMM], buf, sizeof(buf)), "procpid-kid"),
		   "/proc/C/comm reads %s", buf);
	off_t at = lseek(fds[F_STATUS], 0, SEEK_CUR);
	char more[6] = "", want[6] = "";
	TEST_CHECK(at == 10 && read(fds[F_STATUS], more, 5) == 5, "/proc/C/status at %lld",
		   (long long)at);
	if (pread(fds[F_STATUS], want, 5, 10) != 5 || memcmp(more, want, 5))
		TEST_CHECK(0, "/proc/C/status read on from 10: '%.5s', not '%.5s'", more, want);
	int dc = openat(fds[F_DIR], "comm", O_RDONLY);
	TEST_CHECK(dc >= 0 && !strcmp(first_line(dc, buf, sizeof(buf)), "procpid-kid"),
		   "/proc/C/comm through the directory: %s", dc >= 0 ? buf : strerror(errno));
	TEST_CHECK(!strcmp(first_line(fds[F_TCOMM], buf, sizeof(buf)), "procpid-thr"),
		   "/proc/P/task/T/comm reads %s", buf);
	TEST_CHECK(!strcmp(first_line(fds[F_TIDCOMM], buf, sizeof(buf)), "procpid-thr"),
		   "/proc/T/comm reads %s", buf);
	TEST_CHECK(atol(first_line(fds[F_PARENT], buf, sizeof(buf))) == ppstat,
		   "/proc/PPID/stat names %ld, not %ld", atol(buf), ppstat);
	TEST_CHECK(status_pid(fds[F_SELF]) == getpid(), "/proc/self/status reads pid %ld",
		   status_pid(fds[F_SELF]));
	struct epoll_event got = { 0 };
	TEST_CHECK(epoll_wait(fds[F_EPOLL], &got, 1, 0) == 1 && got.data.u64 == 0x1234,
		   "the epoll does not report /proc/C/mountinfo");
	test_say(go[1], 'g');
	char r = test_hear(res[0]);
	TEST_CHECK(r == '0', "the child's checks: %c (1 parent status, 2 thread comm, 4 shared)",
		   r);
	/* (the child's fd number of the shared description is the parent's) */
	TEST_CHECK(syscall(SYS_kcmp, getpid(), c, KCMP_FILE, fds[F_SELF], fds[F_SELF]) == 0,
		   "/proc/self/status is no longer one description in P and C");
	test_reap(c, true, 5);
	test_pass();
}
