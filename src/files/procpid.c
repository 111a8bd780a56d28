/* Files and directories of one task's directory in a proc file system (row fd_procpid_ops,
 * kind FILE_PROCPID, FileDesc.procpid): /proc/self/status, a /proc/PID directory kept as a
 * process handle, /proc/PID/cmdline read now and then (tmux naming its windows),
 * /proc/self/mountinfo watched with epoll.
 *
 * Dump: a file of a proc mount (fs type) whose path, in the view the dumper finds it in,
 * is ROOT/N[/REST] with ROOT the root of that mount (its inode 1, the fd's device). The
 * path naming the fd's own inode proves N is the task the file is of (a dentry of a task
 * that exited is never found again). N's NSpid (as that proc shows it: from its namespace down) and start time
 * are recorded, and the tree-wide merge looks for the task of the tree (process or
 * thread) with that NSpid at the bottom of its own and that start time: the target.
 * A zombie is refused (a restored zombie exits before the files are made).
 * A path that names nothing any more (or another task) is of a task that exited and was
 * reaped: N is recorded with the pid namespace that proc shows (so many levels above the
 * holder's), unless the file still shows what the task had (its network namespace's
 * files, its user namespace's maps, a mount table other than its holder's) or is a
 * thread's.
 *
 * Restore: such a file can only be opened once its task exists, so it is made in the
 * final stage, a placeholder holding its fd numbers until then (placeholder.c). stasis
 * opens the path in the view it was in (its own, or the holder's root), with the same
 * flags and position, and checks what it opened: N in that proc has the recorded NSpid
 * and is the restored target (traced by stasis), or, for a process outside the tree,
 * still has the recorded start time (the same process, on the same boot); anything else
 * fails the restore. A reaped task's file is opened on a throwaway task given id N in
 * that pid namespace (in the holder's mount namespace and root), then reaped: it reads
 * as the dead task's did. */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/magic.h>
#include <linux/nsfs.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/log.h"
#include "core/util.h"
#include "files/fd_ops.h"
#include "ns/nsrun.h"
#include "proc/parse.h"
#include "sys/uapi.h"

#define PROC_ROOT_INO 1
#define STATUS_MAX (1u << 16)

/* ---- dump ---------------------------------------------------------------------- */

/* Is @path[0..len) the root of the proc mount of device @dev in view @rootfd? */
static bool is_proc_root(int rootfd, const char *path, size_t len, dev_t dev)
{
	_cleanup_free_ char *p = strndup(path, len);
	if (!p)
		return false;
	_cleanup_close_ int fd = open_in_root(rootfd, p, O_PATH | O_DIRECTORY | O_CLOEXEC);
	struct stat st;
	return fd >= 0 && !fstat(fd, &st) && st.st_dev == dev && st.st_ino == PROC_ROOT_INO;
}

/* The offset of "/N" in @path after which N is a task's directory of the proc mount of
 * device @dev, in view @rootfd; -1 if none. */
static ssize_t pid_component(int rootfd, const char *path, dev_t dev)
{
	for (const char *s = strchr(path, '/'); s; s = strchr(s + 1, '/')) {
		size_t n = strspn(s + 1, "0123456789");
		if (s == path || !n || n > 10 || s[1] == '0' || (s[1 + n] && s[1 + n] != '/'))
			continue;
		if (is_proc_root(rootfd, path, (size_t)(s - path), dev))
			return s - path;
	}
	return -1;
}

/* The root of @path's proc mount: *@at the offset of "/N", *@view 0 (the dumper's) or 1
 * (the task's, *@root its root directory, else -1); false if @path is no file of a task's
 * directory of the proc of device @dev. */
static bool find_root(const struct dump_ctx *c, const char *path, dev_t dev, ssize_t *at,
		      int *view, int *root)
{
	*root = -1;
	*view = 0;
	*at = pid_component(-1, path, dev);
	if (*at >= 0)
		return true;
	*root = openat(c->procfd, "root", O_PATH | O_DIRECTORY | O_CLOEXEC);
	*at = *root < 0 ? -1 : pid_component(*root, path, dev);
	*view = 1;
	return *at >= 0;
}

/* @e's path (malloc'd): its link, but for the directory of a task reaped since, whose
 * link is "/proc/N (deleted)". */
