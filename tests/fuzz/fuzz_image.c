/* libFuzzer target for image decoding (src/image/img.c). The first input byte selects
 * the metadata kind (low bits) and the mode (bit 7):
 *   0: the rest is a whole image file, given to img_decode() as is;
 *   1: the rest is a payload, framed with a valid header and checksum first, so that the
 *      protobuf decoding behind the checksum is reached too.
 * The rest is also tried as a file name with img_kind_by_filename(). Built and run by
 * tests/fuzz/build.sh. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/log.h"
#include "image/img.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	/* every rejected input logs one error: keep the fuzzer's output readable */
	if (log_init("/dev/null", LOG_ERR))
		abort();
	return 0;
}

static const enum img_kind kinds[] = { IMG_INVENTORY, IMG_CORE, IMG_MM, IMG_FILES, IMG_NS };

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	enum img_kind kind = kinds[(data[0] & 0x7f) % (sizeof(kinds) / sizeof(kinds[0]))];
	bool frame = data[0] & 0x80;
	const uint8_t *rest = data + 1;
	size_t len = size - 1;
	uint8_t *buf;
	size_t blen;

	if (frame) {
		struct img_hdr h;
		blen = sizeof(h) + len;
		buf = malloc(blen);
		if (!buf)
			return 0;
		img_fill_hdr(&h, kind, len, img_hash(rest, len));
		memcpy(buf, &h, sizeof(h));
		memcpy(buf + sizeof(h), rest, len);
	} else {
		blen = len;
		buf = malloc(blen ? blen : 1);
		if (!buf)
			return 0;
		memcpy(buf, rest, len);
	}
	void *msg = img_decode(buf, blen, kind, "fuzz");
	if (msg)
		protobuf_c_message_free_unpacked(msg, NULL);
	free(buf);

	char *name = strndup((const char *)rest, len);
	if (name) {
		(void)img_kind_by_filename(name);
		free(name);
	}
	log_reset_first_error();
	return 0;
}
