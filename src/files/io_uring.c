/* io_uring instances (row fd_io_uring_ops, kind FILE_IO_URING, FileDesc.io_uring; the
 * areas that map their rings: Vma kind VMA_IO_URING, src/mem/mem.c).
 *
 * What an instance is, to the program: two rings shared with the kernel (SQ: the program
 * writes SQEs and moves the tail, the kernel takes them at its head; CQ: the kernel posts
 * CQEs at its tail, the program reaps them at the head), free-running 32-bit counters the
 * program compares, its setup flags, its registered buffers and files, and the requests
 * the kernel is working on.
 *
 * Dump (the tree frozen; a SQPOLL thread is an io worker that no ptrace stop freezes, so
 * nothing may be pending for it): /proc/PID/fdinfo gives the counters (the kernel's own
 * cached SQ head and CQ tail too), the pending SQEs and unreaped CQEs, the SQPOLL thread,
 * the registered files and buffers, the polled requests and the overflowed completions.
 * The setup flags it does not show are found out: SINGLE_ISSUER by io_uring_register from
 * stasis (-EEXIST: a submitter that is not stasis), then the thread that is (the same
 * call, remote, in each thread of the holder), DEFER_TASKRUN by io_uring_enter(GETEVENTS)
 * from stasis (-EEXIST); CQE32, SQE128 and NO_SQARRAY by what fdinfo prints for one CQE
 * and one SQE (a completion and an entry already consumed made visible for the one read
 * by moving the program's CQ head and the SQ head, which the kernel only writes, back by
 * one, then put back), else by the sizes of the regions (mmap of a length beyond a
 * region fails). The memory of the rings is read through stasis's own mapping of a
 * pidfd_getfd duplicate.
 *
 * Refused at dump, one line each: requests in flight (fdinfo shows the polled ones; the
 * others — a timeout, a read handed to an io worker — show as SQEs taken and no CQE yet:
 * the cached SQ head differs from the cached CQ tail, which also refuses rings that ran
 * requests posting no CQE (CQE_SKIP_SUCCESS) or several (multishot)), overflowed
 * completions, registered files (fdinfo names only a path), a registered eventfd, a
 * restricted ring, NAPI busy polling, rings in the program's memory (NO_MMAP), provided
 * buffer groups, SQEs pending on a SQPOLL ring, a submitter thread of another process.
 * IOPOLL by io_uring_enter waiting 1 ns for a CQE (0 at once when polling), a disabled
 * ring by -EBADFD (refused). Not shown by this kernel and so not carried: the SQPOLL idle
 * time (the kernel's default, 1 s), COOP_TASKRUN, TASKRUN_FLAG (set with DEFER_TASKRUN),
 * SUBMIT_ALL, the personalities registered, the io-wq limits and affinity: a ring made
 * without them completes at least as eagerly.
 *
 * Restore: made by its owner (the single issuer, else the holder): by the restore child
 * itself at native speed (uring_open), or in the final stage for a SQPOLL ring (its
 * thread would take a pid the tree may still need), a single issuer that is another
 * thread, a task whose files stasis opens (the placeholder machinery of placeholder.c
 * holds the fd numbers until then; io_uring_setup remote). NOPs until the kernel's SQ
 * head and CQ tail are the dumped ones, then the SQEs, the SQ index array, the CQEs, the
 * program's CQ head, the dropped and overflow counters and last the SQ tail written
 * back; in the final stage the owner registers the buffers (pinned in its memory) and
 * the sparse file table, and every area mapping the rings is mapped again from the fd
 * (mem.c reserved it). Details and costs: docs/ARCHITECTURE.md, "io_uring". */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/io_uring.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <unistd.h>

#include "core/log.h"
#include "core/util.h"
#include "files/fd_ops.h"
#include "ptrace/rsys.h"
#include "sys/syscalls.h"
#include "sys/uapi.h"

#define URING_LINK "anon_inode:[io_uring]"

/* struct io_rings as io_uring_setup reports it (sq_off, cq_off): checked at restore. */
enum {
	R_SQ_HEAD = 0,
	R_SQ_TAIL = 4,
	R_CQ_HEAD = 8,
	R_CQ_TAIL = 12,
	R_SQ_MASK = 16,
	R_CQ_MASK = 20,
	R_SQ_ENTRIES = 24,
	R_CQ_ENTRIES = 28,
	R_SQ_DROPPED = 32,
	R_SQ_FLAGS = 36,
	R_CQ_FLAGS = 40,
	R_CQ_OVERFLOW = 44,
	R_CQES = 64,
};
#define URING_MAX_ENTRIES 32768u
#define URING_MAX_CQ (2 * URING_MAX_ENTRIES)
#define URING_MAX_BUFS 16384u
#define URING_MAX_FILES (1u << 20)
#define URING_DRAIN_NS 1000000000ull /* the longest a dump waits for requests in flight */
/* the flags a restore makes a ring with (the others are refused or not carried) */
#define URING_FLAGS                                                                        \
	(IORING_SETUP_IOPOLL | IORING_SETUP_SQPOLL | IORING_SETUP_SQ_AFF |                    \
	 IORING_SETUP_CQSIZE | IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN |      \
	 IORING_SETUP_TASKRUN_FLAG | IORING_SETUP_SQE128 | IORING_SETUP_CQE32 |               \
	 STASIS_IORING_SETUP_NO_SQARRAY)

/* ---- fdinfo ---------------------------------------------------------------------- */

struct uring_info {
	uint32_t sq_mask, sq_tail, csq_head, cq_mask, cq_tail, ccq_tail;
	long sq_thread;
	uint32_t user_files, files_used, n_poll, n_overflow;
	bool napi, personalities;
	uint32_t sqe_lines, cqe_lines;
	bool sqe128, cqe32;
	IoUringBuf *bufs;
	size_t n_bufs;
};

static void uring_info_free(struct uring_info *u)
{
	free(u->bufs);
	u->bufs = NULL;
}

static bool key_is(const char *k, size_t kl, const char *s)
{
	return strlen(s) == kl && !memcmp(k, s, kl);
}

static int parse_u32(const char *v, uint32_t *out)
{
	long long x;
	char num[24];
	size_t n = strcspn(v, "\n");
	if (n == 0 || n >= sizeof(num))
		return -EINVAL;
	memcpy(num, v, n);
	num[n] = 0;
	if (!strncmp(num, "0x", 2)) {
		char *end;
		errno = 0;
		unsigned long long h = strtoull(num + 2, &end, 16);
		if (errno || *end || end == num + 2 || h > UINT32_MAX)
			return -EINVAL;
		*out = (uint32_t)h;
		return 0;
	}
	if (parse_int(num, 0, UINT32_MAX, &x))
		return -EINVAL;
	*out = (uint32_t)x;
	return 0;
}

/* One indented line of section @sec. */
static int parse_item(struct uring_info *u, const char *sec, const char *line)
{
	if (!strcmp(sec, "SQEs")) {
		u->sqe_lines++;
		u->sqe128 |= strstr(line, ", e0:") != NULL;
	} else if (!strcmp(sec, "CQEs")) {
		u->cqe_lines++;
		u->cqe32 |= strstr(line, ", extra1:") != NULL;
	} else if (!strcmp(sec, "UserFiles")) {
		u->files_used++;
	} else if (!strcmp(sec, "UserBufs")) {
		unsigned int idx;
		unsigned long long addr = 0, len = 0;
		char none[8] = "";
		/* an empty slot of a sparse table: "N: <none>" (registered again empty) */
		if ((sscanf(line, " %u: 0x%llx/%llu", &idx, &addr, &len) != 3 &&
		     (sscanf(line, " %u: %7s", &idx, none) != 2 || strcmp(none, "<none>"))) ||
		    idx != u->n_bufs || u->n_bufs >= URING_MAX_BUFS)
			return -EINVAL;
		IoUringBuf *n = realloc(u->bufs, (u->n_bufs + 1) * sizeof(*n));
		if (!n)
			return -ENOMEM;
		u->bufs = n;
		io_uring_buf__init(&n[u->n_bufs]);
		n[u->n_bufs].addr = addr;
		n[u->n_bufs++].len = len;
	} else if (!strcmp(sec, "PollList")) {
		u->n_poll++;
	} else if (!strcmp(sec, "CqOverflowList")) {
		u->n_overflow++;
	} else if (!strcmp(sec, "Personalities") || !strcmp(sec, "NAPI")) {
		/* their details: the section itself is refused */
	} else {
		return -EINVAL;
	}
	return 0;
}

