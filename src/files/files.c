/* Files: the task's fd table — regular files, directories, devices, FIFOs, pipes,
 * AF_UNIX socketpairs (src/net/sk_unix.c) and eventfd, timerfd, signalfd and epoll files
 * (src/files/fd_anon.c).
 *
 * Dump reads everything from outside the (frozen) task: /proc/PID/fd/N gives the link,
 * /proc/PID/fdinfo/N the position and flags, and pidfd_getfd() a duplicate of the fd we
 * fstat (and, for a pipe, peek at with tee(2) without consuming its data). Fds that share
 * one open file description (dup, fork) are found with kcmp(KCMP_FILE) and share one
 * FileDesc.
 *
 * Restore runs in the child, before its memory is replaced, in three steps:
 *   1. open every description once and move it to a "staged" fd above every target fd
 *      (F_DUPFD_CLOEXEC from max_fd + 1: a staged fd never sits on a target number);
 *   2. place each Fd with dup3() onto its exact number (atomically replacing whatever the
 *      child inherited there), or keep the inherited fd for an external file;
 *   3. close the staged fds and every fd below svc_lo that is not in the image.
 * Nothing at or above svc_lo that existed before is ever closed or replaced.
 *
 * External files (ttys, pipes whose other end is outside the task) cannot be rebuilt:
 * at restore the child inherits the restoring stasis's own fd with the same number
 * (like CRIU's --shell-job for stdio); if stasis has no such fd, /dev/null takes its
 * place with the dumped access mode, and a warning says so. */
#include <dirent.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <limits.h>
#include <linux/kcmp.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "core/log.h"
#include "core/util.h"
#include "files/fd_anon.h"
#include "net/sk_unix.h"
#include "sys/kerndat.h"
#include "sys/syscalls.h"
#include "cr/resource.h"
#include "files/files.h"

#define DELETED_SUFFIX " (deleted)"
#define FDINFO_MAX (64u << 10)
/* Images are untrusted: bound what a pipe may ask for (the kernel's own limit for root
 * is 2^31; no real pipe_max_size is anywhere near this). */
#define PIPE_IMG_MAX (1u << 30)
/* Status flags F_SETFL can change. */
#define SETFL_MASK (O_APPEND | O_NONBLOCK | O_ASYNC | O_DIRECT | O_NOATIME)
/* Flags never passed to open() at restore: creation must not happen, and the temporary
 * fd is always close-on-exec (the final cloexec comes from Fd.cloexec). */
#define OPEN_DROP (O_CREAT | O_TRUNC | O_EXCL | (O_TMPFILE & ~O_DIRECTORY) | O_CLOEXEC)

/* ------------------------------------------------------------------------------------ */
/* Dump                                                                                 */
/* ------------------------------------------------------------------------------------ */

struct fd_ent {
	int fd;
	char *link;
	unsigned int flags;  /* fdinfo flags, incl. O_CLOEXEC */
	uint64_t pos;
	struct stat st;
	long fs_type;        /* statfs f_type of the file's file system */
	FileKind kind;
	size_t owner;        /* first entry sharing this open file description */
	uint32_t id;         /* file_id, valid on owners */
};

static int cmp_int(const void *a, const void *b)
{
	int x = *(const int *)a, y = *(const int *)b;
	return (x > y) - (x < y);
}



static bool is_tty_major(unsigned int maj)
{
	/* 4: tty/ttyS, 5: /dev/tty, console, ptmx; 136-143: unix98 pty slaves */
	return maj == 4 || maj == 5 || (maj >= 136 && maj <= 143);
}

/* The fd numbers of the task, sorted. */
static int list_fds(const struct dump_ctx *c, int **out, size_t *nr)
{
	int dfd = openat(c->procfd, "fd", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0)
		return pr_perror("cannot open /proc/%d/fd", c->pid);
	DIR *d = fdopendir(dfd);
	if (!d) {
		int ret = pr_perror("cannot read /proc/%d/fd", c->pid);
		close(dfd);
		return ret;
	}
	_cleanup_free_ int *fds = NULL;
	size_t n = 0, cap = 0;
	int ret = 0;
	for (;;) {
		errno = 0;
		struct dirent *de = readdir(d);
		if (!de) {
			if (errno)
				ret = pr_perror("cannot read /proc/%d/fd", c->pid);
			break;
		}
		if (de->d_name[0] == '.')
			continue;
		long long v;
		if (parse_int(de->d_name, 0, INT_MAX, &v)) {
			pr_err("unexpected entry /proc/%d/fd/%s", c->pid, de->d_name);
			ret = -EINVAL;
			break;
		}
		if (n == cap) {
			size_t ncap = cap ? cap * 2 : 32;
			int *p = realloc(fds, ncap * sizeof(*p));
			if (!p) {
				ret = pr_errno(-ENOMEM, "fds of pid %d", c->pid);
				break;
			}
			fds = p;
			cap = ncap;
		}
		fds[n++] = (int)v;
	}
	closedir(d);
	if (ret)
		return ret;
	if (n)
		qsort(fds, n, sizeof(*fds), cmp_int);
	*out = steal_ptr(&fds);
	*nr = n;
	return 0;
}

static int unsupported(const struct dump_ctx *c, const struct fd_ent *e, const char *what)
{
	pr_err("fd %d of pid %d is %s (%s): not supported yet", e->fd, c->pid, what, e->link);
	return -EOPNOTSUPP;
}

/* A path-based file must have a path we can open again. */
/* Bound on the contents of an unlinked file carried in the image. */
#define GHOST_MAX (64u << 20)

static bool is_ghost(const struct fd_ent *e)
{
	return S_ISREG(e->st.st_mode) && e->st.st_nlink == 0 && str_ends(e->link, DELETED_SUFFIX);
}

static int check_path(const struct dump_ctx *c, const struct fd_ent *e)
{
	if (is_ghost(e) && e->st.st_size > (off_t)GHOST_MAX) {
		pr_err("fd %d of pid %d refers to deleted file %s of %lld bytes: more than the %u "
		       "carried in images", e->fd, c->pid, e->link, (long long)e->st.st_size,
		       GHOST_MAX);
		return -EFBIG;
	}
	if (str_ends(e->link, DELETED_SUFFIX) && !is_ghost(e)) {
		pr_err("fd %d of pid %d refers to deleted file %s: not supported yet", e->fd,
		       c->pid, e->link);
		return -EOPNOTSUPP;
	}
	if (e->link[0] != '/')
		return unsupported(c, e, "a file on an internal filesystem");
	return 0;
}

/* Kind of the file from its link and mode. Pipes are classified later (both ends in the
 * task or not); here they are FILE_PIPE. */
