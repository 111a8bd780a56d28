/* Files opened by path: regular files, directories, block and character devices, named
 * FIFOs (rows fd_reg_ops, fd_dir_ops, fd_blk_ops, fd_chr_ops, fd_fifo_ops).
 *
 * Dump: the path is the link of /proc/PID/fd/N; which view it is in (the dumper's or
 * the task's root) is recorded when one of them shows the same inode (path_view). A
 * regular file keeps its size (checked at restore) and offset, a directory its offset.
 *
 * Restore: open(2) with the dumped flags (never creating anything), or openat2 with
 * RESOLVE_IN_ROOT inside a task's mount tree; the type must still match, a changed size
 * or device number is warned about. A FIFO is opened through a keeper so that a missing
 * peer does not block. */
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "core/log.h"
#include "core/util.h"
#include "files/fd_ops.h"
#include "proc/fhpath.h"
#include "sys/syscalls.h"

/* Flags never passed to open() at restore: creation must not happen, and the temporary
 * fd is always close-on-exec (the final cloexec comes from Fd.cloexec). */
#define OPEN_DROP (O_CREAT | O_TRUNC | O_EXCL | (O_TMPFILE & ~O_DIRECTORY) | O_CLOEXEC)

int fd_open_flags(const FileDesc *d)
{
	int flags = (int)(d->flags & ~(unsigned int)OPEN_DROP) | O_CLOEXEC | O_NOCTTY;
	/* (O_DIRECTORY on a regular file is what is left of O_TMPFILE) */
	return d->kind == FILE_KIND__FILE_REG ? flags & ~O_DIRECTORY : flags;
}

int fd_check_path(const struct dump_ctx *c, const struct fd_ent *e)
{
	if (str_ends(e->link, DELETED_SUFFIX) && !fd_is_ghost(e) &&
	    !(S_ISDIR(e->st.st_mode) && e->st.st_nlink == 0)) {
		pr_err("fd %d of pid %d refers to deleted file %s: not supported yet", e->fd,
		       c->pid, e->link);
		return -EOPNOTSUPP;
	}
	if (e->link[0] != '/')
		return fd_unsupported(c, e, "a file on an internal filesystem");
	return 0;
}

int fd_validate_path(const FileDesc *d, const struct blob_reader *blobs)
{
	(void)blobs;
	if (!d->path || d->path[0] != '/') {
		pr_err("files image: file %u has no absolute path", d->id);
		return -EINVAL;
	}
	return 0;
}

/* ---- dump ---------------------------------------------------------------------- */

static int claim_path(const struct dump_ctx *c, struct fd_ent *e, FileKind kind)
{
	e->kind = kind;
	int ret = fd_check_path(c, e);
	return ret ? ret : 1;
}

static int fifo_classify(const struct dump_ctx *c, struct fd_ent *e)
{
	return S_ISFIFO(e->st.st_mode) ? claim_path(c, e, FILE_KIND__FILE_FIFO) : 0;
}

static int reg_classify(const struct dump_ctx *c, struct fd_ent *e)
{
	return S_ISREG(e->st.st_mode) ? claim_path(c, e, FILE_KIND__FILE_REG) : 0;
}

static int dir_classify(const struct dump_ctx *c, struct fd_ent *e)
{
	return S_ISDIR(e->st.st_mode) ? claim_path(c, e, FILE_KIND__FILE_DIR) : 0;
}

static int blk_classify(const struct dump_ctx *c, struct fd_ent *e)
{
	return S_ISBLK(e->st.st_mode) ? claim_path(c, e, FILE_KIND__FILE_BLK) : 0;
}

static int chr_classify(const struct dump_ctx *c, struct fd_ent *e)
{
	return S_ISCHR(e->st.st_mode) ? claim_path(c, e, FILE_KIND__FILE_CHR) : 0;
}

/* The mount namespace inode of task @c (its /proc directory), 0 if unknown. */
static uint64_t mntns_of(const struct dump_ctx *c)
{
	struct stat st;
	return fstatat(c->procfd, "ns/mnt", &st, 0) ? 0 : st.st_ino;
}

/* Fd @e of task @c (in a mount namespace of its own) is on mount @mnt, which is no mount
 * of its namespace: the nearest ancestor in another namespace of the tree whose path
 * @e->link names that mount (FileDesc.mnt_pid), or NULL (stasis's, or none). */
static const struct dump_ctx *mount_owner(const struct dump_ctx *c, const struct fd_ent *e,
					  uint64_t mnt)
{
	uint64_t own = mntns_of(c);
	for (const struct dump_ctx *a = c->parent; a; a = a->parent) {
		uint64_t ns = mntns_of(a);
		if (!ns || ns == fd_dumper_mntns())
			return NULL;
		if (ns != own && (path_mount_views(a->procfd, e->link, mnt) & PATH_VIEW_TASK))
			return a;
	}
	return NULL;
}

