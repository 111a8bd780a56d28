/* fanotify (row fd_fanotify_ops, kind FILE_FANOTIFY, FileDesc.fanotify).
 *
 * Dump: fanotify_init's flags and event_f_flags and every mark from /proc/PID/fdinfo
 * (fs/notify/fdinfo.c), each mark with a path to add it through again: an inode mark
 * the path of its inode (fd_mark_path, as inotify's watches), a mount mark the mount
 * point of that mount in the task's mountinfo (checked with statx(STATX_MNT_ID) to
 * reach that very mount), a filesystem mark the mount point of a mount of that device.
 * Refused: events queued (FIONREAD: reading them would take them from the running tree,
 * and they cannot be queued again), the permission classes (FAN_CLASS_CONTENT,
 * FAN_CLASS_PRE_CONTENT: a permission event the program has read and not answered yet
 * is in no file stasis can read, and it would be answered by the kernel when the dump
 * closes the group), marks no path reaches, mark kinds this parser does not know.
 *
 * Restore: fanotify_init with the same flags (the caller's privilege decides: as for
 * the original, CAP_SYS_ADMIN but for FID-reporting groups with inode marks only), then
 * FAN_MARK_ADD of each mark's mask and, apart, of its ignore mask (FAN_MARK_IGNORE or
 * FAN_MARK_IGNORED_MASK as it was added, with FAN_MARK_IGNORED_SURV_MODIFY, and
 * FAN_MARK_EVICTABLE). A mount mark goes on the mount at its mount point in the restored
 * tree (mount ids differ after a restore: the mount point maps them). Events restoring
 * queued (files opened on a marked mount) are read away once every task is rebuilt
 * (final hook), the fds they carry closed. */
#include <fcntl.h>
#include <limits.h>
#include <linux/openat2.h>
#include <stdio.h>
#include <string.h>
#include <sys/fanotify.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "core/log.h"
#include "core/util.h"
#include "files/fd_ops.h"
#include "proc/fhpath.h"
#include "proc/mountinfo.h"
#include "proc/parse.h"
#include "sys/syscalls.h"

#define FANOTIFY_FDINFO_MAX (64u << 20)
#define FANOTIFY_MARKS_MAX (1u << 20)
#define MOUNTINFO_MAX (4u << 20)
/* The mark flags fdinfo shows, and the ones restore passes back. */
#define MARK_FLAGS (FAN_MARK_IGNORED_SURV_MODIFY | FAN_MARK_EVICTABLE | FAN_MARK_IGNORE)
#define CLASS_BITS (FAN_CLASS_CONTENT | FAN_CLASS_PRE_CONTENT)

enum { MARK_INODE, MARK_MOUNT, MARK_SB };

static int fanotify_classify(const struct dump_ctx *c, struct fd_ent *e)
{
	(void)c;
	if (strcmp(e->link, "anon_inode:[fanotify]"))
		return 0;
	e->kind = FILE_KIND__FILE_FANOTIFY;
	return 1;
}

/* ---- dump ---------------------------------------------------------------------- */

/* A mount point of the task's mountinfo for mark @m (its mount, or a mount of its
 * filesystem), and the views it reaches that mount in. */
static int mount_path(const struct dump_ctx *c, const struct proc_fsnotify_mark *m,
		      char **path, int *views)
{
	*path = NULL;
	*views = 0;
	_cleanup_free_ char *buf = read_file_at(c->procfd, "mountinfo", MOUNTINFO_MAX, NULL);
	if (!buf)
		return pr_perror("cannot read /proc/%d/mountinfo", c->pid);
	struct mountinfo *mi;
	size_t n;
	int ret = mountinfo_parse(buf, &mi, &n);
	if (ret)
		return pr_errno(ret, "cannot parse /proc/%d/mountinfo", c->pid);
	dev_t dev = fd_kdev(m->sdev);
	for (size_t i = 0; i < n && !*path; i++) {
		bool mine = m->type == PROC_MARK_MOUNT ? mi[i].id == (uint32_t)m->mnt_id
						       : makedev(mi[i].major, mi[i].minor) == dev;
		if (!mine)
			continue;
		int v = path_mount_views(c->procfd, mi[i].mountpoint, mi[i].id);
		if (v && !(*path = strdup(mi[i].mountpoint)))
			ret = -ENOMEM;
		*views = v;
	}
	mountinfo_free(mi, n);
	return ret ? pr_errno(ret, "pid %d: a fanotify mark's mount", c->pid) : 0;
}

static const char *const mark_kind[] = { "inode", "mount", "filesystem" };

