/* The contexts passed between the dump/restore orchestrators and the resource modules.
 *
 * Dump: the orchestrator (src/cr/dump.c) freezes the task, fills the read-only facts
 * (stat, status, smaps), sets up the remote syscall engine, then calls each module's
 * *_dump(ctx); modules fill their part of the image messages (ctx->core, ctx->mm,
 * ctx->files), allocating every field with malloc so that
 * protobuf_c_message_free_unpacked(msg, NULL) frees them.
 *
 * Restore runs in two halves:
 *   - in the CHILD created by clone3(set_tid) — a fork of stasis, before its memory is
 *     replaced — *_restore_child(ctx) sets up what the task can do for itself with plain
 *     syscalls (files, cwd, sigactions, rlimits, ...). The child's service fds (sync
 *     pipe, log, pages file, fds of files to be mapped) live at ctx->svc_lo and above,
 *     above every fd the task will own.
 *   - in the PARENT, with the child ptrace-stopped, *_restore_remote(ctx) drives remote
 *     syscalls through ctx->rs (memory layout, mm fields, credentials, timers, final
 *     registers).
 * Child-side functions report failure by logging (pr_err) and returning -errno; the
 * child forwards its first error to the parent. */
#ifndef STASIS_CR_CTX_H
#define STASIS_CR_CTX_H

#include <stdbool.h>
#include <sys/types.h>

#include "image/blob.h"
#include "image/img.h"
#include "proc/parse.h"
#include "ptrace/rsys.h"

/* Called at the points where a container runtime runs its action scripts (CRIU's names:
 * "pre-dump", "network-lock", "post-dump", "network-unlock"; "pre-restore",
 * "setup-namespaces", "post-setup-namespaces", "post-restore", "pre-resume",
 * "post-resume") with the root's pid where there is one (else 0): the RPC server
 * (src/rpc/) turns them into NOTIFY round trips. Non-zero fails the dump or restore. */
typedef int (*cr_notify_fn)(void *arg, const char *point, pid_t pid);

static inline int cr_notify(cr_notify_fn fn, void *arg, const char *point, pid_t pid)
{
	return fn ? fn(arg, point, pid) : 0;
}

/* What a dump or a restore measured, in the terms of CRIU's stats files (which runtimes
 * read: src/rpc/stats.c writes them; a dump's figures are those of its stats-dump.img,
 * src/cr/stats.c). Times in microseconds. */
struct cr_stats {
	/* dump: freezing the tree, the tree frozen (until it is killed or runs again),
	 * collecting its state, writing the images */
	uint32_t freezing_us, frozen_us, memdump_us, memwrite_us;
	/* the pages the images hold, those left in a parent image, those written */
	uint64_t pages_scanned, pages_skipped_parent, pages_written;
	/* restore: creating the tasks, rebuilding them; the pages copied into them */
	uint32_t forking_us, restore_us;
	uint64_t pages_restored;
};

struct dump_opts {
	pid_t pid;
	const char *dir;
	bool leave_running;
	bool sync;
	bool shell_job; /* --shell-job: the tree may use the caller's terminal */
	bool keep_foreign;      /* DIR may hold other files (a runtime's, the log): kept */
	cr_notify_fn notify;    /* or NULL */
	void *notify_arg;
	char *const *externals; /* --external values ("mnt[MOUNTPOINT]:KEY"), src/ns/mnt.c */
	size_t n_externals;
	bool network_lock_none; /* --network-lock none: no lock (src/net/netlock.c) */
	bool pre_dump;        /* stasis pre-dump: memory only, write tracking armed */
	const char *prev_dir; /* --prev-images-dir: the parent image (relative to dir) */
	int compress;         /* --compress[=LEVEL]: zstd level of the pages files, or 0 */
	struct cr_stats *stats; /* filled by a dump that succeeds, or NULL */
	/* --page-server: the images go to the page server at ps_addr:ps_port (src/image/
	 * remote.h), into its directory or, with ps_name, a directory of that name below it */
	const char *ps_addr, *ps_port, *ps_name;
};

/* A thread of the dumped process, frozen. thr[0] is the main thread (tid == pid) and
 * uses dump_ctx.rs; the others have their own engine sharing the scratch memory. */
struct dump_thread {
	pid_t tid;
	struct rsys rs;
	bool rs_ready;
	uint64_t saved_sigmask;
};

