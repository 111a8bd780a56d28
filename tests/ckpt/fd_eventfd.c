// stasis-test: timeout=30
/* eventfds: a counter (value 1234567, non-blocking), one in semaphore mode (count 3),
 * one with a count above 32 bits and one at zero: counts, modes and flags kept, still
 * usable after restore. */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "lib.h"

static uint64_t rd(int fd)
{
	uint64_t v = 0;
	if (read(fd, &v, sizeof(v)) != (ssize_t)sizeof(v))
		return UINT64_MAX;
	return v;
}

static void wr(int fd, uint64_t v)
{
	if (write(fd, &v, sizeof(v)) != (ssize_t)sizeof(v))
		test_fail("eventfd write: %d", errno);
}

int main(int argc, char **argv)
{
	test_init(argc, argv);
	int cnt = eventfd(1234567, EFD_NONBLOCK);
	int sem = eventfd(3, EFD_SEMAPHORE | EFD_NONBLOCK | EFD_CLOEXEC);
	int big = eventfd(0, EFD_NONBLOCK);
	int zero = eventfd(0, 0);
	TEST_CHECK(cnt >= 0 && sem >= 0 && big >= 0 && zero >= 0, "eventfd: %d", errno);
	wr(big, 0x123456789abULL);
	int moved = dup2(zero, 40);
	TEST_CHECK(moved == 40, "dup2: %d", errno);
	close(zero);

	test_ready();
	test_wait();
	if (test_sabotage())
		wr(cnt, 1);

	TEST_CHECK(fcntl(cnt, F_GETFL) & O_NONBLOCK, "counter eventfd lost O_NONBLOCK");
	TEST_CHECK(fcntl(sem, F_GETFD) == FD_CLOEXEC, "semaphore eventfd lost FD_CLOEXEC");
	TEST_CHECK(!(fcntl(40, F_GETFL) & O_NONBLOCK), "fd 40 became non-blocking");
	uint64_t v = rd(cnt);
	TEST_CHECK(v == 1234567, "counter eventfd read %llu, want 1234567", (unsigned long long)v);
	TEST_CHECK(rd(cnt) == UINT64_MAX && errno == EAGAIN, "counter eventfd not empty");
	for (int i = 0; i < 3; i++) {
		v = rd(sem);
		TEST_CHECK(v == 1, "semaphore read %d gave %llu, want 1", i, (unsigned long long)v);
	}
	TEST_CHECK(rd(sem) == UINT64_MAX && errno == EAGAIN, "semaphore eventfd not empty");
	v = rd(big);
	TEST_CHECK(v == 0x123456789abULL, "big eventfd read %#llx", (unsigned long long)v);
	/* still works: the blocking one at zero gets a value and returns it */
	wr(40, 77);
	v = rd(40);
	TEST_CHECK(v == 77, "fd 40 read %llu, want 77", (unsigned long long)v);
	wr(sem, 2);
	TEST_CHECK(rd(sem) == 1 && rd(sem) == 1, "semaphore mode lost after write");
	test_pass();
}
