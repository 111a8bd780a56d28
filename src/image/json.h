/* A small JSON writer and a protobuf-c message -> JSON printer driven by the message
 * descriptors (reflection), used by `stasis show` and `stasis check --json`.
 *
 * The printer's rules (they are the output contract of `stasis show`):
 *   - keys are the proto field names, in descriptor (field number) order;
 *   - optional fields that are not set are absent; required and repeated fields are always
 *     present (an empty repeated field is []);
 *   - integers of every width are JSON numbers (64-bit ones too, printed exactly), bools
 *     are true/false, floats/doubles are numbers (null for NaN/infinity);
 *   - enums are their value name ("VMA_ANON"), or the number if the value is unknown;
 *   - strings are JSON-escaped; bytes that are not valid UTF-8 are written as \u00XX (the
 *     byte's value), so the output is always valid UTF-8;
 *   - bytes fields of at most JSON_BYTES_HEX_MAX bytes are a lowercase hex string, longer
 *     ones are {"len": N, "xxh64": "0x<XXH3-64 of the bytes, 16 hex digits>"};
 *   - ADDRESSES: a uint64/fixed64 field (not repeated) whose name is one of start, end,
 *     vaddr, addr, sp, handler, restorer, brk, or that starts with start_/end_/arg_/env_,
 *     or ends with _addr/_address, is a string "0x<lowercase hex>"; see json_is_addr_field();
 *   - unknown fields (from a newer writer) are counted in "_unknown_fields" when present;
 *   - a BlobRef (bulk contents in blobs.img) is {"offset", "size", "extents": [[start,
 *     length], ...], "stored": bytes stored, "chunks": number of checksums} (the
 *     checksums themselves are not printed).
 */
#ifndef STASIS_IMAGE_JSON_H
#define STASIS_IMAGE_JSON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <protobuf-c/protobuf-c.h>

#include "core/util.h"

#define JSON_BYTES_HEX_MAX 64
#define JSON_MAX_DEPTH 64

/* A streaming writer: it inserts commas, colons and (if pretty) newlines and indentation.
 * Misuse (a value where a key is due, too deep nesting) is recorded and reported by
 * json_finish(); writes after an error are ignored. */
struct json_writer {
	FILE *f;
	bool pretty;
	int depth;
	int err;                         /* first error, -errno */
	bool after_key;                  /* a key was written, its value is due */
	bool nonempty[JSON_MAX_DEPTH];   /* container at this depth has an element */
	bool is_obj[JSON_MAX_DEPTH];     /* container at this depth is an object */
};

void json_init(struct json_writer *w, FILE *f, bool pretty);
void json_obj_begin(struct json_writer *w);
void json_obj_end(struct json_writer *w);
void json_arr_begin(struct json_writer *w);
void json_arr_end(struct json_writer *w);
void json_key(struct json_writer *w, const char *key);
void json_str(struct json_writer *w, const char *s);
void json_strn(struct json_writer *w, const char *s, size_t len);
void json_u64(struct json_writer *w, uint64_t v);
void json_i64(struct json_writer *w, int64_t v);
void json_hex(struct json_writer *w, uint64_t v); /* "0x..." string */
void json_bool(struct json_writer *w, bool v);
void json_null(struct json_writer *w);
void json_double(struct json_writer *w, double v);
/* The value of a protobuf message (an object following the rules above). */
void json_msg(struct json_writer *w, const ProtobufCMessage *msg);
/* Check the writer ended balanced and without error, flush. 0 or -errno (-EINVAL on
 * misuse, -EIO or the stdio error on a write failure). */
int json_finish(struct json_writer *w) __must_check;

/* True if a 64-bit field of this name is printed as an address (see the rules above). */
bool json_is_addr_field(const char *name);

#endif
