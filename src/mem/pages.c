/* Page contents: the runs of the index (src/mem/mem.c) copied out of the task into a page
 * sink at dump and from a page source into the task at restore, with their checksums.
 * Which sink or source is behind them is the transport's business (src/mem/pagexfer.h).
 *
 * A page run's checksum is the XXH3-64 of the XXH3-64s of its successive HASH_PIECE
 * pieces (the last one shorter), so that restore verifies pieces in parallel. */
#include "mem/internal.h"

#include <dirent.h>
#include <fcntl.h>
#include <linux/userfaultfd.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/uio.h>
#include <unistd.h>
#include <xxhash.h>

#include "core/fault.h"
#include "core/log.h"
#include "core/progress.h"
#include "mem/pagexfer.h"
#include "proc/parse.h"
#include "sys/syscalls.h"

/* ------------------------------------------------------------------ dump */

/* The running checksum of the stream being copied: the current piece and the current
 * run's hash of piece hashes. */
struct stream_hash {
	XXH3_state_t *piece, *run;
	size_t ri;      /* current run */
	uint64_t rdone; /* bytes of it hashed */
};

/* Gather up to @cap bytes of the runs from run @ri, @rdone bytes in, into @iov. Returns
 * the number of ranges; *@fill the bytes. */
static size_t gather(const struct run_list *l, size_t ri, uint64_t rdone, size_t cap,
		     struct iovec *iov, size_t *fill)
{
	size_t niov = 0;
	*fill = 0;
	while (ri < l->nr && niov < MAX_IOV && *fill < cap) {
		uint64_t len = l->runs[ri]->nr_pages * PAGE_SIZE - rdone;
		uint64_t take = MIN(len, (uint64_t)(cap - *fill));
		iov[niov].iov_base = (void *)(uintptr_t)(l->runs[ri]->vaddr + rdone);
		iov[niov].iov_len = take;
		niov++;
		*fill += take;
		rdone += take;
		if (rdone == l->runs[ri]->nr_pages * PAGE_SIZE) {
			ri++;
			rdone = 0;
		}
	}
	return niov;
}

/* Unreadable mappings (PROT_NONE...) are read through /proc/PID/mem (*@memfd, opened on
 * first use). */
static int read_proc_mem(pid_t pid, int *memfd, char *buf, const struct iovec *iov,
			 size_t niov)
{
	if (*memfd < 0) {
		char path[64];
		snprintf(path, sizeof(path), "/proc/%d/mem", pid);
		*memfd = open(path, O_RDONLY | O_CLOEXEC);
		if (*memfd < 0)
			return pr_perror("mem: open %s", path);
	}
	size_t pos = 0;
	for (size_t i = 0; i < niov; i++) {
		ssize_t m = pread(*memfd, buf + pos, iov[i].iov_len, (off_t)(uintptr_t)iov[i].iov_base);
		if (m != (ssize_t)iov[i].iov_len) {
			if (m >= 0)
				errno = EIO;
			return pr_perror("mem: read %zu bytes at %p of pid %d", iov[i].iov_len,
					 iov[i].iov_base, pid);
		}
		pos += iov[i].iov_len;
	}
	return 0;
}

/* A run of several pieces keeps each piece's hash (PageRun.piece_xxh): lazy restore
 * verifies a piece alone. */
static int keep_piece_hash(PageRun *r, uint64_t ph)
{
	size_t n = (size_t)((r->nr_pages * PAGE_SIZE + HASH_PIECE - 1) / HASH_PIECE);
	if (n < 2)
		return 0;
	if (!r->piece_xxh) {
		r->piece_xxh = calloc(n, sizeof(*r->piece_xxh));
		if (!r->piece_xxh)
			return -ENOMEM;
		r->n_piece_xxh = 0;
	}
	if (r->n_piece_xxh < n)
		r->piece_xxh[r->n_piece_xxh++] = ph;
	return 0;
}