static int classify(const struct dump_ctx *c, struct fd_ent *e)
{
	mode_t m = e->st.st_mode;

	if (S_ISSOCK(m) || str_starts(e->link, "socket:")) {
		/* family, type, peer and state are checked when it is dumped */
		e->kind = FILE_KIND__FILE_UNIX_SK;
		return 0;
	}
	if (str_starts(e->link, "anon_inode:")) {
		if (fd_anon_kind(e->link, &e->kind) == 0)
			return 0;
		return unsupported(c, e, "an anonymous-inode file (inotify, fanotify, "
					 "userfaultfd, pidfd, ...)");
	}
	if (str_starts(e->link, "/memfd:")) {
		if (!S_ISREG(m) || e->st.st_size > (off_t)GHOST_MAX)
			return unsupported(c, e, "a memfd larger than the 64 MiB carried in images");
		e->kind = FILE_KIND__FILE_REG; /* contents carried like a ghost file */
		return 0;
	}
	/* the link of a POSIX message queue is relative to the mqueue mount */
	if (e->fs_type == 0x19800202 /* MQUEUE_MAGIC */)
		return unsupported(c, e, "a POSIX message queue descriptor");
	if (S_ISFIFO(m)) {
		if (str_starts(e->link, "pipe:[")) {
			e->kind = FILE_KIND__FILE_PIPE;
			return 0;
		}
		e->kind = FILE_KIND__FILE_FIFO;
		return check_path(c, e);
	}
	if (S_ISREG(m))
		e->kind = FILE_KIND__FILE_REG;
	else if (S_ISDIR(m))
		e->kind = FILE_KIND__FILE_DIR;
	else if (S_ISBLK(m))
		e->kind = FILE_KIND__FILE_BLK;
	else if (S_ISCHR(m)) {
		if (is_tty_major(major(e->st.st_rdev))) {
			e->kind = FILE_KIND__FILE_EXTERNAL;
			return 0;
		}
		e->kind = FILE_KIND__FILE_CHR;
	} else
		return unsupported(c, e, "a file of unknown type");
	return check_path(c, e);
}

/* Link, fdinfo and fstat of one fd. */
static int collect_ent(const struct dump_ctx *c, struct fd_ent *e)
{
	char name[32], buf[PATH_MAX + 1];

	snprintf(name, sizeof(name), "fd/%d", e->fd);
	ssize_t n = readlinkat(c->procfd, name, buf, sizeof(buf));
	if (n < 0)
		return pr_perror("cannot read link of fd %d of pid %d", e->fd, c->pid);
	if ((size_t)n >= sizeof(buf)) {
		pr_err("link of fd %d of pid %d is too long", e->fd, c->pid);
		return -ENAMETOOLONG;
	}
	e->link = strndup(buf, (size_t)n);
	if (!e->link)
		return pr_errno(-ENOMEM, "fd %d of pid %d", e->fd, c->pid);

	snprintf(name, sizeof(name), "fdinfo/%d", e->fd);
	_cleanup_free_ char *info = read_file_at(c->procfd, name, FDINFO_MAX, NULL);
	if (!info)
		return pr_perror("cannot read /proc/%d/fdinfo/%d (%s)", c->pid, e->fd, e->link);
	struct proc_fdinfo fi;
	int ret = proc_parse_fdinfo(info, &fi);
	if (ret)
		return pr_errno(ret, "cannot parse /proc/%d/fdinfo/%d (%s)", c->pid, e->fd,
				e->link);
	e->pos = fi.pos;
	e->flags = fi.flags;

	_cleanup_close_ int dup = sys_pidfd_getfd(c->pidfd, e->fd, 0);
	if (dup < 0)
		return pr_perror("pidfd_getfd of fd %d of pid %d (%s)", e->fd, c->pid, e->link);
	if (fstat(dup, &e->st))
		return pr_perror("fstat of fd %d of pid %d (%s)", e->fd, c->pid, e->link);
	struct statfs sfs;
	e->fs_type = fstatfs(dup, &sfs) == 0 ? (long)sfs.f_type : 0;
	return classify(c, e);
}

/* 1 if fds @a and @b of @pid share one open file description, 0 if not, or -errno. */
static int same_description(pid_t pid, int a, int b)
{
	long r = syscall(SYS_kcmp, pid, pid, KCMP_FILE, a, b);
	if (r < 0)
		return pr_perror("kcmp(KCMP_FILE) of fds %d and %d of pid %d", a, b, pid);
	return r == 0;
}

/* Group the fds by open file description: same (dev, ino) first, then kcmp. */
static int group_descriptions(const struct dump_ctx *c, struct fd_ent *ents, size_t n)
{
	uint32_t next_id = 1;

	for (size_t i = 0; i < n; i++) {
		ents[i].owner = i;
		for (size_t j = 0; j < i; j++) {
			const struct fd_ent *o = &ents[j];
			if (o->owner != j || o->st.st_dev != ents[i].st.st_dev ||
			    o->st.st_ino != ents[i].st.st_ino)
				continue;
			int r = same_description(c->pid, o->fd, ents[i].fd);
			if (r < 0)
				return r;
			if (r) {
				ents[i].owner = j;
				break;
			}
		}
		if (ents[i].owner == i)
			ents[i].id = next_id++;
	}
	return 0;
}

/* A pipe is rebuilt only if it has exactly one read and one write description, both in
 * this task; with one side only, the other side is outside: it is external. */
static int classify_pipes(const struct dump_ctx *c, struct fd_ent *ents, size_t n)
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
		if (!readers || !writers) {
			/* every description of this pipe in the task gets the same answer */
			for (size_t j = i; j < n; j++)
				if (ents[j].kind == FILE_KIND__FILE_PIPE &&
				    ents[j].st.st_ino == e->st.st_ino &&
				    ents[j].st.st_dev == e->st.st_dev)
					ents[j].kind = FILE_KIND__FILE_EXTERNAL;
		}
	}
	return 0;
}

/* Copy the bytes queued in pipe @dup (fd @fd of the task) without consuming them: tee(2)
 * them into a temporary pipe as large as the source, then read that one. */
static int pipe_peek(const struct dump_ctx *c, int fd, int dup, uint32_t size,
		     ProtobufCBinaryData *out)
{
	int queued = 0;

	if (ioctl(dup, FIONREAD, &queued) < 0)
		return pr_perror("FIONREAD on fd %d of pid %d", fd, c->pid);
	if (queued <= 0)
		return 0;
	int p[2];
	if (pipe2(p, O_CLOEXEC | O_NONBLOCK))
		return pr_perror("pipe2");
	_cleanup_close_ int rd = p[0];
	_cleanup_close_ int wr = p[1];
	if (fcntl(wr, F_SETPIPE_SZ, size) < 0)
		return pr_perror("cannot size a temporary pipe to %u bytes for fd %d of pid %d",
				 size, fd, c->pid);
	ssize_t n = tee(dup, wr, (size_t)queued, SPLICE_F_NONBLOCK);
	if (n < 0)
		return pr_perror("tee from fd %d of pid %d", fd, c->pid);
	if (n != queued) {
		pr_err("tee from fd %d of pid %d copied %zd of %d queued bytes", fd, c->pid, n,
		       queued);
		return -EIO;
	}
	_cleanup_free_ uint8_t *buf = malloc((size_t)queued);
	if (!buf)
		return pr_errno(-ENOMEM, "pipe data of fd %d of pid %d", fd, c->pid);
	int ret = read_all(rd, buf, (size_t)queued);
	if (ret)
		return pr_errno(ret, "reading the pipe data of fd %d of pid %d", fd, c->pid);
	out->data = steal_ptr(&buf);
	out->len = (size_t)queued;
	return 0;
}

