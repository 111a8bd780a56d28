/* Seccomp, per thread: strict mode, or filter mode with its stack of filters.
 *
 * Dump: the mode from /proc/PID/task/TID/status; in filter mode every filter of the
 * thread's stack (PTRACE_SECCOMP_GET_FILTER: index 0 is the oldest on this kernel) with
 * the flags the kernel keeps for it (PTRACE_GET_SECCOMP_METADATA: SECCOMP_FILTER_FLAG_LOG,
 * the only one it reports). Both need
 * CAP_SYS_ADMIN in the initial user namespace and a dumper not itself under seccomp: a
 * stasis without them refuses the task. Programs are stored once for the whole tree
 * (seccomp.img); each thread lists its chain, oldest first (Thread.seccomp).
 *
 * Sharing. The kernel shows no identity of a filter, only its program: threads (and
 * processes) whose chains start with the same programs are taken to share those filters
 * (a thread inherits its creator's filters; SECCOMP_FILTER_FLAG_TSYNC gives every thread
 * of a process the caller's). Between processes sharing cannot be observed. Inside a
 * process it can (a later TSYNC succeeds only if every other thread's filter is an
 * ancestor of the caller's), so the prefix every thread shares is installed once by the
 * main thread with TSYNC (every thread then holds the same filter objects), and the rest
 * of each chain by its thread. A prefix only some of the threads share cannot be made
 * shared again (TSYNC reaches every thread): refused at dump.
 *
 * Restore: right after the threads exist and before the credentials (the task is still
 * root of its user namespace, so no_new_privs is not needed to install a filter; the
 * credentials and no_new_privs come afterwards, as dumped), every thread of the process
 * gets PTRACE_O_SUSPEND_SECCOMP (the filters do not apply to it while stasis traces it:
 * every later remote syscall of the restore runs unfiltered; the option goes with the
 * detach, so the filters apply from the task's first instruction), then the chains are
 * installed with SECCOMP_FILTER_FLAG_SPEC_ALLOW (the task's speculation controls are
 * not changed as a side effect: a task whose controls differ from the machine's is
 * refused by src/task/knobs.c) and strict mode is entered. PTRACE_O_SUSPEND_SECCOMP needs
 * CAP_SYS_ADMIN in the initial user namespace too.
 *
 * Refused: a filter that can return SECCOMP_RET_USER_NOTIF (user notification: whether
 * it has a listener, and where, cannot be read from outside) or whose return value is
 * computed (BPF_RET | BPF_A). */
#include <errno.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ptrace.h>
#include <sys/syscall.h>

#include "core/log.h"
#include "cr/resource.h"
#include "proc/parse.h"
#include "task/task.h"

#define SC_MAX_INSNS 4096 /* BPF_MAXINSNS: one filter */
#define SC_MAX_PATH 32768 /* MAX_INSNS_PER_PATH: a chain, each filter counting 4 more */
#define SC_MAX_DEPTH (SC_MAX_PATH / 5)
#define SC_MAX_FILTERS 65536 /* entries of seccomp.img */
#define SC_FLAGS_KNOWN SECCOMP_FILTER_FLAG_LOG
#define SC_INSN_SIZE sizeof(struct sock_filter)

#define SCR_FPROG 0  /* scratch: struct sock_fprog, */
#define SCR_INSNS 64 /* then the instructions */

/* Why a program cannot be carried, or NULL. */
static const char *prog_refusal(const struct sock_filter *f, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		if (f[i].code == (BPF_RET | BPF_A))
			return "computes its return value (BPF_RET|BPF_A): it may notify a listener";
		if (f[i].code == (BPF_RET | BPF_K) &&
		    (f[i].k & SECCOMP_RET_ACTION_FULL) == SECCOMP_RET_USER_NOTIF)
			return "returns SECCOMP_RET_USER_NOTIF (user notification to a listener)";
	}
	return NULL;
}