/* Mark @m of fd @e into @k; *@views narrowed to the views every mark is in. */
static int dump_mark(const struct dump_ctx *c, const struct fd_ent *e,
		     const struct proc_fsnotify_mark *m, char *path, int v, FanotifyMark *k,
		     int *views)
{
	int ret = 0;
	if (m->mflags & ~(uint32_t)MARK_FLAGS) {
		free(path);
		pr_err("fd %d of pid %d is a fanotify group whose %s mark has flags %#x stasis "
		       "does not know: not supported", e->fd, c->pid, mark_kind[m->type], m->mflags);
		return -EOPNOTSUPP;
	}
	if (m->type != PROC_MARK_INODE)
		ret = mount_path(c, m, &path, &v);
	if (ret)
		return ret;
	if (!path || !v || !(*views & v)) {
		pr_err("fd %d of pid %d is a fanotify group whose %s mark (inode %llu, device "
		       "%u:%u, mount %d) %s: not supported", e->fd, c->pid, mark_kind[m->type],
		       (unsigned long long)m->ino, major(fd_kdev(m->sdev)), minor(fd_kdev(m->sdev)),
		       m->mnt_id, !path || !v ? "no path reaches"
					      : "in another mount namespace than its other marks");
		free(path);
		return -EOPNOTSUPP;
	}
	*views &= v;
	k->type = (uint32_t)m->type;
	k->mflags = m->mflags;
	k->mask = m->mask;
	k->ignored_mask = m->ignored_mask;
	k->path = path;
	if (m->type == PROC_MARK_INODE)
		k->has_ino = true, k->ino = m->ino;
	if (m->type != PROC_MARK_MOUNT)
		k->has_dev = true, k->dev = fd_kdev(m->sdev);
	else
		k->has_mnt_id = true, k->mnt_id = (uint32_t)m->mnt_id;
	return 0;
}

struct mark_arg {
	const struct dump_ctx *c;
	const struct fd_ent *e;
	const struct proc_fsnotify_mark *m;
	FanotifyData *d;
	int views;
};

static int each_mark(void *arg, size_t i, char *path, int v)
{
	struct mark_arg *a = arg;
	FanotifyMark *k = malloc(sizeof(*k));
	if (!k) {
		free(path);
		return pr_errno(-ENOMEM, "fd %d of pid %d", a->e->fd, a->c->pid);
	}
	fanotify_mark__init(k);
	a->d->marks[a->d->n_marks++] = k;
	return dump_mark(a->c, a->e, &a->m[i], path, v, k, &a->views);
}

/* Nothing queued, and no permission class. */
static int check_group(const struct dump_ctx *c, const struct fd_ent *e,
		       const struct proc_fanotify *f)
{
	if (f->flags & CLASS_BITS) {
		pr_err("fd %d of pid %d is a fanotify of a permission class (flags %#x): not "
		       "supported (a permission event read and not answered yet cannot be seen)",
		       e->fd, c->pid, f->flags);
		return -EOPNOTSUPP;
	}
	return fd_check_queue(c, e, "a fanotify group");
}

static int fanotify_dump(const struct dump_ctx *c, const struct fd_ent *e, FileDesc *d)
{
	_cleanup_free_ char *info = NULL;
	int ret = fd_read_fdinfo(c, e->fd, FANOTIFY_FDINFO_MAX, &info);
	if (ret)
		return ret;
	_cleanup_free_ struct proc_fsnotify_mark *m = NULL;
	struct proc_fanotify f;
	size_t n;
	if (proc_parse_fdinfo_fanotify(info, &f, &m, &n)) {
		pr_err("cannot parse the fanotify group in /proc/%d/fdinfo/%d", c->pid, e->fd);
		return -EINVAL;
	}
	ret = check_group(c, e, &f);
	if (ret)
		return ret;
	FanotifyData *fd = d->fanotify = malloc(sizeof(*d->fanotify));
	if (!fd)
		return pr_errno(-ENOMEM, "fd %d of pid %d", e->fd, c->pid);
	fanotify_data__init(fd);
	fd->flags = f.flags;
	fd->event_flags = f.event_flags;
	fd->marks = calloc(n ?: 1, sizeof(*fd->marks));
	if (!fd->marks)
		return pr_errno(-ENOMEM, "fd %d of pid %d", e->fd, c->pid);
	struct mark_arg a = { .c = c, .e = e, .m = m, .d = fd,
			      .views = PATH_VIEW_MINE | PATH_VIEW_TASK };
	ret = fd_marks_each(c, m, n, each_mark, &a);
	int views = a.views;
	d->has_in_task_root = true;
	d->in_task_root = !(views & PATH_VIEW_MINE);
	return ret;
}

/* ---- restore ------------------------------------------------------------------- */

static int fanotify_validate(const FileDesc *d, const struct blob_reader *blobs)
{
	(void)blobs;
	const FanotifyData *f = d->fanotify;
	if (!f || f->n_marks > FANOTIFY_MARKS_MAX || (f->flags & CLASS_BITS))
		return fd_bad_data(d);
	for (size_t i = 0; i < f->n_marks; i++) {
		const FanotifyMark *k = f->marks[i];
		if (k->type > MARK_SB || (k->mflags & ~(uint32_t)MARK_FLAGS) ||
		    !(k->mask | k->ignored_mask) || !k->path || k->path[0] != '/' ||
		    strlen(k->path) >= PATH_MAX) {
			pr_err("files image: fanotify %u: mark %zu (type %u, flags %#x, mask %#x, "
			       "path %s) is not one stasis adds", d->id, i, k->type, k->mflags,
			       k->mask, k->path ?: "none");
			return -EINVAL;
		}
	}
	return 0;
}

