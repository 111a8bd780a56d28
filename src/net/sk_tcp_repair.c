/* TCP connections read at dump in TCP repair mode (sk_tcp.c's dump hook calls
 * tcp_dump_repair, its merge hook tcp_settle and tcp_check_pairs): both queues peeked
 * (MSG_PEEK with TCP_REPAIR_QUEUE), TCP_QUEUE_SEQ of each, the unsent part of the send
 * queue (SIOCOUTQNSD), MSS, TCP_REPAIR_WINDOW, TCP_TIMESTAMP and the options negotiated
 * (TCP_INFO).
 *
 * The kernel moves a frozen tree's connections on (data in flight lands, its ACKs free
 * the sender's queue, timers retransmit and probe): each connection is read between two
 * equal marks (state, queue lengths, sequence numbers), and once all are read, read
 * again until a pass finds none moved, so that both ends of a connection in the tree
 * agree: a receiver's image never acknowledges data its sender's image no longer holds. */
#include <errno.h>
#include <linux/sockios.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "core/log.h"
#include "core/util.h"
#include "net/sk_tcp_int.h"

static const char *const state_names[] = {
	"?", "ESTABLISHED", "SYN_SENT", "SYN_RECV", "FIN_WAIT1", "FIN_WAIT2", "TIME_WAIT",
	"CLOSE", "CLOSE_WAIT", "LAST_ACK", "LISTEN", "CLOSING", "NEW_SYN_RECV",
};

const char *tcp_state_name(unsigned int s)
{
	return s < ARRAY_SIZE(state_names) ? state_names[s] : "?";
}

static void repair_undo(int fd)
{
	if (tcp_opt(fd, TCP_REPAIR, TCP_REPAIR_OFF_NO_WP) && tcp_opt(fd, TCP_REPAIR, 0))
		pr_warn("dump: cannot turn TCP repair mode off again: %s", strerror(errno));
}

/* Peek @len bytes of the repair queue @q of @dup into *@out. */
static int peek_queue(pid_t pid, int fd, int dup, int q, uint32_t len, ProtobufCBinaryData *out,
		      protobuf_c_boolean *has)
{
	int ret = tcp_opt(dup, TCP_REPAIR_QUEUE, q);
	if (ret)
		return pr_errno(ret, "fd %d of pid %d: TCP_REPAIR_QUEUE", fd, pid);
	if (!len)
		return 0;
	if (len > TCP_QUEUE_MAX) {
		pr_err("fd %d of pid %d: %u bytes in a TCP %s queue, more than %u: not supported yet",
		       fd, pid, len, q == TCP_SEND_QUEUE ? "send" : "receive", TCP_QUEUE_MAX);
		return -EOPNOTSUPP;
	}
	uint8_t *buf = malloc(len);
	if (!buf)
		return pr_errno(-ENOMEM, "fd %d of pid %d: TCP queue", fd, pid);
	ssize_t r = recv(dup, buf, len, MSG_PEEK | MSG_DONTWAIT);
	if (r >= 0 && r < (ssize_t)len) {
		/* the queue changed since its length was read (the caller reads both again), or
		 * a read of the receive queue stopped at an urgent mark (-EMSGSIZE: the caller
		 * tells them apart) */
		free(buf);
		pr_debug("fd %d of pid %d: peek %u bytes of the TCP %s queue: got %zd", fd, pid,
			 len, q == TCP_SEND_QUEUE ? "send" : "receive", r);
		return q == TCP_RECV_QUEUE ? -EMSGSIZE : -EAGAIN;
	}
	if (r != (ssize_t)len) {
		int e = r < 0 ? -errno : -EIO;
		free(buf);
		return pr_errno(e, "fd %d of pid %d: peek %u bytes of the TCP %s queue (got %zd)",
				fd, pid, len, q == TCP_SEND_QUEUE ? "send" : "receive", r);
	}
	out->data = buf;
	out->len = len;
	*has = true;
	return 0;
}

