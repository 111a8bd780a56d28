/* Restore: creating the tasks. Each task is created by its creator (its parent, or a
 * session leader that is its sibling) with clone3 and its pids at every level; in the
 * new task (a fork of stasis: the "restore child") restore_task sets up its namespaces,
 * creates its own children, then what it can do for itself (the child stage of
 * src/cr/stages.c), reports ready and waits to be rebuilt by stasis. */
#include <fcntl.h>
#include <linux/capability.h>
#include <linux/openat2.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>

#include "core/fault.h"
#include "core/log.h"
#include "cr/pidreq.h"
#include "net/sk_unix.h"
#include "net/sockopt.h"
#include "cr/resource.h"
#include "cr/restore_int.h"
#include "files/files.h"
#include "ns/cgroup.h"
#include "ns/mnt.h"
#include "ns/ns.h"
#include "ns/userns.h"
#include "sys/syscalls.h"

static __attribute__((noreturn)) void restore_task(struct rst_tree *t, size_t idx);
static int fetch_deferred(struct rst_tree *t, size_t idx);
static int make_netns_deferred(struct rst_tree *t, size_t idx);
static int take_ctty(const struct rst_tree *t, pid_t sid);
/* Create the children of task @idx (alive and zombie), each with its pid. */
static int create_children_pass(struct rst_tree *t, size_t idx, bool sharers, bool timens,
				bool inits);

static void report(int fd, pid_t pid, int err, const char *msg)
{
	struct status_msg m = { .pid = pid, .err = err };
	snprintf(m.msg, sizeof(m.msg), "%s", msg ? msg : "");
	(void)!write(fd, &m, sizeof(m));
}

static __attribute__((noreturn)) void child_fail(int status_fd, pid_t pid, int err)
{
	report(status_fd, pid, err ? err : -EIO, log_first_error());
	_exit(1);
}

/* Who creates task @j: its parent, or — for a task in the session of a leader that is its
 * sibling (reparented to their common parent), or a session leader born in that session
 * (it made its children there, then called setsid) — that leader, with CLONE_PARENT. */
pid_t rst_creator_of(const Inventory *inv, size_t j)
{
	const TaskEntry *e = inv->tasks[j];
	if (j && e->has_mnt_sibling && e->mnt_sibling > 0) /* with CLONE_PARENT, in its tree */
		return e->mnt_sibling;
	if (j && e->has_creator && e->creator > 0)
		return e->creator;
	ssize_t p = rst_task_index(inv, e->ppid);
	pid_t s = rst_helper_sid(e); /* (a session leader is made where it was born) */
	if (j && p >= 0 && s != e->pid && s != inv->tasks[p]->sid) {
		ssize_t l = rst_task_index(inv, s);
		if (l > 0 && inv->tasks[l]->ppid == e->ppid && !inv->tasks[l]->zombie)
			return s;
	}
	return e->ppid;
}

bool rst_early_child(const Inventory *inv, size_t j)
{
	const TaskEntry *e = inv->tasks[j];
	ssize_t p = j ? rst_task_index(inv, e->ppid) : -1;
	if (p <= 0 || e->has_creator || e->has_mnt_sibling || e->shares_files || e->shares_fs ||
	    e->via_session)
		return false;
	const TaskEntry *pe = inv->tasks[p];
	/* born in the session its parent was born in, before the parent's setsid: a task of
	 * that session, or a session leader born there too */
	if (pe->has_born_sid && pe->born_sid > 0 && pe->sid == pe->pid)
		return e->sid == e->pid ? e->has_born_sid && e->born_sid == pe->born_sid
					: e->sid == pe->born_sid;
	if (e->zombie || e->sid == e->pid)
		return false;
	ssize_t g = rst_task_index(inv, rst_creator_of(inv, (size_t)p));
	return pe->sid == pe->pid && e->sid != pe->sid && g >= 0 && !pe->has_creator &&
	       inv->tasks[g]->sid == e->sid;
}

static pid_t clone_with_ids(pid_t want, const int32_t *ids, size_t nids, int exit_signal,
			    bool parent, uint64_t flags, size_t skip_outer, int *pidfd);

/* Id @ids[@lvl] of @n (outermost first), or the outermost @top when the image has no
 * levels; 0 at a level it does not know. */
static pid_t id_at(const int32_t *ids, size_t n, size_t lvl, pid_t top)
{
	return lvl < n ? ids[lvl] : lvl ? 0 : top;
}

pid_t rst_image_top_id(const Inventory *inv, size_t lvl)
{
	pid_t top = 0;
	for (size_t i = 0; i < inv->n_tasks; i++) {
		const TaskEntry *e = inv->tasks[i];
		top = MAX(top, id_at(e->nspid, e->n_nspid, lvl, e->pid));
		top = MAX(top, id_at(e->nspgid, e->n_nspgid, lvl, e->pgid));
		top = MAX(top, id_at(e->nssid, e->n_nssid, lvl, e->sid));
	}
	return top;
}

/* Stasis sets ns_last_pid at the @skip outer pid-namespace levels for the next clone
 * (@op: task @pid's pids, or its session's ids): the private socket for its verdict in
 * *@priv (-1 when @skip is 0). 0 or -errno (logged). */
static int outer_pids_prepare(struct rst_tree *t, int32_t op, pid_t pid, size_t skip,
			      int *priv)
{
	int sv[2];
	int32_t answer = 0;
	*priv = -1;
	if (!skip)
		return 0;
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0)
		return pr_perror("restore: socketpair");
	int ret = pidreq_send(t->pidreq_wr, op, pid, (int32_t)skip, sv[1]);
	close(sv[1]);
	if (!ret)
		ret = pidreq_recv(sv[0], NULL, &answer, NULL, NULL) ?: answer;
	if (ret) {
		close(sv[0]);
		return pr_errno(ret, "restore: stasis could not prepare pid %d", pid);
	}
	*priv = sv[0];
	return 0;
}

/* After the clone (@ret: 0 or its -errno; @pidfd: the child's) of a prepared one
 * (@priv >= 0): stasis's verdict on the pids it got, 0 or -EAGAIN (one was taken
 * meanwhile). @priv and @pidfd closed; @ret as it is when nothing was prepared. */
static int outer_pids_verdict(int priv, int ret, int pidfd)
{
	if (priv < 0)
		return ret;
	int32_t verdict = -EIO;
	int r = pidreq_send(priv, PIDREQ_ANSWER, ret, 0, pidfd);
	if (!r && !ret)
		r = pidreq_recv(priv, NULL, &verdict, NULL, NULL);
	close(priv);
	if (pidfd >= 0)
		close(pidfd);
	return ret ? ret : r ? r : verdict;
}

/* clone3 with @ids (outermost first) at the inner @n - @skip levels, quietly: -1 with
 * errno EEXIST when another process has one of them. */
static pid_t clone_innermost(const int32_t *ids, size_t n, size_t skip, int exit_signal,
			     int *pidfd)
{
	pid_t set[PROC_MAX_NS_LEVEL];
	for (size_t k = 0; k + skip < n; k++)
		set[k] = ids[n - 1 - k];
	struct stasis_clone_args ca = { .exit_signal = (uint64_t)exit_signal,
					.flags = pidfd ? CLONE_PIDFD : 0,
					.pidfd = (uint64_t)(uintptr_t)pidfd,
					.set_tid = n > skip ? (uint64_t)(uintptr_t)set : 0,
					.set_tid_size = n - skip };
	return (pid_t)sys_clone3(&ca, sizeof(ca));
}

