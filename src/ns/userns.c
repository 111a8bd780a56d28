/* User namespaces.
 *
 * Dump: every user namespace of the tree other than the dumper's is recorded in the task
 * that created it (the first task in it whose parent is in the namespace's parent): its
 * uid and gid maps with the outside ids relative to the PARENT namespace (what must be
 * written again), setgroups, the owner. A task that joined a user namespace (setns) or
 * sits two levels below its parent without a task in between is refused. Credentials of
 * tasks in such a namespace are stored as seen inside it (Core.creds), so that restore
 * sets them with plain syscalls in the task.
 *
 * /proc/PID/uid_map read from another user namespace shows the outside ids relative to
 * the READER's namespace; read from the same namespace, relative to the parent. Every
 * read here is of a namespace other than stasis's own, so outside ids are the dumper's
 * (or the restorer's) ids; a nested namespace's map is translated through its parent's.
 *
 * Restore: the creator is cloned with CLONE_NEWUSER (so that the namespaces created in
 * the same clone are owned by it) and waits on a pipe; the task that created it (stasis
 * for the root, else the restore child of its parent, which is in the parent namespace
 * with every capability there) writes setgroups, uid_map and gid_map — each map in ONE
 * write, the kernel accepts exactly one — and lets it go. The child then takes the ids of
 * the namespace's root (if mapped) so that it can create files while it sets itself up;
 * its real credentials are set at the end as for any task (src/task/creds.c). */
#include <fcntl.h>
#include <grp.h>
#include <linux/nsfs.h>
#include <linux/securebits.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/log.h"
#include "cr/resource.h"
#include "ns/userns.h"

#define MAP_TEXT_MAX 8192

struct uns {
	uint64_t id, parent;
	struct id_range *uid, *gid; /* outside relative to the dumper */
	int nuid, ngid;
};

static int read_map(int procfd, pid_t pid, const char *name, struct id_range **out)
{
	_cleanup_free_ char *buf = read_file_at(procfd, name, MAP_TEXT_MAX, NULL);
	if (!buf)
		return pr_perror("userns: read /proc/%d/%s", pid, name);
	*out = calloc(PROC_MAX_ID_RANGES, sizeof(**out));
	if (!*out)
		return -ENOMEM;
	int n = proc_parse_idmap(buf, *out, PROC_MAX_ID_RANGES);
	if (n < 0)
		pr_err("userns: malformed /proc/%d/%s", pid, name);
	return n;
}

/* Through a map: @id outside (relative to the reader) -> inside, or with @up the other
 * way; -ERANGE if unmapped. */
static int map_id(const struct id_range *m, int n, bool up, uint32_t id, uint32_t *out)
{
	for (int i = 0; i < n; i++) {
		uint32_t from = up ? m[i].inside : m[i].outside;
		if (id >= from && id - from < m[i].count) {
			*out = (up ? m[i].outside : m[i].inside) + (id - from);
			return 0;
		}
	}
	return -ERANGE;
}

static int to_inside(const struct id_range *m, int n, uint32_t id, uint32_t *in)
{
	return map_id(m, n, false, id, in);
}

static int to_outside(const struct id_range *m, int n, uint32_t id, uint32_t *out)
{
	return map_id(m, n, true, id, out);
}

int userns_view_open(int procfd, pid_t pid, struct userns_view *v)
{
	struct stat a, b;
	*v = (struct userns_view){ 0 };
	_cleanup_close_ int tns = openat(procfd, "ns/user", O_RDONLY | O_CLOEXEC);
	if (tns < 0 || fstat(tns, &a) < 0 || stat("/proc/self/ns/user", &b) < 0)
		return pr_perror("userns: user namespace of pid %d", pid);
	/* in stasis's own namespace the map shows the parent's ids: nothing to translate */
	v->same = a.st_ino == b.st_ino && a.st_dev == b.st_dev;
	if (v->same)
		return 0;
	v->nu = read_map(procfd, pid, "uid_map", &v->uid);
	v->ng = v->nu < 0 ? v->nu : read_map(procfd, pid, "gid_map", &v->gid);
	int ret = v->nu < 0 ? v->nu : v->ng < 0 ? v->ng : 0;
	if (ret)
		userns_view_close(v);
	return ret;
}

