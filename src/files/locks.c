/* File locks held through the tree's open files: flock(2) locks, POSIX (fcntl) record
 * locks, OFD locks and leases (FileDesc.locks, message FileLock).
 *
 * Dump: the "lock:" lines of /proc/PID/fdinfo/N (the /proc/locks format) list the locks
 * on the file of fd N whose owner is this description (flock, OFD, lease: shown on every
 * fd of the description, in every process holding it) or this process's fd table and
 * that were taken through this description (POSIX). They are read with the fd's other
 * fdinfo lines (collect_ent in files.c) and recorded on the description. /proc/locks
 * shows an OFD lock with pid -1 (its owner is a description, not a process): we never
 * match by pid or by /proc/locks, but by the fdinfo of the description that owns it.
 * Per tree (merge): a description's flock, OFD locks and lease are kept in the first
 * process holding it only (taken once: the restored description is shared); a POSIX
 * lock must have been taken by the process whose fd table owns it (its pid), and a
 * process sharing its parent's fd table (CLONE_FILES) keeps none (the parent's table
 * has them). Refused with one line: locks on anything but a regular file or directory
 * opened by path (unlinked files, memfds, pipes, sockets, devices, a removed directory),
 * mandatory locks, delegations, leases being broken, POSIX locks taken by another
 * process sharing the fd table.
 *
 * A task asleep in F_SETLKW or flock() at the freeze is not waiting any more in the
 * frozen tree: the ptrace interrupt wakes it, its request leaves the lock's queue and the
 * call returns -ERESTARTSYS, which the restored task restarts (and waits again); so no
 * waiter is checked for at dump (reading /proc/locks costs a dump 12-20 ms).
 *
 * Restore, every task rebuilt and none running (files' final stage, after the memory:
 * closing any fd of a file drops the process's POSIX locks on it, so nothing may close
 * one after them): each lock is taken by the restored task itself with a remote,
 * non-blocking call on the description (flock LOCK_NB, F_SETLK, F_OFD_SETLK,
 * F_SETLEASE). A conflict with a lock of a process outside the tree fails the restore
 * with one line naming the file, the range and the holder when known: F_GETLK's pid, or
 * for a flock or an OFD lock (F_GETLK says -1) the process outside the tree with an fd
 * whose fdinfo shows that lock, else /proc/locks's pid. */
#include <dirent.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "core/log.h"
#include "core/util.h"
#include "files/fd_ops.h"
#include "proc/parse.h"

#define LK_FLOCK FILE_LOCK_KIND__LOCK_FLOCK
#define LK_POSIX FILE_LOCK_KIND__LOCK_POSIX
#define LK_OFD FILE_LOCK_KIND__LOCK_OFD
#define LK_LEASE FILE_LOCK_KIND__LOCK_LEASE
#define MAX_LOCKS_PER_FILE 8192
#define LOCKS_MAX (64u << 20) /* bytes of /proc/locks read */

static const char *const kind_name[] = {
	[LK_FLOCK] = "flock",
	[LK_POSIX] = "POSIX",
	[LK_OFD] = "OFD",
	[LK_LEASE] = "lease",
};

static const char *lock_kind_name(FileLockKind k)
{
	return (unsigned int)k < ARRAY_SIZE(kind_name) ? kind_name[k] : "unknown";
}

/* ------------------------------------------------------------------------------------ */
/* Dump                                                                                 */
/* ------------------------------------------------------------------------------------ */

int locks_collect(const struct dump_ctx *c, struct fd_ent *e, const char *fdinfo)
{
	int ret = proc_parse_locks(fdinfo, true, &e->locks, &e->n_locks);
	if (ret)
		return pr_errno(ret, "cannot parse the locks of /proc/%d/fdinfo/%d (%s)", c->pid,
				e->fd, e->link);
	if (e->n_locks > MAX_LOCKS_PER_FILE) {
		pr_err("fd %d of pid %d (%s) holds %zu locks: more than %d not supported", e->fd,
		       c->pid, e->link, e->n_locks, MAX_LOCKS_PER_FILE);
		return -EOPNOTSUPP;
	}
	return 0;
}

/* Why lock @l (of fd @e) cannot be taken again exactly, or NULL. */
static const char *lock_refusal(const struct fd_ent *e, const FileDesc *d, const struct proc_lock *l)
{
	if (e->ops != &fd_reg_ops && e->ops != &fd_dir_ops)
		return "the file is not a regular file or directory opened by path (an unlinked "
		       "file, memfd, pipe, socket or device)";
	if (d->removed_dir)
		return "the directory was removed";
	if (l->waiter)
		return "a request waiting for the lock";
	if (l->kind == PROC_LOCK_OTHER)
		return "a delegation or a lock of unknown kind";
	if (!l->advisory)
		return "a mandatory lock";
	if (l->breaking)
		return "a lease being broken";
	if (l->type != F_RDLCK && l->type != F_WRLCK)
		return "a lock of unknown type";
	return NULL;
}

