// stasis-test: timeout=30
// stasis-test: nonroot-known=a task is made with the dead process's pid (clone3 set_tid),
//   which needs CAP_SYS_ADMIN over its pid namespace
/* Files of the /proc directory of a child that was killed and reaped while they were
 * open: its mountinfo (which still shows the mount table the child had: its holder's),
 * its status, its cmdline (a dead task.s files read nothing),
 * and its directory (its link says "(deleted)"). After the restore: the same links and
 * flags; the mountinfo reads what the holder's own mountinfo reads; the status read fails
 * with ESRCH, the cmdline reads nothing, the directory opens nothing (ESRCH). */
#include "lib.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

enum { F_MOUNTS, F_STATUS, F_CMDLINE, F_DIR, NFD };
static const char *const names[NFD] = { "mountinfo", "status", "cmdline", "directory" };

static void link_of(int fd, char *buf, size_t len)
{
	char p[64];
	snprintf(p, sizeof(p), "/proc/self/fd/%d", fd);
	ssize_t n = readlink(p, buf, len - 1);
	buf[n > 0 ? n : 0] = '\0';
}

static char *slurp(int fd, bool by_pread)
{
	static char buf[1 << 18];
	size_t len = 0;
	ssize_t n;
	while ((n = by_pread ? pread(fd, buf + len, sizeof(buf) - 1 - len, (off_t)len)
			     : read(fd, buf + len, sizeof(buf) - 1 - len)) > 0)
		len += (size_t)n;
	buf[len] = 0;
	return strdup(buf);
}

int main(int argc, char **argv)
{
	int fds[NFD], fl[NFD];
	char links[NFD][256], now[256], path[64];

	test_init(argc, argv);
	pid_t c = fork();
	if (c < 0)
		test_fail("fork: %s", strerror(errno));
	if (!c) {
		for (;;)
			pause();
	}
	snprintf(path, sizeof(path), "/proc/%d/mountinfo", c);
	fds[F_MOUNTS] = open(path, O_RDONLY);
	snprintf(path, sizeof(path), "/proc/%d/status", c);
	fds[F_STATUS] = open(path, O_RDONLY | O_NONBLOCK);
	snprintf(path, sizeof(path), "/proc/%d/cmdline", c);
	fds[F_CMDLINE] = open(path, O_RDONLY);
	snprintf(path, sizeof(path), "/proc/%d", c);
	fds[F_DIR] = open(path, O_RDONLY | O_DIRECTORY);
	kill(c, SIGKILL);
	if (waitpid(c, NULL, 0) != c)
		test_fail("waitpid: %s", strerror(errno));
	for (int i = 0; i < NFD; i++) {
		if (fds[i] < 0)
			test_fail("open %s: %s", names[i], strerror(errno));
		fl[i] = fcntl(fds[i], F_GETFL);
		link_of(fds[i], links[i], sizeof(links[i]));
	}
	test_ready();
	test_wait();

	if (test_sabotage()) {
		close(fds[F_STATUS]);
		fds[F_STATUS] = open("/proc/self/status", O_RDONLY | O_NONBLOCK);
	}
	for (int i = 0; i < NFD; i++) {
		link_of(fds[i], now, sizeof(now));
		TEST_CHECK(fcntl(fds[i], F_GETFL) == fl[i], "%s: F_GETFL %#x -> %#x", names[i],
			   fl[i], fcntl(fds[i], F_GETFL));
		TEST_CHECK(!strcmp(now, links[i]), "%s: %s -> %s", names[i], links[i], now);
	}
	TEST_CHECK(strstr(links[F_DIR], " (deleted)"), "the directory's link: %s", links[F_DIR]);
	int self = open("/proc/self/mountinfo", O_RDONLY);
	char *mine = slurp(self, false), *theirs = slurp(fds[F_MOUNTS], false);
	TEST_CHECK(mine[0] && !strcmp(mine, theirs),
		   "the dead child's mountinfo (%zu bytes) is not its parent's (%zu bytes)",
		   strlen(theirs), strlen(mine));
	char b[64];
	errno = 0;
	TEST_CHECK(read(fds[F_STATUS], b, sizeof(b)) < 0 && errno == ESRCH,
		   "the dead child's status reads (errno %d)", errno);
	TEST_CHECK(read(fds[F_CMDLINE], b, sizeof(b)) <= 0, "the dead child's cmdline reads");
	errno = 0;
	TEST_CHECK(openat(fds[F_DIR], "status", O_RDONLY) < 0 && errno == ESRCH,
		   "the dead child's directory opens its status (errno %d)", errno);
	test_pass();
}
