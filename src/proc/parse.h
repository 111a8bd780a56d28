/* Pure parsers for /proc text. Each takes a NUL-terminated buffer (as read by
 * read_file_at()) and fills a caller-provided struct; none touches the file system,
 * keeps static state, or trusts the input: lines are bounded, numbers range-checked,
 * and malformed input gives -EINVAL (never a crash). Unit-tested on fixtures captured
 * from this machine (tests/fixtures/proc/). */
#ifndef STASIS_PROC_PARSE_H
#define STASIS_PROC_PARSE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "core/util.h"

/* VmFlags of /proc/PID/smaps, as bits. */
enum {
	VMF_RD = 1u << 0,  /* rd */
	VMF_WR = 1u << 1,  /* wr */
	VMF_EX = 1u << 2,  /* ex */
	VMF_SH = 1u << 3,  /* sh */
	VMF_MR = 1u << 4,  /* mr may read */
	VMF_MW = 1u << 5,  /* mw may write */
	VMF_ME = 1u << 6,  /* me may exec */
	VMF_MS = 1u << 7,  /* ms may share */
	VMF_GD = 1u << 8,  /* gd grows down */
	VMF_PF = 1u << 9,  /* pf pure PFN range */
	VMF_LO = 1u << 10, /* lo locked */
	VMF_IO = 1u << 11, /* io */
	VMF_SR = 1u << 12, /* sr seq read */
	VMF_RR = 1u << 13, /* rr random read */
	VMF_DC = 1u << 14, /* dc do not copy on fork (MADV_DONTFORK) */
	VMF_DE = 1u << 15, /* de do not expand on remap */
	VMF_AC = 1u << 16, /* ac accountable */
	VMF_NR = 1u << 17, /* nr no reserve */
	VMF_HT = 1u << 18, /* ht hugetlb */
	VMF_DD = 1u << 19, /* dd do not dump (MADV_DONTDUMP) */
	VMF_MM = 1u << 20, /* mm mixed map */
	VMF_HG = 1u << 21, /* hg MADV_HUGEPAGE */
	VMF_NH = 1u << 22, /* nh MADV_NOHUGEPAGE */
	VMF_MG = 1u << 23, /* mg MADV_MERGEABLE */
	VMF_WF = 1u << 24, /* wf MADV_WIPEONFORK */
	VMF_SD = 1u << 25, /* sd soft dirty */
	VMF_UW = 1u << 26, /* uw userfaultfd wp */
	VMF_UM = 1u << 27, /* um userfaultfd missing */
	VMF_LF = 1u << 28, /* lf lock on fault */
	VMF_SL = 1u << 29, /* sl sealed */
	VMF_GU = 1u << 30, /* gu guard regions */
	VMF_UNKNOWN = 1u << 31, /* a code this parser does not know (newer kernels, other
				 * architectures: "ss", "mt", "bt", ...) */
};

struct proc_vma {
	uint64_t start, end;
	uint64_t pgoff;      /* byte offset */
	uint32_t prot;       /* PROT_READ|PROT_WRITE|PROT_EXEC from the perms column */
	bool shared;         /* 's' in the perms column */
	uint32_t dev_major, dev_minor;
	uint64_t ino;
	uint32_t vmflags;    /* VMF_* from the VmFlags line (0 for plain maps) */
	uint32_t page_kb;    /* KernelPageSize in KiB (0 for plain maps) */
	uint64_t swap_kb;    /* Swap in KiB (smaps; for shared memory, the object's pages in
			      * the area's range that are swapped out, mapped or not) */
	char *path;          /* malloc'd; NULL for an anonymous mapping. "[heap]", "[stack]",
			      * "[vdso]", "[vvar]", "[vvar_vclock]", "[vsyscall]", "[anon:x]"
			      * kept verbatim; " (deleted)" kept verbatim. */
};

/* Parse /proc/PID/smaps (or /proc/PID/maps: then vmflags stay 0). On success *out is a
 * malloc'd array of *nr entries in address order. Free with proc_vmas_free(). */
