/* CPU state of every thread: general registers, the xsave area (x87/SSE/AVX/AVX-512/
 * PKRU/AMX, whatever the CPU has), fs/gs base (part of the general registers on x86_64),
 * the rseq registration, clear_child_tid, the robust futex list and the thread name.
 *
 * Threads are restored after the memory switch: the main thread runs clone3() with
 * CLONE_THREAD and set_tid as a remote syscall; with PTRACE_O_TRACECLONE the new thread
 * is attached and stopped before it executes a single instruction, its registers are
 * then simply overwritten. */
#include <dirent.h>
#include <fcntl.h>
#include <linux/futex.h>
#include <linux/prctl.h>
#include <linux/seccomp.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/ptrace.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "core/log.h"
#include "core/util.h"
#include "proc/parse.h"
#include "ptrace/ptrace.h"
#include "sys/syscalls.h"
#include "sys/uapi.h"
#include "cr/resource.h"
#include "task/task.h"

#define SCR_CLONE 0    /* scratch offsets used here */
#define SCR_TID 256
#define SCR_NAME 512
#define SCR_SS 1024
#define SCR_SIGINFO 2048

static int get_rseq(pid_t tid, struct stasis_rseq_config *rc)
{
	memset(rc, 0, sizeof(*rc));
	long n = ptrace(PTRACE_GET_RSEQ_CONFIGURATION, tid, (void *)sizeof(*rc), rc);
	if (n < 0)
		return pr_perror("cpu: PTRACE_GET_RSEQ_CONFIGURATION of %d", tid);
	return 0;
}

static int dump_thread(struct dump_ctx *c, size_t i, Thread *t, void *xs)
{
	struct rsys *rs = dump_thread_rs(c, i);
	pid_t tid = c->thr[i].tid;
	size_t xlen;
	int ret;

	t->tid = tid;
	/* The registers as the thread left user space (saved by the remote engine). */
	t->gpregs.data = malloc(sizeof(arch_regs_t));
	if (!t->gpregs.data)
		return -ENOMEM;
	memcpy(t->gpregs.data, &rs->saved, sizeof(arch_regs_t));
	t->gpregs.len = sizeof(arch_regs_t);

	ret = arch_get_xsave(tid, xs, &xlen);
	if (ret)
		return ret;
	t->xsave.data = malloc(xlen);
	if (!t->xsave.data)
		return -ENOMEM;
	memcpy(t->xsave.data, xs, xlen);
	t->xsave.len = xlen;

	struct stasis_rseq_config rc;
	ret = get_rseq(tid, &rc);
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

	(void)rs;

	/* The robust futex list can be read from outside. */
	void *head = NULL;
	size_t len = 0;
	if (syscall(SYS_get_robust_list, tid, &head, &len) < 0)
		return pr_perror("cpu: get_robust_list of %d", tid);
	t->has_robust_list = t->has_robust_list_len = true;
	t->robust_list = (uint64_t)(uintptr_t)head;
	t->robust_list_len = len;

	char path[64];
	snprintf(path, sizeof(path), "task/%d/status", tid);
	_cleanup_free_ char *status = read_file_at(c->procfd, path, 1 << 20, NULL);
	struct proc_status pst = { 0 };
	if (!status || proc_parse_status(status, &pst))
		return pr_perror("cpu: read status of thread %d", tid);
	t->nstid = malloc(sizeof(int32_t) * (pst.nspid_len ? pst.nspid_len : 1));
	if (!t->nstid) {
		proc_status_free(&pst);
		return -ENOMEM;
	}
	for (size_t k = 0; k < pst.nspid_len; k++)
		t->nstid[k] = pst.nspid[k];
	t->n_nstid = pst.nspid_len;
	proc_status_free(&pst);
	snprintf(path, sizeof(path), "task/%d/comm", tid);
	char *comm = read_file_at(c->procfd, path, 64, NULL);
	if (!comm)
		return pr_perror("cpu: read comm of thread %d", tid);
	comm[strcspn(comm, "\n")] = '\0';
	t->comm = comm;
	return 0;
}

