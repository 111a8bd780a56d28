// stasis-test: timeout=30
/* A pipe opened again through /proc/self/fd (new open file descriptions of the same
 * pipe): a second read end, and one opened read-write (a pipe's own way to hold both
 * ends in one description), with 5 bytes queued; a child holds only a read end of its
 * own, opened the same way. After the restore every fd is still on the one pipe (the
 * same inode, the descriptions distinct: F_SETFL on one does not show on another), the
 * queued bytes come out of the second read end, what the write end writes comes out of
 * the read-write one and what that one writes out of the first read end, and a byte
 * written while no one else reads comes out of the child's. */
#include "lib.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static int reopen(int fd, int flags)
{
	char p[64];
	snprintf(p, sizeof(p), "/proc/self/fd/%d", fd);
	return open(p, flags);
}

int main(int argc, char **argv)
{
	int p[2];
	char buf[16];
	struct stat st[4];

	test_init(argc, argv);
	if (pipe(p) < 0)
		test_fail("pipe: %s", strerror(errno));
	int r2 = reopen(p[0], O_RDONLY | O_NONBLOCK), rw = reopen(p[1], O_RDWR);
	int go[2], res[2];
	if (r2 < 0 || rw < 0 || write(p[1], "hello", 5) != 5 || pipe(go) < 0 || pipe(res) < 0)
		test_fail("setup: %s", strerror(errno));
	pid_t c = fork();
	if (c < 0)
		test_fail("fork: %s", strerror(errno));
	if (!c) {
		int cr = reopen(p[0], O_RDONLY);
		close(p[0]);
		close(p[1]);
		close(r2);
		close(rw);
		test_say(res[1], cr >= 0 ? 'r' : 'e');
		if (test_hear(go[0]) != 'g')
			_exit(1);
		char b;
		test_say(res[1], read(cr, &b, 1) == 1 && b == 'Z' ? 'k' : 'x');
		for (;;)
			pause();
	}
	if (test_hear(res[0]) != 'r')
		test_fail("the child could not open the pipe again");
	test_ready();
	test_wait();

	int fds[4] = { p[0], p[1], r2, rw };
	for (int i = 0; i < 4; i++)
		if (fstat(fds[i], &st[i]) < 0)
			test_fail("fstat: %s", strerror(errno));
	TEST_CHECK(S_ISFIFO(st[0].st_mode) && st[1].st_ino == st[0].st_ino &&
			   st[2].st_ino == st[0].st_ino && st[3].st_ino == st[0].st_ino,
		   "the fds are not on one pipe (%lu %lu %lu %lu)", (unsigned long)st[0].st_ino,
		   (unsigned long)st[1].st_ino, (unsigned long)st[2].st_ino,
		   (unsigned long)st[3].st_ino);
	TEST_CHECK((fcntl(r2, F_GETFL) & O_NONBLOCK) && !(fcntl(p[0], F_GETFL) & O_NONBLOCK),
		   "the second read end shares its flags with the first");
	TEST_CHECK((fcntl(rw, F_GETFL) & O_ACCMODE) == O_RDWR, "the read-write fd is %#x",
		   fcntl(rw, F_GETFL));
	ssize_t n = read(r2, buf, sizeof(buf));
	if (test_sabotage())
		n = 0;
	TEST_CHECK(n == 5 && !memcmp(buf, "hello", 5), "the queued bytes: %zd", n);
	TEST_CHECK(write(p[1], "abc", 3) == 3 && read(rw, buf, sizeof(buf)) == 3 &&
			   !memcmp(buf, "abc", 3),
		   "the read-write fd does not read what the write end wrote");
	TEST_CHECK(write(rw, "xyz", 3) == 3 && read(p[0], buf, sizeof(buf)) == 3 &&
			   !memcmp(buf, "xyz", 3),
		   "the first read end does not read what the read-write fd wrote");
	TEST_CHECK(write(p[1], "Z", 1) == 1, "write: %s", strerror(errno));
	test_say(go[1], 'g');
	TEST_CHECK(test_hear(res[0]) == 'k', "the child's read end is not on the pipe");
	test_reap(c, true, 5);
	test_pass();
}
