/* Socket options (src/net/sockopt.c): options set on a socket are dumped, go through the
 * image encoding, and set on a new socket of the same kind the restored socket dumps the
 * same; options stasis does not carry are refused; bad images are rejected. */
#include <linux/filter.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <netinet/udp.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include "core/log.h"
#include "net/sockopt.h"
#include "unit.h"

static void set_int(int sk, int level, int name, int v)
{
	if (setsockopt(sk, level, name, &v, sizeof(v)))
		UNIT_FAIL("setsockopt(%d, %d, %d): %s", level, name, v, strerror(errno));
}

/* Dump @sk, round-trip the record through the image encoding, validate it. */
static SockOpts *roundtrip(int sk, int family, int type, int proto)
{
	SockOpts *o = NULL, *back;
	CHECK_EQ(sockopt_dump(sk, getpid(), sk, &o), 0);
	if (!o)
		return NULL;
	size_t len = sock_opts__get_packed_size(o);
	uint8_t *buf = malloc(len ? len : 1);
	CHECK(buf != NULL);
	sock_opts__pack(o, buf);
	sock_opts__free_unpacked(o, NULL);
	back = sock_opts__unpack(NULL, len, buf);
	free(buf);
	CHECK(back != NULL);
	if (back)
		CHECK_EQ(sockopt_validate(back, family, type, proto, "test"), 0);
	return back;
}

/* The options of @a and @b, as sockopt reads them, are the same. */
static void same_opts(int a, int b)
{
	SockOpts *oa = NULL, *ob = NULL;
	CHECK_EQ(sockopt_dump(a, getpid(), a, &oa), 0);
	CHECK_EQ(sockopt_dump(b, getpid(), b, &ob), 0);
	if (!oa || !ob)
		return;
	CHECK_EQ(oa->n_opts, ob->n_opts);
	for (size_t i = 0; i < oa->n_opts && i < ob->n_opts; i++) {
		SockOpt *x = oa->opts[i], *y = ob->opts[i];
		bool same = x->level == y->level && x->name == y->name && x->ival == y->ival &&
			    x->bval.len == y->bval.len &&
			    (!x->bval.len || !memcmp(x->bval.data, y->bval.data, x->bval.len));
		if (!same)
			UNIT_FAIL("option %s: %lld / %zu bytes restored as %lld / %zu bytes",
				  sockopt_name(x->level, x->name), (long long)x->ival,
				  x->bval.len, (long long)y->ival, y->bval.len);
	}
	CHECK_EQ(oa->has_filter, ob->has_filter);
	CHECK_EQ(oa->filter.len, ob->filter.len);
	if (oa->filter.len == ob->filter.len && oa->filter.len)
		CHECK(!memcmp(oa->filter.data, ob->filter.data, oa->filter.len));
	CHECK_EQ(oa->filter_locked, ob->filter_locked);
	sock_opts__free_unpacked(oa, NULL);
	sock_opts__free_unpacked(ob, NULL);
}

static void restore_into(int family, int type, int proto, const SockOpts *o, int orig)
{
	int sk = socket(family, type, proto);
	CHECK(sk >= 0);
	CHECK_EQ(sockopt_restore(sk, o, SOCKOPT_EARLY, "test"), 0);
	CHECK_EQ(sockopt_restore(sk, o, SOCKOPT_LATE, "test"), 0);
	same_opts(orig, sk);
	close(sk);
}

