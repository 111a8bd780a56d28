/* Pipes (row fd_pipe_ops, kind FILE_PIPE, FileDesc.pipe): rebuilt when both ends are in
 * the dumped tree, with their size and the bytes queued in them; a pipe whose other end
 * is closed everywhere (no writer: poll says POLLHUP on the read end; no reader: POLLERR
 * on the write end) is "widowed": rebuilt with that end closed again.
 *
 * Dump: the queued bytes are copied without consuming them: tee(2) into a temporary
 * pipe as large as the source, then read from that one. A pipe with one end in the task
 * and the other elsewhere is external (the group hook); the merge hook makes it a pipe
 * again when the other end is in another process of the tree.
 *
 * Restore: pipe2, F_SETPIPE_SZ, the data written back, both ends made at once: in the
 * child when both are in the task (open_task), else in stasis for the tree (open_tree). */
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/log.h"
#include "core/util.h"
#include "files/fd_ops.h"
#include "sys/syscalls.h"

/* Images are untrusted: bound what a pipe may ask for (the kernel's own limit for root
 * is 2^31; no real pipe_max_size is anywhere near this). */
#define PIPE_IMG_MAX (1u << 30)

static int pipe_classify(const struct dump_ctx *c, struct fd_ent *e)
{
	(void)c;
	if (!S_ISFIFO(e->st.st_mode) || !str_starts(e->link, "pipe:["))
		return 0;
	e->kind = FILE_KIND__FILE_PIPE;
	return 1;
}

/* Is the other end of pipe end @dup (opened @flags) closed everywhere? 1, 0, or -errno. */
static int pipe_widowed_fd(pid_t pid, int fd, int dup, unsigned int flags)
{
	bool reader = (flags & O_ACCMODE) == O_RDONLY;
	struct pollfd p = { .fd = dup, .events = reader ? POLLIN : POLLOUT };
	if (poll(&p, 1, 0) < 0)
		return pr_perror("poll fd %d of pid %d", fd, pid);
	return (p.revents & (reader ? POLLHUP : POLLERR)) != 0;
}

/* Is the other end of pipe end @e closed everywhere (not just outside this task)? 1, 0,
 * or -errno. */
static int pipe_widowed(const struct dump_ctx *c, const struct fd_ent *e)
{
	_cleanup_close_ int dup = fd_dup(c, e);
	if (dup < 0)
		return dup;
	return pipe_widowed_fd(c->pid, e->fd, dup, e->flags);
}

/* A pipe is rebuilt only if it has exactly one read and one write description, both in
 * this task, or one whose other end is closed everywhere; with one side only, the other
 * side is outside: it is external. */
static int pipe_group(const struct dump_ctx *c, struct fd_ent *ents, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		struct fd_ent *e = &ents[i];
		if (e->owner != i || e->kind != FILE_KIND__FILE_PIPE)
			continue;
		unsigned int readers = 0, writers = 0, other = 0;
		for (size_t j = 0; j < n; j++) {
			const struct fd_ent *o = &ents[j];
			if (o->owner != j || o->kind != FILE_KIND__FILE_PIPE ||
			    o->st.st_ino != e->st.st_ino || o->st.st_dev != e->st.st_dev)
				continue;
			switch (o->flags & O_ACCMODE) {
			case O_RDONLY: readers++; break;
			case O_WRONLY: writers++; break;
			default: other++; break;
			}
		}
		if (other || (readers && writers && (readers > 1 || writers > 1))) {
			pr_err("fd %d of pid %d is a pipe (%s) opened several times or read-write "
			       "(%u readers, %u writers): not supported yet",
			       e->fd, c->pid, e->link, readers, writers);
			return -EOPNOTSUPP;
		}
		int widowed = !readers || !writers ? pipe_widowed(c, e) : 0;
		if (widowed < 0)
			return widowed;
		if (!widowed && (!readers || !writers)) {
			/* every description of this pipe in the task gets the same answer */
			for (size_t j = i; j < n; j++)
				if (ents[j].kind == FILE_KIND__FILE_PIPE &&
				    ents[j].st.st_ino == e->st.st_ino &&
				    ents[j].st.st_dev == e->st.st_dev) {
					ents[j].kind = FILE_KIND__FILE_EXTERNAL;
					ents[j].ops = &fd_external_ops;
				}
		}
	}
	return 0;
}

