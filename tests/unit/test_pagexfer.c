/* Unit tests of the page transport (src/mem/pagexfer.h) and its local implementation
 * (src/mem/pagefile.c): a stream written through the pages-file sink reads back through
 * the source, mapped and into a buffer, for runs of this process and of another one
 * (src_pid); ranges outside a run or outside the file are refused; an aborted sink leaks
 * nothing. Then the restore's copy into a task (src/mem/pages.c mem_fill_pages) into a
 * forked child, straight from the mapped file and through a source that only reads
 * (what a decompressing or remote source will be), and a checksum mismatch caught.
 * Compressed pages files (src/mem/pagez.c) through the same source, and hostile frame
 * indexes. */
#include <fcntl.h>
#include <ftw.h>
#include <signal.h>
#include <stdio.h>
#include <sys/mman.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <unistd.h>
#include <xxhash.h>

#include "core/log.h"
#include "mem/internal.h" /* mem_fill_pages: white-box */
#include "mem/pagexfer.h"
#include "mem/pagez.h"
#include "unit.h"

static char base[] = "/tmp/stasis-unit-pagexfer.XXXXXX";
static struct img_dir dir;

static int rm_one(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
	(void)sb;
	(void)flag;
	(void)ftw;
	return remove(path);
}

static unsigned char pattern(int pid, uint64_t pos)
{
	return (unsigned char)(pos * 7 + (uint64_t)pid * 13 + (pos >> 12));
}

/* Write @npages pages of pid @pid's pattern through the sink, in buffers of at most
 * 3 pages (several puts, one stream). */
static void write_stream_z(int pid, uint64_t npages, int level)
{
	struct page_sink *s = NULL;
	CHECK_EQ(level ? pagez_sink_open(&dir, pid, level, &s) : pagefile_sink_open(&dir, pid, &s),
		 0);
	if (!s)
		return;
	uint64_t pos = 0, total = npages * PAGE_SIZE;
	while (pos < total) {
		void *buf;
		size_t cap;
		CHECK_EQ(page_sink_get(s, &buf, &cap), 0);
		CHECK(cap >= 3 * PAGE_SIZE);
		size_t n = (size_t)MIN(total - pos, (uint64_t)3 * PAGE_SIZE);
		for (size_t i = 0; i < n; i++)
			((unsigned char *)buf)[i] = pattern(pid, pos + i);
		struct iovec iov = { (void *)(uintptr_t)(0x100000 + pos), n };
		CHECK_EQ(page_sink_put(s, buf, n, &iov, 1), 0);
		pos += n;
	}
	CHECK_EQ(page_sink_commit(s), 0);
}

static void write_stream(int pid, uint64_t npages)
{
	write_stream_z(pid, npages, 0);
}

static PageRun run(uint64_t vaddr, uint64_t nr_pages, uint64_t offset, int src_pid)
{
	PageRun r;
	page_run__init(&r);
	r.vaddr = vaddr;
	r.nr_pages = nr_pages;
	r.offset = offset;
	r.has_src_pid = src_pid != 0;
	r.src_pid = src_pid;
	return r;
}

static bool same(const void *p, int pid, uint64_t stream_pos, size_t len)
{
	for (size_t i = 0; i < len; i++)
		if (((const unsigned char *)p)[i] != pattern(pid, stream_pos + i))
			return false;
	return true;
}

