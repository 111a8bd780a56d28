/* Pids at pid-namespace levels the creating task has no rights over: stasis writes
 * ns_last_pid for it (src/task/pidreq.c). */
#ifndef STASIS_TASK_PIDREQ_H
#define STASIS_TASK_PIDREQ_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

/* One int32 with an optional fd (SCM_RIGHTS; -1: none). recv waits at most 10 s; a
 * message without the expected shape is -EPROTO. */
int pidreq_send(int sock, int32_t val, int fd) __attribute__((warn_unused_result));
int pidreq_recv(int sock, int32_t *val, int *fd) __attribute__((warn_unused_result));

/* Stasis: serve one request read from @sock; @allowed says whether a pid may be asked
 * for. Returns 0 (served, refused, or the creator went away) or -errno when stasis
 * itself failed. */
int pidreq_serve(int sock, bool (*allowed)(void *, pid_t), void *arg)
	__attribute__((warn_unused_result));

#endif
