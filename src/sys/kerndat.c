#include "sys/kerndat.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <linux/capability.h>
#include <linux/userfaultfd.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/ptrace.h>
#include <sys/uio.h>
#include <sys/utsname.h>
#include <sys/timerfd.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "arch/arch.h"
#include "core/log.h"
#include "core/util.h"
#include "sys/syscalls.h"
#include "sys/uapi.h"

#ifndef PTRACE_GETSIGMASK
#define PTRACE_GETSIGMASK 0x420a
#endif

static struct kerndat kd_cache;

/* Kill a child we created and reap it (bounded); a child that does not die within 5 s
 * is reported, not waited for forever. */
static void kill_and_reap(pid_t pid)
{
	int status;

	kill(pid, SIGKILL);
	for (;;) {
		pid_t r = waitpid_bounded(pid, &status, 5000);
		if (r < 0 && errno == EINTR)
			continue;
		if (r == 0)
			pr_warn("kerndat: probe child %d did not die within 5s", (int)pid);
		if (r == pid && !WIFEXITED(status) && !WIFSIGNALED(status))
			continue; /* a stop/continue report: wait for the death */
		return;
	}
}

static bool has_cap(const struct __user_cap_data_struct data[2], int cap)
{
	return data[cap / 32].effective & (1u << (cap % 32));
}

static void probe_caps(struct kerndat *kd)
{
	struct __user_cap_header_struct hdr = { .version = _LINUX_CAPABILITY_VERSION_3 };
	struct __user_cap_data_struct data[2];

	memset(data, 0, sizeof(data));
	if (syscall(SYS_capget, &hdr, data) < 0)
		return;
	kd->cap_checkpoint_restore = has_cap(data, CAP_CHECKPOINT_RESTORE);
	kd->cap_sys_admin = has_cap(data, CAP_SYS_ADMIN);
	kd->cap_sys_resource = has_cap(data, CAP_SYS_RESOURCE);
}

/* clone3() with set_tid = our own PID, which is surely taken: a kernel that honours
 * set_tid fails with EEXIST (after its permission check), and no process is created. */
static void probe_clone3(struct kerndat *kd)
{
	pid_t taken = getpid();
	struct stasis_clone_args args;

	memset(&args, 0, sizeof(args));
	args.exit_signal = SIGCHLD;
	args.set_tid = (uint64_t)(uintptr_t)&taken;
	args.set_tid_size = 1;
	long r = sys_clone3(&args, sizeof(args));
	if (r == 0)
		_exit(0); /* cannot happen with a taken PID; never run on in a probe child */
	if (r > 0) {
		kill_and_reap((pid_t)r);
		kd->clone3 = true;
		return;
	}
	switch (errno) {
	case EEXIST:
		kd->clone3 = kd->clone3_set_tid = true;
		break;
	case EPERM:
		kd->clone3 = kd->clone3_set_tid_eperm = true;
		break;
	case ENOSYS:
		break;
	default: /* EINVAL, E2BIG: clone3 without (this) set_tid */
		kd->clone3 = true;
		break;
	}
	/* ns_last_pid: the file must exist; writing it needs CAP_CHECKPOINT_RESTORE or
	 * CAP_SYS_ADMIN over the PID namespace (we do not write it to find out). */
	kd->ns_last_pid = access("/proc/sys/kernel/ns_last_pid", F_OK) == 0 &&
			  (kd->cap_checkpoint_restore || kd->cap_sys_admin);
}

static void probe_pidfd(struct kerndat *kd)
{
	int pidfd = sys_pidfd_open(getpid(), 0);
	if (pidfd < 0)
		return;
	kd->pidfd_open = true;
	int fd = sys_pidfd_getfd(pidfd, pidfd, 0);
	if (fd >= 0) {
		kd->pidfd_getfd = true;
		close(fd);
	}
	close(pidfd);
}

static void probe_process_vm_readv(struct kerndat *kd)
{
	uint64_t src = 0x5354415349530a00ULL, dst = 0;
	struct iovec local = { .iov_base = &dst, .iov_len = sizeof(dst) };
	struct iovec remote = { .iov_base = &src, .iov_len = sizeof(src) };

	kd->process_vm_readv = process_vm_readv(getpid(), &local, 1, &remote, 1, 0) ==
				       (ssize_t)sizeof(src) &&
			       dst == src;
}

