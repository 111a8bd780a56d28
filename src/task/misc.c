/* Process attributes that need no module of their own: comm, personality, umask,
 * resource limits, cwd and root, dumpable, the parent-death signal, timer slack. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/openat2.h>
#include <stdlib.h>
#include <signal.h>
#include <stdio.h>
#include <sys/stat.h>
#include <linux/prctl.h>
#include <string.h>
#include <sys/personality.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "core/log.h"
#include "core/util.h"
#include "sys/syscalls.h"
#include "cr/resource.h"
#include "task/task.h"

#define DELETED_DIR_SUFFIX " (deleted)"

static char *read_link(int dirfd, const char *name)
{
	char buf[PATH_MAX];
	ssize_t n = readlinkat(dirfd, name, buf, sizeof(buf) - 1);
	if (n < 0)
		return NULL;
	buf[n] = '\0';
	return strdup(buf);
}

int misc_dump(struct dump_ctx *c)
{
	Core *core = c->core;
	long r;

	core->pid = c->pid;
	core->has_stopped = c->stop_signal != 0;
	core->stopped = c->stop_signal != 0;
	core->has_stop_signal = c->stop_signal != 0;
	core->stop_signal = (uint32_t)c->stop_signal;
	core->has_stop_collected = core->stop_collected = c->stop_signal && c->stop_collected;
	core->comm = strdup(c->stat.comm);
	core->cwd = read_link(c->procfd, "cwd");
	core->root = read_link(c->procfd, "root");
	if (!core->comm || !core->cwd || !core->root)
		return pr_perror("misc: read comm/cwd/root of %d", c->pid);
	struct stat cst;
	if (str_ends(core->cwd, DELETED_DIR_SUFFIX) && !fstatat(c->procfd, "cwd", &cst, 0) &&
	    cst.st_nlink == 0) {
		/* a directory removed while it was the cwd: made again at restore */
		core->cwd[strlen(core->cwd) - strlen(DELETED_DIR_SUFFIX)] = '\0';
		core->has_cwd_deleted = core->cwd_deleted = true;
		core->has_cwd_mode = core->has_cwd_uid = core->has_cwd_gid = true;
		core->cwd_mode = cst.st_mode & 07777;
		core->cwd_uid = cst.st_uid;
		core->cwd_gid = cst.st_gid;
	}
	if (c->status.umask > 07777) {
		pr_err("misc: no umask in /proc/%d/status", c->pid);
		return -EINVAL;
	}
	core->umask = c->status.umask;
	core->has_exit_signal = core->has_ppid = core->has_pgid = core->has_sid = true;
	core->exit_signal = (uint32_t)c->stat.exit_signal;
	core->ppid = c->stat.ppid;
	core->pgid = c->stat.pgrp;
	core->sid = c->stat.session;

	_cleanup_free_ char *pers = read_file_at(c->procfd, "personality", 64, NULL);
	long long pv;
	if (!pers)
		return pr_perror("misc: read /proc/%d/personality", c->pid);
	pers[strcspn(pers, "\n")] = '\0';
	char hex[80];
	snprintf(hex, sizeof(hex), "0x%s", pers);
	if (parse_int(hex, 0, 0xffffffffLL, &pv)) {
		pr_err("misc: malformed personality '%s' of %d", pers, c->pid);
		return -EINVAL;
	}
	core->personality = (uint32_t)pv;

	core->rlimits = calloc(RLIM_NLIMITS, sizeof(Rlimit *));
	if (!core->rlimits)
		return -ENOMEM;
	for (int res = 0; res < RLIM_NLIMITS; res++) {
		struct rlimit rl;
		if (prlimit(c->ospid, (__rlimit_resource_t)res, NULL, &rl) < 0) {
			/* Reading another user's limits from outside needs CAP_SYS_RESOURCE
			 * (root here lacks it): ask the task itself. */
			if (errno != EPERM)
				return pr_perror("misc: read rlimit %d of %d", res, c->pid);
			r = rsys_do(&c->rs, "misc: read rlimit", SYS_prlimit64, 0, (uint64_t)res, 0,
				    c->rs.scratch, 0, 0);
			if (r < 0)
				return (int)r;
			int e = rsys_peek(&c->rs, c->rs.scratch, &rl, sizeof(rl));
			if (e)
				return e;
		}
		Rlimit *l = calloc(1, sizeof(*l));
		if (!l)
			return -ENOMEM;
		rlimit__init(l);
		core->rlimits[core->n_rlimits++] = l;
		l->resource = (uint32_t)res;
		l->cur = rl.rlim_cur;
		l->max = rl.rlim_max;
	}

	r = rsys_do(&c->rs, "misc: read dumpable", SYS_prctl, PR_GET_DUMPABLE, 0, 0, 0, 0, 0);
	if (r < 0)
		return (int)r;
	core->dumpable = (uint32_t)r;
	r = rsys_do(&c->rs, "misc: read parent-death signal", SYS_prctl, PR_GET_PDEATHSIG,
		    c->rs.scratch, 0, 0, 0, 0);
	if (r < 0)
		return (int)r;
	int pdeath = 0;
	int ret = rsys_peek(&c->rs, c->rs.scratch, &pdeath, sizeof(pdeath));
	if (ret)
		return ret;
	core->pdeath_sig = (uint32_t)pdeath;
	int sub = 0;
	r = rsys_do(&c->rs, "misc: read child subreaper", SYS_prctl, PR_GET_CHILD_SUBREAPER,
		    c->rs.scratch, 0, 0, 0, 0);
	if (r < 0 || (ret = rsys_peek(&c->rs, c->rs.scratch, &sub, sizeof(sub))))
		return r < 0 ? (int)r : ret;
	core->has_child_subreaper = true;
	core->child_subreaper = sub != 0;
	r = rsys_do(&c->rs, "misc: read timer slack", SYS_prctl, PR_GET_TIMERSLACK, 0, 0, 0, 0, 0);
	if (r < 0)
		return (int)r;
	core->has_timer_slack_ns = true;
	core->timer_slack_ns = (uint64_t)r;
	return 0;
}

