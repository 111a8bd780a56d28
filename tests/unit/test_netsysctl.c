/* Unit tests of src/net/sysctl.c: which names of a network namespace's settings an image
 * may carry (the walk's, checked before a restore writes below /proc/sys/net), for the
 * namespace and for a link. */
#include "unit.h"

#include <fcntl.h>
#include <sched.h>
#include <stdio.h>
#include <unistd.h>

#include "core/log.h"
#include "net/netns.h"

static void test_names(void)
{
	static const char *const good[] = { "ipv4/tcp_rmem", "ipv4/conf/all/forwarding",
					    "ipv6/conf/default/hop_limit", "netfilter/nf_log_all_netns",
					    "ipv4/neigh/default/gc_stale_time", "mptcp/enabled" };
	static const char *const bad[] = { "", "tcp_rmem", "/ipv4/tcp_rmem", "ipv4/../core/x",
					   "ipv4/./tcp_rmem", "ipv4//tcp_rmem", "ipv4/tcp_rmem/",
					   "ipv4/conf/eth0/forwarding", "ipv6/neigh/lo/retrans_time",
					   "ipv4/tcp rmem", "a/b/c/d/e/f/g", "ipv4/tcp_rmem\n",
					   /* links named like the namespace-wide directories */
					   "ipv4/conf/allnet/forwarding", "ipv6/neigh/default0/x" };
	for (size_t i = 0; i < ARRAY_SIZE(good); i++)
		CHECK(net_sysctl_name_ok(good[i]));
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++)
		CHECK(!net_sysctl_name_ok(bad[i]));
	char longname[200];
	memset(longname, 'a', sizeof(longname));
	memcpy(longname, "ipv4/", 5);
	longname[sizeof(longname) - 1] = '\0';
	CHECK(!net_sysctl_name_ok(longname));
}

/* The walk of the test's network namespace: settings found, none of a link's own
 * directory, every name one an image may carry, none twice. */
static void test_walk(void)
{
	NetSysctl **arr = NULL;
	size_t n = 0;
	char err[256] = "";
	int ret = net_sysctls_walk(&arr, &n, err, sizeof(err));
	CHECK_EQ(ret, 0);
	CHECK(n > 10);
	for (size_t i = 0; i < n; i++) {
		CHECK(net_sysctl_name_ok(arr[i]->name));
		for (size_t k = 0; k < i; k++)
			CHECK(strcmp(arr[i]->name, arr[k]->name) != 0);
	}
	for (size_t i = 0; i < n; i++)
		net_sysctl__free_unpacked(arr[i], NULL);
	free(arr);
}

/* A link's keys, and the walk of lo's own settings. */
static void test_link(void)
{
	static const char *const good[] = { "ipv4/forwarding", "ipv6/dad_transmits",
					    "ipv4/neigh/base_reachable_time_ms", "ipv6/neigh/retrans_time" };
	static const char *const bad[] = { "forwarding", "ipv5/forwarding", "ipv4/a/b",
					   "ipv4/neigh/a/b", "ipv4/..", "ipv4/", "ipv4/neigh/",
					   "ipv6/neigh/..", "ipv4/x y" };
	for (size_t i = 0; i < ARRAY_SIZE(good); i++)
		CHECK(net_link_conf_name_ok(good[i]));
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++)
		CHECK(!net_link_conf_name_ok(bad[i]));
	NetSysctl **arr = NULL;
	size_t n = 0, neigh = 0;
	char err[256] = "";
	CHECK_EQ(net_link_confs_walk("lo", &arr, &n, err, sizeof(err)), 0);
	CHECK(n > 10);
	for (size_t i = 0; i < n; i++) {
		CHECK(net_link_conf_name_ok(arr[i]->name));
		neigh += strstr(arr[i]->name, "/neigh/") != NULL;
	}
	CHECK(neigh > 0);
	CHECK_EQ(net_link_confs_walk("../all", &arr, &n, err, sizeof(err)), -EINVAL);
	for (size_t i = 0; i < n; i++)
		net_sysctl__free_unpacked(arr[i], NULL);
	free(arr);
}

static int write_str(const char *path, const char *s)
{
	int fd = open(path, O_WRONLY | O_CLOEXEC);
	int ok = fd >= 0 && write(fd, s, strlen(s)) == (ssize_t)strlen(s);
	if (fd >= 0)
		close(fd);
	return ok ? 0 : -1;
}

/* The walks run in a network namespace of the test's own, as a stasis dump reads one of
 * the tree's (its owner's root may read every setting); a user namespace first when the
 * test is not root (mapped to its root). */
static int own_netns(void)
{
	if (!unshare(CLONE_NEWNET))
		return 0;
	char map[64];
	uid_t u = geteuid();
	gid_t g = getegid();
	if (unshare(CLONE_NEWUSER | CLONE_NEWNET) < 0)
		return -1;
	snprintf(map, sizeof(map), "0 %u 1", (unsigned)u);
	if (write_str("/proc/self/uid_map", map) || write_str("/proc/self/setgroups", "deny"))
		return -1;
	snprintf(map, sizeof(map), "0 %u 1", (unsigned)g);
	return write_str("/proc/self/gid_map", map);
}

int main(void)
{
	if (log_init("/dev/null", LOG_ERR) < 0 || own_netns() < 0)
		return 1;
	RUN(test_names);
	RUN(test_walk);
	RUN(test_link);
	return unit_done();
}
