/* pidfds (row fd_pidfd_ops, kind FILE_PIDFD, FileDesc.pidfd).
 *
 * Dump: the target from the pidfd's fdinfo ("Pid:", in stasis's pid namespace; -1 once
 * the process was reaped), PIDFD_THREAD from its flags (O_EXCL). A target must be a
 * process of the tree (a thread of the tree with PIDFD_THREAD): anything else is refused
 * with one line (the merge hook, which sees the whole tree). Of a reaped process, the
 * exit status PIDFD_GET_INFO shows is kept; one that dumped core, or exited in another
 * cgroup than its holder's, is refused.
 *
 * Restore: a pidfd cannot be made before its target exists, and several processes may
 * hold one description (inherited across fork): it is made in the final stage, a
 * placeholder holding its fd numbers until then (placeholder.c). Made by stasis:
 * pidfd_open of the target, checked to be a task stasis restored (it traces it), or of a
 * throwaway child of stasis that exits with the recorded status and is reaped. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/kcmp.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/log.h"
#include "core/util.h"
#include "ns/cgroup.h"
#include "ns/nsrun.h"
#include "files/fd_ops.h"
#include "proc/parse.h"
#include "sys/syscalls.h"
#include "sys/uapi.h"

#define PIDFD_LINK "anon_inode:[pidfd]"
/* Signals whose default action dumps core (a throwaway cannot die of one exactly). */
#define CORE_SIGS                                                                          \
	((1ULL << SIGQUIT) | (1ULL << SIGILL) | (1ULL << SIGTRAP) | (1ULL << SIGABRT) |    \
	 (1ULL << SIGBUS) | (1ULL << SIGFPE) | (1ULL << SIGSEGV) | (1ULL << SIGXCPU) |     \
	 (1ULL << SIGXFSZ) | (1ULL << SIGSYS))

/* ------------------------------------------------------------------------------------ */
/* Dump                                                                                 */
/* ------------------------------------------------------------------------------------ */

static int pidfd_classify(const struct dump_ctx *c, struct fd_ent *e)
{
	(void)c;
	if (e->fs_type != PID_FS_MAGIC && strcmp(e->link, PIDFD_LINK))
		return 0;
	e->kind = FILE_KIND__FILE_PIDFD;
	return 1;
}

/* PIDFD_GET_INFO of @fd; 0 or -errno. */
static int pidfd_info(int fd, uint64_t mask, struct stasis_pidfd_info *pi)
{
	memset(pi, 0, sizeof(*pi));
	pi->mask = mask;
	return ioctl(fd, STASIS_PIDFD_GET_INFO, pi) ? -errno : 0;
}

/* A reaped process: its exit as PIDFD_INFO_EXIT shows it, if it can be made again. */
static int dump_reaped(const struct dump_ctx *c, const struct fd_ent *e, PidfdData *p)
{
	_cleanup_close_ int dup = fd_dup(c, e);
	if (dup < 0)
		return dup;
	struct stasis_pidfd_info pi, holder;
	int ret = pidfd_info(dup, STASIS_PIDFD_INFO_EXIT | STASIS_PIDFD_INFO_COREDUMP, &pi);
	if (ret == -ENOTTY || ret == -EINVAL || (!ret && !(pi.mask & STASIS_PIDFD_INFO_EXIT)))
		return 0; /* this kernel shows no exit information */
	if (ret)
		return pr_errno(ret, "fd %d of pid %d: PIDFD_GET_INFO", e->fd, c->pid);
	int st = pi.exit_code;
	bool core = (pi.mask & STASIS_PIDFD_INFO_COREDUMP) && pi.coredump_mask;
	if (core || WCOREDUMP(st) ||
	    (WIFSIGNALED(st) && WTERMSIG(st) < 64 && (CORE_SIGS >> WTERMSIG(st)) & 1))
		return fd_unsupported(c, e, "a pidfd of a reaped process that died of a core "
					    "dumping signal");
	if (!WIFEXITED(st) && !WIFSIGNALED(st))
		return fd_unsupported(c, e, "a pidfd of a reaped process with an unknown exit");
	/* a signal through it fails with ESRCH where the pid's namespace is the holder's
	 * or below it (where it is made again), EINVAL elsewhere */
	long r = -ESRCH;
	ret = c->rs_ready ? rsys_call((struct rsys *)&c->rs, SYS_pidfd_send_signal,
				      (uint64_t)e->fd, 0, 0, 0, 0, 0, &r)
			  : 0;
	if (ret)
		return pr_errno(ret, "dump: pidfd_send_signal in pid %d", c->pid);
	if (r != -ESRCH)
		return fd_unsupported(c, e, "a pidfd of a reaped process of a pid namespace "
					    "above or beside its holder's");
	if ((pi.mask & STASIS_PIDFD_INFO_CGROUPID) &&
	    (pidfd_info(c->pidfd, 0, &holder) || holder.cgroupid != pi.cgroupid))
		return fd_unsupported(c, e, "a pidfd of a reaped process that exited in another "
					    "cgroup than its holder's");
	p->has_exit_status = true;
	p->exit_status = st;
	return 0;
}