/* A helper with id @want at every level (@ids, outermost first, @nids of them; none: the
 * outermost only; @want 0: any ids from @ids up, moved up when taken): those the creator
 * has no rights over (@skip outer ones) prepared by stasis (@op for image task @req:
 * PIDREQ_LAST_SID, its session's ids, PIDREQ_LAST_PGID, its group's, PIDREQ_LAST_FREE,
 * ids of no task) and checked once it exists, made again when another process took an
 * id meanwhile. The helper waits for the creator's go. 0 in the helper. */
static pid_t clone_prepared(struct rst_tree *t, int32_t op, pid_t req, pid_t want,
			    const int32_t *ids_in, size_t nids, int exit_signal, size_t skip)
{
	int32_t ids[PROC_MAX_NS_LEVEL];
	if (nids > PROC_MAX_NS_LEVEL)
		return pr_errno(-EINVAL, "restore: a helper for pid %d: %zu pid-namespace levels",
				req, nids);
	if (nids)
		memcpy(ids, ids_in, nids * sizeof(*ids));
	for (int attempt = 0;; attempt++) {
		int go[2], priv = -1, pidfd = -1;
		if (pipe2(go, O_CLOEXEC) < 0)
			return pr_perror("restore: pipe");
		int ret = outer_pids_prepare(t, op, req, skip, &priv);
		pid_t h = ret    ? -1
			  : want ? clone_with_ids(want, nids > 1 ? ids : NULL, nids > 1 ? nids : 0,
						  exit_signal, false, 0, skip, skip ? &pidfd : NULL)
				 : clone_innermost(ids, nids, skip, exit_signal, skip ? &pidfd : NULL);
		if (h == 0) {
			char b;
			close(go[1]);
			if (priv >= 0)
				close(priv);
			if (read(go[0], &b, 1) != 1)
				_exit(1);
			close(go[0]);
			return 0;
		}
		ret = ret ?: h < 0 ? -errno : 0;
		close(go[0]);
		if (ret == -EEXIST && !want) { /* another helper's: the next ids */
			for (size_t k = skip; k < nids; k++)
				ids[k]++;
			ret = -EAGAIN;
		}
		ret = outer_pids_verdict(priv, ret, pidfd);
		if (!ret && write(go[1], "g", 1) != 1)
			ret = pr_perror("restore: let the helper for pid %d go", req);
		close(go[1]);
		if (ret && h > 0) {
			kill(h, SIGKILL);
			while (waitpid(h, NULL, __WALL) < 0 && errno == EINTR)
				;
		}
		if (ret != -EAGAIN || attempt >= 8) {
			if (ret)
				pr_errno(ret, "restore: the helper with id %d (for pid %d)", want, req);
			return ret ? ret : h;
		}
		struct timespec ts = { 0, (long)(attempt + 1) * 25 * 1000000L };
		nanosleep(&ts, NULL);
	}
}

/* The helper of task @j's session (its leader gone), with the session's id at every
 * level. 0 in the helper. */
static pid_t clone_session_helper(struct rst_tree *t, size_t j, size_t skip)
{
	const TaskEntry *e = t->inv->tasks[j];
	return clone_prepared(t, PIDREQ_LAST_SID, e->pid, rst_helper_sid(e), e->nssid, e->n_nssid,
			      SIGCHLD, skip);
}

/* A transient helper of task @idx (0 in the helper, which waits for the go): in a pid
 * namespace below stasis's (a fresh one hands out low pids, which tasks of the image are
 * made with) it gets an id above every id of the image at the levels @idx may choose;
 * the outer ones stasis prepares the same way (PIDREQ_LAST_FREE; concurrent forks would
 * take the pids it prepares for tasks) and checks. At stasis's own level, with nothing
 * prepared there, as fork gives. */
static pid_t fork_helper(struct rst_tree *t, size_t idx)
{
	const TaskEntry *me = t->inv->tasks[idx];
	size_t n = me->n_nspid ? me->n_nspid : 1, skip = rst_unsettable_levels(t, (ssize_t)idx, idx);
	if (n > PROC_MAX_NS_LEVEL)
		return -EINVAL;
	if (n < 2 && !skip)
		return fork();
	int32_t ids[PROC_MAX_NS_LEVEL]; /* outermost first; the outer @skip unused */
	for (size_t k = 0; k < n; k++)
		ids[k] = rst_image_top_id(t->inv, k) + 1 + (pid_t)(getpid() % 512);
	pid_t h = clone_prepared(t, PIDREQ_LAST_FREE, me->pid, 0, ids, n, SIGCHLD, skip);
	if (h < 0)
		errno = (int)-h;
	return h < 0 ? -1 : h;
}

/* Task @j of @t made by a helper forked by its creator (the task @idx), which exits at
 * once: the kernel gives @j to the reaper of @idx's orphans, its parent. The pid it got
 * in the creator's view, or -errno. */
static pid_t spawn_via_helper(struct rst_tree *t, size_t idx, size_t j, uint64_t flags)
{
	int p[2];
	if (pipe2(p, O_CLOEXEC) < 0)
		return pr_perror("restore: pipe");
	pid_t h = fork_helper(t, idx);
	if (h < 0) {
		int e = pr_perror("restore: fork a helper for pid %d", t->inv->tasks[j]->pid);
		close(p[0]);
		close(p[1]);
		return e;
	}
	if (h == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		close(p[0]);
		t->via_helper = getpid();
		pid_t c = rst_spawn_task(t, (ssize_t)idx, j, SIGCHLD, false, flags);
		_exit(write(p[1], &c, sizeof(c)) == (ssize_t)sizeof(c) && c > 0 ? 0 : 1);
	}
	close(p[1]);
	pid_t c = -EIO;
	int st = 0;
	ssize_t n = read(p[0], &c, sizeof(c));
	close(p[0]);
	while (waitpid(h, &st, 0) < 0 && errno == EINTR)
		;
	if (n != (ssize_t)sizeof(c) || !WIFEXITED(st) || WEXITSTATUS(st)) {
		pr_err("restore: the helper making pid %d failed", t->inv->tasks[j]->pid);
		return c < 0 ? c : -EIO;
	}
	return c;
}

/* The tasks of task @j's session, whose leader is gone, that task @idx makes (its
 * children there, TaskEntry.via_session): through a helper with the session's id at every
 * level that calls setsid, makes them and exits, so that the kernel gives them to @idx
 * (the reaper of its children's orphans). Their pids in t->spawned; 0 or -errno. */
