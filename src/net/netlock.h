/* The network lock (src/net/netlock.c): from the freeze until the restored tree runs, the
 * packets of the tree's TCP connections are dropped (nftables, a table of stasis's own:
 * `inet stasis-lock-PID`), so that peers see a pause, never a reset.
 *
 *   - connections in stasis's own net namespace: dropped by 4-tuple (sets of the
 *     connections, input and output), recorded in netlock.img; those between two
 *     sockets of the tree in sets of their own, unlocked as soon as the restore has
 *     made every socket again;
 *   - a net namespace of the tree (not stasis's) holding TCP connections: everything but
 *     loopback is dropped inside it (installed by a child that entered it), the NetNs
 *     record says `locked`, the restore locks the new namespace before its contents.
 *
 * A tree without TCP connections is not locked. `--network-lock none` does nothing. */
#ifndef STASIS_NET_NETLOCK_H
#define STASIS_NET_NETLOCK_H

#include <stdbool.h>

#include "cr/ctx.h"

#define NETLOCK_MAX_CONNS 65536
/* The mark (SO_MARK) of the segments the restore injects as from a peer (src/net/sk_tcp.c
 * inject): the lock lets them through, so that a connection whose peer is outside the
 * tree reaches its state (CLOSE_WAIT...) while it is locked. */
#define NETLOCK_INJECT_MARK 0x57a515edu

/* Run nftables command(s) @cmd (one transaction) in the caller's net namespace through
 * libnftables: 0, with what it printed in *@out (malloc'ed) when @out is not NULL, or
 * -errno with the library's first error line in @err. */
int netlock_nft(const char *cmd, char **out, char *err, size_t errlen) __must_check;

/* Restore, a connection of the tree about to be given the peer's segments (FIN...) its
 * state implies (src/net/sk_tcp.c): in a net namespace of the tree locked whole (whose
 * loopback stays open), what the socket answers (its ACK) is dropped until the tree runs:
 * a peer gone with the dumped namespace (the orphan of a connection the tree closed)
 * would answer it with a reset. Nothing in stasis's own namespace (the connection's lock
 * drops it there) or in a namespace not locked. The unlock (netlock_restore_done) waits
 * 250 ms after the last such rule: the answer may be a delayed ACK. Addresses in network
 * byte order. */
int netlock_drop_reply(int nsfd, pid_t pid, bool v6, const uint8_t *laddr, uint16_t lport,
		       const uint8_t *raddr, uint16_t rport) __must_check;

/* "nftables" (the default) -> false, "none" -> true; -EINVAL for anything else. */
int netlock_parse_mode(const char *s, bool *none) __must_check;

struct netlock;

/* Dump, right after the tree is frozen: find the tree's TCP connections (socket inodes of
 * the fd tables, inet_diag in each net namespace) and lock them; the host lock is written
 * to the image directory (netlock.img). *@out: NULL when nothing was locked. A lock that
 * cannot be installed (no CAP_NET_ADMIN) fails with one line naming --network-lock none;
 * nothing stays locked then. */
int netlock_dump(struct dump_tree *t, struct netlock **out) __must_check;
/* Dump, the tree frozen, before netlock_dump: new connections to the tree's TCP
 * listeners are held back until the dump ends (their SYNs dropped in the listener's net
 * namespace: table `inet stasis-drain-PID`, by address and port, by port for the any
 * address, set elements that expire after a minute; not with --network-lock none, nor
 * where stasis may not), so that no connection the kernel completes while the tree is
 * frozen waits in an accept queue at the dump. *@out: NULL when the tree has no listener.
 * Returns 1 when connections wait in an accept queue (one from a client outside the tree,
 * or with data or a FIN its server has not read, could not be made again as it is): the
 * caller then lets the tree run, waits (netlock_drain_wait) for it to accept them, and
 * freezes it again. */
#define NETLOCK_DRAIN_PREFIX "stasis-drain-"
struct netlock_drain;
int netlock_drain_start(struct dump_tree *t, struct netlock_drain **out) __must_check;
/* The tree runs: until its accept queues are empty, or none moved for 250 ms (3 s at
 * most). */
void netlock_drain_wait(struct netlock_drain *d);
/* The dump's end: new connections let in again; @d freed. */
void netlock_drain_end(struct netlock_drain *d);
/* After the dump_tree stage: mark the NetNs records of the namespaces locked whole. */
void netlock_dump_mark(const struct netlock *nl, struct dump_tree *t);
/* Remove every lock @nl holds (a failed dump, --leave-running); failures are warned. */
void netlock_unlock(struct netlock *nl);
/* The lock stays (a dump that succeeded): say so. */
void netlock_keep(const struct netlock *nl, const char *dir);
void netlock_free(struct netlock *nl);

/* Restore, before any task exists: read netlock.img (if any), validate it, and lock its
 * connections again in stasis's net namespace (replacing a lock of the same name
 * atomically: a restore on the dump's machine). Nothing with @none; with @tcp_close
 * (connections restored closed) the recorded lock is removed instead. */
int netlock_restore(int img_dfd, bool none, bool tcp_close, struct netlock **out) __must_check;
/* In the restore child, right after CLONE_NEWNET: lock the new namespace when its record
 * says it was locked. */
int netlock_restore_ns(const struct rst_ctx *c) __must_check;
/* Every socket of the tree exists again (in repair mode), before the restore talks over
 * the connections between them: unlock those (they were locked from the dump on so that
 * nothing in flight could reset them). 0 or -errno (logged). */
int netlock_restore_inner(struct netlock *nl) __must_check;
/* The restored tree runs: remove the locks (the host's, and every restored namespace's
 * whose record says locked). */
void netlock_restore_done(struct netlock *nl, bool none, struct rst_ctx *const *procs, size_t n);
/* A failed restore: the host lock stays (the peers keep waiting, no reset): say so; one
 * that held only connections between the tree's own sockets is removed (nobody waits). */
void netlock_restore_failed(const struct netlock *nl, const char *dir);

/* The stale temporary directory @tmp of a killed dump is about to be removed (img_gc's
 * hook): remove the lock its netlock.img records, and its dumper's drain table in
 * stasis's namespace; the tree runs on without them. */
void netlock_gc_stale(const char *tmp);

/* `stasis unlock-network -D DIR`: remove the lock netlock.img of DIR records. 0 (also when
 * there is none, said on stdout) or -errno (logged). */
int netlock_unlock_dir(const char *dir) __must_check;

#endif