static int pipe_dump(const struct dump_ctx *c, const struct fd_ent *e, FileDesc *d)
{
	d->pipe = malloc(sizeof(*d->pipe));
	if (!d->pipe)
		return pr_errno(-ENOMEM, "fd %d of pid %d", e->fd, c->pid);
	pipe_data__init(d->pipe);
	d->pipe->ino = e->st.st_ino;

	_cleanup_close_ int dup = sys_pidfd_getfd(c->pidfd, e->fd, 0);
	if (dup < 0)
		return pr_perror("pidfd_getfd of fd %d of pid %d (%s)", e->fd, c->pid, e->link);
	int sz = fcntl(dup, F_GETPIPE_SZ);
	if (sz < 0)
		return pr_perror("F_GETPIPE_SZ on fd %d of pid %d", e->fd, c->pid);
	d->pipe->size = (uint32_t)sz;
	if ((e->flags & O_ACCMODE) != O_RDONLY)
		return 0;
	int ret = pipe_peek(c, e->fd, dup, (uint32_t)sz, &d->pipe->data);
	if (ret)
		return ret;
	d->pipe->has_data = d->pipe->data.len > 0;
	return 0;
}

static int desc_dump(const struct dump_ctx *c, const struct fd_ent *e, FileDesc **out)
{
	FileDesc *d = malloc(sizeof(*d));
	if (!d)
		return pr_errno(-ENOMEM, "fd %d of pid %d", e->fd, c->pid);
	file_desc__init(d);
	*out = d;  /* owned by the caller from now on, complete or not */
	d->id = e->id;
	d->kind = e->kind;
	d->flags = e->flags & ~(unsigned int)O_CLOEXEC;
	d->has_dev = d->has_ino = true;
	d->dev = e->st.st_dev;
	d->ino = e->st.st_ino;
	d->link = strdup(e->link);
	if (!d->link)
		return pr_errno(-ENOMEM, "fd %d of pid %d", e->fd, c->pid);
	if (S_ISCHR(e->st.st_mode) || S_ISBLK(e->st.st_mode)) {
		d->has_rdev = true;
		d->rdev = e->st.st_rdev;
	}
	switch (e->kind) {
	case FILE_KIND__FILE_PIPE:
		return pipe_dump(c, e, d);
	case FILE_KIND__FILE_UNIX_SK: {
		_cleanup_close_ int dup = sys_pidfd_getfd(c->pidfd, e->fd, 0);
		if (dup < 0)
			return pr_perror("pidfd_getfd of fd %d of pid %d (%s)", e->fd, c->pid,
					 e->link);
		return sk_unix_dump(c->pid, e->fd, dup, e->link, e->st.st_ino, d);
	}
	case FILE_KIND__FILE_EXTERNAL:
		return 0;
	case FILE_KIND__FILE_EVENTFD:
	case FILE_KIND__FILE_TIMERFD:
	case FILE_KIND__FILE_SIGNALFD:
	case FILE_KIND__FILE_EPOLL:
		return fd_anon_dump(c->pid, c->procfd, e->fd, d);
	case FILE_KIND__FILE_REG:
		d->has_size = true;
		d->size = (uint64_t)e->st.st_size;
		/* fall through */
	case FILE_KIND__FILE_DIR:
		d->has_pos = true;
		d->pos = e->pos;
		break;
	default:
		break;
	}
	bool memfd = str_starts(e->link, "/memfd:");
	if (is_ghost(e) || memfd) {
		/* unlinked or memfd: carry the contents; recreated at restore */
		size_t len = (size_t)e->st.st_size;
		d->path = strndup(e->link, strlen(e->link) - (str_ends(e->link, DELETED_SUFFIX)
								? strlen(DELETED_SUFFIX)
								: 0));
		if (memfd) {
			d->memfd = d->path ? strdup(d->path + strlen("/memfd:")) : NULL;
			if (!d->memfd)
				return pr_errno(-ENOMEM, "fd %d of pid %d", e->fd, c->pid);
		} else {
			d->has_deleted = d->deleted = true;
		}
		d->has_mode = true;
		d->mode = e->st.st_mode & 07777;
		_cleanup_close_ int dup = sys_pidfd_getfd(c->pidfd, e->fd, 0);
		if (dup < 0)
			return pr_perror("pidfd_getfd of fd %d of pid %d", e->fd, c->pid);
		d->has_ghost = true;
		d->ghost.data = malloc(len ? len : 1);
		if (!d->path || !d->ghost.data)
			return pr_errno(-ENOMEM, "fd %d of pid %d", e->fd, c->pid);
		for (size_t off = 0; off < len;) {
			ssize_t n = pread(dup, d->ghost.data + off, len - off, (off_t)off);
			if (n <= 0) {
				if (n == 0)
					errno = EIO;
				return pr_perror("read deleted file %s (fd %d of pid %d)", d->path,
						 e->fd, c->pid);
			}
			off += (size_t)n;
		}
		d->ghost.len = len;
		if (memfd) {
			int seals = fcntl(dup, F_GET_SEALS);
			d->has_seals = seals > 0;
			d->seals = seals > 0 ? (uint32_t)seals : 0;
		}
		return 0;
	}
	d->path = strdup(e->link);
	if (!d->path)
		return pr_errno(-ENOMEM, "fd %d of pid %d", e->fd, c->pid);
	/* unknown (neither view has that inode: renamed, over-mounted) is left unset */
	int view = path_view(c->procfd, e->link, e->st.st_dev, e->st.st_ino);
	d->has_in_task_root = view >= 0;
	d->in_task_root = view == 1;
	return 0;
}

/* Build the Files message from the classified, grouped entries. */
static int build_files(const struct dump_ctx *c, const struct fd_ent *ents, size_t n,
		       Files *f)
{
	f->files = calloc(n ? n : 1, sizeof(*f->files));
	f->fds = calloc(n ? n : 1, sizeof(*f->fds));
	if (!f->files || !f->fds)
		return pr_errno(-ENOMEM, "fds of pid %d", c->pid);
	for (size_t i = 0; i < n; i++) {
		if (ents[i].owner != i)
			continue;
		int ret = desc_dump(c, &ents[i], &f->files[f->n_files]);
		if (f->files[f->n_files])
			f->n_files++;
		if (ret)
			return ret;
	}
	for (size_t i = 0; i < n; i++) {
		Fd *fd = malloc(sizeof(*fd));
		if (!fd)
			return pr_errno(-ENOMEM, "fds of pid %d", c->pid);
		fd__init(fd);
		fd->fd = ents[i].fd;
		fd->file_id = ents[ents[i].owner].id;
		fd->cloexec = (ents[i].flags & O_CLOEXEC) != 0;
		f->fds[f->n_fds++] = fd;
	}
	return 0;
}

static void ents_free(struct fd_ent *ents, size_t n)
{
	for (size_t i = 0; ents && i < n; i++)
		free(ents[i].link);
	free(ents);
}

int files_dump(struct dump_ctx *c)
{
	_cleanup_free_ int *nums = NULL;
	size_t n = 0;
	int ret = list_fds(c, &nums, &n);
	if (ret)
		return ret;

	struct fd_ent *ents = calloc(n ? n : 1, sizeof(*ents));
	if (!ents)
		return pr_errno(-ENOMEM, "fds of pid %d", c->pid);
	Files *f = malloc(sizeof(*f));
	if (!f) {
		ents_free(ents, n);
		return pr_errno(-ENOMEM, "fds of pid %d", c->pid);
	}
	files__init(f);

	for (size_t i = 0; i < n && !ret; i++) {
		ents[i].fd = nums[i];
		ret = collect_ent(c, &ents[i]);
	}
	if (!ret)
		ret = group_descriptions(c, ents, n);
	if (!ret)
		ret = classify_pipes(c, ents, n);
	if (!ret)
		ret = build_files(c, ents, n, f);
	ents_free(ents, n);
	if (ret) {
		protobuf_c_message_free_unpacked(&f->base, NULL);
		return ret;
	}
	pr_debug("pid %d: %zu fds, %zu open file descriptions", c->pid, f->n_fds, f->n_files);
	c->files = f;
	return 0;
}

