/* The per-task resources (src/task/): what every process has whatever its namespaces —
 * registers and threads (cpu.c), signals (signals.c), timers (timers.c), credentials
 * (creds.c), process attributes (misc.c) and the process tree's sessions and groups
 * (pstree.c). The drivers reach them through their rows (src/cr/resource.h); these
 * declarations are for the rows and the unit tests. */
#ifndef STASIS_TASK_TASK_H
#define STASIS_TASK_TASK_H

#include "cr/ctx.h"

int cpu_dump(struct dump_ctx *c) __must_check;      /* regs, xsave, rseq */
/* A zombie thread-group leader: its exited main thread put first in every per-thread
 * table, once the process is dumped. */
int cpu_dump_zleader(struct dump_ctx *c) __must_check;
int cpu_validate(const Core *core) __must_check;
/* Before the memory switch: drop the restorer's own rseq registration. */
int cpu_restore_prepare(struct rst_ctx *c) __must_check;
/* After the memory switch: create the other threads with their TIDs (remote clone3 in
 * the main thread) and restore their per-thread state but registers. */
int cpu_restore_threads(struct rst_ctx *c) __must_check;
int cpu_restore_remote(struct rst_ctx *c) __must_check; /* rseq, tid address */
int cpu_restore_final(struct rst_ctx *c) __must_check;  /* registers, last */

int signals_dump(struct dump_ctx *c) __must_check;
int signals_restore_child(struct rst_ctx *c) __must_check;
int signals_restore_final(struct rst_ctx *c) __must_check; /* blocked mask */

int timers_dump(struct dump_ctx *c) __must_check; /* itimers, posix */
int timers_restore_remote(struct rst_ctx *c) __must_check;

int creds_dump(struct dump_ctx *c) __must_check;
/* The thread of c->rs: 1 if its credentials were changed, 0 if they already matched. */
int creds_restore_remote(struct rst_ctx *c) __must_check;

int sched_dump(struct dump_ctx *c) __must_check; /* policy, nice, affinity, oom, THP */
/* One thread's row, read from outside (also a zombie leader's exited main thread). */
int sched_dump_thread(pid_t tid, ThreadSched **out) __must_check;

int knobs_dump(struct dump_ctx *c) __must_check; /* MCE kill, MDWE, KSM merge */

/* Thread @tid of @c, just seized: its seccomp filters suspended while stasis traces it
 * (the remote engine's syscalls must not meet them). A thread under seccomp that cannot
 * be suspended (no CAP_SYS_ADMIN in the initial user namespace) is refused. */
int seccomp_dump_suspend(struct dump_ctx *c, pid_t tid) __must_check;
/* The seccomp row of the exited main thread of a zombie leader (src/task/cpu.c). */
int seccomp_zleader_row(Thread *const *th, size_t n, ThreadSeccomp **out) __must_check;

int misc_dump(struct dump_ctx *c) __must_check; /* comm, rlimits, ... */
int misc_restore_child(struct rst_ctx *c) __must_check;
/* The cwd of @core, a directory removed since the dump: made again (at its path in the
 * view of @dfd: AT_FDCWD, or a root resolved with RESOLVE_IN_ROOT; beside it under a
 * stasis name if that path is taken), opened O_PATH, removed again. The fd or -errno. */
int misc_deleted_cwd(int dfd, const Core *core) __must_check;
int misc_restore_remote(struct rst_ctx *c) __must_check; /* dumpable, pdeath sig */

/* Is @pid a task of the frozen tree (alive or zombie)? */
bool dump_tree_has(const struct dump_tree *t, pid_t pid);

#endif