int cpu_dump(struct dump_ctx *c)
{
	_cleanup_free_ void *xs = malloc(ARCH_XSAVE_MAX);
	_cleanup_free_ uint64_t *tidaddr = calloc(c->nr_thr, sizeof(uint64_t));
	if (!xs || !tidaddr)
		return -ENOMEM;
	/* clear_child_tid of every thread, in one round */
	const uint64_t tmpl[6] = { PR_GET_TID_ADDRESS };
	int ret = dump_threads_call(c, "cpu: read clear_child_tid", SYS_prctl, tmpl, 1,
				    sizeof(uint64_t), tidaddr);
	if (ret)
		return ret;
	c->core->threads = calloc(c->nr_thr, sizeof(Thread *));
	if (!c->core->threads)
		return -ENOMEM;
	for (size_t i = 0; i < c->nr_thr; i++) {
		Thread *t = calloc(1, sizeof(*t));
		if (!t)
			return -ENOMEM;
		thread__init(t);
		c->core->threads[c->core->n_threads++] = t;
		t->has_tid_address = true;
		t->tid_address = tidaddr[i];
		ret = dump_thread(c, i, t, xs);
		if (ret)
			return ret;
	}
	return 0;
}

/* Grow array @arr of @n pointers by one at its head, holding @first. */
static int put_first(void ***arr, size_t *n, void *first)
{
	void **a = realloc(*arr, (*n + 1) * sizeof(*a));
	if (!a)
		return -ENOMEM;
	memmove(a + 1, a, *n * sizeof(*a));
	a[0] = first;
	*arr = a;
	(*n)++;
	return 0;
}

/* The exited main thread: no registers, no clear_child_tid, no robust list (its exit at
 * restore must wake and touch nothing), its blocked mask (set as it enters its exit at
 * restore), name and ids. */
static Thread *zleader_thread(const struct dump_ctx *c)
{
	Thread *t = calloc(1, sizeof(*t));
	if (!t)
		return NULL;
	thread__init(t);
	t->tid = c->pid;
	t->blocked = c->zl.sig_blk;
	t->has_tid_address = t->has_robust_list = t->has_robust_list_len = true;
	t->robust_list_len = sizeof(struct robust_list_head);
	t->has_exited = t->exited = true;
	t->has_exit_code = true;
	t->exit_code = c->zl.exit_code;
	t->comm = strdup(c->zl.comm);
	t->nstid = calloc(c->zl.nspid_len ? c->zl.nspid_len : 1, sizeof(*t->nstid));
	if (!t->comm || !t->nstid) {
		protobuf_c_message_free_unpacked(&t->base, NULL);
		return NULL;
	}
	for (size_t k = 0; k < c->zl.nspid_len; k++)
		t->nstid[t->n_nstid++] = c->zl.nspid[k];
	return t;
}

