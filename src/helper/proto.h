/* The wire protocol of the privileged helper (docs/ARCHITECTURE.md, "The privileged
 * helper"). Pure code: encoding and decoding of one SOCK_SEQPACKET message, no I/O, so
 * that the decoders can be unit-tested and fuzzed (tests/fuzz/fuzz_helper.c).
 *
 * A request is ONE message: a 16-byte header
 *     u32 magic "STHP", u16 version, u16 op, u32 payload length, u32 reserved (0)
 * followed by exactly `length` bytes of op-specific payload (integers in host byte order:
 * both ends are on the same machine). File descriptors an op needs travel in the same
 * message as SCM_RIGHTS; their number is part of what the decoder validates.
 * A reply is ONE message: a 16-byte header
 *     u32 magic, u16 version, u16 op (echoed), i32 status (0 or -errno), u32 reason length
 * followed by the reason (printable ASCII, no NUL, at most HELPER_REASON_MAX bytes), plus
 * an fd (SCM_RIGHTS) for the ops that return one. */
#ifndef STASIS_HELPER_PROTO_H
#define STASIS_HELPER_PROTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "proc/parse.h" /* struct id_range */

#define HELPER_MAGIC 0x50485453u /* "STHP" in little-endian byte order */
#define HELPER_VERSION 1
#define HELPER_HDR_SIZE 16

/* Limits. 340 ranges is the kernel's own limit for a uid_map/gid_map; 128 bytes is
 * MAX_HANDLE_SZ; PID_MAX_LIMIT is 4 Mi on 64-bit. */
#define HELPER_MAX_ID_RANGES 340
#define HELPER_MAX_HANDLE 128
#define HELPER_PID_LIMIT 4194304
/* SO_SNDBUFFORCE / SO_RCVBUFFORCE ceiling, see helper_op_sockbuf() in ops.c. */
#define HELPER_SOCKBUF_MAX (16u << 20)
#define HELPER_MAX_PAYLOAD (12 + 12 * HELPER_MAX_ID_RANGES)
#define HELPER_MAX_MSG (HELPER_HDR_SIZE + HELPER_MAX_PAYLOAD)
#define HELPER_MAX_FDS 1
#define HELPER_REASON_MAX 200
#define HELPER_MAX_REPLY (HELPER_HDR_SIZE + HELPER_REASON_MAX)

enum helper_op {
	HELPER_OP_REGISTER_TREE = 1,
	HELPER_OP_SET_SOCKBUF_FORCE = 2,
	HELPER_OP_WRITE_ID_MAP = 3,
	HELPER_OP_SET_NS_LAST_PID = 4,
	HELPER_OP_OPEN_BY_HANDLE = 5,
};
#define HELPER_OP_FIRST HELPER_OP_REGISTER_TREE
#define HELPER_OP_LAST HELPER_OP_OPEN_BY_HANDLE

/* REGISTER_TREE, WRITE_ID_MAP: the target task is named by a pidfd (the one fd of the
 * message); the pid field is then 0 or the pidfd's pid in the helper's PID namespace. */
#define HELPER_F_PIDFD (1u << 0)
/* WRITE_ID_MAP: gid_map instead of uid_map; setgroups "deny" before a gid_map. */
#define HELPER_F_GID (1u << 1)
#define HELPER_F_DENY_SETGROUPS (1u << 2)
/* SET_SOCKBUF_FORCE: which of the two values to set (at least one). */
#define HELPER_F_SNDBUF (1u << 0)
#define HELPER_F_RCVBUF (1u << 1)
/* SET_NS_LAST_PID: the one fd is an nsfs file of the PID namespace meant (it must be
 * the helper's own); without it the helper's own PID namespace is meant. */
#define HELPER_F_PIDNS_FD (1u << 0)


/* A decoded, validated request. Payload layouts (all fields u32/i32):
 *   REGISTER_TREE      flags, pid                              fds: pidfd if F_PIDFD
 *   SET_SOCKBUF_FORCE  flags, snd, rcv                         fds: the socket
 *   WRITE_ID_MAP       flags, pid, nr, nr x {inside, outside, count}  fds: pidfd if F_PIDFD
 *   SET_NS_LAST_PID    flags, last_pid                         fds: pidns if F_PIDNS_FD
 *   OPEN_BY_HANDLE     flags (0), open flags, handle type, handle bytes, handle
 *                                                              fds: the mount fd */
struct helper_req {
	uint16_t op;
	uint32_t flags;
	union {
		struct {
			int32_t pid;
		} tree;
		struct {
			uint32_t snd, rcv;
		} sockbuf;
		struct {
			int32_t pid;
			uint32_t nr;
			struct id_range r[HELPER_MAX_ID_RANGES];
		} idmap;
		struct {
			int32_t last_pid;
		} last_pid;
		struct {
			uint32_t open_flags;
			int32_t type;
			uint32_t bytes;
			uint8_t f_handle[HELPER_MAX_HANDLE];
		} handle;
	} u;
};

struct helper_reply {
	uint16_t op;
	int32_t status;
	char reason[HELPER_REASON_MAX + 1];
};

/* "WRITE_ID_MAP", ... or "unknown". */
const char *helper_op_name(unsigned int op);
/* Number of fds the request carries (0 or 1). */
unsigned int helper_req_nfds(const struct helper_req *req);
/* Whether open flags are acceptable for OPEN_BY_HANDLE: an access mode (O_RDONLY,
 * O_WRONLY, O_RDWR) or O_PATH alone, plus O_CLOEXEC; nothing else. */
bool helper_open_flags_ok(uint32_t flags);

/* Encode @req into @buf (at most @size bytes). Returns the message length or -errno
 * (-EINVAL for a request the decoder would refuse, -ENOBUFS if @buf is too small). */
ssize_t helper_req_encode(const struct helper_req *req, void *buf, size_t size);
/* Decode and validate one received request of @len bytes that came with @nfds fds.
 * 0, or -errno with the reason in @why (always NUL-terminated):
 *   -EMSGSIZE oversized, -EBADMSG truncated / length mismatch / trailing bytes,
 *   -EPROTO bad magic or reserved field, -EPROTONOSUPPORT other version,
 *   -EOPNOTSUPP unknown op, -EINVAL bad arguments or fd count. */
int helper_req_decode(const void *buf, size_t len, unsigned int nfds, struct helper_req *req,
		      char *why, size_t whylen) __attribute__((warn_unused_result));

/* Encode a reply; @reason may be NULL; it is cut to HELPER_REASON_MAX bytes and
 * non-printable bytes become '?'. Returns the length or -errno. */
ssize_t helper_reply_encode(uint16_t op, int32_t status, const char *reason, void *buf,
			    size_t size);
/* Decode a reply: 0 or -errno with the reason in @why (status must be 0 or -1..-4095,
 * reason printable). */
int helper_reply_decode(const void *buf, size_t len, struct helper_reply *rep, char *why,
			size_t whylen) __attribute__((warn_unused_result));

#endif
