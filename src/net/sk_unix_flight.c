/* File descriptors in flight in the queues of unix sockets (SCM_RIGHTS), at dump: the
 * merge hook of the unix row calls sk_unix_flight() once every process is dumped and the
 * description ids are the tree's. The dump of each socket only counted the descriptors
 * of each queued message (UnixSk.rights, ids 0); here every such queue is peeked again
 * (the tree is frozen: the same messages), the descriptors it installs in stasis are
 * identified with kcmp(KCMP_FILE): a description a task holds keeps that task's id;
 * else it is a description no task holds, dumped here (a unix socket, with its own queue
 * and what is in flight in it; a pipe end) and added to the receiving process's files as
 * a FileDesc no Fd refers to. Other kinds in flight are refused. The peek offset of
 * every socket peeked is put back. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/kcmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "core/log.h"
#include "core/util.h"
#include "net/sk_unix_int.h"
#include "sys/syscalls.h"

#define FLIGHT_DEPTH 16 /* sockets in flight inside sockets in flight ... */

struct flight {
	int fd; /* stasis's copy, kept open for kcmp */
	uint32_t id;
};

struct fctx {
	struct dump_ctx **procs;
	size_t n;
	uint32_t next_id;
	struct flight *fl;
	size_t nfl;
};

static bool same_file(pid_t p1, int fd1, pid_t p2, int fd2)
{
	return syscall(SYS_kcmp, p1, p2, KCMP_FILE, fd1, fd2) == 0;
}

/* The id of the description of @fd (stasis's) if a task or an earlier flight holds it. */
static bool identify(const struct fctx *x, int fd, const struct stat *st, uint32_t *id)
{
	pid_t self = getpid();
	for (size_t p = 0; p < x->n; p++) {
		const Files *f = x->procs[p]->files;
		for (size_t i = 0; i < f->n_files; i++) {
			const FileDesc *d = f->files[i];
			int tfd = fd_desc_fd(f, i);
			if (tfd < 0 || d->ino != st->st_ino || d->dev != st->st_dev)
				continue;
			if (same_file(x->procs[p]->ospid, tfd, self, fd)) {
				*id = d->id;
				return true;
			}
		}
	}
	for (size_t k = 0; k < x->nfl; k++)
		if (same_file(self, x->fl[k].fd, self, fd)) {
			*id = x->fl[k].id;
			return true;
		}
	return false;
}

static int process(struct fctx *x, size_t p, FileDesc *d, int dup, int depth);

/* A description in flight no task holds: dumped, added to the files of process @p
 * (consumes @fd). */
static int new_flight(struct fctx *x, size_t p, int fd, const struct stat *st, int cfd,
		      uint32_t *id, int depth)
{
	struct dump_ctx *c = x->procs[p];
	char name[32], link[PATH_MAX];
	snprintf(name, sizeof(name), "/proc/self/fd/%d", fd);
	ssize_t ll = readlink(name, link, sizeof(link) - 1);
	int fl = fcntl(fd, F_GETFL), dom = -1;
	socklen_t sl = sizeof(dom);
	bool unix_sk = S_ISSOCK(st->st_mode) && !getsockopt(fd, SOL_SOCKET, SO_DOMAIN, &dom, &sl) &&
		       dom == AF_UNIX;
	link[ll > 0 ? ll : 0] = 0;
	if (!unix_sk && !(S_ISFIFO(st->st_mode) && str_starts(link, "pipe:["))) {
		pr_err("fd %d of pid %d is a unix socket with %s in flight (SCM_RIGHTS): not "
		       "supported yet",
		       cfd, c->pid, ll > 0 ? link : "a file");
		close(fd);
		return -EOPNOTSUPP;
	}
	struct flight *nf = realloc(x->fl, (x->nfl + 1) * sizeof(*nf));
	Files *f = c->files;
	FileDesc **nd = realloc(f->files, (f->n_files + 1) * sizeof(*nd));
	if (nf)
		x->fl = nf;
	if (nd)
		f->files = nd;
	FileDesc *d = malloc(sizeof(*d));
	if (!nf || !nd || !d || fl < 0) {
		free(d);
		close(fd);
		return pr_errno(-ENOMEM, "files in flight of pid %d", c->pid);
	}
	file_desc__init(d);
	f->files[f->n_files++] = d;
	x->fl[x->nfl++] = (struct flight){ fd, x->next_id };
	*id = d->id = x->next_id++;
	d->flags = (uint32_t)fl & ~(uint32_t)O_CLOEXEC;
	d->has_dev = d->has_ino = true;
	d->dev = st->st_dev;
	d->ino = st->st_ino;
	d->link = strdup(link);
	if (!d->link)
		return pr_errno(-ENOMEM, "files in flight of pid %d", c->pid);
	if (!unix_sk) {
		d->kind = FILE_KIND__FILE_PIPE;
		return fd_pipe_dump_fd(c->pid, -1, fd, (unsigned int)fl, st->st_ino, d);
	}
	d->kind = FILE_KIND__FILE_UNIX_SK;
	struct fd_ent e = { .fd = -1, .link = d->link, .st = *st, .flags = (unsigned int)fl };
	int ret = sk_unix_dump_fd(c, &e, fd, d);
	return ret ? ret : process(x, p, d, fd, depth + 1);
}