int userns_view_id(const struct userns_view *v, bool gid, uint32_t id, uint32_t *out)
{
	if (v->same) {
		*out = id;
		return 0;
	}
	return to_inside(gid ? v->gid : v->uid, gid ? v->ng : v->nu, id, out) ? -ERANGE : 0;
}

void userns_view_close(struct userns_view *v)
{
	free(v->uid);
	free(v->gid);
	*v = (struct userns_view){ 0 };
}

int userns_id_from_init(int procfd, pid_t pid, bool gid, uint32_t id, uint32_t *out)
{
	const char *name = gid ? "/proc/self/gid_map" : "/proc/self/uid_map";
	_cleanup_free_ struct id_range *mine = NULL;
	int nm = read_map(AT_FDCWD, getpid(), name, &mine);
	if (nm < 0)
		return nm;
	/* initial -> stasis's namespace (a child of the initial one) -> the task's */
	uint32_t here;
	if (to_inside(mine, nm, id, &here))
		return -ERANGE;
	struct userns_view v;
	int ret = userns_view_open(procfd, pid, &v);
	if (!ret)
		ret = userns_view_id(&v, gid, here, out);
	userns_view_close(&v);
	return ret;
}

static uint64_t ns_ino(int fd)
{
	struct stat st;
	return fstat(fd, &st) == 0 ? (uint64_t)st.st_ino : 0;
}

/* The image form of one map: outside ids through @parent's map when the parent is not
 * the dumper's namespace (each range must lie in one range of the parent's). */
static int image_map(const struct id_range *m, int n, const struct uns *parent, bool gid,
		     IdMapEntry ***out, size_t *nout)
{
	*out = calloc((size_t)n + 1, sizeof(**out));
	if (!*out)
		return -ENOMEM;
	for (int i = 0; i < n; i++) {
		uint32_t outside = m[i].outside;
		if (parent) {
			const struct id_range *pm = gid ? parent->gid : parent->uid;
			int pn = gid ? parent->ngid : parent->nuid;
			uint32_t last;
			if (to_inside(pm, pn, m[i].outside, &outside) ||
			    to_inside(pm, pn, m[i].outside + m[i].count - 1, &last) ||
			    last - outside != m[i].count - 1) {
				pr_err("userns: a %s range of a nested user namespace spans several "
				       "ranges of its parent: not supported",
				       gid ? "gid" : "uid");
				return -EOPNOTSUPP;
			}
		}
		IdMapEntry *e = malloc(sizeof(*e));
		if (!e)
			return -ENOMEM;
		id_map_entry__init(e);
		e->inside = m[i].inside;
		e->outside = outside;
		e->count = m[i].count;
		(*out)[(*nout)++] = e;
	}
	return 0;
}

