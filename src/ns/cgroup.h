/* Cgroup membership and cgroup namespaces (src/ns/cgroup.c); its row is cgroup_resource. */
#ifndef STASIS_CGROUP_H
#define STASIS_CGROUP_H

#include <stdbool.h>
#include <stddef.h>

#include "cr/ctx.h"

/* A cgroup path of an image: absolute, at most PROC_MAX_CGROUP_PATH bytes, no empty,
 * "." or ".." component ("/" itself is clean). */
bool cgroup_path_is_clean(const char *p);

/* The root of a cgroup namespace from what a task in it shows: @outside is its cgroup
 * read from outside (by the dumper), @inside the same line read from inside the
 * namespace; the root is @outside without the suffix @inside. 0 with the root in @out,
 * -ERANGE when the task sits outside its namespace's root (@inside has "/.."), -EINVAL
 * when @inside is not a suffix of @outside at a component boundary, -ENAMETOOLONG. Pure. */
int cgroup_ns_root(const char *outside, const char *inside, char *out, size_t len)
	__must_check;

/* Does a v1 mount with superblock options @opts ("rw,cpu,cpuacct") hold every
 * controller (or "name=") of @controllers ("cpu,cpuacct")? Pure. */
bool cgroup_opts_have(const char *opts, const char *controllers);

/* Dump, from src/ns/ns.c: @c created its cgroup namespace (it differs from its parent's):
 * record its root per hierarchy (c->tns->cgroupns), reading /proc/self/cgroup inside
 * the task with remote syscalls; its owner must be the task's user namespace. */
int cgroup_ns_dump(struct dump_ctx *c) __must_check;

/* Dump, from src/ns/mnt.c: the root of a fresh cgroup/cgroup2 mount (@root as the dumper
 * sees it) relative to the cgroup namespace @ns its mount namespace is rebuilt in (NULL:
 * the dumper's, @root unchanged), in @out. -EOPNOTSUPP (logged) when it lies outside. */
int cgroup_mount_root(const CgroupNs *ns, const char *mountpoint, const char *fstype,
		      const char *opts, const char *root, char *out, size_t len) __must_check;

/* --manage-cgroups (restore): CRIU's modes. */
enum cg_mode {
	CG_MODE_SOFT = 0, /* default: create missing cgroups, set the settings of those made */
	CG_MODE_IGNORE,   /* leave the tasks in the restorer's cgroups */
	CG_MODE_NONE,     /* the cgroups must exist; their settings are left alone */
	CG_MODE_PROPS,    /* the cgroups must exist; their settings are set */
	CG_MODE_FULL,     /* create missing cgroups, set every cgroup's settings */
	CG_MODE_STRICT,   /* the tree's own cgroups must not exist: made, settings set */
};
/* The mode named @s ("soft", "full", ...): >= 0, or -EINVAL. */
int cgroup_mode(const char *s);

int cgroup_dump(struct dump_ctx *c) __must_check; /* membership */
/* Restorer: move the task into its cgroups (created if missing, with their settings, as
 * the --manage-cgroups mode says). */
int cgroup_restore_remote(struct rst_ctx *c) __must_check;
/* The mount point of the hierarchy with these controllers (v1) or of cgroup2 (""), in
 * this process's view. */
int cgroup_find_mount(const char *controllers, char *out, size_t len) __must_check;

/* --cgroup-root "[CONTROLLERS:]/PATH" (CRIU's spelling): 0 with the controllers in @ctrl
 * ("" when none are named: the root of every hierarchy no other names) and *@path
 * pointing into @arg; -EINVAL when malformed. Pure. */
int cgroup_root_parse(const char *arg, char *ctrl, size_t len, const char **path)
	__must_check;
/* Restore, once the images are read and before anything is made: with --cgroup-root (and
 * a mode other than ignore), in each hierarchy given a new root, the root task's cgroup
 * becomes that root and every cgroup below it follows (the paths of @procs' memberships,
 * of the settings recorded for them, of the roots of cgroup namespaces they create are
 * rewritten; settings of cgroups above the root's are dropped). A membership or a
 * namespace root not below the root task's cgroup is refused with one line. The roots of
 * fresh cgroup mounts of tasks in stasis's cgroup namespace (shown from the hierarchy's
 * root) follow too. @procs[i] is task i of @inv (NULL: a zombie). */
int cgroup_remap(const Inventory *inv, struct rst_ctx *const *procs, size_t n) __must_check;
/* src/ns/cgprops.c: the settings of the tree's cgroups. Dump (the row's dump_tree hook):
 * into each task's Core. Restore: the image check, and the settings of cgroup @level of
 * hierarchy @e, at @dir, written where they differ. */
int cgprops_dump_tree(struct dump_tree *t) __must_check;
int cgprops_validate(const Core *core, pid_t pid) __must_check;
int cgprops_apply(const Core *core, const CgroupEntry *e, const char *level, const char *dir)
	__must_check;

/* Restore, on load: membership paths of @core and the cgroup namespace @ns it created
 * (NULL: none) are sane. */
int cgroup_validate(const Core *core, const CgroupNs *ns, pid_t pid) __must_check;
/* In the restoring stasis before any process exists: open the cgroup.procs file of each
 * root of the cgroup namespace @c creates (created if missing), at fds >= *fd_top
 * (moved past them); inherited by every restore child. Not for a root where @c starts
 * anyway: its creator sits in the roots of @from (the cgroup namespace created by the
 * nearest task up its creator chain; NULL: in stasis's cgroups), so that a restorer
 * without rights over the cgroups can rebuild a namespace rooted where it is. */
int cgroup_ns_prepare(struct rst_ctx *c, const CgroupNs *from, int *fd_top) __must_check;
/* Close what cgroup_ns_prepare opened (stasis's copies). */
void cgroup_ns_release(struct rst_ctx *c);
/* Restore child of a task that created a cgroup namespace, before anything else that
 * depends on it (the mount tree): into the namespace's root cgroups, then
 * unshare(CLONE_NEWCGROUP). The move into its own cgroups comes later (the restorer's
 * cgroup_restore_remote). */
int cgroup_ns_restore_child(struct rst_ctx *c) __must_check;

#endif
