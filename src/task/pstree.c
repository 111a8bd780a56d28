/* The process tree's sessions and process groups: which ones a restore can rebuild
 * (checked once the whole tree is frozen; the restore side lives in src/cr/restore.c,
 * which creates the tasks). */
#include <errno.h>
#include <stdio.h>
#include <unistd.h>

#include "core/log.h"
#include "cr/resource.h"
#include "ns/ns.h"
#include "task/task.h"

static int find_alive(const struct dump_tree *t, pid_t pid)
{
	for (size_t i = 0; i < t->nr; i++)
		if (t->procs[i]->pid == pid)
			return (int)i;
	return -1;
}

static const struct zombie *find_zombie(const struct dump_tree *t, pid_t pid)
{
	for (size_t z = 0; z < t->nr_zombies; z++)
		if (t->zombies[z].pid == pid)
			return &t->zombies[z];
	return NULL;
}

bool dump_tree_has(const struct dump_tree *t, pid_t pid)
{
	return find_alive(t, pid) >= 0 || find_zombie(t, pid);
}

/* The task the kernel gives the orphans of a child of procs[@l] to: the nearest of @l and
 * its ancestors (in its pid namespace) that is a child subreaper, else that namespace's
 * init (kernel/exit.c find_new_reaper). -1 when that is outside the tree. */
static int orphan_reaper(const struct dump_tree *t, int l)
{
	size_t level = t->procs[l]->status.nspid_len;
	for (int k = l, hops = 0; k >= 0 && hops <= (int)t->nr; hops++) {
		const struct dump_ctx *c = t->procs[k];
		if (c->status.nspid_len != level)
			return -1;
		if ((c->core && c->core->child_subreaper) || (level > 1 && c->status.nspid[level - 1] == 1))
			return k;
		k = k ? find_alive(t, t->ppid[k]) : -1;
	}
	return -1;
}

/* The live task that makes task @pid (parent @ppid, session @sid, made by @creator if
 * set) at restore as chosen so far (src/cr/spawn.c rst_creator_of): its creator (a
 * zombie's own maker for a zombie creator), the leader of its session when that is its
 * sibling, else its parent; -1 if none. */
static int maker_of(const struct dump_tree *t, pid_t pid, pid_t ppid, pid_t sid, pid_t creator)
{
	if (creator) {
		/* (a zombie that makes tasks is made by a live one: no deeper) */
		const struct zombie *z = find_alive(t, creator) < 0 ? find_zombie(t, creator) : NULL;
		if (z && z->creator) {
			const struct zombie *zc = find_zombie(t, z->creator);
			return zc ? maker_of(t, zc->pid, zc->ppid, zc->sid, 0)
				  : find_alive(t, z->creator);
		}
		return z ? maker_of(t, z->pid, z->ppid, z->sid, 0) : find_alive(t, creator);
	}
	int pi = find_alive(t, ppid), li = find_alive(t, sid);
	if (pi >= 0 && sid != pid && sid != t->procs[pi]->stat.session && li > 0 &&
	    t->ppid[li] == ppid)
		return li;
	return pi;
}

/* (a session leader born in another session is made there: by its leader too, if that
 * is its sibling) */
static int creator_of(const struct dump_tree *t, int k)
{
	const struct dump_ctx *c = t->procs[k];
	pid_t made_in = c->born_sid && c->stat.session == c->pid ? c->born_sid : c->stat.session;
	return k ? maker_of(t, c->pid, t->ppid[k], made_in, c->creator) : -1;
}

/* Is procs[@l] made (directly or through the tasks that make its makers) by task @pid, or
 * by a task @pid (a zombie) makes? */
static bool made_by(const struct dump_tree *t, int l, pid_t pid)
{
	for (int k = l, hops = 0; k >= 0 && hops <= (int)t->nr; hops++) {
		if (t->procs[k]->pid == pid || t->procs[k]->creator == pid)
			return true;
		if (k == 0)
			return false;
		k = creator_of(t, k);
	}
	return true; /* (no end: never chosen) */
}