static int record_userns(struct dump_ctx *c, uint64_t id, uint64_t parent_id,
			 const struct uns *parent, struct uns *u)
{
	int ret;
	_cleanup_close_ int nsfd = openat(c->procfd, "ns/user", O_RDONLY | O_CLOEXEC);
	if (nsfd < 0)
		return pr_perror("userns: open /proc/%d/ns/user", c->pid);
	_cleanup_close_ int pfd = ioctl(nsfd, NS_GET_PARENT);
	if (pfd < 0)
		return pr_perror("userns: parent of the user namespace of pid %d", c->pid);
	if (ns_ino(pfd) != parent_id) {
		pr_err("pid %d is in a user namespace that is not a child of its parent's (it "
		       "joined it with setns, or created two levels at once): not supported",
		       c->pid);
		return -EOPNOTSUPP;
	}
	uid_t owner = (uid_t)-1;
	if (ioctl(nsfd, NS_GET_OWNER_UID, &owner) < 0)
		return pr_perror("userns: owner of the user namespace of pid %d", c->pid);
	u->id = id;
	u->parent = parent_id;
	u->nuid = read_map(c->procfd, c->pid, "uid_map", &u->uid);
	if (u->nuid < 0)
		return u->nuid;
	u->ngid = read_map(c->procfd, c->pid, "gid_map", &u->gid);
	if (u->ngid < 0)
		return u->ngid;
	_cleanup_free_ char *sg = read_file_at(c->procfd, "setgroups", 64, NULL);
	if (!sg)
		return pr_perror("userns: read /proc/%d/setgroups", c->pid);

	UserNs *img = malloc(sizeof(*img));
	if (!img)
		return -ENOMEM;
	user_ns__init(img);
	c->tns->userns = img;
	img->id = id;
	img->parent = parent_id;
	img->setgroups_allow = str_starts(sg, "allow");
	img->has_owner_uid = true;
	img->owner_uid = owner;
	if (parent && to_inside(parent->uid, parent->nuid, owner, &img->owner_uid))
		img->has_owner_uid = false;
	ret = image_map(u->uid, u->nuid, parent, false, &img->uid_map, &img->n_uid_map);
	if (!ret)
		ret = image_map(u->gid, u->ngid, parent, true, &img->gid_map, &img->n_gid_map);
	return ret;
}

/* Core.creds as seen inside the task's user namespace @u. */
static int creds_inside(struct dump_ctx *c, const struct uns *u)
{
	Creds *cr = c->core->creds;
	uint32_t *uids[] = { &cr->uid, &cr->euid, &cr->suid, &cr->fsuid };
	uint32_t *gids[] = { &cr->gid, &cr->egid, &cr->sgid, &cr->fsgid };
	int ret = 0;
	for (size_t i = 0; i < 4 && !ret; i++) {
		ret = to_inside(u->uid, u->nuid, *uids[i], uids[i]);
		if (!ret)
			ret = to_inside(u->gid, u->ngid, *gids[i], gids[i]);
	}
	for (size_t i = 0; i < cr->n_groups && !ret; i++)
		ret = to_inside(u->gid, u->ngid, cr->groups[i], &cr->groups[i]);
	if (ret)
		pr_err("pid %d has an id that its user namespace does not map", c->pid);
	return ret;
}

int userns_dump_tree(struct dump_ctx **procs, size_t n, const pid_t *ppid, uint64_t mine)
{
	struct uns *list = calloc(n, sizeof(*list));
	size_t nl = 0;
	int ret = 0;
	if (!list)
		return -ENOMEM;
	for (size_t i = 0; i < n && !ret; i++) {
		uint64_t me = procs[i]->core->ns->user, parent = mine;
		for (size_t j = 0; j < i; j++)
			if (procs[j]->pid == ppid[i])
				parent = procs[j]->core->ns->user;
		if (!me || me == mine)
			continue;
		const struct uns *pu = NULL;
		struct uns *u = NULL;
		for (size_t k = 0; k < nl; k++) {
			if (list[k].id == parent)
				pu = &list[k];
			if (list[k].id == me)
				u = &list[k];
		}
		if (me != parent) {
			if (u) {
				pr_err("pid %d joined a user namespace created by another task of the "
				       "tree (setns): not supported",
				       procs[i]->pid);
				ret = -EOPNOTSUPP;
				break;
			}
			u = &list[nl++];
			ret = record_userns(procs[i], me, parent, pu, u);
		}
		if (!ret && !u) {
			pr_err("pid %d is in a user namespace the tree did not create", procs[i]->pid);
			ret = -EOPNOTSUPP;
		}
		if (!ret)
			ret = creds_inside(procs[i], u);
	}
	for (size_t k = 0; k < nl; k++) {
		free(list[k].uid);
		free(list[k].gid);
	}
	free(list);
	return ret;
}

