/* fdtree benchmark workload: a tree of processes sharing inherited descriptions.
 *
 *     fdtree_workload READY NPROC NPAIR
 *
 * Opens NPAIR unix socketpairs (2 * NPAIR fds) and a pipe with data queued, forks
 * NPROC - 1 children that inherit them all and sleep, creates READY, then sleeps until
 * killed (the children too: they die with it, PR_SET_PDEATHSIG). */
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	if (argc != 4)
		return 2;
	long nproc = strtol(argv[2], NULL, 10), npair = strtol(argv[3], NULL, 10);
	struct rlimit rl = { (rlim_t)(2 * npair + 64), (rlim_t)(2 * npair + 64) };
	if (nproc < 1 || npair < 0 || (2 * npair + 64 > 1024 && setrlimit(RLIMIT_NOFILE, &rl)))
		return 2;
	for (long i = 0; i < npair; i++) {
		int sv[2];
		if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv))
			return 1;
	}
	int p[2];
	if (pipe(p) || write(p[1], "queued", 6) != 6)
		return 1;
	pid_t root = getpid();
	for (long i = 1; i < nproc; i++) {
		pid_t c = fork();
		if (c < 0)
			return 1;
		if (c == 0) {
			if (prctl(PR_SET_PDEATHSIG, SIGKILL) || getppid() != root)
				_exit(1);
			for (;;)
				pause();
		}
	}
	int fd = open(argv[1], O_WRONLY | O_CREAT | O_EXCL, 0644);
	if (fd < 0)
		return 1;
	close(fd);
	for (;;)
		pause();
}
