/* The restore orchestrator. Reads and validates the images, creates the task with
 * clone3(set_tid) so it gets its PID, lets the child set up what it can itself (files,
 * cwd, signals, limits), then freezes it and rebuilds its memory, credentials, timers and
 * registers from outside with the remote syscall engine, and lets it go. Any failure
 * kills the child: nothing half-restored is left behind. */
#include <fcntl.h>
#include <linux/openat2.h>
#include <sched.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/ptrace.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>

#include "ns/cgroup.h"
#include "core/log.h"
#include "mem/mem.h"
#include "ns/mnt.h"
#include "ptrace/ptrace.h"
#include "sys/syscalls.h"
#include "cr/pidreq.h"
#include "cr/resource.h"
#include "files/files.h"
#include "mem/mem.h"
#include "ns/ns.h"
#include "task/task.h"
#include "ns/userns.h"

#define SVC_STATUS 0 /* offsets from svc_lo */
#define SVC_LOG 1
#define SVC_EXE 2
#define SVC_PIDREQ 3
#define SVC_MAPS 4

/* The tree being restored: every process's context, and the inventory's task list
 * (alive and zombie, parents before children). */
struct rst_tree {
	const struct restore_opts *opts;
	struct img_dir img;
	Inventory *inv;
	struct rst_ctx **procs;  /* procs[i] for alive task i of inv->tasks (NULL: zombie) */
	size_t n;                /* inv->n_tasks */
	int status_wr;           /* packet pipe: every task reports here */
	int *gfd;
	uint32_t n_gfd;
	int gfd_base;
	struct shm_obj *shm;
	size_t n_shm;
	pid_t *helpers;          /* leaders of groups whose leader exited */
	size_t n_helpers;
	bool helpers_from_root;  /* created by the root (it leads the session) */
	int status_rd;           /* stasis's end of the status pipe (closed in the tasks) */
	int proc_dfd;            /* /proc of stasis, for every task (the pids are its pids) */
	int root_fd;             /* stasis's "/": paths recorded in the dumper's view */
	int go_rd;               /* a new task waits here for its creator's go */
	int dumpable_wr;         /* ... after saying here that it made itself dumpable */
	int pidreq_rd, pidreq_wr; /* pids at levels a creator cannot set (task/pidreq.c) */
	int fd_top;              /* above every fd stasis hands down to the tasks */
	int join_fd[MAX_JOIN_NS], join_type[MAX_JOIN_NS]; /* --join-ns, entered by the root */
	size_t n_join;
	/* --helper: the privileged stasis helper, held by stasis only (the tasks ask stasis
	 * through the pidreq channel); have_helper stays true in the tasks */
	struct helper helper;
	bool have_helper, helper_tree;
	struct ns_pins pins;     /* --pin-ns */
	/* descriptions opened in a mount namespace the tree creates, once its tree is rebuilt:
	 * defer[id] is the index of the task creating it (-1: none), opened by stasis
	 * through /proc/CREATOR/root and passed to the creator (task/pidreq.c) */
	ssize_t *defer;
	pid_t *spawned;          /* in a creator: the pid each task it created got (0: none) */
};

struct status_msg {
	int32_t pid;
	int32_t err; /* 0: ready */
	char msg[504];
};

static int load_proc(struct rst_tree *t, struct rst_ctx *c)
{
	int ret;

	c->core = img_read_msg(t->img.dfd, IMG_CORE, c->pid);
	if (!c->core)
		return -errno;
	c->mm = img_read_msg(t->img.dfd, IMG_MM, c->pid);
	if (!c->mm)
		return -errno;
	c->files = img_read_msg(t->img.dfd, IMG_FILES, c->pid);
	if (!c->files)
		return -errno;
	if (c->core->pid != c->pid) {
		pr_err("images: core image is for pid %d, inventory says %d", c->core->pid, c->pid);
		return -EINVAL;
	}
	ret = img_pages_open(t->img.dfd, c->pid, &c->pages);
	if (ret)
		return ret;
	return res_restore(STAGE_VALIDATE, c);
}

static ssize_t task_index(const Inventory *inv, pid_t pid)
{
	for (size_t i = 0; i < inv->n_tasks; i++)
		if (inv->tasks[i]->pid == pid)
			return (ssize_t)i;
	return -1;
}

/* Untrusted: the task list must be a tree rooted at the first entry, parents first. */
static int check_tasks(const Inventory *inv)
{
	if (inv->img_version != IMG_VERSION || !inv->n_tasks || inv->n_tasks > 65536 ||
	    inv->tasks[0]->pid != inv->root_pid || inv->tasks[0]->zombie) {
		pr_err("images: inventory has no valid task list (root %d)", inv->root_pid);
		return -EINVAL;
	}
	for (size_t i = 0; i < inv->n_tasks; i++) {
		const TaskEntry *e = inv->tasks[i];
		ssize_t p = i ? task_index(inv, e->ppid) : -1;
		if (e->pid <= 0 || task_index(inv, e->pid) != (ssize_t)i ||
		    (i && (p < 0 || (size_t)p >= i || inv->tasks[p]->zombie)) ||
		    (e->has_exit_signal && e->exit_signal > 64)) {
			pr_err("images: task %zu (pid %d, parent %d) of the inventory is invalid", i,
			       e->pid, e->ppid);
			return -EINVAL;
		}
	}
	return 0;
}

static int load_tree(struct rst_tree *t)
{
	int ret;

	t->inv = img_read_msg(t->img.dfd, IMG_INVENTORY, 0);
	if (!t->inv)
		return -errno;
	if (!t->inv->n_tasks) {
		pr_err("images: the inventory lists no task");
		return -EINVAL;
	}
	ret = check_tasks(t->inv);
	if (ret)
		return ret;
	t->n = t->inv->n_tasks;
	t->procs = calloc(t->n, sizeof(*t->procs));
	t->spawned = calloc(t->n, sizeof(*t->spawned));
	if (!t->procs || !t->spawned)
		return -ENOMEM;
	for (size_t i = 0; i < t->n; i++) {
		if (t->inv->tasks[i]->zombie)
			continue;
		struct rst_ctx *c = calloc(1, sizeof(*c));
		if (!c)
			return -ENOMEM;
		t->procs[i] = c;
		c->opts = t->opts;
		c->proc_dfd = t->proc_dfd;
		c->host_root_fd = -1; /* plan_fds */
		c->stasis_pid = getpid();
		c->pid = t->inv->tasks[i]->pid;
		c->pages.fd = -1;
		c->cwd_fd = -1;
		c->img_dfd = t->img.dfd;
		c->is_root = i == 0;
		c->shares_files = i && t->inv->tasks[i]->shares_files;
		ret = load_proc(t, c);
		if (ret)
			return ret;
		c->in_userns = t->inv->has_dumper_userns && c->core->ns &&
			       c->core->ns->user != t->inv->dumper_userns;
	}
	return 0;
}