/* What the kernel changes in a connection on its own while the tree is frozen (it
 * receives, acknowledges, retransmits and probes from softirq and timers): the state, the
 * three queue lengths and both sequence numbers. The task's side of the queues
 * (write_seq, copied_seq) cannot move, so a mark read twice tells whether anything
 * happened in between. */
struct tcp_mark {
	unsigned int state;
	int outq, notsent, inq;
	uint32_t snd_seq, rcv_seq; /* write_seq, rcv_nxt */
};

/* A connection read in repair mode (struct sk_dump.tcp): its image, its held duplicate
 * and the mark its queues were read under. */
struct tcp_read {
	TcpSk *t;
	pid_t pid;
	int fd, dup;
	struct tcp_mark m;
};

/* How long the connections of a frozen tree may keep moving before the dump gives up: the
 * data in flight when it froze lands within a round trip, then only timers act. */
#define TCP_SETTLE_MS 10000

static int read_mark(int dup, struct tcp_mark *m)
{
	memset(m, 0, sizeof(*m));
	m->state = tcp_state_of(dup);
	if (ioctl(dup, SIOCOUTQ, &m->outq) < 0 || ioctl(dup, SIOCOUTQNSD, &m->notsent) < 0 ||
	    ioctl(dup, SIOCINQ, &m->inq) < 0)
		return -errno;
	int ret = tcp_opt(dup, TCP_REPAIR_QUEUE, TCP_SEND_QUEUE);
	if (!ret)
		ret = tcp_getopt(dup, TCP_QUEUE_SEQ, &m->snd_seq, sizeof(m->snd_seq));
	if (!ret)
		ret = tcp_opt(dup, TCP_REPAIR_QUEUE, TCP_RECV_QUEUE);
	if (!ret)
		ret = tcp_getopt(dup, TCP_QUEUE_SEQ, &m->rcv_seq, sizeof(m->rcv_seq));
	/* no queue selected: a send the kernel makes meanwhile goes out, not marked as sent */
	if (!ret)
		ret = tcp_opt(dup, TCP_REPAIR_QUEUE, TCP_NO_QUEUE);
	return ret;
}

static bool mark_eq(const struct tcp_mark *a, const struct tcp_mark *b)
{
	return a->state == b->state && a->outq == b->outq && a->notsent == b->notsent &&
	       a->inq == b->inq && a->snd_seq == b->snd_seq && a->rcv_seq == b->rcv_seq;
}

/* Sleep before attempt @k of reading what keeps moving: 1, 2, 4 .. 64 ms. */
static unsigned int settle_wait(unsigned int k)
{
	unsigned int ms = 1u << MIN(k, 6u);
	usleep(ms * 1000);
	return ms;
}

static void repair_clear(TcpRepair *r)
{
	free(r->sndq.data);
	free(r->rcvq.data);
	r->sndq.data = r->rcvq.data = NULL;
	r->sndq.len = r->rcvq.len = 0;
	r->has_sndq = r->has_rcvq = r->has_unsent = false;
	r->unsent = 0;
}

static int dump_queues_once(pid_t pid, int fd, int dup, TcpSk *t, struct tcp_mark *out);

/* The queues of a connection in repair mode, read between two equal marks: read again
 * (lengths, contents and sequence numbers) while the kernel moved it in between. */
static int dump_queues(pid_t pid, int fd, int dup, TcpSk *t, struct tcp_mark *out)
{
	unsigned int waited = 0;
	for (unsigned int k = 0;; k++) {
		int ret = dump_queues_once(pid, fd, dup, t, out);
		if (ret != -EAGAIN)
			return ret;
		repair_clear(t->repair);
		if (waited >= TCP_SETTLE_MS) {
			pr_err("fd %d of pid %d: a TCP connection kept changing while it was read "
			       "(%u ms): traffic the network lock does not stop?", fd, pid, waited);
			return -EIO;
		}
		waited += settle_wait(k);
	}
}

