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

#include "image/img.h"
#include "proc/parse.h"
#include "ptrace/rsys.h"

struct dump_opts {
	pid_t pid;
	const char *dir;
	bool leave_running;
	bool sync;
	char *const *externals; /* --external values ("mnt[MOUNTPOINT]:KEY"), src/ns/mnt.c */
	size_t n_externals;
};

/* A thread of the dumped process, frozen. thr[0] is the main thread (tid == pid) and
 * uses dump_ctx.rs; the others have their own engine sharing the scratch memory. */
struct dump_thread {
	pid_t tid;
	struct rsys rs;
	bool rs_ready;
	bool sigmask_set;
	uint64_t saved_sigmask;
};

struct mem_dump_state;

struct dump_ctx {
	const struct dump_opts *opts;
	pid_t pid;
	int pidfd;   /* pins the task: a reused PID is detected */
	int procfd;  /* /proc/PID */
	struct proc_stat stat;
	struct proc_status status;
	struct proc_vma *vmas;
	size_t nr_vmas;
	struct rsys rs;  /* ready once the task is frozen; rs.scratch is usable memory */
	struct dump_ctx *parent; /* in the tree (dumped before this one), or NULL */
	struct mem_dump_state *mem; /* between the two memory phases */
	bool shares_files, shares_fs; /* with its parent in the tree */
	bool was_stopped;   /* job-control stopped before the dump */
	struct dump_thread *thr; /* every thread, sorted by tid, main first */
	size_t nr_thr;
	Core *core;
	Mm *mm;
	Files *files;
	struct img_dir *img;  /* shared by every process of the tree */
	bool rs_ready;
	/* the cgroup namespace it is in when the tree created it (its own or an
	 * ancestor's core->cgroupns), NULL for the dumper's: set by ns_dump_tree */
	const CgroupNs *cgns;
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
	const char *helper_socket; /* --helper: a long-lived `stasis helper` to ask */
	const char *pin_dir;    /* --pin-ns: where the created namespaces are pinned */
};

/* A MAP_SHARED anonymous object, created by the restoring stasis at [tmp, tmp+size) and
 * inherited by every restore child. */
struct shm_obj {
	uint32_t shmid;
	uint64_t tmp, size;
};

struct rst_ctx {
	const struct restore_opts *opts;
	pid_t pid;
	Core *core;
	Mm *mm;
	Files *files;
	struct img_pages pages;
	int img_dfd;       /* the image directory (pages of other processes) */
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
	const int *gfd;    /* child: tree-wide open descriptions by file id (-1: none) */
	uint32_t n_gfd;
	uint64_t mntns_floor;     /* --pin-ns: the id of stasis's mount namespace (src/ns/mnt.c) */
	const Mount **late_procs; /* child: proc mounts of its children's pid namespaces */
	size_t n_late_procs;      /* (src/ns/mnt.c), mounted once the children exist */
	struct rsys *trs;  /* engines of the other threads, trs[i] for core->threads[i + 1] */
	size_t nr_trs;     /* threads created so far */
	int *cgns_fd;      /* cgroup.procs of each root of the cgroup namespace it creates,
			    * opened by stasis (-1: created there anyway, or the hierarchy is
			    * not mounted), src/ns/cgroup.c */
	size_t n_cgns_fd;
};

/* The remote engine of thread @i (0: main) of a dump or a restore. */
static inline struct rsys *dump_thread_rs(struct dump_ctx *c, size_t i)
{
	return i ? &c->thr[i].rs : &c->rs;
}
static inline struct rsys *rst_thread_rs(struct rst_ctx *c, size_t i)
{
	return i ? &c->trs[i - 1] : &c->rs;
}

