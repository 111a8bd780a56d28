/* The privileged helper, server side (the usernsd idea; docs/ARCHITECTURE.md, "The
 * privileged helper"). A small loop with no checkpoint logic: it answers the requests of
 * proto.h, one SOCK_SEQPACKET message each, for peers it authenticates with SO_PEERCRED.
 * The client side is helper/client.h. */
#ifndef STASIS_HELPER_HELPER_H
#define STASIS_HELPER_HELPER_H

#include <stdbool.h>
#include <sys/types.h>

struct helper_cfg {
	/* Peers with this uid (as SO_PEERCRED reports it in the helper's user namespace)
	 * are served, and root (uid 0) always; everybody else is refused. */
	uid_t serve_uid;
};

/* Serve the one connected socket @sock (the spawned mode: a socketpair with the
 * restoring stasis) until the peer closes it. Makes the process non-dumpable first.
 * 0 when the channel was closed, -errno on a fatal error. */
int helper_serve_conn(int sock, const struct helper_cfg *cfg) __attribute__((warn_unused_result));

/* The long-lived mode: listen on a new unix SOCK_SEQPACKET socket at @path (mode 0600,
 * owned by cfg->serve_uid; a stale socket there is replaced, any other file is refused)
 * and serve up to HELPER_MAX_CLIENTS clients at a time until SIGTERM, SIGINT or SIGHUP.
 * The socket file is removed on return. 0 or -errno. */
#define HELPER_MAX_CLIENTS 32
int helper_serve_socket(const char *path, const struct helper_cfg *cfg)
	__attribute__((warn_unused_result));

#endif