static int pidfd_dump(const struct dump_ctx *c, const struct fd_ent *e, FileDesc *d)
{
	_cleanup_free_ char *info = NULL;
	int ret = fd_read_fdinfo(c, e->fd, FDINFO_MAX, &info);
	if (ret)
		return ret;
	int pid = 0;
	ret = proc_parse_pidfd_pid(info, &pid);
	if (ret == -ENOENT)
		return fd_unsupported(c, e, "a pidfd of a process outside stasis's pid namespace");
	if (ret && ret != -ESRCH) {
		pr_err("cannot parse the pidfd in /proc/%d/fdinfo/%d", c->pid, e->fd);
		return -EINVAL;
	}
	PidfdData *p = malloc(sizeof(*p));
	if (!p)
		return pr_errno(-ENOMEM, "fd %d of pid %d", e->fd, c->pid);
	pidfd_data__init(p);
	d->pidfd = p;
	if (ret == -ESRCH)
		return dump_reaped(c, e, p);
	p->has_target = true;
	p->target = pid;
	return 0;
}

static bool in_tree(struct dump_ctx **procs, size_t n, pid_t pid, bool thread)
{
	for (size_t i = 0; i < n; i++) {
		if (procs[i]->pid == pid)
			return true;
		for (size_t k = 1; thread && k < procs[i]->nr_thr; k++)
			if (procs[i]->thr[k].tid == pid)
				return true;
	}
	return false;
}

/* Every target in the tree; nothing that would find the placeholder. */
static int pidfd_merge(struct dump_ctx **procs, size_t n)
{
	for (size_t p = 0; p < n; p++) {
		const Files *f = procs[p]->files;
		for (size_t i = 0; i < f->n_files; i++) {
			const FileDesc *d = f->files[i];
			if (d->kind != FILE_KIND__FILE_PIDFD)
				continue;
			const PidfdData *pd = d->pidfd;
			bool thread = d->flags & PIDFD_THREAD;
			if (pd->has_target && !in_tree(procs, n, pd->target, thread)) {
				pr_err("fd %d of pid %d is a pidfd of %s %d, which is not a running "
				       "task of the tree (outside it, or a zombie): not supported",
				       fd_desc_fd(f, i), procs[p]->pid, thread ? "thread" : "pid",
				       pd->target);
				return -EOPNOTSUPP;
			}
		}
	}
	return fd_final_merge_check(procs, n, FILE_KIND__FILE_PIDFD, "a pidfd");
}

/* ------------------------------------------------------------------------------------ */
/* Restore                                                                              */
/* ------------------------------------------------------------------------------------ */

static int pidfd_validate(const FileDesc *d, const struct blob_reader *blobs)
{
	(void)blobs;
	const PidfdData *p = d->pidfd;
	unsigned int known = O_ACCMODE | O_NONBLOCK | PIDFD_THREAD;
	if (!p || (d->flags & ~known) || (d->flags & O_ACCMODE) != O_RDWR ||
	    (p->has_target && p->target <= 0) || (p->has_target && p->has_exit_status))
		return fd_bad_data(d);
	if (p->has_exit_status) {
		int st = p->exit_status;
		bool ok = (WIFEXITED(st) && (st & ~0xff00) == 0) ||
			  (WIFSIGNALED(st) && !WCOREDUMP(st) && WTERMSIG(st) < 64 &&
			   !((CORE_SIGS >> WTERMSIG(st)) & 1) && WTERMSIG(st) != SIGSTOP &&
			   WTERMSIG(st) != SIGTSTP && WTERMSIG(st) != SIGTTIN &&
			   WTERMSIG(st) != SIGTTOU && WTERMSIG(st) != SIGCHLD &&
			   WTERMSIG(st) != SIGCONT && WTERMSIG(st) != SIGURG &&
			   WTERMSIG(st) != SIGWINCH && (st & ~0x7f) == 0);
		if (!ok)
			return fd_bad_data(d);
	}
	return 0;
}

