/* Mount namespaces.
 *
 * Dump: for a mount namespace created by a task of the tree, /proc/PID/mountinfo is read
 * (src/proc/mountinfo.c) and every mount is recorded with how it will be recreated:
 *   - MOUNT_EXTERNAL: declared by `--external mnt[MOUNTPOINT]:KEY`;
 *   - MOUNT_HOST: its filesystem is visible in the namespace the creator copied its own
 *     from (stasis's for the first, the parent task's for a nested one): same device and
 *     the mount's root reachable at a path there, checked with statx (device, mount id,
 *     inode). Restored as a bind of that path;
 *   - MOUNT_FRESH: a pseudo filesystem (proc, sysfs, devpts, mqueue, cgroup, cgroup2,
 *     tmpfs) mounted anew with its superblock options; a tmpfs carries its contents
 *     (src/ns/tmpfs.c).
 * Anything else is refused with the mount named.
 *
 * Restore, in the restore child of the creator (cloned with CLONE_NEWNS, so it starts in a
 * copy of its creator's namespace, which has the layout the dump saw): everything is made
 * private (nothing can propagate out), then every mount is created detached (fsmount for
 * a fresh superblock, open_tree(OPEN_TREE_CLONE) for a bind) with its flags
 * (mount_setattr), the root is put on top of "/", each other mount is attached under its
 * parent (parents first, RESOLVE_NO_XDEV so that it lands exactly in its parent), the
 * task pivots into the new root and detaches the old one, and only then are peer groups
 * and slaves rebuilt with MOVE_MOUNT_SET_GROUP (the pivot refuses shared mounts).
 * Peer groups spanning two namespaces of the tree are rebuilt per namespace. */
#include <dirent.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "ns/cgroup.h"
#include "core/log.h"
#include "cr/resource.h"
#include "image/blob.h"
#include "ns/mnt.h"
#include "ns/mnt_int.h"
#include "ns/ns.h"
#include "ns/userns.h"
#include "proc/mountinfo.h"
#include "sys/syscalls.h"

#define MNT_MAX_MOUNTS 512
#define MNT_ATTR_ALL                                                                        \
	(MNT_F_RDONLY | MNT_F_NOSUID | MNT_F_NODEV | MNT_F_NOEXEC | MNT_F__ATIME |          \
	 MNT_F_NODIRATIME | MNT_F_NOSYMFOLLOW)

/* --- paths ------------------------------------------------------------------------ */

/* A mountinfo-bounded clean path (core/util.h). */
bool mnt_path_ok(const char *p, bool absolute)
{
	return path_is_clean(p, MNTINFO_MAX_PATH, absolute);
}

/* @path relative to "/" ("." for "/" itself). */
const char *mnt_rel_of(const char *path)
{
	return path[1] ? path + 1 : ".";
}

/* The root of a bound namespace file: "KIND:[INODE]". */
static bool nsfs_root_ok(const char *r)
{
	size_t k = strspn(r, "abcdefghijklmnopqrstuvwxyz_");
	if (!k || k > 32 || strncmp(r + k, ":[", 2))
		return false;
	size_t d = strspn(r + k + 2, "0123456789");
	return d && d <= 20 && !strcmp(r + k + 2 + d, "]");
}

/* @p below @base, as a relative path ("." if equal). */
static const char *rel_below(const char *p, const char *base)
{
	const char *r = strcmp(base, "/") ? p + strlen(base) : p;
	while (*r == '/')
		r++;
	return *r ? r : ".";
}

int mnt_open_beneath(int dfd, const char *rel, uint64_t resolve, int flags)
{
	struct open_how how = {
		.flags = (uint64_t)(flags | O_CLOEXEC),
		.resolve = resolve | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS,
	};
	return sys_openat2(dfd, rel, &how, sizeof(how));
}

/* The index of the mount with id @id among the first @below of @ns, or -1. */
static ssize_t mount_index(const MntNs *ns, uint32_t id, size_t below)
{
	for (size_t j = 0; j < below; j++)
		if (ns->mounts[j]->id == id)
			return (ssize_t)j;
	return -1;
}

/* --- externals ---------------------------------------------------------------------- */

int mnt_parse_external(const char *arg, bool at_dump, char **a, char **b)
{
	*a = *b = NULL;
	if (!str_starts(arg, "mnt[")) {
		pr_err("external '%s': only mnt[...]:... is supported", arg);
		return -EINVAL;
	}
	const char *in = arg + 4;
	/* a mount point may hold "]:", a key may not: split at the last one at dump, at
	 * the first one (after the key) at restore */
	const char *sep = NULL;
	for (const char *s = strstr(in, "]:"); s; s = strstr(s + 1, "]:")) {
		sep = s;
		if (!at_dump)
			break;
	}
	if (!sep || sep == in || !sep[2]) {
		pr_err("external '%s': expected mnt[%s]:%s", arg, at_dump ? "MOUNTPOINT" : "KEY",
		       at_dump ? "KEY" : "HOSTPATH");
		return -EINVAL;
	}
	*a = strndup(in, (size_t)(sep - in));
	*b = strdup(sep + 2);
	if (!*a || !*b) {
		free(*a);
		free(*b);
		*a = *b = NULL;
		return -ENOMEM;
	}
	const char *path = at_dump ? *a : *b, *key = at_dump ? *b : *a;
	if (!mnt_path_ok(path, true) || strlen(key) > 255) {
		pr_err("external '%s': the path must be absolute and clean, the key short", arg);
		free(*a);
		free(*b);
		*a = *b = NULL;
		return -EINVAL;
	}
	return 0;
}

/* The other half of the --external mnt[A]:B value whose A is @a (at dump A is the mount
 * point and B the key, at restore A is the key and B the host path), or NULL (malloc'd). */
static char *external_lookup(char *const *ext, size_t n, bool at_dump, const char *a)
{
	for (size_t i = 0; i < n; i++) {
		char *x, *y;
		if (!str_starts(ext[i], "mnt[") || mnt_parse_external(ext[i], at_dump, &x, &y))
			continue;
		bool hit = !strcmp(x, a);
		free(x);
		if (hit)
			return y;
		free(y);
	}
	return NULL;
}


/* --- dump: the mount list ----------------------------------------------------------- */

static bool fs_is_fresh(const char *fstype)
{
	static const char *const fresh[] = { "proc",   "sysfs",   "devpts", "mqueue",
					     "cgroup", "cgroup2", "tmpfs" };
	for (size_t i = 0; i < ARRAY_SIZE(fresh); i++)
		if (!strcmp(fstype, fresh[i]))
			return true;
	return false;
}

/* Parents before children, otherwise in the order of mountinfo (creation order: mounts
 * stacked on one mount point, or hidden by a later one, keep their order). The root is
 * the one mount whose parent is not listed. */
static int order_mounts(const struct mountinfo *mi, size_t n, size_t *order)
{
	_cleanup_free_ bool *placed = calloc(n, sizeof(bool));
	_cleanup_free_ ssize_t *par = malloc(n * sizeof(ssize_t));
	size_t k = 0, roots = 0;
	if (!placed || !par)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++) {
		par[i] = -1;
		for (size_t j = 0; j < n; j++)
			if (j != i && mi[j].id == mi[i].parent)
				par[i] = (ssize_t)j;
		for (size_t j = 0; j < i; j++)
			if (mi[j].id == mi[i].id) {
				pr_err("dump: mountinfo lists mount %u twice", mi[i].id);
				return -EINVAL;
			}
		if (par[i] < 0) {
			roots++;
			order[k++] = i;
			placed[i] = true;
			if (strcmp(mi[i].mountpoint, "/")) {
				pr_err("dump: the root mount of the namespace is at %s: not supported",
				       mi[i].mountpoint);
				return -EOPNOTSUPP;
			}
		}
	}
	if (roots != 1) {
		pr_err("dump: the mount namespace has %zu root mounts", roots);
		return -EINVAL;
	}
	while (k < n) {
		bool progress = false;
		for (size_t i = 0; i < n; i++)
			if (!placed[i] && placed[par[i]]) {
				order[k++] = i;
				placed[i] = progress = true;
			}
		if (!progress) {
			pr_err("dump: the mounts of the namespace do not form a tree");
			return -EINVAL;
		}
	}
	return 0;
}