static void test_tcp4(void)
{
	int sk = socket(AF_INET, SOCK_STREAM, 0);
	struct linger l = { .l_onoff = 1, .l_linger = 5 };
	struct timeval tv = { .tv_sec = 3, .tv_usec = 250000 };
	struct sock_filter insn[] = { BPF_STMT(BPF_LD | BPF_W | BPF_LEN, 0),
				      BPF_STMT(BPF_RET | BPF_K, 0xffff) };
	struct sock_fprog prog = { .len = 2, .filter = insn };

	set_int(sk, SOL_SOCKET, SO_KEEPALIVE, 1);
	set_int(sk, SOL_SOCKET, SO_REUSEADDR, 1);
	set_int(sk, SOL_SOCKET, SO_PRIORITY, 3);
	set_int(sk, SOL_SOCKET, SO_SNDBUF, 100000);
	set_int(sk, SOL_SOCKET, SO_RCVLOWAT, 10);
	set_int(sk, IPPROTO_TCP, TCP_NODELAY, 1);
	set_int(sk, IPPROTO_TCP, TCP_KEEPIDLE, 77);
	set_int(sk, IPPROTO_TCP, TCP_KEEPCNT, 4);
	set_int(sk, IPPROTO_TCP, TCP_USER_TIMEOUT, 12345);
	set_int(sk, IPPROTO_IP, IP_TOS, 0x10);
	set_int(sk, IPPROTO_IP, IP_TTL, 33);
	set_int(sk, IPPROTO_IP, IP_FREEBIND, 1);
	CHECK(!setsockopt(sk, SOL_SOCKET, SO_LINGER, &l, sizeof(l)));
	CHECK(!setsockopt(sk, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)));
	CHECK(!setsockopt(sk, IPPROTO_TCP, TCP_CONGESTION, "reno", 4));
	/* (a user without privileges may not attach one on some machines: EPERM) */
	bool filter = !setsockopt(sk, SOL_SOCKET, SO_ATTACH_FILTER, &prog, sizeof(prog));
	if (!filter && errno != EPERM)
		UNIT_FAIL("SO_ATTACH_FILTER: %s", strerror(errno));
	if (filter)
		set_int(sk, SOL_SOCKET, SO_LOCK_FILTER, 1);

	SockOpts *o = roundtrip(sk, AF_INET, SOCK_STREAM, IPPROTO_TCP);
	if (o) {
		CHECK(!filter || (o->has_filter && o->filter.len == sizeof(insn)));
		restore_into(AF_INET, SOCK_STREAM, 0, o, sk);
		/* the image of a TCP socket is not one of a UDP socket */
		CHECK(sockopt_validate(o, AF_INET, SOCK_DGRAM, IPPROTO_UDP, "test") != 0);
		CHECK(sockopt_validate(o, AF_UNIX, SOCK_STREAM, 0, "test") != 0);
		sock_opts__free_unpacked(o, NULL);
	}
	close(sk);
}

static void test_udp6(void)
{
	int sk = socket(AF_INET6, SOCK_DGRAM, 0);
	if (sk < 0)
		UNIT_SKIP("no IPv6");
	set_int(sk, IPPROTO_IPV6, IPV6_V6ONLY, 1);
	set_int(sk, IPPROTO_IPV6, IPV6_TCLASS, 0x20);
	set_int(sk, IPPROTO_IPV6, IPV6_RECVPKTINFO, 1);
	set_int(sk, IPPROTO_IPV6, IPV6_UNICAST_HOPS, 9);
	set_int(sk, SOL_SOCKET, SO_BROADCAST, 1);
	set_int(sk, SOL_SOCKET, SO_RCVBUF, 50000);
	set_int(sk, SOL_SOCKET, SO_TIMESTAMP, 1);
	set_int(sk, IPPROTO_UDP, UDP_SEGMENT, 1000);
	/* IP-level options of an IPv6 socket (its v4-mapped traffic) are carried too */
	set_int(sk, IPPROTO_IP, IP_TOS, 0x28);
	set_int(sk, IPPROTO_IP, IP_TTL, 17);
	SockOpts *o = roundtrip(sk, AF_INET6, SOCK_DGRAM, IPPROTO_UDP);
	if (o) {
		bool tos = false;
		for (size_t i = 0; i < o->n_opts; i++)
			tos |= o->opts[i]->level == IPPROTO_IP && o->opts[i]->name == IP_TOS &&
			       o->opts[i]->ival == 0x28;
		CHECK(tos);
		restore_into(AF_INET6, SOCK_DGRAM, 0, o, sk);
		sock_opts__free_unpacked(o, NULL);
	}
	close(sk);
}

