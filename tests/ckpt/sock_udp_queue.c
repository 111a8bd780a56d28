// stasis-test: timeout=30
/* UDP sockets with datagrams queued from two senders, IPv4 (127.0.0.1), IPv6 (::1) and
 * IPv4 senders to a dual-stack IPv6 receiver bound to :: (v4-mapped addresses): a
 * receiver bound to an ephemeral port and two senders bound to their own, each sender
 * sends interleaved datagrams of different sizes (an empty one among them). After the
 * restore every datagram comes back in order, whole, with the address and port of the
 * sender that sent it and the TTL / hop limit and TOS / traffic class it was sent with
 * (the second sender sets 17 and 0x20, the receiver asks for them; not checked in the
 * mapped case), nothing more; every
 * socket keeps its bound address and the senders still reach the receiver. */
#include "lib.h"
#include "sock_dgram_lib.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdbool.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static const size_t sizes[] = { 1, 700, 0, 1400, 17, 9000, 3 };
#define NMSG (sizeof(sizes) / sizeof(sizes[0]))
#define MAXMSG 9000

struct fam {
	int af;     /* of the senders */
	int rx_af;  /* of the receiver: AF_INET6 bound to :: for IPv4 senders (mapped) */
	int rx, tx[2];
	struct sockaddr_storage rx_addr, tx_addr[2];
	struct sockaddr_storage to; /* where the senders send */
};

/* The source address the receiver sees for sender @s. */
static void seen_from(const struct fam *f, int s, struct sockaddr_storage *out)
{
	*out = f->tx_addr[s];
	if (f->rx_af == f->af)
		return;
	const struct sockaddr_in *a = (const struct sockaddr_in *)&f->tx_addr[s];
	struct sockaddr_in6 m = { .sin6_family = AF_INET6, .sin6_port = a->sin_port };
	m.sin6_addr.s6_addr[10] = m.sin6_addr.s6_addr[11] = 0xff;
	memcpy(&m.sin6_addr.s6_addr[12], &a->sin_addr, 4);
	memset(out, 0, sizeof(*out));
	memcpy(out, &m, sizeof(m));
}

static unsigned char msg_byte(int af, int s, size_t i, size_t k)
{
	return (unsigned char)(k * 131 + i * 7 + (size_t)s * 61 + (size_t)af);
}

static socklen_t loopback(int af, struct sockaddr_storage *ss)
{
	memset(ss, 0, sizeof(*ss));
	if (af == AF_INET) {
		struct sockaddr_in *a = (struct sockaddr_in *)ss;
		a->sin_family = AF_INET;
		a->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		return sizeof(*a);
	}
	struct sockaddr_in6 *a = (struct sockaddr_in6 *)ss;
	a->sin6_family = AF_INET6;
	a->sin6_addr = in6addr_loopback;
	return sizeof(*a);
}

static int bound_socket(int af, bool any, struct sockaddr_storage *out)
{
	struct sockaddr_storage ss;
	socklen_t l = loopback(af, &ss);
	if (any)
		((struct sockaddr_in6 *)&ss)->sin6_addr = in6addr_any;
	int fd = socket(af, SOCK_DGRAM, 0);
	if (fd < 0 || bind(fd, (struct sockaddr *)&ss, l))
		test_fail("af %d: socket/bind: %s", af, strerror(errno));
	l = sizeof(*out);
	if (getsockname(fd, (struct sockaddr *)out, &l))
		test_fail("getsockname: %s", strerror(errno));
	return fd;
}

static socklen_t alen(int af)
{
	return af == AF_INET ? sizeof(struct sockaddr_in) : sizeof(struct sockaddr_in6);
}

static void setup(struct fam *f)
{
	static unsigned char buf[MAXMSG];
	bool mapped = f->rx_af != f->af;
	int one = 1, ttl = 17, tos = 0x20;
	f->rx = bound_socket(f->rx_af, mapped, &f->rx_addr);
	for (int s = 0; s < 2; s++)
		f->tx[s] = bound_socket(f->af, false, &f->tx_addr[s]);
	/* the receiver asks for the TTL / hop limit and TOS / traffic class of what it gets
	 * (not in the mapped case: IPv4 ones set on an IPv6 socket are not carried yet) */
	bool v4 = f->af == AF_INET;
	if ((!mapped && (setsockopt(f->rx, v4 ? SOL_IP : SOL_IPV6,
				    v4 ? IP_RECVTTL : IPV6_RECVHOPLIMIT, &one, sizeof(one)) ||
			 setsockopt(f->rx, v4 ? SOL_IP : SOL_IPV6, v4 ? IP_RECVTOS : IPV6_RECVTCLASS,
				    &one, sizeof(one)))) ||
	    setsockopt(f->tx[1], v4 ? SOL_IP : SOL_IPV6, v4 ? IP_TTL : IPV6_UNICAST_HOPS, &ttl,
		       sizeof(ttl)) ||
	    setsockopt(f->tx[1], v4 ? SOL_IP : SOL_IPV6, v4 ? IP_TOS : IPV6_TCLASS, &tos,
		       sizeof(tos)))
		test_fail("af %d: TTL/TOS options: %s", f->af, strerror(errno));
	if (mapped) { /* the senders send to 127.0.0.1 at the receiver's port */
		uint16_t port = ((struct sockaddr_in6 *)&f->rx_addr)->sin6_port;
		struct sockaddr_storage rx;
		loopback(AF_INET, &rx);
		((struct sockaddr_in *)&rx)->sin_port = port;
		f->to = rx;
	} else {
		f->to = f->rx_addr;
	}
	for (size_t i = 0; i < NMSG; i++)
		for (int s = 0; s < 2; s++) {
			size_t sz = sizes[s ? NMSG - 1 - i : i];
			for (size_t k = 0; k < sz; k++)
				buf[k] = msg_byte(f->af, s, i, k);
			if (sendto(f->tx[s], buf, sz, 0, (struct sockaddr *)&f->to,
				   alen(f->af)) != (ssize_t)sz)
				test_fail("af %d sender %d: sendto: %s", f->af, s, strerror(errno));
		}
}