struct mem_dump_state;
struct mem_prescan;
struct sk_dump;
struct mem_track;

/* A process whose main thread exited while other threads run on (a zombie thread-group
 * leader): /proc/PID, its pidfd and kcmp see the dead leader, whose memory, files and fs
 * are gone with it. What the leader alone shows is kept here; everything else is read
 * through a live thread of it (dump_ctx.ospid). */
struct zleader {
	bool on;
	int exit_code; /* /proc/PID/stat's exit_code: the status of its exit, << 8 */
	int exit_signal; /* the process's, to its parent (a thread's is -1) */
	unsigned long long start_time;
	char comm[17];
	int nspid[PROC_MAX_NS_LEVEL];
	size_t nspid_len;
	uint64_t sig_blk;          /* its blocked mask (SigBlk) */
	int seccomp, seccomp_filters; /* its Seccomp and Seccomp_filters lines */
};

struct dump_ctx {
	const struct dump_opts *opts;
	pid_t pid;
	/* the task the kernel is asked about the process (its /proc directory, pidfd, kcmp,
	 * process_vm_*): the pid, or a live thread of a zombie thread-group leader */
	pid_t ospid;
	struct zleader zl;
	int pidfd;   /* pins the task: a reused PID is detected */
	int procfd;  /* /proc/PID */
	struct proc_stat stat;
	struct proc_status status;
	struct proc_vma *vmas;
	size_t nr_vmas;
	struct rsys rs;  /* ready once the task is frozen; rs.scratch is usable memory */
	struct dump_ctx *parent; /* in the tree (dumped before this one), or NULL */
	struct mem_dump_state *mem; /* between the two memory phases */
	struct mem_prescan *prescan; /* pages found while smaps was read (src/mem/scan.c) */
	Mm *prev_mm; /* a pre-dump's parent image of it, read early (mem_track_layout) */
	struct mem_track *track;    /* incremental dumps (src/mem/track.c), or NULL */
	bool shares_files, shares_fs; /* with its parent in the tree */
	pid_t creator;     /* created by this task of its session, via a helper (0: its parent) */
	bool via_session;  /* its session's leader is gone: made by a helper with that id */
	pid_t born_sid;    /* a session leader born in this other session (0: its parent's) */
	/* made through the helper of session born_sid (via_session): that session's ids at
	 * every level, from a task of it (NULL: the task's own session, status.nssid) */
	const int *sess_nssid;
	size_t sess_nssid_len;
	/* it entered (setns) the mount namespace this sibling created: made by it (0: none) */
	pid_t mnt_sibling;
	int stop_signal;    /* job-control stopped before the dump: by this signal (else 0) */
	bool stop_collected; /* ... and its parent had waited for the stop (exit_code 0) */
	struct dump_thread *thr; /* every thread, sorted by tid, main first */
	size_t nr_thr;
	Core *core;
	TaskNs *tns;  /* the namespaces it created (src/ns/) */
	Mm *mm;
	Files *files;
	uint64_t root_id[3]; /* its root directory: dev, inode, mount id (0: unknown) */
	struct img_dir *img;  /* shared by every process of the tree */
	bool rs_ready;
	/* the cgroup namespace it is in when the tree created it (its own or an
	 * ancestor's tns->cgroupns), NULL for the dumper's: set by ns_dump_tree */
	const CgroupNs *cgns;
	struct sk_dump *sk;  /* the socket kinds' state, shared by every process of the tree */
	SeccompFilters **seccomp; /* the tree's seccomp programs (src/task/seccomp.c) */
	bool gone; /* a pre-dump: it exited while its pages were copied (left out) */
};

