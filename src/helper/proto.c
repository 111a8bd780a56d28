/* The helper's wire protocol: see proto.h. Pure functions, no I/O, no logging (the
 * caller logs the reason it gets back). */
#include "helper/proto.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

/* The kernel refuses a map write of PAGE_SIZE bytes or more. */
#define IDMAP_TEXT_MAX 4096

static const char *const op_names[] = {
	[HELPER_OP_REGISTER_TREE] = "REGISTER_TREE",
	[HELPER_OP_SET_SOCKBUF_FORCE] = "SET_SOCKBUF_FORCE",
	[HELPER_OP_WRITE_ID_MAP] = "WRITE_ID_MAP",
	[HELPER_OP_SET_NS_LAST_PID] = "SET_NS_LAST_PID",
	[HELPER_OP_OPEN_BY_HANDLE] = "OPEN_BY_HANDLE",
};

const char *helper_op_name(unsigned int op)
{
	if (op < HELPER_OP_FIRST || op > HELPER_OP_LAST)
		return "unknown";
	return op_names[op];
}

unsigned int helper_req_nfds(const struct helper_req *req)
{
	switch (req->op) {
	case HELPER_OP_REGISTER_TREE:
	case HELPER_OP_WRITE_ID_MAP: return req->flags & HELPER_F_PIDFD ? 1 : 0;
	case HELPER_OP_SET_NS_LAST_PID: return req->flags & HELPER_F_PIDNS_FD ? 1 : 0;
	case HELPER_OP_SET_SOCKBUF_FORCE:
	case HELPER_OP_OPEN_BY_HANDLE: return 1;
	default: return 0;
	}
}

bool helper_open_flags_ok(uint32_t flags)
{
	uint32_t f = flags & ~(uint32_t)O_CLOEXEC;

	if (f & O_PATH)
		return f == O_PATH;
	return f == O_RDONLY || f == O_WRONLY || f == O_RDWR;
}

/* ---- a bounded cursor over a byte buffer --------------------------------------- */

struct wire {
	unsigned char *p;
	size_t len, off;
	bool overflow;
};

static void put_bytes(struct wire *w, const void *src, size_t n)
{
	if (w->overflow || n > w->len - w->off) {
		w->overflow = true;
		return;
	}
	memcpy(w->p + w->off, src, n);
	w->off += n;
}
static void put_u32(struct wire *w, uint32_t v) { put_bytes(w, &v, sizeof(v)); }
static void put_u16(struct wire *w, uint16_t v) { put_bytes(w, &v, sizeof(v)); }

struct rd {
	const unsigned char *p;
	size_t len, off;
};

/* 0, or -EBADMSG when fewer than @n bytes are left. */
static int get_bytes(struct rd *r, void *dst, size_t n)
{
	if (n > r->len - r->off)
		return -EBADMSG;
	memcpy(dst, r->p + r->off, n);
	r->off += n;
	return 0;
}
static int get_u32(struct rd *r, uint32_t *v) { return get_bytes(r, v, sizeof(*v)); }
static int get_u16(struct rd *r, uint16_t *v) { return get_bytes(r, v, sizeof(*v)); }
static int get_i32(struct rd *r, int32_t *v) { return get_bytes(r, v, sizeof(*v)); }

