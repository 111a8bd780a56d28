#include <cpuid.h>
#include <elf.h>
#include <errno.h>
#include <string.h>
#include <sys/ptrace.h>
#include <sys/ucontext.h>
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

/* ---------------------------------------- the remote engine's trampoline and frames ---- */

/* The kernel's rt_sigframe (arch/x86/include/asm/sigframe.h): the return address a
 * handler's `ret` pops, then the ucontext (glibc's ucontext_t has the kernel's layout up
 * to uc_sigmask, whose first 8 bytes are the kernel's sigset). rt_sigreturn reads it at
 * rsp - 8. */
struct tramp_frame {
	uint64_t pretcode;
	ucontext_t uc;
};

#define FRAME_OFF 0 /* the frame, then the fpstate, 64-byte aligned */
#define FP_OFF (ALIGN_UP(sizeof(struct tramp_frame), (size_t)64))
#define UC_FP_XSTATE 0x1
#define UC_SIGCONTEXT_SS 0x2
#define UC_STRICT_RESTORE_SS 0x4
#define FP_XSTATE_MAGIC1 0x46505853U
#define FP_XSTATE_MAGIC2 0x46505845U
#define XSAVE_LEGACY 512 /* fxsave area; the xsave header follows it */
#define XSAVE_HDR 64

void arch_tramp_code(void *buf)
{
	static const unsigned char code[ARCH_TRAMP_LEN] = {
		0x0f, 0x05,                   /* syscall             (the remote call) */
		0xb8, 0x0f, 0x00, 0x00, 0x00, /* mov $15, %eax       (__NR_rt_sigreturn) */
		0x0f, 0x05,                   /* syscall */
		0x0f, 0x0b,                   /* ud2                 (not reached) */
		0xcc, 0xcc, 0xcc, 0xcc, 0xcc,
	};
	memcpy(buf, code, sizeof(code));
}

/* Size of the standard-format xsave area the CPU's enabled features need. */
static uint32_t xsave_max(void)
{
	unsigned int a, b, c, d;
	if (!__get_cpuid_count(0xd, 0, &a, &b, &c, &d) || b < XSAVE_LEGACY + XSAVE_HDR)
		return XSAVE_LEGACY + XSAVE_HDR;
	return b;
}

size_t arch_sigframe_size(void)
{
	return FP_OFF + ALIGN_UP((size_t)xsave_max() + sizeof(uint32_t), (size_t)64);
}

/* End of the highest state component set in @xfeatures (standard format). */
static uint32_t xstate_end(uint64_t xfeatures)
{
	uint32_t end = XSAVE_LEGACY + XSAVE_HDR;
	for (unsigned int i = 2; i < 64; i++) {
		unsigned int a, b, c, d;
		if (!(xfeatures & (1ULL << i)) || !__get_cpuid_count(0xd, i, &a, &b, &c, &d))
			continue;
		if (b && a && b + a > end)
			end = b + a;
	}
	return end;
}

