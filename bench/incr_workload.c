/* Incremental-dump benchmark workload: touches N KiB of private anonymous memory with a
 * non-zero pattern, creates READY_FILE, then on every SIGUSR1 rewrites PERMILLE/1000 of
 * its pages (spread evenly: every 1000/PERMILLE-th page, the worst case for the number
 * of runs) and creates READY_FILE.N (N: the count of passes).
 *
 *   incr_workload KIB READY_FILE PERMILLE
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

static void ready(const char *path)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
	if (fd < 0) {
		perror("incr_workload: ready file");
		exit(1);
	}
	close(fd);
}

int main(int argc, char **argv)
{
	if (argc != 4) {
		fprintf(stderr, "usage: %s KIB READY_FILE PERMILLE\n", argv[0]);
		return 2;
	}
	size_t bytes = (size_t)strtoull(argv[1], NULL, 10) * 1024;
	long permille = strtol(argv[3], NULL, 10);
	size_t page = (size_t)sysconf(_SC_PAGESIZE), npages = bytes / page;
	size_t step = permille > 0 ? (size_t)(1000 / permille) : 0;
	uint64_t *mem = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
			     -1, 0);

	if (mem == MAP_FAILED || !step) {
		fprintf(stderr, "incr_workload: mmap or PERMILLE: %s\n", strerror(errno));
		return 1;
	}
	for (size_t i = 0; i < bytes / sizeof(*mem); i++)
		mem[i] = (i * 0x9E3779B97F4A7C15ull) | 1;

	sigset_t set;
	sigemptyset(&set);
	sigaddset(&set, SIGUSR1);
	sigprocmask(SIG_BLOCK, &set, NULL);
	ready(argv[2]);
	for (unsigned pass = 1;; pass++) {
		int sig;
		if (sigwait(&set, &sig))
			continue;
		for (size_t p = 0; p < npages; p += step)
			memset((char *)mem + p * page, (int)(pass & 0x7f) | 0x80, page);
		char path[4096];
		snprintf(path, sizeof(path), "%s.%u", argv[2], pass);
		ready(path);
	}
}
