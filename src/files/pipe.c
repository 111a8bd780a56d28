/* Pipes (row fd_pipe_ops, kind FILE_PIPE, FileDesc.pipe): rebuilt when both ends are in
 * the dumped tree, with their size and the bytes queued in them; a pipe whose other end
 * is closed everywhere (no writer: poll says POLLHUP on the read end; no reader: POLLERR
 * on the write end) is "widowed": rebuilt with that end closed again. A pipe may have
 * more descriptions than its two ends: opened again through /proc/PID/fd (a second
 * reader, a read-write one: a reader and a writer at once); each is made again so.
 *
 * Dump: the queued bytes are copied without consuming them: tee(2) into a temporary
 * pipe as large as the source, then read from that one. A pipe with one end in the task
 * and the other elsewhere is external (the group hook); the merge hook makes it a pipe
 * again when the other end is in another process of the tree.
 *
 * Restore: pipe2, F_SETPIPE_SZ, the data written back, every description of the pipe made
 * at once (pipe_make: the two ends, the others by opening the pipe again through
 * /proc/self/fd with their access mode, a side no description has closed): in the child
 * when all are in the task (open_task), else in stasis for the tree (open_tree). */
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

/* Does a description opened @flags read the pipe, write it? (O_RDWR: both) */
static bool reads(unsigned int flags)
{
	return (flags & O_ACCMODE) == O_RDONLY || (flags & O_ACCMODE) == O_RDWR;
}

static bool writes(unsigned int flags)
{
	return (flags & O_ACCMODE) == O_WRONLY || (flags & O_ACCMODE) == O_RDWR;
}

/* Is the other end of pipe end @dup (opened @flags) closed everywhere? 1, 0, or -errno.
 * (A read-write description is both ends: never.) */
