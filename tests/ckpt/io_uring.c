// stasis-test: timeout=60
/* io_uring instances, one per kind of setup: default, a larger CQ ring (CQSIZE), polled
 * completions (IOPOLL: a pipe read still refused after the restore), a kernel
 * submission thread (SQPOLL), a single issuer with deferred task work (SINGLE_ISSUER |
 * DEFER_TASKRUN), 128-byte SQEs with 32-byte CQEs, no SQ index array (NO_SQARRAY, 64
 * entries: with 32 or fewer the dump cannot tell its SQE size and refuses it). Each
 * ring ran a few thousand NOPs before the dump (its counters far from 0, wrapped around
 * its size), has three completions not reaped yet and (but the SQPOLL one, whose thread
 * takes them at once) two SQEs written and not submitted. After the restore the ring
 * memory reads the same, the three completions are there, submitting takes the two
 * pending SQEs, and new requests run with the counters going on from where they were.
 * One ring has a registered buffer, read into after the restore (READ_FIXED from a pipe
 * lands in the same memory), and a sparse registered-file table; an epoll watching a ring
 * sees its CQEs. A single-issuer ring made by a second thread is that thread's again (the
 * main thread's calls refused) and runs as the others. */
#include "lib.h"

#include <errno.h>
#include <pthread.h>
#include <linux/io_uring.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <unistd.h>

#ifndef IORING_SETUP_NO_SQARRAY
#define IORING_SETUP_NO_SQARRAY (1U << 16)
#endif
#ifndef IORING_RSRC_REGISTER_SPARSE
#define IORING_RSRC_REGISTER_SPARSE (1U << 0)
#endif

struct ring {
	const char *name;
	unsigned int flags;
	int fd;
	uint32_t sq_entries, cq_entries, *sqh, *sqt, *sqm, *sqa, *cqh, *cqt, *cqm;
	uint8_t *cqes, *sqes;
	size_t sqe_size, cqe_size;
	uint32_t pre[4]; /* sq head, sq tail, cq head, cq tail before the dump */
};

static void ring_init(struct ring *r, const char *name, unsigned int flags, uint32_t cq,
		      uint32_t entries)
{
	struct io_uring_params p;
	memset(&p, 0, sizeof(p));
	p.flags = flags;
	p.cq_entries = cq;
	p.sq_thread_idle = 50;
	r->name = name;
	r->flags = flags;
	r->fd = (int)syscall(SYS_io_uring_setup, entries, &p);
	if (r->fd < 0)
		test_fail("%s: io_uring_setup(%#x): %s", name, flags, strerror(errno));
	r->sq_entries = p.sq_entries;
	r->cq_entries = p.cq_entries;
	r->sqe_size = (flags & IORING_SETUP_SQE128) ? 128 : 64;
	r->cqe_size = (flags & IORING_SETUP_CQE32) ? 32 : 16;
	size_t len = p.cq_off.cqes + r->cq_entries * r->cqe_size;
	if (!(flags & IORING_SETUP_NO_SQARRAY) && p.sq_off.array + r->sq_entries * 4 > len)
		len = p.sq_off.array + r->sq_entries * 4;
	uint8_t *m = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, r->fd,
			  IORING_OFF_SQ_RING);
	r->sqes = mmap(NULL, r->sq_entries * r->sqe_size, PROT_READ | PROT_WRITE,
		       MAP_SHARED | MAP_POPULATE, r->fd, IORING_OFF_SQES);
	if (m == MAP_FAILED || r->sqes == MAP_FAILED)
		test_fail("%s: mmap: %s", name, strerror(errno));
	r->sqh = (uint32_t *)(m + p.sq_off.head);
	r->sqt = (uint32_t *)(m + p.sq_off.tail);
	r->sqm = (uint32_t *)(m + p.sq_off.ring_mask);
	r->sqa = (flags & IORING_SETUP_NO_SQARRAY) ? NULL : (uint32_t *)(m + p.sq_off.array);
	r->cqh = (uint32_t *)(m + p.cq_off.head);
	r->cqt = (uint32_t *)(m + p.cq_off.tail);
	r->cqm = (uint32_t *)(m + p.cq_off.ring_mask);
	r->cqes = m + p.cq_off.cqes;
}

/* Write one SQE at the tail (not submitted). */
static struct io_uring_sqe *ring_put(struct ring *r, uint8_t op, uint64_t user_data)
{
	uint32_t t = *r->sqt, i = t & *r->sqm;
	struct io_uring_sqe *s = (void *)(r->sqes + i * r->sqe_size);
	memset(s, 0, r->sqe_size);
	s->opcode = op;
	s->user_data = user_data;
	if (r->sqa)
		r->sqa[i] = i;
	__atomic_store_n(r->sqt, t + 1, __ATOMIC_RELEASE);
	return s;
}