/* Resource modules. Dump side. */
int mem_dump(struct dump_ctx *c) __must_check;      /* src/mem/mem.c: vmas, mm, page scan */
/* The page contents, once every process of the tree went through mem_dump. */
int mem_dump_pages(struct dump_ctx *c) __must_check;
void mem_dump_state_free(struct mem_dump_state *ms);
int cpu_dump(struct dump_ctx *c) __must_check;      /* src/task/cpu.c: regs, xsave, rseq */
int signals_dump(struct dump_ctx *c) __must_check;  /* src/task/signals.c */
int files_dump(struct dump_ctx *c) __must_check;    /* src/files/files.c: fds, pipes */
int timers_dump(struct dump_ctx *c) __must_check;   /* src/task/timers.c: itimers, posix */
int creds_dump(struct dump_ctx *c) __must_check;    /* src/task/creds.c */
int misc_dump(struct dump_ctx *c) __must_check;     /* src/task/misc.c: comm, rlimits, ... */
int ns_dump(struct dump_ctx *c) __must_check;       /* src/ns/ns.c: namespace ids */
int cgroup_dump(struct dump_ctx *c) __must_check;   /* src/ns/cgroup.c: membership */
/* Restorer: move the task into its cgroups (created if missing). */
int cgroup_restore_remote(struct rst_ctx *c) __must_check;
/* After every process: refuse namespaces not supported yet, record UTS names. */
int ns_dump_tree(struct dump_ctx **procs, size_t n, const pid_t *ppid) __must_check;
/* Restore child, first thing: set up the namespaces it created (UTS names). */
int ns_restore_child(struct rst_ctx *c) __must_check;
/* clone3 flags for the namespaces task @core creates (CLONE_NEWUTS, ...; not NEWPID). */
uint64_t ns_clone_flags(const Core *core);
/* In the creator's restore child: a new time namespace for the children created next. */
int ns_enter_time_for_children(const TimeNs *t) __must_check;
/* --join-ns TYPE:PATH: open PATH, check it is an nsfs file of TYPE (uts, ipc, net);
 * *nstype is the CLONE_NEW* flag. */
int ns_join_open(const char *spec, int *fd, int *nstype) __must_check;
/* In a forked, single-threaded child of stasis: join namespace @nsfd (CLONE_NEW* @nstype)
 * to read it from inside, through its owning user namespace if that is not the caller's.
 * 0 or -errno, nothing logged. */
int ns_enter_to_read(int nsfd, int nstype) __must_check;
/* The root restored into joined namespaces: forget what it would have created of them. */
void ns_join_forget(Core *root, int nstype);
/* --pin-ns DIR (src/ns/ns.c): every namespace the restore created bind-mounted on
 * DIR/<kind>-<pid> by the restoring stasis. */
struct ns_pin {
	char name[32];    /* "<kind>-<pid>" */
	const char *kind; /* as in /proc/PID/ns/ */
	pid_t pid;        /* a restored task in the namespace (stasis's view) */
	bool created, mounted;
};
struct ns_pins {
	const char *dir;
	int dirfd;
	struct ns_pin *pin;
	size_t n, cap;
};
/* DIR must be a directory; the one error line names it. */
int ns_pins_open(struct ns_pins *p, const char *dir) __must_check;
/* Plan the pins of the namespaces task @pid was restored into new (its core, whether it is
 * the init of a new pid namespace); refuses a pin file that exists already. */
int ns_pins_add(struct ns_pins *p, const Core *core, pid_t pid, bool new_pid) __must_check;
/* Create the files (0600, empty) and bind /proc/PID/ns/KIND (@proc_dfd: stasis's /proc)
 * on them; on failure the caller undoes. */
int ns_pins_make(struct ns_pins *p, int proc_dfd) __must_check;
/* Unmount and remove every pin made so far (a failed restore). */
void ns_pins_undo(struct ns_pins *p);
void ns_pins_close(struct ns_pins *p);
/* A pid namespace's init: its namespace's last pid (remote, from inside). */
int ns_dump_last_pid(struct dump_ctx *c) __must_check;
/* ns_last_pid of pid namespace @ns_fd (a descendant of stasis's: the sysctl writes the
 * writer's active namespace, so a child stasis forks there does it): set to *@val, or
 * read into *@val (the child takes the next pid P and writes P - 1 back). 0 or -errno. */