/* The mounts of the namespace a new namespace was copied from: who sees them, how. */
struct creator_view {
	struct mountinfo *mi;
	size_t n;
	int rootfd; /* its root directory */
};

/* A path in the creator's namespace where mount @m's root is: same device, reached in
 * the creator's mount @h (not hidden), same inode as the task sees (@task_ino, 0 if the
 * task cannot reach it). NULL if there is none. */
static char *creator_path(const struct creator_view *cv, const struct mountinfo *m,
			  uint64_t task_ino)
{
	for (size_t i = 0; i < cv->n; i++) {
		const struct mountinfo *h = &cv->mi[i];
		if (h->major != m->major || h->minor != m->minor || !path_is_under(m->root, h->root))
			continue;
		const char *below = rel_below(m->root, h->root);
		char path[MNTINFO_MAX_PATH + 8];
		int len = strcmp(below, ".") ? snprintf(path, sizeof(path), "%s%s%s", h->mountpoint,
							 strcmp(h->mountpoint, "/") ? "/" : "",
							 below)
					     : snprintf(path, sizeof(path), "%s", h->mountpoint);
		if (len < 0 || (size_t)len >= MNTINFO_MAX_PATH || !mnt_path_ok(path, true))
			continue;
		_cleanup_close_ int fd =
			mnt_open_beneath(cv->rootfd, mnt_rel_of(path), RESOLVE_IN_ROOT, O_PATH);
		struct statx sx;
		if (fd < 0 || statx(fd, "", AT_EMPTY_PATH, STATX_INO | STATX_MNT_ID, &sx) < 0)
			continue;
		if (sx.stx_dev_major != m->major || sx.stx_dev_minor != m->minor ||
		    sx.stx_mnt_id != h->id || (task_ino && sx.stx_ino != task_ino))
			continue;
		return strdup(path);
	}
	return NULL;
}

static int load_mountinfo(int dirfd, const char *name, struct mountinfo **mi, size_t *n)
{
	_cleanup_free_ char *buf = read_file_at(dirfd, name, 4u << 20, NULL);
	if (!buf)
		return pr_perror("dump: read %s", name);
	int ret = mountinfo_parse(buf, mi, n);
	if (ret)
		pr_err("dump: malformed %s", name);
	return ret;
}