int misc_deleted_cwd(int dfd, const Core *core)
{
	return removed_dir_open(dfd, core->cwd, core->has_cwd_mode ? core->cwd_mode : 0700,
				core->has_cwd_uid, core->cwd_uid, core->cwd_gid,
				O_PATH | O_DIRECTORY, "cwd");
}

int misc_restore_child(struct rst_ctx *c)
{
	const Core *core = c->core;

	if (core->root && strcmp(core->root, "/")) {
		if (chroot(core->root) < 0)
			return pr_perror("restore: chroot %s", core->root);
	}
	/* a task in a user namespace may not reach its cwd by path: stasis opened it */
	if (c->cwd_fd < 0 && core->cwd_deleted) {
		int fd = misc_deleted_cwd(AT_FDCWD, core);
		if (fd < 0)
			return fd;
		int r = fchdir(fd);
		close(fd);
		if (r < 0)
			return pr_perror("restore: chdir to the removed directory %s", core->cwd);
	} else if (c->cwd_fd >= 0 ? fchdir(c->cwd_fd) : chdir(core->cwd)) {
		return pr_perror("restore: chdir %s", core->cwd);
	}
	umask(core->umask & 0777);
	if (personality(core->personality) < 0)
		return pr_perror("restore: personality 0x%x", core->personality);
	if (core->child_subreaper && prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) < 0)
		return pr_perror("restore: become a child subreaper");
	if (prctl(PR_SET_NAME, core->comm, 0, 0, 0) < 0)
		return pr_perror("restore: set comm %s", core->comm);
	for (size_t i = 0; i < core->n_rlimits; i++) {
		const Rlimit *l = core->rlimits[i];
		struct rlimit rl = { l->cur, l->max }, cur;
		if (l->resource >= RLIM_NLIMITS || l->cur > l->max) {
			pr_err("image: invalid rlimit %u", l->resource);
			return -EINVAL;
		}
		if (getrlimit((__rlimit_resource_t)l->resource, &cur) == 0 &&
		    cur.rlim_cur == rl.rlim_cur && cur.rlim_max == rl.rlim_max)
			continue;
		/* RLIMIT_MEMLOCK is only raised here: the locked areas are locked again once
		 * the memory is rebuilt, and a task may hold more than its limit allows now
		 * (it locked, then lowered it); lowered to the image's by the remote hook */
		if (l->resource == RLIMIT_MEMLOCK && getrlimit(RLIMIT_MEMLOCK, &cur) == 0) {
			rl.rlim_cur = MAX(rl.rlim_cur, cur.rlim_cur);
			rl.rlim_max = MAX(rl.rlim_max, cur.rlim_max);
		}
		if (setrlimit((__rlimit_resource_t)l->resource, &rl) < 0)
			return pr_perror("restore: set rlimit %u to %llu/%llu (raising a hard limit "
					 "needs CAP_SYS_RESOURCE)",
					 l->resource, (unsigned long long)l->cur,
					 (unsigned long long)l->max);
	}
	return 0;
}

