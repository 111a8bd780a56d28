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
#include "ptrace/ptrace.h"

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
		arch_regs_t regs = rs[i]->saved;
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

int rsys_fini_vec(struct rsys *const *rs, size_t n)
{
	int ret = 0, status;

	for (size_t i = 0; i < n; i++) {
		if (rs[i]->scratch_owned) {
			pr_err("rsys: rsys_fini_vec on a scratch owner");
			return -EINVAL;
		}
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

int rsys_call(struct rsys *r, long nr, uint64_t a0, uint64_t a1, uint64_t a2, uint64_t a3,
	      uint64_t a4, uint64_t a5, long *ret)
{
	arch_regs_t regs = r->saved;
	const uint64_t args[6] = { a0, a1, a2, a3, a4, a5 };
	int err;

	arch_setup_syscall(&regs, r->insn, nr, args);
	err = arch_set_regs(r->tid, &regs);
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
	long res;

	if (r->scratch_owned) {
		ret = rsys_call(r, SYS_munmap, r->scratch, r->scratch_len, 0, 0, 0, 0, &res);
		if (!ret && res < 0)
			pr_warn("rsys: unmap scratch of %d: %s", r->tid, strerror((int)-res));
		r->scratch_owned = false;
	}
	if (r->in_syscall_stop) {
		int e = pt_stop_in_signal_path(r->tid);
		if (e)
			return e;
		r->in_syscall_stop = false;
	}
	int e = arch_set_regs(r->tid, &r->saved);
	return ret ? ret : e;
}
