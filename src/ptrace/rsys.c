#include "ptrace/rsys.h"

#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/ptrace.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/wait.h>

#include "core/log.h"
#include "proc/parse.h"
#include "sys/uapi.h"
#include "ptrace/ptrace.h"

/* The registers a call starts from: an armed engine's keep the stack on its frame. */
static const arch_regs_t *call_base(const struct rsys *r)
{
	return r->armed ? &r->base : &r->saved;
}

/* Offset of ARCH_STUB_LEN zero bytes past the end of the vDSO's ELF image (headers,
 * segments, section headers) in its last page, or 0: room nobody reads or runs, where a
 * frameless call's stub can live for a moment (rsys_arm, rsys_fini). */
static long find_stub_room(const unsigned char *b, size_t len)
{
	uint64_t phoff, shoff, end;
	uint16_t phentsize, phnum, shentsize, shnum;

	if (len < 64 || memcmp(b, "\177ELF", 4) || b[4] != 2 /* ELFCLASS64 */)
		return 0;
	memcpy(&phoff, b + 0x20, 8);
	memcpy(&shoff, b + 0x28, 8);
	memcpy(&phentsize, b + 0x36, 2);
	memcpy(&phnum, b + 0x38, 2);
	memcpy(&shentsize, b + 0x3a, 2);
	memcpy(&shnum, b + 0x3c, 2);
	if (phoff > len || shoff > len || phentsize < 0x28 || (uint64_t)phnum * phentsize > len - phoff)
		return 0;
	end = MAX((uint64_t)64, shoff + (uint64_t)shentsize * shnum);
	for (unsigned int i = 0; i < phnum; i++) {
		uint64_t off, filesz;
		memcpy(&off, b + phoff + (uint64_t)i * phentsize + 0x08, 8);
		memcpy(&filesz, b + phoff + (uint64_t)i * phentsize + 0x20, 8);
		if (off > len || filesz > len)
			return 0;
		end = MAX(end, off + filesz);
	}
	end = ALIGN_UP(end, (uint64_t)64);
	if (end + ARCH_STUB_LEN > len)
		return 0;
	for (size_t i = 0; i < ARCH_STUB_LEN; i++)
		if (b[end + i])
			return 0;
	return (long)end;
}

int rsys_init(struct rsys *r, pid_t tid, uint64_t vdso_start, uint64_t vdso_len)
{
	int ret;

	memset(r, 0, sizeof(*r));
	r->tid = tid;
	if (!vdso_start || !vdso_len || vdso_len > (1 << 20)) {
		pr_err("rsys: task %d has no usable vDSO", tid);
		return -ENOEXEC;
	}
	_cleanup_free_ unsigned char *buf = malloc(vdso_len);
	if (!buf)
		return -ENOMEM;
	struct iovec l = { buf, vdso_len }, rm = { (void *)vdso_start, vdso_len };
	if (process_vm_readv(tid, &l, 1, &rm, 1, 0) != (ssize_t)vdso_len)
		return pr_perror("rsys: read vDSO of %d", tid);
	long off = arch_find_syscall_insn(buf, vdso_len);
	if (off < 0) {
		pr_err("rsys: no syscall instruction in the vDSO of %d", tid);
		return -ENOEXEC;
	}
	r->insn = vdso_start + (uint64_t)off;
	off = find_stub_room(buf, vdso_len);
	r->stub = off > 0 ? vdso_start + (uint64_t)off : 0;
	r->restart = true;
	ret = arch_get_regs(tid, &r->saved);
	if (ret)
		return ret;
	return 0;
}

void rsys_set_insn(struct rsys *r, uint64_t insn) { r->insn = insn; }

int rsys_init_insn(struct rsys *r, pid_t tid, uint64_t insn, uint64_t scratch, size_t scratch_len)
{
	memset(r, 0, sizeof(*r));
	r->tid = tid;
	r->insn = insn;
	r->scratch = scratch;
	r->scratch_len = scratch_len;
	r->restart = true;
	return arch_get_regs(tid, &r->saved);
}

static int resume_syscall(struct rsys *r, const char *what)
{
	if (ptrace(PTRACE_SYSCALL, r->tid, NULL, NULL) < 0)
		return pr_perror("rsys: resume %d to %s", r->tid, what);
	return 0;
}

