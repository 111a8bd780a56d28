/* CPU state of a thread: general registers, the xsave area (x87/SSE/AVX/AVX-512/PKRU/AMX,
 * whatever the CPU has), fs/gs base (part of the general registers on x86_64), the rseq
 * registration and the clear_child_tid address. */
#include <string.h>
#include <sys/ptrace.h>
#include <sys/syscall.h>
#include <linux/prctl.h>
#include <sys/prctl.h>

#include "core/log.h"
#include "sys/uapi.h"
#include "task/task.h"

#define STASIS_RSEQ_SIG 0x53053053

static int get_rseq(pid_t tid, struct stasis_rseq_config *rc)
{
	memset(rc, 0, sizeof(*rc));
	long n = ptrace(PTRACE_GET_RSEQ_CONFIGURATION, tid, (void *)sizeof(*rc), rc);
	if (n < 0)
		return pr_perror("cpu: PTRACE_GET_RSEQ_CONFIGURATION of %d", tid);
	return 0;
}

int cpu_dump(struct dump_ctx *c)
{
	Thread *t = calloc(1, sizeof(*t));
	_cleanup_free_ void *xs = malloc(ARCH_XSAVE_MAX);
	size_t xlen;
	int ret;

	if (!t || !xs) {
		free(t);
		return -ENOMEM;
	}
	thread__init(t);
	c->core->threads = calloc(1, sizeof(Thread *));
	if (!c->core->threads) {
		free(t);
		return -ENOMEM;
	}
	c->core->threads[0] = t;
	c->core->n_threads = 1;
	t->tid = c->pid;

	/* The registers as the task left user space (saved by the remote engine). */
	t->gpregs.data = malloc(sizeof(arch_regs_t));
	if (!t->gpregs.data)
		return -ENOMEM;
	memcpy(t->gpregs.data, &c->rs.saved, sizeof(arch_regs_t));
	t->gpregs.len = sizeof(arch_regs_t);

	ret = arch_get_xsave(c->pid, xs, &xlen);
	if (ret)
		return ret;
	t->xsave.data = malloc(xlen);
	if (!t->xsave.data)
		return -ENOMEM;
	memcpy(t->xsave.data, xs, xlen);
	t->xsave.len = xlen;

	struct stasis_rseq_config rc;
	ret = get_rseq(c->pid, &rc);
	if (ret)
		return ret;
	if (rc.rseq_abi_pointer) {
		t->rseq = calloc(1, sizeof(Rseq));
		if (!t->rseq)
			return -ENOMEM;
		rseq__init(t->rseq);
		t->rseq->addr = rc.rseq_abi_pointer;
		t->rseq->len = rc.rseq_abi_size;
		t->rseq->sig = rc.signature;
	}

	long r = rsys_do(&c->rs, "cpu: read clear_child_tid", SYS_prctl, PR_GET_TID_ADDRESS,
			 c->rs.scratch, 0, 0, 0, 0);
	if (r < 0)
		return (int)r;
	uint64_t tidaddr = 0;
	ret = rsys_peek(&c->rs, c->rs.scratch, &tidaddr, sizeof(tidaddr));
	if (ret)
		return ret;
	t->has_tid_address = true;
	t->tid_address = tidaddr;
	return 0;
}

/* The restore child is a fork of stasis: glibc registered rseq for it inside memory that
 * is about to disappear. Unregister it first, with the values the kernel reports. */
int cpu_restore_prepare(struct rst_ctx *c)
{
	struct stasis_rseq_config rc;
	int ret = get_rseq(c->pid, &rc);
	if (ret || !rc.rseq_abi_pointer)
		return ret;
	long r = rsys_do(&c->rs, "restore: unregister the restorer's rseq", SYS_rseq,
			 rc.rseq_abi_pointer, rc.rseq_abi_size, RSEQ_FLAG_UNREGISTER, rc.signature,
			 0, 0);
	return r < 0 ? (int)r : 0;
}

static int thread_check(const Thread *t)
{
	if (t->gpregs.len != sizeof(arch_regs_t)) {
		pr_err("image: registers of thread %d have %zu bytes, expected %zu", t->tid,
		       t->gpregs.len, sizeof(arch_regs_t));
		return -EINVAL;
	}
	if (!t->xsave.len || t->xsave.len > ARCH_XSAVE_MAX) {
		pr_err("image: xsave area of thread %d has %zu bytes", t->tid, t->xsave.len);
		return -EINVAL;
	}
	return 0;
}

int cpu_restore_remote(struct rst_ctx *c)
{
	const Thread *t = c->core->threads[0];
	long r;

	if (t->rseq) {
		r = rsys_do(&c->rs, "restore: register rseq", SYS_rseq, t->rseq->addr, t->rseq->len,
			    0, t->rseq->sig, 0, 0);
		if (r < 0)
			return (int)r;
	}
	if (t->has_tid_address) {
		r = rsys_do(&c->rs, "restore: set clear_child_tid", SYS_set_tid_address,
			    t->tid_address, 0, 0, 0, 0, 0);
		if (r < 0)
			return (int)r;
	}
	return 0;
}

int cpu_restore_final(struct rst_ctx *c)
{
	const Thread *t = c->core->threads[0];
	int ret = thread_check(t);
	if (ret)
		return ret;
	ret = arch_set_xsave(c->pid, t->xsave.data, t->xsave.len);
	if (ret)
		return ret;
	memcpy(&c->rs.saved, t->gpregs.data, sizeof(arch_regs_t));
	if (arch_fixup_restart(&c->rs.saved))
		pr_info("restore: task %d was in syscall %lld: it will be re-run", c->pid,
			(long long)c->rs.saved.orig_rax);
	/* Unmaps the scratch area, parks the task inside signal delivery, sets registers. */
	return rsys_fini(&c->rs);
}

int cpu_validate(const Core *core)
{
	if (core->n_threads != 1) {
		pr_err("image: %zu threads in core image; this version restores exactly one",
		       core->n_threads);
		return -EINVAL;
	}
	return thread_check(core->threads[0]);
}
