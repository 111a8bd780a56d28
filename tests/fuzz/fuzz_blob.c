/* libFuzzer target for the blob store's reader (src/image/blob.c): a BlobRef and a
 * blobs.img, both hostile. Input: byte 0 selects the mode, bytes 1-2 (little-endian) are
 * the length L of a packed BlobRef that follows, the rest is the file:
 *   bit 0 clear: the rest is a whole blobs.img, given to blob_open_fd() as is;
 *   bit 0 set:   the rest is a payload, framed with a valid header page first, so that
 *                the reference checks and the chunk checksums behind it are reached;
 *   bit 1 set:   the reference's checksums are recomputed from the payload once its
 *                bounds are valid, so that the copy into a file and a buffer (extents,
 *                holes) runs to the end too.
 * The file lives in a memfd; blobs of at most 1 MiB are also read into a buffer. Built
 * and run by tests/fuzz/build.sh. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>
#include <xxhash.h>

#include "core/log.h"
#include "image/blob.h"
#include "image/img.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	if (log_init("/dev/null", LOG_ERR))
		abort();
	return 0;
}

static int file_of(const uint8_t *p, size_t len, bool frame)
{
	int fd = memfd_create("blobs", MFD_CLOEXEC);
	if (fd < 0)
		return -1;
	if (frame) {
		uint8_t page[IMG_BLOB_HDR_SIZE] = { 0 };
		struct img_hdr h;
		struct blob_file_hdr bh = { .magic = BLOB_FILE_MAGIC, .chunk = BLOB_CHUNK,
					    .n_blobs = 1, .logical = len, .stored = len };
		bh.xxh64 = XXH3_64bits(&bh, offsetof(struct blob_file_hdr, xxh64));
		img_fill_hdr(&h, IMG_BLOBS, len, 0);
		memcpy(page, &h, sizeof(h));
		memcpy(page + sizeof(h), &bh, sizeof(bh));
		if (write(fd, page, sizeof(page)) != (ssize_t)sizeof(page)) {
			close(fd);
			return -1;
		}
	}
	if (len && write(fd, p, len) != (ssize_t)len) {
		close(fd);
		return -1;
	}
	return fd;
}

/* The right checksums for @ref's chunks, read from the file (bounds already checked). */
static void fix_checksums(const struct blob_reader *r, BlobRef *ref, uint64_t stored)
{
	static uint8_t buf[BLOB_CHUNK];
	for (size_t i = 0; i < ref->n_chunk_xxh; i++) {
		uint64_t at = (uint64_t)i * BLOB_CHUNK;
		size_t n = (size_t)MIN((uint64_t)BLOB_CHUNK, stored - at);
		if (pread(r->fd, buf, n, (off_t)(IMG_BLOB_HDR_SIZE + ref->offset + at)) != (ssize_t)n)
			return;
		ref->chunk_xxh[i] = XXH3_64bits(buf, n);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 3)
		return 0;
	uint8_t mode = data[0];
	size_t rl = (size_t)data[1] | (size_t)data[2] << 8;
	if (rl > size - 3)
		rl = size - 3;
	BlobRef *ref = blob_ref__unpack(NULL, rl, data + 3);
	int fd = file_of(data + 3 + rl, size - 3 - rl, mode & 1);
	struct blob_reader r;
	if (fd < 0 || blob_open_fd(fd, "fuzz", &r)) {
		blob_ref__free_unpacked(ref, NULL);
		log_reset_first_error();
		return 0;
	}
	uint64_t stored;
	if (ref && !blob_ref_check(ref, r.len, "fuzz blob", &stored)) {
		if (mode & 2)
			fix_checksums(&r, ref, stored);
		int out = memfd_create("out", MFD_CLOEXEC);
		if (out >= 0) {
			(void)!blob_read_fd(&r, ref, out, "fuzz blob");
			close(out);
		}
		if (ref->size <= BLOB_CHUNK) {
			uint8_t *buf = malloc(ref->size ? ref->size : 1);
			if (buf) {
				(void)!blob_read_buf(&r, ref, buf, (size_t)ref->size, "fuzz blob");
				free(buf);
			}
		}
	}
	blob_close(&r);
	blob_ref__free_unpacked(ref, NULL);
	log_reset_first_error();
	return 0;
}
