/* Files of a process tree: open file descriptions shared between processes.
 *
 * Dump: after every process's files_dump, descriptions shared between processes (fork,
 * SCM_RIGHTS) get one id tree-wide (kcmp KCMP_FILE), then every row's merge hook checks
 * or completes what spans processes.
 *
 * Restore: descriptions used by several processes, and every description made together
 * with its peers (pipes, socketpairs: the open_tree rows), are opened once by the
 * restoring stasis before it creates any process; every restore child inherits them and
 * dups what it needs (the offset stays shared). A description by path whose users are
 * all in one mount namespace the tree creates is opened later, in that namespace's
 * rebuilt tree (files_open_deferred); a socket whose users are all in one network
 * namespace the tree creates is made later, in it: by that namespace's creator
 * (files_deferred_netns), or, for a group of unix sockets, by stasis with sockets created
 * there (files_deferred_group), both through files_make_deferred. */
#include <fcntl.h>
#include <limits.h>
#include <linux/kcmp.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "core/log.h"
#include "core/util.h"
#include "files/fd_ops.h"

/* ------------------------------------------------------------------------------------ */
/* Dump                                                                                 */
/* ------------------------------------------------------------------------------------ */

/* count_uses: a socket's users are in several network namespaces, one of the tree's. */
#define DEFER_MIXED ((ssize_t)-3)

struct gdesc {
	pid_t pid;
	int fd;
	uint64_t dev, ino;
	uint32_t id;
};

/* The tree-wide id of description @d (fd @fd of process @p): an existing one's if kcmp
 * says they are the same, else a new one. */
static int tree_id(struct dump_ctx **procs, size_t p, const FileDesc *d, int fd,
		   struct gdesc **g, size_t *ng, uint32_t *next, uint32_t *id)
{
	for (size_t k = 0; k < *ng; k++) {
		const struct gdesc *o = &(*g)[k];
		if (o->dev != d->dev || o->ino != d->ino)
			continue;
		long r = syscall(SYS_kcmp, o->pid, procs[p]->ospid, KCMP_FILE, o->fd, fd);
		if (r < 0)
			return pr_perror("kcmp fd %d of pid %d with fd %d of pid %d", o->fd, o->pid,
					 fd, procs[p]->pid);
		if (r == 0) {
			*id = o->id;
			return 0;
		}
	}
	struct gdesc *ng2 = realloc(*g, (*ng + 1) * sizeof(**g));
	if (!ng2)
		return -ENOMEM;
	*g = ng2;
	*id = (*next)++;
	(*g)[(*ng)++] = (struct gdesc){ procs[p]->ospid, fd, d->dev, d->ino, *id };
	return 0;
}

/* Renumber the descriptions of every process with tree-wide ids. */
static int tree_ids(struct dump_ctx **procs, size_t n)
{
	struct gdesc *g = NULL;
	size_t ng = 0;
	uint32_t next = 1;
	int ret = 0;

	for (size_t p = 0; p < n && !ret; p++) {
		Files *f = procs[p]->files;
		_cleanup_free_ uint32_t *newid = calloc(f->n_files + 1, sizeof(*newid));
		if (!newid) {
			ret = -ENOMEM;
			break;
		}
		for (size_t i = 0; i < f->n_files && !ret; i++)
			ret = tree_id(procs, p, f->files[i], fd_desc_fd(f, i), &g, &ng, &next,
				      &newid[i]);
		for (size_t k = 0; k < f->n_fds && !ret; k++) {
			ssize_t i = fd_desc_index(f, f->fds[k]->file_id);
			f->fds[k]->file_id = newid[i];
		}
		for (size_t i = 0; i < f->n_files && !ret; i++)
			f->files[i]->id = newid[i];
	}
	free(g);
	return ret;
}

/* Description @d (of @procs[@p]) of another network namespace than its holders'
 * (FileDesc.netns): of the dumper's or one a task of the tree created (netns_pid), held
 * only by that task's descendants, which inherit it at restore. */
