/* Compressed pages files (src/mem/pagez.h): `dump --compress`.
 *
 * The sink is the pages file's writer pipeline (src/mem/pwriter.c) with a transform: the
 * writer thread compresses each buffer into one zstd frame before writing it, so the
 * frozen task is read while the previous buffer is compressed. The frames lie back to
 * back after the header page; at commit the frame index follows them and the header
 * (IMG_F_PAGES_ZSTD, struct img_pages_z) says where it is and what it hashes to.
 *
 * The reader maps the file (not populated), checks the whole index at open (every field
 * is untrusted: bounds, order, sizes), then serves any range of the uncompressed stream: the frames covering it are
 * found by binary search, read, checked against their XXH3 and decompressed into one of
 * a few cache slots (a frame is usually asked for piece by piece), each with its own
 * decompression context and lock, so several threads read at once. */
#include "mem/pagez.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>
#include <xxhash.h>
#include <zstd.h>

#include "core/log.h"
#include "mem/pwriter.h"

#define PAGEZ_SLOTS 4

/* ------------------------------------------------------------------ sink */

struct pagez_sink {
	struct page_sink s;
	struct img_dir *d;
	struct img_pages pg;
	struct pwriter *pw;
	int level;
	ZSTD_CCtx *cctx; /* the writer thread's */
	char *zbuf;
	size_t zcap;
	struct pagez_frame *fr;
	size_t nfr, capfr;
	uint64_t ustart, coff;
};

/* Writer thread: compress one buffer into a frame and index it. */
static int pzs_xform(void *arg, const char *in, size_t len, const void **out, size_t *outlen)
{
	struct pagez_sink *zs = arg;
	if (zs->nfr == zs->capfr) {
		size_t cap = zs->capfr ? zs->capfr * 2 : 64;
		void *n = realloc(zs->fr, cap * sizeof(*zs->fr));
		if (!n)
			return -ENOMEM;
		zs->fr = n;
		zs->capfr = cap;
	}
	size_t c = ZSTD_compressCCtx(zs->cctx, zs->zbuf, zs->zcap, in, len, zs->level);
	if (ZSTD_isError(c)) {
		pr_err("pages: zstd compression: %s", ZSTD_getErrorName(c));
		return -EIO;
	}
	zs->fr[zs->nfr++] = (struct pagez_frame){ .ustart = zs->ustart,
						   .coff = zs->coff,
						   .clen = (uint32_t)c,
						   .ulen = (uint32_t)len,
						   .xxh64 = XXH3_64bits(zs->zbuf, c) };
	zs->ustart += len;
	zs->coff += c;
	*out = zs->zbuf;
	*outlen = c;
	return 0;
}

static int pzs_get_buf(struct page_sink *s, void **buf, size_t *cap)
{
	struct pagez_sink *zs = s->priv;
	char *b;
	int ret = pwriter_get(zs->pw, &b);
	*buf = b;
	*cap = PAGEFILE_BUF;
	return ret;
}

static int pzs_put(struct page_sink *s, void *buf, size_t len, const struct iovec *iov,
		   size_t niov)
{
	struct pagez_sink *zs = s->priv;
	(void)buf, (void)iov, (void)niov;
	if (len)
		pwriter_put(zs->pw, len);
	return 0;
}

static void pzs_free(struct pagez_sink *zs)
{
	if (zs->pg.fd >= 0)
		close(zs->pg.fd);
	ZSTD_freeCCtx(zs->cctx);
	free(zs->zbuf);
	free(zs->fr);
	free(zs);
}

static int pzs_commit(struct page_sink *s)
{
	struct pagez_sink *zs = s->priv;
	int ret = pwriter_finish(zs->pw);
	size_t ilen = zs->nfr * sizeof(*zs->fr);
	if (!ret && ilen && (ret = img_pages_pwrite(&zs->pg, zs->fr, ilen, (off_t)zs->coff)))
		pr_errno(ret, "pages: write the frame index");
	if (!ret) {
		zs->pg.flags = IMG_F_PAGES_ZSTD;
		zs->pg.len = zs->coff + ilen - IMG_PAGES_HDR_SIZE;
		zs->pg.z = (struct img_pages_z){ .stream_len = zs->ustart - PAGE_STREAM_START,
						 .index_off = zs->coff,
						 .nr_frames = zs->nfr,
						 .index_xxh64 = XXH3_64bits(zs->fr, ilen) };
		ret = img_pages_finish(zs->d, &zs->pg);
	}
	pzs_free(zs);
	return ret;
}

