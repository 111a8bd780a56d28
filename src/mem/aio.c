/* The rings of AIO contexts (io_setup; Vma kind VMA_AIO).
 *
 * An AIO context is known to its process by the address of its ring, a shared mapping
 * "/[aio] (deleted)" that the kernel made at io_setup (not inherited by fork). The ring
 * starts with a header (id, nr, head, tail, magic, features, header length) followed by
 * nr events of 32 bytes; the kernel adds completed events at tail, the process (or
 * io_getevents) takes them at head.
 *
 * Dump (remote, the task frozen): the header read and checked (magic, size against the
 * area), the area confirmed to be a context of this task (io_getevents(ring, 0, 0) with
 * a zero timeout: takes nothing), and the completed events not yet reaped, head to tail,
 * stored with nr, head and tail. Requests still in flight are invisible to every kernel
 * interface (neither the ring, /proc nor a syscall shows them): the same gap as CRIU's.
 *
 * Restore (remote, while the layout is built): io_setup((nr - 2) / 2) makes a ring of the same
 * nr on a machine with no more possible CPUs (the kernel doubles the request and rounds
 * it to whole pages; a different nr is an error), moved to its address with mremap
 * (the kernel follows: the context's id is the new address). The kernel keeps its own
 * tail, which only completions move: head dummy reads of 0 bytes from a memfd are
 * submitted and reaped (in batches), then (tail - head) mod nr more are submitted and
 * left in the ring, so the kernel's tail, the ring's head and the free slots are what
 * they were; the dummy events are then overwritten with the dumped ones. */
#include <linux/aio_abi.h>
#include <stdio.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <time.h>

#include "core/log.h"
#include "core/util.h"
#include "mem/internal.h"
#include "ptrace/rsys.h"

#define AIO_RING_MAGIC 0xa10a10a1u

/* The ring's header (an ABI libaio relies on too). */
struct aio_ring_hdr {
	uint32_t id, nr, head, tail, magic, compat_features, incompat_features, header_length;
};
_Static_assert(sizeof(struct aio_ring_hdr) == 32, "aio ring header");
_Static_assert(sizeof(struct io_event) == 32, "aio event");

/* The kernel's upper bound of a ring's events (fs/aio.c: 0x10000000 / sizeof event). */
#define AIO_MAX_EVENTS (0x10000000u / 32u)

static uint64_t ring_nr(uint64_t len)
{
	return len > sizeof(struct aio_ring_hdr) ? (len - sizeof(struct aio_ring_hdr)) / 32 : 0;
}

static uint64_t event_addr(uint64_t ring, uint32_t pos)
{
	return ring + sizeof(struct aio_ring_hdr) + (uint64_t)pos * 32;
}

/* Copy the @n events from position @head on (wrapping at @nr) between the task's ring
 * and @buf. */
static int ring_events_xfer(struct rsys *rs, uint64_t ring, uint32_t nr, uint32_t head,
			    uint32_t n, void *buf, bool write)
{
	uint32_t first = n < nr - head ? n : nr - head;
	uint8_t *b = buf;
	int ret = write ? rsys_poke(rs, event_addr(ring, head), b, (size_t)first * 32)
			: rsys_peek(rs, event_addr(ring, head), b, (size_t)first * 32);
	if (!ret && n > first)
		ret = write ? rsys_poke(rs, event_addr(ring, 0), b + (size_t)first * 32,
					(size_t)(n - first) * 32)
			    : rsys_peek(rs, event_addr(ring, 0), b + (size_t)first * 32,
					(size_t)(n - first) * 32);
	return ret;
}