/* One "Key:\tvalue" line; *@sec becomes the key. */
static int parse_key(struct uring_info *u, const char *k, size_t kl, const char *v,
		     char sec[32])
{
	static const struct {
		const char *key;
		size_t off;
	} nums[] = {
		{ "SqMask", offsetof(struct uring_info, sq_mask) },
		{ "SqTail", offsetof(struct uring_info, sq_tail) },
		{ "CachedSqHead", offsetof(struct uring_info, csq_head) },
		{ "CqMask", offsetof(struct uring_info, cq_mask) },
		{ "CqTail", offsetof(struct uring_info, cq_tail) },
		{ "CachedCqTail", offsetof(struct uring_info, ccq_tail) },
		{ "UserFiles", offsetof(struct uring_info, user_files) },
	};
	/* (the heads the program moves are read from the ring itself) */
	static const char *const skipped[] = { "pos",  "flags", "mnt_id", "ino", "SqHead",
					       "CqHead", "SQEs", "CQEs", "SqThreadCpu",
					       "SqTotalTime",
					       "SqWorkTime", "UserBufs", "PollList",
					       "CqOverflowList", "napi tracking",
					       "napi_busy_poll_dt", "napi_prefer_busy_poll" };
	snprintf(sec, 32, "%.*s", (int)kl, k);
	for (size_t i = 0; i < ARRAY_SIZE(nums); i++)
		if (key_is(k, kl, nums[i].key))
			return parse_u32(v, (uint32_t *)((char *)u + nums[i].off));
	if (key_is(k, kl, "SqThread")) {
		long long x;
		char num[24];
		snprintf(num, sizeof(num), "%.*s", (int)strcspn(v, "\n"), v);
		if (parse_int(num, -1, INT32_MAX, &x))
			return -EINVAL;
		u->sq_thread = (long)x;
		return 0;
	}
	if (key_is(k, kl, "NAPI")) {
		u->napi = strncmp(v, "disabled", 8) != 0;
		return 0;
	}
	if (key_is(k, kl, "Personalities")) {
		u->personalities = true;
		return 0;
	}
	for (size_t i = 0; i < ARRAY_SIZE(skipped); i++)
		if (key_is(k, kl, skipped[i]))
			return 0;
	return -ENOENT;
}

/* The fdinfo text of a ring: 0, -EINVAL (malformed) or -ENOENT (*@bad: a key this
 * version does not know). */
static int parse_fdinfo(const char *text, struct uring_info *u, char bad[32])
{
	char sec[32] = "";
	memset(u, 0, sizeof(*u));
	u->sq_thread = -1;
	for (const char *p = text; *p;) {
		const char *eol = strchr(p, '\n');
		size_t len = eol ? (size_t)(eol - p) : strlen(p);
		int ret = 0;
		if (!len) {
			/* (a CQE32 line ends in two newlines) */
		} else if (*p == ' ' || *p == '\t') {
			char line[256];
			snprintf(line, sizeof(line), "%.*s", (int)(len < 255 ? len : 255), p);
			ret = parse_item(u, sec, line);
		} else {
			const char *colon = memchr(p, ':', len);
			if (!colon)
				return -EINVAL;
			const char *v = colon + 1;
			while (*v == '\t' || *v == ' ')
				v++;
			ret = parse_key(u, p, (size_t)(colon - p), v, sec);
			if (ret == -ENOENT)
				snprintf(bad, 32, "%s", sec);
		}
		if (ret)
			return ret;
		p += len + (eol ? 1 : 0);
	}
	return 0;
}

/* The kernel prints a ring's part of fdinfo only when it gets the ring's lock at once
 * (io_uring_show_fdinfo: mutex_trylock): an io worker or SQPOLL thread holding it, which
 * no freeze stops, leaves the generic lines alone. Read again until it is there. */
static int read_info(const struct dump_ctx *c, const struct fd_ent *e, struct uring_info *u)
{
	_cleanup_free_ char *text = NULL;
	char bad[32] = "";
	int ret;
	for (int tries = 0;; tries++) {
		free(text);
		text = NULL;
		ret = fd_read_fdinfo(c, e->fd, FDINFO_MAX, &text);
		if (ret)
			return ret;
		if (strstr(text, "\nSqMask:"))
			break;
		if (tries == 2000) {
			pr_err("dump: /proc/%d/fdinfo/%d never shows the io_uring's state "
			       "(its lock held for 2 s)", c->pid, e->fd);
			return -EBUSY;
		}
		usleep(1000);
	}
	uring_info_free(u);
	ret = parse_fdinfo(text, u, bad);
	if (ret == -ENOENT) {
		char what[96];
		snprintf(what, sizeof(what), "an io_uring whose fdinfo shows \"%s\", which stasis "
			 "does not carry", bad);
		return fd_unsupported(c, e, what);
	}
	if (ret) {
		pr_err("cannot parse the io_uring state in /proc/%d/fdinfo/%d", c->pid, e->fd);
		return -EINVAL;
	}
	if (u->sq_mask + 1 > URING_MAX_ENTRIES || (u->sq_mask & (u->sq_mask + 1)) ||
	    u->cq_mask + 1 > URING_MAX_CQ || (u->cq_mask & (u->cq_mask + 1))) {
		pr_err("/proc/%d/fdinfo/%d: io_uring ring sizes %u and %u", c->pid, e->fd,
		       u->sq_mask + 1, u->cq_mask + 1);
		return -EINVAL;
	}
	return 0;
}

/* ---- dump ------------------------------------------------------------------------ */

static int uring_classify(const struct dump_ctx *c, struct fd_ent *e)
{
	(void)c;
	if (strcmp(e->link, URING_LINK))
		return 0;
	e->kind = FILE_KIND__FILE_IO_URING;
	return 1;
}

/* The length of the region of ring @fd at @off (at most @max bytes), or 0 (-errno in
 * *@err when it cannot be mapped). A mapping longer than the region succeeds, the pages
 * past it missing (SIGBUS): the kernel puts in the region's pages at mmap, mincore
 * counts them. */
static size_t region_len(int fd, uint64_t off, size_t max, int *err)
{
	size_t n = (max + 4095) / 4096, k = 0;
	unsigned char *vec = malloc(n);
	void *m = vec ? mmap(NULL, n * 4096, PROT_READ, MAP_SHARED, fd, (off_t)off) : MAP_FAILED;
	*err = 0;
	if (m == MAP_FAILED) {
		*err = vec ? -errno : -ENOMEM;
		free(vec);
		return 0;
	}
	if (!mincore(m, n * 4096, vec))
		while (k < n && (vec[k] & 1))
			k++;
	else
		*err = -errno;
	munmap(m, n * 4096);
	free(vec);
	return k * 4096;
}

/* Where the SQ index array follows the CQEs (io_uring/io_uring.c rings_size: the whole
 * struct doubled for 32-byte CQEs, then cache-line aligned). */
static size_t array_offset(uint32_t cq_entries, size_t cqe_size)
{
	size_t off = (R_CQES + (size_t)cq_entries * 16) * (cqe_size / 16);
	return (off + 63) & ~(size_t)63;
}

static size_t page_up(size_t n)
{
	return (n + 4095) & ~(size_t)4095;
}

/* What a dump learns of one ring. */
struct uring_dump {
	const struct dump_ctx *c;
	const struct fd_ent *e;
	int dup;
	struct uring_info u;
	uint32_t sq_entries, cq_entries, flags, sqe_size, cqe_size;
	size_t ring_len, array_off;
	uint8_t *ring; /* stasis's mapping of the ring region (ring_len bytes) */
};

/* Requests the kernel took and has not completed (the cached SQ head ahead of the cached
 * CQ tail, CQEs not yet published), or SQEs written for a SQPOLL thread. */
static bool in_flight(const struct uring_info *u)
{
	return u->csq_head != u->ccq_tail || u->cq_tail != u->ccq_tail ||
	       (u->sq_thread >= 0 && u->sq_tail != u->csq_head);
}

