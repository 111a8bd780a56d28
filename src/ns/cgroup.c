/* Cgroups: membership and cgroup namespaces.
 *
 * Membership: every task's /proc/PID/cgroup line per hierarchy (cgroup v2 and the v1
 * hierarchies mounted here), paths as the dumper sees them (relative to its cgroup
 * namespace's root). At restore a task whose cgroup differs from the one it was created
 * in is moved by the restorer, through the hierarchy's mount point, the cgroup created
 * if missing (its settings are not carried).
 *
 * Cgroup namespaces: a task whose namespace differs from its parent's (the root's: from
 * the dumper's) created it; the namespace's root in every hierarchy is what a task in it
 * sees as "/". /proc/PID/cgroup is rendered relative to the READER's namespace, so the
 * dumper reads the full path (host-relative) and the task itself, with remote syscalls,
 * reads /proc/self/cgroup relative to its namespace root: the root is the full path
 * minus that suffix. The task reads it rather than a helper that setns()es into the
 * namespace because joining a cgroup namespace needs CAP_SYS_ADMIN both in the
 * namespace's owner (a user namespace of the tree, maybe) and in the dumper's own user
 * namespace, which a dumper holding only CAP_CHECKPOINT_RESTORE does not have; the
 * frozen task needs nothing (it only needs a /proc in its mount namespace).
 *
 * Restore: the creator's restore child writes "0" (itself) into each root's
 * cgroup.procs through a file the restorer opened before any process existed (the
 * kernel checks a migration against the opener's credentials and cgroup namespace, so
 * this works inside a new user namespace too), unshares CLONE_NEWCGROUP (after entering
 * its user namespace, so the owner is the same as at dump), and is moved into its own
 * cgroups only at the end, with the membership of every other task. */
#include <fcntl.h>
#include <linux/nsfs.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "ns/cgroup.h"
#include "core/log.h"
#include "cr/resource.h"

#define CGNS_READ_MAX (48u * 1024) /* /proc/self/cgroup read in the task's scratch */
#define CGNS_SCR_BUF 256           /* offset of the buffer in scratch (path before it) */

bool cgroup_path_is_clean(const char *p)
{
	return path_is_clean(p, PROC_MAX_CGROUP_PATH, true);
}

int cgroup_ns_root(const char *outside, const char *inside, char *out, size_t len)
{
	if (!cgroup_path_is_clean(outside))
		return -EINVAL;
	if (!strcmp(inside, "/..") || str_starts(inside, "/../"))
		return -ERANGE;
	if (!cgroup_path_is_clean(inside))
		return -EINVAL;
	size_t lo = strlen(outside), li = strlen(inside);
	size_t keep;
	if (li == 1)
		keep = lo; /* at the namespace's root */
	else if (lo >= li && !strcmp(outside + lo - li, inside))
		keep = lo - li; /* the suffix starts with '/': a component boundary */
	else
		return -EINVAL;
	if (!keep) /* the root of the hierarchy */
		keep = 1;
	if (keep >= len)
		return -ENAMETOOLONG;
	memcpy(out, outside, keep);
	out[keep] = '\0';
	return 0;
}

bool cgroup_opts_have(const char *opts, const char *controllers)
{
	char o[PROC_MAX_CGROUP_CTRL * 2 + 8], want[PROC_MAX_CGROUP_CTRL + 1];
	if (!controllers[0] || strlen(controllers) >= sizeof(want) ||
	    strlen(opts) + 3 > sizeof(o))
		return false;
	snprintf(o, sizeof(o), ",%s,", opts);
	snprintf(want, sizeof(want), "%s", controllers);
	char *save = NULL;
	for (char *w = strtok_r(want, ",", &save); w; w = strtok_r(NULL, ",", &save)) {
		char pat[PROC_MAX_CGROUP_CTRL + 3];
		snprintf(pat, sizeof(pat), ",%s,", w);
		if (!strstr(o, pat))
			return false;
	}
	return true;
}

/* Does a cgroup mount (@fstype cgroup or cgroup2, superblock options @opts) show the
 * hierarchy with @controllers ("" for v2)? */
static bool mount_shows(const char *fstype, const char *opts, const char *controllers)
{
	return !strcmp(fstype, "cgroup2") ? !controllers[0] : cgroup_opts_have(opts, controllers);
}

/* ---- membership ------------------------------------------------------------------- */

/* The process's entry in hierarchy @h, or NULL. */
static const CgroupEntry *proc_entry(const Core *core, uint32_t h)
{
	for (size_t i = 0; i < core->n_cgroups; i++)
		if (core->cgroups[i]->hierarchy == h)
			return core->cgroups[i];
	return NULL;
}

/* The hierarchies where thread @k of @c is in other cgroups than its process (@core's
 * cgroups, from /proc/PID/cgroup): a threaded v2 subtree, a v1 hierarchy's `tasks`
 * file. Recorded in core->thread_cgroups; the restore moves the thread there. */
