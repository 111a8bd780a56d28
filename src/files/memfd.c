/* memfds (row fd_memfd_ops; kind FILE_REG with FileDesc.memfd, the name): contents (at
 * most GHOST_MAX bytes) and seals carried in the image, like an unlinked file's.
 *
 * Restore: a new memfd with the same name, contents, offset and seals; another access
 * mode than read-write is a new description of it opened through /proc/self/fd. */
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/log.h"
#include "core/util.h"
#include "files/fd_ops.h"
#include "sys/syscalls.h"

static int memfd_classify(const struct dump_ctx *c, struct fd_ent *e)
{
	if (!str_starts(e->link, "/memfd:"))
		return 0;
	if (!S_ISREG(e->st.st_mode) || e->st.st_size > (off_t)GHOST_MAX)
		return fd_unsupported(c, e, "a memfd larger than the 64 MiB carried in images");
	e->kind = FILE_KIND__FILE_REG;
	return 1;
}

static int memfd_dump(const struct dump_ctx *c, const struct fd_ent *e, FileDesc *d)
{
	d->has_size = true;
	d->size = (uint64_t)e->st.st_size;
	d->has_pos = true;
	d->pos = e->pos;
	_cleanup_close_ int dup = sys_pidfd_getfd(c->pidfd, e->fd, 0);
	if (dup < 0)
		return pr_perror("pidfd_getfd of fd %d of pid %d", e->fd, c->pid);
	int ret = fd_dump_contents(c, e, dup, d);
	if (ret)
		return ret;
	d->memfd = strdup(d->path + strlen("/memfd:"));
	if (!d->memfd)
		return pr_errno(-ENOMEM, "fd %d of pid %d", e->fd, c->pid);
	int seals = fcntl(dup, F_GET_SEALS);
	d->has_seals = seals > 0;
	d->seals = seals > 0 ? (uint32_t)seals : 0;
	return 0;
}

/* ---- restore ------------------------------------------------------------------- */

/* An unlinked memfd is the unlinked row's (as before the table: that check came first). */
static bool memfd_owns(const FileDesc *d)
{
	return d->memfd && !(d->has_deleted && d->deleted);
}

static int memfd_open(const FileDesc *d, int target, int rootfd)
{
	int flags = fd_open_flags(d);
	(void)rootfd;
	if (!d->has_ghost || d->ghost.len > GHOST_MAX || strlen(d->memfd) > 249) {
		pr_err("files image: memfd %s has no or inconsistent contents", d->memfd);
		return -EINVAL;
	}
	_cleanup_close_ int fd = memfd_create(d->memfd, MFD_CLOEXEC | MFD_ALLOW_SEALING);
	if (fd < 0)
		return pr_perror("restore fd %d: memfd_create %s", target, d->memfd);
	int ret = d->ghost.len ? write_all(fd, d->ghost.data, d->ghost.len) : 0;
	if (ret)
		return pr_errno(ret, "restore fd %d: fill memfd %s", target, d->memfd);
	if (d->has_seals && d->seals && fcntl(fd, F_ADD_SEALS, (int)d->seals) < 0)
		return pr_perror("restore fd %d: seal memfd %s", target, d->memfd);
	int out = fd;
	if ((flags & O_ACCMODE) != O_RDWR) {
		/* another access mode: a new description of the same memfd */
		char self[64];
		snprintf(self, sizeof(self), "/proc/self/fd/%d", fd);
		out = open(self, flags);
		if (out < 0)
			return pr_perror("restore fd %d: reopen memfd %s", target, d->memfd);
	} else {
		out = take_fd(&fd);
		if (fcntl(out, F_SETFL, flags & (O_APPEND | O_NONBLOCK)) < 0) {
			int e = pr_perror("restore fd %d: flags of memfd %s", target, d->memfd);
			close(out);
			return e;
		}
	}
	if (d->has_pos && lseek(out, (off_t)d->pos, SEEK_SET) < 0) {
		int e = pr_perror("restore fd %d: seek memfd %s", target, d->memfd);
		close(out);
		return e;
	}
	return out;
}

const struct fd_ops fd_memfd_ops = {
	.name = "memfd",
	.kind = FILE_KIND__FILE_REG,
	.owns = memfd_owns,
	.classify = memfd_classify,
	.dump = memfd_dump,
	.validate = fd_validate_path,
	.open = memfd_open,
};
