/* prctl settings that belong to no other module: the machine-check kill policy of every
 * thread (PR_MCE_KILL), memory-deny-write-execute (PR_SET_MDWE: set last, once the
 * memory is rebuilt, as it would refuse the restore's own mprotect to executable) and
 * KSM for the whole address space (PR_SET_MEMORY_MERGE, which needs CAP_SYS_RESOURCE to
 * set), the core dump filter (/proc/PID/coredump_filter, written by the restorer), and
 * the membarrier registrations of the address space (a runtime that registered for
 * MEMBARRIER_CMD_PRIVATE_EXPEDITED gets EPERM from it without: .NET, liburcu; read with
 * MEMBARRIER_CMD_GET_REGISTRATIONS, which kernels before 6.3 lack: nothing is carried
 * then), and the NUMA memory policy of every thread (set_mempolicy: `numactl
 * --interleave`; the policies of single areas, mbind, are not seen). Read and set by the
 * task itself with remote prctl, membarrier and mempolicy calls. Speculation controls
 * (PR_{GET,SET}_SPECULATION_CTRL) are not carried: a task that changed one is refused,
 * one whose mitigation the kernel does not let it control keeps the machine's. */
#include <errno.h>
#include <fcntl.h>
#include <linux/membarrier.h>
#include <linux/mempolicy.h>
#include <string.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "core/log.h"
#include "core/util.h"
#include "cr/resource.h"
#include "sys/uapi.h"
#include "task/task.h"

#define SPEC_KINDS 3 /* store bypass, indirect branch, L1D flush */

static long rprctl(struct rsys *rs, const char *what, long op, uint64_t a, uint64_t b)
{
	return rsys_do(rs, what, SYS_prctl, (uint64_t)op, a, b, 0, 0, 0);
}

/* A speculation control the task set itself (the kernel lets it: PR_SPEC_PRCTL) is not
 * carried yet: refuse instead of restoring the machine's default. */
static int check_spec(struct dump_ctx *c, size_t i)
{
	struct rsys *rs = dump_thread_rs(c, i);
	for (long k = 0; k < SPEC_KINDS; k++) {
		long v = rprctl(rs, "dump: PR_GET_SPECULATION_CTRL", PR_GET_SPECULATION_CTRL,
				(uint64_t)k, 0);
		if (v < 0 || !(v & PR_SPEC_PRCTL))
			continue; /* not controllable by the task: the machine's */
		if (v != (PR_SPEC_PRCTL | PR_SPEC_ENABLE)) {
			pr_err("thread %d of pid %d set speculation control %ld to %#lx: not "
			       "supported yet",
			       c->thr[i].tid, c->pid, k, v);
			return -EOPNOTSUPP;
		}
	}
	return 0;
}

#define NODEMASK_BYTES 128 /* 1024 nodes: MAX_NUMNODES of any configuration */
#define MPOL_MODES 7        /* MPOL_DEFAULT .. MPOL_WEIGHTED_INTERLEAVE */

/* The nodemask of thread @i's policy: get_mempolicy again with a mask. */
static int thread_nodemask(struct dump_ctx *c, size_t i, MemPolicy *m)
{
	struct rsys *rs = dump_thread_rs(c, i);
	uint8_t mask[NODEMASK_BYTES];
	long r = rsys_do(rs, "dump: get_mempolicy", SYS_get_mempolicy, 0, rs->scratch,
			 NODEMASK_BYTES * 8 + 1, 0, 0, 0);
	int ret = r < 0 ? (int)r : rsys_peek(rs, rs->scratch, mask, sizeof(mask));
	if (ret)
		return pr_errno(ret, "dump: the NUMA policy of thread %d of pid %d", rs->tid,
				c->pid);
	size_t len = sizeof(mask);
	while (len && !mask[len - 1])
		len--;
	if (!len)
		return 0;
	m->nodemask.data = malloc(len);
	if (!m->nodemask.data)
		return -ENOMEM;
	memcpy(m->nodemask.data, mask, len);
	m->nodemask.len = len;
	m->has_nodemask = true;
	return 0;
}

/* Every thread's NUMA memory policy, when one is not the default: the modes in one call
 * across the threads, then the masks of those that have one. */
static int mempolicy_dump(struct dump_ctx *c, Knobs *k)
{
	if (syscall(SYS_get_mempolicy, NULL, NULL, 0, NULL, 0) < 0 && errno == ENOSYS)
		return 0; /* a kernel without NUMA (asked here: the task's is the same) */
	_cleanup_free_ uint64_t *mode = calloc(c->nr_thr, sizeof(*mode));
	static const uint64_t tmpl[6] = { 0 };
	int ret = mode ? dump_threads_call(c, "dump: get_mempolicy", SYS_get_mempolicy, tmpl, 0,
					   sizeof(*mode), mode)
		       : -ENOMEM;
	bool any = false;
	for (size_t i = 0; !ret && i < c->nr_thr; i++)
		any |= (uint32_t)mode[i] != MPOL_DEFAULT;
	if (ret || !any)
		return ret;
	k->mempolicy = calloc(c->nr_thr, sizeof(*k->mempolicy));
	if (!k->mempolicy)
		return -ENOMEM;
	for (size_t i = 0; i < c->nr_thr && !ret; i++) {
		MemPolicy *m = malloc(sizeof(*m));
		if (!m)
			return -ENOMEM;
		mem_policy__init(m);
		k->mempolicy[k->n_mempolicy++] = m;
		m->mode = (uint32_t)mode[i];
		if (m->mode != MPOL_DEFAULT)
			ret = thread_nodemask(c, i, m);
	}
	return ret;
}

