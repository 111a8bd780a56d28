/* Signals: dispositions (handler, flags, mask, restorer), the blocked mask, pending
 * signals with their siginfo (thread and process queues), sigaltstack.
 *
 * Dump reads the queues with PTRACE_PEEKSIGINFO and the mask with PTRACE_GETSIGMASK
 * (from outside); dispositions and the alternate stack only the task can read: remote
 * rt_sigaction / sigaltstack. While stasis works on the task every signal is blocked
 * (the orchestrator saves the mask first), so a signal arriving meanwhile just stays
 * pending and is dumped as pending. Restore installs dispositions in the child with
 * all signals blocked, queues the pending ones to itself with their original siginfo
 * (allowed for any si_code when a task signals itself), and sets the real mask last. */
#include <signal.h>
#include <string.h>
#include <sys/ptrace.h>
#include <sys/syscall.h>

#include "core/log.h"
#include "sys/syscalls.h"
#include "cr/resource.h"
#include "task/task.h"

#define NSIG_MAX 64
#define SIGINFO_SIZE 128

static int peek_queue(pid_t pid, bool shared, SigInfo ***out, size_t *nr)
{
	struct __ptrace_peeksiginfo_args a = { .off = 0, .flags = shared ? PTRACE_PEEKSIGINFO_SHARED : 0,
					     .nr = 32 };
	siginfo_t si[32];
	for (int guard = 0; guard < 1024; guard++) {
		long n = ptrace(PTRACE_PEEKSIGINFO, pid, &a, si);
		if (n < 0)
			return pr_perror("signals: PTRACE_PEEKSIGINFO of %d", pid);
		if (n == 0)
			return 0;
		SigInfo **nv = realloc(*out, (*nr + (size_t)n) * sizeof(*nv));
		if (!nv)
			return -ENOMEM;
		*out = nv;
		for (long i = 0; i < n; i++) {
			SigInfo *s = calloc(1, sizeof(*s));
			if (!s)
				return -ENOMEM;
			sig_info__init(s);
			(*out)[(*nr)++] = s;
			s->shared = shared;
			s->raw.data = malloc(SIGINFO_SIZE);
			if (!s->raw.data)
				return -ENOMEM;
			memcpy(s->raw.data, &si[i], SIGINFO_SIZE);
			s->raw.len = SIGINFO_SIZE;
		}
		a.off += (uint64_t)n;
	}
	pr_err("signals: too many pending signals in %d", pid);
	return -E2BIG;
}

/* Signals the kernel queued only because the task was traced: one it ignores (SIG_IGN,
 * or SIG_DFL for SIGCHLD, SIGURG, SIGWINCH, SIGCONT) and does not block is queued to a
 * traced task (its tracer may want to see it) but dropped when it is sent to a task
 * that is not, and dropped again when dequeued; a child exiting while its parent was
 * already frozen leaves such a SIGCHLD. Not state of the task: not carried (@blocked:
 * the receiving thread's mask; the dispositions are read). */
static void drop_ignored(const Core *core, uint64_t blocked, SigInfo **q, size_t *n)
{
	const uint64_t dfl_ign = (1ULL << (SIGCHLD - 1)) | (1ULL << (SIGURG - 1)) |
				 (1ULL << (SIGWINCH - 1)) | (1ULL << (SIGCONT - 1));
	size_t k = 0;
	for (size_t i = 0; i < *n; i++) {
		siginfo_t si;
		memcpy(&si, q[i]->raw.data, sizeof(si));
		int sig = si.si_signo;
		bool ignored = false;
		for (size_t a = 0; a < core->n_sigactions && sig >= 1 && sig <= NSIG_MAX; a++) {
			const SigAction *sa = core->sigactions[a];
			if (sa->sig != (uint32_t)sig)
				continue;
			uint64_t bit = 1ULL << (sig - 1);
			ignored = !(blocked & bit) &&
				  (sa->handler == (uint64_t)(uintptr_t)SIG_IGN ||
				   (sa->handler == (uint64_t)(uintptr_t)SIG_DFL && (dfl_ign & bit)));
		}
		if (ignored)
			sig_info__free_unpacked(q[i], NULL);
		else
			q[k++] = q[i];
	}
	*n = k;
}

/* Per-thread: blocked mask, thread queue, alternate stack (read beforehand). */
static int thread_dump(struct dump_ctx *c, size_t i, Thread *t, const stack_t *sss)
{
	/* The mask saved by the orchestrator before it blocked everything. */
	t->blocked = c->thr[i].saved_sigmask;
	int ret = peek_queue(c->thr[i].tid, false, &t->pending, &t->n_pending);
	if (ret)
		return ret;
	drop_ignored(c->core, t->blocked, t->pending, &t->n_pending);

	stack_t ss = sss[i];
	t->altstack = calloc(1, sizeof(SigAltStack));
	if (!t->altstack)
		return -ENOMEM;
	sig_alt_stack__init(t->altstack);
	t->altstack->sp = (uint64_t)(uintptr_t)ss.ss_sp;
	t->altstack->size = ss.ss_size;
	t->altstack->flags = (uint32_t)ss.ss_flags;
	return 0;
}

