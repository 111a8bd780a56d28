/* Regular files unlinked while open (row fd_unlinked_ops; kind FILE_REG with
 * FileDesc.unlinked): their contents are carried in the image's blob store (blobs.img,
 * holes kept), with their mode and owner. Also the contents helpers of memfds (memfd.c).
 *
 * Restore: recreated beside their old path (or in /tmp if that directory is gone; in the
 * task's own mount tree when its directory is on the file's mount there: in_task_root,
 * so that the file is on the task's mount again) with their owner, mode and contents,
 * under a name derived from their identity so that every description of the same file
 * opens the same new inode; the names are removed once every description is open (the
 * opened hook). */
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <linux/magic.h>
#include <sys/vfs.h>
#include <unistd.h>

#include "core/log.h"
#include "core/util.h"
#include "files/fd_ops.h"
#include "sys/syscalls.h"

bool fd_is_ghost(const struct fd_ent *e)
{
	return S_ISREG(e->st.st_mode) && e->st.st_nlink == 0 && str_ends(e->link, DELETED_SUFFIX);
}

static int unlinked_classify(const struct dump_ctx *c, struct fd_ent *e)
{
	if (!strcmp(e->link, "/secretmem (deleted)"))
		return fd_unsupported(c, e, "a memfd_secret fd (its mapped memory is carried, "
					    "not the fd)");
	if (!fd_is_ghost(e))
		return 0;
	e->kind = FILE_KIND__FILE_REG;
	int ret = fd_check_path(c, e);
	return ret ? ret : 1;
}

char *fd_undeleted_path(const char *link)
{
	size_t keep = strlen(link) - (str_ends(link, DELETED_SUFFIX) ? strlen(DELETED_SUFFIX) : 0);
	return strndup(link, keep);
}

