// stasis-test: timeout=30
/* A child created with CLONE_FILES|CLONE_FS shares the fd table and root/cwd/umask with
 * its parent. After restore both are still shared: an fd the child opens is visible in
 * the parent, a chdir/umask by the child changes the parent's. */
#include "lib.h"

#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

static int cmd[2], ans[2];

static __attribute__((noreturn)) void child(void)
{
	char op;
	signal(SIGTERM, SIG_IGN); /* the stop request is for the parent */
	for (;;) {
		if (read(cmd[0], &op, 1) != 1)
			_exit(2);
		int r = 0;
		if (op == 'o')
			r = open("/dev/null", O_RDONLY | O_CLOEXEC); /* lands in the shared table */
		else if (op == 'c')
			r = chdir("/");
		else if (op == 'u')
			r = (int)umask(0011);
		else if (op == 'q')
			_exit(0);
		if (write(ans[1], &r, sizeof(r)) != sizeof(r))
			_exit(3);
	}
}

static int ask(char op)
{
	int r = -1;
	TEST_CHECK(write(cmd[1], &op, 1) == 1, "request: %s", strerror(errno));
	TEST_CHECK(read(ans[0], &r, sizeof(r)) == sizeof(r), "no answer from the child");
	return r;
}

static void check_sharing(const char *when)
{
	int fd = ask('o');
	TEST_CHECK(fd >= 0 && fcntl(fd, F_GETFD) >= 0,
		   "%s: fd %d opened by the child is not in the parent's table", when, fd);
	close(fd);
	char before[4096], after[4096];
	TEST_CHECK(getcwd(before, sizeof(before)) != NULL, "getcwd");
	TEST_CHECK(ask('c') == 0, "%s: child chdir failed", when);
	TEST_CHECK(getcwd(after, sizeof(after)) && !strcmp(after, "/"),
		   "%s: the child's chdir did not move the parent (cwd %s)", when, after);
	TEST_CHECK(chdir(before) == 0, "chdir back");
	umask(0022);
	ask('u');
	mode_t m = umask(0022);
	TEST_CHECK(m == 0011, "%s: the child's umask is not the parent's (%o)", when, m);
}

int main(int argc, char **argv)
{
	test_init(argc, argv);
	if (pipe(cmd) < 0 || pipe(ans) < 0)
		test_fail("pipe: %s", strerror(errno));
	long pid = syscall(SYS_clone, CLONE_FILES | CLONE_FS | SIGCHLD, 0, NULL, NULL, 0);
	if (pid < 0)
		test_fail("clone: %s", strerror(errno));
	if (pid == 0)
		child();
	check_sharing("before the dump");
	test_ready();
	test_wait();
	if (test_sabotage()) {
		/* the parent gets a table of its own */
		if (syscall(SYS_unshare, CLONE_FILES | CLONE_FS) < 0)
			test_fail("unshare: %s", strerror(errno));
	}
	check_sharing("after restore");
	char q = 'q'; /* no answer: the child just exits */
	TEST_CHECK(write(cmd[1], &q, 1) == 1, "quit");
	int st;
	alarm(10);
	TEST_CHECK(waitpid((pid_t)pid, &st, 0) == pid && WIFEXITED(st) && !WEXITSTATUS(st),
		   "child status %#x", st);
	test_pass();
}