static char *link_path(const struct fd_ent *e)
{
	size_t n = strlen(e->link);
	if (S_ISDIR(e->st.st_mode) && str_ends(e->link, DELETED_SUFFIX))
		n -= strlen(DELETED_SUFFIX);
	return strndup(e->link, n);
}

static int procpid_classify(const struct dump_ctx *c, struct fd_ent *e)
{
	if (e->fs_type != PROC_SUPER_MAGIC || !(S_ISREG(e->st.st_mode) || S_ISDIR(e->st.st_mode)) ||
	    e->link[0] != '/')
		return 0;
	_cleanup_free_ char *path = link_path(e);
	ssize_t at;
	int view;
	_cleanup_close_ int root = -1;
	if (!path || !find_root(c, path, e->st.st_dev, &at, &view, &root))
		return 0; /* /proc/meminfo, /proc/sys/...: a file like any other */
	e->kind = FILE_KIND__FILE_PROCPID;
	return 1;
}

/* NSpid and start time of N (ROOT/N at @path[0..dirlen)) in view @rootfd. */
static int read_task(int rootfd, const char *path, size_t dirlen, struct proc_status *st,
		     unsigned long long *start)
{
	_cleanup_free_ char *dir = strndup(path, dirlen);
	if (!dir)
		return -ENOMEM;
	_cleanup_close_ int dfd = open_in_root(rootfd, dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0)
		return -errno;
	_cleanup_free_ char *stat = read_file_at(dfd, "stat", STATUS_MAX, NULL);
	_cleanup_free_ char *status = stat ? read_file_at(dfd, "status", STATUS_MAX, NULL) : NULL;
	struct proc_stat ps;
	if (!stat || !status)
		return -(errno ?: EIO);
	if (proc_parse_stat(stat, &ps) || proc_parse_status(status, st))
		return -EINVAL;
	*start = ps.start_time;
	return 0;
}


static int new_data(const struct dump_ctx *c, const struct fd_ent *e, FileDesc *d,
		    const char *path, size_t nspid_len)
{
	ProcPidData *p = malloc(sizeof(*p));
	int32_t *ns = calloc(nspid_len ?: 1, sizeof(*ns));
	d->path = strdup(path);
	if (!p || !ns || !d->path) {
		free(p);
		free(ns);
		return pr_errno(-ENOMEM, "fd %d of pid %d", e->fd, c->pid);
	}
	proc_pid_data__init(p);
	d->procpid = p;
	p->dir = S_ISDIR(e->st.st_mode);
	p->nspid = ns;
	p->n_nspid = nspid_len;
	d->has_pos = true;
	d->pos = e->pos;
	return 0;
}

/* Process @q's NSpid (outermost first) and start time: its leader's, a zombie leader's
 * as it was recorded. */
static void task_ids(const struct dump_ctx *q, const int **ns, size_t *len,
		     unsigned long long *start)
{
	*ns = q->zl.on ? q->zl.nspid : q->status.nspid;
	*len = q->zl.on ? q->zl.nspid_len : q->status.nspid_len;
	*start = q->zl.on ? q->zl.start_time : q->stat.start_time;
}

/* How many pid-namespace levels above @c's own the proc mount at @path[0..at) shows (the
 * one where the holder is itself), or -1 (a namespace below it or beside it). */
static int proc_level(const struct dump_ctx *c, int root, const char *path, size_t at)
{
	const int *ns;
	size_t len;
	unsigned long long start;
	task_ids(c, &ns, &len, &start);
	char dir[PATH_MAX];
	for (size_t l = 0; l < len; l++) {
		struct proc_status st;
		unsigned long long t;
		int n = snprintf(dir, sizeof(dir), "%.*s/%d", (int)at, path, ns[l]);
		if (n < 0 || (size_t)n >= sizeof(dir) || read_task(root, dir, (size_t)n, &st, &t))
			continue;
		bool same = t == start && st.nspid_len == len - l &&
			    !memcmp(st.nspid, ns + l, (len - l) * sizeof(*ns));
		proc_status_free(&st);
		if (same)
			return (int)(len - 1 - l);
	}
	return -1;
}

