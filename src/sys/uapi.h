/* UAPI definitions newer than the installed kernel headers (linux-libc-dev 6.1 here,
 * the kernel is 6.18). This is the ONE place such constants and structs live; each is
 * guarded so a newer header wins. Values are from the kernel's include/uapi. */
#ifndef STASIS_SYS_UAPI_H
#define STASIS_SYS_UAPI_H

#include <linux/types.h>
#include <stdint.h>
#include <sys/ioctl.h>

/* --- fs.h: PAGEMAP_SCAN (6.7) --- */
#ifndef PAGEMAP_SCAN
#define PAGE_IS_WPALLOWED (1 << 0)
#define PAGE_IS_WRITTEN (1 << 1)
#define PAGE_IS_FILE (1 << 2)
#define PAGE_IS_PRESENT (1 << 3)
#define PAGE_IS_SWAPPED (1 << 4)
#define PAGE_IS_PFNZERO (1 << 5)
#define PAGE_IS_HUGE (1 << 6)
#define PAGE_IS_SOFT_DIRTY (1 << 7)

struct page_region {
	__u64 start;
	__u64 end;
	__u64 categories;
};

#define PM_SCAN_WP_MATCHING (1 << 0)
#define PM_SCAN_CHECK_WPASYNC (1 << 1)

struct pm_scan_arg {
	__u64 size;
	__u64 flags;
	__u64 start;
	__u64 end;
	__u64 walk_end;
	__u64 vec;
	__u64 vec_len;
	__u64 max_pages;
	__u64 category_inverted;
	__u64 category_mask;
	__u64 category_anyof_mask;
	__u64 return_mask;
};
#define PAGEMAP_SCAN _IOWR('f', 16, struct pm_scan_arg)
#endif

/* --- fs.h: PAGEMAP_SCAN's guard-region category (6.14) --- */
#ifndef PAGE_IS_GUARD
#define PAGE_IS_GUARD (1 << 8)
#endif

/* --- mman-common.h: guard regions (6.13) --- */
#ifndef MADV_GUARD_INSTALL
#define MADV_GUARD_INSTALL 102
#define MADV_GUARD_REMOVE 103
#endif

/* --- sched.h: clone3 (5.3), set_tid (5.5), cgroup (5.7) --- */
#ifndef CLONE_CLEAR_SIGHAND
#define CLONE_CLEAR_SIGHAND 0x100000000ULL
#endif
#ifndef CLONE_INTO_CGROUP
#define CLONE_INTO_CGROUP 0x200000000ULL
#endif
struct stasis_clone_args {
	__u64 flags;
	__u64 pidfd;
	__u64 child_tid;
	__u64 parent_tid;
	__u64 exit_signal;
	__u64 stack;
	__u64 stack_size;
	__u64 tls;
	__u64 set_tid;
	__u64 set_tid_size;
	__u64 cgroup;
};
#define STASIS_CLONE_ARGS_SIZE_VER2 88

/* --- prctl.h --- */
#ifndef PR_SET_MM_MAP
#define PR_SET_MM_MAP 14
#endif
#ifndef PR_GET_TID_ADDRESS
#define PR_GET_TID_ADDRESS 40
#endif
#ifndef PR_TIMER_CREATE_RESTORE_IDS
#define PR_TIMER_CREATE_RESTORE_IDS 77
#define PR_TIMER_CREATE_RESTORE_IDS_OFF 0
#define PR_TIMER_CREATE_RESTORE_IDS_ON 1
#define PR_TIMER_CREATE_RESTORE_IDS_GET 2
#endif
#ifndef PR_GET_AUXV
#define PR_GET_AUXV 0x41555856
#endif

/* --- ptrace.h --- */
#ifndef PTRACE_GET_RSEQ_CONFIGURATION
#define PTRACE_GET_RSEQ_CONFIGURATION 0x420f
#endif
struct stasis_rseq_config {
	__u64 rseq_abi_pointer;
	__u32 rseq_abi_size;
	__u32 signature;
	__u32 flags;
	__u32 pad;
};
#ifndef PTRACE_GET_SYSCALL_INFO
#define PTRACE_GET_SYSCALL_INFO 0x420e
#endif

/* --- rseq --- */
#ifndef RSEQ_FLAG_UNREGISTER
#define RSEQ_FLAG_UNREGISTER 1
#endif

/* --- kernel-internal syscall restart codes seen in rax at a ptrace stop --- */
#define STASIS_ERESTARTSYS 512
#define STASIS_ERESTARTNOINTR 513
#define STASIS_ERESTARTNOHAND 514
#define STASIS_ERESTART_RESTARTBLOCK 516

/* --- signal.h --- */
#ifndef SS_AUTODISARM
#define SS_AUTODISARM (1U << 31)
#endif

/* --- pidfd --- */
#ifndef PIDFD_THREAD
#define PIDFD_THREAD 00000200 /* O_EXCL */
#endif
#ifndef PID_FS_MAGIC
#define PID_FS_MAGIC 0x50494446
#endif
/* PIDFD_GET_INFO (6.13; exit and coredump information 6.15/6.16) */
struct stasis_pidfd_info {
	uint64_t mask;
	uint64_t cgroupid;
	uint32_t pid, tgid, ppid, ruid, rgid, euid, egid, suid, sgid, fsuid, fsgid;
	int32_t exit_code;
	uint32_t coredump_mask;
	uint32_t spare1;
};
#define STASIS_PIDFD_GET_INFO _IOWR(0xFF, 11, struct stasis_pidfd_info)
#define STASIS_PIDFD_INFO_CGROUPID (1UL << 2)
#define STASIS_PIDFD_INFO_EXIT (1UL << 3)
#define STASIS_PIDFD_INFO_COREDUMP (1UL << 4)