/* Checksums, run by run, piece by piece, of @buf (the bytes of @iov) while it is in
 * cache. */
static int hash_chunk(struct stream_hash *h, const struct run_list *l, const char *buf,
		      const struct iovec *iov, size_t niov)
{
	size_t pos = 0;
	for (size_t i = 0; i < niov; i++) {
		size_t left = iov[i].iov_len;
		while (left) {
			size_t in_piece = HASH_PIECE - (size_t)(h->rdone % HASH_PIECE);
			size_t take = MIN(left, in_piece);
			XXH3_64bits_update(h->piece, buf + pos, take);
			pos += take;
			left -= take;
			h->rdone += take;
			bool run_end = h->rdone == l->runs[h->ri]->nr_pages * PAGE_SIZE;
			if (take == in_piece || run_end) {
				uint64_t ph = XXH3_64bits_digest(h->piece);
				XXH3_64bits_update(h->run, &ph, sizeof(ph));
				XXH3_64bits_reset(h->piece);
				int ret = keep_piece_hash(l->runs[h->ri], ph);
				if (ret)
					return ret;
			}
			if (run_end) {
				l->runs[h->ri]->xxh64 = XXH3_64bits_digest(h->run);
				XXH3_64bits_reset(h->run);
				h->ri++;
				h->rdone = 0;
			}
		}
	}
	return 0;
}

/* Copy the runs' contents into @sink, computing each run's checksum; *@total: the bytes.
 *
 * process_vm_readv gathers a buffer's worth (the sink's, 2 MiB) from many ranges in one
 * call; the checksum is computed while the buffer is in cache; the sink takes the buffer
 * and hands out the next (the pages file's writer thread writes it while the next one is
 * read, so reading the task and writing the image overlap). Measured on this machine
 * (1 GiB, ext4 page cache): read alone 0.18 s, write alone 0.25 s; one thread doing both
 * 0.40 s; mapping the pages file and reading straight into it (one copy) was no faster
 * (0.45-1.4 s: page-cache faults and dirty throttling dominate), so the bounce buffer +
 * pipeline stays. */
static int copy_pages(pid_t pid, struct run_list *l, struct page_sink *sink, uint64_t *total)
{
	struct iovec riov[MAX_IOV];
	struct stream_hash h = { XXH3_createState(), XXH3_createState(), 0, 0 };
	_cleanup_close_ int memfd = -1;
	int ret = 0;

	*total = 0;
	if (!h.piece || !h.run) {
		ret = -ENOMEM;
		goto out;
	}
	XXH3_64bits_reset(h.piece);
	XXH3_64bits_reset(h.run);
	uint64_t all = 0;
	for (size_t i = 0; i < l->nr; i++)
		all += l->runs[i]->nr_pages * PAGE_SIZE;
	progress_begin("dump", all);
	while (h.ri < l->nr) {
		void *vbuf;
		size_t cap, fill;
		ret = page_sink_get(sink, &vbuf, &cap);
		if (ret)
			break;
		char *buf = vbuf;
		size_t niov = gather(l, h.ri, h.rdone, cap, riov, &fill);
		struct iovec liov = { buf, fill };
		ssize_t n = process_vm_readv(pid, &liov, 1, riov, niov, 0);
		if (n != (ssize_t)fill) {
			ret = read_proc_mem(pid, &memfd, buf, riov, niov);
			if (ret)
				break;
		}
		ret = hash_chunk(&h, l, buf, riov, niov);
		if (ret)
			break;
		ret = page_sink_put(sink, buf, fill, riov, niov);
		if (ret)
			break;
		*total += fill;
		progress_add(fill);
	}
	progress_end();
out:
	XXH3_freeState(h.piece);
	XXH3_freeState(h.run);
	return ret;
}