/* Does any task have @pid (a zombie) as its creator? */
static bool is_creator(const struct dump_tree *t, pid_t pid)
{
	for (size_t k = 1; k < t->nr; k++)
		if (t->procs[k]->creator == pid)
			return true;
	for (size_t z = 0; z < t->nr_zombies; z++)
		if (t->zombies[z].creator == pid)
			return true;
	return false;
}

/* A task (@pid, @level pid namespaces deep, live or a zombie) is in session @sid, neither
 * its own nor its parent's (procs[@pi]): it was orphaned and reparented. It can be made
 * again by a task of that session through a helper that exits at once, if the kernel then
 * gives it to the same parent: a live task of the session whose orphans go to that
 * parent (or a zombie of the session whose parent's orphans do: it makes the task before
 * it exits), in the same pid namespace, not made by the task itself. A zombie that makes
 * tasks has no maker of that kind itself. The creator's pid, or 0. */
static pid_t find_orphan_creator(const struct dump_tree *t, pid_t pid, int pi, pid_t sid,
				 size_t level)
{
	if (pi < 0 || level != t->procs[pi]->status.nspid_len)
		return 0;
	for (size_t l = 0; l < t->nr; l++) {
		const struct dump_ctx *cl = t->procs[l];
		if (cl->pid == pid || cl->stat.session != sid || cl->status.nspid_len != level ||
		    made_by(t, (int)l, pid))
			continue;
		if (orphan_reaper(t, (int)l) == pi)
			return cl->pid;
	}
	for (size_t z = 0; z < t->nr_zombies; z++) {
		const struct zombie *zt = &t->zombies[z];
		int zp = find_alive(t, zt->ppid), zm = maker_of(t, zt->pid, zt->ppid, zt->sid, 0);
		if (zt->pid == pid || zt->creator || zt->sid != sid || zp < 0 || zm < 0 ||
		    zt->nspid_len != level || made_by(t, zm, pid) || orphan_reaper(t, zp) != pi)
			continue;
		return zt->pid;
	}
	return 0;
}

/* Live task @i so (above): it neither shares its parent's files nor creates namespaces.
 * Sets procs[i]->creator. */
static bool orphan_creator(struct dump_tree *t, size_t i, pid_t sid)
{
	struct dump_ctx *c = t->procs[i];
	if (c->shares_files || c->shares_fs || ns_clone_flags(c->tns))
		return false;
	c->creator = find_orphan_creator(t, c->pid, find_alive(t, t->ppid[i]), sid,
					 c->status.nspid_len);
	return c->creator > 0;
}

/* Zombie @z so: not itself a maker of tasks. Sets z->creator. */
static bool zombie_orphan_creator(struct dump_tree *t, struct zombie *z)
{
	if (is_creator(t, z->pid))
		return false;
	z->creator = find_orphan_creator(t, z->pid, find_alive(t, z->ppid), z->sid, z->nspid_len);
	return z->creator > 0;
}

/* The session a task made through a session helper (via_session) is made in: the one it
 * was born in for a session leader, else its own. */
static pid_t helper_sid_of(const struct dump_ctx *c)
{
	return c->born_sid ? c->born_sid : c->stat.session;
}

/* Is @sid a session made through a helper (its leader gone)? The parent of the tasks
 * made through it in *@ppid. */
static bool helper_session_parent(const struct dump_tree *t, pid_t sid, pid_t *ppid)
{
	for (size_t k = 1; k < t->nr; k++)
		if (t->procs[k]->via_session && helper_sid_of(t->procs[k]) == sid) {
			*ppid = t->ppid[k];
			return true;
		}
	for (size_t z = 0; z < t->nr_zombies; z++)
		if (t->zombies[z].via_session && t->zombies[z].sid == sid) {
			*ppid = t->zombies[z].ppid;
			return true;
		}
	return false;
}

static bool helper_session(const struct dump_tree *t, pid_t sid)
{
	pid_t ppid;
	return helper_session_parent(t, sid, &ppid);
}