int mem_aio_dump(struct dump_ctx *c, Vma *v)
{
	struct aio_ring_hdr h;
	uint64_t len = v->end - v->start;
	const struct timespec zero = { 0, 0 };
	int ret = rsys_peek(&c->rs, v->start, &h, sizeof(h));
	if (ret)
		return pr_err("vma %llx-%llx of pid %d: AIO ring cannot be read: %s",
			      (unsigned long long)v->start, (unsigned long long)v->end, c->pid,
			      strerror(-ret)),
		       ret;
	if (h.magic != AIO_RING_MAGIC || h.header_length != sizeof(h) || h.nr != ring_nr(len) ||
	    h.head >= h.nr || h.tail >= h.nr) {
		pr_err("vma %llx-%llx of pid %d: AIO ring with an unknown layout (magic %#x, "
		       "%u events, head %u, tail %u): not supported",
		       (unsigned long long)v->start, (unsigned long long)v->end, c->pid, h.magic,
		       h.nr, h.head, h.tail);
		return -EOPNOTSUPP;
	}
	if (!c->rs.scratch || c->rs.scratch_len < sizeof(zero))
		return pr_err("pid %d: no scratch memory to check an AIO ring", c->pid), -EINVAL;
	long r = -EIO;
	ret = rsys_poke(&c->rs, c->rs.scratch, &zero, sizeof(zero));
	if (!ret)
		ret = rsys_call(&c->rs, SYS_io_getevents, v->start, 0, 0, 0, c->rs.scratch, 0, &r);
	if (ret)
		return ret;
	if (r) {
		pr_err("vma %llx-%llx of pid %d: an AIO ring that is no context of this process "
		       "(io_getevents: %s): not supported",
		       (unsigned long long)v->start, (unsigned long long)v->end, c->pid,
		       r < 0 ? strerror((int)-r) : "events taken");
		return -EOPNOTSUPP;
	}
	uint32_t n = (h.tail + h.nr - h.head) % h.nr;
	v->has_aio_nr = v->has_aio_head = v->has_aio_tail = v->has_aio_events = true;
	v->aio_nr = h.nr;
	v->aio_head = h.head;
	v->aio_tail = h.tail;
	v->aio_events.len = (size_t)n * 32;
	if (!n)
		return 0;
	v->aio_events.data = malloc(v->aio_events.len);
	if (!v->aio_events.data)
		return -ENOMEM;
	ret = ring_events_xfer(&c->rs, v->start, h.nr, h.head, n, v->aio_events.data, false);
	if (ret)
		pr_err("pid %d: read the events of the AIO ring at %llx: %s", c->pid,
		       (unsigned long long)v->start, strerror(-ret));
	return ret;
}

int mem_aio_validate(const Vma *v, size_t i)
{
	uint64_t len = v->end - v->start;
	if (!v->has_aio_nr || !v->has_aio_head || !v->has_aio_tail || !v->aio_nr ||
	    v->aio_nr > AIO_MAX_EVENTS || v->aio_nr != ring_nr(len) || v->aio_head >= v->aio_nr ||
	    v->aio_tail >= v->aio_nr || !(v->flags & MAP_SHARED) || v->path ||
	    (v->has_aio_events ? v->aio_events.len : 0) !=
		    (size_t)((v->aio_tail + v->aio_nr - v->aio_head) % v->aio_nr) * 32) {
		pr_err("image: vma %zu (%llx-%llx) is a malformed AIO ring", i,
		       (unsigned long long)v->start, (unsigned long long)v->end);
		return -EINVAL;
	}
	return 0;
}

/* Scratch layout of a restore: the context id, the dummy iocb, its name, then @batch
 * iocb pointers and as many events. */
struct aio_scratch {
	uint64_t ctx, iocb, name, ptrs, events;
	uint32_t batch;
};

/* Submit @n dummy reads (reaping them when @reap). A call may take fewer than asked
 * (free slots are handed out to CPUs in batches): the rest goes in the next one. */
static int dummies(struct rst_ctx *c, const struct aio_scratch *s, uint64_t ring, uint32_t n,
		   bool reap)
{
	while (n) {
		uint32_t k = n < s->batch ? n : s->batch;
		long r = rsys_do(&c->rs, "restore: submit to an AIO context", SYS_io_submit, ring,
				 k, s->ptrs, 0, 0, 0);
		if (!r)
			r = -EAGAIN;
		if (r > 0 && reap) {
			long got = rsys_do(&c->rs, "restore: reap an AIO context's events",
					   SYS_io_getevents, ring, r, r, s->events, 0, 0);
			if (got >= 0 && got != r)
				got = -EIO;
			if (got < 0)
				r = got;
		}
		if (r < 0) {
			pr_err("restore: the AIO ring at %llx cannot be brought to its place: %s",
			       (unsigned long long)ring, strerror((int)-r));
			return (int)r;
		}
		n -= (uint32_t)r;
	}
	return 0;
}

