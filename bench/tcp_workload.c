/* Workload of bench/tcp.py: N established TCP connections over 127.0.0.1, both ends in
 * this process, each with 100 bytes queued unread in each direction. Touches the file
 * READY when set up, then sleeps. On SIGUSR1 it reads every queued message, checks it
 * and writes "ok N" (or the first mismatch) to the file DONE.
 *
 *     tcp_workload N READY DONE */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

static volatile sig_atomic_t check_now;

static void on_usr1(int sig)
{
	(void)sig;
	check_now = 1;
}

static void msg(char *buf, int i, int dir)
{
	memset(buf, 0, 100);
	snprintf(buf, 100, "connection %d direction %d", i, dir);
}

static int verify(const int *c, const int *s, int n)
{
	char want[100], got[100];
	for (int i = 0; i < n; i++)
		for (int dir = 0; dir < 2; dir++) {
			msg(want, i, dir);
			if (recv(dir ? c[i] : s[i], got, 100, MSG_WAITALL) != 100 ||
			    memcmp(got, want, 100))
				return i;
		}
	return -1;
}

int main(int argc, char **argv)
{
	if (argc != 4)
		return 2;
	int n = atoi(argv[1]);
	struct rlimit rl;
	getrlimit(RLIMIT_NOFILE, &rl);
	rl.rlim_cur = rl.rlim_max;
	setrlimit(RLIMIT_NOFILE, &rl);
	int *c = calloc((size_t)n + 1, sizeof(int)), *s = calloc((size_t)n + 1, sizeof(int));
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t l = sizeof(a);
	int lsn = socket(AF_INET, SOCK_STREAM, 0);
	if (!c || !s || lsn < 0 || bind(lsn, (struct sockaddr *)&a, l) || listen(lsn, 4096) ||
	    getsockname(lsn, (struct sockaddr *)&a, &l)) {
		perror("listener");
		return 1;
	}
	char buf[100];
	for (int i = 0; i < n; i++) {
		c[i] = socket(AF_INET, SOCK_STREAM, 0);
		if (c[i] < 0 || connect(c[i], (struct sockaddr *)&a, l) ||
		    (s[i] = accept(lsn, NULL, NULL)) < 0) {
			perror("connection");
			return 1;
		}
		msg(buf, i, 0);
		if (send(c[i], buf, 100, 0) != 100)
			return 1;
		msg(buf, i, 1);
		if (send(s[i], buf, 100, 0) != 100)
			return 1;
	}
	close(lsn);
	signal(SIGUSR1, on_usr1);
	int fd = open(argv[2], O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
	if (fd < 0)
		return 1;
	close(fd);
	while (!check_now)
		pause();
	int bad = verify(c, s, n);
	FILE *f = fopen(argv[3], "w");
	if (!f)
		return 1;
	if (bad < 0)
		fprintf(f, "ok %d\n", n);
	else
		fprintf(f, "connection %d: wrong data\n", bad);
	fclose(f);
	for (;;)
		pause();
}
