/* The CRIU-compatible RPC server: `stasis swrk FD` (and `criu swrk FD`). A container
 * runtime (runc, Podman through runc or crun, go-criu) creates a SOCK_SEQPACKET socket
 * pair, starts the server with one end as FD and sends requests on the other, one encoded
 * RpcRequest (src/rpc/rpc.proto) per packet; each gets one RpcResponse. DUMP and RESTORE
 * run the same dump_run()/restore_run() as the command line, with the options of
 * RpcOptions mapped to struct dump_opts/restore_opts (opts.c); the action-script points
 * of the dump and the restore become NOTIFY round trips when the client asks for them.
 *
 *   proto.c  decoding and checking of a request (pure: unit-tested and fuzzed), encoding
 *            and sending of a response
 *   opts.c   the option mapping: what is honoured, what is refused and why
 *   swrk.c   the server loop and the handlers of the request types */
#ifndef STASIS_RPC_RPC_H
#define STASIS_RPC_RPC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "cr/ctx.h"
#include "rpc/rpc.pb-c.h"

/* The largest request accepted (a runtime's are a few KiB: hundreds of mounts) and the
 * largest response sent (runc reads into 40 KiB). */
#define RPC_MAX_MSG (64 * 1024)
#define RPC_MAX_RESP (32 * 1024)
/* Bounds checked on every decoded request, at every depth. */
#define RPC_MAX_STR 4096   /* bytes of a string */
#define RPC_MAX_REPEATED 512 /* entries of a repeated field */

/* What stasis answers to VERSION: the CRIU protocol level it speaks (runc and go-criu
 * compute major * 10000 + minor * 100 + sublevel and want at least 3.0) and its name. */
#define RPC_COMPAT_MAJOR 4
#define RPC_COMPAT_MINOR 0

/* Decode one request packet and check it: a known type, bounded strings and repeated
 * fields, no field stasis does not know, options where the type needs them. The request,
 * or NULL with a one-line reason in @err. Free with rpc_request__free_unpacked(r, NULL). */
RpcRequest *rpc_decode(const void *buf, size_t len, char *err, size_t errlen);

/* Encode @resp and send it as one packet: 0 or -errno. */
int rpc_send(int sk, const RpcResponse *resp) __attribute__((warn_unused_result));

/* Receive one packet into @buf (RPC_MAX_MSG + 1 bytes), waiting at most @timeout_ms (-1:
 * for ever). Its length; 0 when the peer closed; -EMSGSIZE if it was larger than
 * RPC_MAX_MSG; -ETIMEDOUT; or another -errno. */
ssize_t rpc_recv(int sk, uint8_t *buf, int timeout_ms);

/* A DUMP, PRE_DUMP or RESTORE request turned into the options of dump_run()/restore_run(). */
struct rpc_job {
	pid_t peer;            /* the client: its fds are reached through /proc/PEER/fd */
	char *images_dir;      /* the images directory, by path */
	int work_dfd;          /* the work directory (the log's), or -1 */
	char *log_path;        /* the log file, or NULL (no log) */
	int log_level;         /* enum log_level */
	bool log_to_stderr;
	bool notify;           /* notify_scripts: NOTIFY round trips */
	char **strs;           /* every string allocated for the options below */
	size_t n_strs;
	char *externals[2 * RPC_MAX_REPEATED + 8];
	size_t n_externals;
	const char *inherit[RPC_MAX_REPEATED];
	size_t n_inherit;
	const char *cg_roots[RPC_MAX_REPEATED]; /* "CTRL:PATH" */
	size_t n_cg_roots;
	struct dump_opts dump;
	struct restore_opts restore;
	char ps_port[8]; /* dump.ps_port's text */
};

/* PRE_DUMP or SINGLE_PRE_DUMP. */
bool rpc_type_is_pre_dump(RpcType t);

/* Check the options of a request of type @type against what stasis can do, without
 * touching anything: 0, or -EOPNOTSUPP/-EINVAL with the reason in @err. */
int rpc_opts_check(const RpcOptions *o, RpcType type, char *err, size_t errlen);

/* Check and map the options (the fds of @peer are opened): 0, or -errno with the reason
 * in @err. rpc_job_free() in every case. */
int rpc_job_prepare(struct rpc_job *j, const RpcOptions *o, RpcType type, pid_t peer,
		    char *err, size_t errlen) __attribute__((warn_unused_result));
void rpc_job_free(struct rpc_job *j);

/* CRIU's stats file of a dump (@dump) or a restore (stats.c): the bytes of the file in
 * @buf, their number or -ENOSPC. */
ssize_t rpc_stats_encode(bool dump, const struct cr_stats *st, uint8_t *buf, size_t size);
/* A stats file's message, or NULL if @buf is not one. Free with criu_stats__free_unpacked. */
CriuStats *rpc_stats_decode(const uint8_t *buf, size_t len);
/* Write stats-dump (@dump) or stats-restore in directory @dfd: 0 or -errno (logged). */
int rpc_write_stats(int dfd, bool dump, const struct cr_stats *st)
	__attribute__((warn_unused_result));

/* Serve the client on @sk until it closes it (or after a DUMP or RESTORE; after a
 * PRE_DUMP only the next pass may come). The exit status of `stasis swrk`: 0, or 1 if
 * the channel failed. */
int rpc_serve(int sk);

#endif
