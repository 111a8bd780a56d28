/* The names of mapped files and of the executable: which view a path is in, and the
 * name the kernel gives the file (dump), made the same again (restore).
 *
 * The kernel names a file from the root of the mount tree it is reached through. A task
 * that reached it through a detached tree (it pivot_root'ed away from the mount its
 * executable is on, and the old root was unmounted: "/ckpt/prog" where stasis finds it as
 * /srv/c1/ckpt/prog by its file handle), or through a mount where stasis's view has a
 * symlink (the task's /lib a bind of /usr/lib, stasis's /lib -> usr/lib), has a shorter
 * name for it than the path stasis opens. Mapped again by that path, the restored task
 * would see the longer name in /proc/PID/exe and maps. The dump records where the task's
 * root was in the found path (Vma.detached_at, Mm.exe_detached_at); before any process
 * exists stasis makes one detached copy of each such directory (open_tree
 * OPEN_TREE_CLONE: a mount tree of its own) and holds it above every child's fds like
 * the deleted files mapped by several processes; each child opens the files in the copy,
 * which the kernel then names as it did. Where the copy cannot be made (no CAP_SYS_ADMIN
 * over stasis's mount namespace: a non-root restore) the file is opened by its full path,
 * as before, and the restore says so. */
#include "mem/internal.h"

#include <fcntl.h>
#include <limits.h>
#include <linux/openat2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "core/log.h"
#include "core/util.h"
#include "proc/fhpath.h"
#include "sys/syscalls.h"
#include "sys/uapi.h"

/* ---- dump: the names ---- */

/* @found names, in stasis's view, the file the task named @path (*@path). The kernel names
 * a file from the root of the mount tree it is reached through: a task that saw it as
 * /lib/x.so where /lib is a mount of what stasis sees as /usr/lib (or through a tree it
 * pivot_root'ed away from) has a shorter name for it. When @path ends @found, where the
 * task's root was in @found is recorded (mem_droot_*: restored through a detached copy
 * of that directory, which names it the same again); @found replaces *@path. */
static void name_from_root(char *found, char **path, protobuf_c_boolean *has_at,
			   uint32_t *at)
{
	size_t fl = strlen(found), nl = strlen(*path);
	if ((*path)[0] == '/' && nl < fl && !strcmp(found + fl - nl, *path)) {
		*has_at = true;
		*at = (uint32_t)(fl - nl);
	}
	free(*path);
	*path = found;
}

/* A mapped file whose path reaches nothing in either view (its mount was detached: a task
 * that pivot_root'ed away from its executable's mount): named in stasis's view through its
 * file handle (@fd, an O_PATH of it), *@path replaced. The view (0), or -1 (left as is). */
int mem_view_by_handle(const struct dump_ctx *c, int fd, char **path,
		       protobuf_c_boolean *has_at, uint32_t *at)
{
	char *found = NULL;
	int ret = fh_path(fd, &found);
	if (ret) {
		pr_debug("mem: pid %d: %s: no path through its file handle: %s", c->pid, *path,
			 strerror(-ret));
		return -1;
	}
	pr_info("mem: pid %d: %s is %s in stasis's view (found by its file handle)", c->pid,
		*path, found);
	name_from_root(found, path, has_at, at);
	return 0;
}

/* A path found in stasis's view (path_view 0) that is not the name the kernel gives the
 * file there (a symlink on the way: the task's /lib a mount, stasis's a link to usr/lib). */
void mem_view_name(const struct dump_ctx *c, char **path, protobuf_c_boolean *has_at,
		   uint32_t *at)
{
	_cleanup_close_ int fd = open(*path, O_PATH | O_CLOEXEC);
	char buf[PATH_MAX];
	if (fd < 0 || fd_link(fd, buf, sizeof(buf)) <= 0 || buf[0] != '/' || !strcmp(buf, *path))
		return;
	char *found = strdup(buf);
	if (!found)
		return; /* (named by its full path then, as the dumper's view names it) */
	pr_debug("mem: pid %d: %s is %s in stasis's view", c->pid, *path, found);
	name_from_root(found, path, has_at, at);
}

/* Which view each mapped file's path is in (core/util.h path_view), once per file, and
 * the name the kernel gave it (above). */
