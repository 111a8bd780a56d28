// stasis-test: timeout=30 needs=root
// stasis-test: rootless-known=the test cannot create or join a cgroup: none is delegated to
//   the user
// stasis-test: uns-known=the same in the uns container: no cgroup is delegated to its root
/* The pidfd of a reaped child that exited in a cgroup (v2) other than stasis's: the task
 * moves into a cgroup of its own, forks a child that exits 3 and reaps it. After the
 * restore PIDFD_GET_INFO shows the same exit status and, as its cgroup of exit, the
 * task's own cgroup (stasis makes the process of a reaped pidfd exit in the holder's
 * cgroup). */
#include "lib.h"
#include "pidfdlib.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>


#define V2 "/sys/fs/cgroup/unified"

static char dir[256];

static void leave_and_clean(void)
{
	char pid[32];
	int n = snprintf(pid, sizeof(pid), "%d", (int)getpid());
	int fd = open(V2 "/cgroup.procs", O_WRONLY);
	if (fd >= 0) {
		(void)!write(fd, pid, (size_t)n);
		close(fd);
	}
	if (dir[0])
		rmdir(dir);
}

static int info(int fd, struct pidfd_info *pi)
{
	memset(pi, 0, sizeof(*pi));
	pi->mask = PIDFD_INFO_EXIT;
	return ioctl(fd, PIDFD_GET_INFO, pi);
}

int main(int argc, char **argv)
{
	struct stat st;
	test_init(argc, argv);
	if (stat(V2 "/cgroup.procs", &st))
		test_fail("no cgroup v2 at " V2);
	snprintf(dir, sizeof(dir), V2 "/stasis-test-pidfd-%d", (int)getpid());
	char procs[300], pid[32];
	snprintf(procs, sizeof(procs), "%s/cgroup.procs", dir);
	int n = snprintf(pid, sizeof(pid), "%d", (int)getpid());
	int fd = mkdir(dir, 0755) ? -1 : open(procs, O_WRONLY);
	if (fd < 0 || write(fd, pid, (size_t)n) != n) {
		leave_and_clean();
		test_fail("cannot join a cgroup of its own: %s", strerror(errno));
	}
	close(fd);

	pid_t c = fork();
	if (!c)
		_exit(3);
	int pfd = (int)syscall(SYS_pidfd_open, c, 0);
	int status;
	if (pfd < 0 || waitpid(c, &status, 0) != c) {
		leave_and_clean();
		test_fail("pidfd_open or waitpid: %s", strerror(errno));
	}
	int self = (int)syscall(SYS_pidfd_open, getpid(), 0);
	struct pidfd_info me, dead;
	if (info(self, &me) || info(pfd, &dead) || !(dead.mask & PIDFD_INFO_EXIT) ||
	    !(dead.mask & PIDFD_INFO_CGROUPID)) {
		leave_and_clean();
		printf("PIDFD_GET_INFO shows no exit information here\n");
		return 77;
	}
	if (dead.cgroupid != me.cgroupid || dead.exit_code != 3 << 8) {
		leave_and_clean();
		test_fail("before: exit %#x in cgroup %llu, own %llu", dead.exit_code,
			  (unsigned long long)dead.cgroupid, (unsigned long long)me.cgroupid);
	}
	close(self);

	test_ready();
	test_wait();
	if (test_sabotage()) {
		close(pfd);
		pfd = (int)syscall(SYS_pidfd_open, getpid(), 0);
	}
	self = (int)syscall(SYS_pidfd_open, getpid(), 0);
	int ra = info(self, &me), rb = info(pfd, &dead);
	leave_and_clean();
	TEST_CHECK(!ra && !rb, "PIDFD_GET_INFO: %s", strerror(errno));
	TEST_CHECK(dead.exit_code == 3 << 8 && (dead.mask & PIDFD_INFO_EXIT),
		   "exit status %#x (mask %#llx), not 0x300", dead.exit_code,
		   (unsigned long long)dead.mask);
	TEST_CHECK(dead.cgroupid == me.cgroupid, "exited in cgroup %llu, the task is in %llu",
		   (unsigned long long)dead.cgroupid, (unsigned long long)me.cgroupid);
	test_pass();
}