int mem_source_hash(struct page_source *src, const PageRun *r, uint64_t off, uint64_t len,
		       uint64_t *out)
{
	XXH3_state_t *acc = XXH3_createState();
	_cleanup_free_ char *buf = NULL;
	int ret = 0;
	if (!acc)
		return -ENOMEM;
	XXH3_64bits_reset(acc);
	const char *data = page_source_map(src, r, off, len);
	if (!data && errno != EOPNOTSUPP)
		ret = -errno;
	else if (!data && !(buf = malloc(HASH_PIECE)))
		ret = -ENOMEM;
	for (uint64_t p = 0; p < len && !ret; p += HASH_PIECE) {
		size_t n = (size_t)MIN((uint64_t)HASH_PIECE, len - p);
		if (!data && (ret = page_source_read(src, r, off + p, buf, n)))
			break;
		uint64_t ph = XXH3_64bits(data ? data + p : buf, n);
		XXH3_64bits_update(acc, &ph, sizeof(ph));
	}
	*out = XXH3_64bits_digest(acc);
	XXH3_freeState(acc);
	return ret;
}

/* Runs stored in the parent's stream (read back through @src): its offsets, and
 * checksums of its data. */
static int resolve_xrefs(struct mem_dump_state *ms, struct page_source *src)
{
	int ret = 0;
	for (size_t i = 0; i < ms->n_xref && !ret; i++) {
		PageRun *r = ms->xref[i].r;
		const PageRun *pr = ms->xref[i].src;
		uint64_t off = r->vaddr - pr->vaddr;
		r->offset = pr->offset + off;
		ret = mem_source_hash(src, pr, off, r->nr_pages * PAGE_SIZE, &r->xxh64);
	}
	return ret;
}

/* A transport that cannot read the parent's stream back: every run is this process's
 * own data again (index order), nothing is stored once. */
static int xrefs_to_own(struct dump_ctx *c, struct mem_dump_state *ms)
{
	Mm *mm = c->mm;
	PageRun **own = realloc(ms->own.runs, (mm->n_pages ? mm->n_pages : 1) * sizeof(*own));
	if (!own)
		return -ENOMEM;
	for (size_t i = 0; i < mm->n_pages; i++) {
		own[i] = mm->pages[i];
		own[i]->has_src_pid = false;
		own[i]->src_pid = 0;
	}
	ms->own = (struct run_list){ own, mm->n_pages, mm->n_pages ? mm->n_pages : 1 };
	ms->n_xref = 0;
	pr_info("mem: pid %d: the page transport cannot read pid %d's pages back: shared "
		"copy-on-write pages are stored again", c->pid, c->parent->pid);
	return 0;
}

/* A pre-dump copies while the tree runs: has the task exited (or been reaped) since? */
static bool task_gone(const struct dump_ctx *c)
{
	struct proc_stat st;
	_cleanup_free_ char *buf = read_file_at(c->procfd, "stat", 4096, NULL);
	if (!buf)
		return errno == ESRCH || errno == ENOENT;
	return !proc_parse_stat(buf, &st) && (st.state == 'Z' || st.state == 'X');
}

/* Fault point pre-dump:exit: the process exits now (SIGKILL; waited for, 2 s at most). */
static void kill_for_test(const struct dump_ctx *c)
{
	if (sys_pidfd_send_signal(c->pidfd, SIGKILL, NULL, 0))
		return;
	for (int i = 0; i < 2000 && !task_gone(c); i++)
		usleep(1000);
}

/* Second phase, after the scan phase of every process (reading memory with
 * process_vm_readv pins pages, which unshares copy-on-write pages: the sharing had to be
 * seen before). Parents run first: runs stored in the parent's stream take its offsets. */