/* What @fd reads from offset 0 (pread: its position is the task's), at most @max bytes. */
static char *pread_text(int fd, size_t max)
{
	size_t cap = 4096, len = 0;
	char *buf = malloc(cap + 1);
	for (ssize_t n = 1; buf && n > 0;) {
		if (len == cap) {
			char *nb = cap < max ? realloc(buf, cap * 2 + 1) : NULL;
			if (!nb) {
				free(buf);
				return NULL;
			}
			buf = nb;
			cap *= 2;
		}
		n = pread(fd, buf + len, cap - len, (off_t)len);
		if (n < 0) {
			free(buf);
			return NULL;
		}
		len += (size_t)n;
	}
	if (buf)
		buf[len] = 0;
	return buf;
}

/* Files whose contents a dead task's file still shows, taken when it was opened: its
 * mount table (made again on a task in the holder's mount namespace and root: checked
 * to be the holder's), its network namespace's files, its user namespace's maps, and a
 * thread's files (refused). */
static int dead_kind(const struct dump_ctx *c, const struct fd_ent *e, const char *rest)
{
	static const char *const mounts[] = { "/mountinfo", "/mounts", "/mountstats" };
	static const char *const userns[] = { "/uid_map", "/gid_map", "/projid_map",
					      "/setgroups" };
	if (!strncmp(rest, "/task/", 6) || !strcmp(rest, "/net") || !strncmp(rest, "/net/", 5))
		return fd_unsupported(c, e, "a file of a thread or of the network namespace of "
					    "a process that has exited");
	for (size_t k = 0; k < ARRAY_SIZE(userns); k++)
		if (!strcmp(rest, userns[k]))
			return fd_unsupported(c, e, "a user namespace's map of a process that has "
						    "exited");
	for (size_t k = 0; k < ARRAY_SIZE(mounts); k++) {
		if (strcmp(rest, mounts[k]))
			continue;
		_cleanup_close_ int dup = fd_dup(c, e);
		_cleanup_free_ char *theirs = dup < 0 ? NULL : pread_text(dup, 1 << 22);
		_cleanup_free_ char *ours = read_file_at(c->procfd, rest + 1, 1 << 22, NULL);
		if (!theirs || !ours || strcmp(theirs, ours))
			return fd_unsupported(c, e, "the mount table of a process that has exited "
						    "other than its holder's");
	}
	return 0;
}

/* A file of a task that exited and was reaped: its path names nothing any more (or
 * another task that has the id now). */
static int dump_dead(const struct dump_ctx *c, const struct fd_ent *e, FileDesc *d)
{
	_cleanup_free_ char *path = link_path(e);
	ssize_t at;
	int view;
	_cleanup_close_ int root = -1;
	if (!path)
		return pr_errno(-ENOMEM, "fd %d of pid %d", e->fd, c->pid);
	if (!find_root(c, path, e->st.st_dev, &at, &view, &root))
		return fd_unsupported(c, e, "a /proc file whose proc mount was not found again");
	const char *n = path + at + 1;
	const char *rest = n + strspn(n, "0123456789");
	int up = proc_level(c, root, path, (size_t)at);
	if (up < 0)
		return fd_unsupported(c, e, "a file of a process that has exited, of a proc of "
					    "a pid namespace below its holder's or beside it");
	int ret = dead_kind(c, e, rest);
	if (ret)
		return ret;
	if (e->pos) {
		/* (the duplicate shares the position: set to what it is) */
		_cleanup_close_ int dup = fd_dup(c, e);
		if (dup < 0 || lseek(dup, (off_t)e->pos, SEEK_SET) != (off_t)e->pos)
			return fd_unsupported(c, e, "a file of a process that has exited, read "
						    "to a position it cannot be set to again");
	}
	ret = new_data(c, e, d, path, 1);
	if (ret)
		return ret;
	ProcPidData *p = d->procpid;
	p->root_len = (uint32_t)at;
	p->nspid[0] = atoi(n);
	p->has_dead = p->dead = true;
	p->has_ns_up = true;
	p->ns_up = (uint32_t)up;
	d->has_in_task_root = true;
	d->in_task_root = view == 1;
	pr_info("fd %d of pid %d: %s is a file of a process that has exited (pid %d, %d "
		"levels up)", e->fd, c->pid, path, p->nspid[0], up);
	return 0;
}