/* The view the path of fd @e of task @c names its file in: 1 the task's, 0 stasis's, -1
 * neither. A task with a mount namespace of its own (a copy of another's: the same files
 * through other mounts) has it opened again through the mount the fd is on: its own
 * namespace's (the task, or its rebuilt tree, opens it), an ancestor's (opened in that
 * one's rebuilt tree: d->mnt_pid), else stasis's (a file opened before the tree made its
 * namespaces, on a mount of the dumper's: stasis opens it). */
static int task_path_view(const struct dump_ctx *c, const struct fd_ent *e, FileDesc *d)
{
	int v = path_views(c->procfd, e->link, e->st.st_dev, e->st.st_ino);
	uint64_t mnt;
	if ((v & PATH_VIEW_TASK) && fd_own_mntns(c) && !fd_mount_id(c, e->fd, &mnt)) {
		if (path_mount_views(c->procfd, e->link, mnt) & PATH_VIEW_TASK)
			return 1;
		const struct dump_ctx *a = mount_owner(c, e, mnt);
		if (a) {
			d->has_mnt_pid = true;
			d->mnt_pid = a->pid;
			return 1;
		}
	}
	if (v & PATH_VIEW_MINE)
		return 0;
	return v & PATH_VIEW_TASK ? 1 : -1;
}

static int path_dump(const struct dump_ctx *c, const struct fd_ent *e, FileDesc *d)
{
	d->path = strdup(e->link);
	if (!d->path)
		return pr_errno(-ENOMEM, "fd %d of pid %d", e->fd, c->pid);
	/* unknown (neither view has that inode: renamed, over-mounted) is left unset */
	int view = task_path_view(c, e, d);
	if (view < 0) {
		/* a path of a detached mount: named in stasis's view by its file handle */
		char rel[32], *found = NULL;
		snprintf(rel, sizeof(rel), "fd/%d", e->fd);
		_cleanup_close_ int pfd = openat(c->procfd, rel, O_PATH | O_CLOEXEC);
		if (pfd >= 0 && !fh_path(pfd, &found)) {
			pr_info("fd %d of pid %d: %s is %s in stasis's view (found by its file "
				"handle)", e->fd, c->pid, d->path, found);
			free(d->path);
			d->path = found;
			view = 0;
		}
	}
	if (view < 0 && S_ISREG(e->st.st_mode)) {
		/* reopening the path would give another file, or none */
		pr_err("fd %d of pid %d: no path reaches %s any more (a mount hides it, or it "
		       "was moved where stasis cannot see): not supported",
		       e->fd, c->pid, e->link);
		return -EOPNOTSUPP;
	}
	d->has_in_task_root = view >= 0;
	d->in_task_root = view == 1;
	return 0;
}

static int reg_dump(const struct dump_ctx *c, const struct fd_ent *e, FileDesc *d)
{
	d->has_size = true;
	d->size = (uint64_t)e->st.st_size;
	d->has_pos = true;
	d->pos = e->pos;
	return path_dump(c, e, d);
}

static int dir_dump(const struct dump_ctx *c, const struct fd_ent *e, FileDesc *d)
{
	d->has_pos = true;
	d->pos = e->pos;
	if (str_ends(e->link, DELETED_SUFFIX) && e->st.st_nlink == 0) {
		/* removed while open: made again at restore, at its old path */
		d->path = fd_undeleted_path(e->link);
		d->removed_dir = malloc(sizeof(*d->removed_dir));
		if (!d->path || !d->removed_dir)
			return pr_errno(-ENOMEM, "fd %d of pid %d", e->fd, c->pid);
		removed_dir__init(d->removed_dir);
		d->removed_dir->mode = e->st.st_mode & 07777;
		d->removed_dir->has_uid = d->removed_dir->has_gid = true;
		d->removed_dir->uid = e->st.st_uid;
		d->removed_dir->gid = e->st.st_gid;
		fd_ghost_view(c, e, d);
		return 0;
	}
	return path_dump(c, e, d);
}

/* ---- restore ------------------------------------------------------------------- */

static bool mode_matches(FileKind k, mode_t m)
{
	switch (k) {
	case FILE_KIND__FILE_REG: return S_ISREG(m);
	case FILE_KIND__FILE_DIR: return S_ISDIR(m);
	case FILE_KIND__FILE_CHR: return S_ISCHR(m);
	case FILE_KIND__FILE_BLK: return S_ISBLK(m);
	default: return false;
	}
}

/* Open @d's path: in this process's view (@rootfd -1), or inside the mount tree whose
 * root directory is @rootfd (a restored task's /proc/PID/root: its mount namespace). */