static size_t chain_prefix(const ThreadSeccomp *a, const ThreadSeccomp *b)
{
	size_t k = 0;
	while (k < a->n_chain && k < b->n_chain && a->chain[k] == b->chain[k])
		k++;
	return k;
}

static bool in_filter_mode(const Thread *t)
{
	return t->seccomp && t->seccomp->mode == SECCOMP_MODE_FILTER;
}

/* The filters every thread of the process shares (the head of every chain), installed
 * once with TSYNC; 0 unless every thread is in filter mode. */
static size_t common_prefix(Thread *const *th, size_t n)
{
	if (n < 2 || !in_filter_mode(th[0]))
		return 0;
	size_t common = th[0]->seccomp->n_chain;
	for (size_t i = 1; i < n && common; i++) {
		if (!in_filter_mode(th[i]))
			return 0;
		size_t k = chain_prefix(th[0]->seccomp, th[i]->seccomp);
		common = k < common ? k : common;
	}
	return common;
}

/* Two threads sharing more filters than every thread shares cannot be rebuilt so. */
static int check_sharing(pid_t pid, Thread *const *th, size_t n)
{
	size_t common = common_prefix(th, n);
	for (size_t i = 0; i < n; i++) {
		if (!in_filter_mode(th[i]))
			continue;
		for (size_t j = i + 1; j < n; j++) {
			if (!in_filter_mode(th[j]))
				continue;
			size_t k = chain_prefix(th[i]->seccomp, th[j]->seccomp);
			if (k > common) {
				pr_err("threads %d and %d of pid %d share %zu seccomp filters that "
				       "not every thread of the process has: not supported",
				       th[i]->tid, th[j]->tid, pid, k);
				return -EOPNOTSUPP;
			}
		}
	}
	return 0;
}

/* The row of the exited main thread of a zombie leader put before the live threads
 * @th[0..n): the filters they all share (all of the only one's), so that the shared part
 * is still installed once for all; strict mode if they are strict; else none. */
int seccomp_zleader_row(Thread *const *th, size_t n, ThreadSeccomp **out)
{
	*out = NULL;
	if (!n || !th[0]->seccomp)
		return 0;
	size_t k = n == 1 ? th[0]->seccomp->n_chain : common_prefix(th, n);
	bool strict = th[0]->seccomp->mode == SECCOMP_MODE_STRICT;
	for (size_t i = 1; i < n && strict; i++)
		strict = th[i]->seccomp && th[i]->seccomp->mode == SECCOMP_MODE_STRICT;
	if (!strict && !(in_filter_mode(th[0]) && k))
		return 0;
	ThreadSeccomp *ts = calloc(1, sizeof(*ts));
	if (!ts)
		return -ENOMEM;
	thread_seccomp__init(ts);
	if (k && !(ts->chain = calloc(k, sizeof(*ts->chain)))) {
		free(ts);
		return -ENOMEM;
	}
	ts->mode = strict ? SECCOMP_MODE_STRICT : SECCOMP_MODE_FILTER;
	for (size_t i = 0; !strict && i < k; i++)
		ts->chain[ts->n_chain++] = th[0]->seccomp->chain[i];
	*out = ts;
	return 0;
}

/* ---- dump ---------------------------------------------------------------------- */

/* The thread's mode (SECCOMP_MODE_*) and filter count from its status; -errno. */
static int thread_mode(int procfd, pid_t pid, pid_t tid, int *nfilters)
{
	char path[64];
	snprintf(path, sizeof(path), "task/%d/status", tid);
	_cleanup_free_ char *buf = read_file_at(procfd, path, 1 << 20, NULL);
	struct proc_status st;
	if (!buf)
		return pr_perror("dump: status of thread %d of pid %d", tid, pid);
	int ret = proc_parse_status(buf, &st);
	if (ret)
		return pr_errno(ret, "dump: status of thread %d of pid %d", tid, pid);
	proc_status_free(&st);
	*nfilters = st.seccomp_filters;
	return st.seccomp;
}