static int procpid_dump(const struct dump_ctx *c, const struct fd_ent *e, FileDesc *d)
{
	int view = path_view(c->procfd, e->link, e->st.st_dev, e->st.st_ino);
	if (view < 0)
		return dump_dead(c, e, d);
	_cleanup_close_ int root = view ? openat(c->procfd, "root", O_PATH | O_DIRECTORY |
								     O_CLOEXEC)
					: -1;
	ssize_t at = pid_component(root, e->link, e->st.st_dev);
	if (at < 0 || (view && root < 0))
		return fd_unsupported(c, e, "a /proc file whose proc mount was not found again");
	size_t dirlen = (size_t)at + 1 + strspn(e->link + at + 1, "0123456789");
	struct proc_status st;
	unsigned long long start = 0;
	int ret = read_task(root, e->link, dirlen, &st, &start);
	if (ret)
		return pr_errno(ret, "fd %d of pid %d: read the task of %s", e->fd, c->pid,
				e->link);
	char state = st.state;
	ret = new_data(c, e, d, e->link, st.nspid_len);
	if (ret) {
		proc_status_free(&st);
		return ret;
	}
	ProcPidData *p = d->procpid;
	p->root_len = (uint32_t)at;
	p->start_time = start;
	for (size_t k = 0; k < st.nspid_len; k++)
		p->nspid[k] = st.nspid[k];
	proc_status_free(&st);
	d->has_in_task_root = true;
	d->in_task_root = view == 1;
	if (state == 'Z' || state == 'X')
		return fd_unsupported(c, e, "a file of the /proc directory of a zombie");
	if (!p->n_nspid || p->nspid[0] != atoi(e->link + at + 1))
		return fd_unsupported(c, e, "a /proc file whose task's ids were not read");
	return 0;
}

/* Does @full (outermost first) end with @tail? */
static bool ends_with(const int *full, size_t n, const int32_t *tail, size_t k)
{
	if (!k || k > n)
		return false;
	for (size_t i = 0; i < k; i++)
		if (full[n - k + i] != tail[i])
			return false;
	return true;
}

/* Is thread @tid of @q the task @p names? */
static bool thread_is(const struct dump_ctx *q, pid_t tid, const ProcPidData *p)
{
	char dir[32];
	struct proc_status st;
	unsigned long long start;
	int n = snprintf(dir, sizeof(dir), "task/%d", tid);
	if (read_task(q->procfd, dir, (size_t)n, &st, &start))
		return false;
	bool same = start == p->start_time && ends_with(st.nspid, st.nspid_len, p->nspid,
							p->n_nspid);
	proc_status_free(&st);
	return same;
}

/* The task of the tree @p names (pid, or tid of a thread), or 0. */
static pid_t find_target(struct dump_ctx **procs, size_t n, const ProcPidData *p)
{
	for (size_t i = 0; i < n; i++) {
		const int *ns;
		size_t len;
		unsigned long long start;
		task_ids(procs[i], &ns, &len, &start);
		if (start == p->start_time && ends_with(ns, len, p->nspid, p->n_nspid))
			return procs[i]->pid;
	}
	for (size_t i = 0; i < n; i++)
		for (size_t k = 1; k < procs[i]->nr_thr; k++)
			if (thread_is(procs[i], procs[i]->thr[k].tid, p))
				return procs[i]->thr[k].tid;
	return 0;
}

static int procpid_merge(struct dump_ctx **procs, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		const Files *f = procs[i]->files;
		for (size_t k = 0; k < f->n_files; k++) {
			ProcPidData *p = f->files[k]->procpid;
			if (f->files[k]->kind != FILE_KIND__FILE_PROCPID || p->has_target || p->dead)
				continue;
			pid_t t = find_target(procs, n, p);
			p->has_target = t > 0;
			p->target = t;
			if (t > 0)
				pr_debug("fd %d of pid %d: %s is of task %d of the tree",
					 fd_desc_fd(f, k), procs[i]->pid, f->files[k]->path, t);
		}
	}
	return fd_final_merge_check(procs, n, FILE_KIND__FILE_PROCPID,
				    "a file of a /proc/PID directory");
}

/* ---- restore ------------------------------------------------------------------- */