/* A task (@level pid namespaces deep, child of @ppid) in session @sid whose leader is
 * gone (a daemon's double fork: the session leader exited, its child was given to a
 * subreaper or a pid namespace's init), or born there: made again by its parent through
 * a helper with the session's id (@ids at every level) that calls setsid, makes it and
 * exits, so that the kernel gives it back to that parent. The parent must be the reaper
 * of its own children's orphans, in the same pid namespace, no process may have the
 * session's id, which is known at every level; every task of one session made so has
 * one parent (one helper). */
static bool session_helper_ok(const struct dump_tree *t, pid_t ppid, pid_t sid, size_t level,
			      const int *ids, size_t n_ids)
{
	int pi = find_alive(t, ppid);
	char path[32];
	snprintf(path, sizeof(path), "/proc/%d", sid);
	if (pi < 0 || dump_tree_has(t, sid) || sid == t->procs[0]->stat.session ||
	    !access(path, F_OK) || orphan_reaper(t, pi) != pi ||
	    level != t->procs[pi]->status.nspid_len || n_ids != level || !n_ids || ids[0] != sid)
		return false;
	for (size_t k = 0; k < n_ids; k++)
		if (ids[k] <= 0)
			return false;
	pid_t other;
	return !helper_session_parent(t, sid, &other) || other == ppid;
}

/* Live task @i in session @sid whose leader is gone, made through its helper (above): it
 * neither shares its parent's files nor creates namespaces. Sets procs[i]->via_session.
 * A session leader (@ids: those of a task of @sid) is born in @sid so. */
static bool session_helper(struct dump_tree *t, size_t i, pid_t sid, const int *ids, size_t n_ids)
{
	struct dump_ctx *c = t->procs[i];
	if (c->shares_files || c->shares_fs || ns_clone_flags(c->tns) || c->creator ||
	    c->mnt_sibling || !session_helper_ok(t, t->ppid[i], sid, c->status.nspid_len, ids, n_ids))
		return false;
	if (c->stat.session == c->pid) {
		c->born_sid = sid;
		c->sess_nssid = ids;
		c->sess_nssid_len = n_ids;
	}
	return c->via_session = true;
}

/* The same for zombie @z: it exits once made; its parent takes its exit signal. */
static bool zombie_session_helper(struct dump_tree *t, struct zombie *z)
{
	if (!session_helper_ok(t, z->ppid, z->sid, z->nspid_len, z->nssid, z->nssid_len))
		return false;
	return z->via_session = true;
}

/* Session leader procs[@k] was born in session @sid, whose leader is its sibling, alive:
 * made by that leader with CLONE_PARENT (then it made its children of @sid and called
 * setsid), when it is made with nothing of its parent's and in the same pid namespace. */
static bool sibling_leader(const struct dump_tree *t, int k, pid_t sid)
{
	const struct dump_ctx *c = t->procs[k];
	int li = find_alive(t, sid);
	return li > 0 && li != k && t->ppid[li] == t->ppid[k] && !c->shares_files &&
	       !c->shares_fs && !ns_clone_flags(c->tns) &&
	       t->procs[li]->status.nspid_len == c->status.nspid_len && !made_by(t, li, c->pid);
}

/* Task @pid (parent procs[@pi]) is in session @sid, not its parent's: its parent and
 * maybe more of its ancestors lead sessions of their own and were born in @sid (each made
 * its children of @sid, then called setsid). Each of them is made in @sid: by its parent
 * (before that parent's setsid when it was born in @sid too), by the leader of @sid when
 * that is its sibling (sibling_leader), by a task of @sid whose
 * orphans its parent reaps, through a helper (orphan_creator), or, the leader of @sid
 * gone, through the helper of @sid (its ids @ids from the task); sets their born_sid. No:
 * one of them is no session leader, was born in another session already, or is made in
 * another way. */
