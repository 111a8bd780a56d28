// stasis-test: timeout=60
/* Many descriptions inherited by many processes, some of them replaced at the same fd
 * numbers. The root opens NPAIR socketpairs, pipes with data queued, an eventfd with a
 * count and a file with an offset, then forks NCHILD children (a few of them fork a
 * grandchild). Each child then, by its number: keeps everything; closes some pairs and
 * makes new ones at the same numbers, and opens the file again at its fd number (the same
 * inode, another description); swaps two ends (dup2) so that an fd number holds its
 * parent's other description; or forks a grandchild that inherits its table. After
 * the restore every child compares each of its fds with the same fd of its parent by
 * kcmp(KCMP_FILE): shared where it was shared, not where it was replaced (a dump that
 * takes a description from the parent by fd number without asking would fail); the
 * root's data is there (pipes, eventfd, offset), and a token written by the root into
 * each pair's first end is read by each child that still shares the second one. */
#include "lib.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/kcmp.h>
#include <stdio.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#define NPAIR 120
#define NPIPE 6
#define NCHILD 24
#define BASE 100 /* the pairs' fds: BASE + 2i (first end), BASE + 2i + 1 (second) */
#define EVFD 90
#define FILEFD 91
#define PIPEFD 60 /* read ends PIPEFD + 2i, write ends PIPEFD + 2i + 1 */

enum mode { KEEP, REPLACE, SWAP, GRAND, NMODE };

struct kid {
	pid_t pid;
	int mode;
	int cmd[2], ans[2]; /* root -> kid, kid -> root: made by the root, inherited by all */
};

#define NKID (NCHILD + NCHILD / NMODE) /* every GRAND child has a grandchild */
static struct kid kids[NKID];

static bool replaced(int mode, int pair)
{
	return (mode == REPLACE && pair % 3 == 1) || (mode == SWAP && (pair == 5 || pair == 6));
}

static bool token_pair(int mode, int pair)
{
	return pair % 8 == 0 && !replaced(mode, pair);
}

static int same_file(pid_t a, pid_t b, int fd)
{
	long r = syscall(SYS_kcmp, a, b, KCMP_FILE, fd, fd);
	if (r < 0)
		test_fail("kcmp of fd %d of pids %d and %d: %s", fd, a, b, strerror(errno));
	return r == 0;
}

/* After the restore: every pair's fds compared with the parent's, then the tokens the
 * root wrote for this child (one per pair it shares). */
static char verify(int mode)
{
	pid_t parent = getppid();
	for (int i = 0; i < NPAIR; i++)
		for (int e = 0; e < 2; e++) {
			int fd = BASE + 2 * i + e;
			bool want = !replaced(mode, i);
			if (same_file(getpid(), parent, fd) != want) {
				test_msg("pid %d (mode %d): fd %d %s its parent's %d", getpid(), mode,
					 fd, want ? "is no longer" : "became", parent);
				return 'x';
			}
		}
	if (same_file(getpid(), parent, FILEFD) != (mode != REPLACE) ||
	    lseek(FILEFD, 0, SEEK_CUR) != (mode == REPLACE ? 7 : 3)) {
		test_msg("pid %d (mode %d): data.txt at offset %lld", getpid(), mode,
			 (long long)lseek(FILEFD, 0, SEEK_CUR));
		return 'x';
	}
	for (int i = 0; i < NPAIR; i++) {
		int got = -1;
		if (!token_pair(mode, i))
			continue;
		if (test_read_within(BASE + 2 * i + 1, &got, sizeof(got), 5000) || got != i) {
			test_msg("pid %d: pair %d: token %d", getpid(), i, got);
			return 'x';
		}
	}
	return 'k';
}

static __attribute__((noreturn)) void kid_main(struct kid *k)
{
	if (k->mode == REPLACE) { /* the same file, another description */
		int f = open("data.txt", O_RDWR);
		TEST_CHECK(f >= 0 && lseek(f, 7, SEEK_SET) == 7, "data.txt: %m");
		test_place_fd(f, FILEFD);
	}
	if (k->mode == REPLACE)
		for (int i = 1; i < NPAIR; i += 3) {
			int sv[2];
			TEST_CHECK(!socketpair(AF_UNIX, SOCK_STREAM, 0, sv), "socketpair: %m");
			test_place_fd(sv[0], BASE + 2 * i);
			test_place_fd(sv[1], BASE + 2 * i + 1);
		}
	for (int e = 0; k->mode == SWAP && e < 2; e++) { /* pairs 5 and 6 trade their ends */
		int a = BASE + 10 + e, b = BASE + 12 + e, t = dup(a);
		TEST_CHECK(t >= 0 && dup2(b, a) == a && dup2(t, b) == b && !close(t), "swap: %m");
	}
	test_say(k->ans[1], 'r');
	for (;;) {
		char c = test_hear(k->cmd[0]);
		if (c != 'v') {
			if (k->mode == GRAND && test_reap(k[1].pid, false, 10) != 0)
				_exit(1);
			_exit(c == 'q' ? 0 : 1);
		}
		test_say(k->ans[1], verify(k->mode));
	}
}