/* Submit what is pending and wait for @wait completions (SQPOLL: wait for the thread). */
static void ring_enter(struct ring *r, uint32_t n, uint32_t wait)
{
	unsigned int fl = wait ? IORING_ENTER_GETEVENTS : 0;
	if (r->flags & IORING_SETUP_SQPOLL) {
		fl |= IORING_ENTER_SQ_WAKEUP;
		n = 0;
	}
	for (int tries = 0; tries < 1000; tries++) {
		long ret = syscall(SYS_io_uring_enter, r->fd, n, wait, fl, NULL, 0);
		if (ret >= 0 || errno != EINTR)
			break;
	}
	uint64_t until = test_now_ns() + 5000000000ULL;
	while (*r->cqt - *r->cqh < wait || __atomic_load_n(r->sqh, __ATOMIC_ACQUIRE) != *r->sqt) {
		if (test_now_ns() > until)
			test_fail("%s: no completion: sq %u/%u cq %u/%u", r->name, *r->sqh, *r->sqt,
				  *r->cqh, *r->cqt);
		syscall(SYS_io_uring_enter, r->fd, 0, wait, fl, NULL, 0);
	}
}

/* Take the completion at the head: its user_data (its result must be @res). */
static uint64_t ring_take(struct ring *r, int res)
{
	uint32_t h = *r->cqh;
	if (h == __atomic_load_n(r->cqt, __ATOMIC_ACQUIRE))
		test_fail("%s: no completion to take", r->name);
	struct io_uring_cqe *c = (void *)(r->cqes + (h & *r->cqm) * r->cqe_size);
	if (c->res != res)
		test_fail("%s: completion %llu: res %d, wanted %d", r->name,
			  (unsigned long long)c->user_data, c->res, res);
	uint64_t u = c->user_data;
	__atomic_store_n(r->cqh, h + 1, __ATOMIC_RELEASE);
	return u;
}

/* @n NOPs in batches of the ring's size, every completion taken. */
static void ring_run(struct ring *r, uint32_t n)
{
	while (n) {
		uint32_t b = n < r->sq_entries ? n : r->sq_entries;
		for (uint32_t i = 0; i < b; i++)
			ring_put(r, IORING_OP_NOP, 7);
		ring_enter(r, b, b);
		for (uint32_t i = 0; i < b; i++)
			if (ring_take(r, 0) != 7)
				test_fail("%s: a NOP's user_data changed", r->name);
		n -= b;
	}
}

static void ring_prepare(struct ring *r, uint32_t nops)
{
	ring_run(r, nops);
	for (uint64_t u = 1001; u <= 1003; u++)
		ring_put(r, IORING_OP_NOP, u);
	ring_enter(r, 3, 3);
	if (!(r->flags & IORING_SETUP_SQPOLL)) {
		ring_put(r, IORING_OP_NOP, 2001);
		ring_put(r, IORING_OP_NOP, 2002);
	}
	r->pre[0] = *r->sqh;
	r->pre[1] = *r->sqt;
	r->pre[2] = *r->cqh;
	r->pre[3] = *r->cqt;
}

static void ring_verify(struct ring *r, bool sabotage)
{
	uint32_t now[4] = { *r->sqh, *r->sqt, *r->cqh, *r->cqt };
	TEST_CHECK(!memcmp(now, r->pre, sizeof(now)) && !sabotage,
		   "%s: ring sq %u/%u cq %u/%u after the restore, %u/%u %u/%u before", r->name,
		   now[0], now[1], now[2], now[3], r->pre[0], r->pre[1], r->pre[2], r->pre[3]);
	for (uint64_t u = 1001; u <= 1003; u++) {
		uint64_t got = ring_take(r, 0);
		TEST_CHECK(got == u, "%s: completion %llu where %llu was", r->name,
			   (unsigned long long)got, (unsigned long long)u);
	}
	uint32_t pending = r->pre[1] - r->pre[0];
	if (pending) {
		ring_enter(r, pending, pending);
		for (uint64_t u = 2001; u < 2001 + pending; u++) {
			uint64_t got = ring_take(r, 0);
			TEST_CHECK(got == u, "%s: pending SQE ran as %llu, wanted %llu", r->name,
				   (unsigned long long)got, (unsigned long long)u);
		}
	}
	ring_run(r, 2 * r->sq_entries + 3);
	uint32_t more = 2 * r->sq_entries + 3;
	TEST_CHECK(*r->sqh == r->pre[1] + more && *r->cqt == *r->sqh + (r->pre[3] - r->pre[0]),
		   "%s: counters sq %u cq %u after new requests (were %u %u)", r->name, *r->sqh,
		   *r->cqt, r->pre[1], r->pre[3]);
}

