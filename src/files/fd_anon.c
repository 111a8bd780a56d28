/* Anon-inode files: eventfd, timerfd, signalfd, epoll.
 *
 * Dump: the state is in /proc/PID/fdinfo/N (see the show_fdinfo of fs/eventfd.c,
 * fs/timerfd.c, fs/signalfd.c, fs/eventpoll.c); the parsers are in src/proc/parse.c.
 * An epoll lists its targets by the fd number they were added with; kcmp(KCMP_EPOLL_TFD)
 * tells whether that number still refers to the very same file.
 *
 * Restore: eventfd2 with the count (written if it does not fit in 32 bits), timerfd
 * with the remaining time made relative to now (absolute for TFD_TIMER_CANCEL_ON_SET)
 * and the unread ticks (TFD_IOC_SET_TICKS), signalfd4 with the raw 64-bit mask, epoll
 * with EPOLL_CTL_ADD of every target by its (already placed) fd number. */
#include "files/fd_anon.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/kcmp.h>
#include <stdio.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#include "core/log.h"
#include "core/util.h"
#include "proc/parse.h"
#include "sys/kerndat.h"

#define FDINFO_MAX (64u << 10)
#define EPOLL_FDINFO_MAX (64u << 20)

#ifndef TFD_IOC_SET_TICKS
#define TFD_IOC_SET_TICKS _IOW('T', 0, uint64_t)
#endif
#ifndef TFD_TIMER_CANCEL_ON_SET
#define TFD_TIMER_CANCEL_ON_SET (1 << 1)
#endif

static const struct {
	const char *link;
	FileKind kind;
} anon_kinds[] = {
	{ "anon_inode:[eventfd]", FILE_KIND__FILE_EVENTFD },
	{ "anon_inode:[timerfd]", FILE_KIND__FILE_TIMERFD },
	{ "anon_inode:[signalfd]", FILE_KIND__FILE_SIGNALFD },
	{ "anon_inode:[eventpoll]", FILE_KIND__FILE_EPOLL },
};

int fd_anon_kind(const char *link, FileKind *kind)
{
	for (size_t i = 0; i < ARRAY_SIZE(anon_kinds); i++)
		if (!strcmp(link, anon_kinds[i].link)) {
			*kind = anon_kinds[i].kind;
			return 0;
		}
	return -EOPNOTSUPP;
}

bool fd_anon_is_kind(FileKind kind)
{
	for (size_t i = 0; i < ARRAY_SIZE(anon_kinds); i++)
		if (anon_kinds[i].kind == kind)
			return true;
	return false;
}

/* ---- dump ---------------------------------------------------------------------- */

static int eventfd_dump(pid_t pid, int fd, const char *info, FileDesc *d)
{
	struct proc_fdinfo_eventfd e;
	if (proc_parse_fdinfo_eventfd(info, &e)) {
		pr_err("cannot parse the eventfd state in /proc/%d/fdinfo/%d", pid, fd);
		return -EINVAL;
	}
	if (e.semaphore < 0)
		pr_warn("fd %d of pid %d: this kernel does not show EFD_SEMAPHORE; assuming off",
			fd, pid);
	d->eventfd = malloc(sizeof(*d->eventfd));
	if (!d->eventfd)
		return pr_errno(-ENOMEM, "fd %d of pid %d", fd, pid);
	eventfd_data__init(d->eventfd);
	d->eventfd->count = e.count;
	d->eventfd->has_semaphore = true;
	d->eventfd->semaphore = e.semaphore > 0;
	return 0;
}

