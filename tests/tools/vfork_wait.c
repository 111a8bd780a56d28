/* A vfork parent that stays waiting (check bad_dump_vfork): prints its pid, vfork()s a
 * child that sleeps 60 s before _exit (no exec: the parent waits, sharing its memory
 * with the child, all that time), then exits with the child's status. */
#include <stdio.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

int main(void)
{
	printf("%d\n", getpid());
	fflush(stdout);
	pid_t c = vfork();
	if (c == 0) {
		struct timespec ts = { 60, 0 };
		nanosleep(&ts, NULL);
		_exit(7);
	}
	int st = 0;
	if (c < 0 || waitpid(c, &st, 0) != c)
		return 1;
	return WIFEXITED(st) ? WEXITSTATUS(st) : 1;
}