/* A throwaway child of the caller, in cgroup @cgfd (-1: the caller's), that exits with
 * @status; its pidfd (@flags) once reaped. */
static int reaped_pidfd(int status, unsigned int flags, int cgfd)
{
	int go[2];
	if (pipe2(go, O_CLOEXEC))
		return pr_perror("restore: pipe");
	struct stasis_clone_args ca = { .flags = CLONE_INTO_CGROUP,
					.exit_signal = SIGCHLD,
					.cgroup = (uint64_t)cgfd };
	pid_t child = cgfd < 0 ? fork()
			       : (pid_t)syscall(SYS_clone3, &ca, STASIS_CLONE_ARGS_SIZE_VER2);
	if (child < 0) {
		int e = pr_perror("restore: fork the process of a reaped pidfd");
		close(go[0]);
		close(go[1]);
		return e;
	}
	if (!child) {
		char x;
		close(go[1]);
		if (read(go[0], &x, 1) != 0)
			_exit(127);
		if (WIFSIGNALED(status)) {
			/* the kernel's sigaction: glibc's refuses its own signals (32, 33) */
			struct {
				void *handler;
				unsigned long flags;
				void *restorer;
				uint64_t mask;
			} dfl = { SIG_DFL, 0, NULL, 0 };
			uint64_t none = 0;
			syscall(SYS_rt_sigaction, WTERMSIG(status), &dfl, NULL, sizeof(none));
			syscall(SYS_rt_sigprocmask, SIG_SETMASK, &none, NULL, sizeof(none));
			/* (not raise(): after a raw clone3 glibc's thread id is the parent's) */
			kill(getpid(), WTERMSIG(status));
			_exit(127);
		}
		_exit(WEXITSTATUS(status));
	}
	close(go[0]);
	int fd = sys_pidfd_open(child, flags);
	int e = errno;
	close(go[1]);
	int st = 0;
	while (waitpid(child, &st, __WALL) < 0 && errno == EINTR)
		;
	if (fd < 0)
		return pr_errno(-e, "restore: pidfd_open of the process of a reaped pidfd");
	if (st != status) {
		close(fd);
		pr_err("restore: the process of a reaped pidfd ended with status %#x, not %#x", st,
		       status);
		return -EIO;
	}
	return fd;
}

struct reaped_req {
	int status;
	unsigned int flags;
	int cgfd;
};

/* In a child of stasis born in the holder's pid namespace: the throwaway is made there;
 * its pidfd. */
static int reaped_child(void *arg)
{
	const struct reaped_req *q = arg;
	return reaped_pidfd(q->status, q->flags, q->cgfd);
}

/* The cgroup (v2) directory of holder @c when it is not stasis's, or -1: the process of
 * a reaped pidfd exits there, as the original exited in its holder's (its pidfd shows
 * the cgroup's id). Without it check_reaped() says why the restore cannot be exact. */
static int holder_cgroup(const struct rst_ctx *c)
{
	struct stasis_pidfd_info hi, si;
	_cleanup_close_ int h = sys_pidfd_open(c->pid, 0);
	_cleanup_close_ int self = sys_pidfd_open(getpid(), 0);
	if (h < 0 || self < 0 || pidfd_info(h, 0, &hi) || pidfd_info(self, 0, &si) ||
	    !(hi.mask & STASIS_PIDFD_INFO_CGROUPID) || hi.cgroupid == si.cgroupid)
		return -1;
	char name[32], mnt[PATH_MAX], dir[PATH_MAX * 2];
	snprintf(name, sizeof(name), "%d/cgroup", c->pid);
	_cleanup_free_ char *buf = read_file_at(c->proc_dfd, name, 1 << 16, NULL);
	struct proc_cgroup *cg = NULL;
	size_t n = 0;
	if (!buf || proc_parse_cgroup(buf, &cg, &n) || cgroup_find_mount("", mnt, sizeof(mnt))) {
		proc_cgroups_free(cg, n);
		return -1;
	}
	dir[0] = 0;
	for (size_t k = 0; k < n; k++)
		if (cg[k].hierarchy == 0)
			snprintf(dir, sizeof(dir), "%s%s", mnt, cg[k].path);
	proc_cgroups_free(cg, n);
	int fd = dir[0] ? open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC) : -1;
	struct stat st;
	if (fd >= 0 && (fstat(fd, &st) || st.st_ino != hi.cgroupid)) {
		close(fd);
		fd = -1;
	}
	return fd;
}