/* FAN_MARK_ADD of mark @k's mask, then of its ignore mask, through @path. */
static int add_mark(int fd, const FanotifyMark *k, const char *path, int target)
{
	static const unsigned int type_flag[] = { 0, FAN_MARK_MOUNT, FAN_MARK_FILESYSTEM };
	unsigned int fl = FAN_MARK_ADD | type_flag[k->type] | (k->mflags & FAN_MARK_EVICTABLE);
	if (k->mask && fanotify_mark(fd, fl, k->mask, AT_FDCWD, path))
		return pr_perror("restore fd %d: fanotify %s mark (mask %#x) on %s", target,
				 mark_kind[k->type], k->mask, k->path);
	fl |= k->mflags & (FAN_MARK_IGNORE | FAN_MARK_IGNORED_SURV_MODIFY);
	if (!(k->mflags & FAN_MARK_IGNORE))
		fl |= FAN_MARK_IGNORED_MASK;
	if (k->ignored_mask && fanotify_mark(fd, fl, k->ignored_mask, AT_FDCWD, path))
		return pr_perror("restore fd %d: fanotify %s mark (ignore mask %#x) on %s",
				 target, mark_kind[k->type], k->ignored_mask, k->path);
	return 0;
}

static int fanotify_open(const FileDesc *d, int target, int rootfd,
			 const struct blob_reader *blobs)
{
	(void)blobs;
	const FanotifyData *f = d->fanotify;
	/* the flags as they were (the group keeps FAN_CLOEXEC and FAN_NONBLOCK, fdinfo
	 * shows them); the fd is made close-on-exec at once, its status flags are the
	 * caller's */
	_cleanup_close_ int fd = fanotify_init(f->flags, f->event_flags);
	if (fd < 0)
		return pr_perror("restore fd %d: fanotify_init(%#x, %#x)", target, f->flags,
				 f->event_flags);
	if (fcntl(fd, F_SETFD, FD_CLOEXEC))
		return pr_perror("restore fd %d: FD_CLOEXEC", target);
	for (size_t i = 0; i < f->n_marks; i++) {
		const FanotifyMark *k = f->marks[i];
		char proc[64];
		const char *path = k->path;
		_cleanup_close_ int pfd = fd_mark_open(rootfd, &path, proc, target);
		if (pfd < 0 && rootfd >= 0)
			return pfd;
		int ret = add_mark(fd, k, path, target);
		if (ret)
			return ret;
	}
	return take_fd(&fd);
}

/* Read every event queued on @fd (only what FIONREAD says is there), closing the files
 * and pidfds they carry. */
static int drain(int fd)
{
	char buf[8192] __attribute__((aligned(8)));
	int q;
	while (!ioctl(fd, FIONREAD, &q) && q > 0) {
		ssize_t len = read(fd, buf, sizeof(buf));
		if (len < 0)
			return -errno;
		struct fanotify_event_metadata *ev = (struct fanotify_event_metadata *)buf;
		for (; FAN_EVENT_OK(ev, len); ev = FAN_EVENT_NEXT(ev, len)) {
			if (ev->fd >= 0)
				close(ev->fd);
			for (size_t off = ev->metadata_len; off + sizeof(struct fanotify_event_info_header)
							   <= ev->event_len;) {
				struct fanotify_event_info_header *h =
					(struct fanotify_event_info_header *)((char *)ev + off);
				if (h->len < sizeof(*h))
					break;
				if (h->info_type == FAN_EVENT_INFO_TYPE_PIDFD &&
				    off + sizeof(struct fanotify_event_info_pidfd) <= ev->event_len &&
				    ((struct fanotify_event_info_pidfd *)h)->pidfd >= 0)
					close(((struct fanotify_event_info_pidfd *)h)->pidfd);
				off += h->len;
			}
		}
	}
	return 0;
}

/* Every task rebuilt, none running: what restoring queued read away on a duplicate. */
static int fanotify_final(struct rst_ctx *c)
{
	return fd_drain_final(c->files, c->pid, FILE_KIND__FILE_FANOTIFY, drain);
}

const struct fd_ops fd_fanotify_ops = {
	.name = "fanotify",
	.kind = FILE_KIND__FILE_FANOTIFY,
	.flags = FD_OPS_BY_PATH,
	.fdinfo_keys = (const char *const[]){ "fanotify", NULL },
	.classify = fanotify_classify,
	.dump = fanotify_dump,
	.validate = fanotify_validate,
	.open = fanotify_open,
	.final = fanotify_final,
};
