/* Benchmark workload: touches N KiB of anonymous memory with a non-zero pattern, creates
 * the ready file named on the command line, then sleeps in a loop until killed.
 *
 *   workload KIB READY_FILE
 */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	if (argc != 3) {
		fprintf(stderr, "usage: %s KIB READY_FILE\n", argv[0]);
		return 2;
	}
	size_t bytes = (size_t)strtoull(argv[1], NULL, 10) * 1024;

	if (bytes) {
		uint64_t *mem = mmap(NULL, bytes, PROT_READ | PROT_WRITE,
				     MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

		if (mem == MAP_FAILED) {
			perror("workload: mmap");
			return 1;
		}
		/* every word differs and none is zero: no page can be skipped as zero */
		for (size_t i = 0; i < bytes / sizeof(*mem); i++)
			mem[i] = (i * 0x9E3779B97F4A7C15ull) | 1;
	}
	int fd = open(argv[2], O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);

	if (fd < 0) {
		perror("workload: ready file");
		return 1;
	}
	close(fd);
	for (;;) {
		struct timespec ts = { .tv_sec = 1, .tv_nsec = 0 };

		while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
			;
	}
}
