/* epoll (row fd_epoll_ops, kind FILE_EPOLL, FileDesc.epoll).
 *
 * Dump: the targets from /proc/PID/fdinfo (fs/eventpoll.c show_fdinfo), each by the fd
 * number it was added with (the kernel keys a target by file and fd number). Per tree
 * (merge), kcmp(KCMP_EPOLL_TFD) tells whether that number still refers to the very same
 * file in a process holding the epoll: of an epoll shared by several processes (fork),
 * each target is added again by the first holder, in dump order, where it does (a forked
 * child that closed its parent's listening socket and reused the number does not); the
 * other holders' copies mark it elsewhere. A target no holder has under its number any
 * more (closed without EPOLL_CTL_DEL while a dup stays open: the kernel keeps it) is
 * added through another fd of that file (via), which the restore puts under the number
 * for the EPOLL_CTL_ADD only; a target no holder has open at all is refused.
 *
 * Restore: late, once every other fd is placed: epoll_create1 and EPOLL_CTL_ADD of every
 * target by its fd number. A shared epoll is made once, empty, by stasis (the open hook)
 * and inherited like every shared description: each holder adds its own targets in its
 * late stage. An epoll watching another epoll of its process waits for it: the kernel
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
		EpollTarget *et = malloc(sizeof(*et));
		if (!et)
			return pr_errno(-ENOMEM, "fd %d of pid %d", fd, pid);
		epoll_target__init(et);
		et->tfd = t[k].tfd;
		et->events = t[k].events;
		et->data = t[k].data;
		et->has_ino = true;
		et->ino = t[k].ino;
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
	return epoll_fill(c->pid, e->fd, t, n, m);
}

/* Is target @k of epoll fd @efd (of @m) of process @p the file open there as fd @fd?
 * 0 if so, 1 if that fd is closed, 2 if it refers to another file, or a logged -errno. */
static int target_at(const struct dump_ctx *p, int efd, const EpollData *m, size_t k, int fd)
{
	int tfd = m->targets[k]->tfd;
	struct kcmp_epoll_slot slot = { .efd = (uint32_t)efd, .tfd = (uint32_t)tfd };
	/* several targets may carry one fd number (added, then the fd reused): toff picks
	 * the k-th of them in the order the kernel lists them */
	for (size_t j = 0; j < k; j++)
		if (m->targets[j]->tfd == tfd)
			slot.toff++;
	long r = syscall(SYS_kcmp, p->ospid, p->ospid, KCMP_EPOLL_TFD, fd, &slot);
	if (r == 0)
		return 0;
	if (r < 0 && errno != EBADF && errno != ENOENT)
		return pr_perror("kcmp(KCMP_EPOLL_TFD) of epoll fd %d, target fd %d of pid %d",
				 efd, tfd, p->pid);
	return r < 0 ? 1 : 2;
}

/* Target @k of epoll fd @efd (of @m) of process @p, no longer under its number tfd: an
 * fd of @p that is that file (closed without EPOLL_CTL_DEL while a dup stays open: the
 * kernel keeps the target), through which it is added again (epoll_add_via); -1 if none,
 * or a logged -errno. */
static int target_via(const struct dump_ctx *p, int efd, const EpollData *m, size_t k)
{
	const Files *f = p->files;
	for (size_t j = 0; j < f->n_fds; j++) {
		int fd = f->fds[j]->fd;
		ssize_t i = fd_desc_index(f, f->fds[j]->file_id);
		if (fd == m->targets[k]->tfd || i < 0 || f->files[i]->kind == FILE_KIND__FILE_PIDFD)
			continue; /* (a pidfd's watches are added again by tfd: pidfd.c) */
		int r = target_at(p, efd, m, k, fd);
		if (r <= 0)
			return r < 0 ? r : fd;
	}
	return -1;
}

/* Target @k of epoll @d (fd @efd of process @p) is added again by no process (no holder
 * has it open, under its number or another): refused. */
static int target_lost(const struct dump_ctx *p, int efd, const FileDesc *d, size_t k,
		       size_t holders, int why)
{
	const EpollTarget *t = d->epoll->targets[k];
	char how[128];
	if (holders > 1)
		snprintf(how, sizeof(how), "is closed or refers to another file in each of the "
			 "%zu processes sharing the epoll", holders);
	else
		snprintf(how, sizeof(how), "%s", why == 1 ? "is closed" : "now refers to another file");
	pr_err("fd %d of pid %d is an epoll watching a file added as fd %d (ino %llx), but "
	       "fd %d %s: not supported", efd, p->pid, t->tfd, (unsigned long long)t->ino,
	       t->tfd, how);
	return -EOPNOTSUPP;
}