int seccomp_dump_suspend(struct dump_ctx *c, pid_t tid)
{
	long opts = PTRACE_O_TRACESYSGOOD | PTRACE_O_SUSPEND_SECCOMP;
	if (ptrace(PTRACE_SETOPTIONS, tid, NULL, (void *)opts) == 0)
		return 0;
	if (errno != EPERM)
		return pr_perror("dump: suspend the seccomp filters of thread %d", tid);
	/* not allowed to: fine for a thread under no seccomp */
	int nf, mode = thread_mode(c->procfd, c->pid, tid, &nf);
	if (mode <= 0)
		return mode;
	pr_err("thread %d of pid %d runs under seccomp: dumping it needs CAP_SYS_ADMIN in the "
	       "initial user namespace and a dumper not itself under seccomp (its filters must "
	       "be read and suspended while stasis works in it)",
	       tid, c->pid);
	return -EPERM;
}

/* The index of (@prog, @flags) in the tree's table, added if new; -errno. */
static long table_add(SeccompFilters **tab, struct sock_filter *prog, size_t n, uint32_t flags)
{
	SeccompFilters *t = *tab;
	if (!t) {
		t = calloc(1, sizeof(*t));
		if (!t)
			return -ENOMEM;
		seccomp_filters__init(t);
		*tab = t;
	}
	size_t len = n * SC_INSN_SIZE;
	for (size_t i = 0; i < t->n_filters; i++) {
		const SeccompFilter *f = t->filters[i];
		if (f->flags == flags && f->prog.len == len && !memcmp(f->prog.data, prog, len)) {
			free(prog);
			return (long)i;
		}
	}
	if (t->n_filters >= SC_MAX_FILTERS) {
		free(prog);
		return pr_errno(-E2BIG, "dump: more than %d distinct seccomp filters", SC_MAX_FILTERS);
	}
	SeccompFilter **nf = realloc(t->filters, (t->n_filters + 1) * sizeof(*nf));
	SeccompFilter *f = calloc(1, sizeof(*f));
	if (nf)
		t->filters = nf;
	if (!nf || !f) {
		free(f);
		free(prog);
		return -ENOMEM;
	}
	seccomp_filter__init(f);
	f->prog.data = (uint8_t *)prog;
	f->prog.len = len;
	f->has_flags = true;
	f->flags = flags;
	t->filters[t->n_filters++] = f;
	return (long)t->n_filters - 1;
}

/* Filter @k (0: the oldest) of thread @tid: its index in the table, -ENOENT past
 * the oldest, or -errno (logged). */
static long dump_filter(struct dump_ctx *c, pid_t tid, unsigned long k)
{
	long n = ptrace(PTRACE_SECCOMP_GET_FILTER, tid, (void *)k, NULL);
	if (n < 0 && errno == ENOENT)
		return -ENOENT;
	if (n < 0 && errno == EACCES) {
		pr_err("thread %d of pid %d runs under a seccomp filter: reading it "
		       "(PTRACE_SECCOMP_GET_FILTER) needs CAP_SYS_ADMIN in the initial user "
		       "namespace and a dumper not itself under seccomp",
		       tid, c->pid);
		return -EPERM;
	}
	if (n < 0)
		return pr_perror("dump: seccomp filter %lu of thread %d", k, tid);
	if (n < 1 || n > SC_MAX_INSNS)
		return pr_errno(-EIO, "dump: seccomp filter %lu of thread %d has %ld instructions",
				k, tid, n);
	struct sock_filter *prog = calloc((size_t)n, SC_INSN_SIZE);
	if (!prog)
		return -ENOMEM;
	long got = ptrace(PTRACE_SECCOMP_GET_FILTER, tid, (void *)k, prog);
	struct __ptrace_seccomp_metadata md = { .filter_off = k };
	int err = got < 0 ? errno : got != n ? EIO : 0;
	if (!err && ptrace(PTRACE_SECCOMP_GET_METADATA, tid, (void *)sizeof(md), &md) < 0)
		err = errno;
	if (err) {
		free(prog);
		return pr_errno(-err, "dump: seccomp filter %lu of thread %d changed or unreadable",
				k, tid);
	}
	const char *why = prog_refusal(prog, (size_t)n);
	if (why) {
		free(prog);
		pr_err("thread %d of pid %d runs under a seccomp filter that %s: not supported yet",
		       tid, c->pid, why);
		return -EOPNOTSUPP;
	}
	if (md.flags & ~(uint64_t)SC_FLAGS_KNOWN) {
		free(prog);
		pr_err("thread %d of pid %d: seccomp filter %lu has flags %#llx: not supported",
		       tid, c->pid, k, (unsigned long long)md.flags);
		return -EOPNOTSUPP;
	}
	return table_add(c->seccomp, prog, (size_t)n, (uint32_t)md.flags);
}