int mem_dump_pages(struct dump_ctx *c)
{
	struct mem_dump_state *ms = c->mem;
	struct page_source *psrc = NULL;
	struct page_sink *sink;
	Mm *mm = c->mm;
	uint64_t len;
	int ret;

	if (!ms || !mm)
		return -EINVAL;
	if (ms->n_xref) {
		/* (a parent that left a pre-dump has no stream to share) */
		ret = c->parent->gone ? -EOPNOTSUPP : page_sink_reopen(c->parent, &psrc);
		if (ret == -EOPNOTSUPP)
			ret = xrefs_to_own(c, ms);
		if (ret)
			return ret;
	}
	if (c->opts->pre_dump && fault_at("pre-dump:exit", NULL))
		kill_for_test(c);
	ret = page_sink_open(c, &sink);
	if (!ret) {
		ret = copy_pages(c->ospid, &ms->own, sink, &len);
		if (ret && c->opts->pre_dump && task_gone(c)) {
			/* a pre-dump copies while the tree runs: a process that exited
			 * meanwhile is left out of the image (the next pass finds it gone) */
			page_source_close(psrc);
			pr_info("pre-dump: pid %d exited while its pages were copied: left out",
				c->pid);
			c->gone = true;
			return page_sink_discard(sink);
		}
		if (ret)
			page_sink_abort(sink);
	}
	if (ret) {
		page_source_close(psrc);
		return ret;
	}
	uint64_t off = PAGE_STREAM_START;
	for (size_t i = 0; i < ms->own.nr; i++) {
		ms->own.runs[i]->offset = off;
		off += ms->own.runs[i]->nr_pages * PAGE_SIZE;
	}
	mm->has_pages_size = true;
	mm->pages_size = len;
	ret = page_sink_commit(sink);
	if (!ret && psrc)
		ret = resolve_xrefs(ms, psrc);
	page_source_close(psrc);
	pr_info("mem: %zu vmas, %zu page runs, %llu bytes of pages", mm->n_vmas, mm->n_pages,
		(unsigned long long)mm->pages_size);
	return ret;
}

/* ------------------------------------------------------------------ restore */

/* Copy page runs from the page source into the task, verifying checksums.
 *
 * The runs are cut into pieces (HASH_PIECE, run-relative); two threads take batches of
 * consecutive pieces (up to COPY_CHUNK bytes, up to MAX_IOV ranges: one
 * process_vm_writev each), hash each piece while it is hot and copy the batch: the
 * page-cache read, the hashing and the faults of the target's fresh pages run on both
 * cores. A source with mapped bytes (the pages file) is copied from directly; another
 * fills a buffer per thread first. Each run's hash is then combined from its pieces'
 * hashes in order.
 *
 * Through a userfaultfd where it can: process_vm_writev faults every fresh page of the
 * task in (cleared, then copied over, each page pinned and found by a page-table walk
 * first), while UFFDIO_COPY allocates the page, copies into it and maps it (1 GiB from a
 * tmpfs file into fresh memory, two threads: 0.84-1.3 s against 0.21-0.28 s here). So
 * the private anonymous areas holding pieces are registered (MODE_MISSING) with a
 * userfaultfd the stopped task makes (UFFD_USER_MODE_ONLY: no rights needed; nothing
 * faults in them before they are unregistered, at the end of the fill) and filled with
 * UFFDIO_COPY. Not an area where a fault could map a transparent huge page (the THP
 * settings and the area's madvise): UFFDIO_COPY maps small pages only, and a restore
 * keeps its huge-page fault rate and the task's huge pages. A piece UFFDIO_COPY cannot
 * fill (a page already there, the userfaultfd unavailable) goes through
 * process_vm_writev. */
struct piece {
	uint32_t run;
	uint32_t vma;    /* the area its run lies in */
	bool uffd;       /* in an area registered with fill_job.uffd */
	uint64_t off, len;
	uint64_t hash;
	const char *src; /* the run's data mapped by the source, or NULL: read() it */
};

struct fill_job {
	struct rst_ctx *c;
	struct piece *pc;
	size_t npc;
	size_t next; /* next piece to take (atomic) */
	int err;     /* first error (atomic) */
	int uffd;    /* the task's userfaultfd, or -1 */
	uint64_t bytes, by_uffd; /* copied, of which with UFFDIO_COPY (atomic) */
};

