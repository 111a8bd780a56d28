// stasis-test: timeout=30
/* An open file shared by fork: the root opens data.txt (O_RDWR, no O_APPEND) and forks;
 * the root and its child write records in turns through the inherited fd, so both
 * append at the one shared offset. After the restore: the offsets seen by both are equal
 * and at the end of the data, the turns go on appending (a write by one moves the
 * offset of the other), and the file holds P0 C0 P1 C1 ... with nothing overwritten. */
#include "lib.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define REC 16
#define ROUNDS_BEFORE 100
#define ROUNDS_AFTER 100

static int fd, to_child[2], to_root[2];

static void record(char *buf, char who, int n)
{
	snprintf(buf, REC + 1, "%c%013d\n", who, n); /* 15 chars + '\n' = REC */
	buf[REC - 1] = '\n';
	buf[REC - 2] = who == 'P' ? 'p' : 'c';
}

static int write_rec(char who, int n)
{
	char buf[REC + 1];

	record(buf, who, n);
	return write(fd, buf, REC) == REC ? 0 : -1;
}

static int rd(int f, void *buf, size_t len)
{
	size_t got = 0;

	while (got < len) {
		ssize_t n = read(f, (char *)buf + got, len - got);

		if (n > 0)
			got += (size_t)n;
		else if (n == 0 || errno != EINTR)
			return -1;
	}
	return 0;
}

static int wr(int f, const void *buf, size_t len)
{
	return write(f, buf, len) == (ssize_t)len ? 0 : -1;
}

/* commands: 'w' + int n: write record C n, answer its offset after the write;
 * 'o': answer the current offset; 'q': exit */
static __attribute__((noreturn)) void child(pid_t root)
{
	char cmd;
	int n;
	off_t off;

	close(to_child[1]);
	close(to_root[0]);
	for (;;) {
		if (rd(to_child[0], &cmd, 1) < 0)
			_exit(2);
		if (cmd == 'q')
			_exit(getppid() == root ? 0 : 3);
		if (cmd == 'w') {
			if (rd(to_child[0], &n, sizeof(n)) < 0 || write_rec('C', n) < 0)
				_exit(4);
		}
		off = lseek(fd, 0, SEEK_CUR);
		if (wr(to_root[1], &off, sizeof(off)) < 0)
			_exit(5);
	}
}

static off_t ask(char cmd, int n)
{
	off_t off;

	TEST_CHECK(wr(to_child[1], &cmd, 1) == 0, "command to the child: %s", strerror(errno));
	if (cmd == 'w')
		TEST_CHECK(wr(to_child[1], &n, sizeof(n)) == 0, "command: %s", strerror(errno));
	TEST_CHECK(rd(to_root[0], &off, sizeof(off)) == 0, "no answer from the child");
	return off;
}

static void round_(int n)
{
	off_t mine, theirs;

	TEST_CHECK(write_rec('P', n) == 0, "root write %d: %s", n, strerror(errno));
	mine = lseek(fd, 0, SEEK_CUR);
	TEST_CHECK(ask('o', 0) == mine, "round %d: the child's offset differs from the root's %lld",
		   n, (long long)mine);
	theirs = ask('w', n);
	TEST_CHECK(theirs == mine + REC, "round %d: the child wrote up to %lld, expected %lld", n,
		   (long long)theirs, (long long)(mine + REC));
	TEST_CHECK(lseek(fd, 0, SEEK_CUR) == theirs,
		   "round %d: the root's offset %lld after the child's write, expected %lld", n,
		   (long long)lseek(fd, 0, SEEK_CUR), (long long)theirs);
}

int main(int argc, char **argv)
{
	char expect[REC + 1], got[REC];
	pid_t pid, root;
	struct stat sb;
	int i, st, rfd;
	off_t off;

	test_init(argc, argv);
	root = getpid();
	fd = open("data.txt", O_RDWR | O_CREAT | O_TRUNC, 0644);
	if (fd < 0 || pipe(to_child) < 0 || pipe(to_root) < 0)
		test_fail("open/pipe: %s", strerror(errno));
	pid = fork();
	if (pid < 0)
		test_fail("fork: %s", strerror(errno));
	if (pid == 0)
		child(root);
	close(to_child[0]);
	close(to_root[1]);
	for (i = 0; i < ROUNDS_BEFORE; i++)
		round_(i);
	test_ready();
	test_wait();

	if (test_sabotage())
		lseek(fd, -3, SEEK_CUR);
	off = lseek(fd, 0, SEEK_CUR);
	TEST_CHECK(off == 2 * REC * ROUNDS_BEFORE, "the root's offset is %lld, expected %d",
		   (long long)off, 2 * REC * ROUNDS_BEFORE);
	TEST_CHECK(ask('o', 0) == off, "the child's offset differs from the root's %lld",
		   (long long)off);
	for (; i < ROUNDS_BEFORE + ROUNDS_AFTER; i++)
		round_(i);
	rfd = open("data.txt", O_RDONLY);
	TEST_CHECK(rfd >= 0 && fstat(rfd, &sb) == 0, "data.txt: %s", strerror(errno));
	TEST_CHECK(sb.st_size == 2 * REC * i, "data.txt has %lld bytes, expected %d",
		   (long long)sb.st_size, 2 * REC * i);
	TEST_CHECK(lseek(fd, 0, SEEK_CUR) == sb.st_size, "the shared offset is not at the end");
	for (int k = 0; k < 2 * i; k++) {
		record(expect, k % 2 ? 'C' : 'P', k / 2);
		TEST_CHECK(pread(rfd, got, REC, (off_t)k * REC) == REC, "short read");
		TEST_CHECK(memcmp(got, expect, REC) == 0, "record %d is \"%.15s\", expected \"%.15s\"",
			   k, got, expect);
	}
	close(rfd);
	TEST_CHECK(wr(to_child[1], "q", 1) == 0, "quit: %s", strerror(errno));
	alarm(20);
	TEST_CHECK(waitpid(pid, &st, 0) == pid && WIFEXITED(st) && WEXITSTATUS(st) == 0,
		   "child status %#x", st);
	test_pass();
}