int files_max_fd(const Files *f)
{
	int max = -1;
	for (size_t i = 0; f && i < f->n_fds; i++)
		if (f->fds[i] && f->fds[i]->fd > max)
			max = f->fds[i]->fd;
	return max;
}

/* ------------------------------------------------------------------------------------ */
/* Restore (in the child)                                                               */
/* ------------------------------------------------------------------------------------ */

struct rst_files {
	const Files *f;
	int svc_lo;
	int stage_lo;      /* staged fds are >= this: above every target fd */
	int *staged;       /* per FileDesc: the staged fd, or -1 */
	bool *inherited;   /* per Fd: external, kept as inherited from stasis */
	bool *shared;      /* per FileDesc: dup of a tree-wide description */
	const int *gfd;    /* tree-wide descriptions by id (restore of a tree) */
	uint32_t n_gfd;
};

static ssize_t desc_index(const Files *f, uint32_t id)
{
	for (size_t i = 0; i < f->n_files; i++)
		if (f->files[i]->id == id)
			return (ssize_t)i;
	return -1;
}

/* The first fd number that refers to description @i (for messages; -1 if none). */
static int desc_fd(const Files *f, size_t i)
{
	for (size_t k = 0; k < f->n_fds; k++)
		if (f->fds[k]->file_id == f->files[i]->id)
			return f->fds[k]->fd;
	return -1;
}

static const char *desc_name(const FileDesc *d)
{
	return d->path ? d->path : d->link ? d->link : "?";
}

static bool is_path_kind(FileKind k)
{
	return k == FILE_KIND__FILE_REG || k == FILE_KIND__FILE_DIR ||
	       k == FILE_KIND__FILE_CHR || k == FILE_KIND__FILE_BLK ||
	       k == FILE_KIND__FILE_FIFO;
}

/* Images are untrusted: check every reference and bound before acting on any. */
static int validate_image(const Files *f, int svc_lo)
{
	for (size_t i = 0; i < f->n_files; i++) {
		const FileDesc *d = f->files[i];
		if (desc_index(f, d->id) != (ssize_t)i) {
			pr_err("files image: duplicate file id %u", d->id);
			return -EINVAL;
		}
		if (is_path_kind(d->kind)) {
			if (!d->path || d->path[0] != '/') {
				pr_err("files image: file %u has no absolute path", d->id);
				return -EINVAL;
			}
		} else if (d->kind == FILE_KIND__FILE_PIPE) {
			if (!d->pipe || d->pipe->size > PIPE_IMG_MAX ||
			    (d->pipe->has_data && d->pipe->data.len > d->pipe->size)) {
				pr_err("files image: pipe %u has bad or missing pipe data", d->id);
				return -EINVAL;
			}
		} else if (d->kind == FILE_KIND__FILE_UNIX_SK) {
			int ret = sk_unix_validate(d);
			if (ret)
				return ret;
		} else if (fd_anon_is_kind(d->kind)) {
			int ret = fd_anon_validate(d);
			if (ret)
				return ret;
		} else if (d->kind != FILE_KIND__FILE_EXTERNAL) {
			pr_err("files image: file %u has unknown kind %d", d->id, (int)d->kind);
			return -EINVAL;
		}
	}
	for (size_t k = 0; k < f->n_fds; k++) {
		const Fd *fd = f->fds[k];
		if (fd->fd < 0 || fd->fd >= svc_lo) {
			pr_err("files image: fd %d out of range [0, %d)", fd->fd, svc_lo);
			return -EINVAL;
		}
		if (desc_index(f, fd->file_id) < 0) {
			pr_err("files image: fd %d refers to unknown file id %u", fd->fd,
			       fd->file_id);
			return -EINVAL;
		}
		for (size_t j = 0; j < k; j++)
			if (f->fds[j]->fd == fd->fd) {
				pr_err("files image: fd %d appears twice", fd->fd);
				return -EINVAL;
			}
	}
	return 0;
}

/* Move @fd (consumed) to the lowest free number >= @lo. */
static int stage_fd(int fd, int lo, int target, const char *name)
{
	int r = fcntl(fd, F_DUPFD_CLOEXEC, lo);
	int err = errno;
	close(fd);
	if (r < 0)
		return pr_errno(-err, "restore fd %d (%s): cannot move it above fd %d", target,
				name, lo);
	return r;
}

static bool mode_matches(FileKind k, mode_t m)
{
	switch (k) {
	case FILE_KIND__FILE_REG: return S_ISREG(m);
	case FILE_KIND__FILE_DIR: return S_ISDIR(m);
	case FILE_KIND__FILE_CHR: return S_ISCHR(m);
	case FILE_KIND__FILE_BLK: return S_ISBLK(m);
	case FILE_KIND__FILE_FIFO: return S_ISFIFO(m);
	default: return false;
	}
}

/* open() a named FIFO without blocking on a missing peer: an O_RDWR keeper makes both
 * a reader and a writer exist while the real open (O_NONBLOCK) happens; the status
 * flags are set back to the dumped ones afterwards. */