static int dump_thread_seccomp(struct dump_ctx *c, size_t i)
{
	pid_t tid = c->thr[i].tid;
	int nfilters, mode = thread_mode(c->procfd, c->pid, tid, &nfilters);
	if (mode <= SECCOMP_MODE_DISABLED)
		return mode;
	ThreadSeccomp *ts = calloc(1, sizeof(*ts));
	if (!ts)
		return -ENOMEM;
	thread_seccomp__init(ts);
	ts->mode = (uint32_t)mode;
	c->core->threads[i]->seccomp = ts;
	if (mode == SECCOMP_MODE_STRICT)
		return 0;
	/* index 0 is the oldest (get_nth_filter counts from the first installed, whatever
	 * ptrace(2) says) */
	for (unsigned long k = 0;; k++) {
		if (k >= SC_MAX_DEPTH)
			return pr_errno(-E2BIG, "dump: thread %d has over %d seccomp filters", tid,
					SC_MAX_DEPTH);
		long idx = dump_filter(c, tid, k);
		if (idx == -ENOENT)
			break;
		if (idx < 0)
			return (int)idx;
		if (ts->n_chain % 16 == 0) {
			uint32_t *nc = realloc(ts->chain, (ts->n_chain + 16) * sizeof(*nc));
			if (!nc)
				return -ENOMEM;
			ts->chain = nc;
		}
		ts->chain[ts->n_chain++] = (uint32_t)idx;
	}
	if (!ts->n_chain || (nfilters >= 0 && (size_t)nfilters != ts->n_chain))
		return pr_errno(-EIO, "dump: thread %d: %zu seccomp filters read, status says %d",
				tid, ts->n_chain, nfilters);
	return 0;
}

static int seccomp_dump(struct dump_ctx *c)
{
	bool any = false;
	for (size_t i = 0; i < c->nr_thr; i++) {
		int ret = dump_thread_seccomp(c, i);
		if (ret)
			return ret;
		any |= c->core->threads[i]->seccomp != NULL;
	}
	if (any)
		pr_info("dump: pid %d runs under seccomp", c->pid);
	return any ? check_sharing(c->pid, c->core->threads, c->core->n_threads) : 0;
}

static int seccomp_dump_tree(struct dump_tree *t)
{
	if (!t->seccomp)
		return 0;
	pr_info("dump: %zu seccomp filter programs", t->seccomp->n_filters);
	return img_write_msg(&t->img, IMG_SECCOMP, 0, &t->seccomp->base);
}

/* ---- restore ------------------------------------------------------------------- */

static int validate_table(const SeccompFilters *t)
{
	if (t->n_filters < 1 || t->n_filters > SC_MAX_FILTERS) {
		pr_err("images: seccomp.img holds %zu filters", t->n_filters);
		return -EINVAL;
	}
	for (size_t i = 0; i < t->n_filters; i++) {
		const SeccompFilter *f = t->filters[i];
		size_t n = f->prog.len / SC_INSN_SIZE;
		const char *why = NULL;
		if (f->prog.len % SC_INSN_SIZE || n < 1 || n > SC_MAX_INSNS)
			why = "its length is not 1 to 4096 instructions";
		else if (f->flags & ~(uint32_t)SC_FLAGS_KNOWN)
			why = "its flags are unknown";
		else
			why = prog_refusal((const struct sock_filter *)(const void *)f->prog.data, n);
		if (why) {
			pr_err("images: seccomp filter %zu of seccomp.img: %s", i, why);
			return -EINVAL;
		}
	}
	return 0;
}

