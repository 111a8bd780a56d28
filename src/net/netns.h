/* Network namespaces over raw NETLINK_ROUTE sockets (src/net/netns.c). */
#ifndef STASIS_NET_H
#define STASIS_NET_H

#include "cr/ctx.h"

/* After ns_dump_tree's checks: a NetNs for every task whose net namespace differs from
 * its parent's (@mine: stasis's own, for the root), read from inside the namespace;
 * veth pairs between two namespaces of the tree are given to one of them. */
int net_dump_tree(struct dump_ctx **procs, size_t n, const pid_t *ppid, uint64_t mine) __must_check;
/* An --external veth[...] value: at dump "veth[NAME]" (@out, @bridge NULL), at restore
 * "veth[NAME]:HOSTNAME[@BRIDGE]"; interface names checked (1..15 bytes, no '/', ':',
 * '@', blanks). 0 with malloc'd parts, or -EINVAL/-ENOMEM (logged). */
int net_parse_external(const char *arg, bool at_dump, char **name, char **out, char **bridge)
	__must_check;
/* In the restore child, right after clone3(CLONE_NEWNET). */
int net_restore(struct rst_ctx *c) __must_check;
/* In stasis, every task of the tree created: wait (bounded) until the links of the net
 * namespace @c created that had a kernel-made IPv6 link-local address have it again
 * (made once a link is up with a carrier: a veth when its peer is up, maybe just now). */
int net_wait_ll(const struct rst_ctx *c) __must_check;
/* src/net/sysctl.c. Dump, inside the namespace: the setting at @path (absolute) recorded
 * as @name on (*@arr, *@n), unless it does not exist, is no readable and writable file,
 * is recorded already, or is a secret never set; a message in @err on failure. */
int net_setting_read(const char *path, const char *name, NetSysctl ***arr, size_t *n,
		     char *err, size_t errlen) __must_check;
/* Dump, inside the namespace: every readable and writable setting
 * under /proc/sys/net not in @arr already, but those of a link's own directory, appended
 * (its name relative to /proc/sys/net); a message in @err on failure. */
int net_sysctls_walk(NetSysctl ***arr, size_t *n, char *err, size_t errlen) __must_check;
/* Restore: is @name (untrusted) a setting's path the walk can record? */
bool net_sysctl_name_ok(const char *name);
/* Dump, inside the namespace: every readable and writable setting of link @link
 * (ipv4/conf/LINK/KEY as "ipv4/KEY", ipv4/neigh/LINK/KEY as "ipv4/neigh/KEY", IPv6 the
 * same) not in @arr already, appended. */
int net_link_confs_walk(const char *link, NetSysctl ***arr, size_t *n, char *err,
			size_t errlen) __must_check;
/* Restore: is @key (untrusted) a link's setting the walk can record? */
bool net_link_conf_name_ok(const char *key);
/* restore --tcp-close, on a validated image: its TCP connections are restored closed (as
 * if reset by the peer, what was queued for reading kept), src/net/sk_tcp.c. */
void tcp_close_connections(Files *f);

#endif
