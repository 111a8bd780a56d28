/* The files module's internal header: the fd-kind contract. Included only by the files of
 * the module (every .c file in src/files/) and by the kind files that live elsewhere
 * (src/net/sk_unix.c, sk_tcp.c); everything else uses files/files.h.
 *
 * Every kind of open file description is one row, a `struct fd_ops`, in the ordered table
 * fd_kinds[] (src/files/kinds.c). The generic code (src/files/files.c: the fd table of a
 * task; src/files/tree.c: descriptions shared in a tree) loops over the rows and never
 * names a kind. The stage order, per hook:
 *
 *   dump, per task:  classify (rows asked in table order, first claim wins) -> descriptions
 *                    grouped with kcmp -> group (every row) -> generic fields + dump
 *   dump, per tree:  tree-wide ids (kcmp) -> merge (every row, table order)
 *   restore, stasis: validate -> open_tree (always) or open (descriptions of several
 *                    processes, or of a task whose files stasis opens; by-path ones may be
 *                    deferred to a mount namespace's rebuilt tree) -> opened
 *   restore, child:  validate -> prepare (every row) -> shared descriptions inherited ->
 *                    open_task or open (+ staged above every target) -> opened -> status
 *                    flags -> every Fd placed with dup3 -> late (every row) -> gaps closed
 *   restore, stasis: every task created -> remote (every row, each task as it is rebuilt)
 *                    -> every task rebuilt -> final (every row, every task)
 *
 * A hook left NULL means "nothing to do" for that stage. Hooks log their own errors
 * (once, with the fd and pid) and return 0 or -errno. */
#ifndef STASIS_FD_OPS_H
#define STASIS_FD_OPS_H

#include <stdbool.h>
#include <stdint.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/types.h>

#include "cr/ctx.h"
#include "files/files.h"
#include "image/blob.h"
#include "proc/parse.h"

#define DELETED_SUFFIX " (deleted)"
#define FDINFO_MAX (1u << 20) /* (grown as read: a file with thousands of locks) */
/* Status flags F_SETFL can change. */
#define SETFL_MASK (O_APPEND | O_NONBLOCK | O_ASYNC | O_DIRECT | O_NOATIME)

struct fd_ops;

/* Dump: one fd of the task. */
struct fd_ent {
	int fd;
	char *link;               /* readlink of /proc/PID/fd/N */
	unsigned int flags;       /* fdinfo flags, incl. O_CLOEXEC */
	uint64_t pos;
	struct stat st;           /* fstat of a pidfd_getfd duplicate */
	long fs_type;             /* statfs f_type of the file's file system */
	FileKind kind;            /* set by the row that claims it */
	const struct fd_ops *ops; /* that row */
	size_t owner;             /* first entry sharing this open file description */
	uint32_t id;              /* file_id, valid on owners */
	struct proc_lock *locks;  /* the "lock:" lines of its fdinfo (locks.c) */
	size_t n_locks;
	/* a socket (S_ISSOCK): SO_DOMAIN, SO_TYPE, SO_PROTOCOL, read once for every row */
	int sk_domain, sk_type, sk_proto;
};

/* Restore, in the child: the fd table being rebuilt. */
struct fd_rst {
	const Files *f;
	int svc_lo;
	int stage_lo;      /* staged fds are >= this: above every target fd */
	int *staged;       /* per FileDesc: the staged fd, or -1 */
	bool *inherited;   /* per Fd: external, kept as inherited from stasis */
	bool *shared;      /* per FileDesc: dup of a tree-wide description */
	const int *gfd;    /* tree-wide descriptions by id (restore of a tree) */
	uint32_t n_gfd;
	const struct blob_reader *blobs; /* blobs.img of the image (never NULL) */
	const char *const *inherit; /* --inherit-fd values "fd[N]:KEY" (external.c) */
	size_t n_inherit;
};