static void check_bound(int fd, const struct sockaddr_storage *want, int af, const char *who)
{
	struct sockaddr_storage ss;
	socklen_t l = sizeof(ss);
	memset(&ss, 0, sizeof(ss));
	TEST_CHECK(getsockname(fd, (struct sockaddr *)&ss, &l) == 0 &&
		   !memcmp(&ss, want, alen(af)), "af %d: %s lost its bound address", af, who);
}

static void check(struct fam *f)
{
	static unsigned char buf[MAXMSG + 64];
	check_bound(f->rx, &f->rx_addr, f->rx_af, "the receiver");
	for (int s = 0; s < 2; s++)
		check_bound(f->tx[s], &f->tx_addr[s], f->af, "a sender");
	for (size_t i = 0; i < NMSG; i++)
		for (int s = 0; s < 2; s++) {
			size_t sz = sizes[s ? NMSG - 1 - i : i];
			struct sockaddr_storage from;
			_Alignas(struct cmsghdr) char cbuf[256];
			struct iovec iov = { .iov_base = buf, .iov_len = sizeof(buf) };
			struct msghdr mh = { .msg_name = &from, .msg_namelen = sizeof(from),
					     .msg_iov = &iov, .msg_iovlen = 1,
					     .msg_control = cbuf, .msg_controllen = sizeof(cbuf) };
			memset(&from, 0, sizeof(from));
			ssize_t n = recvmsg(f->rx, &mh, MSG_DONTWAIT | MSG_TRUNC);
			int ttl = -1, tos = -1;
			for (struct cmsghdr *cm = CMSG_FIRSTHDR(&mh); cm; cm = CMSG_NXTHDR(&mh, cm)) {
				int v = cm->cmsg_len == CMSG_LEN(1) ? *(unsigned char *)CMSG_DATA(cm)
								    : *(int *)(void *)CMSG_DATA(cm);
				if (cm->cmsg_type == (cm->cmsg_level == SOL_IP ? IP_TTL : IPV6_HOPLIMIT))
					ttl = v;
				else if (cm->cmsg_type == (cm->cmsg_level == SOL_IP ? IP_TOS : IPV6_TCLASS))
					tos = v;
			}
			TEST_CHECK(n == (ssize_t)sz, "af %d: datagram %zu of sender %d has %zd "
				   "bytes, expected %zu (%s)", f->af, i, s, n, sz,
				   n < 0 ? strerror(errno) : "");
			TEST_CHECK(f->rx_af != f->af ||
				   (s ? ttl == 17 && tos == 0x20 : ttl != 17 && ttl > 0 && tos == 0),
				   "af %d: datagram %zu of sender %d arrived with TTL %d TOS %#x "
				   "(control %zu bytes, flags %#x)", f->af, i, s, ttl, tos,
				   (size_t)mh.msg_controllen, mh.msg_flags);
			struct sockaddr_storage want;
			seen_from(f, s, &want);
			TEST_CHECK(!memcmp(&from, &want, alen(f->rx_af)),
				   "af %d: datagram %zu of sender %d: wrong source address", f->af,
				   i, s);
			for (size_t k = 0; k < sz; k++)
				TEST_CHECK(buf[k] == msg_byte(f->af, s, i, k),
					   "af %d: datagram %zu of sender %d differs at byte %zu",
					   f->af, i, s, k);
		}
	ssize_t n = recv(f->rx, buf, sizeof(buf), MSG_DONTWAIT);
	TEST_CHECK(n < 0 && errno == EAGAIN, "af %d: more datagrams than sent (%zd)", f->af, n);
	/* still usable */
	for (int s = 0; s < 2; s++)
		TEST_CHECK(sendto(f->tx[s], "x", 1, 0, (struct sockaddr *)&f->to,
				  alen(f->af)) == 1, "af %d: send after restore: %s", f->af,
			   strerror(errno));
	for (int s = 0; s < 2; s++) {
		struct pollfd p = { .fd = f->rx, .events = POLLIN };
		n = poll(&p, 1, 2000) == 1 ? recv(f->rx, buf, sizeof(buf), MSG_DONTWAIT) : -1;
		TEST_CHECK(n == 1 && buf[0] == 'x', "af %d: datagram after restore: %zd", f->af,
			   n);
	}
}

int main(int argc, char **argv)
{
	struct fam f[3] = { { .af = AF_INET, .rx_af = AF_INET },
			    { .af = AF_INET6, .rx_af = AF_INET6 },
			    { .af = AF_INET, .rx_af = AF_INET6 } };

	test_init(argc, argv);
	if (dg_lo_up())
		test_fail("lo is down and cannot be brought up");
	for (int i = 0; i < 3; i++)
		setup(&f[i]);
	test_ready();
	test_wait();

	if (test_sabotage()) {
		char b[8];
		(void)!recv(f[1].rx, b, sizeof(b), MSG_DONTWAIT);
	}
	for (int i = 0; i < 3; i++)
		check(&f[i]);
	test_pass();
}