/* The refusals fdinfo alone decides. */
static int refuse_by_info(struct uring_dump *x)
{
	const struct uring_info *u = &x->u;
	char what[160];
	const char *why = NULL;
	if (u->n_poll)
		why = "with polled requests in flight";
	else if (u->n_overflow)
		why = "with overflowed completions";
	else if (u->napi)
		why = "with NAPI busy polling";
	else if (u->personalities)
		why = "with registered personalities";
	else if (u->files_used)
		why = "with registered files";
	else if (u->csq_head != u->ccq_tail || u->cq_tail != u->ccq_tail) {
		snprintf(what, sizeof(what), "an io_uring with requests in flight (%u SQEs taken, "
			 "%u CQEs posted)", u->csq_head, u->ccq_tail);
		return fd_unsupported(x->c, x->e, what);
	} else if (u->sq_thread >= 0 && u->sq_tail != u->csq_head)
		why = "with SQEs waiting for its SQPOLL thread";
	if (!why)
		return 0;
	snprintf(what, sizeof(what), "an io_uring %s", why);
	return fd_unsupported(x->c, x->e, what);
}

/* A remote call's result, or -errno (the task's or the transport's). */
static long rcall(struct rsys *rs, long nr, uint64_t a0, uint64_t a1, uint64_t a2, uint64_t a3)
{
	long r = 0;
	int ret = rsys_call(rs, nr, a0, a1, a2, a3, 0, 0, &r);
	return ret ? ret : r;
}

/* io_uring_register(@fd, @op, @arg, @nr) in thread @rs of the task (NULL: in stasis, on
 * the duplicate): the result or -errno. */
static long reg_in(struct uring_dump *x, struct rsys *rs, unsigned int op, uint64_t arg,
		   uint32_t nr)
{
	if (!rs) {
		long r = syscall(SYS_io_uring_register, x->dup, op, (void *)arg, nr);
		return r < 0 ? -errno : r;
	}
	return rcall(rs, SYS_io_uring_register, (uint64_t)x->e->fd, op, arg, nr);
}

/* SINGLE_ISSUER (and its thread), restrictions, DEFER_TASKRUN, a registered eventfd. */
static int probe_issuer(struct uring_dump *x, IoUringData *m, struct rsys **owner_rs)
{
	struct dump_ctx *c = (struct dump_ctx *)x->c;
	long r = reg_in(x, NULL, IORING_UNREGISTER_EVENTFD, 1, 0);
	*owner_rs = NULL;
	m->owner = c->pid;
	if (r == -EACCES)
		return fd_unsupported(c, x->e, "a restricted io_uring");
	if (r == -EEXIST) {
		x->flags |= IORING_SETUP_SINGLE_ISSUER;
		for (size_t i = 0; i < c->nr_thr && !*owner_rs; i++) {
			struct rsys *rs = dump_thread_rs(c, i);
			if (reg_in(x, rs, IORING_UNREGISTER_EVENTFD, 1, 0) == -EINVAL) {
				*owner_rs = rs;
				m->owner = rs->tid;
				m->has_by_thread = m->by_thread = rs->tid != c->pid;
			}
		}
		if (!*owner_rs)
			return fd_unsupported(c, x->e, "a single-issuer io_uring whose issuer "
						       "is not a thread of its process");
		long g = syscall(SYS_io_uring_enter, x->dup, 0, 0, IORING_ENTER_GETEVENTS, NULL, 0);
		if (g < 0 && errno == EEXIST)
			x->flags |= IORING_SETUP_DEFER_TASKRUN | IORING_SETUP_TASKRUN_FLAG;
	} else if (r != -EINVAL) {
		return pr_errno((int)r, "dump: io_uring fd %d of pid %d: probe", x->e->fd, c->pid);
	}
	/* a registered eventfd makes the call busy before it reads its argument */
	r = reg_in(x, *owner_rs, IORING_REGISTER_EVENTFD, 0, 1);
	if (r == -EBUSY)
		return fd_unsupported(c, x->e, "an io_uring with a registered eventfd");
	return 0;
}

/* IOPOLL: io_uring_enter waiting (1 ns at most) for a CQE on an empty CQ ring returns 0
 * at once on a polling ring (io_iopoll_check), -ETIME on another (which returns 0 as soon
 * as any CQE is there: the unreaped ones are hidden for the call by moving the program's
 * CQ head to the tail, then put back; nothing is in flight to be posted meanwhile). A
 * ring with deferred task work answers its issuer only (remote). A disabled ring
 * (R_DISABLED, not enabled yet: its restrictions unknown) refuses every entry with
 * -EBADFD. */
static int probe_iopoll(struct uring_dump *x, struct rsys *owner_rs)
{
	struct {
		struct io_uring_getevents_arg a;
		struct __kernel_timespec ts;
	} w;
	long r = syscall(SYS_io_uring_enter, x->dup, 0, 0, 0, NULL, 0) < 0 ? -errno : 0;
	if (r == -EBADFD)
		return fd_unsupported(x->c, x->e, "a disabled io_uring (IORING_SETUP_R_DISABLED)");
	volatile uint32_t *cqh = (uint32_t *)(x->ring + R_CQ_HEAD);
	uint32_t old = *cqh;
	*cqh = x->u.ccq_tail;
	memset(&w, 0, sizeof(w));
	w.ts.tv_nsec = 1;
	unsigned int fl = IORING_ENTER_GETEVENTS | IORING_ENTER_EXT_ARG;
	for (int tries = 0; tries < 16; tries++) {
		if (x->flags & IORING_SETUP_DEFER_TASKRUN) {
			uint64_t at = owner_rs->scratch;
			w.a.ts = at + offsetof(__typeof__(w), ts);
			int ret = rsys_poke(owner_rs, at, &w, sizeof(w));
			long q = 0;
			if (!ret)
				ret = rsys_call(owner_rs, SYS_io_uring_enter, (uint64_t)x->e->fd, 0,
						1, fl, at, sizeof(w.a), &q);
			r = ret ? ret : q;
		} else {
			w.a.ts = (uint64_t)(uintptr_t)&w.ts;
			r = syscall(SYS_io_uring_enter, x->dup, 0, 1, fl, &w.a, sizeof(w.a));
			r = r < 0 ? -errno : r;
		}
		if (r != -EINTR)
			break;
	}
	*cqh = old;
	if (r >= 0)
		x->flags |= IORING_SETUP_IOPOLL;
	else if (r != -ETIME)
		return pr_errno((int)r, "dump: io_uring fd %d of pid %d: does it poll",
				x->e->fd, x->c->pid);
	return 0;
}

/* Provided buffer groups (buffer rings, or buffers given by IORING_OP_PROVIDE_BUFFERS):
 * IORING_REGISTER_PBUF_STATUS of a group id says whether it exists. stasis asks of every
 * id; a single issuer's thread (a remote call each, about 0.1 ms) of the first
 * URING_PBUF_REMOTE ids only. */
#define URING_PBUF_REMOTE 256u
static int probe_pbuf(struct uring_dump *x, struct rsys *owner_rs)
{
	uint32_t st[10];
	uint64_t arg = (uint64_t)(uintptr_t)st;
	for (uint32_t g = 0; g < (owner_rs ? URING_PBUF_REMOTE : 65536u); g++) {
		long r;
		memset(st, 0, sizeof(st));
		st[0] = g;
		if (owner_rs) {
			arg = owner_rs->scratch;
			int ret = rsys_poke(owner_rs, arg, st, sizeof(st));
			if (ret)
				return ret;
		}
		r = reg_in(x, owner_rs, STASIS_IORING_REGISTER_PBUF_STATUS, arg, 1);
		if (r == -ENOENT)
			continue;
		if (r == 0 || r == -EINVAL)
			return fd_unsupported(x->c, x->e, "an io_uring with provided buffers");
		return pr_errno((int)r, "dump: io_uring fd %d of pid %d: buffer group %u",
				x->e->fd, x->c->pid, g);
	}
	return 0;
}

/* fdinfo with the program's CQ head one back (a CQE already reaped made visible): CQE32.
 * Put back at once. */
static int probe_cqe(struct uring_dump *x)
{
	volatile uint32_t *cqh = (uint32_t *)(x->ring + R_CQ_HEAD);
	struct uring_info t = { 0 };
	bool cqe32 = x->u.cqe32;
	if (!x->u.cqe_lines) {
		uint32_t old = *cqh;
		*cqh = x->u.ccq_tail - 1;
		int ret = read_info(x->c, x->e, &t);
		*cqh = old;
		uring_info_free(&t);
		if (ret)
			return ret;
		if (t.cqe_lines != 1) {
			pr_err("dump: io_uring fd %d of pid %d: no CQE to tell its size", x->e->fd,
			       x->c->pid);
			return -EIO;
		}
		cqe32 = t.cqe32;
	}
	x->cqe_size = cqe32 ? 32 : 16;
	if (cqe32)
		x->flags |= IORING_SETUP_CQE32;
	x->array_off = array_offset(x->cq_entries, x->cqe_size);
	return 0;
}