struct holder {
	const struct dump_ctx *p;
	EpollData *m; /* its copy of the epoll */
	int efd;      /* an fd of it there */
};

/* Epoll @d of process @p (the first holding it, in dump order) and the copies of the
 * later processes sharing it: each target is added again at restore by the first holder
 * whose fd tfd still is that file (the kernel keys a target by file and fd number); the
 * other copies mark it elsewhere. */
static int epoll_holders(struct dump_ctx **procs, size_t n, size_t p, const FileDesc *d)
{
	_cleanup_free_ struct holder *h = calloc(n - p, sizeof(*h));
	size_t nh = 0;
	if (!h)
		return pr_errno(-ENOMEM, "epolls of the tree");
	for (size_t q = p; q < n; q++) {
		const Files *f = procs[q]->files;
		ssize_t j = fd_desc_index(f, d->id);
		if (j < 0)
			continue;
		h[nh++] = (struct holder){ procs[q], f->files[j]->epoll, fd_desc_fd(f, (size_t)j) };
		if (f->files[j]->epoll->n_targets != d->epoll->n_targets) {
			pr_err("epoll %u: pid %d and pid %d see different targets", d->id,
			       procs[p]->pid, procs[q]->pid);
			return -EIO;
		}
	}
	for (size_t k = 0; k < d->epoll->n_targets; k++) {
		bool found = false;
		int why = 0;
		for (size_t x = 0; x < nh; x++) {
			int r = found ? 1 : target_at(h[x].p, h[x].efd, h[x].m, k,
						      h[x].m->targets[k]->tfd);
			if (r < 0)
				return r;
			found |= r == 0;
			why = why ? why : r;
			EpollTarget *t = h[x].m->targets[k];
			t->has_elsewhere = t->elsewhere = r != 0;
		}
		for (size_t x = 0; x < nh && !found; x++) {
			int via = target_via(h[x].p, h[x].efd, h[x].m, k);
			if (via < -1)
				return via;
			EpollTarget *t = h[x].m->targets[k];
			found = via >= 0;
			t->has_elsewhere = t->elsewhere = !found;
			t->has_via = found;
			t->via = found ? via : 0;
		}
		if (!found)
			return target_lost(h[0].p, h[0].efd, d, k, nh, why);
	}
	return 0;
}

/* Every epoll of the tree, once (by its first holder): which process adds each target. */
static int epoll_merge(struct dump_ctx **procs, size_t n)
{
	for (size_t p = 0; p < n; p++) {
		const Files *f = procs[p]->files;
		for (size_t i = 0; i < f->n_files; i++) {
			const FileDesc *d = f->files[i];
			if (d->kind != FILE_KIND__FILE_EPOLL)
				continue;
			bool seen = false;
			for (size_t q = 0; q < p && !seen; q++)
				seen = fd_desc_index(procs[q]->files, d->id) >= 0;
			int ret = seen ? 0 : epoll_holders(procs, n, p, d);
			if (ret)
				return ret;
		}
	}
	return 0;
}

/* ---- restore ------------------------------------------------------------------- */

static int epoll_validate(const FileDesc *d, const struct blob_reader *blobs)
{
	(void)blobs;
	bool ok = d->epoll && d->epoll->n_targets <= EPOLL_TARGETS_MAX;
	for (size_t k = 0; ok && k < d->epoll->n_targets; k++) {
		const EpollTarget *t = d->epoll->targets[k];
		ok = t->tfd >= 0 && (!t->has_via || (t->via >= 0 && t->via != t->tfd));
	}
	return ok ? 0 : fd_bad_data(d);
}

/* Add target @t to epoll @ep through fd @t->via: that file is put under number tfd for
 * the EPOLL_CTL_ADD only (the kernel keys a target by file and number), then what tfd
 * was (a file, its close-on-exec flag, or nothing) is put back; @lo: a free number. */
