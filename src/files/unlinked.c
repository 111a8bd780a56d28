/* Regular files unlinked while open (row fd_unlinked_ops; kind FILE_REG with
 * FileDesc.unlinked): their contents (at most GHOST_MAX bytes) are carried in the image.
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

char *fd_undeleted_path(const char *link)
{
	size_t keep = strlen(link) - (str_ends(link, DELETED_SUFFIX) ? strlen(DELETED_SUFFIX) : 0);
	return strndup(link, keep);
}

int fd_read_contents(const struct dump_ctx *c, const struct fd_ent *e, int dup,
		     const char *path, ProtobufCBinaryData *out)
{
	size_t len = (size_t)e->st.st_size;
	out->data = malloc(len ? len : 1);
	if (!out->data)
		return pr_errno(-ENOMEM, "fd %d of pid %d", e->fd, c->pid);
	for (size_t off = 0; off < len;) {
		ssize_t n = pread(dup, out->data + off, len - off, (off_t)off);
		if (n <= 0) {
			if (n == 0)
				errno = EIO;
			return pr_perror("read deleted file %s (fd %d of pid %d)", path, e->fd,
					 c->pid);
		}
		off += (size_t)n;
	}
	out->len = len;
	return 0;
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
	d->unlinked->mode = e->st.st_mode & 07777;
	_cleanup_close_ int dup = sys_pidfd_getfd(c->pidfd, e->fd, 0);
	if (dup < 0)
		return pr_perror("pidfd_getfd of fd %d of pid %d", e->fd, c->pid);
	return fd_read_contents(c, e, dup, d->path, &d->unlinked->data);
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

static void ghost_unlink(const Files *f)
{
	char path[PATH_MAX];
	for (size_t i = 0; i < f->n_files; i++) {
		if (fd_ops_of(f->files[i]) != &fd_unlinked_ops)
			continue;
		for (int t = 0; t < 2; t++) {
			ghost_path(f->files[i], t, path, sizeof(path));
			unlink(path);
		}
	}
}

static int unlinked_open(const FileDesc *d, int target, int rootfd)
{
	const UnlinkedFile *u = d->unlinked;
	char path[PATH_MAX];
	(void)rootfd;
	if ((d->has_size && u->data.len != d->size) || u->data.len > GHOST_MAX) {
		pr_err("files image: deleted file %s has no or inconsistent contents", d->path);
		return -EINVAL;
	}
	for (int attempt = 0; attempt < 2; attempt++) {
		ghost_path(d, attempt == 1, path, sizeof(path));
		int fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, (mode_t)(u->mode & 07777));
		if (fd < 0 && errno == EEXIST)
			break; /* made for another description of the same file */
		if (fd < 0)
			continue;
		int ret = u->data.len ? write_all(fd, u->data.data, u->data.len) : 0;
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
