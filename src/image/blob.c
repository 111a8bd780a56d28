/* The blob store (the API and the format are described in blob.h). */
#include "image/blob.h"

#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <xxhash.h>

#include "core/log.h"

/* --- dump: the writer -------------------------------------------------------------- */

struct blob_writer {
	int fd;            /* blobs.img in the temporary directory */
	uint64_t len;      /* payload bytes written */
	uint64_t n_blobs, logical;
	uint8_t *chunk;    /* BLOB_CHUNK bytes: the chunk being filled */
	size_t fill;
	/* the blob begun (cur != NULL) */
	BlobRef *cur;
	char what[160];    /* its owner, for messages */
	uint64_t pos;      /* its logical position */
	size_t cap_ext, cap_xxh;
};

/* The directory's writer, created with blobs.img at the first blob; NULL with errno set
 * (the reason logged). */
static struct blob_writer *writer_get(struct img_dir *d)
{
	if (d->blobs)
		return d->blobs;
	struct blob_writer *w = calloc(1, sizeof(*w));
	if (!w || !(w->chunk = malloc(BLOB_CHUNK))) {
		free(w);
		errno = ENOMEM;
		return NULL;
	}
	w->fd = openat(d->dfd, BLOB_FILE, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (w->fd < 0) {
		int e = -pr_perror("images: create %s", BLOB_FILE);
		free(w->chunk);
		free(w);
		errno = e;
		return NULL;
	}
	d->blobs = w;
	return w;
}

/* Grow a protobuf-c repeated array (malloc'd, freed with the message) to hold @need. */
static int grow(uint64_t **arr, size_t *cap, size_t need)
{
	if (need <= *cap)
		return 0;
	size_t nc = *cap ? *cap * 2 : 16;
	while (nc < need)
		nc *= 2;
	uint64_t *t = realloc(*arr, nc * sizeof(**arr));
	if (!t)
		return -ENOMEM;
	*arr = t;
	*cap = nc;
	return 0;
}

/* Write the chunk being filled (if any) and record its checksum. */
static int flush_chunk(struct blob_writer *w)
{
	BlobRef *b = w->cur;
	if (!w->fill)
		return 0;
	int ret = grow(&b->chunk_xxh, &w->cap_xxh, b->n_chunk_xxh + 1);
	if (ret)
		return ret;
	ret = pwrite_all(w->fd, w->chunk, w->fill, (off_t)(IMG_BLOB_HDR_SIZE + w->len));
	if (ret)
		return pr_errno(ret, "images: write %s (%s)", BLOB_FILE, w->what);
	b->chunk_xxh[b->n_chunk_xxh++] = XXH3_64bits(w->chunk, w->fill);
	w->len += w->fill;
	w->fill = 0;
	return 0;
}

/* @len data bytes at the current position: they extend the last extent or start one. */
static int add_data(struct blob_writer *w, uint64_t len)
{
	BlobRef *b = w->cur;
	if (len > BLOB_MAX_SIZE - w->pos) {
		pr_err("images: %s: %s is larger than a blob may be", BLOB_FILE, w->what);
		return -EFBIG;
	}
	size_t n = b->n_extents;
	if (n && b->extents[n - 2] + b->extents[n - 1] == w->pos) {
		b->extents[n - 1] += len;
	} else {
		if (n / 2 >= BLOB_MAX_EXTENTS) {
			pr_err("images: %s: %s has more than %u data extents: not supported",
			       BLOB_FILE, w->what, BLOB_MAX_EXTENTS);
			return -EFBIG;
		}
		int ret = grow(&b->extents, &w->cap_ext, n + 2);
		if (ret)
			return ret;
		b->extents[n] = w->pos;
		b->extents[n + 1] = len;
		b->n_extents = n + 2;
	}
	w->pos += len;
	return 0;
}

/* The writer with a blob begun, or NULL (a caller's mistake, logged). */
static struct blob_writer *need_open(struct img_dir *d)
{
	struct blob_writer *w = d->blobs;
	if (!w || !w->cur) {
		pr_err("images: %s: no blob begun", BLOB_FILE);
		return NULL;
	}
	return w;
}

int blob_begin(struct img_dir *d, const char *what)
{
	struct blob_writer *w = writer_get(d);
	if (!w)
		return -errno;
	if (w->cur) {
		pr_err("images: %s: %s begun while %s is open", BLOB_FILE, what, w->what);
		return -EBUSY;
	}
	w->cur = malloc(sizeof(*w->cur));
	if (!w->cur)
		return -ENOMEM;
	blob_ref__init(w->cur);
	w->cur->offset = w->len;
	w->pos = 0;
	w->fill = 0;
	w->cap_ext = w->cap_xxh = 0;
	snprintf(w->what, sizeof(w->what), "%s", what);
	return 0;
}

int blob_write(struct img_dir *d, const void *buf, size_t len)
{
	struct blob_writer *w = need_open(d);
	if (!w)
		return -EINVAL;
	if (!len)
		return 0;
	int ret = add_data(w, len);
	for (const uint8_t *p = buf; !ret && len;) {
		size_t n = MIN(len, BLOB_CHUNK - w->fill);
		memcpy(w->chunk + w->fill, p, n);
		w->fill += n;
		p += n;
		len -= n;
		if (w->fill == BLOB_CHUNK)
			ret = flush_chunk(w);
	}
	return ret;
}

int blob_hole(struct img_dir *d, uint64_t len)
{
	struct blob_writer *w = need_open(d);
	if (!w)
		return -EINVAL;
	if (len > BLOB_MAX_SIZE - w->pos) {
		pr_err("images: %s: %s is larger than a blob may be", BLOB_FILE, w->what);
		return -EFBIG;
	}
	w->pos += len;
	return 0;
}

int blob_end(struct img_dir *d, BlobRef **ref)
{
	struct blob_writer *w = need_open(d);
	if (!w)
		return -EINVAL;
	int ret = flush_chunk(w);
	if (ret)
		return ret;
	BlobRef *b = steal_ptr(&w->cur);
	b->size = w->pos;
	w->n_blobs++;
	w->logical += b->size;
	*ref = b;
	return 0;
}

void blob_abort(struct img_dir *d)
{
	struct blob_writer *w = d->blobs;
	if (!w || !w->cur)
		return;
	w->len = w->cur->offset;
	w->fill = 0;
	blob_ref__free_unpacked(w->cur, NULL);
	w->cur = NULL;
	if (ftruncate(w->fd, (off_t)(IMG_BLOB_HDR_SIZE + w->len)) < 0)
		pr_warn("images: %s: cut off an unfinished blob: %s", BLOB_FILE, strerror(errno));
}

int blob_put_buf(struct img_dir *d, const void *buf, size_t len, const char *what,
		 BlobRef **ref)
{
	int ret = blob_begin(d, what);
	if (ret)
		return ret;
	ret = blob_write(d, buf, len);
	if (!ret)
		ret = blob_end(d, ref);
	if (ret)
		blob_abort(d);
	return ret;
}

/* The file's data in [from, to) into the blob, read straight into the chunk buffer. */
static int copy_range(struct blob_writer *w, int fd, uint64_t from, uint64_t to)
{
	int ret = add_data(w, to - from);
	while (!ret && from < to) {
		size_t n = (size_t)MIN(to - from, (uint64_t)(BLOB_CHUNK - w->fill));
		ssize_t r = pread(fd, w->chunk + w->fill, n, (off_t)from);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return pr_perror("images: read %s for %s", w->what, BLOB_FILE);
		if (r == 0) {
			pr_err("images: %s shrank while it was read (at %llu of %llu bytes)",
			       w->what, (unsigned long long)from, (unsigned long long)to);
			return -EIO;
		}
		w->fill += (size_t)r;
		from += (uint64_t)r;
		if (w->fill == BLOB_CHUNK)
			ret = flush_chunk(w);
	}
	return ret;
}

/* The data extents of @fd below @size (SEEK_DATA/SEEK_HOLE), holes skipped. */
static int put_extents(struct img_dir *d, int fd, uint64_t size)
{
	struct blob_writer *w = d->blobs;
	uint64_t off = 0;
	int ret = 0;
	while (!ret && off < size) {
		off_t ds = lseek(fd, (off_t)off, SEEK_DATA);
		if (ds < 0 && errno == ENXIO)
			break;
		if (ds < 0)
			return pr_perror("images: find the data of %s (SEEK_DATA)", w->what);
		if ((uint64_t)ds >= size)
			break;
		off_t de = lseek(fd, ds, SEEK_HOLE);
		if (de < 0)
			return pr_perror("images: find the holes of %s (SEEK_HOLE)", w->what);
		if (de <= ds) {
			pr_err("images: %s: SEEK_HOLE at %lld went back to %lld", w->what,
			       (long long)ds, (long long)de);
			return -EIO;
		}
		uint64_t end = MIN((uint64_t)de, size);
		ret = blob_hole(d, (uint64_t)ds - off);
		if (!ret)
			ret = copy_range(w, fd, (uint64_t)ds, end);
		off = end;
	}
	return ret ? ret : blob_hole(d, size - off);
}

int blob_put_file(struct img_dir *d, int fd, uint64_t size, const char *what, BlobRef **ref)
{
	if (size > BLOB_MAX_SIZE) {
		pr_err("images: %s: %s is larger than a blob may be", BLOB_FILE, what);
		return -EFBIG;
	}
	off_t saved = lseek(fd, 0, SEEK_CUR);
	if (saved < 0)
		return pr_perror("images: %s: not a seekable file", what);
	int ret = blob_begin(d, what);
	if (ret)
		return ret;
	ret = put_extents(d, fd, size);
	if (!ret)
		ret = blob_end(d, ref);
	if (ret)
		blob_abort(d);
	/* the description may be the task's own (pidfd_getfd): its offset goes back */
	if (lseek(fd, saved, SEEK_SET) < 0 && !ret) {
		ret = pr_perror("images: %s: put back the file offset", what);
		blob_ref__free_unpacked(*ref, NULL);
		*ref = NULL;
	}
	return ret;
}

int blob_writer_finish(struct img_dir *d)
{
	struct blob_writer *w = d->blobs;
	if (!w)
		return 0;
	if (w->cur) {
		pr_err("images: %s: %s was never finished", BLOB_FILE, w->what);
		return -EINVAL;
	}
	uint8_t page[IMG_BLOB_HDR_SIZE] = { 0 };
	struct img_hdr h;
	struct blob_file_hdr bh = {
		.magic = BLOB_FILE_MAGIC,
		.chunk = BLOB_CHUNK,
		.n_blobs = w->n_blobs,
		.logical = w->logical,
		.stored = w->len,
	};
	bh.xxh64 = XXH3_64bits(&bh, offsetof(struct blob_file_hdr, xxh64));
	img_fill_hdr(&h, IMG_BLOBS, w->len, 0);
	memcpy(page, &h, sizeof(h));
	memcpy(page + sizeof(h), &bh, sizeof(bh));
	int ret = pwrite_all(w->fd, page, sizeof(page), 0);
	if (ret)
		return pr_errno(ret, "images: write the header of %s", BLOB_FILE);
	if (d->sync && fdatasync(w->fd) < 0)
		return pr_perror("images: fsync %s", BLOB_FILE);
	pr_info("images: %s: %llu blobs, %llu bytes stored for %llu", BLOB_FILE,
		(unsigned long long)w->n_blobs, (unsigned long long)w->len,
		(unsigned long long)w->logical);
	blob_writer_free(d);
	return 0;
}

void blob_writer_free(struct img_dir *d)
{
	struct blob_writer *w = d->blobs;
	if (!w)
		return;
	if (w->cur)
		blob_ref__free_unpacked(w->cur, NULL);
	if (w->fd >= 0)
		close(w->fd);
	free(w->chunk);
	free(w);
	d->blobs = NULL;
}

/* --- restore: the reader ----------------------------------------------------------- */

static int pread_exact(int fd, void *buf, size_t len, uint64_t off)
{
	uint8_t *p = buf;
	while (len) {
		ssize_t n = pread(fd, p, len, (off_t)off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		if (n == 0)
			return -ENODATA;
		p += n;
		off += (uint64_t)n;
		len -= (size_t)n;
	}
	return 0;
}

int blob_open_fd(int fd, const char *what, struct blob_reader *r)
{
	_cleanup_close_ int owned = fd;
	struct stat st;
	uint8_t hdr[sizeof(struct img_hdr) + sizeof(struct blob_file_hdr)];
	struct img_hdr h;
	struct blob_file_hdr bh;

	memset(r, 0, sizeof(*r));
	r->fd = -1;
	if (fstat(fd, &st) < 0)
		return pr_perror("images: stat %s", what);
	if (!S_ISREG(st.st_mode)) {
		pr_err("images: %s is not a regular file", what);
		return -EINVAL;
	}
	int ret = pread_exact(fd, hdr, sizeof(hdr), 0);
	if (ret == -ENODATA) {
		pr_err("images: %s: truncated header (%lld bytes)", what, (long long)st.st_size);
		return -EBADMSG;
	}
	if (ret)
		return pr_errno(ret, "images: read %s", what);
	memcpy(&h, hdr, sizeof(h));
	memcpy(&bh, hdr + sizeof(h), sizeof(bh));
	ret = img_check_hdr(&h, IMG_BLOBS, (uint64_t)st.st_size, what);
	if (ret)
		return ret;
	if (bh.magic != BLOB_FILE_MAGIC ||
	    bh.xxh64 != XXH3_64bits(&bh, offsetof(struct blob_file_hdr, xxh64))) {
		pr_err("images: %s: blob header damaged (bad magic or checksum)", what);
		return -EBADMSG;
	}
	if (bh.chunk != BLOB_CHUNK || bh.stored != h.payload_len) {
		pr_err("images: %s: chunk size %u (expected %u) or %llu stored bytes in a payload "
		       "of %llu",
		       what, bh.chunk, BLOB_CHUNK, (unsigned long long)bh.stored,
		       (unsigned long long)h.payload_len);
		return -EBADMSG;
	}
	r->fd = take_fd(&owned);
	r->len = h.payload_len;
	r->n_blobs = bh.n_blobs;
	r->logical = bh.logical;
	return 0;
}

int blob_open(int dfd, struct blob_reader *r)
{
	memset(r, 0, sizeof(*r));
	r->fd = -1;
	/* O_NONBLOCK: a fifo put there must not hang the restore (refused by the check) */
	int fd = openat(dfd, BLOB_FILE, O_RDONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
	if (fd < 0)
		return errno == ENOENT ? 0 : pr_perror("images: open %s", BLOB_FILE);
	return blob_open_fd(fd, BLOB_FILE, r);
}

void blob_close(struct blob_reader *r)
{
	if (r->fd >= 0)
		close(r->fd);
	r->fd = -1;
}

const struct blob_reader *blob_reader_or_none(const struct blob_reader *r)
{
	static const struct blob_reader none = { .fd = -1 };
	return r ? r : &none;
}

int blob_ref_check(const BlobRef *ref, uint64_t payload_len, const char *what,
		   uint64_t *stored_out)
{
	if (ref->n_extents % 2 || ref->n_extents / 2 > BLOB_MAX_EXTENTS) {
		pr_err("images: %s: %s: %zu extent numbers (pairs expected, at most %u)",
		       BLOB_FILE, what, ref->n_extents, BLOB_MAX_EXTENTS);
		return -EINVAL;
	}
	if (ref->size > BLOB_MAX_SIZE) {
		pr_err("images: %s: %s: size %llu is absurd", BLOB_FILE, what,
		       (unsigned long long)ref->size);
		return -EINVAL;
	}
	uint64_t stored = 0, end = 0;
	for (size_t k = 0; k < ref->n_extents; k += 2) {
		uint64_t s = ref->extents[k], l = ref->extents[k + 1];
		if (!l || l > ref->size || s > ref->size - l) {
			pr_err("images: %s: %s: extent %zu [%llu, +%llu) is empty or past its size "
			       "%llu",
			       BLOB_FILE, what, k / 2, (unsigned long long)s, (unsigned long long)l,
			       (unsigned long long)ref->size);
			return -EINVAL;
		}
		if (s < end) {
			pr_err("images: %s: %s: extent %zu at %llu overlaps or precedes the one "
			       "before (ending at %llu)",
			       BLOB_FILE, what, k / 2, (unsigned long long)s,
			       (unsigned long long)end);
			return -EINVAL;
		}
		end = s + l;
		stored += l; /* disjoint and below size: no overflow */
	}
	if (ref->offset > payload_len || stored > payload_len - ref->offset) {
		pr_err("images: %s: %s: data [%llu, +%llu) past the end of the file (%llu bytes)",
		       BLOB_FILE, what, (unsigned long long)ref->offset,
		       (unsigned long long)stored, (unsigned long long)payload_len);
		return -EINVAL;
	}
	uint64_t chunks = stored / BLOB_CHUNK + (stored % BLOB_CHUNK != 0);
	if (ref->n_chunk_xxh != chunks) {
		pr_err("images: %s: %s: %zu checksums for %llu chunks", BLOB_FILE, what,
		       ref->n_chunk_xxh, (unsigned long long)chunks);
		return -EINVAL;
	}
	if (stored_out)
		*stored_out = stored;
	return 0;
}

int blob_check(const struct blob_reader *r, const BlobRef *ref, const char *what)
{
	if (r->fd < 0) {
		pr_err("images: %s is missing (%s has its contents there)", BLOB_FILE, what);
		return -ENOENT;
	}
	return blob_ref_check(ref, r->len, what, NULL);
}

int blob_read(const struct blob_reader *r, const BlobRef *ref, const char *what,
	      blob_sink_fn sink, void *arg)
{
	uint64_t stored;
	int ret = r->fd < 0 ? blob_check(r, ref, what)
			    : blob_ref_check(ref, r->len, what, &stored);
	if (ret || !stored)
		return ret;
	_cleanup_free_ uint8_t *buf = malloc((size_t)MIN(stored, (uint64_t)BLOB_CHUNK));
	if (!buf)
		return -ENOMEM;
	size_t e = 0;          /* extent index (pairs) */
	uint64_t in_ext = 0;   /* bytes of it given out */
	for (uint64_t i = 0, done = 0; done < stored; i++) {
		size_t n = (size_t)MIN(stored - done, (uint64_t)BLOB_CHUNK);
		ret = pread_exact(r->fd, buf, n, IMG_BLOB_HDR_SIZE + ref->offset + done);
		if (ret == -ENODATA) {
			pr_err("images: %s: %s: chunk %llu is past the end of the file (truncated)",
			       BLOB_FILE, what, (unsigned long long)i);
			return -EBADMSG;
		}
		if (ret)
			return pr_errno(ret, "images: read %s (%s)", BLOB_FILE, what);
		if (XXH3_64bits(buf, n) != ref->chunk_xxh[i]) {
			pr_err("images: %s: %s: chunk %llu of %zu (stored bytes %llu..%llu) has a "
			       "bad checksum (image corrupted)",
			       BLOB_FILE, what, (unsigned long long)i, ref->n_chunk_xxh,
			       (unsigned long long)done, (unsigned long long)(done + n));
			return -EBADMSG;
		}
		for (size_t p = 0; p < n;) {
			uint64_t s = ref->extents[e], l = ref->extents[e + 1];
			size_t take = (size_t)MIN((uint64_t)(n - p), l - in_ext);
			ret = sink(arg, s + in_ext, buf + p, take);
			if (ret)
				return ret;
			p += take;
			in_ext += take;
			if (in_ext == l) {
				e += 2;
				in_ext = 0;
			}
		}
		done += n;
	}
	return 0;
}

struct fd_sink {
	int fd;
	const char *what;
};

static int to_fd(void *arg, uint64_t pos, const void *buf, size_t len)
{
	const struct fd_sink *s = arg;
	int ret = pwrite_all(s->fd, buf, len, (off_t)pos);
	return ret ? pr_errno(ret, "restore: write %s", s->what) : 0;
}

int blob_read_fd(const struct blob_reader *r, const BlobRef *ref, int fd, const char *what)
{
	struct fd_sink s = { fd, what };
	int ret = blob_check(r, ref, what);
	if (ret)
		return ret;
	/* the size first: what no extent covers stays a hole */
	if (ftruncate(fd, (off_t)ref->size) < 0)
		return pr_perror("restore: set the size of %s to %llu", what,
				 (unsigned long long)ref->size);
	return blob_read(r, ref, what, to_fd, &s);
}

struct buf_sink {
	uint8_t *buf;
};

static int to_buf(void *arg, uint64_t pos, const void *buf, size_t len)
{
	struct buf_sink *s = arg;
	memcpy(s->buf + pos, buf, len); /* within size: checked by blob_ref_check */
	return 0;
}

int blob_read_buf(const struct blob_reader *r, const BlobRef *ref, void *buf, size_t len,
		  const char *what)
{
	struct buf_sink s = { buf };
	if (ref->size != len) {
		pr_err("images: %s: %s: %llu bytes where %zu are expected", BLOB_FILE, what,
		       (unsigned long long)ref->size, len);
		return -EINVAL;
	}
	memset(buf, 0, len);
	return blob_read(r, ref, what, to_buf, &s);
}