int tcp_refuse_urgent(int fd, pid_t pid)
{
	pr_err("fd %d of pid %d: a TCP connection with urgent data (MSG_OOB) in its receive "
	       "queue: not supported", fd, pid);
	return -EOPNOTSUPP;
}

/* Urgent data the reader has not passed: an urgent byte to take out of line (a peek with
 * MSG_OOB gives it, or EAGAIN while it has not come yet), or the mark right at the read
 * position (SIOCATMARK). A mark further on stops a peek of the queue short (below). */
static bool urgent_pending(int dup)
{
	int at = 0;
	char c;
	if (ioctl(dup, SIOCATMARK, &at) == 0 && at)
		return true;
	ssize_t r = recv(dup, &c, 1, MSG_OOB | MSG_PEEK | MSG_DONTWAIT);
	return r == 1 || (r < 0 && errno == EAGAIN);
}

static int dump_queues_once(pid_t pid, int fd, int dup, TcpSk *t, struct tcp_mark *out)
{
	TcpRepair *r = t->repair;
	struct tcp_mark m0, m1;
	if (urgent_pending(dup)) {
		return tcp_refuse_urgent(fd, pid);
	}
	int ret = read_mark(dup, &m0);
	if (ret)
		return pr_errno(ret, "fd %d of pid %d: TCP queue lengths", fd, pid);
	if (m0.state != t->state) {
		/* sock_diag listed it a moment ago: a FIN (or the ACK of ours) came in since */
		if (!is_conn_state(m0.state) || t->state == ST_CLOSE) {
			pr_err("fd %d of pid %d: a TCP connection went from %s to %s while the tree "
			       "was read", fd, pid, tcp_state_name(t->state), tcp_state_name(m0.state));
			return -EIO;
		}
		pr_debug("fd %d of pid %d: TCP state %s, sock_diag said %s", fd, pid,
			 tcp_state_name(m0.state), tcp_state_name(t->state));
		t->state = m0.state;
	}
	unsigned int state = t->state;
	int outq = m0.outq, notsent = m0.notsent, inq = m0.inq;
	if (state == ST_CLOSE) /* a reset purged the send queue, not the sequence numbers */
		outq = notsent = 0;
	/* the FIN takes a sequence number but no byte of the queue */
	int fin_q = fin_sent(state) && state != ST_FIN_WAIT2;
	int fin_unsent = fin_sent(state) && notsent > 0;
	if (outq < fin_q || notsent - fin_unsent > outq - fin_q || inq < 0) {
		pr_err("fd %d of pid %d: TCP queues of %d / %d / %d bytes in state %s", fd, pid,
		       outq, notsent, inq, tcp_state_name(state));
		return -EIO;
	}
	ret = peek_queue(pid, fd, dup, TCP_SEND_QUEUE, (uint32_t)(outq - fin_q), &r->sndq,
			 &r->has_sndq);
	r->snd_seq = m0.snd_seq;
	if (!ret && notsent - fin_unsent > 0) {
		r->has_unsent = true;
		r->unsent = (uint32_t)(notsent - fin_unsent);
	}
	if (!ret)
		ret = peek_queue(pid, fd, dup, TCP_RECV_QUEUE, (uint32_t)inq, &r->rcvq, &r->has_rcvq);
	bool short_rcv = ret == -EMSGSIZE;
	if (short_rcv)
		ret = 0;
	r->rcv_seq = m0.rcv_seq;
	if (!ret && (ret = read_mark(dup, &m1)))
		return pr_errno(ret, "fd %d of pid %d: TCP queue lengths", fd, pid);
	if (!ret && !mark_eq(&m0, &m1)) {
		pr_debug("fd %d of pid %d: the TCP connection moved while it was read", fd, pid);
		return -EAGAIN;
	}
	if (!ret && short_rcv) {
		/* nothing moved, yet a read stops short: at the urgent mark (MSG_OOB data, or
		 * its mark still ahead), which repair mode cannot set again */
		return tcp_refuse_urgent(fd, pid);
	}
	if (ret > 0 || ret == -1)
		ret = -EIO;
	if (ret == -EAGAIN)
		return ret;
	*out = m1;
	return ret < 0 ? pr_errno(ret, "fd %d of pid %d: TCP queues", fd, pid) : 0;
}