static void pzs_abort(struct page_sink *s)
{
	struct pagez_sink *zs = s->priv;
	int ret = pwriter_finish(zs->pw); /* logs a write error */
	(void)ret;
	pzs_free(zs);
}

static int pzs_discard(struct page_sink *s)
{
	struct pagez_sink *zs = s->priv;
	int ret = pwriter_finish(zs->pw);
	(void)ret; /* what it wrote goes anyway */
	ret = img_pages_discard(zs->d, &zs->pg);
	pzs_free(zs);
	return ret;
}

static const struct page_sink_ops pagez_sink_ops = {
	.get_buf = pzs_get_buf,
	.put = pzs_put,
	.commit = pzs_commit,
	.abort = pzs_abort,
	.discard = pzs_discard,
};

int pagez_sink_open(struct img_dir *d, int pid, int level, struct page_sink **out)
{
	struct pagez_sink *zs = calloc(1, sizeof(*zs));
	if (!zs)
		return -ENOMEM;
	zs->pg.fd = -1;
	zs->d = d;
	zs->level = level;
	zs->ustart = PAGE_STREAM_START;
	zs->coff = IMG_PAGES_HDR_SIZE;
	zs->zcap = ZSTD_compressBound(PAGEFILE_BUF);
	zs->cctx = ZSTD_createCCtx();
	zs->zbuf = malloc(zs->zcap);
	int ret = zs->cctx && zs->zbuf ? img_pages_create(d, pid, &zs->pg) : -ENOMEM;
	if (!ret)
		ret = pwriter_start(&zs->pw, &zs->pg, IMG_PAGES_HDR_SIZE, PAGEFILE_BUF);
	if (ret) {
		pzs_free(zs);
		return ret;
	}
	pwriter_set_xform(zs->pw, pzs_xform, zs);
	zs->s = (struct page_sink){ .ops = &pagez_sink_ops, .priv = zs };
	*out = &zs->s;
	return 0;
}

/* ------------------------------------------------------------------ reader */

struct pagez_slot {
	pthread_mutex_t mu;
	size_t frame; /* cached in buf, or SIZE_MAX */
	ZSTD_DCtx *dctx;
	char *buf;
};

struct pagez {
	const char *map; /* the whole file, mapped (not populated): a process forked later
			  * with its fds closed (the lazy page server) reads on */
	size_t maplen;
	int pid;
	uint64_t stream_len;
	struct pagez_frame *fr;
	size_t n;
	struct pagez_slot slot[PAGEZ_SLOTS];
};

int pagez_check_index(const struct pagez_frame *f, uint64_t n, const struct img_pages_z *zh,
		      uint64_t file_len, const char *what)
{
	uint64_t u = PAGE_STREAM_START, c = IMG_PAGES_HDR_SIZE;
	if (zh->index_off < IMG_PAGES_HDR_SIZE || zh->index_off > file_len ||
	    zh->nr_frames != n || n > (file_len - zh->index_off) / sizeof(*f) ||
	    n * sizeof(*f) != file_len - zh->index_off) {
		pr_err("%s: compressed pages: frame index out of bounds", what);
		return -EBADMSG;
	}
	for (uint64_t i = 0; i < n; i++) {
		if (f[i].ustart != u || f[i].coff != c || !f[i].ulen || f[i].ulen > PAGEFILE_BUF ||
		    !f[i].clen || f[i].clen > ZSTD_compressBound(PAGEFILE_BUF) ||
		    f[i].clen > zh->index_off - c ||
		    f[i].ulen > zh->stream_len - (u - PAGE_STREAM_START)) {
			pr_err("%s: compressed pages: frame %llu of the index is invalid", what,
			       (unsigned long long)i);
			return -EBADMSG;
		}
		u += f[i].ulen;
		c += f[i].clen;
	}
	if (c != zh->index_off || u - PAGE_STREAM_START != zh->stream_len) {
		pr_err("%s: compressed pages: the frames do not cover the stream", what);
		return -EBADMSG;
	}
	return 0;
}

void pagez_close(struct pagez *z)
{
	if (!z)
		return;
	for (int i = 0; i < PAGEZ_SLOTS; i++) {
		ZSTD_freeDCtx(z->slot[i].dctx);
		free(z->slot[i].buf);
		pthread_mutex_destroy(&z->slot[i].mu);
	}
	if (z->map)
		munmap((void *)z->map, z->maplen);
	free(z->fr);
	free(z);
}