/* Wait for the next syscall stop of @r; event stops (a clone made by the remote syscall)
 * that come before it are passed over. */
static int wait_syscall_stop(struct rsys *r, const char *what)
{
	int status, ret;

	for (int events = 0; events < 4; events++) {
		ret = pt_wait(r->tid, &status, PT_WAIT_TIMEOUT_MS);
		if (ret) {
			if (ret == -ESRCH)
				pr_err("rsys: task %d died during a remote syscall (status 0x%x)",
				       r->tid, status);
			return ret;
		}
		if (WIFSTOPPED(status) && WSTOPSIG(status) == (SIGTRAP | 0x80))
			return 0;
		/* pass over event stops: a clone made by the remote syscall, or the group-stop
		 * notification of a task that was stopped (SIGSTOP) when it was seized */
		if (!(WIFSTOPPED(status) && (status >> 16) &&
		      (WSTOPSIG(status) == SIGTRAP || (status >> 16) == PTRACE_EVENT_STOP)))
			break;
		ret = resume_syscall(r, what);
		if (ret)
			return ret;
	}
	pr_err("rsys: task %d: unexpected stop 0x%x waiting for %s", r->tid, status, what);
	return -EIO;
}

static int step_to(struct rsys *r, const char *what)
{
	int ret = resume_syscall(r, what);
	return ret ? ret : wait_syscall_stop(r, what);
}

int rsys_call_vec(struct rsys *const *rs, size_t n, long nr, const uint64_t (*args)[6],
		  long *ret)
{
	int err;

	/* Start the call in every thread, then collect: the threads run it concurrently
	 * and stasis waits once per stop kind instead of once per thread and stop. */
	for (size_t i = 0; i < n; i++) {
		arch_regs_t regs = *call_base(rs[i]);
		arch_setup_syscall(&regs, rs[i]->insn, nr, args[i]);
		err = arch_set_regs(rs[i]->tid, &regs);
		if (!err)
			err = resume_syscall(rs[i], "syscall entry");
		if (err)
			return err;
	}
	for (size_t i = 0; i < n; i++) {
		err = wait_syscall_stop(rs[i], "syscall entry");
		if (!err)
			err = resume_syscall(rs[i], "syscall exit");
		if (err)
			return err;
	}
	for (size_t i = 0; i < n; i++) {
		arch_regs_t regs;
		err = wait_syscall_stop(rs[i], "syscall exit");
		if (!err)
			err = arch_get_regs(rs[i]->tid, &regs);
		if (err)
			return err;
		rs[i]->in_syscall_stop = true;
		ret[i] = arch_syscall_ret(&regs);
	}
	return 0;
}

static int set_mask(pid_t tid, uint64_t mask)
{
	if (ptrace(PTRACE_SETSIGMASK, tid, (void *)sizeof(mask), &mask) < 0)
		return pr_perror("rsys: set the blocked signals of %d", tid);
	return 0;
}

/* An armed engine's thread back in its own context: the blocked mask first (until its
 * registers are back, a thread let go still returns through its frame), then the
 * registers (from then on it is in its own context, in a syscall-exit stop or in the stop
 * it was frozen in: a thread let go there restarts an interrupted syscall by the kernel's
 * own rule). */
static int disarm(struct rsys *r)
{
	if (!r->armed)
		return 0;
	int ret = set_mask(r->tid, r->own_mask);
	int e = arch_set_regs(r->tid, &r->saved);
	r->armed = false;
	return ret ? ret : e;
}

