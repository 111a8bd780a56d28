/* Internal header of the unix socket kind (src/net/sk_unix*.c): shared by its three
 * files only (sk_unix.c: the row and the dump; sk_unix_queue.c: queued data, peeked at
 * dump and sent again at restore; sk_unix_rst.c: the restore of a set of sockets). */
#ifndef STASIS_SK_UNIX_INT_H
#define STASIS_SK_UNIX_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "files/fd_ops.h"
#include "net/sk_unix.h"

#define SK_ESTABLISHED 1
#define SK_CLOSE 7
#define SK_LISTEN 10
#define SK_RCV_SHUTDOWN 1
#define SK_SEND_SHUTDOWN 2
/* Images are untrusted: bounds of what one socket's queue may hold. */
#define SK_QUEUE_MAX (64u << 20)
#define SK_MSGS_MAX (1u << 20)
/* sizeof(sun_path) */
#define SK_NAME_MAX 108
/* queued connections of one listening socket */
#define SK_ICONS_MAX 65536

const char *sk_unix_type_name(unsigned int t);
/* The state of @u: images of socketpairs only (before the state was recorded) are
 * connected. */
static inline unsigned int sk_unix_state(const UnixSk *u)
{
	return u->has_state ? u->state : SK_ESTABLISHED;
}
/* For messages: the name of @u ("/run/x.sock", "@abstract", "unnamed"), in @buf. */
const char *sk_unix_name_str(const ProtobufCBinaryData *name, bool has, char *buf, size_t len);

/* at most SCM_MAX_FD descriptors in one message */
#define SK_RIGHTS_MAX 253

/* Restore: the fd of the description with id @id (borrowed), or a logged -errno. */
struct sk_rights {
	int (*fd)(void *arg, uint32_t id);
	void *arg;
};

/* sk_unix_queue.c. Dump: the data queued at socket @dup (fd @fd of @pid), peeked
 * without consuming it; datagrams and seqpackets one message each with its sender's
 * address. */
int sk_unix_peek_stream(pid_t pid, int fd, int dup, UnixSk *u) __must_check;
int sk_unix_peek_msgs(pid_t pid, int fd, int dup, bool rcv_shut, UnixSk *u) __must_check;
/* Dump, merge: the descriptors in flight in the message at offset @off of @dup (@msg: a
 * message, else @len bytes of a stream), installed in stasis: up to @max into @fds (to
 * close), *@n of them. */
int sk_unix_peek_fds(int dup, int off, size_t len, bool msg, int *fds, size_t max,
		     size_t *n) __must_check;
/* Restore: queue what @u held by sending it from @snd, connected to it, with the
 * descriptors in flight (@src gives their fds). */
int sk_unix_fill(int snd, const UnixSk *u, const struct sk_rights *src) __must_check;
/* Restore: send message @i of @u from @snd to the address @to (@tolen bytes). */
int sk_unix_send_msg(int snd, const UnixSk *u, size_t i, const void *to, unsigned int tolen,
		     const struct sk_rights *src) __must_check;
/* Raise @sk's send buffer so that a queue that fitted at dump fits again. */
void sk_unix_raise_sndbuf(int sk);
/* The generic options of @u to set before bind/connect/listen (sockopt EARLY). */
int sk_unix_early(int sk, const UnixSk *u) __must_check;
/* The other generic options (sockopt LATE: buffers with their locks ...), SO_PASSCRED, SO_PASSSEC, SO_PEEK_OFF and the shutdown bits of @u on @sk. */
int sk_unix_finish(int sk, const UnixSk *u) __must_check;

/* sk_unix.c: dump socket @dup (fd @e of the task of @c, or in flight: e->fd -1) into
 * d->unix_sk. */
int sk_unix_dump_fd(const struct dump_ctx *c, const struct fd_ent *e, int dup, FileDesc *d) __must_check;
/* sk_unix_flight.c: the descriptors in flight in the queues of the tree's unix sockets,
 * identified (UnixSk.rights ids); those no task holds added to the receivers' files. */
int sk_unix_flight(struct dump_ctx **procs, size_t n) __must_check;

/* sk_unix_cred.c. Dump: the peer credentials of socket @dup (fd @fd of the task of @c)
 * as that task reads them, into u->peer_cred (none: left out). */
int sk_unix_peer_cred(const struct dump_ctx *c, int fd, int dup, UnixSk *u) __must_check;
/* Merge: @u's peer credentials name a task of the tree, or a process gone (marked dead),
 * else -EOPNOTSUPP (a live process outside the tree), logged. */
int sk_unix_cred_merge(struct dump_ctx **procs, size_t n, pid_t holder, UnixSk *u) __must_check;
/* Merge: the credentials the accepted end of client @client's queued connection will
 * have (UnixSk.connector): those of its holder @hc as the listener's holder @hl reads them
 * (the connector's cannot be read before the accept). */
int sk_unix_connector(const struct dump_ctx *hl, const struct dump_ctx *hc, UnixSk *client)
	__must_check;
/* Restore: how the sockets are made. @exact: the recorded peer credentials can be made,
 * by the maker (a process in the holders' pid and user namespaces: their restore child,
 * or stasis for holders in its own) or, with @pidns and @userns (the holders'), by
 * children of stasis born in them; @netns: the sockets' network namespace (-1: the
 * maker's). */
struct sk_cred_ctx {
	bool exact;
	int netns, pidns, userns;
	/* the agent of the holders' creator (sk_cred_agent_start; -1: none), whose pid
	 * there is @agent_pid: the calls with its credentials are made by it */
	int agent;
	pid_t agent_pid;
};
/* socketpair, listen and connect made with the peer credentials @pc (NULL: the maker's):
 * 0 or -errno (of the call; logged by the caller). @n socketpairs at once, of @types[i],
 * into @svs[2i] and @svs[2i + 1] (all or none). */
int sk_cred_socketpairs(const struct sk_cred_ctx *x, const PeerCred *pc, size_t n,
			const int *types, int *svs) __must_check;
int sk_cred_listen(const struct sk_cred_ctx *x, const PeerCred *pc, int fd, int backlog)
	__must_check;
struct sockaddr;
int sk_cred_connect(const struct sk_cred_ctx *x, const PeerCred *pc, int fd,
		    const struct sockaddr *sa, unsigned int len) __must_check;
/* After the build: a difference from the recorded peer credentials logged. */
void sk_cred_check(const struct sk_cred_ctx *x, int fd, const UnixSk *u);

/* sk_unix_rst.c: make the sockets @d[0..n) (every unix description of a task or of a
 * tree, each once), connected, bound, listening and with their queues as dumped;
 * fds[k] gets a close-on-exec, non-blocking fd of d[k] (status flags not set).
 * @src gives the fds of the descriptions in flight that are not in the set. The sockets
 * are made in network namespace @cx->netns (-1: the caller's); every other step (paths in
 * the caller's mount tree; abstract names, which are the socket's namespace's) is ours;
 * the peer credentials as @cx says.
 * Nothing is left behind on failure. */
int sk_unix_build(const FileDesc *const *d, size_t n, int *fds, const struct sk_rights *src,
		  const struct sk_cred_ctx *cx) __must_check;

#endif