int proc_parse_smaps(const char *buf, struct proc_vma **out, size_t *nr) __must_check;
/* This process's own /proc/self/maps, parsed (read again when an area moved while it was
 * being read). 0 or -errno. */
int proc_read_self_maps(struct proc_vma **v, size_t *n) __must_check;
void proc_vmas_free(struct proc_vma *v, size_t nr);
/* The page size (KiB) of this process's hugetlb area holding @addr, 0 for any other
 * area; -ENOENT when nothing is mapped there. */
int proc_self_huge_kb(uint64_t addr, uint32_t *kb) __must_check;

struct proc_stat {
	int pid;
	char comm[17];
	char state;
	int ppid, pgrp, session, tty_nr;
	int tpgid; /* foreground group of the controlling terminal (-1: none) */
	unsigned long flags;   /* PF_* (field 9); PF_KTHREAD = 0x00200000 */
	long num_threads;
	unsigned long long start_time;
	unsigned long start_code, end_code, start_stack;
	int exit_signal;
	unsigned long start_data, end_data, start_brk;
	unsigned long arg_start, arg_end, env_start, env_end;
	int exit_code;
};
/* /proc/PID/stat; comm may contain spaces and ')': split at the LAST ')'. */
int proc_parse_stat(const char *buf, struct proc_stat *st) __must_check;

#define PROC_MAX_GROUPS 65536
#define PROC_MAX_NS_LEVEL 33
struct proc_status {
	unsigned int umask;        /* UINT_MAX if absent */
	char state;
	int tgid, pid, ppid, tracer_pid;
	unsigned int uid[4], gid[4]; /* real, effective, saved, fs */
	unsigned int *groups;      /* malloc'd */
	size_t ngroups;
	int nspid[PROC_MAX_NS_LEVEL];  /* NSpid: outermost first */
	size_t nspid_len;
	int nspgid[PROC_MAX_NS_LEVEL];
	size_t nspgid_len;
	int nssid[PROC_MAX_NS_LEVEL];
	size_t nssid_len;
	long threads;
	uint64_t sig_pnd, shd_pnd, sig_blk, sig_ign, sig_cgt;
	uint64_t cap_inh, cap_prm, cap_eff, cap_bnd, cap_amb;
	int no_new_privs;
	int seccomp;               /* 0 none, 1 strict, 2 filter */
	int seccomp_filters;       /* filters attached (Seccomp_filters), -1 if absent */
};
int proc_parse_status(const char *buf, struct proc_status *st) __must_check;
void proc_status_free(struct proc_status *st);

struct proc_fdinfo {
	uint64_t pos;
	unsigned int flags;       /* octal "flags:" field, includes O_CLOEXEC */
	int mnt_id;
	uint64_t ino;
};
int proc_parse_fdinfo(const char *buf, struct proc_fdinfo *fi) __must_check;
/* Call @fn for every fdinfo line that is not one of the four generic ones, with the
 * line's key: its text up to the first ':' or blank ("tfd", "lock", "inotify",
 * "settime", "eventfd-count"), @klen bytes, not terminated. Stops at the first non-zero
 * return of @fn and returns it; -EINVAL for a line without a key. */
int proc_fdinfo_each_key(const char *buf, int (*fn)(const char *key, size_t klen, void *arg),
			 void *arg) __must_check;

/* Type-specific fdinfo lines of anon-inode files. Each parser looks only at its own
 * lines (the generic pos/flags/mnt_id/ino ones are proc_parse_fdinfo's). */
struct proc_fdinfo_eventfd {
	uint64_t count;           /* "eventfd-count:" (hex) */
	int semaphore;            /* "eventfd-semaphore:" 0/1, -1 if the line is absent */
};
int proc_parse_fdinfo_eventfd(const char *buf, struct proc_fdinfo_eventfd *e) __must_check;