int cpu_dump_zleader(struct dump_ctx *c)
{
	Core *core = c->core;
	if (!core->n_threads || (core->sched && !core->sched->n_threads) ||
	    (core->knobs && !core->knobs->n_mce_kill)) {
		pr_err("dump: pid %d: no thread state to put its exited main thread before",
		       c->pid);
		return -EINVAL;
	}
	Thread *t = zleader_thread(c);
	if (!t)
		return -ENOMEM;
	int ret = seccomp_zleader_row(core->threads, core->n_threads, &t->seccomp);
	/* what its status shows of seccomp: the filters it gets are its threads' shared ones */
	const ThreadSeccomp *sc = t->seccomp;
	bool filters = sc && sc->mode == SECCOMP_MODE_FILTER;
	if (!ret && ((sc ? (int)sc->mode : 0) != c->zl.seccomp ||
		     (filters && (int)sc->n_chain != c->zl.seccomp_filters))) {
		pr_err("pid %d: its exited main thread had other seccomp filters than its threads "
		       "share (a zombie thread-group leader): not supported",
		       c->pid);
		ret = -EOPNOTSUPP;
	}
	if (!ret)
		ret = put_first((void ***)&core->threads, &core->n_threads, t);
	if (ret) {
		protobuf_c_message_free_unpacked(&t->base, NULL);
		return ret;
	}
	/* its own scheduling settings (readable from outside, as a zombie); its MCE policy
	 * (a prctl of its own, not shown): its first thread's */
	if (core->sched) {
		ThreadSched *s = NULL;
		ret = sched_dump_thread(c->pid, &s);
		if (!ret)
			ret = put_first((void ***)&core->sched->threads, &core->sched->n_threads, s);
		if (ret && s)
			protobuf_c_message_free_unpacked(&s->base, NULL);
	}
	if (!ret && core->knobs) {
		Knobs *k = core->knobs;
		uint32_t *m = realloc(k->mce_kill, (k->n_mce_kill + 1) * sizeof(*m));
		if (!m)
			return -ENOMEM;
		memmove(m + 1, m, k->n_mce_kill * sizeof(*m));
		k->mce_kill = m;
		k->n_mce_kill++;
	}
	return ret;
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
	if (t->exited) /* a zombie leader's main thread: nothing to run (cpu_validate) */
		return t->gpregs.len || t->xsave.len ? pr_errno(-EINVAL, "image: exited main thread %d "
							       "has registers", t->tid) : 0;
	if (t->gpregs.len != sizeof(arch_regs_t)) {
		pr_err("image: registers of thread %d have %zu bytes, expected %zu", t->tid,
		       t->gpregs.len, sizeof(arch_regs_t));
		return -EINVAL;
	}
	if (!t->xsave.len || t->xsave.len > ARCH_XSAVE_MAX) {
		pr_err("image: xsave area of thread %d has %zu bytes", t->tid, t->xsave.len);
		return -EINVAL;
	}
	if (t->comm && strlen(t->comm) > 15) {
		pr_err("image: name of thread %d is too long", t->tid);
		return -EINVAL;
	}
	return 0;
}

int cpu_validate(const Core *core)
{
	if (core->n_threads < 1 || core->n_threads > 65536 || core->threads[0]->tid != core->pid) {
		pr_err("image: %zu threads in core image, the first must be the main thread",
		       core->n_threads);
		return -EINVAL;
	}
	for (size_t i = 0; i < core->n_threads; i++) {
		const Thread *t = core->threads[i];
		if (t->exited && (i || core->n_threads < 2 || t->exit_code & ~0xff00)) {
			pr_err("image: thread %d of pid %d is marked exited: only the main thread "
			       "of a process with other threads may be, with an exit status",
			       t->tid, core->pid);
			return -EINVAL;
		}
		int ret = thread_check(t);
		if (ret)
			return ret;
		for (size_t j = 0; j < i; j++)
			if (core->threads[j]->tid == core->threads[i]->tid || core->threads[i]->tid <= 0) {
				pr_err("image: thread id %d is invalid or repeated",
				       core->threads[i]->tid);
				return -EINVAL;
			}
	}
	return 0;
}

