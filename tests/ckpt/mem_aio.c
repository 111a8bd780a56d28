// stasis-test: timeout=30
/* AIO contexts (io_setup): A holds three completed writes not reaped yet (two of five
 * reaped by io_getevents); B's head and tail went once round the ring (600 requests
 * through a ring of a few hundred events), then seven completed, one of them taken by
 * reading the ring in user space the way libaio does; C was never used. After the
 * restore: every context has its id (its ring's address) and its maps line (but the
 * inode number of the ring's file), the rings
 * their head and tail, io_getevents hands out exactly the events left (their data and
 * results), new requests go through and come back, the data written is in the file, and
 * io_destroy takes every context. */
#include "lib.h"

#include <errno.h>
#include <linux/aio_abi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

struct ring {
	unsigned id, nr, head, tail, magic, compat, incompat, hdr_len;
	struct io_event ev[];
};

static int fd;
static char buf[16][512];

static long io_setup_(unsigned n, aio_context_t *c)
{
	return syscall(SYS_io_setup, n, c);
}

static long submit(aio_context_t c, int n, uint64_t tag, off_t off)
{
	struct iocb cbs[64], *ptrs[64];
	if (n > 64)
		test_fail("submit %d", n);
	for (int i = 0; i < n; i++) {
		memset(&cbs[i], 0, sizeof(cbs[i]));
		cbs[i].aio_lio_opcode = IOCB_CMD_PWRITE;
		cbs[i].aio_fildes = (uint32_t)fd;
		cbs[i].aio_buf = (uint64_t)(uintptr_t)buf[i % 16];
		cbs[i].aio_nbytes = 100 + (uint64_t)i;
		cbs[i].aio_offset = off + i * 512;
		cbs[i].aio_data = tag + (uint64_t)i;
		ptrs[i] = &cbs[i];
	}
	return syscall(SYS_io_submit, c, n, ptrs);
}

static long reap(aio_context_t c, long min, long max, struct io_event *ev)
{
	struct timespec ts = { 1, 0 };
	return syscall(SYS_io_getevents, c, min, max, ev, &ts);
}

static void push(aio_context_t c, int n, uint64_t tag, off_t off, bool take)
{
	struct io_event ev[64];
	if (submit(c, n, tag, off) != n)
		test_fail("io_submit %d: %s", n, strerror(errno));
	if (take && reap(c, n, n, ev) != n)
		test_fail("io_getevents %d: %s", n, strerror(errno));
}

static void maps_line(aio_context_t c, char *out, size_t len)
{
	char line[512];
	FILE *f = fopen("/proc/self/maps", "r");
	out[0] = 0;
	if (!f)
		test_fail("maps: %s", strerror(errno));
	while (fgets(line, sizeof(line), f)) {
		char range[64], perm[8], off[32], dev[16], path[256];
		unsigned long long ino;
		if (strtoull(line, NULL, 16) != c)
			continue;
		/* all but the inode number of the ring's file, which is new */
		if (sscanf(line, "%63s %7s %31s %15s %llu %255[^\n]", range, perm, off, dev, &ino,
			   path) != 6)
			test_fail("maps line %s", line);
		snprintf(out, len, "%s %s %s %s %s", range, perm, off, dev, path);
	}
	fclose(f);
	if (!out[0])
		test_fail("no maps line for the ring %llx", (unsigned long long)c);
}

/* the @n events left in @c are tags @tag.. with results 100 + (tag - @base) */
static void expect(const char *name, aio_context_t c, int n, uint64_t tag, uint64_t base)
{
	struct io_event ev[64];
	long got = reap(c, 0, 64, ev);
	if (got != n)
		test_fail("%s: %ld events left, not %d", name, got, n);
	for (int i = 0; i < n; i++)
		if (ev[i].data != tag + (uint64_t)i || ev[i].res != (int64_t)(100 + tag + i - base))
			test_fail("%s: event %d: data %llx res %lld", name, i,
				  (unsigned long long)ev[i].data, (long long)ev[i].res);
}

