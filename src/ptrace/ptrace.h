/* Seizing, stopping and releasing tasks with ptrace. Every wait is bounded. */
#ifndef STASIS_PTRACE_PTRACE_H
#define STASIS_PTRACE_PTRACE_H

#include <stdbool.h>
#include <sys/types.h>

#include "core/util.h"

#define PT_WAIT_TIMEOUT_MS 10000

/* PTRACE_SEIZE + PTRACE_INTERRUPT and wait for the stop. @exitkill: kill the tracee if
 * stasis dies (restore), or let it run on (dump). */
int pt_seize_stop(pid_t tid, bool exitkill) __must_check;
/* The same; *@stopsig is the signal of the job-control stop the task was in (SIGSTOP,
 * SIGTSTP, SIGTTIN, SIGTTOU), 0 if it was running. */
int pt_seize_stop_sig(pid_t tid, bool exitkill, int *stopsig) __must_check;
/* Is @pid a task that has not exited (neither gone nor a zombie), per /proc/PID/stat? */
bool pt_task_running(pid_t pid);
/* waitpid for a stop of @tid (bounded). Returns 0 and the status, -ESRCH if it exited
 * (status in *status), -ETIMEDOUT, or -errno. */
int pt_wait(pid_t tid, int *status, int timeout_ms) __must_check;
/* From a syscall-exit or signal stop, get the task back into a stop inside signal
 * delivery (PTRACE_EVENT_STOP), where the kernel's syscall-restart logic applies when it
 * is resumed. */
int pt_stop_in_signal_path(pid_t tid) __must_check;
int pt_detach(pid_t tid, int sig);

#endif