/* Fewer bytes than this in registrable areas: not worth the task's userfaultfd (a few
 * remote calls). */
#define UFFD_FILL_MIN (4u << 20)

bool mem_vma_uffd(const Vma *v)
{
	return !(v->flags & MAP_SHARED) && !v->has_huge_kb &&
	       (v->kind == VMA_KIND__VMA_ANON || v->kind == VMA_KIND__VMA_HEAP ||
		v->kind == VMA_KIND__VMA_STACK);
}

#define THP_DIR "/sys/kernel/mm/transparent_hugepage"

/* 'a'lways, 'i'nherit, 'm'advise, 'n'ever: the bracketed word of a THP "enabled" file;
 * 0 if it cannot be read or is none of them. */
static int thp_word(const char *path)
{
	_cleanup_free_ char *s = read_file_at(AT_FDCWD, path, 256, NULL);
	const char *b = s ? strchr(s, '[') : NULL;
	static const char *const words[] = { "[always]", "[inherit]", "[madvise]", "[never]" };
	for (size_t i = 0; b && i < ARRAY_SIZE(words); i++)
		if (str_starts(b, words[i]))
			return words[i][1];
	return 0;
}

/* Whether a fault may map a folio larger than a page anywhere (always) or in an area
 * given MADV_HUGEPAGE (advised): the PMD size's setting and every mTHP size's. Settings
 * that cannot be read count as "always". */
static struct {
	bool always, advised;
} thp;

static void thp_read(void)
{
	int top = thp_word(THP_DIR "/enabled");
	if (!top && access(THP_DIR, F_OK) && errno == ENOENT)
		return; /* a kernel without THP */
	thp.always = top == 'a' || !top;
	thp.advised = top == 'm';
	DIR *d = opendir(THP_DIR);
	struct dirent *de;
	while (d && (de = readdir(d))) {
		char path[300];
		if (!str_starts(de->d_name, "hugepages-"))
			continue;
		snprintf(path, sizeof(path), THP_DIR "/%s/enabled", de->d_name);
		int w = thp_word(path);
		if (!w && access(path, F_OK) && errno == ENOENT)
			continue; /* a size for shmem only */
		w = w == 'i' ? top : w;
		thp.always |= w == 'a' || !w;
		thp.advised |= w == 'm';
	}
	if (d)
		closedir(d);
}

/* A fault in @v could map a large folio: its pieces keep process_vm_writev. */
static bool thp_may_fault(const Vma *v)
{
	static pthread_once_t once = PTHREAD_ONCE_INIT;
	pthread_once(&once, thp_read);
	if (v->madv & MADV_BIT_NOHUGEPAGE)
		return false;
	return thp.always || (thp.advised && (v->madv & MADV_BIT_HUGEPAGE));
}

/* Up to @len bytes at @dst of the task copied from @src with UFFDIO_COPY: how many. */
static uint64_t uffd_copy(int uffd, uint64_t dst, const char *src, uint64_t len)
{
	uint64_t done = 0;
	for (int again = 0; done < len && again < 8;) {
		struct uffdio_copy cp = { .dst = dst + done,
					  .src = (uint64_t)(uintptr_t)(src + done),
					  .len = len - done,
					  .mode = UFFDIO_COPY_MODE_DONTWAKE };
		if (!ioctl(uffd, UFFDIO_COPY, &cp))
			return len;
		if (cp.copy > 0)
			done += (uint64_t)cp.copy;
		else if (errno == EAGAIN)
			again++;
		else
			break;
	}
	return done;
}

/* The areas of the pieces UFFDIO_COPY may fill, registered with a userfaultfd of the
 * task (their pieces marked): *@uffd, or -1 with no piece marked when there are too few
 * bytes or the task cannot have one. reg[k] (n_vmas + 1 of them): area k registered. */
