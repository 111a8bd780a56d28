/* Interval timers (setitimer) and POSIX timers (timer_create) of a task: dump and restore.
 *
 * Both kinds are per process and only the task itself can read or set them, so both
 * directions go through the remote syscall engine: getitimer/timer_gettime/
 * timer_getoverrun at dump, timer_create/timer_settime/setitimer at restore. The list
 * of POSIX timers (ids, clocks, notification) comes from /proc/PID/timers.
 *
 * Remaining times are saved and restored as they are: the time the task spent frozen
 * and checkpointed is not subtracted (a timer resumes with what it had left at the
 * freeze, like a paused clock). CLOCK_REALTIME/MONOTONIC timers therefore fire later
 * than they would have without the checkpoint, never earlier.
 *
 * Restoring the exact timer ids uses prctl(PR_TIMER_CREATE_RESTORE_IDS) (6.15+): while
 * it is on, timer_create() takes the wanted id from *created_timer_id (EBUSY if taken,
 * EINVAL if negative). Older kernels hand out ids in increasing order, so the fallback
 * creates timers and deletes the ones with unwanted ids, bounded.
 *
 * Not restorable: the overrun count (saved for information only) and a timer signal
 * already queued at the dump (that is the signals module's pending queue). A timer on
 * a CPU clock of another process (clock_getcpuclockid) names that pid in its clock id,
 * which holds because restore gives every task its exact pid. A SIGEV_THREAD_ID timer
 * needs its thread to exist when it is created. */
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <time.h>

#include "core/log.h"
#include "core/util.h"
#include "sys/kerndat.h"
#include "sys/uapi.h"
#include "cr/resource.h"
#include "task/task.h"

#define NSEC_PER_SEC 1000000000ULL
#define USEC_PER_SEC 1000000ULL
#define TIMERS_FILE_MAX (16u << 20)
/* Fallback id search: at most this many timers created and deleted in all. */
#define TIMER_FALLBACK_MAX_TRIES 65536

/* The kernel's struct sigevent on x86_64 (64 bytes). glibc hides the thread id field. */
struct k_sigevent {
	uint64_t value;
	int32_t signo;
	int32_t notify;
	int32_t tid;
	int32_t pad[11];
};
_Static_assert(sizeof(struct k_sigevent) == 64, "struct sigevent is 64 bytes");

/* Where things go in the scratch memory of the task. */
enum {
	SCR_SIGEV = 0,    /* struct k_sigevent */
	SCR_ID = 64,      /* timer_t (int) */
	SCR_SPEC = 128,   /* struct itimerspec / struct itimerval */
	SCR_END = 192,
};

static int check_scratch(const struct rsys *rs, pid_t pid)
{
	if (!rs->scratch || rs->scratch_len < SCR_END) {
		pr_err("timers: no scratch memory in task %d", pid);
		return -EINVAL;
	}
	return 0;
}

static uint64_t tv_to_us(const struct timeval *tv)
{
	return (uint64_t)tv->tv_sec * USEC_PER_SEC + (uint64_t)tv->tv_usec;
}

static uint64_t ts_to_ns(const struct timespec *ts)
{
	return (uint64_t)ts->tv_sec * NSEC_PER_SEC + (uint64_t)ts->tv_nsec;
}

static void us_to_tv(uint64_t us, struct timeval *tv)
{
	tv->tv_sec = (time_t)(us / USEC_PER_SEC);
	tv->tv_usec = (suseconds_t)(us % USEC_PER_SEC);
}

static void ns_to_ts(uint64_t ns, struct timespec *ts)
{
	ts->tv_sec = (time_t)(ns / NSEC_PER_SEC);
	ts->tv_nsec = (long)(ns % NSEC_PER_SEC);
}

/* ---- dump ---------------------------------------------------------------------- */

static int dump_itimers(struct dump_ctx *c)
{
	static const int which[] = { ITIMER_REAL, ITIMER_VIRTUAL, ITIMER_PROF };
	struct itimerval iv;
	long ret;

	c->core->itimers = calloc(ARRAY_SIZE(which), sizeof(*c->core->itimers));
	if (!c->core->itimers)
		return -ENOMEM;
	for (size_t i = 0; i < ARRAY_SIZE(which); i++) {
		ret = rsys_do(&c->rs, "dump: getitimer", SYS_getitimer, (uint64_t)which[i],
			      c->rs.scratch + SCR_SPEC, 0, 0, 0, 0);
		if (ret < 0)
			return (int)ret;
		ret = rsys_peek(&c->rs, c->rs.scratch + SCR_SPEC, &iv, sizeof(iv));
		if (ret)
			return (int)ret;
		Itimer *it = malloc(sizeof(*it));
		if (!it)
			return -ENOMEM;
		itimer__init(it);
		it->which = (uint32_t)which[i];
		it->value_us = tv_to_us(&iv.it_value);
		it->interval_us = tv_to_us(&iv.it_interval);
		c->core->itimers[c->core->n_itimers++] = it;
	}
	return 0;
}

