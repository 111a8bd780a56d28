/* Run work inside other namespaces and bring back the answer: the one way stasis does it.
 *
 * ns_run() forks a single-threaded child of the caller that joins the given namespaces
 * (through their owning user namespace when asked and when that is not the caller's; a
 * pid namespace is entered by the caller just for the fork, so the child is born in it),
 * runs @fn there, and returns to the caller a bounded reply: the child's result (0 or
 * -errno), its first error message, and up to @max_reply bytes of data (raw bytes, or a
 * protobuf message packed by the child and unpacked by the caller: ns_run_msg()).
 * The wait is bounded; on a timeout, an oversized reply or any transport error the child
 * is killed, and it is always reaped (no zombie is left). Errors are logged once: a
 * transport error by ns_run, the child's own error (its message) by ns_run in the caller,
 * prefixed with @err_prefix; a child error without a message is not logged (the caller
 * decides), only returned. */
#ifndef STASIS_NS_NSRUN_H
#define STASIS_NS_NSRUN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <protobuf-c/protobuf-c.h>

#include "core/util.h"

#define NSRUN_MAX_NS 4
#define NSRUN_MSG_MAX 512

struct nsrun_ns {
	int fd;   /* an nsfs file (/proc/PID/ns/KIND) */
	int type; /* its CLONE_NEW* flag */
};

struct nsrun {
	const char *tag;        /* log prefix of transport errors: "ns", "ipc", "net" */
	const char *what;       /* "the UTS namespace of pid 42", for transport errors */
	const char *err_prefix; /* put before the child's message when logged (may be NULL) */
	struct nsrun_ns ns[NSRUN_MAX_NS];
	size_t n_ns;
	/* setns needs CAP_SYS_ADMIN over the namespace's owning user namespace: enter the
	 * owner of ns[0] first when it is not ours (ids read are then as its tasks see them) */
	bool via_owner;
	int timeout_ms;   /* 0: 10 s */
	size_t max_reply; /* bound on the reply's data (bytes) */
};

/* The child's reply buffer: fn appends with nsrun_put (at most max bytes). */
struct nsrun_buf {
	uint8_t *data;
	size_t len, cap, max;
};
int nsrun_put(struct nsrun_buf *b, const void *p, size_t n) __must_check;

/* In the child: record the child's first error message; returns @err. (A pr_err of the
 * child is used when no message was recorded this way.) */
int nsrun_error(int err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Runs in the child, inside the namespaces: 0 or -errno. */
typedef int (*nsrun_fn)(void *arg, struct nsrun_buf *out);

/* 0 with *@data (malloc'd, the caller frees it; NULL when empty) and *@len set, or the
 * child's -errno, or a transport -errno. */
int ns_run(const struct nsrun *r, nsrun_fn fn, void *arg, void **data, size_t *len) __must_check;

/* A child that builds a protobuf message (NULL with -errno in *err on failure); ns_run
 * packs it in the child and unpacks it with @desc in the caller (*@out: free it with
 * protobuf_c_message_free_unpacked). */
typedef ProtobufCMessage *(*nsrun_msg_fn)(void *arg, int *err);
int ns_run_msg(const struct nsrun *r, const ProtobufCMessageDescriptor *desc, nsrun_msg_fn fn,
	       void *arg, ProtobufCMessage **out) __must_check;

/* A child that makes a file there (its fd, or -errno): ns_run_fd() sends it back and
 * returns it to the caller (close-on-exec), or the child's -errno, or a transport one. */
typedef int (*nsrun_fd_fn)(void *arg);
int ns_run_fd(const struct nsrun *r, nsrun_fd_fn fn, void *arg);

/* Open /proc/@pid/ns/@kind (O_RDONLY|O_CLOEXEC): the fd, or -errno logged as
 * "@tag: open /proc/PID/ns/KIND: ...". */
int ns_open_of(pid_t pid, const char *kind, const char *tag);
/* Is the namespace of nsfs fd @nsfd (of kind @kind: "net", "pid", ...) the calling
 * thread's own? (false when either cannot be looked at) */
bool ns_fd_is_ours(int nsfd, const char *kind);
/* /proc/@pid/ns/@kind (through @proc_dfd, a /proc directory; -1: /proc) into *@fd when it
 * is not the calling thread's own namespace, else *@fd = -1. 0 or -errno, logged as
 * ns_open_of does. */
int ns_open_other(int proc_dfd, pid_t pid, const char *kind, const char *tag, int *fd)
	__must_check;

/* The one thing not done in a child: a socket made in net namespace @nsfd and used from
 * here (a socket stays in the namespace it was made in; sock_diag and rtnetlink act on
 * it). A short-lived thread enters the namespace for the socket() call and ends there
 * (no fork: such sockets are opened often; no way back needed). @proc_dfd: a
 * /proc where this thread is visible (-1: /proc). The fd, or -errno logged once as
 * "@tag: ... @what ..." ("sock_diag", "the net namespace of pid 42"). */
int ns_socket_in(int proc_dfd, int nsfd, int domain, int type, int proto, const char *tag,
		 const char *what);
/* The same for socketpair(): 0 (@sv filled) or -errno logged once. */
int ns_socketpair_in(int nsfd, int domain, int type, int proto, int sv[2], const char *tag,
		     const char *what) __must_check;

#endif
