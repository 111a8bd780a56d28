/* The contract between the stage drivers (src/cr/dump.c, src/cr/restore.c) and the
 * resource modules: each kind of state stasis carries fills one row, a struct resource,
 * with the hooks it needs; the drivers never call a module's stage by name, they run the
 * stage lists of src/cr/stages.c, where the order of every stage is written down once,
 * with the reason for it.
 *
 * A module whose work falls at two places of one stage fills two rows (the registers
 * and the threads of src/task/cpu.c). Its private per-process state lives behind
 * rst_ctx.priv[ID] (its own struct, freed by its release hook), not in new rst_ctx
 * fields.
 *
 * Hooks return 0 or -errno and log their own error once; the driver adds one line naming
 * the row and the pid ("dump: files of pid 42 failed"). */
#ifndef STASIS_CR_RESOURCE_H
#define STASIS_CR_RESOURCE_H

#include "cr/ctx.h"

struct resource {
	const char *name; /* in the driver's lines: "restore: NAME of pid N failed" */

	/* --- dump (src/cr/dump.c) --- */
	/* Per process, the whole tree frozen, the process's remote engines ready: read its
	 * part of the state into c->core / c->mm / c->files. */
	int (*dump)(struct dump_ctx *c);
	/* Once every process went through dump: what needs the whole tree (sharing between
	 * processes, namespaces, bulk contents). */
	int (*dump_tree)(struct dump_tree *t);

	/* --- restore (src/cr/restore.c) --- */
	/* The images of one process were read: check this module's part of them (untrusted
	 * input: bounds, paths, ids), before anything is created. */
	int (*validate)(struct rst_ctx *c);
	/* In the restore child (a fork of stasis with the task's pids), before its memory
	 * is replaced: what the task can set up itself with plain syscalls. */
	int (*child)(struct rst_ctx *c);
	/* In stasis, the child seized and stopped, before its memory is rebuilt. */
	int (*prepare)(struct rst_ctx *c);
	/* In stasis, after the memory: remote syscalls in the stopped task. */
	int (*remote)(struct rst_ctx *c);
	/* In stasis, once every task of the tree went through remote: the last settings
	 * before the tasks are let go (registers, signal mask). */
	int (*final)(struct rst_ctx *c);
	/* Free the module's private state of @c (rst_ctx.priv[]); never fails. */
	void (*release)(struct rst_ctx *c);
};

/* The rows, one per resource kind (defined by the modules). */
extern const struct resource misc_resource;    /* src/task/misc.c */
extern const struct resource creds_resource;   /* src/task/creds.c */
extern const struct resource regs_resource;    /* src/task/cpu.c */
extern const struct resource threads_resource; /* src/task/cpu.c */
extern const struct resource rseq_resource;    /* src/task/cpu.c */
extern const struct resource signals_resource; /* src/task/signals.c */
extern const struct resource timers_resource;  /* src/task/timers.c */
extern const struct resource sched_resource;   /* src/task/sched.c */
extern const struct resource knobs_resource;   /* src/task/knobs.c */
extern const struct resource seccomp_resource; /* src/task/seccomp.c */
extern const struct resource pstree_resource;  /* src/task/pstree.c */
extern const struct resource ns_resource;      /* src/ns/ns.c */
extern const struct resource pidns_resource;   /* src/ns/ns.c */
extern const struct resource userns_resource;  /* src/ns/userns.c */
extern const struct resource mnt_resource;     /* src/ns/mnt.c */
extern const struct resource cgroup_resource;  /* src/ns/cgroup.c */
extern const struct resource files_resource;   /* src/files/files.c */
extern const struct resource mem_resource;     /* src/mem/mem.c */

/* The stages (src/cr/stages.c), each a NULL-terminated list of rows in the order the
 * stage runs them. */
enum res_stage {
	STAGE_DUMP,
	STAGE_DUMP_TREE,
	STAGE_VALIDATE,
	STAGE_CHILD,
	STAGE_PREPARE,
	STAGE_REMOTE,
	STAGE_FINAL,
	STAGE_RELEASE,
	STAGE_COUNT
};
extern const struct resource *const *const res_stages[STAGE_COUNT];
/* Every row once (for checks: each hook a row has appears in its stage's list). */
extern const struct resource *const res_all[];

/* The drivers: run one stage's hooks over one process or the tree, in order; the first
 * failure stops the stage, logged once more with the row's name and the pid. */
int res_dump(struct dump_ctx *c) __must_check;
int res_dump_tree(struct dump_tree *t) __must_check;
int res_restore(enum res_stage s, struct rst_ctx *c) __must_check;
void res_release(struct rst_ctx *c);

/* Is @r's hook for stage @s set? (the checks of tests/unit) */
bool res_has_hook(const struct resource *r, enum res_stage s);

#endif