static int thread_cgroups(struct dump_ctx *c, size_t k, const char *mine)
{
	char path[64];
	snprintf(path, sizeof(path), "task/%d/cgroup", c->thr[k].tid);
	_cleanup_free_ char *t = read_file_at(c->procfd, path, 1 << 16, NULL);
	if (!t)
		return pr_perror("cgroup: read /proc/%d/%s", c->pid, path);
	if (!strcmp(t, mine))
		return 0;
	struct proc_cgroup *v;
	size_t n;
	int ret = proc_parse_cgroup(t, &v, &n);
	if (ret) {
		pr_err("cgroup: malformed /proc/%d/%s", c->pid, path);
		return ret;
	}
	Core *core = c->core;
	ThreadCgroups *tc = calloc(1, sizeof(*tc));
	ThreadCgroups **a = realloc(core->thread_cgroups,
				    (core->n_thread_cgroups + 1) * sizeof(*a));
	if (a)
		core->thread_cgroups = a;
	if (tc)
		thread_cgroups__init(tc);
	if (!tc || !a || !(tc->cgroups = calloc(n + 1, sizeof(*tc->cgroups)))) {
		free(tc);
		proc_cgroups_free(v, n);
		return -ENOMEM;
	}
	tc->thread = (uint32_t)k;
	a[core->n_thread_cgroups++] = tc;
	ret = n == core->n_cgroups ? 0 : -EIO;
	for (size_t i = 0; i < n && !ret; i++) {
		const CgroupEntry *pe = proc_entry(core, v[i].hierarchy);
		if (!pe) {
			ret = -EIO;
			break;
		}
		if (!strcmp(pe->path, v[i].path))
			continue;
		CgroupEntry *e = malloc(sizeof(*e));
		if (!e) {
			ret = -ENOMEM;
			break;
		}
		cgroup_entry__init(e);
		tc->cgroups[tc->n_cgroups++] = e;
		e->hierarchy = v[i].hierarchy;
		e->controllers = steal_ptr(&v[i].controllers);
		e->path = steal_ptr(&v[i].path);
	}
	proc_cgroups_free(v, n);
	if (ret == -EIO)
		pr_err("cgroup: thread %d of pid %d is in other cgroup hierarchies than its "
		       "process", c->thr[k].tid, c->pid);
	return ret;
}

int cgroup_dump(struct dump_ctx *c)
{
	_cleanup_free_ char *buf = read_file_at(c->procfd, "cgroup", 1 << 16, NULL);
	if (!buf)
		return pr_perror("cgroup: read /proc/%d/cgroup", c->pid);
	struct proc_cgroup *v;
	size_t n;
	int ret = proc_parse_cgroup(buf, &v, &n);
	if (ret) {
		pr_err("cgroup: malformed /proc/%d/cgroup", c->pid);
		return ret;
	}
	c->core->cgroups = calloc(n + 1, sizeof(CgroupEntry *));
	if (!c->core->cgroups)
		ret = -ENOMEM;
	for (size_t i = 0; i < n && !ret; i++) {
		CgroupEntry *e = malloc(sizeof(*e));
		if (!e) {
			ret = -ENOMEM;
			break;
		}
		cgroup_entry__init(e);
		c->core->cgroups[c->core->n_cgroups++] = e;
		e->hierarchy = v[i].hierarchy;
		e->controllers = steal_ptr(&v[i].controllers);
		e->path = steal_ptr(&v[i].path);
	}
	proc_cgroups_free(v, n);
	/* (a thread of a process in a threaded v2 cgroup, or moved through a v1 `tasks`) */
	for (size_t k = 1; k < c->nr_thr && !ret; k++)
		ret = thread_cgroups(c, k, buf);
	return ret;
}

/* The mount point of the hierarchy with these controllers (v1) or of cgroup2 (""). */
int cgroup_find_mount(const char *controllers, char *out, size_t len)
{
	_cleanup_free_ char *mi = read_file_at(AT_FDCWD, "/proc/self/mountinfo", 1 << 20, NULL);
	if (!mi)
		return pr_perror("cgroup: read mountinfo");
	char *save = NULL;
	for (char *l = strtok_r(mi, "\n", &save); l; l = strtok_r(NULL, "\n", &save)) {
		char mnt[PATH_MAX], fstype[64], opts[512];
		const char *sep = strstr(l, " - ");
		if (!sep || sscanf(l, "%*s %*s %*s %*s %4095s", mnt) != 1 ||
		    sscanf(sep + 3, "%63s %*s %511s", fstype, opts) != 2)
			continue;
		bool v2 = !strcmp(fstype, "cgroup2");
		if (!controllers[0] ? !v2 : strcmp(fstype, "cgroup"))
			continue;
		if (controllers[0] && !cgroup_opts_have(opts, controllers))
			continue;
		snprintf(out, len, "%s", mnt);
		return 0;
	}
	return -ENOENT;
}

int cgroup_mode(const char *s)
{
	static const char *const names[] = { [CG_MODE_SOFT] = "soft",	[CG_MODE_IGNORE] = "ignore",
					      [CG_MODE_NONE] = "none",	[CG_MODE_PROPS] = "props",
					      [CG_MODE_FULL] = "full",	[CG_MODE_STRICT] = "strict" };
	for (size_t i = 0; i < ARRAY_SIZE(names); i++)
		if (!strcmp(s, names[i]))
			return (int)i;
	return -EINVAL;
}

/* The cgroup directories this restore went through already (in the restoring stasis,
 * for every task): each is made and set once. */
static char **seen_dirs;
static size_t n_seen;

static bool seen(const char *dir)
{
	for (size_t i = 0; i < n_seen; i++)
		if (!strcmp(seen_dirs[i], dir))
			return true;
	return false;
}

static int remember(const char *dir)
{
	char **a = realloc(seen_dirs, (n_seen + 1) * sizeof(*a));
	if (!a)
		return -ENOMEM;
	seen_dirs = a;
	return (seen_dirs[n_seen] = strdup(dir)) ? (n_seen++, 0) : -ENOMEM;
}

