/* Raw syscall wrappers for calls glibc 2.36 lacks or wraps unhelpfully. Each returns
 * what the syscall returns with errno set on failure (like glibc), ENOSYS when the
 * kernel lacks it. */
#ifndef STASIS_SYS_SYSCALLS_H
#define STASIS_SYS_SYSCALLS_H

#include <signal.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "sys/uapi.h"

#ifndef __NR_pidfd_open
#define __NR_pidfd_open 434
#endif
#ifndef __NR_clone3
#define __NR_clone3 435
#endif
#ifndef __NR_pidfd_getfd
#define __NR_pidfd_getfd 438
#endif
#ifndef __NR_pidfd_send_signal
#define __NR_pidfd_send_signal 424
#endif
#ifndef __NR_mseal
#define __NR_mseal 462
#endif

static inline int sys_pidfd_open(pid_t pid, unsigned int flags)
{
	return (int)syscall(__NR_pidfd_open, pid, flags);
}
static inline int sys_pidfd_getfd(int pidfd, int fd, unsigned int flags)
{
	return (int)syscall(__NR_pidfd_getfd, pidfd, fd, flags);
}
static inline int sys_pidfd_send_signal(int pidfd, int sig, siginfo_t *info, unsigned int flags)
{
	return (int)syscall(__NR_pidfd_send_signal, pidfd, sig, info, flags);
}
static inline long sys_clone3(struct stasis_clone_args *args, size_t size)
{
	return syscall(__NR_clone3, args, size);
}
/* openat2(2) with a struct open_how (linux/openat2.h). */
static inline int sys_openat2(int dfd, const char *path, void *how, size_t size)
{
	return (int)syscall(SYS_openat2, dfd, path, how, size);
}
static inline int sys_rt_sigqueueinfo(pid_t tgid, int sig, siginfo_t *info)
{
	return (int)syscall(SYS_rt_sigqueueinfo, tgid, sig, info);
}
static inline int sys_rt_tgsigqueueinfo(pid_t tgid, pid_t tid, int sig, siginfo_t *info)
{
	return (int)syscall(SYS_rt_tgsigqueueinfo, tgid, tid, sig, info);
}
static inline pid_t sys_gettid(void) { return (pid_t)syscall(SYS_gettid); }

/* The kernel's struct sigaction (rt_sigaction ABI on x86_64). */
struct k_sigaction {
	unsigned long handler;
	unsigned long flags;
	unsigned long restorer;
	unsigned long mask;
};
#ifndef SA_RESTORER
#define SA_RESTORER 0x04000000
#endif

#endif
