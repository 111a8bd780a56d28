/* Namespaces: the identity of every namespace of every task is recorded; a task whose
 * namespace of a kind differs from its parent's (for the root, from the restorer's)
 * created it, and is restored with the matching CLONE_NEW* flag and its contents. Each
 * kind is one row of the ns_ops table below (its dump, what the restore child does in
 * the new namespace, --join-ns, --pin-ns): UTS names and time offsets here, IPC
 * (src/ns/ipc.c), network (src/net/netns.c), user (src/ns/userns.c), mount
 * (src/ns/mnt.c), cgroup (src/ns/cgroup.c), PID namespaces through set_tid arrays of the
 * full depth. --join-ns puts the restored root into an existing namespace instead. */
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <linux/nsfs.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <sys/syscall.h>

#include "ns/cgroup.h"
#include "core/log.h"
#include "net/netns.h"
#include "ns/ipc.h"
#include "ns/mnt.h"
#include "cr/resource.h"
#include "ns/ns.h"
#include "ns/nsrun.h"
#include "ns/userns.h"
#include "sys/kerndat.h"

/* One row per namespace kind (struct ns_ops in ns/ns.h), in the order the stages run
 * them; defined below, after the hooks. */
static const struct ns_ops kinds[];
#define NR_KINDS 8

static uint64_t *ns_field(NsIds *ids, const struct ns_ops *k)
{
	return (uint64_t *)((char *)ids + k->id_off);
}

/* Read the namespace ids of /proc/<dirfd>/ns/ (dirfd: a /proc/PID directory). */
static int read_ids(int dirfd, NsIds *ids)
{
	ns_ids__init(ids);
	for (size_t i = 0; i < NR_KINDS; i++) {
		char path[32];
		struct stat st;
		snprintf(path, sizeof(path), "ns/%s", kinds[i].name);
		if (fstatat(dirfd, path, &st, 0) < 0) {
			if (errno == ENOENT)
				continue; /* kernel without this kind */
			return pr_perror("ns: stat %s", path);
		}
		*ns_field(ids, &kinds[i]) = st.st_ino;
	}
	/* pid_for_children: another namespace after unshare(CLONE_NEWPID); the link is
	 * refused (ENOENT) until that namespace has its init: recorded as 0 */
	struct stat st;
	bool linked = fstatat(dirfd, "ns/pid_for_children", &st, 0) == 0;
	if (linked ? st.st_ino != ids->pid : errno == ENOENT && ids->pid) {
		ids->has_pid_for_children = true;
		ids->pid_for_children = linked ? st.st_ino : 0;
	}
	return 0;
}

/* A task whose pid_for_children differs from its own pid namespace unshared one for its
 * children: its child that is that namespace's init, if any, is created after the
 * creator unshares again (not with CLONE_NEWPID), else the creator unshares after its
 * children. A namespace that is no child of its own (a setns) is refused. */
static int pid_for_children_dump(struct dump_ctx **procs, size_t n, size_t i)
{
	const NsIds *ids = procs[i]->core->ns;
	if (!ids->has_pid_for_children)
		return 0;
	if (!ids->pid_for_children) { /* no process in it yet */
		procs[i]->tns->has_pid_unshared = procs[i]->tns->pid_unshared = true;
		return 0;
	}
	char path[64];
	snprintf(path, sizeof(path), "/proc/%d/ns/pid_for_children", procs[i]->ospid);
	_cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC);
	_cleanup_close_ int up = fd < 0 ? -1 : ioctl(fd, NS_GET_PARENT);
	struct stat st;
	if (up < 0 || fstat(up, &st) < 0 || st.st_ino != ids->pid) {
		pr_err("pid %d has a pid namespace for its children that is not a child of its own "
		       "(setns): not supported yet",
		       procs[i]->pid);
		return -EOPNOTSUPP;
	}
	(void)n;
	procs[i]->tns->has_pid_unshared = procs[i]->tns->pid_unshared = true;
	return 0;
}

int ns_dump(struct dump_ctx *c)
{
	NsIds *ids = malloc(sizeof(*ids));
	if (!ids)
		return -ENOMEM;
	c->core->ns = ids;
	int ret = read_ids(c->procfd, ids);
	if (ret)
		return ret;
	/* presence flags follow the protobuf-c layout: set every field we read */
	ids->has_uts = ids->has_ipc = ids->has_mnt = ids->has_net = ids->has_pid = true;
	ids->has_user = ids->has_cgroup = ids->has_time = true;
	return 0;
}

