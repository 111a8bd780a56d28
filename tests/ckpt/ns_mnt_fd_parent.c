// stasis-test: timeout=30 needs=root
/* A file opened before a mount namespace was made stays on the mount of the namespace it
 * was opened in (zdtm's mntns_open). The root R opens "f" (fd A), then its child C is
 * cloned with CLONE_NEWNS (/ made private) and opens "f" again (fd B). After the restore,
 * in C: fd A's mount (fdinfo mnt_id) is one of R's mountinfo and none of C's, fd B's one
 * of C's; both read the file's contents; R's own fd of "f" is on its mount too. */
#include "lib.h"

#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/wait.h>
#include <unistd.h>

#define MSG 160

static int mnt_of(int fd)
{
	char path[64], buf[512];
	snprintf(path, sizeof(path), "/proc/self/fdinfo/%d", fd);
	FILE *f = fopen(path, "r");
	int id = -1;
	while (f && fgets(buf, sizeof(buf), f))
		if (sscanf(buf, "mnt_id: %d", &id) == 1)
			break;
	if (f)
		fclose(f);
	return id;
}

/* is mount @id in /proc/@pid/mountinfo? */
static bool has_mount(pid_t pid, int id)
{
	char path[64], buf[4096];
	snprintf(path, sizeof(path), "/proc/%d/mountinfo", (int)pid);
	FILE *f = fopen(path, "r");
	bool found = false;
	int m;
	while (f && !found && fgets(buf, sizeof(buf), f))
		found = sscanf(buf, "%d ", &m) == 1 && m == id;
	if (f)
		fclose(f);
	return found;
}

static bool reads(int fd)
{
	char buf[8] = "";
	return pread(fd, buf, 4, 0) == 4 && !memcmp(buf, "data", 4);
}

static int child_c(int fd_a, int wr, pid_t r)
{
	const char *why = NULL;
	sigset_t set;
	int sig, fd_b = -1;
	if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) || (fd_b = open("f", O_RDONLY)) < 0)
		_exit(20);
	(void)!write(wr, "c", 1);
	sigemptyset(&set);
	sigaddset(&set, SIGUSR1);
	sigwait(&set, &sig);
	int a = mnt_of(fd_a), b = mnt_of(fd_b);
	if (a < 0 || b < 0 || a == b)
		why = "fd A and fd B are on the same mount";
	else if (!has_mount(r, a) || has_mount(getpid(), a))
		why = "fd A is not on a mount of R's namespace";
	else if (!has_mount(getpid(), b))
		why = "fd B is not on a mount of C's namespace";
	else if (!reads(fd_a) || !reads(fd_b))
		why = "a fd does not read the file";
	char buf[MSG];
	snprintf(buf, sizeof(buf), "%s", why ? why : "ok");
	(void)!write(wr, buf, sizeof(buf));
	_exit(0);
}

static char stack[64 * 1024] __attribute__((aligned(16)));
static int c_fd, c_wr;
static pid_t c_r;

static int c_entry(void *arg)
{
	(void)arg;
	return child_c(c_fd, c_wr, c_r);
}

int main(int argc, char **argv)
{
	int res[2];
	sigset_t set;
	test_init(argc, argv);
	int fd = open("f", O_RDWR | O_CREAT | O_TRUNC, 0600);
	if (fd < 0 || write(fd, "data", 4) != 4 || pipe(res))
		test_fail("f: %s", strerror(errno));
	sigemptyset(&set);
	sigaddset(&set, SIGUSR1);
	sigprocmask(SIG_BLOCK, &set, NULL);
	c_fd = fd, c_wr = res[1], c_r = getpid();
	pid_t c = clone(c_entry, stack + sizeof(stack), CLONE_NEWNS | SIGCHLD, NULL);
	char ch;
	if (c < 0 || test_read_within(res[0], &ch, 1, 5000))
		test_fail("C did not start (%#x)", c < 0 ? errno : test_reap(c, true, 5));

	test_ready();
	test_wait();

	if (test_sabotage())
		kill(c, SIGKILL);
	TEST_CHECK(has_mount(getpid(), mnt_of(fd)) && reads(fd), "R's fd is not on its mount");
	kill(c, SIGUSR1);
	char buf[MSG + 1] = "";
	TEST_CHECK(test_read_within(res[0], buf, MSG, 5000) == 0, "C did not report");
	TEST_CHECK(!strcmp(buf, "ok"), "C: %s", buf);
	TEST_CHECK(test_reap(c, false, 5) == 0, "C did not end well");
	test_pass();
}