/* --- the child half --------------------------------------------------------------- */

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

static __attribute__((noreturn)) void restore_task(struct rst_tree *t, size_t idx);
static int fetch_deferred(struct rst_tree *t, size_t idx);
static void stasis_open_files(void *arg, pid_t pid, int sock);

/* Create the children of task @idx (alive and zombie), each with its pid. */
static int create_children_pass(struct rst_tree *t, size_t idx, bool sharers, bool timens);

/* Who creates task @j: its parent, or — for a task in the session of a leader that is its
 * sibling (reparented to their common parent) — that leader, with CLONE_PARENT. */
static pid_t creator_of(const Inventory *inv, size_t j)
{
	const TaskEntry *e = inv->tasks[j];
	ssize_t p = task_index(inv, e->ppid);
	if (j && p >= 0 && e->sid != e->pid && e->sid != inv->tasks[p]->sid) {
		ssize_t l = task_index(inv, e->sid);
		if (l > 0 && inv->tasks[l]->ppid == e->ppid && !inv->tasks[l]->zombie)
			return e->sid;
	}
	return e->ppid;
}

/* Process groups whose leader exited: pgid of a live task, not a task of the tree, not
 * the root's own (outside) group. */
static bool is_orphan_group(const Inventory *inv, pid_t pgid)
{
	return task_index(inv, pgid) < 0 && pgid != inv->tasks[0]->pgid;
}

static size_t orphan_groups(const struct rst_tree *t, pid_t *out)
{
	size_t n = 0;
	for (size_t i = 0; i < t->n; i++) {
		pid_t g = t->inv->tasks[i]->pgid;
		if (t->inv->tasks[i]->zombie || !is_orphan_group(t->inv, g))
			continue;
		bool seen = false;
		for (size_t k = 0; k < n; k++)
			seen |= out[k] == g;
		if (!seen)
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
			if (t->procs[i] && t->procs[i]->core->userns &&
			    t->procs[i]->core->userns->id == ns)
				up = t->procs[i]->core->userns->parent;
		if (!up || up == t->inv->dumper_userns)
			return false;
		ns = up;
	}
	return false;
}

/* The user namespace task @i lives in (the dumper's when unknown). */
static uint64_t userns_of(const struct rst_tree *t, ssize_t i)
{
	if (i < 0 || !t->procs[i] || !t->procs[i]->core->ns || !t->inv->has_dumper_userns)
		return t->inv->dumper_userns;
	return t->procs[i]->core->ns->user;
}

/* How many outer pid-namespace levels of task @j its creator (@creator, -1: stasis)
 * cannot set with set_tid: those whose pid namespace is owned by a user namespace above
 * the creator's. Level 0 is owned by the dumper's; level k by the user namespace of the
 * init of that level (an ancestor of @j). */
/* The init of pid-namespace level @k (>= 1) of task @j: @j or one of its ancestors;
 * -1 if none (the level's init is not in the tree). */
static ssize_t level_init(const struct rst_tree *t, size_t j, size_t k)
{
	ssize_t a = (ssize_t)j;
	for (int hops = 0; a >= 0 && hops < 65536; hops++) {
		const TaskEntry *ae = t->inv->tasks[a];
		if (ae->n_nspid == k + 1 && ae->nspid[k] == 1)
			return a;
		a = a ? task_index(t->inv, ae->ppid) : -1;
	}
	return -1;
}

static size_t unsettable_levels(const struct rst_tree *t, ssize_t creator, size_t j)
{
	const TaskEntry *e = t->inv->tasks[j];
	size_t nlev = e->n_nspid ? e->n_nspid : 1, n = 0;
	uint64_t mine = userns_of(t, creator);
	if (creator < 0 || !t->inv->has_dumper_userns || mine == t->inv->dumper_userns)
		return 0;
	for (size_t k = 0; k < nlev; k++) {
		uint64_t owner = t->inv->dumper_userns;
		if (k)
			owner = userns_of(t, level_init(t, j, k));
		if (userns_below(t, owner, mine))
			break;
		n = k + 1;
	}
	return n;
}

static bool pid_in_image(void *arg, pid_t pid)
{
	const struct rst_tree *t = arg;
	return task_index(t->inv, pid) >= 0;
}

/* Stasis: the helper serves only the tree whose root stasis registered (once). */
static int helper_tree(struct rst_tree *t)
{
	if (t->helper_tree)
		return 0;
	int ret = helper_register_tree(&t->helper, t->inv->tasks[0]->pid);
	t->helper_tree = !ret;
	return ret;
}

/* Stasis: the maps of task @pid's new user namespace, itself or through the helper. */
static int stasis_write_maps(void *arg, pid_t pid)
{
	struct rst_tree *t = arg;
	ssize_t j = task_index(t->inv, pid);
	const UserNs *u = j >= 0 && t->procs[j] ? t->procs[j]->core->userns : NULL;
	if (!u)
		return -EINVAL;
	int ret = userns_write_maps(t->proc_dfd, pid, u, t->have_helper);
	if (ret == -EPERM && t->have_helper) {
		ret = helper_tree(t);
		if (!ret)
			ret = userns_write_maps_helper(t->proc_dfd, &t->helper, pid, u);
	}
	return ret;
}

/* Stasis: ns_last_pid at the @levels outer levels of task @pid, innermost first (the
 * fork that writes an inner level takes a pid at every level above it). Its own level
 * through the helper when stasis may not write it (no CAP_CHECKPOINT_RESTORE there). */
