// stasis-test: timeout=30
/* Abstract unix names across processes (a supervisor and its worker talking over an
 * abstract socket, as in a container): the root listens on an abstract name and binds a
 * datagram socket to another; its forked child connects to the listener (the root
 * accepts, data queued both ways) and sends a datagram from its own abstract-bound
 * socket. After the restore: every socket is in its task's network namespace (listed in
 * /proc/self/net/unix, which shows the sockets of the reader's namespace: in the ns and
 * uns flavors the tree's own), the names and queued data are back, the datagram names its
 * sender, and the listener takes a new connection from the child. */
#include "lib.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

static char tag[32];
static int to_child[2], to_root[2];

static socklen_t mkaddr(struct sockaddr_un *a, const char *leaf)
{
	memset(a, 0, sizeof(*a));
	a->sun_family = AF_UNIX;
	int n = snprintf(a->sun_path + 1, sizeof(a->sun_path) - 1, "%s.%s", tag, leaf);
	return (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 + (size_t)n);
}

static int bound(int type, const char *leaf)
{
	struct sockaddr_un a;
	socklen_t l = mkaddr(&a, leaf);
	int s = socket(AF_UNIX, type | SOCK_CLOEXEC, 0);
	TEST_CHECK(s >= 0 && !bind(s, (struct sockaddr *)&a, l), "bind @%s.%s: %d", tag, leaf,
		   errno);
	return s;
}

static int connected(const char *leaf)
{
	struct sockaddr_un a;
	socklen_t l = mkaddr(&a, leaf);
	int s = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	TEST_CHECK(s >= 0 && !connect(s, (struct sockaddr *)&a, l), "connect @%s.%s: %d", tag,
		   leaf, errno);
	return s;
}

/* Is socket @fd listed in /proc/self/net/unix (the sockets of our network namespace)? */
static bool listed(int fd)
{
	struct stat st;
	char line[512];
	unsigned long ino;
	TEST_CHECK(!fstat(fd, &st), "fstat: %d", errno);
	FILE *f = fopen("/proc/self/net/unix", "r");
	TEST_CHECK(f != NULL, "open /proc/self/net/unix: %d", errno);
	bool found = false;
	/* "Num RefCount Protocol Flags Type St Inode [Path]" */
	while (!found && fgets(line, sizeof(line), f))
		found = sscanf(line, "%*s %*s %*s %*s %*s %*s %lu", &ino) == 1 && ino == st.st_ino;
	fclose(f);
	return found;
}

static void expect(int fd, const char *want, const char *who)
{
	char buf[32] = { 0 };
	TEST_CHECK(test_read_within(fd, buf, strlen(want), 5000) == 0 && !strcmp(buf, want),
		   "%s read \"%s\", wanted \"%s\"", who, buf, want);
}

static __attribute__((noreturn)) void child(void)
{
	int c = connected("listen");
	int d = bound(SOCK_DGRAM, "child-dgram");
	struct sockaddr_un a;
	socklen_t l = mkaddr(&a, "root-dgram");
	TEST_CHECK(write(c, "to-root", 7) == 7, "child: write: %d", errno);
	TEST_CHECK(sendto(d, "dgram", 5, 0, (struct sockaddr *)&a, l) == 5, "child: sendto: %d",
		   errno);
	test_say(to_root[1], 'r');
	TEST_CHECK(test_hear(to_child[0]) == 'c', "child: no command");
	TEST_CHECK(listed(c) && listed(d), "child: its sockets are not in its network namespace");
	expect(c, "to-child", "child");
	int c2 = connected("listen");
	TEST_CHECK(write(c2, "again", 5) == 5, "child: write: %d", errno);
	test_say(to_root[1], 'k');
	TEST_CHECK(test_hear(to_child[0]) == 'q', "child: no end");
	_exit(0);
}

int main(int argc, char **argv)
{
	test_init(argc, argv);
	snprintf(tag, sizeof(tag), "stasis-abs-tree-%d", getpid());
	TEST_CHECK(!pipe2(to_child, O_CLOEXEC) && !pipe2(to_root, O_CLOEXEC), "pipes: %d", errno);
	int l = bound(SOCK_STREAM, "listen");
	int d = bound(SOCK_DGRAM, "root-dgram");
	TEST_CHECK(!listen(l, 8), "listen: %d", errno);
	pid_t pid = fork();
	TEST_CHECK(pid >= 0, "fork: %d", errno);
	if (pid == 0)
		child();
	TEST_CHECK(test_hear(to_root[0]) == 'r', "child not ready");
	int a = accept4(l, NULL, NULL, SOCK_CLOEXEC);
	TEST_CHECK(a >= 0 && write(a, "to-child", 8) == 8, "accept/write: %d", errno);

	test_ready();
	test_wait();
	if (test_sabotage()) {
		char x[8];
		TEST_CHECK(read(a, x, 1) == 1, "sabotage read: %d", errno);
	}

	TEST_CHECK(listed(l) && listed(d) && listed(a),
		   "the root's sockets are not in its network namespace");
	expect(a, "to-root", "root");
	char buf[16] = { 0 };
	struct sockaddr_un from, want;
	socklen_t fl = sizeof(from), wl = mkaddr(&want, "child-dgram");
	TEST_CHECK(recvfrom(d, buf, sizeof(buf), MSG_DONTWAIT, (struct sockaddr *)&from, &fl) == 5 &&
			   !strcmp(buf, "dgram") && fl == wl && !memcmp(&from, &want, wl),
		   "the datagram: \"%s\" from a name of %u bytes", buf, fl);
	test_say(to_child[1], 'c');
	TEST_CHECK(test_hear(to_root[0]) == 'k', "the child's checks failed");
	int a2 = accept4(l, NULL, NULL, SOCK_CLOEXEC);
	TEST_CHECK(a2 >= 0, "accept after the restore: %d", errno);
	expect(a2, "again", "root");
	test_say(to_child[1], 'q');
	TEST_CHECK(test_reap(pid, false, 10) == 0, "the child exited badly");
	test_pass();
}
