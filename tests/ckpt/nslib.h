/* What the namespace tests share (ns_setns_ancestor, sock_unix_netns_left,
 * tcp_listen_netns_left): abstract unix names by which a datagram tells which network
 * namespace a task is in, namespace inodes, and the children's one-message reports. */
#ifndef STASIS_TEST_NSLIB_H
#define STASIS_TEST_NSLIB_H

#include <errno.h>
#include <linux/sockios.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#define NS_MSG 160 /* a child's report: "W:ok" or "W:why" */

/* The abstract name "stasis-TAG-ROOT-WHO" (@root: the test's pid, unique among runs). */
static inline socklen_t ns_addr(pid_t root, const char *tag, char who, struct sockaddr_un *a)
{
	memset(a, 0, sizeof(*a));
	a->sun_family = AF_UNIX;
	int n = snprintf(a->sun_path + 1, sizeof(a->sun_path) - 1, "stasis-%s-%d-%c", tag,
			 (int)root, who);
	return (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 + (size_t)n);
}

/* A datagram socket bound to that name in the caller's network namespace, or -1. */
static inline int ns_bind_name(pid_t root, const char *tag, char who)
{
	struct sockaddr_un a;
	socklen_t len = ns_addr(root, tag, who, &a);
	int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd >= 0 && bind(fd, (struct sockaddr *)&a, len)) {
		close(fd);
		return -1;
	}
	return fd;
}

/* @what sent to that name from the caller's namespace: 1 taken, 0 refused (no such
 * name there), -1 else. */
static inline int ns_send_to(pid_t root, const char *tag, char who, const char *what)
{
	struct sockaddr_un a;
	socklen_t len = ns_addr(root, tag, who, &a);
	int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -1;
	ssize_t r = sendto(fd, what, strlen(what), MSG_DONTWAIT, (struct sockaddr *)&a, len);
	int e = errno;
	close(fd);
	return r > 0 ? 1 : e == ECONNREFUSED ? 0 : -1;
}

/* The inode of /proc/@pid/ns/@kind, 0 if unknown. */
static inline ino_t ns_ino(pid_t pid, const char *kind)
{
	char path[64];
	struct stat st;
	snprintf(path, sizeof(path), "/proc/%d/ns/%s", (int)pid, kind);
	return stat(path, &st) ? 0 : st.st_ino;
}

/* Is socket @sk of network namespace @ns? (SIOCGSKNS needs CAP_NET_ADMIN over it: where
 * it is refused, true: the datagrams tell) */
static inline bool ns_sk_in(int sk, ino_t ns)
{
	int fd = ioctl(sk, SIOCGSKNS);
	struct stat st;
	if (fd < 0)
		return errno == EPERM;
	bool r = !fstat(fd, &st) && st.st_ino == ns;
	close(fd);
	return r;
}

/* A child's report on @wr ("W:ok", or why not), then its exit. */
static inline void __attribute__((noreturn)) ns_say(int wr, char who, const char *why)
{
	char buf[NS_MSG];
	snprintf(buf, sizeof(buf), "%c:%s", who, why ? why : "ok");
	(void)!write(wr, buf, sizeof(buf));
	_exit(0);
}

/* One report from each child named in @who (ns_say: any order) on @rd: NULL when all
 * said ok, else the first other report (or what went wrong), in @buf. Needs lib.h. */
static inline const char *ns_collect(int rd, const char *who, char *buf, size_t len)
{
	unsigned int seen = 0, all = (1u << strlen(who)) - 1;
	char msg[NS_MSG + 1];
	while (seen != all) {
		memset(msg, 0, sizeof(msg));
		if (test_read_within(rd, msg, NS_MSG, 5000)) {
			snprintf(buf, len, "a child did not report (those of %s: %#x)", who, seen);
			return buf;
		}
		const char *w = msg[0] ? strchr(who, msg[0]) : NULL;
		if (!w || strcmp(msg + 1, ":ok") || (seen & (1u << (w - who)))) {
			snprintf(buf, len, "%s", msg);
			return buf;
		}
		seen |= 1u << (w - who);
	}
	return NULL;
}

/* Child @s (forked, or -1), named @who, said on @rd that it started (one byte), or the
 * test fails. Needs lib.h. */
static inline void ns_started(int rd, pid_t s, const char *who)
{
	char c;
	if (s < 0 || test_read_within(rd, &c, 1, 5000))
		test_fail("%s did not start (%#x)", who, test_reap(s, true, 5));
}

/* Child @s (@who, one letter) told to end (SIGUSR1): its report on @rd said ok and it
 * exited 0, or the test fails (after the restore: TEST_CHECK). */
static inline void ns_finish(int rd, pid_t s, const char *who)
{
	char why[NS_MSG + 64];
	kill(s, SIGUSR1);
	TEST_CHECK(!ns_collect(rd, who, why, sizeof(why)), "%s", why);
	TEST_CHECK(test_reap(s, false, 5) == 0, "%s did not end well", who);
}

/* SIGUSR1 blocked (before the children are forked: each waits for it, ns_wait_usr1). */
static inline void ns_block_usr1(void)
{
	sigset_t set;
	sigemptyset(&set);
	sigaddset(&set, SIGUSR1);
	sigprocmask(SIG_BLOCK, &set, NULL);
}

/* Wait for SIGUSR1 (blocked by the caller: ns_block_usr1). */
static inline void ns_wait_usr1(void)
{
	sigset_t set;
	int sig;
	sigemptyset(&set);
	sigaddset(&set, SIGUSR1);
	sigwait(&set, &sig);
}

#endif