/* Clock offsets of a task's time namespace (/proc/PID/timens_offsets). */
static int read_time_offsets(int procfd, pid_t pid, TimeNs **out)
{
	_cleanup_free_ char *buf = read_file_at(procfd, "timens_offsets", 4096, NULL);
	if (!buf)
		return pr_perror("ns: read /proc/%d/timens_offsets", pid);
	TimeNs *t = malloc(sizeof(*t));
	if (!t)
		return -ENOMEM;
	time_ns__init(t);
	*out = t;
	int got = 0;
	char *save = NULL;
	for (char *l = strtok_r(buf, "\n", &save); l; l = strtok_r(NULL, "\n", &save)) {
		char name[32];
		long long sec, nsec;
		if (sscanf(l, "%31s %lld %lld", name, &sec, &nsec) != 3 || nsec < 0 ||
		    nsec >= 1000000000LL) {
			pr_err("ns: malformed timens_offsets line '%s' of pid %d", l, pid);
			return -EINVAL;
		}
		if (!strcmp(name, "monotonic")) {
			t->monotonic_sec = sec;
			t->monotonic_nsec = nsec;
			got |= 1;
		} else if (!strcmp(name, "boottime")) {
			t->boottime_sec = sec;
			t->boottime_nsec = nsec;
			got |= 2;
		}
	}
	if (got != 3) {
		pr_err("ns: /proc/%d/timens_offsets lacks a clock", pid);
		return -EINVAL;
	}
	return 0;
}

/* Restore side, in the task that creates the children: a new time namespace for the
 * children created from now on, with the image's offsets (written before any task is in
 * it, as the kernel requires). */