static int stasis_prepare_pids(void *arg, pid_t pid, int levels)
{
	struct rst_tree *t = arg;
	ssize_t j = task_index(t->inv, pid);
	const TaskEntry *e = j >= 0 ? t->inv->tasks[j] : NULL;
	size_t nlev = e && e->n_nspid ? e->n_nspid : 1;
	if (!e || levels < 1 || (size_t)levels > nlev || (levels > 1 && !e->n_nspid))
		return -EINVAL;
	for (size_t k = (size_t)levels - 1; k >= 1; k--) {
		ssize_t init = level_init(t, (size_t)j, k);
		char path[64];
		if (init < 0)
			return -EINVAL;
		snprintf(path, sizeof(path), "%d/ns/pid", t->inv->tasks[init]->pid);
		_cleanup_close_ int nsfd = openat(t->proc_dfd, path, O_RDONLY | O_CLOEXEC);
		if (nsfd < 0)
			return pr_perror("restore: open /proc/%s", path);
		int ret = pidreq_set_last_pid(nsfd, e->nspid[k] - 1);
		if (ret)
			return pr_errno(ret, "restore: ns_last_pid for pid %d (level %zu: %d)", pid,
					k, e->nspid[k]);
	}
	int ret = pidreq_set_last_pid(-1, pid - 1);
	if ((ret == -EPERM || ret == -EACCES) && t->have_helper) {
		ret = helper_tree(t);
		if (!ret)
			ret = helper_set_last_pid(&t->helper, -1, pid - 1);
	}
	if (ret)
		return pr_errno(ret, "restore: write ns_last_pid for pid %d", pid);
	return 0;
}

static bool stasis_check_pids(void *arg, pid_t pid, int levels, int pidfd)
{
	struct rst_tree *t = arg;
	ssize_t j = task_index(t->inv, pid);
	int got[PROC_MAX_NS_LEVEL];
	size_t n = 0;
	if (j < 0 || pidreq_pidfd_nspid(pidfd, got, PROC_MAX_NS_LEVEL, &n) || n < (size_t)levels)
		return false;
	const TaskEntry *e = t->inv->tasks[j];
	for (size_t k = 0; k < (size_t)levels; k++) {
		pid_t w = e->n_nspid ? e->nspid[k] : e->pid;
		if (got[k] != w) {
			pr_info("restore: pid %d was taken meanwhile (the child got %d at level %zu): "
				"retry",
				w, got[k], k);
			return false;
		}
	}
	return true;
}

/* The creator of @pid, once @pid exists: its user namespace's maps. A creator other
 * than stasis whose write was refused asks stasis (which holds the helper). */