static int uffd_prepare(struct rst_ctx *c, struct piece *pc, size_t npc, bool *reg, int *uffd)
{
	const Mm *mm = c->mm;
	uint64_t bytes = 0;
	*uffd = -1;
	for (size_t q = 0, vi = 0; q < npc; q++) {
		const PageRun *r = mm->pages[pc[q].run];
		while (vi < mm->n_vmas && mm->vmas[vi]->end <= r->vaddr)
			vi++;
		pc[q].vma = (uint32_t)vi; /* (mem_validate: every run lies in an area) */
		if (vi < mm->n_vmas && mem_vma_uffd(mm->vmas[vi]) && !thp_may_fault(mm->vmas[vi])) {
			reg[vi] = true;
			bytes += pc[q].len;
		}
	}
	if (bytes < UFFD_FILL_MIN)
		return 0;
	_cleanup_close_ int pidfd = sys_pidfd_open(c->pid, 0);
	int fd = -1;
	int ret = pidfd < 0 ? 1
			    : mem_task_uffd(&c->rs, c->pid, pidfd, UFFD_USER_MODE_ONLY, true, &fd);
	if (ret > 0)
		pr_debug("restore: pid %d has no userfaultfd to fill its memory", c->pid);
	if (ret)
		return ret > 0 ? 0 : ret;
	struct uffdio_api api = { .api = UFFD_API };
	if (ioctl(fd, UFFDIO_API, &api) < 0) {
		pr_debug("restore: pid %d: UFFDIO_API: %s", c->pid, strerror(errno));
		close(fd);
		return 0;
	}
	for (size_t i = 0; i < mm->n_vmas; i++) {
		const Vma *v = mm->vmas[i];
		struct uffdio_register rg = { .range = { v->start, v->end - v->start },
					      .mode = UFFDIO_REGISTER_MODE_MISSING };
		if (reg[i] && ioctl(fd, UFFDIO_REGISTER, &rg) < 0) {
			pr_debug("restore: pid %d: register %llx-%llx: %s", c->pid,
				 (unsigned long long)v->start, (unsigned long long)v->end,
				 strerror(errno));
			reg[i] = false;
		}
	}
	for (size_t q = 0; q < npc; q++)
		pc[q].uffd = reg[pc[q].vma]; /* (reg[n_vmas]: false) */
	*uffd = fd;
	return 0;
}

/* The areas unregistered, the userfaultfd closed (which would unregister them too). */
static void uffd_done(const Mm *mm, const bool *reg, int uffd)
{
	if (uffd < 0)
		return;
	for (size_t i = 0; i < mm->n_vmas; i++) {
		const Vma *v = mm->vmas[i];
		struct uffdio_range rg = { v->start, v->end - v->start };
		if (reg[i] && ioctl(uffd, UFFDIO_UNREGISTER, &rg) < 0)
			pr_debug("restore: unregister %llx-%llx: %s", (unsigned long long)v->start,
				 (unsigned long long)v->end, strerror(errno));
	}
	close(uffd);
}

static void fill_fail(struct fill_job *j, int err, bool log, uint64_t total, uint64_t at)
{
	int zero = 0;
	if (__atomic_compare_exchange_n(&j->err, &zero, err, false, __ATOMIC_ACQ_REL,
					__ATOMIC_RELAXED) && log)
		pr_err("restore: write %llu bytes at %llx into pid %d: %s",
		       (unsigned long long)total, (unsigned long long)at, j->c->pid, strerror(-err));
}

/* Claim a batch: consecutive pieces up to COPY_CHUNK bytes. false when none is left. */
static bool claim(struct fill_job *j, size_t *first, size_t *last)
{
	*first = __atomic_load_n(&j->next, __ATOMIC_RELAXED);
	do {
		if (*first >= j->npc)
			return false;
		uint64_t bytes = 0;
		*last = *first;
		while (*last < j->npc && *last - *first < MAX_IOV &&
		       (*last == *first || bytes + j->pc[*last].len <= COPY_CHUNK))
			bytes += j->pc[(*last)++].len;
	} while (!__atomic_compare_exchange_n(&j->next, first, *last, false, __ATOMIC_ACQ_REL,
					      __ATOMIC_RELAXED));
	return true;
}