#define MAX_JOIN_NS 8
struct restore_opts {
	const char *dir;
	bool detach;
	const char *pidfile;
	const char *join_ns[MAX_JOIN_NS]; /* "TYPE:PATH": the root goes into that namespace */
	size_t n_join_ns;
	char *const *externals; /* --external values ("mnt[KEY]:HOSTPATH"), src/ns/mnt.c */
	size_t n_externals;
	const char *root_dir;   /* --root: the root of the first restored mount tree */
	/* root_dir also in place of a root that was bound from a host directory, not only
	 * of an external one: CRIU's meaning, which runtimes rely on (the RPC's root) */
	bool root_over_bind;
	const char *helper_socket; /* --helper: a long-lived `stasis helper` to ask */
	const char *pin_dir;    /* --pin-ns: where the created namespaces are pinned */
	int manage_cgroups;     /* --manage-cgroups: enum cg_mode (src/ns/cgroup.h) */
	const char *const *cg_roots; /* --cgroup-root "[CONTROLLERS:]/PATH" (cgroup_remap) */
	size_t n_cg_roots;
	bool shell_job;         /* --shell-job: attach a shell job to stasis's terminal */
	bool tcp_close;         /* --tcp-close: TCP connections restored closed */
	const char *const *inherit_fds; /* --inherit-fd "fd[N]:KEY" (src/files/external.c) */
	size_t n_inherit_fds;
	cr_notify_fn notify;    /* or NULL */
	void *notify_arg;
	bool network_lock_none; /* --network-lock none: no lock (src/net/netlock.c) */
	bool lazy_pages;        /* --lazy-pages: memory served on fault (src/mem/lazy.c) */
	/* --page-server --address --port: the pages files are read from a page server
	 * started with --serve (src/mem/pagefile.c), or NULL */
	const char *ps_addr, *ps_port;
	struct cr_stats *stats; /* filled by a restore that succeeds, or NULL */
};

/* A MAP_SHARED anonymous object, created by the restoring stasis at [tmp, tmp+size) and
 * inherited by every restore child. A hugetlb one (huge_kb: its page size) is held by
 * fd instead (tmp 0), opened through /proc/self/map_files (mremap cannot make views of
 * hugetlb mappings): each view maps that file. */
struct shm_obj {
	uint32_t shmid, huge_kb;
	uint64_t tmp, size;
	int fd;
};

/* A deleted file (or memfd) that areas of several processes map without holding it open:
 * made once by stasis from the image, held at fd (above every child's fds), and mapped by
 * each of them (a copy per process would no longer be shared: a POSIX semaphore made
 * with sem_open and unlinked, shared by forked workers). */
struct ghost_obj {
	uint64_t dev, ino;
	int fd;
	/* or a detached copy of this directory of stasis's view (mem_droot_prepare), which
	 * files the tasks reached through a detached mount tree are opened in */
	char *droot;
};

/* Resource rows with private per-process restore state: their index in rst_ctx.priv. */
enum res_priv {
	RES_PRIV_CGROUP, /* src/ns/cgroup.c */
	RES_PRIV_MNT,    /* src/ns/mnt.c */
	RES_PRIV_SECCOMP, /* src/task/seccomp.c: seccomp.img */
	RES_PRIV_COUNT
};

struct page_source;

struct rst_ctx {
	const struct restore_opts *opts;
	pid_t pid;
	Core *core;
	TaskNs *tns;       /* the namespaces it created (empty if none) */
	Mm *mm;
	Files *files;
	struct page_source *pages; /* where page contents come from (src/mem/pagexfer.h) */
	int img_dfd;       /* the image directory (pages of other processes) */
	const struct blob_reader *blobs; /* blobs.img of the image, opened once by stasis
					  * (its fd inherited above every task fd), for
					  * every process; never NULL in a restore */
	pid_t stasis_pid;  /* the restoring stasis, in proc_dfd */
	int host_root_fd;  /* stasis's root directory (paths of the dumper's view), or -1 */
	int proc_dfd;      /* stasis's /proc (its pids are the image's; the task's own /proc
			    * may be another pid namespace's) */
	int svc_lo;        /* lowest service fd number in the child */
	int map_fd_base;   /* child: fd of the file for vma i is map_fd_base + i (-1: none) */
	int exe_fd;        /* child: the executable, for PR_SET_MM_MAP */
	struct rsys rs;    /* parent: remote engine on the stopped child's main thread */
	bool rs_ready;
	bool is_root;
	bool shares_files; /* the parent restores the fd table they share */
	bool in_userns;    /* in a user namespace of the tree: its files are opened by stasis */
	int cwd_fd;        /* child: its cwd opened by stasis (in_userns), or -1 */
	bool cwd_deferred; /* ... at that number only once its mount tree is rebuilt */
	const struct shm_obj *shm; /* shared memory objects of the whole tree */
	size_t n_shm;
	const struct ghost_obj *ghosts; /* deleted files mapped by several of its processes */
	size_t n_ghosts;
	const int *gfd;    /* child: tree-wide open descriptions by file id (-1: none) */
	uint32_t n_gfd;
	uint64_t mntns_floor;     /* --pin-ns: the id of stasis's mount namespace (src/ns/mnt.c) */
	/* stasis, for a new thread: its ids at the outer pid-namespace levels the task has no
	 * rights over are prepared (ns_last_pid written) so that the task's clone3 gets them
	 * there; @nstid as NSpid lists them (outermost first, n entries). Returns how many
	 * levels (0: none; the task sets every level) or -errno. NULL outside a restore. */
	int (*thread_levels)(void *tree, pid_t pid, const int32_t *nstid, size_t n);
	void *tree;
	struct mem_lazy *lazy; /* restore --lazy-pages: the page server (src/mem/lazy.c) */
	/* restore --lazy-pages of an incremental image: for run i of mm served lazily from a
	 * parent image, a copy of the parent's run holding it (its piece checksums: the page
	 * server verifies what it serves, src/mem/chain.c reads nothing ahead), or NULL */
	PageRun **pruns;
	struct rsys *trs;  /* engines of the other threads, trs[i] for core->threads[i + 1] */
	size_t nr_trs;     /* threads created so far */
	/* the private state of the resource rows that have one (src/cr/resource.h) */
	void *priv[RES_PRIV_COUNT];
};