int rsys_fini_vec(struct rsys *const *rs, size_t n)
{
	int ret = 0, status;

	for (size_t i = 0; i < n; i++)
		if (rs[i]->scratch_owned) {
			pr_err("rsys: rsys_fini_vec on a scratch owner");
			return -EINVAL;
		}
	for (size_t i = 0; i < n; i++) {
		ret = disarm(rs[i]);
		if (ret)
			return ret;
	}
	for (size_t i = 0; i < n; i++) {
		if (!rs[i]->in_syscall_stop)
			continue;
		if (ptrace(PTRACE_INTERRUPT, rs[i]->tid, NULL, NULL) < 0 ||
		    ptrace(PTRACE_CONT, rs[i]->tid, NULL, NULL) < 0)
			return pr_perror("rsys: park %d", rs[i]->tid);
	}
	for (size_t i = 0; i < n; i++) {
		if (rs[i]->in_syscall_stop) {
			ret = pt_wait(rs[i]->tid, &status, PT_WAIT_TIMEOUT_MS);
			if (ret)
				return ret;
			if (!WIFSTOPPED(status) || (status >> 16) != PTRACE_EVENT_STOP) {
				pr_err("rsys: task %d: unexpected stop 0x%x while parking it",
				       rs[i]->tid, status);
				return -EIO;
			}
			rs[i]->in_syscall_stop = false;
		}
		ret = arch_set_regs(rs[i]->tid, &rs[i]->saved);
		if (ret)
			return ret;
	}
	return 0;
}

/* A call from @base's registers at @insn; @block (non-NULL): the blocked mask set once the
 * registers are in place (then a thread let go between the two runs the call, whose
 * code at @insn leads home, with its own mask). */
static int call_at(struct rsys *r, const arch_regs_t *base, uint64_t insn, long nr,
		   const uint64_t args[6], const uint64_t *block, long *ret)
{
	arch_regs_t regs = *base;
	int err;

	arch_setup_syscall(&regs, insn, nr, args);
	err = arch_set_regs(r->tid, &regs);
	if (!err && block)
		err = set_mask(r->tid, *block);
	if (err)
		return err;
	err = step_to(r, "syscall entry");
	if (err)
		return err;
	err = step_to(r, "syscall exit");
	if (err)
		return err;
	r->in_syscall_stop = true;
	err = arch_get_regs(r->tid, &regs);
	if (err)
		return err;
	*ret = arch_syscall_ret(&regs);
	return 0;
}

int rsys_call(struct rsys *r, long nr, uint64_t a0, uint64_t a1, uint64_t a2, uint64_t a3,
	      uint64_t a4, uint64_t a5, long *ret)
{
	const uint64_t args[6] = { a0, a1, a2, a3, a4, a5 };
	return call_at(r, call_base(r), r->insn, nr, args, NULL, ret);
}

/* A call from a stub in the vDSO's spare room (no signal frame needed: before the
 * engine's memory exists, and to unmap it): a thread let go completes the syscall and
 * the stub puts back its own registers and mask (the thread's registers from
 * r->saved, its mask from r->own_mask). */
static int stub_call(struct rsys *r, long nr, const uint64_t args[6], const uint64_t *block,
		     long *ret)
{
	unsigned char code[ARCH_STUB_LEN];
	arch_regs_t own = r->saved;
	uint64_t slot, flags;

	if (arch_restart_code(&own))
		arch_restart_apply(&own, r->restart);
	size_t n = arch_stub_code(code, r->stub, &own, r->own_mask);
	arch_stub_stack(&own, &slot, &flags);
	if (rsys_poke(r, slot, &flags, sizeof(flags)) || rsys_poke(r, r->stub, code, n)) {
		/* (no stack below the red zone, say): the vDSO's syscall instruction */
		log_reset_first_error();
		pr_warn("rsys: no stub for task %d: a remote call without a way back", r->tid);
		return call_at(r, &r->saved, r->insn, nr, args, block, ret);
	}
	return call_at(r, &r->saved, r->stub, nr, args, block, ret);
}

/* The vDSO's spare room zeroed again (once the thread's own registers are back). */
static void stub_clear(struct rsys *r)
{
	static const unsigned char zero[ARCH_STUB_LEN];
	if (rsys_poke(r, r->stub, zero, sizeof(zero)))
		pr_warn("rsys: cannot clear the stub in the vDSO of %d", r->tid);
}

long rsys_do(struct rsys *r, const char *what, long nr, uint64_t a0, uint64_t a1, uint64_t a2,
	     uint64_t a3, uint64_t a4, uint64_t a5)
{
	long ret;
	int err = rsys_call(r, nr, a0, a1, a2, a3, a4, a5, &ret);
	if (err) {
		pr_err("%s in task %d: remote call failed: %s", what, r->tid, strerror(-err));
		return err;
	}
	if (ret < 0 && ret > -4096) {
		pr_err("%s in task %d: %s", what, r->tid, strerror((int)-ret));
		return ret;
	}
	return ret;
}

