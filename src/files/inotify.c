/* inotify (row fd_inotify_ops, kind FILE_INOTIFY, FileDesc.inotify).
 *
 * Dump: the watches from /proc/PID/fdinfo (fs/notify/fdinfo.c: wd, inode, device, mask,
 * file handle). Each watched inode gets a path: through its file handle on a mount of
 * its whole filesystem (fh_path_handle: needs CAP_DAC_READ_SEARCH), else among the paths
 * near the task (near_paths: its cwd, its open files, the directories above them and
 * their entries); the path is checked to name that very inode (a watch pins it, so its
 * number cannot be reused meanwhile). A watch no path reaches (a deleted file, a file
 * far from everything the task holds when stasis may not open file handles) is refused.
 * So is an instance with events queued: reading them would take them from the running
 * tree (a failed dump or --leave-running loses them) and no interface queues an event
 * again; an event that comes after the check (the tree is frozen, but another process
 * may touch a watched file) happened, for the restored tree, while it was not running.
 *
 * Restore: inotify_init1, then the watches in increasing wd order, each with the same
 * wd: the kernel hands them out cyclically (idr_alloc_cyclic from the last one + 1), so
 * a gap before a watch is skipped by adding and removing a throw-away watch on the same
 * file once per missing number; every wd is checked, one that does not come out right
 * fails the restore. The removals queue IN_IGNORED events, and restoring the other files
 * may queue events too (an IN_OPEN of a watched file): the queue is drained while it is
 * built and, on a pidfd_getfd duplicate, once every task is rebuilt (final hook), so the
 * restored queue is empty, as it was. Not known at dump, so not restored: where the
 * kernel's cursor stood past the highest live wd (a program that removed its highest
 * watch may see that number again from its next inotify_add_watch). */
#include <fcntl.h>
#include <limits.h>
#include <linux/openat2.h>
#include <stdio.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "core/log.h"
#include "core/util.h"
#include "files/fd_ops.h"
#include "proc/fhpath.h"
#include "proc/parse.h"
#include "sys/syscalls.h"

#ifndef IN_MASK_CREATE
#define IN_MASK_CREATE 0x10000000
#endif

#define INOTIFY_FDINFO_MAX (64u << 20)
/* Images are untrusted, and every missing number below a wd costs an add and a removal
 * (about 2 us): at most this wd (and this many watches). */
#define INOTIFY_WD_MAX (1 << 20)
/* The mask bits a watch keeps (fdinfo shows them; IN_MASK_ADD, IN_ONLYDIR and
 * IN_DONT_FOLLOW only act while adding). */
#define INOTIFY_MASK_BITS (IN_ALL_EVENTS | IN_ONESHOT | IN_EXCL_UNLINK)
/* Drain the queue after this many throw-away watches. */
#define INOTIFY_DRAIN_EVERY 4096

static int inotify_classify(const struct dump_ctx *c, struct fd_ent *e)
{
	(void)c;
	if (strcmp(e->link, "anon_inode:inotify"))
		return 0;
	e->kind = FILE_KIND__FILE_INOTIFY;
	return 1;
}

/* ---- dump ---------------------------------------------------------------------- */

static int marks_paths(const struct dump_ctx *c, const struct proc_fsnotify_mark *m, size_t n,
		       char **paths, int *views);

int fd_marks_each(const struct dump_ctx *c, const struct proc_fsnotify_mark *m, size_t n,
		  int (*each)(void *arg, size_t i, char *path, int views), void *arg)
{
	_cleanup_free_ char **paths = calloc(n ?: 1, sizeof(*paths));
	_cleanup_free_ int *pv = calloc(n ?: 1, sizeof(*pv));
	if (!paths || !pv)
		return pr_errno(-ENOMEM, "pid %d: the paths of the files it watches", c->pid);
	int ret = marks_paths(c, m, n, paths, pv);
	for (size_t i = 0; i < n && !ret; i++) {
		ret = each(arg, i, paths[i], pv[i]);
		paths[i] = NULL; /* each's */
	}
	for (size_t i = 0; i < n; i++)
		free(paths[i]);
	return ret;
}

static int cmp_wd(const void *a, const void *b)
{
	const struct proc_fsnotify_mark *x = a, *y = b;
	return (x->wd > y->wd) - (x->wd < y->wd);
}

/* The kernel's dev_t of fdinfo (MAJOR << 20 | MINOR) as stat shows it. */
dev_t fd_kdev(uint32_t sdev)
{
	return makedev(sdev >> 20, sdev & 0xfffff);
}

