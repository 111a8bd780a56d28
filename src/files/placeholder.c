/* Descriptions that can only be made once every task of the tree exists: pidfds (pidfd.c)
 * and files of the /proc directory of a task of the tree (procpid.c).
 *
 * Until then the description is a placeholder: a unix datagram socket A whose own queue
 * holds its peer B (sent through B itself), opened like any description (by the child,
 * or once by stasis when several processes hold it) and placed at every fd number of the
 * description, so those numbers stay taken. In the final stage (every task and thread of
 * the tree exists, traced by stasis), for each holder: stasis takes A with pidfd_getfd
 * and receives what its queue holds (B, and the real file P once a first holder made
 * it); the first makes P (the row's make hook) and sends it through B to A; the holder
 * receives it with a remote recvmsg and dup3s it onto each of its fd numbers
 * (close-on-exec per fd), which drops A; its epolls that watched the placeholder watch P;
 * stasis puts B and P back into A's queue for the next holder. The last holder's dup3
 * frees A, and with it B and the queued reference of P. Every holder so gets the one
 * description P.
 *
 * A placeholder must meet nothing but its holders' fds: a description of such a kind in
 * flight in a unix socket's queue is refused at dump (fd_final_merge_check). */
#include <errno.h>
#include <fcntl.h>
#include <linux/kcmp.h>
#include <stdio.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "core/log.h"
#include "core/util.h"
#include "files/fd_ops.h"
#include "proc/parse.h"
#include "sys/syscalls.h"

int fd_final_placeholder(const FileDesc *d, int target, int rootfd,
			 const struct blob_reader *blobs)
{
	(void)rootfd;
	(void)blobs;
	int sv[2];
	if (socketpair(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0, sv))
		return pr_perror("restore fd %d: placeholder of file %u: socketpair", target,
				 d->id);
	int ret = send_fds(sv[1], "p", 1, &sv[1], 1, MSG_DONTWAIT);
	close(sv[1]);
	if (ret) {
		close(sv[0]);
		return pr_errno(ret, "restore fd %d: placeholder of file %u", target, d->id);
	}
	return sv[0];
}

/* Receive what placeholder @a has queued, one message of 1 or 2 fds: *@b, *@p (-1 if
 * one). 0 or -errno. */
static int take_queue(int a, int *b, int *p)
{
	int fds[2] = { -1, -1 };
	char byte;
	ssize_t n = recv_fds(a, &byte, 1, fds, 2, MSG_DONTWAIT);
	*b = fds[0];
	*p = fds[1];
	if (n < 0 || fds[0] < 0) {
		if (fds[1] >= 0)
			close(fds[1]);
		*p = -1;
		return n < 0 ? (int)n : -EBADMSG;
	}
	return 0;
}

/* Scratch layout of the remote recvmsg. */
#define SCR_MSG 0
#define SCR_IOV 64
#define SCR_BYTE 96
#define SCR_CMSG 128

/* In the holder: receive the file waiting at its fd @at; its fd number there. */
static int remote_receive(struct rst_ctx *c, int at)
{
	struct rsys *rs = &c->rs;
	struct iovec iov = { (void *)(uintptr_t)(rs->scratch + SCR_BYTE), 1 };
	struct msghdr mh = { .msg_iov = (void *)(uintptr_t)(rs->scratch + SCR_IOV),
			     .msg_iovlen = 1,
			     .msg_control = (void *)(uintptr_t)(rs->scratch + SCR_CMSG),
			     .msg_controllen = CMSG_SPACE(sizeof(int)) };
	union {
		char buf[CMSG_SPACE(sizeof(int))];
		struct cmsghdr align;
	} cb;
	memset(&cb, 0, sizeof(cb));
	int ret = rsys_poke(rs, rs->scratch + SCR_MSG, &mh, sizeof(mh)) ?:
		  rsys_poke(rs, rs->scratch + SCR_IOV, &iov, sizeof(iov)) ?:
		  rsys_poke(rs, rs->scratch + SCR_CMSG, &cb, sizeof(cb));
	if (ret)
		return ret;
	long r = rsys_do(rs, "restore: receive a file made last", SYS_recvmsg, (uint64_t)at,
			 rs->scratch + SCR_MSG, MSG_DONTWAIT | MSG_CMSG_CLOEXEC, 0, 0, 0);
	if (r < 0)
		return (int)r;
	ret = rsys_peek(rs, rs->scratch + SCR_MSG, &mh, sizeof(mh)) ?:
	      rsys_peek(rs, rs->scratch + SCR_CMSG, &cb, sizeof(cb));
	if (ret)
		return ret;
	struct cmsghdr *cm = &cb.align;
	int fd = -1;
	if (!(mh.msg_flags & MSG_CTRUNC) && cm->cmsg_level == SOL_SOCKET &&
	    cm->cmsg_type == SCM_RIGHTS && cm->cmsg_len == CMSG_LEN(sizeof(int)))
		memcpy(&fd, CMSG_DATA(cm), sizeof(fd));
	if (fd < 0) {
		pr_err("restore: pid %d: nothing arrived at placeholder fd %d", c->pid, at);
		return -EIO;
	}
	return fd;
}

