/* signalfd (row fd_signalfd_ops, kind FILE_SIGNALFD, FileDesc.signalfd).
 *
 * Dump: the mask from /proc/PID/fdinfo (fs/signalfd.c show_fdinfo).
 * Restore: signalfd4 with the raw 64-bit mask. */
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "core/log.h"
#include "core/util.h"
#include "files/fd_ops.h"
#include "proc/parse.h"

static int signalfd_classify(const struct dump_ctx *c, struct fd_ent *e)
{
	(void)c;
	if (strcmp(e->link, "anon_inode:[signalfd]"))
		return 0;
	e->kind = FILE_KIND__FILE_SIGNALFD;
	return 1;
}

static int signalfd_dump(const struct dump_ctx *c, const struct fd_ent *e, FileDesc *d)
{
	_cleanup_free_ char *info = NULL;
	int ret = fd_read_fdinfo(c, e->fd, FDINFO_MAX, &info);
	if (ret)
		return ret;
	uint64_t mask;
	if (proc_parse_fdinfo_signalfd(info, &mask)) {
		pr_err("cannot parse the signalfd mask in /proc/%d/fdinfo/%d", c->pid, e->fd);
		return -EINVAL;
	}
	d->signalfd = malloc(sizeof(*d->signalfd));
	if (!d->signalfd)
		return pr_errno(-ENOMEM, "fd %d of pid %d", e->fd, c->pid);
	signalfd_data__init(d->signalfd);
	d->signalfd->sigmask = mask;
	return 0;
}

static int signalfd_validate(const FileDesc *d, const struct blob_reader *blobs)
{
	(void)blobs;
	return d->signalfd ? 0 : fd_bad_data(d);
}

static int signalfd_open(const FileDesc *d, int target, int rootfd, const struct blob_reader *blobs)
{
	(void)blobs;
	uint64_t mask = d->signalfd->sigmask;
	(void)rootfd;
	/* the raw syscall: glibc's sigset_t helpers refuse its internal signals */
	long fd = syscall(SYS_signalfd4, -1, &mask, sizeof(mask), O_CLOEXEC | O_NONBLOCK);
	if (fd < 0)
		return pr_perror("restore fd %d: signalfd (mask %#llx)", target,
				 (unsigned long long)mask);
	return (int)fd;
}

const struct fd_ops fd_signalfd_ops = {
	.name = "signalfd",
	.kind = FILE_KIND__FILE_SIGNALFD,
	.fdinfo_keys = (const char *const[]){ "sigmask", NULL },
	.classify = signalfd_classify,
	.dump = signalfd_dump,
	.validate = signalfd_validate,
	.open = signalfd_open,
};