/* A child that waits to be killed; it dies with us if we die mid-probe. */
static void __attribute__((noreturn)) probe_child(pid_t parent)
{
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	if (getppid() != parent)
		_exit(0);
	for (;;)
		pause();
}

static void probe_ptrace(struct kerndat *kd)
{
	pid_t parent = getpid();
	int status;
	pid_t pid = fork();

	if (pid < 0) {
		kd->ptrace_errno = errno;
		return;
	}
	if (pid == 0)
		probe_child(parent);

	if (ptrace(PTRACE_SEIZE, pid, 0, 0) < 0 || ptrace(PTRACE_INTERRUPT, pid, 0, 0) < 0) {
		kd->ptrace_errno = errno;
		goto out;
	}
	pid_t r;
	do
		r = waitpid_bounded(pid, &status, 2000);
	while (r < 0 && errno == EINTR);
	if (r != pid || !WIFSTOPPED(status)) {
		kd->ptrace_errno = r == 0 ? ETIMEDOUT : r < 0 ? errno : ESRCH;
		goto out;
	}
	kd->ptrace_seize = true;

	uint64_t mask;
	kd->ptrace_sigmask = ptrace(PTRACE_GETSIGMASK, pid, sizeof(mask), &mask) == 0;
	struct stasis_rseq_config rc;
	memset(&rc, 0, sizeof(rc));
	kd->ptrace_rseq_config =
		ptrace((enum __ptrace_request)PTRACE_GET_RSEQ_CONFIGURATION, pid, sizeof(rc),
		       &rc) > 0;
out:
	kill_and_reap(pid);
}

static void probe_pagemap(struct kerndat *kd)
{
	_cleanup_close_ int fd = open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return;

	/* PAGEMAP_SCAN over one page of our own stack. */
	uintptr_t here = (uintptr_t)&fd & PAGE_MASK;
	struct page_region reg;
	struct pm_scan_arg arg;
	memset(&arg, 0, sizeof(arg));
	arg.size = sizeof(arg);
	arg.start = here;
	arg.end = here + PAGE_SIZE;
	arg.vec = (uintptr_t)&reg;
	arg.vec_len = 1;
	arg.category_mask = PAGE_IS_PRESENT;
	arg.return_mask = PAGE_IS_PRESENT;
	kd->pagemap_scan = ioctl(fd, PAGEMAP_SCAN, &arg) >= 0;

	/* Soft-dirty: a freshly written private page reports bit 55 if it is tracked. */
	void *p = mmap(NULL, PAGE_SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
		       -1, 0);
	if (p == MAP_FAILED)
		return;
	*(volatile char *)p = 1;
	uint64_t ent = 0;
	if (pread(fd, &ent, sizeof(ent), (off_t)((uintptr_t)p / PAGE_SIZE * sizeof(ent))) ==
	    (ssize_t)sizeof(ent))
		kd->soft_dirty = (ent >> PM_SOFT_DIRTY_BIT) & 1;
	munmap(p, PAGE_SIZE);
}

static void probe_uffd(struct kerndat *kd)
{
	int fd = (int)syscall(SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK | UFFD_USER_MODE_ONLY);
	if (fd < 0 && (errno == EINVAL || errno == EPERM))
		fd = (int)syscall(SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK);
	if (fd < 0) {
		kd->uffd_errno = errno;
		return;
	}
	/* Features 0: the kernel reports every feature it offers. */
	struct uffdio_api api = { .api = UFFD_API, .features = 0 };
	if (ioctl(fd, UFFDIO_API, &api) == 0) {
		kd->uffd = true;
		kd->uffd_features = api.features;
		kd->uffd_wp_async = api.features & UFFD_FEATURE_WP_ASYNC;
	} else {
		kd->uffd_errno = errno;
	}
	close(fd);
}

static void probe_prctl(struct kerndat *kd)
{
	unsigned int size = 0;

	if (prctl(PR_SET_MM, PR_SET_MM_MAP_SIZE, (unsigned long)&size, 0, 0) == 0) {
		kd->prctl_mm_map = true;
		kd->mm_map_size = size;
	}
	kd->timer_restore_ids =
		prctl(PR_TIMER_CREATE_RESTORE_IDS, PR_TIMER_CREATE_RESTORE_IDS_GET, 0, 0, 0) >= 0;
}

static bool maps_line_is(const char *line, size_t len, const char *name)
{
	size_t n = strlen(name);
	return len > n && line[len - n - 1] == ' ' && !memcmp(line + len - n, name, n);
}