static int creator_view_open(struct creator_view *cv, const struct dump_ctx *creator)
{
	cv->rootfd = creator ? openat(creator->procfd, "root", O_PATH | O_DIRECTORY | O_CLOEXEC)
			     : open("/", O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (cv->rootfd < 0)
		return pr_perror("dump: open the root of pid %d", creator ? creator->pid : getpid());
	if (creator)
		return load_mountinfo(creator->procfd, "mountinfo", &cv->mi, &cv->n);
	return load_mountinfo(AT_FDCWD, "/proc/self/mountinfo", &cv->mi, &cv->n);
}

static Mount *new_mount(const struct mountinfo *mi)
{
	Mount *m = malloc(sizeof(*m));
	if (!m)
		return NULL;
	mount__init(m);
	m->id = mi->id;
	m->parent_id = mi->parent;
	m->mountpoint = strdup(mi->mountpoint);
	m->root = strdup(mi->root);
	m->fstype = strdup(mi->fstype);
	m->source = strdup(mi->source);
	m->sb_opts = strdup(mi->sb_opts);
	m->dev = makedev(mi->major, mi->minor);
	m->flags = mi->flags;
	m->has_shared = mi->shared != 0;
	m->shared = mi->shared;
	m->has_master = mi->master != 0;
	m->master = mi->master;
	m->has_unbindable = mi->unbindable;
	m->unbindable = mi->unbindable;
	if (!m->mountpoint || !m->root || !m->fstype || !m->source || !m->sb_opts) {
		mount__free_unpacked(m, NULL);
		return NULL;
	}
	return m;
}

/* The owners of a tmpfs's files, read as stasis sees them, as the task's user namespace
 * sees them: the restore creates them there. */
static int owners_as_task(const struct dump_ctx *c, Mount *m)
{
	struct userns_view v;
	int ret = m->n_tmpfs ? userns_view_open(c->procfd, c->pid, &v) : 0;
	if (ret || !m->n_tmpfs)
		return ret;
	for (size_t i = 0; i < m->n_tmpfs && !v.same && !ret; i++) {
		TmpfsEntry *e = m->tmpfs[i];
		if (userns_view_id(&v, false, e->uid, &e->uid) ||
		    userns_view_id(&v, true, e->gid, &e->gid)) {
			pr_err("dump: %s in the tmpfs at %s is owned by ids pid %d's user namespace "
			       "does not map: not supported",
			       e->path, m->mountpoint, c->pid);
			ret = -EOPNOTSUPP;
		}
	}
	userns_view_close(&v);
	return ret;
}

/* tmpfs and devpts show their uid=/gid= options as ids of the initial user namespace; the
 * restore passes them to mount(2) in the task's, which reads them there: store them as
 * the task's user namespace sees them. An id it does not map stays (warned). */
static int ids_as_task(const struct dump_ctx *c, Mount *m)
{
	if (strcmp(m->fstype, "tmpfs") && strcmp(m->fstype, "devpts"))
		return 0;
	size_t len = strlen(m->sb_opts);
	char *out = malloc(len + 64), *o = out;
	_cleanup_free_ char *in = strdup(m->sb_opts);
	if (!out || !in) {
		free(out);
		return -ENOMEM;
	}
	size_t room = len + 64;
	char *save = NULL;
	for (char *opt = strtok_r(in, ",", &save); opt; opt = strtok_r(NULL, ",", &save)) {
		bool gid = str_starts(opt, "gid="), uid = str_starts(opt, "uid=");
		long long v;
		uint32_t mapped;
		int n;
		if ((uid || gid) && !parse_int(opt + 4, 0, UINT32_MAX, &v) &&
		    !userns_id_from_init(c->procfd, c->pid, gid, (uint32_t)v, &mapped))
			n = snprintf(o, room, "%s%s=%u", o == out ? "" : ",", uid ? "uid" : "gid",
				     mapped);
		else {
			if (uid || gid)
				pr_warn("dump: %s at %s: %s is not an id of pid %d's user namespace: "
					"kept as is",
					m->fstype, m->mountpoint, opt, c->pid);
			n = snprintf(o, room, "%s%s", o == out ? "" : ",", opt);
		}
		if (n < 0 || (size_t)n >= room) {
			free(out);
			return -E2BIG;
		}
		o += n;
		room -= (size_t)n;
	}
	*o = '\0';
	free(m->sb_opts);
	m->sb_opts = out;
	return 0;
}

/* Where the task sees mount @mi: an O_PATH fd of its root if reachable (not hidden by
 * another mount), else -1. */
static int task_reach(int task_root, const struct mountinfo *mi, uint64_t *ino)
{
	int fd = mnt_open_beneath(task_root, mnt_rel_of(mi->mountpoint), RESOLVE_IN_ROOT, O_PATH);
	struct statx sx;
	*ino = 0;
	if (fd < 0)
		return -1;
	if (statx(fd, "", AT_EMPTY_PATH, STATX_INO | STATX_MNT_ID, &sx) < 0 ||
	    sx.stx_mnt_id != mi->id) {
		close(fd);
		return -1;
	}
	*ino = sx.stx_ino;
	return fd;
}

/* Decide how mount @mi is recreated; read a tmpfs's contents once per superblock. */
static int classify(struct dump_ctx *c, const struct creator_view *cv, int task_root,
		    const struct mountinfo *mi, const struct mountinfo *all, size_t n, Mount *m,
		    bool first_of_sb)
{
	uint64_t ino;
	_cleanup_close_ int fd = task_reach(task_root, mi, &ino);
	if (mi->flags & MNT_F_IDMAP) {
		pr_err("dump: mount %s (%s) is idmapped: not supported", mi->mountpoint, mi->fstype);
		return -EOPNOTSUPP;
	}
	m->ext_key = c->opts ? external_lookup(c->opts->externals, c->opts->n_externals, true,
						   mi->mountpoint)
			  : NULL;
	if (m->ext_key) {
		m->kind = MOUNT_KIND__MOUNT_EXTERNAL;
		return 0;
	}
	m->host_path = creator_path(cv, mi, ino);
	if (m->host_path) {
		m->kind = MOUNT_KIND__MOUNT_HOST;
		return 0;
	}
	if (!fs_is_fresh(mi->fstype)) {
		pr_err("mount %s (%s %s) cannot be recreated: declare it with --external "
		       "mnt[%s]:KEY",
		       mi->mountpoint, mi->fstype, mi->source, mi->mountpoint);
		return -EOPNOTSUPP;
	}
	m->kind = MOUNT_KIND__MOUNT_FRESH;
	struct stat pst;
	/* a proc shows one pid namespace: that of its pid 1 (its init, which is in it) */
	if (!strcmp(mi->fstype, "proc") && fd >= 0 && fstatat(fd, "1/ns/pid", &pst, 0) == 0) {
		m->has_proc_pidns = true;
		m->proc_pidns = pst.st_ino;
	}
	if (!strcmp(mi->fstype, "cgroup") || !strcmp(mi->fstype, "cgroup2")) {
		/* a fresh cgroup mount shows the cgroup namespace it is made in from its root:
		 * the root kept is relative to the one the creator is restored in */
		char root[MNTINFO_MAX_PATH + 1];
		int ret = cgroup_mount_root(c->cgns, mi->mountpoint, mi->fstype, mi->sb_opts,
					    mi->root, root, sizeof(root));
		if (ret)
			return ret;
		free(m->root);
		m->root = strdup(root);
		return m->root ? 0 : -ENOMEM;
	}
	if (!first_of_sb || strcmp(mi->fstype, "tmpfs"))
		return 0;
	/* the contents, through the reachable mount of this superblock with the widest
	 * root */
	const struct mountinfo *best = NULL;
	int best_fd = -1;
	for (size_t j = 0; j < n; j++) {
		const struct mountinfo *o = &all[j];
		if (o->major != mi->major || o->minor != mi->minor ||
		    (best && strlen(o->root) >= strlen(best->root)))
			continue;
		uint64_t oi;
		int ofd = o == mi ? dup(fd) : task_reach(task_root, o, &oi);
		if (ofd < 0)
			continue;
		if (best_fd >= 0)
			close(best_fd);
		best = o;
		best_fd = ofd;
	}
	if (!best) {
		/* no path reaches it (nor any file in it): recreated empty */
		pr_warn("dump: the tmpfs at %s is hidden by other mounts: recreated empty",
			mi->mountpoint);
		return 0;
	}
	m->content_root = strdup(best->root);
	int ret = m->content_root ? tmpfs_dump(c, m, best_fd, best->id, best->mountpoint)
				  : -ENOMEM;
	close(best_fd);
	return ret ? ret : owners_as_task(c, m);
}

/* Mark the mounts the namespace was made with (copies of the creator's mounts still in
 * place, whatever their kind for a rebuild: a hidden one is a fresh mount there): @x
 * (mountinfo of image mount k, parents first) is at the same mount point as a creator
 * mount not matched yet, with the same root, device (so the same superblock) and
 * filesystem, and its parent is the copy of that mount's parent (the root: of the
 * creator's root). Matched one to one, so that stacked mounts pair up in order. External
 * mounts are the user's to map. */
static void mark_copies(MntNs *ns, struct mountinfo *const *x, const struct creator_view *cv)
{
	_cleanup_free_ ssize_t *match = malloc(ns->n_mounts * sizeof(ssize_t));
	_cleanup_free_ bool *used = calloc(cv->n + 1, sizeof(bool));
	if (!match || !used)
		return; /* nothing marked: the restore rebuilds every mount */
	for (size_t k = 0; k < ns->n_mounts; k++) {
		Mount *m = ns->mounts[k];
		ssize_t p = k ? mount_index(ns, m->parent_id, k) : -1;
		match[k] = -1;
		if (m->kind == MOUNT_KIND__MOUNT_EXTERNAL || (k && (p < 0 || match[p] < 0)))
			continue;
		for (size_t j = 0; j < cv->n; j++) {
			const struct mountinfo *h = &cv->mi[j];
			if (used[j] || h->major != x[k]->major || h->minor != x[k]->minor ||
			    strcmp(h->mountpoint, x[k]->mountpoint) || strcmp(h->root, x[k]->root) ||
			    strcmp(h->fstype, x[k]->fstype))
				continue;
			bool parent_ok = true;
			if (k) {
				parent_ok = h->parent == cv->mi[match[p]].id;
			} else {
				for (size_t i = 0; i < cv->n; i++)
					parent_ok &= cv->mi[i].id != h->parent;
			}
			if (!parent_ok)
				continue;
			used[j] = true;
			match[k] = (ssize_t)j;
			m->has_copied = m->copied = true;
			break;
		}
	}
}

int mnt_dump_ns(struct dump_ctx *c, const struct dump_ctx *creator)
{
	struct creator_view cv = { .rootfd = -1 };
	struct mountinfo *mi = NULL;
	size_t n = 0;
	_cleanup_free_ size_t *order = NULL;
	_cleanup_free_ struct mountinfo **by_k = NULL;
	_cleanup_close_ int task_root = -1;
	MntNs *ns = NULL;
	int ret = load_mountinfo(c->procfd, "mountinfo", &mi, &n);
	if (!ret && n > MNT_MAX_MOUNTS) {
		pr_err("dump: pid %d's mount namespace has %zu mounts (at most %d supported)",
		       c->pid, n, MNT_MAX_MOUNTS);
		ret = -EOPNOTSUPP;
	}
	if (!ret)
		ret = creator_view_open(&cv, creator);
	if (ret)
		goto out;
	order = malloc(n * sizeof(*order));
	by_k = malloc(n * sizeof(*by_k));
	ns = malloc(sizeof(*ns));
	if (ns)
		mnt_ns__init(ns);
	if (ns)
		ns->mounts = calloc(n, sizeof(*ns->mounts));
	if (!order || !by_k || !ns || !ns->mounts) {
		ret = -ENOMEM;
		goto out;
	}
	ret = order_mounts(mi, n, order);
	if (ret)
		goto out;
	task_root = openat(c->procfd, "root", O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (task_root < 0) {
		ret = pr_perror("dump: open /proc/%d/root", c->pid);
		goto out;
	}
	for (size_t k = 0; k < n && !ret; k++) {
		struct mountinfo *x = by_k[k] = &mi[order[k]];
		bool nsfs = !strcmp(x->fstype, "nsfs");
		if (!mnt_path_ok(x->mountpoint, true) ||
		    !(nsfs ? nsfs_root_ok(x->root) : mnt_path_ok(x->root, true))) {
			pr_err("dump: mount %u has an unusable path (%s, root %s)", x->id,
			       x->mountpoint, x->root);
			ret = -EINVAL;
			break;
		}
		Mount *m = new_mount(x);
		if (!m) {
			ret = -ENOMEM;
			break;
		}
		ret = ids_as_task(c, m);
		if (ret) {
			mount__free_unpacked(m, NULL);
			break;
		}
		ns->mounts[ns->n_mounts++] = m;
		bool first = true;
		for (size_t j = 0; j < k; j++) {
			const Mount *p = ns->mounts[j];
			first &= !(p->dev == m->dev && p->kind == MOUNT_KIND__MOUNT_FRESH);
		}
		ret = classify(c, &cv, task_root, x, mi, n, m, first);
		pr_debug("dump: pid %d mount %s (%s): kind %d%s%s", c->pid, x->mountpoint,
			 x->fstype, m->kind, m->host_path ? " from " : "",
			 m->host_path ? m->host_path : "");
	}
	if (!ret)
		mark_copies(ns, by_k, &cv);
out:
	if (ret && ns)
		mnt_ns__free_unpacked(ns, NULL);
	else
		c->tns->mnt = ns;
	if (cv.rootfd >= 0)
		close(cv.rootfd);
	mountinfo_free(cv.mi, cv.n);
	mountinfo_free(mi, n);
	return ret;
}

/* --- restore: validation ------------------------------------------------------------ */

static int validate_mount(const struct rst_ctx *c, const MntNs *ns, size_t i)
{
	const Mount *m = ns->mounts[i];
	const char *mp = m->mountpoint;
	/* a namespace file (a pin) is only ever bound from the creator's view */
	bool root_ok = m->kind == MOUNT_KIND__MOUNT_HOST && !strcmp(m->fstype, "nsfs")
			       ? nsfs_root_ok(m->root)
			       : mnt_path_ok(m->root, true);
	if (!mnt_path_ok(mp, true) || !root_ok || !*m->fstype ||
	    strlen(m->fstype) > 64 || strlen(m->source) > MNTINFO_MAX_PATH ||
	    strlen(m->sb_opts) > MNTINFO_MAX_PATH || (m->flags & ~MNT_ATTR_ALL) ||
	    mount_index(ns, m->id, i) >= 0) {
		pr_err("image: mount %zu of pid %d is invalid", i, c->pid);
		return -EINVAL;
	}
	ssize_t p = i ? mount_index(ns, m->parent_id, i) : -1;
	if (i ? (p < 0 || !path_is_under(mp, ns->mounts[p]->mountpoint)) : strcmp(mp, "/")) {
		pr_err("image: mount %s of pid %d is not under its parent", mp, c->pid);
		return -EINVAL;
	}
	if (m->n_tmpfs && (m->kind != MOUNT_KIND__MOUNT_FRESH || strcmp(m->fstype, "tmpfs") ||
			   !m->content_root || !mnt_path_ok(m->content_root, true))) {
		pr_err("image: mount %s of pid %d has contents but is no fresh tmpfs", mp, c->pid);
		return -EINVAL;
	}
	int tret = tmpfs_validate(c, m);
	if (tret)
		return tret;
	switch (m->kind) {
	case MOUNT_KIND__MOUNT_FRESH:
		if (!fs_is_fresh(m->fstype)) {
			pr_err("image: mount %s of pid %d: %s cannot be mounted fresh", mp, c->pid,
			       m->fstype);
			return -EINVAL;
		}
		return 0;
	case MOUNT_KIND__MOUNT_HOST:
		if (!m->host_path || !mnt_path_ok(m->host_path, true)) {
			pr_err("image: mount %s of pid %d has no valid source path", mp, c->pid);
			return -EINVAL;
		}
		return 0;
	case MOUNT_KIND__MOUNT_EXTERNAL: {
		if (!m->ext_key || !*m->ext_key) {
			pr_err("image: external mount %s of pid %d has no key", mp, c->pid);
			return -EINVAL;
		}
		if (i == 0 && c->is_root && c->opts->root_dir)
			return 0;
		_cleanup_free_ char *hp = external_lookup(c->opts->externals, c->opts->n_externals,
							  false, m->ext_key);
		if (!hp) {
			pr_err("mount %s (%s) is external with key '%s': give --external "
			       "mnt[%s]:HOSTPATH%s",
			       mp, m->fstype, m->ext_key, m->ext_key, i == 0 ? " or --root DIR" : "");
			return -ENOENT;
		}
		return 0;
	}
	default:
		pr_err("image: mount %s of pid %d has an unknown kind %d", mp, c->pid, m->kind);
		return -EINVAL;
	}
}

int mnt_validate(const struct rst_ctx *c)
{
	const MntNs *ns = c->tns->mnt;
	if (!ns)
		return 0;
	if (!ns->n_mounts || ns->n_mounts > MNT_MAX_MOUNTS) {
		pr_err("image: pid %d's mount namespace has %zu mounts", c->pid, ns->n_mounts);
		return -EINVAL;
	}
	for (size_t i = 0; i < ns->n_mounts; i++) {
		int ret = validate_mount(c, ns, i);
		if (ret)
			return ret;
	}
	return 0;
}

/* --- restore: creating mounts ------------------------------------------------------- */

/* The kernel's messages about a failed fsconfig (read from the context fd). */
static void fs_context_messages(int fs, char *buf, size_t size)
{
	buf[0] = '\0';
	char line[256];
	ssize_t n;
	size_t used = 0;
	while ((n = read(fs, line, sizeof(line) - 1)) > 0 && used + 3 < size) {
		line[n] = '\0';
		used += (size_t)snprintf(buf + used, size - used, "%s%s", used ? "; " : " (",
					 line);
	}
	if (used && used + 2 < size)
		snprintf(buf + used, size - used, ")");
}

/* A new superblock of @m's filesystem with its recorded options, mounted detached; a
 * proc for pid namespace @pidns if >= 0 (6.18's "pidns" option), else the caller's. A
 * read-only tmpfs with contents is made writable (*@ro_later set): its contents and root
 * owner are written first, then sb_make_ro. */
static int fresh_sb(const Mount *m, int pidns, bool *ro_later)
{
	_cleanup_close_ int fs = fsopen(m->fstype, FSOPEN_CLOEXEC);
	if (fs < 0)
		return pr_perror("restore: mount %s: fsopen %s", m->mountpoint, m->fstype);
	char msg[512];
	if (pidns >= 0 && fsconfig(fs, FSCONFIG_SET_FD, "pidns", NULL, pidns) < 0) {
		int ret = -errno;
		fs_context_messages(fs, msg, sizeof(msg));
		return pr_errno(ret, "restore: mount %s: proc of a child's pid namespace "
				     "(option pidns, Linux 6.18)%s",
				m->mountpoint, msg);
	}
	if (*m->source && fsconfig(fs, FSCONFIG_SET_STRING, "source", m->source, 0) < 0) {
		int ret = -errno;
		fs_context_messages(fs, msg, sizeof(msg));
		return pr_errno(ret, "restore: mount %s: source %s%s", m->mountpoint, m->source, msg);
	}
	_cleanup_free_ char *opts = strdup(m->sb_opts);
	if (!opts)
		return -ENOMEM;
	char *save = NULL;
	for (char *o = strtok_r(opts, ",", &save); o; o = strtok_r(NULL, ",", &save)) {
		if (!strcmp(o, "rw"))
			continue;
		if (!strcmp(o, "ro") && ro_later && !strcmp(m->fstype, "tmpfs")) {
			*ro_later = true;
			continue;
		}
		char *eq = strchr(o, '=');
		if (eq)
			*eq = '\0';
		int r = eq ? fsconfig(fs, FSCONFIG_SET_STRING, o, eq + 1, 0)
			   : fsconfig(fs, FSCONFIG_SET_FLAG, o, NULL, 0);
		if (r < 0) {
			int ret = -errno;
			fs_context_messages(fs, msg, sizeof(msg));
			return pr_errno(ret, "restore: mount %s (%s): option %s%s%s%s", m->mountpoint,
					m->fstype, o, eq ? "=" : "", eq ? eq + 1 : "", msg);
		}
	}
	if (fsconfig(fs, FSCONFIG_CMD_CREATE, NULL, NULL, 0) < 0) {
		int ret = -errno;
		fs_context_messages(fs, msg, sizeof(msg));
		return pr_errno(ret, "restore: mount %s (%s): create%s", m->mountpoint, m->fstype, msg);
	}
	int mfd = fsmount(fs, FSMOUNT_CLOEXEC, 0);
	if (mfd < 0)
		return pr_perror("restore: mount %s (%s): fsmount", m->mountpoint, m->fstype);
	return mfd;
}

/* The superblock of the detached mount @sb made read-only (fspick + reconfigure). */
static int sb_make_ro(int sb, const Mount *m)
{
	_cleanup_close_ int fs = fspick(sb, "", FSPICK_EMPTY_PATH | FSPICK_CLOEXEC);
	if (fs < 0 || fsconfig(fs, FSCONFIG_SET_FLAG, "ro", NULL, 0) < 0 ||
	    fsconfig(fs, FSCONFIG_CMD_RECONFIGURE, NULL, NULL, 0) < 0)
		return pr_perror("restore: mount %s (%s): make it read-only", m->mountpoint,
				 m->fstype);
	return 0;
}

/* Restore child: the proc mounts of its children's pid namespaces, mounted once the
 * children exist (mnt_restore_late). */
struct mnt_priv {
	size_t n_late;
	const Mount *late[];
};

struct rmount {
	const Mount *m;
	int fd;        /* the mount's root: detached, later attached */
	ssize_t parent;
	int sb;        /* fresh superblocks: the detached mount of their root, else -1 */
	bool late;     /* a proc of a child's pid namespace: mounted by mnt_restore_late */
	bool adopted;  /* came with its parent's recursive bind (adopt_children) */
};

/* A detached copy of the mount at @path (or @fd if @path is NULL). */
static int clone_tree(int dfd, const char *path, const char *what)
{
	int fd = open_tree(dfd, path ? path : "", OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC |
						       (path ? 0 : AT_EMPTY_PATH));
	if (fd < 0)
		return pr_perror("restore: bind %s", what);
	return fd;
}

/* The restore child's own mountinfo, parsed. */
static int self_mountinfo(struct mountinfo **mi, size_t *nmi)
{
	_cleanup_free_ char *buf = read_file_at(AT_FDCWD, "/proc/self/mountinfo", 4u << 20, NULL);
	if (!buf)
		return pr_perror("restore: read /proc/self/mountinfo");
	if (mountinfo_parse(buf, mi, nmi)) {
		pr_err("restore: malformed /proc/self/mountinfo");
		return -EINVAL;
	}
	return 0;
}

/* A mount kept as the kernel copied it (its flags then: only adding locked ones works,
 * and they were so at dump) given the flags of image mount @m. */
static int mnt_set_flags(int fd, const Mount *m)
{
	struct mount_attr a = { .attr_set = m->flags & MNT_ATTR_ALL, .attr_clr = MNT_ATTR_ALL };
	if (mount_setattr(fd, "", AT_EMPTY_PATH, &a, sizeof(a)) < 0)
		return pr_perror("restore: mount %s: set flags %#x on the copied mount",
				 m->mountpoint, m->flags);
	return 0;
}

/* Is mountinfo entry @j one of the mounts a recursive bind of mount @src (id) brought:
 * below it, its parent @src or an entry already matched (@used). */
static bool in_clone(const struct mountinfo *mi, size_t nmi, size_t j, uint32_t src,
		     const bool *used)
{
	if (mi[j].parent == src)
		return true;
	for (size_t k = 0; k < nmi; k++)
		if (mi[k].id == mi[j].parent)
			return used[k];
	return false;
}

/* Image mount @k, a child of @i or of a mount adopted before it, is mountinfo entry @j
 * of the source @src (path @sp, id @sid) that the recursive bind of @i copied. */
static bool adopt_matches(const struct rmount *rm, size_t i, size_t k,
			  const struct mountinfo *mi, size_t j, const char *sp, uint32_t sid,
			  const ssize_t *match)
{
	const Mount *m = rm[k].m;
	size_t p = (size_t)rm[k].parent;
	if (!path_is_under(mi[j].mountpoint, sp) ||
	    strcmp(rel_below(mi[j].mountpoint, sp), rel_below(m->mountpoint, rm[i].m->mountpoint)) ||
	    strcmp(mi[j].root, m->root) || strcmp(mi[j].fstype, m->fstype))
		return false;
	return mi[j].parent == (p == i ? sid : mi[match[p]].id);
}

/* After a recursive bind of @sp for image mount @i (its children locked): the image's
 * mounts below @i that are those children are kept as they came (fd: their place in the
 * copy; -1 when another one is stacked on it), their flags set as recorded; the others
 * are attached as usual. A child of the source the image lacks stays (locked), named. */
static int adopt_children(struct rmount *rm, size_t n, size_t i, const char *sp)
{
	struct mountinfo *mi = NULL;
	size_t nmi = 0;
	int ret = self_mountinfo(&mi, &nmi);
	if (ret)
		return ret;
	uint32_t sid = 0; /* the mount @sp is on: the last, deepest that holds it */
	size_t best = 0;
	for (size_t j = 0; j < nmi; j++)
		if (path_is_under(sp, mi[j].mountpoint) && strlen(mi[j].mountpoint) >= best) {
			best = strlen(mi[j].mountpoint);
			sid = mi[j].id;
		}
	_cleanup_free_ ssize_t *match = calloc(n, sizeof(ssize_t));
	_cleanup_free_ bool *used = calloc(nmi + 1, sizeof(bool));
	ret = match && used ? 0 : -ENOMEM;
	for (size_t k = i + 1; k < n && !ret; k++) {
		size_t p = (size_t)rm[k].parent;
		if (rm[k].late || (p != i && !rm[p].adopted))
			continue;
		for (size_t j = 0; j < nmi && !rm[k].adopted; j++) {
			if (used[j] || !adopt_matches(rm, i, k, mi, j, sp, sid, match))
				continue;
			used[j] = rm[k].adopted = true;
			match[k] = (ssize_t)j;
		}
		if (!rm[k].adopted)
			continue;
		const struct mountinfo *e = &mi[match[k]];
		bool hidden = false;
		for (size_t j = 0; j < nmi; j++)
			hidden |= mi[j].parent == e->id && !strcmp(mi[j].mountpoint, e->mountpoint);
		rm[k].fd = hidden ? -1
				  : mnt_open_beneath(rm[i].fd, rel_below(rm[k].m->mountpoint,
									   rm[i].m->mountpoint),
						     RESOLVE_BENEATH, O_PATH | O_DIRECTORY);
		if (!hidden && rm[k].fd < 0)
			ret = pr_perror("restore: mount %s in the bind of %s", rm[k].m->mountpoint,
					sp);
		else if (rm[k].fd >= 0 && (e->flags & MNT_ATTR_ALL) != (rm[k].m->flags & MNT_ATTR_ALL))
			ret = mnt_set_flags(rm[k].fd, rm[k].m);
	}
	for (size_t j = 0; j < nmi && !ret; j++)
		if (!used[j] && path_is_under(mi[j].mountpoint, sp) && in_clone(mi, nmi, j, sid, used))
			pr_warn("restore: the mount at %s (%s) came with the bind of %s, which the "
				"dumped namespace did not have: kept (locked)",
				mi[j].mountpoint, mi[j].fstype, sp);
	mountinfo_free(mi, nmi);
	return ret;
}

/* A copy of @src (opened as @at) for image mount @i. In a mount namespace owned by a user
 * namespace, a mount with locked children (copied from a more privileged namespace: a
 * rootless runtime's rbind of the host's /sys) can only be bound with them (without
 * AT_RECURSIVE: EINVAL); then the image's mounts that are those children are adopted. */
static int clone_source(struct rmount *rm, size_t n, size_t i, int at, const char *src)
{
	int fd = open_tree(at, "", OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | AT_EMPTY_PATH);
	if (fd >= 0 || errno != EINVAL)
		return fd >= 0 ? fd : pr_perror("restore: bind %s", src);
	fd = open_tree(at, "", OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | AT_EMPTY_PATH | AT_RECURSIVE);
	if (fd < 0)
		return pr_perror("restore: bind %s (with the mounts below it)", src);
	char sp[MNTINFO_MAX_PATH];
	ssize_t len = fd_link(at, sp, sizeof(sp));
	if (len <= 0 || sp[0] != '/') {
		close(fd);
		pr_err("restore: the path of %s: %s", src, len < 0 ? strerror((int)-len) : sp);
		return len < 0 ? (int)len : -EINVAL;
	}
	rm[i].fd = fd;
	int ret = adopt_children(rm, n, i, sp);
	if (ret) {
		close(fd);
		rm[i].fd = -1;
		return ret;
	}
	return fd;
}

static int make_detached(struct rst_ctx *c, struct rmount *rm, size_t n, size_t i)
{
	const Mount *m = rm[i].m;
	switch (m->kind) {
	case MOUNT_KIND__MOUNT_FRESH: {
		int sb = -1;
		for (size_t j = 0; j < i && sb < 0; j++)
			if (rm[j].sb >= 0 && rm[j].m->dev == m->dev)
				sb = rm[j].sb;
		if (sb < 0) {
			bool ro_later = false;
			sb = rm[i].sb = fresh_sb(m, -1, &ro_later);
			if (sb < 0)
				return sb;
			int ret = tmpfs_fill(c, sb, m);
			if (!ret && ro_later)
				ret = sb_make_ro(sb, m);
			if (ret)
				return ret;
		}
		_cleanup_close_ int at = mnt_open_beneath(sb, mnt_rel_of(m->root),
						      RESOLVE_BENEATH | RESOLVE_NO_XDEV, O_PATH);
		if (at < 0)
			return pr_perror("restore: mount %s: root %s in its filesystem",
					 m->mountpoint, m->root);
		rm[i].fd = clone_tree(at, NULL, m->mountpoint);
		break;
	}
	case MOUNT_KIND__MOUNT_HOST: {
		/* a runtime's root replaces the root of the first tree whatever directory it
		 * was bound from (restoring into a new container, it gives its new rootfs) */
		const struct restore_opts *o = c->opts;
		const char *src = i == 0 && c->is_root && o->root_dir && o->root_over_bind
					  ? o->root_dir
					  : m->host_path;
		_cleanup_close_ int at = mnt_open_beneath(AT_FDCWD, src, 0, O_PATH);
		if (at < 0)
			return pr_perror("restore: mount %s: open its source %s", m->mountpoint,
					 src);
		rm[i].fd = clone_source(rm, n, i, at, src);
		break;
	}
	default: {
		const struct restore_opts *o = c->opts;
		_cleanup_free_ char *hp =
			i == 0 && c->is_root && o->root_dir
				? strdup(o->root_dir)
				: external_lookup(o->externals, o->n_externals, false, m->ext_key);
		if (!hp)
			return -ENOMEM; /* the mapping was checked by mnt_validate */
		_cleanup_close_ int at = open(hp, O_PATH | O_CLOEXEC);
		rm[i].fd = at < 0 ? pr_perror("restore: bind %s", hp) : clone_source(rm, n, i, at, hp);
		break;
	}
	}
	if (rm[i].fd < 0)
		return rm[i].fd;
	struct mount_attr a = { .attr_set = m->flags & MNT_ATTR_ALL, .attr_clr = MNT_ATTR_ALL };
	if (mount_setattr(rm[i].fd, "", AT_EMPTY_PATH, &a, sizeof(a)) < 0)
		return pr_perror("restore: mount %s: set flags %#x", m->mountpoint, m->flags);
	return 0;
}

/* A mount point the rebuilt parent lacks: it was under a directory another mount hides
 * (a tmpfs at a/b, then one at a: the dump reads a's contents, not the hidden a/b). In a
 * fresh superblock stasis built, the missing components are made (0755; a file for a
 * mount of a file): nothing sees them while the mounts are there. */
static int make_point(struct rmount *rm, size_t i, const char *rel)
{
	struct stat st;
	char path[MNTINFO_MAX_PATH];
	if (rm[rm[i].parent].sb < 0 || fstat(rm[i].fd, &st) < 0)
		return -ENOENT;
	for (const char *c = rel;; c++) {
		if (*c && *c != '/')
			continue;
		snprintf(path, sizeof(path), "%.*s", (int)(c - rel), rel);
		_cleanup_close_ int fd = mnt_open_beneath(rm[rm[i].parent].fd, path,
							  RESOLVE_BENEATH | RESOLVE_NO_XDEV, O_PATH);
		if (fd < 0) {
			const char *slash = strrchr(path, '/');
			_cleanup_free_ char *dir = strndup(path, slash ? (size_t)(slash - path) : 0);
			_cleanup_close_ int pd =
				dir ? mnt_open_beneath(rm[rm[i].parent].fd, *dir ? dir : ".",
						       RESOLVE_BENEATH | RESOLVE_NO_XDEV,
						       O_PATH | O_DIRECTORY)
				    : -1;
			const char *name = slash ? slash + 1 : path;
			int r = pd < 0 ? -1
				: (*c || S_ISDIR(st.st_mode))
					? mkdirat(pd, name, 0755)
					: mknodat(pd, name, S_IFREG | 0644, 0);
			if (r < 0 && errno != EEXIST)
				return -errno;
		}
		if (!*c)
			return 0;
	}
}

static int attach(struct rmount *rm, size_t i)
{
	const Mount *m = rm[i].m, *pm = rm[rm[i].parent].m;
	const char *rel = rel_below(m->mountpoint, pm->mountpoint);
	int at = mnt_open_beneath(rm[rm[i].parent].fd, rel, RESOLVE_BENEATH | RESOLVE_NO_XDEV,
				  O_PATH);
	if (at < 0 && errno == ENOENT && !make_point(rm, i, rel))
		at = mnt_open_beneath(rm[rm[i].parent].fd, rel, RESOLVE_BENEATH | RESOLVE_NO_XDEV,
				      O_PATH);
	_cleanup_close_ int atfd = at;
	if (at < 0)
		return pr_perror("restore: mount point %s (in %s)", m->mountpoint, pm->mountpoint);
	if (move_mount(rm[i].fd, "", at, "", MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH) < 0)
		return pr_perror("restore: attach the mount at %s", m->mountpoint);
	return 0;
}

/* --- restore: propagation ----------------------------------------------------------- */

static int set_prop(const struct rmount *r, unsigned long prop, const char *what)
{
	struct mount_attr a = { .propagation = prop };
	if (mount_setattr(r->fd, "", AT_EMPTY_PATH, &a, sizeof(a)) < 0)
		return pr_perror("restore: make the mount at %s %s", r->m->mountpoint, what);
	return 0;
}

static int join_group(const struct rmount *from, const struct rmount *to)
{
	if (move_mount(from->fd, "", to->fd, "",
		       MOVE_MOUNT_SET_GROUP | MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH) < 0)
		return pr_perror("restore: put the mount at %s in the peer group of %s",
				 to->m->mountpoint, from->m->mountpoint);
	return 0;
}

/* A member of dumped peer group @g whose root contains @root (the widest), or -1. */
static ssize_t peer_in_group(const struct rmount *rm, size_t n, uint32_t g, const char *root)
{
	ssize_t best = -1;
	for (size_t j = 0; j < n; j++)
		if (rm[j].fd >= 0 && rm[j].m->has_shared && rm[j].m->shared == g &&
		    (!root || path_is_under(root, rm[j].m->root)) &&
		    (best < 0 || strlen(rm[j].m->root) < strlen(rm[best].m->root)))
			best = (ssize_t)j;
	return best;
}

/* Make @y a slave of dumped peer group @g (a peer of one of its members first). */
static int make_slave(const struct rmount *rm, size_t n, size_t y)
{
	uint32_t g = rm[y].m->master;
	ssize_t x = peer_in_group(rm, n, g, rm[y].m->root);
	if (x < 0) {
		pr_warn("restore: the master of the mount at %s (peer group %u) is outside the "
			"namespace: left private",
			rm[y].m->mountpoint, g);
		return 0;
	}
	int ret = join_group(&rm[x], &rm[y]);
	return ret ? ret : set_prop(&rm[y], MS_SLAVE, "a slave");
}

/* Peer groups in an order where a group's master group comes first; then pure slaves,
 * then unbindable mounts. */
static int restore_propagation(struct rmount *rm, size_t n)
{
	_cleanup_free_ bool *done = calloc(n, sizeof(bool)); /* by leader index */
	if (!done)
		return -ENOMEM;
	for (bool again = true; again;) {
		again = false;
		bool progress = false;
		for (size_t i = 0; i < n; i++) {
			const Mount *m = rm[i].m;
			if (!m->has_shared || peer_in_group(rm, n, m->shared, NULL) != (ssize_t)i ||
			    done[i])
				continue;
			ssize_t ml = m->has_master ? peer_in_group(rm, n, m->master, NULL) : -1;
			if (ml >= 0 && !done[ml] && ml != (ssize_t)i) {
				again = true;
				continue;
			}
			int ret = m->has_master ? make_slave(rm, n, i) : 0;
			if (!ret)
				ret = set_prop(&rm[i], MS_SHARED, "shared");
			for (size_t j = 0; j < n && !ret; j++) {
				if (j == i || rm[j].fd < 0 || !rm[j].m->has_shared ||
				    rm[j].m->shared != m->shared)
					continue;
				if (!path_is_under(rm[j].m->root, m->root)) {
					pr_warn("restore: the mount at %s is left out of its peer group",
						rm[j].m->mountpoint);
					continue;
				}
				ret = join_group(&rm[i], &rm[j]);
			}
			if (ret)
				return ret;
			done[i] = progress = true;
		}
		if (again && !progress) {
			pr_warn("restore: peer groups are each other's masters: some left private");
			break;
		}
	}
	for (size_t i = 0; i < n; i++) {
		int ret = 0;
		if (rm[i].fd < 0)
			continue; /* a kept copy no path reaches: left private */
		if (rm[i].m->has_master && !rm[i].m->has_shared)
			ret = make_slave(rm, n, i);
		if (!ret && rm[i].m->unbindable)
			ret = set_prop(&rm[i], MS_UNBINDABLE, "unbindable");
		if (ret)
			return ret;
	}
	return 0;
}

/* --- restore: the whole tree -------------------------------------------------------- */

static int build_tree(struct rst_ctx *c, struct rmount *rm, size_t n)
{
	int ret;
	/* a copy of the creator's namespace: nothing done here may propagate out of it */
	if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0)
		return pr_perror("restore: make the copied mount tree private");
	for (size_t i = 0; i < n; i++) {
		ret = rm[i].late || rm[i].adopted ? 0 : make_detached(c, rm, n, i);
		if (ret)
			return ret;
	}
	if (move_mount(rm[0].fd, "", AT_FDCWD, "/", MOVE_MOUNT_F_EMPTY_PATH) < 0)
		return pr_perror("restore: attach the new root mount");
	for (size_t i = 1; i < n; i++) {
		ret = rm[i].late || rm[i].adopted ? 0 : attach(rm, i);
		if (ret)
			return ret;
	}
	if (fchdir(rm[0].fd) < 0 || syscall(SYS_pivot_root, ".", ".") < 0)
		return pr_perror("restore: pivot_root into the new mount tree");
	if (umount2(".", MNT_DETACH) < 0)
		return pr_perror("restore: detach the old mount tree");
	if (chdir("/") < 0)
		return pr_perror("restore: chdir / in the new mount tree");
	return restore_propagation(rm, n);
}

/* --- restore: keeping a locked copy ------------------------------------------------- */

/* Are the mounts of the namespace the restore child starts in (a copy of its creator's)
 * locked? The kernel locks every mount of a copy made for a mount namespace owned by
 * another user namespace than its source's (CLONE_NEWUSER | CLONE_NEWNS, as
 * `unshare -Urm` does), so that its less privileged owner cannot reveal what a mount
 * hides: such a mount can then be neither unmounted nor bound without its locked
 * children (open_tree without AT_RECURSIVE: EINVAL). Probed on the root. */
static bool copy_is_locked(void)
{
	int fd = open_tree(AT_FDCWD, "/", OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC);
	if (fd >= 0) {
		close(fd);
		return false;
	}
	return errno == EINVAL;
}

/* Copy mount @j of @mi (the restore child's own mountinfo) for image mount @i: same
 * place, root and filesystem, its parent the copy matched to @i's parent (or the root). */
static bool copy_matches(const struct mountinfo *mi, size_t nmi, size_t j, const Mount *m,
			 const ssize_t *match, ssize_t parent)
{
	if (strcmp(mi[j].mountpoint, m->mountpoint) || strcmp(mi[j].root, m->root) ||
	    strcmp(mi[j].fstype, m->fstype))
		return false;
	if (parent >= 0)
		return mi[j].parent == mi[match[parent]].id;
	for (size_t k = 0; k < nmi; k++)
		if (mi[k].id == mi[j].parent)
			return false;
	return true;
}

/* Image mount @i is kept as the copy @cp: an O_PATH fd of it (-1 if another mount hides
 * it), its flags set as recorded (only adding locked ones works: they were set so at
 * dump, where the copy was locked the same way). */
static int keep_one(int root, struct rmount *rm, size_t i, const struct mountinfo *cp)
{
	const Mount *m = rm[i].m;
	int fd = mnt_open_beneath(root, mnt_rel_of(m->mountpoint), RESOLVE_IN_ROOT | RESOLVE_NO_SYMLINKS,
			      O_PATH | O_DIRECTORY);
	struct statx sx;
	if (fd >= 0 && (statx(fd, "", AT_EMPTY_PATH, STATX_MNT_ID, &sx) < 0 ||
			sx.stx_mnt_id != cp->id)) {
		close(fd);
		fd = -1;
	}
	rm[i].fd = fd;
	if ((cp->flags & MNT_ATTR_ALL) == (m->flags & MNT_ATTR_ALL))
		return 0;
	if (fd < 0) {
		pr_err("restore: mount %s: its flags differ from the copy's, which is hidden",
		       m->mountpoint);
		return -EOPNOTSUPP;
	}
	return mnt_set_flags(fd, m);
}

/* The copy the restore child got is locked, so it cannot be rebuilt mount by mount: the
 * mounts the dumped namespace was made with (marked copied at dump) are found in it and
 * kept, and only the mounts the task added are created and attached on top. A mount of
 * the copy that the dump did not see (mounted on the host since) stays: it is locked. */
static int keep_copy(struct rst_ctx *c, struct rmount *rm, size_t n)
{
	struct mountinfo *mi = NULL;
	size_t nmi = 0;
	if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0)
		return pr_perror("restore: make the copied mount tree private");
	int err = self_mountinfo(&mi, &nmi);
	if (err)
		return err;
	_cleanup_free_ ssize_t *match = malloc(n * sizeof(ssize_t));
	_cleanup_free_ bool *used = calloc(nmi + 1, sizeof(bool));
	_cleanup_close_ int root = open("/", O_PATH | O_DIRECTORY | O_CLOEXEC);
	int ret = 0;
	if (!match || !used)
		ret = -ENOMEM;
	else if (root < 0)
		ret = pr_perror("restore: open /");
	for (size_t i = 0; i < n && !ret; i++) {
		const Mount *m = rm[i].m;
		match[i] = -1;
		if (!m->copied)
			continue;
		if (i && match[rm[i].parent] < 0) {
			pr_err("image: mount %s of pid %d is a copy under a mount that is not",
			       m->mountpoint, c->pid);
			ret = -EINVAL;
			break;
		}
		for (size_t j = 0; j < nmi && match[i] < 0; j++)
			if (!used[j] && copy_matches(mi, nmi, j, m, match, i ? rm[i].parent : -1))
				match[i] = (ssize_t)j;
		if (match[i] < 0) {
			pr_err("mount %s (%s) of pid %d was copied from stasis's namespace at dump, "
			       "but the copy made at restore has none there: its mounts are locked "
			       "(owned by a new user namespace), so the tree cannot be rebuilt",
			       m->mountpoint, m->fstype, c->pid);
			ret = -ENOENT;
			break;
		}
		used[match[i]] = true;
		ret = keep_one(root, rm, i, &mi[match[i]]);
	}
	for (size_t j = 0; j < nmi && !ret; j++)
		if (!used[j])
			pr_warn("restore: the mount at %s (%s) was not in the dumped namespace of "
				"pid %d: kept (locked in the copy)",
				mi[j].mountpoint, mi[j].fstype, c->pid);
	for (size_t i = 0; i < n && !ret; i++)
		if (!rm[i].m->copied && !rm[i].late && !rm[i].adopted)
			ret = make_detached(c, rm, n, i);
	for (size_t i = 1; i < n && !ret; i++) {
		if (rm[i].m->copied || rm[i].late || rm[i].adopted)
			continue;
		if (rm[rm[i].parent].fd < 0) {
			pr_err("restore: mount %s: the copied mount below it is hidden",
			       rm[i].m->mountpoint);
			ret = -EOPNOTSUPP;
		} else {
			ret = attach(rm, i);
		}
	}
	if (!ret)
		ret = restore_propagation(rm, n);
	mountinfo_free(mi, nmi);
	return ret;
}

