// stasis-test: timeout=30 needs=root
// stasis-test: rootless-known=the test cannot create or join a cgroup: none is delegated to
//   the user
// stasis-test: uns-known=the same in the uns container: no cgroup is delegated to its root
/* Cgroup membership: the task moves itself into a cgroup of its own in the pids (v1)
 * hierarchy and in cgroup v2 when mounted; after restore /proc/self/cgroup is the same. */
#include "lib.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static char dirs[2][256];
static int ndirs;

static int join(const char *mnt)
{
	struct stat st;
	if (stat(mnt, &st) < 0)
		return 0; /* hierarchy not mounted here */
	snprintf(dirs[ndirs], sizeof(dirs[ndirs]), "%s/stasis-test-%d", mnt, (int)getpid());
	if (mkdir(dirs[ndirs], 0755) < 0 && errno != EEXIST)
		return -1;
	char procs[300];
	snprintf(procs, sizeof(procs), "%s/cgroup.procs", dirs[ndirs]);
	ndirs++;
	int fd = open(procs, O_WRONLY);
	char pid[32];
	int n = snprintf(pid, sizeof(pid), "%d", (int)getpid());
	int ok = fd >= 0 && write(fd, pid, (size_t)n) == n;
	if (fd >= 0)
		close(fd);
	return ok ? 1 : -1;
}

static void leave_and_clean(void)
{
	const char *roots[2] = { "/sys/fs/cgroup/pids/cgroup.procs",
				 "/sys/fs/cgroup/unified/cgroup.procs" };
	char pid[32];
	int n = snprintf(pid, sizeof(pid), "%d", (int)getpid());
	for (int i = 0; i < 2; i++) {
		int fd = open(roots[i], O_WRONLY);
		if (fd >= 0) {
			(void)!write(fd, pid, (size_t)n);
			close(fd);
		}
	}
	for (int i = 0; i < ndirs; i++)
		rmdir(dirs[i]);
}

static void read_cgroups(char *buf, size_t len)
{
	int fd = open("/proc/self/cgroup", O_RDONLY);
	ssize_t n = fd >= 0 ? read(fd, buf, len - 1) : -1;
	buf[n > 0 ? n : 0] = '\0';
	if (fd >= 0)
		close(fd);
}

int main(int argc, char **argv)
{
	char before[4096], after[4096];
	test_init(argc, argv);
	int a = join("/sys/fs/cgroup/pids");
	int b = join("/sys/fs/cgroup/unified");
	if (a < 0 || b < 0 || a + b == 0) {
		leave_and_clean();
		test_fail("cannot join a cgroup: %s", strerror(errno));
	}
	read_cgroups(before, sizeof(before));
	TEST_CHECK(strstr(before, "stasis-test-") != NULL, "not in the test cgroup: %s", before);
	test_ready();
	test_wait();
	if (test_sabotage())
		leave_and_clean();
	read_cgroups(after, sizeof(after));
	bool same = !strcmp(before, after);
	leave_and_clean();
	TEST_CHECK(same, "cgroups differ after restore:\n%s---\n%s", before, after);
	test_pass();
}
