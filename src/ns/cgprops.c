/* The settings of the tree's cgroups (the cgroups row's dump_tree hook and a part of its
 * remote hook; see cgroup.h, --manage-cgroups).
 *
 * Dump: for every cgroup a task is in, and each ancestor below the hierarchy's root, the
 * control files of a fixed list (per controller for v1, the v2 files the cgroup has) are
 * read in the dumper's view of the hierarchy and recorded in the task's Core
 * (cgroup_props), in the order they are written back: limits that bound others first
 * (cpuset.cpus/mems before a task can join, a period before its quota, memory.limit before
 * memsw.limit), v2's cgroup.subtree_control before the cgroup gets children. Values are
 * kept as read; a file that is absent or unreadable is left out.
 *
 * Restore: cgroup_restore_remote walks a task's cgroup path level by level; a level it
 * creates gets its recorded settings (soft, the default), or every level does (props,
 * full, strict), written only where the file reads otherwise. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/log.h"
#include "core/util.h"
#include "ns/cgroup.h"

#define PROP_MAX 4096 /* bytes of one value */
#define PROPS_MAX 64  /* files of one cgroup */

/* v2: read where the cgroup has the file (its parent enabled the controller). */
static const char *const v2_files[] = {
	"cgroup.type",	      "cgroup.subtree_control", "cgroup.max.descendants",
	"cgroup.max.depth",   "cpuset.cpus",		 "cpuset.mems",
	"cpuset.cpus.partition", "cpu.weight",		 "cpu.max",
	"cpu.idle",	      "cpu.uclamp.min",		 "cpu.uclamp.max",
	"memory.min",	      "memory.low",		 "memory.high",
	"memory.max",	      "memory.swap.high",	 "memory.swap.max",
	"memory.zswap.max",   "memory.oom.group",	 "pids.max",
	"io.weight",	      NULL,
};

struct v1_files {
	const char *controller;
	const char *files[12];
};

static const struct v1_files v1_table[] = {
	{ "cpuset", { "cpuset.cpus", "cpuset.mems", "cpuset.cpu_exclusive", "cpuset.mem_exclusive",
		      "cpuset.mem_hardwall", "cpuset.memory_migrate", "cpuset.sched_load_balance",
		      "cpuset.memory_spread_page", "cpuset.memory_spread_slab", NULL } },
	{ "memory", { "memory.limit_in_bytes", "memory.memsw.limit_in_bytes",
		      "memory.soft_limit_in_bytes", "memory.swappiness", "memory.oom_control",
		      "memory.move_charge_at_immigrate", NULL } },
	{ "cpu", { "cpu.shares", "cpu.cfs_period_us", "cpu.cfs_quota_us", "cpu.rt_period_us",
		   "cpu.rt_runtime_us", NULL } },
	{ "pids", { "pids.max", NULL } },
	{ "blkio", { "blkio.weight", NULL } },
	{ "net_cls", { "net_cls.classid", NULL } },
	{ "devices", { "devices.list", NULL } },
	{ NULL, { "notify_on_release", "cgroup.clone_children", NULL } }, /* every v1 hierarchy */
};

/* Is @name a file stasis reads and writes for a hierarchy with @controllers? */
static bool known_file(const char *controllers, const char *name)
{
	if (!controllers[0]) {
		for (const char *const *f = v2_files; *f; f++)
			if (!strcmp(*f, name))
				return true;
		return false;
	}
	for (size_t i = 0; i < ARRAY_SIZE(v1_table); i++) {
		if (v1_table[i].controller && !cgroup_opts_have(controllers, v1_table[i].controller))
			continue;
		for (const char *const *f = v1_table[i].files; *f; f++)
			if (!strcmp(*f, name))
				return true;
	}
	return false;
}

/* The value of @dir/@name as recorded: without the final newline; memory.oom_control:
 * its oom_kill_disable value only. NULL if unreadable. */