static int path_open(const FileDesc *d, int target, int rootfd, const struct blob_reader *blobs)
{
	(void)blobs;
	int flags = fd_open_flags(d);
	if (d->kind == FILE_KIND__FILE_DIR && d->removed_dir) {
		const RemovedDir *r = d->removed_dir;
		return removed_dir_open(rootfd < 0 ? AT_FDCWD : rootfd, d->path, r->mode,
					r->has_uid && r->has_gid, r->uid, r->gid,
					flags & ~O_CLOEXEC, "directory");
	}
	_cleanup_close_ int fd = open_in_root(rootfd, d->path, flags);
	if (fd < 0)
		return pr_perror("restore fd %d: cannot open %s", target, d->path);
	struct stat st;
	if (fstat(fd, &st))
		return pr_perror("restore fd %d: fstat %s", target, d->path);
	if (!mode_matches(d->kind, st.st_mode)) {
		pr_err("restore fd %d: %s changed type since the dump", target, d->path);
		return -EINVAL;
	}
	if (d->kind == FILE_KIND__FILE_REG && d->has_size && (uint64_t)st.st_size != d->size)
		pr_warn("restore fd %d: %s has size %lld, was %llu at dump", target, d->path,
			(long long)st.st_size, (unsigned long long)d->size);
	if ((d->kind == FILE_KIND__FILE_CHR || d->kind == FILE_KIND__FILE_BLK) && d->has_rdev &&
	    st.st_rdev != d->rdev)
		pr_warn("restore fd %d: %s is device %u:%u, was %u:%u at dump", target, d->path,
			major(st.st_rdev), minor(st.st_rdev), major(d->rdev), minor(d->rdev));
	if (d->kind == FILE_KIND__FILE_REG && d->has_pos && !(d->flags & O_PATH) &&
	    lseek(fd, (off_t)d->pos, SEEK_SET) < 0)
		return pr_perror("restore fd %d: cannot seek %s to %llu", target, d->path,
				 (unsigned long long)d->pos);
	return take_fd(&fd);
}

/* open() a named FIFO without blocking on a missing peer: an O_RDWR keeper makes both
 * a reader and a writer exist while the real open (O_NONBLOCK) happens; the status
 * flags are set back to the dumped ones afterwards. Always in stasis's own view. */
static int fifo_open(const FileDesc *d, int target, int rootfd, const struct blob_reader *blobs)
{
	(void)blobs;
	(void)rootfd;
	_cleanup_close_ int keep = open(d->path, O_RDWR | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
	if (keep < 0)
		return pr_perror("restore fd %d: cannot open FIFO %s", target, d->path);
	struct stat st;
	if (fstat(keep, &st))
		return pr_perror("restore fd %d: fstat %s", target, d->path);
	if (!S_ISFIFO(st.st_mode)) {
		pr_err("restore fd %d: %s is no longer a FIFO", target, d->path);
		return -EINVAL;
	}
	int fd = open(d->path, fd_open_flags(d) | O_NONBLOCK);
	if (fd < 0)
		return pr_perror("restore fd %d: cannot open FIFO %s", target, d->path);
	return fd;
}

/* A regular file that is neither unlinked nor a memfd (unlinked.c, memfd.c). */
static bool reg_owns(const FileDesc *d)
{
	return !d->unlinked && !d->memfd;
}

const struct fd_ops fd_reg_ops = {
	.name = "file",
	.kind = FILE_KIND__FILE_REG,
	.flags = FD_OPS_BY_PATH,
	.owns = reg_owns,
	.classify = reg_classify,
	.dump = reg_dump,
	.validate = fd_validate_path,
	.open = path_open,
};

const struct fd_ops fd_dir_ops = {
	.name = "directory",
	.kind = FILE_KIND__FILE_DIR,
	.flags = FD_OPS_BY_PATH,
	.classify = dir_classify,
	.dump = dir_dump,
	.validate = fd_validate_path,
	.open = path_open,
};

const struct fd_ops fd_blk_ops = {
	.name = "block device",
	.kind = FILE_KIND__FILE_BLK,
	.flags = FD_OPS_BY_PATH,
	.classify = blk_classify,
	.dump = path_dump,
	.validate = fd_validate_path,
	.open = path_open,
};

const struct fd_ops fd_chr_ops = {
	.name = "character device",
	.kind = FILE_KIND__FILE_CHR,
	.flags = FD_OPS_BY_PATH,
	.classify = chr_classify,
	.dump = path_dump,
	.validate = fd_validate_path,
	.open = path_open,
};

/* Opened in stasis's view only: not FD_OPS_BY_PATH. */
const struct fd_ops fd_fifo_ops = {
	.name = "FIFO",
	.kind = FILE_KIND__FILE_FIFO,
	.classify = fifo_classify,
	.dump = path_dump,
	.validate = fd_validate_path,
	.open = fifo_open,
};
