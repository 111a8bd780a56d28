/* Unit tests of the blob store (src/image/blob.c): blobs written through every writer
 * call (a buffer, a sparse file, a blob built in pieces, an empty one, one aborted) into
 * an image directory, read back into files (holes and all) and buffers; then every kind
 * of bad input, each refused with one error naming the blob and what is wrong: BlobRefs
 * with bad extents, counts, offsets and checksum lists, a flipped byte in the data, a
 * truncated, damaged or missing blobs.img. Files live in a temporary directory under
 * /tmp (sparse files on /dev/shm when it is a tmpfs), removed at the end. */
#include <fcntl.h>
#include <stdio.h>
#include <sys/stat.h>
#include <sys/vfs.h>

#include "core/log.h"
#include "image/blob.h"
#include "image/img.h"
#include "unit.h"

#define MiB (1024u * 1024)

static char base[] = "/tmp/stasis-unit-blob.XXXXXX";
static char imgdir[256], sparse_dir[256];

static void pattern(uint8_t *p, size_t len, uint32_t seed)
{
	uint32_t x = seed * 2654435761u + 1;
	for (size_t i = 0; i < len; i++) {
		x ^= x << 13;
		x ^= x >> 17;
		x ^= x << 5;
		p[i] = (uint8_t)x;
	}
}

/* A scratch file in the sparse-capable directory (unlinked at once). */
static int scratch(void)
{
	char p[300];
	snprintf(p, sizeof(p), "%s/f.XXXXXX", sparse_dir);
	int fd = mkstemp(p);
	if (fd >= 0)
		unlink(p);
	return fd;
}

/* Data layout of @fd as (start, end) pairs into @ext (room for @max). */
static size_t layout(int fd, off_t (*ext)[2], size_t max)
{
	struct stat st;
	size_t n = 0;
	off_t off = 0;
	if (fstat(fd, &st) < 0)
		return (size_t)-1;
	while (off < st.st_size && n < max) {
		off_t ds = lseek(fd, off, SEEK_DATA);
		if (ds < 0)
			break;
		off_t de = lseek(fd, ds, SEEK_HOLE);
		ext[n][0] = ds;
		ext[n][1] = de;
		n++;
		off = de;
	}
	return n;
}

static bool same_bytes(int a, int b, uint64_t len)
{
	static uint8_t x[MiB], y[MiB];
	for (uint64_t off = 0; off < len; off += MiB) {
		size_t n = (size_t)MIN((uint64_t)MiB, len - off);
		if (pread(a, x, n, (off_t)off) != (ssize_t)n || pread(b, y, n, (off_t)off) != (ssize_t)n ||
		    memcmp(x, y, n))
			return false;
	}
	return true;
}

static bool error_has(const char *a, const char *b)
{
	const char *e = log_first_error();
	bool ok = strstr(e, a) && (!b || strstr(e, b));
	if (!ok)
		fprintf(stderr, "    error was: %s\n", e);
	return ok;
}

/* ---- the round trip ---- */

static BlobRef *r_buf, *r_sparse, *r_pieces, *r_empty, *r_after_abort;
static uint8_t bufdata[3 * MiB + 5];
static int sparse_src = -1;

