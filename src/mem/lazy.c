/* Lazy restore (`restore --lazy-pages`): the tree runs before its memory is complete.
 * This file is the page server; stasis's side (which runs are lazy, the userfaultfds made
 * and handed over) is lazy_start.c.
 *
 * Which pages are lazy: a process's page runs inside its private anonymous areas (heap,
 * stack, anonymous mappings), its own and those of an incremental image that lie in
 * parent images (served from the parents' pages files, mapped before the server is
 * forked, as part of the parent's run holding them, whose pieces are verified as they
 * are served: rst_ctx.pruns, src/mem/chain.c). Everything else (runs shared copy-on-write with the parent,
 * file-backed private pages) is filled at once as in a full restore (src/mem/pages.c),
 * before the areas are registered.
 *
 * The page server. Before any task is rebuilt stasis forks a small process, the page
 * server (comm "stasis-lazy", its own session), that has every process's page index
 * and pages file mapped (inherited) and nothing else. While stasis rebuilds each
 * process, the task creates a userfaultfd with a remote syscall (a userfaultfd belongs to
 * the mm of its creator; created while the task still has the restorer's credentials:
 * faults in kernel mode, a read() into a lazy buffer, need CAP_SYS_PTRACE or
 * vm.unprivileged_userfaultfd=1, and UFFD_USER_MODE_ONLY would make such a syscall fail
 * with EFAULT: that is refused, never served), stasis takes it (pidfd_getfd), closes the
 * task's fd, negotiates the non-cooperative events (fork, remove, unmap, remap) and
 * registers the lazy areas (MODE_MISSING), then hands the userfaultfd and a pidfd of the
 * task to the server over a socket. The server serves from that moment: the rest of the
 * restore (rseq registration, clone3 of the threads...) may itself touch lazy pages.
 *
 * Serving (one loop, epoll over every userfaultfd). Each process has the set of ranges
 * whose data is still to come (address, run, offset into the run): a fault inside one
 * copies the 64 KiB around it (UFFDIO_COPY, straight from the mapped pages file, or from
 * the piece cache where the 2 MiB pieces of a source that cannot map are read:
 * compressed files, a page server; a run of sequential faults more, see lz_fault, and
 * once such a run reaches 2 MiB steps the next 2 MiB are copied while the task reads
 * the chunk it was woken for: lz_ahead), a fault outside every range gets a zero page
 * (a page that never existed, or one the task dropped); between events (and not within
 * 2 ms of a fault: they come in bursts) a background pass copies the ranges in order,
 * 512 KiB at a time (of an incremental image, the pages written since the previous pass
 * first: its own runs, the hot set write tracking found; this kernel has no accessed-bit
 * source for a plain dump), and a second thread copies from the top down (mapped runs:
 * "the second copier" below). Each 2 MiB piece of a run is verified (PageRun.piece_xxh,
 * or the whole run for an image without them) before any of its bytes is handed over; a
 * mismatch kills every process of the tree (SIGKILL through the pidfds) with one line: a process never runs
 * on with wrong memory. The task's own changes to its layout come as events and edit the
 * ranges: MADV_DONTNEED/REMOVE and munmap drop them (a dropped page is not copied back
 * over what the task wrote later), mremap moves them, fork gives a new userfaultfd for
 * the child with a copy of the parent's ranges. A copy refused with EAGAIN (the layout
 * is changing: an event not read yet) is retried after reading the events. A process
 * that exits (or execs) makes its copies fail with ESRCH: it is dropped.
 *
 * A process whose ranges are all served is let go: its userfaultfd is closed, which
 * drops the registration. The server exits when every process is done or gone. stasis
 * itself returns (or waits for the root) as after a full restore. If stasis fails or
 * dies before the tree runs (the socket closes without "done"), the server kills the
 * tree and exits; a failed restore kills the server. */
#include "mem/internal.h"
#include "mem/lazy_int.h"

#include <fcntl.h>
#include <linux/userfaultfd.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <xxhash.h>

#include "core/log.h"
#include "core/util.h"
#include "sys/syscalls.h"

#define LAZY_COMM "stasis-lazy"
#define FAULT_CHUNK (64u << 10)
#define FAULT_CHUNK_MAX (2u << 20) /* a run of sequential faults doubles up to this */
#define SEQ_GAP (4u << 20) /* pages there already that a task reading in order may pass */
#define BG_CHUNK (512u << 10)
#define REST_STEP (256u << 10)
#define BG_PAUSE_NS 2000000ull /* no background copy this long after a fault */

/* ------------------------------------------------------------------ the server */

struct lz_run {
	const PageRun *r;
	const char *data; /* the mapped run; NULL: read from src through the piece cache */
	uint8_t *ok;      /* per piece: verified (a mapped run) */
	struct page_source *src; /* a source that cannot map: a compressed file, a page server */
	bool hot; /* of an incremental image, its own: written since the previous pass */
};

/* Pieces of runs the source cannot map are read into a few buffers of the server, reused
 * (the pieces of a fault or a background chunk, verified as they arrive, copied into the
 * task, then kept until the buffer is wanted for others): the server's memory stays a
 * few MiB whatever the size of the tree, where a buffer as large as each run doubled the
 * memory a lazy restore needed and its first touch (page faults, zeroing) cost as much
 * as the transfer (measured: 1 GiB from a page server, all in 2.1-2.8 s against 0.9 s
 * for a full restore). A request reads up to load_window pieces at once: LOAD_PIECES
 * for the background pass and a task reading in order (one round trip to a page server
 * for 8 MiB instead of four), one for any other fault (the task waits: 2 MiB come back
 * sooner than 8). A piece evicted before all of it was copied is read again when needed
 * (verified again: what a source sends twice is checked twice). */
#define LOAD_PIECES 4
#define PC_SLOTS 4
static size_t load_window = 1; /* LOAD_PIECES during a background copy */
struct pc_slot {
	const struct lz_run *lr; /* NULL: empty */
	size_t k0, n;            /* pieces [k0, k0 + n) of lr */
	uint64_t used;           /* the last use (least recently used goes first) */
	char *buf;               /* LOAD_PIECES pieces */
	bool asked;              /* asked for ahead (page_source_prefetch), not read yet */
};
static struct pc_slot pcache[PC_SLOTS];
static uint64_t pc_clock;
/* The bytes around a fault alone, without their piece (page_source_read_checked: a page
 * server hashes the piece and sends the 64 KiB with its checksum): a task touching its
 * memory here and there waits for 64 KiB, not 2 MiB (measured at 64 and 512 MiB from a
 * page server, 16 such faults before the first answer: running in 44 / 41 ms with whole
 * pieces, 16.6 / 19.1 ms so). A second fault in the same piece takes the whole piece.
 * Verified bytes of the image: kept until the next such fault. */
static struct {
	const struct lz_run *lr; /* NULL: none */
	uint64_t off, len;       /* bytes [off, off + len) of lr's run */
	char buf[FAULT_CHUNK + 16];
} win;

/* Does the window hold byte @off of @lr's run? */
static bool win_has(const struct lz_run *lr, uint64_t off)
{
	return win.lr == lr && off >= win.off && off < win.off + win.len;
}

struct lz_img {
	pid_t pid;
	struct lz_run *runs;
	size_t nr;
	bool mapped; /* some run is mapped: the second copier can take it */
};