int mem_file_views(struct dump_ctx *c, Mm *mm)
{
	_cleanup_free_ char *prev_name = NULL; /* the previous file area's, as the task saw it */
	for (size_t i = 0; i < mm->n_vmas; i++) {
		Vma *v = mm->vmas[i];
		if (v->kind != VMA_KIND__VMA_FILE || (v->has_deleted && v->deleted))
			continue;
		const Vma *p = i ? mm->vmas[i - 1] : NULL;
		if (p && p->kind == VMA_KIND__VMA_FILE && p->dev == v->dev && p->ino == v->ino &&
		    prev_name && !strcmp(prev_name, v->path)) {
			char *same = strdup(p->path);
			if (!same)
				return -ENOMEM;
			free(v->path);
			v->path = same;
			v->has_detached_at = p->has_detached_at;
			v->detached_at = p->detached_at;
			v->has_in_task_root = p->has_in_task_root;
			v->in_task_root = p->in_task_root;
			continue;
		}
		free(prev_name);
		if (!(prev_name = strdup(v->path)))
			return -ENOMEM;
		int view = path_view(c->procfd, v->path, (dev_t)v->dev, (ino_t)v->ino);
		if (view == 0)
			mem_view_name(c, &v->path, &v->has_detached_at, &v->detached_at);
		if (view < 0) {
			char rel[64];
			snprintf(rel, sizeof(rel), "map_files/%llx-%llx",
				 (unsigned long long)v->start, (unsigned long long)v->end);
			_cleanup_close_ int mfd = openat(c->procfd, rel, O_PATH | O_CLOEXEC);
			if (mfd >= 0)
				view = mem_view_by_handle(c, mfd, &v->path, &v->has_detached_at,
						      &v->detached_at);
		}
		v->has_in_task_root = view >= 0;
		v->in_task_root = view == 1;
	}
	return 0;
}

/* ---- restore: the copies ---- */

bool mem_droot_valid(const char *path, uint32_t at)
{
	return path && path[0] == '/' && at > 0 && at < strlen(path) && path[at] == '/';
}

/* Hold a copy of path[0, @at) unless one is held already. */
static int droot_add(const char *path, uint32_t at, struct ghost_obj **g, size_t *ng,
		     int *fd_top)
{
	for (size_t k = 0; k < *ng; k++)
		if ((*g)[k].droot && strlen((*g)[k].droot) == at && !strncmp((*g)[k].droot, path, at))
			return 0;
	_cleanup_free_ char *root = strndup(path, at);
	if (!root)
		return -ENOMEM;
	int fd = open_tree(AT_FDCWD, root, OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC);
	if (fd < 0) {
		pr_warn("restore: no detached copy of %s (%s): files the tasks reached through a "
			"detached mount tree there are opened by their full path, and named so",
			root, strerror(errno));
		return 0;
	}
	int high = fcntl(fd, F_DUPFD_CLOEXEC, *fd_top);
	close(fd);
	if (high < 0)
		return pr_perror("restore: hold a detached copy of %s", root);
	struct ghost_obj *n = realloc(*g, (*ng + 1) * sizeof(*n));
	if (!n) {
		close(high);
		return -ENOMEM;
	}
	*g = n;
	*fd_top = high + 1;
	n[(*ng)++] = (struct ghost_obj){ .fd = high, .droot = root };
	root = NULL;
	return 0;
}

int mem_droot_prepare(struct rst_ctx *const *procs, size_t n, struct ghost_obj **g,
		      size_t *ng, int *fd_top)
{
	int ret = 0;
	for (size_t p = 0; p < n && !ret; p++) {
		const Mm *mm = procs[p]->mm;
		if (mm->exe_path && mm->has_exe_detached_at)
			ret = droot_add(mm->exe_path, mm->exe_detached_at, g, ng, fd_top);
		for (size_t i = 0; i < mm->n_vmas && !ret; i++) {
			const Vma *v = mm->vmas[i];
			if (v->kind == VMA_KIND__VMA_FILE && v->has_detached_at &&
			    !(v->has_deleted && v->deleted))
				ret = droot_add(v->path, v->detached_at, g, ng, fd_top);
		}
	}
	return ret;
}

int mem_droot_open(const struct rst_ctx *c, const char *path, uint32_t at, int flags)
{
	for (size_t k = 0; k < c->n_ghosts; k++) {
		const char *r = c->ghosts[k].droot;
		if (!r || strlen(r) != at || strncmp(r, path, at))
			continue;
		struct open_how how = {
			.flags = (uint64_t)flags,
			.resolve = RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS,
		};
		int fd = sys_openat2(c->ghosts[k].fd, path + at + 1, &how, sizeof(how));
		return fd >= 0 ? fd : pr_perror("restore: open %s in a detached copy of %s", path, r);
	}
	return -ENOENT;
}