static void write_blobs(void)
{
	struct img_dir d;
	CHECK_EQ(img_dir_begin(&d, imgdir, true), 0); /* synced: the fsync paths too */

	pattern(bufdata, sizeof(bufdata), 1);
	CHECK_EQ(blob_put_buf(&d, bufdata, sizeof(bufdata), "buffer", &r_buf), 0);

	/* 64 MiB with two lone pages and 2.5 MiB of data crossing chunk boundaries */
	static uint8_t page[4096], run[5 * MiB / 2];
	sparse_src = scratch();
	CHECK(sparse_src >= 0);
	CHECK_EQ(ftruncate(sparse_src, 64 * MiB), 0);
	pattern(page, sizeof(page), 2);
	CHECK_EQ(pwrite(sparse_src, page, sizeof(page), MiB), (ssize_t)sizeof(page));
	CHECK_EQ(pwrite(sparse_src, page, sizeof(page), 3 * MiB / 2), (ssize_t)sizeof(page));
	pattern(run, sizeof(run), 3);
	CHECK_EQ(pwrite(sparse_src, run, sizeof(run), 10 * MiB), (ssize_t)sizeof(run));
	CHECK_EQ(lseek(sparse_src, 123, SEEK_SET), 123);
	CHECK_EQ(blob_put_file(&d, sparse_src, 64 * MiB, "sparse file", &r_sparse), 0);
	CHECK_EQ(lseek(sparse_src, 0, SEEK_CUR), 123); /* the offset put back */

	/* in pieces: "abc", a hole, "def", a hole at the end */
	CHECK_EQ(blob_begin(&d, "pieces"), 0);
	CHECK_EQ(blob_write(&d, "abc", 3), 0);
	CHECK_EQ(blob_hole(&d, 4096), 0);
	CHECK_EQ(blob_write(&d, "def", 3), 0);
	CHECK_EQ(blob_write(&d, "g", 1), 0); /* extends the extent */
	CHECK_EQ(blob_hole(&d, 10), 0);
	CHECK_EQ(blob_begin(&d, "nested"), -EBUSY); /* one at a time */
	CHECK_EQ(blob_end(&d, &r_pieces), 0);

	CHECK_EQ(blob_put_buf(&d, NULL, 0, "empty", &r_empty), 0);

	/* an aborted blob leaves nothing: the next one starts where it started */
	uint64_t at = r_empty->offset;
	CHECK_EQ(blob_begin(&d, "aborted"), 0);
	CHECK_EQ(blob_write(&d, bufdata, 2 * MiB + 1), 0);
	blob_abort(&d);
	CHECK_EQ(blob_write(&d, "x", 1), -EINVAL); /* none begun */
	CHECK_EQ(blob_put_buf(&d, "after", 5, "after abort", &r_after_abort), 0);
	CHECK_EQ(r_after_abort->offset, at);

	CHECK_EQ(img_dir_commit(&d), 0);
	img_dir_close(&d);
}

