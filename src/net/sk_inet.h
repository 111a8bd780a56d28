/* What every AF_INET/AF_INET6 socket kind needs (src/net/sk_inet.c): the tree-wide dump
 * state (sock_diag tables, one dump per network namespace, family and protocol; sockets
 * held in a state until the tree is gone), addresses in the image, and bind. Included
 * by the inet kind files of src/net/ only. */
#ifndef STASIS_SK_INET_H
#define STASIS_SK_INET_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

#include "cr/ctx.h"
#include "image/img.h"

/* One socket of a sock_diag dump (inet_diag). Ports in host order. */
struct inet_diag_ent {
	uint64_t ino;            /* 0: no file (a connection in an accept queue) */
	uint8_t family, state, shutdown;
	int8_t v6only;           /* -1: not reported */
	uint32_t rqueue, wqueue; /* listening: accept queue length, backlog */
	uint8_t src[16], dst[16];
	uint16_t sport, dport;
};

struct inet_diag_tab {
	uint64_t netns;          /* inode of the network namespace */
	int family, proto;
	struct inet_diag_ent *e; /* sorted by ino */
	size_t n;
};

/* Tree-wide state of the socket kinds during one dump (struct dump_ctx.sk). */
struct sk_dump {
	struct inet_diag_tab *tabs;
	size_t n_tabs;
	struct sk_hold *holds;
	size_t n_holds;
	struct tcp_read *tcp; /* connections read in repair mode (sk_tcp.c) */
	size_t n_tcp;
};

struct sk_dump *sk_dump_new(void);
/* Every held socket: with @tree_killed the dump succeeded and the tree is gone (the held
 * duplicates are closed as they are); else each one's undo runs first. Frees @s. */
void sk_dump_release(struct sk_dump *s, bool tree_killed);
/* Keep @fd (taken) until the dump ends; @undo(fd) puts it back if the tree lives on. */
int sk_dump_hold(struct sk_dump *s, int fd, void (*undo)(int fd)) __must_check;

/* The sock_diag table of @proto sockets of @family in the network namespace of socket
 * @sk (a duplicate of fd @fd of @pid), dumped once per dump. */
int inet_diag_table(struct sk_dump *s, pid_t pid, int fd, int sk, int family, int proto,
		    const struct inet_diag_tab **out) __must_check;
/* ... the table of stasis's own network namespace (*@netns: its inode): a socket of it
 * held by a task of another, where SIOCGSKNS is refused (a rootless container). */
int inet_diag_table_mine(struct sk_dump *s, int family, int proto, uint64_t *netns,
			 const struct inet_diag_tab **out) __must_check;
const struct inet_diag_ent *inet_diag_find(const struct inet_diag_tab *t, uint64_t ino);

/* Address bytes of @family (4 or 16). */
static inline size_t inet_addr_len(int family)
{
	return family == AF_INET ? 4 : 16;
}
/* A new InetAddr of @family's address @a and @port (NULL: no memory). */
InetAddr *inet_addr_new(int family, const uint8_t *a, uint16_t port);
/* An image's address is of @family (@what names it for the message). */
int inet_addr_check(const InetAddr *a, int family, const char *what) __must_check;
/* @a as a sockaddr of @family; its length. */
socklen_t inet_sockaddr(int family, const InetAddr *a, struct sockaddr_storage *ss);
/* "1.2.3.4:80", "[::1]:80" into @buf. */
const char *inet_addr_str(int family, const InetAddr *a, char *buf, size_t len);
/* Is the address of @a all zeros (INADDR_ANY, in6addr_any)? */
bool inet_addr_is_any(const InetAddr *a);
/* The checksum of a TCP, UDP or UDP-Lite header and payload @l4 (@len bytes, its checksum
 * field zero) from @sa to @da (4 bytes each when @v4, else 16): the pseudo-header (with
 * @len), then the first @cover bytes of @l4 (all for TCP and UDP). Host order; a UDP
 * checksum of 0 is sent as 0xffff by the caller. */
uint16_t inet_l4_csum(bool v4, const uint8_t *sa, const uint8_t *da, uint8_t proto,
		      const void *l4, size_t len, size_t cover);
/* Send @l4 (@len bytes, at most 65535 - 40) as the payload of protocol @proto from @sa to
 * @da in an IP packet built here (TTL / hop limit @ttl, TOS / traffic class @tos; IPv4
 * with DF) through @raw, a raw IPPROTO_RAW socket of the family: 0 or -errno. */
int inet_raw_send(int raw, bool v4, const uint8_t *sa, const uint8_t *da, uint8_t proto,
		  uint8_t ttl, uint8_t tos, const void *l4, size_t len);
/* Is @ss (of @a's family) @a's address, and with @port its port? */
bool inet_addr_eq_sockaddr(const InetAddr *a, const struct sockaddr_storage *ss, bool port);
/* Is @a16 (16 bytes) an IPv4-mapped IPv6 address (::ffff:a.b.c.d)? */
bool inet_is_v4_mapped(const uint8_t *a16);
/* A pair of addresses of @len bytes as they go on the wire: IPv4 when @len is 4, or when
 * both are v4-mapped (*@a and *@b then point at their IPv4 part). */
bool inet_wire_v4(size_t len, const uint8_t **a, const uint8_t **b);

#endif
