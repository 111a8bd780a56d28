// stasis-test: timeout=30
// stasis-test: nonroot-known=a task under seccomp is dumped only with CAP_SYS_ADMIN in the
//   initial user namespace (its filters suspended while stasis runs syscalls in it)
// stasis-test: rootless-known=a task under seccomp is dumped only with CAP_SYS_ADMIN in the
//   initial user namespace (its filters suspended while stasis runs syscalls in it)
/* Seccomp strict mode. A child enters SECCOMP_MODE_STRICT and serves its parent over two
 * pipes with nothing but read, write and exit: 'p' is answered with 'P'; on 'k' it calls
 * getppid (which strict mode punishes with SIGKILL) and would then answer 'X'. Dumped
 * while blocked in read. After the restore: /proc says Seccomp 1 for the child (0 for the
 * root), the child still answers 'p' (read and write allowed), and on 'k' it dies by
 * SIGKILL without answering: strict mode is back, not just the status line. */
#include "lib.h"

#include <errno.h>
#include <linux/seccomp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

static int seccomp_mode(pid_t pid)
{
	char path[64], buf[4096];
	snprintf(path, sizeof(path), "/proc/%d/status", pid);
	test_read_text(path, buf, sizeof(buf));
	const char *m = strstr(buf, "\nSeccomp:");
	return m ? atoi(m + 9) : -1;
}

/* Only read, write and exit from here on (raw syscalls: no library code in between). */
static void serve(int rd, int wr)
{
	for (;;) {
		char c;
		if (syscall(SYS_read, rd, &c, 1) != 1)
			syscall(SYS_exit, 3);
		if (c == 'p') {
			syscall(SYS_write, wr, "P", 1);
		} else if (c == 'k') {
			syscall(SYS_getppid);
			syscall(SYS_write, wr, "X", 1);
		} else {
			syscall(SYS_exit, 0);
		}
	}
}

static int ping(int down, int up)
{
	char c = 0;
	if (write(down, "p", 1) != 1 || test_read_within(up, &c, 1, 5000))
		return -1;
	return c == 'P' ? 0 : -1;
}

int main(int argc, char **argv)
{
	int down[2], up[2];
	test_init(argc, argv);
	TEST_CHECK(pipe(down) == 0 && pipe(up) == 0, "pipe: %s", strerror(errno));
	pid_t child = fork();
	TEST_CHECK(child >= 0, "fork: %s", strerror(errno));
	if (child == 0) {
		close(down[1]);
		close(up[0]);
		if (syscall(SYS_seccomp, SECCOMP_SET_MODE_STRICT, 0, NULL))
			_exit(2);
		serve(down[0], up[1]);
	}
	close(down[0]);
	close(up[1]);
	TEST_CHECK(ping(down[1], up[0]) == 0, "the child does not answer before the dump");
	TEST_CHECK(seccomp_mode(child) == 1, "child: Seccomp %d before the dump", seccomp_mode(child));
	test_ready();
	test_wait();

	TEST_CHECK(seccomp_mode(getpid()) == 0, "root: Seccomp %d", seccomp_mode(getpid()));
	TEST_CHECK(seccomp_mode(child) == 1, "child: Seccomp %d, not 1 (strict)", seccomp_mode(child));
	TEST_CHECK(ping(down[1], up[0]) == 0, "the child does not answer after the restore");
	/* sabotage: let it exit instead of calling getppid */
	TEST_CHECK(write(down[1], test_sabotage() ? "e" : "k", 1) == 1, "write to the child");
	int st = test_reap(child, false, 10);
	char c;
	ssize_t n = read(up[0], &c, 1);
	TEST_CHECK(n == 0, "the child answered after getppid (read %zd)", n);
	TEST_CHECK(st != -1 && WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL,
		   "child: wait status %#x, not killed by SIGKILL (strict mode lost)", st);
	test_pass();
}