/* A path for the inode of mark @m through its file handle, or NULL. */
static int handle_path(const struct proc_fsnotify_mark *m, char **path)
{
	*path = NULL;
	if (!m->has_fh)
		return 0;
	_cleanup_free_ struct file_handle *fh = malloc(sizeof(*fh) + PROC_FHANDLE_MAX);
	if (!fh)
		return -ENOMEM;
	fh->handle_bytes = m->fh_bytes;
	fh->handle_type = m->fh_type;
	memcpy(fh->f_handle, m->fh, m->fh_bytes);
	int ret = fh_path_handle(fh, fd_kdev(m->sdev), (ino_t)m->ino, path);
	return ret == -ENOMEM ? ret : 0;
}

/* The paths near the task for the marks still without one (@dirs: with the entries of
 * the directories the other marks found, too). */
static int near_pass(const struct dump_ctx *c, const struct proc_fsnotify_mark *m, size_t n,
		     char **paths, struct near_paths **near, bool dirs)
{
	int ret = *near ? 0 : near_paths_collect(c->procfd, near);
	for (size_t i = 0; i < n && dirs && !ret; i++) {
		struct stat st;
		if (paths[i] && !stat(paths[i], &st) && S_ISDIR(st.st_mode))
			ret = near_paths_add_dir(*near, paths[i]);
	}
	for (size_t i = 0; i < n && !ret; i++) {
		if (m[i].type != PROC_MARK_INODE || paths[i])
			continue;
		const char *p = near_paths_find(*near, fd_kdev(m[i].sdev), (ino_t)m[i].ino);
		if (p && !(paths[i] = strdup(p)))
			ret = -ENOMEM;
	}
	return ret;
}

/* For every inode mark of @m, a path (malloc'd) and the views it is in. */
static int marks_paths(const struct dump_ctx *c, const struct proc_fsnotify_mark *m, size_t n,
		       char **paths, int *views)
{
	struct near_paths *near = NULL;
	size_t missing = 0;
	int ret = 0;
	for (size_t i = 0; i < n && !ret; i++) {
		paths[i] = NULL;
		if (m[i].type == PROC_MARK_INODE) {
			ret = handle_path(&m[i], &paths[i]);
			missing += !paths[i];
		}
	}
	if (!ret && missing)
		ret = near_pass(c, m, n, paths, &near, false);
	if (!ret && missing)
		ret = near_pass(c, m, n, paths, &near, true);
	near_paths_free(near);
	if (ret)
		return pr_errno(ret, "pid %d: the paths of the files it watches", c->pid);
	for (size_t i = 0; i < n; i++)
		views[i] = paths[i] ? path_views(c->procfd, paths[i], fd_kdev(m[i].sdev),
						 (ino_t)m[i].ino)
				    : 0;
	return 0;
}

static int unreachable(const struct dump_ctx *c, const struct fd_ent *e,
		       const struct proc_fsnotify_mark *m)
{
	pr_err("fd %d of pid %d is an inotify watching (wd %d) inode %llu on device %u:%u, "
	       "which no path reaches (deleted, or not near the task's files and file handles "
	       "cannot be opened): not supported",
	       e->fd, c->pid, m->wd, (unsigned long long)m->ino, major(fd_kdev(m->sdev)),
	       minor(fd_kdev(m->sdev)));
	return -EOPNOTSUPP;
}

/* Watch @m of fd @e into @w; *@views narrowed to the views every watch is in. */
static int dump_watch(const struct dump_ctx *c, const struct fd_ent *e,
		      const struct proc_fsnotify_mark *m, char *path, int v, InotifyWatch *w,
		      int *views)
{
	if (m->wd > INOTIFY_WD_MAX || (m->mask & ~(uint32_t)INOTIFY_MASK_BITS) ||
	    !(m->mask & IN_ALL_EVENTS) || m->ignored_mask) {
		pr_err("fd %d of pid %d is an inotify with watch %d (mask %#x, ignored mask %#x) "
		       "stasis cannot add again with that number and mask (wds up to %d): not "
		       "supported", e->fd, c->pid, m->wd, m->mask, m->ignored_mask,
		       INOTIFY_WD_MAX);
		free(path);
		return -EOPNOTSUPP;
	}
	if (!path || !v) {
		free(path);
		return unreachable(c, e, m);
	}
	if (!(*views & v)) {
		pr_err("fd %d of pid %d is an inotify watching %s (wd %d) in the task's mount "
		       "namespace only and other files in stasis's only: not supported",
		       e->fd, c->pid, path, m->wd);
		free(path);
		return -EOPNOTSUPP;
	}
	*views &= v;
	w->wd = m->wd;
	w->mask = m->mask;
	w->path = path;
	w->has_ino = w->has_dev = true;
	w->ino = m->ino;
	w->dev = fd_kdev(m->sdev);
	return 0;
}

