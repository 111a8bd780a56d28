/* Scheduling and memory-pressure settings of a process: per thread its policy, nice
 * value, real-time priority, SCHED_DEADLINE parameters, utilization clamps, reset-on-fork
 * flag, CPU affinity and I/O priority; per process its oom_score_adj, PR_SET_THP_DISABLE and
 * loginuid. Read from outside (sched_getattr, sched_getaffinity and ioprio_get on a tid,
 * /proc/PID/oom_score_adj); a thread's settings that differ are set by the thread itself
 * with remote calls, the OOM score from outside; the THP flag
 * is a property of the address space, set with a remote prctl once the memory is
 * rebuilt; the loginuid can only be written by the task itself, in the restore child.
 * The sessionid cannot be set by anyone: a restored task has its restorer's. */
#include <fcntl.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "core/log.h"
#include "cr/resource.h"
#include "sys/uapi.h"
#include "task/task.h"

#define AFFINITY_MAX 1024 /* bytes of CPU mask: 8192 CPUs */
#define SCHED_POLICY_MAX 6 /* SCHED_DEADLINE */
#define LOGINUID_UNSET 4294967295u
#define SCHED_FLAG_DL_BITS 0x06 /* SCHED_FLAG_RECLAIM, SCHED_FLAG_DL_OVERRUN: deadline tasks */
#define IOPRIO_WHO_PROCESS 1
#define IOPRIO_CLASS_MAX 3 /* none, RT, best effort, idle */

static int get_attr(pid_t tid, struct stasis_sched_attr *a)
{
	memset(a, 0, sizeof(*a));
	if (syscall(SYS_sched_getattr, tid, a, sizeof(*a), 0) < 0)
		return -errno;
	return 0;
}

static int read_int_file(int dirfd, const char *name, long long *out)
{
	char buf[32];
	_cleanup_close_ int fd = openat(dirfd, name, O_RDONLY | O_CLOEXEC);
	ssize_t n = fd < 0 ? -1 : read(fd, buf, sizeof(buf) - 1);
	if (n <= 0)
		return fd < 0 || n < 0 ? -errno : -EINVAL;
	buf[n] = '\0';
	char *end;
	errno = 0;
	*out = strtoll(buf, &end, 10);
	return errno || end == buf || (*end && *end != '\n') ? -EINVAL : 0;
}

int sched_dump_thread(pid_t tid, ThreadSched **out)
{
	struct stasis_sched_attr a;
	int ret = get_attr(tid, &a);
	if (ret)
		return pr_errno(ret, "dump: sched_getattr of thread %d", tid);
	ThreadSched *t = calloc(1, sizeof(*t));
	unsigned char *mask = calloc(1, AFFINITY_MAX);
	if (!t || !mask) {
		free(t);
		free(mask);
		return -ENOMEM;
	}
	thread_sched__init(t);
	*out = t;
	t->policy = a.sched_policy;
	t->flags = a.sched_flags;
	t->nice = a.sched_nice;
	t->priority = a.sched_priority;
	if (a.sched_policy == SCHED_DEADLINE) {
		t->has_dl_runtime = t->has_dl_deadline = t->has_dl_period = true;
		t->dl_runtime = a.sched_runtime;
		t->dl_deadline = a.sched_deadline;
		t->dl_period = a.sched_period;
	}
	t->has_util_min = t->has_util_max = true;
	t->util_min = a.sched_util_min;
	t->util_max = a.sched_util_max;
	long n = syscall(SYS_sched_getaffinity, tid, AFFINITY_MAX, mask);
	if (n < 0) {
		free(mask);
		return pr_perror("dump: sched_getaffinity of thread %d", tid);
	}
	t->has_affinity = true;
	t->affinity.data = mask;
	t->affinity.len = (size_t)n;
	long io = syscall(SYS_ioprio_get, IOPRIO_WHO_PROCESS, tid);
	if (io < 0)
		return pr_perror("dump: ioprio_get of thread %d", tid);
	t->has_ioprio = true;
	t->ioprio = (uint32_t)io;
	return 0;
}

