// stasis-test: timeout=30 needs=root
/* A file shared by two processes inside a mount namespace of their own, on a tmpfs that
 * only that namespace sees: the root unshares its mount namespace (/ made private),
 * leaves a decoy t/data.txt in the directory, mounts a tmpfs over t and opens
 * t/data.txt there; its child inherits the fd (one description, one offset) and opens
 * t/own.txt itself. After restore both fds are the files of the restored tmpfs (not the
 * decoy the restorer would see at that path), with their contents, and the offset is
 * still shared: a write by the child moves the root's. */
#include "lib.h"

#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

static int fd, q[2], a[2];

/* The child: 'w' writes "C\n" through the shared fd, 'o' checks its own file; answers
 * 'y' or 'n'. */
static __attribute__((noreturn)) void child(void)
{
	int own = open("t/own.txt", O_RDWR | O_CREAT, 0600);
	char cmd, ok;
	if (own < 0 || write(own, "mine\n", 5) != 5)
		_exit(2);
	close(q[1]);
	close(a[0]);
	while (read(q[0], &cmd, 1) == 1) {
		struct stat x, y;
		char buf[8] = "";
		if (cmd == 'w')
			ok = write(fd, "C\n", 2) == 2 ? 'y' : 'n';
		else
			ok = fstat(own, &x) == 0 && stat("t/own.txt", &y) == 0 && x.st_ino == y.st_ino &&
					     x.st_dev == y.st_dev && pread(own, buf, 5, 0) == 5 &&
					     !memcmp(buf, "mine\n", 5)
				     ? 'y'
				     : 'n';
		if (write(a[1], &ok, 1) != 1)
			_exit(3);
	}
	_exit(0);
}

static char ask(char cmd)
{
	char ok = 'n';
	TEST_CHECK(write(q[1], &cmd, 1) == 1 && test_read_within(a[0], &ok, 1, 5000) == 0,
		   "no answer from the child");
	return ok;
}

int main(int argc, char **argv)
{
	struct stat x, y;
	char buf[64];
	int st;

	test_init(argc, argv);
	if (unshare(CLONE_NEWNS) < 0 || mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0)
		test_fail("unshare/private: %s", strerror(errno));
	if (mkdir("t", 0755) < 0 && errno != EEXIST)
		test_fail("mkdir: %s", strerror(errno));
	int decoy = open("t/data.txt", O_WRONLY | O_CREAT | O_TRUNC, 0644);
	if (decoy < 0 || write(decoy, "decoy\n", 6) != 6)
		test_fail("decoy: %s", strerror(errno));
	close(decoy);
	if (mount("stasis-t", "t", "tmpfs", 0, "size=1m") < 0)
		test_fail("mount tmpfs: %s", strerror(errno));
	fd = open("t/data.txt", O_RDWR | O_CREAT | O_EXCL, 0644);
	if (fd < 0 || write(fd, "P\n", 2) != 2 || pipe(q) < 0 || pipe(a) < 0)
		test_fail("open/pipe: %s", strerror(errno));
	pid_t pid = fork();
	if (pid < 0)
		test_fail("fork: %s", strerror(errno));
	if (pid == 0)
		child();
	close(q[0]);
	close(a[1]);
	TEST_CHECK(ask('w') == 'y' && ask('o') == 'y', "child setup");
	TEST_CHECK(lseek(fd, 0, SEEK_CUR) == 4, "the offset is not shared before the dump");
	test_ready();
	test_wait();

	if (test_sabotage())
		lseek(fd, 1, SEEK_SET);
	TEST_CHECK(fstat(fd, &x) == 0 && stat("t/data.txt", &y) == 0 && x.st_ino == y.st_ino &&
			   x.st_dev == y.st_dev,
		   "the shared fd is not t/data.txt of the restored tmpfs");
	TEST_CHECK(lseek(fd, 0, SEEK_CUR) == 4, "the offset is %lld, not 4",
		   (long long)lseek(fd, 0, SEEK_CUR));
	TEST_CHECK(ask('o') == 'y', "the child's own file is not its t/own.txt");
	TEST_CHECK(ask('w') == 'y', "the child's write failed");
	TEST_CHECK(lseek(fd, 0, SEEK_CUR) == 6, "the child's write did not move the root's offset");
	memset(buf, 0, sizeof(buf));
	TEST_CHECK(pread(fd, buf, sizeof(buf) - 1, 0) == 6 && !strcmp(buf, "P\nC\nC\n"),
		   "t/data.txt holds \"%s\"", buf);
	close(q[1]);
	alarm(10);
	TEST_CHECK(waitpid(pid, &st, 0) == pid && WIFEXITED(st) && !WEXITSTATUS(st),
		   "child status %#x", st);
	test_pass();
}
