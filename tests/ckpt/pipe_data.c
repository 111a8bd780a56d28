// stasis-test: timeout=30
/* A pipe with both ends in the task, 100 KiB written in irregular pieces and not read,
 * its size raised with F_SETPIPE_SZ: after the restore the data is there in order, the
 * size matches, and the two ends are still one pipe. */
#include "lib.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#define PIPE_SIZE (256 * 1024)
#define DATA 102400
#define SEED 0x919E919E919Eull

int main(int argc, char **argv)
{
	static const size_t pieces[] = { 1, 4095, 4097, 3, 8192, 12345, 65536 };
	static uint64_t data[DATA / 8];
	static unsigned char got[DATA];
	int p[2], fl[2], fdfl[2], size, avail, i;
	char *bytes = (char *)data;
	size_t off = 0, want;
	struct pollfd pfd;
	ssize_t n;

	test_init(argc, argv);
	test_fill(data, sizeof(data), SEED);
	if (pipe2(p, 0) < 0)
		test_fail("pipe: %s", strerror(errno));
	if (fcntl(p[1], F_SETPIPE_SZ, PIPE_SIZE) < 0)
		test_fail("F_SETPIPE_SZ: %s", strerror(errno));
	size = fcntl(p[0], F_GETPIPE_SZ);
	for (i = 0; off < DATA; i++) {
		want = pieces[i % (sizeof(pieces) / sizeof(pieces[0]))];
		if (want > DATA - off)
			want = DATA - off;
		n = write(p[1], bytes + off, want);
		if (n != (ssize_t)want)
			test_fail("write to pipe: %zd of %zu: %s", n, want, strerror(errno));
		off += want;
	}
	for (i = 0; i < 2; i++) {
		fl[i] = fcntl(p[i], F_GETFL);
		fdfl[i] = fcntl(p[i], F_GETFD);
	}
	test_ready();
	test_wait();

	if (test_sabotage())
		(void)!read(p[0], got, 1);
	TEST_CHECK(fcntl(p[0], F_GETPIPE_SZ) == size, "pipe size %d, was %d",
		   fcntl(p[0], F_GETPIPE_SZ), size);
	for (i = 0; i < 2; i++) {
		TEST_CHECK(fcntl(p[i], F_GETFL) == fl[i], "end %d: F_GETFL %#x, was %#x", i,
			   fcntl(p[i], F_GETFL), fl[i]);
		TEST_CHECK(fcntl(p[i], F_GETFD) == fdfl[i], "end %d: F_GETFD changed", i);
	}
	TEST_CHECK(ioctl(p[0], FIONREAD, &avail) == 0 && avail == DATA,
		   "%d bytes in the pipe, expected %d", avail, DATA);
	for (off = 0; off < DATA; off += (size_t)n) {
		n = read(p[0], got + off, DATA - off);
		TEST_CHECK(n > 0, "read from pipe at %zu: %s", off, n < 0 ? strerror(errno) : "EOF");
	}
	TEST_CHECK(memcmp(got, bytes, DATA) == 0, "pipe data differs");
	pfd.fd = p[0];
	pfd.events = POLLIN;
	TEST_CHECK(poll(&pfd, 1, 0) == 0, "pipe has more data than written");
	/* still one pipe */
	TEST_CHECK(write(p[1], "!", 1) == 1, "write end: %s", strerror(errno));
	pfd.revents = 0;
	TEST_CHECK(poll(&pfd, 1, 1000) == 1 && read(p[0], got, 1) == 1 && got[0] == '!',
		   "the two ends are not connected");
	test_pass();
}