/* Restore of a tree, in stasis: the descriptions opened once for every process. */
struct fd_tree {
	Files *const *f;   /* the fd tables of the tree */
	size_t n;
	int base;          /* tree-wide fds are placed at or above */
	int *gfd;          /* by file id: the fd, or -1 */
	const struct blob_reader *blobs; /* blobs.img of the image (never NULL) */
	/* In stasis: per process of @f, the one making the sockets of its network namespace
	 * when the tree makes it (its creator, an index in @f), else -1; and per file id, the
	 * process a description is left to (an open_tree row sets it for descriptions that
	 * creator makes: files_make_deferred). NULL in that creator, which makes them. */
	const ssize_t *net;
	ssize_t *defer;
	int netns; /* made in this network namespace (a deferred group: stasis for that
		    * creator, files_make_deferred), or -1: ours */
	/* and for the peer credentials of unix sockets, the holders' pid and user namespaces
	 * (that creator's), or -1: ours */
	int pidns, userns;
	int agent;       /* the creator's agent (sk_cred_agent_start), or -1 */
	pid_t agent_pid; /* its pid there */
	/* Per process of @f, the creator of its mount namespace when the tree makes it, or
	 * -1 (NULL: none); a FD_OPS_ROOT_GROUP row may leave a group to it (@defer), made
	 * later by stasis in that namespace's rebuilt tree, @rootfd (files_make_in_root;
	 * -1 otherwise). */
	const ssize_t *mnt;
	int rootfd;
	const pid_t *pids; /* in stasis: per process of @f, its pid (NULL: not known) */
};

enum {
	/* Opened by path: may be opened in the mount tree of a task's namespace (deferred),
	 * and by stasis in its own view when the path is the dumper's. */
	FD_OPS_BY_PATH = 1 << 0,
	/* Never opened: the restored task inherits stasis's fd of that number. */
	FD_OPS_INHERITED = 1 << 1,
	/* Opened by the late hook once every other fd is placed. Shared between processes:
	 * made once by stasis with the open hook, then completed by each holder's late hook
	 * (refused without an open hook). */
	FD_OPS_LATE = 1 << 2,
	/* Dump only: its classify refuses a kind not supported yet (no description has it). */
	FD_OPS_REFUSED = 1 << 3,
	/* Made in the task's network namespace (sockets): never opened by stasis for a task
	 * in a user namespace of the tree (stasis opens that task's other files, which it may
	 * no longer reach by path), but by the task itself, in its namespaces. */
	FD_OPS_NETNS = 1 << 4,
	/* Made together in a mount tree of the tree (open_tree with fd_tree.rootfd): a
	 * group held by several processes of one mount namespace the tree makes is left to
	 * its creator (pty pairs of a devpts instance of the tree). */
	FD_OPS_ROOT_GROUP = 1 << 5,
	/* Its dump hook reads and checks the whole fdinfo itself (io_uring: indented lists
	 * the generic key check cannot read). */
	FD_OPS_OWN_FDINFO = 1 << 6,
};

struct fd_ops {
	const char *name;  /* for messages and docs: "pipe", "epoll", ... */
	FileKind kind;
	unsigned int flags; /* FD_OPS_* */
	/* Several rows of one kind (regular files, unlinked files, memfds): is @d this row's?
	 * NULL: every description of the kind. Rows of one kind must not overlap. */
	bool (*owns)(const FileDesc *d);
	/* The type-specific fdinfo keys this row reads (first word of the line, NULL-ended;
	 * NULL: none): any other line but pos/flags/mnt_id/ino refuses the fd at dump. */
	const char *const *fdinfo_keys;

	/* ---- dump, in stasis, the tree frozen ---- */
	/* Is fd @e (its link, fstat, fs type and fdinfo flags) of this row? 1 (and e->kind
	 * set), 0 if not, or a logged -errno: it is, and cannot be dumped. */
	int (*classify)(const struct dump_ctx *c, struct fd_ent *e);
	/* Once per task, the fds grouped into descriptions (ents[i].owner == i for the first
	 * fd of each), before any is dumped: may move descriptions to another row (a pipe
	 * whose other end is not in the task becomes external). */
	int (*group)(const struct dump_ctx *c, struct fd_ent *ents, size_t n);
	/* Fill this kind's fields of @d; the generic ones (id, kind, flags, dev, ino, rdev,
	 * link) are set. */
	int (*dump)(const struct dump_ctx *c, const struct fd_ent *e, FileDesc *d);
	/* Once per tree (n >= 1), every process dumped and the ids tree-wide: check or
	 * complete what spans processes (peers in the tree, pipe ends in two processes). */
	int (*merge)(struct dump_ctx **procs, size_t n);

