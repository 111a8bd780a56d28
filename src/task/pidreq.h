/* Pids at pid-namespace levels the creating task has no rights over: stasis writes
 * ns_last_pid for it (src/task/pidreq.c). */
#ifndef STASIS_TASK_PIDREQ_H
#define STASIS_TASK_PIDREQ_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

/* What a creator asks stasis for. */
enum pidreq_op {
	PIDREQ_ANSWER = 0,   /* replies and the creator's follow-ups on the private socket */
	PIDREQ_LAST_PID = 1, /* the next fork at the outermost level gets pid `val` */
	PIDREQ_ID_MAPS = 2,  /* write the uid/gid maps of task `val` (its own were refused) */
};

/* One message {op, val} with an optional fd (SCM_RIGHTS; -1: none). recv waits at most
 * 10 s; a message without the expected shape is -EPROTO. */
int pidreq_send(int sock, int32_t op, int32_t val, int fd) __attribute__((warn_unused_result));
int pidreq_recv(int sock, int32_t *op, int32_t *val, int *fd) __attribute__((warn_unused_result));

/* What stasis does for the requests (restore.c). */
struct pidreq_ops {
	bool (*allowed)(void *arg, pid_t pid);	      /* pid is a task of the image */
	int (*write_maps)(void *arg, pid_t pid);      /* PIDREQ_ID_MAPS: 0 or -errno */
	int (*helper_last_pid)(void *arg, pid_t last); /* NULL: no helper to fall back on */
	void *arg;
};

/* Stasis: serve one request read from @sock. Returns 0 (served, refused, or the creator
 * went away) or -errno when stasis itself failed. */
int pidreq_serve(int sock, const struct pidreq_ops *ops) __attribute__((warn_unused_result));

#endif
