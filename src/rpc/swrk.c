/* The RPC server loop and the handlers of the request types (see rpc.h). One request,
 * one response; the client closing its end ends the server cleanly. A malformed,
 * oversized or unknown request gets an error response naming the problem, and the
 * server goes on reading; after a DUMP or a RESTORE it exits (as CRIU's does), the
 * restored tree running on; after a PRE_DUMP it waits for the next pass (PRE_DUMP or
 * DUMP), as CRIU's. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "core/log.h"
#include "core/util.h"
#include "core/version.h"
#include "mem/mem.h"
#include "rpc/rpc.h"
#include "sys/kerndat.h"

/* How long a notification waits for the client's answer (the tree is frozen meanwhile;
 * runc's hooks run in it). */
#define RPC_NOTIFY_TIMEOUT_MS (120 * 1000)

struct server {
	int sk;
	pid_t peer;
	uint8_t *buf;       /* RPC_MAX_MSG + 1 bytes */
	struct rpc_job *job;
	pid_t restored;     /* the root of the restored tree, from its notifications */
	bool lost;          /* the channel failed: stop */
	bool job_failed;    /* the last DUMP, PRE_DUMP or RESTORE failed */
	bool pre_dumped;    /* a PRE_DUMP was served: only PRE_DUMP or DUMP may follow */
};

static void resp_init(RpcResponse *r, RpcType type, bool ok)
{
	rpc_response__init(r);
	r->type = type;
	r->success = ok;
}

static int send_error(struct server *s, RpcType type, int err, const char *msg)
{
	RpcResponse r;
	char line[1024];

	resp_init(&r, type, false);
	r.has_cr_errno = true;
	r.cr_errno = err < 0 ? -err : err;
	snprintf(line, sizeof(line), "%s", msg && msg[0] ? msg : "failed (no reason logged)");
	r.cr_errmsg = line;
	pr_err("rpc: request type %d refused: %s", (int)type, line);
	int ret = rpc_send(s->sk, &r);
	if (ret)
		s->lost = true;
	return ret;
}

/* An action-script point of the dump or restore: with notify_scripts, ask the client and
 * wait for its NOTIFY answer. */
static int notify_cb(void *arg, const char *point, pid_t pid)
{
	struct server *s = arg;
	RpcResponse r;
	RpcNotify n = RPC_NOTIFY__INIT;
	char err[256];

	if (pid > 0 && (!strcmp(point, "post-restore") || !strcmp(point, "setup-namespaces")))
		s->restored = pid;
	if (!s->job || !s->job->notify)
		return 0;
	resp_init(&r, RPC_TYPE__RPC_NOTIFY, true);
	n.script = (char *)point;
	if (pid > 0) {
		n.has_pid = true;
		n.pid = pid;
	}
	r.notify = &n;
	pr_info("rpc: notify %s (pid %d)", point, (int)pid);
	int ret = rpc_send(s->sk, &r);
	if (ret) {
		s->lost = true;
		return ret;
	}
	ssize_t len = rpc_recv(s->sk, s->buf, RPC_NOTIFY_TIMEOUT_MS);
	if (len <= 0) {
		s->lost = true;
		pr_err("rpc: notify %s: %s", point,
		       len == 0 ? "the client closed the channel" : strerror((int)-len));
		return len == 0 ? -ECONNRESET : (int)len;
	}
	RpcRequest *q = rpc_decode(s->buf, (size_t)len, err, sizeof(err));
	if (!q) {
		pr_err("rpc: notify %s: the answer is not valid: %s", point, err);
		return -EBADMSG;
	}
	bool ok = q->type == RPC_TYPE__RPC_NOTIFY && q->has_notify_success && q->notify_success;
	if (!ok)
		pr_err("rpc: notify %s: the client %s", point,
		       q->type == RPC_TYPE__RPC_NOTIFY ? "reports a failure"
						       : "answered with another request");
	rpc_request__free_unpacked(q, NULL);
	return ok ? 0 : -ECANCELED;
}

static int open_log(const struct rpc_job *j)
{
	const char *path = j->log_path ? j->log_path : j->log_to_stderr ? NULL : "/dev/null";
	enum log_level lvl = j->log_path || j->log_to_stderr ? j->log_level : LOG_ERR;
	if (log_init(path, lvl)) {
		pr_err("rpc: cannot open the log %s: %s", path, strerror(errno));
		return -errno;
	}
	log_reset_first_error();
	return 0;
}

