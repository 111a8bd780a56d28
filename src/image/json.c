#include "image/json.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <string.h>

#include "image/img.h"

void json_init(struct json_writer *w, FILE *f, bool pretty)
{
	memset(w, 0, sizeof(*w));
	w->f = f;
	w->pretty = pretty;
}

static void json_fail(struct json_writer *w, int err)
{
	if (!w->err)
		w->err = err;
}

static void newline_indent(struct json_writer *w)
{
	if (!w->pretty)
		return;
	fputc('\n', w->f);
	for (int i = 0; i < w->depth; i++)
		fputs("  ", w->f);
}

/* Before any value: separator and indentation, and a check that a value may go here. */
static bool value_prefix(struct json_writer *w)
{
	if (w->err)
		return false;
	if (w->after_key) {
		w->after_key = false;
		return true;
	}
	if (w->depth > 0 && w->is_obj[w->depth - 1]) {
		json_fail(w, -EINVAL); /* a value in an object needs a key */
		return false;
	}
	if (w->depth > 0) {
		if (w->nonempty[w->depth - 1])
			fputc(',', w->f);
		w->nonempty[w->depth - 1] = true;
		newline_indent(w);
	}
	return true;
}

static void container_begin(struct json_writer *w, bool obj)
{
	if (!value_prefix(w))
		return;
	if (w->depth >= JSON_MAX_DEPTH) {
		json_fail(w, -EINVAL);
		return;
	}
	fputc(obj ? '{' : '[', w->f);
	w->is_obj[w->depth] = obj;
	w->nonempty[w->depth] = false;
	w->depth++;
}

static void container_end(struct json_writer *w, bool obj)
{
	if (w->err)
		return;
	if (w->depth == 0 || w->is_obj[w->depth - 1] != obj || w->after_key) {
		json_fail(w, -EINVAL);
		return;
	}
	w->depth--;
	if (w->nonempty[w->depth])
		newline_indent(w);
	fputc(obj ? '}' : ']', w->f);
}

void json_obj_begin(struct json_writer *w) { container_begin(w, true); }
void json_obj_end(struct json_writer *w) { container_end(w, true); }
void json_arr_begin(struct json_writer *w) { container_begin(w, false); }
void json_arr_end(struct json_writer *w) { container_end(w, false); }

/* Length of the valid UTF-8 sequence at @s (at most @len bytes), 0 if invalid. */
static size_t utf8_seq_len(const unsigned char *s, size_t len)
{
	size_t n;
	uint32_t cp;

	if (s[0] < 0x80)
		return 1;
	if (s[0] >= 0xc2 && s[0] <= 0xdf) {
		n = 2;
		cp = s[0] & 0x1f;
	} else if (s[0] >= 0xe0 && s[0] <= 0xef) {
		n = 3;
		cp = s[0] & 0x0f;
	} else if (s[0] >= 0xf0 && s[0] <= 0xf4) {
		n = 4;
		cp = s[0] & 0x07;
	} else {
		return 0;
	}
	if (n > len)
		return 0;
	for (size_t i = 1; i < n; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		cp = (cp << 6) | (s[i] & 0x3f);
	}
	/* Overlong forms, surrogates and values above U+10FFFF are invalid. */
	if ((n == 3 && cp < 0x800) || (n == 4 && (cp < 0x10000 || cp > 0x10ffff)) ||
	    (cp >= 0xd800 && cp <= 0xdfff))
		return 0;
	return n;
}

static void write_escaped(struct json_writer *w, const char *str, size_t len)
{
	const unsigned char *s = (const unsigned char *)str;

	fputc('"', w->f);
	for (size_t i = 0; i < len;) {
		unsigned char c = s[i];
		switch (c) {
		case '"': fputs("\\\"", w->f); i++; continue;
		case '\\': fputs("\\\\", w->f); i++; continue;
		case '\n': fputs("\\n", w->f); i++; continue;
		case '\r': fputs("\\r", w->f); i++; continue;
		case '\t': fputs("\\t", w->f); i++; continue;
		case '\b': fputs("\\b", w->f); i++; continue;
		case '\f': fputs("\\f", w->f); i++; continue;
		default: break;
		}
		if (c < 0x20) {
			fprintf(w->f, "\\u%04x", c);
			i++;
			continue;
		}
		size_t n = utf8_seq_len(s + i, len - i);
		if (n == 0) {
			/* Not UTF-8 (a raw path byte): keep the byte value visible. */
			fprintf(w->f, "\\u%04x", c);
			i++;
			continue;
		}
		fwrite(s + i, 1, n, w->f);
		i += n;
	}
	fputc('"', w->f);
}

