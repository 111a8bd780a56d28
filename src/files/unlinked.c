/* Regular files unlinked while open (row fd_unlinked_ops; kind FILE_REG with
 * FileDesc.deleted): their contents (at most GHOST_MAX bytes) are carried in the image.
 *
 * Restore: recreated beside their old path (or in /tmp if that directory is gone) with
 * their contents, under a name derived from their identity so that every description of
 * the same file opens the same new inode; the names are removed once every description
 * is open (the opened hook). */
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
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
	if (!fd_is_ghost(e))
		return 0;
	e->kind = FILE_KIND__FILE_REG;
	int ret = fd_check_path(c, e);
	return ret ? ret : 1;
}

int fd_dump_contents(const struct dump_ctx *c, const struct fd_ent *e, int dup, FileDesc *d)
{
	size_t len = (size_t)e->st.st_size;
	size_t keep = strlen(e->link) - (str_ends(e->link, DELETED_SUFFIX) ? strlen(DELETED_SUFFIX)
									    : 0);
	d->path = strndup(e->link, keep);
	d->has_mode = true;
	d->mode = e->st.st_mode & 07777;
	d->has_ghost = true;
	d->ghost.data = malloc(len ? len : 1);
	if (!d->path || !d->ghost.data)
		return pr_errno(-ENOMEM, "fd %d of pid %d", e->fd, c->pid);
	for (size_t off = 0; off < len;) {
		ssize_t n = pread(dup, d->ghost.data + off, len - off, (off_t)off);
		if (n <= 0) {
			if (n == 0)
				errno = EIO;
			return pr_perror("read deleted file %s (fd %d of pid %d)", d->path, e->fd,
					 c->pid);
		}
		off += (size_t)n;
	}
	d->ghost.len = len;
	return 0;
}

static int unlinked_dump(const struct dump_ctx *c, const struct fd_ent *e, FileDesc *d)
{
	d->has_size = true;
	d->size = (uint64_t)e->st.st_size;
	d->has_pos = true;
	d->pos = e->pos;
	d->has_deleted = d->deleted = true;
	_cleanup_close_ int dup = sys_pidfd_getfd(c->pidfd, e->fd, 0);
	if (dup < 0)
		return pr_perror("pidfd_getfd of fd %d of pid %d", e->fd, c->pid);
	return fd_dump_contents(c, e, dup, d);
}

/* ---- restore ------------------------------------------------------------------- */

static bool unlinked_owns(const FileDesc *d)
{
	return d->has_deleted && d->deleted;
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

static void ghost_unlink(const Files *f)
{
	char path[PATH_MAX];
	for (size_t i = 0; i < f->n_files; i++) {
		if (f->files[i]->kind != FILE_KIND__FILE_REG || !unlinked_owns(f->files[i]))
			continue;
		for (int t = 0; t < 2; t++) {
			ghost_path(f->files[i], t, path, sizeof(path));
			unlink(path);
		}
	}
}

static int unlinked_open(const FileDesc *d, int target, int rootfd)
{
	char path[PATH_MAX];
	(void)rootfd;
	if (!d->has_ghost || (d->has_size && d->ghost.len != d->size) || d->ghost.len > GHOST_MAX) {
		pr_err("files image: deleted file %s has no or inconsistent contents", d->path);
		return -EINVAL;
	}
	for (int attempt = 0; attempt < 2; attempt++) {
		ghost_path(d, attempt == 1, path, sizeof(path));
		int fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, (mode_t)(d->mode & 07777));
		if (fd < 0 && errno == EEXIST)
			break; /* made for another description of the same file */
		if (fd < 0)
			continue;
		int ret = d->ghost.len ? write_all(fd, d->ghost.data, d->ghost.len) : 0;
		close(fd);
		if (ret) {
			unlink(path);
			return pr_errno(ret, "restore fd %d: write deleted file %s", target, d->path);
		}
		break;
	}
	int fd = open(path, fd_open_flags(d));
	if (fd < 0)
		return pr_perror("restore fd %d: recreate deleted file %s", target, d->path);
	if (d->has_pos && lseek(fd, (off_t)d->pos, SEEK_SET) < 0) {
		int e = pr_perror("restore fd %d: seek %s", target, d->path);
		close(fd);
		return e;
	}
	return fd;
}

const struct fd_ops fd_unlinked_ops = {
	.name = "unlinked file",
	.kind = FILE_KIND__FILE_REG,
	.owns = unlinked_owns,
	.classify = unlinked_classify,
	.dump = unlinked_dump,
	.validate = fd_validate_path,
	.open = unlinked_open,
	.opened = ghost_unlink,
};
