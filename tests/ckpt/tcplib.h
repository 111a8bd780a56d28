/* Helpers of the TCP checkpoint tests (tcp_*.c): loopback connections made inside the
 * test, a byte stream whose every byte depends on its offset, state checks. */
#ifndef STASIS_TEST_TCPLIB_H
#define STASIS_TEST_TCPLIB_H

#include "lib.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <net/if.h>
#include <unistd.h>

/* Byte @off of stream @seed. */
static inline uint8_t tcp_byte(uint64_t seed, uint64_t off)
{
	uint64_t x = (off + 1) * 0x9E3779B97F4A7C15ull ^ seed;
	x ^= x >> 29;
	x *= 0xBF58476D1CE4E5B9ull;
	return (uint8_t)(x >> 32);
}

/* A stream: what was sent and what was received so far. */
struct tcp_stream {
	uint64_t seed, sent, rcvd;
};

/* Send as much of the stream as the socket takes now (non-blocking), at most @max. */
static inline size_t tcp_send_some(int fd, struct tcp_stream *s, size_t max)
{
	uint8_t buf[4096];
	size_t total = 0;
	while (total < max) {
		size_t n = sizeof(buf) < max - total ? sizeof(buf) : max - total;
		for (size_t i = 0; i < n; i++)
			buf[i] = tcp_byte(s->seed, s->sent + i);
		ssize_t r = send(fd, buf, n, MSG_DONTWAIT | MSG_NOSIGNAL);
		if (r < 0 && errno == EAGAIN)
			break;
		if (r <= 0)
			test_fail("send at %llu: %s", (unsigned long long)s->sent, strerror(errno));
		s->sent += (size_t)r;
		total += (size_t)r;
	}
	return total;
}

/* Receive what is there (non-blocking; waits up to @ms for the first byte), checking
 * every byte; returns the count, 0 at EOF (*eof set). */
static inline size_t tcp_recv_some(int fd, struct tcp_stream *s, int ms, bool *eof)
{
	uint8_t buf[4096];
	size_t total = 0;
	struct pollfd p = { .fd = fd, .events = POLLIN };
	if (eof)
		*eof = false;
	if (poll(&p, 1, ms) <= 0)
		return 0;
	for (;;) {
		ssize_t r = recv(fd, buf, sizeof(buf), MSG_DONTWAIT);
		if (r < 0 && errno == EAGAIN)
			break;
		if (r < 0)
			test_fail("recv at %llu: %s", (unsigned long long)s->rcvd, strerror(errno));
		if (r == 0) {
			if (eof)
				*eof = true;
			break;
		}
		for (ssize_t i = 0; i < r; i++)
			if (buf[i] != tcp_byte(s->seed, s->rcvd + (uint64_t)i))
				test_fail("stream %llx: byte %llu differs (gap or duplicate)",
					  (unsigned long long)s->seed,
					  (unsigned long long)(s->rcvd + (uint64_t)i));
		s->rcvd += (size_t)r;
		total += (size_t)r;
	}
	return total;
}

/* Receive until @want bytes of the stream came in total (bounded by @ms overall); true if
 * the end of the stream came right after them. */
static inline bool tcp_recv_until(int fd, struct tcp_stream *s, uint64_t want, int ms,
				  const char *what)
{
	uint64_t t0 = test_now_ns();
	bool eof = false;
	while (s->rcvd < want) {
		tcp_recv_some(fd, s, 200, &eof);
		TEST_CHECK(!eof || s->rcvd >= want, "%s: EOF after %llu of %llu bytes", what,
			   (unsigned long long)s->rcvd, (unsigned long long)want);
		TEST_CHECK(test_now_ns() - t0 < (uint64_t)ms * 1000000ull,
			   "%s: %llu of %llu bytes within %d ms", what, (unsigned long long)s->rcvd,
			   (unsigned long long)want, ms);
	}
	TEST_CHECK(s->rcvd == want, "%s: %llu bytes, expected %llu", what,
		   (unsigned long long)s->rcvd, (unsigned long long)want);
	return eof;
}

/* A new network namespace (the ns flavor) starts with lo down: up, as a program would. */
static inline void tcp_lo_up(void)
{
	struct ifreq ifr;
	int fd = socket(AF_INET, SOCK_DGRAM, 0);
	memset(&ifr, 0, sizeof(ifr));
	strcpy(ifr.ifr_name, "lo");
	if (fd < 0 || ioctl(fd, SIOCGIFFLAGS, &ifr))
		test_fail("lo: %s", strerror(errno));
	if (!(ifr.ifr_flags & IFF_UP)) {
		ifr.ifr_flags |= IFF_UP;
		if (ioctl(fd, SIOCSIFFLAGS, &ifr))
			test_fail("lo up: %s", strerror(errno));
		test_sleep_ms(50); /* ::1 */
	}
	close(fd);
}