static int netns_merge_one(struct dump_ctx **procs, size_t n, size_t p, FileDesc *d,
			   uint64_t mine)
{
	const struct dump_ctx *maker = NULL;
	for (size_t q = 0; q < n && d->netns != mine; q++)
		if (procs[q]->tns && procs[q]->tns->net && procs[q]->tns->net->id == d->netns)
			maker = procs[q];
	const char *why = !maker && d->netns != mine ? "of a namespace no task of the tree made"
						       : NULL;
	for (size_t q = 0; q < n && !why && maker; q++) {
		const struct dump_ctx *a = procs[q];
		if (fd_desc_index(procs[q]->files, d->id) < 0)
			continue;
		while (a && a != maker)
			a = a->parent;
		if (!a)
			why = "held by a process its namespace's creator did not make";
	}
	if (why) {
		ssize_t i = fd_desc_index(procs[p]->files, d->id);
		int fd = i < 0 ? -1 : fd_desc_fd(procs[p]->files, (size_t)i);
		pr_err("fd %d of pid %d is a socket (%s) of another network namespace than its "
		       "task's, %s: not supported yet",
		       fd, procs[p]->pid, d->link, why);
		return -EOPNOTSUPP;
	}
	d->has_netns_pid = true;
	d->netns_pid = maker ? maker->pid : 0;
	return 0;
}

static int files_netns_merge(struct dump_ctx **procs, size_t n)
{
	uint64_t mine = 0;
	for (size_t p = 0; p < n; p++)
		for (size_t i = 0; i < procs[p]->files->n_files; i++) {
			FileDesc *d = procs[p]->files->files[i];
			if (!d->has_netns || d->has_netns_pid)
				continue;
			if (!mine && !(mine = self_ns_ino("net")))
				return pr_perror("stat /proc/self/ns/net");
			int ret = netns_merge_one(procs, n, p, d, mine);
			if (ret)
				return ret;
		}
	return 0;
}

int files_merge_tree(struct dump_ctx **procs, size_t n)
{
	/* one process: its own ids are the tree's */
	int ret = n < 2 ? 0 : tree_ids(procs, n);
	for (const struct fd_ops *const *r = fd_kinds; *r && !ret; r++)
		if ((*r)->merge)
			ret = (*r)->merge(procs, n);
	if (!ret)
		ret = files_netns_merge(procs, n);
	/* (no task of the tree waits for a lock: the freeze takes every task out of its
	 * syscall, and a lock request leaves the queue then; reading /proc/locks to make
	 * sure cost 12-20 ms a dump: the kernel takes a percpu rwsem for writing there) */
	return ret ? ret : locks_merge(procs, n);
}

/* ------------------------------------------------------------------------------------ */
/* Restore, in stasis                                                                   */
/* ------------------------------------------------------------------------------------ */

int fd_gfd_place(int fd, int base, int *slot)
{
	int r = fcntl(fd, F_DUPFD_CLOEXEC, base);
	int e = errno;
	close(fd);
	if (r < 0)
		return pr_errno(-e, "restore: move a shared file above fd %d", base);
	*slot = r;
	return 0;
}

static const FileDesc *find_desc(Files *const *f, size_t n, uint32_t id)
{
	for (size_t p = 0; p < n; p++)
		for (size_t i = 0; i < f[p]->n_files; i++)
			if (f[p]->files[i]->id == id)
				return f[p]->files[i];
	return NULL;
}

static bool by_path(const FileDesc *d)
{
	const struct fd_ops *ops = fd_ops_of(d);
	return ops && (ops->flags & FD_OPS_BY_PATH);
}

/* A socket made alone in its network namespace (not with peers: open_tree). */
static bool netns_made(const FileDesc *d)
{
	const struct fd_ops *ops = fd_ops_of(d);
	return ops && (ops->flags & FD_OPS_NETNS) && ops->open && !ops->open_tree;
}

/* Opened in the mount tree of the task (its path is relative to the task's root), or
 * made in its network namespace. */