/* State only the thread itself can set, set remotely in it. */
static int thread_state_remote(struct rst_ctx *c, struct rsys *rs, const Thread *t)
{
	long r;

	bool is_main = t == c->core->threads[0]; /* others: done for all at once */
	if (t->rseq && is_main) {
		r = rsys_do(rs, "restore: register rseq", SYS_rseq, t->rseq->addr, t->rseq->len, 0,
			    t->rseq->sig, 0, 0);
		if (r < 0)
			return (int)r;
	}
	/* other threads got it from clone3 (CLONE_CHILD_CLEARTID) */
	if (t->has_tid_address && t == c->core->threads[0]) {
		r = rsys_do(rs, "restore: set clear_child_tid", SYS_set_tid_address, t->tid_address,
			    0, 0, 0, 0, 0);
		if (r < 0)
			return (int)r;
	}
	/* a new thread starts with no robust list; the main thread has the restorer's */
	if (t->has_robust_list && is_main) {
		r = rsys_do(rs, "restore: set robust futex list", SYS_set_robust_list, t->robust_list,
			    t->robust_list_len, 0, 0, 0, 0);
		if (r < 0)
			return (int)r;
	}
	/* a new thread starts with the main thread's name */
	const char *main_comm = c->core->comm;
	if (t->comm && t != c->core->threads[0] && (!main_comm || strcmp(t->comm, main_comm))) {
		char name[16] = { 0 };
		strncpy(name, t->comm, sizeof(name) - 1);
		int e = rsys_poke(rs, rs->scratch + SCR_NAME, name, sizeof(name));
		if (e)
			return e;
		r = rsys_do(rs, "restore: thread name", SYS_prctl, PR_SET_NAME, rs->scratch + SCR_NAME,
			    0, 0, 0, 0);
		if (r < 0)
			return (int)r;
	}
	if (t->altstack && t != c->core->threads[0] && !(t->altstack->flags & SS_DISABLE)) {
		stack_t ss = { .ss_sp = (void *)(uintptr_t)t->altstack->sp,
			       .ss_size = t->altstack->size,
			       .ss_flags = (int)(t->altstack->flags & SS_AUTODISARM) };
		int e = rsys_poke(rs, rs->scratch + SCR_SS, &ss, sizeof(ss));
		if (e)
			return e;
		r = rsys_do(rs, "restore: sigaltstack", SYS_sigaltstack, rs->scratch + SCR_SS, 0, 0,
			    0, 0, 0);
		if (r < 0)
			return (int)r;
	}
	return 0;
}

/* Queue a thread's pending signals from the main thread (allowed for any si_code within
 * one's own thread group). */
static int thread_pending(struct rst_ctx *c, const Thread *t)
{
	for (size_t i = 0; i < t->n_pending; i++) {
		siginfo_t si;
		if (t->pending[i]->raw.len != sizeof(si)) {
			pr_err("image: pending siginfo of thread %d is malformed", t->tid);
			return -EINVAL;
		}
		memcpy(&si, t->pending[i]->raw.data, sizeof(si));
		if (si.si_signo < 1 || si.si_signo > 64 || si.si_signo == SIGKILL ||
		    si.si_signo == SIGSTOP) {
			pr_err("image: pending signal %d of thread %d is invalid", si.si_signo, t->tid);
			return -EINVAL;
		}
		int e = rsys_poke(&c->rs, c->rs.scratch + SCR_SIGINFO, &si, sizeof(si));
		if (e)
			return e;
		/* ids as the task itself sees them (its innermost pid namespace) */
		const Thread *m = c->core->threads[0];
		pid_t tgid = m->n_nstid ? m->nstid[m->n_nstid - 1] : c->pid;
		pid_t tid = t->n_nstid ? t->nstid[t->n_nstid - 1] : t->tid;
		long r = rsys_do(&c->rs, "restore: queue a thread's pending signal",
				 SYS_rt_tgsigqueueinfo, (uint64_t)tgid, (uint64_t)tid,
				 (uint64_t)si.si_signo, c->rs.scratch + SCR_SIGINFO, 0, 0);
		if (r < 0)
			return (int)r;
	}
	return 0;
}

/* The thread whose innermost tid is @inner (the one clone3 just made), as stasis sees it;
 * 0 if none. */
