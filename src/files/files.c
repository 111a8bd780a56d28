/* Files: the task's fd table and its open file descriptions, the generic part. Every
 * kind of description is a row of hooks (struct fd_ops, files/fd_ops.h; the table in
 * kinds.c, one file per kind); this file loops over the rows and names none. Descriptions
 * shared between processes of a tree: tree.c.
 *
 * Dump reads everything from outside the (frozen) task: /proc/PID/fd/N gives the link,
 * /proc/PID/fdinfo/N the position and flags, and pidfd_getfd() a duplicate of the fd we
 * fstat; the rows classify it and dump their part. Fds that share one open file
 * description (dup, fork) are found with kcmp(KCMP_FILE) and share one FileDesc.
 *
 * Restore runs in the child, before its memory is replaced, in three steps:
 *   1. open every description once and move it to a "staged" fd above every target fd
 *      (F_DUPFD_CLOEXEC from max_fd + 1: a staged fd never sits on a target number);
 *   2. place each Fd with dup3() onto its exact number (atomically replacing whatever the
 *      child inherited there), or keep the inherited fd for an external file; then the
 *      late rows (epolls, whose targets are found by fd number);
 *   3. close the staged fds and every fd below svc_lo that is not in the image.
 * Nothing at or above svc_lo that existed before is ever closed or replaced. */
#include <dirent.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/kcmp.h>
#include <linux/sockios.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/ioctl.h>
#include <sys/statfs.h>
#include <sys/sysmacros.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "core/log.h"
#include "core/util.h"
#include "cr/resource.h"
#include "files/fd_ops.h"
#include "sys/kerndat.h"
#include "sys/syscalls.h"

/* ------------------------------------------------------------------------------------ */
/* Helpers for the rows                                                                 */
/* ------------------------------------------------------------------------------------ */

const struct fd_ops *fd_ops_of(const FileDesc *d)
{
	for (const struct fd_ops *const *r = fd_kinds; *r; r++)
		if (!((*r)->flags & FD_OPS_REFUSED) && (*r)->kind == d->kind &&
		    (!(*r)->owns || (*r)->owns(d)))
			return *r;
	return NULL;
}

int fd_unsupported(const struct dump_ctx *c, const struct fd_ent *e, const char *what)
{
	pr_err("fd %d of pid %d is %s (%s): not supported yet", e->fd, c->pid, what, e->link);
	return -EOPNOTSUPP;
}

int fd_dup(const struct dump_ctx *c, const struct fd_ent *e)
{
	int dup = sys_pidfd_getfd(c->pidfd, e->fd, 0);
	if (dup < 0)
		return pr_perror("pidfd_getfd of fd %d of pid %d (%s)", e->fd, c->pid, e->link);
	return dup;
}

uint64_t fd_dumper_mntns(void)
{
	static uint64_t mine;
	if (!mine)
		mine = self_ns_ino("mnt");
	return mine;
}

bool fd_own_mntns(const struct dump_ctx *c)
{
	return c->core && c->core->ns && c->core->ns->mnt && c->core->ns->mnt != fd_dumper_mntns();
}

bool fd_in_task_mount(const struct dump_ctx *c, const struct fd_ent *e)
{
	uint64_t mnt;
	return fd_own_mntns(c) && !fd_mount_id(c, e->fd, &mnt) &&
	       (path_mount_views(c->procfd, e->link, mnt) & PATH_VIEW_TASK);
}

int fd_mount_id(const struct dump_ctx *c, int fd, uint64_t *mnt)
{
	char rel[32];
	struct statx sx;
	snprintf(rel, sizeof(rel), "fd/%d", fd);
	if (statx(c->procfd, rel, 0, STATX_MNT_ID, &sx) || !(sx.stx_mask & STATX_MNT_ID))
		return -1;
	*mnt = sx.stx_mnt_id;
	return 0;
}

int fd_read_fdinfo(const struct dump_ctx *c, int fd, size_t max, char **out)
{
	char name[32];
	snprintf(name, sizeof(name), "fdinfo/%d", fd);
	*out = read_file_at(c->procfd, name, max, NULL);
	if (!*out)
		return pr_perror("cannot read /proc/%d/fdinfo/%d", c->pid, fd);
	return 0;
}

int fd_bad_data(const FileDesc *d)
{
	pr_err("files image: file %u (%s) has bad or missing data", d->id,
	       d->link ?: "anon inode");
	return -EINVAL;
}

ssize_t fd_desc_index(const Files *f, uint32_t id)
{
	for (size_t i = 0; i < f->n_files; i++)
		if (f->files[i]->id == id)
			return (ssize_t)i;
	return -1;
}

