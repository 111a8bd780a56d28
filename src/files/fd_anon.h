/* Anon-inode files: eventfd, timerfd, signalfd and epoll (kinds FILE_EVENTFD,
 * FILE_TIMERFD, FILE_SIGNALFD, FILE_EPOLL). Dumped from /proc/PID/fdinfo (and kcmp for
 * the targets of an epoll), rebuilt by creating a new file with the same state. Used by
 * src/files/files.c. */
#ifndef STASIS_FD_ANON_H
#define STASIS_FD_ANON_H

#include <stdbool.h>
#include <sys/types.h>

#include "image/img.h"

/* Images are untrusted: at most this many watched files per epoll. */
#define EPOLL_TARGETS_MAX (1u << 20)

/* The kind of an "anon_inode:..." link, or -EOPNOTSUPP (nothing logged) for the ones not
 * supported. */
int fd_anon_kind(const char *link, FileKind *kind);

/* True for the kinds of this module. */
bool fd_anon_is_kind(FileKind kind);

/* Dump fd @fd of @pid (@procfd: /proc/PID): fill the kind's message in @d from the
 * fdinfo. For an epoll, every watched fd must still be the file that was added under
 * its number (kcmp KCMP_EPOLL_TFD): otherwise a logged -EOPNOTSUPP. */
int fd_anon_dump(pid_t pid, int procfd, int fd, FileDesc *d) __must_check;

/* Image check of one description of these kinds. */
int fd_anon_validate(const FileDesc *d) __must_check;

/* Restore eventfd, timerfd and signalfd descriptions: a new close-on-exec fd (any
 * number) with the dumped state; the caller sets the status flags. @target (for
 * messages) may be -1. */
int fd_anon_open(const FileDesc *d, int target) __must_check;

/* Restore an epoll description once every fd it watches is in place under its final
 * number: a new close-on-exec epoll fd (any number) watching them. */
int fd_epoll_open(const FileDesc *d, int target) __must_check;

#endif