static const char *proc_lock_name(const struct proc_lock *l)
{
	static const char *const names[] = {
		[PROC_LOCK_FLOCK] = "flock", [PROC_LOCK_POSIX] = "POSIX", [PROC_LOCK_OFD] = "OFD",
		[PROC_LOCK_LEASE] = "lease", [PROC_LOCK_OTHER] = "other",
	};
	return (unsigned int)l->kind < ARRAY_SIZE(names) ? names[l->kind] : "unknown";
}

static int lock_record(const struct proc_lock *l, FileLock **out)
{
	FileLock *k = malloc(sizeof(*k));
	if (!k)
		return -ENOMEM;
	file_lock__init(k);
	k->kind = l->kind == PROC_LOCK_FLOCK   ? LK_FLOCK
		  : l->kind == PROC_LOCK_POSIX ? LK_POSIX
		  : l->kind == PROC_LOCK_OFD   ? LK_OFD
					       : LK_LEASE;
	k->write = l->type == F_WRLCK;
	if (k->kind == LK_POSIX || k->kind == LK_OFD) {
		k->has_start = true;
		k->start = l->start;
		k->has_end = l->end >= 0;
		k->end = l->end >= 0 ? l->end : 0;
	}
	if (k->kind == LK_POSIX) {
		k->has_pid = true;
		k->pid = l->pid;
	}
	*out = k;
	return 0;
}

int locks_dump(const struct dump_ctx *c, const struct fd_ent *e, FileDesc *d)
{
	if (!e->n_locks)
		return 0;
	for (size_t i = 0; i < e->n_locks; i++) {
		const char *why = lock_refusal(e, d, &e->locks[i]);
		if (why) {
			pr_err("fd %d of pid %d (%s) holds a %s %s lock: %s: not supported", e->fd,
			       c->pid, e->link, proc_lock_name(&e->locks[i]),
			       e->locks[i].type == F_WRLCK ? "write" : "read", why);
			return -EOPNOTSUPP;
		}
	}
	d->locks = calloc(e->n_locks, sizeof(*d->locks));
	if (!d->locks)
		return pr_errno(-ENOMEM, "locks of fd %d of pid %d", e->fd, c->pid);
	for (size_t i = 0; i < e->n_locks; i++) {
		if (lock_record(&e->locks[i], &d->locks[i]))
			return pr_errno(-ENOMEM, "locks of fd %d of pid %d", e->fd, c->pid);
		d->n_locks++;
	}
	return 0;
}

/* Drop the POSIX locks of @d (@posix), or its others. */
static void locks_drop(FileDesc *d, bool posix)
{
	size_t k = 0;
	for (size_t i = 0; i < d->n_locks; i++) {
		if ((d->locks[i]->kind == LK_POSIX) == posix)
			protobuf_c_message_free_unpacked(&d->locks[i]->base, NULL);
		else
			d->locks[k++] = d->locks[i];
	}
	d->n_locks = k;
}

static bool has_desc_locks(const FileDesc *d)
{
	for (size_t i = 0; i < d->n_locks; i++)
		if (d->locks[i]->kind != LK_POSIX)
			return true;
	return false;
}

/* Is description @id's flock/OFD/lease already kept by a process before @p? */
static bool kept_before(struct dump_ctx **procs, size_t p, uint32_t id)
{
	for (size_t q = 0; q < p; q++) {
		const Files *f = procs[q]->files;
		ssize_t i = f ? fd_desc_index(f, id) : -1;
		if (i >= 0 && has_desc_locks(f->files[i]))
			return true;
	}
	return false;
}

int locks_merge(struct dump_ctx **procs, size_t n)
{
	for (size_t p = 0; p < n; p++) {
		Files *f = procs[p]->files;
		for (size_t i = 0; f && i < f->n_files; i++) {
			FileDesc *d = f->files[i];
			for (size_t k = 0; k < d->n_locks; k++) {
				const FileLock *l = d->locks[k];
				if (l->kind != LK_POSIX ||
				    (procs[p]->shares_files ? l->pid != procs[p]->pid
							    : l->pid == procs[p]->pid))
					continue;
				pr_err("fd %d of pid %d (%s): a POSIX lock taken by pid %d through an "
				       "fd table shared by several processes (CLONE_FILES): not "
				       "supported",
				       fd_desc_fd(f, i), procs[p]->pid, fd_desc_name(d), l->pid);
				return -EOPNOTSUPP;
			}
			/* a shared table's locks are its owner's (the parent dumped before) */
			if (procs[p]->shares_files)
				locks_drop(d, true);
			if (d->n_locks && (procs[p]->shares_files || kept_before(procs, p, d->id)))
				locks_drop(d, false);
		}
	}
	return 0;
}

