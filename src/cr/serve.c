/* Restore: what stasis does for the tasks while they create each other and set
 * themselves up — pid-namespace cursors and id maps they may not write, files of mount
 * namespaces the tree creates (the requests of src/cr/pidreq.c) — and the wait for every
 * task's report. */
#include <fcntl.h>
#include <pthread.h>
#include <time.h>
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
#include "cr/resource.h"
#include "cr/restore_int.h"
#include "files/files.h"
#include "ns/cgroup.h"
#include "ns/mnt.h"
#include "ns/nsrun.h"
#include "ns/ns.h"
#include "ns/userns.h"
#include "sys/syscalls.h"
#include "task/task.h"
#include "helper/client.h"

static bool pid_in_image(void *arg, pid_t pid)
{
	const struct rst_tree *t = arg;
	return rst_task_index(t->inv, pid) >= 0;
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
int rst_stasis_write_maps(void *arg, pid_t pid)
{
	struct rst_tree *t = arg;
	ssize_t j = rst_task_index(t->inv, pid);
	const UserNs *u = j >= 0 && t->procs[j] ? t->procs[j]->tns->userns : NULL;
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

/* Stasis: ns_last_pid at the @levels outer levels of task @j so that the next fork (or
 * clone of a thread) there gets @ids (outermost first), innermost first (the fork that
 * writes an inner level takes a pid at every level above it). Its own level through the
 * helper when stasis may not write it (no CAP_CHECKPOINT_RESTORE there). */
static int prepare_levels(struct rst_tree *t, size_t j, const pid_t *ids, size_t levels)
{
	for (size_t k = levels - 1; k >= 1; k--) {
		ssize_t init = rst_level_init(t, j, k);
		char path[64];
		if (init < 0)
			return -EINVAL;
		snprintf(path, sizeof(path), "%d/ns/pid", t->inv->tasks[init]->pid);
		_cleanup_close_ int nsfd = openat(t->proc_dfd, path, O_RDONLY | O_CLOEXEC);
		if (nsfd < 0)
			return pr_perror("restore: open /proc/%s", path);
		int ret = pidreq_set_last_pid(nsfd, ids[k] - 1);
		if (ret)
			return pr_errno(ret, "restore: ns_last_pid for pid %d (level %zu: %d)",
					ids[0], k, ids[k]);
	}
	int ret = pidreq_set_last_pid(-1, ids[0] - 1);
	if ((ret == -EPERM || ret == -EACCES) && t->have_helper) {
		ret = helper_tree(t);
		if (!ret)
			ret = helper_set_last_pid(&t->helper, -1, ids[0] - 1);
	}
	if (ret)
		return pr_errno(ret, "restore: write ns_last_pid for pid %d", ids[0]);
	return 0;
}

/* Fault injection (tests): a thread of stasis takes the pid just prepared for 50 ms, the
 * way a process of the machine would in the window before the creator's clone. */
static void *pid_taker(void *arg)
{
	(void)arg;
	struct timespec ts = { 0, 50 * 1000000L };
	nanosleep(&ts, NULL);
	return NULL;
}

static void maybe_take_pid(void)
{
	pthread_t th;
	if (fault_at("restore:take-pid", NULL) && !pthread_create(&th, NULL, pid_taker, NULL)) {
		log_reset_first_error();
		pthread_detach(th);
	}
}

/* The ids task @e's pids (@op PIDREQ_LAST_SID: its session helper's; PIDREQ_LAST_PGID:
 * its group helper's; PIDREQ_LAST_FREE: its helper's, above every id of the image, in
 * @buf) must have, outermost first, or
 * NULL when the image has none for @levels levels. */
static const int32_t *ids_of(const Inventory *inv, const TaskEntry *e, int levels, int op,
			     int32_t *buf)
{
	size_t nlev = e->n_nspid ? e->n_nspid : 1;
	if (levels < 1 || (size_t)levels > nlev || levels > PROC_MAX_NS_LEVEL ||
	    (levels > 1 && !e->n_nspid))
		return NULL;
	if (op == PIDREQ_LAST_FREE) {
		for (int k = 0; k < levels; k++)
			buf[k] = rst_image_top_id(inv, (size_t)k) + 1;
		return buf;
	}
	if (op == PIDREQ_LAST_SID)
		return e->via_session && e->n_nssid == nlev ? e->nssid : NULL;
	if (op == PIDREQ_LAST_PGID) /* (a group whose leader is gone: known at every level) */
		return e->n_nspgid == nlev && e->nspgid[nlev - 1] > 0 &&
				       rst_task_index(inv, e->pgid) < 0
			       ? e->nspgid
			       : NULL;
	return e->n_nspid ? e->nspid : &e->pid;
}

static int stasis_prepare_pids(void *arg, pid_t pid, int levels, int op)
{
	struct rst_tree *t = arg;
	int32_t buf[PROC_MAX_NS_LEVEL];
	ssize_t j = rst_task_index(t->inv, pid);
	const int32_t *ids = j >= 0 ? ids_of(t->inv, t->inv->tasks[j], levels, op, buf) : NULL;
	if (!ids)
		return -EINVAL;
	int ret = prepare_levels(t, (size_t)j, ids, (size_t)levels);
	if (!ret)
		maybe_take_pid();
	return ret;
}

int rst_thread_levels(void *tree, pid_t pid, const int32_t *nstid, size_t n)
{
	struct rst_tree *t = tree;
	ssize_t j = rst_task_index(t->inv, pid);
	if (j < 0)
		return -EINVAL;
	const TaskEntry *e = t->inv->tasks[j];
	size_t nlev = e->n_nspid ? e->n_nspid : 1;
	size_t skip = rst_unsettable_levels(t, j, (size_t)j);
	if (!skip)
		return 0;
	if (n != nlev || skip > nlev) {
		pr_err("restore: a thread of pid %d has %zu pid-namespace levels, its process %zu",
		       pid, n, nlev);
		return -EINVAL;
	}
	int ret = prepare_levels(t, (size_t)j, nstid, skip);
	if (!ret)
		maybe_take_pid();
	return ret ? ret : (int)skip;
}

static bool stasis_check_pids(void *arg, pid_t pid, int levels, int op, int pidfd)
{
	struct rst_tree *t = arg;
	int32_t buf[PROC_MAX_NS_LEVEL];
	ssize_t j = rst_task_index(t->inv, pid);
	const int32_t *ids = j >= 0 ? ids_of(t->inv, t->inv->tasks[j], levels, op, buf) : NULL;
	int got[PROC_MAX_NS_LEVEL];
	size_t n = 0;
	if (!ids || pidreq_pidfd_nspid(pidfd, got, PROC_MAX_NS_LEVEL, &n) || n < (size_t)levels)
		return false;
	for (size_t k = 0; k < (size_t)levels; k++) {
		pid_t w = ids[k];
		/* (a helper's may be any id above the image's) */
		if (op == PIDREQ_LAST_FREE ? got[k] < w : got[k] != w) {
			pr_info("restore: pid %d was taken meanwhile (the child got %d at level %zu): "
				"retry",
				w, got[k], k);
			return false;
		}
	}
	return true;
}

Files **rst_tree_files(const struct rst_tree *t, size_t *nf)
{
	Files **fl = calloc(t->n ? t->n : 1, sizeof(*fl));
	*nf = 0;
	for (size_t i = 0; fl && i < t->n; i++)
		if (t->procs[i])
			fl[(*nf)++] = t->procs[i]->files;
	return fl;
}

/* The task creating the mount (@net: network) namespace task @i is in, if the tree
 * creates it; -1 if not (stasis's, or one joined). */
ssize_t rst_ns_creator(const struct rst_tree *t, size_t i, bool net)
{
	const Core *c = t->procs[i] ? t->procs[i]->core : NULL;
	uint64_t id = !c || !c->ns ? 0 : net ? c->ns->net : c->ns->mnt;
	for (size_t k = 0; id && k < t->n; k++) {
		const struct rst_ctx *o = t->procs[k];
		/* (a network namespace joined with --join-ns: the root enters it first) */
		bool made = net ? o && (o->tns->net || (k == 0 && t->net_joined))
				: o && o->tns->mnt;
		if (made && o->core->ns && (net ? o->core->ns->net : o->core->ns->mnt) == id)
			return (ssize_t)k;
	}
	return -1;
}

/* The members of a group just made for creator @k (those of @g that @t->gfd lacks and
 * @is_group says are left to it) sent on @sock, each as (its id, its fd) and marked in
 * @sent; every fd made closed. @ret: the making's result (nothing sent on failure). */
static int send_made(const struct rst_tree *t, Files *const *fl, size_t nf, int *g, ssize_t k,
		     int sock, bool *sent, int ret,
		     bool (*is_group)(Files *const *, size_t, uint32_t))
{
	for (uint32_t i = 0; i < t->n_gfd; i++) {
		if (g[i] < 0 || (t->gfd && g[i] == t->gfd[i]))
			continue;
		if (!ret && t->defer[i] == k && is_group(fl, nf, i)) {
			ret = pidreq_send(sock, PIDREQ_ANSWER, (int32_t)i, 0, g[i]);
			sent[i] = true;
		}
		close(g[i]);
	}
	return ret;
}

/* Stasis: the group of unix sockets of description @id, which spans processes of the
 * network namespace task @pid (index @k) created, made in that namespace and its members
 * sent on @sock, each as (its id, its fd); @sent marks them (a member is in one group).
 * What the group carries in flight is in its queues: what was made for it here is closed. */
static int send_group(const struct rst_tree *t, Files *const *fl, size_t nf, uint32_t id,
		      pid_t pid, ssize_t k, int sock, bool *sent, int agent, pid_t agent_pid)
{
	char path[64];
	if (sent[id])
		return 0;
	snprintf(path, sizeof(path), "%d/ns/net", pid);
	_cleanup_close_ int ns = openat(t->proc_dfd, path, O_RDONLY | O_CLOEXEC);
	_cleanup_free_ int *g = malloc(t->n_gfd * sizeof(int));
	if (ns < 0 || !g)
		return ns < 0 ? pr_perror("restore: open /proc/%s", path) : -ENOMEM;
	/* the creator's pid and user namespaces, its tasks' (for the peer credentials of the
	 * unix sockets: made by children of stasis born there) */
	_cleanup_close_ int pidns = -1, userns = -1;
	if (ns_open_other(t->proc_dfd, pid, "pid", "restore", &pidns) ||
	    ns_open_other(t->proc_dfd, pid, "user", "restore", &userns))
		return -EIO;
	/* (what the group carries in flight and stasis made for the tree is that) */
	for (uint32_t i = 0; i < t->n_gfd; i++)
		g[i] = t->gfd ? t->gfd[i] : -1;
	int ret = files_make_deferred(fl, nf, id,
				      &(struct fd_ns){ ns, pidns, userns, agent, agent_pid }, g,
				      t->gfd_base, &t->blobs);
	return send_made(t, fl, nf, g, k, sock, sent, ret, files_deferred_group);
}

/* Stasis: the group of description @id left to the creator (index @k) of a mount
 * namespace (a pty pair of its devpts instance), made in its rebuilt tree @rootfd and
 * sent on @sock like send_group's. */
static int send_root_group(const struct rst_tree *t, Files *const *fl, size_t nf, uint32_t id,
			   int rootfd, ssize_t k, int sock, bool *sent)
{
	if (sent[id])
		return 0;
	_cleanup_free_ int *g = malloc(t->n_gfd * sizeof(int));
	if (!g)
		return -ENOMEM;
	for (uint32_t i = 0; i < t->n_gfd; i++)
		g[i] = t->gfd ? t->gfd[i] : -1;
	int ret = files_make_in_root(fl, nf, id, rootfd, g, t->gfd_base, &t->blobs);
	return send_made(t, fl, nf, g, k, sock, sent, ret, files_deferred_root_group);
}

/* Stasis: the descriptions deferred to the mount namespace task @pid created (and the
 * cwds of its tasks in user namespaces), opened in its rebuilt tree through
 * /proc/PID/root (RESOLVE_IN_ROOT: "/" is that tree's root) and sent on @sock. */
static void stasis_open_files(void *arg, pid_t pid, int sock)
{
	struct rst_tree *t = arg;
	ssize_t k = rst_task_index(t->inv, pid);
	char path[64];
	int ret = 0;
	size_t nf = 0;
	_cleanup_free_ Files **fl = rst_tree_files(t, &nf);
	_cleanup_free_ bool *sent = calloc(t->n_gfd ? t->n_gfd : 1, sizeof(bool));
	snprintf(path, sizeof(path), "%d/root", pid);
	_cleanup_close_ int rootfd = openat(t->proc_dfd, path, O_PATH | O_DIRECTORY | O_CLOEXEC);
	/* first, the creator's agent for the peer credentials of unix sockets, if any:
	 * {ANSWER, 1, its pid there} with its socket, else {ANSWER, 0, 0} */
	int32_t has_agent = 0, agent_pid = 0;
	_cleanup_close_ int agent = -1;
	if (pidreq_recv(sock, NULL, &has_agent, &agent_pid, &agent) ||
	    (has_agent && agent < 0))
		ret = pr_errno(-EPROTO, "restore: the creator of pid %d sent no word of its agent",
			       pid);
	else if (!fl)
		ret = -ENOMEM;
	else if (k < 0)
		ret = -EINVAL;
	else if (rootfd < 0)
		ret = pr_perror("restore: open /proc/%s", path);
	for (uint32_t id = 1; !ret && t->defer && id < t->n_gfd; id++) {
		if (t->defer[id] != k || files_deferred_netns(fl, nf, id))
			continue; /* (a socket: its creator makes it) */
		if (files_deferred_group(fl, nf, id)) {
			ret = sent ? send_group(t, fl, nf, id, pid, k, sock, sent, agent,
						agent_pid)
				   : -ENOMEM;
			continue;
		}
		if (files_deferred_root_group(fl, nf, id)) {
			ret = sent ? send_root_group(t, fl, nf, id, rootfd, k, sock, sent) : -ENOMEM;
			continue;
		}
		int fd = files_open_deferred(fl, nf, id, rootfd, &t->blobs);
		ret = fd < 0 ? fd : pidreq_send(sock, PIDREQ_ANSWER, (int32_t)id, 0, fd);
		if (fd >= 0)
			close(fd);
	}
	for (size_t j = 0; !ret && j < t->n; j++) {
		struct rst_ctx *c = t->procs[j];
		if (!c || !c->cwd_deferred || rst_mnt_creator(t, j) != k)
			continue;
		struct open_how how = { .flags = O_PATH | O_DIRECTORY | O_CLOEXEC,
					.resolve = RESOLVE_IN_ROOT };
		int fd = c->core->cwd_deleted ? misc_deleted_cwd(rootfd, c->core)
					      : sys_openat2(rootfd, c->core->cwd, &how, sizeof(how));
		if (fd < 0 && c->core->cwd_deleted)
			ret = fd;
		else if (fd < 0)
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

/* Stasis: a socket buffer a task may not force (SO_*BUFFORCE needs CAP_NET_ADMIN of the
 * initial user namespace): forced here, or through the helper. */
static int stasis_sockbuf(void *arg, int sk, int opt, int size)
{
	struct rst_tree *t = arg;
	int force = opt == SO_SNDBUF ? SO_SNDBUFFORCE : SO_RCVBUFFORCE;
	if (!setsockopt(sk, SOL_SOCKET, force, &size, sizeof(size)))
		return 0;
	int ret = -errno;
	if (ret == -EPERM && t->have_helper && !helper_tree(t))
		ret = helper_sockbuf_force(&t->helper, sk, opt == SO_SNDBUF ? size : -1,
					   opt == SO_RCVBUF ? size : -1);
	return ret;
}

/* Every task reports once. The first error wins. */
int rst_wait_ready(struct rst_tree *t, int rd)
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
				.write_maps = rst_stasis_write_maps,
				.open_files = stasis_open_files,
				.sockbuf = stasis_sockbuf,
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
			if (m.msg[0])
				pr_err("%s", m.msg);
			else
				pr_errno(m.err, "pid %d failed while setting itself up", m.pid);
			return m.err < 0 ? m.err : -EIO;
		}
		ready++;
	}
	return 0;
}
