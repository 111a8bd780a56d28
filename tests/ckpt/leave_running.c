// stasis-test: timeout=60 mode=leave-running
/* Dumped with --leave-running: the original must carry on intact (its memory, an fd
 * offset, a pending timer), and the copy restored from the images must be intact too. */
#include "lib.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/time.h>
#include <unistd.h>

#define SIZE (16ul << 20)
#define SEED 0x1EAFE00D1EAFull

static volatile int ticks;

static void on_alarm(int sig)
{
	(void)sig;
	ticks++;
}

int main(int argc, char **argv)
{
	struct itimerval it = { { 0, 50000 }, { 0, 50000 } };
	struct sigaction sa;
	uint64_t *mem;
	long bad;
	int fd, t0;

	test_init(argc, argv);
	mem = mmap(NULL, SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (mem == MAP_FAILED)
		test_fail("mmap: %s", strerror(errno));
	test_fill(mem, SIZE, SEED);
	fd = open("lr.dat", O_RDWR | O_CREAT | O_TRUNC, 0644);
	if (fd < 0 || write(fd, "0123456789", 10) != 10)
		test_fail("lr.dat: %s", strerror(errno));
	lseek(fd, 4, SEEK_SET);
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_alarm;
	sa.sa_flags = SA_RESTART;
	sigaction(SIGALRM, &sa, NULL);
	setitimer(ITIMER_REAL, &it, NULL);
	test_ready();
	test_wait();

	if (test_sabotage())
		mem[SIZE / 8 - 1] ^= 8;
	bad = test_check(mem, SIZE, SEED);
	TEST_CHECK(bad < 0, "memory differs at offset %ld", bad);
	TEST_CHECK(lseek(fd, 0, SEEK_CUR) == 4, "fd offset %lld, expected 4",
		   (long long)lseek(fd, 0, SEEK_CUR));
	t0 = ticks;
	test_sleep_ms(400);
	TEST_CHECK(ticks - t0 >= 3, "itimer stopped: %d ticks in 400 ms", ticks - t0);
	test_pass();
}