static int write_maps(struct rst_tree *t, ssize_t creator, pid_t pid, const UserNs *u)
{
	if (creator < 0)
		return stasis_write_maps(t, pid);
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

/* Create task @j with its pids; does not return in the child. Returns its pid (as the
 * creator sees it) or -errno. The new task waits for the creator's go when the creator
 * must first write its user namespace maps, or have stasis check its pid: pids at levels
 * the creator has no rights over come from ns_last_pid written by stasis. */
static pid_t spawn_task(struct rst_tree *t, ssize_t creator, size_t j, int exit_signal,
			bool parent, uint64_t flags)
{
	const TaskEntry *e = t->inv->tasks[j];
	const UserNs *u = t->procs[j] ? t->procs[j]->core->userns : NULL;
	size_t skip = unsettable_levels(t, creator, j);
	for (int attempt = 0;; attempt++) {
		int go[2] = { -1, -1 }, priv[2] = { -1, -1 }, dm[2] = { -1, -1 }, pidfd = -1;
		int ret = 0;
		int32_t answer = 0;
		if ((u || skip) && pipe2(go, O_CLOEXEC) < 0)
			return pr_perror("restore: pipe");
		if (u && pipe2(dm, O_CLOEXEC) < 0) {
			ret = pr_perror("restore: pipe");
			close(go[0]);
			close(go[1]);
			return ret;
		}
		if (skip) {
			if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, priv) < 0)
				ret = pr_perror("restore: socketpair");
			if (!ret)
				ret = pidreq_send(t->pidreq_wr, PIDREQ_LAST_PID, e->pid,
						  (int32_t)skip, priv[1]);
			if (priv[1] >= 0)
				close(priv[1]);
			if (!ret)
				ret = pidreq_recv(priv[0], NULL, &answer, NULL, NULL);
			if (!ret && answer)
				ret = answer;
			if (ret) {
				pr_errno(ret, "restore: stasis could not prepare pid %d", e->pid);
				close(go[0]);
				close(go[1]);
				if (priv[0] >= 0)
					close(priv[0]);
				if (dm[0] >= 0) {
					close(dm[0]);
					close(dm[1]);
				}
				return ret;
			}
		}
		t->go_rd = go[0];
		struct userns_owner owner;
		userns_owner_begin((flags & CLONE_NEWUSER) ? u : NULL, &owner);
		t->dumpable_wr = dm[1];
		pid_t child = clone_with_ids(e->pid, e->nspid, e->n_nspid, exit_signal, parent,
					     flags, skip, skip ? &pidfd : NULL);
		if (child == 0) {
			if (go[1] >= 0)
				close(go[1]);
			if (priv[0] >= 0)
				close(priv[0]);
			if (dm[0] >= 0)
				close(dm[0]);
			restore_task(t, j);
		}
		t->dumpable_wr = -1;
		if (dm[1] >= 0)
			close(dm[1]);
		ret = child < 0 ? -errno : 0;
		/* (a failure here leaves the creator with another euid: the child goes) */
		int oret = userns_owner_end(&owner);
		ret = ret ?: oret;
		if (ret == -EPERM)
			pr_err("cannot create pid %d: choosing a pid needs CAP_CHECKPOINT_RESTORE or "
			       "CAP_SYS_ADMIN over its pid namespaces",
			       e->pid);
		if (skip) {
			int32_t verdict = -EIO;
			int r = pidreq_send(priv[0], PIDREQ_ANSWER, ret, 0, pidfd);
			if (!r && !ret)
				r = pidreq_recv(priv[0], NULL, &verdict, NULL, NULL);
			close(priv[0]);
			if (pidfd >= 0)
				close(pidfd);
			if (!ret)
				ret = r ? r : verdict;
		}
		if (go[0] >= 0) {
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
			/* another process took the pid between stasis's ns_last_pid write and
			 * the clone: it may be short-lived, wait a little more each time */
			struct timespec ts = { 0, (long)(attempt + 1) * 25 * 1000000L };
			nanosleep(&ts, NULL);
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
static bool new_pid_ns(const Inventory *inv, size_t j)
{
	const TaskEntry *e = inv->tasks[j];
	ssize_t p = j ? task_index(inv, e->ppid) : -1;
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

/* The pids of process group @g at every level its members see it (NSpgid of a member),
 * outermost first, in @ids; their count (0: the image has only the outermost). */
static size_t group_levels(const struct rst_tree *t, pid_t g, const int32_t **ids)
{
	for (size_t i = 0; i < t->n; i++) {
		const TaskEntry *e = t->inv->tasks[i];
		if (e->zombie || e->pgid != g || e->n_nspgid < 2 || e->n_nspgid > PROC_MAX_NS_LEVEL ||
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
static int create_helpers(struct rst_tree *t, bool from_root)
{
	const TaskEntry *root = t->inv->tasks[0];
	size_t root_lvl = root->n_nspid ? root->n_nspid : 1;
	for (size_t k = 0; k < t->n_helpers; k++) {
		const int32_t *ids = NULL;
		size_t nids = group_levels(t, t->helpers[k], &ids);
		int self = -1, ret = 0;
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

/* Create the tasks task @idx creates (alive and zombie), each with its pid. Children
 * sharing its fd table are created last (@sharers), once the table is the task's.
 * Children in a time namespace of their own (their creator unshared it) come after the
 * others, each entering a new one with its offsets. */
static int create_children(struct rst_tree *t, size_t idx, bool sharers)
{
	int ret = create_children_pass(t, idx, sharers, false);
	return ret ? ret : create_children_pass(t, idx, sharers, true);
}

static int create_children_pass(struct rst_tree *t, size_t idx, bool sharers, bool timens)
{
	const TaskEntry *me = t->inv->tasks[idx];
	for (size_t j = 1; j < t->n; j++) {
		const TaskEntry *e = t->inv->tasks[j];
		if (creator_of(t->inv, j) != me->pid || e->shares_files != sharers)
			continue;
		const TimeNs *tn = t->procs[j] ? t->procs[j]->core->time_ns : NULL;
		if ((tn != NULL) != timens)
			continue;
		if (tn) {
			int r = ns_enter_time_for_children(tn);
			if (r)
				return r;
		}
		uint64_t fl = (e->shares_files ? CLONE_FILES : 0) | (e->shares_fs ? CLONE_FS : 0);
		if (t->procs[j])
			fl |= ns_clone_flags(t->procs[j]->core);
		if (new_pid_ns(t->inv, j))
			fl |= CLONE_NEWPID;
		pid_t child = spawn_task(t, (ssize_t)idx, j,
					 e->has_exit_signal ? (int)e->exit_signal : SIGCHLD,
					 e->ppid != me->pid, fl);
		if (child < 0)
			return (int)child;
		t->spawned[j] = child;
	}
	return 0;
}

static __attribute__((noreturn)) void zombie_task(struct rst_tree *t, size_t idx, int st)
{
	const TaskEntry *e = t->inv->tasks[idx];
	int status = e->has_exit_status ? e->exit_status : 0;

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
		    creator_of(t->inv, j) != me || !new_pid_ns(t->inv, j))
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

static __attribute__((noreturn)) void restore_task(struct rst_tree *t, size_t idx)
{
	const TaskEntry *e = t->inv->tasks[idx];
	struct rst_ctx *c = t->procs[idx];
	int st = t->status_wr;
	int ret;

	/* A failed restore kills the root: everything below goes with it. */
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	if (t->have_helper)
		helper_child_after_fork(&t->helper);
	log_reset_first_error();
	if (t->status_rd >= 0) {
		close(t->status_rd);
		t->status_rd = -1;
	}
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
	if (c && c->core->userns && (ret = userns_child_enter(c->core->userns)))
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
	if (c && (ret = ns_restore_child(c)))
		child_fail(st, e->pid, ret);
	/* (its mount tree is rebuilt: what is opened by path there can be opened now) */
	if (c && c->core->mnt && (ret = fetch_deferred(t, idx)))
		child_fail(st, e->pid, ret);
	if (e->sid == e->pid && setsid() < 0)
		child_fail(st, e->pid, pr_perror("restore: setsid in pid %d", e->pid));
	if (e->pgid == e->pid && e->sid != e->pid && setpgid(0, 0) < 0)
		child_fail(st, e->pid, pr_perror("restore: setpgid in pid %d", e->pid));
	if (!c)
		zombie_task(t, idx, st);
	ret = idx == 0 && t->helpers_from_root ? create_helpers(t, true) : 0;
	/* Children first: they must inherit the fd table of stasis, not the task's. */
	if (!ret)
		ret = create_children(t, idx, false);
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
	c->gfd = t->gfd;
	c->n_gfd = t->n_gfd;
	ret = res_restore(STAGE_CHILD, c);
	/* children sharing the fd table, now that it is the task's */
	if (!ret)
		ret = create_children(t, idx, true);
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

/* --- the parent half -------------------------------------------------------------- */

/* Every task reports once. The first error wins. */
static int wait_tasks_ready(struct rst_tree *t, int rd)
{
	size_t ready = 0;
	uint64_t deadline = now_ns() + 30ULL * 1000000000ULL;
	while (ready < t->n + t->n_helpers) {
		int left = (int)((deadline - MIN(deadline, now_ns())) / 1000000);
		struct pollfd p[2] = { { .fd = rd, .events = POLLIN },
				       { .fd = t->pidreq_rd, .events = POLLIN } };
		int r = poll(p, 2, left);
		if (r <= 0) {
			pr_err("restore: %zu of %zu tasks did not get ready in time",
			       t->n + t->n_helpers - ready, t->n + t->n_helpers);
			return -ETIMEDOUT;
		}
		if (p[1].revents & POLLIN) {
			const struct pidreq_ops ops = {
				.allowed = pid_in_image,
				.prepare_pids = stasis_prepare_pids,
				.check_pids = stasis_check_pids,
				.write_maps = stasis_write_maps,
				.open_files = stasis_open_files,
				.arg = t,
			};
			int e = pidreq_serve(t->pidreq_rd, &ops);
			if (e)
				return e;
			continue;
		}
		if (!(p[0].revents & (POLLIN | POLLHUP)))
			continue;
		struct status_msg m;
		ssize_t n = read(rd, &m, sizeof(m));
		if (n != (ssize_t)sizeof(m)) {
			pr_err("restore: a task died while setting itself up");
			return -ECHILD;
		}
		m.msg[sizeof(m.msg) - 1] = '\0';
		if (m.err) {
			log_reset_first_error();
			pr_err("%s", m.msg[0] ? m.msg : "a task failed while setting itself up");
			return m.err < 0 ? m.err : -EIO;
		}
		ready++;
	}
	return 0;
}

static int self_vdso(uint64_t *start, uint64_t *len)
{
	struct proc_vma *v = NULL;
	size_t n = 0;
	int r = proc_read_self_maps(&v, &n);
	if (r)
		return pr_errno(r, "restore: read /proc/self/maps");
	int ret = -ENOEXEC;
	for (size_t i = 0; i < n; i++)
		if (v[i].path && !strcmp(v[i].path, "[vdso]")) {
			*start = v[i].start;
			*len = v[i].end - v[i].start;
			ret = 0;
		}
	proc_vmas_free(v, n);
	if (ret)
		pr_err("restore: stasis itself has no vDSO");
	return ret;
}

static int close_service_fds(struct rst_ctx *c)
{
	long r = rsys_do(&c->rs, "restore: close service fds", SYS_close_range,
			 (uint64_t)c->svc_lo, ~0U, 0, 0, 0, 0);
	return r < 0 ? (int)r : 0;
}

/* Everything but the registers and the signal mask, for one process. */
static int rebuild(struct rst_ctx *c, uint64_t vdso, uint64_t vdso_len)
{
	int ret = pt_seize_stop(c->pid, true);
	if (ret)
		return ret;
	ret = rsys_init(&c->rs, c->pid, vdso, vdso_len);
	if (ret)
		return ret;
	c->rs_ready = true;
	ret = res_restore(STAGE_PREPARE, c);
	return ret ? ret : res_restore(STAGE_REMOTE, c);
}

/* The members joined: the helpers go (the groups live on without their leader). */
static void stop_helpers(struct rst_tree *t)
{
	for (size_t k = 0; k < t->n_helpers; k++) {
		int st;
		/* only a child of ours (a helper that was created): never another process */
		if (waitpid(t->helpers[k], &st, __WALL | WNOHANG) != 0)
			continue;
		kill(t->helpers[k], SIGKILL);
		while (waitpid(t->helpers[k], &st, __WALL) < 0 && errno == EINTR)
			;
	}
	t->n_helpers = 0;
}

/* Join process groups led by another task, now that every task exists. */
static int join_groups(struct rst_tree *t)
{
	const TaskEntry *root = t->inv->tasks[0];
	pid_t root_pgid = getpgid(root->pid);
	for (size_t i = 0; i < t->n; i++) {
		const TaskEntry *e = t->inv->tasks[i];
		struct rst_ctx *c = t->procs[i];
		if (!c || e->pgid == e->pid)
			continue;
		/* the root's group outside the tree is wherever the root is now */
		pid_t want = (e->pgid == root->pgid && task_index(t->inv, e->pgid) < 0) ? root_pgid
											  : e->pgid;
		/* setpgid takes ids as the member sees them: the leader's at its level */
		ssize_t li = task_index(t->inv, e->pgid);
		size_t lvl = e->n_nspid ? e->n_nspid - 1 : 0;
		pid_t local = want;
		if (li >= 0 && lvl && t->inv->tasks[li]->n_nspid > lvl)
			local = t->inv->tasks[li]->nspid[lvl];
		else if (lvl && want == e->pgid && e->n_nspgid > lvl && e->nspgid[lvl] > 0)
			local = e->nspgid[lvl]; /* a group whose leader is gone (a helper's) */
		if (getpgid(e->pid) == want)
			continue;
		long r = rsys_do(&c->rs, "restore: join process group", SYS_setpgid, 0,
				 (uint64_t)local, 0, 0, 0, 0);
		if (r < 0) {
			pr_err("restore: pid %d cannot join process group %d", e->pid, want);
			return (int)r;
		}
	}
	return 0;
}

static void free_tree(struct rst_tree *t)
{
	for (size_t i = 0; t->procs && i < t->n; i++) {
		struct rst_ctx *c = t->procs[i];
		if (!c)
			continue;
		if (c->core)
			protobuf_c_message_free_unpacked(&c->core->base, NULL);
		if (c->mm)
			protobuf_c_message_free_unpacked(&c->mm->base, NULL);
		if (c->files)
			protobuf_c_message_free_unpacked(&c->files->base, NULL);
		if (c->pages.fd >= 0)
			close(c->pages.fd);
		if (c->cwd_fd >= 0 && !c->cwd_deferred)
			close(c->cwd_fd);
		res_release(c);
		free(c->trs);
		free(c);
	}
	free(t->procs);
	if (t->inv)
		protobuf_c_message_free_unpacked(&t->inv->base, NULL);
	for (uint32_t i = 0; t->gfd && i < t->n_gfd; i++)
		if (t->gfd[i] >= 0)
			close(t->gfd[i]);
	free(t->gfd);
	free(t->helpers);
	free(t->spawned);
	free(t->defer);
	for (size_t k = 0; k < t->n_join; k++)
		close(t->join_fd[k]);
	t->n_join = 0;
	ns_pins_close(&t->pins);
	mem_shm_release(t->shm, t->n_shm); /* munmap of already unmapped ranges is harmless */
	img_dir_close(&t->img);
}

static int exit_status_of(int status)
{
	if (WIFEXITED(status))
		return WEXITSTATUS(status);
	if (WIFSIGNALED(status))
		return 128 + WTERMSIG(status);
	return 1;
}

/* The task creating the mount namespace task @i is in, if the tree creates it; -1 if
 * not (stasis's, or one joined). */
static ssize_t mnt_creator(const struct rst_tree *t, size_t i)
{
	const Core *c = t->procs[i] ? t->procs[i]->core : NULL;
	if (!c || !c->ns || !c->ns->mnt)
		return -1;
	for (size_t k = 0; k < t->n; k++)
		if (t->procs[k] && t->procs[k]->core->mnt && t->procs[k]->core->ns &&
		    t->procs[k]->core->ns->mnt == c->ns->mnt)
			return (ssize_t)k;
	return -1;
}

/* Stasis: the descriptions deferred to the mount namespace task @pid created (and the
 * cwds of its tasks in user namespaces), opened in its rebuilt tree through
 * /proc/PID/root (RESOLVE_IN_ROOT: "/" is that tree's root) and sent on @sock. */
static void stasis_open_files(void *arg, pid_t pid, int sock)
{
	struct rst_tree *t = arg;
	ssize_t k = task_index(t->inv, pid);
	char path[64];
	int ret = 0;
	_cleanup_free_ Files **fl = calloc(t->n, sizeof(*fl));
	size_t nf = 0;
	for (size_t i = 0; fl && i < t->n; i++)
		if (t->procs[i])
			fl[nf++] = t->procs[i]->files;
	snprintf(path, sizeof(path), "%d/root", pid);
	_cleanup_close_ int rootfd = openat(t->proc_dfd, path, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (!fl)
		ret = -ENOMEM;
	else if (k < 0)
		ret = -EINVAL;
	else if (rootfd < 0)
		ret = pr_perror("restore: open /proc/%s", path);
	for (uint32_t id = 1; !ret && t->defer && id < t->n_gfd; id++) {
		if (t->defer[id] != k)
			continue;
		int fd = files_open_deferred(fl, nf, id, rootfd);
		ret = fd < 0 ? fd : pidreq_send(sock, PIDREQ_ANSWER, (int32_t)id, 0, fd);
		if (fd >= 0)
			close(fd);
	}
	for (size_t j = 0; !ret && j < t->n; j++) {
		struct rst_ctx *c = t->procs[j];
		if (!c || !c->cwd_deferred || mnt_creator(t, j) != k)
			continue;
		struct open_how how = { .flags = O_PATH | O_DIRECTORY | O_CLOEXEC,
					.resolve = RESOLVE_IN_ROOT };
		int fd = sys_openat2(rootfd, c->core->cwd, &how, sizeof(how));
		if (fd < 0)
			ret = pr_perror("restore: open the cwd of pid %d (%s) in its mount namespace",
					c->pid, c->core->cwd);
		else
			ret = pidreq_send(sock, PIDREQ_ANSWER, -1, c->cwd_fd, fd);
		if (fd >= 0)
			close(fd);
	}
	if (pidreq_send(sock, PIDREQ_ANSWER, 0, ret, -1))
		pr_debug("restore: the creator of pid %d went away", pid);
}

/* In the creator of a mount namespace, its tree rebuilt: the descriptions its tasks share
 * (and the cwds of those in user namespaces), opened there by stasis, put in place
 * before the tasks are created (they inherit them). */
static int fetch_deferred(struct rst_tree *t, size_t idx)
{
	bool any = false;
	for (uint32_t id = 1; t->defer && id < t->n_gfd; id++)
		any |= t->defer[id] == (ssize_t)idx;
	for (size_t j = 0; j < t->n; j++)
		any |= t->procs[j] && t->procs[j]->cwd_deferred && mnt_creator(t, j) == (ssize_t)idx;
	if (!any)
		return 0;
	pid_t me = t->inv->tasks[idx]->pid;
	int priv[2];
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, priv) < 0)
		return pr_perror("restore: socketpair");
	int ret = pidreq_send(t->pidreq_wr, PIDREQ_OPEN_FILES, me, 0, priv[1]);
	close(priv[1]);
	for (int n = 0; !ret && n < (1 << 21); n++) {
		int32_t val, aux;
		int fd;
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
	if (ret)
		pr_errno(ret, "restore: the files of the mount namespace of pid %d", me);
	return ret;
}

/* File descriptor layout of every restore child, and the tree-wide descriptions. */
static int plan_fds(struct rst_tree *t)
{
	int top = 0;
	for (size_t i = 0; i < t->n; i++) {
		struct rst_ctx *c = t->procs[i];
		if (!c)
			continue;
		int maxfd = files_max_fd(c->files);
		c->svc_lo = maxfd + 1 > 3 ? maxfd + 1 : 3;
		/* one fd table with the parent: service fds above the parent's */
		ssize_t p = task_index(t->inv, t->inv->tasks[i]->ppid);
		if (c->shares_files && p >= 0 && t->procs[p]) {
			const struct rst_ctx *pc = t->procs[p];
			c->svc_lo = MAX(c->svc_lo, pc->map_fd_base + (int)pc->mm->n_vmas + 1);
		}
		c->exe_fd = c->svc_lo + SVC_EXE;
		c->map_fd_base = c->svc_lo + SVC_MAPS;
		top = MAX(top, c->map_fd_base + (int)c->mm->n_vmas + 1);
	}
	t->gfd_base = top + 8;
	_cleanup_free_ Files **fl = calloc(t->n, sizeof(*fl));
	_cleanup_free_ bool *outside = calloc(t->n, sizeof(*outside));
	_cleanup_free_ ssize_t *owner = calloc(t->n, sizeof(*owner));
	_cleanup_free_ size_t *tree_idx = calloc(t->n, sizeof(*tree_idx));
	size_t nf = 0;
	if (!fl || !outside || !owner || !tree_idx)
		return -ENOMEM;
	for (size_t i = 0; i < t->n; i++)
		if (t->procs[i]) {
			outside[nf] = t->procs[i]->in_userns;
			tree_idx[nf] = i;
			fl[nf++] = t->procs[i]->files;
		}
	for (size_t p = 0; p < nf; p++) {
		ssize_t k = mnt_creator(t, tree_idx[p]);
		owner[p] = -1;
		for (size_t q = 0; k >= 0 && q < nf; q++)
			if (tree_idx[q] == (size_t)k)
				owner[p] = (ssize_t)q;
	}
	ssize_t *defer = NULL;
	int ret = files_open_shared(fl, outside, owner, nf, t->gfd_base, &t->gfd, &t->n_gfd,
				    &defer);
	if (ret)
		return ret;
	for (uint32_t id = 0; id < t->n_gfd; id++)
		if (defer[id] >= 0)
			defer[id] = (ssize_t)tree_idx[defer[id]];
	t->defer = defer;
	t->fd_top = t->gfd_base + (int)t->n_gfd;
	/* stasis's root, for paths of the dumper's view: above every fd of the tasks and the
	 * service fds, where nothing replaces it before the task's memory is rebuilt */
	int high = fcntl(t->root_fd, F_DUPFD_CLOEXEC, t->fd_top);
	if (high < 0)
		return pr_perror("restore: dup /");
	close(t->root_fd);
	t->root_fd = high;
	t->fd_top = high + 1;
	for (size_t i = 0; i < t->n; i++)
		if (t->procs[i])
			t->procs[i]->host_root_fd = t->root_fd;
	for (size_t i = 0; i < t->n; i++) {
		struct rst_ctx *c = t->procs[i];
		if (!c || !c->in_userns)
			continue;
		if (mnt_creator(t, i) >= 0) {
			/* in its own mount tree: opened there by stasis, at this number */
			c->cwd_fd = t->fd_top++;
			c->cwd_deferred = true;
			continue;
		}
		_cleanup_close_ int fd = open(c->core->cwd, O_PATH | O_DIRECTORY | O_CLOEXEC);
		if (fd < 0)
			return pr_perror("restore: open the cwd of pid %d (%s)", c->pid, c->core->cwd);
		c->cwd_fd = fcntl(fd, F_DUPFD_CLOEXEC, t->fd_top);
		if (c->cwd_fd < 0)
			return pr_perror("restore: dup");
		t->fd_top = c->cwd_fd + 1;
	}
	/* the roots of the cgroup namespaces, entered by their creators; each is created by
	 * a task that sits in the roots of the nearest namespace up its creator chain */
	for (size_t i = 0; i < t->n; i++) {
		if (!t->procs[i] || !t->procs[i]->core->cgroupns)
			continue;
		const CgroupNs *from = NULL;
		ssize_t k = i ? task_index(t->inv, creator_of(t->inv, i)) : -1;
		for (size_t hops = 0; k >= 0 && !from && hops < t->n; hops++) {
			if (t->procs[k])
				from = t->procs[k]->core->cgroupns;
			k = k ? task_index(t->inv, creator_of(t->inv, (size_t)k)) : -1;
		}
		ret = cgroup_ns_prepare(t->procs[i], from, &t->fd_top);
		if (ret)
			return ret;
	}
	struct rlimit nofile;
	rlim_t need = (rlim_t)(t->fd_top + 80);
	if (getrlimit(RLIMIT_NOFILE, &nofile) == 0 && need > nofile.rlim_cur) {
		if (need > nofile.rlim_max) {
			pr_err("restore: needs %llu file descriptors, RLIMIT_NOFILE allows %llu",
			       (unsigned long long)need, (unsigned long long)nofile.rlim_max);
			return -EMFILE;
		}
		nofile.rlim_cur = need;
		setrlimit(RLIMIT_NOFILE, &nofile);
	}
	return 0;
}

static int plan_shm(struct rst_tree *t)
{
	_cleanup_free_ struct rst_ctx **pl = calloc(t->n, sizeof(*pl));
	size_t np = 0;
	if (!pl)
		return -ENOMEM;
	for (size_t i = 0; i < t->n; i++)
		if (t->procs[i])
			pl[np++] = t->procs[i];
	int ret = mem_shm_prepare(pl, np, &t->shm, &t->n_shm);
	for (size_t i = 0; !ret && i < np; i++) {
		pl[i]->shm = t->shm;
		pl[i]->n_shm = t->n_shm;
	}
	return ret;
}

int restore_run(const struct restore_opts *o)
{
	struct rst_tree t = { .opts = o, .status_wr = -1, .status_rd = -1, .go_rd = -1,
			      .dumpable_wr = -1, .pidreq_rd = -1, .pidreq_wr = -1,
			      .helper = HELPER_INIT };
	int pipefd[2] = { -1, -1 };
	pid_t root = -1;
	int ret, status;

	t.img.dfd = -1;
	t.pins.dirfd = -1;
	log_set_stage("restore");
	t.proc_dfd = open("/proc", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (t.proc_dfd < 0)
		return -1000 + pr_perror("restore: open /proc");
	t.root_fd = open("/", O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (t.root_fd < 0) {
		close(t.proc_dfd);
		return -1000 + pr_perror("restore: open /");
	}
	ret = o->pin_dir ? ns_pins_open(&t.pins, o->pin_dir) : 0;
	if (!ret)
		ret = img_dir_open(&t.img, o->dir);
	if (!ret)
		ret = load_tree(&t);
	for (size_t k = 0; !ret && k < o->n_join_ns; k++) {
		ret = ns_join_open(o->join_ns[k], &t.join_fd[k], &t.join_type[k]);
		if (!ret) {
			t.n_join = k + 1;
			ns_join_forget(t.procs[0]->core, t.join_type[k]);
		}
	}
	if (!ret && o->helper_socket) {
		/* before any task exists: the channel is never inherited unmarked */
		ret = helper_connect(&t.helper, o->helper_socket);
		t.have_helper = !ret;
		if (ret)
			pr_errno(ret, "restore: cannot reach the stasis helper at %s", o->helper_socket);
		else
			helper_set_default(&t.helper);
	}
	/* pinned mount namespaces must get ids above stasis's own (src/ns/mnt.c) */
	uint64_t floor = o->pin_dir ? mnt_ns_id("/proc/self/ns/mnt") : 0;
	for (size_t i = 0; !ret && i < t.n; i++)
		if (t.procs[i])
			t.procs[i]->mntns_floor = floor;
	/* the namespaces each task is created into (the joined ones are forgotten now) */
	for (size_t i = 0; !ret && o->pin_dir && i < t.n; i++)
		if (t.procs[i])
			ret = ns_pins_add(&t.pins, t.procs[i]->core, t.inv->tasks[i]->pid,
					  new_pid_ns(t.inv, i));
	if (!ret)
		ret = plan_fds(&t);
	if (!ret)
		ret = plan_shm(&t);
	if (ret)
		goto fail;
	t.helpers = calloc(t.n + 1, sizeof(pid_t));
	if (!t.helpers) {
		ret = -ENOMEM;
		goto fail;
	}
	t.n_helpers = orphan_groups(&t, t.helpers);
	t.helpers_from_root = t.inv->tasks[0]->sid == t.inv->tasks[0]->pid;
	/* Packet mode: each report is one atomic message, whoever writes it. */
	if (pipe2(pipefd, O_CLOEXEC | O_DIRECT) < 0) {
		ret = pr_perror("restore: pipe");
		goto fail;
	}
	t.status_wr = pipefd[1];
	t.status_rd = pipefd[0];
	int pr[2];
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, pr) < 0) {
		ret = pr_perror("restore: socketpair");
		goto fail;
	}
	t.pidreq_rd = pr[0];
	t.pidreq_wr = pr[1];

	pid_t want = t.inv->tasks[0]->pid;
	if (t.procs[0]->core->time_ns) {
		/* the root is created in it; stasis's later children (group helpers) too */
		ret = ns_enter_time_for_children(t.procs[0]->core->time_ns);
		if (ret)
			goto fail;
	}
	fflush(NULL);
	root = spawn_task(&t, -1, 0, SIGCHLD, false,
			  ns_clone_flags(t.procs[0]->core) | (new_pid_ns(t.inv, 0) ? CLONE_NEWPID : 0));
	if (root < 0) {
		ret = (int)root;
		root = -1;
		goto fail;
	}
	if (!t.helpers_from_root) {
		/* in stasis's session, which the restored root joins */
		ret = create_helpers(&t, false);
		if (ret)
			goto fail;
	}
	close(pipefd[1]);
	pipefd[1] = -1;
	ret = wait_tasks_ready(&t, pipefd[0]);
	if (ret)
		goto fail;
	/* The shared objects and descriptions now live in the tasks (the children still use
	 * the addresses: keep the list). */
	for (size_t k = 0; k < t.n_shm; k++)
		munmap((void *)(uintptr_t)t.shm[k].tmp, t.shm[k].size);
	for (uint32_t i = 0; i < t.n_gfd; i++)
		if (t.gfd[i] >= 0) {
			close(t.gfd[i]);
			t.gfd[i] = -1;
		}
	for (size_t i = 0; i < t.n; i++)
		if (t.procs[i])
			cgroup_ns_release(t.procs[i]);

	uint64_t vdso = 0, vdso_len = 0, t0 = now_ns();
	ret = self_vdso(&vdso, &vdso_len);
	for (size_t i = 0; i < t.n && !ret; i++)
		if (t.procs[i])
			ret = rebuild(t.procs[i], vdso, vdso_len);
	/* service fds last: a task sharing its fd table with another would close the
	 * other's before its memory was rebuilt */
	for (size_t i = 0; i < t.n && !ret; i++)
		if (t.procs[i])
			ret = close_service_fds(t.procs[i]);
	if (!ret)
		ret = join_groups(&t);
	if (!ret)
		stop_helpers(&t);
	/* Every task exists, still frozen and dying with stasis: a failure from here on
	 * leaves nothing behind (the pins made are undone below). */
	if (!ret && o->pin_dir)
		ret = ns_pins_make(&t.pins, t.proc_dfd);
	for (size_t i = 0; i < t.n && !ret; i++) {
		if (!t.procs[i])
			continue;
		ret = res_restore(STAGE_FINAL, t.procs[i]);
	}
	if (ret)
		goto fail;
	/* tasks that were stopped (SIGSTOP) at dump are stopped again: queued while they are
	 * still traced, so that they stop before running an instruction once detached */
	for (size_t i = 0; i < t.n; i++)
		if (t.procs[i] && t.procs[i]->core->stopped)
			kill(t.procs[i]->pid, SIGSTOP);
	for (size_t i = 0; i < t.n && !ret; i++) {
		struct rst_ctx *c = t.procs[i];
		for (size_t k = 0; c && k < c->nr_trs && !ret; k++)
			ret = pt_detach(c->trs[k].tid, 0);
		if (c && !ret)
			ret = pt_detach(c->pid, 0);
	}
	if (ret)
		goto fail;
	pr_info("restore: %zu tasks of pid %d restored in %.3f ms", t.n, want,
		(double)(now_ns() - t0) / 1e6);
	if (o->pidfile) {
		char buf[32];
		int n = snprintf(buf, sizeof(buf), "%d\n", want);
		ret = write_file(o->pidfile, buf, (size_t)n);
		if (ret) {
			pr_errno(ret, "restore: write pidfile %s", o->pidfile);
			goto fail;
		}
	}
	close(pipefd[0]);
	free_tree(&t);
	close(t.proc_dfd);
	close(t.root_fd);
	close(t.pidreq_rd);
	close(t.pidreq_wr);
	helper_set_default(NULL);
	helper_close(&t.helper);
	if (o->detach)
		return 0;
	for (;;) {
		pid_t r = waitpid(root, &status, 0);
		if (r == root)
			return exit_status_of(status);
		if (r < 0 && errno != EINTR) {
			pr_perror("restore: wait for %d", root);
			return 1;
		}
	}

fail:
	if (t.helpers)
		stop_helpers(&t);
	if (root > 0) {
		/* Every other task dies with its parent (PR_SET_PDEATHSIG) or with us
		 * (PTRACE_O_EXITKILL); kill the ones frozen so far right away too. */
		for (size_t i = t.n; i-- > 1;)
			if (t.procs && t.procs[i] && t.procs[i]->rs_ready)
				kill(t.procs[i]->pid, SIGKILL);
		kill(root, SIGKILL);
		/* Reap every child and tracee, not just the root: a root that is a pid
		 * namespace's init finishes exiting only once every task of its namespace is
		 * released, and the tasks we trace are released by our wait. */
		for (;;) {
			pid_t r = waitpid(-1, &status, __WALL);
			if (r == root || (r < 0 && errno != EINTR))
				break;
		}
	}
	ns_pins_undo(&t.pins);
	if (pipefd[0] >= 0)
		close(pipefd[0]);
	if (pipefd[1] >= 0)
		close(pipefd[1]);
	free_tree(&t);
	close(t.proc_dfd);
	close(t.root_fd);
	if (t.pidreq_rd >= 0)
		close(t.pidreq_rd);
	if (t.pidreq_wr >= 0)
		close(t.pidreq_wr);
	helper_set_default(NULL);
	helper_close(&t.helper);
	return -1000 + ret; /* < 0: stasis failed (not the task) */
}
