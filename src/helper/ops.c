/* The operations of the privileged helper. Each handler gets a request the decoder
 * (proto.c) has already validated for shape and bounds; it checks the request against
 * the peer (SO_PEERCRED of the session) and the registered tree, performs it, and returns
 * 0 or -errno with a reason. The server loop (helper.c) logs refusals and replies.
 *
 * The comment above each handler says why the operation is safe to perform for the
 * peer: the helper has privileges the peer lacks, so every handler must make sure the
 * peer gets nothing it could not get by itself had it the one narrow right in question. */
#include <fcntl.h>
#include <limits.h>
#include <linux/capability.h>
#include <linux/nsfs.h>
#include <poll.h>
#include <grp.h>
#include <sched.h>
#include <stdarg.h>
#include <stdio.h>
#include <sys/fsuid.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>

#include "core/log.h"
#include "core/util.h"
#include "helper/helper_int.h"
#include "helper/policy.h"
#include "proc/parse.h"
#include "sys/syscalls.h"

static int why_fmt(char *why, size_t whylen, int err, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
static int why_fmt(char *why, size_t whylen, int err, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(why, whylen, fmt, ap);
	va_end(ap);
	return err;
}

static bool peer_is_root(const struct helper_sess *s) { return s->peer.uid == 0; }

/* ---- tasks: pinning and the tree ------------------------------------------------ */

/* Whether the task of @pidfd has exited (or the fd is unusable). */
static bool task_exited(int pidfd)
{
	struct pollfd p = { .fd = pidfd, .events = POLLIN };
	int n = poll(&p, 1, 0);
	return n != 0;
}

struct target {
	pid_t pid;  /* in the helper's PID namespace */
	int pidfd;  /* pins it */
	int dirfd;  /* its /proc/PID, opened while the pidfd showed it alive */
};

static void target_release(struct target *t)
{
	if (t->pidfd >= 0)
		close(t->pidfd);
	if (t->dirfd >= 0)
		close(t->dirfd);
	t->pidfd = t->dirfd = -1;
}

/* The pid of a pidfd in the helper's PID namespace, after making sure it is one. */
static int pidfd_pid(int fd, pid_t *pid, char *why, size_t whylen)
{
	char path[64], link[64];
	ssize_t n;
	int ret;

	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	n = readlink(path, link, sizeof(link) - 1);
	if (n < 0)
		return why_fmt(why, whylen, -errno, "cannot read the passed fd: %s",
			       strerror(errno));
	link[n] = '\0';
	if (strcmp(link, "anon_inode:[pidfd]") && !str_starts(link, "pidfd:"))
		return why_fmt(why, whylen, -EINVAL, "the passed fd is not a pidfd (%s)", link);
	snprintf(path, sizeof(path), "/proc/self/fdinfo/%d", fd);
	_cleanup_free_ char *info = read_file_at(AT_FDCWD, path, 4096, NULL);
	if (!info)
		return why_fmt(why, whylen, -errno, "cannot read %s: %s", path, strerror(errno));
	ret = proc_parse_pidfd_pid(info, pid);
	if (ret == -ESRCH)
		return why_fmt(why, whylen, ret, "the pidfd's task has exited");
	if (ret == -ENOENT)
		return why_fmt(why, whylen, -EPERM,
			       "the pidfd's task is not in the helper's PID namespace");
	if (ret)
		return why_fmt(why, whylen, ret, "no pid in the pidfd's fdinfo");
	return 0;
}

/* Pin the task a request names (by pidfd or pid) and open its /proc directory. */
static int target_pin(const struct helper_req *q, int32_t pid_field, const int *fds,
		      struct target *t, char *why, size_t whylen)
{
	char path[32];
	int ret;

	t->pidfd = t->dirfd = -1;
	if (q->flags & HELPER_F_PIDFD) {
		ret = pidfd_pid(fds[0], &t->pid, why, whylen);
		if (ret)
			return ret;
		if (pid_field && pid_field != t->pid)
			return why_fmt(why, whylen, -EINVAL, "pid %d does not match the pidfd's %d",
				       pid_field, t->pid);
		t->pidfd = fcntl(fds[0], F_DUPFD_CLOEXEC, 3);
	} else {
		t->pid = pid_field;
		t->pidfd = sys_pidfd_open(t->pid, 0);
	}
	if (t->pidfd < 0)
		return why_fmt(why, whylen, -errno, "cannot pin pid %d: %s", t->pid,
			       strerror(errno));
	snprintf(path, sizeof(path), "/proc/%d", t->pid);
	t->dirfd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (t->dirfd < 0) {
		ret = -errno;
		target_release(t);
		return why_fmt(why, whylen, ret, "cannot open /proc/%d: %s", t->pid, strerror(-ret));
	}
	/* Alive after the open: the directory is that task's, not a successor's. */
	if (task_exited(t->pidfd)) {
		target_release(t);
		return why_fmt(why, whylen, -ESRCH, "task %d has exited", t->pid);
	}
	return 0;
}

static int read_ppid(pid_t pid, pid_t *ppid)
{
	char path[32];
	struct proc_stat st;

	snprintf(path, sizeof(path), "/proc/%d/stat", pid);
	_cleanup_free_ char *buf = read_file_at(AT_FDCWD, path, 4096, NULL);
	if (!buf)
		return -errno;
	if (proc_parse_stat(buf, &st) || st.pid != pid)
		return -EINVAL;
	*ppid = st.ppid;
	return 0;
}

/* The ppid chain from @pid up to @root into @chain; 0 and its length, or -ESRCH if
 * the walk ends (pid 1, pid 0, a vanished task, HELPER_MAX_DEPTH) before @root. */
static int ppid_chain(pid_t pid, pid_t root, pid_t *chain, size_t *len)
{
	*len = 0;
	for (pid_t cur = pid; *len < HELPER_MAX_DEPTH;) {
		chain[(*len)++] = cur;
		if (cur == root)
			return 0;
		if (cur <= 1 || read_ppid(cur, &cur) || cur <= 0)
			return -ESRCH;
	}
	return -ESRCH;
}

/* Whether @pid is @root or a descendant of it. The chain is read twice and must be
 * the same both times: a task that exits in between gets its children reparented (the
 * chain changes) and its pid could be reused by an unrelated task, so a stable chain
 * means every link was a real parent at one moment while the next was alive. */
static int in_subtree(pid_t pid, pid_t root, const char *what, char *why, size_t whylen)
{
	_cleanup_free_ pid_t *a = malloc(sizeof(pid_t) * HELPER_MAX_DEPTH);
	_cleanup_free_ pid_t *b = malloc(sizeof(pid_t) * HELPER_MAX_DEPTH);
	size_t na, nb;

	if (!a || !b)
		return why_fmt(why, whylen, -ENOMEM, "out of memory");
	if (ppid_chain(pid, root, a, &na) || ppid_chain(pid, root, b, &nb) || na != nb ||
	    memcmp(a, b, na * sizeof(pid_t)))
		return why_fmt(why, whylen, -EPERM, "pid %d is not %s %d or one of its descendants",
			       pid, what, root);
	return 0;
}

/* The registered tree must exist and its root must still be alive. */
static int tree_check(struct helper_sess *s, char *why, size_t whylen)
{
	if (!s->root)
		return why_fmt(why, whylen, -EPERM, "no tree registered on this connection");
	if (task_exited(s->root_pidfd))
		return why_fmt(why, whylen, -ESRCH, "the registered tree root %d has exited",
			       s->root);
	return 0;
}

/* REGISTER_TREE: remember the root of the tree this connection restores; later
 * requests may only name that task or its descendants.
 * Safe: it grants nothing by itself, it only narrows what later requests may name. The
 * root must be the peer itself or a descendant of the peer (as SO_PEERCRED reports its
 * pid), i.e. a task the peer created, never somebody else's; one tree per connection,
 * pinned by a pidfd so that a reused pid cannot take its place. */
int helper_op_register_tree(struct helper_sess *s, const struct helper_req *q, const int *fds,
			    int *out_fd, char *why, size_t whylen)
{
	struct target t;
	int ret;

	(void)out_fd;
	if (s->root)
		return why_fmt(why, whylen, -EBUSY,
			       "a tree (root %d) is already registered on this connection", s->root);
	if (s->peer.pid <= 0)
		return why_fmt(why, whylen, -EPERM, "the caller's pid is not visible to the helper");
	ret = target_pin(q, q->u.tree.pid, fds, &t, why, whylen);
	if (ret)
		return ret;
	ret = in_subtree(t.pid, s->peer.pid, "the caller", why, whylen);
	if (!ret && task_exited(t.pidfd))
		ret = why_fmt(why, whylen, -ESRCH, "task %d has exited", t.pid);
	if (ret) {
		target_release(&t);
		return ret;
	}
	s->root = t.pid;
	s->root_pidfd = take_fd(&t.pidfd);
	target_release(&t);
	pr_info("helper: pid %d registered tree root %d", s->peer.pid, s->root);
	return 0;
}

/* ---- SET_SOCKBUF_FORCE ---------------------------------------------------------- */

/* SET_SOCKBUF_FORCE: SO_SNDBUFFORCE / SO_RCVBUFFORCE on a socket the peer passed.
 * Safe: the peer already holds the socket (it sent it), so only the buffer ceiling of
 * its own socket changes; no data, no other socket, no other user is touched. The FORCE
 * options only bypass net.core.{w,r}mem_max, a memory-accounting limit (the buffers are
 * still charged to the socket and to memcg), not an access boundary. The value is
 * capped at HELPER_SOCKBUF_MAX (16 MiB, 4x the default {w,r}mem_max of 4 MiB here; the
 * kernel doubles it): enough for any socket a normal workload sets up, while a hostile
 * image cannot pin arbitrary kernel memory per socket. Needs CAP_NET_ADMIN in the
 * helper (root here has it; CAP_SYS_RESOURCE is not needed). */
int helper_op_sockbuf(struct helper_sess *s, const struct helper_req *q, const int *fds,
		      int *out_fd, char *why, size_t whylen)
{
	struct stat st;
	int v;

	(void)s;
	(void)out_fd;
	if (fstat(fds[0], &st))
		return why_fmt(why, whylen, -errno, "fstat of the passed fd: %s", strerror(errno));
	if (!S_ISSOCK(st.st_mode))
		return why_fmt(why, whylen, -ENOTSOCK, "the passed fd is not a socket");
	if (q->flags & HELPER_F_SNDBUF) {
		v = (int)q->u.sockbuf.snd;
		if (setsockopt(fds[0], SOL_SOCKET, SO_SNDBUFFORCE, &v, sizeof(v)))
			return why_fmt(why, whylen, -errno, "SO_SNDBUFFORCE %d: %s", v,
				       strerror(errno));
	}
	if (q->flags & HELPER_F_RCVBUF) {
		v = (int)q->u.sockbuf.rcv;
		if (setsockopt(fds[0], SOL_SOCKET, SO_RCVBUFFORCE, &v, sizeof(v)))
			return why_fmt(why, whylen, -errno, "SO_RCVBUFFORCE %d: %s", v,
				       strerror(errno));
	}
	return 0;
}

/* ---- WRITE_ID_MAP --------------------------------------------------------------- */

static int same_file(int fd, const char *path, bool *same)
{
	struct stat a, b;

	if (fstat(fd, &a) || stat(path, &b))
		return -errno;
	*same = a.st_dev == b.st_dev && a.st_ino == b.st_ino;
	return 0;
}

/* The target's user namespace must be a child of the helper's (the kernel lets only a
 * writer in the parent namespace map ids of the parent) and, for a non-root peer, be
 * owned by the peer's uid (it created it). */
static int idmap_check_userns(struct helper_sess *s, struct target *t, char *why,
			      size_t whylen)
{
	_cleanup_close_ int ns = openat(t->dirfd, "ns/user", O_RDONLY | O_CLOEXEC);
	_cleanup_close_ int parent = -1;
	bool same;
	uid_t owner;
	int ret;

	if (ns < 0)
		return why_fmt(why, whylen, -errno, "cannot open the user namespace of %d: %s",
			       t->pid, strerror(errno));
	parent = ioctl(ns, NS_GET_PARENT);
	if (parent < 0)
		return why_fmt(why, whylen, -EPERM,
			       "the user namespace of %d is not below the helper's (%s)", t->pid,
			       strerror(errno));
	ret = same_file(parent, "/proc/self/ns/user", &same);
	if (ret)
		return why_fmt(why, whylen, ret, "cannot compare user namespaces: %s",
			       strerror(-ret));
	if (!same)
		return why_fmt(why, whylen, -EPERM,
			       "the user namespace of %d is not a child of the helper's", t->pid);
	if (peer_is_root(s))
		return 0;
	if (ioctl(ns, NS_GET_OWNER_UID, &owner))
		return why_fmt(why, whylen, -errno, "NS_GET_OWNER_UID: %s", strerror(errno));
	if (owner != s->peer.uid)
		return why_fmt(why, whylen, -EPERM,
			       "the user namespace of %d belongs to uid %u, not to the caller",
			       t->pid, (unsigned)owner);
	return 0;
}

/* The newuidmap/newgidmap rule for a non-root peer (policy.c), with the peer's ranges
 * from /etc/subuid or /etc/subgid. */
static int idmap_check_ranges(struct helper_sess *s, const struct helper_req *q,
			      char *why, size_t whylen)
{
	bool gid = q->flags & HELPER_F_GID;
	const char *file = gid ? "/etc/subgid" : "/etc/subuid";
	_cleanup_free_ struct subid_range *sub = calloc(SUBID_MAX_RANGES, sizeof(*sub));
	bool used_subids;
	int nsub, ret;

	if (!sub)
		return why_fmt(why, whylen, -ENOMEM, "out of memory");
	nsub = subid_read(file, s->peer.uid, sub, SUBID_MAX_RANGES);
	if (nsub == -E2BIG)
		return why_fmt(why, whylen, -EPERM, "more than %d ranges for uid %u in %s",
			       SUBID_MAX_RANGES, (unsigned)s->peer.uid, file);
	if (nsub < 0)
		return why_fmt(why, whylen, nsub, "cannot read %s: %s", file, strerror(-nsub));
	ret = idmap_permitted(q->u.idmap.r, q->u.idmap.nr, gid ? s->peer.gid : s->peer.uid, sub,
			      (size_t)nsub, &used_subids, why, whylen);
	if (ret) {
		size_t n = strlen(why);
		snprintf(why + n, whylen - n, " (%s)", file);
		return ret;
	}
	/* newgidmap: a map of nothing but the caller's own gid leaves setgroups "deny",
	 * or the namespace could drop a group that denies access (a negative ACL). */
	if (gid && !used_subids && !(q->flags & HELPER_F_DENY_SETGROUPS))
		return why_fmt(why, whylen, -EPERM,
			       "a gid_map of only the caller's own gid needs setgroups \"deny\"");
	return 0;
}

static int write_setgroups_deny(struct target *t, char *why, size_t whylen)
{
	_cleanup_free_ char *cur = read_file_at(t->dirfd, "setgroups", 64, NULL);
	_cleanup_close_ int fd = -1;
	ssize_t n;

	/* "deny" cannot be written once a gid_map exists: nothing to do if it is there */
	if (cur && str_starts(cur, "deny"))
		return 0;
	fd = openat(t->dirfd, "setgroups", O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return why_fmt(why, whylen, -errno, "cannot open /proc/%d/setgroups: %s", t->pid,
			       strerror(errno));
	n = write(fd, "deny", 4);
	if (n != 4)
		return why_fmt(why, whylen, n < 0 ? -errno : -EIO,
			       "cannot write \"deny\" to /proc/%d/setgroups: %s", t->pid,
			       n < 0 ? strerror(errno) : "short write");
	return 0;
}

/* WRITE_ID_MAP: write the uid_map or gid_map of a task of the registered tree, in one
 * write, with several ranges.
 * Safe: this is exactly what the setuid-root newuidmap/newgidmap grant every user: the
 * target must be in the registered tree (so the peer created it) and in a user
 * namespace that is a child of the helper's and, for a non-root peer, owned by the
 * peer's uid; every range must map outside ids the peer owns (its subordinate ids in
 * /etc/subuid or /etc/subgid) or its own id once; a gid_map of only its own gid
 * requires setgroups "deny". The kernel checks the rest (no overlap, one write only).
 * A root peer (uid 0 in the helper's user namespace) could write the map itself. */
int helper_op_write_id_map(struct helper_sess *s, const struct helper_req *q, const int *fds,
			   int *out_fd, char *why, size_t whylen)
{
	bool gid = q->flags & HELPER_F_GID;
	const char *file = gid ? "gid_map" : "uid_map";
	struct target t;
	char text[4096];
	size_t len = 0;
	int ret;

	(void)out_fd;
	ret = tree_check(s, why, whylen);
	if (ret)
		return ret;
	ret = target_pin(q, q->u.idmap.pid, fds, &t, why, whylen);
	if (ret)
		return ret;
	ret = in_subtree(t.pid, s->root, "the registered tree root", why, whylen);
	ret = ret ?: idmap_check_userns(s, &t, why, whylen);
	if (!ret && !peer_is_root(s))
		ret = idmap_check_ranges(s, q, why, whylen);
	for (uint32_t i = 0; !ret && i < q->u.idmap.nr; i++) {
		int n = snprintf(text + len, sizeof(text) - len, "%u %u %u\n", q->u.idmap.r[i].inside,
				 q->u.idmap.r[i].outside, q->u.idmap.r[i].count);
		if (n < 0 || (size_t)n >= sizeof(text) - len)
			ret = why_fmt(why, whylen, -E2BIG, "map text over %zu bytes", sizeof(text));
		else
			len += (size_t)n;
	}
	if (!ret && gid && (q->flags & HELPER_F_DENY_SETGROUPS))
		ret = write_setgroups_deny(&t, why, whylen);
	if (!ret) {
		_cleanup_close_ int fd = openat(t.dirfd, file, O_WRONLY | O_CLOEXEC);
		ssize_t n = fd < 0 ? -1 : write(fd, text, len);
		if (n < 0)
			ret = why_fmt(why, whylen, -errno, "writing /proc/%d/%s: %s", t.pid, file,
				      strerror(errno));
		else if ((size_t)n != len)
			ret = why_fmt(why, whylen, -EIO, "short write to /proc/%d/%s", t.pid, file);
	}
	if (!ret)
		pr_info("helper: wrote %u ranges to /proc/%d/%s for pid %d", q->u.idmap.nr, t.pid,
			file, s->peer.pid);
	target_release(&t);
	return ret;
}

/* ---- SET_NS_LAST_PID ------------------------------------------------------------ */

/* SET_NS_LAST_PID: write /proc/sys/kernel/ns_last_pid of the helper's own PID
 * namespace, so that the next task created in it gets pid last_pid + 1 at this level,
 * where the peer (inside a user namespace that does not own this PID namespace) has no
 * right to choose PIDs itself.
 * Safe: it only chooses which FREE pid the next fork in the namespace gets; it cannot
 * take a pid in use, signal or reach any task. Only the helper's own PID namespace is
 * served (an nsfs fd naming another one is refused), only for a peer with a registered,
 * living tree, and the value is bounded by pid_max. Residual effect: other tasks of the
 * namespace forking at that moment get pids near the chosen one, which a program
 * trusting predicted pids could notice; the kernel accepts the same from every holder
 * of CAP_CHECKPOINT_RESTORE, and the long-lived helper serves only its configured user.
 * Race: any fork in the namespace between this write and the peer's fork takes the pid.
 * The caller must check the pid it got and, if wrong, kill that child and retry (a
 * bounded number of times); clone3 with set_tid has no such race where it is allowed. */
int helper_op_set_last_pid(struct helper_sess *s, const struct helper_req *q, const int *fds,
			   int *out_fd, char *why, size_t whylen)
{
	char buf[32];
	long long pid_max;
	int ret;

	(void)out_fd;
	ret = tree_check(s, why, whylen);
	if (ret)
		return ret;
	if (q->flags & HELPER_F_PIDNS_FD) {
		bool same;
		if (ioctl(fds[0], NS_GET_NSTYPE) != CLONE_NEWPID)
			return why_fmt(why, whylen, -EINVAL,
				       "the passed fd is not a PID namespace");
		ret = same_file(fds[0], "/proc/self/ns/pid", &same);
		if (ret)
			return why_fmt(why, whylen, ret, "cannot compare PID namespaces: %s",
				       strerror(-ret));
		if (!same)
			return why_fmt(why, whylen, -EPERM,
				       "the PID namespace passed is not the helper's own");
	}
	_cleanup_free_ char *pm = read_file_at(AT_FDCWD, "/proc/sys/kernel/pid_max", 64, NULL);
	if (!pm)
		return why_fmt(why, whylen, -errno, "cannot read pid_max: %s", strerror(errno));
	pm[strcspn(pm, "\n")] = '\0';
	if (parse_int(pm, 1, HELPER_PID_LIMIT, &pid_max))
		return why_fmt(why, whylen, -EINVAL, "bad pid_max \"%s\"", pm);
	if (q->u.last_pid.last_pid >= pid_max)
		return why_fmt(why, whylen, -EINVAL, "last pid %d is not below pid_max %lld",
			       q->u.last_pid.last_pid, pid_max);
	int n = snprintf(buf, sizeof(buf), "%d", q->u.last_pid.last_pid);
	_cleanup_close_ int fd = open("/proc/sys/kernel/ns_last_pid", O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return why_fmt(why, whylen, -errno, "cannot open ns_last_pid: %s", strerror(errno));
	if (write(fd, buf, (size_t)n) != n)
		return why_fmt(why, whylen, -errno, "cannot write ns_last_pid: %s",
			       strerror(errno));
	pr_debug("helper: ns_last_pid = %d for pid %d", q->u.last_pid.last_pid, s->peer.pid);
	return 0;
}

/* ---- OPEN_BY_HANDLE ------------------------------------------------------------- */

struct saved_creds {
	uid_t fsuid;
	gid_t fsgid;
	gid_t *groups;
	int ngroups;
	struct __user_cap_header_struct hdr;
	struct __user_cap_data_struct caps[2];
};

static int sys_capget(struct __user_cap_header_struct *h, struct __user_cap_data_struct *d)
{
	return (int)syscall(SYS_capget, h, d);
}
static int sys_capset(struct __user_cap_header_struct *h, struct __user_cap_data_struct *d)
{
	return (int)syscall(SYS_capset, h, d);
}

/* Put back the helper's own credentials. A helper that cannot is not safe to keep
 * running: it exits. */
static void creds_restore(struct saved_creds *sv)
{
	bool ok = sys_capset(&sv->hdr, sv->caps) == 0;

	setfsuid(sv->fsuid);
	setfsgid(sv->fsgid);
	ok = ok && setfsuid((uid_t)-1) == (int)sv->fsuid && setfsgid((gid_t)-1) == (int)sv->fsgid;
	ok = ok && setgroups((size_t)sv->ngroups, sv->groups) == 0;
	free(sv->groups);
	sv->groups = NULL;
	if (!ok) {
		pr_err("helper: cannot restore its own credentials: exiting");
		_exit(1);
	}
}

/* Take the peer's filesystem identity (fsuid, fsgid, groups) and drop every effective
 * capability, so that a path lookup is checked exactly as the peer's would be. */
static int creds_become_peer(struct helper_sess *s, struct saved_creds *sv, char *why,
			     size_t whylen)
{
	struct __user_cap_data_struct none[2];
	int n;

	memset(sv, 0, sizeof(*sv));
	sv->hdr.version = _LINUX_CAPABILITY_VERSION_3;
	if (sys_capget(&sv->hdr, sv->caps))
		return why_fmt(why, whylen, -errno, "capget: %s", strerror(errno));
	n = getgroups(0, NULL);
	sv->groups = malloc(sizeof(gid_t) * (size_t)(n > 0 ? n : 1));
	if (n < 0 || !sv->groups || (sv->ngroups = getgroups(n, sv->groups)) < 0) {
		free(sv->groups);
		sv->groups = NULL;
		return why_fmt(why, whylen, -ENOMEM, "cannot save the helper's groups");
	}
	sv->fsuid = geteuid();
	sv->fsgid = getegid();
	if (setgroups(s->ngroups, s->groups)) {
		int e = errno;
		free(sv->groups);
		sv->groups = NULL;
		return why_fmt(why, whylen, -e, "cannot take the caller's groups: %s", strerror(e));
	}
	setfsgid(s->peer.gid);
	setfsuid(s->peer.uid);
	/* effective only: permitted stays, so that they can be raised again */
	memcpy(none, sv->caps, sizeof(none));
	none[0].effective = none[1].effective = 0;
	if (setfsuid((uid_t)-1) != (int)s->peer.uid || setfsgid((gid_t)-1) != (int)s->peer.gid ||
	    sys_capset(&sv->hdr, none)) {
		creds_restore(sv);
		return why_fmt(why, whylen, -EPERM, "cannot take the caller's identity");
	}
	return 0;
}

/* Open @path as the peer would (its fs ids and groups, no capabilities). */
static int open_as_peer(struct helper_sess *s, const char *path, int flags, char *why,
			size_t whylen)
{
	struct saved_creds sv;
	int fd, err, ret;

	ret = creds_become_peer(s, &sv, why, whylen);
	if (ret)
		return ret;
	fd = open(path, flags | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY);
	err = errno;
	creds_restore(&sv);
	if (fd < 0)
		return why_fmt(why, whylen, -err, "the caller cannot open %s: %s", path,
			       strerror(err));
	return fd;
}

/* OPEN_BY_HANDLE: open_by_handle_at() on the peer's mount fd and return the fd.
 * Safe: open_by_handle_at needs CAP_DAC_READ_SEARCH because it skips the permission
 * checks of a path walk. So for a non-root peer the helper opens the handle only to
 * learn the file (O_PATH) and its path in the helper's mount namespace, then opens that
 * PATH again with the peer's filesystem identity (fsuid, fsgid, supplementary groups)
 * and no capabilities, and requires the same inode: the peer gets an fd only if it
 * could have opened the file by path itself, with the same access mode, including search
 * permission on every directory above it. A file with no path (deleted, or not
 * reachable in the helper's mount namespace) is refused. Flags are restricted to an
 * access mode or O_PATH, and O_CLOEXEC (no O_CREAT/O_TRUNC: nothing is created or
 * changed), and only regular files and directories can be opened with an access mode
 * (opening a FIFO or a device could block the helper or have side effects). */
int helper_op_open_by_handle(struct helper_sess *s, const struct helper_req *q, const int *fds,
			     int *out_fd, char *why, size_t whylen)
{
	int flags = (int)q->u.handle.open_flags;
	_cleanup_free_ struct file_handle *fh = malloc(sizeof(*fh) + q->u.handle.bytes);
	_cleanup_close_ int pfd = -1, fd = -1;
	char proc[64], path[PATH_MAX];
	struct stat st, st2;
	ssize_t n;

	if (!fh)
		return why_fmt(why, whylen, -ENOMEM, "out of memory");
	fh->handle_bytes = q->u.handle.bytes;
	fh->handle_type = q->u.handle.type;
	memcpy(fh->f_handle, q->u.handle.f_handle, q->u.handle.bytes);
	pfd = open_by_handle_at(fds[0], fh, O_PATH | O_CLOEXEC);
	if (pfd < 0)
		return why_fmt(why, whylen, -errno, "open_by_handle_at: %s", strerror(errno));
	if (fstat(pfd, &st))
		return why_fmt(why, whylen, -errno, "fstat: %s", strerror(errno));
	if (!(flags & O_PATH) && !S_ISREG(st.st_mode) && !S_ISDIR(st.st_mode))
		return why_fmt(why, whylen, -EACCES,
			       "only regular files and directories can be opened (mode 0%o); "
			       "use O_PATH",
			       st.st_mode & S_IFMT);
	if (peer_is_root(s)) {
		fd = open_by_handle_at(fds[0], fh, flags | O_CLOEXEC | O_NOCTTY);
		if (fd < 0)
			return why_fmt(why, whylen, -errno, "open_by_handle_at: %s", strerror(errno));
	} else {
		snprintf(proc, sizeof(proc), "/proc/self/fd/%d", pfd);
		n = readlink(proc, path, sizeof(path) - 1);
		if (n < 0)
			return why_fmt(why, whylen, -errno, "readlink %s: %s", proc, strerror(errno));
		path[n] = '\0';
		if (path[0] != '/' || str_ends(path, " (deleted)"))
			return why_fmt(why, whylen, -EACCES,
				       "the file has no path the caller could open (%s)", path);
		fd = open_as_peer(s, path, flags, why, whylen);
		if (fd < 0)
			return fd;
	}
	if (fstat(fd, &st2))
		return why_fmt(why, whylen, -errno, "fstat: %s", strerror(errno));
	if (st2.st_dev != st.st_dev || st2.st_ino != st.st_ino)
		return why_fmt(why, whylen, -EACCES,
			       "the path of the handle's file leads to another file");
	*out_fd = take_fd(&fd);
	return 0;
}
