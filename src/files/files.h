/* Files (src/files/): the fd table of every process, open file descriptions shared
 * across the tree; each kind of file (regular, unlinked, memfd, pipe, eventfd, timerfd,
 * signalfd, epoll, external; unix sockets in src/net/sk_unix.c) is one row of hooks of
 * the module's own table (struct fd_ops, files/fd_ops.h: internal to the module). Its
 * row in the resource registry is files_resource (src/cr/resource.h); these are what the
 * restore driver calls while it plans the tree. */
#ifndef STASIS_FILES_FILES_H
#define STASIS_FILES_FILES_H

#include "cr/ctx.h"

int files_dump(struct dump_ctx *c) __must_check; /* fds, pipes */
int files_restore_child(struct rst_ctx *c) __must_check;
/* Remote, every task created and its credentials set: the owners of its descriptions. */
int files_restore_owners(struct rst_ctx *c) __must_check;
/* src/files/tty.c: in the restore child of session leader @sid (dumper's pid), right
 * after setsid and before it creates its children: take its controlling terminal from
 * the pty pair stasis opened for the tree (@gfd). 1 if taken, 0 if not here, -errno. */
int files_ctty_early(const Files *f, const int *gfd, uint32_t n_gfd, pid_t sid) __must_check;
/* src/files/tty.c: remote, in a session leader, every process group existing: the
 * foreground group of its controlling terminal. */
int files_tty_fg(struct rst_ctx *c) __must_check;
/* Highest fd number the task's own fd table needs (-1 if none). */
int files_max_fd(const Files *f);

/* An --inherit-fd value "fd[N]:KEY": stasis's own fd N takes the place of the external
 * file named KEY (e.g. "pipe:[1234]", a pipe to a process outside the tree) at restore.
 * 0 with *fd and *key (pointing into @arg) set, or -EINVAL after saying why. */
int files_parse_inherit(const char *arg, int *fd, const char **key) __must_check;
/* Dump, after every process's files_dump: give open file descriptions shared between
 * processes one id tree-wide (kcmp), and turn pipes whose ends live in different
 * processes of the tree into FILE_PIPE (with their data). */
int files_merge_tree(struct dump_ctx **procs, size_t n) __must_check;
/* Restore of a tree: who the processes are (indexes in the Files array). */
struct files_owners {
	const bool *outside; /* it lives in a user namespace of the tree and may lack the
			      * rights to open its files itself (NULL: none) */
	const ssize_t *mnt;  /* the process creating its mount namespace, or -1 (NULL) */
	const ssize_t *net;  /* ... its network namespace, or -1 (NULL) */
	const pid_t *pids;   /* its pid (NULL: not known) */
};
/* Restore of a tree, in the restoring stasis before any process exists: open every pipe
 * and every description used by several processes once, at fds >= @base (contents
 * carried in blobs.img read through @blobs); *gfd_out maps
 * file id -> fd (-1). Also every description of a process with @o->outside[p] set.
 * Otherwise nothing is opened for a single process. */
int files_open_shared(Files *const *f, const struct files_owners *o, size_t n, int base,
		      const struct blob_reader *blobs, int **gfd_out, uint32_t *n_out,
		      ssize_t **defer_out) __must_check;
/* ... except, by path, a description whose users are all in one mount namespace the tree
 * creates: *defer_out[id] is then the index of that namespace's creator (-1 otherwise),
 * and the description is opened later, in that namespace's rebuilt tree, by
 * files_open_deferred(@rootfd: /proc/OWNER/root of the restored owner); and a socket
 * whose users are all in one network namespace the tree creates (files_deferred_netns):
 * deferred to that namespace's creator, which makes it itself, in its namespace, with
 * files_open_deferred(@rootfd -1), before it creates the other users. */
int files_open_deferred(Files *const *f, size_t n, uint32_t id, int rootfd,
			const struct blob_reader *blobs) __must_check;
bool files_deferred_netns(Files *const *f, size_t n, uint32_t id);
/* ... or a group of sockets made together spanning processes of that namespace (unix
 * sockets): made by stasis, in that namespace, when its creator asks for its files
 * (files_make_deferred with @netns: the namespace), and handed to it. */
bool files_deferred_group(Files *const *f, size_t n, uint32_t id);
/* ... or a group made together in a mount tree of the tree (pty pairs of a devpts
 * instance of the tree held by several processes: FD_OPS_ROOT_GROUP): made by stasis in
 * the rebuilt tree @rootfd of that namespace when its creator asks for its files, every
 * member at @gfd[its id] (>= @base). 0 or a logged -errno. */
bool files_deferred_root_group(Files *const *f, size_t n, uint32_t id);
int files_make_in_root(Files *const *f, size_t n, uint32_t id, int rootfd, int *gfd, int base,
		       const struct blob_reader *blobs) __must_check;
/* The namespaces a deferred file is made for (-1: the caller's). */
struct fd_ns {
	int net, pid, user;
	int agent;       /* the creator's agent for peer credentials (-1: none) */
	pid_t agent_pid; /* the creator's pid in its pid namespace */
};
#define FD_NS_OURS ((struct fd_ns){ -1, -1, -1, -1, 0 })
/* Make description @id (and the peers made with it, in network namespace @ns->net, for
 * holders in the pid and user namespaces @ns->pid, @ns->user; -1: the caller's) at
 * @gfd[id] (>= @base): in the creator for files_deferred_netns, in stasis for
 * files_deferred_group. 0 or a logged -errno. */
int files_make_deferred(Files *const *f, size_t n, uint32_t id, const struct fd_ns *ns,
			int *gfd, int base,
			const struct blob_reader *blobs) __must_check;

#endif
