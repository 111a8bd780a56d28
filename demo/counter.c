/* A tiny sample program for the stasis demo: prints an increasing counter with its pid
 * every 200 ms on stdout. The count lives in the process's memory, so after a
 * checkpoint and restore it carries on from where it stopped. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

int main(void)
{
	const struct timespec period = { .tv_sec = 0, .tv_nsec = 200 * 1000 * 1000 };
	unsigned long count = 0;
	char line[64];

	for (;;) {
		int len = snprintf(line, sizeof(line), "pid %d: count %lu\n", (int)getpid(), count++);

		/* write(2), not stdio: nothing sits in a user-space buffer across a checkpoint */
		if (write(STDOUT_FILENO, line, (size_t)len) != len)
			return 1;
		struct timespec left = period;

		while (nanosleep(&left, &left) < 0 && errno == EINTR)
			;
	}
}