uint64_t mnt_ns_id(const char *path)
{
	uint64_t id = 0;
	_cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0 || ioctl(fd, NS_GET_MNTNS_ID, &id) < 0)
		return 0;
	return id;
}

/* --pin-ns: stasis will bind this mount namespace's file into its own, which the kernel
 * allows only if this namespace's id is above its own (fs/namespace.c, mnt_ns_loop: only
 * a younger namespace may be pinned, so that no reference loop can form). On 6.18 the ids
 * come from per-CPU batches (gen_cookie_next): a namespace made later on another CPU can
 * get a smaller id. Then a new copy of the namespace (the same mounts, locks included) is
 * made on each CPU in turn (the task's affinity put back after) until one is above: the
 * CPU that gave stasis's namespace its id hands out larger ones from then on. */
static int mnt_ns_above(pid_t pid, uint64_t floor)
{
	uint64_t id = mnt_ns_id("/proc/self/ns/mnt");
	if (!id || id > floor)
		return 0;
	cpu_set_t saved, one;
	if (sched_getaffinity(0, sizeof(saved), &saved) < 0)
		return pr_perror("restore: sched_getaffinity");
	long ncpu = sysconf(_SC_NPROCESSORS_CONF);
	for (int cpu = 0; cpu < CPU_SETSIZE && cpu < ncpu && id <= floor; cpu++) {
		CPU_ZERO(&one);
		CPU_SET(cpu, &one);
		if (sched_setaffinity(0, sizeof(one), &one) < 0)
			continue; /* offline, or outside the task's cpuset */
		if (unshare(CLONE_NEWNS) < 0) {
			int e = pr_perror("restore: a new copy of the mount namespace of pid %d", pid);
			sched_setaffinity(0, sizeof(saved), &saved);
			return e;
		}
		id = mnt_ns_id("/proc/self/ns/mnt");
	}
	if (sched_setaffinity(0, sizeof(saved), &saved) < 0)
		return pr_perror("restore: sched_setaffinity");
	if (id <= floor) {
		pr_err("the mount namespace of pid %d got id %llu, not above stasis's %llu on any "
		       "CPU: the kernel would refuse to pin it (--pin-ns)",
		       pid, (unsigned long long)id, (unsigned long long)floor);
		return -ELOOP;
	}
	pr_info("restore: the mount namespace of pid %d copied again to get an id above "
		"stasis's (%llu > %llu) for --pin-ns",
		pid, (unsigned long long)id, (unsigned long long)floor);
	return 0;
}