static bool deferrable(const FileDesc *d)
{
	return (by_path(d) && d->has_in_task_root && d->in_task_root) || netns_made(d);
}

/* A description of the tree opened once, in this process's view or (by path) in the
 * mount tree of @rootfd; status flags set. */
static int open_desc_once(const FileDesc *d, int rootfd, const struct blob_reader *blobs)
{
	const struct fd_ops *ops = fd_ops_of(d);
	if (!ops || !ops->open) {
		pr_err("restore: file %u cannot be opened by stasis", d->id);
		return -EINVAL;
	}
	int fd = ops->open(d, -1, rootfd, blobs);
	if (fd < 0)
		return fd;
	if (!(d->flags & O_PATH) && fcntl(fd, F_SETFL, (int)(d->flags & SETFL_MASK)) < 0) {
		int e = pr_perror("restore: status flags of %s", fd_desc_name(d));
		close(fd);
		return e;
	}
	return fd;
}

bool files_deferred_netns(Files *const *f, size_t n, uint32_t id)
{
	const FileDesc *d = find_desc(f, n, id);
	return d && netns_made(d);
}

bool files_deferred_group(Files *const *f, size_t n, uint32_t id)
{
	const FileDesc *d = find_desc(f, n, id);
	const struct fd_ops *ops = d ? fd_ops_of(d) : NULL;
	return ops && (ops->flags & FD_OPS_NETNS) && ops->open_tree;
}

int files_make_deferred(Files *const *f, size_t n, uint32_t id, const struct fd_ns *ns,
			int *gfd, int base, const struct blob_reader *blobs)
{
	const FileDesc *d = find_desc(f, n, id);
	const struct fd_ops *ops = d ? fd_ops_of(d) : NULL;
	blobs = blob_reader_or_none(blobs);
	if (!ops || !(ops->flags & FD_OPS_NETNS)) {
		pr_err("restore: file %u cannot be made in a task's network namespace", id);
		return -EINVAL;
	}
	if (gfd[id] >= 0)
		return 0; /* made with its peers */
	if (ops->open_tree) {
		struct fd_tree t = { .f = f, .n = n, .base = base, .gfd = gfd, .blobs = blobs,
				     .netns = ns->net, .pidns = ns->pid, .userns = ns->user,
				     .agent = ns->agent, .agent_pid = ns->agent_pid, .rootfd = -1 };
		return ops->open_tree(&t, d);
	}
	int fd = open_desc_once(d, -1, blobs);
	return fd < 0 ? fd : fd_gfd_place(fd, base, &gfd[id]);
}

bool files_deferred_root_group(Files *const *f, size_t n, uint32_t id)
{
	const FileDesc *d = find_desc(f, n, id);
	const struct fd_ops *ops = d ? fd_ops_of(d) : NULL;
	return ops && (ops->flags & FD_OPS_ROOT_GROUP) && ops->open_tree;
}

int files_make_in_root(Files *const *f, size_t n, uint32_t id, int rootfd, int *gfd, int base,
		       const struct blob_reader *blobs)
{
	const FileDesc *d = find_desc(f, n, id);
	const struct fd_ops *ops = d ? fd_ops_of(d) : NULL;
	if (!ops || !(ops->flags & FD_OPS_ROOT_GROUP) || !ops->open_tree || rootfd < 0) {
		pr_err("restore: file %u cannot be made in a task's mount tree", id);
		return -EINVAL;
	}
	if (gfd[id] >= 0)
		return 0; /* made with its group */
	struct fd_tree t = { .f = f, .n = n, .base = base, .gfd = gfd,
			     .blobs = blob_reader_or_none(blobs), .netns = -1, .pidns = -1,
			     .userns = -1, .agent = -1, .rootfd = rootfd };
	return ops->open_tree(&t, d);
}

int files_open_deferred(Files *const *f, size_t n, uint32_t id, int rootfd,
			const struct blob_reader *blobs)
{
	const FileDesc *d = find_desc(f, n, id);
	if (!d || !deferrable(d)) {
		pr_err("restore: file %u cannot be opened in a task's namespace", id);
		return -EINVAL;
	}
	return open_desc_once(d, rootfd, blob_reader_or_none(blobs));
}