static char *read_prop(const char *dir, const char *name)
{
	char path[PATH_MAX * 2];
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	size_t len;
	char *v = read_file_at(AT_FDCWD, path, PROP_MAX, &len);
	if (!v)
		return NULL;
	while (len && v[len - 1] == '\n')
		v[--len] = '\0';
	if (!strcmp(name, "memory.oom_control")) {
		const char *k = strstr(v, "oom_kill_disable ");
		int d = k ? atoi(k + strlen("oom_kill_disable ")) : 0;
		snprintf(v, len + 1, "%d", d ? 1 : 0);
	}
	return v;
}

static int add_prop(CgroupProps *p, const char *name, char *value)
{
	CgroupProp *x = malloc(sizeof(*x));
	CgroupProp **a = realloc(p->props, (p->n_props + 1) * sizeof(*a));
	if (!x || !a) {
		free(x);
		free(value);
		return -ENOMEM;
	}
	p->props = a;
	cgroup_prop__init(x);
	x->name = strdup(name);
	x->value = value;
	p->props[p->n_props++] = x;
	return x->name ? 0 : -ENOMEM;
}

/* The settings of cgroup @path of hierarchy @e (mounted at @mnt in the dumper's view). */
static int read_props(const char *mnt, const CgroupEntry *e, const char *path, CgroupProps *p)
{
	char dir[PATH_MAX * 2];
	snprintf(dir, sizeof(dir), "%s%s", mnt, path);
	int ret = 0;
	if (!e->controllers[0]) {
		for (const char *const *f = v2_files; *f && !ret; f++) {
			char *v = read_prop(dir, *f);
			if (v)
				ret = add_prop(p, *f, v);
		}
		return ret;
	}
	for (size_t i = 0; i < ARRAY_SIZE(v1_table) && !ret; i++) {
		if (v1_table[i].controller && !cgroup_opts_have(e->controllers, v1_table[i].controller))
			continue;
		for (const char *const *f = v1_table[i].files; *f && !ret; f++) {
			char *v = read_prop(dir, *f);
			if (v)
				ret = add_prop(p, *f, v);
		}
	}
	return ret;
}

static bool has_props(const Core *core, const CgroupEntry *e, const char *path)
{
	for (size_t i = 0; i < core->n_cgroup_props; i++)
		if (core->cgroup_props[i]->hierarchy == e->hierarchy &&
		    !strcmp(core->cgroup_props[i]->path, path))
			return true;
	return false;
}

/* Cgroup @e of @core and its ancestors below the root, with their settings. */
static int dump_entry(Core *core, const CgroupEntry *e)
{
	char mnt[PATH_MAX];
	if (!strcmp(e->path, "/") || cgroup_find_mount(e->controllers, mnt, sizeof(mnt)))
		return 0; /* the root is not the tree's; a hierarchy not mounted here */
	char level[PATH_MAX];
	for (const char *s = e->path + 1;; s++) {
		if (*s && *s != '/')
			continue;
		snprintf(level, sizeof(level), "%.*s", (int)(s - e->path), e->path);
		if (!has_props(core, e, level)) {
			CgroupProps *p = malloc(sizeof(*p));
			CgroupProps **a = realloc(core->cgroup_props,
						  (core->n_cgroup_props + 1) * sizeof(*a));
			if (!p || !a) {
				free(p);
				return -ENOMEM;
			}
			core->cgroup_props = a;
			cgroup_props__init(p);
			a[core->n_cgroup_props++] = p;
			p->hierarchy = e->hierarchy;
			p->controllers = strdup(e->controllers);
			p->path = strdup(level);
			if (!p->controllers || !p->path)
				return -ENOMEM;
			int ret = read_props(mnt, e, level, p);
			if (ret)
				return ret;
		}
		if (!*s)
			break;
	}
	return 0;
}