int knobs_dump(struct dump_ctx *c)
{
	Knobs *k = calloc(1, sizeof(*k));
	if (!k)
		return -ENOMEM;
	knobs__init(k);
	c->core->knobs = k;
	k->mce_kill = calloc(c->nr_thr, sizeof(*k->mce_kill));
	if (!k->mce_kill)
		return -ENOMEM;
	for (size_t i = 0; i < c->nr_thr; i++) {
		long v = rprctl(dump_thread_rs(c, i), "dump: PR_MCE_KILL_GET", PR_MCE_KILL_GET, 0, 0);
		if (v < 0)
			return (int)v;
		k->mce_kill[k->n_mce_kill++] = (uint32_t)v;
		int ret = check_spec(c, i);
		if (ret)
			return ret;
	}
	long v = rprctl(&c->rs, "dump: PR_GET_MDWE", PR_GET_MDWE, 0, 0);
	k->mdwe = v < 0 ? 0 : (uint32_t)v; /* (EINVAL: a kernel without it) */
	v = rprctl(&c->rs, "dump: PR_GET_MEMORY_MERGE", PR_GET_MEMORY_MERGE, 0, 0);
	k->ksm_merge = v < 0 ? 0 : (uint32_t)v;
	/* which mappings a core dump holds: a mm flag, inherited, only set through /proc */
	_cleanup_free_ char *cf = read_file_at(c->procfd, "coredump_filter", 64, NULL);
	char *end = NULL;
	unsigned long f = cf ? strtoul(cf, &end, 16) : 0;
	if (!cf || end == cf || f > UINT32_MAX)
		return pr_perror("dump: /proc/%d/coredump_filter", c->pid);
	k->has_coredump_filter = true;
	k->coredump_filter = (uint32_t)f;
	long r = rsys_do(&c->rs, "dump: membarrier registrations", SYS_membarrier,
			 STASIS_MEMBARRIER_CMD_GET_REGISTRATIONS, 0, 0, 0, 0, 0);
	k->has_membarrier = r >= 0; /* (EINVAL: a kernel that cannot say) */
	k->membarrier = r < 0 ? 0 : (uint32_t)r;
	return mempolicy_dump(c, k);
}

#define MEMBARRIER_REGISTRATIONS                                                           \
	(MEMBARRIER_CMD_REGISTER_GLOBAL_EXPEDITED | MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED | \
	 MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED_SYNC_CORE |                                 \
	 MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED_RSEQ)

/* The address space's membarrier registrations: each one of @want it lacks. */
static int set_membarrier(struct rst_ctx *c, uint32_t want)
{
	long have = rsys_do(&c->rs, "restore: membarrier registrations", SYS_membarrier,
			    STASIS_MEMBARRIER_CMD_GET_REGISTRATIONS, 0, 0, 0, 0, 0);
	if (have < 0)
		return pr_errno((int)have, "restore: pid %d: the membarrier registrations %#x "
					   "cannot be checked on this kernel",
				c->pid, want);
	for (uint32_t bit = 1; bit && bit <= want; bit <<= 1) {
		if (!(want & bit) || (have & bit))
			continue;
		long r = rsys_do(&c->rs, "restore: membarrier register", SYS_membarrier, bit, 0, 0,
				 0, 0, 0);
		if (r < 0)
			return pr_errno((int)r, "restore: pid %d: membarrier registration %#x",
					c->pid, bit);
	}
	return 0;
}

/* The restorer's /proc/PID/coredump_filter of the new task set to the image's (the task
 * inherited the restorer's). */
static int set_coredump_filter(const struct rst_ctx *c, uint32_t want)
{
	char path[64], buf[32];
	snprintf(path, sizeof(path), "/proc/%d/coredump_filter", c->pid);
	_cleanup_close_ int fd = open(path, O_RDWR | O_CLOEXEC);
	if (fd < 0)
		return pr_perror("restore: %s", path);
	ssize_t n = pread(fd, buf, sizeof(buf) - 1, 0);
	if (n > 0) {
		buf[n] = 0;
		if (strtoul(buf, NULL, 16) == want)
			return 0;
	}
	int len = snprintf(buf, sizeof(buf), "%#x", want);
	if (pwrite(fd, buf, (size_t)len, 0) != len)
		return pr_perror("restore: pid %d: coredump_filter %#x", c->pid, want);
	return 0;
}

