// stasis-test: timeout=30 needs=root
/* Network namespaces: the root enters a net namespace of its own, brings lo up, puts
 * 10.11.12.1/24 on a dummy link (a veth pair in the same namespace on kernels without
 * dummy), adds a route through 10.11.12.2 (and one with metrics: mtu, window, initcwnd,
 * initrwnd, advmss, quickack) and sets net.ipv4.ip_forward=1, five more of
 * the namespace's settings (port range, unprivileged port start, route_localnet, TCP
 * keepalive, unix datagram queue), four stasis knows by no name (congestion control,
 * MTU probing, TCP receive buffers, the IPv6 default hop limit) and six of the link's own
 * (rp_filter, arp_ignore, accept_ra, and three stasis knows by no name: arp_filter, IPv6
 * DAD transmits, neighbour reachable time); a child stays in that namespace. After restore: lo is
 * up, the link and its address exist, the route and the sysctls are there, and UDP datagrams to 127.0.0.1 and 10.11.12.1 arrive (sockets
 * are made after restore: they are not checkpointed yet). */
#include "lib.h"

#include <arpa/inet.h>
#include <errno.h>
#include <ifaddrs.h>
#include <net/if.h>
#include <netinet/in.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

static const char *link_name = "d0";

static int lo_up(void)
{
	struct ifreq ifr = { 0 };
	int fd = socket(AF_INET, SOCK_DGRAM, 0);
	strcpy(ifr.ifr_name, "lo");
	int ok = fd >= 0 && ioctl(fd, SIOCGIFFLAGS, &ifr) == 0 && (ifr.ifr_flags & IFF_UP);
	if (fd >= 0)
		close(fd);
	return ok;
}

static int has_addr(void)
{
	struct ifaddrs *ifa, *i;
	int ok = 0;
	if (getifaddrs(&ifa) < 0)
		return 0;
	for (i = ifa; i; i = i->ifa_next)
		if (i->ifa_addr && i->ifa_addr->sa_family == AF_INET &&
		    !strcmp(i->ifa_name, link_name) &&
		    ((struct sockaddr_in *)i->ifa_addr)->sin_addr.s_addr == inet_addr("10.11.12.1") &&
		    (i->ifa_flags & IFF_UP))
			ok = 1;
	freeifaddrs(ifa);
	return ok;
}

static int has_route(void)
{
	FILE *f = fopen("/proc/net/route", "r");
	char line[256];
	int ok = 0;
	if (!f)
		return 0;
	while (fgets(line, sizeof(line), f)) {
		char ifn[32];
		unsigned dst, gw, mask;
		if (sscanf(line, "%31s %x %x %*x %*d %*d %*d %x", ifn, &dst, &gw, &mask) == 4 &&
		    !strcmp(ifn, link_name) && dst == inet_addr("10.20.0.0") &&
		    gw == inet_addr("10.11.12.2") && mask == inet_addr("255.255.0.0"))
			ok = 1;
	}
	fclose(f);
	return ok;
}

static int ip_forward(void)
{
	FILE *f = fopen("/proc/sys/net/ipv4/ip_forward", "r");
	int v = -1;
	if (f) {
		if (fscanf(f, "%d", &v) != 1)
			v = -1;
		fclose(f);
	}
	return v;
}

static int udp_echo(const char *addr)
{
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_addr.s_addr = inet_addr(addr) };
	socklen_t sl = sizeof(sa);
	int fd = socket(AF_INET, SOCK_DGRAM, 0), ok = 0;
	struct timeval tv = { .tv_sec = 2 };
	char buf[16];
	if (fd < 0)
		return 0;
	if (setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) == 0 &&
	    bind(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0 &&
	    getsockname(fd, (struct sockaddr *)&sa, &sl) == 0 &&
	    sendto(fd, "ping", 4, 0, (struct sockaddr *)&sa, sizeof(sa)) == 4 &&
	    recv(fd, buf, sizeof(buf), 0) == 4 && !memcmp(buf, "ping", 4))
		ok = 1;
	close(fd);
	return ok;
}