int fd_open_contents(const struct dump_ctx *c, const struct fd_ent *e, int dup, const char *path)
{
	unsigned int acc = e->flags & O_ACCMODE;
	if (!(e->flags & (O_PATH | O_DIRECT)) && (acc == O_RDONLY || acc == O_RDWR)) {
		int fd = fcntl(dup, F_DUPFD_CLOEXEC, 0);
		return fd >= 0 ? fd : pr_perror("dup fd %d of pid %d", e->fd, c->pid);
	}
	/* the task's description cannot be read (O_WRONLY, O_PATH) or only with aligned
	 * buffers (O_DIRECT): a new read-only description of the same file */
	char name[32];
	snprintf(name, sizeof(name), "fd/%d", e->fd);
	int fd = openat(c->procfd, name, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	if (fd < 0)
		return pr_perror("open deleted file %s (fd %d of pid %d) again to read it", path,
				 e->fd, c->pid);
	struct stat st;
	if (fstat(fd, &st) < 0 || st.st_dev != e->st.st_dev || st.st_ino != e->st.st_ino) {
		close(fd);
		pr_err("fd %d of pid %d: /proc/%d/%s is no longer %s", e->fd, c->pid, c->pid, name,
		       path);
		return -ESTALE;
	}
	return fd;
}

int fd_put_contents(const struct dump_ctx *c, const struct fd_ent *e, int rfd, const char *path,
		    BlobRef **ref)
{
	char what[PATH_MAX + 64];
	snprintf(what, sizeof(what), "%s (fd %d of pid %d)", path, e->fd, c->pid);
	return blob_put_file(c->img, rfd, (uint64_t)e->st.st_size, what, ref);
}

/* The directory of @path (DIR/NAME; an O_TMPFILE file's is DIR/#INODE), in @buf. */
static const char *dir_of(const char *path, char *buf, size_t len)
{
	const char *slash = strrchr(path, '/');
	snprintf(buf, len, "%.*s", slash && slash != path ? (int)(slash - path) : 1,
		 slash ? path : "/");
	return buf;
}

/* A deleted file (or directory, regular.c) is made again in its directory: in the view
 * where that directory is on the mount the file is (the task's when it has a mount
 * namespace of its own, a copy: the file is then on the task's mount again, and an
 * O_TMPFILE file on another mount than its directory's could not be linked there). */
void fd_ghost_view(const struct dump_ctx *c, const struct fd_ent *e, FileDesc *d)
{
	char dir[PATH_MAX];
	uint64_t mnt;
	if (fd_mount_id(c, e->fd, &mnt))
		return;
	int v = path_mount_views(c->procfd, dir_of(d->path, dir, sizeof(dir)), mnt);
	d->has_in_task_root = v != 0;
	d->in_task_root = v == PATH_VIEW_TASK;
}

static int unlinked_dump(const struct dump_ctx *c, const struct fd_ent *e, FileDesc *d)
{
	d->has_size = true;
	d->size = (uint64_t)e->st.st_size;
	d->has_pos = true;
	d->pos = e->pos;
	d->path = fd_undeleted_path(e->link);
	d->unlinked = malloc(sizeof(*d->unlinked));
	if (!d->path || !d->unlinked)
		return pr_errno(-ENOMEM, "fd %d of pid %d", e->fd, c->pid);
	unlinked_file__init(d->unlinked);
	UnlinkedFile *u = d->unlinked;
	u->mode = e->st.st_mode & 07777;
	u->has_uid = u->has_gid = true;
	u->uid = e->st.st_uid;
	u->gid = e->st.st_gid;
	u->has_atime_ns = u->has_mtime_ns = true;
	u->atime_ns = fd_ts_ns(&e->st.st_atim);
	u->mtime_ns = fd_ts_ns(&e->st.st_mtim);
	fd_ghost_view(c, e, d);
	_cleanup_close_ int dup = sys_pidfd_getfd(c->pidfd, e->fd, 0);
	if (dup < 0)
		return pr_perror("pidfd_getfd of fd %d of pid %d", e->fd, c->pid);
	_cleanup_close_ int rfd = fd_open_contents(c, e, dup, d->path);
	if (rfd < 0)
		return rfd;
	return fd_put_contents(c, e, rfd, d->path, &u->blob);
}

/* ---- restore ------------------------------------------------------------------- */

static bool unlinked_owns(const FileDesc *d)
{
	return d->unlinked != NULL;
}

static int ghost_path(const FileDesc *d, bool in_tmp, char *buf, size_t len)
{
	const char *slash = strrchr(d->path, '/');
	int dirlen = slash ? (int)(slash - d->path) : 0;
	if (in_tmp || !dirlen)
		return snprintf(buf, len, "/tmp/.stasis-ghost-%llx-%llx", (unsigned long long)d->dev,
				(unsigned long long)d->ino);
	return snprintf(buf, len, "%.*s/.stasis-ghost-%llx-%llx", dirlen, d->path,
			(unsigned long long)d->dev, (unsigned long long)d->ino);
}

/* Remove @path in the mount tree of @rootfd (or this process's view: -1). */
static void unlink_in_root(int rootfd, const char *path)
{
	char dir[PATH_MAX];
	if (rootfd < 0) {
		unlink(path);
		return;
	}
	_cleanup_close_ int dfd = open_in_root(rootfd, dir_of(path, dir, sizeof(dir)),
					       O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (dfd >= 0)
		unlinkat(dfd, strrchr(path, '/') ? strrchr(path, '/') + 1 : path, 0);
}

void fd_ghost_unlink(const char *ghost, const char *orig)
{
	/* under its old name when that is free (in the same directory: a rename), so that
	 * the fd's and the mapping's names read "ORIG (deleted)" as before */
	if (orig && !renameat2(AT_FDCWD, ghost, AT_FDCWD, orig, RENAME_NOREPLACE) && !unlink(orig))
		return;
	unlink(ghost);
}

static void ghost_unlink(const Files *f)
{
	char path[PATH_MAX];
	for (size_t i = 0; i < f->n_files; i++) {
		if (fd_ops_of(f->files[i]) != &fd_unlinked_ops)
			continue;
		for (int t = 0; t < 2; t++) {
			ghost_path(f->files[i], t, path, sizeof(path));
			fd_ghost_unlink(path, t ? NULL : f->files[i]->path);
		}
	}
}

int fd_check_contents(const FileDesc *d, const BlobRef *ref, const struct blob_reader *blobs,
		      const char *what)
{
	if (!ref || !d->has_size || ref->size != d->size) {
		pr_err("files image: %s has no or inconsistent contents", what);
		return -EINVAL;
	}
	return blob_check(blobs, ref, what);
}

/* hugetlbfs has no write(): the contents go through a shared mapping of the file. */
struct huge_sink {
	uint8_t *map;
	uint64_t len;
	size_t page;
};

static int huge_put(void *arg, uint64_t pos, const void *buf, size_t len)
{
	struct huge_sink *h = arg;
	if (pos > h->len || len > h->len - pos)
		return -EIO;
	/* (a page of zeros is left untouched: not allocated, as it was not at the dump) */
	for (size_t off = 0; off < len;) {
		size_t n = MIN(len - off, h->page - (size_t)((pos + off) % h->page));
		const uint8_t *b = (const uint8_t *)buf + off;
		if (b[0] || memcmp(b, b + 1, n - 1))
			memcpy(h->map + pos + off, b, n);
		off += n;
	}
	return 0;
}

int fd_read_blob(const struct blob_reader *blobs, const BlobRef *ref, int fd, const char *what)
{
	struct statfs sf;
	if (fstatfs(fd, &sf) || sf.f_type != HUGETLBFS_MAGIC)
		return blob_read_fd(blobs, ref, fd, what);
	size_t page = (size_t)sf.f_bsize;
	if (!page || (page & (page - 1)) || ref->size > (1ull << 46) || ref->size % page) {
		pr_err("restore: %s: %llu bytes on huge pages of %zu bytes", what,
		       (unsigned long long)ref->size, page);
		return -EINVAL;
	}
	if (ftruncate(fd, (off_t)ref->size) < 0)
		return pr_perror("restore: size of %s", what);
	if (!ref->size)
		return 0;
	/* (the mapping reserves the huge pages: too few fails here, not with SIGBUS) */
	void *m = mmap(NULL, ref->size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (m == MAP_FAILED)
		return pr_perror("restore: map %s (%llu bytes of huge pages of %zu KiB)", what,
				 (unsigned long long)ref->size, page >> 10);
	struct huge_sink h = { m, ref->size, page };
	int ret = blob_read(blobs, ref, what, huge_put, &h);
	munmap(m, ref->size);
	return ret;
}

int fd_fill_contents(int fd, const BlobRef *ref, const struct blob_reader *blobs,
		     const int64_t *times_ns, bool has_owner, uid_t uid, gid_t gid, bool has_mode,
		     mode_t mode, const char *what)
{
	/* contents, owner, mode: a write or a change of owner clears the set-id bits */
	int ret = fd_read_blob(blobs, ref, fd, what);
	if (ret)
		return ret;
	struct stat st;
	if (fstat(fd, &st) < 0)
		return pr_perror("restore: fstat %s", what);
	if (has_owner && (st.st_uid != uid || st.st_gid != gid) && fchown(fd, uid, gid) < 0)
		return pr_perror("restore: give %s to %u:%u", what, (unsigned int)uid,
				 (unsigned int)gid);
	if (has_mode && fchmod(fd, mode & 07777) < 0)
		return pr_perror("restore: mode %o of %s", (unsigned int)(mode & 07777), what);
	if (times_ns) {
		/* last: writing the contents set both */
		struct timespec ts[2] = { { times_ns[0] / 1000000000, times_ns[0] % 1000000000 },
					  { times_ns[1] / 1000000000, times_ns[1] % 1000000000 } };
		if (times_ns[0] < 0 || times_ns[1] < 0) {
			pr_err("image: times of %s are negative", what);
			return -EINVAL;
		}
		if (futimens(fd, ts) < 0)
			return pr_perror("restore: times of %s", what);
	}
	return 0;
}

static int unlinked_validate(const FileDesc *d, const struct blob_reader *blobs)
{
	int ret = fd_validate_path(d, blobs);
	if (ret)
		return ret;
	char what[PATH_MAX + 32];
	snprintf(what, sizeof(what), "deleted file %s", d->path);
	return fd_check_contents(d, d->unlinked->blob, blobs, what);
}

/* The file's owner, mode and contents into @fd, just created at @path in the mount tree
 * of @rootfd (removed again if that fails). */
static int ghost_fill(const FileDesc *d, int fd, int rootfd, const char *path,
		      const struct blob_reader *blobs, int target)
{
	const UnlinkedFile *u = d->unlinked;
	char what[PATH_MAX + 48];
	snprintf(what, sizeof(what), "deleted file %s (fd %d)", d->path, target);
	int64_t times[2] = { u->atime_ns, u->mtime_ns };
	int ret = fd_fill_contents(fd, u->blob, blobs,
				   u->has_atime_ns && u->has_mtime_ns ? times : NULL,
				   u->has_uid && u->has_gid, (uid_t)u->uid,
				   (gid_t)u->gid, true, (mode_t)u->mode, what);
	close(fd);
	if (ret)
		unlink_in_root(rootfd, path);
	return ret;
}

/* A file made with O_TMPFILE (fdinfo keeps the flag; it never had a name): made again so,
 * in its directory (/tmp if that is gone), with its flags (O_APPEND once its contents are
 * in), so that it can still be given a name with linkat (whether it was made O_EXCL,
 * which forbids that, is not kept: f_flags drops O_EXCL). Its name in /proc/PID/fd is
 * "#INODE (deleted)": the new inode's. */
static int tmpfile_open(const FileDesc *d, int target, int rootfd,
			const struct blob_reader *blobs)
{
	char dir[PATH_MAX], what[PATH_MAX + 48];
	dir_of(d->path, dir, sizeof(dir));
	snprintf(what, sizeof(what), "O_TMPFILE file %s (fd %d)", d->path, target);
	int flags = (fd_open_flags(d) & ~O_APPEND) | O_TMPFILE;
	int fd = open_in_root(rootfd, dir, flags);
	if (fd < 0 && (errno == ENOENT || errno == ENOTDIR))
		fd = open_in_root(rootfd, "/tmp", flags);
	if (fd < 0)
		return pr_perror("restore %s: open O_TMPFILE in %s", what, dir);
	const UnlinkedFile *u = d->unlinked;
	int64_t times[2] = { u->atime_ns, u->mtime_ns };
	int ret = fd_fill_contents(fd, u->blob, blobs,
				   u->has_atime_ns && u->has_mtime_ns ? times : NULL,
				   u->has_uid && u->has_gid, (uid_t)u->uid, (gid_t)u->gid, true,
				   (mode_t)u->mode, what);
	if (!ret && (d->flags & O_APPEND) && fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_APPEND))
		ret = pr_perror("restore %s: O_APPEND", what);
	if (!ret && d->has_pos && lseek(fd, (off_t)d->pos, SEEK_SET) < 0)
		ret = pr_perror("restore %s: seek", what);
	if (ret) {
		close(fd);
		return ret;
	}
	return fd;
}

/* Made again beside its old path (in the mount tree of @rootfd: a task's own, or this
 * process's view) under a name the descriptions of the file share (the first makes it),
 * removed once every description is open (ghost_unlink). */
static int unlinked_open(const FileDesc *d, int target, int rootfd, const struct blob_reader *blobs)
{
	char path[PATH_MAX];
	if ((d->flags & O_TMPFILE) == O_TMPFILE)
		return tmpfile_open(d, target, rootfd, blobs);
	for (int attempt = 0; attempt < 2; attempt++) {
		ghost_path(d, attempt == 1, path, sizeof(path));
		int fd = open_in_root(rootfd, path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC);
		if (fd < 0 && errno == EEXIST)
			break; /* made for another description of the same file */
		if (fd < 0 && !attempt)
			continue; /* its directory is gone: in /tmp */
		if (fd < 0)
			return pr_perror("restore fd %d: recreate deleted file %s at %s", target,
					 d->path, path);
		int ret = ghost_fill(d, fd, rootfd, path, blobs, target);
		if (ret)
			return ret;
		break;
	}
	int fd = open_in_root(rootfd, path, fd_open_flags(d));
	if (fd < 0)
		return pr_perror("restore fd %d: recreate deleted file %s", target, d->path);
	if (d->has_pos && lseek(fd, (off_t)d->pos, SEEK_SET) < 0) {
		int e = pr_perror("restore fd %d: seek %s", target, d->path);
		close(fd);
		return e;
	}
	return fd;
}

/* Two descriptions of one O_TMPFILE file (one opened again through /proc/PID/fd) would
 * be made again as two files: refused. */
static int unlinked_merge(struct dump_ctx **procs, size_t n)
{
	for (size_t p = 0; p < n; p++)
		for (size_t i = 0; i < procs[p]->files->n_files; i++) {
			const FileDesc *a = procs[p]->files->files[i];
			if (!a->unlinked || (a->flags & O_TMPFILE) != O_TMPFILE)
				continue;
			for (size_t q = p; q < n; q++)
				for (size_t j = 0; j < procs[q]->files->n_files; j++) {
					const FileDesc *b = procs[q]->files->files[j];
					if (!b->unlinked || b->id == a->id || b->dev != a->dev ||
					    b->ino != a->ino)
						continue;
					pr_err("pid %d and pid %d hold two open file descriptions "
					       "of the O_TMPFILE file %s: not supported yet",
					       procs[p]->pid, procs[q]->pid, a->path);
					return -EOPNOTSUPP;
				}
		}
	return 0;
}

const struct fd_ops fd_unlinked_ops = {
	.name = "unlinked file",
	.kind = FILE_KIND__FILE_REG,
	.flags = FD_OPS_BY_PATH, /* (an O_TMPFILE file may be made in a task's tree) */
	.owns = unlinked_owns,
	.classify = unlinked_classify,
	.dump = unlinked_dump,
	.merge = unlinked_merge,
	.validate = unlinked_validate,
	.open = unlinked_open,
	.opened = ghost_unlink,
};
