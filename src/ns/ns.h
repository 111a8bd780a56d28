/* Namespaces (src/ns/): the ids of every task's namespaces, UTS and time namespaces,
 * PID namespaces (ns_last_pid), --join-ns and --pin-ns here (ns.c); user (userns.c), IPC
 * (ipc.c), mount (mnt.c) and cgroup (cgroup.c) namespaces in their own files, network
 * namespaces in src/net/netns.c. The rows are ns_resource and pidns_resource (and the
 * other files' own); these are what the drivers call while they build the tree. */
#ifndef STASIS_NS_NS_H
#define STASIS_NS_NS_H

#include "cr/ctx.h"

/* One row per namespace kind (the table is in src/ns/ns.c, in stage order). A task whose
 * namespace of a kind differs from its parent's (the root's: from stasis's) created it;
 * its row records it at dump and rebuilds it at restore. */
struct ns_ops {
	const char *name; /* as in /proc/PID/ns/ */
	const char *what; /* "a mount namespace", in error lines */
	size_t id_off;    /* of its id in NsIds */
	int clone_flag;   /* CLONE_NEW* */
	bool in_clone;    /* created by the task's clone3 (else: see the row) */
	bool refuse_joined; /* entered with setns (not created by the task): cannot be rebuilt */
	bool rejoin;        /* ... unless it is an ancestor's or the dumper's: entered again */
	/* Dump, once every process was read: the task created one; record it in c->core.
	 * @parent: its parent in the tree (NULL: the root, whose parent is outside). */
	int (*dump)(struct dump_ctx *c, const struct dump_ctx *parent);
	/* Restore: does the image say the task created one? (NULL: pid, see rst_new_pid_ns) */
	bool (*created)(const TaskNs *tns);
	/* Restore child, in its new namespaces, before anything else of the task. */
	int (*restore_child)(struct rst_ctx *c);
	/* --join-ns of this kind: the root goes into an existing namespace instead (NULL:
	 * not joinable). */
	void (*forget)(TaskNs *root);
};

int ns_dump(struct dump_ctx *c) __must_check; /* namespace ids */
/* After every process: refuse namespaces not supported yet, record UTS names. */
int ns_dump_tree(struct dump_ctx **procs, size_t n, const pid_t *ppid) __must_check;
/* Restore child, first thing: set up the namespaces it created (UTS names). */
int ns_restore_child(struct rst_ctx *c) __must_check;
/* Did the task enter (setns) its namespace of @type (CLONE_NEW*) rather than create it? */
bool ns_task_joined(const TaskNs *tns, int type);
/* Untrusted: task @idx's entered namespaces (TaskNs.joined) are of kinds that can be
 * entered, each once, not also created, an ancestor's in the task list or the
 * restorer's. */
int ns_joined_check(const TaskNs *tns, const Inventory *inv, size_t idx) __must_check;
/* Restore child, before its namespaces are set up: enter those it had entered, through
 * @proc_dfd (stasis's /proc: the ancestor's pid, or @stasis_pid). */
int ns_enter_joined(const TaskNs *tns, int proc_dfd, pid_t stasis_pid) __must_check;
/* clone3 flags for the namespaces task @core creates (CLONE_NEWUTS, ...; not NEWPID). */
uint64_t ns_clone_flags(const TaskNs *tns);
/* In the creator's restore child: a new time namespace for the children created next. */
int ns_enter_time_for_children(const TimeNs *t) __must_check;
/* --join-ns TYPE:PATH: open PATH, check it is an nsfs file of TYPE (uts, ipc, net);
 * *nstype is the CLONE_NEW* flag. */
int ns_join_open(const char *spec, int *fd, int *nstype) __must_check;
/* The root restored into joined namespaces: forget what it would have created of them. */
void ns_join_forget(TaskNs *root, int nstype);
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
int ns_pins_add(struct ns_pins *p, const TaskNs *tns, pid_t pid, bool new_pid) __must_check;
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

#endif