int fd_desc_fd(const Files *f, size_t i)
{
	for (size_t k = 0; k < f->n_fds; k++)
		if (f->fds[k]->file_id == f->files[i]->id)
			return f->fds[k]->fd;
	return -1;
}

const char *fd_desc_name(const FileDesc *d)
{
	return d->path ? d->path : d->link ? d->link : "?";
}

int fd_stage(int fd, int lo, int target, const char *name)
{
	int r = fcntl(fd, F_DUPFD_CLOEXEC, lo);
	int err = errno;
	close(fd);
	if (r < 0)
		return pr_errno(-err, "restore fd %d (%s): cannot move it above fd %d", target,
				name, lo);
	return r;
}

void fd_opened(const Files *f)
{
	for (const struct fd_ops *const *r = fd_kinds; *r; r++)
		if ((*r)->opened)
			(*r)->opened(f);
}

/* ------------------------------------------------------------------------------------ */
/* Dump                                                                                 */
/* ------------------------------------------------------------------------------------ */

static int cmp_int(const void *a, const void *b)
{
	int x = *(const int *)a, y = *(const int *)b;
	return (x > y) - (x < y);
}

/* The fd numbers of the task, sorted. */
static int list_fds(const struct dump_ctx *c, int **out, size_t *nr)
{
	int dfd = openat(c->procfd, "fd", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0)
		return pr_perror("cannot open /proc/%d/fd", c->pid);
	DIR *d = fdopendir(dfd);
	if (!d) {
		int ret = pr_perror("cannot read /proc/%d/fd", c->pid);
		close(dfd);
		return ret;
	}
	_cleanup_free_ int *fds = NULL;
	size_t n = 0, cap = 0;
	int ret = 0;
	for (;;) {
		errno = 0;
		struct dirent *de = readdir(d);
		if (!de) {
			if (errno)
				ret = pr_perror("cannot read /proc/%d/fd", c->pid);
			break;
		}
		if (de->d_name[0] == '.')
			continue;
		long long v;
		if (parse_int(de->d_name, 0, INT_MAX, &v)) {
			pr_err("unexpected entry /proc/%d/fd/%s", c->pid, de->d_name);
			ret = -EINVAL;
			break;
		}
		if (n == cap) {
			size_t ncap = cap ? cap * 2 : 32;
			int *p = realloc(fds, ncap * sizeof(*p));
			if (!p) {
				ret = pr_errno(-ENOMEM, "fds of pid %d", c->pid);
				break;
			}
			fds = p;
			cap = ncap;
		}
		fds[n++] = (int)v;
	}
	closedir(d);
	if (ret)
		return ret;
	if (n)
		qsort(fds, n, sizeof(*fds), cmp_int);
	*out = steal_ptr(&fds);
	*nr = n;
	return 0;
}

/* The row of the fd: the first of the table to claim it. */
static int classify(const struct dump_ctx *c, struct fd_ent *e)
{
	for (const struct fd_ops *const *r = fd_kinds; *r; r++) {
		int ret = (*r)->classify ? (*r)->classify(c, e) : 0;
		if (ret < 0)
			return ret;
		if (ret > 0) {
			e->ops = *r;
			return 0;
		}
	}
	return fd_unsupported(c, e, "a file of unknown type");
}

struct key_check {
	const struct dump_ctx *c;
	const struct fd_ent *e;
};

/* One type-specific fdinfo key: its row's, or state stasis does not carry. */
static int check_key(const char *key, size_t klen, void *arg)
{
	const struct key_check *k = arg;
	const char *const *known = k->e->ops->fdinfo_keys;
	char what[96];

	for (size_t i = 0; known && known[i]; i++)
		if (strlen(known[i]) == klen && !memcmp(known[i], key, klen))
			return 0;
	if (klen == 4 && !memcmp(key, "lock", 4))
		return 0; /* every fd's: locks.c records them or refuses them with a reason */
	snprintf(what, sizeof(what), "a file whose fdinfo shows \"%.*s\", which stasis "
		 "does not carry", (int)(klen > 32 ? 32 : klen), key);
	return fd_unsupported(k->c, k->e, what);
}

/* Refuse instead of guessing: every line of the fdinfo is the generic four, or one the
 * fd's row reads (its fdinfo_keys). A new kernel's state, a lock, an unknown field: the
 * dump stops naming it. */