static int why_set(char *why, size_t whylen, int err, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
static int why_set(char *why, size_t whylen, int err, const char *fmt, ...)
{
	va_list ap;

	if (why && whylen) {
		va_start(ap, fmt);
		vsnprintf(why, whylen, fmt, ap);
		va_end(ap);
	}
	return err;
}

/* ---- id maps -------------------------------------------------------------------- */

static unsigned int dec_len(uint32_t v)
{
	unsigned int n = 1;
	while (v >= 10) {
		v /= 10;
		n++;
	}
	return n;
}

/* Validate @n ranges the way the kernel's map_write() does (non-empty, no wrap, no
 * overlap inside or outside) and that their text fits one write. */
static int idmap_validate(const struct id_range *r, uint32_t n, char *why, size_t whylen)
{
	size_t text = 0;

	if (n == 0 || n > HELPER_MAX_ID_RANGES)
		return why_set(why, whylen, -EINVAL, "%u ranges (1..%d allowed)", n,
			       HELPER_MAX_ID_RANGES);
	for (uint32_t i = 0; i < n; i++) {
		uint64_t in_end = (uint64_t)r[i].inside + r[i].count;
		uint64_t out_end = (uint64_t)r[i].outside + r[i].count;

		if (r[i].count == 0 || in_end > UINT32_MAX || out_end > UINT32_MAX)
			return why_set(why, whylen, -EINVAL,
				       "range %u (%u %u %u) is empty or wraps", i, r[i].inside,
				       r[i].outside, r[i].count);
		for (uint32_t j = 0; j < i; j++) {
			bool in_ov = r[i].inside < (uint64_t)r[j].inside + r[j].count &&
				     r[j].inside < in_end;
			bool out_ov = r[i].outside < (uint64_t)r[j].outside + r[j].count &&
				      r[j].outside < out_end;
			if (in_ov || out_ov)
				return why_set(why, whylen, -EINVAL,
					       "ranges %u and %u overlap %s", j, i,
					       in_ov ? "inside" : "outside");
		}
		text += dec_len(r[i].inside) + dec_len(r[i].outside) + dec_len(r[i].count) + 3;
	}
	if (text >= IDMAP_TEXT_MAX)
		return why_set(why, whylen, -EINVAL,
			       "map text of %zu bytes does not fit one write (< %d)", text,
			       IDMAP_TEXT_MAX);
	return 0;
}

/* ---- requests ------------------------------------------------------------------- */

static int req_validate(const struct helper_req *q, char *why, size_t whylen)
{
	uint32_t f = q->flags;

	switch (q->op) {
	case HELPER_OP_REGISTER_TREE:
	case HELPER_OP_WRITE_ID_MAP: {
		uint32_t known = HELPER_F_PIDFD;
		int32_t pid = q->op == HELPER_OP_REGISTER_TREE ? q->u.tree.pid : q->u.idmap.pid;

		if (q->op == HELPER_OP_WRITE_ID_MAP)
			known |= HELPER_F_GID | HELPER_F_DENY_SETGROUPS;
		if (f & ~known)
			return why_set(why, whylen, -EINVAL, "unknown flags 0x%x", f & ~known);
		if ((f & HELPER_F_DENY_SETGROUPS) && !(f & HELPER_F_GID))
			return why_set(why, whylen, -EINVAL, "setgroups applies to gid_map only");
		if (pid < ((f & HELPER_F_PIDFD) ? 0 : 1) || pid >= HELPER_PID_LIMIT)
			return why_set(why, whylen, -EINVAL, "bad pid %d", pid);
		if (q->op == HELPER_OP_WRITE_ID_MAP)
			return idmap_validate(q->u.idmap.r, q->u.idmap.nr, why, whylen);
		return 0;
	}
	case HELPER_OP_SET_SOCKBUF_FORCE:
		if (f & ~(HELPER_F_SNDBUF | HELPER_F_RCVBUF) || !f)
			return why_set(why, whylen, -EINVAL, "bad flags 0x%x", f);
		if ((!(f & HELPER_F_SNDBUF) && q->u.sockbuf.snd) ||
		    (!(f & HELPER_F_RCVBUF) && q->u.sockbuf.rcv))
			return why_set(why, whylen, -EINVAL, "value given for a buffer not set");
		if (q->u.sockbuf.snd > HELPER_SOCKBUF_MAX || q->u.sockbuf.rcv > HELPER_SOCKBUF_MAX)
			return why_set(why, whylen, -EINVAL,
				       "buffer size %u over the helper's limit of %u bytes",
				       q->u.sockbuf.snd > HELPER_SOCKBUF_MAX ? q->u.sockbuf.snd
									     : q->u.sockbuf.rcv,
				       HELPER_SOCKBUF_MAX);
		return 0;
	case HELPER_OP_SET_NS_LAST_PID:
		if (f & ~HELPER_F_PIDNS_FD)
			return why_set(why, whylen, -EINVAL, "unknown flags 0x%x",
				       f & ~HELPER_F_PIDNS_FD);
		if (q->u.last_pid.last_pid < 0 || q->u.last_pid.last_pid >= HELPER_PID_LIMIT)
			return why_set(why, whylen, -EINVAL, "bad last pid %d",
				       q->u.last_pid.last_pid);
		return 0;
	case HELPER_OP_OPEN_BY_HANDLE:
		if (f)
			return why_set(why, whylen, -EINVAL, "unknown flags 0x%x", f);
		if (!helper_open_flags_ok(q->u.handle.open_flags))
			return why_set(why, whylen, -EINVAL,
				       "open flags 0%o not allowed (only an access mode or O_PATH, "
				       "and O_CLOEXEC)",
				       q->u.handle.open_flags);
		if (q->u.handle.bytes == 0 || q->u.handle.bytes > HELPER_MAX_HANDLE)
			return why_set(why, whylen, -EINVAL, "handle of %u bytes (1..%d allowed)",
				       q->u.handle.bytes, HELPER_MAX_HANDLE);
		if (q->u.handle.type < 0)
			return why_set(why, whylen, -EINVAL, "bad handle type %d",
				       q->u.handle.type);
		return 0;
	default:
		return why_set(why, whylen, -EOPNOTSUPP, "unknown operation %u", q->op);
	}
}

ssize_t helper_req_encode(const struct helper_req *req, void *buf, size_t size)
{
	struct wire w = { .p = buf, .len = size };
	size_t payload_at;

	if (req_validate(req, NULL, 0))
		return -EINVAL;
	put_u32(&w, HELPER_MAGIC);
	put_u16(&w, HELPER_VERSION);
	put_u16(&w, req->op);
	put_u32(&w, 0); /* length, filled in below */
	put_u32(&w, 0);
	payload_at = w.off;
	put_u32(&w, req->flags);
	switch (req->op) {
	case HELPER_OP_REGISTER_TREE: put_u32(&w, (uint32_t)req->u.tree.pid); break;
	case HELPER_OP_SET_SOCKBUF_FORCE:
		put_u32(&w, req->u.sockbuf.snd);
		put_u32(&w, req->u.sockbuf.rcv);
		break;
	case HELPER_OP_WRITE_ID_MAP:
		put_u32(&w, (uint32_t)req->u.idmap.pid);
		put_u32(&w, req->u.idmap.nr);
		for (uint32_t i = 0; i < req->u.idmap.nr; i++) {
			put_u32(&w, req->u.idmap.r[i].inside);
			put_u32(&w, req->u.idmap.r[i].outside);
			put_u32(&w, req->u.idmap.r[i].count);
		}
		break;
	case HELPER_OP_SET_NS_LAST_PID: put_u32(&w, (uint32_t)req->u.last_pid.last_pid); break;
	case HELPER_OP_OPEN_BY_HANDLE:
		put_u32(&w, req->u.handle.open_flags);
		put_u32(&w, (uint32_t)req->u.handle.type);
		put_u32(&w, req->u.handle.bytes);
		put_bytes(&w, req->u.handle.f_handle, req->u.handle.bytes);
		break;
	default: return -EINVAL;
	}
	if (w.overflow)
		return -ENOBUFS;
	uint32_t plen = (uint32_t)(w.off - payload_at);
	memcpy(w.p + 8, &plen, sizeof(plen));
	return (ssize_t)w.off;
}

/* The op-specific payload of @r (positioned after the header) into @q. */
static int req_payload(struct rd *r, struct helper_req *q, char *why, size_t whylen)
{
	int ret = get_u32(r, &q->flags);

	switch (q->op) {
	case HELPER_OP_REGISTER_TREE: ret = ret ?: get_i32(r, &q->u.tree.pid); break;
	case HELPER_OP_SET_SOCKBUF_FORCE:
		ret = ret ?: get_u32(r, &q->u.sockbuf.snd);
		ret = ret ?: get_u32(r, &q->u.sockbuf.rcv);
		break;
	case HELPER_OP_WRITE_ID_MAP:
		ret = ret ?: get_i32(r, &q->u.idmap.pid);
		ret = ret ?: get_u32(r, &q->u.idmap.nr);
		if (ret)
			break;
		if (q->u.idmap.nr == 0 || q->u.idmap.nr > HELPER_MAX_ID_RANGES)
			return why_set(why, whylen, -EINVAL, "%u ranges (1..%d allowed)",
				       q->u.idmap.nr, HELPER_MAX_ID_RANGES);
		for (uint32_t i = 0; i < q->u.idmap.nr && !ret; i++) {
			ret = get_u32(r, &q->u.idmap.r[i].inside);
			ret = ret ?: get_u32(r, &q->u.idmap.r[i].outside);
			ret = ret ?: get_u32(r, &q->u.idmap.r[i].count);
		}
		break;
	case HELPER_OP_SET_NS_LAST_PID: ret = ret ?: get_i32(r, &q->u.last_pid.last_pid); break;
	case HELPER_OP_OPEN_BY_HANDLE:
		ret = ret ?: get_u32(r, &q->u.handle.open_flags);
		ret = ret ?: get_i32(r, &q->u.handle.type);
		ret = ret ?: get_u32(r, &q->u.handle.bytes);
		if (ret)
			break;
		if (q->u.handle.bytes == 0 || q->u.handle.bytes > HELPER_MAX_HANDLE)
			return why_set(why, whylen, -EINVAL, "handle of %u bytes (1..%d allowed)",
				       q->u.handle.bytes, HELPER_MAX_HANDLE);
		ret = get_bytes(r, q->u.handle.f_handle, q->u.handle.bytes);
		break;
	default:
		return why_set(why, whylen, -EOPNOTSUPP, "unknown operation %u", q->op);
	}
	if (ret)
		return why_set(why, whylen, -EBADMSG, "truncated %s payload (%zu bytes)",
			       helper_op_name(q->op), r->len - HELPER_HDR_SIZE);
	if (r->off != r->len)
		return why_set(why, whylen, -EBADMSG, "%zu trailing bytes after the %s payload",
			       r->len - r->off, helper_op_name(q->op));
	return 0;
}

int helper_req_decode(const void *buf, size_t len, unsigned int nfds, struct helper_req *req,
		      char *why, size_t whylen)
{
	struct rd r = { .p = buf, .len = len };
	uint32_t magic, plen, reserved;
	uint16_t version, op;
	int ret;

	if (why && whylen)
		why[0] = '\0';
	memset(req, 0, sizeof(*req));
	if (len > HELPER_MAX_MSG)
		return why_set(why, whylen, -EMSGSIZE, "message of %zu bytes (max %d)", len,
			       HELPER_MAX_MSG);
	if (len < HELPER_HDR_SIZE)
		return why_set(why, whylen, -EBADMSG, "truncated header (%zu bytes)", len);
	ret = get_u32(&r, &magic);
	ret = ret ?: get_u16(&r, &version);
	ret = ret ?: get_u16(&r, &op);
	ret = ret ?: get_u32(&r, &plen);
	ret = ret ?: get_u32(&r, &reserved);
	if (ret)
		return why_set(why, whylen, -EBADMSG, "truncated header (%zu bytes)", len);
	if (magic != HELPER_MAGIC)
		return why_set(why, whylen, -EPROTO, "bad magic 0x%08x", magic);
	if (version != HELPER_VERSION)
		return why_set(why, whylen, -EPROTONOSUPPORT, "protocol version %u (want %d)",
			       version, HELPER_VERSION);
	if (reserved)
		return why_set(why, whylen, -EPROTO, "reserved header field is 0x%x", reserved);
	if (plen != len - HELPER_HDR_SIZE)
		return why_set(why, whylen, -EBADMSG,
			       "header says %u payload bytes, message has %zu", plen,
			       len - HELPER_HDR_SIZE);
	if (op < HELPER_OP_FIRST || op > HELPER_OP_LAST)
		return why_set(why, whylen, -EOPNOTSUPP, "unknown operation %u", op);
	req->op = op;
	ret = req_payload(&r, req, why, whylen);
	ret = ret ?: req_validate(req, why, whylen);
	if (!ret && nfds != helper_req_nfds(req))
		ret = why_set(why, whylen, -EINVAL, "%s with flags 0x%x takes %u fds, got %u",
			      helper_op_name(op), req->flags, helper_req_nfds(req), nfds);
	if (ret)
		memset(req, 0, sizeof(*req));
	return ret;
}

/* ---- replies -------------------------------------------------------------------- */

ssize_t helper_reply_encode(uint16_t op, int32_t status, const char *reason, void *buf,
			    size_t size)
{
	struct wire w = { .p = buf, .len = size };
	size_t n = reason ? strnlen(reason, HELPER_REASON_MAX) : 0;

	if (status > 0 || status < -4095)
		return -EINVAL;
	put_u32(&w, HELPER_MAGIC);
	put_u16(&w, HELPER_VERSION);
	put_u16(&w, op);
	put_u32(&w, (uint32_t)status);
	put_u32(&w, (uint32_t)n);
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)reason[i];
		put_bytes(&w, c >= 0x20 && c < 0x7f ? &c : (const unsigned char *)"?", 1);
	}
	return w.overflow ? -ENOBUFS : (ssize_t)w.off;
}