/* --- nsfs.h: the id of a mount namespace (6.8) --- */
#ifndef NS_GET_MNTNS_ID
#define NS_GET_MNTNS_ID _IOR(0xb7, 0x5, uint64_t)
#endif

#ifndef PIDFD_GET_PID_NAMESPACE
#define PIDFD_GET_PID_NAMESPACE _IO(0xFF, 5) /* 6.11 */
#endif

/* --- timerfd.h: restoring the ticks (CONFIG_CHECKPOINT_RESTORE) --- */
#ifndef TFD_IOC_SET_TICKS
#define TFD_IOC_SET_TICKS _IOW('T', 0, uint64_t)
#endif

/* --- userfaultfd.h: write-protect features (6.4/6.7) --- */
#ifndef UFFD_FEATURE_WP_UNPOPULATED
#define UFFD_FEATURE_WP_UNPOPULATED (1 << 13)
#endif
#ifndef UFFD_FEATURE_WP_ASYNC
#define UFFD_FEATURE_WP_ASYNC (1 << 15)
#endif

/* --- pagemap entry bits (Documentation/admin-guide/mm/pagemap.rst) --- */
#ifndef PM_SOFT_DIRTY_BIT
#define PM_SOFT_DIRTY_BIT 55
#endif

/* --- prctl.h: PR_SET_THP_DISABLE's flag (6.18) --- */
#ifndef PR_THP_DISABLE_EXCEPT_ADVISED
#define PR_THP_DISABLE_EXCEPT_ADVISED (1 << 1)
#endif

/* --- linux/sched/types.h: struct sched_attr (its header clashes with <sched.h>) --- */
struct stasis_sched_attr {
	uint32_t size;
	uint32_t sched_policy;
	uint64_t sched_flags;
	int32_t sched_nice;
	uint32_t sched_priority;
	uint64_t sched_runtime, sched_deadline, sched_period;
	uint32_t sched_util_min, sched_util_max;
};
#ifndef SCHED_DEADLINE
#define SCHED_DEADLINE 6
#endif
#ifndef SCHED_FLAG_RESET_ON_FORK
#define SCHED_FLAG_RESET_ON_FORK 0x01
#endif
#ifndef SCHED_FLAG_UTIL_CLAMP_MIN
#define SCHED_FLAG_UTIL_CLAMP_MIN 0x20
#define SCHED_FLAG_UTIL_CLAMP_MAX 0x40
#endif

/* --- membarrier.h: the registrations of an address space (6.3); the rest is in 6.1's --- */
#define STASIS_MEMBARRIER_CMD_GET_REGISTRATIONS (1 << 9)

/* --- prctl.h: memory-deny-write-execute (6.3), KSM for the whole process (6.4) --- */
#ifndef PR_SET_MDWE
#define PR_SET_MDWE 65
#define PR_GET_MDWE 66
#endif
#ifndef PR_MDWE_REFUSE_EXEC_GAIN
#define PR_MDWE_REFUSE_EXEC_GAIN (1UL << 0)
#endif
#ifndef PR_MDWE_NO_INHERIT
#define PR_MDWE_NO_INHERIT (1UL << 1)
#endif
#ifndef PR_SET_MEMORY_MERGE
#define PR_SET_MEMORY_MERGE 67
#define PR_GET_MEMORY_MERGE 68
#endif

/* --- socket options (src/net/sockopt.c): asm-generic/socket.h, linux/in.h, linux/in6.h --- */
#ifndef SO_PASSPIDFD
#define SO_PASSPIDFD 76
#endif
#ifndef SO_RCVPRIORITY
#define SO_RCVPRIORITY 82
#endif
#ifndef SO_PASSRIGHTS
#define SO_PASSRIGHTS 83
#endif
/* UDP-Lite's checksum coverage (include/net/udplite.h: not in the UAPI headers) */
#ifndef UDPLITE_SEND_CSCOV
#define UDPLITE_SEND_CSCOV 10
#endif
#ifndef UDPLITE_RECV_CSCOV
#define UDPLITE_RECV_CSCOV 11
#endif
#ifndef IP_LOCAL_PORT_RANGE
#define IP_LOCAL_PORT_RANGE 51
#endif
#ifndef IPV6_FLOWINFO
#define IPV6_FLOWINFO 11
#endif
#ifndef IPV6_FLOWINFO_SEND
#define IPV6_FLOWINFO_SEND 33
#endif
#ifndef SOF_TIMESTAMPING_BIND_PHC
#define SOF_TIMESTAMPING_BIND_PHC (1 << 15)
#endif

/* SysV shared memory on huge pages: the page size's log2 above this bit (linux/shm.h) */
#ifndef SHM_HUGE_SHIFT
#define SHM_HUGE_SHIFT 26
#endif
/* memfd_create(MFD_HUGETLB): the same (linux/memfd.h, which clashes with glibc's MFD_*) */
#ifndef MFD_HUGE_SHIFT
#define MFD_HUGE_SHIFT 26
#endif

/* --- io_uring.h (6.5, 6.6; 6.8) --- */
#define STASIS_IORING_SETUP_NO_MMAP (1U << 14)
#define STASIS_IORING_SETUP_NO_SQARRAY (1U << 16)
#define STASIS_IORING_REGISTER_PBUF_STATUS 26
#define STASIS_IORING_OFF_PBUF_RING 0x80000000ULL

#endif