	/* ---- restore ---- */
	/* Check this kind's image fields: images are untrusted. The bounds of a BlobRef are
	 * checked against @blobs (blob_check), its data only when it is read. */
	int (*validate)(const FileDesc *d, const struct blob_reader *blobs);
	/* In the child, before anything is opened or placed. */
	int (*prepare)(struct fd_rst *s);
	/* One description: a new close-on-exec fd (any number), the caller sets the status
	 * flags. @target: the fd for messages (-1 in stasis); @rootfd: open paths inside
	 * that mount tree (-1: the caller's view; only FD_OPS_BY_PATH rows get one);
	 * @blobs: where the contents a BlobRef names are read from. */
	int (*open)(const FileDesc *d, int target, int rootfd, const struct blob_reader *blobs);
	/* Descriptions made together (pipe ends, socketpairs). In the child: make
	 * description @i and its peers, stage them (s->staged) ... */
	int (*open_task)(struct fd_rst *s, size_t i);
	/* ... and in stasis for a tree, whatever the number of users: make @d and its peers,
	 * status flags set, at t->gfd[id]. */
	int (*open_tree)(struct fd_tree *t, const FileDesc *d);
	/* In the child, every other fd placed: open and place this row's descriptions. */
	int (*late)(struct fd_rst *s);
	/* After the descriptions of @f were opened (or failed to): remove what opening left
	 * behind (names of recreated unlinked files). */
	void (*opened)(const Files *f);
	/* In stasis, on the fds of task @pid (its table @f) taken with pidfd_getfd, once
	 * every task of the tree exists (every socket is made): remote, while the tasks are
	 * rebuilt one after the other (TCP connections out of repair mode, sending nothing
	 * but ACKs), then final, every task and thread rebuilt and none running yet (what a
	 * socket has to send, now that no peer in the tree drops it; pidfds), with the
	 * task's remote engine (c->rs, its scratch still mapped). */
	int (*remote)(const Files *f, pid_t pid);
	int (*final)(struct rst_ctx *c);
};

/* The rows, in classification order (src/files/kinds.c), NULL-terminated. */
extern const struct fd_ops *const fd_kinds[];

extern const struct fd_ops fd_unix_ops;       /* src/net/sk_unix.c */
extern const struct fd_ops fd_tcp_ops;        /* src/net/sk_tcp.c */
extern const struct fd_ops fd_inet_dgram_ops; /* src/net/sk_udp.c */
extern const struct fd_ops fd_netlink_ops;    /* src/net/sk_netlink.c */
extern const struct fd_ops fd_packet_ops;     /* src/net/sk_packet.c */
extern const struct fd_ops fd_eventfd_ops;    /* eventfd.c */
extern const struct fd_ops fd_timerfd_ops;    /* timerfd.c */
extern const struct fd_ops fd_signalfd_ops;   /* signalfd.c */
extern const struct fd_ops fd_epoll_ops;      /* epoll.c */
extern const struct fd_ops fd_pidfd_ops;      /* pidfd.c */
extern const struct fd_ops fd_procpid_ops;    /* procpid.c */
extern const struct fd_ops fd_io_uring_ops;   /* io_uring.c */
extern const struct fd_ops fd_inotify_ops;    /* inotify.c */
extern const struct fd_ops fd_fanotify_ops;   /* fanotify.c */
extern const struct fd_ops fd_memfd_ops;      /* memfd.c */
extern const struct fd_ops fd_pipe_ops;       /* pipe.c */
extern const struct fd_ops fd_fifo_ops;       /* regular.c */
extern const struct fd_ops fd_unlinked_ops;   /* unlinked.c */
extern const struct fd_ops fd_reg_ops;        /* regular.c */
extern const struct fd_ops fd_dir_ops;        /* regular.c */
extern const struct fd_ops fd_blk_ops;        /* regular.c */
extern const struct fd_ops fd_tty_ops;        /* tty.c */
extern const struct fd_ops fd_devtty_ops;     /* tty.c */
extern const struct fd_ops fd_external_ops;   /* external.c */
extern const struct fd_ops fd_chr_ops;        /* regular.c */