static int spawn_session(struct rst_tree *t, size_t idx, size_t j)
{
	const TaskEntry *e = t->inv->tasks[j], *me = t->inv->tasks[idx];
	pid_t hs = rst_helper_sid(e);
	int p[2];
	if (pipe2(p, O_CLOEXEC) < 0)
		return pr_perror("restore: pipe");
	pid_t h = clone_session_helper(t, j, rst_unsettable_levels(t, (ssize_t)idx, j));
	if (h == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		close(p[0]);
		if (setsid() < 0) {
			pr_perror("restore: helper of session %d: setsid", hs);
			_exit(1);
		}
		t->via_helper = getpid();
		for (size_t k = j; k < t->n; k++) {
			const TaskEntry *o = t->inv->tasks[k];
			if (!o->via_session || rst_helper_sid(o) != hs ||
			    rst_creator_of(t->inv, k) != me->pid)
				continue;
			int32_t m[2] = { (int32_t)k, rst_spawn_task(t, (ssize_t)idx, k,
							     o->has_exit_signal ? (int)o->exit_signal
										: SIGCHLD,
							     false, 0) };
			if (write(p[1], m, sizeof(m)) != (ssize_t)sizeof(m) || m[1] < 0)
				_exit(1);
		}
		_exit(0);
	}
	int ret = h < 0 ? (int)h : 0;
	close(p[1]);
	/* one answer per task, each within 10 s (the tasks keep the pipe's write end: a
	 * helper that died midway gives no end of file) */
	size_t want = 0;
	for (size_t k = j; k < t->n; k++)
		want += t->inv->tasks[k]->via_session && rst_helper_sid(t->inv->tasks[k]) == hs &&
			rst_creator_of(t->inv, k) == me->pid;
	for (size_t got = 0; !ret && got < want; got++) {
		int32_t m[2];
		struct pollfd pf = { .fd = p[0], .events = POLLIN };
		if (poll(&pf, 1, 10000) != 1 || read(p[0], m, sizeof(m)) != (ssize_t)sizeof(m))
			ret = -EIO;
		else if (m[0] >= (int32_t)j && (size_t)m[0] < t->n && m[1] > 0)
			t->spawned[m[0]] = m[1];
		else
			ret = m[1] < 0 ? m[1] : -EIO;
	}
	close(p[0]);
	int st = 0;
	if (ret && h > 0)
		kill(h, SIGKILL); /* (stuck, or failed midway) */
	while (h > 0 && waitpid(h, &st, 0) < 0 && errno == EINTR)
		;
	if (!ret && (!WIFEXITED(st) || WEXITSTATUS(st)))
		ret = -EIO;
	if (ret)
		pr_errno(ret, "restore: the helper of session %d (pid %d) failed", hs, e->pid);
	return ret;
}

/* In a task made through a helper: wait until the helper exited and the task was given
 * to its parent, before anything (its parent-death signal would fire). Bounded. */
static int wait_reparented(struct rst_tree *t)
{
	for (int k = 0; k < 10000 && getppid() == t->via_helper; k++)
		usleep(500);
	if (getppid() == t->via_helper)
		return -ETIMEDOUT;
	t->via_helper = 0;
	return 0;
}

/* Process groups whose leader exited: pgid of a live task, not a task of the tree, not
 * the root's own (outside) group. */
static bool is_orphan_group(const Inventory *inv, pid_t pgid)
{
	return rst_task_index(inv, pgid) < 0 && pgid != inv->tasks[0]->pgid &&
	       !rst_helper_session(inv, pgid);
}

bool rst_helper_session(const Inventory *inv, pid_t sid)
{
	for (size_t i = 1; i < inv->n_tasks; i++)
		if (inv->tasks[i]->via_session && rst_helper_sid(inv->tasks[i]) == sid)
			return true;
	return false;
}

/* The task that makes the helper of a group whose leader exited, in session @sid other
 * than the root's: the session's leader when it is a live task, else its first live task. */
static ssize_t group_maker(const Inventory *inv, pid_t sid)
{
	ssize_t l = rst_task_index(inv, sid), first = -1;
	if (l > 0 && !inv->tasks[l]->zombie)
		return l;
	for (size_t i = 1; i < inv->n_tasks && first < 0; i++)
		if (!inv->tasks[i]->zombie && inv->tasks[i]->sid == sid)
			first = (ssize_t)i;
	return first;
}

size_t rst_orphan_groups(const struct rst_tree *t, pid_t *out, ssize_t *maker)
{
	size_t n = 0;
	for (size_t i = 0; i < t->n; i++) {
		const TaskEntry *e = t->inv->tasks[i];
		pid_t g = e->pgid;
		if (!is_orphan_group(t->inv, g))
			continue;
		bool seen = false;
		for (size_t k = 0; k < n; k++)
			seen |= out[k] == g;
		if (seen)
			continue;
		maker[n] = e->sid == t->inv->tasks[0]->sid ? -1 : group_maker(t->inv, e->sid);
		out[n++] = g;
	}
	return n;
}

/* clone3 with the pid at every pid-namespace level (@ids outermost first, as in NSpid;
 * NULL: just @want), CLONE_NEWPID when the task is the init of a new namespace. */
static pid_t clone_with_ids(pid_t want, const int32_t *ids, size_t nids, int exit_signal,
			    bool parent, uint64_t flags, size_t skip_outer, int *pidfd)
{
	pid_t set[PROC_MAX_NS_LEVEL];
	if (!ids || !nids) {
		set[0] = want;
		nids = 1;
	} else if (nids > PROC_MAX_NS_LEVEL) {
		pr_err("image: pid %d has %zu pid-namespace levels", want, nids);
		errno = EINVAL;
		return -1;
	} else {
		for (size_t k = 0; k < nids; k++)
			set[k] = ids[nids - 1 - k];
	}
	/* innermost first: leaving out the outer levels shortens the array */
	nids -= MIN(skip_outer, nids);
	struct stasis_clone_args ca = {
		.flags = (parent ? CLONE_PARENT : 0) | flags | (pidfd ? CLONE_PIDFD : 0),
		.pidfd = (uint64_t)(uintptr_t)pidfd,
		.exit_signal = parent ? 0 : (uint64_t)exit_signal,
		.set_tid = nids ? (uint64_t)(uintptr_t)set : 0,
		.set_tid_size = nids,
	};
	pr_debug("restore: clone3 flags %#llx, %zu pids (innermost %d) for pid %d",
		 (unsigned long long)ca.flags, nids, nids ? set[0] : 0, want);
	pid_t child = (pid_t)sys_clone3(&ca, sizeof(ca));
	if (child < 0) {
		int err = errno;
		if (err == EEXIST)
			pr_err("pid %d is already in use: cannot restore the task with its pid", want);
		else
			pr_err("clone3 for pid %d: %s", want, strerror(err));
		errno = err;
	}
	return child;
}

/* Is user namespace @ns (an image id) @anc or below it? The dumper's namespace is the
 * top: every namespace of the tree is below it. */
static bool userns_below(const struct rst_tree *t, uint64_t ns, uint64_t anc)
{
	for (int depth = 0; depth < 64; depth++) {
		if (ns == anc || anc == t->inv->dumper_userns)
			return true;
		uint64_t up = 0;
		for (size_t i = 0; i < t->n && !up; i++)
			if (t->procs[i] && t->procs[i]->tns->userns &&
			    t->procs[i]->tns->userns->id == ns)
				up = t->procs[i]->tns->userns->parent;
		if (!up || up == t->inv->dumper_userns)
			return false;
		ns = up;
	}
	return false;
}

/* The user namespace task @i lives in (the dumper's when unknown). */
static uint64_t userns_of(const struct rst_tree *t, ssize_t i)
{
	/* (a zombie is in the user namespace it was made in: its parent's, as made here) */
	for (int hops = 0; i > 0 && !t->procs[i] && hops < 64; hops++)
		i = rst_task_index(t->inv, t->inv->tasks[i]->ppid);
	if (i < 0 || !t->procs[i] || !t->procs[i]->core->ns || !t->inv->has_dumper_userns)
		return t->inv->dumper_userns;
	return t->procs[i]->core->ns->user;
}

/* The init of pid-namespace level @k (>= 1) of task @j: @j or one of its ancestors;
 * -1 if none (the level's init is not in the tree). */
ssize_t rst_level_init(const struct rst_tree *t, size_t j, size_t k)
{
	ssize_t a = (ssize_t)j;
	for (int hops = 0; a >= 0 && hops < 65536; hops++) {
		const TaskEntry *ae = t->inv->tasks[a];
		if (ae->n_nspid == k + 1 && ae->nspid[k] == 1)
			return a;
		a = a ? rst_task_index(t->inv, ae->ppid) : -1;
	}
	return -1;
}

/* How many outer pid-namespace levels of task @j its creator (@creator, -1: stasis)
 * cannot set with set_tid: those whose pid namespace is owned by a user namespace above
 * the creator's. Level 0 is owned by the dumper's; level k by the user namespace of the
 * init of that level (an ancestor of @j). */