/* The epolls of holder @c watching fd @tfd (the placeholder until now) watch the file
 * there: the placeholder's entries go when it is freed (by the last holder's dup3). */
int fd_final_rewatch(struct rst_ctx *c, int tfd)
{
	const Files *f = c->files;
	for (size_t e = 0; e < f->n_files; e++) {
		const EpollData *ep = f->files[e]->epoll;
		int efd = fd_desc_fd(f, e);
		for (size_t k = 0; ep && efd >= 0 && k < ep->n_targets; k++) {
			const EpollTarget *t = ep->targets[k];
			struct epoll_event ev = { .events = t->events, .data.u64 = t->data };
			if (t->tfd != tfd || t->elsewhere)
				continue;
			int ret = rsys_poke(&c->rs, c->rs.scratch, &ev, sizeof(ev));
			long r = ret ?: rsys_do(&c->rs, "restore: epoll_ctl(ADD) of a file made "
							"last",
						SYS_epoll_ctl, (uint64_t)efd, EPOLL_CTL_ADD,
						(uint64_t)tfd, c->rs.scratch, 0, 0);
			if (r < 0)
				return (int)r;
		}
	}
	return 0;
}

/* Holder @c's fds of description @i: file @p (stasis's), received at the first one. */
static int give(struct rst_ctx *c, size_t i, int p)
{
	const Files *f = c->files;
	int first = fd_desc_fd(f, i);
	int q = remote_receive(c, first);
	if (q < 0)
		return q;
	long r = syscall(SYS_kcmp, getpid(), c->pid, KCMP_FILE, p, q);
	if (r != 0) {
		pr_err("restore: pid %d: fd %d did not receive its file", c->pid, first);
		return -EIO;
	}
	for (size_t k = 0; k < f->n_fds && r >= 0; k++) {
		const Fd *x = f->fds[k];
		if (x->file_id == f->files[i]->id)
			r = rsys_do(&c->rs, "restore: place a file made last", SYS_dup3,
				    (uint64_t)q, (uint64_t)x->fd, x->cloexec ? O_CLOEXEC : 0, 0,
				    0, 0);
	}
	long rc = rsys_do(&c->rs, "restore: close a file made last", SYS_close, (uint64_t)q, 0,
			  0, 0, 0, 0);
	if (r < 0 || rc < 0)
		return r < 0 ? (int)r : (int)rc;
	int ret = 0;
	for (size_t k = 0; k < f->n_fds && !ret; k++)
		if (f->fds[k]->file_id == f->files[i]->id)
			ret = fd_final_rewatch(c, f->fds[k]->fd);
	return ret;
}