struct watch_arg {
	const struct dump_ctx *c;
	const struct fd_ent *e;
	const struct proc_fsnotify_mark *m;
	InotifyData *d;
	int views;
};

static int each_watch(void *arg, size_t i, char *path, int v)
{
	struct watch_arg *a = arg;
	InotifyWatch *w = malloc(sizeof(*w));
	if (!w) {
		free(path);
		return pr_errno(-ENOMEM, "fd %d of pid %d", a->e->fd, a->c->pid);
	}
	inotify_watch__init(w);
	a->d->watches[a->d->n_watches++] = w;
	return dump_watch(a->c, a->e, &a->m[i], path, v, w, &a->views);
}

int fd_check_queue(const struct dump_ctx *c, const struct fd_ent *e, const char *what)
{
	_cleanup_close_ int dup = fd_dup(c, e);
	int q = 0;
	if (dup < 0)
		return dup;
	if (ioctl(dup, FIONREAD, &q))
		return pr_perror("fd %d of pid %d: FIONREAD of %s", e->fd, c->pid, what);
	if (q > 0) {
		pr_err("fd %d of pid %d is %s with %d bytes of events not read yet: not "
		       "supported (they cannot be queued again)", e->fd, c->pid, what, q);
		return -EOPNOTSUPP;
	}
	return 0;
}

static int inotify_dump(const struct dump_ctx *c, const struct fd_ent *e, FileDesc *d)
{
	int ret = fd_check_queue(c, e, "an inotify");
	if (ret)
		return ret;
	_cleanup_free_ char *info = NULL;
	ret = fd_read_fdinfo(c, e->fd, INOTIFY_FDINFO_MAX, &info);
	if (ret)
		return ret;
	_cleanup_free_ struct proc_fsnotify_mark *m = NULL;
	size_t n;
	if (proc_parse_fdinfo_inotify(info, &m, &n)) {
		pr_err("cannot parse the inotify watches in /proc/%d/fdinfo/%d", c->pid, e->fd);
		return -EINVAL;
	}
	qsort(m, n, sizeof(*m), cmp_wd);
	d->inotify = malloc(sizeof(*d->inotify));
	if (!d->inotify)
		return pr_errno(-ENOMEM, "fd %d of pid %d", e->fd, c->pid);
	inotify_data__init(d->inotify);
	d->inotify->watches = calloc(n ?: 1, sizeof(*d->inotify->watches));
	if (!d->inotify->watches)
		return pr_errno(-ENOMEM, "fd %d of pid %d", e->fd, c->pid);
	struct watch_arg a = { .c = c, .e = e, .m = m, .d = d->inotify,
			       .views = PATH_VIEW_MINE | PATH_VIEW_TASK };
	ret = fd_marks_each(c, m, n, each_watch, &a);
	int views = a.views;
	if (ret)
		return ret;
	/* the paths are the dumper's when it sees them all, else the task's */
	d->has_in_task_root = true;
	d->in_task_root = !(views & PATH_VIEW_MINE);
	for (size_t i = 0; i < d->inotify->n_watches; i++)
		d->inotify->watches[i]->has_in_task_root = true,
		d->inotify->watches[i]->in_task_root = d->in_task_root;
	return 0;
}

/* ---- restore ------------------------------------------------------------------- */

static int inotify_validate(const FileDesc *d, const struct blob_reader *blobs)
{
	(void)blobs;
	const InotifyData *in = d->inotify;
	if (!in || in->n_watches > INOTIFY_WD_MAX)
		return fd_bad_data(d);
	for (size_t i = 0; i < in->n_watches; i++) {
		const InotifyWatch *w = in->watches[i];
		if (w->wd < 1 || w->wd > INOTIFY_WD_MAX || (i && w->wd <= in->watches[i - 1]->wd) ||
		    (w->mask & ~(uint32_t)INOTIFY_MASK_BITS) || !(w->mask & IN_ALL_EVENTS) ||
		    !w->path || w->path[0] != '/' || strlen(w->path) >= PATH_MAX) {
			pr_err("files image: inotify %u: watch %d (mask %#x, path %s) is not one "
			       "stasis adds (wds increasing, 1 to %d)", d->id, w->wd, w->mask,
			       w->path ?: "none", INOTIFY_WD_MAX);
			return -EINVAL;
		}
	}
	return 0;
}

/* Read every event queued on @fd (never blocks: only what FIONREAD says is there). */
static int drain(int fd)
{
	char buf[4096] __attribute__((aligned(8)));
	int q;
	while (!ioctl(fd, FIONREAD, &q) && q > 0)
		if (read(fd, buf, sizeof(buf)) < 0)
			return -errno;
	return 0;
}

