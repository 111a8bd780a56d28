// stasis-test: timeout=30
/* /proc/self/coredump_filter (which mappings a core dump holds; a mm flag only /proc
 * sets, inherited by children) set to 0x7f by the task, 0x21 by its child: both read
 * the same after the restore (the restorer's own filter is the default 0x33). */
#include "lib.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static unsigned long get_filter(void)
{
	char b[32] = { 0 };
	int fd = open("/proc/self/coredump_filter", O_RDONLY);
	if (fd < 0 || read(fd, b, sizeof(b) - 1) <= 0)
		test_fail("read coredump_filter: %s", strerror(errno));
	close(fd);
	return strtoul(b, NULL, 16);
}

static void set_filter(unsigned long v)
{
	char b[32];
	int n = snprintf(b, sizeof(b), "%#lx", v);
	int fd = open("/proc/self/coredump_filter", O_WRONLY);
	if (fd < 0 || write(fd, b, (size_t)n) != n)
		test_fail("write coredump_filter: %s", strerror(errno));
	close(fd);
}

int main(int argc, char **argv)
{
	int p[2], q[2]; /* child -> parent, parent -> child */

	test_init(argc, argv);
	set_filter(0x7f);
	if (pipe(p) || pipe(q))
		test_fail("pipe: %s", strerror(errno));
	pid_t child = fork();
	if (child == 0) {
		char c;
		set_filter(0x21);
		(void)!write(p[1], "r", 1);
		/* wait for the parent's verdict on us: our filter, read by us */
		while (read(q[0], &c, 1) == 1 && c != 'q')
			;
		_exit(get_filter() == 0x21 ? 0 : 1);
	}
	char c;
	if (child < 0 || read(p[0], &c, 1) != 1)
		test_fail("child: %s", strerror(errno));
	test_ready();
	test_wait();

	if (test_sabotage())
		set_filter(0x33);
	TEST_CHECK(get_filter() == 0x7f, "coredump_filter %#lx, expected 0x7f", get_filter());
	(void)!write(q[1], "q", 1);
	int st = 0;
	TEST_CHECK(waitpid(child, &st, 0) == child && WIFEXITED(st) && WEXITSTATUS(st) == 0,
		   "the child's coredump_filter is not 0x21 (status %#x)", st);
	test_pass();
}