/* With the SQ head one back (the kernel only writes it) and a valid index in the array
 * slot of the last SQE taken: SQE128, and the SQ array (no line: NO_SQARRAY). Put back at
 * once. Without an array, the SQE size by the size of their region. */
static int probe_sqe(struct uring_dump *x)
{
	volatile uint32_t *sqh = (uint32_t *)(x->ring + R_SQ_HEAD);
	bool lines = x->u.sqe_lines > 0, sqe128 = x->u.sqe128;
	if (!lines) {
		struct uring_info t = { 0 };
		volatile uint32_t *slot = NULL;
		uint32_t old = *sqh, old_slot = 0;
		if (x->array_off + (size_t)x->sq_entries * 4 <= x->ring_len) {
			slot = (uint32_t *)(x->ring + x->array_off) +
			       ((x->u.sq_tail - 1) & x->u.sq_mask);
			old_slot = *slot;
			if (old_slot > x->u.sq_mask)
				*slot = 0;
		}
		*sqh = x->u.sq_tail - 1;
		int ret = read_info(x->c, x->e, &t);
		*sqh = old;
		if (slot)
			*slot = old_slot;
		uring_info_free(&t);
		if (ret)
			return ret;
		lines = t.sqe_lines > 0;
		sqe128 = t.sqe128;
	}
	if (!lines) {
		x->flags |= STASIS_IORING_SETUP_NO_SQARRAY;
		size_t small = (size_t)x->sq_entries * 64, big = small * 2;
		int err;
		size_t have = region_len(x->dup, IORING_OFF_SQES, big, &err);
		if (err)
			return pr_errno(err, "dump: io_uring fd %d of pid %d: its SQEs", x->e->fd,
					x->c->pid);
		if (page_up(small) < page_up(big))
			sqe128 = have >= page_up(big);
		else
			return fd_unsupported(x->c, x->e, "an io_uring of 32 entries or fewer "
							  "without an SQ array (its SQE size "
							  "cannot be told)");
	}
	x->sqe_size = sqe128 ? 128 : 64;
	if (sqe128)
		x->flags |= IORING_SETUP_SQE128;
	return 0;
}

static int copy_out(ProtobufCBinaryData *b, const void *src, size_t len)
{
	b->data = malloc(len ? len : 1);
	if (!b->data)
		return -ENOMEM;
	memcpy(b->data, src, len);
	b->len = len;
	return 0;
}

/* The SQPOLL thread of @x among the holder's threads: fdinfo names it by its pid in the
 * kernel's first namespace, which a stasis in another one does not see; there, the io
 * worker named "iou-sqp-..." (all of them, when several, must be bound alike). Its CPU
 * affinity in *@cpus. */