int signals_dump(struct dump_ctx *c)
{
	Core *core = c->core;
	int ret;

	core->sigactions = calloc(NSIG_MAX, sizeof(SigAction *));
	if (!core->sigactions)
		return -ENOMEM;
	for (int sig = 1; sig <= NSIG_MAX; sig++) {
		struct k_sigaction ka;
		if (sig == SIGKILL || sig == SIGSTOP)
			continue;
		long r = rsys_do(&c->rs, "signals: read disposition", SYS_rt_sigaction,
				 (uint64_t)sig, 0, c->rs.scratch, 8, 0, 0);
		if (r < 0)
			return (int)r;
		ret = rsys_peek(&c->rs, c->rs.scratch, &ka, sizeof(ka));
		if (ret)
			return ret;
		SigAction *sa = calloc(1, sizeof(*sa));
		if (!sa)
			return -ENOMEM;
		sig_action__init(sa);
		core->sigactions[core->n_sigactions++] = sa;
		sa->sig = (uint32_t)sig;
		sa->handler = ka.handler;
		sa->flags = ka.flags;
		sa->restorer = ka.restorer;
		sa->mask = ka.mask;
	}

	ret = peek_queue(c->ospid, true, &core->shared_pending, &core->n_shared_pending);
	if (ret)
		return ret;
	drop_ignored(core, c->thr[0].saved_sigmask, core->shared_pending,
		     &core->n_shared_pending);
	_cleanup_free_ stack_t *sss = calloc(c->nr_thr, sizeof(stack_t));
	if (!sss)
		return -ENOMEM;
	const uint64_t tmpl[6] = { 0 };
	ret = dump_threads_call(c, "signals: read sigaltstack", SYS_sigaltstack, tmpl, 1,
				sizeof(stack_t), sss);
	if (ret)
		return ret;
	for (size_t i = 0; i < c->nr_thr; i++) {
		ret = thread_dump(c, i, core->threads[i], sss);
		if (ret)
			return ret;
	}
	return 0;
}

static int queue_pending(SigInfo **q, size_t n, pid_t pid)
{
	for (size_t i = 0; i < n; i++) {
		siginfo_t si;
		if (q[i]->raw.len != SIGINFO_SIZE) {
			pr_err("image: pending siginfo of %zu bytes", q[i]->raw.len);
			return -EINVAL;
		}
		memcpy(&si, q[i]->raw.data, SIGINFO_SIZE);
		if (si.si_signo < 1 || si.si_signo > NSIG_MAX || si.si_signo == SIGKILL ||
		    si.si_signo == SIGSTOP) {
			pr_err("image: pending signal %d is invalid", si.si_signo);
			return -EINVAL;
		}
		/* ids as the task sees them (it may be in a pid namespace of its own) */
		(void)pid;
		pid_t me = getpid();
		int r = q[i]->shared ? sys_rt_sigqueueinfo(me, si.si_signo, &si)
				     : sys_rt_tgsigqueueinfo(me, sys_gettid(), si.si_signo, &si);
		if (r < 0)
			return pr_perror("restore: queue pending signal %d", si.si_signo);
	}
	return 0;
}

int signals_restore_child(struct rst_ctx *c)
{
	const Core *core = c->core;
	const Thread *t = core->threads[0];
	sigset_t all;

	/* Nothing may reach the child's (still stasis) code from now on. */
	sigfillset(&all);
	if (sigprocmask(SIG_SETMASK, &all, NULL) < 0)
		return pr_perror("restore: block signals");
	for (size_t i = 0; i < core->n_sigactions; i++) {
		const SigAction *sa = core->sigactions[i];
		struct k_sigaction ka = { .handler = sa->handler,
					  .flags = sa->flags,
					  .restorer = sa->restorer,
					  .mask = sa->mask };
		if (sa->sig < 1 || sa->sig > NSIG_MAX || sa->sig == SIGKILL || sa->sig == SIGSTOP) {
			pr_err("image: disposition for invalid signal %u", sa->sig);
			return -EINVAL;
		}
		if (syscall(SYS_rt_sigaction, sa->sig, &ka, NULL, 8) < 0)
			return pr_perror("restore: set disposition of signal %u", sa->sig);
	}
	if (t->altstack) {
		stack_t ss = { .ss_sp = (void *)(uintptr_t)t->altstack->sp,
			       .ss_size = t->altstack->size,
			       .ss_flags = (int)(t->altstack->flags & SS_AUTODISARM) };
		if (!(t->altstack->flags & SS_DISABLE) && sigaltstack(&ss, NULL) < 0)
			return pr_perror("restore: set sigaltstack %llx+%llu",
					 (unsigned long long)t->altstack->sp,
					 (unsigned long long)t->altstack->size);
	}
	int ret = queue_pending(core->shared_pending, core->n_shared_pending, c->pid);
	if (!ret)
		ret = queue_pending(t->pending, t->n_pending, c->pid);
	return ret;
}

int signals_restore_final(struct rst_ctx *c)
{
	for (size_t i = 0; i < c->core->n_threads; i++) {
		pid_t tid = rst_thread_rs(c, i)->tid;
		/* (an exited main thread runs nothing but its exit: it gets its own mask as
		 * it enters it, src/cr/restore.c) */
		const Thread *t = c->core->threads[i];
		uint64_t mask = t->exited ? ~0ULL : t->blocked;
		mask &= ~((1ULL << (SIGKILL - 1)) | (1ULL << (SIGSTOP - 1)));
		if (ptrace(PTRACE_SETSIGMASK, tid, (void *)sizeof(mask), &mask) < 0)
			return pr_perror("restore: set blocked signals of %d", tid);
	}
	return 0;
}

const struct resource signals_resource = {
	.name = "signals",
	.dump = signals_dump,
	.child = signals_restore_child,
	.final = signals_restore_final,
};