/* Every cgroup of @c (its threads' too) and their ancestors, with their settings. */
static int dump_task(struct dump_ctx *c)
{
	Core *core = c->core;
	int ret = 0;
	for (size_t i = 0; i < core->n_cgroups && !ret; i++)
		ret = dump_entry(core, core->cgroups[i]);
	for (size_t i = 0; i < core->n_thread_cgroups && !ret; i++)
		for (size_t k = 0; k < core->thread_cgroups[i]->n_cgroups && !ret; k++)
			ret = dump_entry(core, core->thread_cgroups[i]->cgroups[k]);
	return ret;
}

int cgprops_dump_tree(struct dump_tree *t)
{
	for (size_t i = 0; i < t->nr; i++) {
		int ret = dump_task(t->procs[i]);
		if (ret)
			return pr_errno(ret, "cgroup: settings of the cgroups of pid %d", t->procs[i]->pid);
	}
	return 0;
}

int cgprops_validate(const Core *core, pid_t pid)
{
	for (size_t i = 0; i < core->n_cgroup_props; i++) {
		const CgroupProps *p = core->cgroup_props[i];
		if (!cgroup_path_is_clean(p->path) || !strcmp(p->path, "/") ||
		    p->n_props > PROPS_MAX) {
			pr_err("image: pid %d: bad cgroup settings record (%s)", pid, p->path);
			return -EINVAL;
		}
		for (size_t k = 0; k < p->n_props; k++) {
			const CgroupProp *x = p->props[k];
			if (!known_file(p->controllers, x->name) || strlen(x->value) >= PROP_MAX) {
				pr_err("image: pid %d: cgroup %s: '%s' is not a setting stasis writes",
				       pid, p->path, x->name);
				return -EINVAL;
			}
		}
	}
	return 0;
}

/* Write @value to @dir/@name unless it reads so already. devices.list: deny all, then
 * allow each line; cgroup.subtree_control: "+ctrl" for each controller. */
static int write_prop(const char *dir, const char *name, const char *value)
{
	char path[PATH_MAX * 2];
	_cleanup_free_ char *cur = read_prop(dir, name);
	if (cur && !strcmp(cur, value))
		return 0;
	if (!strcmp(name, "devices.list")) {
		snprintf(path, sizeof(path), "%s/devices.deny", dir);
		int ret = write_file(path, "a", 1);
		snprintf(path, sizeof(path), "%s/devices.allow", dir);
		_cleanup_free_ char *v = strdup(value);
		char *save = NULL;
		for (char *l = v ? strtok_r(v, "\n", &save) : NULL; l && !ret;
		     l = strtok_r(NULL, "\n", &save))
			ret = write_file(path, l, strlen(l));
		return v ? ret : -ENOMEM;
	}
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	/* (the other types follow: "domain threaded" once a child is threaded) */
	if (!strcmp(name, "cgroup.type") && strcmp(value, "threaded"))
		return 0;
	if (!strcmp(name, "cgroup.subtree_control")) {
		_cleanup_free_ char *v = strdup(value);
		char *save = NULL;
		int ret = v ? 0 : -ENOMEM;
		for (char *c = v ? strtok_r(v, " ", &save) : NULL; c && !ret;
		     c = strtok_r(NULL, " ", &save)) {
			char plus[64];
			int n = snprintf(plus, sizeof(plus), "+%s", c);
			ret = write_file(path, plus, (size_t)n);
		}
		return ret;
	}
	return write_file(path, value, strlen(value));
}

int cgprops_apply(const Core *core, const CgroupEntry *e, const char *level, const char *dir)
{
	for (size_t i = 0; i < core->n_cgroup_props; i++) {
		const CgroupProps *p = core->cgroup_props[i];
		if (p->hierarchy != e->hierarchy || strcmp(p->path, level))
			continue;
		for (size_t k = 0; k < p->n_props; k++) {
			int ret = write_prop(dir, p->props[k]->name, p->props[k]->value);
			if (ret)
				return pr_errno(ret, "restore: cgroup %s: set %s to '%s'", dir,
						p->props[k]->name, p->props[k]->value);
		}
	}
	return 0;
}