static void probe_vdso(struct kerndat *kd)
{
	size_t len;
	_cleanup_free_ char *maps = read_file_at(AT_FDCWD, "/proc/self/maps", 64u << 20, &len);
	if (!maps)
		return;
	for (char *line = maps; line < maps + len;) {
		char *nl = memchr(line, '\n', (size_t)(maps + len - line));
		size_t ll = nl ? (size_t)(nl - line) : (size_t)(maps + len - line);
		unsigned long long start, end;
		if (sscanf(line, "%llx-%llx", &start, &end) == 2 && end > start) {
			if (maps_line_is(line, ll, "[vdso]")) {
				kd->vdso = true;
				kd->vdso_size = end - start;
			} else if (maps_line_is(line, ll, "[vvar]")) {
				kd->vvar = true;
				kd->vvar_size = end - start;
			} else if (maps_line_is(line, ll, "[vvar_vclock]")) {
				kd->vvar_vclock = true;
				kd->vvar_vclock_size = end - start;
			}
		}
		if (!nl)
			break;
		line = nl + 1;
	}
}

static void probe_xsave(struct kerndat *kd)
{
	arch_probe_xsave(&kd->xsave, &kd->xsave_size, &kd->xfeatures);
}

static void probe_release(struct kerndat *kd)
{
	struct utsname u;
	if (uname(&u) == 0)
		snprintf(kd->release, sizeof(kd->release), "%s", u.release);
}

static void probe_time_ns(struct kerndat *kd)
{
	kd->time_ns = access("/proc/self/ns/time", F_OK) == 0;
}

/* close_range() over an empty range (no fd is that high): 0 where it exists. */
static void probe_close_range(struct kerndat *kd)
{
	kd->close_range = syscall(SYS_close_range, ~0U, ~0U, 0) == 0;
}

/* TFD_IOC_SET_TICKS (CONFIG_CHECKPOINT_RESTORE) on a timerfd of our own, disarmed. */
static void probe_timerfd(struct kerndat *kd)
{
	int fd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
	if (fd < 0)
		return;
	uint64_t one = 1;
	kd->timerfd_set_ticks = ioctl(fd, TFD_IOC_SET_TICKS, &one) == 0;
	close(fd);
}

/* Probe groups: each is run once, the first time one of its features is asked for. */
enum kd_group {
	G_RELEASE,
	G_CAPS,
	G_CLONE3, /* needs G_CAPS */
	G_PIDFD,
	G_PVM,
	G_PTRACE,
	G_PAGEMAP,
	G_UFFD,
	G_PRCTL,
	G_TIME_NS,
	G_VDSO,
	G_XSAVE,
	G_CLOSE_RANGE,
	G_TIMERFD,
	G_NR
};

static void (*const kd_probes[G_NR])(struct kerndat *) = {
	[G_RELEASE] = probe_release,
	[G_CAPS] = probe_caps,
	[G_CLONE3] = probe_clone3,
	[G_PIDFD] = probe_pidfd,
	[G_PVM] = probe_process_vm_readv,
	[G_PTRACE] = probe_ptrace,
	[G_PAGEMAP] = probe_pagemap,
	[G_UFFD] = probe_uffd,
	[G_PRCTL] = probe_prctl,
	[G_TIME_NS] = probe_time_ns,
	[G_VDSO] = probe_vdso,
	[G_XSAVE] = probe_xsave,
	[G_CLOSE_RANGE] = probe_close_range,
	[G_TIMERFD] = probe_timerfd,
};

static pthread_mutex_t kd_lock = PTHREAD_RECURSIVE_MUTEX_INITIALIZER_NP;
static uint32_t kd_done; /* bit per enum kd_group */

static void kd_ensure(enum kd_group g)
{
	pthread_mutex_lock(&kd_lock);
	if (!(__atomic_load_n(&kd_done, __ATOMIC_ACQUIRE) & (1u << g))) {
		int saved = errno;
		if (g == G_CLONE3)
			kd_ensure(G_CAPS); /* (recursive lock) */
		kd_probes[g](&kd_cache);
		__atomic_or_fetch(&kd_done, 1u << g, __ATOMIC_RELEASE);
		errno = saved;
	}
	pthread_mutex_unlock(&kd_lock);
}

const struct kerndat *kerndat_get(void)
{
	for (int g = 0; g < G_NR; g++)
		kd_ensure((enum kd_group)g);
	return &kd_cache;
}