static char fixed_buf[4096] __attribute__((aligned(4096)));

/* A single issuer that is not the main thread: its ring is made again by that thread. */
static struct ring thr_ring;
static int go[2], done[2];

static void *issuer(void *arg)
{
	char ch;
	(void)arg;
	ring_init(&thr_ring, "thread-issuer",
		  IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN, 0, 8);
	ring_prepare(&thr_ring, 1234);
	if (write(done[1], "r", 1) != 1 || read(go[0], &ch, 1) != 1)
		test_fail("issuer thread: pipes");
	ring_verify(&thr_ring, false);
	if (write(done[1], "v", 1) != 1)
		test_fail("issuer thread: pipe");
	return NULL;
}

int main(int argc, char **argv)
{
	test_init(argc, argv);
	static struct ring rings[7];
	ring_init(&rings[0], "default", 0, 0, 8);
	ring_init(&rings[1], "cqsize", IORING_SETUP_CQSIZE, 64, 8);
	ring_init(&rings[2], "sqpoll", IORING_SETUP_SQPOLL, 0, 8);
	ring_init(&rings[3], "single-issuer",
		  IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN, 0, 8);
	ring_init(&rings[4], "big-entries", IORING_SETUP_SQE128 | IORING_SETUP_CQE32, 0, 8);
	ring_init(&rings[5], "no-sqarray", IORING_SETUP_NO_SQARRAY, 0, 64);
	ring_init(&rings[6], "iopoll", IORING_SETUP_IOPOLL, 0, 8);
	for (int i = 0; i < 7; i++)
		ring_prepare(&rings[i], 2000 + 517 * (uint32_t)i);

	struct iovec iov = { fixed_buf, sizeof(fixed_buf) };
	if (syscall(SYS_io_uring_register, rings[0].fd, IORING_REGISTER_BUFFERS, &iov, 1) < 0)
		test_fail("register buffers: %s", strerror(errno));
	/* a sparse buffer table of 4 slots, slot 2 set */
	struct io_uring_rsrc_register rb = { .nr = 4, .flags = IORING_RSRC_REGISTER_SPARSE };
	struct iovec iov2 = { fixed_buf + 2048, 1024 };
	struct io_uring_rsrc_update2 ub = { .offset = 2, .data = (uintptr_t)&iov2, .nr = 1 };
	if (syscall(SYS_io_uring_register, rings[1].fd, IORING_REGISTER_BUFFERS2, &rb,
		    sizeof(rb)) < 0 ||
	    syscall(SYS_io_uring_register, rings[1].fd, IORING_REGISTER_BUFFERS_UPDATE, &ub,
		    sizeof(ub)) != 1)
		test_fail("sparse buffer table: %s", strerror(errno));
	struct io_uring_rsrc_register rr = { .nr = 16, .flags = IORING_RSRC_REGISTER_SPARSE };
	if (syscall(SYS_io_uring_register, rings[0].fd, IORING_REGISTER_FILES2, &rr,
		    sizeof(rr)) < 0)
		test_fail("register sparse files: %s", strerror(errno));
	int pfd[2];
	TEST_CHECK(!pipe(pfd), "pipe: %s", strerror(errno));
	/* an event loop's epoll watching a ring (readable: CQEs to reap) */
	int ep = epoll_create1(EPOLL_CLOEXEC);
	struct epoll_event ev = { .events = EPOLLIN, .data.u64 = 77 };
	TEST_CHECK(ep >= 0 && !epoll_ctl(ep, EPOLL_CTL_ADD, rings[1].fd, &ev), "epoll: %s",
		   strerror(errno));

	pthread_t t;
	char ch;
	TEST_CHECK(!pipe(go) && !pipe(done), "pipes: %s", strerror(errno));
	TEST_CHECK(!pthread_create(&t, NULL, issuer, NULL), "pthread_create");
	TEST_CHECK(test_read_within(done[0], &ch, 1, 10000) == 0 && ch == 'r',
		   "the issuer thread did not set its ring up");

	test_ready();
	test_wait();

	bool sab = test_sabotage();
	struct epoll_event got = { 0 };
	TEST_CHECK(epoll_wait(ep, &got, 1, 0) == 1 && got.data.u64 == 77,
		   "the epoll does not see the cqsize ring's unreaped CQEs");
	for (int i = 0; i < 7; i++)
		ring_verify(&rings[i], sab && i == 3);
	/* still polling: a read of a pipe is not pollable I/O there */
	struct io_uring_sqe *ps = ring_put(&rings[6], IORING_OP_READ, 43);
	ps->fd = pfd[0];
	ps->addr = (uintptr_t)fixed_buf;
	ps->len = 1;
	ring_enter(&rings[6], 1, 1);
	TEST_CHECK(ring_take(&rings[6], -EOPNOTSUPP) == 43, "the iopoll ring's pipe read");
	TEST_CHECK(epoll_wait(ep, &got, 1, 0) == 0, "the epoll sees a ring with nothing to reap");
	ring_put(&rings[1], IORING_OP_NOP, 5);
	syscall(SYS_io_uring_enter, rings[1].fd, 1, 0, 0, NULL, 0);
	TEST_CHECK(epoll_wait(ep, &got, 1, 1000) == 1 && got.data.u64 == 77,
		   "the epoll does not see a new CQE of the cqsize ring");
	TEST_CHECK(ring_take(&rings[1], 0) == 5, "the NOP seen by epoll");

	/* the registered buffer is still the same memory */
	TEST_CHECK(write(pfd[1], "restored", 8) == 8, "pipe write: %s", strerror(errno));
	struct ring *r = &rings[0];
	struct io_uring_sqe *s = ring_put(r, IORING_OP_READ_FIXED, 42);
	s->fd = pfd[0];
	s->addr = (uintptr_t)fixed_buf + 100;
	s->len = 8;
	s->buf_index = 0;
	ring_enter(r, 1, 1);
	TEST_CHECK(ring_take(r, 8) == 42, "READ_FIXED completion");
	TEST_CHECK(!memcmp(fixed_buf + 100, "restored", 8), "the registered buffer is not there");
	/* the sparse buffer table: slot 2 is the same memory */
	TEST_CHECK(write(pfd[1], "sparse", 6) == 6, "pipe write: %s", strerror(errno));
	s = ring_put(&rings[1], IORING_OP_READ_FIXED, 44);
	s->fd = pfd[0];
	s->addr = (uintptr_t)fixed_buf + 2048 + 10;
	s->len = 6;
	s->buf_index = 2;
	ring_enter(&rings[1], 1, 1);
	TEST_CHECK(ring_take(&rings[1], 6) == 44, "READ_FIXED into slot 2 of the sparse table");
	TEST_CHECK(!memcmp(fixed_buf + 2048 + 10, "sparse", 6), "slot 2 is not its memory");
	ub.offset = 3;
	TEST_CHECK(syscall(SYS_io_uring_register, rings[1].fd, IORING_REGISTER_BUFFERS_UPDATE, &ub,
			   sizeof(ub)) == 1,
		   "update slot 3 of the buffer table: %s", strerror(errno));
	ub.offset = 4;
	TEST_CHECK(syscall(SYS_io_uring_register, rings[1].fd, IORING_REGISTER_BUFFERS_UPDATE, &ub,
			   sizeof(ub)) < 0,
		   "slot 4 of a 4-slot buffer table updated");
	/* the sparse file table has its 16 slots: an update of slot 15 works, 16 does not */
	int one = pfd[0];
	struct io_uring_files_update up = { .offset = 15, .fds = (uintptr_t)&one };
	TEST_CHECK(syscall(SYS_io_uring_register, r->fd, IORING_REGISTER_FILES_UPDATE, &up, 1) == 1,
		   "update slot 15 of the file table: %s", strerror(errno));
	up.offset = 16;
	TEST_CHECK(syscall(SYS_io_uring_register, r->fd, IORING_REGISTER_FILES_UPDATE, &up, 1) < 0,
		   "slot 16 of a 16-slot file table updated");
	/* the thread's ring: its issuer is that thread, not this one */
	TEST_CHECK(syscall(SYS_io_uring_register, thr_ring.fd, IORING_UNREGISTER_EVENTFD, (void *)1,
			   0) < 0 && errno == EEXIST,
		   "the thread's single-issuer ring takes calls from the main thread: %s",
		   strerror(errno));
	TEST_CHECK(write(go[1], "g", 1) == 1, "pipe");
	TEST_CHECK(test_read_within(done[0], &ch, 1, 10000) == 0 && ch == 'v',
		   "the issuer thread did not verify its ring");
	pthread_join(t, NULL);
	test_pass();
}