static int own_ns(pid_t other, int want_same)
{
	char a[64], b[64], pa[64];
	snprintf(pa, sizeof(pa), "/proc/%d/ns/net", other);
	ssize_t n = readlink("/proc/self/ns/net", a, sizeof(a) - 1);
	ssize_t m = readlink(pa, b, sizeof(b) - 1);
	if (n <= 0 || m <= 0)
		return 0;
	a[n] = b[m] = '\0';
	return (strcmp(a, b) == 0) == want_same;
}

/* A route with metrics besides its MTU (every RTAX_* is carried, not just the MTU). */
#define METRICS "mtu 1300 window 65535 initcwnd 20 initrwnd 30 advmss 1200 quickack 1"

static bool metrics_kept(void)
{
	char line[512] = { 0 };
	FILE *p = popen("ip route show 10.30.0.0/16", "r");
	bool ok = p && fgets(line, sizeof(line), p);
	if (p)
		pclose(p);
	static const char *const want[] = { "mtu 1300", "window 65535", "initcwnd 20",
					    "initrwnd 30", "advmss 1200", "quickack 1" };
	for (size_t i = 0; ok && i < sizeof(want) / sizeof(want[0]); i++)
		ok = strstr(line, want[i]) != NULL;
	return ok;
}

static void sh(const char *cmd)
{
	int st = system(cmd);
	if (st != 0)
		test_fail("setup: '%s' failed (%#x)", cmd, st);
}

/* Settings of the namespace a program or runtime changes: name, value set. */
static const char *const knobs[][2] = {
	{ "ipv4/ip_local_port_range", "20000\t30000" },
	{ "ipv4/ip_unprivileged_port_start", "80" },
	{ "ipv4/conf/all/route_localnet", "1" },
	{ "ipv4/tcp_keepalive_time", "600" },
	{ "unix/max_dgram_qlen", "64" },
	/* none of stasis's list: carried by the walk of /proc/sys/net */
	{ "ipv4/tcp_congestion_control", "reno" },
	{ "ipv4/tcp_mtu_probing", "2" },
	{ "ipv4/tcp_rmem", "8192\t65536\t1048576" },
	{ "ipv6/conf/default/hop_limit", "33" },
	{ "ipv4/conf/@/rp_filter", "2" }, /* @: the link's own */
	{ "ipv4/conf/@/arp_ignore", "1" },
	{ "ipv6/conf/@/accept_ra", "0" },
	/* the link's own, none of stasis's list */
	{ "ipv4/conf/@/arp_filter", "1" },
	{ "ipv6/conf/@/dad_transmits", "3" },
	{ "ipv4/neigh/@/base_reachable_time_ms", "45500" },
};

static void knob_path(char *buf, size_t len, size_t i)
{
	const char *k = knobs[i][0], *at = strchr(k, '@');
	if (at)
		snprintf(buf, len, "/proc/sys/net/%.*s%s%s", (int)(at - k), k, link_name, at + 1);
	else
		snprintf(buf, len, "/proc/sys/net/%s", k);
}

/* The first knob that does not read its value, or NULL. */
static const char *knob_wrong(void)
{
	for (size_t i = 0; i < sizeof(knobs) / sizeof(knobs[0]); i++) {
		char path[160], v[64] = "";
		knob_path(path, sizeof(path), i);
		FILE *f = fopen(path, "r");
		if (!f || !fgets(v, sizeof(v), f)) {
			if (f)
				fclose(f);
			return knobs[i][0];
		}
		fclose(f);
		v[strcspn(v, "\n")] = '\0';
		if (strcmp(v, knobs[i][1]))
			return knobs[i][0];
	}
	return NULL;
}

static int all_ok(void)
{
	return lo_up() && has_addr() && has_route() && ip_forward() == 1 && !knob_wrong() &&
	       udp_echo("127.0.0.1") && udp_echo("10.11.12.1");
}