/* ------------------------------------------------------------------------------------ */
/* Restore                                                                              */
/* ------------------------------------------------------------------------------------ */

static bool ranges_overlap(const FileLock *a, const FileLock *b)
{
	int64_t ae = a->has_end ? a->end : INT64_MAX, be = b->has_end ? b->end : INT64_MAX;
	return a->start <= be && b->start <= ae;
}

static int bad_lock(const FileDesc *d, size_t k, const char *why)
{
	pr_err("files image: lock %zu of file %u (%s): %s", k, d->id, fd_desc_name(d), why);
	return -EINVAL;
}

static const char *lock_invalid(const FileDesc *d, const FileLock *l)
{
	unsigned int acc = d->flags & O_ACCMODE;
	switch (l->kind) {
	case LK_FLOCK:
	case LK_LEASE:
		if (l->has_start || l->has_end || l->has_pid)
			return "a range or pid on a whole-file lock";
		if (l->kind == LK_LEASE && (d->flags & O_PATH))
			return "a lease on an O_PATH description";
		return NULL;
	case LK_POSIX:
	case LK_OFD:
		if (!l->has_start || l->start < 0 || (l->has_end && l->end < l->start) ||
		    (l->has_end && l->end == INT64_MAX))
			return "bad range";
		if ((l->kind == LK_POSIX) != l->has_pid || (l->has_pid && l->pid <= 0))
			return "bad pid";
		if (l->write ? acc == O_RDONLY : acc == O_WRONLY)
			return "its type does not match the access mode";
		if (d->flags & O_PATH)
			return "a record lock on an O_PATH description";
		return NULL;
	default:
		return "unknown kind";
	}
}

int locks_validate(const FileDesc *d)
{
	if (!d->n_locks)
		return 0;
	const struct fd_ops *ops = fd_ops_of(d);
	if ((ops != &fd_reg_ops && ops != &fd_dir_ops) || d->removed_dir || !d->path)
		return bad_lock(d, 0, "locks on a file not opened by path");
	if (d->n_locks > MAX_LOCKS_PER_FILE)
		return bad_lock(d, 0, "too many locks");
	for (size_t k = 0; k < d->n_locks; k++) {
		const FileLock *l = d->locks[k];
		const char *why = lock_invalid(d, l);
		if (why)
			return bad_lock(d, k, why);
		/* each owner's locks on a file are disjoint (the kernel merges them): at most
		 * one flock and one lease, records of one kind never overlapping */
		for (size_t j = 0; j < k; j++) {
			const FileLock *o = d->locks[j];
			if (o->kind != l->kind)
				continue;
			if (l->kind == LK_FLOCK || l->kind == LK_LEASE || ranges_overlap(o, l))
				return bad_lock(d, k, "overlaps another lock of the same owner");
		}
	}
	return 0;
}

/* Does a "lock:" line of fdinfo text @buf match lock @k? */
static bool fdinfo_has_lock(const char *buf, const struct proc_lock *k)
{
	_cleanup_free_ struct proc_lock *l = NULL;
	size_t n = 0;
	if (proc_parse_locks(buf, true, &l, &n))
		return false;
	for (size_t i = 0; i < n; i++)
		if (l[i].kind == k->kind && l[i].ino == k->ino && l[i].dev_major == k->dev_major &&
		    l[i].dev_minor == k->dev_minor && l[i].start == k->start && l[i].end == k->end)
			return true;
	return false;
}

/* A process outside the tree (not traced by this stasis) with an fd whose description
 * holds lock @k: its pid, the fd in *@fd_out; 0 if none is seen. Only on the failure
 * path: /proc/locks names no pid for an OFD lock, and names the taker of a flock, who
 * may have passed the description on. At most MAX_SCAN fds are looked at. */