/* The process of @o making the sockets of the network namespace task @pid created
 * (FileDesc.netns_pid; it creates it: its own owner), or -1 (0, the dumper's: stasis's;
 * the check of the images makes sure there is one). */
static ssize_t netns_maker(const struct files_owners *o, size_t n, pid_t pid)
{
	for (size_t p = 0; pid && o->pids && o->net && p < n; p++)
		if (o->pids[p] == pid && o->net[p] == (ssize_t)p)
			return (ssize_t)p;
	return -1;
}

/* The creator of the mount namespace task @pid is in (FileDesc.mnt_pid), or -1. */
static ssize_t mnt_maker(const struct files_owners *o, size_t n, pid_t pid)
{
	for (size_t p = 0; o->pids && o->mnt && p < n; p++)
		if (o->pids[p] == pid)
			return o->mnt[p];
	return -1;
}

/* How many processes use each description (0, 1, 2 for several; 2 too when stasis must
 * open it anyway), and the one mount namespace owner all its users are in (defer; for a
 * socket, the network namespace owner; DEFER_MIXED: users in several network namespaces,
 * one of them the tree's). */
static void count_uses(Files *const *f, const struct files_owners *o, size_t n,
		       uint8_t *uses, ssize_t *defer)
{
	for (size_t p = 0; p < n; p++)
		for (size_t i = 0; i < f[p]->n_files; i++) {
			const FileDesc *d = f[p]->files[i];
			if (fd_ops_of(d)->open_tree)
				continue; /* (made with its peers: the row tells) */
			/* the owner of the one mount (network) namespace of the tree all its
			 * users are in, or -1 */
			const ssize_t *owner = netns_made(d) ? o->net : o->mnt;
			ssize_t own = owner ? owner[p] : -1, *df = &defer[d->id];
			/* (a socket of another network namespace: made there, by its creator
			 * or by stasis, never by the holder) */
			if (netns_made(d) && d->has_netns_pid) {
				own = netns_maker(o, n, d->netns_pid);
				uses[d->id] = 2;
			}
			/* (a file on a mount of an ancestor's namespace: opened in its tree) */
			if (by_path(d) && d->has_mnt_pid) {
				own = mnt_maker(o, n, d->mnt_pid);
				uses[d->id] = 2;
			}
			if (*df != -2 && *df != own && netns_made(d) && (*df >= 0 || own >= 0))
				*df = DEFER_MIXED;
			else if (*df != DEFER_MIXED)
				*df = *df == -2 || *df == own ? own : -1;
			if (uses[d->id] < 2)
				uses[d->id]++;
			/* a task in a user namespace of its own may no longer open what it
			 * opened before entering it: stasis opens its files (the late rows are
			 * rebuilt from the task's own fds; sockets are made by the task in its
			 * network namespace) */
			if (o->outside && o->outside[p] &&
			    !(fd_ops_of(d)->flags & (FD_OPS_LATE | FD_OPS_NETNS)))
				uses[d->id] = 2;
			/* a path in the dumper's view, of a task whose mount tree is another:
			 * stasis opens it in its own view */
			if (own >= 0 && by_path(d) && d->has_in_task_root && !d->in_task_root)
				uses[d->id] = 2;
		}
}

/* Open description @id for the tree if it must be (t->gfd[id]), or leave it to its
 * processes or to its mount namespace (defer[id] >= 0). */
