/* The options of a DUMP or RESTORE request, mapped to those of dump_run()/restore_run().
 *
 * Each RpcOptions field is either honoured (mapped to a stasis option), accepted because
 * stasis already behaves so (with the reason next to it), or refused with a line that
 * names it: an option a runtime asks for and stasis cannot give is never ignored. The
 * fds in a request are the client's (reached through /proc/PEER/fd/N), except those of
 * inherit_fd, which are the server's own (the client passed them when it started it). */
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/log.h"
#include "core/util.h"
#include "files/files.h"
#include "net/netns.h"
#include "ns/mnt.h"
#include "rpc/rpc.h"

#define REFUSE(cond, ...)                                 \
	do {                                              \
		if (cond) {                               \
			snprintf(err, errlen, __VA_ARGS__); \
			return -EOPNOTSUPP;               \
		}                                         \
	} while (0)

/* Options whose only meaning is a feature stasis does not have: set to true, refused. */
static int check_unsupported_flags(const RpcOptions *o, char *err, size_t errlen)
{
	/* TODO(tcp helper): map to --tcp-established / --tcp-close once they land. */
	REFUSE(o->has_tcp_established && o->tcp_established,
	       "tcp_established: established TCP connections are not supported yet");
	REFUSE(o->has_tcp_close && o->tcp_close, "tcp_close: not supported yet");
	REFUSE(o->has_tcp_skip_in_flight && o->tcp_skip_in_flight,
	       "tcp_skip_in_flight: not supported yet");
	/* TODO(tty helper): map to --shell-job once it lands. */
	REFUSE(o->has_shell_job && o->shell_job, "shell_job: --shell-job is not supported yet");
	/* TODO(unix helper): map to --external unix[...] once it lands. */
	REFUSE(o->has_ext_unix_sk && o->ext_unix_sk,
	       "ext_unix_sk: external unix sockets are not supported yet");
	REFUSE(o->n_unix_sk_ino, "unix_sk_ino: external unix sockets are not supported yet");
	REFUSE(o->has_file_locks && o->file_locks, "file_locks: file locks are not supported");
	REFUSE(o->has_track_mem && o->track_mem,
	       "track_mem: memory tracking (incremental dumps) is not supported yet");
	REFUSE(o->parent_img, "parent_img: incremental dumps are not supported yet");
	REFUSE(o->has_lazy_pages && o->lazy_pages, "lazy_pages: lazy restore is not supported yet");
	REFUSE(o->has_status_fd, "status_fd: only used by lazy pages, not supported yet");
	REFUSE(o->ps, "ps: the page server is not supported");
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

int rpc_opts_check(const RpcOptions *o, RpcType type, char *err, size_t errlen)
{
	bool dump = type == RPC_TYPE__RPC_DUMP;
	int ret;

	err[0] = '\0';
	if (type != RPC_TYPE__RPC_DUMP && type != RPC_TYPE__RPC_RESTORE) {
		snprintf(err, errlen, "request type %d has no dump or restore options", (int)type);
		return -EINVAL;
	}
	ret = check_unsupported_flags(o, err, errlen);
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
	if (o->has_manage_cgroups_mode) {
		int m = o->manage_cgroups_mode;
		/* stasis leaves the tasks in the cgroups of the server (where the runtime put
		 * it): the modes that only place tasks are that; those that restore cgroup
		 * properties are not */
		REFUSE(m == RPC_CG_MODE__CGM_PROPS || m == RPC_CG_MODE__CGM_FULL ||
			       m == RPC_CG_MODE__CGM_STRICT,
		       "manage_cgroups_mode %d: restoring cgroup properties is not supported", m);
		if (m < RPC_CG_MODE__CGM_IGNORE || m > RPC_CG_MODE__CGM_DEFAULT) {
			snprintf(err, errlen, "manage_cgroups_mode %d is unknown", m);
			return -EINVAL;
		}
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

/* A string owned by the job. */
static char *job_str(struct rpc_job *j, char *s)
{
	char **n;
	if (!s)
		return NULL;
	n = realloc(j->strs, (j->n_strs + 1) * sizeof(*n));
	if (!n) {
		free(s);
		return NULL;
	}
	j->strs = n;
	j->strs[j->n_strs++] = s;
	return s;
}

/* The path of the client's directory fd @fd, checked to be the same directory. */
static int peer_dir(pid_t peer, int fd, const char *what, char **out, int *dfd, char *err,
		    size_t errlen)
{
	char link[64], path[PATH_MAX];
	struct stat a, b;
	ssize_t n;

	snprintf(link, sizeof(link), "/proc/%d/fd/%d", (int)peer, fd);
	int d = open(link, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (d < 0) {
		snprintf(err, errlen, "%s %d of the client (%s): %s", what, fd, link,
			 strerror(errno));
		return -errno;
	}
	n = readlink(link, path, sizeof(path) - 1);
	if (n <= 0 || path[0] != '/' || fstat(d, &a) || (path[n] = '\0', stat(path, &b)) ||
	    a.st_dev != b.st_dev || a.st_ino != b.st_ino) {
		snprintf(err, errlen, "%s %d of the client is not reachable by a path here", what,
			 fd);
		close(d);
		return -ENOENT;
	}
	if (out)
		*out = strdup(path);
	if (dfd)
		*dfd = d;
	else
		close(d);
	return out && !*out ? -ENOMEM : 0;
}

static int map_log(struct rpc_job *j, const RpcOptions *o, char *err, size_t errlen)
{
	int lvl = o->has_log_level ? o->log_level : 2;
	j->log_level = lvl <= 1 ? LOG_ERR : lvl == 2 ? LOG_WARN : lvl == 3 ? LOG_INFO : LOG_DEBUG;
	j->log_to_stderr = o->has_log_to_stderr && o->log_to_stderr;
	if (!o->log_file)
		return 0;
	/* CRIU's convention: the log is in the work directory, which defaults to the images
	 * directory */
	if (j->work_dfd >= 0) {
		if (asprintf(&j->log_path, "/proc/self/fd/%d/%s", j->work_dfd, o->log_file) < 0)
			j->log_path = NULL;
	} else if (asprintf(&j->log_path, "%s/%s", j->images_dir, o->log_file) < 0) {
		j->log_path = NULL;
	}
	if (!j->log_path) {
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	return 0;
}

/* One external value in its dump or restore form (mnt[...] of src/ns/mnt.c, veth[...]
 * of src/net/netns.c): 0 or -errno after saying why. */
static int parse_external(const char *arg, bool dump)
{
	char *a = NULL, *b = NULL, *c = NULL;
	int ret = str_starts(arg, "veth[") ? net_parse_external(arg, dump, &a, &b, &c)
					   : mnt_parse_external(arg, dump, &a, &b);
	free(a);
	free(b);
	free(c);
	return ret;
}

static int add_external(struct rpc_job *j, bool dump, char *s, char *err, size_t errlen)
{
	if (!job_str(j, s)) {
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	log_reset_first_error();
	if (j->n_externals == ARRAY_SIZE(j->externals) || parse_external(s, dump)) {
		snprintf(err, errlen, "external '%s' is not valid here: %s", s, log_first_error());
		return -EINVAL;
	}
	j->externals[j->n_externals++] = s;
	return 0;
}

static int map_externals(struct rpc_job *j, const RpcOptions *o, bool dump, char *err,
			 size_t errlen)
{
	int ret = 0;
	char *s;

	/* ext_mnt: at dump MOUNTPOINT -> KEY, at restore KEY -> HOSTPATH: both are
	 * stasis's mnt[A]:B */
	for (size_t i = 0; i < o->n_ext_mnt && !ret; i++)
		ret = asprintf(&s, "mnt[%s]:%s", o->ext_mnt[i]->key, o->ext_mnt[i]->val) < 0
			      ? -ENOMEM
			      : add_external(j, dump, s, err, errlen);
	/* veths (restore): the inner name and the host end */
	for (size_t i = 0; i < o->n_veths && !ret; i++)
		ret = asprintf(&s, dump ? "veth[%s]" : "veth[%s]:%s", o->veths[i]->inner,
			       o->veths[i]->outer) < 0
			      ? -ENOMEM
			      : add_external(j, dump, s, err, errlen);
	for (size_t i = 0; i < o->n_external && !ret; i++) {
		s = strdup(o->external[i]);
		ret = s ? add_external(j, dump, s, err, errlen) : -ENOMEM;
	}
	if (ret == -ENOMEM && !err[0])
		snprintf(err, errlen, "out of memory");
	return ret;
}

static int map_restore(struct rpc_job *j, const RpcOptions *o, char *err, size_t errlen)
{
	struct restore_opts *r = &j->restore;
	char *s;

	r->dir = j->images_dir;
	/* rst_sibling or not, the server returns once the tree runs: the runtime waits for
	 * the server, then for the tree's root */
	r->detach = true;
	r->root_dir = o->root;
	for (size_t i = 0; i < o->n_join_ns; i++) {
		if (asprintf(&s, "%s:%s", o->join_ns[i]->kind, o->join_ns[i]->path) < 0 ||
		    !job_str(j, s))
			goto nomem;
		r->join_ns[r->n_join_ns++] = s;
	}
	for (size_t i = 0; i < o->n_inherit_fd; i++) {
		int fd = o->inherit_fd[i]->fd;
		if (fcntl(fd, F_GETFD) < 0) {
			snprintf(err, errlen, "inherit_fd %d (%s) is not open in the server", fd,
				 o->inherit_fd[i]->key);
			return -EBADF;
		}
		if (asprintf(&s, "fd[%d]:%s", fd, o->inherit_fd[i]->key) < 0 || !job_str(j, s))
			goto nomem;
		j->inherit[j->n_inherit++] = s;
	}
	r->inherit_fds = j->inherit;
	r->n_inherit_fds = j->n_inherit;
	r->externals = j->externals;
	r->n_externals = j->n_externals;
	return 0;
nomem:
	snprintf(err, errlen, "out of memory");
	return -ENOMEM;
}

int rpc_job_prepare(struct rpc_job *j, const RpcOptions *o, RpcType type, pid_t peer,
		    char *err, size_t errlen)
{
	bool dump = type == RPC_TYPE__RPC_DUMP;
	int ret;

	memset(j, 0, sizeof(*j));
	j->work_dfd = -1;
	j->peer = peer;
	if (o->images_dir_fd < 0 || (o->has_work_dir_fd && o->work_dir_fd < 0)) {
		snprintf(err, errlen, "images_dir_fd/work_dir_fd: not fds");
		return -EINVAL;
	}
	/* the directories and the log first: a refusal below is logged there too */
	ret = peer_dir(peer, o->images_dir_fd, "images_dir_fd", &j->images_dir, NULL, err,
		       errlen);
	if (!ret && o->has_work_dir_fd)
		ret = peer_dir(peer, o->work_dir_fd, "work_dir_fd", NULL, &j->work_dfd, err,
			       errlen);
	if (!ret && o->log_file && (!o->log_file[0] || strchr(o->log_file, '/') ||
				    !strcmp(o->log_file, ".") || !strcmp(o->log_file, ".."))) {
		snprintf(err, errlen, "log_file '%s': a file name in the work directory", o->log_file);
		ret = -EINVAL;
	}
	if (!ret)
		ret = map_log(j, o, err, errlen);
	if (!ret)
		ret = rpc_opts_check(o, type, err, errlen);
	if (ret)
		return ret;
	/* A configuration file would override the request (CRIU reads one): stasis reads
	 * none, so one that exists is refused rather than silently not applied. */
	if (o->config_file && access(o->config_file, F_OK) == 0) {
		snprintf(err, errlen, "config_file %s: stasis reads no configuration file; pass "
				      "the options in the request",
			 o->config_file);
		return -EOPNOTSUPP;
	}
	ret = map_externals(j, o, dump, err, errlen);
	if (ret)
		return ret;
	j->notify = o->has_notify_scripts && o->notify_scripts;
	/* Accepted as they are: freeze_cgroup (stasis freezes by ptrace, every task of the
	 * tree), manage_cgroups and cg_root (the tasks stay in the cgroups the runtime put
	 * the server in), evasive_devices (device files are reopened by path, stricter),
	 * orphan_pts_master (a tree with a pty master outside it is refused at dump),
	 * link_remap (unlinked files are carried), weak_sysctls, timeout, ghost_limit,
	 * cpu_cap, force_irmap, irmap_scan_paths, mntns_compat_mode, display_stats,
	 * unprivileged (stasis needs no flag for it), root at dump (paths are the task's). */
	if (dump) {
		j->dump.pid = o->pid;
		j->dump.dir = j->images_dir;
		j->dump.leave_running = o->has_leave_running && o->leave_running;
		j->dump.sync = true;
		/* a runtime keeps its own files in the images directory (runc: its
		 * descriptors.json), and the log may be there too */
		j->dump.keep_foreign = true;
		j->dump.externals = j->externals;
		j->dump.n_externals = j->n_externals;
		return 0;
	}
	return map_restore(j, o, err, errlen);
}

void rpc_job_free(struct rpc_job *j)
{
	for (size_t i = 0; i < j->n_strs; i++)
		free(j->strs[i]);
	free(j->strs);
	free(j->images_dir);
	free(j->log_path);
	if (j->work_dfd >= 0)
		close(j->work_dfd);
	memset(j, 0, sizeof(*j));
	j->work_dfd = -1;
}