/* One level of a task's cgroup path (@level: "/a/b"; @dir: where it is), as @mode says. */
static int restore_level(const Core *core, const CgroupEntry *e, const char *level,
			 const char *dir, int mode)
{
	if (seen(dir))
		return 0;
	bool exists = !access(dir, F_OK), made = false;
	if (!exists && (mode == CG_MODE_NONE || mode == CG_MODE_PROPS)) {
		pr_err("restore: cgroup %s does not exist (--manage-cgroups=%s: it must)", dir,
		       mode == CG_MODE_NONE ? "none" : "props");
		return -ENOENT;
	}
	if (exists && mode == CG_MODE_STRICT && !strcmp(level, e->path)) {
		pr_err("restore: cgroup %s exists already (--manage-cgroups=strict)", dir);
		return -EEXIST;
	}
	if (!exists) {
		if (mkdir(dir, 0755) < 0 && errno != EEXIST)
			return pr_perror("restore: create cgroup %s", dir);
		made = true;
	}
	int ret = remember(dir);
	if (!ret && (made || mode == CG_MODE_PROPS || mode == CG_MODE_FULL ||
		     mode == CG_MODE_STRICT) && mode != CG_MODE_NONE)
		ret = cgprops_apply(core, e, level, dir);
	return ret;
}

/* @mnt@e->path as a directory, every level made and set as @mode says. */
static int make_cgroup_dir(const Core *core, const CgroupEntry *e, const char *mnt, int mode,
			   char *dir, size_t len)
{
	const char *path = e->path;
	int n = snprintf(dir, len, "%s%s", mnt, strcmp(path, "/") ? path : "");
	if (n < 0 || (size_t)n >= len) {
		pr_err("restore: cgroup path %s%s is too long", mnt, path);
		return -ENAMETOOLONG;
	}
	size_t base = strlen(mnt);
	if (!strcmp(path, "/"))
		return 0; /* the hierarchy's root */
	for (char *p = dir + base + 1;; p++) {
		if (*p && *p != '/')
			continue;
		char c = *p;
		*p = '\0';
		int ret = restore_level(core, e, dir + base, dir, mode);
		*p = c;
		if (ret)
			return ret;
		if (!c)
			break;
	}
	return 0;
}

/* A thread in other cgroups than its process, moved there once every thread exists (the
 * process's move took them all): its tid into `cgroup.threads` (v2: a threaded
 * cgroup, made so by its recorded cgroup.type) or a v1 hierarchy's `tasks`. */
static int move_thread(struct rst_ctx *c, const ThreadCgroups *tc)
{
	if (tc->thread < 1 || tc->thread > c->nr_trs)
		return pr_errno(-EINVAL, "restore: pid %d: no thread %u to move", c->pid, tc->thread);
	pid_t tid = c->trs[tc->thread - 1].tid;
	for (size_t k = 0; k < tc->n_cgroups; k++) {
		const CgroupEntry *e = tc->cgroups[k];
		char mnt[PATH_MAX], dir[PATH_MAX * 2], file[PATH_MAX * 2 + 32], id[32];
		if (cgroup_find_mount(e->controllers, mnt, sizeof(mnt))) {
			pr_warn("restore: thread %d of pid %d: no mount of cgroup hierarchy '%s': "
				"left in its process's", tid, c->pid, e->controllers);
			continue;
		}
		int ret = make_cgroup_dir(c->core, e, mnt, c->opts->manage_cgroups, dir, sizeof(dir));
		if (ret)
			return ret;
		snprintf(file, sizeof(file), "%s/%s", dir, e->controllers[0] ? "tasks" : "cgroup.threads");
		int n = snprintf(id, sizeof(id), "%d", tid);
		ret = write_file(file, id, (size_t)n);
		if (ret)
			return pr_errno(ret, "restore: move thread %d of pid %d into cgroup %s", tid,
					c->pid, dir);
	}
	return 0;
}

int cgroup_restore_remote(struct rst_ctx *c)
{
	char mine[64];
	snprintf(mine, sizeof(mine), "/proc/%d/cgroup", c->pid);
	_cleanup_free_ char *now = read_file_at(AT_FDCWD, mine, 1 << 16, NULL);
	if (!now)
		return pr_perror("cgroup: read %s", mine);
	if (c->opts->manage_cgroups == CG_MODE_IGNORE)
		return 0; /* the tasks stay in the restorer's cgroups */
	for (size_t i = 0; i < c->core->n_cgroups; i++) {
		const CgroupEntry *e = c->core->cgroups[i];
		char line[PATH_MAX + 256];
		snprintf(line, sizeof(line), "%u:%s:%s\n", e->hierarchy, e->controllers, e->path);
		if (strstr(now, line))
			continue; /* already there (inherited) */
		char mnt[PATH_MAX], dir[PATH_MAX * 2], procs[PATH_MAX * 2 + 32];
		if (cgroup_find_mount(e->controllers, mnt, sizeof(mnt))) {
			pr_warn("restore: pid %d: no mount of cgroup hierarchy '%s': left as is", c->pid,
				e->controllers);
			continue;
		}
		int ret = make_cgroup_dir(c->core, e, mnt, c->opts->manage_cgroups, dir, sizeof(dir));
		if (ret)
			return ret;
		snprintf(procs, sizeof(procs), "%s/cgroup.procs", dir);
		char pid[32];
		int n = snprintf(pid, sizeof(pid), "%d", c->pid);
		ret = write_file(procs, pid, (size_t)n);
		if (ret)
			return pr_errno(ret, "restore: move pid %d into cgroup %s", c->pid, dir);
	}
	for (size_t i = 0; i < c->core->n_thread_cgroups; i++) {
		int ret = move_thread(c, c->core->thread_cgroups[i]);
		if (ret)
			return ret;
	}
	return 0;
}