/* ---- generic helpers (files.c; fd_gfd_place: tree.c) ---- */

/* The row of description @d, or NULL for an unknown kind. */
const struct fd_ops *fd_ops_of(const FileDesc *d);
/* Log "fd N of pid P is WHAT (LINK): not supported yet"; -EOPNOTSUPP. */
int fd_unsupported(const struct dump_ctx *c, const struct fd_ent *e, const char *what);
/* A pidfd_getfd duplicate of the task's fd (logged failure). */
int fd_dup(const struct dump_ctx *c, const struct fd_ent *e) __must_check;
/* A socket of another network namespace than its holders' that a row makes there
 * (FileDesc.netns): a UDP socket, a TCP socket listening with nothing queued or not
 * connected. (Unix sockets: their row decides, with their group.) */
bool fd_alone_in_netns(const FileDesc *d);
/* The mount fd @fd of task @c is on (statx STATX_MNT_ID of /proc/PID/fd/N): 0, or -1. */
int fd_mount_id(const struct dump_ctx *c, int fd, uint64_t *mnt);
/* Stasis's mount namespace (read once: the dumping stasis does not change it). */
uint64_t fd_dumper_mntns(void);
/* Is task @c in another mount namespace than stasis? */
bool fd_own_mntns(const struct dump_ctx *c);
/* Fd @e of task @c, in a mount namespace other than stasis's, is on a mount of that
 * namespace, the one its path names there. */
bool fd_in_task_mount(const struct dump_ctx *c, const struct fd_ent *e);
/* *@out: /proc/PID/fdinfo/N, at most @max bytes (to free). */
int fd_read_fdinfo(const struct dump_ctx *c, int fd, size_t max, char **out) __must_check;
/* Log "files image: file ID (LINK) has bad or missing data"; -EINVAL. */
int fd_bad_data(const FileDesc *d);
/* Index of description @id in @f, or -1. */
ssize_t fd_desc_index(const Files *f, uint32_t id);
/* fown.c: the description's owner (F_GETOWN_EX, F_GETSIG) into d->owner, read by the task
 * itself; an image's owner is sane. */
/* @dup: a duplicate of fd @fd (-1: none) */
int fown_dump(const struct dump_ctx *c, int fd, int dup, FileDesc *d) __must_check;
bool fown_is_valid(const FileOwner *o);
/* fown.c: set owner @o of fd @fd of the task @c (remote, the task stopped). */
int fown_restore(struct rst_ctx *c, int fd, const FileOwner *o) __must_check;
/* The first fd number that refers to description @i (for messages; -1 if none). */
int fd_desc_fd(const Files *f, size_t i);
/* A description's name for messages: its path, else its link. */
const char *fd_desc_name(const FileDesc *d);
/* A late row's description @i, opened as @fd (consumed): its status flags set, placed at
 * every fd of the task that refers to it. 0 or a logged -errno. */
int fd_place_late(const struct fd_rst *s, size_t i, int fd) __must_check;
/* Move @fd (consumed) to the lowest free number >= @lo; the new fd or -errno. */
int fd_stage(int fd, int lo, int target, const char *name) __must_check;
/* Move @fd (consumed) of a tree-wide description to *@slot, at or above @base. */
int fd_gfd_place(int fd, int base, int *slot) __must_check;
/* Images are untrusted: check every description (by its row, BlobRefs against @blobs)
 * and every Fd (numbers below @svc_lo, known ids, no duplicates) before acting on any. */