void json_key(struct json_writer *w, const char *key)
{
	if (w->err)
		return;
	if (w->depth == 0 || !w->is_obj[w->depth - 1] || w->after_key) {
		json_fail(w, -EINVAL);
		return;
	}
	if (w->nonempty[w->depth - 1])
		fputc(',', w->f);
	w->nonempty[w->depth - 1] = true;
	newline_indent(w);
	write_escaped(w, key, strlen(key));
	fputs(w->pretty ? ": " : ":", w->f);
	w->after_key = true;
}

void json_strn(struct json_writer *w, const char *s, size_t len)
{
	if (value_prefix(w))
		write_escaped(w, s, len);
}

void json_str(struct json_writer *w, const char *s)
{
	if (!s)
		json_null(w);
	else
		json_strn(w, s, strlen(s));
}

void json_u64(struct json_writer *w, uint64_t v)
{
	if (value_prefix(w))
		fprintf(w->f, "%" PRIu64, v);
}

void json_i64(struct json_writer *w, int64_t v)
{
	if (value_prefix(w))
		fprintf(w->f, "%" PRId64, v);
}

void json_hex(struct json_writer *w, uint64_t v)
{
	if (value_prefix(w))
		fprintf(w->f, "\"0x%" PRIx64 "\"", v);
}

void json_bool(struct json_writer *w, bool v)
{
	if (value_prefix(w))
		fputs(v ? "true" : "false", w->f);
}

void json_null(struct json_writer *w)
{
	if (value_prefix(w))
		fputs("null", w->f);
}

void json_double(struct json_writer *w, double v)
{
	if (!isfinite(v)) {
		json_null(w);
		return;
	}
	if (value_prefix(w))
		fprintf(w->f, "%.17g", v);
}

int json_finish(struct json_writer *w)
{
	if (!w->err && (w->depth != 0 || w->after_key))
		json_fail(w, -EINVAL);
	if (w->pretty && !w->err)
		fputc('\n', w->f);
	if (fflush(w->f) == EOF || ferror(w->f))
		json_fail(w, errno ? -errno : -EIO);
	return w->err;
}

bool json_is_addr_field(const char *name)
{
	static const char *const exact[] = { "start", "end",     "vaddr",    "addr",
					     "sp",    "handler", "restorer", "brk" };
	static const char *const prefixes[] = { "start_", "end_", "arg_", "env_" };
	static const char *const suffixes[] = { "_addr", "_address" };
	size_t len = strlen(name);

	for (size_t i = 0; i < ARRAY_SIZE(exact); i++)
		if (!strcmp(name, exact[i]))
			return true;
	for (size_t i = 0; i < ARRAY_SIZE(prefixes); i++)
		if (!strncmp(name, prefixes[i], strlen(prefixes[i])))
			return true;
	for (size_t i = 0; i < ARRAY_SIZE(suffixes); i++) {
		size_t sl = strlen(suffixes[i]);
		if (len > sl && !strcmp(name + len - sl, suffixes[i]))
			return true;
	}
	return false;
}

static void json_bytes(struct json_writer *w, const ProtobufCBinaryData *b)
{
	if (b->len > JSON_BYTES_HEX_MAX) {
		json_obj_begin(w);
		json_key(w, "len");
		json_u64(w, b->len);
		json_key(w, "xxh64");
		if (value_prefix(w))
			fprintf(w->f, "\"0x%016" PRIx64 "\"", img_hash(b->data, b->len));
		json_obj_end(w);
		return;
	}
	if (!value_prefix(w))
		return;
	fputc('"', w->f);
	for (size_t i = 0; i < b->len; i++)
		fprintf(w->f, "%02x", b->data[i]);
	fputc('"', w->f);
}