/* The image's RLIMIT_MEMLOCK, once the memory is locked again (lowering a limit needs no
 * privilege). */
static int memlock_limit_remote(struct rst_ctx *c)
{
	for (size_t i = 0; i < c->core->n_rlimits; i++) {
		const Rlimit *l = c->core->rlimits[i];
		if (l->resource != RLIMIT_MEMLOCK)
			continue;
		struct rlimit rl = { l->cur, l->max };
		int ret = rsys_poke(&c->rs, c->rs.scratch, &rl, sizeof(rl));
		long r = ret ? ret
			     : rsys_do(&c->rs, "restore: RLIMIT_MEMLOCK", SYS_prlimit64, 0,
				       RLIMIT_MEMLOCK, c->rs.scratch, 0, 0, 0);
		if (r < 0)
			return pr_errno((int)r, "restore: pid %d: RLIMIT_MEMLOCK %llu/%llu", c->pid,
					(unsigned long long)l->cur, (unsigned long long)l->max);
	}
	return 0;
}

int misc_restore_remote(struct rst_ctx *c)
{
	const Core *core = c->core;
	long r = memlock_limit_remote(c);
	if (r)
		return (int)r;

	if (core->has_timer_slack_ns) {
		r = rsys_do(&c->rs, "restore: timer slack", SYS_prctl, PR_SET_TIMERSLACK,
			    core->timer_slack_ns, 0, 0, 0, 0);
		if (r < 0)
			return (int)r;
	}
	/* After credentials: changing ids resets both of these. */
	if (core->dumpable > 2) {
		pr_err("image: invalid dumpable value %u", core->dumpable);
		return -EINVAL;
	}
	if (core->dumpable != 2) {
		r = rsys_do(&c->rs, "restore: dumpable", SYS_prctl, PR_SET_DUMPABLE, core->dumpable, 0,
			    0, 0, 0);
		if (r < 0)
			return (int)r;
	}
	/* The parent-death signal fires when the parent exits; the root's parent is the
	 * restoring stasis, which exits at once with -d, so there it is only restored when
	 * stasis stays the parent. Always set: the restore child ran with SIGKILL here so
	 * that a failed restore takes the whole tree down. */
	uint32_t pd = core->pdeath_sig;
	if (pd > 64) {
		pr_err("image: invalid parent-death signal %u", pd);
		return -EINVAL;
	}
	if (pd && c->is_root && c->opts->detach) {
		pr_warn("restore: parent-death signal %u of pid %d not restored with -d", pd, c->pid);
		pd = 0;
	}
	r = rsys_do(&c->rs, "restore: parent-death signal", SYS_prctl, PR_SET_PDEATHSIG, pd, 0, 0,
		    0, 0);
	if (r < 0)
		return (int)r;
	return 0;
}

static int misc_validate(struct rst_ctx *c)
{
	const Core *core = c->core;
	uint32_t s = core->stop_signal;
	if (core->has_stop_signal &&
	    (!core->stopped || (s != SIGSTOP && s != SIGTSTP && s != SIGTTIN && s != SIGTTOU))) {
		pr_err("image: pid %d: stop signal %u is not a job-control stop", c->pid, s);
		return -EINVAL;
	}
	return 0;
}

const struct resource misc_resource = {
	.validate = misc_validate,
	.name = "process attributes",
	.dump = misc_dump,
	.child = misc_restore_child,
	.remote = misc_restore_remote,
};