struct proc_fdinfo_timerfd {
	int clockid;
	uint64_t ticks;           /* expirations not read yet */
	unsigned int settime_flags; /* TFD_TIMER_ABSTIME | TFD_TIMER_CANCEL_ON_SET (octal) */
	uint64_t value_sec, value_nsec;       /* remaining time (relative) */
	uint64_t interval_sec, interval_nsec;
};
int proc_parse_fdinfo_timerfd(const char *buf, struct proc_fdinfo_timerfd *t) __must_check;

/* "sigmask:" as a 64-bit mask (bit N-1 is signal N). */
int proc_parse_fdinfo_signalfd(const char *buf, uint64_t *sigmask) __must_check;

struct proc_epoll_tfd {
	int tfd;                  /* fd number the target was added with */
	uint32_t events;
	uint64_t data;
	int64_t pos;              /* target's file position */
	uint64_t ino, sdev;       /* target's inode and device (sdev: kernel dev_t) */
};
/* Every "tfd:" line of an epoll fdinfo, in order. *out malloc'd (NULL when *nr == 0). */
int proc_parse_fdinfo_epoll(const char *buf, struct proc_epoll_tfd **out, size_t *nr) __must_check;

/* A file lock as /proc/locks and the "lock:" lines of /proc/PID/fdinfo/N show it
 * (fs/locks.c: lock_get_status): "ID: [-> ]KIND MODE TYPE PID MAJ:MIN:INO START END". */
enum proc_lock_kind {
	PROC_LOCK_FLOCK, /* "FLOCK": flock(2), owned by the open file description */
	PROC_LOCK_POSIX, /* "POSIX": fcntl record lock, owned by the process (fd table) */
	PROC_LOCK_OFD,   /* "OFDLCK": open file description lock (pid shown as -1) */
	PROC_LOCK_LEASE, /* "LEASE": F_SETLEASE */
	PROC_LOCK_OTHER, /* "DELEG", "ACCESS", "UNKNOWN": nothing a task can take again */
};
struct proc_lock {
	enum proc_lock_kind kind;
	bool advisory; /* "ADVISORY" (a lease: always); false: MANDATORY, *NOINODE*... */
	bool breaking; /* a lease being broken ("BREAKING") or a breaker ("BREAKER") */
	bool waiter;   /* "->": a request blocked on the lock listed before it */
	int type;      /* F_RDLCK, F_WRLCK or F_UNLCK */
	int pid;       /* -1 for OFD locks; in the reader's proc's pid namespace */
	unsigned int dev_major, dev_minor; /* of the inode's superblock (hex) */
	uint64_t ino;
	int64_t start;
	int64_t end; /* inclusive; -1: to the end of the file ("EOF") */
};
#define PROC_MAX_LOCKS (1u << 20)
/* The "lock:" lines of a /proc/PID/fdinfo/N text (@fdinfo) or every line of /proc/locks.
 * *out malloc'd (NULL when *nr == 0); -EINVAL on a malformed line. */
int proc_parse_locks(const char *buf, bool fdinfo, struct proc_lock **out, size_t *nr) __must_check;

/* A mark of an inotify or fanotify group, one fdinfo line (fs/notify/fdinfo.c). */
#define PROC_FHANDLE_MAX 128 /* MAX_HANDLE_SZ */
enum { PROC_MARK_INODE, PROC_MARK_MOUNT, PROC_MARK_SB };
struct proc_fsnotify_mark {
	int type;                 /* PROC_MARK_* (inotify: always an inode) */
	int wd;                   /* inotify: the watch descriptor (> 0) */
	uint64_t ino;             /* inode marks */
	uint32_t sdev;            /* inode and filesystem marks: kernel dev_t */
	int mnt_id;               /* mount marks */
	uint32_t mflags, mask, ignored_mask;
	bool has_fh;              /* the file handle (inode marks, when it can be encoded) */
	int fh_type;
	unsigned int fh_bytes;
	unsigned char fh[PROC_FHANDLE_MAX];
};
/* Every "inotify wd:" line, in the kernel's order. *out malloc'd (NULL when *nr == 0). */
int proc_parse_fdinfo_inotify(const char *buf, struct proc_fsnotify_mark **out,
			      size_t *nr) __must_check;