size_t rst_unsettable_levels(const struct rst_tree *t, ssize_t creator, size_t j)
{
	const TaskEntry *e = t->inv->tasks[j];
	size_t nlev = e->n_nspid ? e->n_nspid : 1, n = 0;
	uint64_t mine = userns_of(t, creator);
	if (creator < 0 || !t->inv->has_dumper_userns || mine == t->inv->dumper_userns)
		return 0;
	for (size_t k = 0; k < nlev; k++) {
		uint64_t owner = t->inv->dumper_userns;
		if (k)
			owner = userns_of(t, rst_level_init(t, j, k));
		if (userns_below(t, owner, mine))
			break;
		n = k + 1;
	}
	return n;
}

/* The creator of @pid, once @pid exists: its user namespace's maps. A creator other
 * than stasis whose write was refused asks stasis (which holds the helper). */
static int write_maps(struct rst_tree *t, ssize_t creator, pid_t pid, const UserNs *u)
{
	if (creator < 0)
		return rst_stasis_write_maps(t, pid);
	int ret = userns_write_maps(t->proc_dfd, pid, u, t->have_helper);
	if (ret != -EPERM || !t->have_helper)
		return ret;
	int priv[2];
	int32_t answer = -EIO;
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, priv) < 0)
		return pr_perror("restore: socketpair");
	ret = pidreq_send(t->pidreq_wr, PIDREQ_ID_MAPS, pid, 0, priv[1]);
	close(priv[1]);
	if (!ret)
		ret = pidreq_recv(priv[0], NULL, &answer, NULL, NULL);
	close(priv[0]);
	if (ret)
		return pr_errno(ret, "restore: ask stasis for the id maps of pid %d", pid);
	return answer;
}

/* A new task in a user namespace of its own said it is dumpable (its /proc files, the
 * maps among them, are then its owner's, not root's). */
static int wait_dumpable(int fd, pid_t pid)
{
	struct pollfd p = { .fd = fd, .events = POLLIN };
	char c = 0;
	if (poll(&p, 1, 10000) != 1 || read(fd, &c, 1) != 1 || c != 'd') {
		pr_err("restore: pid %d did not get ready for its user namespace maps", pid);
		return -EIO;
	}
	return 0;
}

/* Task @j got another pid than its own at a level set through ns_last_pid (another
 * process took it between stasis's write and the clone) and was killed: it may be
 * short-lived, wait a little more each time. A task that was the init of the pid namespace
 * its creator had unshared took that namespace with it: no retry can work there (-EAGAIN,
 * said once; was a retry into the dead namespace: "Cannot allocate memory"). */
static int before_retry(const struct rst_tree *t, size_t j, uint64_t flags, int attempt)
{
	struct timespec ts = { 0, (long)(attempt + 1) * 25 * 1000000L };
	nanosleep(&ts, NULL);
	if ((flags & CLONE_NEWPID) || !rst_new_pid_ns(t->inv, j))
		return 0;
	/* unshare refuses a second pending namespace, and going back to the creator's own
	 * first needs rights over the namespace above */
	pr_err("restore: pid %d, the init of the pid namespace its creator had unshared, got "
	       "another pid (a process took it meanwhile) and its namespace died with it: "
	       "restore again",
	       t->inv->tasks[j]->pid);
	return -EAGAIN;
}

/* In a restore child: the tree and its pid as stasis sees it, for asking stasis (the
 * socket buffer forcer). */
static struct rst_tree *child_tree;
static pid_t child_pid;

/* A restore child asks stasis to force socket @sk's buffer (sockopt_set_forcer). */
static int child_sockbuf(int sk, int opt, int half)
{
	int priv[2];
	int32_t answer = -EIO;
	if (!child_tree || socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, priv) < 0)
		return -EPERM;
	int ret = pidreq_send(child_tree->pidreq_wr, PIDREQ_SOCKBUF, child_pid, 0, priv[1]);
	close(priv[1]);
	if (!ret)
		ret = pidreq_send(priv[0], PIDREQ_ANSWER, opt, half, sk);
	if (!ret)
		ret = pidreq_recv(priv[0], NULL, &answer, NULL, NULL);
	close(priv[0]);
	return ret ? ret : answer;
}

/* Create task @j with its pids; does not return in the child. Returns its pid (as the
 * creator sees it) or -errno. The new task waits for the creator's go when the creator
 * must first write its user namespace maps, or have stasis check its pid: pids at levels
 * the creator has no rights over come from ns_last_pid written by stasis. */
pid_t rst_spawn_task(struct rst_tree *t, ssize_t creator, size_t j, int exit_signal,
			bool parent, uint64_t flags)
{
	const TaskEntry *e = t->inv->tasks[j];
	const UserNs *u = t->procs[j] ? t->procs[j]->tns->userns : NULL;
	size_t skip = rst_unsettable_levels(t, creator, j);
	if (fault_at("restore:spawn", NULL))
		return -EIO;
	for (int attempt = 0;; attempt++) {
		int go[2] = { -1, -1 }, priv = -1, dm[2] = { -1, -1 }, pidfd = -1;
		int ret = 0;
		if ((u || skip) && pipe2(go, O_CLOEXEC) < 0)
			return pr_perror("restore: pipe");
		if (u && pipe2(dm, O_CLOEXEC) < 0) {
			ret = pr_perror("restore: pipe");
			close(go[0]);
			close(go[1]);
			return ret;
		}
		ret = outer_pids_prepare(t, PIDREQ_LAST_PID, e->pid, skip, &priv);
		if (ret) {
			close(go[0]);
			close(go[1]);
			if (dm[0] >= 0) {
				close(dm[0]);
				close(dm[1]);
			}
			return ret;
		}
		t->go_rd = go[0];
		struct userns_owner owner;
		userns_owner_begin((flags & CLONE_NEWUSER) ? u : NULL, &owner);
		t->dumpable_wr = dm[1];
		pid_t child = clone_with_ids(e->pid, e->nspid, e->n_nspid, exit_signal, parent,
					     flags, skip, skip ? &pidfd : NULL);
		/* sharing the fd table (CLONE_FILES), each end is closed by its user only (the
		 * child closes go[0] and dm[1] once used) */
		bool shared = flags & CLONE_FILES;
		if (child == 0) {
			if (go[1] >= 0 && !shared)
				close(go[1]);
			if (priv >= 0 && !shared)
				close(priv);
			if (dm[0] >= 0 && !shared)
				close(dm[0]);
			restore_task(t, j);
		}
		t->dumpable_wr = -1;
		if (dm[1] >= 0 && !(shared && child > 0))
			close(dm[1]);
		ret = child < 0 ? -errno : 0;
		/* (a failure here leaves the creator with another euid: the child goes) */
		int oret = userns_owner_end(&owner);
		ret = ret ?: oret;
		if (ret == -EPERM)
			pr_err("cannot create pid %d: choosing a pid needs CAP_CHECKPOINT_RESTORE or "
			       "CAP_SYS_ADMIN over its pid namespaces",
			       e->pid);
		ret = outer_pids_verdict(priv, ret, pidfd);
		if (go[0] >= 0) {
			if (!(shared && child > 0))
				close(go[0]);
			t->go_rd = -1;
		}
		if (!ret && u)
			ret = wait_dumpable(dm[0], e->pid);
		if (dm[0] >= 0)
			close(dm[0]);
		if (!ret && u)
			ret = write_maps(t, creator, e->pid, u);
		if (!ret && go[1] >= 0 && write(go[1], "g", 1) != 1)
			ret = pr_perror("restore: let pid %d go", e->pid);
		if (go[1] >= 0)
			close(go[1]);
		if (ret && child > 0) {
			/* just created by us, it did nothing yet: it dies */
			kill(child, SIGKILL);
			while (!parent && waitpid(child, NULL, __WALL) < 0 && errno == EINTR)
				;
		}
		if (ret == -EAGAIN && attempt < 8) {
			ret = before_retry(t, j, flags, attempt);
			if (ret)
				return ret;
			continue;
		}
		if (ret == -EAGAIN)
			pr_err("pid %d: another process kept taking it while it was being restored "
			       "(%d attempts)",
			       e->pid, attempt + 1);
		return ret ? ret : child;
	}
}