struct ival {
	uint64_t addr, len;
	uint32_t run;
	uint64_t off;
};

struct lz_proc {
	struct lz_img *img;
	int uffd;
	uint64_t faults, copied, t0; /* for the log */
	uint64_t seq_next; /* where the last fault's copy ended: a fault there is sequential */
	uint64_t seq_chunk; /* what a sequential fault copies (doubling) */
	bool forked;
	bool hot_done;     /* the background pass is past the hot runs (or there are none) */
	uint64_t hot_from; /* where it looks for the next hot range */
	struct ival *iv;
	size_t niv, cap;
	uint64_t *pend; /* faults read, not served yet */
	size_t npend, pcap;
	/* the rest of the pieces the last fault read from a source that cannot map, copied
	 * between faults while they are in the cache (rest_e == rest_s: none) */
	uint32_t rest_run;
	uint64_t rest_s, rest_e;
	struct lz_proc *next;
};

struct lz_srv {
	struct rst_ctx *const *procs;
	size_t n;
	struct lz_img *imgs; /* by index of procs, pid 0: not added */
	struct lz_proc *live;
	int ep, sock;
	bool done; /* stasis said the tree runs */
	uint64_t quiet_until; /* faults come in bursts: the background pass waits */
};

/* pidfds of the tree's processes, for the kill (also from the SIGBUS handler) */
static int kill_fds[4096];
static volatile size_t n_kill_fds;

static void kill_tree(void)
{
	for (size_t i = 0; i < n_kill_fds; i++)
		sys_pidfd_send_signal(kill_fds[i], SIGKILL, NULL, 0);
}

static int srv_sock = -1; /* to stasis, while it restores */

/* The tree runs and stasis may be gone: the server's last word goes to the log and, as
 * stasis's own would, as one line to stderr. While stasis is still restoring it also goes
 * to stasis, whose restore fails with it as its last word (lazy_reason). */