/* A fresh context of @v's size, moved to @v's address. */
static int ring_create(struct rst_ctx *c, const Vma *v, const struct aio_scratch *s)
{
	uint64_t len = v->end - v->start, ctx = 0;
	struct aio_ring_hdr h;
	/* its place held, so that io_setup does not put the new ring across it */
	long r = rsys_do(&c->rs, "restore: hold the place of an AIO ring", SYS_mmap, v->start, len,
			 PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED | MAP_NORESERVE,
			 (uint64_t)-1, 0);
	int ret = r < 0 ? (int)r : rsys_poke(&c->rs, s->ctx, &ctx, sizeof(ctx));
	if (ret)
		return ret;
	/* the kernel makes room for 2 * max(n, 4 * possible CPUs) + 2 events, in whole pages */
	uint32_t n = v->aio_nr > 4 ? (v->aio_nr - 2) / 2 : 1;
	r = rsys_do(&c->rs, "restore: io_setup", SYS_io_setup, n, s->ctx, 0, 0, 0, 0);
	if (r < 0)
		return (int)r;
	ret = rsys_peek(&c->rs, s->ctx, &ctx, sizeof(ctx));
	if (!ret)
		ret = rsys_peek(&c->rs, ctx, &h, sizeof(h));
	if (ret)
		return ret;
	if (h.nr != v->aio_nr || h.head || h.tail) {
		pr_err("restore: the AIO ring at %llx had %u events, one made here has %u (a "
		       "machine with more possible CPUs makes bigger rings)",
		       (unsigned long long)v->start, v->aio_nr, h.nr);
		rsys_do(&c->rs, "restore: io_destroy", SYS_io_destroy, ctx, 0, 0, 0, 0, 0);
		return -ENOSPC;
	}
	r = rsys_do(&c->rs, "restore: move an AIO ring", SYS_mremap, ctx, len, len,
		    MREMAP_MAYMOVE | MREMAP_FIXED, v->start, 0);
	return r < 0 ? (int)r : 0;
}

int mem_aio_map(struct rst_ctx *c, const Vma *v)
{
	uint32_t nr = v->aio_nr, head = v->aio_head;
	uint32_t pending = (v->aio_tail + nr - head) % nr;
	struct aio_scratch s = { .ctx = c->rs.scratch };
	s.iocb = s.ctx + 64;
	s.name = s.iocb + 64;
	s.ptrs = s.name + 64;
	if (!c->rs.scratch || c->rs.scratch_len < 4096)
		return pr_err("restore: no scratch memory for an AIO ring"), -EINVAL;
	/* no more than the kernel promised io_setup's caller could have in flight */
	s.batch = (uint32_t)((c->rs.scratch_len - (s.ptrs - s.ctx)) / (8 + 32));
	if (s.batch > (nr - 2) / 2)
		s.batch = (nr - 2) / 2;
	s.events = s.ptrs + (uint64_t)s.batch * 8;

	int ret = ring_create(c, v, &s);
	if (ret)
		return ret;
	static const char name[] = "stasis-aio";
	ret = rsys_poke(&c->rs, s.name, name, sizeof(name));
	if (ret)
		return ret;
	long fd = rsys_do(&c->rs, "restore: memfd for AIO", SYS_memfd_create, s.name, MFD_CLOEXEC,
			  0, 0, 0, 0);
	if (fd < 0)
		return (int)fd;
	struct iocb cb = { .aio_lio_opcode = IOCB_CMD_PREAD, .aio_fildes = (uint32_t)fd,
			   .aio_buf = s.name, .aio_nbytes = 0, .aio_offset = 0 };
	_cleanup_free_ uint64_t *ptrs = calloc(s.batch, sizeof(*ptrs));
	if (!ptrs)
		return -ENOMEM;
	for (uint32_t i = 0; i < s.batch; i++)
		ptrs[i] = s.iocb;
	ret = rsys_poke(&c->rs, s.iocb, &cb, sizeof(cb));
	if (!ret)
		ret = rsys_poke(&c->rs, s.ptrs, ptrs, (size_t)s.batch * 8);
	if (!ret)
		ret = dummies(c, &s, v->start, head, true);
	if (!ret)
		ret = dummies(c, &s, v->start, pending, false);
	long r = rsys_do(&c->rs, "restore: close the AIO memfd", SYS_close, (uint64_t)fd, 0, 0, 0,
			 0, 0);
	if (ret || r < 0)
		return ret ? ret : (int)r;
	if (pending)
		ret = ring_events_xfer(&c->rs, v->start, nr, head, pending, v->aio_events.data, true);
	struct aio_ring_hdr h;
	if (!ret)
		ret = rsys_peek(&c->rs, v->start, &h, sizeof(h));
	if (!ret && (h.head != head || h.tail != v->aio_tail)) {
		pr_err("restore: the AIO ring at %llx came out with head %u, tail %u (not %u, %u)",
		       (unsigned long long)v->start, h.head, h.tail, head, v->aio_tail);
		ret = -EIO;
	}
	return ret;
}