#define MAX_SCAN 100000
static int holder_by_fdinfo(const struct rst_ctx *c, const struct proc_lock *k, int *fd_out)
{
	_cleanup_close_ int dfd = openat(c->proc_dfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	DIR *d = dfd >= 0 ? fdopendir(dfd) : NULL;
	if (!d)
		return 0;
	dfd = -1; /* the DIR's now */
	int found = 0, budget = MAX_SCAN;
	struct dirent *de;
	while (!found && budget > 0 && (de = readdir(d))) {
		long long pid;
		char name[64];
		if (parse_int(de->d_name, 1, INT_MAX, &pid) || pid == c->stasis_pid)
			continue;
		snprintf(name, sizeof(name), "%lld/status", pid);
		_cleanup_free_ char *st_text = read_file_at(c->proc_dfd, name, FDINFO_MAX, NULL);
		struct proc_status ps;
		if (!st_text || proc_parse_status(st_text, &ps))
			continue;
		bool ours = ps.tracer_pid == c->stasis_pid || ps.tgid != pid;
		proc_status_free(&ps);
		if (ours)
			continue; /* a task of the tree being restored (or a thread) */
		snprintf(name, sizeof(name), "%lld/fdinfo", pid);
		int fdi = openat(c->proc_dfd, name, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		DIR *fd_dir = fdi >= 0 ? fdopendir(fdi) : NULL;
		if (!fd_dir) {
			if (fdi >= 0)
				close(fdi);
			continue;
		}
		struct dirent *fe;
		while (!found && budget-- > 0 && (fe = readdir(fd_dir))) {
			long long fd;
			if (parse_int(fe->d_name, 0, INT_MAX, &fd))
				continue;
			_cleanup_free_ char *info =
				read_file_at(dirfd(fd_dir), fe->d_name, FDINFO_MAX, NULL);
			if (info && fdinfo_has_lock(info, k)) {
				found = (int)pid;
				*fd_out = (int)fd;
			}
		}
		closedir(fd_dir);
	}
	closedir(d);
	return found;
}

/* Who holds the lock of kind @kind on the file of fd @fd of the task that conflicts
 * with [@start, @end] (-1: EOF; for flock: 0, -1): a pid in stasis's pid namespace (and
 * the holder's fd in *@fd_out when found through its fdinfo), -1 an OFD lock of an
 * unknown owner, 0 none seen. */
static int holder_of(const struct rst_ctx *c, int fd, enum proc_lock_kind kind, int64_t start,
		     int64_t end, int *fd_out)
{
	char name[64];
	struct stat st;
	snprintf(name, sizeof(name), "%d/fd/%d", c->pid, fd);
	if (fstatat(c->proc_dfd, name, &st, 0))
		return 0;
	struct proc_lock k = { .kind = kind,
			       .ino = st.st_ino,
			       .dev_major = major(st.st_dev),
			       .dev_minor = minor(st.st_dev),
			       .start = start,
			       .end = end };
	int pid = holder_by_fdinfo(c, &k, fd_out);
	if (pid)
		return pid;
	_cleanup_free_ char *buf = read_file_at(c->proc_dfd, "locks", LOCKS_MAX, NULL);
	_cleanup_free_ struct proc_lock *l = NULL;
	size_t n = 0;
	if (!buf || proc_parse_locks(buf, false, &l, &n))
		return 0;
	for (size_t i = 0; i < n; i++)
		if (!l[i].waiter && l[i].kind == kind && l[i].ino == k.ino &&
		    l[i].dev_major == k.dev_major && l[i].dev_minor == k.dev_minor &&
		    l[i].start == start && l[i].end == end)
			return l[i].pid;
	return 0;
}

static void lock_flock(const FileLock *l, struct flock *fl)
{
	memset(fl, 0, sizeof(*fl));
	fl->l_type = l->write ? F_WRLCK : F_RDLCK;
	fl->l_whence = SEEK_SET;
	fl->l_start = l->start;
	fl->l_len = l->has_end ? l->end - l->start + 1 : 0;
}

/* Lock @l of the task's fd @fd conflicts with another owner's: say whose, as far as
 * the kernel tells. */
static int lock_conflict(struct rst_ctx *c, const FileDesc *d, int fd, const FileLock *l)
{
	char range[64] = "", who[96] = "another process";
	if ((l->kind == LK_POSIX || l->kind == LK_OFD) && l->has_end)
		snprintf(range, sizeof(range), " [%lld, %lld]", (long long)l->start, (long long)l->end);
	else if (l->kind == LK_POSIX || l->kind == LK_OFD)
		snprintf(range, sizeof(range), " [%lld, EOF]", (long long)l->start);
	int holder = 0, hfd = -1;
	int64_t hstart = 0, hend = -1; /* the conflicting lock's range (flock: whole file) */
	if (l->kind == LK_POSIX || l->kind == LK_OFD) {
		struct flock fl;
		long r = -1;
		lock_flock(l, &fl);
		if (!rsys_poke(&c->rs, c->rs.scratch, &fl, sizeof(fl)) &&
		    !rsys_call(&c->rs, SYS_fcntl, (uint64_t)fd,
			       l->kind == LK_POSIX ? F_GETLK : F_OFD_GETLK, c->rs.scratch, 0, 0, 0, &r) &&
		    r == 0 && !rsys_peek(&c->rs, c->rs.scratch, &fl, sizeof(fl)) &&
		    fl.l_type != F_UNLCK) {
			holder = fl.l_pid;
			hstart = fl.l_start;
			hend = fl.l_len ? fl.l_start + fl.l_len - 1 : -1;
		}
	}
	/* an OFD lock (its pid is -1, whichever lock query found it) or a flock: the
	 * description's holder, looked for */
	if (holder < 0 || (holder == 0 && l->kind != LK_POSIX))
		holder = holder_of(c, fd,
				   holder < 0 || l->kind == LK_OFD ? PROC_LOCK_OFD : PROC_LOCK_FLOCK,
				   hstart, hend, &hfd);
	if (holder > 0 && hfd >= 0)
		snprintf(who, sizeof(who), "pid %d (its fd %d)", holder, hfd);
	else if (holder > 0)
		snprintf(who, sizeof(who), "pid %d", holder);
	else if (holder < 0)
		snprintf(who, sizeof(who), "an open file description (an OFD lock: no pid)");
	pr_err("restore: pid %d: the %s %s lock on %s%s (fd %d) is held by %s outside the "
	       "tree",
	       c->pid, lock_kind_name(l->kind), l->write ? "write" : "read", fd_desc_name(d), range,
	       fd, who);
	return -EAGAIN;
}

static int lock_take(struct rst_ctx *c, const FileDesc *d, int fd, const FileLock *l)
{
	long r = 0;
	int ret;
	if (l->kind == LK_FLOCK) {
		ret = rsys_call(&c->rs, SYS_flock, (uint64_t)fd,
				(l->write ? LOCK_EX : LOCK_SH) | LOCK_NB, 0, 0, 0, 0, &r);
	} else if (l->kind == LK_LEASE) {
		ret = rsys_call(&c->rs, SYS_fcntl, (uint64_t)fd, F_SETLEASE,
				l->write ? F_WRLCK : F_RDLCK, 0, 0, 0, &r);
	} else {
		struct flock fl;
		lock_flock(l, &fl);
		ret = rsys_poke(&c->rs, c->rs.scratch, &fl, sizeof(fl));
		if (!ret)
			ret = rsys_call(&c->rs, SYS_fcntl, (uint64_t)fd,
					l->kind == LK_POSIX ? F_SETLK : F_OFD_SETLK, c->rs.scratch,
					0, 0, 0, &r);
	}
	if (ret)
		return pr_errno(ret, "restore: pid %d: remote call for a lock on fd %d", c->pid, fd);
	if (r == -EAGAIN && l->kind == LK_LEASE) {
		pr_err("restore: pid %d: the %s lease on %s (fd %d) cannot be taken: the file is "
		       "open or leased by a process outside the tree",
		       c->pid, l->write ? "write" : "read", fd_desc_name(d), fd);
		return -EAGAIN;
	}
	if (r == -EAGAIN || (r == -EACCES && (l->kind == LK_POSIX || l->kind == LK_OFD)))
		return lock_conflict(c, d, fd, l);
	if (r < 0)
		return pr_errno((int)r, "restore: pid %d: cannot take the %s %s lock on %s (fd %d)",
				c->pid, lock_kind_name(l->kind), l->write ? "write" : "read",
				fd_desc_name(d), fd);
	/* F_SETLEASE makes the caller the description's owner: the recorded one again */
	if (l->kind == LK_LEASE && d->owner)
		return fown_restore(c, fd, d->owner);
	return 0;
}

int locks_restore(struct rst_ctx *c)
{
	const Files *f = c->files;
	if (!f || c->shares_files)
		return 0; /* (a table shared with the parent: its locks are the parent's) */
	for (size_t i = 0; i < f->n_files; i++) {
		const FileDesc *d = f->files[i];
		int fd = d->n_locks ? fd_desc_fd(f, i) : -1;
		for (size_t k = 0; k < d->n_locks; k++) {
			int ret = fd < 0 ? fd_bad_data(d) : lock_take(c, d, fd, d->locks[k]);
			if (ret)
				return ret;
		}
		if (d->n_locks)
			pr_debug("restore: pid %d: %zu locks on %s", c->pid, d->n_locks,
				 fd_desc_name(d));
	}
	return 0;
}