int fd_validate_files(const Files *f, int svc_lo, const struct blob_reader *blobs) __must_check;
/* Every row's opened hook on @f. */
void fd_opened(const Files *f);

/* ---- shared by the kind files ---- */

/* pipe.c: d->pipe of the pipe end @dup (fd @fd of @pid for messages; opened @flags,
 * inode @ino): size, widowed, the queued bytes of a read end. */
int fd_pipe_dump_fd(pid_t pid, int fd, int dup, unsigned int flags, uint64_t ino,
		    FileDesc *d) __must_check;
/* placeholder.c: descriptions made in the final stage (pidfds, files of a task's /proc
 * directory), a placeholder holding their fd numbers until then. The open hook of such a
 * row: */
int fd_final_placeholder(const FileDesc *d, int target, int rootfd,
			 const struct blob_reader *blobs);
/* Its final hook: every description of @kind of task @c (what names them in messages)
 * made by @make, once per description, in stasis (a new fd with its status flags, or a
 * logged -errno), and given to every fd of it in each holder. */
typedef int (*fd_final_make_fn)(struct rst_ctx *c, const FileDesc *d);
int fd_final_give(struct rst_ctx *c, FileKind kind, fd_final_make_fn make,
		  const char *what) __must_check;
/* Its merge hook's part: no description of @kind (@what: "a pidfd") has an owner or is
 * in flight in a unix socket's queue (nothing but its holders may meet the placeholder). */
int fd_final_merge_check(struct dump_ctx **procs, size_t n, FileKind kind,
			 const char *what) __must_check;
/* Its final hook, for a file that cannot travel in SCM_RIGHTS (io_uring) and is made by
 * the holder itself at its fd numbers: the epolls of holder @c watching its fd @tfd
 * watch it now. */
int fd_final_rewatch(struct rst_ctx *c, int tfd) __must_check;
/* Is @pid a task this restore made (traced by stasis)? */
bool fd_final_restored(const struct rst_ctx *c, pid_t pid);
/* inotify.c: the kernel's dev_t of an fdinfo (MAJOR << 20 | MINOR) as stat shows it. */
dev_t fd_kdev(uint32_t sdev);
/* inotify.c: for every inode mark of @m (inotify watches, fanotify inode marks) of a
 * task, a path (malloc'd) naming its inode, found through its file handle opened on a
 * mount of the whole filesystem, else among the paths near the task (near_paths), then
 * among the entries of the directories the other marks are on; then @each(@arg, i, path
 * (consumed; NULL when none is found, and for other marks), views (PATH_VIEW_*)) for
 * every mark in order, up to the first error. 0 or a logged -errno. */
struct proc_fsnotify_mark;
int fd_marks_each(const struct dump_ctx *c, const struct proc_fsnotify_mark *m, size_t n,
		  int (*each)(void *arg, size_t i, char *path, int views), void *arg)
	__must_check;
/* inotify.c: a watch's or mark's *@path in the mount tree of @rootfd (>= 0): the file
 * opened O_PATH there, *@path then naming it through @proc ("/proc/self/fd/N"); the fd to
 * close, or a logged -errno. With @rootfd -1: -1, *@path unchanged (this view). */
int fd_mark_open(int rootfd, const char **path, char proc[64], int target);
/* inotify.c: in stasis, every task rebuilt: @drain the events queued on every
 * description of @kind of task @pid (its table @f), on pidfd_getfd duplicates. */
int fd_drain_final(const Files *f, pid_t pid, FileKind kind, int (*drain_fd)(int fd))
	__must_check;
/* inotify.c: nothing is queued on fd @e (FIONREAD of a duplicate): reading it would take
 * it from the running tree. Else a logged -EOPNOTSUPP naming @what ("an inotify"). */
int fd_check_queue(const struct dump_ctx *c, const struct fd_ent *e, const char *what)
	__must_check;
