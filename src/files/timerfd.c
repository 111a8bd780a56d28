/* timerfd (row fd_timerfd_ops, kind FILE_TIMERFD, FileDesc.timerfd).
 *
 * Dump: clock, flags, remaining time, interval and unread ticks from /proc/PID/fdinfo
 * (fs/timerfd.c show_fdinfo).
 * Restore: timerfd_create + timerfd_settime with the remaining time made relative to now
 * (absolute for TFD_TIMER_CANCEL_ON_SET), then the unread ticks (TFD_IOC_SET_TICKS). */
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#include "core/log.h"
#include "core/util.h"
#include "files/fd_ops.h"
#include "proc/parse.h"
#include "sys/kerndat.h"

#ifndef TFD_IOC_SET_TICKS
#define TFD_IOC_SET_TICKS _IOW('T', 0, uint64_t)
#endif
#ifndef TFD_TIMER_CANCEL_ON_SET
#define TFD_TIMER_CANCEL_ON_SET (1 << 1)
#endif

static int timerfd_classify(const struct dump_ctx *c, struct fd_ent *e)
{
	(void)c;
	if (strcmp(e->link, "anon_inode:[timerfd]"))
		return 0;
	e->kind = FILE_KIND__FILE_TIMERFD;
	return 1;
}

static int timerfd_dump(const struct dump_ctx *c, const struct fd_ent *e, FileDesc *d)
{
	_cleanup_free_ char *info = NULL;
	int ret = fd_read_fdinfo(c, e->fd, FDINFO_MAX, &info);
	if (ret)
		return ret;
	struct proc_fdinfo_timerfd t;
	if (proc_parse_fdinfo_timerfd(info, &t)) {
		pr_err("cannot parse the timerfd state in /proc/%d/fdinfo/%d", c->pid, e->fd);
		return -EINVAL;
	}
	TimerfdData *m = malloc(sizeof(*m));
	if (!m)
		return pr_errno(-ENOMEM, "fd %d of pid %d", e->fd, c->pid);
	timerfd_data__init(m);
	d->timerfd = m;
	m->clockid = t.clockid;
	m->settime_flags = t.settime_flags;
	m->ticks = t.ticks;
	m->value_sec = t.value_sec;
	m->value_nsec = t.value_nsec;
	m->interval_sec = t.interval_sec;
	m->interval_nsec = t.interval_nsec;
	return 0;
}

static int timerfd_validate(const FileDesc *d, const struct blob_reader *blobs)
{
	(void)blobs;
	bool ok = d->timerfd && d->timerfd->value_nsec < 1000000000 &&
		  d->timerfd->interval_nsec < 1000000000 &&
		  d->timerfd->value_sec <= (uint64_t)INT64_MAX / 2 &&
		  d->timerfd->interval_sec <= (uint64_t)INT64_MAX / 2 &&
		  !(d->timerfd->settime_flags & ~(unsigned)(TFD_TIMER_ABSTIME |
							    TFD_TIMER_CANCEL_ON_SET));
	return ok ? 0 : fd_bad_data(d);
}

/* Arm @fd with the remaining time and interval of @t. */
static int timerfd_arm(int fd, const TimerfdData *t, int target)
{
	/* A periodic timer that expired and was not read yet shows no remaining time (the
	 * kernel re-arms it only when it is read) but has ticks: it is armed, its next expiry
	 * at most one interval away. (Disarmed with an interval: no ticks.) */
	bool expired_periodic = !t->value_sec && !t->value_nsec && t->ticks &&
				(t->interval_sec || t->interval_nsec);
	if (!t->value_sec && !t->value_nsec && !expired_periodic)
		return 0;
	struct itimerspec its = {
		.it_value = { (time_t)t->value_sec, (long)t->value_nsec },
		.it_interval = { (time_t)t->interval_sec, (long)t->interval_nsec },
	};
	if (expired_periodic)
		its.it_value = its.it_interval;
	int flags = 0;
	if (t->settime_flags & TFD_TIMER_CANCEL_ON_SET) {
		/* only valid with an absolute time: the remaining one from now */
		struct timespec now;
		if (clock_gettime(t->clockid, &now))
			return pr_perror("restore fd %d: clock_gettime(%d)", target, t->clockid);
		its.it_value.tv_sec += now.tv_sec;
		its.it_value.tv_nsec += now.tv_nsec;
		if (its.it_value.tv_nsec >= 1000000000) {
			its.it_value.tv_nsec -= 1000000000;
			its.it_value.tv_sec++;
		}
		flags = TFD_TIMER_ABSTIME | TFD_TIMER_CANCEL_ON_SET;
	}
	if (timerfd_settime(fd, flags, &its, NULL))
		return pr_perror("restore fd %d: timerfd_settime", target);
	return 0;
}

static int timerfd_open(const FileDesc *d, int target, int rootfd, const struct blob_reader *blobs)
{
	(void)blobs;
	const TimerfdData *t = d->timerfd;
	(void)rootfd;
	_cleanup_close_ int fd = timerfd_create(t->clockid, TFD_CLOEXEC | TFD_NONBLOCK);
	if (fd < 0)
		return pr_perror("restore fd %d: timerfd_create(clock %d)", target, t->clockid);
	int ret = timerfd_arm(fd, t, target);
	if (ret)
		return ret;
	if (t->ticks) {
		uint64_t ticks = t->ticks;
		if (!kdat_has(KD_TIMERFD_SET_TICKS) || ioctl(fd, TFD_IOC_SET_TICKS, &ticks) < 0) {
			if (kdat_has(KD_TIMERFD_SET_TICKS) && errno != ENOTTY && errno != EINVAL)
				return pr_perror("restore fd %d: TFD_IOC_SET_TICKS", target);
			pr_err("restore fd %d: a timerfd with %llu unread expirations, which this "
			       "kernel cannot set (TFD_IOC_SET_TICKS needs CONFIG_CHECKPOINT_RESTORE)",
			       target, (unsigned long long)ticks);
			return -EOPNOTSUPP;
		}
	}
	return take_fd(&fd);
}

const struct fd_ops fd_timerfd_ops = {
	.name = "timerfd",
	.kind = FILE_KIND__FILE_TIMERFD,
	.fdinfo_keys = (const char *const[]){ "clockid", "ticks", "settime", "it_value", "it_interval", NULL },
	.classify = timerfd_classify,
	.dump = timerfd_dump,
	.validate = timerfd_validate,
	.open = timerfd_open,
};
