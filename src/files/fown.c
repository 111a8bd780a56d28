/* The owner of an open file description (F_SETOWN_EX: the task, process or process group
 * that gets SIGIO for it, or the signal of F_SETSIG). Read and set by the task itself
 * with remote fcntl calls: the pid is then in the task's own pid namespace, and the
 * kernel records the setter's credentials, which decide whether the signal may be sent,
 * as the task's (the original set it itself; stasis would record its own). Set once
 * every task of the tree exists (an owner may be another task) and the credentials are
 * the task's. */
#include <fcntl.h>
#include <signal.h>
#include <sys/syscall.h>

#include "core/log.h"
#include "files/fd_ops.h"
#include "files/files.h"

#define F_OWNER_MAX F_OWNER_PGRP

/* Has the description (@dup: a duplicate of it) an owner or a signal? Read by stasis
 * itself, which sees every pid the task sees (its pid namespace is the task's or an
 * ancestor): nearly every description has neither, and two remote calls per description
 * were 40% of a dump of 682 sockets. -errno if it cannot tell. */
static int has_owner(int dup)
{
	struct f_owner_ex own = { 0 };
	if (fcntl(dup, F_GETOWN_EX, &own) < 0)
		return -errno;
	int sig = fcntl(dup, F_GETSIG);
	if (sig < 0)
		return -errno;
	return own.pid != 0 || sig != 0;
}

int fown_dump(const struct dump_ctx *c, int fd, int dup, FileDesc *d)
{
	struct f_owner_ex own = { 0 };
	if (!c->rs_ready)
		return 0; /* (a context without a frozen task: the unit tests') */
	if (dup >= 0 && has_owner(dup) == 0)
		return 0;
	long r = rsys_do((struct rsys *)&c->rs, "dump: F_GETOWN_EX", SYS_fcntl, (uint64_t)fd,
			 F_GETOWN_EX, c->rs.scratch, 0, 0, 0);
	if (r < 0)
		return pr_errno((int)r, "dump: owner of fd %d of pid %d", fd, c->pid);
	int ret = rsys_peek((struct rsys *)&c->rs, c->rs.scratch, &own, sizeof(own));
	if (ret)
		return ret;
	long sig = rsys_do((struct rsys *)&c->rs, "dump: F_GETSIG", SYS_fcntl, (uint64_t)fd,
			   F_GETSIG, 0, 0, 0, 0);
	if (sig < 0)
		return pr_errno((int)sig, "dump: F_GETSIG of fd %d of pid %d", fd, c->pid);
	if (!own.pid && !sig)
		return 0;
	FileOwner *o = malloc(sizeof(*o));
	if (!o)
		return -ENOMEM;
	file_owner__init(o);
	o->type = (uint32_t)own.type;
	o->pid = own.pid;
	o->has_signum = sig != 0;
	o->signum = (uint32_t)sig;
	d->owner = o;
	return 0;
}

bool fown_is_valid(const FileOwner *o)
{
	return !o || (o->type <= F_OWNER_MAX && o->pid >= 0 && o->signum <= 64);
}

int fown_restore(struct rst_ctx *c, int fd, const FileOwner *o)
{
	struct f_owner_ex own = { .type = (int)o->type, .pid = o->pid };
	int ret = rsys_poke(&c->rs, c->rs.scratch, &own, sizeof(own));
	if (ret)
		return ret;
	long r = o->pid ? rsys_do(&c->rs, "restore: F_SETOWN_EX", SYS_fcntl, (uint64_t)fd,
				  F_SETOWN_EX, c->rs.scratch, 0, 0, 0)
			: 0;
	if (!r && o->signum)
		r = rsys_do(&c->rs, "restore: F_SETSIG", SYS_fcntl, (uint64_t)fd, F_SETSIG,
			    o->signum, 0, 0, 0);
	if (r < 0)
		return pr_errno((int)r, "restore: pid %d: owner %d (type %u) or signal %u of fd %d",
				c->pid, o->pid, o->type, o->signum, fd);
	return 0;
}

int files_restore_owners(struct rst_ctx *c)
{
	const Files *f = c->files;
	if (c->shares_files || !f)
		return 0; /* (the parent's table: set by the parent) */
	for (size_t i = 0; i < f->n_fds; i++) {
		ssize_t k = fd_desc_index(f, f->fds[i]->file_id);
		const FileOwner *o = k >= 0 ? f->files[k]->owner : NULL;
		if (!o)
			continue;
		/* once per description: at its first fd */
		bool first = true;
		for (size_t j = 0; j < i && first; j++)
			first = f->fds[j]->file_id != f->fds[i]->file_id;
		int ret = first ? fown_restore(c, (int)f->fds[i]->fd, o) : 0;
		if (ret)
			return ret;
	}
	return files_tty_fg(c);
}
