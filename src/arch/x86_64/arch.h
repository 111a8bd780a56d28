/* x86_64-specific code: register sets, syscall calling convention, restart codes. */
#ifndef STASIS_ARCH_X86_64_ARCH_H
#define STASIS_ARCH_X86_64_ARCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <sys/user.h>

#include "core/util.h"

typedef struct user_regs_struct arch_regs_t;

/* The xsave regset (elf.h has it; repeated for older headers). */
#ifndef NT_X86_XSTATE
#define NT_X86_XSTATE 0x202
#endif

/* Upper bound on the NT_X86_XSTATE regset (AMX tiles included). */
#define ARCH_XSAVE_MAX (16 * 1024)
/* Top of the user address space (47-bit). */
#define ARCH_TASK_SIZE 0x7ffffffff000ULL

int arch_get_regs(pid_t tid, arch_regs_t *regs) __must_check;
int arch_set_regs(pid_t tid, const arch_regs_t *regs) __must_check;
/* Read the xsave area into @buf (ARCH_XSAVE_MAX bytes); *len gets its size. */
int arch_get_xsave(pid_t tid, void *buf, size_t *len) __must_check;
int arch_set_xsave(pid_t tid, const void *buf, size_t len) __must_check;

/* Prepare @regs to run syscall @nr with @args at @insn (address of a `syscall`
 * instruction). orig_ax is set to -1 so no syscall-restart logic touches them. */
void arch_setup_syscall(arch_regs_t *regs, uint64_t insn, long nr, const uint64_t args[6]);
static inline long arch_syscall_ret(const arch_regs_t *regs) { return (long)regs->rax; }
/* The syscall the task was in when it stopped (-1: none). */
static inline long arch_syscall_nr(const arch_regs_t *regs) { return (long)regs->orig_rax; }

/* Registers dumped while the task sat in an interrupted syscall: make the restored task
 * redo it the way the kernel would have. Returns true if @regs were changed. */
bool arch_fixup_restart(arch_regs_t *regs);

/* The CPU's extended state as this process sees it (CPUID, XCR0): whether the OS enabled
 * XSAVE, the area's size for the enabled features and the enabled feature mask. */
void arch_probe_xsave(bool *xsave, uint32_t *size, uint64_t *xfeatures);

/* Offset of the first `syscall` instruction in @buf, or -1. */
long arch_find_syscall_insn(const void *buf, size_t len);

/* The remote engine's trampoline (see src/ptrace/rsys.c): a `syscall` instruction at
 * offset 0, then `rt_sigreturn` (ARCH_TRAMP_RET is the offset of the instruction after
 * the syscall). A task let go there completes its syscall and returns to the context
 * held in the signal frame its stack pointer points at. Writes it into @buf (at least
 * ARCH_TRAMP_LEN bytes). */
#define ARCH_TRAMP_LEN 16
#define ARCH_TRAMP_RET 2
void arch_tramp_code(void *buf);
/* Bytes one signal frame takes in memory (64-byte multiple, xsave area included). */
size_t arch_sigframe_size(void);
/* Build in @buf (arch_sigframe_size() bytes, to be placed at the 64-byte aligned task
 * address @addr) an rt_sigreturn frame that returns to @regs with the blocked mask @mask
 * and the extended state @xsave (@xsave_len bytes, NT_X86_XSTATE layout); the altstack
 * is left as it is. *sp gets the stack pointer rt_sigreturn expects. */
int arch_sigframe_build(void *buf, uint64_t addr, const arch_regs_t *regs, uint64_t mask,
			const void *xsave, size_t xsave_len, uint64_t *sp) __must_check;
static inline void arch_set_sp(arch_regs_t *regs, uint64_t sp) { regs->rsp = sp; }
/* Registers of a task stopped at @ip with no syscall in progress for the kernel's
 * restart logic. */
static inline void arch_set_ip_nosys(arch_regs_t *regs, uint64_t ip)
{
	regs->rip = ip;
	regs->orig_rax = (uint64_t)-1;
}
/* A stub for a remote call made without a signal frame (before the engine's memory
 * exists, and to unmap it): `syscall` at offset 0, then, for a task let go there, the
 * blocked mask @mask back (rt_sigprocmask), every general register of @regs, the flags
 * (popped from the 8 bytes arch_stub_stack() names, below the red zone) and a jump to
 * @regs's instruction pointer. The vector and x87 state is never touched. Writes at most
 * ARCH_STUB_LEN bytes into @buf for the task address @addr; returns the length. */
#define ARCH_STUB_LEN 256
size_t arch_stub_code(void *buf, uint64_t addr, const arch_regs_t *regs, uint64_t mask);
/* The stack slot the stub pops the flags from and its value. */
void arch_stub_stack(const arch_regs_t *regs, uint64_t *addr, uint64_t *val);
/* The -ERESTART* code of the syscall @regs were interrupted in (positive), 0 if none. */
int arch_restart_code(const arch_regs_t *regs);
/* Apply a restart decision to @regs interrupted in a syscall, as the kernel's signal
 * delivery does: @restart re-runs the syscall (the same number and arguments), else it
 * returns -EINTR. */
void arch_restart_apply(arch_regs_t *regs, bool restart);

#endif