int arch_sigframe_build(void *buf, uint64_t addr, const arch_regs_t *regs, uint64_t mask,
			const void *xsave, size_t xsave_len, uint64_t *sp)
{
	struct tramp_frame f;
	unsigned char *fp = (unsigned char *)buf + FP_OFF;
	uint64_t xfeatures = 0;

	if (addr % 64 || xsave_len < XSAVE_LEGACY + XSAVE_HDR) {
		pr_err("rsys: bad signal frame (address 0x%llx, xsave %zu bytes)",
		       (unsigned long long)addr, xsave_len);
		return -EINVAL;
	}
	memcpy(&xfeatures, (const unsigned char *)xsave + XSAVE_LEGACY, sizeof(xfeatures));
	xfeatures |= 0x3; /* x87 and SSE always come from the frame */
	uint32_t size = xstate_end(xfeatures);
	if (size > xsave_len || size > xsave_max()) {
		pr_err("rsys: xsave area of %zu bytes, features 0x%llx need %u", xsave_len,
		       (unsigned long long)xfeatures, size);
		return -EINVAL;
	}
	/* The fpstate: the task's xsave area, the software bytes in the fxsave area's
	 * reserved part (what the kernel's own frames have: magic, sizes, features) and
	 * the second magic after it. */
	memcpy(fp, xsave, size);
	uint32_t sw[12] = { FP_XSTATE_MAGIC1, size + (uint32_t)sizeof(uint32_t),
			    (uint32_t)xfeatures, (uint32_t)(xfeatures >> 32), size };
	memcpy(fp + 464, sw, sizeof(sw));
	uint32_t magic2 = FP_XSTATE_MAGIC2;
	memcpy(fp + size, &magic2, sizeof(magic2));

	memset(&f, 0, sizeof(f));
	f.uc.uc_flags = UC_FP_XSTATE | UC_SIGCONTEXT_SS | UC_STRICT_RESTORE_SS;
	/* An invalid altstack: rt_sigreturn's sigaltstack fails and the kernel ignores that
	 * (restore_altstack squashes all but EFAULT), so the task's altstack, which the
	 * engine never changes, stays exactly as it is (SS_AUTODISARM state included). */
	f.uc.uc_stack.ss_flags = 0x4;
	greg_t *g = f.uc.uc_mcontext.gregs;
	g[REG_R8] = (greg_t)regs->r8;
	g[REG_R9] = (greg_t)regs->r9;
	g[REG_R10] = (greg_t)regs->r10;
	g[REG_R11] = (greg_t)regs->r11;
	g[REG_R12] = (greg_t)regs->r12;
	g[REG_R13] = (greg_t)regs->r13;
	g[REG_R14] = (greg_t)regs->r14;
	g[REG_R15] = (greg_t)regs->r15;
	g[REG_RDI] = (greg_t)regs->rdi;
	g[REG_RSI] = (greg_t)regs->rsi;
	g[REG_RBP] = (greg_t)regs->rbp;
	g[REG_RBX] = (greg_t)regs->rbx;
	g[REG_RDX] = (greg_t)regs->rdx;
	g[REG_RAX] = (greg_t)regs->rax;
	g[REG_RCX] = (greg_t)regs->rcx;
	g[REG_RSP] = (greg_t)regs->rsp;
	g[REG_RIP] = (greg_t)regs->rip;
	g[REG_EFL] = (greg_t)regs->eflags;
	/* cs, gs, fs, ss (sigcontext_64); 64-bit sigreturn ignores fs and gs */
	g[REG_CSGSFS] = (greg_t)((regs->cs & 0xffff) | (regs->gs & 0xffff) << 16 |
				 (regs->fs & 0xffff) << 32 | (regs->ss & 0xffff) << 48);
	f.uc.uc_mcontext.fpregs = (fpregset_t)(uintptr_t)(addr + FP_OFF);
	memcpy(&f.uc.uc_sigmask, &mask, sizeof(mask));
	memcpy((unsigned char *)buf + FRAME_OFF, &f, sizeof(f));
	*sp = addr + FRAME_OFF + sizeof(uint64_t);
	return 0;
}

int arch_restart_code(const arch_regs_t *regs)
{
	long rax = (long)regs->rax;
	if ((long)regs->orig_rax < 0)
		return 0;
	if (rax == -STASIS_ERESTARTSYS || rax == -STASIS_ERESTARTNOINTR ||
	    rax == -STASIS_ERESTARTNOHAND || rax == -STASIS_ERESTART_RESTARTBLOCK)
		return (int)-rax;
	return 0;
}

void arch_restart_apply(arch_regs_t *regs, bool restart)
{
	if (restart) {
		regs->rax = regs->orig_rax;
		regs->rip -= 2; /* the syscall instruction */
	} else {
		regs->rax = (uint64_t)-EINTR;
	}
	regs->orig_rax = (uint64_t)-1;
}

