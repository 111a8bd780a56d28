/* Socket options programs set, for every socket kind (src/net/sockopt.c).
 *
 * One table of the options stasis carries: SOL_SOCKET ones for every socket, SOL_IP for
 * AF_INET, SOL_IPV6 for AF_INET6, SOL_TCP / SOL_UDP by protocol, plus the classic BPF
 * filter. Dump reads every option of the table that applies to the socket (getsockopt on
 * the socket itself, a pidfd_getfd duplicate) and refuses the ones it knows it cannot
 * carry when they are set (an eBPF filter, TCP_ULP, IP options, IPv6 sticky options, a
 * PHC-bound timestamping). Restore sets, on the new socket, each recorded option whose
 * value differs from the new socket's, in two phases: EARLY before bind/connect/listen,
 * LATE once the socket is in its final state.
 *
 * Not carried here (they belong to a kind): SO_PEEK_OFF, TCP_REPAIR and everything of the
 * TCP repair state, TCP_MAXSEG and TCP_WINDOW_CLAMP (the repair state restores them),
 * multicast memberships. Not detectable at all: SO_ATTACH_REUSEPORT_[CE]BPF, TCP_MD5SIG. */
#ifndef STASIS_NET_SOCKOPT_H
#define STASIS_NET_SOCKOPT_H

#include <sys/types.h>

#include "image/stasis.pb-c.h"

enum sockopt_phase {
	SOCKOPT_EARLY, /* before bind/connect/listen: SO_REUSEADDR/PORT, SO_BINDTODEVICE,
			* SO_MARK, IPV6_V6ONLY, IP(V6)_FREEBIND/TRANSPARENT, ... */
	SOCKOPT_LATE,  /* the socket in its final state: buffer sizes (and their locks), the
			* rest, the filter and its lock last */
};

/* Every carried option of socket @sk (fd @fd of pid @pid, for messages) into a new
 * SockOpts (*@out, free with sock_opts__free_unpacked(o, NULL)). A set option stasis
 * cannot carry is refused: logged once, -EOPNOTSUPP. */
int sockopt_dump(int sk, pid_t pid, int fd, SockOpts **out) __attribute__((warn_unused_result));
/* Image check (untrusted): every option is one of the table, applies to a socket of
 * @family / @type / @protocol, its value in bounds; the filter well formed. */
int sockopt_validate(const SockOpts *o, int family, int type, int protocol, const char *what)
	__attribute__((warn_unused_result));
/* Set the options of phase @ph on the new socket @sk where they differ; @what names the
 * socket in messages. A buffer size over the limits is forced (CAP_NET_ADMIN, else the
 * stasis helper); an unlocked buffer (autotuned) is best effort. */
int sockopt_restore(int sk, const SockOpts *o, enum sockopt_phase ph, const char *what)
	__attribute__((warn_unused_result));
/* Socket @sk's buffer @opt (SO_SNDBUF or SO_RCVBUF) set to @half (what setsockopt takes)
 * past the limits: SO_*BUFFORCE, else the stasis helper, else the forcer a restore child
 * registered (stasis, asked over its request channel). 0 or -errno (not logged). */
int sockopt_force_buf(int sk, int opt, int half);
/* The recorded integer value of option @level/@name in *@v: 0, or -ENOENT. */
int sockopt_find(const SockOpts *o, int level, int name, int64_t *v);
/* A restore child: how it asks stasis to force a buffer (NULL: none). */
void sockopt_set_forcer(int (*fn)(int sk, int opt, int half));

/* Name of option @level/@name for messages ("SO_KEEPALIVE"; "?" if not in the table). */
const char *sockopt_name(unsigned int level, unsigned int name);

#endif
