/* Pids at pid-namespace levels the creating task has no rights over: stasis writes
 * ns_last_pid for it (src/cr/pidreq.c). */
#ifndef STASIS_TASK_PIDREQ_H
#define STASIS_TASK_PIDREQ_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

/* What a creator asks stasis for. */
enum pidreq_op {
	PIDREQ_ANSWER = 0,   /* replies and the creator's follow-ups on the private socket */
	PIDREQ_LAST_PID = 1, /* the next fork gets task `val`'s pids at its `aux` outer levels */
	PIDREQ_ID_MAPS = 2,  /* write the uid/gid maps of task `val` (its own were refused) */
	/* task `val` rebuilt the mount tree of its new mount namespace: the descriptions to
	 * open there come back one per message {ANSWER, id, 0} with the fd (or
	 * {ANSWER, -1, FD} for an fd to put at number FD), then {ANSWER, 0, 0 or -errno} */
	PIDREQ_OPEN_FILES = 3,
	/* task `val` needs a socket buffer over the limits (SO_*BUFFORCE needs CAP_NET_ADMIN
	 * of the initial user namespace): on the private socket {ANSWER, SO_SNDBUF or
	 * SO_RCVBUF, size} with the socket, answered {ANSWER, 0 or -errno} */
	PIDREQ_SOCKBUF = 4,
	/* as PIDREQ_LAST_PID, with the session ids (TaskEntry.nssid) of task `val`, for the
	 * helper of its session whose leader is gone (TaskEntry.via_session) */
	PIDREQ_LAST_SID = 5,
	/* as PIDREQ_LAST_PID, for a transient helper task `val` forks: ids above every id of
	 * the image at its `aux` outer levels */
	PIDREQ_LAST_FREE = 6,
	/* as PIDREQ_LAST_PID, with the process group ids (TaskEntry.nspgid) of task `val`,
	 * for the helper of its group whose leader is gone */
	PIDREQ_LAST_PGID = 7,
};

/* One message {op, val, aux} with an optional fd (SCM_RIGHTS; -1: none). recv waits at
 * most 10 s; a message without the expected shape is -EPROTO. */
int pidreq_send(int sock, int32_t op, int32_t val, int32_t aux, int fd)
	__attribute__((warn_unused_result));
/* @op NULL: an answer is expected (anything else is -EPROTO); @aux may be NULL. */
int pidreq_recv(int sock, int32_t *op, int32_t *val, int32_t *aux, int *fd)
	__attribute__((warn_unused_result));

/* What stasis does for the requests (restore.c). */
struct pidreq_ops {
	bool (*allowed)(void *arg, pid_t pid); /* pid is a task of the image */
	/* ns_last_pid of task @pid's @levels outer pid namespaces set so that the next fork
	 * gets its pids there (@op PIDREQ_LAST_SID: its session's ids, PIDREQ_LAST_FREE:
	 * ids of no task, for its helper): 0 or -errno */
	int (*prepare_pids)(void *arg, pid_t pid, int levels, int op);
	/* the child behind @pidfd got them */
	bool (*check_pids)(void *arg, pid_t pid, int levels, int op, int pidfd);
	int (*write_maps)(void *arg, pid_t pid); /* PIDREQ_ID_MAPS: 0 or -errno */
	/* PIDREQ_OPEN_FILES: send the fds and the end message on @sock */
	void (*open_files)(void *arg, pid_t pid, int sock);
	/* PIDREQ_SOCKBUF: socket @sk's buffer @opt forced to @size: 0 or -errno */
	int (*sockbuf)(void *arg, int sk, int opt, int size);
	void *arg;
};

/* Stasis: serve one request read from @sock. Returns 0 (served, refused, or the creator
 * went away) or -errno when stasis itself failed. */
int pidreq_serve(int sock, const struct pidreq_ops *ops) __attribute__((warn_unused_result));

/* Stasis: ns_last_pid = @last in its own pid namespace (@ns_fd -1), or in the pid
 * namespace @ns_fd (a descendant of stasis's: a child forked in it writes it). */
int pidreq_set_last_pid(int ns_fd, pid_t last) __attribute__((warn_unused_result));

/* The pids of the child behind @pidfd from stasis's pid namespace down (at most @max). */
int pidreq_pidfd_nspid(int pidfd, int *nspid, size_t max, size_t *n)
	__attribute__((warn_unused_result));

#endif