/* regular.c: a path-based file must have a path we can open again. */
int fd_check_path(const struct dump_ctx *c, const struct fd_ent *e) __must_check;
/* regular.c: image check of a description opened by path. */
int fd_validate_path(const FileDesc *d, const struct blob_reader *blobs) __must_check;
/* regular.c: the flags a description is opened with at restore. */
int fd_open_flags(const FileDesc *d);
/* unlinked.c: a regular file unlinked while open (its contents are carried). */
bool fd_is_ghost(const struct fd_ent *e);
/* unlinked.c: @link without its " (deleted)" (NULL: no memory). */
char *fd_undeleted_path(const char *link);
/* Deleted @d (its path set) is made again in its directory in the view where that
 * directory is on @e's mount: d->in_task_root. */
void fd_ghost_view(const struct dump_ctx *c, const struct fd_ent *e, FileDesc *d);
/* unlinked.c: a readable description of the file of @e (an unlinked file or a memfd):
 * the pidfd_getfd duplicate @dup when it reads (an fd opened O_WRONLY, O_PATH or
 * O_DIRECT does not), else the file opened again read-only through /proc/PID/fd/N.
 * Returns an fd to close, or a logged -errno; @path for messages. */
int fd_open_contents(const struct dump_ctx *c, const struct fd_ent *e, int dup,
		     const char *path) __must_check;
/* unlinked.c: the contents of @e (st_size bytes, holes kept) streamed from @rfd into the
 * image's blob store; *@ref names them. */
int fd_put_contents(const struct dump_ctx *c, const struct fd_ent *e, int rfd, const char *path,
		    BlobRef **ref) __must_check;
/* unlinked.c: image check of the contents of @d (@ref: present, @d->size bytes, bounds
 * in blobs.img); @what names the file. */
int fd_check_contents(const FileDesc *d, const BlobRef *ref, const struct blob_reader *blobs,
		      const char *what) __must_check;
/* unlinked.c: a file just recreated (@fd, read-write): its contents from the blob store
 * (holes kept), then its owner (when recorded and not already so), permission bits and
 * access and modification times (@times_ns: atime, mtime; NULL: not recorded). */
int fd_fill_contents(int fd, const BlobRef *ref, const struct blob_reader *blobs,
		     const int64_t *times_ns, bool has_owner, uid_t uid, gid_t gid, bool has_mode,
		     mode_t mode, const char *what) __must_check;
/* unlinked.c: a deleted file made again at @ghost (a name of stasis's beside its old one),
 * now open: unlinked, renamed first to @orig (its old path, in the same directory; NULL:
 * not) when nothing has that name, so that it reads "ORIG (deleted)" as it did. */
void fd_ghost_unlink(const char *ghost, const char *orig);
/* memfd.c: the memfd_create flags of huge pages of @kb KiB (MFD_HUGETLB and the size),
 * 0 for a size it cannot name. */
unsigned int memfd_huge_flags(uint32_t kb);
/* unlinked.c: the contents @ref into @fd, a file just recreated: written, or on
 * hugetlbfs (no write()) ftruncated and copied through a shared mapping (pages of zeros
 * left unallocated). */
int fd_read_blob(const struct blob_reader *blobs, const BlobRef *ref, int fd, const char *what)
	__must_check;
/* locks.c: the file locks held through a description (FileDesc.locks). Dump: the
 * "lock:" lines of @e's fdinfo text; recorded on its description @d (refusing what cannot
 * be taken again); per tree, once every id is tree-wide. Restore: image check; taken by
 * the restored task (remote, non-blocking) in the final stage. */
int locks_collect(const struct dump_ctx *c, struct fd_ent *e, const char *fdinfo) __must_check;
int locks_dump(const struct dump_ctx *c, const struct fd_ent *e, FileDesc *d) __must_check;
int locks_merge(struct dump_ctx **procs, size_t n) __must_check;
int locks_validate(const FileDesc *d) __must_check;
int locks_restore(struct rst_ctx *c) __must_check;
/* The times of @st as recorded (ns since the epoch). */
static inline int64_t fd_ts_ns(const struct timespec *ts)
{
	return (int64_t)ts->tv_sec * 1000000000 + ts->tv_nsec;
}

#endif