static int validate_thread(const SeccompFilters *t, const Thread *th)
{
	const ThreadSeccomp *s = th->seccomp;
	size_t total = 0;
	bool bad = (s->mode != SECCOMP_MODE_STRICT && s->mode != SECCOMP_MODE_FILTER) ||
		   (s->mode == SECCOMP_MODE_STRICT && s->n_chain) ||
		   (s->mode == SECCOMP_MODE_FILTER && (!s->n_chain || s->n_chain > SC_MAX_DEPTH));
	for (size_t k = 0; k < s->n_chain && !bad; k++) {
		bad = s->chain[k] >= t->n_filters;
		if (!bad)
			total += t->filters[s->chain[k]]->prog.len / SC_INSN_SIZE + (k ? 4 : 0);
	}
	if (bad || total > SC_MAX_PATH) {
		pr_err("images: the seccomp state of thread %d is invalid (mode %u, %zu filters, "
		       "%zu instructions)",
		       th->tid, s->mode, s->n_chain, total);
		return -EINVAL;
	}
	return 0;
}

static bool any_seccomp(const Core *core, uint32_t mode)
{
	for (size_t i = 0; i < core->n_threads; i++)
		if (core->threads[i]->seccomp && (!mode || core->threads[i]->seccomp->mode == mode))
			return true;
	return false;
}

/* Every task stasis creates inherits its own filters: a stasis under seccomp would give
 * them to tasks that had none. */
static int check_restorer(const struct rst_ctx *c)
{
	char path[32];
	snprintf(path, sizeof(path), "%d/status", c->stasis_pid);
	_cleanup_free_ char *buf = read_file_at(c->proc_dfd, path, 1 << 20, NULL);
	struct proc_status st;
	if (!buf)
		return pr_perror("restore: read stasis's own status");
	int ret = proc_parse_status(buf, &st);
	if (ret)
		return pr_errno(ret, "restore: parse stasis's own status");
	proc_status_free(&st);
	if (st.seccomp) {
		pr_err("restore: stasis itself runs under seccomp (mode %d): the tasks it creates "
		       "would inherit its filters",
		       st.seccomp);
		return -EPERM;
	}
	return 0;
}

static int seccomp_validate(struct rst_ctx *c)
{
	static const SeccompFilters none = SECCOMP_FILTERS__INIT;
	const SeccompFilters *t = &none;
	int err = check_restorer(c);
	if (err)
		return err;
	if (any_seccomp(c->core, SECCOMP_MODE_FILTER)) {
		SeccompFilters *f = img_read_msg(c->img_dfd, IMG_SECCOMP, 0);
		if (!f)
			return -errno;
		c->priv[RES_PRIV_SECCOMP] = f;
		t = f;
		int ret = validate_table(t);
		if (ret)
			return ret;
	}
	for (size_t i = 0; i < c->core->n_threads; i++) {
		int ret = c->core->threads[i]->seccomp ? validate_thread(t, c->core->threads[i]) : 0;
		if (ret)
			return ret;
	}
	return check_sharing(c->pid, c->core->threads, c->core->n_threads);
}