/* Copy the bytes queued in pipe @dup (fd @fd of the task) without consuming them: tee(2)
 * them into a temporary pipe as large as the source, then read that one. */
static int pipe_peek(pid_t pid, int fd, int dup, uint32_t size, ProtobufCBinaryData *out)
{
	int queued = 0;

	if (ioctl(dup, FIONREAD, &queued) < 0)
		return pr_perror("FIONREAD on fd %d of pid %d", fd, pid);
	if (queued <= 0)
		return 0;
	int p[2];
	if (pipe2(p, O_CLOEXEC | O_NONBLOCK))
		return pr_perror("pipe2");
	_cleanup_close_ int rd = p[0];
	_cleanup_close_ int wr = p[1];
	if (fcntl(wr, F_SETPIPE_SZ, size) < 0)
		return pr_perror("cannot size a temporary pipe to %u bytes for fd %d of pid %d",
				 size, fd, pid);
	ssize_t n = tee(dup, wr, (size_t)queued, SPLICE_F_NONBLOCK);
	if (n < 0)
		return pr_perror("tee from fd %d of pid %d", fd, pid);
	if (n != queued) {
		pr_err("tee from fd %d of pid %d copied %zd of %d queued bytes", fd, pid, n,
		       queued);
		return -EIO;
	}
	_cleanup_free_ uint8_t *buf = malloc((size_t)queued);
	if (!buf)
		return pr_errno(-ENOMEM, "pipe data of fd %d of pid %d", fd, pid);
	int ret = read_all(rd, buf, (size_t)queued);
	if (ret)
		return pr_errno(ret, "reading the pipe data of fd %d of pid %d", fd, pid);
	out->data = steal_ptr(&buf);
	out->len = (size_t)queued;
	return 0;
}

int fd_pipe_dump_fd(pid_t pid, int fd, int dup, unsigned int flags, uint64_t ino, FileDesc *d)
{
	d->pipe = malloc(sizeof(*d->pipe));
	if (!d->pipe)
		return pr_errno(-ENOMEM, "fd %d of pid %d", fd, pid);
	pipe_data__init(d->pipe);
	d->pipe->ino = ino;
	int sz = fcntl(dup, F_GETPIPE_SZ);
	if (sz < 0)
		return pr_perror("F_GETPIPE_SZ on fd %d of pid %d", fd, pid);
	d->pipe->size = (uint32_t)sz;
	int widowed = pipe_widowed_fd(pid, fd, dup, flags);
	if (widowed < 0)
		return widowed;
	d->pipe->has_widowed = d->pipe->widowed = widowed;
	if ((flags & O_ACCMODE) != O_RDONLY)
		return 0;
	int ret = pipe_peek(pid, fd, dup, (uint32_t)sz, &d->pipe->data);
	if (ret)
		return ret;
	d->pipe->has_data = d->pipe->data.len > 0;
	return 0;
}

static int pipe_dump(const struct dump_ctx *c, const struct fd_ent *e, FileDesc *d)
{
	_cleanup_close_ int dup = fd_dup(c, e);
	if (dup < 0)
		return dup;
	return fd_pipe_dump_fd(c->pid, e->fd, dup, e->flags, e->st.st_ino, d);
}

static bool is_pipe_link(const FileDesc *d)
{
	return d->link && str_starts(d->link, "pipe:[");
}

/* Make an external pipe end whose peer lives in another process of the tree a FILE_PIPE
 * with its size and (read end) queued data. */
static int pipe_end_adopt(struct dump_ctx *c, FileDesc *d, int fd)
{
	struct fd_ent e = { .fd = fd, .flags = d->flags, .link = d->link };
	e.st.st_ino = d->ino;
	d->kind = FILE_KIND__FILE_PIPE;
	return pipe_dump(c, &e, d);
}

/* Pipes with their ends in different processes. */
static int pipe_merge(struct dump_ctx **procs, size_t n)
{
	int ret = 0;
	for (size_t p = 0; p < n && !ret; p++) {
		Files *f = procs[p]->files;
		for (size_t i = 0; i < f->n_files && !ret; i++) {
			FileDesc *d = f->files[i];
			if (d->kind != FILE_KIND__FILE_EXTERNAL || !is_pipe_link(d))
				continue;
			unsigned want = (d->flags & O_ACCMODE) == O_RDONLY ? O_WRONLY : O_RDONLY;
			bool peer = false;
			for (size_t q = 0; q < n && !peer; q++)
				for (size_t j = 0; j < procs[q]->files->n_files; j++) {
					const FileDesc *o = procs[q]->files->files[j];
					if (is_pipe_link(o) && o->ino == d->ino &&
					    (o->flags & O_ACCMODE) == want) {
						peer = true;
						break;
					}
				}
			if (peer)
				ret = pipe_end_adopt(procs[p], d, fd_desc_fd(f, i));
		}
	}
	return ret;
}