static int open_fifo(const FileDesc *d, int target, int flags)
{
	_cleanup_close_ int keep = open(d->path, O_RDWR | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
	if (keep < 0)
		return pr_perror("restore fd %d: cannot open FIFO %s", target, d->path);
	struct stat st;
	if (fstat(keep, &st))
		return pr_perror("restore fd %d: fstat %s", target, d->path);
	if (!S_ISFIFO(st.st_mode)) {
		pr_err("restore fd %d: %s is no longer a FIFO", target, d->path);
		return -EINVAL;
	}
	int fd = open(d->path, flags | O_NONBLOCK);
	if (fd < 0)
		return pr_perror("restore fd %d: cannot open FIFO %s", target, d->path);
	return fd;
}

/* An unlinked file: recreated beside its old path (or in /tmp if that directory is gone)
 * with its contents, under a name derived from its identity so that every description of
 * the same file opens the same new inode; ghost_unlink() removes the names once every
 * description is open. */
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

static bool is_ghost_desc(const FileDesc *d)
{
	return d->kind == FILE_KIND__FILE_REG && d->has_deleted && d->deleted;
}

static void ghost_unlink(const Files *f)
{
	char path[PATH_MAX];
	for (size_t i = 0; i < f->n_files; i++) {
		if (!is_ghost_desc(f->files[i]))
			continue;
		for (int t = 0; t < 2; t++) {
			ghost_path(f->files[i], t, path, sizeof(path));
			unlink(path);
		}
	}
}

static int open_ghost(const FileDesc *d, int target, int flags)
{
	char path[PATH_MAX];
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
	int fd = open(path, flags);
	if (fd < 0)
		return pr_perror("restore fd %d: recreate deleted file %s", target, d->path);
	if (d->has_pos && lseek(fd, (off_t)d->pos, SEEK_SET) < 0) {
		int e = pr_perror("restore fd %d: seek %s", target, d->path);
		close(fd);
		return e;
	}
	return fd;
}

/* A memfd: a new one with the same name, contents, offset and seals. */
static int open_memfd(const FileDesc *d, int target, int flags)
{
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

/* Open a path-based description; returns a (low, temporary) fd or -errno. */
/* Open @d's path: in this process's view (@rootfd -1), or inside the mount tree whose
 * root directory is @rootfd (a restored task's /proc/PID/root: its mount namespace). */
static int open_path_desc_at(const FileDesc *d, int target, int rootfd)
{
	int flags = (int)(d->flags & ~(unsigned int)OPEN_DROP) | O_CLOEXEC | O_NOCTTY;

	if (is_ghost_desc(d))
		return open_ghost(d, target, flags);
	if (d->kind == FILE_KIND__FILE_REG && d->memfd)
		return open_memfd(d, target, flags);

	if (d->kind == FILE_KIND__FILE_FIFO)
		return open_fifo(d, target, flags);
	struct open_how how = { .flags = (uint64_t)flags, .resolve = RESOLVE_IN_ROOT };
	_cleanup_close_ int fd = rootfd < 0 ? open(d->path, flags)
					    : sys_openat2(rootfd, d->path, &how, sizeof(how));
	if (fd < 0)
		return pr_perror("restore fd %d: cannot open %s", target, d->path);
	struct stat st;
	if (fstat(fd, &st))
		return pr_perror("restore fd %d: fstat %s", target, d->path);
	if (!mode_matches(d->kind, st.st_mode)) {
		pr_err("restore fd %d: %s changed type since the dump", target, d->path);
		return -EINVAL;
	}
	if (d->kind == FILE_KIND__FILE_REG && d->has_size && (uint64_t)st.st_size != d->size)
		pr_warn("restore fd %d: %s has size %lld, was %llu at dump", target, d->path,
			(long long)st.st_size, (unsigned long long)d->size);
	if ((d->kind == FILE_KIND__FILE_CHR || d->kind == FILE_KIND__FILE_BLK) && d->has_rdev &&
	    st.st_rdev != d->rdev)
		pr_warn("restore fd %d: %s is device %u:%u, was %u:%u at dump", target, d->path,
			major(st.st_rdev), minor(st.st_rdev), major(d->rdev), minor(d->rdev));
	if (d->kind == FILE_KIND__FILE_REG && d->has_pos && !(d->flags & O_PATH) &&
	    lseek(fd, (off_t)d->pos, SEEK_SET) < 0)
		return pr_perror("restore fd %d: cannot seek %s to %llu", target, d->path,
				 (unsigned long long)d->pos);
	return take_fd(&fd);
}

static int open_path_desc(const FileDesc *d, int target)
{
	return open_path_desc_at(d, target, -1);
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
	       "end", (unsigned long long)d->pipe->ino, desc_fd(f, i));
	return -EINVAL;
}

/* Create the pipe for descriptions @i and its peer, fill it, stage both ends. */
static int open_pipe(struct rst_files *s, size_t i)
{
	const Files *f = s->f;
	size_t peer;
	int ret = pipe_peer(f, i, &peer);
	if (ret)
		return ret;
	bool i_reads = (f->files[i]->flags & O_ACCMODE) == O_RDONLY;
	size_t ri = i_reads ? i : peer, wi = i_reads ? peer : i;
	const PipeData *pd = f->files[ri]->pipe;
	int rfd = desc_fd(f, ri);

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
	ret = stage_fd(take_fd(&rd), s->stage_lo, rfd, f->files[ri]->link ?: "pipe");
	if (ret < 0)
		return ret;
	s->staged[ri] = ret;
	ret = stage_fd(take_fd(&wr), s->stage_lo, desc_fd(f, wi), f->files[wi]->link ?: "pipe");
	if (ret < 0)
		return ret;
	s->staged[wi] = ret;
	return 0;
}

/* Create the socketpair of unix socket description @i and its peer (in this task),
 * queue their data, stage both ends. */
static int open_unix_pair(struct rst_files *s, size_t i)
{
	const Files *f = s->f;
	ssize_t peer = -1;

	for (size_t j = 0; j < f->n_files; j++)
		if (sk_unix_is_peer(f->files[i], f->files[j])) {
			peer = (ssize_t)j;
			break;
		}
	if (peer < 0) {
		pr_err("files image: unix socket %llu (fd %d) has no other end in the task",
		       (unsigned long long)f->files[i]->unix_sk->ino, desc_fd(f, i));
		return -EINVAL;
	}
	size_t j = (size_t)peer;
	int a, b;
	int ret = sk_unix_open_pair(f->files[i], f->files[j], &a, &b);
	if (ret)
		return ret;
	ret = stage_fd(a, s->stage_lo, desc_fd(f, i), desc_name(f->files[i]));
	if (ret < 0) {
		close(b);
		return ret;
	}
	s->staged[i] = ret;
	ret = stage_fd(b, s->stage_lo, desc_fd(f, j), desc_name(f->files[j]));
	if (ret < 0)
		return ret;
	s->staged[j] = ret;
	return 0;
}

/* External descriptions: each Fd keeps stasis's own fd of that number if there is one;
 * the others share one /dev/null opened with the dumped access mode. Must run before
 * anything else is opened or placed. */
static int prepare_externals(struct rst_files *s)
{
	const Files *f = s->f;

	for (size_t k = 0; k < f->n_fds; k++) {
		const Fd *fd = f->fds[k];
		size_t i = (size_t)desc_index(f, fd->file_id);
		const FileDesc *d = f->files[i];
		if (d->kind != FILE_KIND__FILE_EXTERNAL)
			continue;
		int fl = fcntl(fd->fd, F_GETFL);
		if (fl >= 0) {
			s->inherited[k] = true;
			if ((fl & O_ACCMODE) != (int)(d->flags & O_ACCMODE))
				pr_warn("restore fd %d (%s): inherited fd has access mode %o, was %o",
					fd->fd, desc_name(d), fl & O_ACCMODE, d->flags & O_ACCMODE);
			continue;
		}
		if (s->staged[i] >= 0)
			continue;
		int tmp = open("/dev/null", (int)(d->flags & O_ACCMODE) | O_CLOEXEC);
		if (tmp < 0)
			return pr_perror("restore fd %d: cannot open /dev/null", fd->fd);
		int r = stage_fd(tmp, s->stage_lo, fd->fd, "/dev/null");
		if (r < 0)
			return r;
		s->staged[i] = r;
		pr_warn("restore fd %d: external file %s is not open in stasis; /dev/null "
			"takes its place", fd->fd, desc_name(d));
	}
	return 0;
}

static int open_descriptions(struct rst_files *s)
{
	const Files *f = s->f;

	/* Descriptions the restoring stasis opened for the whole tree: inherited. */
	for (size_t i = 0; i < f->n_files && s->gfd; i++) {
		uint32_t id = f->files[i]->id;
		if (id >= s->n_gfd || s->gfd[id] < 0)
			continue;
		int tmp = fcntl(s->gfd[id], F_DUPFD_CLOEXEC, s->stage_lo);
		if (tmp < 0)
			return pr_perror("restore fd %d (%s): dup the shared description",
					 desc_fd(f, i), desc_name(f->files[i]));
		s->staged[i] = tmp;
		s->shared[i] = true;
	}
	for (size_t i = 0; i < f->n_files; i++) {
		const FileDesc *d = f->files[i];
		int target = desc_fd(f, i);
		if (s->staged[i] >= 0 || d->kind == FILE_KIND__FILE_EXTERNAL || target < 0)
			continue;
		if (d->kind == FILE_KIND__FILE_PIPE) {
			int ret = open_pipe(s, i);
			if (ret)
				return ret;
		} else if (d->kind == FILE_KIND__FILE_UNIX_SK) {
			int ret = open_unix_pair(s, i);
			if (ret)
				return ret;
		} else if (d->kind == FILE_KIND__FILE_EPOLL) {
			continue; /* once every other fd is placed: restore_epolls() */
		} else if (fd_anon_is_kind(d->kind)) {
			int tmp = fd_anon_open(d, target);
			if (tmp < 0)
				return tmp;
			int r = stage_fd(tmp, s->stage_lo, target, desc_name(d));
			if (r < 0)
				return r;
			s->staged[i] = r;
		} else {
			int tmp = open_path_desc(d, target);
			if (tmp < 0)
				return tmp;
			int r = stage_fd(tmp, s->stage_lo, target, d->path);
			if (r < 0)
				return r;
			s->staged[i] = r;
		}
	}
	/* status flags last: pipes and sockets were created non-blocking to be refilled */
	for (size_t i = 0; i < f->n_files; i++) {
		const FileDesc *d = f->files[i];
		if (s->staged[i] < 0 || d->kind == FILE_KIND__FILE_EXTERNAL || (d->flags & O_PATH) ||
		    s->shared[i])
			continue;
		if (fcntl(s->staged[i], F_SETFL, (int)(d->flags & SETFL_MASK)) < 0)
			return pr_perror("restore fd %d (%s): cannot set status flags %o",
					 desc_fd(f, i), desc_name(d), d->flags & SETFL_MASK);
	}
	return 0;
}

static int place_fds(const struct rst_files *s)
{
	const Files *f = s->f;

	for (size_t k = 0; k < f->n_fds; k++) {
		const Fd *fd = f->fds[k];
		size_t i = (size_t)desc_index(f, fd->file_id);
		if (f->files[i]->kind == FILE_KIND__FILE_EPOLL && s->staged[i] < 0)
			continue; /* restore_epolls() */
		if (s->inherited[k]) {
			if (fcntl(fd->fd, F_SETFD, fd->cloexec ? FD_CLOEXEC : 0) < 0)
				return pr_perror("restore fd %d: F_SETFD", fd->fd);
			continue;
		}
		if (dup3(s->staged[i], fd->fd, fd->cloexec ? O_CLOEXEC : 0) < 0)
			return pr_perror("restore fd %d (%s): dup3", fd->fd,
					 desc_name(f->files[i]));
	}
	return 0;
}

static bool epoll_done(const struct rst_files *s, const bool *done, const FileDesc *d)
{
	const Files *f = s->f;
	for (size_t t = 0; t < d->epoll->n_targets; t++) {
		int tfd = d->epoll->targets[t]->tfd;
		for (size_t k = 0; k < f->n_fds; k++) {
			if (f->fds[k]->fd != tfd)
				continue;
			size_t j = (size_t)desc_index(f, f->fds[k]->file_id);
			if (f->files[j]->kind == FILE_KIND__FILE_EPOLL && s->staged[j] < 0 && !done[j])
				return false;
		}
	}
	return true;
}

/* Epolls, once every other fd is placed (their targets are found by fd number). An
 * epoll watching another epoll waits for it: the kernel forbids cycles, so each pass
 * makes progress. */
static int restore_epolls(struct rst_files *s)
{
	const Files *f = s->f;
	_cleanup_free_ bool *done = calloc(f->n_files ? f->n_files : 1, sizeof(bool));
	if (!done)
		return pr_errno(-ENOMEM, "restore epolls");
	for (;;) {
		bool progress = false, left = false;
		for (size_t i = 0; i < f->n_files; i++) {
			const FileDesc *d = f->files[i];
			int target = desc_fd(f, i);
			if (d->kind != FILE_KIND__FILE_EPOLL || s->staged[i] >= 0 || done[i] ||
			    target < 0)
				continue;
			if (!epoll_done(s, done, d)) {
				left = true;
				continue;
			}
			int tmp = fd_epoll_open(d, target);
			if (tmp < 0)
				return tmp;
			if (fcntl(tmp, F_SETFL, (int)(d->flags & SETFL_MASK)) < 0) {
				int ret = pr_perror("restore fd %d: cannot set status flags %o", target,
						    d->flags & SETFL_MASK);
				close(tmp);
				return ret;
			}
			int st = stage_fd(tmp, s->stage_lo, target, desc_name(d));
			if (st < 0)
				return st;
			for (size_t k = 0; k < f->n_fds; k++) {
				const Fd *fd = f->fds[k];
				if (fd->file_id != d->id)
					continue;
				if (dup3(st, fd->fd, fd->cloexec ? O_CLOEXEC : 0) < 0) {
					int ret = pr_perror("restore fd %d (%s): dup3", fd->fd,
							    desc_name(d));
					close(st);
					return ret;
				}
			}
			close(st);
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

static int close_fd_range(unsigned int lo, unsigned int hi)
{
	if (kdat_has(KD_CLOSE_RANGE)) {
		if (syscall(SYS_close_range, lo, hi, 0) == 0)
			return 0;
		if (errno != ENOSYS)
			return pr_perror("close_range(%u, %u)", lo, hi);
	}
	for (unsigned int fd = lo; fd <= hi; fd++)
		close((int)fd);
	return 0;
}

/* Close every fd below svc_lo that is not one of the image's. */
static int close_gaps(const struct rst_files *s)
{
	const Files *f = s->f;
	_cleanup_free_ int *t = malloc((f->n_fds ? f->n_fds : 1) * sizeof(*t));
	if (!t)
		return pr_errno(-ENOMEM, "restore fds");
	for (size_t k = 0; k < f->n_fds; k++)
		t[k] = f->fds[k]->fd;
	qsort(t, f->n_fds, sizeof(*t), cmp_int);
	int next = 0;
	for (size_t k = 0; k <= f->n_fds; k++) {
		int upto = k < f->n_fds ? t[k] : s->svc_lo;
		if (upto > next) {
			int ret = close_fd_range((unsigned int)next, (unsigned int)upto - 1);
			if (ret)
				return ret;
		}
		next = upto + 1;
	}
	return 0;
}

static void rst_files_release(struct rst_files *s)
{
	for (size_t i = 0; s->staged && i < s->f->n_files; i++)
		if (s->staged[i] >= 0)
			close(s->staged[i]);
	free(s->staged);
	free(s->inherited);
	free(s->shared);
}

int files_restore_child(struct rst_ctx *c)
{
	const Files *f = c->files;
	if (!f) {
		pr_err("restore: no fd table for pid %d", c->pid);
		return -EINVAL;
	}
	if (c->svc_lo <= files_max_fd(f)) {
		pr_err("restore: service fds start at %d, below fd %d of the image", c->svc_lo,
		       files_max_fd(f));
		return -EINVAL;
	}
	int ret = validate_image(f, c->svc_lo);
	if (ret)
		return ret;

	struct rst_files s = {
		.f = f,
		.svc_lo = c->svc_lo,
		.stage_lo = files_max_fd(f) + 1,
		.staged = malloc((f->n_files ? f->n_files : 1) * sizeof(int)),
		.inherited = calloc(f->n_fds ? f->n_fds : 1, sizeof(bool)),
		.shared = calloc(f->n_files ? f->n_files : 1, sizeof(bool)),
		.gfd = c->gfd,
		.n_gfd = c->n_gfd,
	};
	if (!s.staged || !s.inherited || !s.shared) {
		rst_files_release(&s);
		return pr_errno(-ENOMEM, "restore fds");
	}
	for (size_t i = 0; i < f->n_files; i++)
		s.staged[i] = -1;

	ret = prepare_externals(&s);
	if (!ret)
		ret = open_descriptions(&s);
	ghost_unlink(f);
	if (!ret)
		ret = place_fds(&s);
	if (!ret)
		ret = restore_epolls(&s);
	rst_files_release(&s);
	if (!ret)
		ret = close_gaps(&s);
	return ret;
}

/* ------------------------------------------------------------------------------------ */
/* Process trees                                                                        */
/* ------------------------------------------------------------------------------------ */

struct gdesc {
	pid_t pid;
	int fd;
	uint64_t dev, ino;
	uint32_t id;
};

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

/* Every unix socket's other end must be in the tree (this process or another). */
static int check_unix_peers(struct dump_ctx **procs, size_t n)
{
	for (size_t p = 0; p < n; p++) {
		const Files *f = procs[p]->files;
		for (size_t i = 0; i < f->n_files; i++) {
			const FileDesc *d = f->files[i];
			if (d->kind != FILE_KIND__FILE_UNIX_SK)
				continue;
			bool found = false;
			for (size_t q = 0; q < n && !found; q++)
				for (size_t j = 0; j < procs[q]->files->n_files && !found; j++)
					found = sk_unix_is_peer(d, procs[q]->files->files[j]);
			if (!found) {
				pr_err("fd %d of pid %d is a unix socket (%s) whose peer "
				       "(socket:[%llu]) is outside the dumped tree: not supported yet",
				       desc_fd(f, i), procs[p]->pid, d->link ?: "?",
				       (unsigned long long)d->unix_sk->peer_ino);
				return -EOPNOTSUPP;
			}
		}
	}
	return 0;
}

int files_merge_tree(struct dump_ctx **procs, size_t n)
{
	struct gdesc *g = NULL;
	size_t ng = 0;
	uint32_t next = 1;
	int ret = check_unix_peers(procs, n);

	if (ret)
		return ret;
	if (n < 2)
		return 0; /* one process: its own ids are the tree's */
	for (size_t p = 0; p < n && !ret; p++) {
		Files *f = procs[p]->files;
		_cleanup_free_ uint32_t *newid = calloc(f->n_files + 1, sizeof(*newid));
		if (!newid) {
			ret = -ENOMEM;
			break;
		}
		for (size_t i = 0; i < f->n_files && !ret; i++) {
			const FileDesc *d = f->files[i];
			int fd = desc_fd(f, i);
			uint32_t id = 0;
			for (size_t k = 0; k < ng && !id; k++) {
				if (g[k].dev != d->dev || g[k].ino != d->ino)
					continue;
				long r = syscall(SYS_kcmp, g[k].pid, procs[p]->pid, KCMP_FILE, g[k].fd, fd);
				if (r < 0) {
					ret = pr_perror("kcmp fd %d of pid %d with fd %d of pid %d", g[k].fd,
							g[k].pid, fd, procs[p]->pid);
					break;
				}
				if (r == 0)
					id = g[k].id;
			}
			if (ret)
				break;
			if (!id) {
				struct gdesc *ng2 = realloc(g, (ng + 1) * sizeof(*g));
				if (!ng2) {
					ret = -ENOMEM;
					break;
				}
				g = ng2;
				id = next++;
				g[ng++] = (struct gdesc){ procs[p]->pid, fd, d->dev, d->ino, id };
			}
			newid[i] = id;
		}
		for (size_t k = 0; k < f->n_fds && !ret; k++) {
			ssize_t i = desc_index(f, f->fds[k]->file_id);
			f->fds[k]->file_id = newid[i];
		}
		for (size_t i = 0; i < f->n_files && !ret; i++)
			f->files[i]->id = newid[i];
	}
	/* An epoll used by several processes is not rebuilt yet: each restored process
	 * would need its own targets placed before the shared epoll is filled. */
	for (size_t p = 0; p < n && !ret; p++) {
		const Files *f = procs[p]->files;
		for (size_t i = 0; i < f->n_files && !ret; i++) {
			const FileDesc *d = f->files[i];
			if (d->kind != FILE_KIND__FILE_EPOLL)
				continue;
			for (size_t q = p + 1; q < n && !ret; q++)
				if (desc_index(procs[q]->files, d->id) >= 0) {
					pr_err("fd %d of pid %d is an epoll shared with pid %d: not "
					       "supported yet", desc_fd(f, i), procs[p]->pid,
					       procs[q]->pid);
					ret = -EOPNOTSUPP;
				}
		}
	}
	/* Pipes with their ends in different processes. */
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
				ret = pipe_end_adopt(procs[p], d, desc_fd(f, i));
		}
	}
	free(g);
	return ret;
}

/* Restore of a tree: descriptions used by several processes, every pipe and every unix
 * socketpair are opened
 * once by the restoring stasis before it creates any process; every restore child
 * inherits them and dups what it needs (the offset stays shared). */
static const FileDesc *find_desc(Files *const *f, size_t n, uint32_t id)
{
	for (size_t p = 0; p < n; p++)
		for (size_t i = 0; i < f[p]->n_files; i++)
			if (f[p]->files[i]->id == id)
				return f[p]->files[i];
	return NULL;
}

static const FileDesc *find_pipe_peer(Files *const *f, size_t n, const FileDesc *d)
{
	unsigned want = (d->flags & O_ACCMODE) == O_RDONLY ? O_WRONLY : O_RDONLY;
	for (size_t p = 0; p < n; p++)
		for (size_t i = 0; i < f[p]->n_files; i++) {
			const FileDesc *o = f[p]->files[i];
			if (o->kind == FILE_KIND__FILE_PIPE && o->pipe && o->pipe->ino == d->pipe->ino &&
			    (o->flags & O_ACCMODE) == want)
				return o;
		}
	return NULL;
}

static const FileDesc *find_unix_peer(Files *const *f, size_t n, const FileDesc *d)
{
	for (size_t p = 0; p < n; p++)
		for (size_t i = 0; i < f[p]->n_files; i++)
			if (sk_unix_is_peer(d, f[p]->files[i]))
				return f[p]->files[i];
	return NULL;
}

static int gfd_place(int fd, int base, int *slot)
{
	int r = fcntl(fd, F_DUPFD_CLOEXEC, base);
	int e = errno;
	close(fd);
	if (r < 0)
		return pr_errno(-e, "restore: move a shared file above fd %d", base);
	*slot = r;
	return 0;
}

/* Opened by path in a mount tree: the kinds that may be opened in a task's view. */
static bool by_path(const FileDesc *d)
{
	return (d->kind == FILE_KIND__FILE_REG && !d->memfd && !is_ghost_desc(d)) ||
	       d->kind == FILE_KIND__FILE_DIR || d->kind == FILE_KIND__FILE_CHR ||
	       d->kind == FILE_KIND__FILE_BLK;
}

/* Opened in the mount tree of the task (its path is relative to the task's root). */
static bool deferrable(const FileDesc *d)
{
	return by_path(d) && d->has_in_task_root && d->in_task_root;
}

/* A description of the tree opened once, by path, in this process's view or in the
 * mount tree of @rootfd; status flags set. */
static int open_desc_once(const FileDesc *d, int rootfd)
{
	int fd = fd_anon_is_kind(d->kind) ? fd_anon_open(d, -1) : open_path_desc_at(d, -1, rootfd);
	if (fd < 0)
		return fd;
	if (!(d->flags & O_PATH) && fcntl(fd, F_SETFL, (int)(d->flags & SETFL_MASK)) < 0) {
		int e = pr_perror("restore: status flags of %s", desc_name(d));
		close(fd);
		return e;
	}
	return fd;
}

int files_open_deferred(Files *const *f, size_t n, uint32_t id, int rootfd)
{
	const FileDesc *d = find_desc(f, n, id);
	if (!d || !deferrable(d)) {
		pr_err("restore: file %u cannot be opened in a task's mount namespace", id);
		return -EINVAL;
	}
	return open_desc_once(d, rootfd);
}

int files_open_shared(Files *const *f, const bool *outside, const ssize_t *mnt_owner, size_t n,
		      int base, int **gfd_out, uint32_t *n_out, ssize_t **defer_out)
{
	uint32_t maxid = 0;
	bool own_view = false; /* a task whose files stasis opens, or whose mount tree differs */
	*gfd_out = NULL;
	*n_out = 0;
	*defer_out = NULL;
	for (size_t p = 0; p < n; p++)
		own_view |= (outside && outside[p]) || (mnt_owner && mnt_owner[p] >= 0);
	if (n < 2 && !own_view)
		return 0;
	for (size_t p = 0; p < n; p++) {
		int ret = validate_image(f[p], INT_MAX);
		if (ret)
			return ret;
		for (size_t i = 0; i < f[p]->n_files; i++)
			maxid = MAX(maxid, f[p]->files[i]->id);
	}
	if (maxid > 1u << 20) {
		pr_err("files image: file id %u is out of range", maxid);
		return -EINVAL;
	}
	int *gfd = malloc((maxid + 1) * sizeof(int));
	uint8_t *uses = calloc(maxid + 1, 1);
	ssize_t *defer = malloc((maxid + 1) * sizeof(*defer));
	if (!gfd || !uses || !defer) {
		free(gfd);
		free(uses);
		free(defer);
		return -ENOMEM;
	}
	for (uint32_t i = 0; i <= maxid; i++) {
		gfd[i] = -1;
		defer[i] = -2; /* no user seen yet */
	}
	for (size_t p = 0; p < n; p++)
		for (size_t i = 0; i < f[p]->n_files; i++) {
			const FileDesc *d = f[p]->files[i];
			/* the owner of the one mount namespace of the tree all its users are
			 * in, or -1 */
			ssize_t own = mnt_owner ? mnt_owner[p] : -1;
			defer[d->id] = defer[d->id] == -2 || defer[d->id] == own ? own : -1;
			if (uses[d->id] < 2)
				uses[d->id]++;
			/* a task in a user namespace of its own may no longer open what it
			 * opened before entering it: stasis opens its files (epolls are
			 * rebuilt from the task's own fds) */
			if (outside && outside[p] && d->kind != FILE_KIND__FILE_EPOLL)
				uses[d->id] = 2;
			/* a path in the dumper's view, of a task whose mount tree is another:
			 * stasis opens it in its own view */
			if (own >= 0 && by_path(d) && d->has_in_task_root && !d->in_task_root)
				uses[d->id] = 2;
		}
	int ret = 0;
	for (uint32_t id = 1; id <= maxid && !ret; id++) {
		const FileDesc *d = find_desc(f, n, id);
		if (d && !(defer[id] >= 0 && uses[id] >= 2 && deferrable(d)))
			defer[id] = -1; /* pipes, sockets, anonymous files: opened here */
		if (!d || gfd[id] >= 0 || d->kind == FILE_KIND__FILE_EXTERNAL)
			continue;
		if (d->kind == FILE_KIND__FILE_PIPE) {
			const FileDesc *o = find_pipe_peer(f, n, d);
			if (!o) {
				pr_err("files image: pipe %llu has no other end in the tree",
				       (unsigned long long)d->pipe->ino);
				ret = -EINVAL;
				break;
			}
			const FileDesc *rd = (d->flags & O_ACCMODE) == O_RDONLY ? d : o;
			const FileDesc *wr = rd == d ? o : d;
			int pp[2];
			if (pipe2(pp, O_CLOEXEC | O_NONBLOCK)) {
				ret = pr_perror("restore: pipe2");
				break;
			}
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
				pr_errno(ret, "restore: rebuild pipe %llu", (unsigned long long)rd->pipe->ino);
				break;
			}
			ret = gfd_place(pp[0], base, &gfd[rd->id]);
			if (!ret)
				ret = gfd_place(pp[1], base, &gfd[wr->id]);
			else
				close(pp[1]);
			continue;
		}
		if (d->kind == FILE_KIND__FILE_UNIX_SK) {
			const FileDesc *o = find_unix_peer(f, n, d);
			if (!o || gfd[o->id] >= 0) {
				pr_err("files image: unix socket %llu has no other end in the tree",
				       (unsigned long long)d->unix_sk->ino);
				ret = -EINVAL;
				break;
			}
			int sa, sb;
			ret = sk_unix_open_pair(d, o, &sa, &sb);
			if (ret)
				break;
			if (fcntl(sa, F_SETFL, (int)(d->flags & SETFL_MASK)) < 0 ||
			    fcntl(sb, F_SETFL, (int)(o->flags & SETFL_MASK)) < 0) {
				ret = pr_perror("restore: status flags of unix socket %llu",
						(unsigned long long)d->unix_sk->ino);
				close(sa);
				close(sb);
				break;
			}
			ret = gfd_place(sa, base, &gfd[d->id]);
			if (!ret)
				ret = gfd_place(sb, base, &gfd[o->id]);
			else
				close(sb);
			continue;
		}
		if (uses[id] < 2)
			continue; /* used by one process: it opens it itself */
		if (defer[id] >= 0)
			continue; /* opened in that namespace's tree once it is rebuilt */
		if (d->kind == FILE_KIND__FILE_EPOLL) {
			pr_err("files image: epoll %u is used by several processes: not supported",
			       id);
			ret = -EINVAL;
			break;
		}
		int fd = open_desc_once(d, -1);
		if (fd < 0) {
			ret = fd;
			break;
		}
		ret = gfd_place(fd, base, &gfd[id]);
	}
	for (uint32_t i = 0; i <= maxid; i++)
		if (uses[i] < 2 || defer[i] < 0)
			defer[i] = -1;
	free(uses);
	for (size_t p = 0; p < n; p++)
		ghost_unlink(f[p]);
	if (ret) {
		for (uint32_t i = 0; i <= maxid; i++)
			if (gfd[i] >= 0)
				close(gfd[i]);
		free(gfd);
		free(defer);
		return ret;
	}
	*gfd_out = gfd;
	*n_out = maxid + 1;
	*defer_out = defer;
	return 0;
}

static int files_dump_tree(struct dump_tree *t)
{
	return files_merge_tree(t->procs, t->nr);
}

/* A task sharing its parent's fd table (CLONE_FILES) finds it rebuilt by the parent. */
static int files_child(struct rst_ctx *c)
{
	return c->shares_files ? 0 : files_restore_child(c);
}

const struct resource files_resource = {
	.name = "files",
	.dump = files_dump,
	.dump_tree = files_dump_tree,
	.child = files_child,
};
