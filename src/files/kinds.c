/* The fd kinds: one row per kind of open file description (struct fd_ops, files/fd_ops.h),
 * in the order the rows are asked to classify an fd at dump; the first to claim it wins.
 * At restore a description finds its row by kind (and the row's owns() where several
 * rows share a kind). Adding a kind is one file with its row, one line here, and its
 * message in FileDesc (docs/ARCHITECTURE.md, "Adding an fd kind").
 *
 * Order matters where the tests overlap: sockets and anon-inode files first (an anon
 * inode is a regular file to fstat on this kernel; each socket row claims its address
 * family, and fd_sock_refused_ops, after them, refuses every other socket), memfds before unlinked files (a
 * memfd's link ends in " (deleted)"), message queues before regular files, tty devices
 * before other character devices (ptys, tty.c, before the external ttys). The two rows
 * here refuse what is not supported yet. */
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

#include "core/log.h"

#include "core/util.h"
#include "files/fd_ops.h"

#define MQUEUE_MAGIC 0x19800202

/* Every anon-inode file the rows above it did not claim. */
static int anon_refuse(const struct dump_ctx *c, struct fd_ent *e)
{
	if (!str_starts(e->link, "anon_inode:"))
		return 0;
	if (!strcmp(e->link, "anon_inode:seccomp notify"))
		return fd_unsupported(c, e, "a seccomp user-notification listener");
	return fd_unsupported(c, e, "an anonymous-inode file (userfaultfd, bpf, "
				    "...)");
}

static const struct fd_ops fd_anon_refused_ops = {
	.name = "anon inode",
	.flags = FD_OPS_REFUSED,
	.classify = anon_refuse,
};

/* The link of a POSIX message queue is relative to the mqueue mount. */
static int mqueue_refuse(const struct dump_ctx *c, struct fd_ent *e)
{
	if (e->fs_type != MQUEUE_MAGIC)
		return 0;
	return fd_unsupported(c, e, "a POSIX message queue descriptor");
}

static const struct fd_ops fd_mqueue_refused_ops = {
	.name = "mqueue",
	.flags = FD_OPS_REFUSED,
	.classify = mqueue_refuse,
};

/* Every socket the socket rows above it did not claim. */
static int sock_refuse(const struct dump_ctx *c, struct fd_ent *e)
{
	char what[80];

	if (!S_ISSOCK(e->st.st_mode))
		return 0;
	snprintf(what, sizeof(what), "a socket of address family %d", e->sk_domain);
	return fd_unsupported(c, e, what);
}

static const struct fd_ops fd_sock_refused_ops = {
	.name = "socket",
	.flags = FD_OPS_REFUSED,
	.classify = sock_refuse,
};

const struct fd_ops *const fd_kinds[] = {
	&fd_tcp_ops,
	&fd_inet_dgram_ops,
	&fd_netlink_ops,
	&fd_packet_ops,
	&fd_unix_ops,
	&fd_sock_refused_ops,
	&fd_eventfd_ops,
	&fd_timerfd_ops,
	&fd_signalfd_ops,
	&fd_inotify_ops,
	&fd_fanotify_ops,
	&fd_epoll_ops,
	&fd_pidfd_ops,
	&fd_io_uring_ops,
	&fd_anon_refused_ops,
	&fd_memfd_ops,
	&fd_mqueue_refused_ops,
	&fd_pipe_ops,
	&fd_fifo_ops,
	&fd_procpid_ops,
	&fd_unlinked_ops,
	&fd_reg_ops,
	&fd_dir_ops,
	&fd_blk_ops,
	&fd_tty_ops,
	&fd_devtty_ops,
	&fd_external_ops,
	&fd_chr_ops,
	NULL,
};
