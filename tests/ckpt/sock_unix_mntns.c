// stasis-test: timeout=30 needs=root
/* Unix sockets bound to paths that only the task's mount namespace shows: the test
 * unshares its mount namespace (/ made private), mounts a tmpfs on t in its directory and
 * binds a SOCK_DGRAM socket (one datagram queued from an unbound socket) and a listening
 * SOCK_STREAM socket there, by absolute paths. The dumper cannot see those files; the
 * restored task binds them again in its rebuilt mount tree. After the restore: the names,
 * the socket files on the task's tmpfs, the datagram, and a new connection accepted. */
#include "lib.h"

#include <errno.h>
#include <poll.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/un.h>
#include <unistd.h>

static char cwd[80];

static int statfs_is_tmpfs(const char *p)
{
	struct statfs sf;
	return statfs(p, &sf) ? -1 : sf.f_type == 0x01021994;
}

static socklen_t mkaddr(struct sockaddr_un *a, const char *leaf)
{
	memset(a, 0, sizeof(*a));
	a->sun_family = AF_UNIX;
	snprintf(a->sun_path, sizeof(a->sun_path), "%s/t/%s", cwd, leaf);
	return (socklen_t)(offsetof(struct sockaddr_un, sun_path) + strlen(a->sun_path) + 1);
}

static int bound(int type, const char *leaf)
{
	struct sockaddr_un a;
	socklen_t l = mkaddr(&a, leaf);
	int fd = socket(AF_UNIX, type, 0);
	if (fd < 0 || bind(fd, (struct sockaddr *)&a, l))
		test_fail("bind %s: %s", a.sun_path, strerror(errno));
	return fd;
}

static void check_file(int fd, const char *leaf, dev_t dev)
{
	struct sockaddr_un a, b;
	socklen_t l = mkaddr(&a, leaf), bl = sizeof(b);
	struct stat st;
	if (getsockname(fd, (struct sockaddr *)&b, &bl) || bl != l || strcmp(a.sun_path, b.sun_path))
		test_fail("name of %s is '%s'", leaf, b.sun_path);
	if (stat(a.sun_path, &st) || !S_ISSOCK(st.st_mode) || st.st_dev != dev)
		test_fail("%s is not a socket file on the task's tmpfs", a.sun_path);
}

int main(int argc, char **argv)
{
	struct stat t;
	test_init(argc, argv);
	if (!getcwd(cwd, sizeof(cwd)) || strlen(cwd) > 60)
		test_fail("cwd too long for socket paths");
	if (unshare(CLONE_NEWNS) < 0 || mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0)
		test_fail("unshare/private: %s", strerror(errno));
	if (mkdir("t", 0755) < 0 && errno != EEXIST)
		test_fail("mkdir: %s", strerror(errno));
	if (mount("stasis-t", "t", "tmpfs", 0, "size=1m") < 0 || statfs_is_tmpfs("t") != 1)
		test_fail("mount tmpfs: %s", strerror(errno));
	int dg = bound(SOCK_DGRAM, "dg"), ls = bound(SOCK_STREAM, "ls");
	int anon = socket(AF_UNIX, SOCK_DGRAM, 0);
	struct sockaddr_un a;
	socklen_t al = mkaddr(&a, "dg");
	if (anon < 0 || listen(ls, 3) || sendto(anon, "in-ns", 5, 0, (struct sockaddr *)&a, al) != 5)
		test_fail("set up: %s", strerror(errno));

	test_ready();
	if (test_sabotage())
		(void)recv(dg, &a, 1, MSG_DONTWAIT);
	test_wait();

	/* the restored tmpfs (a new device number) */
	if (stat("t", &t) || statfs_is_tmpfs("t") != 1)
		test_fail("t is not a tmpfs after the restore");
	check_file(dg, "dg", t.st_dev);
	check_file(ls, "ls", t.st_dev);
	char buf[16];
	if (recv(dg, buf, sizeof(buf), MSG_DONTWAIT) != 5 || memcmp(buf, "in-ns", 5))
		test_fail("the datagram is lost");
	al = mkaddr(&a, "ls");
	int c = socket(AF_UNIX, SOCK_STREAM, 0);
	struct pollfd p = { .fd = ls, .events = POLLIN };
	if (c < 0 || connect(c, (struct sockaddr *)&a, al) || poll(&p, 1, 5000) != 1)
		test_fail("connect to the listener: %s", strerror(errno));
	int s = accept(ls, NULL, NULL);
	if (s < 0 || send(c, "x", 1, 0) != 1 || recv(s, buf, 1, 0) != 1)
		test_fail("the accepted connection does not carry data");
	test_pass();
}