/* The task starts a pid namespace of its own: one level deeper than its creator. */
bool rst_new_pid_ns(const Inventory *inv, size_t j)
{
	const TaskEntry *e = inv->tasks[j];
	ssize_t p = j ? rst_task_index(inv, e->ppid) : -1;
	size_t plen = p >= 0 ? inv->tasks[p]->n_nspid : 1;
	return e->n_nspid > 1 && e->n_nspid == plen + 1 && e->nspid[e->n_nspid - 1] == 1;
}

/* A helper leading process group @g until the members joined it; then stasis kills it. */
static __attribute__((noreturn)) void group_helper(struct rst_tree *t, pid_t g)
{
	int st = t->status_wr;
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	if (t->have_helper)
		helper_child_after_fork(&t->helper);
	if (setpgid(0, 0) < 0)
		child_fail(st, g, pr_perror("restore: helper for process group %d", g));
	report(st, g, 0, NULL);
	for (;;)
		pause();
}

size_t rst_group_levels(const struct rst_tree *t, pid_t g, const int32_t **ids)
{
	for (size_t i = 0; i < t->n; i++) {
		const TaskEntry *e = t->inv->tasks[i];
		if (e->pgid != g || e->n_nspgid < 2 || e->n_nspgid > PROC_MAX_NS_LEVEL ||
		    e->n_nspgid != e->n_nspid || e->nspgid[0] != g)
			continue;
		*ids = e->nspgid;
		return e->n_nspgid;
	}
	return 0;
}

/* Create the helpers, by the root (@from_root: it leads the session) or by stasis. A group
 * inside the root's pid namespace gets its pid at every level: the root creates it there
 * anyway; stasis enters the root's namespace for it (the group's members see it there). */
int rst_create_helpers(struct rst_tree *t, bool from_root)
{
	const TaskEntry *root = t->inv->tasks[0];
	size_t root_lvl = root->n_nspid ? root->n_nspid : 1;
	for (size_t k = 0; k < t->n_helpers; k++) {
		const int32_t *ids = NULL;
		size_t nids = rst_group_levels(t, t->helpers[k], &ids);
		int self = -1, ret = 0;
		if (t->helper_maker[k] >= 0)
			continue; /* made in its session by a task (rst_task_helpers) */
		if (nids > 1 && nids != root_lvl) {
			pr_err("restore: process group %d (leader gone) is in a pid namespace below "
			       "the root's: not supported",
			       t->helpers[k]);
			return -EOPNOTSUPP;
		}
		if (nids > 1 && !from_root) {
			char path[64];
			snprintf(path, sizeof(path), "%d/ns/pid", root->pid);
			_cleanup_close_ int nsfd = openat(t->proc_dfd, path, O_RDONLY | O_CLOEXEC);
			self = open("/proc/self/ns/pid", O_RDONLY | O_CLOEXEC);
			if (nsfd < 0 || self < 0 || setns(nsfd, CLONE_NEWPID) < 0) {
				ret = pr_perror("restore: enter the root's pid namespace for the "
						"helper of group %d",
						t->helpers[k]);
				if (self >= 0)
					close(self);
				return ret;
			}
		}
		pid_t h = clone_with_ids(t->helpers[k], nids > 1 ? ids : NULL, nids > 1 ? nids : 0,
					 SIGCHLD, from_root, 0, 0, NULL);
		if (h == 0)
			group_helper(t, t->helpers[k]);
		ret = h < 0 ? -errno : 0;
		if (self >= 0) {
			if (setns(self, CLONE_NEWPID) < 0 && !ret)
				ret = pr_perror("restore: back to stasis's pid namespace");
			close(self);
		}
		if (ret)
			return ret;
	}
	return 0;
}

/* The helpers task @idx makes, in its session, of groups whose leader exited: its
 * children, sending no signal when they exit (stasis kills them once the members joined,
 * and the task, rebuilt, reaps them: src/cr/restore.c stop_helpers). */
static int rst_task_helpers(struct rst_tree *t, size_t idx)
{
	const TaskEntry *me = t->inv->tasks[idx];
	size_t lvl = me->n_nspid ? me->n_nspid : 1;
	size_t skip = rst_unsettable_levels(t, (ssize_t)idx, idx);
	for (size_t k = 0; k < t->n_helpers; k++) {
		const int32_t *ids = NULL;
		if (t->helper_maker[k] != (ssize_t)idx)
			continue;
		size_t nids = rst_group_levels(t, t->helpers[k], &ids);
		ssize_t m = -1; /* a member: stasis prepares the group's ids from its image */
		for (size_t i = 0; i < t->n && m < 0; i++)
			if (t->inv->tasks[i]->pgid == t->helpers[k])
				m = (ssize_t)i;
		if ((nids > 1 ? nids != lvl : lvl > 1) || m < 0) {
			pr_err("restore: process group %d (leader gone) is not seen at every level "
			       "of pid %d's pid namespaces: not supported",
			       t->helpers[k], me->pid);
			return -EOPNOTSUPP;
		}
		pid_t h = clone_prepared(t, PIDREQ_LAST_PGID, t->inv->tasks[m]->pid, t->helpers[k],
					 ids, nids, 0, skip);
		if (h == 0)
			group_helper(t, t->helpers[k]);
		if (h < 0)
			return (int)h;
	}
	return 0;
}

/* The task unshared a pid namespace for its children (TaskNs.pid_unshared): once, before
 * its child that is that namespace's init, or after all its children. */
static int unshare_pid_for_children(struct rst_tree *t, size_t idx)
{
	const struct rst_ctx *c = t->procs[idx];
	if (!c || !c->tns->pid_unshared || t->pid_unshared_done)
		return 0;
	if (unshare(CLONE_NEWPID) < 0)
		return pr_perror("restore: pid %d: unshare(CLONE_NEWPID) for its children", c->pid);
	t->pid_unshared_done = true;
	return 0;
}

/* Create the tasks task @idx creates (alive and zombie), each with its pid. Children
 * sharing its fd table are created last (@sharers), once the table is the task's.
 * Children in a time namespace of their own (their creator unshared it) come after the
 * others, each entering a new one with its offsets. Children that are the init of a new
 * pid namespace come after the others, cloned with CLONE_NEWPID; a creator that had
 * unshared that namespace (rather than cloned its init) enters it for its children. */
static int create_children(struct rst_tree *t, size_t idx, bool sharers)
{
	int ret = 0;
	for (int inits = 0; inits < 2 && !ret; inits++)
		for (int timens = 0; timens < 2 && !ret; timens++)
			ret = create_children_pass(t, idx, sharers, timens, inits);
	return ret;
}