static void test_unix(void)
{
	int sk = socket(AF_UNIX, SOCK_DGRAM, 0);
	set_int(sk, SOL_SOCKET, SO_PASSCRED, 1);
	set_int(sk, SOL_SOCKET, SO_SNDBUF, 30000);
	SockOpts *o = roundtrip(sk, AF_UNIX, SOCK_DGRAM, 0);
	if (o) {
		restore_into(AF_UNIX, SOCK_DGRAM, 0, o, sk);
		/* no IP-level option in the record of a unix socket */
		for (size_t i = 0; i < o->n_opts; i++)
			CHECK_EQ(o->opts[i]->level, SOL_SOCKET);
		sock_opts__free_unpacked(o, NULL);
	}
	close(sk);
}

/* An option that cannot be carried is refused at dump. */
static void test_refused(void)
{
	int sk = socket(AF_INET, SOCK_DGRAM, 0);
	const unsigned char nops[4] = { 1, 1, 1, 1 }; /* IPOPT_NOOP x 4 */
	SockOpts *o = NULL;
	CHECK(!setsockopt(sk, IPPROTO_IP, IP_OPTIONS, nops, sizeof(nops)));
	CHECK_EQ(sockopt_dump(sk, getpid(), sk, &o), -EOPNOTSUPP);
	CHECK(o == NULL);
	close(sk);
}

static void test_bad_images(void)
{
	SockOpt a = SOCK_OPT__INIT, b = SOCK_OPT__INIT;
	SockOpt *v[2] = { &a, &b };
	SockOpts o = SOCK_OPTS__INIT;
	o.opts = v;
	o.n_opts = 1;

	a.level = SOL_SOCKET;
	a.name = 9999; /* not an option of the table */
	a.has_ival = true;
	CHECK(sockopt_validate(&o, AF_INET, SOCK_STREAM, IPPROTO_TCP, "test") != 0);
	a.name = SO_KEEPALIVE;
	CHECK_EQ(sockopt_validate(&o, AF_INET, SOCK_STREAM, IPPROTO_TCP, "test"), 0);
	a.ival = (int64_t)1 << 40; /* an int option out of range */
	CHECK(sockopt_validate(&o, AF_INET, SOCK_STREAM, IPPROTO_TCP, "test") != 0);
	a.ival = 1;
	o.n_opts = 2; /* twice */
	b = a;
	CHECK(sockopt_validate(&o, AF_INET, SOCK_STREAM, IPPROTO_TCP, "test") != 0);
	o.n_opts = 1;
	a.level = IPPROTO_TCP; /* TCP on a unix socket */
	a.name = TCP_NODELAY;
	CHECK(sockopt_validate(&o, AF_UNIX, SOCK_STREAM, 0, "test") != 0);
	a.level = SOL_SOCKET; /* a struct of the wrong size */
	a.name = SO_LINGER;
	a.has_ival = false;
	a.has_bval = true;
	uint8_t junk[3] = { 1, 2, 3 };
	a.bval.data = junk;
	a.bval.len = sizeof(junk);
	CHECK(sockopt_validate(&o, AF_INET, SOCK_STREAM, IPPROTO_TCP, "test") != 0);
	a.name = SO_BINDTODEVICE; /* a name without its NUL */
	CHECK(sockopt_validate(&o, AF_INET, SOCK_STREAM, IPPROTO_TCP, "test") != 0);
	o.n_opts = 0;
	o.has_filter = true; /* not whole instructions */
	o.filter.data = junk;
	o.filter.len = sizeof(junk);
	CHECK(sockopt_validate(&o, AF_INET, SOCK_STREAM, IPPROTO_TCP, "test") != 0);
	o.has_filter = false;
	o.has_filter_locked = o.filter_locked = true; /* a lock without a filter */
	CHECK(sockopt_validate(&o, AF_INET, SOCK_STREAM, IPPROTO_TCP, "test") != 0);
}

int main(void)
{
	if (log_init(NULL, LOG_WARN))
		return 1;
	RUN(test_tcp4);
	RUN(test_unix);
	RUN(test_refused);
	RUN(test_bad_images);
	RUN(test_udp6);
	return unit_done();
}
