/* Internal to src/helper/: the per-connection session and the operation handlers
 * (ops.c), called by the server loop (helper.c); the client's channel hardening, shared
 * by client.c and spawn.c. */
#ifndef STASIS_HELPER_INT_H
#define STASIS_HELPER_INT_H

#include <stddef.h>
#include <sys/socket.h>
#include <sys/types.h>

#include "helper/helper.h"
#include "helper/proto.h"

/* How far up a ppid chain the tree check walks. */
#define HELPER_MAX_DEPTH 4096
/* Supplementary groups of a peer considered (NGROUPS_MAX). */
#define HELPER_MAX_GROUPS 65536

struct helper_sess {
	int sock;
	struct ucred peer;	/* SO_PEERCRED, in the helper's namespaces */
	gid_t *groups;		/* SO_PEERGROUPS (malloc'd) */
	size_t ngroups;
	pid_t root;		/* registered tree root (helper's PID ns), 0 if none */
	int root_pidfd;		/* pins it, -1 if none */
};

/* An operation handler: @fds are the request's fds (helper_req_nfds(q) of them, owned
 * by the caller), *@out_fd an fd to send back (the caller closes it). Returns 0 or
 * -errno with the reason in @why; the caller logs refusals and replies. */
typedef int (*helper_op_fn)(struct helper_sess *s, const struct helper_req *q, const int *fds,
			    int *out_fd, char *why, size_t whylen);

int helper_op_register_tree(struct helper_sess *s, const struct helper_req *q, const int *fds,
			    int *out_fd, char *why, size_t whylen);
int helper_op_sockbuf(struct helper_sess *s, const struct helper_req *q, const int *fds,
		      int *out_fd, char *why, size_t whylen);
int helper_op_write_id_map(struct helper_sess *s, const struct helper_req *q, const int *fds,
			   int *out_fd, char *why, size_t whylen);
int helper_op_set_last_pid(struct helper_sess *s, const struct helper_req *q, const int *fds,
			   int *out_fd, char *why, size_t whylen);
int helper_op_open_by_handle(struct helper_sess *s, const struct helper_req *q, const int *fds,
			     int *out_fd, char *why, size_t whylen);

struct helper;
/* Make the caller non-dumpable while it holds a channel (client.h), remembering its
 * state in @h; 0 or -errno. helper_channel_unharden() puts that state back. */
int helper_channel_harden(struct helper *h) __attribute__((warn_unused_result));
void helper_channel_unharden(struct helper *h);

#endif