/* ---- restore ----------------------------------------------------------------------- */

static int validate_map(IdMapEntry *const *m, size_t n, pid_t pid)
{
	if (!n || n > PROC_MAX_ID_RANGES) {
		pr_err("image: user namespace of pid %d has %zu id ranges", pid, n);
		return -EINVAL;
	}
	for (size_t i = 0; i < n; i++)
		if (!m[i]->count || m[i]->inside > UINT32_MAX - m[i]->count ||
		    m[i]->outside > UINT32_MAX - m[i]->count) {
			pr_err("image: invalid id range of the user namespace of pid %d", pid);
			return -EINVAL;
		}
	return 0;
}

int userns_validate(const UserNs *u, pid_t pid)
{
	int ret = validate_map(u->uid_map, u->n_uid_map, pid);
	return ret ? ret : validate_map(u->gid_map, u->n_gid_map, pid);
}

static int write_map(int proc_dfd, pid_t pid, const char *name, IdMapEntry *const *m, size_t n,
		     bool quiet_eperm)
{
	char path[64];
	_cleanup_free_ char *text = malloc(MAP_TEXT_MAX);
	size_t len = 0;
	if (!text)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++) {
		int w = snprintf(text + len, MAP_TEXT_MAX - len, "%u %u %u\n", m[i]->inside,
				 m[i]->outside, m[i]->count);
		if (w < 0 || (size_t)w >= MAP_TEXT_MAX - len)
			return -E2BIG;
		len += (size_t)w;
	}
	snprintf(path, sizeof(path), "%d/%s", pid, name);
	_cleanup_close_ int fd = openat(proc_dfd, path, O_WRONLY | O_CLOEXEC);
	/* (a non-dumpable child's map files belong to the host's root: EACCES) */
	if (fd < 0 && (errno == EACCES || errno == EPERM) && quiet_eperm)
		return -EPERM;
	if (fd < 0)
		return pr_perror("restore: open /proc/%s", path);
	/* one write: the kernel takes a map once, whole */
	ssize_t w = write(fd, text, len);
	if (w != (ssize_t)len) {
		int err = w < 0 ? errno : EIO;
		if (err == EPERM && quiet_eperm)
			return -EPERM;
		text[strcspn(text, "\n")] = '\0';
		pr_err("restore: writing the %s of pid %d (%s%s) was refused: %s%s", name, pid, text,
		       n > 1 ? " ..." : "", strerror(err),
		       err == EPERM ? " (mapping ids other than one's own needs CAP_SETUID/"
				      "CAP_SETGID over the parent user namespace, or the stasis "
				      "helper with ranges from /etc/subuid and /etc/subgid)"
				    : "");
		return -err;
	}
	return 0;
}

int userns_write_maps(int proc_dfd, pid_t pid, const UserNs *u, bool quiet_eperm)
{
	char path[64];
	int ret = userns_validate(u, pid);
	if (ret)
		return ret;
	ret = write_map(proc_dfd, pid, "uid_map", u->uid_map, u->n_uid_map, quiet_eperm);
	if (ret)
		return ret;
	snprintf(path, sizeof(path), "%d/setgroups", pid);
	char cur[16] = "";
	_cleanup_close_ int fd = openat(proc_dfd, path, O_RDONLY | O_CLOEXEC);
	if (fd < 0 || read(fd, cur, sizeof(cur) - 1) < 0)
		return pr_perror("restore: read /proc/%s", path);
	if (str_starts(cur, "allow") != u->setgroups_allow) {
		const char *want = u->setgroups_allow ? "allow" : "deny";
		_cleanup_close_ int wfd = openat(proc_dfd, path, O_WRONLY | O_CLOEXEC);
		if (wfd < 0 || write(wfd, want, strlen(want)) != (ssize_t)strlen(want))
			return pr_perror("restore: write '%s' to /proc/%s", want, path);
	}
	return write_map(proc_dfd, pid, "gid_map", u->gid_map, u->n_gid_map, quiet_eperm);
}