/* /proc/PID/timers prints the notification tid in the pid namespace of that /proc;
 * the task needs it in its own (innermost) namespace: take it from NSpid. */
static int tid_in_task_ns(struct dump_ctx *c, int tid, int *out)
{
	char path[64];
	struct proc_status st;
	int ret;

	if (tid == c->pid) {
		*out = c->status.nspid_len ? c->status.nspid[c->status.nspid_len - 1] : tid;
		return 0;
	}
	snprintf(path, sizeof(path), "task/%d/status", tid);
	_cleanup_free_ char *buf = read_file_at(c->procfd, path, 1 << 20, NULL);
	if (!buf)
		return pr_perror("dump: timer of pid %d notifies thread %d, read %s", c->pid,
				 tid, path);
	memset(&st, 0, sizeof(st));
	ret = proc_parse_status(buf, &st);
	if (ret) {
		pr_err("dump: cannot parse /proc/%d/%s", c->pid, path);
		return ret;
	}
	*out = st.nspid_len ? st.nspid[st.nspid_len - 1] : tid;
	proc_status_free(&st);
	return 0;
}

static int dump_one_posix_timer(struct dump_ctx *c, const struct proc_posix_timer *pt,
				PosixTimer *t)
{
	struct itimerspec its;
	long ret;

	ret = rsys_do(&c->rs, "dump: timer_gettime", SYS_timer_gettime, (uint64_t)pt->id,
		      c->rs.scratch + SCR_SPEC, 0, 0, 0, 0);
	if (ret < 0)
		return (int)ret;
	ret = rsys_peek(&c->rs, c->rs.scratch + SCR_SPEC, &its, sizeof(its));
	if (ret)
		return (int)ret;
	ret = rsys_do(&c->rs, "dump: timer_getoverrun", SYS_timer_getoverrun, (uint64_t)pt->id,
		      0, 0, 0, 0, 0);
	if (ret < 0)
		return (int)ret;

	t->id = pt->id;
	t->clock = pt->clock;
	t->notify = pt->notify;
	t->signo = pt->signo;
	t->sigval = pt->sigval;
	t->value_ns = ts_to_ns(&its.it_value);
	t->interval_ns = ts_to_ns(&its.it_interval);
	t->has_overrun = true;
	t->overrun = (int32_t)ret;
	if (pt->notify & SIGEV_THREAD_ID) {
		int tid;
		ret = tid_in_task_ns(c, pt->notify_tid, &tid);
		if (ret)
			return (int)ret;
		t->has_notify_tid = true;
		t->notify_tid = tid;
	}
	return 0;
}

static int dump_posix_timers(struct dump_ctx *c)
{
	_cleanup_free_ char *buf = NULL;
	_cleanup_free_ struct proc_posix_timer *pts = NULL;
	size_t nr = 0;
	int ret;

	buf = read_file_at(c->procfd, "timers", TIMERS_FILE_MAX, NULL);
	if (!buf)
		return pr_perror("dump: read /proc/%d/timers", c->pid);
	ret = proc_parse_timers(buf, &pts, &nr);
	if (ret) {
		pr_err("dump: cannot parse /proc/%d/timers", c->pid);
		return ret;
	}
	if (!nr)
		return 0;
	c->core->posix_timers = calloc(nr, sizeof(*c->core->posix_timers));
	if (!c->core->posix_timers)
		return -ENOMEM;
	for (size_t i = 0; i < nr; i++) {
		PosixTimer *t = malloc(sizeof(*t));
		if (!t)
			return -ENOMEM;
		posix_timer__init(t);
		c->core->posix_timers[c->core->n_posix_timers++] = t;
		ret = dump_one_posix_timer(c, &pts[i], t);
		if (ret)
			return ret;
	}
	pr_debug("dump: pid %d has %zu POSIX timers", c->pid, nr);
	return 0;
}

int timers_dump(struct dump_ctx *c)
{
	int ret = check_scratch(&c->rs, c->pid);
	if (ret)
		return ret;
	ret = dump_itimers(c);
	if (ret)
		return ret;
	return dump_posix_timers(c);
}

/* ---- restore ------------------------------------------------------------------- */

/* A remote call whose task-side failure is NOT logged (the caller decides); a transport
 * failure is logged. Returns the result or -errno. */