/* ---- --cgroup-root: the tree's cgroups moved -------------------------------------- */

int cgroup_root_parse(const char *arg, char *ctrl, size_t len, const char **path)
{
	const char *colon = arg[0] == '/' ? NULL : strchr(arg, ':');
	size_t n = colon ? (size_t)(colon - arg) : 0;
	if ((arg[0] != '/' && (!colon || !n)) || n > PROC_MAX_CGROUP_CTRL || n >= len)
		return -EINVAL;
	for (size_t i = 0; i < n; i++)
		if (!proc_cgroup_ctrl_char(arg[i]))
			return -EINVAL;
	memcpy(ctrl, arg, n);
	ctrl[n] = '\0';
	*path = colon ? colon + 1 : arg;
	return cgroup_path_is_clean(*path) ? 0 : -EINVAL;
}

/* Where the tree's cgroups go (restore): in hierarchy @controllers, the cgroup @from of
 * the root task becomes @to, and what is below it follows. */
struct cg_move {
	char *controllers, *from, *to;
};
static struct cg_move *moves;
static size_t n_moves;

/* The new root --cgroup-root gives the hierarchy with @controllers: the one naming some
 * of its controllers, else the one naming none; NULL when none applies. */
static const char *new_root_for(const struct restore_opts *o, const char *controllers)
{
	const char *any = NULL;
	for (size_t i = 0; i < o->n_cg_roots; i++) {
		char ctrl[PROC_MAX_CGROUP_CTRL + 1];
		const char *path;
		if (cgroup_root_parse(o->cg_roots[i], ctrl, sizeof(ctrl), &path))
			continue; /* checked by the command line or the RPC already */
		if (ctrl[0] && controllers[0] && cgroup_opts_have(controllers, ctrl))
			return path;
		if (!ctrl[0] && !any)
			any = path;
	}
	return any;
}

static const struct cg_move *move_of(const char *controllers)
{
	for (size_t i = 0; i < n_moves; i++)
		if (!strcmp(moves[i].controllers, controllers))
			return &moves[i];
	return NULL;
}

static const char *from_of(const char *controllers)
{
	const struct cg_move *m = move_of(controllers);
	return m ? m->from : "?";
}

/* @path moved by @m: a new string in *out; -ERANGE when it is not below m->from. */
static int move_path(const struct cg_move *m, const char *path, char **out)
{
	if (!path_is_under(path, m->from))
		return -ERANGE;
	const char *rest = strcmp(m->from, "/") ? path + strlen(m->from) : path;
	if (!strcmp(rest, "/"))
		rest = "";
	bool top = !strcmp(m->to, "/");
	if (asprintf(out, "%s%s", top && rest[0] ? "" : m->to, rest) < 0)
		return -ENOMEM;
	if (!cgroup_path_is_clean(*out)) {
		pr_err("restore: cgroup %s moved under %s is too long", path, m->to);
		free(*out);
		*out = NULL;
		return -ENAMETOOLONG;
	}
	return 0;
}

/* Replace *@path by its move (none for a hierarchy not moved; left as it is on failure). */
static int move_in_place(const char *controllers, char **path)
{
	const struct cg_move *m = move_of(controllers);
	char *moved;
	if (!m)
		return 0;
	int ret = move_path(m, *path, &moved);
	if (!ret) {
		free(*path);
		*path = moved;
	}
	return ret;
}

/* One task: its cgroups, the settings recorded for them (those of cgroups above the
 * root's, which the new root's parents are not, dropped) and the roots of the cgroup
 * namespace it creates. */
static int move_task(struct rst_ctx *c)
{
	for (size_t i = 0; i < c->core->n_cgroups; i++) {
		CgroupEntry *e = c->core->cgroups[i];
		int ret = move_in_place(e->controllers, &e->path);
		if (ret == -ERANGE)
			pr_err("restore: pid %d is in cgroup %s of hierarchy '%s', not below %s, the "
			       "root task's there: --cgroup-root cannot place it",
			       c->pid, e->path, e->controllers, from_of(e->controllers));
		if (ret)
			return ret;
	}
	for (size_t i = 0; i < c->core->n_thread_cgroups; i++)
		for (size_t k = 0; k < c->core->thread_cgroups[i]->n_cgroups; k++) {
			CgroupEntry *e = c->core->thread_cgroups[i]->cgroups[k];
			int ret = move_in_place(e->controllers, &e->path);
			if (ret == -ERANGE)
				pr_err("restore: a thread of pid %d is in cgroup %s of hierarchy '%s', "
				       "not below %s, the root task's there: --cgroup-root cannot "
				       "place it", c->pid, e->path, e->controllers,
				       from_of(e->controllers));
			if (ret)
				return ret;
		}
	size_t kept = 0;
	for (size_t i = 0; i < c->core->n_cgroup_props; i++) {
		CgroupProps *p = c->core->cgroup_props[i];
		int ret = move_in_place(p->controllers, &p->path);
		if (ret && ret != -ERANGE)
			return ret;
		if (ret) /* above the tree's root cgroup */
			cgroup_props__free_unpacked(p, NULL);
		else
			c->core->cgroup_props[kept++] = p;
	}
	c->core->n_cgroup_props = kept;
	for (size_t i = 0; c->tns->cgroupns && i < c->tns->cgroupns->n_roots; i++) {
		CgroupNsRoot *r = c->tns->cgroupns->roots[i];
		int ret = move_in_place(r->controllers, &r->root);
		if (ret == -ERANGE)
			pr_err("restore: the cgroup namespace of pid %d has its root at %s in "
			       "hierarchy '%s', not below %s, the root task's there: --cgroup-root "
			       "cannot place it",
			       c->pid, r->root, r->controllers, from_of(r->controllers));
		if (ret)
			return ret;
	}
	return 0;
}

