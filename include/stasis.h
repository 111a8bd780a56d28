/* libstasis: checkpoint and restore process trees from a program (a container runtime, a
 * job scheduler). The same code as the stasis command: `stasis dump` and `stasis restore`
 * are thin layers over it.
 *
 *   #include <stasis.h>      cc prog.c $(pkg-config --cflags --libs stasis)
 *
 * Every call returns 0 or a negative errno, and stasis_last_error() the first error line
 * it logged. Options are structs whose first member is their size: set it to sizeof the
 * struct you compiled against (STASIS_DUMP_OPTS_INIT does), so that newer libraries,
 * which only ever append members, keep working with older programs. Not thread-safe:
 * one checkpoint or restore at a time per process. The restored tree's root is a child
 * of the calling process (reap it with waitpid). */
#ifndef STASIS_H
#define STASIS_H

#include <stddef.h>
#include <sys/types.h>

#ifdef __cplusplus
extern "C" {
#endif

#define STASIS_API_VERSION 1

/* Called at the points CRIU's action scripts see ("pre-dump", "network-lock",
 * "post-dump", "pre-restore", "setup-namespaces", "post-setup-namespaces",
 * "post-restore", "network-unlock", "pre-resume", "post-resume"), with the root's pid
 * where there is one (else 0). Non-zero fails the dump or the restore (but post-resume,
 * which comes when the tree already runs). */
typedef int (*stasis_notify_fn)(void *arg, const char *point, pid_t pid);

struct stasis_dump_opts {
	size_t size;               /* sizeof(struct stasis_dump_opts) */
	pid_t pid;                 /* the root of the tree */
	const char *images_dir;    /* created, or replaced atomically */
	int leave_running;         /* the tree goes on after the dump (else it is killed) */
	int no_sync;               /* do not fsync the images */
	int pre_dump;              /* memory only, write tracking armed, the tree runs on */
	const char *prev_images_dir; /* incremental: the previous pre-dump (relative to
				      * images_dir, or absolute), or NULL */
	int shell_job;             /* the tree uses the caller's terminal */
	const char *log_file;      /* NULL: stderr */
	int log_level;             /* 0 errors, 1 warnings, 2 info, 3 debug */
	stasis_notify_fn notify;   /* or NULL */
	void *notify_arg;
	int compress;              /* 0: pages stored as they are; 1..19: zstd level */
};
#define STASIS_DUMP_OPTS_INIT { .size = sizeof(struct stasis_dump_opts) }

struct stasis_restore_opts {
	size_t size;               /* sizeof(struct stasis_restore_opts) */
	const char *images_dir;
	const char *root_dir;      /* the root of the first restored mount tree, or NULL */
	int shell_job;             /* attach a shell job to the caller's terminal */
	int tcp_close;             /* TCP connections restored closed */
	const char *log_file;      /* NULL: stderr */
	int log_level;
	stasis_notify_fn notify;   /* or NULL */
	void *notify_arg;
};
#define STASIS_RESTORE_OPTS_INIT { .size = sizeof(struct stasis_restore_opts) }

/* Checkpoint the tree rooted at o->pid into o->images_dir. A failure leaves the tree
 * running as it was and no image directory. */
int stasis_dump(const struct stasis_dump_opts *o);
/* Restore the tree of o->images_dir; it runs when this returns 0, and *root (if not
 * NULL) is its root's pid, a child of the caller. A failure leaves no process behind. */
int stasis_restore(const struct stasis_restore_opts *o, pid_t *root);
/* The first error line of the last failed call ("" if none). */
const char *stasis_last_error(void);
/* "stasis X.Y.Z". */
const char *stasis_version(void);

#ifdef __cplusplus
}
#endif

#endif
