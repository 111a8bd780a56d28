/* AF_UNIX socketpairs: one end per FileDesc (kind FILE_UNIX_SK, FileDesc.unix_sk), both
 * ends in the dumped tree. Used by src/files/files.c. */
#ifndef STASIS_SK_UNIX_H
#define STASIS_SK_UNIX_H

#include <stdbool.h>
#include <sys/types.h>

#include "image/img.h"

/* Images are untrusted: bounds of what one end's queue may hold. */
#define SK_QUEUE_MAX (64u << 20)
#define SK_MSGS_MAX (1u << 20)

/* Dump, fd @fd of @pid, @dup its pidfd_getfd duplicate (shares the socket with the task),
 * @ino its inode: fill d->unix_sk (type, peer, shutdown, options and the queued data,
 * peeked without consuming it). Anything but a connected unnamed AF_UNIX socket, or
 * file descriptors in flight, is a logged -EOPNOTSUPP. */
int sk_unix_dump(pid_t pid, int fd, int dup, const char *link, uint64_t ino, FileDesc *d)
	__must_check;

/* Image check of one FILE_UNIX_SK description. */
int sk_unix_validate(const FileDesc *d) __must_check;

/* True if @b is the other end of @a (and @a of @b), same type. */
bool sk_unix_is_peer(const FileDesc *a, const FileDesc *b);

/* Restore: create the socketpair of ends @a and @b, queue each end's data (sent from
 * the other end, message boundaries kept), set options and shutdown state. *fa / *fb get
 * close-on-exec, non-blocking fds (any numbers); the caller sets the status flags. */
int sk_unix_open_pair(const FileDesc *a, const FileDesc *b, int *fa, int *fb) __must_check;

#endif