static void spawn(struct kid *k)
{
	k->pid = fork();
	TEST_CHECK(k->pid >= 0, "fork: %m");
	if (k->pid)
		return;
	if (k->mode == GRAND) {
		/* keeps its table and forks a grandchild that inherits it: the next slot */
		spawn(k + 1);
		TEST_CHECK(write(k->ans[1], &k[1].pid, sizeof(pid_t)) == sizeof(pid_t), "w: %m");
	}
	kid_main(k);
}

int main(int argc, char **argv)
{
	test_init(argc, argv);
	for (int i = 0; i < NPAIR; i++) {
		int sv[2];
		TEST_CHECK(!socketpair(AF_UNIX, SOCK_STREAM, 0, sv), "socketpair: %m");
		test_place_fd(sv[0], BASE + 2 * i);
		test_place_fd(sv[1], BASE + 2 * i + 1);
	}
	for (int i = 0; i < NPIPE; i++) {
		int p[2];
		TEST_CHECK(!pipe(p), "pipe: %m");
		test_place_fd(p[0], PIPEFD + 2 * i);
		test_place_fd(p[1], PIPEFD + 2 * i + 1);
		char b[32];
		int n = snprintf(b, sizeof(b), "pipe %d", i);
		TEST_CHECK(write(PIPEFD + 2 * i + 1, b, (size_t)n) == n, "write: %m");
	}
	test_place_fd(eventfd(7, 0), EVFD);
	int f = open("data.txt", O_RDWR | O_CREAT | O_TRUNC, 0644);
	TEST_CHECK(f >= 0 && write(f, "0123456789", 10) == 10 && lseek(f, 3, SEEK_SET) == 3,
		   "data.txt: %m");
	test_place_fd(f, FILEFD);
	for (int i = 0; i < NKID; i++)
		TEST_CHECK(!pipe(kids[i].cmd) && !pipe(kids[i].ans), "pipe: %m");
	for (int i = 0, n = 0; n < NCHILD; n++) {
		kids[i].mode = n % NMODE;
		if (kids[i].mode == GRAND)
			kids[i + 1].mode = KEEP;
		spawn(&kids[i]);
		if (kids[i].mode == GRAND) {
			TEST_CHECK(read(kids[i].ans[0], &kids[i + 1].pid, sizeof(pid_t)) ==
					   sizeof(pid_t),
				   "grandchild: %m");
			TEST_CHECK(test_hear(kids[i + 1].ans[0]) == 'r', "grandchild not ready");
		}
		TEST_CHECK(test_hear(kids[i].ans[0]) == 'r', "child %d not ready", kids[i].pid);
		i += kids[i].mode == GRAND ? 2 : 1;
	}
	test_ready();
	if (test_sabotage())
		lseek(FILEFD, 1, SEEK_CUR);
	test_wait();

	char b[32];
	for (int i = 0; i < NPIPE; i++) {
		int n = snprintf(b, sizeof(b), "pipe %d", i);
		char got[32] = { 0 };
		TEST_CHECK(test_read_within(PIPEFD + 2 * i, got, (size_t)n, 5000) == 0 &&
				   !memcmp(got, b, (size_t)n),
			   "pipe %d holds \"%s\"", i, got);
	}
	uint64_t cnt = 0;
	TEST_CHECK(read(EVFD, &cnt, sizeof(cnt)) == sizeof(cnt) && cnt == 7, "eventfd %llu",
		   (unsigned long long)cnt);
	TEST_CHECK(lseek(FILEFD, 0, SEEK_CUR) == 3, "data.txt offset %lld",
		   (long long)lseek(FILEFD, 0, SEEK_CUR));
	for (int k = 0; k < NKID; k++) {
		for (int i = 0; i < NPAIR; i++)
			TEST_CHECK(!token_pair(kids[k].mode, i) ||
					   write(BASE + 2 * i, &i, sizeof(i)) == sizeof(i),
				   "token: %m");
		test_say(kids[k].cmd[1], 'v');
		char a = test_hear(kids[k].ans[0]);
		TEST_CHECK(a == 'k', "pid %d (mode %d) answered '%c'", kids[k].pid, kids[k].mode,
			   a ? a : '-');
	}
	for (int k = NKID - 1; k >= 0; k--) { /* (grandchildren before their parents) */
		test_say(kids[k].cmd[1], 'q');
		if (k && kids[k - 1].mode == GRAND)
			continue; /* a grandchild: its parent reaps it */
		TEST_CHECK(test_reap(kids[k].pid, false, 10) == 0, "pid %d did not exit cleanly",
			   kids[k].pid);
	}
	test_msg("%d processes checked their %d fds against their parent's", NKID, 2 * NPAIR);
	test_pass();
}
