/* epoll (row fd_epoll_ops, kind FILE_EPOLL, FileDesc.epoll).
 *
 * Dump: the targets from /proc/PID/fdinfo (fs/eventpoll.c show_fdinfo), each by the fd
 * number it was added with; kcmp(KCMP_EPOLL_TFD) tells whether that number still refers
 * to the very same file. An epoll shared between processes is refused (merge).
 *
 * Restore: late, once every other fd is placed: epoll_create1 and EPOLL_CTL_ADD of every
 * target by its fd number. An epoll watching another epoll waits for it: the kernel
 * forbids cycles, so each pass makes progress. */
#include <fcntl.h>
#include <linux/kcmp.h>
#include <stdio.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "core/log.h"
#include "core/util.h"
#include "files/fd_ops.h"
#include "proc/parse.h"

#define EPOLL_FDINFO_MAX (64u << 20)
/* Images are untrusted: at most this many watched files per epoll. */
#define EPOLL_TARGETS_MAX (1u << 20)

static int epoll_classify(const struct dump_ctx *c, struct fd_ent *e)
{
	(void)c;
	if (strcmp(e->link, "anon_inode:[eventpoll]"))
		return 0;
	e->kind = FILE_KIND__FILE_EPOLL;
	return 1;
}

/* Is target @k of epoll fd @efd still the file open as fd t[k].tfd of the task? */
static int epoll_target_check(pid_t pid, int efd, const struct proc_epoll_tfd *t, size_t k)
{
	struct kcmp_epoll_slot slot = { .efd = (uint32_t)efd, .tfd = (uint32_t)t[k].tfd };
	/* several targets may carry one fd number (added, then the fd reused): toff picks
	 * the k-th of them in the order the kernel lists them */
	for (size_t j = 0; j < k; j++)
		if (t[j].tfd == t[k].tfd)
			slot.toff++;
	long r = syscall(SYS_kcmp, pid, pid, KCMP_EPOLL_TFD, t[k].tfd, &slot);
	if (r == 0)
		return 0;
	if (r < 0 && errno != EBADF && errno != ENOENT)
		return pr_perror("kcmp(KCMP_EPOLL_TFD) of epoll fd %d, target fd %d of pid %d",
				 efd, t[k].tfd, pid);
	pr_err("fd %d of pid %d is an epoll watching a file added as fd %d (ino %llx), but "
	       "fd %d %s: not supported", efd, pid, t[k].tfd, (unsigned long long)t[k].ino,
	       t[k].tfd, r < 0 ? "is closed" : "now refers to another file");
	return -EOPNOTSUPP;
}

static int epoll_fill(pid_t pid, int fd, const struct proc_epoll_tfd *t, size_t n,
		      EpollData *m)
{
	if (n > EPOLL_TARGETS_MAX) {
		pr_err("fd %d of pid %d is an epoll watching %zu files: too many", fd, pid, n);
		return -EOPNOTSUPP;
	}
	m->targets = calloc(n ? n : 1, sizeof(*m->targets));
	if (!m->targets)
		return pr_errno(-ENOMEM, "fd %d of pid %d", fd, pid);
	for (size_t k = 0; k < n; k++) {
		int ret = epoll_target_check(pid, fd, t, k);
		if (ret)
			return ret;
		EpollTarget *et = malloc(sizeof(*et));
		if (!et)
			return pr_errno(-ENOMEM, "fd %d of pid %d", fd, pid);
		epoll_target__init(et);
		et->tfd = t[k].tfd;
		et->events = t[k].events;
		et->data = t[k].data;
		m->targets[m->n_targets++] = et;
	}
	return 0;
}

static int epoll_dump(const struct dump_ctx *c, const struct fd_ent *e, FileDesc *d)
{
	_cleanup_free_ char *info = NULL;
	int ret = fd_read_fdinfo(c, e->fd, EPOLL_FDINFO_MAX, &info);
	if (ret)
		return ret;
	_cleanup_free_ struct proc_epoll_tfd *t = NULL;
	size_t n = 0;
	ret = proc_parse_fdinfo_epoll(info, &t, &n);
	if (ret) {
		pr_err("cannot parse the epoll targets in /proc/%d/fdinfo/%d", c->pid, e->fd);
		return ret;
	}
	EpollData *m = malloc(sizeof(*m));
	if (!m)
		return pr_errno(-ENOMEM, "fd %d of pid %d", e->fd, c->pid);
	epoll_data__init(m);
	d->epoll = m;
	return epoll_fill(c->ospid, e->fd, t, n, m);
}