static int open_shared_one(struct fd_tree *t, uint32_t id, const uint8_t *uses,
			   ssize_t *defer)
{
	const FileDesc *d = find_desc(t->f, t->n, id);
	const struct fd_ops *ops = d ? fd_ops_of(d) : NULL;
	if (!d || t->gfd[id] >= 0)
		return 0;
	if (ops->open_tree) /* (unless left with its peers to their namespace's creator) */
		return defer[id] >= 0 ? 0 : ops->open_tree(t, d);
	if (defer[id] == DEFER_MIXED) {
		pr_err("files image: %s %u is used by processes of several network namespaces",
		       ops->name, id);
		return -EINVAL;
	}
	if (!deferrable(d))
		defer[id] = -1; /* pipes, sockets, anonymous files: opened here */
	if (ops->flags & FD_OPS_INHERITED)
		return 0;
	if (uses[id] < 2)
		return 0; /* used by one process: it opens it itself */
	if (defer[id] >= 0)
		return 0; /* opened in that namespace's tree once it is rebuilt, or by the
			   * creator of its network namespace */
	if ((ops->flags & FD_OPS_LATE) && !ops->open) {
		pr_err("files image: %s %u is used by several processes: not supported",
		       ops->name, id);
		return -EINVAL;
	}
	int fd = open_desc_once(d, -1, t->blobs);
	if (fd < 0)
		return fd;
	return fd_gfd_place(fd, t->base, &t->gfd[id]);
}

int files_open_shared(Files *const *f, const struct files_owners *o, size_t n, int base,
		      const struct blob_reader *blobs, int **gfd_out, uint32_t *n_out,
		      ssize_t **defer_out)
{
	uint32_t maxid = 0;
	bool own_view = false; /* a task whose files stasis opens, or whose mount tree or
				* network namespace differs */
	*gfd_out = NULL;
	*n_out = 0;
	*defer_out = NULL;
	blobs = blob_reader_or_none(blobs);
	for (size_t p = 0; p < n; p++) {
		own_view |= (o->outside && o->outside[p]) || (o->mnt && o->mnt[p] >= 0);
		for (size_t i = 0; i < f[p]->n_files; i++) /* (made in another namespace) */
			own_view |= f[p]->files[i]->has_netns_pid || f[p]->files[i]->has_mnt_pid;
	}
	if (n < 2 && !own_view)
		return 0;
	for (size_t p = 0; p < n; p++) {
		int ret = fd_validate_files(f[p], INT_MAX, blobs);
		if (ret)
			return ret;
		for (size_t i = 0; i < f[p]->n_files; i++)
			maxid = MAX(maxid, f[p]->files[i]->id);
	}
	if (maxid > 1u << 20) {
		pr_err("files image: file id %u is out of range", maxid);
		return -EINVAL;
	}
	int *gfd = malloc((maxid + 1) * sizeof(int));
	uint8_t *uses = calloc(maxid + 1, 1);
	ssize_t *defer = malloc((maxid + 1) * sizeof(*defer));
	if (!gfd || !uses || !defer) {
		free(gfd);
		free(uses);
		free(defer);
		return -ENOMEM;
	}
	for (uint32_t i = 0; i <= maxid; i++) {
		gfd[i] = -1;
		defer[i] = -2; /* no user seen yet */
	}
	count_uses(f, o, n, uses, defer);
	for (uint32_t i = 0; i <= maxid; i++) /* (used by one process: it opens it itself) */
		if (uses[i] < 2 || (defer[i] < 0 && defer[i] != DEFER_MIXED))
			defer[i] = -1;
	struct fd_tree t = { .f = f, .n = n, .base = base, .gfd = gfd, .blobs = blobs,
			     .net = o->net, .defer = defer, .netns = -1,
			     .pidns = -1, .userns = -1, .agent = -1, .mnt = o->mnt, .rootfd = -1,
			     .pids = o->pids };
	int ret = 0;
	for (uint32_t id = 1; id <= maxid && !ret; id++)
		ret = open_shared_one(&t, id, uses, defer);
	free(uses);
	for (size_t p = 0; p < n; p++)
		fd_opened(f[p]);
	if (ret) {
		for (uint32_t i = 0; i <= maxid; i++)
			if (gfd[i] >= 0)
				close(gfd[i]);
		free(gfd);
		free(defer);
		return ret;
	}
	*gfd_out = gfd;
	*n_out = maxid + 1;
	*defer_out = defer;
	return 0;
}