static int timerfd_dump(pid_t pid, int fd, const char *info, FileDesc *d)
{
	struct proc_fdinfo_timerfd t;
	if (proc_parse_fdinfo_timerfd(info, &t)) {
		pr_err("cannot parse the timerfd state in /proc/%d/fdinfo/%d", pid, fd);
		return -EINVAL;
	}
	TimerfdData *m = malloc(sizeof(*m));
	if (!m)
		return pr_errno(-ENOMEM, "fd %d of pid %d", fd, pid);
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

static int signalfd_dump(pid_t pid, int fd, const char *info, FileDesc *d)
{
	uint64_t mask;
	if (proc_parse_fdinfo_signalfd(info, &mask)) {
		pr_err("cannot parse the signalfd mask in /proc/%d/fdinfo/%d", pid, fd);
		return -EINVAL;
	}
	d->signalfd = malloc(sizeof(*d->signalfd));
	if (!d->signalfd)
		return pr_errno(-ENOMEM, "fd %d of pid %d", fd, pid);
	signalfd_data__init(d->signalfd);
	d->signalfd->sigmask = mask;
	return 0;
}

/* Is target @k of epoll fd @efd still the file open as fd t[k].tfd of the task? */
static int epoll_target_check(pid_t pid, int efd, const struct proc_epoll_tfd *t, size_t k)
{
	struct kcmp_epoll_slot slot = { .efd = (uint32_t)efd, .tfd = (uint32_t)t[k].tfd };
	/* several targets may carry one fd number (added, then the fd reused): toff picks
	 * the k-th of them in the order the kernel lists them */
	for (size_t j = 0; j < k; j++)
		if (t[j].tfd == t[k].tfd)
			slot.toff++;
	long r = syscall(SYS_kcmp, pid, pid, KCMP_EPOLL_TFD, t[k].tfd, &slot);
	if (r == 0)
		return 0;
	if (r < 0 && errno != EBADF && errno != ENOENT)
		return pr_perror("kcmp(KCMP_EPOLL_TFD) of epoll fd %d, target fd %d of pid %d",
				 efd, t[k].tfd, pid);
	pr_err("fd %d of pid %d is an epoll watching a file added as fd %d (ino %llx), but "
	       "fd %d %s: not supported", efd, pid, t[k].tfd, (unsigned long long)t[k].ino,
	       t[k].tfd, r < 0 ? "is closed" : "now refers to another file");
	return -EOPNOTSUPP;
}

static int epoll_dump(pid_t pid, int fd, const char *info, FileDesc *d)
{
	struct proc_epoll_tfd *t = NULL;
	size_t n = 0;
	int ret = proc_parse_fdinfo_epoll(info, &t, &n);
	if (ret) {
		pr_err("cannot parse the epoll targets in /proc/%d/fdinfo/%d", pid, fd);
		return ret;
	}
	EpollData *m = malloc(sizeof(*m));
	if (!m) {
		free(t);
		return pr_errno(-ENOMEM, "fd %d of pid %d", fd, pid);
	}
	epoll_data__init(m);
	d->epoll = m;
	if (n > EPOLL_TARGETS_MAX) {
		pr_err("fd %d of pid %d is an epoll watching %zu files: too many", fd, pid, n);
		free(t);
		return -EOPNOTSUPP;
	}
	m->targets = calloc(n ? n : 1, sizeof(*m->targets));
	if (!m->targets) {
		free(t);
		return pr_errno(-ENOMEM, "fd %d of pid %d", fd, pid);
	}
	for (size_t k = 0; k < n && !ret; k++) {
		ret = epoll_target_check(pid, fd, t, k);
		if (ret)
			break;
		EpollTarget *et = malloc(sizeof(*et));
		if (!et) {
			ret = pr_errno(-ENOMEM, "fd %d of pid %d", fd, pid);
			break;
		}
		epoll_target__init(et);
		et->tfd = t[k].tfd;
		et->events = t[k].events;
		et->data = t[k].data;
		m->targets[m->n_targets++] = et;
	}
	free(t);
	return ret;
}

int fd_anon_dump(pid_t pid, int procfd, int fd, FileDesc *d)
{
	char name[32];
	snprintf(name, sizeof(name), "fdinfo/%d", fd);
	_cleanup_free_ char *info = read_file_at(
		procfd, name, d->kind == FILE_KIND__FILE_EPOLL ? EPOLL_FDINFO_MAX : FDINFO_MAX, NULL);
	if (!info)
		return pr_perror("cannot read /proc/%d/fdinfo/%d", pid, fd);
	switch (d->kind) {
	case FILE_KIND__FILE_EVENTFD: return eventfd_dump(pid, fd, info, d);
	case FILE_KIND__FILE_TIMERFD: return timerfd_dump(pid, fd, info, d);
	case FILE_KIND__FILE_SIGNALFD: return signalfd_dump(pid, fd, info, d);
	case FILE_KIND__FILE_EPOLL: return epoll_dump(pid, fd, info, d);
	default:
		pr_err("fd %d of pid %d: kind %d is not an anon-inode kind", fd, pid, (int)d->kind);
		return -EINVAL;
	}
}

/* ---- restore ------------------------------------------------------------------- */

int fd_anon_validate(const FileDesc *d)
{
	bool ok;
	switch (d->kind) {
	case FILE_KIND__FILE_EVENTFD:
		ok = d->eventfd && d->eventfd->count < UINT64_MAX;
		break;
	case FILE_KIND__FILE_TIMERFD:
		ok = d->timerfd && d->timerfd->value_nsec < 1000000000 &&
		     d->timerfd->interval_nsec < 1000000000 &&
		     d->timerfd->value_sec <= (uint64_t)INT64_MAX / 2 &&
		     d->timerfd->interval_sec <= (uint64_t)INT64_MAX / 2 &&
		     !(d->timerfd->settime_flags & ~(unsigned)(TFD_TIMER_ABSTIME |
							       TFD_TIMER_CANCEL_ON_SET));
		break;
	case FILE_KIND__FILE_SIGNALFD:
		ok = d->signalfd != NULL;
		break;
	case FILE_KIND__FILE_EPOLL:
		ok = d->epoll && d->epoll->n_targets <= EPOLL_TARGETS_MAX;
		for (size_t k = 0; ok && k < d->epoll->n_targets; k++)
			ok = d->epoll->targets[k]->tfd >= 0;
		break;
	default:
		ok = false;
		break;
	}
	if (!ok) {
		pr_err("files image: file %u (%s) has bad or missing data", d->id,
		       d->link ?: "anon inode");
		return -EINVAL;
	}
	return 0;
}

static int eventfd_open(const FileDesc *d, int target)
{
	const EventfdData *e = d->eventfd;
	int flags = EFD_CLOEXEC | EFD_NONBLOCK | (e->semaphore ? EFD_SEMAPHORE : 0);
	unsigned int init = e->count <= UINT32_MAX ? (unsigned int)e->count : 0;
	_cleanup_close_ int fd = eventfd(init, flags);
	if (fd < 0)
		return pr_perror("restore fd %d: eventfd", target);
	if (e->count > UINT32_MAX) {
		/* non-blocking, from 0: a count below ULLONG_MAX always fits */
		uint64_t v = e->count;
		if (write(fd, &v, sizeof(v)) != (ssize_t)sizeof(v))
			return pr_perror("restore fd %d: set the eventfd count to %llu", target,
					 (unsigned long long)v);
	}
	return take_fd(&fd);
}

static int timerfd_open(const FileDesc *d, int target)
{
	const TimerfdData *t = d->timerfd;
	_cleanup_close_ int fd = timerfd_create(t->clockid, TFD_CLOEXEC | TFD_NONBLOCK);
	if (fd < 0)
		return pr_perror("restore fd %d: timerfd_create(clock %d)", target, t->clockid);
	/* A periodic timer that expired and was not read yet shows no remaining time (the
	 * kernel re-arms it only when it is read) but has ticks: it is armed, its next expiry
	 * at most one interval away. (Disarmed with an interval: no ticks.) */
	bool expired_periodic = !t->value_sec && !t->value_nsec && t->ticks &&
				(t->interval_sec || t->interval_nsec);
	if (t->value_sec || t->value_nsec || expired_periodic) {
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
	}
	if (t->ticks) {
		uint64_t ticks = t->ticks;
		if (!kdat_has(KD_TIMERFD_SET_TICKS) || ioctl(fd, TFD_IOC_SET_TICKS, &ticks) < 0) {
			if (kdat_has(KD_TIMERFD_SET_TICKS) && errno != ENOTTY && errno != EINVAL)
				return pr_perror("restore fd %d: TFD_IOC_SET_TICKS", target);
			pr_warn("restore fd %d: this kernel cannot set timerfd ticks; %llu unread "
				"expirations are lost", target, (unsigned long long)ticks);
		}
	}
	return take_fd(&fd);
}

static int signalfd_open(const FileDesc *d, int target)
{
	uint64_t mask = d->signalfd->sigmask;
	/* the raw syscall: glibc's sigset_t helpers refuse its internal signals */
	long fd = syscall(SYS_signalfd4, -1, &mask, sizeof(mask), O_CLOEXEC | O_NONBLOCK);
	if (fd < 0)
		return pr_perror("restore fd %d: signalfd (mask %#llx)", target,
				 (unsigned long long)mask);
	return (int)fd;
}

int fd_anon_open(const FileDesc *d, int target)
{
	switch (d->kind) {
	case FILE_KIND__FILE_EVENTFD: return eventfd_open(d, target);
	case FILE_KIND__FILE_TIMERFD: return timerfd_open(d, target);
	case FILE_KIND__FILE_SIGNALFD: return signalfd_open(d, target);
	default:
		pr_err("restore fd %d: file %u of kind %d cannot be opened here", target, d->id,
		       (int)d->kind);
		return -EINVAL;
	}
}

int fd_epoll_open(const FileDesc *d, int target)
{
	_cleanup_close_ int fd = epoll_create1(EPOLL_CLOEXEC);
	if (fd < 0)
		return pr_perror("restore fd %d: epoll_create1", target);
	for (size_t k = 0; k < d->epoll->n_targets; k++) {
		const EpollTarget *t = d->epoll->targets[k];
		struct epoll_event ev = { .events = t->events, .data.u64 = t->data };
		if (epoll_ctl(fd, EPOLL_CTL_ADD, t->tfd, &ev))
			return pr_perror("restore fd %d: epoll_ctl(ADD) of fd %d (events %#x)",
					 target, t->tfd, t->events);
	}
	return take_fd(&fd);
}