static int pipe_widowed_fd(pid_t pid, int fd, int dup, unsigned int flags)
{
	if ((flags & O_ACCMODE) == O_RDWR)
		return 0;
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

/* A pipe is rebuilt when this task has a description reading it and one writing it (a
 * read-write one is both), or its other end is closed everywhere; with one side only,
 * the other side is outside: it is external. */
static int pipe_group(const struct dump_ctx *c, struct fd_ent *ents, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		struct fd_ent *e = &ents[i];
		if (e->owner != i || e->kind != FILE_KIND__FILE_PIPE)
			continue;
		unsigned int readers = 0, writers = 0;
		for (size_t j = 0; j < n; j++) {
			const struct fd_ent *o = &ents[j];
			if (o->owner != j || o->kind != FILE_KIND__FILE_PIPE ||
			    o->st.st_ino != e->st.st_ino || o->st.st_dev != e->st.st_dev)
				continue;
			readers += reads(o->flags);
			writers += writes(o->flags);
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
	if (!reads(flags))
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
			bool want_writer = !writes(d->flags), peer = false;
			for (size_t q = 0; q < n && !peer; q++)
				for (size_t j = 0; j < procs[q]->files->n_files; j++) {
					const FileDesc *o = procs[q]->files->files[j];
					if (is_pipe_link(o) && o->ino == d->ino && o->id != d->id &&
					    (want_writer ? writes(o->flags) : reads(o->flags))) {
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

/* The descriptions @ds[0..n) of one pipe (distinct ones) made: a pipe sized and filled,
 * a read end and a write end for the first reader and writer, every other one the pipe
 * opened again through /proc/self/fd with its access mode (while both ends are open, so
 * that no open waits for the other side); an end no description takes is closed (the
 * side closed everywhere of a widowed pipe). @out[k]: the close-on-exec, non-blocking fd
 * of @ds[k]. */
static int pipe_make(const FileDesc *const *ds, size_t n, int *out)
{
	const PipeData *pd = ds[0]->pipe;
	int p[2], ret = 0;
	if (pipe2(p, O_CLOEXEC | O_NONBLOCK))
		return pr_perror("restore: pipe2 for pipe %llu", (unsigned long long)pd->ino);
	if (pd->size && fcntl(p[1], F_SETPIPE_SZ, pd->size) < 0)
		ret = pr_perror("restore: size pipe %llu to %u bytes", (unsigned long long)pd->ino,
				pd->size);
	const PipeData *data = NULL;
	for (size_t k = 0; k < n && !data; k++)
		if (reads(ds[k]->flags) && ds[k]->pipe->has_data && ds[k]->pipe->data.len)
			data = ds[k]->pipe;
	if (!ret && data && (ret = write_all(p[1], data->data.data, data->data.len)))
		pr_errno(ret, "restore: refill pipe %llu with %zu bytes",
			 (unsigned long long)pd->ino, data->data.len);
	bool used[2] = { false, false };
	for (size_t k = 0; k < n; k++) {
		unsigned int mode = ds[k]->flags & O_ACCMODE;
		int end = mode == O_RDONLY ? 0 : mode == O_WRONLY ? 1 : -1;
		out[k] = -1;
		if (ret)
			continue;
		if (end >= 0 && !used[end]) {
			used[end] = true;
			out[k] = p[end];
			continue;
		}
		char self[48];
		snprintf(self, sizeof(self), "/proc/self/fd/%d", p[0]);
		out[k] = open(self, (int)mode | O_CLOEXEC | O_NONBLOCK);
		if (out[k] < 0)
			ret = pr_perror("restore: open pipe %llu again (%s)",
					(unsigned long long)pd->ino,
					mode == O_RDWR ? "read-write" : "another end");
	}
	for (int e = 0; e < 2; e++)
		if (ret || !used[e])
			close(p[e]);
	for (size_t k = 0; ret && k < n; k++) {
		if (out[k] >= 0 && out[k] != p[0] && out[k] != p[1])
			close(out[k]);
		out[k] = -1;
	}
	return ret;
}

/* Make every description of the pipe of description @i of the task, stage them. */
static int pipe_open_task(struct fd_rst *s, size_t i)
{
	const Files *f = s->f;
	const FileDesc *d = f->files[i];
	_cleanup_free_ const FileDesc **ds = calloc(f->n_files, sizeof(*ds));
	_cleanup_free_ size_t *at = calloc(f->n_files, sizeof(*at));
	_cleanup_free_ int *fds = calloc(f->n_files, sizeof(*fds));
	size_t n = 0;
	if (!ds || !at || !fds)
		return pr_errno(-ENOMEM, "restore: pipe %llu", (unsigned long long)d->pipe->ino);
	for (size_t j = 0; j < f->n_files; j++)
		if (f->files[j]->kind == FILE_KIND__FILE_PIPE &&
		    f->files[j]->pipe->ino == d->pipe->ino && s->staged[j] < 0) {
			ds[n] = f->files[j];
			at[n++] = j;
		}
	int ret = pipe_make(ds, n, fds);
	for (size_t k = 0; k < n; k++) {
		int r = ret ? -1 : fd_stage(fds[k], s->stage_lo, fd_desc_fd(f, at[k]),
					   ds[k]->link ?: "pipe");
		if (ret)
			close(fds[k]); /* (-1 when pipe_make failed) */
		else if (r < 0)
			ret = r;
		else
			s->staged[at[k]] = r;
	}
	return ret;
}

/* Every description of pipe @d in the tree, with their status flags. */
static int pipe_open_tree(struct fd_tree *t, const FileDesc *d)
{
	size_t cap = 0, n = 0;
	for (size_t p = 0; p < t->n; p++)
		cap += t->f[p]->n_files;
	_cleanup_free_ const FileDesc **ds = calloc(cap ?: 1, sizeof(*ds));
	_cleanup_free_ int *fds = calloc(cap ?: 1, sizeof(*fds));
	if (!ds || !fds)
		return pr_errno(-ENOMEM, "restore: pipe %llu", (unsigned long long)d->pipe->ino);
	for (size_t p = 0; p < t->n; p++)
		for (size_t i = 0; i < t->f[p]->n_files; i++) {
			const FileDesc *o = t->f[p]->files[i];
			bool seen = false;
			for (size_t k = 0; k < n && !seen; k++)
				seen = ds[k]->id == o->id;
			if (!seen && o->kind == FILE_KIND__FILE_PIPE && o->pipe &&
			    o->pipe->ino == d->pipe->ino && t->gfd[o->id] < 0)
				ds[n++] = o;
		}
	int ret = pipe_make(ds, n, fds);
	for (size_t k = 0; k < n; k++) {
		if (!ret && fcntl(fds[k], F_SETFL, (int)(ds[k]->flags & SETFL_MASK)) < 0)
			ret = pr_perror("restore: flags of pipe %llu",
					(unsigned long long)d->pipe->ino);
		if (ret)
			close(fds[k]);
		else
			ret = fd_gfd_place(fds[k], t->base, &t->gfd[ds[k]->id]);
	}
	return ret;
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