static int find_sqpoll(struct uring_dump *x, cpu_set_t *cpus)
{
	char path[64];
	snprintf(path, sizeof(path), "task/%ld", x->u.sq_thread);
	if (!faccessat(x->c->procfd, path, F_OK, 0))
		return sched_getaffinity((pid_t)x->u.sq_thread, sizeof(*cpus), cpus) ? -errno : 0;
	_cleanup_close_ int tfd = openat(x->c->procfd, "task", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	DIR *d = tfd >= 0 ? fdopendir(tfd) : NULL;
	struct dirent *de;
	int found = 0;
	if (!d)
		return -errno;
	tfd = -1; /* owned by d */
	while ((de = readdir(d))) {
		cpu_set_t set;
		long long tid;
		if (parse_int(de->d_name, 1, 0x3fffffff, &tid))
			continue;
		snprintf(path, sizeof(path), "task/%lld/comm", tid);
		_cleanup_free_ char *comm = read_file_at(x->c->procfd, path, 64, NULL);
		if (!comm || !str_starts(comm, "iou-sqp-") ||
		    sched_getaffinity((pid_t)tid, sizeof(set), &set))
			continue;
		if (found++ && !CPU_EQUAL(&set, cpus))
			found = -1000;
		*cpus = set;
	}
	closedir(d);
	return found > 0 ? 0 : found < 0 ? -EBUSY : -ENOENT;
}

/* SQPOLL: its thread one of the holder's; its CPU when bound alone to one. */
static int sqpoll_of(struct uring_dump *x, IoUringData *m)
{
	cpu_set_t thr, proc;
	int ret = find_sqpoll(x, &thr);
	if (ret == -ENOENT)
		return fd_unsupported(x->c, x->e, "an io_uring whose SQPOLL thread belongs to "
						  "another process");
	if (ret == -EBUSY)
		return fd_unsupported(x->c, x->e, "an io_uring of a process with SQPOLL threads "
						  "bound to different CPUs");
	if (ret || sched_getaffinity(x->c->ospid, sizeof(proc), &proc))
		return pr_errno(ret ? ret : -errno, "dump: CPU affinity of the SQPOLL thread of "
				"pid %d", x->c->pid);
	x->flags |= IORING_SETUP_SQPOLL;
	if (CPU_COUNT(&thr) == 1 && CPU_COUNT(&proc) > 1) {
		for (int i = 0; i < CPU_SETSIZE; i++)
			if (CPU_ISSET(i, &thr)) {
				m->has_sq_cpu = true;
				m->sq_cpu = (uint32_t)i;
			}
		x->flags |= IORING_SETUP_SQ_AFF;
	}
	return 0;
}

/* The memory of the rings. */
static int read_rings(struct uring_dump *x, IoUringData *m)
{
	size_t sqes_len = (size_t)x->sq_entries * x->sqe_size;
	uint8_t *sqes = mmap(NULL, sqes_len, PROT_READ, MAP_SHARED, x->dup, IORING_OFF_SQES);
	if (sqes == MAP_FAILED)
		return pr_perror("dump: io_uring fd %d of pid %d: map its SQEs", x->e->fd,
				 x->c->pid);
	int ret = copy_out(&m->sqes, sqes, sqes_len);
	munmap(sqes, sqes_len);
	if (!ret)
		ret = copy_out(&m->cqes, x->ring + R_CQES, (size_t)x->cq_entries * x->cqe_size);
	if (!ret && !(x->flags & STASIS_IORING_SETUP_NO_SQARRAY)) {
		m->has_sq_array = true;
		ret = copy_out(&m->sq_array, x->ring + x->array_off, (size_t)x->sq_entries * 4);
	}
	const uint32_t *w = (const uint32_t *)x->ring;
	m->sq_head = x->u.csq_head;
	m->sq_tail = w[R_SQ_TAIL / 4];
	m->cq_head = w[R_CQ_HEAD / 4];
	m->cq_tail = x->u.ccq_tail;
	m->sq_dropped = w[R_SQ_DROPPED / 4];
	m->cq_overflow = w[R_CQ_OVERFLOW / 4];
	m->cq_flags = w[R_CQ_FLAGS / 4];
	return ret;
}

static int uring_dump_one(struct uring_dump *x, IoUringData *m)
{
	struct rsys *owner_rs = NULL;
	int ret = refuse_by_info(x);
	if (ret)
		return ret;
	x->sq_entries = x->u.sq_mask + 1;
	x->cq_entries = x->u.cq_mask + 1;
	if (x->cq_entries != 2 * x->sq_entries)
		x->flags |= IORING_SETUP_CQSIZE;
	/* the biggest the ring region can be; then mapped as long as it is */
	size_t most = R_CQES + (size_t)x->cq_entries * 32 + 64 + (size_t)x->sq_entries * 4;
	int err;
	x->ring_len = region_len(x->dup, IORING_OFF_SQ_RING, most, &err);
	if (err == -EINVAL)
		return fd_unsupported(x->c, x->e, "an io_uring whose rings are in the program's "
						  "memory (IORING_SETUP_NO_MMAP)");
	if (!x->ring_len)
		return pr_errno(err ? err : -EIO, "dump: io_uring fd %d of pid %d: its rings",
				x->e->fd, x->c->pid);
	x->ring = mmap(NULL, x->ring_len, PROT_READ | PROT_WRITE, MAP_SHARED, x->dup,
		       IORING_OFF_SQ_RING);
	if (x->ring == MAP_FAILED) {
		x->ring = NULL;
		return pr_perror("dump: io_uring fd %d of pid %d: map its rings", x->e->fd,
				 x->c->pid);
	}
	const uint32_t *w = (const uint32_t *)x->ring;
	if (w[R_SQ_ENTRIES / 4] != x->sq_entries || w[R_CQ_ENTRIES / 4] != x->cq_entries) {
		pr_err("dump: io_uring fd %d of pid %d: its ring says %u/%u entries, fdinfo %u/%u",
		       x->e->fd, x->c->pid, w[R_SQ_ENTRIES / 4], w[R_CQ_ENTRIES / 4],
		       x->sq_entries, x->cq_entries);
		return -EIO;
	}
	ret = probe_issuer(x, m, &owner_rs);
	if (!ret)
		ret = probe_iopoll(x, owner_rs);
	if (!ret && x->u.sq_thread >= 0)
		ret = sqpoll_of(x, m);
	if (!ret)
		ret = probe_pbuf(x, owner_rs);
	if (!ret)
		ret = probe_cqe(x);
	if (!ret)
		ret = probe_sqe(x);
	if (ret)
		return ret;
	size_t need = (x->flags & STASIS_IORING_SETUP_NO_SQARRAY)
			      ? R_CQES + (size_t)x->cq_entries * x->cqe_size
			      : x->array_off + (size_t)x->sq_entries * 4;
	if (need > x->ring_len) {
		pr_err("dump: io_uring fd %d of pid %d: its ring region is %zu bytes, %zu needed",
		       x->e->fd, x->c->pid, x->ring_len, need);
		return -EIO;
	}
	m->sq_entries = x->sq_entries;
	m->cq_entries = x->cq_entries;
	m->flags = x->flags;
	m->n_bufs = x->u.n_bufs;
	m->bufs = calloc(x->u.n_bufs ? x->u.n_bufs : 1, sizeof(*m->bufs));
	if (!m->bufs)
		return -ENOMEM;
	for (size_t i = 0; i < x->u.n_bufs; i++) {
		m->bufs[i] = malloc(sizeof(IoUringBuf));
		if (!m->bufs[i])
			return -ENOMEM;
		*m->bufs[i] = x->u.bufs[i];
	}
	if (x->u.user_files) {
		m->has_files = true;
		m->files = x->u.user_files;
	}
	return read_rings(x, m);
}

static int uring_dump(const struct dump_ctx *c, const struct fd_ent *e, FileDesc *d)
{
	struct uring_dump x = { .c = c, .e = e, .dup = -1 };
	IoUringData *m = malloc(sizeof(*m));
	if (!m)
		return -ENOMEM;
	io_uring_data__init(m);
	d->io_uring = m;
	int ret = read_info(c, e, &x.u);
	/* Requests that completed while the tree was frozen post their CQEs when their task
	 * runs its task work (DEFER_TASKRUN: when the issuer enters the kernel to wait): each
	 * thread enters io_uring_enter(GETEVENTS, 0 wanted), which posts them as the
	 * program's next call would; work handed to io workers completes meanwhile. A
	 * polled request waits for an event, a timeout for its time: refused. */
	uint64_t until = now_ns() + URING_DRAIN_NS;
	while (!ret && !x.u.n_poll && !x.u.n_overflow && in_flight(&x.u) && now_ns() < until) {
		struct dump_ctx *w = (struct dump_ctx *)c;
		/* (SQ_WAKEUP: a SQPOLL thread asleep takes the SQEs the program wrote, as the
		 * wake-up it was about to ask for would make it) */
		for (size_t i = 0; i < w->nr_thr && w->rs_ready; i++)
			(void)rcall(dump_thread_rs(w, i), SYS_io_uring_enter, (uint64_t)e->fd, 0, 0,
				    IORING_ENTER_GETEVENTS | IORING_ENTER_SQ_WAKEUP);
		usleep(2000);
		ret = read_info(c, e, &x.u);
	}
	if (!ret) {
		x.dup = fd_dup(c, e);
		ret = x.dup < 0 ? x.dup : uring_dump_one(&x, m);
	}
	if (x.ring)
		munmap(x.ring, x.ring_len);
	if (x.dup >= 0)
		close(x.dup);
	uring_info_free(&x.u);
	return ret;
}

/* Rings registered in a thread's own table (IORING_REGISTER_RING_FDS: used by index with
 * IORING_ENTER_REGISTERED_RING, fd or not; IORING_SETUP_REGISTERED_FD_ONLY rings have no
 * fd at all) are not carried: io_uring_enter on each index in each thread (0 with a ring
 * there, -EBADF without, -EINVAL for a thread that never used io_uring), all threads at
 * once. Asked of every task: such a ring shows nowhere else. */
#define URING_RINGFD_MAX 16
static int uring_group(const struct dump_ctx *c, struct fd_ent *ents, size_t n)
{
	(void)ents;
	(void)n;
	struct dump_ctx *w = (struct dump_ctx *)c;
	if (!w->rs_ready || !w->nr_thr)
		return 0;
	_cleanup_free_ struct rsys **rs = calloc(w->nr_thr, sizeof(*rs));
	_cleanup_free_ uint64_t(*args)[6] = calloc(w->nr_thr, sizeof(*args));
	_cleanup_free_ long *ret = calloc(w->nr_thr, sizeof(*ret));
	if (!rs || !args || !ret)
		return -ENOMEM;
	size_t live = w->nr_thr;
	for (size_t i = 0; i < live; i++)
		rs[i] = dump_thread_rs(w, i);
	for (uint64_t idx = 0; idx < URING_RINGFD_MAX && live; idx++) {
		for (size_t i = 0; i < live; i++) {
			memset(args[i], 0, sizeof(args[i]));
			args[i][0] = idx;
			args[i][3] = IORING_ENTER_REGISTERED_RING;
		}
		int err = rsys_call_vec(rs, live, SYS_io_uring_enter,
					(const uint64_t(*)[6])args, ret);
		if (err)
			return err;
		size_t keep = 0;
		for (size_t i = 0; i < live; i++) {
			if (ret[i] >= 0) {
				pr_err("thread %d of pid %d has an io_uring registered at index "
				       "%llu (IORING_REGISTER_RING_FDS): not supported yet",
				       rs[i]->tid, c->pid, (unsigned long long)idx);
				return -EOPNOTSUPP;
			}
			/* (-ENOSYS: no io_uring in this kernel) */
			if (ret[i] != -EINVAL && ret[i] != -ENOSYS)
				rs[keep++] = rs[i];
		}
		live = keep;
	}
	return 0;
}

/* Held by one process (an io_uring cannot travel in SCM_RIGHTS: the restore makes it in
 * its holder), no other fd table shared with it; every area mapping a ring maps one its
 * process holds (the restore maps it from that fd), and no placeholder may meet anything
 * but its holders. */
static int uring_merge(struct dump_ctx **procs, size_t n)
{
	int ret = fd_final_merge_check(procs, n, FILE_KIND__FILE_IO_URING, "an io_uring");
	for (size_t i = 0; i < n && !ret; i++) {
		const Mm *mm = procs[i]->mm;
		const Files *f = procs[i]->files;
		for (size_t j = 0; f && j < f->n_files && !ret; j++) {
			if (f->files[j]->kind != FILE_KIND__FILE_IO_URING)
				continue;
			for (size_t q = 0; q < n && !ret; q++)
				if (q != i && fd_desc_index(procs[q]->files, f->files[j]->id) >= 0) {
					pr_err("fd %d of pid %d is an io_uring pid %d holds too: "
					       "not supported yet",
					       fd_desc_fd(f, j), procs[i]->pid, procs[q]->pid);
					ret = -EOPNOTSUPP;
				}
		}
		for (size_t k = 0; mm && k < mm->n_vmas && !ret; k++) {
			const Vma *v = mm->vmas[k];
			bool held = false;
			if (v->kind != VMA_KIND__VMA_IO_URING)
				continue;
			for (size_t j = 0; f && j < f->n_files && !held; j++)
				held = f->files[j]->kind == FILE_KIND__FILE_IO_URING &&
				       f->files[j]->ino == v->ino;
			if (!held) {
				pr_err("pid %d maps the rings of an io_uring it holds no fd of "
				       "(%llx-%llx): not supported yet",
				       procs[i]->pid, (unsigned long long)v->start,
				       (unsigned long long)v->end);
				ret = -EOPNOTSUPP;
			} else if (v->pgoff >= STASIS_IORING_OFF_PBUF_RING) {
				pr_err("pid %d maps a provided buffer ring of an io_uring: not "
				       "supported yet", procs[i]->pid);
				ret = -EOPNOTSUPP;
			}
		}
	}
	return ret;
}

/* ---- restore --------------------------------------------------------------------- */

static int uring_validate(const FileDesc *d, const struct blob_reader *blobs)
{
	(void)blobs;
	const IoUringData *m = d->io_uring;
	if (!m)
		return fd_bad_data(d);
	uint32_t s = m->sq_entries, q = m->cq_entries;
	size_t sqe = (m->flags & IORING_SETUP_SQE128) ? 128 : 64;
	size_t cqe = (m->flags & IORING_SETUP_CQE32) ? 32 : 16;
	bool array = !(m->flags & STASIS_IORING_SETUP_NO_SQARRAY);
	bool ok = s && s <= URING_MAX_ENTRIES && !(s & (s - 1)) && q >= s && q <= URING_MAX_CQ &&
		  !(q & (q - 1)) && !(m->flags & ~URING_FLAGS) && m->owner > 0 &&
		  m->sqes.len == s * sqe && m->cqes.len == q * cqe &&
		  m->has_sq_array == array && (!array || m->sq_array.len == (size_t)s * 4) &&
		  m->sq_head == m->cq_tail && m->sq_tail - m->sq_head <= s &&
		  m->cq_tail - m->cq_head <= q && m->n_bufs <= URING_MAX_BUFS &&
		  (!m->has_files || (m->files && m->files <= URING_MAX_FILES)) &&
		  (!m->has_sq_cpu || m->sq_cpu < CPU_SETSIZE);
	for (size_t i = 0; ok && i < m->n_bufs; i++)
		ok = m->bufs[i]->len ? m->bufs[i]->len <= (1u << 30) &&
					       m->bufs[i]->addr + m->bufs[i]->len > m->bufs[i]->addr
				     : !m->bufs[i]->addr; /* an empty slot */
	return ok ? 0 : fd_bad_data(d);
}

/* A made ring: the owner's fd and engine, stasis's fd and mappings. */
struct uring_made {
	const IoUringData *m;
	struct rst_ctx *owner;
	struct rsys *rs;
	int ofd;  /* in the owner */
	int fd;   /* stasis's */
	uint8_t *ring, *sqes;
	size_t ring_len, sqes_len, array_off, sqe_size, cqe_size;
};

/* Make the ring in the owner thread and take it. */
static int made_setup(struct uring_made *u)
{
	const IoUringData *m = u->m;
	struct io_uring_params p;
	memset(&p, 0, sizeof(p));
	p.flags = m->flags | (m->has_sq_cpu ? IORING_SETUP_SQ_AFF : 0);
	p.cq_entries = m->cq_entries;
	p.sq_thread_cpu = m->has_sq_cpu ? m->sq_cpu : 0;
	int ret = 0;
	if (!u->rs) {
		/* the restore child, the task itself */
		u->ofd = (int)syscall(SYS_io_uring_setup, m->sq_entries, &p);
		if (u->ofd < 0)
			return pr_perror("restore: io_uring_setup of %u entries, flags %#x (a kernel "
					 "without one of them?)", m->sq_entries, p.flags);
	} else {
		uint64_t at = u->owner->rs.scratch;
		ret = rsys_poke(u->rs, at, &p, sizeof(p));
		if (ret)
			return ret;
		long fd = 0;
		int err = rsys_call(u->rs, SYS_io_uring_setup, m->sq_entries, at, 0, 0, 0, 0, &fd);
		if (err)
			return err;
		if (fd < 0)
			return pr_errno((int)fd, "restore: io_uring_setup of %u entries, flags %#x "
					"(a kernel without one of them?)", m->sq_entries, p.flags);
		u->ofd = (int)fd;
		ret = rsys_peek(u->rs, at, &p, sizeof(p));
		if (ret)
			return ret;
	}
	if (p.sq_entries != m->sq_entries || p.cq_entries != m->cq_entries ||
	    p.sq_off.head != R_SQ_HEAD || p.sq_off.tail != R_SQ_TAIL ||
	    p.cq_off.head != R_CQ_HEAD || p.cq_off.tail != R_CQ_TAIL ||
	    p.sq_off.dropped != R_SQ_DROPPED || p.cq_off.overflow != R_CQ_OVERFLOW ||
	    p.cq_off.flags != R_CQ_FLAGS || p.cq_off.cqes != R_CQES ||
	    (p.sq_off.array && p.sq_off.array != u->array_off)) {
		pr_err("restore: an io_uring made here has another layout (%u/%u entries, CQEs at "
		       "%u, SQ array at %u)", p.sq_entries, p.cq_entries, p.cq_off.cqes,
		       p.sq_off.array);
		return -EINVAL;
	}
	if (!u->rs) {
		u->fd = dup(u->ofd);
	} else {
		_cleanup_close_ int pfd = sys_pidfd_open(u->owner->pid, 0);
		u->fd = pfd < 0 ? -1 : sys_pidfd_getfd(pfd, u->ofd, 0);
	}
	if (u->fd < 0)
		return pr_perror("restore: take an io_uring just made");
	u->ring = mmap(NULL, u->ring_len, PROT_READ | PROT_WRITE, MAP_SHARED, u->fd,
		       IORING_OFF_SQ_RING);
	u->sqes = mmap(NULL, u->sqes_len, PROT_READ | PROT_WRITE, MAP_SHARED, u->fd,
		       IORING_OFF_SQES);
	if (u->ring == MAP_FAILED || u->sqes == MAP_FAILED)
		return pr_perror("restore: map an io_uring");
	return 0;
}

/* Are the NOPs the issuer's remote calls (a single issuer's ring made in the final
 * stage; a SQPOLL thread takes its own)? */
static bool made_remote(const struct uring_made *u)
{
	return u->rs && (u->m->flags & IORING_SETUP_SINGLE_ISSUER) &&
	       !(u->m->flags & IORING_SETUP_SQPOLL);
}

/* NOPs until the kernel took sq_head SQEs and posted as many CQEs. */
static int made_advance(struct uring_made *u)
{
	const IoUringData *m = u->m;
	volatile uint32_t *sqh = (uint32_t *)(u->ring + R_SQ_HEAD),
			  *sqt = (uint32_t *)(u->ring + R_SQ_TAIL),
			  *cqh = (uint32_t *)(u->ring + R_CQ_HEAD),
			  *cqt = (uint32_t *)(u->ring + R_CQ_TAIL);
	uint32_t *array = m->has_sq_array ? (uint32_t *)(u->ring + u->array_off) : NULL;
	uint32_t done = 0, mask = m->sq_entries - 1;
	bool remote = made_remote(u);
	unsigned int fl = IORING_ENTER_GETEVENTS |
			  ((m->flags & IORING_SETUP_SQPOLL) ? IORING_ENTER_SQ_WAKEUP : 0);
	while (done != m->sq_head) {
		uint32_t n = m->sq_head - done < m->sq_entries ? m->sq_head - done : m->sq_entries;
		for (uint32_t k = 0; k < n; k++) {
			uint32_t i = (done + k) & mask;
			memset(u->sqes + i * u->sqe_size, 0, u->sqe_size);
			u->sqes[i * u->sqe_size] = IORING_OP_NOP;
			if (array)
				array[i] = i;
		}
		__atomic_store_n(sqt, done + n, __ATOMIC_RELEASE);
		uint64_t until = now_ns() + 2000000000ull;
		/* (a SQPOLL thread moves the SQ head after the CQEs are posted) */
		for (int tries = 0; __atomic_load_n(cqt, __ATOMIC_ACQUIRE) != done + n ||
				    __atomic_load_n(sqh, __ATOMIC_ACQUIRE) != done + n;
		     tries++) {
			long r;
			if (tries > 16 && now_ns() > until) {
				pr_err("restore: an io_uring takes no NOPs (%u of %u)", done,
				       m->sq_head);
				return -EIO;
			}
			if (tries > 16)
				usleep(100);
			if (remote)
				r = rcall(u->rs, SYS_io_uring_enter, (uint64_t)u->ofd, n, n, fl);
			else
				r = syscall(SYS_io_uring_enter, u->fd, n, n, fl, NULL, 0) < 0 ? -errno
											  : 0;
			if (r < 0 && r != -EINTR && r != -EAGAIN && r != -EBUSY)
				return pr_errno((int)r, "restore: io_uring_enter");
		}
		if (*sqh != done + n) {
			pr_err("restore: an io_uring's SQ head is %u, %u expected", *sqh, done + n);
			return -EIO;
		}
		done += n;
		*cqh = done;
	}
	return 0;
}

/* The dumped memory of the rings, the SQ tail last. */
static void made_fill(struct uring_made *u)
{
	const IoUringData *m = u->m;
	memcpy(u->sqes, m->sqes.data, m->sqes.len);
	if (m->has_sq_array)
		memcpy(u->ring + u->array_off, m->sq_array.data, m->sq_array.len);
	memcpy(u->ring + R_CQES, m->cqes.data, m->cqes.len);
	uint32_t *w = (uint32_t *)u->ring;
	w[R_SQ_DROPPED / 4] = m->sq_dropped;
	w[R_CQ_OVERFLOW / 4] = m->cq_overflow;
	w[R_CQ_FLAGS / 4] = m->cq_flags;
	__atomic_store_n(&w[R_CQ_HEAD / 4], m->cq_head, __ATOMIC_RELEASE);
	__atomic_store_n(&w[R_SQ_TAIL / 4], m->sq_tail, __ATOMIC_RELEASE);
}

/* Registered buffers (an empty slot of a sparse table as an empty iovec) and the sparse
 * file table, by the owner. */
static int made_register(struct uring_made *u)
{
	const IoUringData *m = u->m;
	uint64_t at = u->owner->rs.scratch;
	if (m->n_bufs) {
		if (m->n_bufs > u->owner->rs.scratch_len / sizeof(struct iovec)) {
			pr_err("restore: %zu registered buffers of an io_uring: too many",
			       m->n_bufs);
			return -E2BIG;
		}
		_cleanup_free_ struct iovec *iov = calloc(m->n_bufs, sizeof(*iov));
		if (!iov)
			return -ENOMEM;
		for (size_t i = 0; i < m->n_bufs; i++)
			iov[i] = (struct iovec){ (void *)(uintptr_t)m->bufs[i]->addr,
						 (size_t)m->bufs[i]->len };
		int ret = rsys_poke(u->rs, at, iov, m->n_bufs * sizeof(*iov));
		long r = ret ? ret
			     : rsys_do(u->rs, "restore: register io_uring buffers",
				       SYS_io_uring_register, (uint64_t)u->ofd,
				       IORING_REGISTER_BUFFERS, at, m->n_bufs, 0, 0);
		if (r < 0)
			return (int)r;
	}
	if (m->has_files) {
		struct io_uring_rsrc_register rr = { .nr = m->files,
						     .flags = IORING_RSRC_REGISTER_SPARSE };
		int ret = rsys_poke(u->rs, at, &rr, sizeof(rr));
		long r = ret ? ret
			     : rsys_do(u->rs, "restore: register an io_uring file table",
				       SYS_io_uring_register, (uint64_t)u->ofd,
				       IORING_REGISTER_FILES2, at, sizeof(rr), 0, 0);
		if (r < 0)
			return (int)r;
	}
	return 0;
}

static void made_init(struct uring_made *u, const IoUringData *m)
{
	memset(u, 0, sizeof(*u));
	u->m = m;
	u->ofd = u->fd = -1;
	u->sqe_size = (m->flags & IORING_SETUP_SQE128) ? 128 : 64;
	u->cqe_size = (m->flags & IORING_SETUP_CQE32) ? 32 : 16;
	u->array_off = array_offset(m->cq_entries, u->cqe_size);
	u->ring_len = m->has_sq_array ? u->array_off + (size_t)m->sq_entries * 4
				      : R_CQES + (size_t)m->cq_entries * u->cqe_size;
	u->sqes_len = (size_t)m->sq_entries * u->sqe_size;
}

/* Made, its counters and rings as dumped, its status flags set; stasis's fd and maps
 * gone. 0 or a logged -errno (u->ofd then to close by the caller). */
static int made_build(struct uring_made *u, const FileDesc *d)
{
	uint64_t t0 = now_ns();
	int ret = made_setup(u);
	if (!ret)
		ret = made_advance(u);
	if (!ret)
		pr_info("restore: an io_uring of %u entries brought to %u NOPs in %.3f ms (%s)",
			u->m->sq_entries, u->m->sq_head, (double)(now_ns() - t0) / 1e6,
			!u->rs ? "by the task" : made_remote(u) ? "remote calls" : "by stasis");
	if (!ret)
		made_fill(u);
	if (!ret && fcntl(u->fd, F_SETFL, (int)(d->flags & SETFL_MASK)) < 0)
		ret = pr_perror("restore: status flags of an io_uring");
	if (u->ring && u->ring != MAP_FAILED)
		munmap(u->ring, u->ring_len);
	if (u->sqes && u->sqes != MAP_FAILED)
		munmap(u->sqes, u->sqes_len);
	if (u->fd >= 0)
		close(u->fd);
	u->ring = u->sqes = NULL;
	u->fd = -1;
	return ret;
}

/* Made by the restore child, which is its owner: not a SQPOLL ring (its thread would
 * take a pid the tree may need), not a single issuer's other thread, not in stasis
 * (@target -1: a task of a user namespace, whose files stasis opens). Otherwise a
 * placeholder, made in the final stage. The child makes it at native speed: NOPs cost a
 * syscall per ring's worth, where the final stage's single issuer takes a remote call. */
static int uring_open(const FileDesc *d, int target, int rootfd, const struct blob_reader *blobs)
{
	const IoUringData *m = d->io_uring;
	if (target < 0 || (m->flags & IORING_SETUP_SQPOLL) || m->by_thread)
		return fd_final_placeholder(d, target, rootfd, blobs);
	struct uring_made u;
	made_init(&u, m);
	int ret = made_build(&u, d);
	if (ret) {
		if (u.ofd >= 0)
			close(u.ofd);
		return ret;
	}
	return u.ofd; /* (close-on-exec: the kernel makes every io_uring fd so) */
}

/* @u for description @d of task @c, its owner's engine found (a thread of @c). */
static int made_owner(struct uring_made *u, struct rst_ctx *c, const FileDesc *d)
{
	made_init(u, d->io_uring);
	u->rs = rst_find_thread(c, d->io_uring->owner, &u->owner);
	if (u->rs && u->owner == c)
		return 0;
	pr_err("restore: the io_uring of pid %d is made by task %d, not one of its threads",
	       c->pid, d->io_uring->owner);
	return -EINVAL;
}

/* Make description @d of task @c in its owner (a thread of @c): the owner's fd, or a
 * logged -errno. */
static int make_uring(struct rst_ctx *c, const FileDesc *d)
{
	struct uring_made u;
	int ret = made_owner(&u, c, d);
	if (ret)
		return ret;
	ret = made_build(&u, d);
	if (!ret)
		ret = made_register(&u);
	if (ret && u.ofd >= 0)
		rsys_do(u.rs, "restore: close", SYS_close, (uint64_t)u.ofd, 0, 0, 0, 0, 0);
	return ret ? ret : u.ofd;
}

/* A ring the restore child made (at fd @fd of @c): what needs its memory, now there. */
static int register_made(struct rst_ctx *c, const FileDesc *d, int fd)
{
	struct uring_made u;
	int ret = made_owner(&u, c, d);
	if (ret)
		return ret;
	u.ofd = fd;
	return made_register(&u);
}

/* The fd of task @c that is the ring of inode @ino at dump, or -1. */
static int fd_of_ring(const struct rst_ctx *c, uint64_t ino)
{
	for (size_t i = 0; i < c->files->n_files; i++) {
		const FileDesc *d = c->files->files[i];
		if (d->kind == FILE_KIND__FILE_IO_URING && d->ino == ino)
			return fd_desc_fd(c->files, i);
	}
	return -1;
}

/* Description @i of @c made and put at its fd numbers (over the placeholder). */
static int give_uring(struct rst_ctx *c, size_t i)
{
	const Files *f = c->files;
	int ofd = make_uring(c, f->files[i]);
	long r = ofd;
	for (size_t k = 0; k < f->n_fds && r >= 0; k++) {
		const Fd *x = f->fds[k];
		if (x->file_id == f->files[i]->id && x->fd != ofd)
			r = rsys_do(&c->rs, "restore: place an io_uring", SYS_dup3, (uint64_t)ofd,
				    (uint64_t)x->fd, x->cloexec ? O_CLOEXEC : 0, 0, 0, 0);
	}
	if (ofd < 0)
		return ofd;
	long rc = rsys_do(&c->rs, "restore: close", SYS_close, (uint64_t)ofd, 0, 0, 0, 0, 0);
	int ret = r < 0 ? (int)r : rc < 0 ? (int)rc : 0;
	for (size_t k = 0; k < f->n_fds && !ret; k++)
		if (f->fds[k]->file_id == f->files[i]->id)
			ret = fd_final_rewatch(c, f->fds[k]->fd);
	return ret;
}

/* ---- the areas mapping the rings ----------------------------------------------------
 *
 * The kernel maps an io_uring region only where it chooses (io_uring_get_unmapped_area
 * refuses an address: MAP_FIXED and mremap fail with EINVAL). It chooses the highest hole
 * big enough below mmap_base, else the lowest above the legacy base: with every other hole
 * of the task filled for a moment (PROT_NONE, nothing reserved), the one hole left is
 * the area's. */

#define MAP_LO 0x10000ULL          /* above any mmap_min_addr */
#define MAP_HI 0x7ffffffff000ULL   /* the default 47-bit mmap window */

struct span {
	uint64_t start, end;
};

/* [@lo, @hi) less the spans of @keep (n_keep, sorted) appended to *@h (*@n of *@cap). */
static int add_hole(struct span **h, size_t *n, size_t *cap, uint64_t lo, uint64_t hi,
		    const struct span *keep, size_t n_keep)
{
	for (size_t k = 0; k <= n_keep && lo < hi; k++) {
		uint64_t stop = hi;
		if (k < n_keep) {
			if (keep[k].end <= lo || keep[k].start >= hi)
				continue;
			stop = keep[k].start;
		}
		if (stop > lo) {
			if (*n == *cap) {
				struct span *g = realloc(*h, (*cap *= 2) * sizeof(**h));
				if (!g)
					return -ENOMEM;
				*h = g;
			}
			(*h)[(*n)++] = (struct span){ lo, stop };
		}
		if (k < n_keep)
			lo = keep[k].end;
	}
	return 0;
}

/* The holes of @c's address space in [MAP_LO, MAP_HI), but @keep (n_keep, sorted). */
static int holes_of(struct rst_ctx *c, const struct span *keep, size_t n_keep,
		    struct span **out, size_t *n_out)
{
	char name[32];
	snprintf(name, sizeof(name), "%d/maps", c->pid);
	_cleanup_free_ char *buf = read_file_at(c->proc_dfd, name, 1 << 24, NULL);
	if (!buf)
		return pr_perror("restore: read /proc/%d/maps", c->pid);
	size_t n = 0, cap = 64;
	struct span *h = malloc(cap * sizeof(*h));
	uint64_t at = MAP_LO;
	int ret = h ? 0 : -ENOMEM;
	for (const char *p = buf; !ret && at < MAP_HI;) {
		unsigned long long s0 = MAP_HI, e0 = MAP_HI;
		if (*p && sscanf(p, "%llx-%llx", &s0, &e0) != 2) {
			pr_err("restore: /proc/%d/maps: malformed", c->pid);
			ret = -EINVAL;
			break;
		}
		ret = add_hole(&h, &n, &cap, at, s0 < MAP_HI ? s0 : MAP_HI, keep, n_keep);
		if (e0 > at)
			at = e0;
		const char *nl = *p ? strchr(p, '\n') : NULL;
		if (!nl)
			break;
		p = nl + 1;
	}
	if (ret) {
		free(h);
		return ret;
	}
	*out = h;
	*n_out = n;
	return 0;
}

static int fill(struct rst_ctx *c, const struct span *s, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		long r = rsys_do(&c->rs, "restore: fill a hole for an io_uring", SYS_mmap,
				 s[i].start, s[i].end - s[i].start, PROT_NONE,
				 MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_FIXED_NOREPLACE,
				 (uint64_t)-1, 0);
		if (r < 0)
			return (int)r;
	}
	return 0;
}