/* Whether /proc/PID/NAME already holds a map (a map file is written once). */
static int map_written(int proc_dfd, pid_t pid, const char *name, bool *done)
{
	char path[64], c;
	snprintf(path, sizeof(path), "%d/%s", pid, name);
	_cleanup_close_ int fd = openat(proc_dfd, path, O_RDONLY | O_CLOEXEC);
	ssize_t n = fd < 0 ? -1 : read(fd, &c, 1);
	if (n < 0)
		return pr_perror("restore: read /proc/%s", path);
	*done = n == 1;
	return 0;
}

static int helper_map(struct helper *h, pid_t pid, enum helper_id_map which,
		      IdMapEntry *const *m, size_t n, bool deny_setgroups)
{
	struct id_range r[HELPER_MAX_ID_RANGES];
	if (n > HELPER_MAX_ID_RANGES) {
		pr_err("restore: the user namespace of pid %d has %zu id ranges, the helper takes "
		       "at most %d",
		       pid, n, HELPER_MAX_ID_RANGES);
		return -E2BIG;
	}
	for (size_t i = 0; i < n; i++)
		r[i] = (struct id_range){ .inside = m[i]->inside, .outside = m[i]->outside,
					  .count = m[i]->count };
	return helper_write_id_map(h, pid, which, r, n, deny_setgroups);
}

int userns_write_maps_helper(int proc_dfd, struct helper *h, pid_t pid, const UserNs *u)
{
	bool uid_done = false, gid_done = false;
	int ret = userns_validate(u, pid);
	if (!ret)
		ret = map_written(proc_dfd, pid, "uid_map", &uid_done);
	if (!ret)
		ret = map_written(proc_dfd, pid, "gid_map", &gid_done);
	if (!ret && !uid_done)
		ret = helper_map(h, pid, HELPER_UID_MAP, u->uid_map, u->n_uid_map, false);
	/* setgroups "allow" is the default of a new namespace: only "deny" is written */
	if (!ret && !gid_done)
		ret = helper_map(h, pid, HELPER_GID_MAP, u->gid_map, u->n_gid_map,
				 !u->setgroups_allow);
	if (ret)
		pr_err("restore: the stasis helper could not write the id maps of pid %d: %s", pid,
		       strerror(-ret));
	else
		pr_info("restore: id maps of pid %d written by the stasis helper", pid);
	return ret;
}

void userns_owner_begin(const UserNs *u, struct userns_owner *sw)
{
	uid_t r, e, s;
	sw->active = false;
	if (!u || !u->has_owner_uid || getresuid(&r, &e, &s) < 0 || e == u->owner_uid)
		return;
	/* keep the capabilities (set_tid, CLONE_NEW*) while the euid is the owner's; the
	 * euid change makes the process non-dumpable: put that back too */
	int dumpable = prctl(PR_GET_DUMPABLE);
	int bits = prctl(PR_GET_SECUREBITS);
	if (bits < 0 || prctl(PR_SET_SECUREBITS, bits | SECBIT_NO_SETUID_FIXUP) < 0) {
		pr_warn("restore: the user namespace of pid %d will be owned by uid %u, not %u "
			"(PR_SET_SECUREBITS: %s)",
			(int)u->id, e, u->owner_uid, strerror(errno));
		return;
	}
	if (setresuid((uid_t)-1, u->owner_uid, (uid_t)-1) < 0) {
		pr_warn("restore: the user namespace will be owned by uid %u, not %u (seteuid: "
			"%s)",
			e, u->owner_uid, strerror(errno));
		(void)!prctl(PR_SET_SECUREBITS, bits);
		return;
	}
	sw->active = true;
	sw->euid = e;
	sw->secbits = bits;
	sw->dumpable = dumpable;
}

