/* Decoding and checking of RPC requests, encoding and sending of responses. Everything
 * a request holds is checked here before any handler looks at it: the packet's size, the
 * type, the length of every string and the count of every repeated field at every depth,
 * and fields stasis does not know (a newer client's option silently ignored could make a
 * dump or a restore differ from what was asked: refused instead); then the options
 * against what stasis can do (rpc_opts_check). Pure but for rpc_send/rpc_recv: the fuzz
 * target tests/fuzz/fuzz_rpc.c runs it. */
#include <errno.h>
#include <poll.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

#include "core/log.h"
#include "core/util.h"
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

/* ------------------------------------------ options stasis can honour ---- */

#define REFUSE(cond, ...)                                 \
	do {                                              \
		if (cond) {                               \
			snprintf(err, errlen, __VA_ARGS__); \
			return -EOPNOTSUPP;               \
		}                                         \
	} while (0)

/* Options whose only meaning is a feature stasis does not have: set to true, refused. */
static int check_unsupported_flags(const RpcOptions *o, bool dump, char *err, size_t errlen)
{
	/* (tcp_established, file_locks: connections and locks are always dumped; tcp_close,
	 * shell_job, ext_unix_sk and unix_sk_ino are mapped by opts.c) */
	REFUSE(o->has_tcp_skip_in_flight && o->tcp_skip_in_flight,
	       "tcp_skip_in_flight: not supported (connections in an accept queue are kept)");
	/* (track_mem and parent_img: incremental dumps, checked by rpc_opts_check) */
	/* (a restore's lazy_pages: stasis's lazy restore, serving the pages itself) */
	REFUSE(dump && o->has_lazy_pages && o->lazy_pages,
	       "lazy_pages: a dump serving pages from the live tree (post-copy) is not "
	       "supported: dump, then restore with lazy_pages");
	REFUSE(o->has_status_fd, "status_fd: only used by lazy dumps, not supported");
	REFUSE(o->ps && (!o->ps->address || !o->ps->address[0] || !o->ps->has_port ||
			 o->ps->port <= 0 || o->ps->port > 65535 || o->ps->has_fd),
	       "ps: the page server needs an address and a port (a connected fd is not "
	       "supported)");
	REFUSE(o->has_auto_dedup && o->auto_dedup, "auto_dedup: not supported");
	REFUSE(o->n_exec_cmd, "exec_cmd: running a command after restore is not supported");
	REFUSE(o->has_auto_ext_mnt && o->auto_ext_mnt, "auto_ext_mnt: not supported; declare "
						      "external mounts with ext_mnt");
	REFUSE(o->has_ext_sharing && o->ext_sharing, "ext_sharing: not supported");
	REFUSE(o->has_ext_masters && o->ext_masters, "ext_masters: not supported");
	REFUSE(o->n_skip_mnt, "skip_mnt: not supported");
	REFUSE(o->n_enable_fs, "enable_fs: not supported");
	/* runc always asks for an empty network namespace (it does not manage network
	 * devices): stasis carries the namespace's own devices (loopback and its addresses)
	 * and refuses at dump a device linked outside that no external veth declares, so
	 * the runtime's devices are never restored behind its back */
	REFUSE(o->has_empty_ns && (o->empty_ns & ~(uint32_t)CLONE_NEWNET),
	       "empty_ns %#x: only the network namespace (CLONE_NEWNET) may be left to the "
	       "runtime", (unsigned)o->empty_ns);
	REFUSE(o->cgroup_props || o->cgroup_props_file || o->n_cgroup_dump_controller ||
		       o->cgroup_yard,
	       "cgroup properties: stasis does not dump or restore cgroup properties");
	REFUSE(o->lsm_profile || o->lsm_mount_context, "lsm_profile: not supported");
	REFUSE(o->tls_cacert || o->tls_cacrl || o->tls_cert || o->tls_key ||
		       (o->has_tls && o->tls),
	       "tls: not supported (no page server)");
	REFUSE(o->has_pidfd_store_sk, "pidfd_store_sk: not supported");
	REFUSE(o->has_leave_stopped && o->leave_stopped, "leave_stopped: not supported");
	REFUSE(o->has_allow_uprobes && o->allow_uprobes, "allow_uprobes: not supported");
	return 0;
}

bool rpc_type_is_pre_dump(RpcType t)
{
	return t == RPC_TYPE__RPC_PRE_DUMP || t == RPC_TYPE__RPC_SINGLE_PRE_DUMP;
}

/* Incremental dumps: parent_img names the previous pass (relative to the images
 * directory, as CRIU resolves it, or absolute); track_mem asks for write tracking. */