static int create_children_pass(struct rst_tree *t, size_t idx, bool sharers, bool timens,
				bool inits)
{
	const TaskEntry *me = t->inv->tasks[idx];
	bool unshared = t->procs[idx] && t->procs[idx]->tns->pid_unshared;
	for (size_t j = 1; j < t->n; j++) {
		const TaskEntry *e = t->inv->tasks[j];
		if (rst_creator_of(t->inv, j) != me->pid || e->shares_files != sharers ||
		    rst_new_pid_ns(t->inv, j) != inits || rst_early_child(t->inv, j) != t->early ||
		    t->spawned[j]) /* (made in an earlier pass: through a helper, in any) */
			continue;
		if (e->via_session) {
			int r = spawn_session(t, idx, j);
			if (r)
				return r;
			continue;
		}
		if (e->has_creator && e->creator != e->ppid) {
			pid_t child = spawn_via_helper(t, idx, j, 0);
			if (child < 0)
				return (int)child;
			t->spawned[j] = child;
			continue;
		}
		const TimeNs *tn = t->procs[j] ? t->procs[j]->tns->time_ns : NULL;
		if ((tn != NULL) != timens)
			continue;
		if (tn) {
			int r = ns_enter_time_for_children(tn);
			if (r)
				return r;
		}
		uint64_t fl = (e->shares_files ? CLONE_FILES : 0) | (e->shares_fs ? CLONE_FS : 0);
		if (t->procs[j])
			fl |= ns_clone_flags(t->procs[j]->tns);
		if (inits)
			fl |= CLONE_NEWPID;
		pid_t child = rst_spawn_task(t, (ssize_t)idx, j,
					 e->has_exit_signal ? (int)e->exit_signal : SIGCHLD,
					 e->ppid != me->pid, fl);
		if (child < 0)
			return (int)child;
		t->spawned[j] = child;
		if (inits && unshared && !t->pid_unshared_done) {
			/* the creator had unshared the namespace this init is pid 1 of: its
			 * pid_for_children is that namespace again (setns; cloning the init
			 * with CLONE_NEWPID rather than into a pending namespace lets a retry
			 * after a lost pid make a new namespace) */
			char path[64];
			snprintf(path, sizeof(path), "%d/ns/pid", e->pid);
			_cleanup_close_ int nsfd = openat(t->proc_dfd, path, O_RDONLY | O_CLOEXEC);
			if (nsfd < 0 || setns(nsfd, CLONE_NEWPID) < 0)
				return pr_perror("restore: pid %d: its pid namespace for children",
						 me->pid);
			t->pid_unshared_done = true;
		}
	}
	return 0;
}

/* A zombie's capabilities: the recorded ones, as far as they are below what the restore
 * child has (it can only drop; a zombie runs nothing, so this is only what it shows). */
static void zombie_caps(const TaskEntry *e)
{
	struct __user_cap_header_struct h = { .version = _LINUX_CAPABILITY_VERSION_3 };
	struct __user_cap_data_struct d[2];
	if (syscall(SYS_capget, &h, d) < 0)
		return;
	for (int k = 0; k < 2; k++) {
		d[k].inheritable &= (uint32_t)(e->caps[0] >> (32 * k));
		d[k].permitted &= (uint32_t)(e->caps[1] >> (32 * k));
		d[k].effective &= (uint32_t)(e->caps[2] >> (32 * k));
	}
	prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0);
	for (int cap = 0; cap < 64; cap++) {
		if (!(e->caps[3] & (1ULL << cap)))
			prctl(PR_CAPBSET_DROP, cap, 0, 0, 0);
	}
	if (syscall(SYS_capset, &h, d) < 0)
		pr_warn("restore: zombie %d keeps the restorer's capabilities", e->pid);
	for (int cap = 0; cap < 64; cap++)
		if (e->caps[4] & (1ULL << cap))
			prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, cap, 0, 0);
}

/* The zombies task @idx just created (its own children) exit now, and their exit signal
 * would stay pending in it: a SIGCHLD it did not have (the original one, if it was
 * still pending, is in the image and queued again with the other pending signals).
 * Wait until they exited, then take it. */
static int drain_zombie_signals(struct rst_tree *t, size_t idx)
{
	const TaskEntry *me = t->inv->tasks[idx];
	size_t lvl = me->n_nspid ? me->n_nspid - 1 : 0;
	sigset_t set, old;
	sigemptyset(&set);
	for (size_t j = 1; j < t->n; j++) {
		const TaskEntry *e = t->inv->tasks[j];
		if (!e->zombie || e->ppid != me->pid)
			continue;
		/* one made by another task (through a helper) is given to us once that helper
		 * exits: waited for (10 s), with the pid we see it by */
		pid_t z = t->spawned[j] ? t->spawned[j] : id_at(e->nspid, e->n_nspid, lvl, e->pid);
		siginfo_t si;
		for (int k = 0; z > 0 && !t->spawned[j] && k < 10000; k++) {
			si.si_pid = 0;
			if (!waitid(P_PID, (id_t)z, &si, WEXITED | WNOWAIT | WNOHANG | __WALL) &&
			    si.si_pid == z)
				break;
			usleep(1000);
		}
		while (z > 0 && waitid(P_PID, (id_t)z, &si, WEXITED | WNOWAIT | __WALL) < 0)
			if (errno != EINTR)
				return pr_perror("restore: wait for zombie %d", e->pid);
		int sig = e->has_exit_signal ? (int)e->exit_signal : SIGCHLD;
		if (sig > 0 && sig < 65)
			sigaddset(&set, sig);
	}
	if (sigisemptyset(&set))
		return 0;
	struct timespec zero = { 0, 0 };
	sigprocmask(SIG_BLOCK, &set, &old);
	while (sigtimedwait(&set, NULL, &zero) > 0)
		;
	sigprocmask(SIG_SETMASK, &old, NULL);
	return 0;
}

/* A zombie's process group, joined before it exits (it cannot be moved after; the group
 * it was born in is its creator's at that time, which may join another one later). The
 * group may have no member yet (its leader's creator runs beside ours): tried for 10 s. */
static int zombie_group(const struct rst_tree *t, const TaskEntry *e)
{
	const TaskEntry *root = t->inv->tasks[0];
	pid_t local = rst_group_local(t->inv, e);
	if (e->pgid == root->pgid && rst_task_index(t->inv, e->pgid) < 0) {
		/* the root's group outside the tree is wherever the root is now (seen from
		 * the zombie's level only when that is stasis's) */
		if (e->n_nspid > 1)
			return 0;
		local = getpgid(root->pid);
	}
	if (e->pgid == e->pid || getpgid(0) == local)
		return 0;
	for (int i = 0; i < 10000; i++) {
		if (setpgid(0, local) == 0)
			return 0;
		if (errno != EPERM && errno != ESRCH)
			break;
		usleep(1000);
	}
	return pr_perror("restore: zombie %d cannot join process group %d", e->pid, e->pgid);
}

static __attribute__((noreturn)) void zombie_task(struct rst_tree *t, size_t idx, int st)
{
	const TaskEntry *e = t->inv->tasks[idx];
	int status = e->has_exit_status ? e->exit_status : 0;

	/* the tasks it makes (through helpers) before it exits, with stasis's rights still:
	 * the kernel then gives them to the reaper of its parent's orphans */
	int ret = create_children(t, idx, false);
	if (!ret)
		ret = zombie_group(t, e);
	if (ret)
		child_fail(st, e->pid, ret);
	/* its name and (what it may drop of) its capabilities, as a zombie shows them */
	char comm[16];
	snprintf(comm, sizeof(comm), "%s", e->comm ? e->comm : "");
	if (e->comm)
		prctl(PR_SET_NAME, comm, 0, 0, 0);
	if (e->n_caps == 5)
		zombie_caps(e);
	report(st, e->pid, 0, NULL);
	if (WIFSIGNALED(status)) {
		int sig = WTERMSIG(status);
		struct rlimit no_core = { 0, 0 };
		sigset_t set;
		setrlimit(RLIMIT_CORE, &no_core);
		signal(sig, SIG_DFL);
		sigemptyset(&set);
		sigaddset(&set, sig);
		sigprocmask(SIG_UNBLOCK, &set, NULL);
		kill(getpid(), sig);
	}
	_exit(WEXITSTATUS(status));
}