int userns_owner_end(struct userns_owner *sw)
{
	if (!sw->active)
		return 0;
	sw->active = false;
	if (setresuid((uid_t)-1, sw->euid, (uid_t)-1) < 0 ||
	    prctl(PR_SET_SECUREBITS, sw->secbits) < 0 ||
	    (sw->dumpable > 0 && prctl(PR_SET_DUMPABLE, sw->dumpable) < 0))
		return pr_perror("restore: back to euid %u after creating a user namespace",
				 sw->euid);
	return 0;
}

static bool maps_id0(IdMapEntry *const *m, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (m[i]->inside == 0)
			return true;
	return false;
}

int userns_child_enter(const UserNs *u)
{
	/* Become the namespace's root (keeping every capability in it: the old ids were not
	 * its root) so that files created while setting up get mapped owners. */
	if (!maps_id0(u->uid_map, u->n_uid_map) || !maps_id0(u->gid_map, u->n_gid_map))
		return 0;
	if (setresgid(0, 0, 0) < 0)
		return pr_perror("restore: setresgid(0) in a new user namespace");
	if (u->setgroups_allow && setgroups(0, NULL) < 0)
		return pr_perror("restore: setgroups in a new user namespace");
	if (setresuid(0, 0, 0) < 0)
		return pr_perror("restore: setresuid(0) in a new user namespace");
	/* the id change made the task non-dumpable: its /proc files (and those of the
	 * children it creates) would belong to the host's root, out of its reach */
	if (prctl(PR_SET_DUMPABLE, 1) < 0)
		return pr_perror("restore: PR_SET_DUMPABLE in a new user namespace");
	return 0;
}

static uint64_t path_ino(const char *path)
{
	struct stat st;
	return stat(path, &st) == 0 ? (uint64_t)st.st_ino : 0;
}

int userns_creds_outside(pid_t pid, const Creds *in, Creds *out, uint32_t **groups)
{
	char path[64];
	*out = *in;
	*groups = NULL;
	snprintf(path, sizeof(path), "/proc/%d/ns/user", pid);
	uint64_t ino = path_ino(path);
	if (!ino)
		return pr_perror("restore: stat %s", path);
	if (ino == path_ino("/proc/self/ns/user"))
		return 0;
	snprintf(path, sizeof(path), "/proc/%d", pid);
	_cleanup_close_ int procfd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (procfd < 0)
		return pr_perror("restore: open %s", path);
	_cleanup_free_ struct id_range *um = NULL, *gm = NULL;
	int nu = read_map(procfd, pid, "uid_map", &um);
	int ng = nu < 0 ? nu : read_map(procfd, pid, "gid_map", &gm);
	if (ng < 0)
		return ng;
	uint32_t *uids[] = { &out->uid, &out->euid, &out->suid, &out->fsuid };
	uint32_t *gids[] = { &out->gid, &out->egid, &out->sgid, &out->fsgid };
	int ret = 0;
	for (size_t i = 0; i < 4 && !ret; i++) {
		ret = to_outside(um, nu, *uids[i], uids[i]);
		if (!ret)
			ret = to_outside(gm, ng, *gids[i], gids[i]);
	}
	if (!ret && in->n_groups) {
		*groups = calloc(in->n_groups, sizeof(**groups));
		if (!*groups)
			return -ENOMEM;
		out->groups = *groups;
		for (size_t i = 0; i < in->n_groups && !ret; i++)
			ret = to_outside(gm, ng, in->groups[i], &out->groups[i]);
	}
	if (ret)
		pr_err("image: pid %d has credentials its user namespace does not map", pid);
	return ret;
}

static int userns_validate_ctx(struct rst_ctx *c)
{
	return c->tns->userns ? userns_validate(c->tns->userns, c->pid) : 0;
}

const struct resource userns_resource = {
	.name = "user namespace",
	.validate = userns_validate_ctx,
};