static int check_fdinfo_keys(const struct dump_ctx *c, const struct fd_ent *e, const char *info)
{
	struct key_check k = { c, e };
	int ret = proc_fdinfo_each_key(info, check_key, &k);
	if (ret == -EINVAL)
		pr_err("cannot parse /proc/%d/fdinfo/%d (%s)", c->pid, e->fd, e->link);
	return ret;
}

/* Link, fdinfo and fstat of one fd. */
static int collect_ent(const struct dump_ctx *c, struct fd_ent *e)
{
	char name[32], buf[PATH_MAX + 1];

	snprintf(name, sizeof(name), "fd/%d", e->fd);
	ssize_t n = readlinkat(c->procfd, name, buf, sizeof(buf));
	if (n < 0)
		return pr_perror("cannot read link of fd %d of pid %d", e->fd, c->pid);
	if ((size_t)n >= sizeof(buf)) {
		pr_err("link of fd %d of pid %d is too long", e->fd, c->pid);
		return -ENAMETOOLONG;
	}
	e->link = strndup(buf, (size_t)n);
	if (!e->link)
		return pr_errno(-ENOMEM, "fd %d of pid %d", e->fd, c->pid);

	snprintf(name, sizeof(name), "fdinfo/%d", e->fd);
	/* the generic lines come first (an epoll's or inotify's may go on for megabytes) */
	_cleanup_free_ char *info = read_head_at(c->procfd, name, FDINFO_MAX);
	if (!info)
		return pr_perror("cannot read /proc/%d/fdinfo/%d (%s)", c->pid, e->fd, e->link);
	struct proc_fdinfo fi;
	int ret = proc_parse_fdinfo(info, &fi);
	if (ret)
		return pr_errno(ret, "cannot parse /proc/%d/fdinfo/%d (%s)", c->pid, e->fd,
				e->link);
	e->pos = fi.pos;
	e->flags = fi.flags;
	ret = locks_collect(c, e, info);
	if (ret)
		return ret;

	_cleanup_close_ int dup = sys_pidfd_getfd(c->pidfd, e->fd, 0);
	if (dup < 0)
		return pr_perror("pidfd_getfd of fd %d of pid %d (%s)", e->fd, c->pid, e->link);
	if (fstat(dup, &e->st))
		return pr_perror("fstat of fd %d of pid %d (%s)", e->fd, c->pid, e->link);
	struct statfs sfs;
	e->fs_type = fstatfs(dup, &sfs) == 0 ? (long)sfs.f_type : 0;
	socklen_t l = sizeof(int), l2 = sizeof(int), l3 = sizeof(int);
	if (S_ISSOCK(e->st.st_mode) &&
	    (getsockopt(dup, SOL_SOCKET, SO_DOMAIN, &e->sk_domain, &l) ||
	     getsockopt(dup, SOL_SOCKET, SO_TYPE, &e->sk_type, &l2) ||
	     getsockopt(dup, SOL_SOCKET, SO_PROTOCOL, &e->sk_proto, &l3)))
		return pr_perror("fd %d of pid %d: socket domain, type and protocol", e->fd,
				 c->pid);
	ret = classify(c, e);
	if (ret || (e->ops->flags & FD_OPS_OWN_FDINFO))
		return ret;
	return check_fdinfo_keys(c, e, info);
}

/* 1 if fds @a and @b of @pid share one open file description, 0 if not, or -errno. */
static int same_description(pid_t pid, int a, int b)
{
	long r = syscall(SYS_kcmp, pid, pid, KCMP_FILE, a, b);
	if (r < 0)
		return pr_perror("kcmp(KCMP_FILE) of fds %d and %d of pid %d", a, b, pid);
	return r == 0;
}

/* Group the fds by open file description: same (dev, ino) first, then kcmp. */
static int group_descriptions(const struct dump_ctx *c, struct fd_ent *ents, size_t n)
{
	uint32_t next_id = 1;

	for (size_t i = 0; i < n; i++) {
		ents[i].owner = i;
		for (size_t j = 0; j < i; j++) {
			const struct fd_ent *o = &ents[j];
			if (o->owner != j || o->st.st_dev != ents[i].st.st_dev ||
			    o->st.st_ino != ents[i].st.st_ino)
				continue;
			int r = same_description(c->ospid, o->fd, ents[i].fd);
			if (r < 0)
				return r;
			if (r) {
				ents[i].owner = j;
				break;
			}
		}
		if (ents[i].owner == i)
			ents[i].id = next_id++;
	}
	/* the rows may move descriptions to another row, knowing them all */
	for (const struct fd_ops *const *r = fd_kinds; *r; r++) {
		int ret = (*r)->group ? (*r)->group(c, ents, n) : 0;
		if (ret)
			return ret;
	}
	return 0;
}