int rsys_scratch_map(struct rsys *r, uint64_t addr, size_t len)
{
	long ret = rsys_do(r, "map scratch memory", SYS_mmap, addr, len, PROT_READ | PROT_WRITE,
			   MAP_PRIVATE | MAP_ANONYMOUS | (addr ? MAP_FIXED : 0), (uint64_t)-1, 0);
	if (ret < 0)
		return (int)ret;
	r->scratch = (uint64_t)ret;
	r->scratch_len = len;
	r->scratch_owned = true;
	return 0;
}

static int mem_xfer(pid_t tid, uint64_t addr, void *buf, size_t len, bool write)
{
	struct iovec l = { buf, len }, rm = { (void *)addr, len };
	ssize_t n = write ? process_vm_writev(tid, &l, 1, &rm, 1, 0)
			  : process_vm_readv(tid, &l, 1, &rm, 1, 0);
	if (n == (ssize_t)len)
		return 0;
	/* Unreadable/unwritable mappings: /proc/PID/mem works like a debugger (FOLL_FORCE). */
	char path[64];
	snprintf(path, sizeof(path), "/proc/%d/mem", tid);
	_cleanup_close_ int fd = open(path, (write ? O_WRONLY : O_RDONLY) | O_CLOEXEC);
	if (fd < 0)
		return pr_perror("rsys: open %s", path);
	n = write ? pwrite(fd, buf, len, (off_t)addr) : pread(fd, buf, len, (off_t)addr);
	if (n != (ssize_t)len) {
		if (n >= 0)
			errno = EIO;
		return pr_perror("rsys: %s %zu bytes at 0x%llx of task %d",
				 write ? "write" : "read", len, (unsigned long long)addr, tid);
	}
	return 0;
}

int rsys_poke(struct rsys *r, uint64_t addr, const void *buf, size_t len)
{
	return mem_xfer(r->tid, addr, (void *)buf, len, true);
}

int rsys_peek(struct rsys *r, uint64_t addr, void *buf, size_t len)
{
	return mem_xfer(r->tid, addr, buf, len, false);
}

int rsys_fini(struct rsys *r)
{
	int ret = 0;
	bool used_stub = false;
	long res;

	if (r->scratch_owned) {
		/* Armed, from the stub in the vDSO (the trampoline and the frames go with
		 * the mapping); without one, a task let go from the unmap to disarm() would
		 * not find its way back. */
		const uint64_t args[6] = { r->map ? r->map : r->scratch,
					   r->map ? r->map_len : r->scratch_len };
		if (r->armed && r->stub) {
			used_stub = true;
			ret = stub_call(r, SYS_munmap, args, NULL, &res);
		} else {
			ret = rsys_call(r, SYS_munmap, args[0], args[1], 0, 0, 0, 0, &res);
		}
		if (!ret && res < 0)
			pr_warn("rsys: unmap scratch of %d: %s", r->tid, strerror((int)-res));
		r->scratch_owned = false;
		r->map = 0;
	}
	int d = disarm(r);
	if (d && !ret)
		ret = d;
	if (used_stub && !d)
		stub_clear(r);
	if (r->in_syscall_stop) {
		int e = pt_stop_in_signal_path(r->tid);
		if (e)
			return e;
		r->in_syscall_stop = false;
	}
	int e = arch_set_regs(r->tid, &r->saved);
	return ret ? ret : e;
}

/* ------------------------------------------------------------- armed engines ---- */

#define SIG_BIT(s) (1ULL << ((s)-1))
/* the kernel dequeues these first (SYNCHRONOUS_MASK) */
#define SIG_SYNC (SIG_BIT(SIGSEGV) | SIG_BIT(SIGBUS) | SIG_BIT(SIGILL) | SIG_BIT(SIGTRAP) | \
		  SIG_BIT(SIGFPE) | SIG_BIT(SIGSYS))
/* default action: ignore */
#define SIG_DFL_IGN (SIG_BIT(SIGCHLD) | SIG_BIT(SIGURG) | SIG_BIT(SIGWINCH) | SIG_BIT(SIGCONT))
#define KSA_RESTART 0x10000000ULL

