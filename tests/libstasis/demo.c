/* A program built against the installed libstasis (pkg-config stasis): it forks a child
 * that counts in a file, checkpoints it with stasis_dump (killed), reaps it, restores it
 * with stasis_restore and checks that the same pid counts on from where it stopped.
 * Usage: demo DIR (a scratch directory). Exit 0 and "ok N M" on success. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stasis.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static long counter(const char *path)
{
	char buf[64] = "";
	int fd = open(path, O_RDONLY);
	if (fd < 0)
		return -1;
	ssize_t n = pread(fd, buf, sizeof(buf) - 1, 0);
	close(fd);
	return n > 0 ? strtol(buf, NULL, 10) : -1;
}

static void sleep_ms(int ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };
	nanosleep(&ts, NULL);
}

static int fail(const char *what, pid_t child)
{
	fprintf(stderr, "demo: %s (%s)\n", what, stasis_last_error());
	if (child > 0) {
		kill(child, SIGKILL);
		waitpid(child, NULL, 0);
	}
	return 1;
}

int main(int argc, char **argv)
{
	char file[4096], img[4096];
	if (argc != 2)
		return 2;
	snprintf(file, sizeof(file), "%s/count", argv[1]);
	snprintf(img, sizeof(img), "%s/img", argv[1]);
	printf("%s\n", stasis_version());
	pid_t child = fork();
	if (child == 0) {
		int null = open("/dev/null", O_RDWR);
		dup2(null, 0);
		dup2(null, 1);
		dup2(null, 2);
		for (long i = 0;; i++) {
			char b[32];
			int n = snprintf(b, sizeof(b), "%ld\n", i);
			int fd = open(file, O_WRONLY | O_CREAT | O_TRUNC, 0644);
			if (fd >= 0) {
				(void)!write(fd, b, (size_t)n);
				close(fd);
			}
			sleep_ms(10);
		}
	}
	for (int k = 0; k < 1000 && counter(file) < 5; k++)
		sleep_ms(10);
	long before = counter(file);
	struct stasis_dump_opts d = STASIS_DUMP_OPTS_INIT;
	d.pid = child;
	d.images_dir = img;
	d.no_sync = 1;
	if (stasis_dump(&d))
		return fail("stasis_dump failed", child);
	/* killed; when the caller is its parent, stasis (its tracer) may have reaped it */
	int st;
	if (waitpid(child, &st, 0) != child && errno != ECHILD)
		return fail("the dumped child was not killed", child);
	/* (frozen between its O_TRUNC and its write, the child left the file empty: the
	 * restored child writes it) */
	long at_dump = counter(file);
	if (at_dump < 0)
		at_dump = before;
	struct stasis_restore_opts r = STASIS_RESTORE_OPTS_INIT;
	r.images_dir = img;
	pid_t root = 0;
	if (stasis_restore(&r, &root))
		return fail("stasis_restore failed", -1);
	if (root != child)
		return fail("the restored root has another pid", root);
	long after = counter(file);
	for (int k = 0; k < 1000 && after <= at_dump; k++) {
		sleep_ms(10);
		after = counter(file);
	}
	kill(root, SIGKILL);
	if (waitpid(root, &st, 0) != root)
		return fail("the restored child is not our child", -1);
	if (at_dump < 5 || after <= at_dump) {
		fprintf(stderr, "demo: the counter did not go on (%ld before the dump, %ld after "
			"it, %ld after the restore)\n", before, at_dump, after);
		return 1;
	}
	printf("ok %ld %ld\n", at_dump, after);
	return 0;
}