static const struct {
	const char *name;
	bool required;
	const char *if_missing; /* what it costs, how to get it */
} kd_features[KD_NR_FEATURES] = {
	[KD_EXACT_PIDS] = { "exact_pids", true,
			    "no restore at all (every task must get its pid back); get it: Linux "
			    "5.5+ with CAP_CHECKPOINT_RESTORE or root" },
	[KD_CLONE3_SET_TID] = { "clone3_set_tid", false,
				"every task is made through ns_last_pid, retried when another fork "
				"takes the pid first; get it: Linux 5.5+, CAP_CHECKPOINT_RESTORE "
				"(setcap cap_checkpoint_restore+ep on stasis) or root" },
	[KD_NS_LAST_PID] = { "ns_last_pid", false,
			     "no fallback where clone3 set_tid fails; get it: "
			     "CONFIG_CHECKPOINT_RESTORE and CAP_CHECKPOINT_RESTORE or root" },
	[KD_PIDFD_OPEN] = { "pidfd_open", true,
			    "no dump or restore (a task could be swapped for another one with its "
			    "pid); get it: Linux 5.3+" },
	[KD_PIDFD_GETFD] = { "pidfd_getfd", false,
			     "sockets, epoll, eventfd, timerfd and the other fds read through a "
			     "duplicate cannot be dumped; get it: Linux 5.6+" },
	[KD_PROCESS_VM_READV] = { "process_vm_readv", true,
				  "no memory can be copied; get it: CONFIG_CROSS_MEMORY_ATTACH" },
	[KD_PTRACE_SIGMASK] = { "ptrace_getsigmask", true,
				"no signal mask can be read; get it: Linux 3.11+" },
	[KD_PTRACE_RSEQ_CONFIG] = { "ptrace_get_rseq_configuration", false,
				    "dumps fail (every thread of glibc 2.35+ registers rseq); "
				    "get it: Linux 5.13+" },
	[KD_PRCTL_MM_MAP] = { "prctl_set_mm_map", true,
			      "no restore (brk, arguments, auxv, exe link); get it: "
			      "CONFIG_CHECKPOINT_RESTORE" },
	[KD_TIMER_RESTORE_IDS] = { "prctl_timer_create_restore_ids", false,
				   "POSIX timers are made in id order (ids in between made and "
				   "deleted): slower with many timers; get it: a kernel with "
				   "PR_TIMER_CREATE_RESTORE_IDS" },
	[KD_PAGEMAP_SCAN] = { "pagemap_scan", false,
			      "no pre-dump or incremental dump (--prev-images-dir, --track-mem); "
			      "get it: Linux 6.7+" },
	[KD_UFFD_WP_ASYNC] = { "uffd_wp_async", false,
			       "no pre-dump or incremental dump; get it: Linux 6.7+ with "
			       "CONFIG_USERFAULTFD and CONFIG_PTE_MARKER_UFFD_WP" },
	[KD_SOFT_DIRTY] = { "soft_dirty", false,
			    "nothing: stasis tracks writes with pagemap_scan and userfaultfd "
			    "instead" },
	[KD_TIME_NS] = { "time_ns", false,
			 "a tree in a time namespace cannot be restored; get it: Linux 5.6+ "
			 "with CONFIG_TIME_NS" },
	[KD_VDSO] = { "vdso", false,
		      "informational (the sizes shown): the restore moves the vDSO it has "
		      "where the task's was" },
	[KD_XSAVE] = { "xsave", false,
		       "informational (the area size shown): registers are read and written with "
		       "PTRACE_GETREGSET NT_X86_XSTATE" },
	[KD_CAP_CHECKPOINT_RESTORE] = { "cap_checkpoint_restore", false,
					"as a plain user, exact pids only in pid namespaces of "
					"a user namespace you own; get it: setcap "
					"cap_checkpoint_restore+ep on stasis, or `stasis helper`" },
	[KD_CAP_SYS_ADMIN] = { "cap_sys_admin", false,
			       "namespaces, mounts and --pin-ns need a user namespace you own; "
			       "get it: root, or rootless through a user namespace" },
	[KD_CAP_SYS_RESOURCE] = { "cap_sys_resource", false,
				  "nothing while PR_SET_MM_MAP is there; oom_score_adj below "
				  "the restorer's own and buffer sizes past the limits go "
				  "through `stasis helper`" },
	[KD_CLOSE_RANGE] = { "close_range", false,
			     "one close per fd at restore (slower with many fds); get it: Linux "
			     "5.9+" },
	[KD_TIMERFD_SET_TICKS] = { "timerfd_set_ticks", false,
				   "a timerfd with unread expirations cannot be restored; get "
				   "it: CONFIG_CHECKPOINT_RESTORE" },
};