int helper_reply_decode(const void *buf, size_t len, struct helper_reply *rep, char *why,
			size_t whylen)
{
	struct rd r = { .p = buf, .len = len };
	uint32_t magic, rlen;
	uint16_t version;
	int ret;

	if (why && whylen)
		why[0] = '\0';
	memset(rep, 0, sizeof(*rep));
	if (len > HELPER_MAX_REPLY)
		return why_set(why, whylen, -EMSGSIZE, "reply of %zu bytes (max %d)", len,
			       HELPER_MAX_REPLY);
	ret = get_u32(&r, &magic);
	ret = ret ?: get_u16(&r, &version);
	ret = ret ?: get_u16(&r, &rep->op);
	ret = ret ?: get_i32(&r, &rep->status);
	ret = ret ?: get_u32(&r, &rlen);
	if (ret)
		return why_set(why, whylen, -EBADMSG, "truncated reply (%zu bytes)", len);
	if (magic != HELPER_MAGIC || version != HELPER_VERSION)
		return why_set(why, whylen, -EPROTO, "bad reply magic/version 0x%08x/%u", magic,
			       version);
	if (rep->status > 0 || rep->status < -4095)
		return why_set(why, whylen, -EPROTO, "bad reply status %d", rep->status);
	if (rlen != len - HELPER_HDR_SIZE)
		return why_set(why, whylen, -EBADMSG, "reply says %u reason bytes, has %zu", rlen,
			       len - HELPER_HDR_SIZE);
	ret = get_bytes(&r, rep->reason, rlen);
	if (ret)
		return why_set(why, whylen, -EBADMSG, "truncated reply reason");
	rep->reason[rlen] = '\0';
	for (uint32_t i = 0; i < rlen; i++)
		if ((unsigned char)rep->reason[i] < 0x20 || (unsigned char)rep->reason[i] >= 0x7f)
			return why_set(why, whylen, -EPROTO, "non-printable byte in reply reason");
	return 0;
}