/* One description of holder @c (task pidfd @pidfd): the placeholder replaced. */
static int final_one(struct rst_ctx *c, size_t i, int pidfd, fd_final_make_fn make)
{
	const FileDesc *d = c->files->files[i];
	int first = fd_desc_fd(c->files, i);
	if (first < 0)
		return 0; /* in flight: refused at dump */
	_cleanup_close_ int a = sys_pidfd_getfd(pidfd, first, 0);
	if (a < 0)
		return pr_perror("restore: pid %d: pidfd_getfd of fd %d", c->pid, first);
	_cleanup_close_ int b = -1;
	_cleanup_close_ int p = -1;
	int ret = take_queue(a, &b, &p);
	if (ret)
		return pr_errno(ret, "restore: pid %d: fd %d is not a placeholder", c->pid, first);
	if (p < 0) {
		p = make(c, d);
		if (p < 0)
			return p;
	}
	ret = send_fds(b, "p", 1, &p, 1, MSG_DONTWAIT);
	if (ret)
		return pr_errno(ret, "restore: pid %d: send its file of fd %d", c->pid, first);
	ret = give(c, i, p);
	if (ret)
		return ret;
	/* for the next holder of the description (freed with A by the last one) */
	int keep[2] = { b, p };
	ret = send_fds(b, "p", 1, keep, 2, MSG_DONTWAIT);
	return ret ? pr_errno(ret, "restore: pid %d: keep its file of fd %d", c->pid, first) : 0;
}

bool fd_final_restored(const struct rst_ctx *c, pid_t pid)
{
	char name[32];
	struct proc_status st;
	snprintf(name, sizeof(name), "%d/status", pid);
	_cleanup_free_ char *buf = read_file_at(c->proc_dfd, name, 1 << 16, NULL);
	bool ours = buf && !proc_parse_status(buf, &st) && st.tracer_pid == c->stasis_pid;
	if (buf)
		proc_status_free(&st);
	return ours;
}

int fd_final_give(struct rst_ctx *c, FileKind kind, fd_final_make_fn make, const char *what)
{
	const Files *f = c->files;
	if (!f || c->shares_files)
		return 0; /* (the parent's table: done by the parent) */
	_cleanup_close_ int pidfd = -1;
	uint64_t t0 = now_ns();
	size_t n = 0;
	for (size_t i = 0; i < f->n_files; i++) {
		if (f->files[i]->kind != kind)
			continue;
		if (pidfd < 0)
			pidfd = sys_pidfd_open(c->pid, 0);
		if (pidfd < 0)
			return pr_perror("restore: pidfd_open of %d", c->pid);
		int ret = final_one(c, i, pidfd, make);
		if (ret)
			return ret;
		n++;
	}
	if (n)
		pr_info("restore: pid %d: %zu %s given in %.3f ms", c->pid, n, what,
			(double)(now_ns() - t0) / 1e6);
	return 0;
}

/* Is description @id (tree-wide) of kind @kind in some process of the tree? */
static bool is_kind(struct dump_ctx **procs, size_t n, uint32_t id, FileKind kind)
{
	for (size_t p = 0; p < n; p++) {
		ssize_t i = fd_desc_index(procs[p]->files, id);
		if (i >= 0)
			return procs[p]->files->files[i]->kind == kind;
	}
	return false;
}

int fd_final_merge_check(struct dump_ctx **procs, size_t n, FileKind kind, const char *what)
{
	for (size_t p = 0; p < n; p++) {
		const Files *f = procs[p]->files;
		for (size_t i = 0; i < f->n_files; i++) {
			const FileDesc *d = f->files[i];
			if (d->kind == kind && d->owner) {
				pr_err("fd %d of pid %d is %s with an owner (F_SETOWN): not "
				       "supported",
				       fd_desc_fd(f, i), procs[p]->pid, what);
				return -EOPNOTSUPP;
			}
			const UnixSk *u = d->unix_sk;
			for (size_t k = 0; u && k < u->n_rights; k++)
				for (size_t j = 0; j < u->rights[k]->n_files; j++)
					if (is_kind(procs, n, u->rights[k]->files[j], kind)) {
						pr_err("fd %d of pid %d is a unix socket with %s "
						       "in flight: not supported yet",
						       fd_desc_fd(f, i), procs[p]->pid, what);
						return -EOPNOTSUPP;
					}
		}
	}
	return 0;
}