static int install(struct rst_ctx *c, struct rsys *rs, const SeccompFilter *f, unsigned int flags)
{
	struct sock_fprog fp = {
		.len = (unsigned short)(f->prog.len / SC_INSN_SIZE),
		.filter = (struct sock_filter *)(uintptr_t)(c->rs.scratch + SCR_INSNS),
	};
	if (SCR_INSNS + f->prog.len > c->rs.scratch_len)
		return pr_errno(-ENOSPC, "restore: no scratch room for a seccomp filter");
	int ret = rsys_poke(rs, c->rs.scratch + SCR_FPROG, &fp, sizeof(fp))
			  ?: rsys_poke(rs, c->rs.scratch + SCR_INSNS, f->prog.data, f->prog.len);
	if (ret)
		return ret;
	flags |= SECCOMP_FILTER_FLAG_SPEC_ALLOW | (f->flags & SECCOMP_FILTER_FLAG_LOG);
	long r = rsys_do(rs, "restore: install a seccomp filter", SYS_seccomp,
			 SECCOMP_SET_MODE_FILTER, flags, c->rs.scratch + SCR_FPROG, 0, 0, 0);
	if (r > 0) /* TSYNC: that thread could not take the filter */
		return pr_errno(-EBUSY,
				"restore: thread %ld of pid %d did not take the seccomp "
				"filters of the process",
				r, c->pid);
	return r < 0 ? (int)r : 0;
}

/* The filters apply to no thread of the process while stasis traces it. */
static int suspend_filters(struct rst_ctx *c)
{
	long opts = PTRACE_O_TRACESYSGOOD | PTRACE_O_EXITKILL | PTRACE_O_SUSPEND_SECCOMP;
	for (size_t i = 0; i < c->core->n_threads; i++) {
		pid_t tid = rst_thread_rs(c, i)->tid;
		if (ptrace(PTRACE_SETOPTIONS, tid, NULL, (void *)opts) == 0)
			continue;
		if (errno == EPERM) {
			pr_err("pid %d runs under seccomp: restoring it needs "
			       "PTRACE_O_SUSPEND_SECCOMP, that is CAP_SYS_ADMIN in the initial user "
			       "namespace and a stasis not itself under seccomp",
			       c->pid);
			return -EPERM;
		}
		return pr_perror("restore: suspend the seccomp filters of thread %d", tid);
	}
	return 0;
}

static int seccomp_restore_remote(struct rst_ctx *c)
{
	const SeccompFilters *t = c->priv[RES_PRIV_SECCOMP]; /* NULL: no filter mode */
	Thread *const *th = c->core->threads;
	size_t n = c->core->n_threads;
	if (!any_seccomp(c->core, 0))
		return 0;
	int ret = suspend_filters(c);
	if (ret)
		return ret;
	/* what every thread shares: installed once, every thread takes it (TSYNC) */
	size_t common = common_prefix(th, n);
	for (size_t k = 0; k < common && !ret; k++)
		ret = install(c, &c->rs, t->filters[th[0]->seccomp->chain[k]],
			      SECCOMP_FILTER_FLAG_TSYNC);
	for (size_t i = 0; i < n && !ret; i++) {
		const ThreadSeccomp *s = th[i]->seccomp;
		struct rsys *rs = rst_thread_rs(c, i);
		if (!s)
			continue;
		if (s->mode == SECCOMP_MODE_STRICT) {
			long r = rsys_do(rs, "restore: enter seccomp strict mode", SYS_seccomp,
					 SECCOMP_SET_MODE_STRICT, 0, 0, 0, 0, 0);
			ret = r < 0 ? (int)r : 0;
			continue;
		}
		for (size_t k = common; k < s->n_chain && !ret; k++)
			ret = install(c, rs, t->filters[s->chain[k]], 0);
	}
	return ret;
}

static void seccomp_release(struct rst_ctx *c)
{
	if (c->priv[RES_PRIV_SECCOMP])
		seccomp_filters__free_unpacked(c->priv[RES_PRIV_SECCOMP], NULL);
	c->priv[RES_PRIV_SECCOMP] = NULL;
}

const struct resource seccomp_resource = {
	.name = "seccomp",
	.dump = seccomp_dump,
	.dump_tree = seccomp_dump_tree,
	.validate = seccomp_validate,
	.remote = seccomp_restore_remote,
	.release = seccomp_release,
};