static bool born_chain(struct dump_tree *t, int pi, pid_t sid, bool shares, const int *ids,
		       size_t n_ids)
{
	int k = pi, top = -1;
	if (shares) /* made with its parent's fd table: after the parent's own setup */
		return false;
	for (int hops = 0; k > 0 && top < 0 && hops <= (int)t->nr; hops++) {
		const struct dump_ctx *c = t->procs[k];
		if (c->stat.session != c->pid || (c->born_sid && c->born_sid != sid) ||
		    c->via_session || c->mnt_sibling)
			return false;
		int pk = find_alive(t, t->ppid[k]);
		if (c->born_sid == sid || (!c->creator && pk >= 0 && t->procs[pk]->stat.session == sid))
			top = k; /* made in @sid already */
		else if (c->creator)
			return false;
		else if (sibling_leader(t, k, sid) || orphan_creator(t, (size_t)k, sid) ||
			 session_helper(t, (size_t)k, sid, ids, n_ids))
			top = k;
		else
			k = pk;
	}
	if (top < 0)
		return false;
	for (int j = pi;; j = find_alive(t, t->ppid[j])) {
		t->procs[j]->born_sid = sid;
		if (j == top)
			return true;
	}
}

/* Task @pid (@level pid namespaces deep, @nspgid its group at each) is in process group
 * @pgid of session @sid, not the root's, whose leader exited: rebuilt around a helper
 * with the group's id, made in the session by a live task of it (its leader, else the
 * first; src/cr/spawn.c group_maker), when that task is as deep, no process has that pid
 * now, and the group's id is known at every level. */
static bool session_group_helper(const struct dump_tree *t, pid_t pgid, pid_t sid, size_t level,
				 const int *nspgid, size_t nspgid_len)
{
	char path[32];
	snprintf(path, sizeof(path), "/proc/%d", pgid);
	if (sid == t->procs[0]->stat.session || !access(path, F_OK) ||
	    (level > 1 && (nspgid_len != level || nspgid[level - 1] <= 0)))
		return false;
	int m = find_alive(t, sid);
	for (size_t i = 1; i < t->nr && (m <= 0); i++)
		if (t->procs[i]->stat.session == sid)
			m = (int)i;
	return m > 0 && t->procs[m]->status.nspid_len == level;
}

/* Every task is made by a chain of makers from the root (what the restore checks too:
 * src/cr/restore.c check_tasks), whatever was chosen above. */
static int check_makers(const struct dump_tree *t)
{
	for (size_t i = 1; i < t->nr + t->nr_zombies; i++) {
		const struct zombie *z = i < t->nr ? NULL : &t->zombies[i - t->nr];
		int k = z ? maker_of(t, z->pid, z->ppid, z->sid, z->creator) : creator_of(t, (int)i);
		for (size_t hops = 0; k > 0 && hops <= t->nr; hops++)
			k = creator_of(t, k);
		if (k != 0) {
			pr_err("pid %d cannot be made again from the root pid %d (its makers form a "
			       "loop): not supported", z ? z->pid : t->procs[i]->pid, t->procs[0]->pid);
			return -EOPNOTSUPP;
		}
	}
	return 0;
}

/* Sessions and process groups this version can rebuild: each task's session (live or
 * zombie) is its own (it called setsid), its parent's, that of a session leader that is
 * its sibling, the one its parent was born in (made before the parent's setsid; the
 * parent's parent may have been born there too, and so on up to a task of that session,
 * or to one made there by a task of it, by its leader that is its sibling, or by its
 * helper), one whose orphans its parent
 * reaps (made by a task of that session through a helper, or by a zombie of it, then
 * reparented), one whose leader is gone when its parent reaps its own children's
 * orphans (made through a helper with the session's id), or — for the root only — one
 * outside the tree (then the restored root joins the restoring stasis's session, like
 * CRIU's --shell-job). A process group is the task's own, one led by a task of the tree
 * in the same session, the root's outside group, the group of the gone leader of a
 * session made through a helper, or a group whose leader has exited (rebuilt around a
 * helper: in the root's session, or in another one with a live task). A zombie's group
 * is its own, its parent's, or one of these its id is known at every level of. */
