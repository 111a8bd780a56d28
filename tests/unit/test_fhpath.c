/* fh_path (src/proc/fhpath.c): a file reached through a mount that was detached is named
 * again in this process's view through its file handle. */
#include <fcntl.h>
#include <sched.h>
#include <stdlib.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/log.h"
#include "proc/fhpath.h"
#include "unit.h"

static void test_plain(void)
{
	int fd = open("/etc/passwd", O_PATH | O_CLOEXEC);
	char *p = NULL;
	CHECK(fd >= 0);
	int r = fh_path(fd, &p);
	if (r == -EPERM || r == -EOPNOTSUPP) {
		close(fd);
		UNIT_SKIP("no file handles here (%s)", strerror(-r));
	}
	CHECK_EQ(r, 0);
	CHECK_STREQ(p, "/etc/passwd");
	free(p);
	close(fd);
}

/* A bind of a directory, a file opened through it, the bind detached: the kernel names
 * the file relative to the detached mount; fh_path finds the real path. */
static void test_detached(void)
{
	char dir[] = "/tmp/stasis-fhpath-XXXXXX", sub[64], mnt[64], file[96], via[96];
	CHECK(mkdtemp(dir) != NULL);
	snprintf(sub, sizeof(sub), "%s/sub", dir);
	snprintf(mnt, sizeof(mnt), "%s/mnt", dir);
	snprintf(file, sizeof(file), "%s/sub/f", dir);
	snprintf(via, sizeof(via), "%s/mnt/f", dir);
	CHECK(!mkdir(sub, 0700) && !mkdir(mnt, 0700));
	int w = open(file, O_CREAT | O_WRONLY | O_CLOEXEC, 0600);
	CHECK(w >= 0);
	close(w);
	if (unshare(CLONE_NEWNS) || mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) ||
	    mount(sub, mnt, NULL, MS_BIND, NULL))
		UNIT_SKIP("cannot make a mount namespace (%s)", strerror(errno));
	int fd = open(via, O_RDONLY | O_CLOEXEC);
	CHECK(fd >= 0);
	CHECK(!umount2(mnt, MNT_DETACH));
	char link[64], shown[256];
	snprintf(link, sizeof(link), "/proc/self/fd/%d", fd);
	ssize_t n = readlink(link, shown, sizeof(shown) - 1);
	CHECK(n > 0);
	shown[n > 0 ? n : 0] = '\0';
	CHECK_STREQ(shown, "/f"); /* the kernel's name: relative to the detached mount */
	char *p = NULL;
	CHECK_EQ(fh_path(fd, &p), 0);
	CHECK_STREQ(p, file);
	free(p);
	close(fd);
	unlink(file);
	rmdir(sub);
	rmdir(mnt);
	rmdir(dir);
}

int main(void)
{
	if (log_init(NULL, LOG_WARN))
		return 1;
	RUN(test_plain);
	RUN(test_detached);
	return unit_done();
}
