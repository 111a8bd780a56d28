/* Decoding and checking of RPC requests, encoding and sending of responses. Everything
 * a request holds is checked here before any handler looks at it: the packet's size, the
 * type, the length of every string and the count of every repeated field at every depth,
 * and fields stasis does not know (a newer client's option silently ignored could make a
 * dump or a restore differ from what was asked: refused instead). */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

#include "core/log.h"
#include "rpc/rpc.h"

static int check_msg(const ProtobufCMessage *m, int depth, char *err, size_t errlen)
{
	const ProtobufCMessageDescriptor *d = m->descriptor;

	if (depth > 4) {
		snprintf(err, errlen, "request nested too deeply");
		return -EINVAL;
	}
	if (m->n_unknown_fields) {
		snprintf(err, errlen, "field %u of %s is not one stasis knows: refused",
			 (unsigned)m->unknown_fields[0].tag, d->short_name);
		return -EINVAL;
	}
	for (unsigned i = 0; i < d->n_fields; i++) {
		const ProtobufCFieldDescriptor *f = &d->fields[i];
		const char *member = (const char *)m + f->offset;
		const void *vals = member;
		size_t count = 1;

		if (f->type != PROTOBUF_C_TYPE_STRING && f->type != PROTOBUF_C_TYPE_MESSAGE &&
		    f->label != PROTOBUF_C_LABEL_REPEATED)
			continue;
		if (f->label == PROTOBUF_C_LABEL_REPEATED) {
			count = *(const size_t *)(const void *)((const char *)m +
								f->quantifier_offset);
			vals = *(void *const *)(const void *)member;
			if (count > RPC_MAX_REPEATED) {
				snprintf(err, errlen, "%s.%s has %zu entries (at most %d)",
					 d->short_name, f->name, count, RPC_MAX_REPEATED);
				return -E2BIG;
			}
		}
		for (size_t k = 0; k < count; k++) {
			if (f->type == PROTOBUF_C_TYPE_STRING) {
				const char *s = ((const char *const *)vals)[k];
				if (s && strnlen(s, RPC_MAX_STR + 1) > RPC_MAX_STR) {
					snprintf(err, errlen, "%s.%s is longer than %d bytes",
						 d->short_name, f->name, RPC_MAX_STR);
					return -E2BIG;
				}
			} else if (f->type == PROTOBUF_C_TYPE_MESSAGE) {
				const ProtobufCMessage *sub = ((ProtobufCMessage *const *)vals)[k];
				int r = sub ? check_msg(sub, depth + 1, err, errlen) : 0;
				if (r)
					return r;
			}
		}
	}
	return 0;
}

static bool type_needs_opts(RpcType t)
{
	return t == RPC_TYPE__RPC_DUMP || t == RPC_TYPE__RPC_RESTORE ||
	       t == RPC_TYPE__RPC_PRE_DUMP || t == RPC_TYPE__RPC_SINGLE_PRE_DUMP ||
	       t == RPC_TYPE__RPC_PAGE_SERVER || t == RPC_TYPE__RPC_PAGE_SERVER_CHLD;
}

RpcRequest *rpc_decode(const void *buf, size_t len, char *err, size_t errlen)
{
	RpcRequest *r;

	err[0] = '\0';
	if (len == 0 || len > RPC_MAX_MSG) {
		snprintf(err, errlen, "request of %zu bytes (1 to %d)", len, RPC_MAX_MSG);
		errno = EMSGSIZE;
		return NULL;
	}
	r = rpc_request__unpack(NULL, len, buf);
	if (!r) {
		snprintf(err, errlen, "malformed request (%zu bytes): not an RPC request message",
			 len);
		errno = EBADMSG;
		return NULL;
	}
	int ret = check_msg(&r->base, 0, err, errlen);
	if (!ret && ((int)r->type < RPC_TYPE__RPC_EMPTY ||
		     (int)r->type > RPC_TYPE__RPC_SINGLE_PRE_DUMP)) {
		snprintf(err, errlen, "unknown request type %d", (int)r->type);
		ret = -EINVAL;
	}
	if (!ret && type_needs_opts(r->type) && !r->opts) {
		snprintf(err, errlen, "request type %d without options", (int)r->type);
		ret = -EINVAL;
	}
	if (ret) {
		rpc_request__free_unpacked(r, NULL);
		errno = -ret;
		return NULL;
	}
	return r;
}

int rpc_send(int sk, const RpcResponse *resp)
{
	uint8_t buf[RPC_MAX_RESP];
	size_t len = rpc_response__get_packed_size(resp);

	if (len > sizeof(buf)) {
		pr_err("rpc: response of %zu bytes is too large", len);
		return -EMSGSIZE;
	}
	rpc_response__pack(resp, buf);
	for (;;) {
		ssize_t n = send(sk, buf, len, MSG_NOSIGNAL);
		if (n == (ssize_t)len)
			return 0;
		if (n < 0 && errno == EINTR)
			continue;
		return n < 0 ? pr_perror("rpc: send the response") : -EIO;
	}
}

ssize_t rpc_recv(int sk, uint8_t *buf, int timeout_ms)
{
	struct pollfd p = { .fd = sk, .events = POLLIN };

	for (;;) {
		int r = poll(&p, 1, timeout_ms);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return -errno;
		if (r == 0)
			return -ETIMEDOUT;
		/* no control buffer: fds a client might attach are dropped by the kernel;
		 * MSG_TRUNC gives the whole packet's length */
		ssize_t n = recv(sk, buf, RPC_MAX_MSG + 1, MSG_TRUNC);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		if (n > RPC_MAX_MSG)
			return -EMSGSIZE;
		return n;
	}
}
