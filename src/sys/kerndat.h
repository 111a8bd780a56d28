/* Kernel feature probes: every feature stasis depends on is probed ONCE, lazily (the first
 * time kdat_has() asks for it; kerndat_get() runs every probe) and the answer is cached
 * for the life of the process (a fork inherits what was probed before it). Dump and
 * restore ask kdat_has(KD_...) instead of trying a syscall and falling back on ENOSYS.
 * The capabilities are those of the process that probed them first.
 *
 * Each probe is side-effect free: it leaves no process, no fd and no mapping behind, and
 * it never creates a process with a guessed PID. A probe that cannot decide (a
 * permission error, a seccomp filter) answers "no" and says why in the note of
 * kerndat_feature_note().
 *
 * Features are also listed in a table (enum kd_feature) so that `stasis check` and
 * callers can iterate them, ask which are required and print a note. */
#ifndef STASIS_SYS_KERNDAT_H
#define STASIS_SYS_KERNDAT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct kerndat {
	char release[65];          /* uname -r */

	/* Exact PIDs at restore. */
	bool clone3;               /* clone3() exists */
	bool clone3_set_tid;       /* clone3() honours set_tid (EEXIST for a taken PID) */
	bool clone3_set_tid_eperm; /* the kernel has set_tid but we lack the capability */
	bool ns_last_pid;          /* /proc/sys/kernel/ns_last_pid exists and we may write it */

	/* Reading a task from outside. */
	bool pidfd_open;
	bool pidfd_getfd;
	bool process_vm_readv;
	bool ptrace_seize;             /* PTRACE_SEIZE/INTERRUPT of our own child worked */
	bool ptrace_rseq_config;       /* PTRACE_GET_RSEQ_CONFIGURATION */
	bool ptrace_sigmask;           /* PTRACE_GETSIGMASK */
	int ptrace_errno;              /* why the ptrace probes failed (0 if they ran) */

	/* Memory. */
	bool pagemap_scan;         /* ioctl(PAGEMAP_SCAN) on /proc/self/pagemap */
	bool soft_dirty;           /* pagemap soft-dirty bit is tracked */
	bool uffd;                 /* userfaultfd() usable by us */
	bool uffd_wp_async;        /* UFFD_FEATURE_WP_ASYNC offered */
	uint64_t uffd_features;    /* features UFFDIO_API reported */
	int uffd_errno;            /* why userfaultfd() failed (0 if it worked) */

	/* prctl. */
	bool prctl_mm_map;         /* PR_SET_MM, PR_SET_MM_MAP (PR_SET_MM_MAP_SIZE answers) */
	unsigned int mm_map_size;  /* sizeof(struct prctl_mm_map) of this kernel */
	bool timer_restore_ids;    /* PR_TIMER_CREATE_RESTORE_IDS */

	/* Namespaces. */
	bool time_ns;              /* /proc/self/ns/time exists */

	/* vDSO layout of this process (the restored one must match it). */
	bool vdso, vvar, vvar_vclock;
	uint64_t vdso_size, vvar_size, vvar_vclock_size;

	/* CPU: extended state. */
	bool xsave;                /* OSXSAVE: the OS enabled XSAVE */
	uint32_t xsave_size;       /* CPUID.(0xD,0).EBX: bytes for the enabled features */
	uint64_t xfeatures;        /* XCR0 */

	/* Files. */
	bool close_range;          /* close_range() */
	bool timerfd_set_ticks;    /* ioctl(TFD_IOC_SET_TICKS) (CONFIG_CHECKPOINT_RESTORE) */

	/* Capabilities held (effective set) by this process. */
	bool cap_checkpoint_restore;
	bool cap_sys_admin;
	bool cap_sys_resource;
};

/* The cached probe results, every probe run (each once, thread-safe). Never NULL. */
const struct kerndat *kerndat_get(void);

enum kd_feature {
	KD_EXACT_PIDS,         /* clone3 set_tid, or ns_last_pid as a fallback */
	KD_CLONE3_SET_TID,
	KD_NS_LAST_PID,
	KD_PIDFD_OPEN,
	KD_PIDFD_GETFD,
	KD_PROCESS_VM_READV,
	KD_PTRACE_SIGMASK,
	KD_PTRACE_RSEQ_CONFIG,
	KD_PRCTL_MM_MAP,
	KD_TIMER_RESTORE_IDS,
	KD_PAGEMAP_SCAN,
	KD_UFFD_WP_ASYNC,
	KD_SOFT_DIRTY,
	KD_TIME_NS,
	KD_VDSO,
	KD_XSAVE,
	KD_CAP_CHECKPOINT_RESTORE,
	KD_CAP_SYS_ADMIN,
	KD_CAP_SYS_RESOURCE,
	KD_CLOSE_RANGE,
	KD_TIMERFD_SET_TICKS,
	KD_NR_FEATURES
};

/* Stable short name ("clone3_set_tid"); NULL for an out-of-range value. */
const char *kerndat_feature_name(enum kd_feature f);
/* Whether the probed kernel/process has the feature. */
bool kerndat_has(const struct kerndat *kd, enum kd_feature f);
/* The same, running (once) only the probe of @f: what dump and restore call. */
bool kdat_has(enum kd_feature f);
/* What lacking the feature costs and how to get it ("... ; get it: ..."). */
const char *kerndat_feature_cost(enum kd_feature f);
/* Whether basic dump/restore cannot work without the feature. */
bool kerndat_is_required(enum kd_feature f);
/* A one-line explanation (what it is for, a probed value, or why it is missing) written
 * into @buf; returns @buf. */
const char *kerndat_feature_note(const struct kerndat *kd, enum kd_feature f, char *buf,
				 size_t len);

#endif