static int epoll_add_via(int ep, const EpollTarget *t, struct epoll_event *ev, int lo,
			 int target)
{
	int fl = fcntl(t->tfd, F_GETFD);
	int saved = fl < 0 ? -1 : fcntl(t->tfd, F_DUPFD_CLOEXEC, lo), ret = 0;
	if (fl >= 0 && saved < 0)
		return pr_perror("restore fd %d: keep fd %d aside", target, t->tfd);
	if (dup2(t->via, t->tfd) < 0 || epoll_ctl(ep, EPOLL_CTL_ADD, t->tfd, ev))
		ret = pr_perror("restore fd %d: epoll_ctl(ADD) of fd %d through fd %d", target,
				t->tfd, t->via);
	if (saved >= 0 && dup3(saved, t->tfd, (fl & FD_CLOEXEC) ? O_CLOEXEC : 0) < 0 && !ret)
		ret = pr_perror("restore fd %d: put fd %d back", target, t->tfd);
	if (saved >= 0)
		close(saved);
	else
		close(t->tfd);
	return ret;
}

/* Add to epoll @fd the targets of @d this process adds (every one but those marked
 * elsewhere), each in place under its final number or through another (@lo: a number
 * above every fd of the task). */
static int epoll_fill_fd(int fd, const FileDesc *d, int target, int lo)
{
	for (size_t k = 0; k < d->epoll->n_targets; k++) {
		const EpollTarget *t = d->epoll->targets[k];
		struct epoll_event ev = { .events = t->events, .data.u64 = t->data };
		if (t->elsewhere)
			continue;
		if (t->has_via) {
			int ret = epoll_add_via(fd, t, &ev, lo, target);
			if (ret)
				return ret;
		} else if (epoll_ctl(fd, EPOLL_CTL_ADD, t->tfd, &ev)) {
			return pr_perror("restore fd %d: epoll_ctl(ADD) of fd %d (events %#x)",
					 target, t->tfd, t->events);
		}
	}
	return 0;
}

/* An epoll shared by several processes, made once by stasis (the open hook): empty, each
 * holder adds its own targets in its late stage. */
static int epoll_open_shared(const FileDesc *d, int target, int rootfd,
			     const struct blob_reader *blobs)
{
	(void)d;
	(void)rootfd;
	(void)blobs;
	int fd = epoll_create1(EPOLL_CLOEXEC);
	if (fd < 0)
		return pr_perror("restore fd %d: epoll_create1", target);
	return fd;
}

/* A new close-on-exec epoll fd (any number) watching the targets of @d. */
static int epoll_open(const FileDesc *d, int target, int lo)
{
	_cleanup_close_ int tmp = epoll_open_shared(d, target, -1, NULL);
	if (tmp < 0)
		return tmp;
	/* above every fd of the task: a target added through another fd borrows its number */
	_cleanup_close_ int fd = fcntl(tmp, F_DUPFD_CLOEXEC, lo);
	if (fd < 0)
		return pr_perror("restore fd %d: move the epoll above fd %d", target, lo);
	int ret = epoll_fill_fd(fd, d, target, lo);
	return ret ? ret : take_fd(&fd);
}

/* Does another process add some of @d's targets? */
static bool elsewhere(const FileDesc *d)
{
	for (size_t k = 0; k < d->epoll->n_targets; k++)
		if (d->epoll->targets[k]->elsewhere)
			return true;
	return false;
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
			if (f->files[j]->kind == FILE_KIND__FILE_EPOLL && !s->shared[j] && !done[j])
				return false;
		}
	}
	return true;
}

/* Open epoll description @i, set its status flags and place it at each of its fds. */
static int epoll_place(const struct fd_rst *s, size_t i, int target)
{
	int tmp = epoll_open(s->f->files[i], target, s->stage_lo);
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
			if (d->kind != FILE_KIND__FILE_EPOLL || done[i] || target < 0)
				continue;
			if (!epoll_ready(s, done, d)) {
				left = true;
				continue;
			}
			/* a shared one (made by stasis) is in place: its targets added here;
			 * only a shared one has targets another process adds */
			int ret = s->shared[i] ? epoll_fill_fd(s->staged[i], d, target, s->stage_lo) :
				  elsewhere(d)	 ? fd_bad_data(d) :
						   epoll_place(s, i, target);
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
	.open = epoll_open_shared,
	.late = epoll_late,
};