/* The root of a fresh cgroup mount made in stasis's cgroup namespace (shown from the
 * hierarchy's root, so recorded as the dumper saw it), moved: a root that is not the
 * tree's (below the root task's cgroup) is shown as it was. */
static int move_mounts(MntNs *ns)
{
	for (size_t i = 0; ns && i < ns->n_mounts; i++) {
		Mount *m = ns->mounts[i];
		if (m->kind != MOUNT_KIND__MOUNT_FRESH ||
		    (strcmp(m->fstype, "cgroup2") && strcmp(m->fstype, "cgroup")))
			continue;
		for (size_t k = 0; k < n_moves; k++) {
			if (!mount_shows(m->fstype, m->sb_opts, moves[k].controllers))
				continue;
			char *moved;
			int ret = move_path(&moves[k], m->root, &moved);
			if (ret == -ERANGE)
				break;
			if (ret)
				return ret;
			free(m->root);
			m->root = moved;
			break;
		}
	}
	return 0;
}

/* Is task @i of @inv in a cgroup namespace the tree creates (its own or an ancestor's)? */
static bool in_tree_cgns(const Inventory *inv, struct rst_ctx *const *procs, size_t i)
{
	for (ssize_t k = (ssize_t)i, hops = 0; k >= 0 && hops <= (ssize_t)inv->n_tasks; hops++) {
		if (procs[k] && procs[k]->tns->cgroupns)
			return true;
		k = k ? rst_task_index(inv, inv->tasks[k]->ppid) : -1;
	}
	return false;
}

int cgroup_remap(const Inventory *inv, struct rst_ctx *const *procs, size_t n)
{
	const struct restore_opts *o = procs[0]->opts;
	if (!o->n_cg_roots || o->manage_cgroups == CG_MODE_IGNORE)
		return 0;
	const Core *root = procs[0]->core;
	for (size_t i = 0; i < n_moves; i++)
		free(moves[i].controllers), free(moves[i].from), free(moves[i].to);
	free(moves);
	n_moves = 0;
	moves = calloc(root->n_cgroups ?: 1, sizeof(*moves));
	if (!moves)
		return -ENOMEM;
	for (size_t i = 0; i < root->n_cgroups; i++) {
		const CgroupEntry *e = root->cgroups[i];
		const char *to = new_root_for(o, e->controllers);
		if (!to)
			continue;
		struct cg_move *m = &moves[n_moves++];
		m->controllers = strdup(e->controllers);
		m->from = strdup(e->path);
		m->to = strdup(to);
		if (!m->controllers || !m->from || !m->to)
			return -ENOMEM;
		pr_info("restore: hierarchy '%s': the tree's cgroup %s becomes %s", m->controllers,
			m->from, m->to);
	}
	for (size_t i = 0; i < n; i++) {
		int ret = procs[i] ? move_task(procs[i]) : 0;
		if (!ret && procs[i] && !in_tree_cgns(inv, procs, i))
			ret = move_mounts(procs[i]->tns->mnt);
		if (ret)
			return ret;
	}
	return 0;
}

/* ---- cgroup namespaces: dump ------------------------------------------------------ */

/* /proc/self/cgroup as the task itself reads it (relative to its cgroup namespace),
 * with open/read/close run in the task; the path and the buffer live in its scratch. */
static char *read_inside(struct dump_ctx *c)
{
	static const char path[] = "/proc/self/cgroup";
	struct rsys *rs = &c->rs;
	uint64_t buf = rs->scratch + CGNS_SCR_BUF;
	size_t cap = MIN(CGNS_READ_MAX, rs->scratch_len - CGNS_SCR_BUF - 1), len = 0;
	long fd = -1, r = 0;
	int e = rsys_poke(rs, rs->scratch, path, sizeof(path));
	if (!e)
		e = rsys_call(rs, SYS_open, rs->scratch, O_RDONLY | O_CLOEXEC, 0, 0, 0, 0, &fd);
	if (!e && fd < 0) {
		pr_err("cgroup: pid %d cannot open /proc/self/cgroup in its own mount namespace "
		       "(%s): the root of its cgroup namespace is read from there",
		       c->pid, strerror((int)-fd));
		errno = (int)-fd;
		return NULL;
	}
	while (!e && len < cap) {
		e = rsys_call(rs, SYS_read, (uint64_t)fd, buf + len, cap - len, 0, 0, 0, &r);
		if (e || r <= 0)
			break;
		len += (size_t)r;
	}
	if (fd >= 0) {
		long cr;
		int ce = rsys_call(rs, SYS_close, (uint64_t)fd, 0, 0, 0, 0, 0, &cr);
		if (!e)
			e = ce;
	}
	if (!e && r < 0)
		e = (int)r;
	if (!e && len == cap)
		e = -EFBIG;
	char *out = e ? NULL : malloc(len + 1);
	if (!e && !out)
		e = -ENOMEM;
	if (!e)
		e = rsys_peek(rs, buf, out, len);
	if (e) {
		free(out);
		pr_errno(e, "cgroup: read /proc/self/cgroup in pid %d", c->pid);
		errno = -e;
		return NULL;
	}
	out[len] = '\0';
	return out;
}