static int procpid_validate(const FileDesc *d, const struct blob_reader *blobs)
{
	const ProcPidData *p = d->procpid;
	int ret = fd_validate_path(d, blobs);
	if (ret)
		return ret;
	size_t len = strlen(d->path);
	if (!p || p->root_len >= len || d->path[p->root_len] != '/' || !p->n_nspid ||
	    p->n_nspid > PROC_MAX_NS_LEVEL || (p->has_target && p->target <= 0) ||
	    (p->dead && (p->has_target || p->n_nspid != 1 || p->ns_up >= PROC_MAX_NS_LEVEL)) ||
	    (d->flags & (O_CREAT | O_TRUNC | O_EXCL | (O_TMPFILE & ~O_DIRECTORY))))
		return fd_bad_data(d);
	for (size_t k = 0; k < p->n_nspid; k++)
		if (p->nspid[k] <= 0)
			return fd_bad_data(d);
	char *end;
	const char *n = d->path + p->root_len + 1;
	long v = isdigit((unsigned char)*n) ? strtol(n, &end, 10) : -1;
	if (v != p->nspid[0] || (*end && *end != '/'))
		return fd_bad_data(d);
	return 0;
}

/* @d's file no longer names its task: a logged -ESRCH. */
static int not_same(const FileDesc *d, const char *why)
{
	const ProcPidData *p = d->procpid;
	pr_err("restore: %s is no longer the file of %s %d it was at dump (%s)", d->path,
	       p->has_target ? "the restored task" : "the process outside the tree",
	       p->has_target ? p->target : p->nspid[0], why);
	return -ESRCH;
}

/* Is what ROOT/N names now in view @rootfd the task @d was of? */
static int check_task(const struct rst_ctx *c, const FileDesc *d, int rootfd)
{
	const ProcPidData *p = d->procpid;
	size_t dirlen = p->root_len + 1 + strspn(d->path + p->root_len + 1, "0123456789");
	struct proc_status st;
	unsigned long long start = 0;
	int ret = read_task(rootfd, d->path, dirlen, &st, &start);
	if (ret)
		return ret == -ENOENT ? not_same(d, "it is gone")
				      : pr_errno(ret, "restore: %s: read its task", d->path);
	bool same = ends_with(st.nspid, st.nspid_len, p->nspid, p->n_nspid) &&
		    st.nspid_len == p->n_nspid;
	proc_status_free(&st);
	if (p->has_target)
		same = same && fd_final_restored(c, p->target);
	else
		same = same && start == p->start_time;
	return same ? 0 : not_same(d, "another task has its id");
}

struct dead_req {
	const FileDesc *d;
	int view;  /* the path's view: stasis's root or the holder's */
	int hroot; /* the holder's root: the throwaway's */
};

/* In a child of stasis born in the pid namespace the file's proc shows, in the holder's
 * mount namespace: a throwaway task with id N there, the file opened while it lives, the
 * task reaped; the file. */
static int dead_child(void *arg)
{
	const struct dead_req *q = arg;
	const ProcPidData *p = q->d->procpid;
	if (fchdir(q->hroot) || chroot("."))
		return nsrun_error(-errno, "enter the holder's root: %s", strerror(errno));
	int go[2];
	if (pipe2(go, O_CLOEXEC))
		return nsrun_error(-errno, "pipe: %s", strerror(errno));
	pid_t want = p->nspid[0];
	struct stasis_clone_args ca = { .exit_signal = SIGCHLD,
					.set_tid = (uint64_t)(uintptr_t)&want,
					.set_tid_size = 1 };
	pid_t t = (pid_t)syscall(SYS_clone3, &ca, STASIS_CLONE_ARGS_SIZE_VER2);
	if (t == 0) {
		char x;
		close(go[1]);
		_exit(read(go[0], &x, 1) == 0 ? 0 : 127);
	}
	int e = errno;
	close(go[0]);
	int fd = t > 0 ? open_in_root(q->view, q->d->path, fd_open_flags(q->d)) : -1;
	int oe = errno;
	close(go[1]);
	int st;
	while (t > 0 && waitpid(t, &st, 0) < 0 && errno == EINTR)
		;
	if (t < 0)
		return nsrun_error(-e, "make a task with pid %d: %s", want,
				   e == EEXIST ? "the pid is taken" : strerror(e));
	if (fd < 0)
		return nsrun_error(-oe, "open %s: %s", q->d->path, strerror(oe));
	return fd;
}

