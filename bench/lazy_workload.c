/* Lazy restore benchmark workload: MIB MiB of private anonymous memory with a pattern,
 * then it answers requests on a FIFO pair (opened read-write, so that a FIFO with no
 * other user does not block its opener):
 *
 *   lazy_workload MIB READY_FILE REQ_FIFO RESP_FIFO
 *
 * request 'p': read 16 words spread over the memory, answer 'p' (the process runs);
 * request 's': check every word of the memory, answer 's' (all of it right) or 'x'. */
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

static uint64_t pat(uint64_t i)
{
	return (i * 0x9E3779B97F4A7C15ull) | 1;
}

int main(int argc, char **argv)
{
	if (argc != 5) {
		fprintf(stderr, "usage: %s MIB READY_FILE REQ_FIFO RESP_FIFO\n", argv[0]);
		return 2;
	}
	size_t words = (size_t)strtoull(argv[1], NULL, 10) * (1u << 20) / 8;
	uint64_t *mem = mmap(NULL, words * 8, PROT_READ | PROT_WRITE,
			     MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (mem == MAP_FAILED) {
		perror("lazy_workload: mmap");
		return 1;
	}
	for (size_t i = 0; i < words; i++)
		mem[i] = pat(i);
	int req = open(argv[3], O_RDWR | O_CLOEXEC), resp = open(argv[4], O_RDWR | O_CLOEXEC);
	if (req < 0 || resp < 0) {
		perror("lazy_workload: fifos");
		return 1;
	}
	int fd = open(argv[2], O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
	if (fd < 0) {
		perror("lazy_workload: ready file");
		return 1;
	}
	close(fd);
	for (;;) {
		char c;
		if (read(req, &c, 1) != 1)
			continue;
		char a = c;
		if (c == 'p') {
			uint64_t bad = 0;
			for (size_t k = 0; k < 16; k++) {
				size_t i = words / 16 * k + 7;
				bad |= mem[i] ^ pat(i);
			}
			a = bad ? 'x' : 'p';
		} else if (c == 's') {
			for (size_t i = 0; i < words; i++)
				if (mem[i] != pat(i)) {
					a = 'x';
					break;
				}
		}
		if (write(resp, &a, 1) != 1)
			return 1;
	}
}
