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

#include "core/fault.h"
#include "core/log.h"
#include "proc/parse.h"
#include "cr/resource.h"
#include "cr/restore_int.h"
#include "files/files.h"
#include "net/netns.h"
#include "mem/mem.h"
#include "net/netlock.h"
#include "ns/cgroup.h"
#include "ns/mnt.h"
#include "ns/ns.h"
#include "ptrace/ptrace.h"
#include "sys/syscalls.h"
#include "task/task.h"

/* The namespaces the task created: ns-PID.img, absent for a task that created none. */
static int load_task_ns(struct rst_tree *t, struct rst_ctx *c)
{
	char name[64];
	img_name(IMG_NS, c->pid, name, sizeof(name));
	if (faccessat(t->img.dfd, name, F_OK, AT_SYMLINK_NOFOLLOW) == 0) {
		c->tns = img_read_msg(t->img.dfd, IMG_NS, c->pid);
		if (!c->tns)
			return -errno;
		ssize_t idx = rst_task_index(t->inv, c->pid);
		return idx < 0 ? -EINVAL : ns_joined_check(c->tns, t->inv, (size_t)idx);
	}
	if (errno != ENOENT)
		return pr_perror("images: %s", name);
	c->tns = calloc(1, sizeof(*c->tns));
	if (!c->tns)
		return -ENOMEM;
	task_ns__init(c->tns);
	return 0;
}

static int load_proc(struct rst_tree *t, struct rst_ctx *c)
{
	int ret;

	c->core = img_read_msg(t->img.dfd, IMG_CORE, c->pid);
	if (!c->core)
		return -errno;
	ret = load_task_ns(t, c);
	if (ret)
		return ret;
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
	ret = page_source_open(c, &c->pages);
	if (ret)
		return ret;
	ret = res_restore(STAGE_VALIDATE, c);
	if (!ret && t->opts->tcp_close)
		tcp_close_connections(c->files);
	return ret;
}

ssize_t rst_task_index(const Inventory *inv, pid_t pid)
{
	for (size_t i = 0; i < inv->n_tasks; i++)
		if (inv->tasks[i]->pid == pid)
			return (ssize_t)i;
	return -1;
}

struct rsys *rst_find_thread(struct rst_ctx *c, pid_t tid, struct rst_ctx **proc)
{
	struct rst_tree *t = c->tree;
	for (size_t i = 0; t ? i < t->n : i < 1; i++) {
		struct rst_ctx *p = t ? t->procs[i] : c;
		if (!p)
			continue;
		for (size_t k = 0; k < p->core->n_threads && k <= p->nr_trs; k++)
			if (p->core->threads[k]->tid == tid) {
				*proc = p;
				return rst_thread_rs(p, k);
			}
	}
	return NULL;
}

/* Untrusted: task @i is made through a session helper (TaskEntry.via_session): alive,
 * made by its parent, in a session no task leads, not the root's, its id at every level
 * as many as its pids, the same parent and ids for every such task of the session. */
