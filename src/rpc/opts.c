/* The options of a DUMP, PRE_DUMP or RESTORE request, mapped to those of dump_run()/restore_run().
 *
 * Each RpcOptions field is either honoured (mapped to a stasis option), accepted because
 * stasis already behaves so (with the reason next to it), or refused with a line that
 * names it: an option a runtime asks for and stasis cannot give is never ignored. The
 * refusals themselves are rpc_opts_check() in proto.c (pure, fuzzed). The
 * fds in a request are the client's (reached through /proc/PEER/fd/N), except those of
 * inherit_fd, which are the server's own (the client passed them when it started it). */
#include <errno.h>
#include <fcntl.h>
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
#include "ns/cgroup.h"
#include "ns/mnt.h"
#include "rpc/rpc.h"

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
	if (str_starts(arg, "unix["))
		return dump ? 0 : -EINVAL; /* checked by the unix socket dump */
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
	/* unix sockets whose peer is outside the tree (dump: every one, or these inodes;
	 * the restore connects them to the peer's address again by itself) */
	if (dump && o->has_ext_unix_sk && o->ext_unix_sk && !ret)
		ret = (s = strdup("unix[*]")) ? add_external(j, dump, s, err, errlen) : -ENOMEM;
	for (size_t i = 0; dump && i < o->n_unix_sk_ino && !ret; i++)
		ret = asprintf(&s, "unix[%u]", o->unix_sk_ino[i]->inode) < 0
			      ? -ENOMEM
			      : add_external(j, dump, s, err, errlen);
	if (ret == -ENOMEM && !err[0])
		snprintf(err, errlen, "out of memory");
	return ret;
}

/* CRIU's cgroup modes (rpc.proto's numbering) as stasis's (src/ns/cgroup.h); default
 * soft, as CRIU's. cg_root (runc sends it on cgroup v1 with the cgroups it put the
 * server in, crun always with the container's) moves the tree's cgroups there. */
static int map_cg_mode(const RpcOptions *o)
{
	switch (o->has_manage_cgroups_mode ? o->manage_cgroups_mode : RPC_CG_MODE__CGM_DEFAULT) {
	case RPC_CG_MODE__CGM_IGNORE: return CG_MODE_IGNORE;
	case RPC_CG_MODE__CGM_NONE: return CG_MODE_NONE;
	case RPC_CG_MODE__CGM_PROPS: return CG_MODE_PROPS;
	case RPC_CG_MODE__CGM_FULL: return CG_MODE_FULL;
	case RPC_CG_MODE__CGM_STRICT: return CG_MODE_STRICT;
	default: return CG_MODE_SOFT;
	}
}

/* cg_root entries as --cgroup-root values ("CTRL:PATH", or PATH for every hierarchy). */
static int map_cg_roots(struct rpc_job *j, const RpcOptions *o, char *err, size_t errlen)
{
	for (size_t i = 0; i < o->n_cg_root; i++) {
		const RpcCgroupRoot *r = o->cg_root[i];
		char *s, ctrl[PROC_MAX_CGROUP_CTRL + 1];
		const char *path;
		bool any = !r->ctrl || !r->ctrl[0];
		if (asprintf(&s, "%s%s%s", any ? "" : r->ctrl, any ? "" : ":", r->path) < 0 ||
		    !job_str(j, s)) {
			snprintf(err, errlen, "out of memory");
			return -ENOMEM;
		}
		if (cgroup_root_parse(s, ctrl, sizeof(ctrl), &path)) {
			snprintf(err, errlen, "cg_root '%s': not [CONTROLLERS:]/PATH", s);
			return -EINVAL;
		}
		j->cg_roots[j->n_cg_roots++] = s;
	}
	j->restore.cg_roots = j->cg_roots;
	j->restore.n_cg_roots = j->n_cg_roots;
	return 0;
}

static int map_restore(struct rpc_job *j, const RpcOptions *o, char *err, size_t errlen)
{
	struct restore_opts *r = &j->restore;
	char *s;

	r->manage_cgroups = map_cg_mode(o);
	int ret = map_cg_roots(j, o, err, errlen);
	if (ret)
		return ret;
	r->shell_job = o->has_shell_job && o->shell_job;
	r->tcp_close = o->has_tcp_close && o->tcp_close;
	r->network_lock_none = o->has_network_lock && o->network_lock == 3; /* skip */
	r->lazy_pages = o->has_lazy_pages && o->lazy_pages;

	r->dir = j->images_dir;
	/* rst_sibling or not, the server returns once the tree runs: the runtime waits for
	 * the server, then for the tree's root */
	r->detach = true;
	r->root_dir = o->root;
	/* CRIU's root: the container's root whatever it was at dump (runc gives its rootfs,
	 * a new directory when podman restores an exported checkpoint as a new container) */
	r->root_over_bind = o->root != NULL;
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
	bool pre = rpc_type_is_pre_dump(type);
	bool dump = type == RPC_TYPE__RPC_DUMP || pre;
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
	/* a pre-dump stores memory only: the externals matter to the final dump */
	ret = pre ? 0 : map_externals(j, o, dump, err, errlen);
	if (ret)
		return ret;
	j->notify = o->has_notify_scripts && o->notify_scripts;
	/* Accepted as they are: freeze_cgroup (stasis freezes by ptrace, every task of the
	 * tree), evasive_devices (device files are reopened by path, stricter),
	 * orphan_pts_master (a tree with a pty master outside it is refused at dump),
	 * link_remap (unlinked files are carried), weak_sysctls, timeout, ghost_limit,
	 * cpu_cap, force_irmap, irmap_scan_paths, mntns_compat_mode, display_stats,
	 * unprivileged (stasis needs no flag for it), root at dump (paths are the task's). */
	if (dump) {
		j->dump.pid = o->pid;
		j->dump.dir = j->images_dir;
		/* a pre-dump always lets the tree run on (runc sends leave_running false) */
		j->dump.pre_dump = pre;
		j->dump.leave_running = !pre && o->has_leave_running && o->leave_running;
		/* the previous pass, relative to the images directory (as CRIU resolves it)
		 * or absolute: stasis's --prev-images-dir. track_mem needs nothing more: a
		 * pre-dump always arms write tracking, and a dump's tracking ends with it (a
		 * later pass naming a dump as its parent finds no tracker and stores every
		 * page, which is exact) */
		j->dump.prev_dir = o->parent_img;
		if (o->ps) { /* checked: an address and a port */
			snprintf(j->ps_port, sizeof(j->ps_port), "%d", o->ps->port);
			j->dump.ps_addr = o->ps->address;
			j->dump.ps_port = j->ps_port;
		}
		j->dump.shell_job = o->has_shell_job && o->shell_job;
		j->dump.network_lock_none = o->has_network_lock && o->network_lock == 3; /* skip */
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