static void unfill(struct rst_ctx *c, const struct span *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		rsys_do(&c->rs, "restore: unfill", SYS_munmap, s[i].start, s[i].end - s[i].start,
			0, 0, 0, 0);
}

/* The rings' areas of @c (their reservations made in the layout), mapped from their
 * io_urings, the highest first. */
static int map_rings(struct rst_ctx *c)
{
	size_t n = 0;
	for (size_t i = 0; c->mm && i < c->mm->n_vmas; i++)
		n += c->mm->vmas[i]->kind == VMA_KIND__VMA_IO_URING;
	if (!n)
		return 0;
	_cleanup_free_ struct span *t = calloc(n, sizeof(*t));
	_cleanup_free_ const Vma **tv = calloc(n, sizeof(*tv));
	if (!t || !tv)
		return -ENOMEM;
	n = 0;
	for (size_t i = 0; i < c->mm->n_vmas; i++)
		if (c->mm->vmas[i]->kind == VMA_KIND__VMA_IO_URING) {
			tv[n] = c->mm->vmas[i];
			t[n] = (struct span){ tv[n]->start, tv[n]->end };
			n++;
		}
	for (size_t i = 0; i < n; i++) {
		long r = rsys_do(&c->rs, "restore: free an io_uring's area", SYS_munmap, t[i].start,
				 t[i].end - t[i].start, 0, 0, 0, 0);
		if (r < 0)
			return (int)r;
	}
	struct span *h = NULL;
	size_t nh = 0;
	int ret = holes_of(c, t, n, &h, &nh);
	if (!ret)
		ret = fill(c, h, nh);
	/* the highest first; the others' areas filled meanwhile */
	for (size_t i = n; i-- > 0 && !ret;) {
		const Vma *v = tv[i];
		int fd = fd_of_ring(c, v->ino);
		if (fd < 0) {
			pr_err("restore: pid %d maps an io_uring it holds no fd of", c->pid);
			ret = -EINVAL;
			break;
		}
		ret = fill(c, t, i);
		long r = ret ? ret
			     : rsys_do(&c->rs, "restore: map an io_uring ring", SYS_mmap, 0,
				       v->end - v->start, v->prot, MAP_SHARED, (uint64_t)fd,
				       v->pgoff);
		unfill(c, t, i);
		if (r >= 0 && (uint64_t)r != v->start) {
			pr_err("restore: pid %d: the rings of its fd %d (offset %#llx) came at %lx, "
			       "not %llx", c->pid, fd, (unsigned long long)v->pgoff, r,
			       (unsigned long long)v->start);
			rsys_do(&c->rs, "restore: unmap", SYS_munmap, (uint64_t)r, v->end - v->start,
				0, 0, 0, 0);
			r = -EFAULT;
		}
		ret = r < 0 ? (int)r : 0;
	}
	unfill(c, h, nh);
	free(h);
	return ret;
}