static void test_round_trip(void)
{
	write_blobs();
	if (!r_buf || !r_sparse || !r_pieces || !r_empty || !r_after_abort)
		return;
	/* the references */
	CHECK_EQ(r_buf->offset, 0);
	CHECK_EQ(r_buf->size, sizeof(bufdata));
	CHECK_EQ(r_buf->n_extents, 2);
	CHECK_EQ(r_buf->n_chunk_xxh, 4);
	CHECK_EQ(r_sparse->size, 64 * MiB);
	CHECK_EQ(r_sparse->offset, sizeof(bufdata));
	uint64_t stored = 0;
	for (size_t k = 0; k < r_sparse->n_extents; k += 2)
		stored += r_sparse->extents[k + 1];
	CHECK(stored >= 5 * MiB / 2 + 8192 && stored < 4 * MiB); /* holes not stored */
	CHECK_EQ(r_pieces->size, 4113);
	CHECK_EQ(r_pieces->n_extents, 4);
	CHECK(r_pieces->extents[0] == 0 && r_pieces->extents[1] == 3 &&
	      r_pieces->extents[2] == 4099 && r_pieces->extents[3] == 4);
	CHECK_EQ(r_empty->size, 0);
	CHECK_EQ(r_empty->n_extents, 0);
	CHECK_EQ(r_empty->n_chunk_xxh, 0);

	struct blob_reader r;
	_cleanup_close_ int dfd = open(imgdir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	CHECK(dfd >= 0);
	CHECK_EQ(blob_open(dfd, &r), 0);
	CHECK(r.fd >= 0);
	CHECK_EQ(r.n_blobs, 5);
	CHECK_EQ(r.logical, sizeof(bufdata) + 64 * MiB + 4113 + 5);

	/* into files: the same bytes and the same holes */
	int out = scratch();
	CHECK(out >= 0);
	CHECK_EQ(blob_read_fd(&r, r_sparse, out, "sparse file"), 0);
	struct stat a, b;
	CHECK(fstat(out, &a) == 0 && fstat(sparse_src, &b) == 0);
	CHECK_EQ(a.st_size, 64 * MiB);
	CHECK(same_bytes(out, sparse_src, 64 * MiB));
	off_t la[16][2], lb[16][2];
	size_t na = layout(out, la, 16), nb = layout(sparse_src, lb, 16);
	CHECK_EQ(na, nb);
	CHECK(na == nb && !memcmp(la, lb, na * sizeof(la[0])));
	CHECK_EQ(a.st_blocks, b.st_blocks);
	close(out);

	out = scratch();
	CHECK_EQ(blob_read_fd(&r, r_empty, out, "empty"), 0);
	CHECK(fstat(out, &a) == 0 && a.st_size == 0);
	close(out);

	/* into buffers: holes are zeros */
	static uint8_t back[sizeof(bufdata)];
	CHECK_EQ(blob_read_buf(&r, r_buf, back, sizeof(back), "buffer"), 0);
	CHECK(!memcmp(back, bufdata, sizeof(back)));
	char pieces[4113];
	memset(pieces, 'z', sizeof(pieces));
	CHECK_EQ(blob_read_buf(&r, r_pieces, pieces, sizeof(pieces), "pieces"), 0);
	bool zeros = true;
	for (size_t i = 3; i < 4099; i++)
		zeros &= pieces[i] == 0;
	CHECK(!memcmp(pieces, "abc", 3) && !memcmp(pieces + 4099, "defg", 4) && zeros &&
	      pieces[4112] == 0);
	char five[5];
	CHECK_EQ(blob_read_buf(&r, r_after_abort, five, 5, "after abort"), 0);
	CHECK(!memcmp(five, "after", 5));

	/* a buffer of the wrong size */
	log_reset_first_error();
	CHECK_EQ(blob_read_buf(&r, r_after_abort, five, 4, "after abort"), -EINVAL);
	CHECK(error_has("after abort", "expected"));
	blob_close(&r);
}

/* ---- bad references ---- */

static int check_ref(const BlobRef *ref, uint64_t payload)
{
	log_reset_first_error();
	return blob_ref_check(ref, payload, "file x", NULL);
}

static void test_bad_refs(void)
{
	uint64_t ext[8];
	uint64_t xxh[4] = { 0 };
	BlobRef b;
	blob_ref__init(&b);
	b.extents = ext;
	b.chunk_xxh = xxh;

	/* a good one: two extents, 2 MiB + 10 stored, 3 chunks */
	b.size = 8 * MiB;
	ext[0] = 0, ext[1] = MiB, ext[2] = 4 * MiB, ext[3] = MiB + 10;
	b.n_extents = 4;
	b.n_chunk_xxh = 3;
	b.offset = 100;
	CHECK_EQ(check_ref(&b, 100 + 2 * MiB + 10), 0);

	/* stored bytes past the file, offset past it */
	CHECK_EQ(check_ref(&b, 100 + 2 * MiB + 9), -EINVAL);
	CHECK(error_has("file x", "past the end"));
	b.offset = UINT64_MAX - 5;
	CHECK_EQ(check_ref(&b, 1000), -EINVAL);
	CHECK(error_has("file x", "past the end"));
	b.offset = 100;

	/* wrong number of checksums */
	b.n_chunk_xxh = 2;
	CHECK_EQ(check_ref(&b, 1 << 30), -EINVAL);
	CHECK(error_has("file x", "checksums"));
	b.n_chunk_xxh = 3;

	/* unsorted, overlapping, empty, past the size, overflowing */
	ext[2] = 0;
	CHECK_EQ(check_ref(&b, 1 << 30), -EINVAL);
	CHECK(error_has("file x", "overlaps or precedes"));
	ext[2] = MiB - 1;
	CHECK_EQ(check_ref(&b, 1 << 30), -EINVAL);
	CHECK(error_has("file x", "overlaps"));
	ext[2] = MiB; /* adjacent: fine */
	CHECK_EQ(check_ref(&b, 1 << 30), 0);
	ext[3] = 0;
	CHECK_EQ(check_ref(&b, 1 << 30), -EINVAL);
	CHECK(error_has("file x", "empty or past"));
	ext[2] = 8 * MiB - 5, ext[3] = 6;
	CHECK_EQ(check_ref(&b, 1 << 30), -EINVAL);
	CHECK(error_has("file x", "past its size"));
	ext[2] = UINT64_MAX - 2, ext[3] = 4;
	CHECK_EQ(check_ref(&b, 1 << 30), -EINVAL);
	CHECK(error_has("file x", "extent 1"));
	ext[2] = 4 * MiB, ext[3] = MiB + 10;

	/* odd and absurd counts, absurd size */
	b.n_extents = 3;
	CHECK_EQ(check_ref(&b, 1 << 30), -EINVAL);
	CHECK(error_has("file x", "pairs"));
	b.n_extents = 2 * (size_t)BLOB_MAX_EXTENTS + 2;
	CHECK_EQ(check_ref(&b, 1 << 30), -EINVAL);
	CHECK(error_has("file x", "at most"));
	b.n_extents = 4;
	b.size = UINT64_MAX;
	CHECK_EQ(check_ref(&b, 1 << 30), -EINVAL);
	CHECK(error_has("file x", "absurd"));

	/* no blobs.img at all */
	struct blob_reader none = { .fd = -1 };
	b.size = 8 * MiB;
	log_reset_first_error();
	CHECK_EQ(blob_check(&none, &b, "file x"), -ENOENT);
	CHECK(error_has("blobs.img is missing", "file x"));
}

/* ---- damaged files ---- */

static void copy_img(const char *to)
{
	char cmd[700];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s' && cp -a '%s' '%s'", to, imgdir, to);
	CHECK_EQ(system(cmd), 0);
}

static int open_copy(const char *dir, struct blob_reader *r)
{
	_cleanup_close_ int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	log_reset_first_error();
	return blob_open(dfd, r);
}

static void flip(const char *path, off_t off)
{
	int fd = open(path, O_RDWR);
	uint8_t c = 0;
	CHECK(fd >= 0 && pread(fd, &c, 1, off) == 1);
	c ^= 0x40;
	CHECK(pwrite(fd, &c, 1, off) == 1);
	close(fd);
}

static void test_damaged(void)
{
	char dir[300], file[400];
	struct blob_reader r;
	if (!r_buf || !r_sparse)
		return;
	snprintf(dir, sizeof(dir), "%s/damaged", base);
	snprintf(file, sizeof(file), "%s/%s", dir, BLOB_FILE);

	/* a flipped byte in the second chunk of the buffer blob */
	copy_img(dir);
	flip(file, IMG_BLOB_HDR_SIZE + MiB + 77);
	CHECK_EQ(open_copy(dir, &r), 0);
	static uint8_t back[sizeof(bufdata)];
	log_reset_first_error();
	CHECK_EQ(blob_read_buf(&r, r_buf, back, sizeof(back), "buffer blob"), -EBADMSG);
	CHECK(error_has("buffer blob", "chunk 1 of 4"));
	CHECK(error_has("blobs.img", "checksum"));
	/* the other blobs are intact */
	int out = scratch();
	CHECK_EQ(blob_read_fd(&r, r_sparse, out, "sparse file"), 0);
	close(out);
	blob_close(&r);

	/* truncated: refused at open */
	copy_img(dir);
	CHECK_EQ(truncate(file, IMG_BLOB_HDR_SIZE + 1000), 0);
	CHECK(open_copy(dir, &r) < 0);
	CHECK(error_has("blobs.img", "truncated"));
	CHECK_EQ(r.fd, -1);
	CHECK_EQ(truncate(file, 20), 0);
	CHECK(open_copy(dir, &r) < 0);
	CHECK(error_has("blobs.img", "truncated"));

	/* the blob header damaged, then the image header */
	copy_img(dir);
	flip(file, sizeof(struct img_hdr) + 9);
	CHECK_EQ(open_copy(dir, &r), -EBADMSG);
	CHECK(error_has("blobs.img", "blob header damaged"));
	copy_img(dir);
	flip(file, 5);
	CHECK(open_copy(dir, &r) < 0);
	CHECK(error_has("blobs.img", "header"));

	/* the data cut after a valid header was read: the short file is named */
	copy_img(dir);
	CHECK_EQ(open_copy(dir, &r), 0);
	CHECK_EQ(truncate(file, IMG_BLOB_HDR_SIZE + MiB), 0);
	log_reset_first_error();
	CHECK_EQ(blob_read_buf(&r, r_buf, back, sizeof(back), "buffer blob"), -EBADMSG);
	CHECK(error_has("buffer blob", "truncated"));
	blob_close(&r);

	/* a fifo in its place: refused at once, not waited on */
	CHECK_EQ(unlink(file), 0);
	CHECK_EQ(mkfifo(file, 0600), 0);
	CHECK_EQ(open_copy(dir, &r), -EINVAL);
	CHECK(error_has("blobs.img", "not a regular file"));

	/* missing: opens as "no blobs", a reference to one then fails */
	CHECK_EQ(unlink(file), 0);
	CHECK_EQ(open_copy(dir, &r), 0);
	CHECK_EQ(r.fd, -1);
	log_reset_first_error();
	CHECK_EQ(blob_read_fd(&r, r_buf, 1, "buffer blob"), -ENOENT);
	CHECK(error_has("blobs.img is missing", "buffer blob"));
}

/* A dump that writes no blob leaves no blobs.img. */
static void test_no_blobs(void)
{
	char dir[300], file[400];
	struct img_dir d;
	snprintf(dir, sizeof(dir), "%s/noblobs", base);
	snprintf(file, sizeof(file), "%s/%s", dir, BLOB_FILE);
	CHECK_EQ(img_dir_begin(&d, dir, true), 0);
	CHECK_EQ(img_dir_commit(&d), 0);
	img_dir_close(&d);
	CHECK(access(file, F_OK) < 0 && errno == ENOENT);
}

int main(void)
{
	struct statfs sf;
	if (!mkdtemp(base)) {
		perror("mkdtemp");
		return 1;
	}
	snprintf(imgdir, sizeof(imgdir), "%s/img", base);
	if (log_init("/dev/null", LOG_ERR)) /* many expected errors */
		return 1;
	/* tmpfs keeps holes page by page; other filesystems by their blocks */
	if (statfs("/dev/shm", &sf) == 0 && sf.f_type == 0x01021994 && access("/dev/shm", W_OK) == 0)
		snprintf(sparse_dir, sizeof(sparse_dir), "/dev/shm");
	else
		snprintf(sparse_dir, sizeof(sparse_dir), "%s", base);
	RUN(test_round_trip);
	RUN(test_bad_refs);
	RUN(test_damaged);
	RUN(test_no_blobs);
	if (sparse_src >= 0)
		close(sparse_src);
	blob_ref__free_unpacked(r_buf, NULL);
	blob_ref__free_unpacked(r_sparse, NULL);
	blob_ref__free_unpacked(r_pieces, NULL);
	blob_ref__free_unpacked(r_empty, NULL);
	blob_ref__free_unpacked(r_after_abort, NULL);
	char cmd[300];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", base);
	if (system(cmd) != 0)
		fprintf(stderr, "cannot remove %s\n", base);
	return unit_done();
}