const char *kerndat_feature_name(enum kd_feature f)
{
	if ((unsigned)f >= KD_NR_FEATURES)
		return NULL;
	return kd_features[f].name;
}

const char *kerndat_feature_cost(enum kd_feature f)
{
	return (unsigned)f < KD_NR_FEATURES ? kd_features[f].if_missing : NULL;
}

bool kerndat_is_required(enum kd_feature f)
{
	return (unsigned)f < KD_NR_FEATURES && kd_features[f].required;
}

bool kerndat_has(const struct kerndat *kd, enum kd_feature f)
{
	switch (f) {
	case KD_EXACT_PIDS: return kd->clone3_set_tid || kd->ns_last_pid;
	case KD_CLONE3_SET_TID: return kd->clone3_set_tid;
	case KD_NS_LAST_PID: return kd->ns_last_pid;
	case KD_PIDFD_OPEN: return kd->pidfd_open;
	case KD_PIDFD_GETFD: return kd->pidfd_getfd;
	case KD_PROCESS_VM_READV: return kd->process_vm_readv;
	case KD_PTRACE_SIGMASK: return kd->ptrace_sigmask;
	case KD_PTRACE_RSEQ_CONFIG: return kd->ptrace_rseq_config;
	case KD_PRCTL_MM_MAP: return kd->prctl_mm_map;
	case KD_TIMER_RESTORE_IDS: return kd->timer_restore_ids;
	case KD_PAGEMAP_SCAN: return kd->pagemap_scan;
	case KD_UFFD_WP_ASYNC: return kd->uffd_wp_async;
	case KD_SOFT_DIRTY: return kd->soft_dirty;
	case KD_TIME_NS: return kd->time_ns;
	case KD_VDSO: return kd->vdso;
	case KD_XSAVE: return kd->xsave;
	case KD_CAP_CHECKPOINT_RESTORE: return kd->cap_checkpoint_restore;
	case KD_CAP_SYS_ADMIN: return kd->cap_sys_admin;
	case KD_CAP_SYS_RESOURCE: return kd->cap_sys_resource;
	case KD_CLOSE_RANGE: return kd->close_range;
	case KD_TIMERFD_SET_TICKS: return kd->timerfd_set_ticks;
	case KD_NR_FEATURES: break;
	}
	return false;
}

static const enum kd_group kd_group_of[KD_NR_FEATURES] = {
	[KD_EXACT_PIDS] = G_CLONE3,	    [KD_CLONE3_SET_TID] = G_CLONE3,
	[KD_NS_LAST_PID] = G_CLONE3,	    [KD_PIDFD_OPEN] = G_PIDFD,
	[KD_PIDFD_GETFD] = G_PIDFD,	    [KD_PROCESS_VM_READV] = G_PVM,
	[KD_PTRACE_SIGMASK] = G_PTRACE,	    [KD_PTRACE_RSEQ_CONFIG] = G_PTRACE,
	[KD_PRCTL_MM_MAP] = G_PRCTL,	    [KD_TIMER_RESTORE_IDS] = G_PRCTL,
	[KD_PAGEMAP_SCAN] = G_PAGEMAP,	    [KD_UFFD_WP_ASYNC] = G_UFFD,
	[KD_SOFT_DIRTY] = G_PAGEMAP,	    [KD_TIME_NS] = G_TIME_NS,
	[KD_VDSO] = G_VDSO,		    [KD_XSAVE] = G_XSAVE,
	[KD_CAP_CHECKPOINT_RESTORE] = G_CAPS, [KD_CAP_SYS_ADMIN] = G_CAPS,
	[KD_CAP_SYS_RESOURCE] = G_CAPS,	    [KD_CLOSE_RANGE] = G_CLOSE_RANGE,
	[KD_TIMERFD_SET_TICKS] = G_TIMERFD,
};

bool kdat_has(enum kd_feature f)
{
	if ((unsigned)f >= KD_NR_FEATURES)
		return false;
	kd_ensure(kd_group_of[f]);
	return kerndat_has(&kd_cache, f);
}

static const char *ptrace_note(const struct kerndat *kd, const char *what, char *buf,
			       size_t len)
{
	if (kd->ptrace_errno)
		snprintf(buf, len, "%s; ptrace probe failed: %s", what,
			 strerror(kd->ptrace_errno));
	else
		snprintf(buf, len, "%s", what);
	return buf;
}