/* x86-64 register numbers in instruction encodings */
enum { RAX, RCX, RDX, RBX, RSP, RBP, RSI, RDI, R8, R9, R10, R11, R12, R13, R14, R15 };
#define STUB_RED_ZONE 128

static unsigned char *emit(unsigned char *p, const void *b, size_t n)
{
	memcpy(p, b, n);
	return p + n;
}

/* movabs $v, %reg */
static unsigned char *emit_mov64(unsigned char *p, int reg, uint64_t v)
{
	*p++ = (unsigned char)(0x48 | (reg >= 8 ? 1 : 0));
	*p++ = (unsigned char)(0xb8 + (reg & 7));
	return emit(p, &v, sizeof(v));
}

/* a rip-relative disp32 at @p (the instruction ends at @end) to @target, all in @buf */
static void put_rel32(unsigned char *p, const unsigned char *end, const unsigned char *target)
{
	int32_t d = (int32_t)(target - end);
	memcpy(p, &d, sizeof(d));
}

void arch_stub_stack(const arch_regs_t *regs, uint64_t *addr, uint64_t *val)
{
	*addr = regs->rsp - STUB_RED_ZONE - 8;
	*val = regs->eflags;
}

size_t arch_stub_code(void *buf, uint64_t addr, const arch_regs_t *regs, uint64_t mask)
{
	unsigned char *b = buf, *p = b, *lea, *jmp;
	(void)addr; /* position-independent */
	static const unsigned char sys[] = { 0x0f, 0x05 };
	static const unsigned char setmask[] = {
		0xb8, 0x0e, 0x00, 0x00, 0x00, /* mov $14, %eax (rt_sigprocmask) */
		0xbf, 0x02, 0x00, 0x00, 0x00, /* mov $2, %edi (SIG_SETMASK) */
	};
	static const unsigned char tail[] = {
		0x31, 0xd2,                         /* xor %edx, %edx */
		0x41, 0xba, 0x08, 0x00, 0x00, 0x00, /* mov $8, %r10d */
		0x0f, 0x05,                         /* syscall */
	};
	static const unsigned char popf_lea[] = {
		0x9d,                                           /* popfq */
		0x48, 0x8d, 0xa4, 0x24, 0x80, 0x00, 0x00, 0x00, /* lea 0x80(%rsp), %rsp */
	};
	const struct {
		int reg;
		uint64_t v;
	} gpr[] = {
		{ R8, regs->r8 },   { R9, regs->r9 },   { R10, regs->r10 }, { R11, regs->r11 },
		{ R12, regs->r12 }, { R13, regs->r13 }, { R14, regs->r14 }, { R15, regs->r15 },
		{ RDI, regs->rdi }, { RSI, regs->rsi }, { RBP, regs->rbp }, { RBX, regs->rbx },
		{ RDX, regs->rdx }, { RCX, regs->rcx }, { RAX, regs->rax },
	};

	p = emit(p, sys, sizeof(sys)); /* the remote call */
	p = emit(p, setmask, sizeof(setmask));
	lea = p; /* lea mask(%rip), %rsi */
	*p++ = 0x48;
	*p++ = 0x8d;
	*p++ = 0x35;
	p += 4;
	p = emit(p, tail, sizeof(tail));
	for (size_t i = 0; i < ARRAY_SIZE(gpr); i++)
		p = emit_mov64(p, gpr[i].reg, gpr[i].v);
	p = emit_mov64(p, RSP, regs->rsp - STUB_RED_ZONE - 8);
	p = emit(p, popf_lea, sizeof(popf_lea));
	jmp = p; /* jmp *target(%rip) */
	*p++ = 0xff;
	*p++ = 0x25;
	p += 4;
	unsigned char *target = p;
	p = emit(p, &regs->rip, sizeof(regs->rip));
	unsigned char *m = p;
	p = emit(p, &mask, sizeof(mask));
	put_rel32(lea + 3, lea + 7, m);
	put_rel32(jmp + 2, jmp + 6, target);
	return (size_t)(p - b);
}