static int handle_job(struct server *s, const RpcRequest *q)
{
	struct rpc_job j;
	char err[512];
	bool pre = rpc_type_is_pre_dump(q->type);
	bool dump = q->type == RPC_TYPE__RPC_DUMP || pre;
	int ret;

	s->job_failed = true;
	ret = rpc_job_prepare(&j, q->opts, q->type, s->peer, err, sizeof(err));
	if (ret) {
		/* in the log too when there is one: runtimes show its path, not the message */
		if (j.log_path && !open_log(&j))
			pr_err("rpc: %s", err);
		rpc_job_free(&j);
		return send_error(s, q->type, ret, err);
	}
	ret = open_log(&j);
	if (ret) {
		rpc_job_free(&j);
		return send_error(s, q->type, ret, "cannot open the log file");
	}
	s->job = &j;
	s->restored = 0;
	struct cr_stats st = { 0 };
	if (dump) {
		j.dump.notify = notify_cb;
		j.dump.notify_arg = s;
		j.dump.stats = &st;
		pr_info("rpc: %s of pid %d into %s", pre ? "pre-dump" : "dump", (int)j.dump.pid,
			j.images_dir);
		ret = dump_run(&j.dump);
	} else {
		j.restore.notify = notify_cb;
		j.restore.notify_arg = s;
		j.restore.stats = &st;
		pr_info("rpc: restore from %s", j.images_dir);
		ret = restore_run(&j.restore);
		if (!ret && s->restored <= 0)
			ret = -ESRCH; /* cannot happen: the root's pid is notified */
	}
	s->job = NULL;
	if (ret || s->lost) {
		snprintf(err, sizeof(err), "%s", log_first_error());
		rpc_job_free(&j);
		return s->lost ? -EPIPE : send_error(s, q->type, ret < -1000 ? ret + 1000 : ret, err);
	}
	/* the stats files, in the work directory as CRIU's: a runtime that wants them fails
	 * without, but the dump or restore itself is done */
	int sdfd = j.work_dfd >= 0 ? j.work_dfd
				   : open(j.images_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (sdfd < 0 || rpc_write_stats(sdfd, dump, &st))
		pr_warn("rpc: no %s file in the work directory", dump ? "stats-dump" : "stats-restore");
	if (sdfd >= 0 && sdfd != j.work_dfd)
		close(sdfd);
	rpc_job_free(&j);
	s->job_failed = false;

	RpcResponse r;
	RpcDumpResult d = RPC_DUMP_RESULT__INIT;
	RpcRestoreResult rr = RPC_RESTORE_RESULT__INIT;
	resp_init(&r, q->type, true);
	if (pre) {
		/* the type and success alone, as CRIU's */
	} else if (dump) {
		d.has_restored = true;
		d.restored = false;
		r.dump = &d;
	} else {
		rr.pid = s->restored;
		r.restore = &rr;
	}
	ret = rpc_send(s->sk, &r);
	if (ret)
		s->lost = true;
	return ret;
}

static int handle_version(struct server *s)
{
	RpcResponse r;
	RpcVersion v = RPC_VERSION__INIT;
	char name[64];

	resp_init(&r, RPC_TYPE__RPC_VERSION, true);
	v.major = RPC_COMPAT_MAJOR;
	v.minor = RPC_COMPAT_MINOR;
	snprintf(name, sizeof(name), "stasis " STASIS_VERSION);
	v.name = name;
	r.version = &v;
	return rpc_send(s->sk, &r);
}

static int handle_check(struct server *s)
{
	const struct kerndat *kd = kerndat_get();
	char missing[512] = "";

	for (int f = 0; f < KD_NR_FEATURES; f++) {
		if (!kerndat_is_required(f) || kerndat_has(kd, f))
			continue;
		size_t n = strlen(missing);
		snprintf(missing + n, sizeof(missing) - n, "%s%s", n ? ", " : "",
			 kerndat_feature_name(f));
	}
	if (missing[0]) {
		char msg[600];
		snprintf(msg, sizeof(msg), "required kernel features missing: %s", missing);
		return send_error(s, RPC_TYPE__RPC_CHECK, ENOSYS, msg);
	}
	RpcResponse r;
	resp_init(&r, RPC_TYPE__RPC_CHECK, true);
	return rpc_send(s->sk, &r);
}

/* What stasis has of the features a client asks about: memory tracking (pre-dump) when
 * the kernel lets stasis track writes (userfaultfd WP_ASYNC and PAGEMAP_SCAN: CRIU's
 * soft-dirty is not needed); lazy pages and the pidfd store: not yet. */
static int handle_features(struct server *s, const RpcRequest *q)
{
	RpcResponse r;
	RpcFeatures f = RPC_FEATURES__INIT;

	resp_init(&r, RPC_TYPE__RPC_FEATURE_CHECK, true);
	if (q->features) {
		f.has_mem_track = q->features->has_mem_track;
		f.mem_track = f.has_mem_track && mem_track_is_available();
		f.has_lazy_pages = q->features->has_lazy_pages;
		f.has_pidfd_store = q->features->has_pidfd_store;
	}
	r.features = &f;
	return rpc_send(s->sk, &r);
}

/* One request; true when the server should stop after it. */
static bool serve_one(struct server *s, const uint8_t *buf, size_t len)
{
	char err[512];
	RpcRequest *q = rpc_decode(buf, len, err, sizeof(err));

	if (!q) {
		send_error(s, RPC_TYPE__RPC_EMPTY, errno, err);
		return s->lost;
	}
	if (s->pre_dumped && q->type != RPC_TYPE__RPC_PRE_DUMP && q->type != RPC_TYPE__RPC_DUMP) {
		send_error(s, q->type, EINVAL, "after a pre-dump only PRE_DUMP or DUMP may follow");
		rpc_request__free_unpacked(q, NULL);
		return true;
	}
	switch (q->type) {
	case RPC_TYPE__RPC_VERSION:
		s->lost = handle_version(s) != 0;
		break;
	case RPC_TYPE__RPC_CHECK:
		handle_check(s);
		break;
	case RPC_TYPE__RPC_FEATURE_CHECK:
		s->lost = handle_features(s, q) != 0;
		break;
	case RPC_TYPE__RPC_DUMP:
	case RPC_TYPE__RPC_RESTORE:
		handle_job(s, q);
		rpc_request__free_unpacked(q, NULL);
		return true;
	case RPC_TYPE__RPC_PRE_DUMP:
		/* as CRIU's: the session goes on with the next pass (PRE_DUMP or DUMP, each
		 * with its own options) until one fails or the client closes */
		handle_job(s, q);
		s->pre_dumped = true;
		rpc_request__free_unpacked(q, NULL);
		return s->lost || s->job_failed;
	case RPC_TYPE__RPC_SINGLE_PRE_DUMP:
		handle_job(s, q);
		rpc_request__free_unpacked(q, NULL);
		return true;
	case RPC_TYPE__RPC_PAGE_SERVER:
	case RPC_TYPE__RPC_PAGE_SERVER_CHLD:
		send_error(s, q->type, EOPNOTSUPP, "the page server is not supported");
		break;
	case RPC_TYPE__RPC_CPUINFO_DUMP:
	case RPC_TYPE__RPC_CPUINFO_CHECK:
		send_error(s, q->type, EOPNOTSUPP, "cpuinfo images are not supported");
		break;
	case RPC_TYPE__RPC_WAIT_PID:
		send_error(s, q->type, EOPNOTSUPP, "wait-pid is not supported");
		break;
	case RPC_TYPE__RPC_NOTIFY:
		send_error(s, q->type, EINVAL, "a NOTIFY answer outside a notification");
		break;
	default:
		send_error(s, q->type, EINVAL, "empty request");
		break;
	}
	rpc_request__free_unpacked(q, NULL);
	return s->lost;
}

int rpc_serve(int sk)
{
	struct server s = { .sk = sk };
	struct ucred cr;
	socklen_t crlen = sizeof(cr);
	int type = 0;
	socklen_t tlen = sizeof(type);

	if (getsockopt(sk, SOL_SOCKET, SO_TYPE, &type, &tlen) < 0 || type != SOCK_SEQPACKET) {
		fprintf(stderr, "stasis swrk: fd %d is not a SOCK_SEQPACKET socket\n", sk);
		return 1;
	}
	/* the client created the socket pair (its fds are reached through its /proc) */
	s.peer = getsockopt(sk, SOL_SOCKET, SO_PEERCRED, &cr, &crlen) == 0 && cr.pid > 0
			 ? cr.pid
			 : getppid();
	s.buf = malloc(RPC_MAX_MSG + 1);
	if (!s.buf)
		return 1;
	if (log_init("/dev/null", LOG_ERR))
		log_set_level(LOG_ERR);
	for (;;) {
		ssize_t n = rpc_recv(sk, s.buf, -1);
		if (n == 0)
			break; /* the client is done */
		if (n == -EMSGSIZE) {
			char msg[96];
			snprintf(msg, sizeof(msg), "request larger than %d bytes", RPC_MAX_MSG);
			if (send_error(&s, RPC_TYPE__RPC_EMPTY, EMSGSIZE, msg))
				break;
			continue;
		}
		if (n < 0) {
			fprintf(stderr, "stasis swrk: receive: %s\n", strerror((int)-n));
			s.lost = true;
			break;
		}
		if (serve_one(&s, s.buf, (size_t)n))
			break;
	}
	free(s.buf);
	log_close();
	return s.lost ? 1 : 0;
}