/* An epoll used by several processes is not rebuilt yet: each restored process would
 * need its own targets placed before the shared epoll is filled. */
static int epoll_merge(struct dump_ctx **procs, size_t n)
{
	for (size_t p = 0; p < n; p++) {
		const Files *f = procs[p]->files;
		for (size_t i = 0; i < f->n_files; i++) {
			const FileDesc *d = f->files[i];
			if (d->kind != FILE_KIND__FILE_EPOLL)
				continue;
			for (size_t q = p + 1; q < n; q++)
				if (fd_desc_index(procs[q]->files, d->id) >= 0) {
					pr_err("fd %d of pid %d is an epoll shared with pid %d: not "
					       "supported yet", fd_desc_fd(f, i), procs[p]->pid,
					       procs[q]->pid);
					return -EOPNOTSUPP;
				}
		}
	}
	return 0;
}

/* ---- restore ------------------------------------------------------------------- */

static int epoll_validate(const FileDesc *d, const struct blob_reader *blobs)
{
	(void)blobs;
	bool ok = d->epoll && d->epoll->n_targets <= EPOLL_TARGETS_MAX;
	for (size_t k = 0; ok && k < d->epoll->n_targets; k++)
		ok = d->epoll->targets[k]->tfd >= 0;
	return ok ? 0 : fd_bad_data(d);
}

/* A new close-on-exec epoll fd (any number) watching the targets of @d, every one of
 * them in place under its final number. */
static int epoll_open(const FileDesc *d, int target)
{
	_cleanup_close_ int fd = epoll_create1(EPOLL_CLOEXEC);
	if (fd < 0)
		return pr_perror("restore fd %d: epoll_create1", target);
	for (size_t k = 0; k < d->epoll->n_targets; k++) {
		const EpollTarget *t = d->epoll->targets[k];
		struct epoll_event ev = { .events = t->events, .data.u64 = t->data };
		if (epoll_ctl(fd, EPOLL_CTL_ADD, t->tfd, &ev))
			return pr_perror("restore fd %d: epoll_ctl(ADD) of fd %d (events %#x)",
					 target, t->tfd, t->events);
	}
	return take_fd(&fd);
}

/* Is every epoll that @d watches restored already? */
static bool epoll_ready(const struct fd_rst *s, const bool *done, const FileDesc *d)
{
	const Files *f = s->f;
	for (size_t t = 0; t < d->epoll->n_targets; t++) {
		int tfd = d->epoll->targets[t]->tfd;
		for (size_t k = 0; k < f->n_fds; k++) {
			if (f->fds[k]->fd != tfd)
				continue;
			size_t j = (size_t)fd_desc_index(f, f->fds[k]->file_id);
			if (f->files[j]->kind == FILE_KIND__FILE_EPOLL && s->staged[j] < 0 && !done[j])
				return false;
		}
	}
	return true;
}

/* Open epoll description @i, set its status flags and place it at each of its fds. */
static int epoll_place(const struct fd_rst *s, size_t i, int target)
{
	int tmp = epoll_open(s->f->files[i], target);
	if (tmp < 0)
		return tmp;
	return fd_place_late(s, i, tmp);
}

/* Epolls, once every other fd is placed (their targets are found by fd number). */
static int epoll_late(struct fd_rst *s)
{
	const Files *f = s->f;
	_cleanup_free_ bool *done = calloc(f->n_files ? f->n_files : 1, sizeof(bool));
	if (!done)
		return pr_errno(-ENOMEM, "restore epolls");
	for (;;) {
		bool progress = false, left = false;
		for (size_t i = 0; i < f->n_files; i++) {
			const FileDesc *d = f->files[i];
			int target = fd_desc_fd(f, i);
			if (d->kind != FILE_KIND__FILE_EPOLL || s->staged[i] >= 0 || done[i] ||
			    target < 0)
				continue;
			if (!epoll_ready(s, done, d)) {
				left = true;
				continue;
			}
			int ret = epoll_place(s, i, target);
			if (ret)
				return ret;
			done[i] = true;
			progress = true;
		}
		if (!left)
			return 0;
		if (!progress) {
			pr_err("files image: epolls watch each other in a cycle");
			return -EINVAL;
		}
	}
}

const struct fd_ops fd_epoll_ops = {
	.name = "epoll",
	.kind = FILE_KIND__FILE_EPOLL,
	.fdinfo_keys = (const char *const[]){ "tfd", NULL },
	.flags = FD_OPS_LATE,
	.classify = epoll_classify,
	.dump = epoll_dump,
	.merge = epoll_merge,
	.validate = epoll_validate,
	.late = epoll_late,
};