static size_t field_elem_size(ProtobufCType type)
{
	switch (type) {
	case PROTOBUF_C_TYPE_INT32:
	case PROTOBUF_C_TYPE_SINT32:
	case PROTOBUF_C_TYPE_SFIXED32:
	case PROTOBUF_C_TYPE_UINT32:
	case PROTOBUF_C_TYPE_FIXED32:
	case PROTOBUF_C_TYPE_ENUM:
		return 4;
	case PROTOBUF_C_TYPE_INT64:
	case PROTOBUF_C_TYPE_SINT64:
	case PROTOBUF_C_TYPE_SFIXED64:
	case PROTOBUF_C_TYPE_UINT64:
	case PROTOBUF_C_TYPE_FIXED64:
		return 8;
	case PROTOBUF_C_TYPE_FLOAT:
		return sizeof(float);
	case PROTOBUF_C_TYPE_DOUBLE:
		return sizeof(double);
	case PROTOBUF_C_TYPE_BOOL:
		return sizeof(protobuf_c_boolean);
	case PROTOBUF_C_TYPE_STRING:
		return sizeof(char *);
	case PROTOBUF_C_TYPE_BYTES:
		return sizeof(ProtobufCBinaryData);
	case PROTOBUF_C_TYPE_MESSAGE:
		return sizeof(ProtobufCMessage *);
	}
	return 0;
}

/* One value of field @fd stored at @p (memcpy'd out: repeated arrays are aligned, but
 * the printer must not assume anything about where a hostile caller put them). */
static void json_field_value(struct json_writer *w, const ProtobufCFieldDescriptor *fd,
			     const void *p, bool addr)
{
	switch (fd->type) {
	case PROTOBUF_C_TYPE_INT32:
	case PROTOBUF_C_TYPE_SINT32:
	case PROTOBUF_C_TYPE_SFIXED32: {
		int32_t v;
		memcpy(&v, p, sizeof(v));
		json_i64(w, v);
		break;
	}
	case PROTOBUF_C_TYPE_UINT32:
	case PROTOBUF_C_TYPE_FIXED32: {
		uint32_t v;
		memcpy(&v, p, sizeof(v));
		json_u64(w, v);
		break;
	}
	case PROTOBUF_C_TYPE_INT64:
	case PROTOBUF_C_TYPE_SINT64:
	case PROTOBUF_C_TYPE_SFIXED64: {
		int64_t v;
		memcpy(&v, p, sizeof(v));
		json_i64(w, v);
		break;
	}
	case PROTOBUF_C_TYPE_UINT64:
	case PROTOBUF_C_TYPE_FIXED64: {
		uint64_t v;
		memcpy(&v, p, sizeof(v));
		if (addr)
			json_hex(w, v);
		else
			json_u64(w, v);
		break;
	}
	case PROTOBUF_C_TYPE_FLOAT: {
		float v;
		memcpy(&v, p, sizeof(v));
		json_double(w, v);
		break;
	}
	case PROTOBUF_C_TYPE_DOUBLE: {
		double v;
		memcpy(&v, p, sizeof(v));
		json_double(w, v);
		break;
	}
	case PROTOBUF_C_TYPE_BOOL: {
		protobuf_c_boolean v;
		memcpy(&v, p, sizeof(v));
		json_bool(w, v != 0);
		break;
	}
	case PROTOBUF_C_TYPE_ENUM: {
		int32_t v;
		memcpy(&v, p, sizeof(v));
		const ProtobufCEnumValue *ev = protobuf_c_enum_descriptor_get_value(
			(const ProtobufCEnumDescriptor *)fd->descriptor, v);
		if (ev)
			json_str(w, ev->name);
		else
			json_i64(w, v);
		break;
	}
	case PROTOBUF_C_TYPE_STRING: {
		const char *s;
		memcpy(&s, p, sizeof(s));
		json_str(w, s);
		break;
	}
	case PROTOBUF_C_TYPE_BYTES: {
		ProtobufCBinaryData b;
		memcpy(&b, p, sizeof(b));
		json_bytes(w, &b);
		break;
	}
	case PROTOBUF_C_TYPE_MESSAGE: {
		const ProtobufCMessage *m;
		memcpy(&m, p, sizeof(m));
		if (m)
			json_msg(w, m);
		else
			json_null(w);
		break;
	}
	}
}