int mnt_restore_child(struct rst_ctx *c)
{
	const MntNs *ns = c->tns->mnt;
	if (!ns)
		return 0;
	if (c->mntns_floor) {
		int r = mnt_ns_above(c->pid, c->mntns_floor);
		if (r)
			return r;
	}
	size_t n = ns->n_mounts;
	struct rmount *rm = calloc(n, sizeof(*rm));
	if (!rm)
		return -ENOMEM;
	int ret = 0;
	for (size_t i = 0; i < n; i++) {
		const Mount *m = ns->mounts[i];
		rm[i].m = m;
		rm[i].fd = rm[i].sb = -1;
		rm[i].parent = i ? mount_index(ns, m->parent_id, i) : -1;
		rm[i].late = i && !m->copied && m->kind == MOUNT_KIND__MOUNT_FRESH &&
			     !strcmp(m->fstype, "proc") && m->has_proc_pidns && c->core->ns &&
			     m->proc_pidns != c->core->ns->pid;
		if (i && rm[rm[i].parent].late && !ret) {
			pr_err("mount %s of pid %d is on a proc of another pid namespace: not "
			       "supported yet",
			       m->mountpoint, c->pid);
			ret = -EOPNOTSUPP;
		}
	}
	struct mnt_priv *mp = calloc(1, sizeof(*mp) + n * sizeof(mp->late[0]));
	c->priv[RES_PRIV_MNT] = mp;
	if (!mp)
		ret = -ENOMEM;
	for (size_t i = 0; i < n && !ret; i++)
		if (rm[i].late)
			mp->late[mp->n_late++] = rm[i].m;
	uint64_t t0 = now_ns();
	bool keep = ns->mounts[0]->copied && copy_is_locked();
	if (!ret)
		ret = keep ? keep_copy(c, rm, n) : build_tree(c, rm, n);
	for (size_t i = 0; i < n; i++) {
		if (rm[i].fd >= 0)
			close(rm[i].fd);
		if (rm[i].sb >= 0)
			close(rm[i].sb);
	}
	free(rm);
	if (!ret)
		pr_info("restore: pid %d: %zu mounts %s in %.3f ms", c->pid, n,
			keep ? "kept or added to the locked copy" : "rebuilt",
			(double)(now_ns() - t0) / 1e6);
	return ret;
}

