// stasis-test: timeout=30
/* Descriptors of unusual kinds of opening: an O_PATH fd of a file and one of a directory
 * (no owner can be read from them: fcntl F_GETOWN_EX fails with EBADF), an O_DIRECT fd
 * (where the filesystem allows it), and files of /proc: /proc/self/status and the
 * /proc/self directory (links naming the task's own pid). After the restore: F_GETFL and
 * the paths are the same, the O_PATH fds still name their inodes (fstat, and a file
 * opened relative to the directory one), the O_DIRECT fd reads, and the /proc ones
 * describe the task itself. */
#include "lib.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

enum { F_PATH, F_PATHDIR, F_DIRECT, F_STATUS, F_PROCDIR, NFD };
static const char *const names[NFD] = { "O_PATH file", "O_PATH dir", "O_DIRECT",
					"/proc/self/status", "/proc/self" };

static void link_of(int fd, char *buf, size_t len)
{
	char p[64];
	snprintf(p, sizeof(p), "/proc/self/fd/%d", fd);
	ssize_t n = readlink(p, buf, len - 1);
	buf[n > 0 ? n : 0] = '\0';
}

/* the Pid: line of a status text read through @fd */
static long pid_in_status(int fd)
{
	char buf[4096];
	ssize_t n = pread(fd, buf, sizeof(buf) - 1, 0);
	if (n <= 0)
		return -1;
	buf[n] = '\0';
	const char *p = strstr(buf, "\nPid:");
	return p ? strtol(p + 5, NULL, 10) : -1;
}

int main(int argc, char **argv)
{
	int fds[NFD], fl[NFD];
	char links[NFD][256], now[256];
	struct stat st_file, st_dir, st;
	static char buf[8192] __attribute__((aligned(4096)));

	test_init(argc, argv);
	memset(buf, 'd', sizeof(buf));
	int w = open("direct.bin", O_WRONLY | O_CREAT | O_TRUNC, 0644);
	if (w < 0 || write(w, buf, sizeof(buf)) != (ssize_t)sizeof(buf) || close(w) < 0)
		test_fail("direct.bin: %s", strerror(errno));
	if (mkdir("sub", 0755) < 0 || close(open("sub/inner", O_CREAT | O_WRONLY, 0644)) < 0)
		test_fail("sub/inner: %s", strerror(errno));
	fds[F_PATH] = open("direct.bin", O_PATH);
	fds[F_PATHDIR] = open("sub", O_PATH | O_DIRECTORY);
	fds[F_DIRECT] = open("direct.bin", O_RDONLY | O_DIRECT);
	bool direct = fds[F_DIRECT] >= 0;
	if (!direct) /* a filesystem without O_DIRECT (EINVAL): the rest still counts */
		fds[F_DIRECT] = open("direct.bin", O_RDONLY);
	fds[F_STATUS] = open("/proc/self/status", O_RDONLY);
	fds[F_PROCDIR] = open("/proc/self", O_RDONLY | O_DIRECTORY);
	for (int i = 0; i < NFD; i++) {
		if (fds[i] < 0)
			test_fail("open %s: %s", names[i], strerror(errno));
		fl[i] = fcntl(fds[i], F_GETFL);
		link_of(fds[i], links[i], sizeof(links[i]));
	}
	if (fstat(fds[F_PATH], &st_file) < 0 || fstat(fds[F_PATHDIR], &st_dir) < 0)
		test_fail("fstat: %s", strerror(errno));
	test_ready();
	test_wait();

	if (test_sabotage()) {
		close(fds[F_PATH]);
		fds[F_PATH] = open("direct.bin", O_RDONLY);
	}
	for (int i = 0; i < NFD; i++) {
		link_of(fds[i], now, sizeof(now));
		TEST_CHECK(fcntl(fds[i], F_GETFL) == fl[i], "%s: F_GETFL %#x -> %#x", names[i], fl[i],
			   fcntl(fds[i], F_GETFL));
		TEST_CHECK(!strcmp(now, links[i]), "%s: %s -> %s", names[i], links[i], now);
	}
	TEST_CHECK(fstat(fds[F_PATH], &st) == 0 && st.st_ino == st_file.st_ino &&
			   st.st_dev == st_file.st_dev,
		   "the O_PATH fd names another file");
	TEST_CHECK(read(fds[F_PATH], buf, 1) < 0 && errno == EBADF, "the O_PATH fd reads");
	TEST_CHECK(fstat(fds[F_PATHDIR], &st) == 0 && st.st_ino == st_dir.st_ino,
		   "the O_PATH directory fd names another directory");
	int in = openat(fds[F_PATHDIR], "inner", O_RDONLY);
	TEST_CHECK(in >= 0, "openat through the O_PATH directory: %s", strerror(errno));
	TEST_CHECK(pread(fds[F_DIRECT], buf, 4096, 0) == 4096 && buf[0] == 'd',
		   "the %s fd does not read: %s", direct ? "O_DIRECT" : "plain", strerror(errno));
	TEST_CHECK(pid_in_status(fds[F_STATUS]) == getpid(), "/proc/self/status reads pid %ld",
		   pid_in_status(fds[F_STATUS]));
	int s2 = openat(fds[F_PROCDIR], "status", O_RDONLY);
	TEST_CHECK(s2 >= 0 && pid_in_status(s2) == getpid(), "/proc/self dir: status of pid %ld",
		   s2 >= 0 ? pid_in_status(s2) : -1L);
	test_pass();
}