/* The nsfs inode of the user namespace owning the cgroup namespace of @c (0 if it is
 * not visible from the dumper's). */
static int cgns_owner(struct dump_ctx *c, uint64_t *owner)
{
	_cleanup_close_ int nsfd = openat(c->procfd, "ns/cgroup", O_RDONLY | O_CLOEXEC);
	if (nsfd < 0)
		return pr_perror("cgroup: open /proc/%d/ns/cgroup", c->pid);
	_cleanup_close_ int ufd = ioctl(nsfd, NS_GET_USERNS);
	struct stat st;
	*owner = 0;
	if (ufd < 0 && errno == EPERM)
		return 0; /* owned by a user namespace above the dumper's */
	if (ufd < 0 || fstat(ufd, &st) < 0)
		return pr_perror("cgroup: owner of the cgroup namespace of pid %d", c->pid);
	*owner = st.st_ino;
	return 0;
}

static CgroupNsRoot *new_root(const CgroupEntry *e, const char *root)
{
	CgroupNsRoot *r = malloc(sizeof(*r));
	if (!r)
		return NULL;
	cgroup_ns_root__init(r);
	r->hierarchy = e->hierarchy;
	r->controllers = strdup(e->controllers);
	r->root = strdup(root);
	if (!r->controllers || !r->root) {
		cgroup_ns_root__free_unpacked(r, NULL);
		return NULL;
	}
	return r;
}

/* Fill @ns's roots from the dumper's view (c->core->cgroups) and the task's (@in). */
static int cgns_roots(struct dump_ctx *c, CgroupNs *ns, const struct proc_cgroup *in,
		      size_t nin)
{
	if (nin != c->core->n_cgroups) {
		pr_err("cgroup: pid %d shows %zu cgroup hierarchies from inside its cgroup "
		       "namespace and %zu from outside",
		       c->pid, nin, c->core->n_cgroups);
		return -EINVAL;
	}
	ns->roots = calloc(nin + 1, sizeof(*ns->roots));
	if (!ns->roots)
		return -ENOMEM;
	for (size_t i = 0; i < c->core->n_cgroups; i++) {
		const CgroupEntry *e = c->core->cgroups[i];
		const struct proc_cgroup *p = NULL;
		for (size_t k = 0; k < nin && !p; k++)
			if (in[k].hierarchy == e->hierarchy && !strcmp(in[k].controllers, e->controllers))
				p = &in[k];
		if (!p) {
			pr_err("cgroup: pid %d does not show hierarchy %u (%s) from inside its cgroup "
			       "namespace",
			       c->pid, e->hierarchy, e->controllers);
			return -EINVAL;
		}
		char root[PROC_MAX_CGROUP_PATH + 1];
		int ret = cgroup_ns_root(e->path, p->path, root, sizeof(root));
		if (ret == -ERANGE) {
			pr_err("pid %d sits outside the root of its cgroup namespace (cgroup %s of "
			       "hierarchy '%s' seen as %s from inside): not supported",
			       c->pid, e->path, e->controllers, p->path);
			return -EOPNOTSUPP;
		}
		if (ret) {
			pr_err("cgroup: pid %d: cgroup %s of hierarchy '%s' is %s from inside its "
			       "cgroup namespace: no root fits (is it outside the dumper's "
			       "namespace?)",
			       c->pid, e->path, e->controllers, p->path);
			return -EINVAL;
		}
		ns->roots[ns->n_roots] = new_root(e, root);
		if (!ns->roots[ns->n_roots])
			return -ENOMEM;
		ns->n_roots++;
	}
	return 0;
}

int cgroup_ns_dump(struct dump_ctx *c)
{
	uint64_t owner = 0;
	int ret = cgns_owner(c, &owner);
	if (ret)
		return ret;
	/* restored by the task itself after it entered its user namespace: the owner must
	 * be that one (a task that unshared its cgroup namespace before its user namespace
	 * cannot be rebuilt so) */
	if (owner != c->core->ns->user) {
		pr_err("pid %d: its cgroup namespace is owned by a user namespace other than its "
		       "own (created before it): not supported",
		       c->pid);
		return -EOPNOTSUPP;
	}
	_cleanup_free_ char *buf = read_inside(c);
	if (!buf)
		return -errno;
	struct proc_cgroup *in;
	size_t nin;
	ret = proc_parse_cgroup(buf, &in, &nin);
	if (ret) {
		pr_err("cgroup: malformed /proc/self/cgroup read in pid %d", c->pid);
		return ret;
	}
	CgroupNs *ns = malloc(sizeof(*ns));
	if (!ns) {
		proc_cgroups_free(in, nin);
		return -ENOMEM;
	}
	cgroup_ns__init(ns);
	c->tns->cgroupns = ns;
	ns->id = c->core->ns->cgroup;
	ns->has_owner = true;
	ns->owner = owner;
	ret = cgns_roots(c, ns, in, nin);
	proc_cgroups_free(in, nin);
	for (size_t i = 0; !ret && i < ns->n_roots; i++)
		pr_info("dump: pid %d: cgroup namespace root %s in hierarchy '%s'", c->pid,
			ns->roots[i]->root, ns->roots[i]->controllers);
	return ret;
}

