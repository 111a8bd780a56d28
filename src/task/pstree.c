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

bool dump_tree_has(const struct dump_tree *t, pid_t pid)
{
	for (size_t i = 0; i < t->nr; i++)
		if (t->procs[i]->pid == pid)
			return true;
	for (size_t i = 0; i < t->nr_zombies; i++)
		if (t->zombies[i].pid == pid)
			return true;
	return false;
}

static int find_alive(const struct dump_tree *t, pid_t pid)
{
	for (size_t i = 0; i < t->nr; i++)
		if (t->procs[i]->pid == pid)
			return (int)i;
	return -1;
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

static const struct zombie *find_zombie(const struct dump_tree *t, pid_t pid)
{
	for (size_t z = 0; z < t->nr_zombies; z++)
		if (t->zombies[z].pid == pid)
			return &t->zombies[z];
	return NULL;
}

/* The live task that makes task @pid (parent @ppid, session @sid, made by @creator if
 * set) at restore as chosen so far (src/cr/spawn.c rst_creator_of): its creator (a
 * zombie's own maker for a zombie creator), the leader of its session when that is its
 * sibling, else its parent; -1 if none. */
static int maker_of(const struct dump_tree *t, pid_t pid, pid_t ppid, pid_t sid, pid_t creator)
{
	if (creator) {
		const struct zombie *z = find_alive(t, creator) < 0 ? find_zombie(t, creator) : NULL;
		return z ? maker_of(t, z->pid, z->ppid, z->sid, 0) : find_alive(t, creator);
	}
	int pi = find_alive(t, ppid), li = find_alive(t, sid);
	if (pi >= 0 && sid != pid && sid != t->procs[pi]->stat.session && li > 0 &&
	    t->ppid[li] == ppid)
		return li;
	return pi;
}

static int creator_of(const struct dump_tree *t, int k)
{
	const struct dump_ctx *c = t->procs[k];
	return k ? maker_of(t, c->pid, t->ppid[k], c->stat.session, c->creator) : -1;
}

/* Is procs[@l] made (directly or through the tasks that make its makers) by procs[@i]? */
static bool made_by(const struct dump_tree *t, int l, int i)
{
	for (int k = l, hops = 0; k > 0 && hops <= (int)t->nr; hops++) {
		if (k == i)
			return true;
		k = creator_of(t, k);
	}
	return l == i;
}

/* Task @i is in session @sid, neither its own nor its parent's: it was orphaned and
 * reparented. It can be made again by a task of that session through a helper that
 * exits at once, if the kernel then gives it to the same parent: a live task of the
 * session whose orphans go to that parent (or a zombie of the session whose parent's
 * orphans do: it makes the task itself, then exits), in the same pid namespace, and the
 * task neither shares its parent's files nor creates namespaces. Sets procs[i]->creator. */
static bool orphan_creator(struct dump_tree *t, size_t i, pid_t sid)
{
	struct dump_ctx *c = t->procs[i];
	int pi = find_alive(t, t->ppid[i]);
	if (pi < 0 || c->shares_files || c->shares_fs || ns_clone_flags(c->tns) ||
	    c->status.nspid_len != t->procs[pi]->status.nspid_len)
		return false;
	for (size_t l = 0; l < t->nr; l++) {
		const struct dump_ctx *cl = t->procs[l];
		if (l == i || cl->stat.session != sid || cl->status.nspid_len != c->status.nspid_len)
			continue;
		if (made_by(t, (int)l, (int)i)) /* never a creator made by the task itself */
			continue;
		if (orphan_reaper(t, (int)l) == pi) {
			c->creator = cl->pid;
			return true;
		}
	}
	/* or a zombie of the session (its leader, often): it makes the task before it exits,
	 * and the kernel gives the task to the reaper of its parent's orphans */
	for (size_t z = 0; z < t->nr_zombies; z++) {
		const struct zombie *zt = &t->zombies[z];
		int zp = find_alive(t, zt->ppid), zm = maker_of(t, zt->pid, zt->ppid, zt->sid, 0);
		if (zt->sid != sid || zp < 0 || zm < 0 || zt->nspid_len != c->status.nspid_len ||
		    made_by(t, zm, (int)i) || orphan_reaper(t, zp) != pi)
			continue;
		c->creator = zt->pid;
		return true;
	}
	return false;
}

/* Task @pid (parent procs[@pi]) is in session @sid, not its parent's: its parent and
 * maybe more of its ancestors lead sessions of their own and were born in @sid (each made
 * its children of @sid, then called setsid). Each of them is made in @sid: by its parent
 * (before that parent's setsid when it was born in @sid too), or by a task of @sid whose
 * orphans its parent reaps, through a helper (orphan_creator); sets their born_sid. No:
 * one of them is no session leader, was born in another session already, or is made in
 * another way. */
static bool born_chain(struct dump_tree *t, int pi, pid_t sid, bool shares)
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
		else if (orphan_creator(t, (size_t)k, sid))
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

/* Task @i is in session @sid whose leader is gone: no task of the tree, no process here
 * has that pid (a daemon's double fork: the session leader exited, its child was given to
 * a subreaper or a pid namespace's init). It is made again by its parent through a helper
 * with the session's id that calls setsid, makes it and exits, so that the kernel gives
 * it back to that parent: the parent must be the reaper of its own children's orphans, in
 * the same pid namespace, the session's id known at every level, the task neither sharing
 * its parent's files nor creating namespaces; every such task of one session has one
 * parent (one helper). Sets procs[i]->via_session. */
static bool session_helper(struct dump_tree *t, size_t i, pid_t sid)
{
	struct dump_ctx *c = t->procs[i];
	int pi = find_alive(t, t->ppid[i]);
	const struct proc_status *s = &c->status;
	char path[32];
	snprintf(path, sizeof(path), "/proc/%d", sid);
	if (pi < 0 || dump_tree_has(t, sid) || sid == t->procs[0]->stat.session ||
	    !access(path, F_OK) || c->shares_files || c->shares_fs || ns_clone_flags(c->tns) ||
	    orphan_reaper(t, pi) != pi || s->nspid_len != t->procs[pi]->status.nspid_len ||
	    s->nssid_len != s->nspid_len || !s->nssid_len || s->nssid[0] != sid)
		return false;
	for (size_t k = 0; k < s->nssid_len; k++)
		if (s->nssid[k] <= 0)
			return false;
	for (size_t k = 1; k < i; k++)
		if (t->procs[k]->via_session && t->procs[k]->stat.session == sid &&
		    t->ppid[k] != t->ppid[i])
			return false;
	return c->via_session = true;
}

/* Is @sid a session made through a helper (its leader gone)? */
static bool helper_session(const struct dump_tree *t, pid_t sid)
{
	for (size_t k = 1; k < t->nr; k++)
		if (t->procs[k]->via_session && t->procs[k]->stat.session == sid)
			return true;
	return false;
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

/* Sessions and process groups this version can rebuild: each task's session is its own
 * (it called setsid), its parent's, that of a session leader that is its sibling, the one
 * its parent was born in (made before the parent's setsid; the parent's parent may have
 * been born there too, and so on up to a task of that session), one whose orphans its parent
 * reaps (made through a helper, then reparented), one whose leader is gone when its
 * parent reaps its own children's orphans (made through a helper with the session's
 * id), or —
 * for the root only — one outside the tree (then the restored root joins the restoring
 * stasis's session, like CRIU's --shell-job). A process group is the task's own, one led
 * by a task of the tree in the same session, the root's outside group, the group of the
 * gone leader of a session made through a helper, or — in the root's session — a group
 * whose leader has exited. */
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
		/* or the session of a leader that is its sibling (it was reparented to their
		 * common parent, a subreaper): created by that leader with CLONE_PARENT */
		int li = find_alive(t, sid);
		bool sid_ok = sid == pid || sid == parent_sid || (li > 0 && t->ppid[li] == ppid) ||
			      (pi > 0 && born_chain(t, pi, sid,
						    i < t->nr && (t->procs[i]->shares_files ||
								  t->procs[i]->shares_fs))) ||
			      (i < t->nr && (session_helper(t, i, sid) || orphan_creator(t, i, sid)));
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
		size_t level = i < t->nr ? t->procs[i]->status.nspid_len
					 : t->zombies[i - t->nr].nspid_len;
		/* (a zombie's group id is known at its outermost level only) */
		bool helper_group =
			(sid == root->session && (i < t->nr || level <= 1)) ||
			(i < t->nr ? session_group_helper(t, pgid, sid, level,
							  t->procs[i]->status.nspgid,
							  t->procs[i]->status.nspgid_len)
				   : level <= 1 && session_group_helper(t, pgid, sid, 1, NULL, 0));
		bool pg_ok = pgid == pid || (pgid == root->pgrp && sid == root->session) ||
			     dump_tree_has(t, pgid) || helper_group || (pgid == sid && helper_session(t, sid));
		if (!pg_ok) {
			pr_err("pid %d is in process group %d whose leader is not in the tree of pid "
			       "%d: the group cannot be rebuilt", pid, pgid, root->pid);
			return -EOPNOTSUPP;
		}
		/* (a zombie joins its group before it exits: one with a member by then) */
		if (i >= t->nr && pgid != pid && pi >= 0 && pgid != t->procs[pi]->stat.pgrp &&
		    !dump_tree_has(t, pgid) && !(level <= 1 && (helper_group || pgid == root->pgrp))) {
			pr_err("zombie %d is in process group %d, neither its own nor its parent's, "
			       "whose leader is not in the tree: not supported yet", pid, pgid);
			return -EOPNOTSUPP;
		}
	}
	return 0;
}

const struct resource pstree_resource = {
	.name = "process tree",
	.dump_tree = check_sessions,
};