static void t_roundtrip(void)
{
	write_stream(42, 8);
	write_stream(43, 4);
	struct page_source *src = NULL;
	CHECK_EQ(pagefile_source_open(dir.dfd, 42, &src), 0);
	if (!src)
		return;
	CHECK_EQ(src->len, 8 * PAGE_SIZE);
	/* run of 5 pages starting 3 pages into the stream */
	PageRun r = run(0x200000, 5, PAGE_STREAM_START + 3 * PAGE_SIZE, 0);
	const unsigned char *p = page_source_map(src, &r, PAGE_SIZE, 2 * PAGE_SIZE);
	CHECK(p && same(p, 42, 4 * PAGE_SIZE, 2 * PAGE_SIZE));
	static unsigned char buf[5 * 4096];
	CHECK_EQ(page_source_read(src, &r, 0, buf, 5 * PAGE_SIZE), 0);
	CHECK(same(buf, 42, 3 * PAGE_SIZE, 5 * PAGE_SIZE));
	/* a run in pid 43's stream */
	PageRun x = run(0x300000, 2, PAGE_STREAM_START + 2 * PAGE_SIZE, 43);
	CHECK_EQ(page_source_read(src, &x, 0, buf, 2 * PAGE_SIZE), 0);
	CHECK(same(buf, 43, 2 * PAGE_SIZE, 2 * PAGE_SIZE));
	page_source_release(src);
	p = page_source_map(src, &r, 0, PAGE_SIZE); /* usable again after release */
	CHECK(p && same(p, 42, 3 * PAGE_SIZE, PAGE_SIZE));

	/* untrusted ranges */
	PageRun bad[] = {
		run(0x200000, 6, PAGE_STREAM_START + 3 * PAGE_SIZE, 0), /* past the end */
		run(0x200000, 1, 0, 0),                                 /* in the header */
		run(0x200000, 1, UINT64_MAX - 100, 0),                  /* overflow */
		run(0x200000, 3, PAGE_STREAM_START + 2 * PAGE_SIZE, 43), /* past 43's end */
		run(0x200000, 1, PAGE_STREAM_START, 99),                /* no such file */
	};
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
		errno = 0;
		CHECK(!page_source_map(src, &bad[i], 0, PAGE_SIZE));
		CHECK(errno != 0 && errno != EOPNOTSUPP);
		CHECK(page_source_read(src, &bad[i], 0, buf, PAGE_SIZE) < 0);
	}
	/* a range outside its (valid) run */
	CHECK(!page_source_map(src, &r, 4 * PAGE_SIZE, 2 * PAGE_SIZE));
	CHECK(!page_source_map(src, &r, UINT64_MAX - 10, 20));
	CHECK_EQ(page_source_read(src, &r, 5 * PAGE_SIZE, buf, 1), -EINVAL);
	page_source_close(src);
	page_source_close(NULL);
}

/* A compressed stream (frames of 3 pages) reads back through the same source: map()
 * refuses with EOPNOTSUPP, read() serves ranges across frames, runs in an uncompressed
 * file of another pid mix in; a flipped byte of a frame is an error, as is a flipped
 * byte of the index (at open). */
static void t_compressed(void)
{
	write_stream_z(64, 10, 1);
	write_stream(65, 4);
	struct page_source *src = NULL;
	CHECK_EQ(pagefile_source_open(dir.dfd, 64, &src), 0);
	if (!src)
		return;
	CHECK_EQ(src->len, 10 * PAGE_SIZE);
	PageRun r = run(0x200000, 7, PAGE_STREAM_START + 2 * PAGE_SIZE, 0);
	errno = 0;
	CHECK(!page_source_map(src, &r, 0, PAGE_SIZE) && errno == EOPNOTSUPP);
	static unsigned char buf[8 * 4096];
	CHECK_EQ(page_source_read(src, &r, 0, buf, 7 * PAGE_SIZE), 0);
	CHECK(same(buf, 64, 2 * PAGE_SIZE, 7 * PAGE_SIZE));
	CHECK_EQ(page_source_read(src, &r, 100, buf, 5000), 0); /* across a frame's end */
	CHECK(same(buf, 64, 2 * PAGE_SIZE + 100, 5000));
	PageRun x = run(0x300000, 2, PAGE_STREAM_START + PAGE_SIZE, 65);
	CHECK_EQ(page_source_read(src, &x, 0, buf, 2 * PAGE_SIZE), 0);
	CHECK(same(buf, 65, PAGE_SIZE, 2 * PAGE_SIZE));
	PageRun past = run(0x200000, 3, PAGE_STREAM_START + 8 * PAGE_SIZE, 0);
	CHECK_EQ(page_source_read(src, &past, 0, buf, 3 * PAGE_SIZE), -EINVAL);
	page_source_close(src);

	/* the header says where the index is: flip a byte of frame 1, then of the index */
	int fd = openat(dir.dfd, "pages-64.img", O_RDWR | O_CLOEXEC);
	struct img_pages_z z;
	CHECK(fd >= 0 && pread(fd, &z, sizeof(z), sizeof(struct img_hdr)) == sizeof(z));
	CHECK_EQ(z.nr_frames, 4);
	struct pagez_frame f1;
	CHECK(pread(fd, &f1, sizeof(f1), (off_t)(z.index_off + sizeof(f1))) == sizeof(f1));
	unsigned char b;
	CHECK(pread(fd, &b, 1, (off_t)f1.coff + 5) == 1);
	b ^= 0xff;
	CHECK(pwrite(fd, &b, 1, (off_t)f1.coff + 5) == 1);
	src = NULL;
	CHECK_EQ(pagefile_source_open(dir.dfd, 64, &src), 0);
	if (src) {
		CHECK_EQ(page_source_read(src, &r, 0, buf, PAGE_SIZE), 0); /* frame 0 */
		CHECK_EQ(page_source_read(src, &r, PAGE_SIZE, buf, PAGE_SIZE), -EBADMSG);
		page_source_close(src);
	}
	CHECK(pread(fd, &b, 1, (off_t)z.index_off + 3) == 1);
	b ^= 0xff;
	CHECK(pwrite(fd, &b, 1, (off_t)z.index_off + 3) == 1);
	src = NULL;
	CHECK_EQ(pagefile_source_open(dir.dfd, 64, &src), -EBADMSG);
	close(fd);
}

