// stasis-test: timeout=60
/* A pipeline of three processes: producer (child) -> filter (child) -> consumer (the
 * root), connected by two pipes and streaming a numbered sequence at full speed, so that
 * both pipes are full and every process is blocked in read() or write() at the dump.
 * The producer sends {seq, seq ^ KEY_P}; the filter checks each record and forwards
 * {seq, mix(seq)}; the root checks that every record is the next number (no gap, no
 * duplicate) and intact, before and after the checkpoint, and that the stream goes on
 * after the restore. The children check their pid and parent and exit 0 on SIGTERM. */
#include "lib.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define KEY_P 0x5eed5eed5eed5eedull
#define BEFORE_READY 20000
#define AFTER_RESTORE 200000

struct rec {
	uint64_t seq, check;
};

static uint64_t mix(uint64_t x)
{
	x ^= x >> 33;
	x *= 0xff51afd7ed558ccdull;
	x ^= x >> 33;
	return x;
}

/* 1: a whole record, 0: EOF, -1: error, -2: interrupted by SIGTERM before any byte */
static int read_rec(int fd, struct rec *r)
{
	size_t got = 0;

	while (got < sizeof(*r)) {
		ssize_t n = read(fd, (char *)r + got, sizeof(*r) - got);

		if (n > 0) {
			got += (size_t)n;
			continue;
		}
		if (n == 0)
			return 0;
		if (errno != EINTR)
			return -1;
		if (got == 0 && test_stop_requested())
			return -2;
	}
	return 1;
}

/* 1: written, -1: error, -2: interrupted by SIGTERM before any byte */
static int write_rec(int fd, const struct rec *r)
{
	size_t put = 0;

	while (put < sizeof(*r)) {
		ssize_t n = write(fd, (const char *)r + put, sizeof(*r) - put);

		if (n > 0) {
			put += (size_t)n;
			continue;
		}
		if (n < 0 && errno != EINTR)
			return -1;
		if (put == 0 && test_stop_requested())
			return -2;
	}
	return 1;
}

static int check_ids(pid_t self, pid_t parent, const char *who)
{
	if (getpid() != self || getppid() != parent) {
		test_msg("%s: pid %d ppid %d, expected %d %d", who, (int)getpid(), (int)getppid(),
			 (int)self, (int)parent);
		return 1;
	}
	return 0;
}

static void producer(int out, pid_t root)
{
	pid_t self = getpid();
	struct rec r;
	uint64_t seq;
	int ret;

	for (seq = 0; !test_stop_requested(); seq++) {
		r.seq = seq;
		r.check = seq ^ KEY_P;
		ret = write_rec(out, &r);
		if (ret == -2 || (ret == -1 && errno == EPIPE && test_stop_requested()))
			break;
		if (ret < 0) {
			test_msg("producer: write: %s", strerror(errno));
			_exit(2);
		}
	}
	_exit(check_ids(self, root, "producer"));
}

static void filter(int in, int out, pid_t root)
{
	pid_t self = getpid();
	uint64_t expect = 0;
	struct rec r;
	int ret;

	while (!test_stop_requested()) {
		ret = read_rec(in, &r);
		if (ret == -2 || (ret == 0 && test_stop_requested()))
			break;
		if (ret <= 0) {
			test_msg("filter: read: %s", ret ? strerror(errno) : "EOF");
			_exit(2);
		}
		if (r.seq != expect || r.check != (r.seq ^ KEY_P)) {
			test_msg("filter: record %llu/%#llx, expected seq %llu",
				 (unsigned long long)r.seq, (unsigned long long)r.check,
				 (unsigned long long)expect);
			_exit(3);
		}
		expect++;
		r.check = mix(r.seq);
		ret = write_rec(out, &r);
		if (ret == -2 || (ret == -1 && errno == EPIPE && test_stop_requested()))
			break;
		if (ret < 0) {
			test_msg("filter: write: %s", strerror(errno));
			_exit(2);
		}
	}
	_exit(check_ids(self, root, "filter"));
}

static void expect_rec(int fd, uint64_t *expect, const char *when)
{
	struct rec r;
	int ret;

	for (;;) {
		ret = read_rec(fd, &r);
		if (ret != -2)
			break;
	}
	TEST_CHECK(ret == 1, "%s: consumer read: %s", when, ret ? strerror(errno) : "EOF");
	TEST_CHECK(r.seq == *expect, "%s: got record %llu, expected %llu (%s)", when,
		   (unsigned long long)r.seq, (unsigned long long)*expect,
		   r.seq > *expect ? "gap" : "duplicate or reorder");
	TEST_CHECK(r.check == mix(r.seq), "%s: record %llu damaged", when,
		   (unsigned long long)r.seq);
	(*expect)++;
}

int main(int argc, char **argv)
{
	int a[2], b[2], i, st;
	pid_t root, prod, filt, w;
	uint64_t expect = 0, at_stop;
	struct pollfd pfd;

	test_init(argc, argv);
	signal(SIGPIPE, SIG_IGN);
	root = getpid();
	if (pipe(a) < 0 || pipe(b) < 0)
		test_fail("pipe: %s", strerror(errno));
	prod = fork();
	if (prod < 0)
		test_fail("fork: %s", strerror(errno));
	if (prod == 0) {
		close(a[0]);
		close(b[0]);
		close(b[1]);
		producer(a[1], root);
	}
	filt = fork();
	if (filt < 0)
		test_fail("fork: %s", strerror(errno));
	if (filt == 0) {
		close(a[1]);
		close(b[0]);
		filter(a[0], b[1], root);
	}
	close(a[0]);
	close(a[1]);
	close(b[1]);
	for (i = 0; i < BEFORE_READY; i++)
		expect_rec(b[0], &expect, "before ready");
	/* let both pipes fill up: everybody blocks with data in flight */
	test_sleep_ms(200);
	test_ready();
	test_wait();

	if (test_sabotage()) {
		struct rec r;

		(void)!read(b[0], &r, sizeof(r)); /* one record lost */
	}
	at_stop = expect;
	pfd.fd = b[0];
	pfd.events = POLLIN;
	for (i = 0; i < AFTER_RESTORE; i++) {
		pfd.revents = 0;
		TEST_CHECK(poll(&pfd, 1, 5000) == 1,
			   "the pipeline stalled after the restore at record %llu (%d read since)",
			   (unsigned long long)expect, i);
		expect_rec(b[0], &expect, "after restore");
	}
	test_msg("%llu records before SIGTERM, %d after", (unsigned long long)at_stop, i);
	kill(prod, SIGTERM);
	kill(filt, SIGTERM);
	close(b[0]); /* wakes the filter if it is blocked writing to us */
	alarm(20); /* bounds the waits below: SIGALRM kills the root, no PASS */
	for (i = 0; i < 2; i++) {
		pid_t who = i ? filt : prod;

		do
			w = waitpid(who, &st, 0);
		while (w < 0 && errno == EINTR);
		TEST_CHECK(w == who, "waitpid(%d): %s", (int)who, strerror(errno));
		TEST_CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0, "%s ended with status %#x",
			   i ? "filter" : "producer", st);
	}
	test_pass();
}