/* ---- restore ------------------------------------------------------------------- */

static int pipe_validate(const FileDesc *d, const struct blob_reader *blobs)
{
	(void)blobs;
	if (!d->pipe || d->pipe->size > PIPE_IMG_MAX ||
	    (d->pipe->has_data && d->pipe->data.len > d->pipe->size)) {
		pr_err("files image: pipe %u has bad or missing pipe data", d->id);
		return -EINVAL;
	}
	return 0;
}

/* The other end of pipe description @i: a FILE_PIPE with the same inode and the opposite
 * access mode. */
static int pipe_peer(const Files *f, size_t i, size_t *peer)
{
	const FileDesc *d = f->files[i];
	unsigned int want = (d->flags & O_ACCMODE) == O_RDONLY ? O_WRONLY : O_RDONLY;
	ssize_t found = -1;

	if ((d->flags & O_ACCMODE) != O_RDONLY && (d->flags & O_ACCMODE) != O_WRONLY)
		goto bad;
	for (size_t j = 0; j < f->n_files; j++) {
		const FileDesc *o = f->files[j];
		if (j == i || o->kind != FILE_KIND__FILE_PIPE || o->pipe->ino != d->pipe->ino)
			continue;
		if ((o->flags & O_ACCMODE) != want || found >= 0)
			goto bad;
		found = (ssize_t)j;
	}
	if (found < 0)
		goto bad;
	*peer = (size_t)found;
	return 0;
bad:
	pr_err("files image: pipe %llu (fd %d) does not have exactly one read and one write "
	       "end", (unsigned long long)d->pipe->ino, fd_desc_fd(f, i));
	return -EINVAL;
}

/* A widowed pipe end: a new pipe, sized and filled, whose other end is closed at once. */
static int pipe_open_widowed(const FileDesc *d, int target)
{
	int p[2];
	bool reader = (d->flags & O_ACCMODE) == O_RDONLY;
	if (pipe2(p, O_CLOEXEC | O_NONBLOCK))
		return pr_perror("restore fd %d: pipe2", target);
	_cleanup_close_ int rd = p[0];
	_cleanup_close_ int wr = p[1];
	if (d->pipe->size && fcntl(wr, F_SETPIPE_SZ, d->pipe->size) < 0)
		return pr_perror("restore fd %d: cannot size pipe %llu to %u bytes", target,
				 (unsigned long long)d->pipe->ino, d->pipe->size);
	if (reader && d->pipe->has_data && d->pipe->data.len) {
		int ret = write_all(wr, d->pipe->data.data, d->pipe->data.len);
		if (ret)
			return pr_errno(ret, "restore fd %d: refill pipe %llu", target,
					(unsigned long long)d->pipe->ino);
	}
	return reader ? take_fd(&rd) : take_fd(&wr);
}

/* Create the pipe for descriptions @i and its peer, fill it, stage both ends. */
static int pipe_open_task(struct fd_rst *s, size_t i)
{
	const Files *f = s->f;
	if (f->files[i]->pipe->widowed) {
		int tmp = pipe_open_widowed(f->files[i], fd_desc_fd(f, i));
		if (tmp < 0)
			return tmp;
		int r = fd_stage(tmp, s->stage_lo, fd_desc_fd(f, i), f->files[i]->link ?: "pipe");
		if (r < 0)
			return r;
		s->staged[i] = r;
		return 0;
	}
	size_t peer;
	int ret = pipe_peer(f, i, &peer);
	if (ret)
		return ret;
	bool i_reads = (f->files[i]->flags & O_ACCMODE) == O_RDONLY;
	size_t ri = i_reads ? i : peer, wi = i_reads ? peer : i;
	const PipeData *pd = f->files[ri]->pipe;
	int rfd = fd_desc_fd(f, ri);

	int p[2];
	if (pipe2(p, O_CLOEXEC | O_NONBLOCK))
		return pr_perror("restore fd %d: pipe2", rfd);
	_cleanup_close_ int rd = p[0];
	_cleanup_close_ int wr = p[1];
	if (pd->size && fcntl(wr, F_SETPIPE_SZ, pd->size) < 0)
		return pr_perror("restore fd %d: cannot size pipe %llu to %u bytes", rfd,
				 (unsigned long long)pd->ino, pd->size);
	if (pd->has_data && pd->data.len) {
		ret = write_all(wr, pd->data.data, pd->data.len);
		if (ret)
			return pr_errno(ret, "restore fd %d: cannot refill pipe %llu with %zu bytes",
					rfd, (unsigned long long)pd->ino, pd->data.len);
	}
	ret = fd_stage(take_fd(&rd), s->stage_lo, rfd, f->files[ri]->link ?: "pipe");
	if (ret < 0)
		return ret;
	s->staged[ri] = ret;
	ret = fd_stage(take_fd(&wr), s->stage_lo, fd_desc_fd(f, wi),
		       f->files[wi]->link ?: "pipe");
	if (ret < 0)
		return ret;
	s->staged[wi] = ret;
	return 0;
}