/* A new task: its creator says go once its pid and user namespace are right. -EPIPE
 * (nothing logged) if the creator closed the pipe instead: it failed and says why. */
static int wait_go(int fd)
{
	struct pollfd p = { .fd = fd, .events = POLLIN };
	char c = 0;
	int polled = poll(&p, 1, 10000);
	ssize_t n = polled == 1 ? read(fd, &c, 1) : -1;
	if (n == 0)
		return -EPIPE;
	if (n != 1 || c != 'g') {
		pr_err("restore: pid %d was not let go by its creator", getpid());
		return -EIO;
	}
	return 0;
}

struct late_arg {
	const struct rst_tree *t;
	size_t idx;
};

/* In a creator: an fd of the pid namespace (image id @id) a child it created is the init
 * of. */
static int child_pidns(void *arg, uint64_t id)
{
	const struct late_arg *a = arg;
	const struct rst_tree *t = a->t;
	pid_t me = t->inv->tasks[a->idx]->pid;
	for (size_t j = 1; j < t->n; j++) {
		const struct rst_ctx *cj = t->procs[j];
		if (!cj || !cj->core->ns || cj->core->ns->pid != id || !t->spawned[j] ||
		    rst_creator_of(t->inv, j) != me || !rst_new_pid_ns(t->inv, j))
			continue;
		_cleanup_close_ int pfd = sys_pidfd_open(t->spawned[j], 0);
		int fd = pfd < 0 ? -1 : ioctl(pfd, PIDFD_GET_PID_NAMESPACE, 0);
		if (fd < 0)
			return pr_perror("restore: the pid namespace of pid %d", t->inv->tasks[j]->pid);
		return fd;
	}
	pr_err("pid %d: a proc of pid namespace %llu, neither its own nor one of its children's: "
	       "not supported yet",
	       me, (unsigned long long)id);
	return -EOPNOTSUPP;
}

/* A new task's first steps: its parent-death signal (a failed restore kills the root:
 * everything below goes with it; a task made through a helper waits until it was given
 * to its parent), a subreaper already (a task made through a helper is given to it). */
static void child_start(struct rst_tree *t, size_t idx)
{
	const TaskEntry *e = t->inv->tasks[idx];
	const struct rst_ctx *c = t->procs[idx];
	int ret;
	if (t->via_helper && (ret = wait_reparented(t)))
		child_fail(t->status_wr, e->pid,
			   pr_errno(ret, "restore: pid %d: not given to its parent", e->pid));
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	if (c && c->core->child_subreaper && prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) < 0)
		child_fail(t->status_wr, e->pid,
			   pr_perror("restore: pid %d: become a child subreaper", e->pid));
	if (t->have_helper)
		helper_child_after_fork(&t->helper);
	log_reset_first_error();
	if (t->status_rd >= 0) {
		close(t->status_rd);
		t->status_rd = -1;
	}
}

/* Task @idx (@c), its namespaces made: the files its tasks share that wait for them. Its
 * mount tree is rebuilt: what is opened by path there can be opened now; its network
 * namespace is made: stasis makes the unix sockets its tasks share there, and the other
 * sockets they share are made here. */
static int ns_files(struct rst_tree *t, size_t idx, const struct rst_ctx *c)
{
	bool net = c->tns->net || (idx == 0 && t->net_joined);
	int ret = c->tns->mnt || net ? fetch_deferred(t, idx) : 0;
	return ret || !net ? ret : make_netns_deferred(t, idx);
}

static __attribute__((noreturn)) void restore_task(struct rst_tree *t, size_t idx)
{
	const TaskEntry *e = t->inv->tasks[idx];
	struct rst_ctx *c = t->procs[idx];
	int st = t->status_wr;
	int ret;

	/* (the copy of its creator's tree: an early child is made while its creator's early
	 * flag is up, and makes its own children in the usual pass) */
	t->pid_unshared_done = false;
	t->early = false;
	child_start(t, idx);
	/* A stasis with file capabilities is not dumpable, nor is this fork of it, so its
	 * /proc files are root's: a task in a new user namespace becomes dumpable before its
	 * creator writes its maps (it holds no privilege outside that namespace any more:
	 * capabilities are relative to the user namespace). */
	if (t->dumpable_wr >= 0) {
		if (prctl(PR_GET_DUMPABLE) != 1 && prctl(PR_SET_DUMPABLE, 1) < 0)
			child_fail(st, e->pid, pr_perror("restore: make pid %d dumpable", e->pid));
		if (write(t->dumpable_wr, "d", 1) != 1)
			child_fail(st, e->pid, pr_perror("restore: pid %d: tell its creator", e->pid));
		close(t->dumpable_wr);
		t->dumpable_wr = -1;
	}
	if (t->go_rd >= 0 && (ret = wait_go(t->go_rd))) {
		if (ret == -EPIPE)
			_exit(1); /* not a second report racing the creator's own */
		child_fail(st, e->pid, ret);
	}
	if (c && c->tns->userns && (ret = userns_child_enter(c->tns->userns)))
		child_fail(st, e->pid, ret);
	if (t->go_rd >= 0) {
		close(t->go_rd);
		t->go_rd = -1;
	}
	for (size_t k = 0; idx == 0 && k < t->n_join; k++) {
		if (setns(t->join_fd[k], t->join_type[k]) < 0)
			child_fail(st, e->pid, pr_perror("restore: join the namespace of --join-ns %s",
							 t->opts->join_ns[k]));
		close(t->join_fd[k]);
	}
	t->n_join = 0;
	if (c && ((ret = ns_enter_joined(c->tns, t->proc_dfd, c->stasis_pid)) ||
		  (ret = ns_restore_child(c)) || (ret = ns_files(t, idx, c))))
		child_fail(st, e->pid, ret);
	if (e->sid == e->pid) {
		/* children that stayed in the session it was born in: made before setsid */
		t->early = true;
		ret = create_children(t, idx, false);
		t->early = false;
		if (ret)
			child_fail(st, e->pid, ret);
	}
	if (e->sid == e->pid && setsid() < 0)
		child_fail(st, e->pid, pr_perror("restore: setsid in pid %d", e->pid));
	if (e->sid == e->pid && c && (ret = take_ctty(t, e->pid)) < 0)
		child_fail(st, e->pid, ret);
	if (e->pgid == e->pid && e->sid != e->pid && setpgid(0, 0) < 0)
		child_fail(st, e->pid, pr_perror("restore: setpgid in pid %d", e->pid));
	if (!c)
		zombie_task(t, idx, st);
	ret = idx == 0 && t->helpers_from_root ? rst_create_helpers(t, true) : 0;
	if (!ret)
		ret = rst_task_helpers(t, idx);
	/* Children first: they must inherit the fd table of stasis, not the task's. */
	if (!ret)
		ret = create_children(t, idx, false);
	if (!ret)
		ret = drain_zombie_signals(t, idx);
	if (ret)
		child_fail(st, e->pid, ret);

	/* Service fds next, above every fd the task will own (through numbers above both,
	 * so that moving one never clobbers the other). */
	int s_st = c->svc_lo + SVC_STATUS, s_lg = c->svc_lo + SVC_LOG;
	int hi = t->fd_top + 8;
	int s_pr = c->svc_lo + SVC_PIDREQ;
	int t_st = fcntl(st, F_DUPFD_CLOEXEC, hi);
	int t_lg = fcntl(log_get_fd(), F_DUPFD_CLOEXEC, hi);
	int t_pr = fcntl(t->pidreq_wr, F_DUPFD_CLOEXEC, hi);
	if (t_st < 0 || t_lg < 0 || t_pr < 0 || dup3(t_st, s_st, O_CLOEXEC) < 0 ||
	    dup3(t_lg, s_lg, O_CLOEXEC) < 0 || dup3(t_pr, s_pr, O_CLOEXEC) < 0)
		child_fail(st, e->pid, pr_perror("restore: move service fds"));
	close(t_st);
	close(t_lg);
	close(t_pr);
	t->pidreq_wr = s_pr;
	st = s_st;
	/* tasks created from here on (sharing this fd table) find the status pipe here */
	t->status_wr = s_st;
	log_set_fd(s_lg);
	child_tree = t;
	child_pid = e->pid;
	sockopt_set_forcer(child_sockbuf);
	c->gfd = t->gfd;
	c->n_gfd = t->n_gfd;
	ret = res_restore(STAGE_CHILD, c);
	/* children sharing the fd table, now that it is the task's */
	if (!ret)
		ret = create_children(t, idx, true);
	/* (a task that unshared a pid namespace and has no child in it yet) */
	if (!ret)
		ret = unshare_pid_for_children(t, idx);
	/* procs of the children's pid namespaces, which exist now */
	struct late_arg la = { t, idx };
	if (!ret)
		ret = mnt_restore_late(c, child_pidns, &la);
	if (ret)
		child_fail(st, e->pid, ret);
	/* A stasis with file capabilities is not dumpable, and neither is this fork of it:
	 * without CAP_SYS_PTRACE the restorer could not seize it. Become dumpable only now,
	 * right before the restorer attaches (the image's dumpable flag is set later). */
	if (prctl(PR_GET_DUMPABLE) != 1 && prctl(PR_SET_DUMPABLE, 1) < 0)
		child_fail(st, e->pid, pr_perror("restore: make pid %d traceable", e->pid));
	report(st, e->pid, 0, NULL);
	/* Wait to be frozen and replaced; every signal is blocked. */
	for (;;)
		pause();
}

