/* The order of every stage, in one place (see src/cr/resource.h for the hooks). The
 * drivers in src/cr/dump.c and src/cr/restore.c only call res_dump, res_dump_tree and
 * res_restore at the right moments; what runs inside each stage, and in which order, is
 * these lists. */
#include "cr/resource.h"
#include "core/fault.h"
#include "core/log.h"
#include "core/util.h"
#include "cr/stats.h"

/* Dump, per process (the VMAs were read before the remote engine mapped its scratch
 * area, so nothing here shows in them). Cheap stages that may refuse the task first;
 * the memory last, as its page scan is the costliest (the pages themselves are copied
 * later, in the tree stage, once nothing can refuse the tree any more but the files). */
static const struct resource *const dump_order[] = {
	&misc_resource,    /* comm, personality, rlimits, cwd: read from /proc */
	&ns_resource,      /* namespace ids, before anything reads through them */
	&pidns_resource,   /* a pid namespace init's ns_last_pid (remote) */
	&cgroup_resource,  /* membership */
	&creds_resource,
	&regs_resource,    /* every thread's registers, xsave, rseq */
	&signals_resource, /* dispositions (remote), masks, queues */
	&timers_resource,
	&sched_resource,   /* policy, nice, affinity per thread; oom, THP (remote) */
	&knobs_resource,   /* MCE kill, MDWE, KSM merge (remote) */
	&seccomp_resource, /* every thread's mode and filters (ptrace) */
	&files_resource,   /* fds, grabbed with pidfd_getfd */
	&mem_resource,     /* VMAs and the page scan: last */
	NULL
};

/* Dump, once every process was read. Namespaces first: every refusal they can make is
 * cheap, and the page copy (the bulk of the dump) should not run for a tree that will be
 * refused. Sessions need nothing but the tree; files last, since descriptions shared
 * between processes are matched across the whole tree. */
static const struct resource *const dump_tree_order[] = {
	&ns_resource,     /* what the tree created: user, uts, ipc, net, mount, cgroup, time */
	&mem_resource,    /* the page contents of every process */
	&pstree_resource, /* sessions and process groups that can be rebuilt */
	&files_resource,  /* shared descriptions, pipes across processes */
	&seccomp_resource, /* seccomp.img: the programs, each once */
	&cgroup_resource, /* the settings of the tree's cgroups (cannot refuse: last) */
	NULL
};

/* stasis pre-dump: the memory only (src/mem/track.c arms the write tracking in the
 * scan), per process and for the tree. */
static const struct resource *const pre_dump_order[] = { &mem_resource, NULL };

/* Restore, each process's images once read: cheap checks first, the page index last. */
static const struct resource *const validate_order[] = {
	&misc_resource, &regs_resource, &sched_resource, &knobs_resource, &seccomp_resource,
	&userns_resource, &mnt_resource, &cgroup_resource, &mem_resource, NULL
};

/* Restore child, after its namespaces and its children exist. Everything opened by path
 * (the fd table; then the files to be mapped and the executable, at service fds: an area
 * mapping an unlinked file or memfd the task holds open maps the file of that fd) before
 * misc changes the root and the cwd; signals last: every signal is blocked first, then
 * the dispositions (handlers in the task's code, not mapped yet) are installed. */
static const struct resource *const child_order[] = {
	&files_resource,   /* the fd table (not for a task sharing its parent's) */
	&mem_resource,     /* files to be mapped and the executable, at service fds */
	&misc_resource,    /* chroot, cwd, umask, personality, comm, rlimits */
	&sched_resource,   /* the loginuid, which only the task may write */
	&signals_resource, /* everything blocked, dispositions, sigaltstack, own queue */
	NULL
};

/* Restore, seized, before the memory: glibc's rseq area of the restore child is about
 * to disappear. */
static const struct resource *const prepare_order[] = { &rseq_resource, NULL };

/* Restore, remote, after the memory. Threads right after it (they need the address
 * space, and later stages act on every thread); seccomp once every thread exists and
 * before the credentials (installed by a task still root of its user namespace, then
 * suspended for stasis's remote calls until the detach); ns_last_pid once every task exists
 * (set_tid does not move the cursor); credentials per thread, before misc: a change of
 * credentials resets the dumpable flag and the parent-death signal, which misc sets;
 * scheduling after the credentials and the cgroups (another task's scheduling is set
 * against its ids; its affinity within its cpuset); rseq and the tid address last. */
static const struct resource *const remote_order[] = {
	&mem_resource, &threads_resource, &seccomp_resource, &pidns_resource, &creds_resource,
	&timers_resource,
	&cgroup_resource, &sched_resource, &knobs_resource, &files_resource, &misc_resource,
	&rseq_resource, NULL
};

/* Restore, last, every task rebuilt: files (what needed every socket of the tree: TCP
 * connections finished), registers, then the blocked mask (every signal stays blocked
 * while the task is rebuilt). */
