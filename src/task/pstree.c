/* The process tree's sessions and process groups: which ones a restore can rebuild
 * (checked once the whole tree is frozen; the restore side lives in src/cr/restore.c,
 * which creates the tasks). */
#include <errno.h>

#include "core/log.h"
#include "cr/resource.h"
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

/* Sessions and process groups this version can rebuild: each task's session is its own
 * (it called setsid), its parent's, that of a session leader that is its sibling, or —
 * for the root only — one outside the tree (then the restored root joins the restoring
 * stasis's session, like CRIU's --shell-job). A process group is the task's own, one led
 * by a task of the tree in the same session, the root's outside group, or — in the
 * root's session — a group whose leader has exited. */
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
		bool sid_ok = sid == pid || sid == parent_sid || (li > 0 && t->ppid[li] == ppid);
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
		bool pg_ok = pgid == pid || (pgid == root->pgrp && sid == root->session) ||
			     dump_tree_has(t, pgid) || (sid == root->session && i < t->nr);
		if (!pg_ok) {
			pr_err("pid %d is in process group %d whose leader is not in the tree of pid "
			       "%d: the group cannot be rebuilt", pid, pgid, root->pid);
			return -EOPNOTSUPP;
		}
		if (i >= t->nr && pgid != pid && pi >= 0 && pgid != t->procs[pi]->stat.pgrp) {
			pr_err("zombie %d is in process group %d, neither its own nor its parent's: "
			       "not supported yet", pid, pgid);
			return -EOPNOTSUPP;
		}
	}
	return 0;
}

const struct resource pstree_resource = {
	.name = "process tree",
	.dump_tree = check_sessions,
};