static long rcall(struct rst_ctx *c, const char *what, long nr, uint64_t a0, uint64_t a1,
		  uint64_t a2)
{
	long res;
	int err = rsys_call(&c->rs, nr, a0, a1, a2, 0, 0, 0, &res);
	if (err) {
		pr_err("restore: %s in pid %d: remote call failed: %s", what, c->pid,
		       strerror(-err));
		return err;
	}
	return res;
}

static int validate_posix_timer(const PosixTimer *t, pid_t pid)
{
	int base = t->notify & ~SIGEV_THREAD_ID;

	if (t->id < 0 || (base != SIGEV_SIGNAL && base != SIGEV_NONE && base != SIGEV_THREAD) ||
	    ((t->notify & SIGEV_THREAD_ID) && (!t->has_notify_tid || t->notify_tid <= 0))) {
		pr_err("restore: image of pid %d: invalid POSIX timer (id %d, notify %d)", pid,
		       t->id, t->notify);
		return -EINVAL;
	}
	return 0;
}

/* Put the sigevent of @t into scratch. */
static int poke_sigevent(struct rst_ctx *c, const PosixTimer *t)
{
	struct k_sigevent ev;

	memset(&ev, 0, sizeof(ev));
	ev.value = t->sigval;
	ev.signo = t->signo;
	ev.notify = t->notify;
	if (t->notify & SIGEV_THREAD_ID)
		ev.tid = t->notify_tid;
	return rsys_poke(&c->rs, c->rs.scratch + SCR_SIGEV, &ev, sizeof(ev));
}

/* timer_create with the sigevent in scratch; *id in and out through scratch. */
static long create_timer(struct rst_ctx *c, const PosixTimer *t, int want, int *got)
{
	long ret = rsys_poke(&c->rs, c->rs.scratch + SCR_ID, &want, sizeof(want));
	if (ret)
		return ret;
	ret = rcall(c, "timer_create", SYS_timer_create, (uint64_t)(int64_t)t->clock,
		    c->rs.scratch + SCR_SIGEV, c->rs.scratch + SCR_ID);
	if (ret < 0)
		return ret;
	return rsys_peek(&c->rs, c->rs.scratch + SCR_ID, got, sizeof(*got));
}

static int delete_timer(struct rst_ctx *c, int id)
{
	long ret = rcall(c, "timer_delete", SYS_timer_delete, (uint64_t)id, 0, 0);
	if (ret < 0)
		return pr_errno((int)ret, "restore: cannot delete timer %d of pid %d", id, c->pid);
	return 0;
}

/* Create timer @t with its id: exactly (prctl mode), or by creating and deleting timers
 * until the kernel hands out the wanted id (*tries bounds the total). */
static int restore_timer_id(struct rst_ctx *c, const PosixTimer *t, bool exact, int *tries)
{
	int got = -1;
	long ret = poke_sigevent(c, t);
	if (ret)
		return (int)ret;

	for (;;) {
		ret = create_timer(c, t, t->id, &got);
		if (ret < 0)
			return pr_errno((int)ret,
					"restore: cannot create POSIX timer %d (clock %d, notify "
					"%d) of pid %d",
					t->id, t->clock, t->notify, c->pid);
		if (got == t->id)
			return 0;
		if (exact || got > t->id || ++*tries > TIMER_FALLBACK_MAX_TRIES) {
			pr_err("restore: POSIX timer of pid %d got id %d instead of %d%s", c->pid,
			       got, t->id,
			       exact ? " (PR_TIMER_CREATE_RESTORE_IDS was on)"
				     : " (ids are handed out in order on this kernel)");
			(void)delete_timer(c, got);
			return -EEXIST;
		}
		ret = delete_timer(c, got);
		if (ret)
			return (int)ret;
	}
}

static int arm_timer(struct rst_ctx *c, const PosixTimer *t)
{
	struct itimerspec its;
	long ret;

	if (!t->value_ns)
		return 0; /* a new timer is disarmed; value 0 means disarmed */
	ns_to_ts(t->value_ns, &its.it_value);
	ns_to_ts(t->interval_ns, &its.it_interval);
	ret = rsys_poke(&c->rs, c->rs.scratch + SCR_SPEC, &its, sizeof(its));
	if (ret)
		return (int)ret;
	ret = rcall(c, "timer_settime", SYS_timer_settime, (uint64_t)t->id, 0,
		    c->rs.scratch + SCR_SPEC);
	if (ret < 0)
		return pr_errno((int)ret, "restore: cannot arm POSIX timer %d of pid %d", t->id,
				c->pid);
	return 0;
}

static int cmp_timer_id(const void *a, const void *b)
{
	const PosixTimer *x = *(PosixTimer *const *)a, *y = *(PosixTimer *const *)b;
	return (x->id > y->id) - (x->id < y->id);
}