int pagez_open(const struct img_pages *pg, int pid, struct pagez **out)
{
	char what[64];
	snprintf(what, sizeof(what), "images: pages-%d.img", pid);
	const struct img_pages_z *zh = &pg->z;
	uint64_t file_len = IMG_PAGES_HDR_SIZE + pg->len;
	struct pagez *z = calloc(1, sizeof(*z));
	if (!z)
		return -ENOMEM;
	for (int i = 0; i < PAGEZ_SLOTS; i++) {
		pthread_mutex_init(&z->slot[i].mu, NULL);
		z->slot[i].frame = SIZE_MAX;
	}
	int ret = -EBADMSG;
	if (zh->index_off < IMG_PAGES_HDR_SIZE || zh->index_off > file_len ||
	    zh->nr_frames > (file_len - zh->index_off) / sizeof(*z->fr)) {
		pr_err("%s: compressed pages: frame index out of bounds", what);
		goto err;
	}
	z->n = (size_t)zh->nr_frames;
	size_t ilen = z->n * sizeof(*z->fr);
	z->fr = malloc(ilen ? ilen : 1);
	if (!z->fr) {
		ret = -ENOMEM;
		goto err;
	}
	void *m = mmap(NULL, (size_t)file_len, PROT_READ, MAP_SHARED, pg->fd, 0);
	if (m == MAP_FAILED) {
		ret = pr_perror("%s: map", what);
		goto err;
	}
	z->map = m;
	z->maplen = (size_t)file_len;
	memcpy(z->fr, z->map + zh->index_off, ilen); /* copied: checked once, then used */
	if (XXH3_64bits(z->fr, ilen) != zh->index_xxh64) {
		pr_err("%s: compressed pages: frame index checksum mismatch", what);
		ret = -EBADMSG;
		goto err;
	}
	ret = pagez_check_index(z->fr, z->n, zh, file_len, what);
	if (ret)
		goto err;
	z->pid = pid;
	z->stream_len = zh->stream_len;
	*out = z;
	return 0;
err:
	pagez_close(z);
	return ret;
}

uint64_t pagez_stream_len(const struct pagez *z) { return z->stream_len; }

/* Frame @i into @sl (locked): read, checked, decompressed. */
static int load_frame(struct pagez *z, struct pagez_slot *sl, size_t i)
{
	const struct pagez_frame *f = &z->fr[i];
	if (sl->frame == i)
		return 0;
	sl->frame = SIZE_MAX;
	if (!sl->dctx && !(sl->dctx = ZSTD_createDCtx()))
		return -ENOMEM;
	if (!sl->buf && !(sl->buf = malloc(PAGEFILE_BUF)))
		return -ENOMEM;
	const char *cdata = z->map + f->coff; /* in the file: the index was checked */
	if (XXH3_64bits(cdata, f->clen) != f->xxh64) {
		pr_err("images: pages-%d.img: compressed frame %zu is corrupted (checksum mismatch)",
		       z->pid, i);
		return -EBADMSG;
	}
	size_t d = ZSTD_decompressDCtx(sl->dctx, sl->buf, f->ulen, cdata, f->clen);
	if (ZSTD_isError(d) || d != f->ulen) {
		pr_err("images: pages-%d.img: compressed frame %zu does not decompress: %s",
		       z->pid, i, ZSTD_isError(d) ? ZSTD_getErrorName(d) : "wrong length");
		return -EBADMSG;
	}
	sl->frame = i;
	return 0;
}

int pagez_read(struct pagez *z, uint64_t off, void *buf, size_t len)
{
	if (off < PAGE_STREAM_START || off - PAGE_STREAM_START > z->stream_len ||
	    len > z->stream_len - (off - PAGE_STREAM_START)) {
		pr_err("image: a page range lies outside pid %d's compressed stream", z->pid);
		return -EINVAL;
	}
	size_t lo = 0, hi = z->n; /* the last frame starting at or before off */
	while (hi - lo > 1) {
		size_t mid = lo + (hi - lo) / 2;
		if (z->fr[mid].ustart <= off)
			lo = mid;
		else
			hi = mid;
	}
	char *dst = buf;
	for (size_t i = lo; len; i++) {
		const struct pagez_frame *f = &z->fr[i]; /* the index covers the stream */
		uint64_t in = off - f->ustart;
		size_t n = (size_t)MIN((uint64_t)len, f->ulen - in);
		struct pagez_slot *sl = &z->slot[i % PAGEZ_SLOTS];
		pthread_mutex_lock(&sl->mu);
		int ret = load_frame(z, sl, i);
		if (!ret)
			memcpy(dst, sl->buf + in, n);
		pthread_mutex_unlock(&sl->mu);
		if (ret)
			return ret;
		dst += n;
		off += n;
		len -= n;
	}
	return 0;
}