static void mnt_release(struct rst_ctx *c)
{
	free(c->priv[RES_PRIV_MNT]);
	c->priv[RES_PRIV_MNT] = NULL;
}

int mnt_restore_late(struct rst_ctx *c, int (*pidns)(void *arg, uint64_t id), void *arg)
{
	const struct mnt_priv *mp = c->priv[RES_PRIV_MNT];
	if (!mp || !mp->n_late) {
		mnt_release(c);
		return 0;
	}
	_cleanup_close_ int root = open("/", O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (root < 0)
		return pr_perror("restore: open /");
	for (size_t k = 0; k < mp->n_late; k++) {
		const Mount *m = mp->late[k];
		_cleanup_close_ int ns = pidns(arg, m->proc_pidns);
		if (ns < 0)
			return ns;
		_cleanup_close_ int mfd = fresh_sb(m, ns, NULL);
		if (mfd < 0)
			return mfd;
		struct mount_attr a = { .attr_set = m->flags & MNT_ATTR_ALL, .attr_clr = MNT_ATTR_ALL };
		if (mount_setattr(mfd, "", AT_EMPTY_PATH, &a, sizeof(a)) < 0)
			return pr_perror("restore: mount %s: set flags %#x", m->mountpoint, m->flags);
		/* on top of what is at its mount point now: nothing was mounted on it */
		_cleanup_close_ int at = mnt_open_beneath(root, mnt_rel_of(m->mountpoint),
						      RESOLVE_IN_ROOT | RESOLVE_NO_SYMLINKS,
						      O_PATH | O_DIRECTORY);
		if (at < 0)
			return pr_perror("restore: mount point %s", m->mountpoint);
		if (move_mount(mfd, "", at, "", MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH) < 0)
			return pr_perror("restore: attach the proc at %s", m->mountpoint);
		pr_info("restore: pid %d: proc of a child's pid namespace mounted at %s", c->pid,
			m->mountpoint);
	}
	mnt_release(c);
	return 0;
}

static int mnt_validate_ctx(struct rst_ctx *c)
{
	return mnt_validate(c);
}

const struct resource mnt_resource = {
	.name = "mount namespace",
	.validate = mnt_validate_ctx,
	.release = mnt_release,
};