/* In a restore's final stage: the engine of thread @tid of the tree (a process's main
 * thread or another), *@proc its process; NULL if the tree has no such thread. */
struct rsys *rst_find_thread(struct rst_ctx *c, pid_t tid, struct rst_ctx **proc);
/* Index of @pid in the inventory's task list, -1 if none (src/cr/restore.c). */
ssize_t rst_task_index(const Inventory *inv, pid_t pid);
pid_t rst_group_local(const Inventory *inv, const TaskEntry *e);
/* The session a task made through a session helper (via_session) is made in: the one a
 * session leader was born in, else its own. */
static inline pid_t rst_helper_sid(const TaskEntry *e)
{
	return e->has_born_sid && e->born_sid > 0 && e->sid == e->pid ? e->born_sid : e->sid;
}

/* The remote engine of thread @i (0: main) of a dump or a restore. */
static inline struct rsys *dump_thread_rs(struct dump_ctx *c, size_t i)
{
	return i ? &c->thr[i].rs : &c->rs;
}
static inline struct rsys *rst_thread_rs(struct rst_ctx *c, size_t i)
{
	return i ? &c->trs[i - 1] : &c->rs;
}

/* A child that had exited when the tree was frozen. */
struct zombie {
	pid_t pid, ppid, pgid, sid;
	char comm[17];
	uint64_t caps[5];      /* inheritable, permitted, effective, bounding, ambient */
	bool has_caps;
	int exit_status, exit_signal;
	int nspid[PROC_MAX_NS_LEVEL];
	size_t nspid_len;
	int nssid[PROC_MAX_NS_LEVEL]; /* its session at every level (NSsid) */
	size_t nssid_len;
	int nspgid[PROC_MAX_NS_LEVEL]; /* its group at every level (NSpgid) */
	size_t nspgid_len;
	bool via_session; /* made through the helper of its session (leader gone) */
	pid_t creator;    /* made by this task of its session, via a helper (0: its parent) */
};

/* The frozen tree, as the tree-level dump stage sees it. */
struct dump_tree {
	const struct dump_opts *opts;
	struct dump_ctx **procs; /* alive processes, parents before children, root first */
	pid_t *ppid;             /* parent of procs[i] in the tree (0 for the root) */
	size_t nr;
	struct zombie *zombies;
	size_t nr_zombies;
	struct img_dir img;
	struct sk_dump *sk;      /* src/net/sk_inet.h */
	struct mem_track *track; /* incremental dumps (src/mem/track.c), or NULL */
	SeccompFilters *seccomp; /* every seccomp program of the tree once, or NULL */
	uint64_t thawed;         /* a pre-dump: when the tree ran again (its pages are copied
				  * after), or 0 */
};

/* Run syscall @nr in every thread of @c at once; argument @slot_arg points to a private
 * @slot_size-byte slot of scratch memory per thread, whose contents after the call are
 * copied to @out (nr_thr slots). Fails on the first thread's -errno. */
int dump_threads_call(struct dump_ctx *c, const char *what, long nr, const uint64_t tmpl[6],
		      int slot_arg, size_t slot_size, void *out) __must_check;

int dump_run(const struct dump_opts *o) __must_check;
/* Returns the exit status stasis should exit with. */
int restore_run(const struct restore_opts *o);

#endif