/* A socket of another network namespace than its holder's (made before the holder left
 * it): FileDesc.netns, made again in that namespace (tree.c files_netns_merge) where its
 * row allows; else refused (it would be made in the holder's). Unix sockets find theirs
 * themselves (src/net/sk_unix.c); where SIOCGSKNS is refused, the TCP and UDP rows find
 * it by the sock_diag that lists it, or refuse it. */
static int netns_check(const struct dump_ctx *c, const struct fd_ent *e, FileDesc *d)
{
	if (!(e->ops->flags & FD_OPS_NETNS) || e->kind == FILE_KIND__FILE_UNIX_SK || !c->core ||
	    !c->core->ns || !c->core->ns->net)
		return 0;
	_cleanup_close_ int dup = fd_dup(c, e);
	_cleanup_close_ int ns = dup < 0 ? -1 : ioctl(dup, SIOCGSKNS);
	struct stat st;
	if (ns < 0 || fstat(ns, &st) || st.st_ino == c->core->ns->net)
		return 0;
	d->has_netns = true;
	d->netns = st.st_ino;
	return 0;
}

/* ... and once its row dumped it: one its row makes alone (fd_alone_in_netns), or
 * refused. */
static int netns_after(const struct dump_ctx *c, const struct fd_ent *e, const FileDesc *d)
{
	if (!d->has_netns || e->kind == FILE_KIND__FILE_UNIX_SK || fd_alone_in_netns(d))
		return 0;
	return fd_unsupported(c, e, "a socket of another network namespace than its task's "
				    "(of those, only unix and UDP sockets, and TCP sockets "
				    "listening with nothing queued or not connected, are made "
				    "there)");
}

bool fd_alone_in_netns(const FileDesc *d)
{
	const TcpSk *t = d->tcp_sk;
	const InetDgramSk *u = d->inet_dgram;
	/* (TCP_LISTEN, TCP_CLOSE; UDP and UDP-Lite, with their queues: made by their maker) */
	return (t && ((t->state == 10 && !t->n_pending) || (t->state == 7 && !t->repair))) ||
	       (u && (u->protocol == IPPROTO_UDP || u->protocol == IPPROTO_UDPLITE));
}

/* The generic fields of a description, then its row's. */
static int desc_dump(const struct dump_ctx *c, const struct fd_ent *e, FileDesc **out)
{
	FileDesc *d = malloc(sizeof(*d));
	if (!d)
		return pr_errno(-ENOMEM, "fd %d of pid %d", e->fd, c->pid);
	file_desc__init(d);
	*out = d;  /* owned by the caller from now on, complete or not */
	d->id = e->id;
	d->kind = e->kind;
	d->flags = e->flags & ~(unsigned int)O_CLOEXEC;
	d->has_dev = d->has_ino = true;
	d->dev = e->st.st_dev;
	d->ino = e->st.st_ino;
	d->link = strdup(e->link);
	if (!d->link)
		return pr_errno(-ENOMEM, "fd %d of pid %d", e->fd, c->pid);
	if (S_ISCHR(e->st.st_mode) || S_ISBLK(e->st.st_mode)) {
		d->has_rdev = true;
		d->rdev = e->st.st_rdev;
	}
	int ret = netns_check(c, e, d);
	if (!ret && e->ops->dump)
		ret = e->ops->dump(c, e, d);
	if (!ret)
		ret = netns_after(c, e, d);
	if (!ret)
		ret = locks_dump(c, e, d);
	/* an O_PATH description has no owner (fcntl F_GETOWN_EX: EBADF) */
	if (ret || (e->flags & O_PATH))
		return ret;
	_cleanup_close_ int dup = sys_pidfd_getfd(c->pidfd, e->fd, 0);
	return fown_dump(c, e->fd, dup, d);
}

/* Rows whose image of a description depends only on the description and on the
 * namespaces and root its holder sees it through: not on the holder's fd table (epoll,
 * io_uring), its session (terminals), or its pid (pidfds, /proc files). */
static bool holder_free(FileKind k)
{
	switch (k) {
	case FILE_KIND__FILE_REG: case FILE_KIND__FILE_DIR: case FILE_KIND__FILE_CHR:
	case FILE_KIND__FILE_BLK: case FILE_KIND__FILE_PIPE: case FILE_KIND__FILE_FIFO:
	case FILE_KIND__FILE_UNIX_SK: case FILE_KIND__FILE_EVENTFD: case FILE_KIND__FILE_TIMERFD:
	case FILE_KIND__FILE_SIGNALFD: case FILE_KIND__FILE_TCP_SK:
	case FILE_KIND__FILE_INET_DGRAM: case FILE_KIND__FILE_NETLINK: case FILE_KIND__FILE_PACKET:
		return true;
	default:
		return false;
	}
}