static const struct resource *const final_order[] = { &files_resource, &regs_resource,
							 &signals_resource, NULL };

static const struct resource *const release_order[] = { &cgroup_resource, &mnt_resource,
							   &seccomp_resource, NULL };

const struct resource *const *const res_stages[STAGE_COUNT] = {
	[STAGE_DUMP] = dump_order,	   [STAGE_DUMP_TREE] = dump_tree_order,
	[STAGE_VALIDATE] = validate_order, [STAGE_CHILD] = child_order,
	[STAGE_PREPARE] = prepare_order,   [STAGE_REMOTE] = remote_order,
	[STAGE_FINAL] = final_order,	   [STAGE_RELEASE] = release_order,
};

const struct resource *const res_all[] = {
	&misc_resource,	   &creds_resource,  &regs_resource,   &threads_resource,
	&rseq_resource,	   &signals_resource, &timers_resource, &sched_resource, &knobs_resource,
	&seccomp_resource, &pstree_resource,
	&ns_resource,	   &pidns_resource,  &userns_resource, &mnt_resource,
	&cgroup_resource,  &files_resource,  &mem_resource,    NULL
};

bool res_has_hook(const struct resource *r, enum res_stage s)
{
	switch (s) {
	case STAGE_DUMP: return r->dump;
	case STAGE_DUMP_TREE: return r->dump_tree;
	case STAGE_VALIDATE: return r->validate;
	case STAGE_CHILD: return r->child;
	case STAGE_PREPARE: return r->prepare;
	case STAGE_REMOTE: return r->remote;
	case STAGE_FINAL: return r->final;
	case STAGE_RELEASE: return r->release;
	case STAGE_COUNT: break;
	}
	return false;
}

int res_dump(struct dump_ctx *c)
{
	for (const struct resource *const *r = c->opts->pre_dump ? pre_dump_order : dump_order;
	     *r; r++) {
		uint64_t t0 = now_ns();
		int ret = fault_at("dump", (*r)->name) ?: (*r)->dump(c);
		if (ret) {
			pr_err("dump: %s of pid %d failed", (*r)->name, c->pid);
			return ret;
		}
		uint64_t ns = now_ns() - t0;
		stats_stage((*r)->name, false, ns);
		pr_info("dump: %s took %.3f ms", (*r)->name, (double)ns / 1e6);
	}
	return 0;
}

int res_dump_tree(struct dump_tree *t)
{
	for (const struct resource *const *r = t->opts->pre_dump ? pre_dump_order : dump_tree_order;
	     *r; r++) {
		uint64_t t0 = now_ns();
		int ret = fault_at("dump-tree", (*r)->name) ?: (*r)->dump_tree(t);
		if (ret)
			return ret;
		uint64_t ns = now_ns() - t0;
		stats_stage((*r)->name, true, ns);
		pr_info("dump: %s of the tree took %.3f ms", (*r)->name, (double)ns / 1e6);
	}
	return 0;
}

static int (*restore_hook(const struct resource *r, enum res_stage s))(struct rst_ctx *)
{
	switch (s) {
	case STAGE_VALIDATE: return r->validate;
	case STAGE_CHILD: return r->child;
	case STAGE_PREPARE: return r->prepare;
	case STAGE_REMOTE: return r->remote;
	case STAGE_FINAL: return r->final;
	default: return NULL;
	}
}

/* Fault points of the restore stages (core/fault.h). */
static const char *const stage_fault[STAGE_COUNT] = {
	[STAGE_DUMP] = "dump",		       [STAGE_DUMP_TREE] = "dump-tree",
	[STAGE_VALIDATE] = "restore-validate", [STAGE_CHILD] = "restore-child",
	[STAGE_PREPARE] = "restore-prepare",   [STAGE_REMOTE] = "restore-remote",
	[STAGE_FINAL] = "restore-final",       [STAGE_RELEASE] = "restore-release",
};

int res_restore(enum res_stage s, struct rst_ctx *c)
{
	for (const struct resource *const *r = res_stages[s]; *r; r++) {
		uint64_t t0 = now_ns();
		int ret = fault_at(stage_fault[s], (*r)->name) ?: restore_hook(*r, s)(c);
		if (ret) {
			/* a validation error names its field already; the child's first error
			 * is what its creator reports */
			if (s != STAGE_VALIDATE)
				pr_err("restore: %s of pid %d failed", (*r)->name, c->pid);
			return ret;
		}
		if (s == STAGE_PREPARE || s == STAGE_REMOTE)
			pr_info("restore: pid %d: %s took %.3f ms", c->pid, (*r)->name,
				(double)(now_ns() - t0) / 1e6);
	}
	return 0;
}

void res_release(struct rst_ctx *c)
{
	for (const struct resource *const *r = release_order; *r; r++)
		(*r)->release(c);
}