int ns_enter_time_for_children(const TimeNs *t)
{
	if (unshare(CLONE_NEWTIME) < 0)
		return pr_perror("restore: unshare(CLONE_NEWTIME)");
	char buf[128];
	int n = snprintf(buf, sizeof(buf), "monotonic %lld %lld\nboottime %lld %lld\n",
			 (long long)t->monotonic_sec, (long long)t->monotonic_nsec,
			 (long long)t->boottime_sec, (long long)t->boottime_nsec);
	_cleanup_close_ int fd = open("/proc/self/timens_offsets", O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return pr_perror("restore: open /proc/self/timens_offsets");
	if (write(fd, buf, (size_t)n) != n)
		return pr_perror("restore: write time namespace offsets");
	return 0;
}

static int uts_child(void *arg, struct nsrun_buf *out)
{
	struct utsname u;
	(void)arg;
	if (uname(&u) < 0)
		return nsrun_error(-errno, "uname: %s", strerror(errno));
	return nsrun_put(out, &u, sizeof(u));
}

/* hostname and domainname of the UTS namespace of @pid, read by a child that joins it
 * (through the owning user namespace when that is not stasis's). */
static int read_uts(pid_t pid, UtsNs **out)
{
	char what[64], prefix[64];
	snprintf(what, sizeof(what), "the UTS namespace of pid %d", pid);
	snprintf(prefix, sizeof(prefix), "ns: cannot read the UTS namespace of pid %d: ", pid);
	struct nsrun r = { .tag = "ns", .what = what, .err_prefix = prefix, .n_ns = 1,
			   .via_owner = true, .timeout_ms = 5000,
			   .max_reply = sizeof(struct utsname) };
	_cleanup_close_ int nsfd = ns_open_of(pid, "uts", "ns");
	if (nsfd < 0)
		return nsfd;
	r.ns[0] = (struct nsrun_ns){ nsfd, CLONE_NEWUTS };
	_cleanup_free_ void *data = NULL;
	size_t len;
	int ret = ns_run(&r, uts_child, NULL, &data, &len);
	if (ret)
		return ret;
	if (len != sizeof(struct utsname)) {
		pr_err("ns: cannot read the UTS namespace of pid %d", pid);
		return -EIO;
	}
	const struct utsname *u = data;
	UtsNs *uts = malloc(sizeof(*uts));
	if (!uts)
		return -ENOMEM;
	uts_ns__init(uts);
	uts->hostname = strndup(u->nodename, sizeof(u->nodename));
	uts->domainname = strndup(u->domainname, sizeof(u->domainname));
	*out = uts;
	return uts->hostname && uts->domainname ? 0 : -ENOMEM;
}

/* Did task @i enter namespace @id with setns (another task's, or stasis's) rather than
 * create it? */
static bool ns_joined(struct dump_ctx **procs, size_t i, const struct ns_ops *k, uint64_t id,
		      NsIds *mine)
{
	bool joined = id == *ns_field(mine, k);
	for (size_t j = 0; j < i; j++)
		joined |= *ns_field(procs[j]->core->ns, k) == id;
	return joined;
}

/* Are @a and @b the same namespaces, but for the mount namespace when @but_mnt? */
static bool same_ids(const NsIds *a, const NsIds *b, bool but_mnt)
{
	return a->uts == b->uts && a->ipc == b->ipc && (but_mnt || a->mnt == b->mnt) &&
	       a->net == b->net && a->pid == b->pid && a->user == b->user &&
	       a->cgroup == b->cgroup && a->time == b->time &&
	       a->has_pid_for_children == b->has_pid_for_children &&
	       a->pid_for_children == b->pid_for_children;
}

/* Task @i entered (setns) the mount namespace a sibling created: it can be made by that
 * sibling with CLONE_PARENT (born in the rebuilt tree, with the sibling's files of it) if
 * the sibling created that namespace and nothing else, is no pid namespace's init, has
 * the same exit signal, and the task is in its namespaces and its session (or leads its
 * own) and shares nothing with its parent. The sibling's pid, or 0. */
static pid_t mnt_sibling_of(struct dump_ctx **procs, size_t i, const struct dump_ctx *pc)
{
	const struct dump_ctx *b = procs[i];
	for (size_t j = 0; pc && j < i; j++) {
		const struct dump_ctx *a = procs[j];
		if (a->core->ns->mnt != b->core->ns->mnt || !a->tns->mnt || a->parent != pc)
			continue;
		size_t lvl = a->status.nspid_len;
		bool ok = same_ids(a->core->ns, b->core->ns, false) &&
			  same_ids(a->core->ns, pc->core->ns, true) && !a->tns->pid_unshared &&
			  !a->tns->time_ns && !a->tns->cgroupns && (!lvl || a->status.nspid[lvl - 1] != 1) &&
			  a->stat.exit_signal == b->stat.exit_signal && !b->shares_files &&
			  !b->shares_fs &&
			  (b->stat.session == a->stat.session || b->stat.session == b->pid);
		return ok ? a->pid : 0;
	}
	return 0;
}

/* Task @c entered (setns) namespace @id of kind @k, which it did not create: the one its
 * nearest ancestor is in, or the dumper's (then the restorer's at restore), is entered
 * again at restore (TaskNs.joined). -ENOENT: neither (the caller refuses); one line and
 * -EOPNOTSUPP for what cannot be entered again: a task that also created a user
 * namespace (it entered with rights it has no longer in its own), a mount namespace of a
 * task that shares its root and cwd with its parent (setns refuses it). */
static int join_dump(struct dump_ctx *c, const struct ns_ops *k, uint64_t id, NsIds *mine)
{
	const struct dump_ctx *a = c->parent;
	while (a && *ns_field(a->core->ns, k) != id)
		a = a->parent;
	if (!a && id != *ns_field(mine, k))
		return -ENOENT;
	if (c->tns->userns || (k->clone_flag == CLONE_NEWNS && c->shares_fs)) {
		pr_err("pid %d entered (setns) %s of %s%.0d and %s: not supported", c->pid, k->what,
		       a ? "pid " : "the dumper", a ? a->pid : 0,
		       c->tns->userns ? "created a user namespace" : "shares its cwd (CLONE_FS)");
		return -EOPNOTSUPP;
	}
	NsJoin **v = realloc(c->tns->joined, (c->tns->n_joined + 1) * sizeof(*v));
	if (!v)
		return -ENOMEM;
	c->tns->joined = v;
	NsJoin *j = v[c->tns->n_joined] = malloc(sizeof(*j));
	if (!j)
		return -ENOMEM;
	c->tns->n_joined++;
	ns_join__init(j);
	j->type = (uint32_t)k->clone_flag;
	j->has_pid = a != NULL;
	j->pid = a ? a->pid : 0;
	return 0;
}

int ns_dump_tree(struct dump_ctx **procs, size_t n, const pid_t *ppid)
{
	_cleanup_close_ int self = open("/proc/self", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	NsIds mine;
	if (self < 0)
		return pr_perror("ns: open /proc/self");
	int ret = read_ids(self, &mine);
	if (!ret)
		ret = userns_dump_tree(procs, n, ppid, mine.user);
	for (size_t i = 0; i < n && !ret; i++) {
		NsIds *ids = procs[i]->core->ns;
		const struct dump_ctx *pc = NULL;
		for (size_t j = 0; j < i; j++)
			if (procs[j]->pid == ppid[i])
				pc = procs[j];
		NsIds *parent = pc ? pc->core->ns : &mine;
		/* the cgroup namespace it is in when the tree created it (its own, set by the
		 * cgroup row, or its parent's) */
		procs[i]->cgns = pc ? pc->cgns : NULL;
		for (size_t k = 0; k < NR_KINDS && !ret; k++) {
			uint64_t id = *ns_field(ids, &kinds[k]);
			if ((!kinds[k].dump && !kinds[k].rejoin) || !id ||
			    id == *ns_field(parent, &kinds[k]))
				continue;
			bool joined = ns_joined(procs, i, &kinds[k], id, &mine);
			if (kinds[k].clone_flag == CLONE_NEWNS && joined &&
			    (procs[i]->mnt_sibling = mnt_sibling_of(procs, i, pc)))
				continue; /* made by that sibling, in it */
			if (kinds[k].rejoin && joined) {
				ret = join_dump(procs[i], &kinds[k], id, &mine);
				if (ret != -ENOENT)
					continue; /* entered again, or refused */
				ret = 0;
			}
			if (kinds[k].refuse_joined && joined) {
				pr_err("pid %d is in %s other than its parent's that it did not create "
				       "(setns): not supported yet",
				       procs[i]->pid, kinds[k].what);
				return -EOPNOTSUPP;
			}
			ret = kinds[k].dump ? kinds[k].dump(procs[i], pc) : 0;
		}
		if (!ret)
			ret = pid_for_children_dump(procs, n, i);
	}
	return ret ? ret : net_dump_tree(procs, n, ppid, mine.net);
}

#define LAST_PID_PATH "/proc/sys/kernel/ns_last_pid"

/* ns_last_pid is per pid namespace and only readable/writable from inside it: done by
 * the namespace's init itself, with remote syscalls (path and buffer in scratch). */
static long last_pid_io(struct rsys *rs, bool write_it, int *val)
{
	char buf[32];
	size_t plen = sizeof(LAST_PID_PATH);
	int e = rsys_poke(rs, rs->scratch, LAST_PID_PATH, plen);
	if (e)
		return e;
	long fd; /* not logged: where /proc is missing or read-only the callers go around */
	e = rsys_call(rs, SYS_open, rs->scratch, write_it ? O_WRONLY : O_RDONLY, 0, 0, 0, 0, &fd);
	if (e || fd < 0)
		return e ? e : fd;
	long r;
	if (write_it) {
		int n = snprintf(buf, sizeof(buf), "%d", *val);
		e = rsys_poke(rs, rs->scratch + 64, buf, (size_t)n);
		r = e ? e : rsys_do(rs, "ns: write ns_last_pid", SYS_write, (uint64_t)fd, rs->scratch + 64,
				    (uint64_t)n, 0, 0, 0);
	} else {
		r = rsys_do(rs, "ns: read ns_last_pid", SYS_read, (uint64_t)fd, rs->scratch + 64,
			    sizeof(buf) - 1, 0, 0, 0);
		if (r > 0) {
			e = rsys_peek(rs, rs->scratch + 64, buf, (size_t)r);
			buf[e ? 0 : r] = '\0';
			long long v;
			buf[strcspn(buf, "\n")] = '\0';
			if (e || parse_int(buf, 0, 0x3fffffff, &v)) {
				pr_err("ns: malformed ns_last_pid '%s'", buf);
				r = -EINVAL;
			} else {
				*val = (int)v;
			}
		}
	}
	long c = rsys_do(rs, "ns: close ns_last_pid", SYS_close, (uint64_t)fd, 0, 0, 0, 0, 0);
	return r < 0 ? r : c < 0 ? c : 0;
}

/* In a child born in the pid namespace: set ns_last_pid to *@arg, or (reading) to the
 * child's own pid - 1 (the next fork gets the pid the child took). */
static int last_pid_child(void *arg, struct nsrun_buf *out)
{
	const int32_t *set = arg;
	int32_t v = set ? *set : (int32_t)getpid() - 1;
	char buf[16];
	int n = snprintf(buf, sizeof(buf), "%d", v);
	int fd = open(LAST_PID_PATH, O_WRONLY | O_CLOEXEC);
	if (fd < 0 || write(fd, buf, (size_t)n) != n)
		return -(errno ? errno : EIO);
	close(fd);
	return nsrun_put(out, &v, sizeof(v));
}

int ns_last_pid_in(int ns_fd, int *val, bool set)
{
	struct nsrun r = { .tag = "ns", .what = "a pid namespace of the tree", .n_ns = 1,
			   .timeout_ms = 5000, .max_reply = sizeof(int32_t) };
	r.ns[0] = (struct nsrun_ns){ ns_fd, CLONE_NEWPID };
	int32_t want = *val;
	_cleanup_free_ void *data = NULL;
	size_t len;
	int ret = ns_run(&r, last_pid_child, set ? &want : NULL, &data, &len);
	if (ret)
		return ret;
	if (len != sizeof(int32_t))
		return -EIO;
	memcpy(val, data, sizeof(int32_t));
	return 0;
}

/* ns_last_pid of the pid namespace of init @pid, which has no /proc to reach it in (it
 * pivot_root'ed away from it), through a child stasis forks there: reading, it takes the
 * next pid P and writes P - 1 back (the namespace's next fork is the same as without it;
 * a pid taken by then makes P - 1 a pid in use: the same next fork). */
static int last_pid_probe(pid_t pid, int *val, bool set)
{
	char path[64];
	snprintf(path, sizeof(path), "/proc/%d/ns/pid", pid);
	_cleanup_close_ int nsfd = open(path, O_RDONLY | O_CLOEXEC);
	if (nsfd < 0)
		return pr_perror("ns: open %s", path);
	return ns_last_pid_in(nsfd, val, set);
}

int ns_dump_last_pid(struct dump_ctx *c)
{
	if (c->status.nspid_len < 2 || c->status.nspid[c->status.nspid_len - 1] != 1)
		return 0; /* not a namespace init */
	int v = 0;
	long r = last_pid_io(&c->rs, false, &v);
	if (r == -ENOENT || r == -EACCES || r == -EPERM) {
		/* no proc where the init is: read it from a probe in the namespace */
		r = last_pid_probe(c->ospid, &v, false);
		if (r < 0) {
			pr_warn("ns: ns_last_pid of the pid namespace of pid %d is out of reach (no "
				"/proc there, no right to enter it): not restored",
				c->pid);
			return 0;
		}
	}
	if (r < 0)
		return pr_errno((int)r, "ns: ns_last_pid of the pid namespace of pid %d", c->pid);
	c->tns->has_ns_last_pid = true;
	c->tns->ns_last_pid = v;
	return 0;
}

int ns_restore_last_pid(struct rst_ctx *c)
{
	if (!c->tns->has_ns_last_pid)
		return 0;
	int v = c->tns->ns_last_pid;
	if (v < 0) {
		pr_err("image: invalid ns_last_pid %d", v);
		return -EINVAL;
	}
	long r = last_pid_io(&c->rs, true, &v);
	if (r == -ENOENT || r == -EACCES || r == -EROFS || r == -EPERM) {
		/* no (writable) proc where the init is: a probe stasis forks there writes it */
		r = last_pid_probe(c->pid, &v, true);
	}
	if (r < 0)
		return pr_errno((int)r, "restore: ns_last_pid %d of the pid namespace of pid %d",
				v, c->pid);
	return 0;
}

/* The namespaces a restored task creates when it is cloned (it entered them itself at
 * some point: its namespace differed from its parent's). One place for every kind. */
uint64_t ns_clone_flags(const TaskNs *tns)
{
	uint64_t fl = 0;
	for (size_t k = 0; k < NR_KINDS; k++)
		if (kinds[k].in_clone && kinds[k].created(tns))
			fl |= (uint64_t)kinds[k].clone_flag;
	return fl;
}

/* In the restore child, right after clone3(CLONE_NEWUTS / CLONE_NEWIPC). */
int ns_restore_child(struct rst_ctx *c)
{
	for (size_t k = 0; k < NR_KINDS; k++)
		if (kinds[k].restore_child && kinds[k].created(c->tns)) {
			int ret = kinds[k].restore_child(c);
			if (ret)
				return ret;
		}
	return 0;
}

static const struct ns_ops *kind_of(uint32_t type)
{
	for (size_t k = 0; k < NR_KINDS; k++)
		if ((uint32_t)kinds[k].clone_flag == type)
			return &kinds[k];
	return NULL;
}

bool ns_task_joined(const TaskNs *tns, int type)
{
	for (size_t j = 0; tns && j < tns->n_joined; j++)
		if (tns->joined[j]->type == (uint32_t)type)
			return true;
	return false;
}

int ns_joined_check(const TaskNs *tns, const Inventory *inv, size_t idx)
{
	for (size_t j = 0; j < tns->n_joined; j++) {
		const NsJoin *nj = tns->joined[j];
		const struct ns_ops *k = kind_of(nj->type);
		bool ok = k && k->rejoin && !k->created(tns) && !tns->userns && idx > 0 &&
			  !(nj->type == CLONE_NEWNS && inv->tasks[idx]->shares_fs);
		for (size_t o = 0; ok && o < j; o++)
			ok = tns->joined[o]->type != nj->type;
		/* an ancestor: up the parents (a tree, parents first: each step goes up) */
		ssize_t a = ok && nj->has_pid ? rst_task_index(inv, inv->tasks[idx]->ppid) : -1;
		while (a > 0 && inv->tasks[a]->pid != nj->pid)
			a = rst_task_index(inv, inv->tasks[a]->ppid);
		if (!ok || (nj->has_pid && (a < 0 || inv->tasks[a]->pid != nj->pid))) {
			pr_err("images: pid %d entered a namespace (type %#x, of pid %d) it cannot "
			       "enter again",
			       inv->tasks[idx]->pid, nj->type, nj->has_pid ? nj->pid : 0);
			return -EINVAL;
		}
	}
	return 0;
}

int ns_enter_joined(const TaskNs *tns, int proc_dfd, pid_t stasis_pid)
{
	for (size_t j = 0; j < tns->n_joined; j++) {
		const NsJoin *nj = tns->joined[j];
		const struct ns_ops *k = kind_of(nj->type);
		char path[64];
		if (!k)
			return -EINVAL; /* (checked at load) */
		snprintf(path, sizeof(path), "%d/ns/%s", nj->has_pid ? nj->pid : stasis_pid,
			 k->name);
		_cleanup_close_ int fd = openat(proc_dfd, path, O_RDONLY | O_CLOEXEC);
		if (fd < 0 || setns(fd, (int)nj->type) < 0)
			return pr_perror("restore: enter %s of %s%.0d again (setns)", k->what,
					 nj->has_pid ? "pid " : "stasis",
					 nj->has_pid ? nj->pid : 0);
	}
	return 0;
}

/* --join-ns: a namespace that exists (a bind-mounted nsfs file or /proc/PID/ns/TYPE) the
 * restored root is put in instead of the one it had. */
int ns_join_open(const char *spec, int *fd, int *nstype)
{
	static const struct {
		const char *name;
		int flag;
	} types[] = { { "uts", CLONE_NEWUTS }, { "ipc", CLONE_NEWIPC }, { "net", CLONE_NEWNET } };
	const char *colon = strchr(spec, ':');
	*fd = -1;
	for (size_t i = 0; colon && i < ARRAY_SIZE(types); i++)
		if ((size_t)(colon - spec) == strlen(types[i].name) &&
		    !strncmp(spec, types[i].name, strlen(types[i].name)))
			*nstype = types[i].flag;
	if (!colon || !colon[1] || !*nstype) {
		pr_err("--join-ns %s: expected TYPE:PATH with TYPE uts, ipc or net", spec);
		return -EINVAL;
	}
	const char *path = colon + 1;
	int f = open(path, O_RDONLY | O_CLOEXEC);
	if (f < 0)
		return pr_perror("--join-ns: open %s", path);
	int t = ioctl(f, NS_GET_NSTYPE);
	if (t < 0) {
		int err = errno;
		close(f);
		pr_err("--join-ns: %s is not a namespace file (nsfs): %s", path,
		       err == ENOTTY ? "not a namespace" : strerror(err));
		return -EINVAL;
	}
	if (t != *nstype) {
		close(f);
		pr_err("--join-ns: %s is not a %.*s namespace", path, (int)(colon - spec), spec);
		return -EINVAL;
	}
	*fd = f;
	return 0;
}

void ns_join_forget(TaskNs *root, int nstype)
{
	for (size_t k = 0; k < NR_KINDS; k++)
		if (kinds[k].forget && kinds[k].clone_flag == nstype)
			kinds[k].forget(root);
}

/* --- --pin-ns DIR ------------------------------------------------------------------- */

/* Every namespace the restore created is kept alive by a bind mount of its nsfs file on
 * DIR/<kind>-<pid>, <pid> being the restored task that was put in it when it was made (as
 * stasis sees it: the dumped pid). Namespaces joined with --join-ns or inherited from
 * stasis are the caller's, not pinned.
 *
 * Done by the restoring stasis itself, which stays outside every namespace it creates
 * (it is the parent of the restored root), and must: the kernel refuses to bind a mount
 * namespace's file into a mount namespace that is not older than it (fs/namespace.c,
 * mnt_ns_loop: a namespace pinned from inside itself or from a younger one could hold a
 * reference loop and never be freed), so a task of the restored tree could not pin its own
 * mount namespace; and a task inside the restored user namespace has no CAP_SYS_ADMIN over
 * the mount namespace DIR lives in (owned by an outer user namespace), so it could not
 * mount over DIR at all. snap-confine keeps its preserved namespaces the same way, from
 * outside. */

int ns_pins_open(struct ns_pins *p, const char *dir)
{
	memset(p, 0, sizeof(*p));
	p->dirfd = -1;
	p->dir = dir;
	int fd = open(dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0) {
		int err = errno;
		pr_err("--pin-ns %s: %s", dir, err == ENOTDIR ? "not a directory" : strerror(err));
		return -err;
	}
	p->dirfd = fd;
	/* The pins are mounts in stasis's mount namespace, which needs CAP_SYS_ADMIN over its
	 * owner (stasis's user namespace or an ancestor; may_mount in fs/namespace.c):
	 * without it in stasis's own, refuse before anything is restored. */
	if (!kdat_has(KD_CAP_SYS_ADMIN)) {
		pr_err("--pin-ns %s: pinning needs CAP_SYS_ADMIN (the pins are mounts in stasis's "
		       "mount namespace)",
		       dir);
		return -EPERM;
	}
	return 0;
}

static int pin_plan(struct ns_pins *p, const char *kind, pid_t pid)
{
	if (p->n == p->cap) {
		size_t cap = p->cap ? 2 * p->cap : 16;
		struct ns_pin *np = realloc(p->pin, cap * sizeof(*np));
		if (!np)
			return -ENOMEM;
		p->pin = np;
		p->cap = cap;
	}
	struct ns_pin *x = &p->pin[p->n];
	memset(x, 0, sizeof(*x));
	snprintf(x->name, sizeof(x->name), "%s-%d", kind, (int)pid);
	x->kind = kind;
	x->pid = pid;
	struct stat st;
	if (fstatat(p->dirfd, x->name, &st, AT_SYMLINK_NOFOLLOW) == 0) {
		pr_err("--pin-ns: %s/%s exists (a pin of an earlier restore?): unmount and "
		       "remove it first",
		       p->dir, x->name);
		return -EEXIST;
	}
	if (errno != ENOENT)
		return pr_perror("--pin-ns: stat %s/%s", p->dir, x->name);
	p->n++;
	return 0;
}

int ns_pins_add(struct ns_pins *p, const TaskNs *tns, pid_t pid, bool new_pid)
{
	int ret = 0;
	for (size_t k = 0; !ret && k < NR_KINDS; k++)
		if (kinds[k].created ? kinds[k].created(tns) : new_pid)
			ret = pin_plan(p, kinds[k].name, pid);
	return ret;
}

/* Is the mount directory @dirfd is on shared (it propagates to peers)? Its mountinfo
 * line is scanned for a "shared:" tag among the optional fields (not the whole file
 * parsed: nsfs pins there have roots like "mnt:[4026532181]", which the parser refuses). */
static bool dir_is_shared(int dirfd)
{
	struct statx sx;
	if (statx(dirfd, "", AT_EMPTY_PATH, STATX_MNT_ID, &sx) < 0 || !(sx.stx_mask & STATX_MNT_ID))
		return false;
	_cleanup_free_ char *buf = read_file_at(AT_FDCWD, "/proc/self/mountinfo", 4u << 20, NULL);
	char *save = NULL;
	for (char *l = buf ? strtok_r(buf, "\n", &save) : NULL; l; l = strtok_r(NULL, "\n", &save)) {
		unsigned long long id;
		if (sscanf(l, "%llu ", &id) != 1 || id != sx.stx_mnt_id)
			continue;
		char *end = strstr(l, " - ");
		char *tag = strstr(l, " shared:");
		return tag && end && tag < end;
	}
	return false;
}

int ns_pins_make(struct ns_pins *p, int proc_dfd)
{
	for (size_t i = 0; i < p->n; i++) {
		struct ns_pin *x = &p->pin[i];
		char src[48];
		snprintf(src, sizeof(src), "%d/ns/%s", (int)x->pid, x->kind);
		int fd = openat(p->dirfd, x->name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
				0600);
		if (fd < 0)
			return pr_perror("--pin-ns: create %s/%s", p->dir, x->name);
		close(fd);
		x->created = true;
		/* A bind of the nsfs file the magic link leads to, with mount(2) through fds
		 * (stasis's /proc, DIR). A mount namespace's file is refused (EINVAL) unless
		 * its id is above stasis's namespace's: the restore child saw to it
		 * (src/ns/mnt.c, mnt_ns_above). */
		char from[96], to[96];
		snprintf(from, sizeof(from), "/proc/self/fd/%d/%s", proc_dfd, src);
		snprintf(to, sizeof(to), "/proc/self/fd/%d/%s", p->dirfd, x->name);
		if (mount(from, to, NULL, MS_BIND, NULL) < 0) {
			int err = errno;
			if (err == EINVAL && !strcmp(x->kind, "mnt") && dir_is_shared(p->dirfd))
				pr_err("--pin-ns: cannot bind the mount namespace of pid %d on %s/%s: "
				       "%s is on a shared mount, where the kernel refuses it (it would "
				       "propagate); make the directory a private mount first (mount "
				       "--bind DIR DIR; mount --make-private DIR)",
				       (int)x->pid, p->dir, x->name, p->dir);
			else
				pr_errno(-err, "--pin-ns: mount /proc/%s on %s/%s", src, p->dir, x->name);
			return -err;
		}
		x->mounted = true;
		pr_info("restore: pinned the %s namespace of pid %d on %s/%s", x->kind, (int)x->pid,
			p->dir, x->name);
	}
	return 0;
}

void ns_pins_undo(struct ns_pins *p)
{
	for (size_t i = p->n; i-- > 0;) {
		struct ns_pin *x = &p->pin[i];
		if (x->mounted) {
			/* through an fd of the pin (the top mount there): no path to resolve */
			_cleanup_close_ int at = openat(p->dirfd, x->name, O_PATH | O_NOFOLLOW | O_CLOEXEC);
			char target[64];
			snprintf(target, sizeof(target), "/proc/self/fd/%d", at);
			if (at < 0 || umount2(target, MNT_DETACH) < 0)
				pr_warn("--pin-ns: unmount %s/%s: %s", p->dir, x->name, strerror(errno));
			x->mounted = false;
		}
		if (x->created && unlinkat(p->dirfd, x->name, 0) < 0)
			pr_warn("--pin-ns: remove %s/%s: %s", p->dir, x->name, strerror(errno));
		x->created = false;
	}
}

void ns_pins_close(struct ns_pins *p)
{
	if (p->dirfd >= 0)
		close(p->dirfd);
	p->dirfd = -1;
	free(p->pin);
	p->pin = NULL;
	p->n = p->cap = 0;
}

/* --- the rows ------------------------------------------------------------------- */

/* A task in a pid namespace other than its parent's is its init (pid 1), one level
 * deeper: it is created with CLONE_NEWPID and a set_tid array of the full depth. Tasks
 * that joined a namespace with setns cannot be rebuilt yet. */
static int pid_dump(struct dump_ctx *c, const struct dump_ctx *parent)
{
	const struct proc_status *st = &c->status;
	size_t plen = parent ? parent->status.nspid_len : 1;
	if (!st->nspid_len || st->nspid[st->nspid_len - 1] != 1 || st->nspid_len != plen + 1) {
		pr_err("pid %d is in a pid namespace it is not the init of (NSpid depth %zu): not "
		       "supported yet",
		       c->pid, st->nspid_len);
		return -EOPNOTSUPP;
	}
	return 0;
}

static bool user_created(const TaskNs *tns)
{
	return tns->userns;
}

static int time_dump(struct dump_ctx *c, const struct dump_ctx *parent)
{
	(void)parent;
	return read_time_offsets(c->procfd, c->pid, &c->tns->time_ns);
}

static bool time_created(const TaskNs *tns)
{
	return tns->time_ns;
}

static int cgroup_dump_ns(struct dump_ctx *c, const struct dump_ctx *parent)
{
	(void)parent;
	int ret = cgroup_ns_dump(c);
	if (!ret)
		c->cgns = c->tns->cgroupns;
	return ret;
}

static bool cgroup_created(const TaskNs *tns)
{
	return tns->cgroupns;
}

static bool mnt_created(const TaskNs *tns)
{
	return tns->mnt;
}

static bool net_created(const TaskNs *tns)
{
	return tns->net;
}

static void net_forget(TaskNs *root)
{
	protobuf_c_message_free_unpacked((ProtobufCMessage *)root->net, NULL); /* may be NULL */
	root->net = NULL;
}

static int ipc_dump(struct dump_ctx *c, const struct dump_ctx *parent)
{
	(void)parent;
	/* (read inside the owning user namespace: owners as its tasks see them) */
	return ipc_dump_ns(c->ospid, &c->tns->ipc);
}

static bool ipc_created(const TaskNs *tns)
{
	return tns->ipc;
}

static int ipc_restore_child(struct rst_ctx *c)
{
	return ipc_restore_ns(c->tns->ipc, c->pid, c->proc_dfd);
}

static void ipc_forget(TaskNs *root)
{
	protobuf_c_message_free_unpacked((ProtobufCMessage *)root->ipc, NULL); /* may be NULL */
	root->ipc = NULL;
}

static int uts_dump(struct dump_ctx *c, const struct dump_ctx *parent)
{
	(void)parent;
	return read_uts(c->ospid, &c->tns->uts);
}

static bool uts_created(const TaskNs *tns)
{
	return tns->uts;
}

static int uts_restore_child(struct rst_ctx *c)
{
	const UtsNs *u = c->tns->uts;
	if (strlen(u->hostname) > 64 || strlen(u->domainname) > 64) {
		pr_err("image: UTS names of pid %d are too long", c->pid);
		return -EINVAL;
	}
	if (sethostname(u->hostname, strlen(u->hostname)) < 0)
		return pr_perror("restore: sethostname %s", u->hostname);
	if (setdomainname(u->domainname, strlen(u->domainname)) < 0)
		return pr_perror("restore: setdomainname %s", u->domainname);
	return 0;
}

static void uts_forget(TaskNs *root)
{
	protobuf_c_message_free_unpacked((ProtobufCMessage *)root->uts, NULL); /* may be NULL */
	root->uts = NULL;
}

/* The order of the rows is the order of every stage: at dump (each task's namespaces
 * once every process is read) the pid check first; the cgroup namespace before the mount
 * namespace, as a fresh cgroup mount is rebuilt relative to it; the network namespaces
 * are read by src/net/netns.c over the whole tree afterwards. In the restore child the
 * same order: its cgroup roots, then its mount tree (a fresh cgroup mount shows the
 * namespace it is made in), then links, IPC objects, names. The user namespace is
 * entered before all of them (src/ns/userns.c); a time namespace is unshared by the
 * creator before the clone. */
static const struct ns_ops kinds[NR_KINDS] = {
	{ .name = "pid", .what = "a pid namespace", .id_off = offsetof(NsIds, pid),
	  .clone_flag = CLONE_NEWPID, .dump = pid_dump },
	{ .name = "user", .what = "a user namespace", .id_off = offsetof(NsIds, user),
	  .clone_flag = CLONE_NEWUSER, .in_clone = true, .created = user_created },
	{ .name = "time", .what = "a time namespace", .id_off = offsetof(NsIds, time),
	  .clone_flag = CLONE_NEWTIME, .dump = time_dump, .created = time_created },
	{ .name = "cgroup", .what = "a cgroup namespace", .id_off = offsetof(NsIds, cgroup),
	  .clone_flag = CLONE_NEWCGROUP, .refuse_joined = true, .dump = cgroup_dump_ns,
	  .created = cgroup_created, .restore_child = cgroup_ns_restore_child },
	{ .name = "mnt", .what = "a mount namespace", .id_off = offsetof(NsIds, mnt),
	  .clone_flag = CLONE_NEWNS, .in_clone = true, .refuse_joined = true, .rejoin = true,
	  .dump = mnt_dump_ns, .created = mnt_created, .restore_child = mnt_restore_child },
	{ .name = "net", .what = "a network namespace", .id_off = offsetof(NsIds, net),
	  .clone_flag = CLONE_NEWNET, .in_clone = true, .rejoin = true, .created = net_created,
	  .restore_child = net_restore, .forget = net_forget },
	{ .name = "ipc", .what = "an IPC namespace", .id_off = offsetof(NsIds, ipc),
	  .clone_flag = CLONE_NEWIPC, .in_clone = true, .refuse_joined = true, .rejoin = true,
	  .dump = ipc_dump, .created = ipc_created, .restore_child = ipc_restore_child,
	  .forget = ipc_forget },
	{ .name = "uts", .what = "a UTS namespace", .id_off = offsetof(NsIds, uts),
	  .clone_flag = CLONE_NEWUTS, .in_clone = true, .refuse_joined = true, .rejoin = true,
	  .dump = uts_dump, .created = uts_created, .restore_child = uts_restore_child,
	  .forget = uts_forget },
};

static int ns_dump_tree_hook(struct dump_tree *t)
{
	return ns_dump_tree(t->procs, t->nr, t->ppid);
}

const struct resource ns_resource = {
	.name = "namespaces",
	.dump = ns_dump,
	.dump_tree = ns_dump_tree_hook,
};

const struct resource pidns_resource = {
	.name = "pid namespace",
	.dump = ns_dump_last_pid,
	.remote = ns_restore_last_pid,
};