static void root_id(struct dump_ctx *c)
{
	struct statx sx;
	if (statx(c->procfd, "root", 0, STATX_INO | STATX_MNT_ID, &sx) == 0 &&
	    (sx.stx_mask & STATX_MNT_ID)) {
		c->root_id[0] = makedev(sx.stx_dev_major, sx.stx_dev_minor);
		c->root_id[1] = sx.stx_ino;
		c->root_id[2] = sx.stx_mnt_id;
	}
}

/* Does @a see files as @c does: the same namespaces and the same root? */
static bool same_view(const struct dump_ctx *a, const struct dump_ctx *c)
{
	const NsIds *x = a->core ? a->core->ns : NULL, *y = c->core ? c->core->ns : NULL;
	if (!x || !y || !c->root_id[2] || memcmp(a->root_id, c->root_id, sizeof(c->root_id)))
		return false;
	return x->uts == y->uts && x->ipc == y->ipc && x->mnt == y->mnt && x->net == y->net &&
	       x->pid == y->pid && x->pid_for_children == y->pid_for_children &&
	       x->user == y->user && x->cgroup == y->cgroup && x->time == y->time;
}

/* The description of @e (an owner of @c's) as an ancestor that sees files as @c does
 * dumped it at the same fd number, if it is the same open file description (kcmp): a
 * copy, or NULL. What a fork inherits is dumped once: 341 socketpairs inherited by 245
 * processes took 46 s to dump holder by holder. Not with locks (a POSIX lock is the
 * process's; the holder's own are in its fdinfo, an ancestor's in its copy). */
static FileDesc *inherited_desc(const struct dump_ctx *c, const struct fd_ent *e)
{
	if (e->n_locks || !holder_free(e->kind))
		return NULL;
	for (const struct dump_ctx *a = c->parent; a; a = a->parent) {
		const Files *f = a->files;
		if (!f || !same_view(a, c))
			continue;
		size_t lo = 0, hi = f->n_fds;
		while (lo < hi) { /* (fds in ascending order: list_fds) */
			size_t mid = lo + (hi - lo) / 2;
			if (f->fds[mid]->fd < e->fd)
				lo = mid + 1;
			else
				hi = mid;
		}
		ssize_t i = lo < f->n_fds && f->fds[lo]->fd == e->fd
				    ? fd_desc_index(f, f->fds[lo]->file_id) : -1;
		const FileDesc *d = i >= 0 ? f->files[i] : NULL;
		if (!d || d->n_locks || d->kind != e->kind || d->dev != e->st.st_dev ||
		    d->ino != e->st.st_ino ||
		    syscall(SYS_kcmp, a->ospid, c->ospid, KCMP_FILE, e->fd, e->fd) != 0)
			continue;
		size_t len = file_desc__get_packed_size(d);
		_cleanup_free_ uint8_t *buf = malloc(len ? len : 1);
		FileDesc *copy = buf ? file_desc__unpack(NULL, file_desc__pack(d, buf), buf) : NULL;
		if (copy)
			copy->id = e->id;
		return copy;
	}
	return NULL;
}

/* Build the Files message from the classified, grouped entries. */
static int build_files(const struct dump_ctx *c, const struct fd_ent *ents, size_t n,
		       Files *f)
{
	f->files = calloc(n ? n : 1, sizeof(*f->files));
	f->fds = calloc(n ? n : 1, sizeof(*f->fds));
	if (!f->files || !f->fds)
		return pr_errno(-ENOMEM, "fds of pid %d", c->pid);
	for (size_t i = 0; i < n; i++) {
		if (ents[i].owner != i)
			continue;
		if ((f->files[f->n_files] = inherited_desc(c, &ents[i]))) {
			f->n_files++;
			continue;
		}
		int ret = desc_dump(c, &ents[i], &f->files[f->n_files]);
		if (f->files[f->n_files])
			f->n_files++;
		if (ret)
			return ret;
	}
	for (size_t i = 0; i < n; i++) {
		Fd *fd = malloc(sizeof(*fd));
		if (!fd)
			return pr_errno(-ENOMEM, "fds of pid %d", c->pid);
		fd__init(fd);
		fd->fd = ents[i].fd;
		fd->file_id = ents[ents[i].owner].id;
		fd->cloexec = (ents[i].flags & O_CLOEXEC) != 0;
		f->fds[f->n_fds++] = fd;
	}
	return 0;
}