static inline socklen_t tcp_addr(int family, const char *ip, uint16_t port,
				 struct sockaddr_storage *ss)
{
	memset(ss, 0, sizeof(*ss));
	if (family == AF_INET) {
		struct sockaddr_in *a = (struct sockaddr_in *)ss;
		a->sin_family = AF_INET;
		a->sin_port = htons(port);
		inet_pton(AF_INET, ip, &a->sin_addr);
		return sizeof(*a);
	}
	struct sockaddr_in6 *a = (struct sockaddr_in6 *)ss;
	a->sin6_family = AF_INET6;
	a->sin6_port = htons(port);
	inet_pton(AF_INET6, ip, &a->sin6_addr);
	return sizeof(*a);
}

static inline uint16_t tcp_port(int fd)
{
	struct sockaddr_storage ss;
	socklen_t l = sizeof(ss);
	if (getsockname(fd, (struct sockaddr *)&ss, &l))
		test_fail("getsockname: %s", strerror(errno));
	return ntohs(ss.ss_family == AF_INET ? ((struct sockaddr_in *)&ss)->sin_port
					     : ((struct sockaddr_in6 *)&ss)->sin6_port);
}

/* "ip:port" or "[ip]:port" of @fd's own address, or with @peer its peer's, into @out;
 * "(the error)" when there is none. */
static inline void tcp_name(int fd, bool peer, char *out, size_t len)
{
	struct sockaddr_storage ss;
	socklen_t l = sizeof(ss);
	char ip[INET6_ADDRSTRLEN] = "";
	memset(&ss, 0, sizeof(ss));
	if ((peer ? getpeername(fd, (struct sockaddr *)&ss, &l)
		  : getsockname(fd, (struct sockaddr *)&ss, &l)) < 0) {
		snprintf(out, len, "(%s)", strerror(errno));
		return;
	}
	if (ss.ss_family == AF_INET) {
		struct sockaddr_in *a = (struct sockaddr_in *)&ss;
		inet_ntop(AF_INET, &a->sin_addr, ip, sizeof(ip));
		snprintf(out, len, "%s:%u", ip, ntohs(a->sin_port));
	} else {
		struct sockaddr_in6 *a = (struct sockaddr_in6 *)&ss;
		inet_ntop(AF_INET6, &a->sin6_addr, ip, sizeof(ip));
		snprintf(out, len, "[%s]:%u", ip, ntohs(a->sin6_port));
	}
}

/* A listener of @family on @ip, port chosen by the kernel. */
static inline int tcp_listener(int family, const char *ip, int backlog)
{
	struct sockaddr_storage ss;
	socklen_t l = tcp_addr(family, ip, 0, &ss);
	int fd = socket(family, SOCK_STREAM, 0);
	if (fd < 0 || bind(fd, (struct sockaddr *)&ss, l) || listen(fd, backlog))
		test_fail("listener on %s: %s", ip, strerror(errno));
	return fd;
}

/* A client of @family connected to @ip:@port (blocking connect). */
static inline int tcp_connect(int family, const char *ip, uint16_t port)
{
	struct sockaddr_storage ss;
	socklen_t l = tcp_addr(family, ip, port, &ss);
	int fd = socket(family, SOCK_STREAM, 0);
	if (fd < 0 || connect(fd, (struct sockaddr *)&ss, l))
		test_fail("connect to %s:%u: %s", ip, port, strerror(errno));
	return fd;
}

/* A connected pair over a fresh listener (closed again): *@c the client, *@s the server. */
static inline void tcp_pair(int family, const char *lip, const char *cip, int *c, int *s)
{
	int l = tcp_listener(family, lip, 4);
	*c = tcp_connect(family, cip, tcp_port(l));
	*s = accept(l, NULL, NULL);
	if (*s < 0)
		test_fail("accept: %s", strerror(errno));
	close(l);
}

static inline int tcp_state(int fd)
{
	struct tcp_info ti;
	socklen_t l = sizeof(ti);
	memset(&ti, 0, sizeof(ti));
	if (getsockopt(fd, IPPROTO_TCP, TCP_INFO, &ti, &l))
		test_fail("TCP_INFO: %s", strerror(errno));
	return ti.tcpi_state;
}

/* Fill @fd's peer until nothing more goes (its receive buffer and our send buffer). */
static inline void tcp_fill(int fd, struct tcp_stream *s)
{
	for (int i = 0; i < 50; i++) {
		if (!tcp_send_some(fd, s, 1 << 20))
			test_sleep_ms(10);
		else
			i = 0 > i ? 0 : i; /* keep going while it moves */
		struct pollfd p = { .fd = fd, .events = POLLOUT };
		if (poll(&p, 1, 20) == 0 && i > 3)
			break;
	}
}

#endif