/* Hostile frame indexes: every field checked, a clear refusal, no overflow. */
static void t_hostile_index(void)
{
	const uint64_t H = IMG_PAGES_HDR_SIZE;
	struct pagez_frame good[3] = {
		{ PAGE_STREAM_START, H, 100, 8192, 0 },
		{ PAGE_STREAM_START + 8192, H + 100, 50, 4096, 0 },
		{ PAGE_STREAM_START + 12288, H + 150, 10, 4096, 0 },
	};
	struct img_pages_z zh = { .stream_len = 16384, .index_off = H + 160, .nr_frames = 3 };
	uint64_t flen = H + 160 + sizeof(good);
	CHECK_EQ(pagez_check_index(good, 3, &zh, flen, "t"), 0);
	struct pagez_frame f[3];
	struct img_pages_z z;
#define HOSTILE(stmt)                                                                       	do {                                                                                		memcpy(f, good, sizeof(f));                                                 		z = zh;                                                                     		stmt;                                                                       		CHECK_EQ(pagez_check_index(f, 3, &z, flen, "t"), -EBADMSG);                 	} while (0)
	HOSTILE(f[1].ustart += 1);                 /* a gap in the stream */
	HOSTILE(f[1].coff -= 1);                   /* overlapping frames */
	HOSTILE(f[0].ustart = 0);                  /* in the header */
	HOSTILE(f[2].ulen = 0);                    /* empty frame */
	HOSTILE(f[0].ulen = PAGEFILE_BUF + 1);     /* larger than any buffer put */
	HOSTILE(f[2].clen = 0);
	HOSTILE(f[2].clen = 11);                   /* runs into the index */
	HOSTILE(f[2].clen = UINT32_MAX);
	HOSTILE(z.stream_len = 16383);             /* frames past the stream */
	HOSTILE(z.stream_len = 20000);             /* the stream not covered */
	HOSTILE(z.nr_frames = 2);
	HOSTILE(z.index_off = H - 1);
	HOSTILE(z.index_off = flen + 1);
	HOSTILE(z.index_off = UINT64_MAX);
	HOSTILE(z.nr_frames = UINT64_MAX / 16);    /* n * 32 would wrap */
#undef HOSTILE
	CHECK_EQ(pagez_check_index(good, 3, &zh, flen + 1, "t"), -EBADMSG); /* trailing byte */
	z = zh;
	z.nr_frames = 0;
	z.stream_len = 0;
	z.index_off = flen;
	CHECK_EQ(pagez_check_index(good, 0, &z, flen, "t"), -EBADMSG); /* index_off: no frames */
	z.index_off = H;
	CHECK_EQ(pagez_check_index(good, 0, &z, H, "t"), 0); /* the empty stream */
}

static void t_abort(void)
{
	struct page_sink *s = NULL;
	CHECK_EQ(pagefile_sink_open(&dir, 44, &s), 0);
	if (!s)
		return;
	void *buf;
	size_t cap;
	CHECK_EQ(page_sink_get(s, &buf, &cap), 0);
	memset(buf, 1, PAGE_SIZE);
	struct iovec iov = { (void *)0x100000, PAGE_SIZE };
	CHECK_EQ(page_sink_put(s, buf, PAGE_SIZE, &iov, 1), 0);
	page_sink_abort(s);
	/* the same file cannot be created twice: the aborted one is still there (it goes
	 * with the temporary directory) */
	CHECK(pagefile_sink_open(&dir, 44, &s) < 0);
}

