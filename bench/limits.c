/* The machine's limits for the stasis benchmark, measured the way the benchmark's dump and
 * restore move bytes. Prints the elapsed time of the measured part in seconds.
 *
 *   limits write PATH BYTES SYNC [K]  time to create PATH and write BYTES into it from a
 *                                     memory buffer (then fsync it when SYNC is 1): the
 *                                     dump limit
 *   limits fresh BYTES [K]            time to mmap fresh anonymous memory and memcpy BYTES
 *                                     into it, page faults included: the restore limit
 *
 * With K > 1 the measurement is done K times back to back and the best time is printed:
 * the limit is meant to be what the machine can do, and a single fsync on this kind of
 * VM now and then takes several times longer than usual.
 *
 * The source buffer is as large as the data and touched beforehand (not timed), so the
 * copy reads from memory, not from a cache-hot small buffer. PATH is removed afterwards.
 */
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#define MAX_IO (1ul << 30)

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static uint64_t *source(size_t bytes)
{
	uint64_t *buf = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
			     -1, 0);

	if (buf == MAP_FAILED) {
		perror("limits: mmap source");
		exit(1);
	}
	for (size_t i = 0; i < bytes / sizeof(*buf); i++)
		buf[i] = (i * 0x9E3779B97F4A7C15ull) | 1;
	return buf;
}

static double write_once(const char *path, const char *buf, size_t bytes, int sync)
{
	unlink(path);
	double t0 = now();
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);

	if (fd < 0) {
		perror("limits: open");
		return -1;
	}
	for (size_t done = 0; done < bytes;) {
		size_t len = bytes - done < MAX_IO ? bytes - done : MAX_IO;
		ssize_t n = write(fd, buf + done, len);

		if (n <= 0) {
			perror("limits: write");
			unlink(path);
			return -1;
		}
		done += (size_t)n;
	}
	if (sync && fsync(fd) < 0) {
		perror("limits: fsync");
		unlink(path);
		return -1;
	}
	close(fd);
	double t1 = now();

	unlink(path);
	return t1 - t0;
}

static double fresh_once(const char *buf, size_t bytes)
{
	double t0 = now();
	void *dst = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	if (dst == MAP_FAILED) {
		perror("limits: mmap destination");
		return -1;
	}
	memcpy(dst, buf, bytes);
	double t1 = now();

	/* keep the copy observable so it cannot be optimized away */
	if (((volatile const char *)dst)[bytes - 1] != buf[bytes - 1])
		return -1;
	munmap(dst, bytes);
	return t1 - t0;
}

int main(int argc, char **argv)
{
	int write_mode = argc >= 5 && argc <= 6 && !strcmp(argv[1], "write");
	int fresh_mode = argc >= 3 && argc <= 4 && !strcmp(argv[1], "fresh");

	if (!write_mode && !fresh_mode) {
		fprintf(stderr, "usage: %s write PATH BYTES SYNC [K] | fresh BYTES [K]\n", argv[0]);
		return 2;
	}
	size_t bytes = strtoull(argv[write_mode ? 3 : 2], NULL, 10);
	int reps = argc == (write_mode ? 6 : 4) ? atoi(argv[argc - 1]) : 1;
	double best = -1;

	if (!bytes || reps < 1) {
		fprintf(stderr, "limits: BYTES and K must be positive\n");
		return 2;
	}
	const char *buf = (const char *)source(bytes);

	for (int i = 0; i < reps; i++) {
		double t = write_mode ? write_once(argv[2], buf, bytes, atoi(argv[4]))
				      : fresh_once(buf, bytes);

		if (t < 0)
			return 1;
		if (best < 0 || t < best)
			best = t;
	}
	printf("%.6f\n", best);
	return 0;
}