static void ents_free(struct fd_ent *ents, size_t n)
{
	for (size_t i = 0; ents && i < n; i++) {
		free(ents[i].link);
		free(ents[i].locks);
	}
	free(ents);
}

int files_dump(struct dump_ctx *c)
{
	_cleanup_free_ int *nums = NULL;
	size_t n = 0;
	int ret = list_fds(c, &nums, &n);
	if (ret)
		return ret;

	root_id(c);
	struct fd_ent *ents = calloc(n ? n : 1, sizeof(*ents));
	if (!ents)
		return pr_errno(-ENOMEM, "fds of pid %d", c->pid);
	Files *f = malloc(sizeof(*f));
	if (!f) {
		ents_free(ents, n);
		return pr_errno(-ENOMEM, "fds of pid %d", c->pid);
	}
	files__init(f);

	for (size_t i = 0; i < n && !ret; i++) {
		ents[i].fd = nums[i];
		ret = collect_ent(c, &ents[i]);
	}
	if (!ret)
		ret = group_descriptions(c, ents, n);
	if (!ret)
		ret = build_files(c, ents, n, f);
	ents_free(ents, n);
	if (ret) {
		protobuf_c_message_free_unpacked(&f->base, NULL);
		return ret;
	}
	pr_debug("pid %d: %zu fds, %zu open file descriptions", c->pid, f->n_fds, f->n_files);
	c->files = f;
	return 0;
}

int files_max_fd(const Files *f)
{
	int max = -1;
	for (size_t i = 0; f && i < f->n_fds; i++)
		if (f->fds[i] && f->fds[i]->fd > max)
			max = f->fds[i]->fd;
	return max;
}

/* ------------------------------------------------------------------------------------ */
/* Restore (in the child)                                                               */
/* ------------------------------------------------------------------------------------ */

/* Images are untrusted: check every reference and bound before acting on any. */
int fd_validate_files(const Files *f, int svc_lo, const struct blob_reader *blobs)
{
	for (size_t i = 0; i < f->n_files; i++) {
		const FileDesc *d = f->files[i];
		if (fd_desc_index(f, d->id) != (ssize_t)i) {
			pr_err("files image: duplicate file id %u", d->id);
			return -EINVAL;
		}
		const struct fd_ops *ops = fd_ops_of(d);
		if (!ops) {
			pr_err("files image: file %u has unknown kind %d", d->id, (int)d->kind);
			return -EINVAL;
		}
		int ret = ops->validate ? ops->validate(d, blobs) : 0;
		if (!ret && d->has_mnt_pid && (d->mnt_pid <= 0 || !d->in_task_root ||
					       !(ops->flags & FD_OPS_BY_PATH))) {
			pr_err("files image: file %u is opened in another task's mount namespace "
			       "but is no file of a path of its view", d->id);
			ret = -EINVAL;
		}
		bool alone = d->kind == FILE_KIND__FILE_UNIX_SK || fd_alone_in_netns(d);
		if (!ret && d->has_netns_pid && (d->netns_pid < 0 || !alone)) {
			pr_err("files image: file %u of another network namespace cannot be made "
			       "alone", d->id);
			ret = -EINVAL;
		}
		if (!ret)
			ret = locks_validate(d);
		if (ret)
			return ret;
		if (!fown_is_valid(d->owner)) {
			pr_err("files image: file %u has an invalid owner", d->id);
			return -EINVAL;
		}
	}
	for (size_t k = 0; k < f->n_fds; k++) {
		const Fd *fd = f->fds[k];
		if (fd->fd < 0 || fd->fd >= svc_lo) {
			pr_err("files image: fd %d out of range [0, %d)", fd->fd, svc_lo);
			return -EINVAL;
		}
		if (fd_desc_index(f, fd->file_id) < 0) {
			pr_err("files image: fd %d refers to unknown file id %u", fd->fd,
			       fd->file_id);
			return -EINVAL;
		}
		for (size_t j = 0; j < k; j++)
			if (f->fds[j]->fd == fd->fd) {
				pr_err("files image: fd %d appears twice", fd->fd);
				return -EINVAL;
			}
	}
	return 0;
}