static int uring_final(struct rst_ctx *c)
{
	const Files *f = c->files;
	int ret = 0;
	if (!f || c->shares_files)
		return 0;
	for (size_t i = 0; i < f->n_files && !ret; i++) {
		const FileDesc *d = f->files[i];
		int fd = fd_desc_fd(f, i);
		char name[64], link[64];
		if (d->kind != FILE_KIND__FILE_IO_URING || fd < 0)
			continue;
		snprintf(name, sizeof(name), "%d/fd/%d", c->pid, fd);
		ssize_t n = readlinkat(c->proc_dfd, name, link, sizeof(link) - 1);
		link[n > 0 ? n : 0] = 0;
		/* made by the restore child, or a placeholder until now */
		ret = !strcmp(link, URING_LINK) ? register_made(c, d, fd) : give_uring(c, i);
	}
	return ret ? ret : map_rings(c);
}

const struct fd_ops fd_io_uring_ops = {
	.name = "io_uring",
	.kind = FILE_KIND__FILE_IO_URING,
	.flags = FD_OPS_OWN_FDINFO,
	.classify = uring_classify,
	.group = uring_group,
	.dump = uring_dump,
	.merge = uring_merge,
	.validate = uring_validate,
	.open = uring_open,
	.final = uring_final,
};
