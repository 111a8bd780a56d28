/* Migration benchmark workload: touches MIB MiB of private anonymous memory with a
 * non-zero pattern, creates READY_FILE, then rewrites PERMILLE/1000 of its pages every
 * second, a slice every 10 ms, walking through the memory with a stride so that the
 * pages written are spread over all of it (the worst case for the number of runs and
 * for transparent huge pages: every 2 MiB page sees writes).
 *
 *   migrate_workload MIB READY_FILE PERMILLE
 */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	if (argc != 4) {
		fprintf(stderr, "usage: %s MIB READY_FILE PERMILLE\n", argv[0]);
		return 2;
	}
	size_t bytes = (size_t)strtoull(argv[1], NULL, 10) << 20;
	long permille = strtol(argv[3], NULL, 10);
	size_t page = (size_t)sysconf(_SC_PAGESIZE), npages = bytes / page;
	char *mem = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (mem == MAP_FAILED || permille < 0 || !npages) {
		fprintf(stderr, "migrate_workload: mmap or PERMILLE: %s\n", strerror(errno));
		return 1;
	}
	for (size_t i = 0; i < bytes / sizeof(uint64_t); i++)
		((uint64_t *)mem)[i] = (i * 0x9E3779B97F4A7C15ull) | 1;
	int fd = open(argv[2], O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
	if (fd < 0) {
		perror("migrate_workload: ready file");
		return 1;
	}
	close(fd);
	/* per 10 ms: npages * permille / 1000 / 100 pages (at least one when permille > 0) */
	size_t per_tick = permille ? npages * (size_t)permille / 100000 : 0;
	if (permille && !per_tick)
		per_tick = 1;
	size_t stride = 4099, at = 0; /* prime: visits every page */
	for (unsigned gen = 1;; gen++) {
		for (size_t k = 0; k < per_tick; k++) {
			at = (at + stride) % npages;
			memset(mem + at * page, (int)(gen & 0x7f) | 0x80, 64);
		}
		struct timespec ts = { 0, 10 * 1000 * 1000 };
		nanosleep(&ts, NULL);
	}
}