/* Options, window, timestamp of a connection in repair mode. */
static int dump_params(pid_t pid, int fd, int dup, TcpRepair *r)
{
	struct tcp_info ti;
	struct tcp_repair_window w;
	int mss = 0, ret;

	memset(&ti, 0, sizeof(ti));
	if ((ret = tcp_getopt(dup, TCP_MAXSEG, &mss, sizeof(mss))) ||
	    (ret = tcp_getopt(dup, TCP_INFO, &ti, sizeof(ti))))
		return pr_errno(ret, "fd %d of pid %d: TCP_MAXSEG / TCP_INFO", fd, pid);
	r->mss = (uint32_t)mss;
	if (ti.tcpi_options & TCPI_OPT_WSCALE) {
		r->has_snd_wscale = r->has_rcv_wscale = true;
		r->snd_wscale = ti.tcpi_snd_wscale;
		r->rcv_wscale = ti.tcpi_rcv_wscale;
	}
	r->has_sack = r->has_tstamp = true;
	r->sack = (ti.tcpi_options & TCPI_OPT_SACK) != 0;
	r->tstamp = (ti.tcpi_options & TCPI_OPT_TIMESTAMPS) != 0;
	if (r->tstamp) {
		if ((ret = tcp_getopt(dup, TCP_TIMESTAMP, &r->ts_val, sizeof(r->ts_val))))
			return pr_errno(ret, "fd %d of pid %d: TCP_TIMESTAMP", fd, pid);
		r->has_ts_val = true;
	}
	if ((ret = tcp_getopt(dup, TCP_REPAIR_WINDOW, &w, sizeof(w))))
		return pr_errno(ret, "fd %d of pid %d: TCP_REPAIR_WINDOW", fd, pid);
	r->has_snd_wl1 = r->has_snd_wnd = r->has_max_window = r->has_rcv_wnd = r->has_rcv_wup = true;
	r->snd_wl1 = w.snd_wl1;
	r->snd_wnd = w.snd_wnd;
	r->max_window = w.max_window;
	r->rcv_wnd = w.rcv_wnd;
	r->rcv_wup = w.rcv_wup;
	int sb = 0, rb = 0;
	socklen_t l = sizeof(sb);
	if (getsockopt(dup, SOL_SOCKET, SO_SNDBUF, &sb, &l) ||
	    getsockopt(dup, SOL_SOCKET, SO_RCVBUF, &rb, &l))
		return pr_perror("fd %d of pid %d: SO_SNDBUF / SO_RCVBUF", fd, pid);
	r->has_sndbuf = r->has_rcvbuf = true;
	r->sndbuf = (uint32_t)sb;
	r->rcvbuf = (uint32_t)rb;
	return 0;
}

/* A connection: repair mode on @dup (taken: held until the dump ends). */
int tcp_dump_repair(const struct dump_ctx *c, int fd, int dup, TcpSk *t)
{
	pid_t pid = c->ospid; /* (a live thread of a zombie leader: its /proc/PID/net) */
	int ret = tcp_opt(dup, TCP_REPAIR, 1);
	if (ret) {
		close(dup);
		if (ret == -EPERM) {
			pr_err("fd %d of pid %d is a TCP connection (%s): TCP repair mode needs "
			       "CAP_NET_ADMIN over its network namespace, which this stasis lacks",
			       fd, pid, tcp_state_name(t->state));
			return -EOPNOTSUPP;
		}
		return pr_errno(ret, "fd %d of pid %d: TCP_REPAIR", fd, pid);
	}
	ret = sk_dump_hold(c->sk, dup, repair_undo);
	if (ret)
		return ret;
	TcpRepair *r = malloc(sizeof(*r));
	if (!r)
		return pr_errno(-ENOMEM, "fd %d of pid %d", fd, pid);
	tcp_repair__init(r);
	t->repair = r;
	struct tcp_mark m;
	ret = dump_queues(pid, fd, dup, t, &m);
	if (!ret)
		ret = dump_params(pid, fd, dup, r);
	if (ret)
		return ret;
	struct sk_dump *s = c->sk;
	if (s->n_tcp % 64 == 0) {
		struct tcp_read *n = realloc(s->tcp, (s->n_tcp + 64) * sizeof(*n));
		if (!n)
			return pr_errno(-ENOMEM, "dump: TCP connections");
		s->tcp = n;
	}
	s->tcp[s->n_tcp++] = (struct tcp_read){ .t = t, .pid = pid, .fd = fd, .dup = dup, .m = m };
	return 0;
}