int main(int argc, char **argv)
{
	int req[2], ans[2];

	test_init(argc, argv);
	if (unshare(CLONE_NEWNET) < 0 || pipe(req) < 0 || pipe(ans) < 0)
		test_fail("setup: %s", strerror(errno));
	sh("ip link set lo up");
	if (system("ip link add d0 type dummy 2>/dev/null") != 0) {
		/* no dummy driver (CONFIG_DUMMY=n): a veth pair in this namespace */
		link_name = "v0";
		sh("ip link add v0 type veth peer name v1 && ip link set v1 up");
	}
	char cmd[256];
	snprintf(cmd, sizeof(cmd),
		 "ip link set %s mtu 1400 up && ip addr add 10.11.12.1/24 dev %s && "
		 "ip route add 10.20.0.0/16 via 10.11.12.2 dev %s && "
		 "ip route add 10.30.0.0/16 via 10.11.12.2 dev %s " METRICS,
		 link_name, link_name, link_name, link_name);
	sh(cmd);
	TEST_CHECK(metrics_kept(), "setup: the route's metrics");
	sh("echo 1 > /proc/sys/net/ipv4/ip_forward");
	for (size_t i = 0; i < sizeof(knobs) / sizeof(knobs[0]); i++) {
		char path[160];
		knob_path(path, sizeof(path), i);
		snprintf(cmd, sizeof(cmd), "printf '%s' > %s", knobs[i][1], path);
		sh(cmd);
	}
	TEST_CHECK(!knob_wrong(), "setup: %s", knob_wrong());
	TEST_CHECK(all_ok(), "setup state");
	pid_t root = getpid();
	pid_t child = fork();
	if (child == 0) {
		signal(SIGTERM, SIG_IGN);
		close(req[1]);
		close(ans[0]);
		char c;
		while (read(req[0], &c, 1) == 1) {
			char ok = own_ns(root, 1) && all_ok() ? 'y' : 'n';
			if (write(ans[1], &ok, 1) != 1)
				_exit(2);
		}
		_exit(0);
	}
	close(req[0]);
	close(ans[1]);
	char c = '?', ok = 'n';
	TEST_CHECK(write(req[1], &c, 1) == 1 && read(ans[0], &ok, 1) == 1 && ok == 'y',
		   "child setup");
	test_ready();
	test_wait();
	if (test_sabotage())
		system("echo 0 > /proc/sys/net/ipv4/ip_forward");
	/* (a pid namespace's init cannot see its parent: nothing to compare with) */
	TEST_CHECK(getppid() == 0 || own_ns(getppid(), 0),
		   "the root is not in a net namespace of its own");
	TEST_CHECK(lo_up(), "lo is not up");
	TEST_CHECK(has_addr(), "%s or 10.11.12.1 is missing", link_name);
	TEST_CHECK(has_route(), "the route to 10.20.0.0/16 is missing");
	TEST_CHECK(metrics_kept(), "the route to 10.30.0.0/16 lost metrics (want %s)", METRICS);
	TEST_CHECK(ip_forward() == 1, "net.ipv4.ip_forward is %d", ip_forward());
	TEST_CHECK(!knob_wrong(), "%s is not what was set", knob_wrong());
	TEST_CHECK(udp_echo("127.0.0.1"), "no UDP over lo");
	TEST_CHECK(udp_echo("10.11.12.1"), "no UDP to 10.11.12.1");
	TEST_CHECK(write(req[1], &c, 1) == 1 && read(ans[0], &ok, 1) == 1, "no answer");
	TEST_CHECK(ok == 'y', "the child's view of the namespace is wrong");
	close(req[1]);
	int st;
	alarm(10);
	TEST_CHECK(waitpid(child, &st, 0) == child && WIFEXITED(st) && !WEXITSTATUS(st),
		   "child status %#x", st);
	test_pass();
}