/* The byte offset and length of rights entry @k of @u in its queue. */
static void rights_span(const UnixSk *u, size_t k, size_t *off, size_t *len)
{
	size_t at = (size_t)u->rights[k]->at, o = 0;
	if (u->type == SOCK_STREAM) {
		o = k ? (size_t)u->rights[k - 1]->at : 0;
		*len = at - o;
	} else {
		for (size_t i = 0; i < at && i < u->n_msgs; i++)
			o += u->msgs[i].len;
		*len = 1;
	}
	*off = o;
}

/* Identify every descriptor in flight in the queue of @d (@dup: stasis's copy of it). */
static int process(struct fctx *x, size_t p, FileDesc *d, int dup, int depth)
{
	UnixSk *u = d->unix_sk;
	int peek_off = -1, ret = 0, fds[SK_RIGHTS_MAX];
	socklen_t l = sizeof(peek_off);
	pid_t pid = x->procs[p]->pid;

	if (!u->n_rights)
		return 0;
	if (depth > FLIGHT_DEPTH) {
		pr_err("pid %d: unix sockets in flight nested more than %d deep: not supported",
		       pid, FLIGHT_DEPTH);
		return -EOPNOTSUPP;
	}
	if (getsockopt(dup, SOL_SOCKET, SO_PEEK_OFF, &peek_off, &l))
		return pr_perror("pid %d: SO_PEEK_OFF of unix socket %llu", pid,
				 (unsigned long long)u->ino);
	for (size_t k = 0; k < u->n_rights && !ret; k++) {
		UnixRights *r = u->rights[k];
		size_t off, len, got = 0;
		rights_span(u, k, &off, &len);
		ret = off > INT_MAX ? -EOVERFLOW
				    : sk_unix_peek_fds(dup, (int)off, len, u->type != SOCK_STREAM,
						       fds, SK_RIGHTS_MAX, &got);
		if (ret) {
			pr_errno(ret, "pid %d: peek at unix socket %llu again", pid,
				 (unsigned long long)u->ino);
			break;
		}
		size_t j = 0;
		for (; j < got && !ret; j++) {
			struct stat st;
			if (j >= r->n_files || fstat(fds[j], &st)) {
				ret = -EIO;
				break;
			}
			if (identify(x, fds[j], &st, &r->files[j]))
				close(fds[j]);
			else
				ret = new_flight(x, p, fds[j], &st, -1, &r->files[j], depth);
		}
		for (; j < got; j++)
			close(fds[j]);
		if (!ret && got != r->n_files) {
			pr_err("pid %d: unix socket %llu: %zu descriptors in flight in a message, "
			       "%zu at the first look",
			       pid, (unsigned long long)u->ino, got, r->n_files);
			ret = -EIO;
		}
	}
	if (setsockopt(dup, SOL_SOCKET, SO_PEEK_OFF, &peek_off, sizeof(peek_off)) && !ret)
		ret = pr_perror("pid %d: cannot put back SO_PEEK_OFF of unix socket %llu", pid,
				(unsigned long long)u->ino);
	return ret;
}

int sk_unix_flight(struct dump_ctx **procs, size_t n)
{
	struct fctx x = { .procs = procs, .n = n, .next_id = 1 };
	int ret = 0;

	for (size_t p = 0; p < n; p++)
		for (size_t i = 0; i < procs[p]->files->n_files; i++)
			x.next_id = MAX(x.next_id, procs[p]->files->files[i]->id + 1);
	for (size_t p = 0; p < n && !ret; p++) {
		Files *f = procs[p]->files;
		size_t nf = f->n_files; /* not the ones added here: processed already */
		for (size_t i = 0; i < nf && !ret; i++) {
			FileDesc *d = f->files[i];
			int fd = fd_desc_fd(f, i);
			if (d->kind != FILE_KIND__FILE_UNIX_SK || !d->unix_sk->n_rights || fd < 0 ||
			    d->unix_sk->rights[0]->n_files == 0 || d->unix_sk->rights[0]->files[0])
				continue; /* a description of several processes: done once */
			int dup = sys_pidfd_getfd(procs[p]->pidfd, fd, 0);
			if (dup < 0) {
				ret = pr_perror("pidfd_getfd of fd %d of pid %d", fd, procs[p]->pid);
				break;
			}
			ret = process(&x, p, d, dup, 0);
			close(dup);
		}
	}
	for (size_t k = 0; k < x.nfl; k++)
		close(x.fl[k].fd);
	free(x.fl);
	return ret;
}
