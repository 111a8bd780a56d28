/* External files (row fd_external_ops, kind FILE_EXTERNAL): what cannot be rebuilt —
 * ttys, and pipes whose other end is outside the dumped tree (pipe.c moves those here).
 *
 * At restore the child inherits the restoring stasis's own fd with the same number (like
 * CRIU's --shell-job for stdio), or the fd that --inherit-fd fd[N]:KEY names for the
 * file's name (a container runtime passes the pipes of the container's stdio so); if
 * stasis has no such fd, /dev/null takes its place with the dumped access mode, and a
 * warning says so. */
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "core/log.h"
#include "core/util.h"
#include "files/fd_ops.h"
#include "files/files.h"

int files_parse_inherit(const char *arg, int *fd, const char **key)
{
	char num[16];
	const char *end = str_starts(arg, "fd[") ? strstr(arg, "]:") : NULL;
	long long v;
	size_t n = end ? (size_t)(end - arg - 3) : 0;

	if (!end || n == 0 || n >= sizeof(num)) {
		pr_err("inherit-fd '%s': expected fd[N]:KEY", arg);
		return -EINVAL;
	}
	memcpy(num, arg + 3, n);
	num[n] = '\0';
	if (parse_int(num, 0, 1 << 20, &v) || !end[2] || strlen(end + 2) > 4096) {
		pr_err("inherit-fd '%s': expected fd[N]:KEY with a number N and a key", arg);
		return -EINVAL;
	}
	*fd = (int)v;
	*key = end + 2;
	return 0;
}

/* The fd of stasis that --inherit-fd gives to the file named @name, or -1. */
static int inherit_fd_for(const struct fd_rst *s, const char *name)
{
	for (size_t k = 0; k < s->n_inherit; k++) {
		int fd;
		const char *key;
		if (!files_parse_inherit(s->inherit[k], &fd, &key) && !strcmp(key, name))
			return fd;
	}
	return -1;
}

static bool is_tty_major(unsigned int maj)
{
	/* 4: tty/ttyS, 5: /dev/tty, console, ptmx; 136-143: unix98 pty slaves */
	return maj == 4 || maj == 5 || (maj >= 136 && maj <= 143);
}

static int external_classify(const struct dump_ctx *c, struct fd_ent *e)
{
	(void)c;
	if (!S_ISCHR(e->st.st_mode) || !is_tty_major(major(e->st.st_rdev)))
		return 0;
	e->kind = FILE_KIND__FILE_EXTERNAL;
	return 1;
}

/* Each Fd keeps stasis's own fd of that number if there is one; the others share one
 * /dev/null opened with the dumped access mode. Runs before anything else is opened or
 * placed. */
static int external_prepare(struct fd_rst *s)
{
	const Files *f = s->f;

	for (size_t k = 0; k < f->n_fds; k++) {
		const Fd *fd = f->fds[k];
		size_t i = (size_t)fd_desc_index(f, fd->file_id);
		const FileDesc *d = f->files[i];
		if (d->kind != FILE_KIND__FILE_EXTERNAL)
			continue;
		int from = inherit_fd_for(s, fd_desc_name(d));
		if (from >= 0 && from != fd->fd) {
			if (s->staged[i] >= 0)
				continue;
			int tmp = fcntl(from, F_DUPFD_CLOEXEC, 0);
			if (tmp < 0)
				return pr_perror("restore fd %d (%s): inherit-fd %d", fd->fd,
						 fd_desc_name(d), from);
			int r = fd_stage(tmp, s->stage_lo, fd->fd, fd_desc_name(d));
			if (r < 0)
				return r;
			s->staged[i] = r;
			continue;
		}
		int fl = fcntl(fd->fd, F_GETFL);
		if (fl >= 0) {
			s->inherited[k] = true;
			if ((fl & O_ACCMODE) != (int)(d->flags & O_ACCMODE))
				pr_warn("restore fd %d (%s): inherited fd has access mode %o, was %o",
					fd->fd, fd_desc_name(d), fl & O_ACCMODE, d->flags & O_ACCMODE);
			continue;
		}
		if (s->staged[i] >= 0)
			continue;
		int tmp = open("/dev/null", (int)(d->flags & O_ACCMODE) | O_CLOEXEC);
		if (tmp < 0)
			return pr_perror("restore fd %d: cannot open /dev/null", fd->fd);
		int r = fd_stage(tmp, s->stage_lo, fd->fd, "/dev/null");
		if (r < 0)
			return r;
		s->staged[i] = r;
		pr_warn("restore fd %d: external file %s is not open in stasis; /dev/null "
			"takes its place", fd->fd, fd_desc_name(d));
	}
	return 0;
}

const struct fd_ops fd_external_ops = {
	.name = "external file",
	.kind = FILE_KIND__FILE_EXTERNAL,
	.flags = FD_OPS_INHERITED,
	.classify = external_classify,
	.prepare = external_prepare,
};