/* A source that never maps: the fill goes through read() into a buffer. */
static const void *ro_map(struct page_source *s, const PageRun *r, uint64_t off, uint64_t len)
{
	(void)s, (void)r, (void)off, (void)len;
	errno = EOPNOTSUPP;
	return NULL;
}
static int ro_read(struct page_source *s, const PageRun *r, uint64_t off, void *buf, size_t len)
{
	return page_source_read(s->priv, r, off, buf, len);
}
static void ro_release(struct page_source *s)
{
	(void)s;
}
static void ro_close(struct page_source *s)
{
	(void)s;
}
static const struct page_source_ops ro_ops = { .map = ro_map,
					       .read = ro_read,
					       .release = ro_release,
					       .close = ro_close };

static uint64_t run_sum(const void *data, size_t len)
{
	uint64_t ph = XXH3_64bits(data, len); /* one piece: runs are below HASH_PIECE here */
	return XXH3_64bits(&ph, sizeof(ph));
}

static void t_fill(void)
{
	const size_t area = 16 * PAGE_SIZE;
	unsigned char *mem = mmap(NULL, area, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
				  -1, 0);
	CHECK(mem != MAP_FAILED);
	pid_t child = fork();
	if (child == 0) {
		pause();
		_exit(0);
	}
	CHECK(child > 0);
	write_stream(45, 8);
	struct page_source *src = NULL;
	CHECK_EQ(pagefile_source_open(dir.dfd, 45, &src), 0);
	if (!src || child < 0)
		return;
	uint64_t a = (uint64_t)(uintptr_t)mem;
	PageRun r1 = run(a, 3, PAGE_STREAM_START, 0);
	PageRun r2 = run(a + 8 * PAGE_SIZE, 5, PAGE_STREAM_START + 3 * PAGE_SIZE, 0);
	static unsigned char want[8 * 4096], got[16 * 4096];
	for (size_t i = 0; i < sizeof(want); i++)
		want[i] = pattern(45, i);
	r1.xxh64 = run_sum(want, 3 * PAGE_SIZE);
	r2.xxh64 = run_sum(want + 3 * PAGE_SIZE, 5 * PAGE_SIZE);
	PageRun *runs[] = { &r1, &r2 };
	Mm mm;
	mm__init(&mm);
	mm.pages = runs;
	mm.n_pages = 2;
	struct page_source ro = { &ro_ops, src, src->len };
	struct page_source *which[] = { src, &ro };
	for (int k = 0; k < 2; k++) {
		struct rst_ctx c = { .pid = child, .mm = &mm, .pages = which[k] };
		memset(got, 0, sizeof(got));
		struct iovec l = { got, area }, rm = { mem, area };
		CHECK_EQ(process_vm_writev(child, &l, 1, &rm, 1, 0), (ssize_t)area);
		CHECK_EQ(mem_fill_pages(&c), 0);
		CHECK_EQ(process_vm_readv(child, &l, 1, &rm, 1, 0), (ssize_t)area);
		CHECK(!memcmp(got, want, 3 * PAGE_SIZE));
		CHECK(!memcmp(got + 8 * PAGE_SIZE, want + 3 * PAGE_SIZE, 5 * PAGE_SIZE));
		r2.xxh64 ^= 1;
		CHECK_EQ(mem_fill_pages(&c), -EBADMSG);
		r2.xxh64 ^= 1;
	}
	page_source_close(src);
	kill(child, SIGKILL);
	waitpid(child, NULL, 0);
	munmap(mem, area);
}

int main(void)
{
	if (log_init("/dev/null", LOG_ERR)) /* refusals below are expected */
		return 1;
	if (!mkdtemp(base))
		return 1;
	char path[256];
	snprintf(path, sizeof(path), "%s/img", base);
	if (img_dir_begin(&dir, path, false))
		return 1;
	RUN(t_roundtrip);
	RUN(t_abort);
	RUN(t_fill);
	RUN(t_compressed);
	RUN(t_hostile_index);
	img_dir_abort(&dir);
	nftw(base, rm_one, 16, FTW_DEPTH | FTW_PHYS);
	return unit_done();
}
