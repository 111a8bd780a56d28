// stasis-test: timeout=30
/* Multicast memberships on loopback, each socket on a port of its own with
 * IP_MULTICAST_ALL off (it hears only its own groups):
 *   a: IPv4, 239.7.0.1 (any source) and 239.7.0.2 (any source but 127.0.0.3: EXCLUDE);
 *   b: IPv4, 239.7.0.3 from 127.0.0.2 only (source-specific: INCLUDE);
 *   c: IPv6 socket, ff15::7:1 and, at the IPv4 level, 239.7.0.4 (membership read
 *      back only: IPv6 multicast has no route over loopback);
 *   d: IPv4, 239.7.0.1 too (two members of one group).
 * After the restore every socket reads back the same filters (MCAST_MSFILTER, the
 * membership test the kernel offers), is a member of nothing else, and the datagrams
 * sent to each group from each source arrive exactly where the filters let them. */
#include "lib.h"
#include "sock_dgram_lib.h"

#include <arpa/inet.h>
#include <errno.h>
#include <net/if.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static unsigned int lo;

static int bound(int family, struct sockaddr_storage *a)
{
	socklen_t l = sizeof(*a);
	int fd = socket(family, SOCK_DGRAM, 0), off = 0;
	memset(a, 0, sizeof(*a));
	a->ss_family = (sa_family_t)family;
	if (fd < 0 || bind(fd, (struct sockaddr *)a, family == AF_INET ? sizeof(struct sockaddr_in)
								   : sizeof(struct sockaddr_in6)) ||
	    getsockname(fd, (struct sockaddr *)a, &l) ||
	    setsockopt(fd, SOL_IP, IP_MULTICAST_ALL, &off, sizeof(off)))
		test_fail("socket/bind: %s", strerror(errno));
	if (family == AF_INET6 && setsockopt(fd, SOL_IPV6, IPV6_MULTICAST_ALL, &off, sizeof(off)))
		test_fail("IPV6_MULTICAST_ALL: %s", strerror(errno));
	return fd;
}

static uint16_t port_of(const struct sockaddr_storage *a)
{
	return a->ss_family == AF_INET ? ((const struct sockaddr_in *)a)->sin_port
				       : ((const struct sockaddr_in6 *)a)->sin6_port;
}

static void in4(struct sockaddr_storage *ss, const char *ip)
{
	memset(ss, 0, sizeof(*ss));
	ss->ss_family = AF_INET;
	inet_pton(AF_INET, ip, &((struct sockaddr_in *)ss)->sin_addr);
}

static void in6(struct sockaddr_storage *ss, const char *ip)
{
	memset(ss, 0, sizeof(*ss));
	ss->ss_family = AF_INET6;
	inet_pton(AF_INET6, ip, &((struct sockaddr_in6 *)ss)->sin6_addr);
}

static void join(int fd, const char *grp)
{
	struct group_req gr = { .gr_interface = lo };
	int level = strchr(grp, ':') ? SOL_IPV6 : SOL_IP;
	if (level == SOL_IP)
		in4(&gr.gr_group, grp);
	else
		in6(&gr.gr_group, grp);
	if (setsockopt(fd, level, MCAST_JOIN_GROUP, &gr, sizeof(gr)))
		test_fail("join %s: %s", grp, strerror(errno));
}

static void source(int fd, int opt, const char *grp, const char *src)
{
	struct group_source_req r = { .gsr_interface = lo };
	in4(&r.gsr_group, grp);
	in4(&r.gsr_source, src);
	if (setsockopt(fd, SOL_IP, opt, &r, sizeof(r)))
		test_fail("source %s of %s: %s", src, grp, strerror(errno));
}

/* The filter of @fd for @grp on lo: -1 if not a member, else the mode, and the only
 * source (if one) in @src. */
static int filter(int fd, const char *grp, char *src, size_t len)
{
	union {
		struct group_filter gf;
		char b[GROUP_FILTER_SIZE(4)];
	} u;
	memset(&u, 0, sizeof(u));
	int level = strchr(grp, ':') ? SOL_IPV6 : SOL_IP;
	u.gf.gf_interface = lo;
	u.gf.gf_numsrc = 4;
	if (level == SOL_IP)
		in4(&u.gf.gf_group, grp);
	else
		in6(&u.gf.gf_group, grp);
	socklen_t l = sizeof(u);
	if (getsockopt(fd, level, MCAST_MSFILTER, &u, &l))
		return errno == EADDRNOTAVAIL ? -1 : -2;
	src[0] = 0;
	if (u.gf.gf_numsrc == 1)
		inet_ntop(AF_INET, &((struct sockaddr_in *)&u.gf.gf_slist[0])->sin_addr, src,
			  (socklen_t)len);
	else if (u.gf.gf_numsrc)
		snprintf(src, len, "%u sources", u.gf.gf_numsrc);
	return (int)u.gf.gf_fmode;
}

static void expect_filter(int fd, const char *name, const char *grp, int mode, const char *src)
{
	char got[64];
	int m = filter(fd, grp, got, sizeof(got));
	TEST_CHECK(m == mode && (m < 0 || !strcmp(got, src)),
		   "%s in %s: mode %d sources '%s', expected mode %d sources '%s'", name, grp, m,
		   m >= 0 ? got : "", mode, src);
}