/* The pidfd of a reaped process of holder @c's pid namespace (its struct pid belongs to
 * that namespace: pidfd_send_signal says ESRCH there, EINVAL above it) and cgroup. */
static int reaped_in_ns(const struct rst_ctx *c, int status, unsigned int flags)
{
	char what[64];
	struct stat mine, its;
	_cleanup_close_ int cgfd = holder_cgroup(c);
	snprintf(what, sizeof(what), "the pid namespace of pid %d", c->pid);
	_cleanup_close_ int ns = ns_open_of(c->pid, "pid", "pidfd");
	if (ns < 0)
		return ns;
	if (stat("/proc/self/ns/pid", &mine) == 0 && fstat(ns, &its) == 0 &&
	    mine.st_ino == its.st_ino && mine.st_dev == its.st_dev)
		return reaped_pidfd(status, flags, cgfd);
	struct reaped_req q = { status, flags, cgfd };
	struct nsrun r = { .tag = "pidfd",
			   .what = what,
			   .err_prefix = "restore: a reaped pidfd",
			   .ns = { { .fd = ns, .type = CLONE_NEWPID } },
			   .n_ns = 1,
			   .timeout_ms = 5000 };
	int fd = ns_run_fd(&r, reaped_child, &q);
	return fd < 0 ? pr_errno(fd, "restore: the pidfd of a reaped process in %s", what) : fd;
}

/* The pidfd of @d, made by stasis: its target must be a task stasis restored. */
static int open_pidfd(const struct rst_ctx *c, const FileDesc *d)
{
	const PidfdData *p = d->pidfd;
	unsigned int flags = d->flags & PIDFD_THREAD;
	int fd;
	if (!p->has_target) {
		fd = reaped_in_ns(c, p->has_exit_status ? p->exit_status : 0, flags);
	} else {
		fd = sys_pidfd_open(p->target, flags);
		if (fd < 0)
			return pr_perror("restore: pidfd_open of %d", p->target);
		if (!fd_final_restored(c, p->target) || sys_pidfd_send_signal(fd, 0, NULL, 0)) {
			close(fd);
			pr_err("restore: the pidfd of pid %d names %d, not a task of the tree",
			       c->pid, p->target);
			return -EINVAL;
		}
	}
	if (fd >= 0 && fcntl(fd, F_SETFL, (int)(d->flags & SETFL_MASK)) < 0) {
		int e = pr_perror("restore: status flags of a pidfd");
		close(fd);
		return e;
	}
	return fd;
}

/* A reaped process's pidfd: it exited in its holder's cgroup, as at dump. */
static int check_reaped(const struct rst_ctx *c, const FileDesc *d, int p)
{
	struct stasis_pidfd_info pi, holder;
	if (d->pidfd->has_target || pidfd_info(p, STASIS_PIDFD_INFO_EXIT, &pi) ||
	    !(pi.mask & STASIS_PIDFD_INFO_CGROUPID))
		return 0;
	_cleanup_close_ int h = sys_pidfd_open(c->pid, 0);
	if (h < 0 || pidfd_info(h, 0, &holder))
		return pr_perror("restore: PIDFD_GET_INFO of pid %d", c->pid);
	if (holder.cgroupid == pi.cgroupid)
		return 0;
	pr_err("restore: pid %d holds the pidfd of a reaped process (fd %d), which could not be "
	       "made to exit in its holder's cgroup",
	       c->pid, fd_desc_fd(c->files, (size_t)fd_desc_index(c->files, d->id)));
	return -EOPNOTSUPP;
}

static int make_pidfd(struct rst_ctx *c, const FileDesc *d)
{
	int p = open_pidfd(c, d);
	int ret = p < 0 ? 0 : check_reaped(c, d, p);
	if (ret) {
		close(p);
		return ret;
	}
	return p;
}

static int pidfd_final(struct rst_ctx *c)
{
	return fd_final_give(c, FILE_KIND__FILE_PIDFD, make_pidfd, "pidfds");
}

const struct fd_ops fd_pidfd_ops = {
	.name = "pidfd",
	.kind = FILE_KIND__FILE_PIDFD,
	.fdinfo_keys = (const char *const[]){ "Pid", "NSpid", NULL },
	.classify = pidfd_classify,
	.dump = pidfd_dump,
	.merge = pidfd_merge,
	.validate = pidfd_validate,
	.open = fd_final_placeholder,
	.final = pidfd_final,
};
