/* IPC namespaces: sysctls and SysV objects (message queues, semaphore sets, detached
 * shared memory segments), dumped from inside the namespace by a helper child and
 * restored with the same ids in the restore child that created the namespace. */
#ifndef STASIS_IPC_H
#define STASIS_IPC_H

#include <sys/types.h>

#include "image/stasis.pb-c.h"

/* Read the IPC namespace of @pid (a child of stasis joins it with setns). Refuses, with a
 * clear message, what cannot be restored: attached segments, POSIX message queues with
 * a notification registered. */
int ipc_dump_ns(pid_t pid, IpcNs **out) __attribute__((warn_unused_result));

/* In the restore child of @pid, right after clone3(CLONE_NEWIPC): sysctls (through
 * stasis's /proc, @proc_dfd), then every object with its id. */
int ipc_restore_ns(const IpcNs *ipc, pid_t pid, int proc_dfd) __attribute__((warn_unused_result));

#endif
