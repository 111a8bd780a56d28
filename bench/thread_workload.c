/* Benchmark workload for bench/threads.py: N sleeping threads.
 *
 *   thread_workload N READY_FILE [STACK_KIB]
 *
 * Creates N threads (default stacks of 64 KiB) that each record that they started and
 * then sleep in FUTEX_WAIT on a word that never changes; once all of them are asleep
 * (state S in /proc/self/task/TID/stat) the main thread creates READY_FILE, writes the
 * thread count into it and sleeps in pause() until killed. stdout/stderr are diagnostics.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/futex.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

static atomic_int started;
static int never; /* the futex word: stays 0 */

static void *sleeper(void *arg)
{
	(void)arg;
	atomic_fetch_add(&started, 1);
	for (;;)
		syscall(SYS_futex, &never, FUTEX_WAIT_PRIVATE, 0, NULL, NULL, 0);
	return NULL;
}

static void sleep_ms(long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };

	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

/* number of this process's tasks not in state S (sleeping), -1 on error */
static int not_sleeping(void)
{
	DIR *d = opendir("/proc/self/task");
	struct dirent *de;
	int n = 0;
	pid_t me = (pid_t)syscall(SYS_gettid);

	if (!d)
		return -1;
	while ((de = readdir(d))) {
		char path[300], buf[512], *p;
		ssize_t len;
		int fd;

		if (de->d_name[0] == '.' || atoi(de->d_name) == me)
			continue;
		snprintf(path, sizeof(path), "/proc/self/task/%s/stat", de->d_name);
		fd = open(path, O_RDONLY | O_CLOEXEC);
		if (fd < 0)
			continue;
		len = read(fd, buf, sizeof(buf) - 1);
		close(fd);
		if (len <= 0)
			continue;
		buf[len] = '\0';
		p = strrchr(buf, ')');
		if (!p || p[1] != ' ' || p[2] != 'S')
			n++;
	}
	closedir(d);
	return n;
}

int main(int argc, char **argv)
{
	pthread_attr_t attr;
	long n, stack_kib = 64;
	int i, err, fd, busy = -1;
	char text[32];

	if (argc < 3 || argc > 4) {
		fprintf(stderr, "usage: %s N READY_FILE [STACK_KIB]\n", argv[0]);
		return 2;
	}
	n = strtol(argv[1], NULL, 10);
	if (argc == 4)
		stack_kib = strtol(argv[3], NULL, 10);
	if (n < 0 || n > 1000000 || stack_kib < 16) {
		fprintf(stderr, "thread_workload: bad arguments\n");
		return 2;
	}
	pthread_attr_init(&attr);
	err = pthread_attr_setstacksize(&attr, (size_t)stack_kib * 1024);
	if (err) {
		fprintf(stderr, "thread_workload: stack size: %s\n", strerror(err));
		return 1;
	}
	for (i = 0; i < n; i++) {
		pthread_t th;

		err = pthread_create(&th, &attr, sleeper, NULL);
		if (err) {
			fprintf(stderr, "thread_workload: pthread_create #%d: %s\n", i, strerror(err));
			return 1;
		}
	}
	for (i = 0; i < 60000 && atomic_load(&started) < n; i++)
		sleep_ms(1);
	if (atomic_load(&started) < n) {
		fprintf(stderr, "thread_workload: only %d threads started\n", atomic_load(&started));
		return 1;
	}
	for (i = 0; i < 1000 && (busy = not_sleeping()) != 0; i++)
		sleep_ms(10);
	if (busy != 0) {
		fprintf(stderr, "thread_workload: %d threads not asleep\n", busy);
		return 1;
	}
	fd = open(argv[2], O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
	if (fd < 0) {
		perror("thread_workload: ready file");
		return 1;
	}
	snprintf(text, sizeof(text), "%ld\n", n);
	if (write(fd, text, strlen(text)) < 0)
		perror("thread_workload: write ready file");
	close(fd);
	for (;;)
		pause();
}