int sched_dump(struct dump_ctx *c)
{
	Sched *s = calloc(1, sizeof(*s));
	if (!s)
		return -ENOMEM;
	sched__init(s);
	c->core->sched = s;
	s->threads = calloc(c->nr_thr, sizeof(*s->threads));
	if (!s->threads)
		return -ENOMEM;
	for (size_t i = 0; i < c->nr_thr; i++) {
		int ret = sched_dump_thread(c->thr[i].tid, &s->threads[i]);
		if (ret)
			return ret;
		s->n_threads = i + 1;
	}
	long long v;
	int ret = read_int_file(c->procfd, "oom_score_adj", &v);
	if (ret)
		return pr_errno(ret, "dump: read /proc/%d/oom_score_adj", c->pid);
	s->oom_score_adj = (int32_t)v;
	if (read_int_file(c->procfd, "loginuid", &v) == 0) {
		s->has_loginuid = true;
		s->loginuid = (uint32_t)v;
	}
	long thp = rsys_do(&c->rs, "dump: PR_GET_THP_DISABLE", SYS_prctl, PR_GET_THP_DISABLE, 0,
			   0, 0, 0, 0);
	if (thp < 0)
		return (int)thp;
	if (thp != 0 && thp != 1 && thp != (1 | PR_THP_DISABLE_EXCEPT_ADVISED)) {
		pr_err("pid %d: PR_GET_THP_DISABLE says %ld: not supported", c->pid, thp);
		return -EOPNOTSUPP;
	}
	s->thp_disable = (uint32_t)thp;
	return 0;
}

static int sched_validate(struct rst_ctx *c)
{
	const Sched *s = c->core->sched;
	if (!s)
		return 0; /* (an image of an older stasis would say nothing: version-checked) */
	bool bad = s->n_threads != c->core->n_threads || s->oom_score_adj < -1000 ||
		   s->oom_score_adj > 1000 ||
		   (s->thp_disable != 0 && s->thp_disable != 1 &&
		    s->thp_disable != (1 | PR_THP_DISABLE_EXCEPT_ADVISED));
	for (size_t i = 0; i < s->n_threads && !bad; i++) {
		const ThreadSched *t = s->threads[i];
		bad = t->policy > SCHED_POLICY_MAX || t->nice < -20 || t->nice > 19 ||
		      t->priority > 99 || (t->has_affinity && t->affinity.len > AFFINITY_MAX) ||
		      (t->flags & ~(uint64_t)(SCHED_FLAG_RESET_ON_FORK | SCHED_FLAG_DL_BITS)) ||
		      (t->has_ioprio && (t->ioprio >> 13 > IOPRIO_CLASS_MAX || t->ioprio & 0x1ff8));
	}
	if (bad) {
		pr_err("image: scheduling settings of pid %d are invalid", c->pid);
		return -EINVAL;
	}
	return 0;
}

/* The loginuid is written by the task itself (the kernel refuses it from any other),
 * only when it differs from the one inherited from stasis (CAP_AUDIT_CONTROL). */
static int sched_child(struct rst_ctx *c)
{
	const Sched *s = c->core->sched;
	long long cur;
	if (!s || !s->has_loginuid || read_int_file(AT_FDCWD, "/proc/self/loginuid", &cur) ||
	    (uint32_t)cur == s->loginuid)
		return 0;
	char buf[16];
	int n = snprintf(buf, sizeof(buf), "%u", s->loginuid);
	_cleanup_close_ int fd = open("/proc/self/loginuid", O_WRONLY | O_CLOEXEC);
	if (fd < 0 || write(fd, buf, (size_t)n) != n)
		return pr_perror("restore: pid %d: set its loginuid %u (the restorer's is %lld)",
				 c->pid, s->loginuid, cur);
	return 0;
}

/* Settings that differ from what the new thread has are set by the thread itself (remote
 * calls): setting one's own scheduling needs no privilege unless it raises it, while
 * setting another task's needs the same owner or CAP_SYS_NICE in the initial user
 * namespace, which a restorer of a tree in a user namespace lacks. */
