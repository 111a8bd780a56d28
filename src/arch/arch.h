/* The architecture stasis is built for: the one header code outside src/arch includes.
 * Nothing outside src/arch names a register or tests the architecture; each arch/<arch>/
 * provides the same small interface (arch_regs_t, arch_get_regs, arch_setup_syscall,
 * arch_syscall_nr, arch_fixup_restart, arch_probe_xsave, ...). */
#ifndef STASIS_ARCH_ARCH_H
#define STASIS_ARCH_ARCH_H

#if defined(__x86_64__)
#include "arch/x86_64/arch.h"
#else
#error "stasis is built for x86_64 only (src/arch/x86_64)"
#endif

#endif