static int knobs_validate(struct rst_ctx *c)
{
	const Knobs *k = c->core->knobs;
	bool bad = k && (k->n_mce_kill != c->core->n_threads ||
			 (k->mdwe & ~(uint32_t)(PR_MDWE_REFUSE_EXEC_GAIN | PR_MDWE_NO_INHERIT)) ||
			 k->ksm_merge > 1 || (k->membarrier & ~(uint32_t)MEMBARRIER_REGISTRATIONS));
	for (size_t i = 0; k && !bad && i < k->n_mce_kill; i++)
		bad = k->mce_kill[i] > PR_MCE_KILL_DEFAULT;
	bad = bad || (k && k->n_mempolicy && k->n_mempolicy != c->core->n_threads);
	for (size_t i = 0; k && !bad && i < k->n_mempolicy; i++) {
		const MemPolicy *m = k->mempolicy[i];
		bad = (m->mode & ~(uint32_t)MPOL_MODE_FLAGS) >= MPOL_MODES ||
		      (m->has_nodemask && m->nodemask.len > NODEMASK_BYTES);
	}
	if (bad) {
		pr_err("image: prctl settings of pid %d are invalid", c->pid);
		return -EINVAL;
	}
	return 0;
}

/* Thread @i's NUMA memory policy, set by the thread itself. */
static int set_mempolicy_of(struct rst_ctx *c, size_t i, const MemPolicy *m)
{
	struct rsys *rs = rst_thread_rs(c, i);
	size_t len = m->has_nodemask ? m->nodemask.len : 0;
	int ret = len ? rsys_poke(rs, rs->scratch, m->nodemask.data, len) : 0;
	long r = ret ? ret : rsys_do(rs, "restore: set_mempolicy", SYS_set_mempolicy, m->mode,
				     len ? rs->scratch : 0, len ? len * 8 + 1 : 0, 0, 0, 0);
	if (r < 0)
		return pr_errno((int)r, "restore: thread %d of pid %d: NUMA memory policy %#x",
				rs->tid, c->pid, m->mode);
	return 0;
}

/* After the memory (MDWE would refuse its mprotect calls) and the threads. */
static int knobs_remote(struct rst_ctx *c)
{
	const Knobs *k = c->core->knobs;
	if (!k)
		return 0;
	for (size_t i = 0; i < k->n_mce_kill; i++) {
		struct rsys *rs = rst_thread_rs(c, i);
		long r = rprctl(rs, "restore: PR_MCE_KILL_GET", PR_MCE_KILL_GET, 0, 0);
		if (r == (long)k->mce_kill[i])
			continue;
		if (k->mce_kill[i] == PR_MCE_KILL_DEFAULT)
			r = rprctl(rs, "restore: PR_MCE_KILL", PR_MCE_KILL, PR_MCE_KILL_CLEAR, 0);
		else
			r = rprctl(rs, "restore: PR_MCE_KILL", PR_MCE_KILL, PR_MCE_KILL_SET,
				   k->mce_kill[i]);
		if (r < 0)
			return pr_errno((int)r, "restore: pid %d: machine-check kill policy %u",
					c->pid, k->mce_kill[i]);
	}
	if (k->ksm_merge &&
	    rprctl(&c->rs, "restore: PR_GET_MEMORY_MERGE", PR_GET_MEMORY_MERGE, 0, 0) != 1) {
		long r = rprctl(&c->rs, "restore: PR_SET_MEMORY_MERGE", PR_SET_MEMORY_MERGE, 1, 0);
		if (r < 0)
			return pr_errno((int)r, "restore: pid %d: KSM for the whole process "
						"(PR_SET_MEMORY_MERGE needs CAP_SYS_RESOURCE)",
					c->pid);
	}
	if (k->has_coredump_filter) {
		int ret = set_coredump_filter(c, k->coredump_filter);
		if (ret)
			return ret;
	}
	if (k->membarrier) {
		int ret = set_membarrier(c, k->membarrier);
		if (ret)
			return ret;
	}
	for (size_t i = 0; i < k->n_mempolicy; i++) {
		int ret = k->mempolicy[i]->mode == MPOL_DEFAULT
				  ? 0
				  : set_mempolicy_of(c, i, k->mempolicy[i]);
		if (ret)
			return ret;
	}
	if (k->mdwe) {
		long r = rprctl(&c->rs, "restore: PR_SET_MDWE", PR_SET_MDWE, k->mdwe, 0);
		if (r < 0)
			return pr_errno((int)r, "restore: pid %d: memory-deny-write-execute %#x",
					c->pid, k->mdwe);
	}
	return 0;
}

const struct resource knobs_resource = {
	.name = "prctl settings",
	.dump = knobs_dump,
	.validate = knobs_validate,
	.remote = knobs_remote,
};