/* Descriptions the restoring stasis opened for the whole tree: inherited. */
static int inherit_shared(struct fd_rst *s)
{
	const Files *f = s->f;

	for (size_t i = 0; i < f->n_files && s->gfd; i++) {
		uint32_t id = f->files[i]->id;
		if (id >= s->n_gfd || s->gfd[id] < 0)
			continue;
		int tmp = fcntl(s->gfd[id], F_DUPFD_CLOEXEC, s->stage_lo);
		if (tmp < 0)
			return pr_perror("restore fd %d (%s): dup the shared description",
					 fd_desc_fd(f, i), fd_desc_name(f->files[i]));
		s->staged[i] = tmp;
		s->shared[i] = true;
	}
	return 0;
}

static int open_descriptions(struct fd_rst *s)
{
	const Files *f = s->f;
	int ret = inherit_shared(s);

	for (size_t i = 0; i < f->n_files && !ret; i++) {
		const FileDesc *d = f->files[i];
		const struct fd_ops *ops = fd_ops_of(d);
		int target = fd_desc_fd(f, i);
		if (s->staged[i] >= 0 || target < 0 ||
		    (ops->flags & (FD_OPS_INHERITED | FD_OPS_LATE)))
			continue; /* late ones once every other fd is placed */
		if (ops->open_task) {
			ret = ops->open_task(s, i);
			continue;
		}
		int tmp = ops->open(d, target, -1, s->blobs);
		if (tmp < 0)
			return tmp;
		int r = fd_stage(tmp, s->stage_lo, target, fd_desc_name(d));
		if (r < 0)
			return r;
		s->staged[i] = r;
	}
	if (ret)
		return ret;
	/* status flags last: pipes and sockets were created non-blocking to be refilled */
	for (size_t i = 0; i < f->n_files; i++) {
		const FileDesc *d = f->files[i];
		if (s->staged[i] < 0 || (fd_ops_of(d)->flags & FD_OPS_INHERITED) ||
		    (d->flags & O_PATH) || s->shared[i])
			continue;
		if (fcntl(s->staged[i], F_SETFL, (int)(d->flags & SETFL_MASK)) < 0)
			return pr_perror("restore fd %d (%s): cannot set status flags %o",
					 fd_desc_fd(f, i), fd_desc_name(d), d->flags & SETFL_MASK);
	}
	return 0;
}

static int place_fds(const struct fd_rst *s)
{
	const Files *f = s->f;

	for (size_t k = 0; k < f->n_fds; k++) {
		const Fd *fd = f->fds[k];
		size_t i = (size_t)fd_desc_index(f, fd->file_id);
		if ((fd_ops_of(f->files[i])->flags & FD_OPS_LATE) && s->staged[i] < 0)
			continue; /* the row's late hook */
		if (s->inherited[k]) {
			if (fcntl(fd->fd, F_SETFD, fd->cloexec ? FD_CLOEXEC : 0) < 0)
				return pr_perror("restore fd %d: F_SETFD", fd->fd);
			continue;
		}
		if (dup3(s->staged[i], fd->fd, fd->cloexec ? O_CLOEXEC : 0) < 0)
			return pr_perror("restore fd %d (%s): dup3", fd->fd,
					 fd_desc_name(f->files[i]));
	}
	return 0;
}

/* Every row's prepare (or late) hook, in table order. */
static int each_row(struct fd_rst *s, bool late)
{
	for (const struct fd_ops *const *r = fd_kinds; *r; r++) {
		int (*hook)(struct fd_rst *) = late ? (*r)->late : (*r)->prepare;
		int ret = hook ? hook(s) : 0;
		if (ret)
			return ret;
	}
	return 0;
}

static int close_fd_range(unsigned int lo, unsigned int hi)
{
	if (kdat_has(KD_CLOSE_RANGE)) {
		if (syscall(SYS_close_range, lo, hi, 0) == 0)
			return 0;
		if (errno != ENOSYS)
			return pr_perror("close_range(%u, %u)", lo, hi);
	}
	for (unsigned int fd = lo; fd <= hi; fd++)
		close((int)fd);
	return 0;
}

/* Close every fd below svc_lo that is not one of the image's. */
static int close_gaps(const struct fd_rst *s)
{
	const Files *f = s->f;
	_cleanup_free_ int *t = malloc((f->n_fds ? f->n_fds : 1) * sizeof(*t));
	if (!t)
		return pr_errno(-ENOMEM, "restore fds");
	for (size_t k = 0; k < f->n_fds; k++)
		t[k] = f->fds[k]->fd;
	qsort(t, f->n_fds, sizeof(*t), cmp_int);
	int next = 0;
	for (size_t k = 0; k <= f->n_fds; k++) {
		int upto = k < f->n_fds ? t[k] : s->svc_lo;
		if (upto > next) {
			int ret = close_fd_range((unsigned int)next, (unsigned int)upto - 1);
			if (ret)
				return ret;
		}
		next = upto + 1;
	}
	return 0;
}