int main(int argc, char **argv)
{
	aio_context_t a = 0, b = 0, cc = 0;
	char ma[512], mb[512], mc[512], m2[512];
	struct io_event ev[8];

	test_init(argc, argv);
	fd = memfd_create("aio-data", 0);
	if (fd < 0)
		test_fail("memfd_create: %s", strerror(errno));
	for (int i = 0; i < 16; i++)
		memset(buf[i], 'a' + i, sizeof(buf[i]));
	if (io_setup_(16, &a) || io_setup_(200, &b) || io_setup_(1, &cc))
		test_fail("io_setup: %s", strerror(errno));
	push(a, 5, 0xa000, 0, false);
	if (reap(a, 2, 2, ev) != 2 || ev[0].data != 0xa000 || ev[1].data != 0xa001)
		test_fail("reap 2 of A");
	struct ring *rb = (struct ring *)b;
	unsigned nrb = rb->nr;
	/* once round, and then to 3 before the end: the seven below wrap */
	for (unsigned done = 0, k; done < 2 * nrb - 3; done += k) {
		k = 2 * nrb - 3 - done < 50 ? 2 * nrb - 3 - done : 50;
		push(b, (int)k, 0xb0000, 8192, true);
	}
	push(b, 7, 0xb000, 16384, false);
	/* the first one taken in user space */
	if (rb->ev[rb->head].data != 0xb000)
		test_fail("B's head event is %llx", (unsigned long long)rb->ev[rb->head].data);
	__atomic_store_n(&rb->head, (rb->head + 1) % nrb, __ATOMIC_RELEASE);
	struct ring *ra = (struct ring *)a;
	unsigned ha = ra->head, ta = ra->tail, hb = rb->head, tb = rb->tail;
	if (tb >= hb)
		test_fail("B did not wrap: head %u tail %u of %u", hb, tb, nrb);
	maps_line(a, ma, sizeof(ma));
	maps_line(b, mb, sizeof(mb));
	maps_line(cc, mc, sizeof(mc));

	test_ready();
	test_wait();
	if (test_sabotage())
		reap(a, 1, 1, ev);

	maps_line(a, m2, sizeof(m2));
	if (strcmp(ma, m2))
		test_fail("A's ring: %s now %s", ma, m2);
	maps_line(b, m2, sizeof(m2));
	if (strcmp(mb, m2))
		test_fail("B's ring: %s now %s", mb, m2);
	maps_line(cc, m2, sizeof(m2));
	if (strcmp(mc, m2))
		test_fail("C's ring: %s now %s", mc, m2);
	if (ra->head != ha || ra->tail != ta || rb->head != hb || rb->tail != tb)
		test_fail("ring heads/tails %u/%u %u/%u, were %u/%u %u/%u", ra->head, ra->tail,
			  rb->head, rb->tail, ha, ta, hb, tb);
	expect("A", a, 3, 0xa002, 0xa000);
	expect("B", b, 6, 0xb001, 0xb000);
	if (reap(cc, 0, 8, ev) != 0)
		test_fail("C has events");
	/* new requests, through every context */
	push(a, 4, 0xa100, 4096, false);
	expect("A after", a, 4, 0xa100, 0xa100);
	push(b, 60, 0xb100, 32768, false);
	expect("B after", b, 60, 0xb100, 0xb100);
	push(cc, 3, 0xc100, 65536, false);
	expect("C after", cc, 3, 0xc100, 0xc100);
	char got[512];
	if (pread(fd, got, 102, 65536 + 2 * 512) != 102 || memcmp(got, buf[2], 102))
		test_fail("C's third write is not in the file");
	if (pread(fd, got, 103, 4096 + 3 * 512) != 103 || memcmp(got, buf[3], 103))
		test_fail("A's last write is not in the file");
	if (pread(fd, got, 104, 4 * 512) != 104 || memcmp(got, buf[4], 104))
		test_fail("A's write from before the dump is not in the file");
	if (syscall(SYS_io_destroy, a) || syscall(SYS_io_destroy, b) ||
	    syscall(SYS_io_destroy, cc))
		test_fail("io_destroy: %s", strerror(errno));
	test_pass();
}