static int check_incremental(const RpcOptions *o, RpcType type, char *err, size_t errlen)
{
	bool dump = type == RPC_TYPE__RPC_DUMP || rpc_type_is_pre_dump(type);

	REFUSE(!dump && o->ps, "ps: a dump option (`stasis page-server` receives the images; "
				"restore reads them there)");
	REFUSE(!dump && o->parent_img, "parent_img: a dump option (a restore follows the "
				       "images' parent link by itself)");
	REFUSE(!dump && o->has_track_mem && o->track_mem, "track_mem: a dump option");
	if (o->parent_img && !o->parent_img[0]) {
		snprintf(err, errlen, "parent_img: an empty path");
		return -EINVAL;
	}
	/* CRIU's modes differ in how the pages are read (splice or process_vm_readv), not
	 * in the images: stasis reads with process_vm_readv for both */
	if (o->has_pre_dump_mode && o->pre_dump_mode != 1 && o->pre_dump_mode != 2) {
		snprintf(err, errlen, "pre_dump_mode %d is unknown", (int)o->pre_dump_mode);
		return -EINVAL;
	}
	return 0;
}

int rpc_opts_check(const RpcOptions *o, RpcType type, char *err, size_t errlen)
{
	bool dump = type == RPC_TYPE__RPC_DUMP || rpc_type_is_pre_dump(type);
	int ret;

	err[0] = '\0';
	if (!dump && type != RPC_TYPE__RPC_RESTORE) {
		snprintf(err, errlen, "request type %d has no dump or restore options", (int)type);
		return -EINVAL;
	}
	ret = check_unsupported_flags(o, dump, err, errlen) ?: check_incremental(o, type, err, errlen);
	if (ret)
		return ret;
	if (o->images_dir_fd < 0) {
		snprintf(err, errlen, "images_dir_fd %d is not an fd", (int)o->images_dir_fd);
		return -EINVAL;
	}
	if (o->has_work_dir_fd && o->work_dir_fd < 0) {
		snprintf(err, errlen, "work_dir_fd %d is not an fd", (int)o->work_dir_fd);
		return -EINVAL;
	}
	if (dump && (!o->has_pid || o->pid <= 0)) {
		snprintf(err, errlen, "dump: pid is required (stasis does not dump its client)");
		return -EINVAL;
	}
	if (o->log_file && (!o->log_file[0] || strchr(o->log_file, '/') ||
			    !strcmp(o->log_file, ".") || !strcmp(o->log_file, ".."))) {
		snprintf(err, errlen, "log_file '%s': a file name in the work directory", o->log_file);
		return -EINVAL;
	}
	if (o->has_manage_cgroups_mode && (o->manage_cgroups_mode < RPC_CG_MODE__CGM_IGNORE ||
					   o->manage_cgroups_mode > RPC_CG_MODE__CGM_DEFAULT)) {
		snprintf(err, errlen, "manage_cgroups_mode %d is unknown", (int)o->manage_cgroups_mode);
		return -EINVAL;
	}
	/* TODO(netlock helper): honour the lock method once --network-lock lands; without
	 * TCP connections (refused above) an unlocked network changes nothing restored. */
	if (o->has_network_lock && (o->network_lock < 1 || o->network_lock > 3)) {
		snprintf(err, errlen, "network_lock %d is unknown", (int)o->network_lock);
		return -EINVAL;
	}
	if (o->root && o->root[0] != '/') {
		snprintf(err, errlen, "root '%s' is not an absolute path", o->root);
		return -EINVAL;
	}
	if (o->n_join_ns > MAX_JOIN_NS) {
		snprintf(err, errlen, "join_ns: at most %d namespaces", MAX_JOIN_NS);
		return -E2BIG;
	}
	for (size_t i = 0; i < o->n_join_ns; i++) {
		REFUSE(o->join_ns[i]->extra, "join_ns %s: extra options are not supported",
		       o->join_ns[i]->kind);
		if (strcmp(o->join_ns[i]->kind, "uts") && strcmp(o->join_ns[i]->kind, "ipc") &&
		    strcmp(o->join_ns[i]->kind, "net")) {
			snprintf(err, errlen, "join_ns %s: only uts, ipc and net can be joined",
				 o->join_ns[i]->kind);
			return -EOPNOTSUPP;
		}
	}
	for (size_t i = 0; i < o->n_inherit_fd; i++)
		if (o->inherit_fd[i]->fd < 0 || !o->inherit_fd[i]->key[0]) {
			snprintf(err, errlen, "inherit_fd %d:%s is not an fd and a key",
				 (int)o->inherit_fd[i]->fd, o->inherit_fd[i]->key);
			return -EINVAL;
		}
	for (size_t i = 0; i < o->n_external; i++)
		REFUSE(!str_starts(o->external[i], "mnt[") && !str_starts(o->external[i], "veth["),
		       "external '%s': only mnt[...] and veth[...] are supported", o->external[i]);
	return 0;
}

/* ---------------------------------------------------------- responses ---- */

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