int ns_last_pid_in(int ns_fd, int *val, bool set) __must_check;
int ns_restore_last_pid(struct rst_ctx *c) __must_check;

/* Restore side: in the child, before the memory switch. */
int files_restore_child(struct rst_ctx *c) __must_check;
int signals_restore_child(struct rst_ctx *c) __must_check;
int misc_restore_child(struct rst_ctx *c) __must_check;
int mem_restore_child(struct rst_ctx *c) __must_check; /* opens files to be mapped */
/* In the restoring stasis, before any process exists: create every MAP_SHARED anonymous
 * object of the tree once, in a place free everywhere. */
int mem_shm_prepare(struct rst_ctx *const *procs, size_t n, struct shm_obj **out,
		    size_t *nout) __must_check;
void mem_shm_release(struct shm_obj *objs, size_t n);
/* Highest fd number the task's own fd table needs (-1 if none). */
int files_max_fd(const Files *f);
/* Dump, after every process's files_dump: give open file descriptions shared between
 * processes one id tree-wide (kcmp), and turn pipes whose ends live in different
 * processes of the tree into FILE_PIPE (with their data). */
int files_merge_tree(struct dump_ctx **procs, size_t n) __must_check;
/* Restore of a tree, in the restoring stasis before any process exists: open every pipe
 * and every description used by several processes once, at fds >= @base; *gfd_out maps
 * file id -> fd (-1). Also every description of a process with @outside[p] set (it lives
 * in a user namespace of the tree and may lack the rights to open its files itself).
 * Otherwise nothing is opened for a single process. */
int files_open_shared(Files *const *f, const bool *outside, const ssize_t *mnt_owner, size_t n,
		      int base, int **gfd_out, uint32_t *n_out, ssize_t **defer_out) __must_check;
/* ... except, by path, a description whose users are all in one mount namespace the tree
 * creates (@mnt_owner[p]: the index in @f of the process that creates the mount
 * namespace of process p, or -1): *defer_out[id] is then that index (-1 otherwise), and
 * the description is opened later, in that namespace's rebuilt tree, by
 * files_open_deferred(@rootfd: /proc/OWNER/root of the restored owner). */
int files_open_deferred(Files *const *f, size_t n, uint32_t id, int rootfd) __must_check;

/* Restore side: in the parent, remote. Called in this order. */
int mem_restore_remote(struct rst_ctx *c) __must_check;     /* layout, contents, mm */
/* 1 if the credentials of the thread of c->rs were changed, 0 if they already matched. */
int creds_restore_remote(struct rst_ctx *c) __must_check;
int timers_restore_remote(struct rst_ctx *c) __must_check;
int misc_restore_remote(struct rst_ctx *c) __must_check;    /* dumpable, pdeath sig */
int cpu_restore_remote(struct rst_ctx *c) __must_check;     /* rseq, tid address */
int signals_restore_final(struct rst_ctx *c) __must_check;  /* blocked mask */
int cpu_restore_final(struct rst_ctx *c) __must_check;      /* registers, last */
/* Before the memory switch: drop the restorer's own rseq registration. */
int cpu_restore_prepare(struct rst_ctx *c) __must_check;
int cpu_validate(const Core *core) __must_check;
/* After the memory switch: create the other threads with their TIDs (remote clone3 in
 * the main thread) and restore their per-thread state but registers. */
int cpu_restore_threads(struct rst_ctx *c) __must_check;

/* Run syscall @nr in every thread of @c at once; argument @slot_arg points to a private
 * @slot_size-byte slot of scratch memory per thread, whose contents after the call are
 * copied to @out (nr_thr slots). Fails on the first thread's -errno. */
int dump_threads_call(struct dump_ctx *c, const char *what, long nr, const uint64_t tmpl[6],
		      int slot_arg, size_t slot_size, void *out) __must_check;

int dump_run(const struct dump_opts *o) __must_check;
/* Returns the exit status stasis should exit with. */
int restore_run(const struct restore_opts *o);

#endif
