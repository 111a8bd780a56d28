/* The client side of the privileged helper (helper/helper.h, docs/ARCHITECTURE.md "The
 * privileged helper"): plain functions that send one request each and wait (bounded) for
 * the reply. They return 0 or -errno; a refusal is logged once with the helper's reason
 * ("helper refused WRITE_ID_MAP: ...") and its status returned.
 *
 * Whoever holds the channel can drive the helper, so helper_spawn() and helper_connect()
 * make the calling process non-dumpable (no ptrace by same-uid processes, no core
 * dump). A child forked while the channel is open inherits both the fd and the
 * non-dumpable state: it must call helper_child_after_fork() first thing (restore
 * children do not need the channel, and must be dumpable again to be seized). */
#ifndef STASIS_HELPER_CLIENT_H
#define STASIS_HELPER_CLIENT_H

#include <fcntl.h>
#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "helper/proto.h"

struct helper {
	int fd;		  /* the channel (SOCK_SEQPACKET), -1 when closed */
	pid_t pid;	  /* the spawned helper, 0 for a connected one */
	int was_dumpable; /* the caller's dumpable state before the channel was opened */
};
#define HELPER_INIT { .fd = -1, .pid = 0, .was_dumpable = 1 }

enum helper_id_map { HELPER_UID_MAP, HELPER_GID_MAP };

/* How long a call waits for the helper's reply. */
#define HELPER_CALL_TIMEOUT_MS 10000

/* Fork a helper that serves this process over a socketpair (the spawned mode), before
 * the caller enters a user namespace: the helper stays in the caller's namespaces with
 * the caller's privileges, serves the caller's euid (and root), dies with the caller
 * (PR_SET_PDEATHSIG) and exits when the channel is closed. */
int helper_spawn(struct helper *h) __attribute__((warn_unused_result));
/* Connect to a long-lived `stasis helper --socket PATH`. */
int helper_connect(struct helper *h, const char *path) __attribute__((warn_unused_result));
/* Close the channel; a spawned helper is waited for (2 s, then killed) and reaped. */
void helper_close(struct helper *h);
/* In a child forked while @h was open: drop the inherited channel and make the child
 * dumpable again (if the parent was). Never fails. */
void helper_child_after_fork(struct helper *h);

/* The helper of the restore in progress, for code deep in the restore (a socket buffer
 * over the limits, sk_unix.c): set by restore_run while the channel is open, NULL
 * otherwise; in a restore child its fd is already closed (use it only if fd >= 0). */
void helper_set_default(struct helper *h);
struct helper *helper_default(void);

/* Register the root of the tree being restored: @root must be the caller or one of its
 * descendants. Later requests may name only that task and its descendants. */
int helper_register_tree(struct helper *h, pid_t root) __attribute__((warn_unused_result));
/* Write the uid_map or gid_map of task @pid (of the registered tree) in one write:
 * @n (1..340) ranges; for a gid_map, setgroups "deny" first if @deny_setgroups. A
 * non-root caller may map its own id once and ranges of its /etc/subuid, /etc/subgid. */
int helper_write_id_map(struct helper *h, pid_t pid, enum helper_id_map which,
			const struct id_range *r, size_t n, bool deny_setgroups)
	__attribute__((warn_unused_result));
/* Write ns_last_pid of the helper's PID namespace (@pidns_fd: an nsfs fd that must name
 * it, or -1), so that the next fork there gets @last_pid + 1. Racy by nature: another
 * fork in that namespace may take the pid first; the caller checks the pid its child got
 * and retries (kill and reap the child, ask again) a bounded number of times. */
int helper_set_last_pid(struct helper *h, int pidns_fd, pid_t last_pid)
	__attribute__((warn_unused_result));
/* SO_SNDBUFFORCE / SO_RCVBUFFORCE on socket @sk (values <= HELPER_SOCKBUF_MAX; a
 * negative value leaves that buffer alone). */
int helper_sockbuf_force(struct helper *h, int sk, int snd, int rcv)
	__attribute__((warn_unused_result));
/* open_by_handle_at(@mount_fd, @fh, @flags) by the helper; only if the caller could open
 * the file by path itself (see ops.c). @flags: O_RDONLY/O_WRONLY/O_RDWR or O_PATH, plus
 * O_CLOEXEC. The new fd in *@fd (always close-on-exec here). */
int helper_open_by_handle(struct helper *h, int mount_fd, const struct file_handle *fh,
			  int flags, int *fd) __attribute__((warn_unused_result));

/* Low level (tests): send @len raw bytes with @nfds fds and wait for the reply. 0 with
 * the decoded reply in @rep (its status may be an error) and a returned fd, if any, in
 * *@out_fd (-1 if none; may be NULL), or -errno if no valid reply came. Logs nothing. */
int helper_call_raw(struct helper *h, const void *msg, size_t len, const int *fds,
		    unsigned int nfds, struct helper_reply *rep, int *out_fd)
	__attribute__((warn_unused_result));

#endif