/* The connections of the tree are read one after the other, and the kernel moves them on
 * in between (data in flight when the tree froze lands, the ACKs it draws free the
 * sender's queue, timers retransmit and probe): two ends read at different moments may
 * disagree (the receiver having acknowledged data the sender's image no longer holds:
 * a hole in the stream after the restore). So once all are read, each is read again
 * until a pass over all of them finds every one as it was read: each one's image then
 * holds at the moment that pass began, for all of them at once. */
int tcp_settle(struct sk_dump *s)
{
	unsigned int waited = 0;
	for (unsigned int k = 0;; k++) {
		size_t moved = 0;
		for (size_t i = 0; i < s->n_tcp; i++) {
			struct tcp_read *x = &s->tcp[i];
			struct tcp_mark m;
			int ret = read_mark(x->dup, &m);
			if (ret)
				return pr_errno(ret, "fd %d of pid %d: TCP queue lengths", x->fd,
						x->pid);
			if (mark_eq(&m, &x->m))
				continue;
			moved++;
			repair_clear(x->t->repair);
			if ((ret = dump_queues(x->pid, x->fd, x->dup, x->t, &x->m)) ||
			    (ret = dump_params(x->pid, x->fd, x->dup, x->t->repair)))
				return ret;
		}
		if (!moved)
			return 0;
		pr_debug("dump: %zu TCP connections moved while the tree was read: read again",
			 moved);
		if (waited >= TCP_SETTLE_MS) {
			pr_err("dump: the tree's TCP connections kept changing while they were read "
			       "(%u ms): traffic the network lock does not stop?", waited);
			return -EIO;
		}
		waited += settle_wait(k);
	}
}

static bool seq_le(uint32_t a, uint32_t b)
{
	return (int32_t)(b - a) >= 0;
}

/* Both ends of a connection in the tree, read at one moment: what the receiver got lies
 * between what the sender has had acknowledged and what it sent. */
int tcp_check_pairs(struct sk_dump *s)
{
	for (size_t i = 0; i < s->n_tcp; i++)
		for (size_t j = 0; j < s->n_tcp; j++) {
			const struct tcp_read *a = &s->tcp[i], *b = &s->tcp[j];
			if (i == j || a->t->state == ST_CLOSE || b->t->state == ST_CLOSE ||
			    !a->t->dst || !b->t->dst || a->t->family != b->t->family ||
			    !addr_eq(b->t->src, a->t->dst) || !addr_eq(b->t->dst, a->t->src))
				continue;
			uint32_t una = a->m.snd_seq - (uint32_t)a->m.outq;
			uint32_t nxt = a->m.snd_seq - (uint32_t)a->m.notsent;
			if (seq_le(una, b->m.rcv_seq) && seq_le(b->m.rcv_seq, nxt))
				continue;
			pr_err("fd %d of pid %d and fd %d of pid %d: the two ends of a TCP connection "
			       "disagree (sent %u..%u, received up to %u)", a->fd, a->pid, b->fd,
			       b->pid, una, nxt, b->m.rcv_seq);
			return -EIO;
		}
	return 0;
}