/* A session leader's controlling terminal, right after setsid and before it creates its
 * children (they inherit it): from the pty pair stasis opened for the tree. */
static int take_ctty(const struct rst_tree *t, pid_t sid)
{
	for (size_t j = 0; j < t->n; j++) {
		int ret = t->procs[j] ? files_ctty_early(t->procs[j]->files, t->gfd, t->n_gfd, sid)
				      : 0;
		if (ret)
			return ret;
	}
	return 0;
}

/* In the creator of a network namespace, the namespace made: the sockets its tasks share,
 * made here, in it (with the task's credentials), put in place before the tasks are
 * created (they inherit them). */
static int make_netns_deferred(struct rst_tree *t, size_t idx)
{
	size_t nf = 0;
	_cleanup_free_ Files **fl = NULL;
	child_tree = t; /* (a socket buffer above the limits is forced by stasis) */
	child_pid = t->inv->tasks[idx]->pid;
	sockopt_set_forcer(child_sockbuf);
	for (uint32_t id = 1; t->defer && id < t->n_gfd; id++) {
		if (t->defer[id] != (ssize_t)idx)
			continue;
		if (!fl && !(fl = rst_tree_files(t, &nf)))
			return -ENOMEM;
		int ret = files_deferred_netns(fl, nf, id)
				  ? files_make_deferred(fl, nf, id, &FD_NS_OURS, t->gfd, t->gfd_base,
							&t->blobs)
				  : 0;
		if (ret)
			return ret;
	}
	return 0;
}

/* While stasis makes them: its calls as us served (*@own, sk_cred_agent_serve; closed
 * and -1 once stasis closed its end) until an answer is there on @priv (at most 60 s).
 * 0 or -errno. */
static int serve_agent(int *own, int priv)
{
	uint64_t end = now_ns() + 60000000000ull;
	while (*own >= 0) {
		uint64_t now = now_ns();
		struct pollfd p[2] = { { .fd = priv, .events = POLLIN },
				       { .fd = *own, .events = POLLIN } };
		int n = now < end ? poll(p, 2, (int)((end - now) / 1000000) + 1) : 0;
		if (n < 0 && errno != EINTR)
			return -errno;
		if (!n && now_ns() >= end)
			return -ETIMEDOUT;
		if (p[0].revents)
			return 0;
		int ret = p[1].revents ? sk_cred_agent_serve(*own) : 0;
		if (ret == -EPIPE) {
			close(*own);
			*own = -1;
		} else if (ret) {
			return ret;
		}
	}
	return 0;
}

/* In the creator of a mount namespace, its tree rebuilt: the descriptions its tasks share
 * (and the cwds of those in user namespaces), opened there by stasis, put in place
 * before the tasks are created (they inherit them); in the creator of a network
 * namespace, the groups of unix sockets its tasks share, made there by stasis. */
static int fetch_deferred(struct rst_tree *t, size_t idx)
{
	bool any = false;
	size_t nf = 0;
	_cleanup_free_ Files **fl = rst_tree_files(t, &nf);
	if (!fl)
		return -ENOMEM;
	for (uint32_t id = 1; t->defer && id < t->n_gfd; id++)
		any |= t->defer[id] == (ssize_t)idx && !files_deferred_netns(fl, nf, id);
	for (size_t j = 0; j < t->n; j++)
		any |= t->procs[j] && t->procs[j]->cwd_deferred && rst_mnt_creator(t, j) == (ssize_t)idx;
	if (!any)
		return 0;
	pid_t me = t->inv->tasks[idx]->pid;
	int priv[2];
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, priv) < 0)
		return pr_perror("restore: socketpair");
	int ret = pidreq_send(t->pidreq_wr, PIDREQ_OPEN_FILES, me, 0, priv[1]);
	close(priv[1]);
	/* unix sockets its tasks share, made by stasis: an agent of ours makes the calls
	 * whose peer credentials are ours (our pid there) */
	bool groups = false;
	for (uint32_t id = 1; t->defer && id < t->n_gfd; id++)
		groups |= t->defer[id] == (ssize_t)idx && files_deferred_group(fl, nf, id);
	int agent = -1, own = -1;
	if (!ret && groups && (own = sk_cred_agent_start(&agent)) < 0)
		ret = own;
	if (!ret)
		ret = pidreq_send(priv[0], PIDREQ_ANSWER, agent >= 0, agent >= 0 ? getpid() : 0,
				  agent);
	if (agent >= 0)
		close(agent);
	for (int n = 0; !ret && n < (1 << 21); n++) {
		int32_t val, aux;
		int fd;
		ret = serve_agent(&own, priv[0]);
		if (!ret)
			ret = pidreq_recv(priv[0], NULL, &val, &aux, &fd);
		if (ret)
			break;
		if (val == 0) {
			ret = aux;
			if (fd >= 0)
				close(fd);
			break;
		}
		if (fd < 0 || (val > 0 && (uint32_t)val >= t->n_gfd) || (val < 0 && aux < 3)) {
			ret = -EPROTO;
		} else if (val > 0) {
			int r = fcntl(fd, F_DUPFD_CLOEXEC, t->gfd_base);
			ret = r < 0 ? pr_perror("restore: place a shared file") : 0;
			if (r >= 0)
				t->gfd[val] = r;
		} else if (dup3(fd, aux, O_CLOEXEC) < 0) {
			ret = pr_perror("restore: place a cwd at fd %d", aux);
		}
		if (fd >= 0)
			close(fd);
	}
	close(priv[0]);
	if (own >= 0)
		close(own);
	if (ret)
		pr_errno(ret, "restore: the files of the mount namespace of pid %d", me);
	return ret;
}
