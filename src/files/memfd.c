/* memfds (row fd_memfd_ops; kind FILE_REG with FileDesc.memfd): name, seals, mode and
 * owner in the image, contents in its blob store (blobs.img, holes kept); an MFD_HUGETLB
 * one with its huge page size (made again so, its contents through a mapping).
 *
 * Restore: a new memfd with the same name, contents, owner, mode, offset and seals;
 * another access mode than read-write is a new description of it opened through
 * /proc/self/fd. */
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <linux/magic.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <unistd.h>

#include "core/log.h"
#include "core/util.h"
#include "files/fd_ops.h"
#include "sys/syscalls.h"
#include "sys/uapi.h"

unsigned int memfd_huge_flags(uint32_t kb)
{
	/* 64 KiB to 16 GiB, a power of two: the sizes MFD_HUGE_* can name */
	if (kb < 64 || kb > (16u << 20) || (kb & (kb - 1)))
		return 0;
	return MFD_HUGETLB | ((10u + (unsigned int)__builtin_ctz(kb)) << MFD_HUGE_SHIFT);
}

static int memfd_classify(const struct dump_ctx *c, struct fd_ent *e)
{
	if (!str_starts(e->link, "/memfd:"))
		return 0;
	if (!S_ISREG(e->st.st_mode))
		return fd_unsupported(c, e, "a memfd that is not a regular file");
	e->kind = FILE_KIND__FILE_REG;
	return 1;
}

static int memfd_dump(const struct dump_ctx *c, const struct fd_ent *e, FileDesc *d)
{
	d->has_size = true;
	d->size = (uint64_t)e->st.st_size;
	d->has_pos = true;
	d->pos = e->pos;
	d->path = fd_undeleted_path(e->link);
	d->memfd = malloc(sizeof(*d->memfd));
	if (!d->path || !d->memfd)
		return pr_errno(-ENOMEM, "fd %d of pid %d", e->fd, c->pid);
	memfd_data__init(d->memfd);
	MemfdData *m = d->memfd;
	m->name = strdup(d->path + strlen("/memfd:"));
	if (!m->name)
		return pr_errno(-ENOMEM, "fd %d of pid %d", e->fd, c->pid);
	m->has_mode = m->has_uid = m->has_gid = true;
	m->mode = e->st.st_mode & 07777;
	m->uid = e->st.st_uid;
	m->gid = e->st.st_gid;
	m->has_atime_ns = m->has_mtime_ns = true;
	m->atime_ns = fd_ts_ns(&e->st.st_atim);
	m->mtime_ns = fd_ts_ns(&e->st.st_mtim);
	_cleanup_close_ int dup = sys_pidfd_getfd(c->pidfd, e->fd, 0);
	if (dup < 0)
		return pr_perror("pidfd_getfd of fd %d of pid %d", e->fd, c->pid);
	struct statfs sf;
	if (!fstatfs(dup, &sf) && sf.f_type == HUGETLBFS_MAGIC) {
		m->has_huge_kb = true; /* MFD_HUGETLB */
		m->huge_kb = (uint32_t)((uint64_t)sf.f_bsize >> 10);
	}
	_cleanup_close_ int rfd = fd_open_contents(c, e, dup, d->path);
	if (rfd < 0)
		return rfd;
	int ret = fd_put_contents(c, e, rfd, d->path, &m->blob);
	if (ret)
		return ret;
	int seals = fcntl(rfd, F_GET_SEALS);
	m->has_seals = seals > 0;
	m->seals = seals > 0 ? (uint32_t)seals : 0;
	return 0;
}

/* ---- restore ------------------------------------------------------------------- */

/* Both set (a hostile image): the unlinked row's, whose check comes first. */
static bool memfd_owns(const FileDesc *d)
{
	return d->memfd && !d->unlinked;
}

static int memfd_validate(const FileDesc *d, const struct blob_reader *blobs)
{
	int ret = fd_validate_path(d, blobs);
	if (ret)
		return ret;
	const MemfdData *m = d->memfd;
	if (!m->name || strlen(m->name) > 249) {
		pr_err("files image: memfd %u has no or a too long name", d->id);
		return -EINVAL;
	}
	if (m->has_huge_kb && !memfd_huge_flags(m->huge_kb)) {
		pr_err("files image: memfd %s has huge pages of %u KiB", m->name, m->huge_kb);
		return -EINVAL;
	}
	char what[300];
	snprintf(what, sizeof(what), "memfd %s", m->name);
	return fd_check_contents(d, m->blob, blobs, what);
}

static int memfd_open(const FileDesc *d, int target, int rootfd, const struct blob_reader *blobs)
{
	const MemfdData *m = d->memfd;
	int flags = fd_open_flags(d);
	(void)rootfd;
	unsigned int huge = m->has_huge_kb ? memfd_huge_flags(m->huge_kb) : 0;
	_cleanup_close_ int fd = memfd_create(m->name, MFD_CLOEXEC | MFD_ALLOW_SEALING | huge);
	if (fd < 0)
		return pr_perror("restore fd %d: memfd_create %s", target, m->name);
	char what[300];
	snprintf(what, sizeof(what), "memfd %s (fd %d)", m->name, target);
	int64_t times[2] = { m->atime_ns, m->mtime_ns };
	int ret = fd_fill_contents(fd, m->blob, blobs,
				   m->has_atime_ns && m->has_mtime_ns ? times : NULL,
				   m->has_uid && m->has_gid, (uid_t)m->uid,
				   (gid_t)m->gid, m->has_mode, (mode_t)m->mode, what);
	if (ret)
		return ret;
	if (m->has_seals && m->seals && fcntl(fd, F_ADD_SEALS, (int)m->seals) < 0)
		return pr_perror("restore fd %d: seal memfd %s", target, m->name);
	int out = fd;
	if ((flags & O_ACCMODE) != O_RDWR) {
		/* another access mode: a new description of the same memfd */
		char self[64];
		snprintf(self, sizeof(self), "/proc/self/fd/%d", fd);
		out = open(self, flags);
		if (out < 0)
			return pr_perror("restore fd %d: reopen memfd %s", target, m->name);
	} else {
		out = take_fd(&fd);
		if (fcntl(out, F_SETFL, flags & (O_APPEND | O_NONBLOCK)) < 0) {
			int e = pr_perror("restore fd %d: flags of memfd %s", target, m->name);
			close(out);
			return e;
		}
	}
	if (d->has_pos && lseek(out, (off_t)d->pos, SEEK_SET) < 0) {
		int e = pr_perror("restore fd %d: seek memfd %s", target, m->name);
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
	.validate = memfd_validate,
	.open = memfd_open,
};