static int restore_thread(pid_t pid, pid_t tid, struct rsys *rs, const ThreadSched *t)
{
	struct stasis_sched_attr cur, a = {
		.size = sizeof(a),
		.sched_policy = t->policy,
		.sched_flags = t->flags,
		.sched_nice = t->nice,
		.sched_priority = t->priority,
		.sched_runtime = t->dl_runtime,
		.sched_deadline = t->dl_deadline,
		.sched_period = t->dl_period,
	};
	int ret = get_attr(tid, &cur);
	if (ret)
		return pr_errno(ret, "restore: sched_getattr of thread %d", tid);
	if (t->has_util_min && t->util_min != cur.sched_util_min) {
		a.sched_flags |= SCHED_FLAG_UTIL_CLAMP_MIN;
		a.sched_util_min = t->util_min;
	}
	if (t->has_util_max && t->util_max != cur.sched_util_max) {
		a.sched_flags |= SCHED_FLAG_UTIL_CLAMP_MAX;
		a.sched_util_max = t->util_max;
	}
	bool same = a.sched_policy == cur.sched_policy && a.sched_flags == cur.sched_flags &&
		    a.sched_nice == cur.sched_nice && a.sched_priority == cur.sched_priority &&
		    a.sched_runtime == cur.sched_runtime && a.sched_deadline == cur.sched_deadline &&
		    a.sched_period == cur.sched_period;
	long r = same ? 0 : rsys_poke(rs, rs->scratch, &a, sizeof(a));
	if (!same && !r)
		r = rsys_do(rs, "restore: sched_setattr", SYS_sched_setattr, 0, rs->scratch, 0, 0,
			    0, 0);
	if (r < 0)
		return pr_errno((int)r, "restore: thread %d of pid %d: scheduling policy %u, nice "
					"%d, priority %u",
				tid, pid, t->policy, t->nice, t->priority);
	if (t->has_affinity && t->affinity.len) {
		_cleanup_free_ unsigned char *now = calloc(1, AFFINITY_MAX);
		long n = now ? syscall(SYS_sched_getaffinity, tid, AFFINITY_MAX, now) : -1;
		if (n != (long)t->affinity.len || memcmp(now, t->affinity.data, (size_t)n)) {
			r = rsys_poke(rs, rs->scratch, t->affinity.data, t->affinity.len);
			if (!r)
				r = rsys_do(rs, "restore: sched_setaffinity", SYS_sched_setaffinity, 0,
					    t->affinity.len, rs->scratch, 0, 0, 0);
			if (r < 0)
				return pr_errno((int)r, "restore: thread %d of pid %d: CPU affinity",
						tid, pid);
		}
	}
	if (t->has_ioprio && syscall(SYS_ioprio_get, IOPRIO_WHO_PROCESS, tid) != (long)t->ioprio) {
		r = rsys_do(rs, "restore: ioprio_set", SYS_ioprio_set, IOPRIO_WHO_PROCESS, 0,
			    t->ioprio, 0, 0, 0);
		if (r < 0)
			return pr_errno((int)r, "restore: thread %d of pid %d: I/O priority %#x", tid,
					pid, t->ioprio);
	}
	return 0;
}

static int restore_oom_score_adj(struct rst_ctx *c, int32_t want)
{
	char path[64], buf[16];
	long long cur;
	snprintf(path, sizeof(path), "%d/oom_score_adj", c->pid);
	if (read_int_file(c->proc_dfd, path, &cur) == 0 && cur == want)
		return 0;
	int n = snprintf(buf, sizeof(buf), "%d", want);
	_cleanup_close_ int fd = openat(c->proc_dfd, path, O_WRONLY | O_CLOEXEC);
	if (fd < 0 || write(fd, buf, (size_t)n) != n)
		return pr_perror("restore: pid %d: oom_score_adj %d (below the restorer's own "
				 "needs CAP_SYS_RESOURCE)",
				 c->pid, want);
	return 0;
}

/* After the threads exist and the credentials are the task's (setting another task's
 * scheduling checks its ids against the restorer's); before misc. */
static int sched_remote(struct rst_ctx *c)
{
	const Sched *s = c->core->sched;
	if (!s)
		return 0;
	for (size_t i = 0; i < s->n_threads; i++) {
		struct rsys *rs = rst_thread_rs(c, i);
		int ret = restore_thread(c->pid, i ? rs->tid : c->pid, rs, s->threads[i]);
		if (ret)
			return ret;
	}
	int ret = restore_oom_score_adj(c, s->oom_score_adj);
	if (ret)
		return ret;
	long cur = rsys_do(&c->rs, "restore: PR_GET_THP_DISABLE", SYS_prctl, PR_GET_THP_DISABLE,
			   0, 0, 0, 0, 0);
	if (cur < 0)
		return (int)cur;
	if ((uint32_t)cur == s->thp_disable)
		return 0;
	long r = rsys_do(&c->rs, "restore: PR_SET_THP_DISABLE", SYS_prctl, PR_SET_THP_DISABLE,
			 s->thp_disable & 1, s->thp_disable & PR_THP_DISABLE_EXCEPT_ADVISED, 0, 0,
			 0);
	return r < 0 ? (int)r : 0;
}

const struct resource sched_resource = {
	.name = "scheduling",
	.dump = sched_dump,
	.validate = sched_validate,
	.child = sched_child,
	.remote = sched_remote,
};