static pid_t find_thread(struct rst_ctx *c, long inner)
{
	char path[64];
	snprintf(path, sizeof(path), "%d/task", c->pid);
	int dfd = openat(c->proc_dfd, path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	DIR *d = dfd >= 0 ? fdopendir(dfd) : NULL;
	pid_t found = 0;
	if (!d) {
		if (dfd >= 0)
			close(dfd);
		return 0;
	}
	for (struct dirent *de; !found && (de = readdir(d));) {
		char sp[300];
		int tid = atoi(de->d_name);
		if (tid <= 0)
			continue;
		snprintf(sp, sizeof(sp), "%s/status", de->d_name);
		char *buf = read_file_at(dirfd(d), sp, 64 << 10, NULL);
		struct proc_status st;
		if (buf && !proc_parse_status(buf, &st) && st.nspid_len &&
		    st.nspid[st.nspid_len - 1] == inner)
			found = tid;
		free(buf);
	}
	closedir(d);
	return found;
}

/* A thread created with another id at an outer level (a fork elsewhere took the one
 * stasis prepared): it calls exit itself (the process goes on), stasis reaps it. */
static int drop_thread(struct rst_ctx *c, long inner)
{
	pid_t tid = find_thread(c, inner);
	int status;
	if (!tid || pt_wait(tid, &status, PT_WAIT_TIMEOUT_MS)) {
		pr_err("restore: cannot find the thread created as %ld", inner);
		return -ESRCH;
	}
	struct rsys rs;
	long r;
	int ret = rsys_init_insn(&rs, tid, c->rs.insn, c->rs.scratch, c->rs.scratch_len);
	if (!ret)
		ret = rsys_call(&rs, SYS_exit, 0, 0, 0, 0, 0, 0, &r);
	if (ret != -ESRCH) {
		pr_err("restore: the thread created as %ld did not exit", inner);
		return ret ? ret : -EIO;
	}
	log_reset_first_error();
	return 0;
}

/* One clone3 of the thread in the task: 0, -errno, or 1: it was created with another
 * outer id and dropped (prepare the levels again and retry). */
static int clone_thread(struct rst_ctx *c, const Thread *t, struct stasis_clone_args *ca,
			const pid_t *ids, size_t nids, int skip)
{
	pid_t want = t->tid;
	int ret = rsys_poke(&c->rs, c->rs.scratch + SCR_TID, ids, nids * sizeof(pid_t));
	if (!ret)
		ret = rsys_poke(&c->rs, c->rs.scratch + SCR_CLONE, ca, sizeof(*ca));
	if (ret)
		return ret;
	long r;
	ret = rsys_call(&c->rs, __NR_clone3, c->rs.scratch + SCR_CLONE, sizeof(*ca), 0, 0, 0, 0,
			&r);
	if (ret)
		return ret;
	if (r < 0) {
		if (r == -EEXIST)
			pr_err("restore: thread id %d is already in use", want);
		else
			pr_err("restore: create thread %d: %s", want, strerror((int)-r));
		return (int)r;
	}
	if (r != ids[0]) {
		pr_err("restore: thread %d created as %ld", want, r);
		return -EINVAL;
	}
	if (skip) {
		/* the outer ids came from ns_last_pid: another fork may have taken one first */
		char path[64];
		snprintf(path, sizeof(path), "%d/task/%d", c->pid, want);
		if (faccessat(c->proc_dfd, path, F_OK, 0)) {
			pr_info("restore: thread %d got another id in an outer pid namespace (a fork "
				"took it meanwhile): retry",
				want);
			ret = drop_thread(c, r);
			return ret ? ret : 1;
		}
	}
	return 0;
}

static int create_thread(struct rst_ctx *c, const Thread *t, struct rsys *out)
{
	pid_t want = t->tid;
	/* the tid at every pid-namespace level, innermost first */
	pid_t ids[PROC_MAX_NS_LEVEL];
	size_t nids = t->n_nstid ? t->n_nstid : 1;
	if (nids > PROC_MAX_NS_LEVEL)
		return -EINVAL;
	for (size_t k = 0; k < nids; k++)
		ids[k] = t->n_nstid ? t->nstid[t->n_nstid - 1 - k] : want;
	/* levels the task has no rights over (a task in a user namespace: the pid namespaces
	 * above its own): stasis prepares them, the task sets the inner ones */
	int skip = 0;
	const int32_t one = want, *outer_first = t->n_nstid ? t->nstid : &one;
	if (c->thread_levels) {
		skip = c->thread_levels(c->tree, c->pid, outer_first, nids);
		if (skip < 0)
			return skip;
	}
	struct stasis_clone_args ca = {
		.flags = CLONE_VM | CLONE_FS | CLONE_FILES | CLONE_SIGHAND | CLONE_THREAD |
			 CLONE_SYSVSEM,
		.set_tid = (size_t)skip < nids ? c->rs.scratch + SCR_TID : 0,
		.set_tid_size = nids - (size_t)skip,
	};
	if (t->has_tid_address && t->tid_address) {
		ca.flags |= CLONE_CHILD_CLEARTID;
		ca.child_tid = t->tid_address;
	}
	int status, ret;
	for (int attempt = 0;; attempt++) {
		ret = clone_thread(c, t, &ca, ids, nids, skip);
		if (ret != 1)
			break;
		if (attempt == 8) {
			char path[32];
			snprintf(path, sizeof(path), "%d", want);
			if (!faccessat(c->proc_dfd, path, F_OK, 0))
				pr_err("restore: thread id %d is already in use", want);
			else
				pr_err("restore: thread %d: its id at an outer pid-namespace level "
				       "was taken by another fork %d times",
				       want, attempt + 1);
			return -EBUSY;
		}
		/* the taker may be short-lived: wait a little more each time */
		struct timespec ts = { 0, (long)(attempt + 1) * 25 * 1000000L };
		nanosleep(&ts, NULL);
		skip = c->thread_levels(c->tree, c->pid, outer_first, nids);
		if (skip < 0)
			return skip;
	}
	if (ret)
		return ret;
	/* Auto-attached (PTRACE_O_TRACECLONE): wait for its first stop. */
	ret = pt_wait(want, &status, PT_WAIT_TIMEOUT_MS);
	if (ret)
		return ret;
	if (!WIFSTOPPED(status)) {
		pr_err("restore: new thread %d: unexpected status 0x%x", want, status);
		return -EIO;
	}
	return rsys_init_insn(out, want, c->rs.insn, c->rs.scratch, c->rs.scratch_len);
}

int cpu_restore_threads(struct rst_ctx *c)
{
	size_t n = c->core->n_threads - 1;
	int ret;

	if (n) {
		c->trs = calloc(n, sizeof(*c->trs));
		if (!c->trs)
			return -ENOMEM;
		long opts = PTRACE_O_TRACESYSGOOD | PTRACE_O_EXITKILL | PTRACE_O_TRACECLONE;
		if (ptrace(PTRACE_SETOPTIONS, c->pid, NULL, (void *)opts) < 0)
			return pr_perror("restore: ptrace options of %d", c->pid);
	}
	/* highest tid first (threads[] is sorted by tid): where stasis rewinds an outer pid
	 * namespace's ns_last_pid for each (a task in a user namespace), a fork elsewhere
	 * meanwhile finds the tids above taken by the threads already made and lands above
	 * them all, not on a tid still to make */
	for (size_t i = n; i-- > 0;) {
		ret = create_thread(c, c->core->threads[i + 1], &c->trs[i]);
		if (ret)
			return ret;
		c->nr_trs++;
	}
	if (n) {
		long opts = PTRACE_O_TRACESYSGOOD | PTRACE_O_EXITKILL;
		if (ptrace(PTRACE_SETOPTIONS, c->pid, NULL, (void *)opts) < 0)
			return pr_perror("restore: ptrace options of %d", c->pid);
	}
	/* rseq and robust list of every new thread, each in one round for all threads */
	_cleanup_free_ struct rsys **rs = calloc(n + 1, sizeof(*rs));
	_cleanup_free_ uint64_t (*args)[6] = calloc(n + 1, sizeof(*args));
	_cleanup_free_ long *res = calloc(n + 1, sizeof(*res));
	if (!rs || !args || !res)
		return -ENOMEM;
	for (int round = 0; round < 2; round++) {
		size_t k = 0;
		for (size_t i = 0; i < n; i++) {
			const Thread *t = c->core->threads[i + 1];
			if (round == 0 && t->rseq) {
				uint64_t a[6] = { t->rseq->addr, t->rseq->len, 0, t->rseq->sig };
				memcpy(args[k], a, sizeof(a));
			} else if (round == 1 && t->has_robust_list && t->robust_list) {
				uint64_t a[6] = { t->robust_list, t->robust_list_len };
				memcpy(args[k], a, sizeof(a));
			} else {
				continue;
			}
			rs[k++] = &c->trs[i];
		}
		if (!k)
			continue;
		ret = rsys_call_vec(rs, k, round ? SYS_set_robust_list : SYS_rseq,
				    (const uint64_t(*)[6])args, res);
		if (ret)
			return ret;
		for (size_t j = 0; j < k; j++)
			if (res[j] < 0) {
				pr_err("restore: %s of thread %d: %s",
				       round ? "set robust list" : "register rseq", rs[j]->tid,
				       strerror((int)-res[j]));
				return (int)res[j];
			}
	}
	for (size_t i = 0; i < n; i++) {
		ret = thread_state_remote(c, &c->trs[i], c->core->threads[i + 1]);
		if (!ret)
			ret = thread_pending(c, c->core->threads[i + 1]);
		if (ret)
			return ret;
	}
	return 0;
}

int cpu_restore_remote(struct rst_ctx *c)
{
	return thread_state_remote(c, &c->rs, c->core->threads[0]);
}

/* The main thread of a zombie leader is left to run the exit syscall (the vDSO's
 * syscall instruction) with its status, once let go (src/cr/restore.c): the process goes
 * on in its other threads. */
static int zleader_final(struct rsys *rs, const Thread *t)
{
	const uint64_t args[6] = { (uint64_t)(t->exit_code >> 8) & 0xff };
	arch_setup_syscall(&rs->saved, rs->insn, SYS_exit, args);
	return rsys_fini(rs);
}

static int thread_final(struct rst_ctx *c, struct rsys *rs, const Thread *t)
{
	if (t->exited)
		return zleader_final(rs, t);
	int ret = arch_set_xsave(rs->tid, t->xsave.data, t->xsave.len);
	if (ret)
		return ret;
	memcpy(&rs->saved, t->gpregs.data, sizeof(arch_regs_t));
	if (arch_fixup_restart(&rs->saved))
		pr_info("restore: thread %d was in syscall %lld: it will be re-run", t->tid,
			(long long)arch_syscall_nr(&rs->saved));
	(void)c;
	/* Parks the thread inside signal delivery and sets its registers; for the main
	 * thread also unmaps the scratch area (done last: the others share it). */
	return rsys_fini(rs);
}

int cpu_restore_final(struct rst_ctx *c)
{
	size_t n = c->core->n_threads - 1;
	_cleanup_free_ struct rsys **rs = calloc(n + 1, sizeof(*rs));
	if (!rs)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++) {
		const Thread *t = c->core->threads[i + 1];
		struct rsys *r = &c->trs[i];
		int ret = arch_set_xsave(r->tid, t->xsave.data, t->xsave.len);
		if (ret)
			return ret;
		memcpy(&r->saved, t->gpregs.data, sizeof(arch_regs_t));
		if (arch_fixup_restart(&r->saved))
			pr_debug("restore: thread %d was in syscall %lld: it will be re-run", t->tid,
				 (long long)arch_syscall_nr(&r->saved));
		rs[i] = r;
	}
	/* park all other threads at once, then the main thread (it owns the scratch) */
	int ret = n ? rsys_fini_vec(rs, n) : 0;
	return ret ? ret : thread_final(c, &c->rs, c->core->threads[0]);
}

static int cpu_validate_ctx(struct rst_ctx *c)
{
	return cpu_validate(c->core);
}

/* Every thread's registers, FPU/xsave state and rseq area: dumped with the task, set
 * last at restore. */
const struct resource regs_resource = {
	.name = "registers",
	.dump = cpu_dump,
	.validate = cpu_validate_ctx,
	.final = cpu_restore_final,
};

/* The other threads, created right after the memory (their state but registers). */
const struct resource threads_resource = {
	.name = "threads",
	.remote = cpu_restore_threads,
};

/* The main thread's rseq registration and tid address: the restore child's own rseq is
 * dropped before its memory goes, the task's set at the end. */
const struct resource rseq_resource = {
	.name = "rseq and tid address",
	.prepare = cpu_restore_prepare,
	.remote = cpu_restore_remote,
};