static int check_session_helper(const Inventory *inv, size_t i)
{
	const TaskEntry *e = inv->tasks[i];
	pid_t hs = rst_helper_sid(e);
	bool ok = !e->has_creator && !e->has_mnt_sibling && hs > 0 && hs != e->pid &&
		  hs != inv->tasks[0]->sid && rst_task_index(inv, hs) < 0 && e->n_nssid >= 1 &&
		  e->n_nssid == (e->n_nspid ? e->n_nspid : 1) && e->nssid[0] == hs &&
		  (!e->zombie || e->sid == hs);
	for (size_t k = 0; ok && k < e->n_nssid; k++)
		ok = e->nssid[k] > 0;
	for (size_t k = 1; ok && k < i; k++) {
		const TaskEntry *o = inv->tasks[k];
		if (o->via_session && rst_helper_sid(o) == hs)
			ok = o->ppid == e->ppid && o->n_nssid == e->n_nssid &&
			     !memcmp(o->nssid, e->nssid, e->n_nssid * sizeof(*e->nssid));
	}
	if (!ok)
		pr_err("images: task %zu (pid %d) made through a helper of session %d is invalid",
		       i, e->pid, hs);
	return ok ? 0 : -EINVAL;
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
		ssize_t p = i ? rst_task_index(inv, e->ppid) : -1;
		if (e->pid <= 0 || rst_task_index(inv, e->pid) != (ssize_t)i ||
		    (i && (p < 0 || (size_t)p >= i || inv->tasks[p]->zombie)) ||
		    (e->has_exit_signal && e->exit_signal > 64)) {
			pr_err("images: task %zu (pid %d, parent %d) of the inventory is invalid", i,
			       e->pid, e->ppid);
			return -EINVAL;
		}
		ssize_t c = e->has_creator ? rst_task_index(inv, e->creator) : p;
		if (e->has_mnt_sibling) { /* a sibling: same parent, alive, no other creator */
			c = rst_task_index(inv, e->mnt_sibling);
			if (c >= 0 && (e->has_creator || e->zombie || inv->tasks[c]->ppid != e->ppid))
				c = -1;
		}
		/* born in another session: a leader, made by a task of that session (its parent,
		 * or another through a helper), by its parent born there too, or through the
		 * helper of that session (check_session_helper) */
		ssize_t bc = i ? rst_task_index(inv, rst_creator_of(inv, i)) : p;
		if (e->has_born_sid &&
		    (!i || e->sid != e->pid || e->born_sid <= 0 || e->born_sid == e->sid || bc < 0 ||
		     (inv->tasks[bc]->sid != e->born_sid && !e->via_session &&
		      (e->has_creator || !inv->tasks[p]->has_born_sid ||
		       inv->tasks[p]->born_sid != e->born_sid)))) {
			pr_err("images: task %zu (pid %d) born in session %d is invalid", i, e->pid,
			       e->born_sid);
			return -EINVAL;
		}
		/* (a zombie makes only tasks given to its parent's reaper when it exits) */
		if (i && (c < 0 || (size_t)c == i ||
			  (inv->tasks[c]->zombie && (!e->has_creator || e->has_mnt_sibling)))) {
			pr_err("images: task %zu (pid %d) is made by pid %d, not a live task of "
			       "the inventory", i, e->pid, e->creator);
			return -EINVAL;
		}
	}
	for (size_t i = 1; i < inv->n_tasks; i++)
		if (inv->tasks[i]->via_session && check_session_helper(inv, i))
			return -EINVAL;
	/* every task is made by a chain of creators that ends at the root */
	for (size_t i = 1; i < inv->n_tasks; i++) {
		ssize_t k = (ssize_t)i;
		size_t hops = 0;
		while (k > 0 && hops++ <= inv->n_tasks)
			k = rst_task_index(inv, rst_creator_of(inv, (size_t)k));
		if (k != 0) {
			pr_err("images: task %zu (pid %d) is not made by a chain of tasks from the "
			       "root", i, inv->tasks[i]->pid);
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
	if (t->inv->shell_job && !t->opts->shell_job) {
		pr_err("images: the tree was dumped as a shell job (--shell-job): restore it with "
		       "--shell-job (-j)");
		return -EINVAL;
	}
	if (t->inv->pre_dump) {
		pr_err("images: %s is a pre-dump (memory only): restore the dump made with "
		       "--prev-images-dir naming it",
		       t->opts->dir);
		return -EINVAL;
	}
	ret = check_tasks(t->inv);
	if (!ret)
		ret = blob_open(t->img.dfd, &t->blobs); /* checked before any BlobRef is */
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
		c->thread_levels = rst_thread_levels;
		c->tree = t;
		c->pid = t->inv->tasks[i]->pid;
		c->cwd_fd = -1;
		c->img_dfd = t->img.dfd;
		c->blobs = &t->blobs;
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

/* A helper task @m made (src/cr/spawn.c rst_task_helpers): killed if it still is that
 * task's child (never another process), then, with the task rebuilt (@reap), reaped by
 * it (remote wait4; it sends no signal when it exits). On a failed restore the task dies
 * too, and the helper with it. */
static int stop_task_helper(struct rst_tree *t, size_t k, ssize_t m, bool reap)
{
	pid_t g = t->helpers[k];
	const TaskEntry *me = t->inv->tasks[m];
	char path[32];
	snprintf(path, sizeof(path), "%d/stat", g);
	_cleanup_free_ char *buf = read_file_at(t->proc_dfd, path, 4096, NULL);
	struct proc_stat st;
	if (!buf || proc_parse_stat(buf, &st) || st.ppid != me->pid) {
		if (reap)
			pr_err("restore: the helper of process group %d is gone", g);
		return reap ? -ESRCH : 0;
	}
	kill(g, SIGKILL);
	if (!reap || !t->procs[m])
		return 0;
	/* (made with the group's ids at its maker's every level) */
	const int32_t *ids = NULL;
	size_t nids = rst_group_levels(t, g, &ids);
	pid_t local = nids > 1 ? ids[nids - 1] : g;
	long r = rsys_do(&t->procs[m]->rs, "restore: reap a group helper", SYS_wait4,
			 (uint64_t)local, 0, __WALL, 0, 0, 0);
	return r == local ? 0 : pr_errno(r < 0 ? (int)r : -EIO,
					 "restore: pid %d did not reap the helper of group %d",
					 me->pid, g);
}

/* The members joined: the helpers go (the groups live on without their leader). */
static int stop_helpers(struct rst_tree *t, bool reap)
{
	int ret = 0;
	for (size_t k = 0; k < t->n_helpers; k++) {
		int st;
		if (t->helper_maker[k] >= 0) {
			int r = stop_task_helper(t, k, t->helper_maker[k], reap);
			ret = ret ? ret : r;
			continue;
		}
		/* only a child of ours (a helper that was created): never another process */
		if (waitpid(t->helpers[k], &st, __WALL | WNOHANG) != 0)
			continue;
		kill(t->helpers[k], SIGKILL);
		while (waitpid(t->helpers[k], &st, __WALL) < 0 && errno == EINTR)
			;
	}
	t->n_helpers = 0;
	return ret;
}

/* Task @e's process group as @e sees it (setpgid takes ids of the caller's level): the
 * leader's pid at that level, or the recorded one of a group whose leader is gone. */
pid_t rst_group_local(const Inventory *inv, const TaskEntry *e)
{
	ssize_t li = rst_task_index(inv, e->pgid);
	size_t lvl = e->n_nspid ? e->n_nspid - 1 : 0;
	if (li >= 0 && lvl && inv->tasks[li]->n_nspid > lvl)
		return inv->tasks[li]->nspid[lvl];
	if (lvl && e->n_nspgid > lvl && e->nspgid[lvl] > 0)
		return e->nspgid[lvl]; /* a group whose leader is gone (a helper's) */
	return e->pgid;
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
		pid_t want = (e->pgid == root->pgid && rst_task_index(t->inv, e->pgid) < 0) ? root_pgid
											  : e->pgid;
		pid_t local = want == e->pgid ? rst_group_local(t->inv, e) : want;
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
		if (c->tns)
			protobuf_c_message_free_unpacked(&c->tns->base, NULL);
		mem_chain_free(c);
		if (c->mm)
			protobuf_c_message_free_unpacked(&c->mm->base, NULL);
		if (c->files)
			protobuf_c_message_free_unpacked(&c->files->base, NULL);
		page_source_close(c->pages);
		if (c->cwd_fd >= 0)
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
	free(t->helper_maker);
	free(t->spawned);
	free(t->defer);
	for (size_t k = 0; k < t->n_join; k++)
		close(t->join_fd[k]);
	t->n_join = 0;
	ns_pins_close(&t->pins);
	mem_shm_release(t->shm, t->n_shm); /* munmap of already unmapped ranges is harmless */
	mem_ghost_release(t->ghosts, t->n_ghosts);
	blob_close(&t->blobs);
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

/* The cwds of the tasks in user namespaces (they may not reach them by path): opened by
 * stasis above every fd of the plan, or held at free fds for the creator of their mount
 * namespace to fill. */
static int plan_cwds(struct rst_tree *t)
{
	for (size_t i = 0; i < t->n; i++) {
		struct rst_ctx *c = t->procs[i];
		if (!c || !c->in_userns)
			continue;
		if (rst_mnt_creator(t, i) >= 0) {
			/* in its own mount tree: opened there by stasis, at this number, held
			 * meanwhile by a free fd (a pipe made later must not get it, and the
			 * creator puts the cwd there with dup3) */
			c->cwd_fd = fcntl(t->root_fd, F_DUPFD_CLOEXEC, t->fd_top);
			if (c->cwd_fd < 0)
				return pr_perror("restore: hold an fd above %d", t->fd_top);
			t->fd_top = c->cwd_fd + 1;
			c->cwd_deferred = true;
			continue;
		}
		_cleanup_close_ int fd = c->core->cwd_deleted
						 ? misc_deleted_cwd(AT_FDCWD, c->core)
						 : open(c->core->cwd, O_PATH | O_DIRECTORY | O_CLOEXEC);
		if (fd < 0 && c->core->cwd_deleted)
			return fd;
		if (fd < 0)
			return pr_perror("restore: open the cwd of pid %d (%s)", c->pid, c->core->cwd);
		c->cwd_fd = fcntl(fd, F_DUPFD_CLOEXEC, t->fd_top);
		if (c->cwd_fd < 0)
			return pr_perror("restore: dup");
		t->fd_top = c->cwd_fd + 1;
	}
	return 0;
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
		ssize_t p = rst_task_index(t->inv, t->inv->tasks[i]->ppid);
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
	_cleanup_free_ ssize_t *net_owner = calloc(t->n, sizeof(*net_owner));
	_cleanup_free_ size_t *tree_idx = calloc(t->n, sizeof(*tree_idx));
	_cleanup_free_ pid_t *pids = calloc(t->n, sizeof(*pids));
	size_t nf = 0;
	if (!fl || !outside || !owner || !net_owner || !tree_idx || !pids)
		return -ENOMEM;
	for (size_t i = 0; i < t->n; i++)
		if (t->procs[i]) {
			outside[nf] = t->procs[i]->in_userns;
			pids[nf] = t->procs[i]->pid;
			tree_idx[nf] = i;
			fl[nf++] = t->procs[i]->files;
		}
	for (size_t p = 0; p < nf; p++) {
		ssize_t k = rst_mnt_creator(t, tree_idx[p]), kn = rst_ns_creator(t, tree_idx[p], true);
		owner[p] = net_owner[p] = -1;
		for (size_t q = 0; q < nf; q++) {
			if (k >= 0 && tree_idx[q] == (size_t)k)
				owner[p] = (ssize_t)q;
			if (kn >= 0 && tree_idx[q] == (size_t)kn)
				net_owner[p] = (ssize_t)q;
		}
	}
	ssize_t *defer = NULL;
	struct files_owners o = { .outside = outside, .mnt = owner, .net = net_owner,
				  .pids = pids };
	int ret = files_open_shared(fl, &o, nf, t->gfd_base, &t->blobs, &t->gfd, &t->n_gfd,
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
	/* blobs.img, read by restore children (tmpfs contents) until their memory is
	 * rebuilt: up there too */
	if (t->blobs.fd >= 0) {
		int hb = fcntl(t->blobs.fd, F_DUPFD_CLOEXEC, t->fd_top);
		if (hb < 0)
			return pr_perror("restore: dup %s", BLOB_FILE);
		close(t->blobs.fd);
		t->blobs.fd = hb;
		t->fd_top = hb + 1;
	}
	ret = plan_cwds(t);
	if (ret)
		return ret;
	/* the roots of the cgroup namespaces, entered by their creators; each is created by
	 * a task that sits in the roots of the nearest namespace up its creator chain */
	for (size_t i = 0; i < t->n; i++) {
		if (!t->procs[i] || !t->procs[i]->tns->cgroupns)
			continue;
		const CgroupNs *from = NULL;
		ssize_t k = i ? rst_task_index(t->inv, rst_creator_of(t->inv, i)) : -1;
		for (size_t hops = 0; k >= 0 && !from && hops < t->n; hops++) {
			if (t->procs[k])
				from = t->procs[k]->tns->cgroupns;
			k = k ? rst_task_index(t->inv, rst_creator_of(t->inv, (size_t)k)) : -1;
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
	int ret = mem_shm_prepare(pl, np, &t->shm, &t->n_shm, &t->fd_top);
	if (!ret)
		ret = mem_ghost_prepare(pl, np, &t->ghosts, &t->n_ghosts, &t->fd_top);
	if (!ret)
		ret = mem_droot_prepare(pl, np, &t->ghosts, &t->n_ghosts, &t->fd_top);
	for (size_t i = 0; !ret && i < np; i++) {
		pl[i]->shm = t->shm;
		pl[i]->n_shm = t->n_shm;
		pl[i]->ghosts = t->ghosts;
		pl[i]->n_ghosts = t->n_ghosts;
	}
	return ret;
}

/* Before any process exists: stasis's own handles, the images, --join-ns, --helper, and
 * the pins to make. */
static int rst_setup(struct rst_tree *t)
{
	const struct restore_opts *o = t->opts;
	int ret = o->pin_dir ? ns_pins_open(&t->pins, o->pin_dir) : 0;
	if (!ret)
		ret = img_dir_open(&t->img, o->dir);
	if (!ret)
		ret = load_tree(t);
	if (!ret)
		ret = cgroup_remap(t->inv, t->procs, t->n);
	/* before any task, and so before any socket, exists */
	if (!ret)
		ret = netlock_restore(t->img.dfd, o->network_lock_none, o->tcp_close, &t->nl);
	for (size_t k = 0; !ret && k < o->n_join_ns; k++) {
		ret = ns_join_open(o->join_ns[k], &t->join_fd[k], &t->join_type[k]);
		if (!ret) {
			t->n_join = k + 1;
			t->net_joined |= t->join_type[k] == CLONE_NEWNET;
			ns_join_forget(t->procs[0]->tns, t->join_type[k]);
		}
	}
	if (!ret && o->helper_socket) {
		/* before any task exists: the channel is never inherited unmarked */
		ret = helper_connect(&t->helper, o->helper_socket);
		t->have_helper = !ret;
		if (ret)
			pr_errno(ret, "restore: cannot reach the stasis helper at %s", o->helper_socket);
		else
			helper_set_default(&t->helper);
	}
	/* pinned mount namespaces must get ids above stasis's own (src/ns/mnt.c) */
	uint64_t floor = o->pin_dir ? mnt_ns_id("/proc/self/ns/mnt") : 0;
	for (size_t i = 0; !ret && i < t->n; i++)
		if (t->procs[i])
			t->procs[i]->mntns_floor = floor;
	/* the namespaces each task is created into (the joined ones are forgotten now) */
	for (size_t i = 0; !ret && o->pin_dir && i < t->n; i++)
		if (t->procs[i])
			ret = ns_pins_add(&t->pins, t->procs[i]->tns, t->inv->tasks[i]->pid,
					  rst_new_pid_ns(t->inv, i));
	return ret;
}

/* Still before any process exists: what the tasks inherit from stasis (fds, shared
 * memory), the group helpers, the status pipe and the request channel. */
static int rst_plan(struct rst_tree *t)
{
	int ret = plan_fds(t);
	if (!ret)
		ret = plan_shm(t);
	if (ret)
		return ret;
	t->helpers = calloc(t->n + 1, sizeof(pid_t));
	t->helper_maker = calloc(t->n + 1, sizeof(ssize_t));
	if (!t->helpers || !t->helper_maker)
		return -ENOMEM;
	t->n_helpers = rst_orphan_groups(t, t->helpers, t->helper_maker);
	t->helpers_from_root = t->inv->tasks[0]->sid == t->inv->tasks[0]->pid;
	/* Packet mode: each report is one atomic message, whoever writes it. */
	int pipefd[2];
	if (pipe2(pipefd, O_CLOEXEC | O_DIRECT) < 0)
		return pr_perror("restore: pipe");
	t->status_wr = pipefd[1];
	t->status_rd = pipefd[0];
	int pr[2];
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, pr) < 0)
		return pr_perror("restore: socketpair");
	t->pidreq_rd = pr[0];
	t->pidreq_wr = pr[1];
	return 0;
}

/* Create the root (which creates the rest) and the helpers stasis creates, wait until
 * every task is ready, then drop stasis's copies of what they inherited. */
static int rst_create(struct rst_tree *t, pid_t *root)
{
	int ret;
	if (t->procs[0]->tns->time_ns) {
		/* the root is created in it; stasis's later children (group helpers) too */
		ret = ns_enter_time_for_children(t->procs[0]->tns->time_ns);
		if (ret)
			return ret;
	}
	fflush(NULL);
	pid_t r = rst_spawn_task(t, -1, 0, SIGCHLD, false,
				 ns_clone_flags(t->procs[0]->tns) |
					 (rst_new_pid_ns(t->inv, 0) ? CLONE_NEWPID : 0));
	if (r < 0)
		return (int)r;
	*root = r;
	if (!t->helpers_from_root) {
		/* in stasis's session, which the restored root joins */
		ret = rst_create_helpers(t, false);
		if (ret)
			return ret;
	}
	close(t->status_wr);
	t->status_wr = -1;
	ret = rst_wait_ready(t, t->status_rd);
	if (ret)
		return ret;
	/* The shared objects and descriptions now live in the tasks (the children still use
	 * the addresses: keep the list). */
	for (size_t k = 0; k < t->n_shm; k++)
		munmap((void *)(uintptr_t)t->shm[k].tmp, t->shm[k].size);
	for (uint32_t i = 0; i < t->n_gfd; i++)
		if (t->gfd[i] >= 0) {
			close(t->gfd[i]);
			t->gfd[i] = -1;
		}
	for (size_t i = 0; i < t->n; i++)
		if (t->procs[i])
			cgroup_ns_release(t->procs[i]);
	return 0;
}

/* --shell-job: the root joined stasis's session (and so its controlling terminal); a
 * root that led the terminal's foreground group at dump leads it again. */
static void shell_job_attach(const struct rst_tree *t)
{
	const TaskEntry *r = t->inv->tasks[0];
	if (!t->inv->shell_job || !t->inv->shell_job_fg || r->pgid != r->pid)
		return;
	int fd = open("/dev/tty", O_RDWR | O_NOCTTY | O_CLOEXEC);
	if (fd < 0) {
		pr_warn("restore: --shell-job: stasis has no terminal; the job stays in the "
			"background");
		return;
	}
	struct sigaction ign = { .sa_handler = SIG_IGN }, old;
	sigaction(SIGTTOU, &ign, &old);
	if (tcsetpgrp(fd, r->pid))
		pr_warn("restore: --shell-job: cannot put group %d in the foreground: %s", r->pid,
			strerror(errno));
	sigaction(SIGTTOU, &old, NULL);
	close(fd);
}

/* After a shell job in the foreground ended: stasis's own group back in the foreground. */
static void shell_job_detach(void)
{
	int fd = open("/dev/tty", O_RDWR | O_NOCTTY | O_CLOEXEC);
	if (fd < 0)
		return;
	struct sigaction ign = { .sa_handler = SIG_IGN }, old;
	sigaction(SIGTTOU, &ign, &old);
	(void)tcsetpgrp(fd, getpgrp());
	sigaction(SIGTTOU, &old, NULL);
	close(fd);
}

/* Wait (2 s at most) until thread @tid of @pid is in a state of @states. */
static bool wait_state(const struct rst_tree *t, pid_t pid, pid_t tid, const char *states)
{
	char name[64];
	snprintf(name, sizeof(name), "%d/task/%d/stat", pid, tid);
	for (int k = 0; k < 4000; k++) {
		_cleanup_free_ char *buf = read_file_at(t->proc_dfd, name, 4096, NULL);
		struct proc_stat st;
		if (!buf || proc_parse_stat(buf, &st) || strchr(states, st.state))
			return true;
		usleep(500);
	}
	return false;
}

/* A task stopped at dump got its stop signal while traced: once let go it stops before
 * running an instruction, but only when it is next scheduled. The restore ends once it
 * is stopped (bounded: a busy machine may take a while to run it), so that whoever looks
 * right after the restore sees it stopped. */
static void wait_stopped(const struct rst_tree *t, const struct rst_ctx *c)
{
	/* (a zombie leader's first live thread: the leader shows Z) */
	const Core *core = c->core;
	pid_t tid = core->threads[0]->exited ? core->threads[1]->tid : c->pid;
	if (!wait_state(t, c->pid, tid, "Tt"))
		pr_warn("restore: pid %d was stopped at dump and is not stopped yet", c->pid);
}

/* Every thread of @c (NULL: a zombie) let go; a zombie leader's main thread is already. */
static int detach_task(struct rst_ctx *c)
{
	int ret = 0;
	for (size_t k = 0; c && k < c->nr_trs && !ret; k++)
		ret = pt_detach(c->trs[k].tid, 0);
	if (c && !ret && !c->core->threads[0]->exited)
		ret = pt_detach(c->pid, 0);
	return ret;
}

static bool has_sigchld(SigInfo *const *q, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (q[i]->raw.len >= 4 && *(const int32_t *)q[i]->raw.data == SIGCHLD)
			return true;
	return false;
}

/* Was SIGCHLD pending in process @core at dump (its own queue or its main thread's)? */
static bool sigchld_was_pending(const Core *core)
{
	return has_sigchld(core->shared_pending, core->n_shared_pending) ||
	       has_sigchld(core->threads[0]->pending, core->threads[0]->n_pending);
}

/* Child @ci of @pi was stopped at dump and has stopped again (detached): the stop made a
 * report for its parent and raised SIGCHLD there, which the original parent had not (or
 * no longer). In the parent, still traced (parked with its final registers and mask: an
 * armed remote engine of its own, its vDSO's syscall), the report taken (waitid
 * WSTOPPED|WNOHANG) if the parent had collected it at dump, and SIGCHLD taken
 * (rt_sigtimedwait, no wait) unless one was pending in it at dump. */
static int settle_stop(const struct rst_tree *t, size_t pi, size_t ci)
{
	const struct rst_ctx *p = t->procs[pi], *c = t->procs[ci];
	const TaskEntry *pe = t->inv->tasks[pi], *ce = t->inv->tasks[ci];
	bool report = c->core->has_stop_collected && c->core->stop_collected;
	bool sigchld = !sigchld_was_pending(p->core);
	const Vma *vdso = NULL;
	for (size_t i = 0; i < p->mm->n_vmas && !vdso; i++)
		if (p->mm->vmas[i]->kind == VMA_KIND__VMA_VDSO)
			vdso = p->mm->vmas[i];
	if ((!report && !sigchld) || !vdso || p->core->threads[0]->exited)
		return 0;
	/* the child's id in its parent's pid namespace */
	pid_t cid = pe->n_nspid && pe->n_nspid <= ce->n_nspid ? ce->nspid[pe->n_nspid - 1]
							       : ce->pid;
	struct rsys r, *rp = &r;
	long res = 0;
	int ret = rsys_init(&r, p->pid, vdso->start, vdso->end - vdso->start);
	if (ret)
		return ret;
	/* armed: every signal blocked while it works (the SIGCHLD is pending already) */
	ret = rsys_arm(&rp, 1, 4096);
	if (!ret && report) {
		ret = rsys_call(&r, SYS_waitid, P_PID, (uint64_t)cid, r.scratch, WSTOPPED | WNOHANG,
				0, 0, &res);
		if (!ret && res < 0)
			pr_warn("restore: pid %d: the stop of its child %d was not taken: %s",
				p->pid, c->pid, strerror((int)-res));
	}
	if (!ret && sigchld) {
		const uint64_t set = 1ULL << (SIGCHLD - 1);
		const struct timespec zero = { 0, 0 };
		ret = rsys_poke(&r, r.scratch + 512, &set, sizeof(set)) ?:
		      rsys_poke(&r, r.scratch + 528, &zero, sizeof(zero)) ?:
		      rsys_call(&r, SYS_rt_sigtimedwait, r.scratch + 512, r.scratch,
				r.scratch + 528, sizeof(set), 0, 0, &res);
	}
	int fret = rsys_fini(&r);
	return ret ? ret : fret;
}

/* The main thread of a zombie leader goes first, the other threads still held: every
 * signal blocked, it runs to its exit syscall's entry, gets its own blocked mask there
 * (no return to user space follows, so no signal can reach it) and is let go into the
 * exit. The tree runs with it a zombie, as it was. */
static int let_zleaders_exit(const struct rst_tree *t)
{
	for (size_t i = 0; i < t->n; i++) {
		const struct rst_ctx *c = t->procs[i];
		if (!c || !c->core->threads[0]->exited)
			continue;
		uint64_t mask = c->core->threads[0]->blocked &
				~((1ULL << (SIGKILL - 1)) | (1ULL << (SIGSTOP - 1)));
		int status = 0;
		int ret = ptrace(PTRACE_SYSCALL, c->pid, NULL, NULL) < 0
				  ? pr_perror("restore: let the main thread of pid %d go", c->pid)
				  : pt_wait(c->pid, &status, PT_WAIT_TIMEOUT_MS);
		if (!ret && (!WIFSTOPPED(status) || WSTOPSIG(status) != (SIGTRAP | 0x80))) {
			pr_err("restore: the main thread of pid %d stopped with 0x%x, not at its exit",
			       c->pid, status);
			ret = -EIO;
		}
		if (!ret && ptrace(PTRACE_SETSIGMASK, c->pid, (void *)sizeof(mask), &mask) < 0)
			ret = pr_perror("restore: blocked signals of the main thread of %d", c->pid);
		if (!ret)
			ret = pt_detach(c->pid, 0);
		if (ret)
			return ret;
		if (!wait_state(t, c->pid, c->pid, "ZX")) {
			pr_err("restore: the main thread of pid %d (a zombie thread-group leader) did "
			       "not exit",
			       c->pid);
			return -ETIMEDOUT;
		}
	}
	return 0;
}

/* Every task ready: rebuild each from outside (the remote stage), then, every task
 * rebuilt, the last settings and let them go. */
static int rst_rebuild_tree(struct rst_tree *t)
{
	uint64_t vdso = 0, vdso_len = 0;
	int ret = self_vdso(&vdso, &vdso_len);
	/* every socket exists again: the connections between the tree's own are let through
	 * before the remote stage replays segments over them */
	if (!ret)
		ret = netlock_restore_inner(t->nl);
	if (!ret && t->opts->lazy_pages)
		ret = mem_lazy_start(t->procs, t->n, &t->lazy);
	for (size_t i = 0; i < t->n && t->lazy; i++)
		if (t->procs[i])
			t->procs[i]->lazy = t->lazy;
	for (size_t i = 0; i < t->n && !ret; i++)
		if (t->procs[i])
			ret = rebuild(t->procs[i], vdso, vdso_len);
	/* service fds last: a task sharing its fd table with another would close the
	 * other's before its memory was rebuilt */
	for (size_t i = 0; i < t->n && !ret; i++)
		if (t->procs[i])
			ret = close_service_fds(t->procs[i]);
	if (!ret)
		ret = join_groups(t);
	/* every task and veth end exists: the kernel-made IPv6 addresses are back before the
	 * tree runs */
	for (size_t i = 0; i < t->n && !ret; i++)
		if (t->procs[i] && t->procs[i]->tns->net)
			ret = net_wait_ll(t->procs[i]);
	if (!ret)
		ret = stop_helpers(t, true);
	/* Every task exists, still frozen and dying with stasis: a failure from here on
	 * leaves nothing behind (the pins made are undone by the caller). */
	if (!ret && t->opts->pin_dir)
		ret = ns_pins_make(&t->pins, t->proc_dfd);
	for (size_t i = 0; i < t->n && !ret; i++)
		if (t->procs[i])
			ret = res_restore(STAGE_FINAL, t->procs[i]);
	if (!ret)
		ret = fault_at("restore:resume", NULL);
	if (ret)
		return ret;
	/* every task rebuilt, none running yet: the runtime's last word before they run */
	const char *points[] = { "post-restore", "network-unlock", "pre-resume" };
	for (size_t k = 0; k < ARRAY_SIZE(points) && !ret; k++)
		ret = cr_notify(t->opts->notify, t->opts->notify_arg, points[k], t->procs[0]->pid);
	if (ret)
		return ret;
	ret = let_zleaders_exit(t);
	if (ret)
		return ret;
	/* tasks that were stopped at dump are stopped again by the same signal (their parent's
	 * waitpid reports it): queued while they are still traced, so that they stop before
	 * running an instruction once detached */
	for (size_t i = 0; i < t->n; i++)
		if (t->procs[i] && t->procs[i]->core->stopped)
			kill(t->procs[i]->pid, t->procs[i]->core->has_stop_signal
						       ? (int)t->procs[i]->core->stop_signal
						       : SIGSTOP);
	shell_job_attach(t);
	/* stopped tasks whose parent is a live task of the tree first, children before
	 * parents: detached, stopped again, their parent (still traced) settled */
	_cleanup_free_ bool *done = calloc(t->n ? t->n : 1, sizeof(*done));
	if (!done)
		return -ENOMEM;
	for (size_t i = t->n; i-- > 0 && !ret;) {
		struct rst_ctx *c = t->procs[i];
		ssize_t pi = c && c->core->stopped ? rst_task_index(t->inv, t->inv->tasks[i]->ppid)
						   : -1;
		if (pi < 0 || !t->procs[pi] || done[pi])
			continue;
		ret = detach_task(c);
		done[i] = true;
		if (!ret) {
			wait_stopped(t, c);
			ret = settle_stop(t, (size_t)pi, i);
		}
	}
	for (size_t i = 0; i < t->n && !ret; i++)
		if (!done[i])
			ret = detach_task(t->procs[i]);
	for (size_t i = 0; i < t->n && !ret; i++)
		if (t->procs[i] && t->procs[i]->core->stopped && !done[i])
			wait_stopped(t, t->procs[i]);
	return ret;
}

/* A failed restore: kill and reap every task created so far, undo the pins. */
static void rst_undo(struct rst_tree *t, pid_t root)
{
	int status;
	if (t->helpers)
		(void)stop_helpers(t, false);
	if (root > 0) {
		/* Every other task dies with its parent (PR_SET_PDEATHSIG) or with us
		 * (PTRACE_O_EXITKILL); kill the ones frozen so far right away too. */
		for (size_t i = t->n; i-- > 1;)
			if (t->procs && t->procs[i] && t->procs[i]->rs_ready)
				kill(t->procs[i]->pid, SIGKILL);
		kill(root, SIGKILL);
		/* Reap every child and tracee, not just the root: a root that is a pid
		 * namespace's init finishes exiting only once every task of its namespace is
		 * released, and the tasks we trace are released by our wait. */
		for (;;) {
			pid_t r = waitpid(-1, &status, __WALL);
			if (r == root || (r < 0 && errno != EINTR))
				break;
		}
		/* the others we made may take a moment to die (killed through their parent
		 * or our exit): gone, or zombies of another parent, before we report the
		 * failure (only tasks we seized: a pid not made yet may be anyone's) */
		for (int ms = 0; ms < 5000; ms += 5) {
			bool alive = pt_task_running(root);
			for (size_t i = 1; i < t->n && !alive; i++)
				alive = t->procs && t->procs[i] && t->procs[i]->rs_ready &&
					pt_task_running(t->procs[i]->pid);
			if (!alive)
				break;
			while (waitpid(-1, &status, __WALL | WNOHANG) > 0)
				;
			usleep(5000);
		}
	}
	ns_pins_undo(&t->pins);
}

static void rst_close(struct rst_tree *t)
{
	int *fds[] = { &t->status_rd, &t->status_wr, &t->proc_dfd, &t->root_fd, &t->pidreq_rd,
		       &t->pidreq_wr };
	free_tree(t);
	for (size_t k = 0; k < ARRAY_SIZE(fds); k++)
		if (*fds[k] >= 0) {
			close(*fds[k]);
			*fds[k] = -1;
		}
	helper_set_default(NULL);
	helper_close(&t->helper);
}

/* The stats of a restore (struct cr_stats): the time the tasks took to be created and to
 * be rebuilt, the pages copied into them. */
static void restore_stats(const struct rst_tree *t, struct cr_stats *st, uint64_t fork_ns,
			  uint64_t rebuild_ns)
{
	memset(st, 0, sizeof(*st));
	st->forking_us = fork_ns / 1000 > UINT32_MAX ? UINT32_MAX : (uint32_t)(fork_ns / 1000);
	st->restore_us =
		rebuild_ns / 1000 > UINT32_MAX ? UINT32_MAX : (uint32_t)(rebuild_ns / 1000);
	for (size_t i = 0; i < t->n; i++) {
		const Mm *mm = t->procs[i] ? t->procs[i]->mm : NULL;
		for (size_t r = 0; mm && r < mm->n_pages; r++)
			st->pages_restored += mm->pages[r]->nr_pages;
	}
}

int restore_run(const struct restore_opts *o)
{
	struct rst_tree t = { .opts = o, .status_wr = -1, .status_rd = -1, .go_rd = -1,
			      .dumpable_wr = -1, .pidreq_rd = -1, .pidreq_wr = -1,
			      .helper = HELPER_INIT };
	pid_t root = -1;
	int ret, status;

	t.img.dfd = -1;
	t.blobs.fd = -1;
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
	ret = cr_notify(o->notify, o->notify_arg, "pre-restore", 0);
	if (!ret)
		ret = rst_setup(&t);
	if (!ret)
		ret = rst_plan(&t);
	uint64_t t0 = now_ns();
	if (!ret)
		ret = rst_create(&t, &root);
	uint64_t t1 = now_ns(); /* every task ready */
	if (!ret)
		ret = cr_notify(o->notify, o->notify_arg, "setup-namespaces", root);
	if (!ret)
		ret = cr_notify(o->notify, o->notify_arg, "post-setup-namespaces", root);
	uint64_t t2 = now_ns();
	if (!ret)
		ret = rst_rebuild_tree(&t);
	if (!ret && t.lazy) {
		ret = mem_lazy_commit(t.lazy); /* the page server serves on alone */
		t.lazy = NULL;
	}
	pid_t want = t.inv ? t.inv->tasks[0]->pid : 0;
	if (!ret)
		pr_info("restore: %zu tasks of pid %d restored in %.3f ms", t.n, want,
			(double)(now_ns() - t2) / 1e6);
	if (!ret && o->stats)
		restore_stats(&t, o->stats, t1 - t0, now_ns() - t2);
	if (!ret && o->pidfile) {
		char buf[32];
		int n = snprintf(buf, sizeof(buf), "%d\n", want);
		ret = write_file(o->pidfile, buf, (size_t)n);
		if (ret)
			pr_errno(ret, "restore: write pidfile %s", o->pidfile);
	}
	if (ret) {
		mem_lazy_abort(t.lazy);
		rst_undo(&t, root);
		netlock_restore_failed(t.nl, o->dir);
		netlock_free(t.nl);
		rst_close(&t);
		return -1000 + ret; /* < 0: stasis failed (not the task) */
	}
	/* the tree runs */
	netlock_restore_done(t.nl, o->network_lock_none, t.procs, t.n);
	netlock_free(t.nl);
	rst_close(&t);
	/* the tree runs: too late to fail the restore */
	if (cr_notify(o->notify, o->notify_arg, "post-resume", root))
		pr_warn("restore: the post-resume notification failed; the tree runs on");
	if (o->detach)
		return 0;
	for (;;) {
		pid_t r = waitpid(root, &status, 0);
		if (r == root) {
			if (o->shell_job)
				shell_job_detach();
			return exit_status_of(status);
		}
		if (r < 0 && errno != EINTR) {
			pr_perror("restore: wait for %d", root);
			return 1;
		}
	}
}
