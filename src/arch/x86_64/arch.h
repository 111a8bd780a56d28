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

#endif
