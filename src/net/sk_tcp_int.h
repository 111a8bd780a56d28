/* TCP sockets: what sk_tcp.c (the fd_ops row, restore) and sk_tcp_repair.c (connections
 * read in repair mode at dump) share. Included by those two only. */
#ifndef STASIS_SK_TCP_INT_H
#define STASIS_SK_TCP_INT_H

#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdbool.h>
#include <string.h>
#include <sys/socket.h>

#include "cr/ctx.h"
#include "image/img.h"
#include "net/sk_inet.h"

#ifndef TCP_REPAIR_OFF_NO_WP
#define TCP_REPAIR_OFF_NO_WP -1
#endif
#ifndef SIOCGSKNS
#define SIOCGSKNS 0x894C
#endif
#ifndef SIOCOUTQNSD
#define SIOCOUTQNSD 0x894B
#endif

enum {
	ST_ESTABLISHED = 1, ST_SYN_SENT, ST_SYN_RECV, ST_FIN_WAIT1, ST_FIN_WAIT2, ST_TIME_WAIT,
	ST_CLOSE, ST_CLOSE_WAIT, ST_LAST_ACK, ST_LISTEN, ST_CLOSING, ST_NEW_SYN_RECV,
};
#define SK_RCV_SHUTDOWN 1
#define SK_SEND_SHUTDOWN 2
/* Images are untrusted: bounds. */
#define TCP_QUEUE_MAX (64u << 20)
#define TCP_BACKLOG_MAX 65535u
#define TCP_PENDING_MAX 4096u
#define TCP_CONNECT_WAIT_MS 5000

/* "ESTABLISHED", ... ("?" for an unknown state). */
const char *tcp_state_name(unsigned int s);

/* States whose connection is rebuilt in repair mode. */
static inline bool is_conn_state(unsigned int s)
{
	return s == ST_ESTABLISHED || s == ST_FIN_WAIT1 || s == ST_FIN_WAIT2 ||
	       s == ST_CLOSE_WAIT || s == ST_LAST_ACK || s == ST_CLOSING;
}

static inline bool fin_sent(unsigned int s)
{
	return s == ST_FIN_WAIT1 || s == ST_FIN_WAIT2 || s == ST_CLOSING || s == ST_LAST_ACK;
}

static inline bool fin_rcvd(unsigned int s)
{
	return s == ST_CLOSE_WAIT || s == ST_LAST_ACK || s == ST_CLOSING;
}

static inline int tcp_opt(int sk, int opt, int val)
{
	return setsockopt(sk, IPPROTO_TCP, opt, &val, sizeof(val)) ? -errno : 0;
}

static inline int tcp_getopt(int sk, int opt, void *val, socklen_t len)
{
	socklen_t l = len;
	return getsockopt(sk, IPPROTO_TCP, opt, val, &l) ? -errno : 0;
}

static inline unsigned int tcp_state_of(int sk)
{
	struct tcp_info ti;
	memset(&ti, 0, sizeof(ti));
	return tcp_getopt(sk, TCP_INFO, &ti, sizeof(ti)) ? 0 : ti.tcpi_state;
}

static inline bool addr_eq(const InetAddr *a, const InetAddr *b)
{
	return a && b && a->port == b->port && a->addr.len == b->addr.len &&
	       !memcmp(a->addr.data, b->addr.data, a->addr.len);
}

/* A connection (fd @fd of the task, @dup its duplicate: taken) read in repair mode: its
 * queues, sequence numbers and parameters into @t->repair, the socket held in repair mode
 * until the dump ends, and remembered in the tree's sk_dump for tcp_settle(). */
int tcp_dump_repair(const struct dump_ctx *c, int fd, int dup, TcpSk *t) __must_check;
/* Urgent data (MSG_OOB) the reader has not passed: repair mode cannot set the mark
 * again; one line, -EOPNOTSUPP. */
int tcp_refuse_urgent(int fd, pid_t pid);
/* Once the whole tree is read: every connection read again until none moved. */
int tcp_settle(struct sk_dump *s) __must_check;
/* Both ends of each connection in the tree agree (at the moment tcp_settle() found). */
int tcp_check_pairs(struct sk_dump *s) __must_check;

#endif