int cgroup_mount_root(const CgroupNs *ns, const char *mountpoint, const char *fstype,
		      const char *opts, const char *root, char *out, size_t len)
{
	const CgroupNsRoot *r = NULL;
	for (size_t i = 0; ns && i < ns->n_roots && !r; i++)
		if (mount_shows(fstype, opts, ns->roots[i]->controllers))
			r = ns->roots[i];
	if (ns && !r) {
		pr_err("mount %s (%s %s): not a hierarchy of the cgroup namespace it is restored "
		       "in: not supported",
		       mountpoint, fstype, opts);
		return -EOPNOTSUPP;
	}
	const char *rest = root;
	if (r && strcmp(r->root, "/")) {
		size_t rl = strlen(r->root);
		if (!path_is_under(root, r->root)) {
			pr_err("mount %s (%s) shows cgroup %s, outside the root %s of the cgroup "
			       "namespace its mount namespace is rebuilt in: not supported",
			       mountpoint, fstype, root, r->root);
			return -EOPNOTSUPP;
		}
		rest = root[rl] ? root + rl : "/";
	}
	if ((size_t)snprintf(out, len, "%s", rest) >= len)
		return -ENAMETOOLONG;
	return 0;
}

/* ---- cgroup namespaces: restore --------------------------------------------------- */

static bool controllers_ok(const char *s, uint32_t hierarchy)
{
	size_t n = s ? strnlen(s, PROC_MAX_CGROUP_CTRL + 1) : PROC_MAX_CGROUP_CTRL + 1;
	if (n > PROC_MAX_CGROUP_CTRL || (hierarchy == 0) != (n == 0))
		return false;
	for (size_t i = 0; i < n; i++)
		if (!proc_cgroup_ctrl_char(s[i]))
			return false;
	return true;
}

int cgroup_validate(const Core *core, const CgroupNs *ns, pid_t pid)
{
	if (core->n_cgroups > PROC_MAX_CGROUPS) {
		pr_err("image: pid %d is in %zu cgroup hierarchies (at most %d)", pid,
		       core->n_cgroups, PROC_MAX_CGROUPS);
		return -EINVAL;
	}
	for (size_t i = 0; i < core->n_cgroups; i++) {
		const CgroupEntry *e = core->cgroups[i];
		if (!controllers_ok(e->controllers, e->hierarchy) || !cgroup_path_is_clean(e->path)) {
			pr_err("image: bad cgroup of pid %d in hierarchy %u (controllers or path "
			       "'%.64s')",
			       pid, e->hierarchy, e->path ? e->path : "");
			return -EINVAL;
		}
	}
	for (size_t i = 0; i < core->n_thread_cgroups; i++) {
		const ThreadCgroups *tc = core->thread_cgroups[i];
		bool ok = tc->thread > 0 && tc->thread < core->n_threads &&
			  tc->n_cgroups <= core->n_cgroups;
		for (size_t k = 0; ok && k < tc->n_cgroups; k++) {
			const CgroupEntry *e = tc->cgroups[k];
			ok = controllers_ok(e->controllers, e->hierarchy) &&
			     cgroup_path_is_clean(e->path) && proc_entry(core, e->hierarchy);
		}
		if (!ok) {
			pr_err("image: bad cgroups of thread %u of pid %d", tc->thread, pid);
			return -EINVAL;
		}
	}
	if (!ns)
		return 0;
	if (!ns->n_roots || ns->n_roots > PROC_MAX_CGROUPS) {
		pr_err("image: the cgroup namespace of pid %d has %zu roots (1 to %d)", pid,
		       ns->n_roots, PROC_MAX_CGROUPS);
		return -EINVAL;
	}
	for (size_t i = 0; i < ns->n_roots; i++) {
		const CgroupNsRoot *r = ns->roots[i];
		if (!controllers_ok(r->controllers, r->hierarchy)) {
			pr_err("image: the cgroup namespace of pid %d has bad controllers in hierarchy "
			       "%u",
			       pid, r->hierarchy);
			return -EINVAL;
		}
		if (!cgroup_path_is_clean(r->root)) {
			pr_err("image: the cgroup namespace of pid %d has a bad root '%.64s' (must be "
			       "absolute, at most %d bytes, without '.' or '..')",
			       pid, r->root ? r->root : "", PROC_MAX_CGROUP_PATH);
			return -EINVAL;
		}
		for (size_t k = 0; k < i; k++)
			if (ns->roots[k]->hierarchy == r->hierarchy) {
				pr_err("image: the cgroup namespace of pid %d lists hierarchy %u twice",
				       pid, r->hierarchy);
				return -EINVAL;
			}
	}
	return 0;
}

/* Restore: the cgroup.procs of each root of the cgroup namespace the task creates, opened
 * by stasis (-1: created there anyway, or the hierarchy is not mounted). */
struct cgroup_priv {
	size_t n;
	int fd[];
};

/* The cgroup.procs of root @i of the cgroup namespace of @c (created if missing), at an
 * fd >= *fd_top; a hierarchy not mounted here is skipped with a warning. */
