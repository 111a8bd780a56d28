// stasis-test: timeout=30 needs=root
/* A task that unshared a pid namespace for its children (CLONE_NEWPID) and has not forked
 * since: its pid_for_children is a new namespace, its own pid namespace unchanged. After
 * the restore the same holds, and the first child it forks is pid 1 of that namespace. */
#include "lib.h"

#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

static ino_t ino_of(const char *path)
{
	struct stat st;
	return stat(path, &st) == 0 ? st.st_ino : 0;
}

int main(int argc, char **argv)
{
	test_init(argc, argv);
	ino_t own = ino_of("/proc/self/ns/pid");
	if (unshare(CLONE_NEWPID) < 0)
		test_fail("unshare(CLONE_NEWPID): %s", strerror(errno));
	TEST_CHECK(ino_of("/proc/self/ns/pid_for_children") != own, "no pending pid namespace");
	test_ready();
	test_wait();

	if (test_sabotage())
		setns(open("/proc/self/ns/pid", O_RDONLY), CLONE_NEWPID);
	TEST_CHECK(ino_of("/proc/self/ns/pid") == ino_of("/proc/self/ns/pid") &&
			   ino_of("/proc/self/ns/pid_for_children") != ino_of("/proc/self/ns/pid"),
		   "after the restore pid_for_children is the task's own pid namespace");
	int p[2];
	if (pipe(p) < 0)
		test_fail("pipe: %s", strerror(errno));
	pid_t c = fork();
	if (c == 0) {
		pid_t me = getpid();
		(void)!write(p[1], &me, sizeof(me));
		_exit(0);
	}
	pid_t inner = 0;
	(void)!read(p[0], &inner, sizeof(inner));
	int st;
	waitpid(c, &st, 0);
	TEST_CHECK(inner == 1, "the first child after the restore is pid %d in its namespace, "
		   "expected 1", (int)inner);
	test_pass();
}