/* The first signal of @set the kernel would dequeue (0: none). */
static int first_signal(uint64_t set)
{
	uint64_t s = (set & SIG_SYNC) ? (set & SIG_SYNC) : set;
	return s ? __builtin_ctzll(s) + 1 : 0;
}

/* Whether the syscall thread @r was interrupted in (restart @code) is to be restarted when
 * it returns to its own context, decided as the kernel's signal delivery would on its
 * release from the freeze: by the first pending signal it would deliver to a handler
 * (then -ERESTARTNOHAND/-ERESTART_RESTARTBLOCK give -EINTR, -ERESTARTSYS restarts with
 * SA_RESTART only, -ERESTARTNOINTR always), restarted if there is none. @own reads the
 * sigaction (an armed engine of the process). */
static int restart_rule(struct rsys *own, struct rsys *r, int code, bool *restart)
{
	char path[64];
	struct proc_status st = { 0 };

	*restart = true;
	if (code == STASIS_ERESTARTNOINTR)
		return 0;
	snprintf(path, sizeof(path), "/proc/%d/task/%d/status", own->tid, r->tid);
	_cleanup_free_ char *buf = read_file_at(AT_FDCWD, path, 1 << 20, NULL);
	if (!buf)
		return pr_perror("rsys: read %s", path);
	int ret = proc_parse_status(buf, &st);
	if (ret)
		return pr_errno(ret, "rsys: parse %s", path);
	uint64_t queues[2] = { st.sig_pnd & ~r->own_mask, st.shd_pnd & ~r->own_mask };
	uint64_t ign = st.sig_ign, cgt = st.sig_cgt;
	proc_status_free(&st);
	for (int q = 0; q < 2; q++)
		for (int sig; (sig = first_signal(queues[q])); queues[q] &= ~SIG_BIT(sig)) {
			if ((ign & SIG_BIT(sig)) ||
			    (!(cgt & SIG_BIT(sig)) && (SIG_DFL_IGN & SIG_BIT(sig))))
				continue; /* discarded by the kernel, which looks further */
			if (!(cgt & SIG_BIT(sig)))
				return 0; /* stops or kills it: no handler runs */
			if (code != STASIS_ERESTARTSYS) {
				*restart = false;
				return 0;
			}
			long res;
			uint64_t act[4];
			ret = rsys_call(own, SYS_rt_sigaction, (uint64_t)sig, 0, own->scratch, 8, 0, 0,
					&res);
			if (!ret && res < 0)
				ret = pr_errno((int)res, "rsys: read the action of signal %d of %d", sig,
					       own->tid);
			if (!ret)
				ret = rsys_peek(own, own->scratch, act, sizeof(act));
			if (ret)
				return ret;
			*restart = act[1] & KSA_RESTART;
			return 0;
		}
	return 0;
}

/* The frame of @r at @addr in @buf: its own registers with the restart of an interrupted
 * syscall applied (@restart), its blocked mask, its extended state. */
static int build_frame(struct rsys *r, void *buf, uint64_t addr, bool restart, void *xs)
{
	arch_regs_t regs = r->saved;
	size_t xlen;
	uint64_t sp;

	/* -ERESTART_RESTARTBLOCK is redone as the original syscall, not restart_syscall():
	 * rt_sigreturn resets the restart block (restart_syscall() would give -EINTR). */
	if (arch_restart_code(&regs))
		arch_restart_apply(&regs, restart);
	int ret = arch_get_xsave(r->tid, xs, &xlen);
	if (!ret)
		ret = arch_sigframe_build(buf, addr, &regs, r->own_mask, xs, xlen, &sp);
	if (ret)
		return ret;
	r->base = r->saved;
	arch_set_sp(&r->base, sp);
	r->restart = restart;
	return 0;
}

/* A thread interrupted in a syscall with a signal pending for a handler: -EINTR in its
 * frame rather than a restart, if the kernel would decide so (restart_rule). */
static int handler_rules(struct rsys *const *rs, size_t n, size_t code_len, size_t fsz,
			 unsigned char *buf, void *xs)
{
	struct rsys *r0 = rs[0];
	int ret;

	for (size_t i = 0; i < n; i++) {
		int code = arch_restart_code(&rs[i]->saved);
		bool restart;
		if (!code)
			continue;
		ret = restart_rule(r0, rs[i], code, &restart);
		if (ret)
			return ret;
		if (restart)
			continue;
		ret = build_frame(rs[i], buf, r0->map + code_len + i * fsz, false, xs);
		if (!ret)
			ret = rsys_poke(r0, r0->map + code_len + i * fsz, buf, fsz);
		if (ret)
			return ret;
		pr_debug("rsys: thread %d returns -EINTR if let go (a handler's signal is pending)",
			 rs[i]->tid);
	}
	return 0;
}

