/* Helpers shared by the datagram socket rows of src/net (sk_udp.c, sk_netlink.c,
 * sk_packet.c): what socket an fd is, the check that it lives in its task's network
 * namespace, and batched sock_diag dumps. Internal to src/net (includes files/fd_ops.h). */
#ifndef STASIS_NET_SK_DGRAM_H
#define STASIS_NET_SK_DGRAM_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>
#include <linux/netlink.h>

#include "files/fd_ops.h"

struct sk_ident {
	int domain, type, protocol;
};

/* Is fd @e a socket, and of which domain/type/protocol (read when it was collected)? 1
 * with *@id set, 0 if not a socket. */
int sk_ident_of(const struct dump_ctx *c, const struct fd_ent *e, struct sk_ident *id) __must_check;

/* Log "fd N of pid P is WHAT (LINK): not supported yet"; -EOPNOTSUPP. */
int sk_refuse(pid_t pid, int fd, const char *link, const char *what);

/* A NETLINK_SOCK_DIAG socket in the network namespace of @pid; with @dup >= 0, the
 * socket @dup (fd @fd of @pid) must live in that namespace (SO_NETNS_COOKIE): one made
 * in another namespace and passed in is refused. The fd, or a logged -errno. */
int sk_diag_open(pid_t pid, int fd, int dup, const char *link) __must_check;

/* One sock_diag dump (@req, @len bytes, NLM_F_DUMP set here) on @nl: @cb is called for
 * every reply message until NLMSG_DONE; an NLMSG_ERROR or a @cb error ends it. Bounded
 * wait. 0 or a logged -errno (@what names the dump). */
typedef int (*sk_diag_cb)(const struct nlmsghdr *h, void *arg);
int sk_diag_dump(int nl, void *req, size_t len, sk_diag_cb cb, void *arg, const char *what) __must_check;

/* The inode of the network namespace of process @c (0 on failure, logged). */
uint64_t sk_netns_ino(const struct dump_ctx *c);

/* Is the receive queue of @sk non-empty (poll: POLLIN without a read shutdown)? */
bool sk_has_queued(int sk);

/* Refuse a socket with a pending error or a non-empty error queue (poll: POLLERR): the
 * error is cleared by whatever reads it (SO_ERROR, a receive), so it can be neither
 * peeked nor carried. 0, or a logged -EOPNOTSUPP. */
int sk_refuse_error(pid_t pid, int fd, int sk, const char *link, const char *what);

/* The socket inodes a sock_diag dump of one namespace saw. */
struct sk_inos {
	uint64_t *v;
	size_t n, cap;
};
int sk_inos_add(struct sk_inos *s, uint64_t ino) __must_check;
/* Every description of @kind held by a process whose namespace (@ns[p]) is @netns must
 * be among @seen: one that is not lives in another network namespace than its task's
 * (made there and passed over, or the task moved): refused, logged. */
int sk_check_seen(struct dump_ctx **procs, size_t n, const uint64_t *ns, uint64_t netns,
		  FileKind kind, const struct sk_inos *seen, const char *what) __must_check;

/* One sock_diag dump per network namespace of the tree that holds a socket of @kind (the
 * merge hook of the netlink and packet rows): @one gets every reply with a struct sk_scan
 * (the namespace being dumped in ->netns, the inodes it reports added to ->seen by @one);
 * then the sockets of that namespace the dump did not list are refused (@what: "netlink
 * socket"). @req (@len bytes) is the request. 0 or a logged -errno. */
struct sk_scan {
	struct dump_ctx **procs;
	size_t n;
	const uint64_t *ns; /* the network namespace of each process */
	uint64_t netns;
	struct sk_inos seen;
};
int sk_diag_scan(struct dump_ctx **procs, size_t n, FileKind kind, void *req, size_t len,
		 sk_diag_cb one, const char *what) __must_check;


/* A socket shared by processes is made once at restore: by stasis in its own network
 * namespace, or by the creator of the one namespace of the tree its users are all in
 * (before it creates them: they inherit it). Refuse (the dump's merge hook) a
 * description of @kind shared by processes of several network namespaces. */
int sk_refuse_shared(struct dump_ctx **procs, size_t n, FileKind kind, const char *what) __must_check;

#endif
