/* The remote syscall engine: run one syscall inside a ptrace-stopped task and get its
 * result. Serves dump (reading state only the task can read) and restore (building the
 * task's address space and state from outside).
 *
 * Mechanism: the task executes a `syscall` instruction with the registers set up by
 * stasis; PTRACE_SYSCALL stops it at syscall entry and exit, where stasis reads the
 * result. No signal is involved, so the task's signal dispositions and queues are
 * untouched. Transport failures (ptrace, the task died) are returned by rsys_call() as
 * -errno; the task's own result (possibly a -errno of the syscall) is stored in *ret.
 *
 * A plain engine (rsys_init) uses a syscall instruction of the task's vDSO: a task let go
 * by a dying stasis between two calls would run on with the engine's registers. That is
 * right for restore (the tracees die with stasis: PTRACE_O_EXITKILL). A dump arms its
 * engines (rsys_arm): every call then runs from a trampoline in the engine's mapping,
 * `syscall` followed by `rt_sigreturn` on a signal frame that holds the thread's own
 * registers (with the restart of an interrupted syscall applied), blocked mask and
 * extended state, so that a task let go at any moment completes the current remote
 * syscall and returns to its own context by itself (ARCHITECTURE.md, "The remote syscall
 * engine"). */
#ifndef STASIS_PTRACE_RSYS_H
#define STASIS_PTRACE_RSYS_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "arch/arch.h"
#include "core/util.h"

struct rsys {
	pid_t tid;
	uint64_t insn;      /* address of a syscall instruction in the task */
	arch_regs_t saved;  /* registers at the stop, put back by rsys_fini() */
	bool in_syscall_stop; /* last stop was a syscall-exit stop */
	uint64_t scratch;   /* remote scratch memory (0 if none) */
	size_t scratch_len;
	bool scratch_owned; /* unmapped by rsys_fini() */
	/* armed engines (rsys_arm) */
	bool armed;
	arch_regs_t base;   /* registers a call starts from: saved, stack on the frame */
	uint64_t own_mask;  /* the thread's blocked mask, put back by rsys_fini() */
	uint64_t map;       /* the engine's mapping (owner: trampoline, frames, scratch) */
	size_t map_len;
	bool restart;       /* a syscall the thread was interrupted in is restarted if let go */
	uint64_t stub;      /* room for a frameless call's stub past the vDSO's image (0: none) */
};

/* @tid must be in a ptrace stop. Finds the syscall instruction in the vDSO at @vdso_start
 * (length @vdso_len) of the task and saves its registers. */
int rsys_init(struct rsys *r, pid_t tid, uint64_t vdso_start, uint64_t vdso_len) __must_check;
/* Another thread of the same process: reuse the syscall instruction and the scratch
 * memory (not owned: the first thread's engine unmaps it). */
int rsys_init_insn(struct rsys *r, pid_t tid, uint64_t insn, uint64_t scratch,
		   size_t scratch_len) __must_check;
/* Arm the engines @rs[0..n) of the threads of one process (each initialised, in the
 * stop it was frozen in, with its own blocked mask; @rs[0] maps the memory and owns it):
 * map the trampoline, one signal frame per thread and @scratch_len bytes of scratch
 * shared by all (rs[i]->scratch), point every thread at the trampoline with its own
 * context in its frame, and block every signal in it (a signal arriving during the dump
 * stays pending). rsys_fini() undoes it all. On failure the engines armed so far stay
 * armed (rsys_fini() them). */
int rsys_arm(struct rsys *const *rs, size_t n, size_t scratch_len) __must_check;
/* Point the engine at a new syscall instruction (the vDSO was moved). */
void rsys_set_insn(struct rsys *r, uint64_t insn);
/* Run syscall @nr. Returns 0 (result in *ret) or -errno for a transport failure. */
int rsys_call(struct rsys *r, long nr, uint64_t a0, uint64_t a1, uint64_t a2, uint64_t a3,
	      uint64_t a4, uint64_t a5, long *ret) __must_check;
/* The same syscall in @n threads at once (arguments per thread), results in @ret[i].
 * 0 or the first transport failure. */
int rsys_call_vec(struct rsys *const *rs, size_t n, long nr, const uint64_t (*args)[6],
		  long *ret) __must_check;
/* rsys_fini() for @n engines that own no scratch memory, parking them concurrently. */
int rsys_fini_vec(struct rsys *const *rs, size_t n) __must_check;
/* Map @len bytes of scratch memory in the task (at @addr with MAP_FIXED if non-zero). */
int rsys_scratch_map(struct rsys *r, uint64_t addr, size_t len) __must_check;
/* Copy to/from the task's memory (process_vm_writev/readv; /proc/PID/mem fallback). */
int rsys_poke(struct rsys *r, uint64_t addr, const void *buf, size_t len) __must_check;
int rsys_peek(struct rsys *r, uint64_t addr, void *buf, size_t len) __must_check;
/* Unmap owned scratch memory, put back the saved registers (and, armed, the blocked mask)
 * and park the task in a stop inside signal delivery (so restart semantics of an
 * interrupted syscall hold). An armed owner is finished after every other engine of its
 * process (their frames are in its mapping). */
int rsys_fini(struct rsys *r) __must_check;

/* Shorthand: a remote call whose failure (transport or task -errno) is logged with @what
 * and returned as -errno; otherwise the result. */
long rsys_do(struct rsys *r, const char *what, long nr, uint64_t a0, uint64_t a1, uint64_t a2,
	     uint64_t a3, uint64_t a4, uint64_t a5);

#endif