/* The source's mapping of a piece brought in before it is read, or let go once it is
 * copied (the page cache stays): by the two copying threads, not once for the whole file
 * at its mmap and munmap (a quarter of a 2 GiB restore on one core). */
static void source_pages(const char *src, uint64_t len, int advice)
{
	uintptr_t lo = (uintptr_t)src & ~(uintptr_t)(PAGE_SIZE - 1);
	(void)madvise((void *)lo, (uintptr_t)src + len - lo, advice);
}

/* A copy failed with EFAULT or stopped short: if the source's mapping is what failed
 * (its file truncated since it was mapped), reading it raises the SIGBUS whose handler
 * names the file (src/cli/restore.c) rather than "Bad address". */
static void touch_source(const struct iovec *iov, size_t n)
{
	for (size_t k = 0; k < n; k++)
		for (size_t off = 0; off < iov[k].iov_len; off += PAGE_SIZE)
			(void)*(const volatile char *)((const char *)iov[k].iov_base + off);
}

static void *fill_worker(void *arg)
{
	struct fill_job *j = arg;
	struct iovec liov[MAX_IOV], riov[MAX_IOV];
	char *bounce = NULL; /* for pieces the source does not map */
	size_t first, last;

	while (!__atomic_load_n(&j->err, __ATOMIC_RELAXED) && claim(j, &first, &last)) {
		size_t n = 0;
		uint64_t total = 0, boff = 0, copied = 0;
		int ret = 0;
		for (size_t k = first; k < last; k++) {
			struct piece *p = &j->pc[k];
			const PageRun *r = j->c->mm->pages[p->run];
			const char *src = p->src ? p->src + p->off : NULL;
			if (!src && !bounce && !(bounce = malloc(COPY_CHUNK)))
				ret = -ENOMEM;
			else if (!src && !(ret = page_source_read(j->c->pages, r, p->off,
								   bounce + boff, p->len)))
				src = bounce + boff;
			if (ret)
				break;
			boff += p->src ? 0 : p->len;
			if (p->src)
				source_pages(src, p->len, MADV_POPULATE_READ);
			p->hash = XXH3_64bits(src, p->len);
			uint64_t done = p->uffd ? uffd_copy(j->uffd, r->vaddr + p->off, src, p->len) : 0;
			copied += done;
			if (p->src && done == p->len)
				source_pages(src, p->len, MADV_DONTNEED);
			if (done == p->len)
				continue;
			liov[n] = (struct iovec){ (void *)(src + done), p->len - done };
			riov[n] = (struct iovec){ (void *)(uintptr_t)(r->vaddr + p->off + done),
						  p->len - done };
			total += p->len - done;
			n++;
		}
		if (ret) {
			fill_fail(j, ret, false, 0, 0);
			break;
		}
		ssize_t w = n ? process_vm_writev(j->c->pid, liov, n, riov, n, 0) : 0;
		if ((w < 0 && errno == EFAULT) || (w >= 0 && w < (ssize_t)total))
			touch_source(liov, n);
		if (w != (ssize_t)total) {
			fill_fail(j, w < 0 ? -errno : -EFAULT, true, total,
				  (uint64_t)(uintptr_t)riov[0].iov_base);
			break;
		}
		progress_add(total + copied);
		__atomic_add_fetch(&j->bytes, total + copied, __ATOMIC_RELAXED);
		__atomic_add_fetch(&j->by_uffd, copied, __ATOMIC_RELAXED);
	}
	free(bounce);
	return NULL;
}