static void send_from(const char *src, const char *grp, uint16_t port, const char *msg)
{
	struct sockaddr_in s = { .sin_family = AF_INET }, d = { .sin_family = AF_INET };
	int fd = socket(AF_INET, SOCK_DGRAM, 0);
	struct in_addr ifa;
	inet_pton(AF_INET, src, &s.sin_addr);
	inet_pton(AF_INET, grp, &d.sin_addr);
	inet_pton(AF_INET, "127.0.0.1", &ifa);
	d.sin_port = port;
	if (fd < 0 || bind(fd, (struct sockaddr *)&s, sizeof(s)) ||
	    setsockopt(fd, SOL_IP, IP_MULTICAST_IF, &ifa, sizeof(ifa)) ||
	    sendto(fd, msg, strlen(msg), 0, (struct sockaddr *)&d, sizeof(d)) < 0)
		test_fail("send %s from %s: %s", grp, src, strerror(errno));
	close(fd);
}

/* Every datagram @fd receives within @ms, concatenated with '|' into @out. */
static void drain(int fd, int ms, char *out, size_t len)
{
	out[0] = 0;
	struct pollfd p = { .fd = fd, .events = POLLIN };
	char b[64];
	while (poll(&p, 1, ms) == 1) {
		ssize_t n = recv(fd, b, sizeof(b) - 1, MSG_DONTWAIT);
		if (n < 0)
			break;
		b[n] = 0;
		if (out[0])
			strncat(out, "|", len - strlen(out) - 1);
		strncat(out, b, len - strlen(out) - 1);
		ms = 100;
	}
}

static void traffic(int a, int b, int d, const struct sockaddr_storage *aa,
		    const struct sockaddr_storage *ba, const struct sockaddr_storage *da,
		    const char *when)
{
	char got[256];
	send_from("127.0.0.1", "239.7.0.1", port_of(aa), "a1");
	send_from("127.0.0.3", "239.7.0.2", port_of(aa), "a2-blocked");
	send_from("127.0.0.4", "239.7.0.2", port_of(aa), "a2");
	send_from("127.0.0.1", "239.7.0.3", port_of(ba), "b3-other");
	send_from("127.0.0.2", "239.7.0.3", port_of(ba), "b3");
	send_from("127.0.0.5", "239.7.0.1", port_of(da), "d1");
	drain(a, 1000, got, sizeof(got));
	TEST_CHECK(!strcmp(got, "a1|a2"), "%s: a received '%s', expected 'a1|a2'", when, got);
	drain(b, 1000, got, sizeof(got));
	TEST_CHECK(!strcmp(got, "b3"), "%s: b received '%s', expected 'b3'", when, got);
	drain(d, 1000, got, sizeof(got));
	TEST_CHECK(!strcmp(got, "d1"), "%s: d received '%s', expected 'd1'", when, got);
}

int main(int argc, char **argv)
{
	struct sockaddr_storage aa, ba, ca, da;

	test_init(argc, argv);
	if (dg_lo_up())
		test_fail("lo is down and cannot be brought up");
	lo = if_nametoindex("lo");
	if (!lo)
		test_fail("no lo: %s", strerror(errno));
	int a = bound(AF_INET, &aa), b = bound(AF_INET, &ba), d = bound(AF_INET, &da);
	join(a, "239.7.0.1");
	join(a, "239.7.0.2");
	source(a, MCAST_BLOCK_SOURCE, "239.7.0.2", "127.0.0.3");
	source(b, MCAST_JOIN_SOURCE_GROUP, "239.7.0.3", "127.0.0.2");
	join(d, "239.7.0.1");
	int c = -1;
	int v6 = socket(AF_INET6, SOCK_DGRAM, 0);
	bool have6 = v6 >= 0;
	if (v6 >= 0)
		close(v6);
	if (have6) {
		c = bound(AF_INET6, &ca);
		join(c, "ff15::7:1");
		join(c, "239.7.0.4");
	}
	traffic(a, b, d, &aa, &ba, &da, "before");
	test_ready();
	test_wait();

	if (test_sabotage())
		source(a, MCAST_UNBLOCK_SOURCE, "239.7.0.2", "127.0.0.3");
	expect_filter(a, "a", "239.7.0.1", MCAST_EXCLUDE, "");
	expect_filter(a, "a", "239.7.0.2", MCAST_EXCLUDE, "127.0.0.3");
	expect_filter(a, "a", "239.7.0.3", -1, "");
	expect_filter(b, "b", "239.7.0.3", MCAST_INCLUDE, "127.0.0.2");
	expect_filter(b, "b", "239.7.0.1", -1, "");
	expect_filter(d, "d", "239.7.0.1", MCAST_EXCLUDE, "");
	expect_filter(d, "d", "239.7.0.2", -1, "");
	if (have6) {
		expect_filter(c, "c", "ff15::7:1", MCAST_EXCLUDE, "");
		expect_filter(c, "c", "239.7.0.4", MCAST_EXCLUDE, "");
		expect_filter(c, "c", "239.7.0.1", -1, "");
	}
	traffic(a, b, d, &aa, &ba, &da, "after");
	test_pass();
}