static void __attribute__((noreturn, format(printf, 1, 2))) srv_die(const char *fmt, ...)
{
	char msg[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	/* stasis told first: it sees the tree die next, fails and reads this */
	bool told = srv_sock >= 0 &&
		    send(srv_sock, msg, strlen(msg), MSG_DONTWAIT | MSG_NOSIGNAL) > 0;
	kill_tree();
	pr_err("%s", msg);
	if (!told && (log_get_fd() != 2 || log_get_level() < LOG_ERR))
		dprintf(2, "stasis: %s\n", msg);
	_exit(1);
}

static void __attribute__((noreturn)) srv_fatal(int err, const char *what)
{
	srv_die("restore --lazy-pages: %s: %s: the restored tree was killed", what,
		strerror(-err));
}

static void on_sigbus(int sig)
{
	static const char msg[] = "stasis: restore --lazy-pages: the pages file could not be "
				  "read (truncated?): the restored tree was killed\n";
	(void)sig;
	kill_tree();
	if (write(2, msg, sizeof(msg) - 1) < 0)
		_exit(1);
	_exit(1);
}

/* The first range ending after @addr, or niv. */
static size_t iv_lower(const struct lz_proc *p, uint64_t addr)
{
	size_t lo = 0, hi = p->niv;
	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		if (p->iv[mid].addr + p->iv[mid].len <= addr)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

static int iv_insert(struct lz_proc *p, size_t at, const struct ival *v)
{
	if (p->niv == p->cap) {
		size_t cap = p->cap ? p->cap * 2 : 16;
		struct ival *n = realloc(p->iv, cap * sizeof(*n));
		if (!n)
			return -ENOMEM;
		p->iv = n;
		p->cap = cap;
	}
	memmove(p->iv + at + 1, p->iv + at, (p->niv - at) * sizeof(*p->iv));
	p->iv[at] = *v;
	p->niv++;
	return 0;
}

/* Drop [@s, @e) from the ranges still to come. */
static int iv_cut(struct lz_proc *p, uint64_t s, uint64_t e)
{
	size_t i = iv_lower(p, s);
	while (i < p->niv && p->iv[i].addr < e) {
		struct ival v = p->iv[i];
		uint64_t ve = v.addr + v.len;
		if (v.addr < s && ve > e) { /* split */
			p->iv[i].len = s - v.addr;
			struct ival r = { e, ve - e, v.run, v.off + (e - v.addr) };
			return iv_insert(p, i + 1, &r);
		}
		if (v.addr < s) {
			p->iv[i++].len = s - v.addr;
		} else if (ve > e) {
			p->iv[i] = (struct ival){ e, ve - e, v.run, v.off + (e - v.addr) };
			i++;
		} else {
			memmove(p->iv + i, p->iv + i + 1, (p->niv - i - 1) * sizeof(*p->iv));
			p->niv--;
		}
	}
	return 0;
}

/* mremap moved [@from, @from + @len) to @to: the ranges inside move with it. */
static int iv_move(struct lz_proc *p, uint64_t from, uint64_t to, uint64_t len)
{
	size_t i = iv_lower(p, from), n = 0;
	struct ival *moved = calloc(p->niv + 1, sizeof(*moved));
	if (!moved)
		return -ENOMEM;
	for (; i < p->niv && p->iv[i].addr < from + len; i++) {
		struct ival v = p->iv[i];
		uint64_t s = MAX(v.addr, from), e = MIN(v.addr + v.len, from + len);
		moved[n++] = (struct ival){ s - from + to, e - s, v.run, v.off + (s - v.addr) };
	}
	int ret = iv_cut(p, from, from + len) ?: iv_cut(p, to, to + len);
	for (size_t k = 0; k < n && !ret; k++)
		ret = iv_insert(p, iv_lower(p, moved[k].addr), &moved[k]);
	free(moved);
	return ret;
}

static void __attribute__((noreturn)) bad_pages(const struct lz_img *img, const PageRun *r)
{
	srv_die("restore --lazy-pages: pid %d: pages at %llx-%llx: checksum mismatch (pages "
		"image corrupted): the restored tree was killed",
		img->pid, (unsigned long long)r->vaddr,
		(unsigned long long)(r->vaddr + r->nr_pages * PAGE_SIZE));
}

static size_t run_pieces(const PageRun *r)
{
	return (size_t)((r->nr_pages * PAGE_SIZE + HASH_PIECE - 1) / HASH_PIECE);
}

/* Piece @k of run @r, @plen bytes at @data, is what was dumped: its own checksum, or the
 * run's for a run of one piece (the only runs without piece checksums in an image that
 * passed validation, but for a mapped run of an older image: verify_mapped). */
static bool piece_hash_good(const PageRun *r, size_t k, uint64_t ph)
{
	if (r->n_piece_xxh == run_pieces(r))
		return ph == r->piece_xxh[k];
	return run_pieces(r) == 1 && XXH3_64bits(&ph, sizeof(ph)) == r->xxh64;
}

static bool piece_good(const PageRun *r, size_t k, const char *data, uint64_t plen)
{
	return piece_hash_good(r, k, XXH3_64bits(data, plen));
}

/* Piece @k of mapped run @lr verified before any of its bytes is served. */
static int verify_mapped(const struct lz_img *img, struct lz_run *lr, size_t k)
{
	const PageRun *r = lr->r;
	uint64_t rlen = r->nr_pages * PAGE_SIZE;
	size_t np = run_pieces(r);
	if (__atomic_load_n(&lr->ok[k], __ATOMIC_ACQUIRE)) /* (the helper verifies too) */
		return 0;
	if (r->n_piece_xxh == np || np == 1) {
		if (!piece_good(r, k, lr->data + (uint64_t)k * HASH_PIECE,
				MIN((uint64_t)HASH_PIECE, rlen - (uint64_t)k * HASH_PIECE)))
			bad_pages(img, r);
		__atomic_store_n(&lr->ok[k], 1, __ATOMIC_RELEASE);
		return 0;
	}
	/* no piece checksums: the whole run at once */
	XXH3_state_t *acc = XXH3_createState();
	if (!acc)
		return -ENOMEM;
	XXH3_64bits_reset(acc);
	for (size_t q = 0; q < np; q++) {
		uint64_t plen = MIN((uint64_t)HASH_PIECE, rlen - q * HASH_PIECE);
		uint64_t ph = XXH3_64bits(lr->data + q * HASH_PIECE, plen);
		XXH3_64bits_update(acc, &ph, sizeof(ph));
	}
	bool good = XXH3_64bits_digest(acc) == r->xxh64;
	XXH3_freeState(acc);
	if (!good)
		bad_pages(img, r);
	memset(lr->ok, 1, np);
	return 0;
}

/* The slot holding (or asked for) piece @k of @lr, or NULL. */
static struct pc_slot *pc_find(const struct lz_run *lr, size_t k)
{
	for (size_t i = 0; i < PC_SLOTS; i++)
		if (pcache[i].lr == lr && pcache[i].k0 <= k && k < pcache[i].k0 + pcache[i].n)
			return &pcache[i];
	return NULL;
}

/* The least recently used slot but @not, with its buffer. */
static struct pc_slot *pc_victim(const struct pc_slot *not)
{
	struct pc_slot *sl = NULL;
	for (size_t i = 0; i < PC_SLOTS; i++)
		if (&pcache[i] != not && (!sl || pcache[i].used < sl->used))
			sl = &pcache[i];
	if (!sl->buf) {
		void *m = mmap(NULL, (size_t)LOAD_PIECES * HASH_PIECE, PROT_READ | PROT_WRITE,
			       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		if (m == MAP_FAILED) {
			pr_perror("restore --lazy-pages: memory for the pieces read");
			return NULL;
		}
		sl->buf = m;
	}
	sl->lr = NULL;
	return sl;
}

/* Pieces after @k of @lr not held yet, up to @max with @k. */
static size_t pc_span(const struct lz_run *lr, size_t k, size_t max)
{
	size_t n = 1, np = run_pieces(lr->r);
	while (n < max && k + n < np && !pc_find(lr, k + n))
		n++;
	return n;
}

/* Slot @sl holds pieces [@k, @k + @n) of @lr once read (and verified). */
static int pc_fill(const struct lz_img *img, const struct lz_run *lr, struct pc_slot *sl,
		   size_t k, size_t n)
{
	const PageRun *r = lr->r;
	uint64_t off = (uint64_t)k * HASH_PIECE;
	uint64_t len = MIN((uint64_t)n * HASH_PIECE, r->nr_pages * PAGE_SIZE - off);
	sl->lr = NULL;
	sl->asked = false;
	int ret = page_source_read(lr->src, r, off, sl->buf, len);
	if (ret)
		return ret;
	for (size_t q = 0; q < n; q++)
		if (!piece_good(r, k + q, sl->buf + q * HASH_PIECE,
				MIN((uint64_t)HASH_PIECE, len - q * HASH_PIECE)))
			bad_pages(img, r);
	*sl = (struct pc_slot){ lr, k, n, ++pc_clock, sl->buf, false };
	return 0;
}

/* The pieces from @k of @lr asked for ahead into a slot other than @cur, if not held: a
 * page server sends them while the pieces of @cur are copied. */
static void pc_ahead(const struct lz_run *lr, size_t k, const struct pc_slot *cur)
{
	if (k >= run_pieces(lr->r) || pc_find(lr, k))
		return;
	struct pc_slot *sl = pc_victim(cur);
	if (!sl)
		return;
	size_t n = pc_span(lr, k, LOAD_PIECES);
	uint64_t off = (uint64_t)k * HASH_PIECE;
	uint64_t len = MIN((uint64_t)n * HASH_PIECE, lr->r->nr_pages * PAGE_SIZE - off);
	/* (a failure sticks to the source: the read that needs these pieces reports it) */
	if (!page_source_prefetch(lr->src, lr->r, off, sl->buf, len))
		*sl = (struct pc_slot){ lr, k, n, ++pc_clock, sl->buf, true };
}

/* Where piece @k of @lr (a source that cannot map) is in the cache: read into the least
 * recently used slot with up to load_window - 1 pieces after it not held yet, each
 * verified; reading ahead (the background pass, a task reading in order), the pieces
 * after those are asked for at once. */
static int pc_load(const struct lz_img *img, const struct lz_run *lr, size_t k,
		   const char **out)
{
	struct pc_slot *sl = pc_find(lr, k);
	int ret = 0;
	if (sl && sl->asked)
		ret = pc_fill(img, lr, sl, sl->k0, sl->n);
	else if (!sl && !(sl = pc_victim(NULL)))
		ret = -ENOMEM;
	else if (!sl->lr)
		ret = pc_fill(img, lr, sl, k, pc_span(lr, k, MIN(load_window, (size_t)LOAD_PIECES)));
	if (ret)
		return ret;
	sl->used = ++pc_clock;
	*out = sl->buf + (uint64_t)(k - sl->k0) * HASH_PIECE;
	if (load_window >= LOAD_PIECES)
		pc_ahead(lr, sl->k0 + sl->n, sl);
	return 0;
}

/* Where piece @k of @lr is, verified. */
static int piece_at(const struct lz_img *img, struct lz_run *lr, size_t k, const char **out)
{
	if (!lr->src) {
		*out = lr->data + (uint64_t)k * HASH_PIECE;
		return verify_mapped(img, lr, k);
	}
	return pc_load(img, lr, k, out);
}

/* The pages of the mapped pages file under [@from, @from + @len) brought in at once (one
 * call instead of a fault per page as they are copied). */
static void populate(const char *from, uint64_t len)
{
	uintptr_t pg = (uintptr_t)from & ~(uintptr_t)(PAGE_SIZE - 1);
	madvise((void *)pg, (uintptr_t)from + len - pg, MADV_POPULATE_READ);
}

/* UFFDIO_COPY of @len bytes from @src to @dst in @uffd's process: pages already there or
 * no longer in a registered area (EEXIST, ENOENT) skipped, page by page after an ENOENT
 * (a range spanning areas split by mprotect...). 0: all of it handled; else the errno that
 * stopped it (EAGAIN: the layout is changing; ESRCH: the process is gone) with *@done
 * bytes handled. *@copied: the bytes copied. */
static int copy_span(int uffd, uint64_t dst, const char *src, uint64_t len, uint64_t *done,
		     uint64_t *copied)
{
	bool paged = false;
	*done = *copied = 0;
	while (*done < len) {
		uint64_t n = paged ? PAGE_SIZE : len - *done;
		struct uffdio_copy c = { .dst = dst + *done,
					 .src = (uint64_t)(uintptr_t)(src + *done), .len = n };
		int e = ioctl(uffd, UFFDIO_COPY, &c) < 0 ? errno : 0;
		uint64_t got = c.copy > 0 ? (uint64_t)c.copy : 0;
		*copied += got;
		if (!e) {
			*done += n;
			continue;
		}
		*done += got;
		if (e != EEXIST && e != ENOENT)
			return e;
		if (e == ENOENT && !paged && n > PAGE_SIZE && !got) {
			paged = true;
			continue;
		}
		*done = MIN(*done + PAGE_SIZE, len); /* there already, or not ours */
	}
	return 0;
}

/* Copy [@addr, @addr + @len), inside one range, into the task. 0: done (copied, or
 * already there, or no longer an area of ours); -EAGAIN: the layout is changing, read
 * the events and retry; -ESRCH: the process is gone; else fatal. */
static int lz_copy(struct lz_proc *p, uint64_t addr, uint64_t len)
{
	size_t i = iv_lower(p, addr);
	if (i == p->niv || p->iv[i].addr > addr)
		return 0;
	struct ival v = p->iv[i];
	struct lz_run *lr = &p->img->runs[v.run];
	uint64_t off = v.off + (addr - v.addr);
	int ret = 0;
	while (!ret && len) {
		size_t k = (size_t)(off / HASH_PIECE);
		uint64_t in = off - (uint64_t)k * HASH_PIECE;
		const char *from = NULL;
		uint64_t n;
		if (win_has(lr, off)) {
			from = win.buf + (off - win.off);
			n = MIN(len, win.off + win.len - off);
		} else {
			ret = piece_at(p->img, lr, k, &from);
			if (ret)
				break;
			from += in;
			n = MIN(len, HASH_PIECE - in);
		}
		uint64_t done, copied;
		int e = copy_span(p->uffd, addr, from, n, &done, &copied);
		p->copied += copied;
		ret = iv_cut(p, addr, addr + done);
		addr += done;
		off += done;
		len -= done;
		if (!ret && e)
			ret = -e;
	}
	return ret;
}

/* What is left of [@s, @e) in the ranges of run @run copied: the rest of the pieces a
 * fault read from a source that cannot map, while they are in the cache. */
static int lz_copy_rest(struct lz_proc *p, uint32_t run, uint64_t s, uint64_t e)
{
	int ret = 0;
	for (size_t i = iv_lower(p, s); !ret && s < e && i < p->niv && p->iv[i].addr < e;
	     i = iv_lower(p, s)) {
		const struct ival *v = &p->iv[i];
		uint64_t a = MAX(s, v->addr), b = MIN(e, v->addr + v->len);
		s = b;
		if (v->run == run)
			ret = lz_copy(p, a, b - a);
	}
	return ret;
}

/* lz_copy with requests for several pieces at once from a source that cannot map (the
 * background pass, a task reading in order): one round trip for 8 MiB. */
static int lz_copy_wide(struct lz_proc *p, uint64_t addr, uint64_t len)
{
	load_window = LOAD_PIECES;
	int ret = lz_copy(p, addr, len);
	load_window = 1;
	return ret;
}

/* A task reading its memory in order (its faults at 2 MiB steps): the next 2 MiB of the
 * range it reads copied while it reads the chunk it was just woken for, so that it finds
 * them there (its next fault is at their end). A layout change under way (EAGAIN) stops
 * it: the events come first. */
static int lz_ahead(struct lz_proc *p)
{
	uint64_t a = p->seq_next;
	size_t i = iv_lower(p, a);
	if (p->seq_chunk < FAULT_CHUNK_MAX || i == p->niv || p->iv[i].addr >= a + SEQ_GAP)
		return 0;
	a = MAX(a, p->iv[i].addr); /* (past pages there already) */
	uint64_t e = MIN(p->iv[i].addr + p->iv[i].len, a + FAULT_CHUNK_MAX);
	int ret = lz_copy_wide(p, a, e - a);
	if (!ret)
		p->seq_next = e;
	return ret == -EAGAIN ? 0 : ret;
}

/* For a fault at @a in range @v, from a source that cannot map: the part of
 * [*@ws, *@we) in @a's piece read alone into the window, the range narrowed to it; or
 * -EOPNOTSUPP (nothing read: the source cannot, the run has no piece checksums, or the
 * window already held a part of this piece: the whole piece is read then). */
static int lz_win_load(struct lz_proc *p, const struct ival *v, uint64_t a, uint64_t *ws,
		       uint64_t *we)
{
	struct lz_run *lr = &p->img->runs[v->run];
	const PageRun *r = lr->r;
	uint64_t rlen = r->nr_pages * PAGE_SIZE;
	size_t k = (size_t)((v->off + (a - v->addr)) / HASH_PIECE);
	uint64_t ps = (uint64_t)k * HASH_PIECE, pe = MIN(ps + HASH_PIECE, rlen);
	if (pc_find(lr, k) || (r->n_piece_xxh != run_pieces(r) && run_pieces(r) != 1) ||
	    (win.lr == lr && win.off >= ps && win.off < pe))
		return -EOPNOTSUPP;
	uint64_t os = MAX(v->off + (*ws - v->addr), ps), oe = MIN(v->off + (*we - v->addr), pe);
	uint64_t ph;
	win.lr = NULL;
	int ret = page_source_read_checked(lr->src, r, ps, (uint32_t)(pe - ps), (uint32_t)(os - ps),
					   win.buf, (uint32_t)(oe - os), &ph);
	if (ret)
		return ret;
	if (!piece_hash_good(r, k, ph))
		bad_pages(p->img, r);
	win.lr = lr;
	win.off = os;
	win.len = oe - os;
	*ws = v->addr + (os - v->off);
	*we = v->addr + (oe - v->off);
	return 0;
}

/* A fault at @a: the 64 KiB around it from its range, or a zero page. A fault where the
 * previous one's copy ended (a task reading its memory in order) copies from there, twice
 * as much as the last time, up to 2 MiB: one round trip per 2 MiB instead of per 64 KiB.
 * From a source that cannot map, the whole pieces read for it are copied, the task woken
 * first. */
static int lz_fault(struct lz_proc *p, uint64_t a)
{
	a &= ~(uint64_t)(PAGE_SIZE - 1);
	p->faults++;
	size_t i = iv_lower(p, a);
	int ret = 0;
	uint64_t ps = 0, pe = 0; /* the pieces read for it, to copy after the wake */
	uint32_t run = 0;
	if (i < p->niv && p->iv[i].addr <= a) {
		const struct ival *v = &p->iv[i];
		uint64_t ws, we;
		/* a task reading in order: where the last copy ended, or a little further at
		 * the start of a range with nothing to come in between (it read through pages
		 * there already: the 64 KiB of an earlier fault) */
		bool seq = a == p->seq_next ||
			   (a > p->seq_next && a - p->seq_next < SEQ_GAP && v->addr == a &&
			    iv_lower(p, p->seq_next) == i);
		if (seq) {
			p->seq_chunk = MIN(p->seq_chunk * 2, (uint64_t)FAULT_CHUNK_MAX);
			ws = a;
			we = MIN(v->addr + v->len, a + p->seq_chunk);
		} else {
			p->seq_chunk = FAULT_CHUNK;
			ws = MAX(v->addr, a & ~(uint64_t)(FAULT_CHUNK - 1));
			we = MIN(v->addr + v->len, (a & ~(uint64_t)(FAULT_CHUNK - 1)) + FAULT_CHUNK);
		}
		bool alone = false; /* read into the window, without its piece */
		if (p->img->runs[v->run].src && !seq) {
			ret = lz_win_load(p, v, a, &ws, &we);
			if (ret && ret != -EOPNOTSUPP)
				return ret;
			alone = !ret;
			ret = 0;
		}
		p->seq_next = we;
		if (alone) { /* the page alone before the wake, the window's rest after it */
			run = v->run;
			ps = ws;
			pe = we;
			ws = a;
			we = a + PAGE_SIZE;
		} else if (p->img->runs[v->run].src) {
			uint64_t os = v->off + (ws - v->addr), oe = v->off + (we - v->addr);
			run = v->run;
			ps = ws - MIN(os % HASH_PIECE, ws - v->addr);
			pe = we + MIN((HASH_PIECE - oe % HASH_PIECE) % HASH_PIECE,
				      v->addr + v->len - we);
		}
		/* a task reading in order: the pieces ahead of it too (a source that cannot
		 * map: one request for several) */
		load_window = p->seq_chunk == FAULT_CHUNK_MAX ? LOAD_PIECES : 1;
		ret = lz_copy(p, ws, we - ws);
		load_window = 1;
		/* a page before @a already there stopped the chunk: @a alone */
		i = iv_lower(p, a);
		if (!ret && i < p->niv && p->iv[i].addr <= a)
			ret = lz_copy(p, a, PAGE_SIZE);
	} else {
		struct uffdio_zeropage z = { .range = { a, PAGE_SIZE } };
		if (ioctl(p->uffd, UFFDIO_ZEROPAGE, &z) < 0 && errno != EEXIST && errno != ENOENT)
			ret = -errno;
	}
	if (ret)
		return ret;
	struct uffdio_range w = { a, PAGE_SIZE };
	if (ioctl(p->uffd, UFFDIO_WAKE, &w) < 0 && errno != ENOENT)
		return errno == ESRCH ? -ESRCH : 0;
	if (pe > ps) {
		p->rest_run = run;
		p->rest_s = ps;
		p->rest_e = pe;
	}
	return lz_ahead(p);
}

/* A step of @p's rest (REST_STEP), if its pieces are still in the cache (else the
 * background pass reads them again in its turn). Between two steps the server looks for
 * faults: a task that faults again does not wait for the 2 MiB of its last fault to be
 * copied (UFFDIO_COPY runs at 0.5-0.9 GB/s here: 2-4 ms a piece, where the next fault
 * of a task reading here and there follows in microseconds). */
static int lz_rest_step(struct lz_proc *p)
{
	size_t i = iv_lower(p, p->rest_s);
	if (i == p->niv || p->iv[i].addr >= p->rest_e || p->iv[i].run != p->rest_run) {
		p->rest_e = p->rest_s; /* all there */
		return 0;
	}
	const struct ival *v = &p->iv[i];
	uint64_t s = MAX(p->rest_s, v->addr), off = v->off + (s - v->addr);
	const struct lz_run *lr = &p->img->runs[v->run];
	if (!pc_find(lr, (size_t)(off / HASH_PIECE)) && !win_has(lr, off)) {
		p->rest_e = p->rest_s; /* gone from the cache */
		return 0;
	}
	uint64_t e = MIN(p->rest_e, s + REST_STEP);
	int ret = lz_copy_rest(p, p->rest_run, s, e);
	if (!ret)
		p->rest_s = e;
	return ret;
}

/* No range of @p's hot runs is left to copy. */
static void hot_in(struct lz_proc *p)
{
	if (!p->hot_done)
		pr_info("pid %d: the pages written since the previous dump are in after %.1f ms, "
			"%llu bytes copied so far",
			p->img->pid, (double)(now_ns() - p->t0) / 1e6,
			(unsigned long long)p->copied);
	p->hot_done = true;
}

/* ------------------------------------------------------------------ the second copier */

/* A thread of the server copies too, as the full restore copies with two threads (with one
 * copier the lazy restore had all memory in 1.1-1.2x later than a full restore: its copy,
 * the pieces' checksums and the source's page faults all on one core). It is lent a
 * region at a time, the top HELP_REGION of a process's highest range (the background
 * pass goes up from the bottom, the task's faults are served where it reads), and copies
 * it upwards a step at a time, each step's source brought in and its pieces verified
 * first. Only the main thread reads the userfaultfds and edits the ranges. An event it
 * reads (remove, unmap, remap, fork) lets the task's madvise, munmap, mremap or fork go
 * on: a copy of the helper's still running in that process then (started before the event
 * was queued) could fill pages after the kernel dropped them, old bytes where the task
 * expects zeros. So the main thread waits for the helper's step in that process to end
 * before it reads its messages (a step: 0.1-0.3 ms), cuts what the helper copied first,
 * and an event read takes the rest of the region back (stale: the helper takes no
 * further step). A step started after an event was queued fails with EAGAIN (the kernel's
 * mmap_changing), which ends the region. */
#define HELP_REGION (16u << 20)
#define HELP_STEP (512u << 10)
enum { H_IDLE, H_LENT, H_COPYING, H_DONE };
static struct {
	pthread_mutex_t mu;
	pthread_cond_t cv; /* the state changed */
	int state;
	bool on, stale;
	int efd; /* the main thread's wake: the region is done */
	struct lz_proc *p;
	struct lz_run *lr;
	uint64_t addr, len, off; /* [addr, addr + len) of p from offset off of lr's run */
	uint64_t cur, cut;       /* copied [addr, addr + cur), cut from the ranges up to cut */
	uint64_t copied;
	int err;
} help = { .mu = PTHREAD_MUTEX_INITIALIZER, .cv = PTHREAD_COND_INITIALIZER, .efd = -1 };

/* One step of the lent region at @q: 0, 1 (stale: stop), or the errno that ended it.
 * Called and returns with help.mu held. */
static int help_step(const struct lz_proc *p, struct lz_run *lr, uint64_t q)
{
	uint64_t off = help.off + q, n = MIN((uint64_t)HELP_STEP, help.len - q);
	uint64_t dst = help.addr + q;
	pthread_mutex_unlock(&help.mu);
	populate(lr->data + off, n);
	for (uint64_t k = off / HASH_PIECE; k <= (off + n - 1) / HASH_PIECE; k++)
		verify_mapped(p->img, lr, (size_t)k); /* a bad one: the tree is killed */
	pthread_mutex_lock(&help.mu);
	if (help.stale)
		return 1;
	help.state = H_COPYING;
	pthread_mutex_unlock(&help.mu);
	uint64_t done, copied;
	int err = copy_span(p->uffd, dst, lr->data + off, n, &done, &copied);
	pthread_mutex_lock(&help.mu);
	help.cur = q + done;
	help.copied += copied;
	help.state = H_LENT;
	pthread_cond_broadcast(&help.cv);
	return err;
}

static void *help_main(void *arg)
{
	(void)arg;
	pthread_mutex_lock(&help.mu);
	for (;;) {
		while (help.state != H_LENT)
			pthread_cond_wait(&help.cv, &help.mu);
		int err = 0;
		for (uint64_t q = 0; !err && q < help.len; q += HELP_STEP)
			err = help_step(help.p, help.lr, q);
		help.err = err == 1 ? 0 : err;
		help.state = H_DONE;
		pthread_cond_broadcast(&help.cv);
		uint64_t one = 1;
		if (write(help.efd, &one, sizeof(one)) < 0)
			srv_fatal(-errno, "wake the main thread");
	}
	return NULL;
}

/* The helper started (without it the main thread copies alone). */
static void help_start(struct lz_srv *s)
{
	pthread_t t;
	struct epoll_event ev = { .events = EPOLLIN, .data.ptr = &help };
	help.efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (help.efd < 0 || epoll_ctl(s->ep, EPOLL_CTL_ADD, help.efd, &ev) < 0 ||
	    pthread_create(&t, NULL, help_main, NULL)) {
		pr_warn("restore --lazy-pages: one copier only (no second thread)");
		return;
	}
	help.on = true;
}

/* With help.mu held and no step running: what the helper copied in @p cut from its
 * ranges, and a region it is done with taken back. 0, or the region's -errno (-EAGAIN:
 * events to read first, -ESRCH: the process is gone). */
static int help_take(struct lz_proc *p)
{
	if (help.p != p)
		return 0;
	int ret = iv_cut(p, help.addr + help.cut, help.addr + help.cur);
	help.cut = help.cur;
	p->copied += help.copied;
	help.copied = 0;
	if (help.state == H_DONE) {
		help.state = H_IDLE;
		help.p = NULL;
		ret = ret ? ret : -help.err;
	}
	return ret;
}

/* With help.mu held: no step of the helper's runs in @p, and what it copied there is cut
 * from the ranges. 0 or -errno as help_take. */
static int help_quiesce(struct lz_proc *p)
{
	while (help.p == p && help.state == H_COPYING)
		pthread_cond_wait(&help.cv, &help.mu);
	return help_take(p);
}

/* The highest range of @p the helper can copy (in a mapped run verified by pieces), of
 * the hot runs while there are some (as the background pass), or NULL. */
static const struct ival *help_scan(const struct lz_proc *p)
{
	for (size_t i = p->niv; i-- > 0 && (!p->hot_done || i + 8 >= p->niv);) {
		const struct ival *v = &p->iv[i];
		const struct lz_run *lr = &p->img->runs[v->run];
		size_t np = run_pieces(lr->r);
		if ((p->hot_done || lr->hot) && lr->data && (lr->r->n_piece_xxh == np || np == 1))
			return v;
	}
	return NULL;
}

/* help_scan, the hot set marked in when the helper took its last ranges. */
static const struct ival *help_range(struct lz_proc *p)
{
	const struct ival *v = help_scan(p);
	for (size_t i = 0; !v && !p->hot_done && i < p->niv; i++)
		if (p->img->runs[p->iv[i].run].hot)
			return NULL; /* hot ranges the helper cannot copy: the main thread's */
	if (!v && !p->hot_done) {
		hot_in(p);
		v = help_scan(p);
	}
	return v;
}

/* A region for the idle helper: the top HELP_REGION (aligned in its run) of the highest
 * range of a process it can copy (help_range). */
static void help_give(struct lz_srv *s)
{
	bool seq = false; /* a task reading in order, at full stride, waits for copies anyway */
	for (const struct lz_proc *p = s->live; p && !seq; p = p->next)
		seq = p->seq_chunk == FAULT_CHUNK_MAX;
	if (!help.on || (now_ns() < s->quiet_until && !seq))
		return;
	pthread_mutex_lock(&help.mu);
	for (struct lz_proc *p = help.state == H_IDLE ? s->live : NULL; p; p = p->next) {
		if (!p->img->mapped)
			continue;
		const struct ival *v = help_range(p);
		if (v) {
			struct lz_run *lr = &p->img->runs[v->run];
			uint64_t oe = v->off + v->len;
			uint64_t os = MAX(v->off, (oe - 1) / HELP_REGION * HELP_REGION);
			help.p = p;
			help.lr = lr;
			help.off = os;
			help.addr = v->addr + (os - v->off);
			help.len = oe - os;
			help.cur = help.cut = help.copied = 0;
			help.stale = false;
			help.state = H_LENT;
			pthread_cond_broadcast(&help.cv);
			pthread_mutex_unlock(&help.mu);
			return;
		}
	}
	pthread_mutex_unlock(&help.mu);
}

static int srv_watch(struct lz_srv *s, struct lz_proc *p)
{
	struct epoll_event ev = { .events = EPOLLIN, .data.ptr = p };
	if (epoll_ctl(s->ep, EPOLL_CTL_ADD, p->uffd, &ev) < 0)
		return pr_perror("restore --lazy-pages: epoll");
	p->next = s->live;
	s->live = p;
	return 0;
}

static void proc_free(struct lz_srv *s, struct lz_proc *p)
{
	pthread_mutex_lock(&help.mu); /* the helper done with it, its result dropped */
	while (help.p == p && (help.state == H_LENT || help.state == H_COPYING)) {
		help.stale = true;
		pthread_cond_wait(&help.cv, &help.mu);
	}
	if (help.p == p) {
		help.state = H_IDLE;
		help.p = NULL;
	}
	pthread_mutex_unlock(&help.mu);
	for (struct lz_proc **pp = &s->live; *pp; pp = &(*pp)->next)
		if (*pp == p) {
			*pp = p->next;
			break;
		}
	pr_info("pid %d%s: %s after %.1f ms: %llu faults served, %llu bytes copied",
		p->img->pid, p->forked ? " (a child it forked)" : "",
		p->niv ? "gone" : "all memory in", (double)(now_ns() - p->t0) / 1e6,
		(unsigned long long)p->faults, (unsigned long long)p->copied);
	close(p->uffd); /* the registration goes with it */
	free(p->iv);
	free(p->pend);
	free(p);
}

static int fork_event(struct lz_srv *s, struct lz_proc *p, int ufd)
{
	struct lz_proc *c = calloc(1, sizeof(*c));
	if (!c) {
		close(ufd);
		return -ENOMEM;
	}
	c->img = p->img;
	c->uffd = ufd;
	c->forked = true;
	c->hot_done = p->hot_done;
	c->hot_from = p->hot_from;
	c->t0 = now_ns();
	c->iv = malloc((p->niv + 1) * sizeof(*c->iv));
	if (!c->iv) {
		close(ufd);
		free(c);
		return -ENOMEM;
	}
	memcpy(c->iv, p->iv, p->niv * sizeof(*c->iv));
	c->niv = c->cap = p->niv;
	c->cap++;
	return srv_watch(s, c);
}

/* Read every message of @p: events applied at once, faults queued. With help.mu held:
 * the helper's step in @p ended and what it copied cut first; an event read ends the
 * region it was lent in @p (stale). */
static int drain_locked(struct lz_srv *s, struct lz_proc *p)
{
	struct uffd_msg m[64];
	int ret = help_quiesce(p);
	if (ret && ret != -EAGAIN)
		return ret;
	for (;;) {
		ssize_t n = read(p->uffd, m, sizeof(m));
		if (n < 0)
			return errno == EAGAIN || errno == EINTR ? 0 : -errno;
		ret = 0;
		for (size_t k = 0; k < (size_t)n / sizeof(m[0]) && !ret; k++) {
			switch (m[k].event) {
			case UFFD_EVENT_PAGEFAULT:
				if (p->npend == p->pcap) {
					size_t cap = p->pcap ? p->pcap * 2 : 64;
					uint64_t *q = realloc(p->pend, cap * sizeof(*q));
					if (!q)
						return -ENOMEM;
					p->pend = q;
					p->pcap = cap;
				}
				p->pend[p->npend++] = m[k].arg.pagefault.address;
				break;
			case UFFD_EVENT_FORK:
				ret = fork_event(s, p, (int)m[k].arg.fork.ufd);
				break;
			case UFFD_EVENT_REMAP:
				help.stale |= help.p == p;
				ret = iv_move(p, m[k].arg.remap.from, m[k].arg.remap.to,
					      m[k].arg.remap.len);
				break;
			case UFFD_EVENT_REMOVE:
			case UFFD_EVENT_UNMAP:
				help.stale |= help.p == p;
				ret = iv_cut(p, m[k].arg.remove.start, m[k].arg.remove.end);
				break;
			}
		}
		if (ret)
			return ret;
	}
}

static int drain(struct lz_srv *s, struct lz_proc *p)
{
	pthread_mutex_lock(&help.mu);
	int ret = drain_locked(s, p);
	pthread_mutex_unlock(&help.mu);
	return ret;
}

/* Serve the queued faults of @p. 1: some must wait for events, 0, -errno. */
static int serve_pending(struct lz_proc *p)
{
	size_t k = 0, left = 0;
	for (; k < p->npend; k++) {
		int ret = lz_fault(p, p->pend[k]);
		if (ret == -EAGAIN)
			p->pend[left++] = p->pend[k];
		else if (ret)
			return ret;
	}
	p->npend = left;
	return left ? 1 : 0;
}

/* Events and faults of @p until none is waiting; -ESRCH: gone. */
static int serve_proc(struct lz_srv *s, struct lz_proc *p)
{
	for (int round = 0;; round++) {
		int ret = drain(s, p);
		if (!ret && p->npend)
			s->quiet_until = now_ns() + BG_PAUSE_NS;
		if (!ret)
			ret = serve_pending(p);
		if (ret <= 0)
			return ret;
		if (round > 1000) /* the layout keeps changing: yield to the task */
			usleep(100);
	}
}

/* Where the background pass goes on: the pages of an incremental image's own runs first
 * (those the task wrote since the previous pass: what it used last, likely first again),
 * in address order, then the rest from the lowest address. */
static const struct ival *bg_next(struct lz_proc *p)
{
	for (size_t i = p->hot_done ? p->niv : iv_lower(p, p->hot_from); i < p->niv; i++)
		if (p->img->runs[p->iv[i].run].hot) {
			p->hot_from = p->iv[i].addr;
			return &p->iv[i];
		}
	hot_in(p);
	return &p->iv[0];
}

/* The next background chunk of @p; -ESRCH: gone. */
static int background(struct lz_srv *s, struct lz_proc *p)
{
	const struct ival *v = bg_next(p);
	uint64_t end = (v->off / BG_CHUNK + 1) * BG_CHUNK; /* aligned in the run */
	uint64_t len = MIN(v->len, end - v->off);
	const char *data = p->img->runs[v->run].data;
	if (data) /* a mapped run (else: read into the cache as it is copied) */
		populate(data + v->off, len);
	int ret = lz_copy_wide(p, v->addr, len);
	if (ret == -EAGAIN)
		ret = serve_proc(s, p);
	return ret;
}

static int srv_add(struct lz_srv *s, pid_t pid, int uffd, int pidfd)
{
	struct lz_img *img = NULL;
	const struct rst_ctx *c = NULL;
	for (size_t i = 0; i < s->n && !img; i++)
		if (s->procs[i] && s->procs[i]->pid == pid && !s->imgs[i].pid) {
			img = &s->imgs[i];
			c = s->procs[i];
		}
	if (!img || n_kill_fds == ARRAY_SIZE(kill_fds)) {
		pr_err("restore --lazy-pages: unexpected process %d", pid);
		return -EINVAL;
	}
	kill_fds[n_kill_fds++] = pidfd;
	struct lz_proc *p = calloc(1, sizeof(*p));
	bool *lazy = calloc(c->mm->n_pages + 1, sizeof(bool));
	img->runs = calloc(c->mm->n_pages + 1, sizeof(*img->runs));
	if (!p || !lazy || !img->runs) {
		free(p);
		free(lazy);
		return -ENOMEM;
	}
	img->pid = pid;
	p->img = img;
	p->t0 = now_ns();
	p->uffd = uffd;
	mem_lazy_plan(c->mm, lazy, NULL);
	int ret = 0;
	bool incremental = false;
	for (size_t i = 0; i < c->mm->n_pages && !ret; i++) {
		const PageRun *r = c->mm->pages[i];
		uint64_t len = r->nr_pages * PAGE_SIZE;
		if (!lazy[i])
			continue;
		struct lz_run *lr = &img->runs[img->nr];
		/* a run lying in a parent image: served as part of the parent's run holding
		 * it (kept by the chain's validation for every lazy one), whose pieces are
		 * verified as they are served */
		const PageRun *pr = r->has_parent_depth && c->pruns ? c->pruns[i] : NULL;
		if (r->has_parent_depth && !pr) {
			pr_err("restore --lazy-pages: pid %d: the run at %llx has no parent run",
			       pid, (unsigned long long)r->vaddr);
			ret = -EINVAL;
			break;
		}
		const PageRun *src = pr ? pr : r;
		uint64_t slen = src->nr_pages * PAGE_SIZE;
		lr->r = src;
		lr->data = page_source_map(c->pages, src, 0, slen);
		if (!lr->data && errno == EOPNOTSUPP) {
			lr->src = c->pages; /* read through the piece cache */
		} else if (!lr->data) {
			ret = -errno;
			break;
		} else if (!(lr->ok = calloc(run_pieces(src), 1))) {
			ret = -ENOMEM;
			break;
		} else {
			img->mapped = true;
		}
		lr->hot = !pr;
		incremental |= pr != NULL;
		struct ival v = { r->vaddr, len, (uint32_t)img->nr++, pr ? r->vaddr - pr->vaddr : 0 };
		ret = iv_insert(p, p->niv, &v);
	}
	p->hot_done = !incremental;
	free(lazy);
	if (!ret)
		ret = srv_watch(s, p);
	if (ret) {
		close(uffd);
		free(p->iv);
		free(p);
	}
	return ret;
}

/* A process with the rest of a fault's pieces to copy, if any. */
static struct lz_proc *rest_pending(const struct lz_srv *s)
{
	for (struct lz_proc *p = s->live; p; p = p->next)
		if (p->rest_e > p->rest_s)
			return p;
	return NULL;
}

/* A message from stasis: a process to serve, or "the tree runs". 1: the socket closed. */
static int srv_ctl(struct lz_srv *s)
{
	struct lazy_msg m;
	int fds[2] = { -1, -1 };
	char cbuf[CMSG_SPACE(sizeof(fds))];
	struct iovec iov = { &m, sizeof(m) };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf,
			     .msg_controllen = sizeof(cbuf) };
	ssize_t n = recvmsg(s->sock, &mh, MSG_CMSG_CLOEXEC);
	if (n <= 0)
		return n < 0 && errno == EINTR ? 0 : 1;
	struct cmsghdr *cm = CMSG_FIRSTHDR(&mh);
	if (cm && cm->cmsg_type == SCM_RIGHTS && cm->cmsg_len == CMSG_LEN(sizeof(fds)))
		memcpy(fds, CMSG_DATA(cm), sizeof(fds));
	if (n == sizeof(m) && m.kind == MSG_DONE) {
		srv_sock = -1;
		/* the tree runs: its first faults come next, the helper's region (lent while
		 * the restore went on) ends, the helper waits for a quiet moment */
		s->done = true;
		s->quiet_until = now_ns() + BG_PAUSE_NS;
		pthread_mutex_lock(&help.mu);
		help.stale = help.state == H_LENT || help.state == H_COPYING;
		pthread_mutex_unlock(&help.mu);
		return 0;
	}
	if (n != sizeof(m) || m.kind != MSG_ADD || fds[0] < 0 || fds[1] < 0)
		return -EINVAL;
	return srv_add(s, m.pid, fds[0], fds[1]);
}

/* The helper says it is done with its region (its eventfd). */
static int help_done(struct lz_srv *s)
{
	uint64_t n;
	if (read(help.efd, &n, sizeof(n)) < 0 && errno != EAGAIN)
		return -errno;
	pthread_mutex_lock(&help.mu);
	struct lz_proc *p = help.state == H_DONE ? help.p : NULL;
	int ret = p ? help_take(p) : 0;
	pthread_mutex_unlock(&help.mu);
	if (ret == -ESRCH)
		proc_free(s, p);
	return ret == -ESRCH || ret == -EAGAIN ? 0 : ret; /* (events: the main loop) */
}

static void __attribute__((noreturn)) srv_run(struct lz_srv *s)
{
	bool sock_open = true;
	int ret = 0;
	struct epoll_event ev = { .events = EPOLLIN, .data.ptr = NULL };
	if (epoll_ctl(s->ep, EPOLL_CTL_ADD, s->sock, &ev) < 0)
		srv_fatal(-errno, "epoll");
	while (sock_open || s->live) {
		/* a process with nothing left to come is let go */
		for (struct lz_proc *p = s->live, *nx; p; p = nx) {
			nx = p->next;
			if (!p->niv && !p->npend)
				proc_free(s, p);
		}
		if (!sock_open && !s->live)
			break;
		help_give(s);
		struct epoll_event evs[16];
		/* the background pass once the tree runs (the restore has both cores first),
		 * and not right after a fault (the next one is likely to follow) */
		int timeout = -1;
		struct lz_proc *rest = s->done ? rest_pending(s) : NULL;
		if (s->live && s->done) {
			uint64_t now = now_ns();
			timeout = now >= s->quiet_until || rest ? 0 : 1;
		}
		int n = epoll_wait(s->ep, evs, 16, timeout);
		if (n < 0 && errno != EINTR)
			srv_fatal(-errno, "epoll_wait");
		for (int k = 0; k < n; k++) {
			struct lz_proc *p = evs[k].data.ptr;
			if (evs[k].data.ptr == &help) {
				ret = help_done(s);
				if (!ret)
					break; /* it may have freed a process others name: poll again */
			} else if (!p) {
				ret = srv_ctl(s);
				if (ret == 1) {
					sock_open = false;
					epoll_ctl(s->ep, EPOLL_CTL_DEL, s->sock, NULL);
					if (!s->done) /* stasis failed or died: the tree goes */
						srv_fatal(-ECONNRESET, "stasis went away");
					ret = 0;
				}
			} else {
				ret = serve_proc(s, p);
				if (ret == -ESRCH) {
					proc_free(s, p);
					ret = 0;
					break; /* other events may name the freed one: poll again */
				}
			}
			if (ret)
				srv_fatal(ret, "serving pages");
		}
		if (n <= 0 && rest) {
			ret = lz_rest_step(rest);
			if (ret == -EAGAIN)
				ret = serve_proc(s, rest);
			if (ret == -ESRCH)
				proc_free(s, rest);
			else if (ret)
				srv_fatal(ret, "copying pages");
		} else if (n <= 0 && s->done && s->live && s->live->niv &&
			   now_ns() >= s->quiet_until) {
			struct lz_proc *p = s->live;
			ret = background(s, p);
			if (ret == -ESRCH) {
				proc_free(s, p);
			} else if (ret) {
				srv_fatal(ret, "copying pages");
			} else if (p->next) { /* round robin */
				struct lz_proc **tail = &p->next;
				while (*tail)
					tail = &(*tail)->next;
				s->live = p->next;
				p->next = NULL;
				*tail = p;
			}
		}
	}
	_exit(0);
}

/* stdin and stdout go, and stderr unless it is a terminal or a file: whoever reads
 * stasis's output through a pipe gets its end of file when stasis exits, not when the
 * server does (its last word is then in the log file only). */
static void quiet_std(void)
{
	struct stat st;
	int null = open("/dev/null", O_RDWR | O_CLOEXEC);
	if (null < 0)
		return;
	dup2(null, 0);
	dup2(null, 1);
	if (fstat(2, &st) < 0 || !(S_ISREG(st.st_mode) || isatty(2)))
		dup2(null, 2);
	close(null);
}

/* The page server process: only the socket and the log stay open. */
void lazy_server_main(struct rst_ctx *const *procs, size_t n, int sock)
{
	struct lz_srv s = { .procs = procs, .n = n, .sock = sock };
	srv_sock = sock;
	int keep[2] = { sock, log_get_fd() };
	if (keep[0] > keep[1]) {
		int x = keep[0];
		keep[0] = keep[1];
		keep[1] = x;
	}
	int lo = 3;
	for (int k = 0; k < 2; k++) {
		if (keep[k] >= lo) {
			if (keep[k] > lo)
				syscall(SYS_close_range, lo, keep[k] - 1, 0);
			lo = keep[k] + 1;
		}
	}
	syscall(SYS_close_range, lo, ~0U, 0);
	quiet_std();
	setsid();
	prctl(PR_SET_NAME, LAZY_COMM, 0, 0, 0);
	signal(SIGINT, SIG_IGN);
	signal(SIGHUP, SIG_IGN);
	signal(SIGTERM, SIG_IGN);
	signal(SIGPIPE, SIG_IGN);
	signal(SIGBUS, on_sigbus);
	log_set_stage("lazy-pages");
	s.imgs = calloc(n + 1, sizeof(*s.imgs));
	s.ep = epoll_create1(EPOLL_CLOEXEC);
	if (!s.imgs || s.ep < 0)
		srv_fatal(-ENOMEM, "start");
	help_start(&s);
	/* a page server's connection made now, while the tree is still being restored:
	 * the first fault does not wait for it (about 1 ms) */
	for (size_t i = 0; i < n; i++) {
		int ret = procs[i] ? page_source_warm(procs[i]->pages) : 0;
		if (ret)
			srv_fatal(ret, "connect to the page server");
	}
	srv_run(&s);
}