static const FileDesc *tree_pipe_peer(const struct fd_tree *t, const FileDesc *d)
{
	unsigned want = (d->flags & O_ACCMODE) == O_RDONLY ? O_WRONLY : O_RDONLY;
	for (size_t p = 0; p < t->n; p++)
		for (size_t i = 0; i < t->f[p]->n_files; i++) {
			const FileDesc *o = t->f[p]->files[i];
			if (o->kind == FILE_KIND__FILE_PIPE && o->pipe && o->pipe->ino == d->pipe->ino &&
			    (o->flags & O_ACCMODE) == want)
				return o;
		}
	return NULL;
}

/* Both ends of pipe @d, for the tree, with their status flags. */
static int pipe_open_tree(struct fd_tree *t, const FileDesc *d)
{
	if (d->pipe->widowed) {
		int fd = pipe_open_widowed(d, -1);
		if (fd >= 0 && fcntl(fd, F_SETFL, (int)(d->flags & SETFL_MASK)) < 0) {
			int ret = pr_perror("restore: flags of pipe %llu", (unsigned long long)d->pipe->ino);
			close(fd);
			return ret;
		}
		return fd < 0 ? fd : fd_gfd_place(fd, t->base, &t->gfd[d->id]);
	}
	const FileDesc *o = tree_pipe_peer(t, d);
	if (!o) {
		pr_err("files image: pipe %llu has no other end in the tree",
		       (unsigned long long)d->pipe->ino);
		return -EINVAL;
	}
	const FileDesc *rd = (d->flags & O_ACCMODE) == O_RDONLY ? d : o;
	const FileDesc *wr = rd == d ? o : d;
	int pp[2], ret = 0;
	if (pipe2(pp, O_CLOEXEC | O_NONBLOCK))
		return pr_perror("restore: pipe2");
	if (rd->pipe->size && fcntl(pp[1], F_SETPIPE_SZ, rd->pipe->size) < 0)
		ret = pr_perror("restore: size pipe %llu to %u bytes",
				(unsigned long long)rd->pipe->ino, rd->pipe->size);
	if (!ret && rd->pipe->has_data && rd->pipe->data.len)
		ret = write_all(pp[1], rd->pipe->data.data, rd->pipe->data.len);
	if (!ret && fcntl(pp[0], F_SETFL, (int)(rd->flags & SETFL_MASK)) < 0)
		ret = -errno;
	if (!ret && fcntl(pp[1], F_SETFL, (int)(wr->flags & SETFL_MASK)) < 0)
		ret = -errno;
	if (ret) {
		close(pp[0]);
		close(pp[1]);
		return pr_errno(ret, "restore: rebuild pipe %llu", (unsigned long long)rd->pipe->ino);
	}
	ret = fd_gfd_place(pp[0], t->base, &t->gfd[rd->id]);
	if (ret) {
		close(pp[1]);
		return ret;
	}
	return fd_gfd_place(pp[1], t->base, &t->gfd[wr->id]);
}

const struct fd_ops fd_pipe_ops = {
	.name = "pipe",
	.kind = FILE_KIND__FILE_PIPE,
	.classify = pipe_classify,
	.group = pipe_group,
	.dump = pipe_dump,
	.merge = pipe_merge,
	.validate = pipe_validate,
	.open_task = pipe_open_task,
	.open_tree = pipe_open_tree,
};