int rsys_arm(struct rsys *const *rs, size_t n, size_t scratch_len)
{
	struct rsys *r0 = rs[0];
	const size_t fsz = arch_sigframe_size();
	const size_t code_len = PAGE_SIZE, frames_len = ALIGN_UP(n * fsz, PAGE_SIZE);
	const size_t len = code_len + frames_len + ALIGN_UP(scratch_len, PAGE_SIZE);
	const uint64_t all = ~0ULL;
	long res;
	int ret;

	for (size_t i = 0; i < n; i++)
		if (ptrace(PTRACE_GETSIGMASK, rs[i]->tid, (void *)sizeof(uint64_t),
			   &rs[i]->own_mask) < 0)
			return pr_perror("rsys: read the blocked signals of %d", rs[i]->tid);
	_cleanup_free_ unsigned char *buf = calloc(1, code_len + frames_len);
	_cleanup_free_ void *xs = malloc(ARCH_XSAVE_MAX);
	if (!buf || !xs)
		return -ENOMEM;

	/* The mapping, from a stub in the vDSO's spare room (without one, from the vDSO's
	 * syscall instruction: a task let go during that call would run on with the
	 * engine's registers): signals blocked so that none is delivered on the way, then
	 * the task's own mask and registers back at once, in this order (the stub leads
	 * home until the registers are back). */
	const uint64_t margs[6] = { 0, len, PROT_READ | PROT_EXEC, MAP_PRIVATE | MAP_ANONYMOUS,
				    (uint64_t)-1, 0 };
	if (r0->stub)
		ret = stub_call(r0, SYS_mmap, margs, &all, &res);
	else
		ret = call_at(r0, &r0->saved, r0->insn, SYS_mmap, margs, &all, &res);
	int e1 = set_mask(r0->tid, r0->own_mask);
	int e2 = arch_set_regs(r0->tid, &r0->saved);
	if (r0->stub && !e2)
		stub_clear(r0);
	if (ret || e1 || e2)
		return ret ? ret : e1 ? e1 : e2;
	if (res < 0 && res > -4096)
		return pr_errno((int)res, "rsys: map the engine's memory in %d", r0->tid);
	r0->map = (uint64_t)res;
	r0->map_len = len;
	r0->scratch_owned = true;

	/* Trampoline and frames, written before any thread is pointed at them (the mapping
	 * is not writable yet: through /proc/PID/mem). */
	arch_tramp_code(buf);
	for (size_t i = 0; i < n; i++) {
		ret = build_frame(rs[i], buf + code_len + i * fsz, r0->map + code_len + i * fsz,
				  true, xs);
		if (ret)
			return ret;
	}
	ret = rsys_poke(r0, r0->map, buf, code_len + frames_len);
	if (ret)
		return ret;
	for (size_t i = 0; i < n; i++) {
		arch_regs_t park = rs[i]->base;
		arch_set_ip_nosys(&park, r0->map + ARCH_TRAMP_RET);
		ret = arch_set_regs(rs[i]->tid, &park);
		if (!ret)
			ret = set_mask(rs[i]->tid, all);
		if (ret)
			return ret;
		rs[i]->armed = true;
		rs[i]->insn = r0->map;
	}
	/* Safe from here on: frames and scratch writable. */
	ret = rsys_call(r0, SYS_mprotect, r0->map + code_len, len - code_len,
			PROT_READ | PROT_WRITE, 0, 0, 0, &res);
	if (!ret && res < 0)
		ret = pr_errno((int)res, "rsys: make the engine's memory in %d writable", r0->tid);
	if (ret)
		return ret;
	for (size_t i = 0; i < n; i++) {
		rs[i]->scratch = r0->map + code_len + frames_len;
		rs[i]->scratch_len = scratch_len;
	}
	return handler_rules(rs, n, code_len, fsz, buf, xs);
}