/* Every run's data from the source: a pointer per piece, or NULL to read() it. */
static int map_pieces(struct rst_ctx *c, struct piece *pc, size_t npc)
{
	for (size_t i = 0, q = 0; i < c->mm->n_pages; i++) {
		const PageRun *r = c->mm->pages[i];
		const char *base = page_source_map(c->pages, r, 0, r->nr_pages * PAGE_SIZE);
		if (!base && errno != EOPNOTSUPP)
			return -errno;
		for (; q < npc && pc[q].run == i; q++)
			pc[q].src = base;
	}
	return 0;
}

static int check_hashes(const Mm *mm, const struct piece *pc, size_t npc, const bool *skip)
{
	XXH3_state_t *acc = XXH3_createState();
	int ret = 0;
	if (!acc)
		return -ENOMEM;
	for (size_t i = 0, k = 0; i < mm->n_pages && !ret; i++) {
		const PageRun *r = mm->pages[i];
		if (skip && skip[i])
			continue;
		XXH3_64bits_reset(acc);
		for (; k < npc && pc[k].run == i; k++)
			XXH3_64bits_update(acc, &pc[k].hash, sizeof(pc[k].hash));
		/* a run in a parent image: its run there was verified (mem_chain_validate) */
		if (!r->has_parent_depth && XXH3_64bits_digest(acc) != r->xxh64) {
			pr_err("restore: pages at %llx-%llx: checksum mismatch (pages image corrupted)",
			       (unsigned long long)r->vaddr,
			       (unsigned long long)(r->vaddr + r->nr_pages * PAGE_SIZE));
			ret = -EBADMSG;
		}
	}
	XXH3_freeState(acc);
	return ret;
}

int mem_fill_pages(struct rst_ctx *c)
{
	return mem_fill_runs(c, NULL);
}

int mem_fill_runs(struct rst_ctx *c, const bool *skip)
{
	size_t npc = 0;
	for (size_t i = 0; i < c->mm->n_pages; i++)
		if (!skip || !skip[i])
			npc += (c->mm->pages[i]->nr_pages * PAGE_SIZE + HASH_PIECE - 1) / HASH_PIECE;
	if (!npc)
		return 0;
	_cleanup_free_ struct piece *pc = calloc(npc, sizeof(*pc));
	if (!pc)
		return -ENOMEM;
	size_t k = 0;
	for (size_t i = 0; i < c->mm->n_pages; i++) {
		if (skip && skip[i])
			continue;
		uint64_t len = c->mm->pages[i]->nr_pages * PAGE_SIZE;
		for (uint64_t off = 0; off < len; off += HASH_PIECE)
			pc[k++] = (struct piece){ .run = (uint32_t)i,
						  .off = off,
						  .len = MIN((uint64_t)HASH_PIECE, len - off) };
	}
	_cleanup_free_ bool *reg = calloc(c->mm->n_vmas + 1, sizeof(bool));
	struct fill_job j = { .c = c, .pc = pc, .npc = npc, .uffd = -1 };
	c->pages->no_populate = true;
	int ret = reg ? map_pieces(c, pc, npc) : -ENOMEM;
	if (!ret)
		ret = uffd_prepare(c, pc, npc, reg, &j.uffd);
	if (!ret) {
		uint64_t all = 0;
		for (size_t q = 0; q < npc; q++)
			all += pc[q].len;
		progress_begin("restore", all);
		pthread_t helper;
		bool two = npc > 4 && pthread_create(&helper, NULL, fill_worker, &j) == 0;
		fill_worker(&j);
		if (two)
			pthread_join(helper, NULL);
		progress_end();
		ret = j.err;
	}
	uffd_done(c->mm, reg, j.uffd);
	pr_debug("restore: pid %d: %llu KiB of pages copied in, %llu KiB through a userfaultfd",
		 c->pid, (unsigned long long)(j.bytes >> 10), (unsigned long long)(j.by_uffd >> 10));
	page_source_release(c->pages);
	return ret ? ret : check_hashes(c->mm, pc, npc, skip);
}