static int check_sessions(struct dump_tree *t)
{
	const struct proc_stat *root = &t->procs[0]->stat;
	size_t n = t->nr + t->nr_zombies;
	for (size_t i = 0; i < n; i++) {
		pid_t pid, ppid, pgid, sid;
		if (i < t->nr) {
			const struct proc_stat *st = &t->procs[i]->stat;
			pid = st->pid, ppid = t->ppid[i], pgid = st->pgrp, sid = st->session;
		} else {
			const struct zombie *z = &t->zombies[i - t->nr];
			pid = z->pid, ppid = z->ppid, pgid = z->pgid, sid = z->sid;
		}
		if (i == 0)
			continue;
		int pi = find_alive(t, ppid);
		pid_t parent_sid = pi >= 0 ? t->procs[pi]->stat.session : 0;
		const struct proc_status *ps = i < t->nr ? &t->procs[i]->status : NULL;
		const int *ids = ps ? ps->nssid : t->zombies[i - t->nr].nssid;
		size_t n_ids = ps ? ps->nssid_len : t->zombies[i - t->nr].nssid_len;
		bool shares = i < t->nr && (t->procs[i]->shares_files || t->procs[i]->shares_fs);
		/* or the session of a leader that is its sibling (it was reparented to their
		 * common parent, a subreaper): created by that leader with CLONE_PARENT */
		int li = find_alive(t, sid);
		bool sid_ok = sid == pid || sid == parent_sid || (li > 0 && t->ppid[li] == ppid) ||
			      (pi > 0 && born_chain(t, pi, sid, shares, ids, n_ids)) ||
			      (i < t->nr && (session_helper(t, i, sid, ids, n_ids) ||
					     orphan_creator(t, i, sid))) ||
			      (i >= t->nr && (zombie_session_helper(t, &t->zombies[i - t->nr]) ||
					      zombie_orphan_creator(t, &t->zombies[i - t->nr])));
		if (!sid_ok) {
			if (dump_tree_has(t, sid))
				pr_err("pid %d is in session %d, which is neither its own nor its "
				       "parent's: not supported yet", pid, sid);
			else
				pr_err("pid %d is in session %d whose leader is outside the tree of pid "
				       "%d: the session cannot be rebuilt", pid, sid, root->pid);
			return -EOPNOTSUPP;
		}
		/* a group whose leader exited is rebuilt around a helper task in the root's
		 * session (it leads the group until the members joined, then exits) */
		size_t level = ps ? ps->nspid_len : t->zombies[i - t->nr].nspid_len;
		const int *gids = ps ? ps->nspgid : t->zombies[i - t->nr].nspgid;
		size_t n_gids = ps ? ps->nspgid_len : t->zombies[i - t->nr].nspgid_len;
		/* (a zombie joins its group itself: by the id it sees it by) */
		bool gids_known = level <= 1 || (n_gids == level && gids[level - 1] > 0);
		/* (a group no task of the tree can see, id 0, cannot be named again) */
		bool helper_group = pgid > 0 &&
				    ((sid == root->session && (i < t->nr || gids_known)) ||
				     session_group_helper(t, pgid, sid, level, gids, n_gids));
		bool pg_ok = pgid == pid || (pgid == root->pgrp && sid == root->session) ||
			     dump_tree_has(t, pgid) || helper_group || (pgid == sid && helper_session(t, sid));
		if (!pg_ok) {
			pr_err("pid %d is in process group %d whose leader is not in the tree of pid "
			       "%d: the group cannot be rebuilt", pid, pgid, root->pid);
			return -EOPNOTSUPP;
		}
		/* (a zombie joins its group before it exits: one with a member by then) */
		if (i >= t->nr && pgid != pid && pi >= 0 && pgid != t->procs[pi]->stat.pgrp &&
		    !dump_tree_has(t, pgid) && !(gids_known && helper_group) &&
		    !(level <= 1 && pgid == root->pgrp && pgid > 0) &&
		    !(gids_known && pgid == sid && helper_session(t, sid))) {
			pr_err("zombie %d is in process group %d, neither its own nor its parent's, "
			       "whose leader is not in the tree: not supported yet", pid, pgid);
			return -EOPNOTSUPP;
		}
	}
	return check_makers(t);
}

const struct resource pstree_resource = {
	.name = "process tree",
	.dump_tree = check_sessions,
};