/* The pid namespace @up levels above holder @pid's (a new fd, or -errno logged). */
static int pidns_up(pid_t pid, uint32_t up)
{
	int ns = ns_open_of(pid, "pid", "procpid");
	for (uint32_t k = 0; ns >= 0 && k < up; k++) {
		int parent = ioctl(ns, NS_GET_PARENT);
		int e = errno;
		close(ns);
		ns = parent < 0 ? pr_errno(-e, "restore: the pid namespace %u levels above pid "
					       "%d's", k + 1, pid)
				: parent;
	}
	return ns;
}

/* The file @d of a task that had exited, made on a throwaway with its id. */
static int make_dead(const struct rst_ctx *c, const FileDesc *d, int view)
{
	char name[32], what[64];
	snprintf(name, sizeof(name), "%d/root", c->pid);
	_cleanup_close_ int hroot = openat(c->proc_dfd, name, O_PATH | O_DIRECTORY | O_CLOEXEC);
	_cleanup_close_ int mine = view < 0 ? open("/", O_PATH | O_DIRECTORY | O_CLOEXEC) : -1;
	_cleanup_close_ int pidns = pidns_up(c->pid, d->procpid->ns_up);
	_cleanup_close_ int mnt = ns_open_of(c->pid, "mnt", "procpid");
	if (hroot < 0 || (view < 0 && mine < 0))
		return pr_perror("restore: pid %d: open its root", c->pid);
	if (pidns < 0 || mnt < 0)
		return pidns < 0 ? pidns : mnt;
	snprintf(what, sizeof(what), "the namespaces of pid %d", c->pid);
	struct dead_req q = { d, view < 0 ? mine : view, hroot };
	struct nsrun r = { .tag = "procpid",
			   .what = what,
			   .err_prefix = "restore: the /proc file of a process that had exited",
			   .ns = { { .fd = pidns, .type = CLONE_NEWPID },
				   { .fd = mnt, .type = CLONE_NEWNS } },
			   .n_ns = 2,
			   .timeout_ms = 5000 };
	return ns_run_fd(&r, dead_child, &q);
}

static int make_procpid(struct rst_ctx *c, const FileDesc *d)
{
	char name[32];
	snprintf(name, sizeof(name), "%d/root", c->pid);
	_cleanup_close_ int root = d->in_task_root ? openat(c->proc_dfd, name, O_PATH |
									     O_DIRECTORY |
									     O_CLOEXEC)
						   : -1;
	if (d->in_task_root && root < 0)
		return pr_perror("restore: open /proc/%d/root", c->pid);
	_cleanup_close_ int fd = d->procpid->dead ? make_dead(c, d, root)
						  : open_in_root(root, d->path, fd_open_flags(d));
	if (d->procpid->dead && fd < 0)
		return fd;
	if (fd < 0 && errno == ENOENT)
		return not_same(d, "it is gone");
	if (fd < 0)
		return pr_perror("restore: pid %d: cannot open %s", c->pid, d->path);
	struct stat st;
	if (fstat(fd, &st) || (bool)S_ISDIR(st.st_mode) != d->procpid->dir) {
		pr_err("restore: pid %d: %s is not a %s any more", c->pid, d->path,
		       d->procpid->dir ? "directory" : "file");
		return -EINVAL;
	}
	int ret = d->procpid->dead ? 0 : check_task(c, d, root);
	if (ret)
		return ret;
	if (d->pos && !(d->flags & O_PATH) && lseek(fd, (off_t)d->pos, SEEK_SET) < 0)
		return pr_perror("restore: pid %d: cannot seek %s to %llu", c->pid, d->path,
				 (unsigned long long)d->pos);
	return take_fd(&fd);
}

static int procpid_final(struct rst_ctx *c)
{
	return fd_final_give(c, FILE_KIND__FILE_PROCPID, make_procpid, "/proc files");
}

const struct fd_ops fd_procpid_ops = {
	.name = "/proc/PID file",
	.kind = FILE_KIND__FILE_PROCPID,
	.classify = procpid_classify,
	.dump = procpid_dump,
	.merge = procpid_merge,
	.validate = procpid_validate,
	.open = fd_final_placeholder,
	.final = procpid_final,
};
