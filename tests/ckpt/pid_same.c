// stasis-test: timeout=30
/* The task keeps its pid (and tid) across checkpoint/restore; the lib checks getpid()
 * against the pid recorded at start, this test also checks /proc/self and gettid. */
#include "lib.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

static pid_t proc_self_pid(void)
{
	char buf[64];
	ssize_t n = readlink("/proc/self", buf, sizeof(buf) - 1);

	if (n <= 0)
		return -1;
	buf[n] = '\0';
	return (pid_t)atoi(buf);
}

int main(int argc, char **argv)
{
	pid_t pid, now;

	test_init(argc, argv);
	pid = getpid();
	test_ready();
	test_wait();

	if (test_sabotage())
		pid++;
	now = getpid();
	TEST_CHECK(now == pid, "getpid() is %d, was %d", (int)now, (int)pid);
	TEST_CHECK(syscall(SYS_gettid) == now, "gettid() %ld != getpid() %d",
		   (long)syscall(SYS_gettid), (int)now);
	TEST_CHECK(proc_self_pid() == now, "/proc/self is %d, getpid() %d", (int)proc_self_pid(),
		   (int)now);
	test_pass();
}
