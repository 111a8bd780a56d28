/* eventfd (row fd_eventfd_ops, kind FILE_EVENTFD, FileDesc.eventfd).
 *
 * Dump: the count and EFD_SEMAPHORE from /proc/PID/fdinfo (fs/eventfd.c show_fdinfo).
 * Restore: eventfd2 with the count, written if it does not fit in 32 bits. */
#include <stdio.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "core/log.h"
#include "core/util.h"
#include "files/fd_ops.h"
#include "proc/parse.h"

static int eventfd_classify(const struct dump_ctx *c, struct fd_ent *e)
{
	(void)c;
	if (strcmp(e->link, "anon_inode:[eventfd]"))
		return 0;
	e->kind = FILE_KIND__FILE_EVENTFD;
	return 1;
}

static int eventfd_dump(const struct dump_ctx *c, const struct fd_ent *ent, FileDesc *d)
{
	_cleanup_free_ char *info = NULL;
	int ret = fd_read_fdinfo(c, ent->fd, FDINFO_MAX, &info);
	if (ret)
		return ret;
	struct proc_fdinfo_eventfd e;
	if (proc_parse_fdinfo_eventfd(info, &e)) {
		pr_err("cannot parse the eventfd state in /proc/%d/fdinfo/%d", c->pid, ent->fd);
		return -EINVAL;
	}
	if (e.semaphore < 0)
		pr_warn("fd %d of pid %d: this kernel does not show EFD_SEMAPHORE; assuming off",
			ent->fd, c->pid);
	d->eventfd = malloc(sizeof(*d->eventfd));
	if (!d->eventfd)
		return pr_errno(-ENOMEM, "fd %d of pid %d", ent->fd, c->pid);
	eventfd_data__init(d->eventfd);
	d->eventfd->count = e.count;
	d->eventfd->has_semaphore = true;
	d->eventfd->semaphore = e.semaphore > 0;
	return 0;
}

static int eventfd_validate(const FileDesc *d, const struct blob_reader *blobs)
{
	(void)blobs;
	return d->eventfd && d->eventfd->count < UINT64_MAX ? 0 : fd_bad_data(d);
}

static int eventfd_open(const FileDesc *d, int target, int rootfd, const struct blob_reader *blobs)
{
	(void)blobs;
	const EventfdData *e = d->eventfd;
	int flags = EFD_CLOEXEC | EFD_NONBLOCK | (e->semaphore ? EFD_SEMAPHORE : 0);
	unsigned int init = e->count <= UINT32_MAX ? (unsigned int)e->count : 0;
	(void)rootfd;
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

const struct fd_ops fd_eventfd_ops = {
	.name = "eventfd",
	.kind = FILE_KIND__FILE_EVENTFD,
	.fdinfo_keys = (const char *const[]){ "eventfd-count", "eventfd-id", "eventfd-semaphore", NULL },
	.classify = eventfd_classify,
	.dump = eventfd_dump,
	.validate = eventfd_validate,
	.open = eventfd_open,
};