static int restore_posix_timers(struct rst_ctx *c)
{
	size_t n = c->core->n_posix_timers;
	bool exact = true;
	int tries = 0, ret;
	long r;

	if (!n)
		return 0;
	_cleanup_free_ PosixTimer **order = calloc(n, sizeof(*order));
	if (!order)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++) {
		order[i] = c->core->posix_timers[i];
		if (!order[i])
			return -EINVAL;
		ret = validate_posix_timer(order[i], c->pid);
		if (ret)
			return ret;
	}
	qsort(order, n, sizeof(*order), cmp_timer_id);
	for (size_t i = 1; i < n; i++) {
		if (order[i]->id == order[i - 1]->id) {
			pr_err("restore: image of pid %d: POSIX timer id %d twice", c->pid,
			       order[i]->id);
			return -EINVAL;
		}
	}

	r = !kdat_has(KD_TIMER_RESTORE_IDS)
		    ? -EINVAL /* probed once (sys/kerndat.c): the kernel lacks it */
		    : rcall(c, "prctl(PR_TIMER_CREATE_RESTORE_IDS)", SYS_prctl,
			    PR_TIMER_CREATE_RESTORE_IDS, PR_TIMER_CREATE_RESTORE_IDS_ON, 0);
	if (r == -EINVAL) {
		pr_info("restore: PR_TIMER_CREATE_RESTORE_IDS not supported, creating timers "
			"of pid %d in id order",
			c->pid);
		exact = false;
	} else if (r < 0) {
		return pr_errno((int)r, "restore: cannot enable PR_TIMER_CREATE_RESTORE_IDS in "
					"pid %d", c->pid);
	}

	ret = 0;
	for (size_t i = 0; i < n && !ret; i++) {
		ret = restore_timer_id(c, order[i], exact, &tries);
		if (!ret)
			ret = arm_timer(c, order[i]);
	}

	if (exact) {
		r = rcall(c, "prctl(PR_TIMER_CREATE_RESTORE_IDS)", SYS_prctl,
			  PR_TIMER_CREATE_RESTORE_IDS, PR_TIMER_CREATE_RESTORE_IDS_OFF, 0);
		if (r < 0 && !ret)
			ret = pr_errno((int)r, "restore: cannot disable "
					       "PR_TIMER_CREATE_RESTORE_IDS in pid %d",
				       c->pid);
	}
	return ret;
}

static int restore_itimers(struct rst_ctx *c)
{
	struct itimerval iv;
	long ret;

	for (size_t i = 0; i < c->core->n_itimers; i++) {
		const Itimer *it = c->core->itimers[i];
		if (!it || it->which > ITIMER_PROF) {
			pr_err("restore: image of pid %d: invalid itimer", c->pid);
			return -EINVAL;
		}
		/* A new task has every itimer disarmed. A value of 0 means disarmed even
		 * with an interval; setitimer() keeps such an interval as it was, so it is
		 * set as dumped and the timer stays disarmed. */
		if (!it->value_us && !it->interval_us)
			continue;
		/* A periodic ITIMER_REAL reads a value of 0 while its SIGALRM is pending (or
		 * was discarded, ignored): the kernel re-arms it only when the signal is
		 * dequeued. A zero value would disarm it for good; armed to fire at once
		 * instead, its signal meets the restored pending SIGALRM (a signal below
		 * SIGRTMIN is never queued twice) or is ignored again, and the kernel re-arms
		 * it when the task dequeues the signal, as it would have without the dump. */
		uint64_t value_us = it->value_us;
		if (it->which == ITIMER_REAL && !value_us)
			value_us = 1;
		us_to_tv(value_us, &iv.it_value);
		us_to_tv(it->interval_us, &iv.it_interval);
		ret = rsys_poke(&c->rs, c->rs.scratch + SCR_SPEC, &iv, sizeof(iv));
		if (ret)
			return (int)ret;
		ret = rcall(c, "setitimer", SYS_setitimer, it->which, c->rs.scratch + SCR_SPEC, 0);
		if (ret < 0)
			return pr_errno((int)ret, "restore: cannot set itimer %u of pid %d",
					it->which, c->pid);
	}
	return 0;
}

int timers_restore_remote(struct rst_ctx *c)
{
	int ret = check_scratch(&c->rs, c->pid);
	if (ret)
		return ret;
	ret = restore_posix_timers(c);
	if (ret)
		return ret;
	return restore_itimers(c);
}

const struct resource timers_resource = {
	.name = "timers",
	.dump = timers_dump,
	.remote = timers_restore_remote,
};
