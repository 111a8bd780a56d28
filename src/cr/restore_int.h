/* Restore internals shared by the files of the restore driver: restore.c (the stages of
 * the whole restore, the rebuild of each task), spawn.c (creating the tasks, the restore
 * child), serve.c (stasis serving the tasks' requests while they set up). Nothing outside
 * src/cr/ includes it. */
#ifndef STASIS_CR_RESTORE_INT_H
#define STASIS_CR_RESTORE_INT_H

#include "cr/ctx.h"
#include "helper/client.h"
#include "ns/ns.h"

#define SVC_STATUS 0 /* offsets from svc_lo */
#define SVC_LOG 1
#define SVC_EXE 2
#define SVC_PIDREQ 3
#define SVC_MAPS 4

/* The tree being restored: every process's context, and the inventory's task list
 * (alive and zombie, parents before children). */
struct netlock;

struct rst_tree {
	const struct restore_opts *opts;
	struct img_dir img;
	struct blob_reader blobs; /* blobs.img (fd -1: none), every task's c->blobs */
	Inventory *inv;
	struct rst_ctx **procs;  /* procs[i] for alive task i of inv->tasks (NULL: zombie) */
	size_t n;                /* inv->n_tasks */
	struct mem_lazy *lazy;   /* --lazy-pages: the page server (src/mem/lazy.c) */
	int status_wr;           /* packet pipe: every task reports here */
	int *gfd;
	uint32_t n_gfd;
	int gfd_base;
	struct shm_obj *shm;
	size_t n_shm;
	struct ghost_obj *ghosts;
	size_t n_ghosts;
	pid_t *helpers;          /* leaders of groups whose leader exited */
	ssize_t *helper_maker;   /* the task making each one (a group of another session than
				  * the root's, made in it), or -1: the root or stasis */
	size_t n_helpers;
	bool helpers_from_root;  /* created by the root (it leads the session) */
	int status_rd;           /* stasis's end of the status pipe (closed in the tasks) */
	int proc_dfd;            /* /proc of stasis, for every task (the pids are its pids) */
	int root_fd;             /* stasis's "/": paths recorded in the dumper's view */
	int go_rd;               /* a new task waits here for its creator's go */
	int dumpable_wr;         /* ... after saying here that it made itself dumpable */
	int pidreq_rd, pidreq_wr; /* pids at levels a creator cannot set (src/cr/pidreq.c) */
	int fd_top;              /* above every fd stasis hands down to the tasks */
	int join_fd[MAX_JOIN_NS], join_type[MAX_JOIN_NS]; /* --join-ns, entered by the root */
	size_t n_join;
	bool net_joined;   /* --join-ns net:...: the root's network namespace is that one */
	/* --helper: the privileged stasis helper, held by stasis only (the tasks ask stasis
	 * through the pidreq channel); have_helper stays true in the tasks */
	struct helper helper;
	bool have_helper, helper_tree;
	struct ns_pins pins;     /* --pin-ns */
	struct netlock *nl;      /* the network lock of the image (src/net/netlock.h) */
	/* descriptions opened in a mount namespace the tree creates, once its tree is rebuilt:
	 * defer[id] is the index of the task creating it (-1: none), opened by stasis
	 * through /proc/CREATOR/root and passed to the creator (src/cr/pidreq.c) */
	ssize_t *defer;
	pid_t *spawned;          /* in a creator: the pid each task it created got (0: none) */
	bool pid_unshared_done;  /* in a creator: it unshared its pid namespace for children */
	pid_t via_helper;        /* in a task made through a helper (TaskEntry.creator): the
				  * helper, until the task is reparented */
	bool early;              /* in a creator: making the children of its birth session */
};

struct status_msg {
	int32_t pid;
	int32_t err; /* 0: ready */
	char msg[504];
};

/* spawn.c */
/* Who creates task @j: its parent, or — for a task in the session of a leader that is its
 * sibling (reparented to their common parent) — that leader, with CLONE_PARENT, or the
 * task of its session the image names (TaskEntry.creator), through a helper. */
pid_t rst_creator_of(const Inventory *inv, size_t j);
/* Is @sid a session made through a helper (TaskEntry.via_session: its leader gone)? */
bool rst_helper_session(const Inventory *inv, pid_t sid);
/* Task @j is made by its parent before the parent's setsid (it stayed in the session its
 * parent was born in). */
bool rst_early_child(const Inventory *inv, size_t j);
/* The task starts a pid namespace of its own: one level deeper than its creator. */
bool rst_new_pid_ns(const Inventory *inv, size_t j);
/* The init of pid-namespace level @k (>= 1) of task @j: @j or one of its ancestors;
 * -1 if none (the level's init is not in the tree). */
ssize_t rst_level_init(const struct rst_tree *t, size_t j, size_t k);
/* How many outer pid-namespace levels of task @j its creator (@creator, -1: stasis)
 * cannot set with set_tid (spawn.c). */
size_t rst_unsettable_levels(const struct rst_tree *t, ssize_t creator, size_t j);
/* The highest pid, group or session id of the image at pid-namespace level @lvl (0:
 * stasis's): ids above it are no task's or helper's there. */
pid_t rst_image_top_id(const Inventory *inv, size_t lvl);
/* The ids of process group @g at every level its members see it (NSpgid of a member),
 * outermost first, in @ids; their count (0: the image has only the outermost). */
size_t rst_group_levels(const struct rst_tree *t, pid_t g, const int32_t **ids);
/* rst_ctx.thread_levels (serve.c). */
int rst_thread_levels(void *tree, pid_t pid, const int32_t *nstid, size_t n);
/* Process groups whose leader exited (each once) into @out (room for t->n); their count. */
size_t rst_orphan_groups(const struct rst_tree *t, pid_t *out, ssize_t *maker);
/* Create task @j with its pids (@creator: index of the creating task, -1: stasis); does
 * not return in the child. Its pid as the creator sees it, or -errno. */
pid_t rst_spawn_task(struct rst_tree *t, ssize_t creator, size_t j, int exit_signal,
		     bool parent, uint64_t flags);
/* The leaders of process groups whose leader exited, created by the root (@from_root) or
 * by stasis. */
int rst_create_helpers(struct rst_tree *t, bool from_root) __must_check;

/* serve.c */
/* The fd tables of the tree (*@nf of them, malloc'd; NULL: no memory). */
Files **rst_tree_files(const struct rst_tree *t, size_t *nf);
/* The task creating the mount (@net: network) namespace task @i is in, if the tree
 * creates it; -1 if not (stasis's, or one joined). */
ssize_t rst_ns_creator(const struct rst_tree *t, size_t i, bool net);
static inline ssize_t rst_mnt_creator(const struct rst_tree *t, size_t i)
{
	return rst_ns_creator(t, i, false);
}
/* Stasis: the maps of task @pid's new user namespace, itself or through the helper. */
int rst_stasis_write_maps(void *arg, pid_t pid) __must_check;
/* Every task (and group helper) reports ready on @rd, serving the tasks' requests
 * meanwhile; the first error wins. */
int rst_wait_ready(struct rst_tree *t, int rd) __must_check;

#endif
