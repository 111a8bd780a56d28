/* Unix sockets: what other modules call (the kind itself is a row of the files module,
 * fd_unix_ops, src/net/sk_unix.c). */
#ifndef STASIS_NET_SK_UNIX_H
#define STASIS_NET_SK_UNIX_H

#include "core/util.h"

/* In the creator of a network namespace, while stasis makes the unix sockets its tasks
 * share (src/net/sk_unix_cred.c): the creator makes the calls whose peer credentials
 * carry its pid (with the ids asked) for stasis. The socket for that: the creator's end
 * returned (or -errno, logged), stasis's in *@sk, to send it. */
int sk_cred_agent_start(int *sk) __must_check;
/* One request read on @sk and answered: 0, -EPIPE when stasis closed its end, or
 * -errno. (No thread: a thread would take a pid of the namespace a process of the tree
 * may need meanwhile.) */
int sk_cred_agent_serve(int sk) __must_check;

#endif