/* Is an optional (or oneof) field set? */
static bool field_is_set(const ProtobufCMessage *msg, const ProtobufCFieldDescriptor *fd)
{
	const char *base = (const char *)msg;

	if (fd->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) {
		uint32_t c;
		memcpy(&c, base + fd->quantifier_offset, sizeof(c));
		return c == fd->id;
	}
	if (fd->type == PROTOBUF_C_TYPE_STRING || fd->type == PROTOBUF_C_TYPE_MESSAGE) {
		const void *ptr;
		memcpy(&ptr, base + fd->offset, sizeof(ptr));
		/* protobuf-c keeps a default string as a pointer to the default: not "set". */
		return ptr != NULL && ptr != fd->default_value;
	}
	protobuf_c_boolean has;
	memcpy(&has, base + fd->quantifier_offset, sizeof(has));
	return has != 0;
}

/* A BlobRef: where its data is and how much, not its checksums (see json.h). */
static void json_blob_ref(struct json_writer *w, const BlobRef *b)
{
	uint64_t stored = 0;
	json_obj_begin(w);
	json_key(w, "offset");
	json_u64(w, b->offset);
	json_key(w, "size");
	json_u64(w, b->size);
	json_key(w, "extents");
	json_arr_begin(w);
	for (size_t k = 0; b->extents && k + 1 < b->n_extents && !w->err; k += 2) {
		json_arr_begin(w);
		json_u64(w, b->extents[k]);
		json_u64(w, b->extents[k + 1]);
		json_arr_end(w);
		stored += b->extents[k + 1];
	}
	json_arr_end(w);
	json_key(w, "stored");
	json_u64(w, stored);
	json_key(w, "chunks");
	json_u64(w, b->n_chunk_xxh);
	if (b->base.n_unknown_fields) {
		json_key(w, "_unknown_fields");
		json_u64(w, b->base.n_unknown_fields);
	}
	json_obj_end(w);
}

void json_msg(struct json_writer *w, const ProtobufCMessage *msg)
{
	const ProtobufCMessageDescriptor *d = msg->descriptor;
	const char *base = (const char *)msg;

	if (d == &blob_ref__descriptor) {
		json_blob_ref(w, (const BlobRef *)msg);
		return;
	}
	json_obj_begin(w);
	for (unsigned i = 0; i < d->n_fields && !w->err; i++) {
		const ProtobufCFieldDescriptor *fd = &d->fields[i];
		bool addr = (fd->type == PROTOBUF_C_TYPE_UINT64 ||
			     fd->type == PROTOBUF_C_TYPE_FIXED64) &&
			    json_is_addr_field(fd->name);

		if (fd->label == PROTOBUF_C_LABEL_REPEATED) {
			size_t n;
			const char *arr;
			size_t sz = field_elem_size(fd->type);
			memcpy(&n, base + fd->quantifier_offset, sizeof(n));
			memcpy(&arr, base + fd->offset, sizeof(arr));
			json_key(w, fd->name);
			json_arr_begin(w);
			for (size_t j = 0; arr && j < n && !w->err; j++)
				json_field_value(w, fd, arr + j * sz, false);
			json_arr_end(w);
			continue;
		}
		if (fd->label == PROTOBUF_C_LABEL_OPTIONAL && !field_is_set(msg, fd))
			continue;
		if ((fd->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) && !field_is_set(msg, fd))
			continue;
		json_key(w, fd->name);
		json_field_value(w, fd, base + fd->offset, addr);
	}
	if (msg->n_unknown_fields) {
		json_key(w, "_unknown_fields");
		json_u64(w, msg->n_unknown_fields);
	}
	json_obj_end(w);
}