static int open_root_procs(struct rst_ctx *c, size_t i, int *fd_top)
{
	const CgroupNsRoot *r = c->tns->cgroupns->roots[i];
	char mnt[PATH_MAX], dir[PATH_MAX * 2], procs[PATH_MAX * 2 + 32];
	if (cgroup_find_mount(r->controllers, mnt, sizeof(mnt))) {
		pr_warn("restore: pid %d: no mount of cgroup hierarchy '%s': its cgroup namespace's "
			"root there is where it is created",
			c->pid, r->controllers);
		return 0;
	}
	CgroupEntry e = CGROUP_ENTRY__INIT;
	e.hierarchy = r->hierarchy;
	e.controllers = r->controllers;
	e.path = r->root;
	int ret = make_cgroup_dir(c->core, &e, mnt, c->opts->manage_cgroups, dir, sizeof(dir));
	if (ret)
		return ret;
	snprintf(procs, sizeof(procs), "%s/cgroup.procs", dir);
	_cleanup_close_ int fd = open(procs, O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return pr_perror("restore: open %s (root of the cgroup namespace of pid %d)", procs,
				 c->pid);
	struct cgroup_priv *cp = c->priv[RES_PRIV_CGROUP];
	cp->fd[i] = fcntl(fd, F_DUPFD_CLOEXEC, *fd_top);
	if (cp->fd[i] < 0)
		return pr_perror("restore: dup");
	*fd_top = cp->fd[i] + 1;
	return 0;
}

/* Where a task created by a creator sitting in the roots of @from (NULL: in stasis's
 * cgroups, @mine) is in the hierarchy with @controllers, or NULL if unknown. */
static const char *start_cgroup(const CgroupNs *from, const struct proc_cgroup *mine,
				size_t nmine, const char *controllers)
{
	for (size_t k = 0; from && k < from->n_roots; k++)
		if (!strcmp(from->roots[k]->controllers, controllers))
			return from->roots[k]->root;
	for (size_t k = 0; !from && k < nmine; k++)
		if (!strcmp(mine[k].controllers, controllers))
			return mine[k].path;
	return NULL;
}

int cgroup_ns_prepare(struct rst_ctx *c, const CgroupNs *from, int *fd_top)
{
	const CgroupNs *ns = c->tns->cgroupns;
	struct proc_cgroup *mine = NULL;
	size_t nmine = 0;
	int ret = 0;
	if (!ns)
		return 0;
	struct cgroup_priv *cp = malloc(sizeof(*cp) + ns->n_roots * sizeof(int));
	if (!cp)
		return -ENOMEM;
	for (size_t i = 0; i < ns->n_roots; i++)
		cp->fd[i] = -1;
	cp->n = ns->n_roots;
	c->priv[RES_PRIV_CGROUP] = cp;
	if (!from) {
		_cleanup_free_ char *buf = read_file_at(AT_FDCWD, "/proc/self/cgroup", 1 << 16, NULL);
		if (!buf)
			return pr_perror("restore: read /proc/self/cgroup");
		ret = proc_parse_cgroup(buf, &mine, &nmine);
		if (ret) {
			pr_err("restore: malformed /proc/self/cgroup");
			return ret;
		}
	}
	for (size_t i = 0; i < ns->n_roots && !ret; i++) {
		const CgroupNsRoot *r = ns->roots[i];
		const char *start = start_cgroup(from, mine, nmine, r->controllers);
		if (start && !strcmp(start, r->root)) {
			/* created there: nothing to open (nor to be allowed to) */
			pr_debug("restore: pid %d starts in the root %s of its cgroup namespace "
				 "(hierarchy '%s')",
				 c->pid, r->root, r->controllers);
			continue;
		}
		ret = open_root_procs(c, i, fd_top);
	}
	proc_cgroups_free(mine, nmine);
	return ret;
}

void cgroup_ns_release(struct rst_ctx *c)
{
	struct cgroup_priv *cp = c->priv[RES_PRIV_CGROUP];
	for (size_t i = 0; cp && i < cp->n; i++)
		if (cp->fd[i] >= 0) {
			close(cp->fd[i]);
			cp->fd[i] = -1;
		}
}

static void cgroup_release(struct rst_ctx *c)
{
	cgroup_ns_release(c);
	free(c->priv[RES_PRIV_CGROUP]);
	c->priv[RES_PRIV_CGROUP] = NULL;
}

int cgroup_ns_restore_child(struct rst_ctx *c)
{
	const CgroupNs *ns = c->tns->cgroupns;
	if (!ns)
		return 0;
	struct cgroup_priv *cp = c->priv[RES_PRIV_CGROUP];
	for (size_t i = 0; cp && i < cp->n; i++) {
		if (cp->fd[i] < 0)
			continue;
		/* "0": the writer itself, whatever its pid namespace */
		if (write(cp->fd[i], "0", 1) != 1)
			return pr_perror("restore: pid %d: move into %s (hierarchy '%s'), the root of "
					 "its cgroup namespace",
					 c->pid, ns->roots[i]->root, ns->roots[i]->controllers);
		close(cp->fd[i]);
		cp->fd[i] = -1;
	}
	if (unshare(CLONE_NEWCGROUP) < 0)
		return pr_perror("restore: pid %d: unshare(CLONE_NEWCGROUP)", c->pid);
	return 0;
}

static int cgroup_validate_ctx(struct rst_ctx *c)
{
	return cgroup_validate(c->core, c->tns->cgroupns, c->pid) ?: cgprops_validate(c->core, c->pid);
}

const struct resource cgroup_resource = {
	.name = "cgroups",
	.dump = cgroup_dump,
	.dump_tree = cgprops_dump_tree,
	.validate = cgroup_validate_ctx,
	.remote = cgroup_restore_remote,
	.release = cgroup_release,
};