const char *kerndat_feature_note(const struct kerndat *kd, enum kd_feature f, char *buf,
				 size_t len)
{
	switch (f) {
	case KD_EXACT_PIDS:
		snprintf(buf, len, "restore tasks with their PIDs: %s",
			 kd->clone3_set_tid ? "clone3 set_tid" :
			 kd->ns_last_pid    ? "ns_last_pid fallback" :
					      "neither clone3 set_tid nor ns_last_pid usable");
		break;
	case KD_CLONE3_SET_TID:
		snprintf(buf, len, "%s",
			 kd->clone3_set_tid	  ? "PID at every PID-namespace level" :
			 kd->clone3_set_tid_eperm ? "kernel has it, needs CAP_CHECKPOINT_RESTORE" :
			 kd->clone3		  ? "clone3 without set_tid" :
						    "no clone3");
		break;
	case KD_NS_LAST_PID:
		snprintf(buf, len, "fallback for set_tid (needs CAP_CHECKPOINT_RESTORE or "
				   "CAP_SYS_ADMIN)");
		break;
	case KD_PIDFD_OPEN:
		snprintf(buf, len, "pin tasks against PID reuse");
		break;
	case KD_PIDFD_GETFD:
		snprintf(buf, len, "duplicate a task's fds for inspection");
		break;
	case KD_PROCESS_VM_READV:
		snprintf(buf, len, "read task memory from outside");
		break;
	case KD_PTRACE_SIGMASK:
		return ptrace_note(kd, "read/set blocked signals", buf, len);
	case KD_PTRACE_RSEQ_CONFIG:
		return ptrace_note(kd, "read rseq registration", buf, len);
	case KD_PRCTL_MM_MAP:
		if (kd->prctl_mm_map)
			snprintf(buf, len, "restore mm fields (struct prctl_mm_map: %u bytes)",
				 kd->mm_map_size);
		else
			snprintf(buf, len, "restore mm fields (needs CONFIG_CHECKPOINT_RESTORE)");
		break;
	case KD_TIMER_RESTORE_IDS:
		snprintf(buf, len, "restore POSIX timers with their ids");
		break;
	case KD_PAGEMAP_SCAN:
		snprintf(buf, len, "incremental dumps: written-page tracking");
		break;
	case KD_UFFD_WP_ASYNC:
		if (kd->uffd)
			snprintf(buf, len, "incremental dumps (userfaultfd features 0x%" PRIx64 ")",
				 kd->uffd_features);
		else
			snprintf(buf, len, "incremental dumps; userfaultfd: %s",
				 strerror(kd->uffd_errno));
		break;
	case KD_SOFT_DIRTY:
		snprintf(buf, len, "legacy dirty tracking (pagemap_scan + uffd replace it)");
		break;
	case KD_TIME_NS:
		snprintf(buf, len, "restore monotonic/boottime clocks in a time namespace");
		break;
	case KD_VDSO:
		snprintf(buf, len,
			 "vdso %" PRIu64 " bytes, vvar %s%" PRIu64 ", vvar_vclock %s%" PRIu64,
			 kd->vdso_size, kd->vvar ? "" : "absent ", kd->vvar_size,
			 kd->vvar_vclock ? "" : "absent ", kd->vvar_vclock_size);
		break;
	case KD_XSAVE:
		snprintf(buf, len, "xsave area %u bytes, xfeatures 0x%" PRIx64, kd->xsave_size,
			 kd->xfeatures);
		break;
	case KD_CAP_CHECKPOINT_RESTORE:
		snprintf(buf, len, "non-root checkpoint/restore");
		break;
	case KD_CAP_SYS_ADMIN:
		snprintf(buf, len, "namespaces, mounts");
		break;
	case KD_CAP_SYS_RESOURCE:
		snprintf(buf, len, "single-field PR_SET_MM_* (PR_SET_MM_MAP does without)");
		break;
	case KD_CLOSE_RANGE:
		snprintf(buf, len, "close fd ranges at restore (else one close per fd)");
		break;
	case KD_TIMERFD_SET_TICKS:
		snprintf(buf, len, "restore unread timerfd expirations (TFD_IOC_SET_TICKS)");
		break;
	case KD_NR_FEATURES:
		snprintf(buf, len, "?");
		break;
	}
	return buf;
}