struct proc_fanotify {
	uint32_t flags;           /* fanotify_init flags, as the group keeps them */
	uint32_t event_flags;     /* event_f_flags */
};
/* "fanotify flags:" and every mark line. */
int proc_parse_fdinfo_fanotify(const char *buf, struct proc_fanotify *f,
			       struct proc_fsnotify_mark **out, size_t *nr) __must_check;

struct proc_posix_timer {
	int id;
	int signo;
	uint64_t sigval;          /* "signal: SIG/VALUE" value part (hex pointer) */
	int notify;               /* SIGEV_SIGNAL/NONE/THREAD, | SIGEV_THREAD_ID for "/tid" */
	int notify_tid;
	int clock;
};
/* /proc/PID/timers. *out malloc'd (may be NULL when *nr == 0). */
int proc_parse_timers(const char *buf, struct proc_posix_timer **out, size_t *nr) __must_check;

/* /proc/PID/auxv is binary: pairs of unsigned long up to AT_NULL. Copies at most @max
 * words (including the AT_NULL pair) into @out; returns the number of words or -EINVAL. */
int proc_parse_auxv(const void *buf, size_t len, uint64_t *out, size_t max) __must_check;

/* One line of a uid_map/gid_map: ids [inside, inside+count) of the namespace are ids
 * [outside, outside+count) of its parent namespace (or of the reader's). Also the
 * helper's wire form (src/helper/proto.h). */
struct id_range {
	uint32_t inside, outside, count;
};
/* /proc/PID/uid_map and gid_map: lines "inside outside count". At most @max ranges
 * (the kernel allows 340); ranges must be non-empty and not wrap. Returns the number of
 * ranges or -EINVAL. */
#define PROC_MAX_ID_RANGES 340
int proc_parse_idmap(const char *buf, struct id_range *out, size_t max) __must_check;

/* "Pid:" of a pidfd's /proc/self/fdinfo text: the pid in the PID namespace of that proc
 * mount. 0 and the pid, -ESRCH if the task is gone (-1), -ENOENT if the task is not
 * visible there (0), -EINVAL if there is no well-formed Pid line. */
int proc_parse_pidfd_pid(const char *buf, int *pid) __must_check;
/* The "NSpid:" line of a pidfd's fdinfo: the pids from the reader's pid namespace down
 * (at most @max, else -EINVAL), in @nspid[0..*n). */
int proc_parse_pidfd_nspid(const char *buf, int *nspid, size_t max, size_t *n) __must_check;

/* One line of /proc/PID/cgroup: "ID:CONTROLLERS:PATH". The path is relative to the
 * READER's cgroup namespace root ("/.." components when the task is outside it). */
#define PROC_MAX_CGROUPS 64          /* lines (hierarchies) */
#define PROC_MAX_CGROUP_CTRL 255     /* bytes of the controller list */
#define PROC_MAX_CGROUP_PATH 4095    /* bytes of a path */
struct proc_cgroup {
	uint32_t hierarchy;  /* 0: cgroup v2 (its controller list is empty) */
	char *controllers;   /* malloc'd: "pids", "cpu,cpuacct", "name=systemd", "" for v2 */
	char *path;          /* malloc'd, starts with '/' */
};
/* /proc/PID/cgroup: at most PROC_MAX_CGROUPS lines, each hierarchy once, the v2 line
 * (hierarchy 0) with no controllers and the others with some (letters, digits, "_.-="
 * and commas), absolute paths. *out malloc'd (NULL when *nr == 0); on failure nothing
 * is left allocated. Free with proc_cgroups_free(). */
int proc_parse_cgroup(const char *buf, struct proc_cgroup **out, size_t *nr) __must_check;
/* A character allowed in a controller list: letters, digits, "_.-=" and commas. */
bool proc_cgroup_ctrl_char(char c);
void proc_cgroups_free(struct proc_cgroup *c, size_t nr);

#endif