int fd_mark_open(int rootfd, const char **path, char proc[64], int target)
{
	if (rootfd < 0)
		return -1;
	/* inside the task's mount tree: named by a magic link of this process */
	struct open_how how = { .flags = O_PATH | O_CLOEXEC, .resolve = RESOLVE_IN_ROOT };
	int pfd = sys_openat2(rootfd, *path, &how, sizeof(how));
	if (pfd < 0)
		return pr_perror("restore fd %d: open %s in the task's mount tree", target, *path);
	snprintf(proc, 64, "/proc/self/fd/%d", pfd);
	*path = proc;
	return pfd;
}

static int wrong_wd(int target, const InotifyWatch *w, int got, int want)
{
	if (got < 0)
		return pr_perror("restore fd %d: inotify watch %d on %s (number %d)", target,
				 w->wd, w->path, want);
	pr_err("restore fd %d: inotify watch %d on %s: the kernel gave number %d, not %d",
	       target, w->wd, w->path, got, want);
	return -EINVAL;
}

/* Add watch @w to @fd by @path with its wd: *@next is the wd the kernel hands out next. */
static int add_watch(int fd, const char *path, const InotifyWatch *w, int *next, int target)
{
	while (*next < w->wd) {
		/* a throw-away watch on the same file takes the missing number */
		int wd = inotify_add_watch(fd, path, IN_ATTRIB | IN_MASK_CREATE);
		if (wd != *next)
			return wrong_wd(target, w, wd, *next);
		if (inotify_rm_watch(fd, wd))
			return pr_perror("restore fd %d: remove the throw-away inotify watch %d",
					 target, wd);
		if (!(++*next % INOTIFY_DRAIN_EVERY))
			drain(fd);
	}
	int wd = inotify_add_watch(fd, path, w->mask | IN_MASK_CREATE);
	if (wd != w->wd || *next != w->wd)
		return wrong_wd(target, w, wd, w->wd);
	*next = wd + 1;
	return 0;
}

static int inotify_open(const FileDesc *d, int target, int rootfd, const struct blob_reader *blobs)
{
	(void)blobs;
	_cleanup_close_ int fd = inotify_init1(IN_CLOEXEC | IN_NONBLOCK);
	if (fd < 0)
		return pr_perror("restore fd %d: inotify_init1", target);
	int next = 1;
	for (size_t i = 0; i < d->inotify->n_watches; i++) {
		const InotifyWatch *w = d->inotify->watches[i];
		char proc[64];
		const char *path = w->path;
		_cleanup_close_ int pfd = fd_mark_open(rootfd, &path, proc, target);
		if (pfd < 0 && rootfd >= 0)
			return pfd;
		int ret = add_watch(fd, path, w, &next, target);
		if (ret)
			return ret;
	}
	if (drain(fd))
		return pr_perror("restore fd %d: drain the inotify", target);
	return take_fd(&fd);
}

int fd_drain_final(const Files *f, pid_t pid, FileKind kind, int (*drain_fd)(int fd))
{
	_cleanup_close_ int pidfd = -1;
	for (size_t i = 0; i < f->n_files; i++) {
		int target = fd_desc_fd(f, i);
		if (f->files[i]->kind != kind || target < 0)
			continue;
		if (pidfd < 0 && (pidfd = sys_pidfd_open(pid, 0)) < 0)
			return pr_perror("restore pid %d: pidfd", pid);
		_cleanup_close_ int dup = sys_pidfd_getfd(pidfd, target, 0);
		if (dup < 0)
			return pr_perror("restore fd %d of pid %d: pidfd_getfd", target, pid);
		if (drain_fd(dup))
			return pr_perror("restore fd %d of pid %d: read the events restoring queued",
					 target, pid);
	}
	return 0;
}

/* Every task rebuilt, none running: what restoring queued (IN_IGNORED of the throw-away
 * watches, events of files opened since) read away on a duplicate. */
static int inotify_final(struct rst_ctx *c)
{
	return fd_drain_final(c->files, c->pid, FILE_KIND__FILE_INOTIFY, drain);
}

const struct fd_ops fd_inotify_ops = {
	.name = "inotify",
	.kind = FILE_KIND__FILE_INOTIFY,
	.flags = FD_OPS_BY_PATH,
	.fdinfo_keys = (const char *const[]){ "inotify", NULL },
	.classify = inotify_classify,
	.dump = inotify_dump,
	.validate = inotify_validate,
	.open = inotify_open,
	.final = inotify_final,
};
