#include <cpuid.h>
#include <elf.h>
#include <errno.h>
#include <string.h>
#include <sys/ptrace.h>
#include <sys/uio.h>

#include "arch/x86_64/arch.h"
#include "core/log.h"
#include "sys/uapi.h"

int arch_get_regs(pid_t tid, arch_regs_t *regs)
{
	struct iovec iov = { regs, sizeof(*regs) };
	if (ptrace(PTRACE_GETREGSET, tid, (void *)NT_PRSTATUS, &iov) < 0)
		return pr_perror("ptrace: get registers of %d", tid);
	return 0;
}

int arch_set_regs(pid_t tid, const arch_regs_t *regs)
{
	struct iovec iov = { (void *)regs, sizeof(*regs) };
	if (ptrace(PTRACE_SETREGSET, tid, (void *)NT_PRSTATUS, &iov) < 0)
		return pr_perror("ptrace: set registers of %d", tid);
	return 0;
}

int arch_get_xsave(pid_t tid, void *buf, size_t *len)
{
	struct iovec iov = { buf, ARCH_XSAVE_MAX };
	if (ptrace(PTRACE_GETREGSET, tid, (void *)NT_X86_XSTATE, &iov) < 0)
		return pr_perror("ptrace: get xsave area of %d", tid);
	*len = iov.iov_len;
	return 0;
}

int arch_set_xsave(pid_t tid, const void *buf, size_t len)
{
	struct iovec iov = { (void *)buf, len };
	if (ptrace(PTRACE_SETREGSET, tid, (void *)NT_X86_XSTATE, &iov) < 0)
		return pr_perror("ptrace: set xsave area of %d (%zu bytes)", tid, len);
	if (iov.iov_len != len) {
		pr_err("ptrace: xsave area of %d: kernel took %zu of %zu bytes", tid, iov.iov_len,
		       len);
		return -EINVAL;
	}
	return 0;
}

void arch_setup_syscall(arch_regs_t *regs, uint64_t insn, long nr, const uint64_t args[6])
{
	regs->rip = insn;
	regs->rax = (uint64_t)nr;
	regs->orig_rax = (uint64_t)-1;
	regs->rdi = args[0];
	regs->rsi = args[1];
	regs->rdx = args[2];
	regs->r10 = args[3];
	regs->r8 = args[4];
	regs->r9 = args[5];
}

bool arch_fixup_restart(arch_regs_t *regs)
{
	/* The restored task resumes from a ptrace stop inside signal delivery, where the
	 * kernel itself applies the restart rule for -ERESTARTSYS/-ERESTARTNOINTR/
	 * -ERESTARTNOHAND (re-run the syscall). -ERESTART_RESTARTBLOCK would call
	 * restart_syscall(), whose saved state (restart_block) lives in the kernel and was
	 * not carried over: re-run the original syscall with its original arguments
	 * instead (for a relative sleep that restarts the full interval). */
	if ((long)regs->orig_rax >= 0 && (long)regs->rax == -STASIS_ERESTART_RESTARTBLOCK) {
		regs->rax = (uint64_t)-STASIS_ERESTARTNOINTR;
		return true;
	}
	return false;
}

long arch_find_syscall_insn(const void *buf, size_t len)
{
	const unsigned char *p = buf;
	for (size_t i = 0; i + 1 < len; i++)
		if (p[i] == 0x0f && p[i + 1] == 0x05)
			return (long)i;
	return -1;
}

void arch_probe_xsave(bool *xsave, uint32_t *size, uint64_t *xfeatures)
{
	unsigned int a, b, c, d;

	*xsave = false;
	*size = 0;
	*xfeatures = 0;
	if (!__get_cpuid(1, &a, &b, &c, &d) || !(c & bit_OSXSAVE))
		return;
	*xsave = true;
	uint32_t lo, hi;
	__asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
	*xfeatures = ((uint64_t)hi << 32) | lo;
	if (__get_cpuid_count(0xd, 0, &a, &b, &c, &d))
		*size = b;
}