static void rst_files_release(struct fd_rst *s)
{
	for (size_t i = 0; s->staged && i < s->f->n_files; i++)
		if (s->staged[i] >= 0)
			close(s->staged[i]);
	free(s->staged);
	free(s->inherited);
	free(s->shared);
}

int files_restore_child(struct rst_ctx *c)
{
	const Files *f = c->files;
	if (!f) {
		pr_err("restore: no fd table for pid %d", c->pid);
		return -EINVAL;
	}
	if (c->svc_lo <= files_max_fd(f)) {
		pr_err("restore: service fds start at %d, below fd %d of the image", c->svc_lo,
		       files_max_fd(f));
		return -EINVAL;
	}
	const struct blob_reader *blobs = blob_reader_or_none(c->blobs);
	int ret = fd_validate_files(f, c->svc_lo, blobs);
	if (ret)
		return ret;

	struct fd_rst s = {
		.f = f,
		.svc_lo = c->svc_lo,
		.stage_lo = files_max_fd(f) + 1,
		.staged = malloc((f->n_files ? f->n_files : 1) * sizeof(int)),
		.inherited = calloc(f->n_fds ? f->n_fds : 1, sizeof(bool)),
		.shared = calloc(f->n_files ? f->n_files : 1, sizeof(bool)),
		.gfd = c->gfd,
		.n_gfd = c->n_gfd,
		.blobs = blobs,
		.inherit = c->opts ? c->opts->inherit_fds : NULL,
		.n_inherit = c->opts ? c->opts->n_inherit_fds : 0,
	};
	if (!s.staged || !s.inherited || !s.shared) {
		rst_files_release(&s);
		return pr_errno(-ENOMEM, "restore fds");
	}
	for (size_t i = 0; i < f->n_files; i++)
		s.staged[i] = -1;

	ret = each_row(&s, false);
	if (!ret)
		ret = open_descriptions(&s);
	fd_opened(f);
	if (!ret)
		ret = place_fds(&s);
	if (!ret)
		ret = each_row(&s, true);
	rst_files_release(&s);
	if (!ret)
		ret = close_gaps(&s);
	return ret;
}

static int files_dump_tree(struct dump_tree *t)
{
	return files_merge_tree(t->procs, t->nr);
}

/* The task rebuilt (every task exists): the owners, then the rows' remote hooks. */
static int files_remote(struct rst_ctx *c)
{
	int ret = files_restore_owners(c);
	for (const struct fd_ops *const *r = fd_kinds; *r && c->files && !ret; r++)
		ret = (*r)->remote ? (*r)->remote(c->files, c->pid) : 0;
	return ret;
}

/* Every task rebuilt: every row's final hook on its fd table, then its file locks (no fd
 * of the task may be closed after them). */
static int files_final(struct rst_ctx *c)
{
	int ret = 0;
	for (const struct fd_ops *const *r = fd_kinds; *r && c->files && !ret; r++)
		ret = (*r)->final ? (*r)->final(c) : 0;
	return ret ? ret : locks_restore(c);
}

/* A task sharing its parent's fd table (CLONE_FILES) finds it rebuilt by the parent. */
static int files_child(struct rst_ctx *c)
{
	return c->shares_files ? 0 : files_restore_child(c);
}

const struct resource files_resource = {
	.name = "files",
	.dump = files_dump,
	.dump_tree = files_dump_tree,
	.child = files_child,
	.remote = files_remote,
	.final = files_final,
};

int fd_place_late(const struct fd_rst *s, size_t i, int fd)
{
	const Files *f = s->f;
	const FileDesc *d = f->files[i];
	int target = fd_desc_fd(f, i);
	if (fcntl(fd, F_SETFL, (int)(d->flags & SETFL_MASK)) < 0) {
		int ret = pr_perror("restore fd %d: cannot set status flags %o", target,
				    d->flags & SETFL_MASK);
		close(fd);
		return ret;
	}
	int st = fd_stage(fd, s->stage_lo, target, fd_desc_name(d));
	if (st < 0)
		return st;
	for (size_t k = 0; k < f->n_fds; k++) {
		const Fd *x = f->fds[k];
		if (x->file_id != d->id)
			continue;
		if (dup3(st, x->fd, x->cloexec ? O_CLOEXEC : 0) < 0) {
			int ret = pr_perror("restore fd %d (%s): dup3", x->fd, fd_desc_name(d));
			close(st);
			return ret;
		}
	}
	close(st);
	return 0;
}
