// stasis-test: timeout=30 needs=root
/* A read-only tmpfs with contents and a root of another owner and mode: in a mount
 * namespace of its own the test mounts a tmpfs (uid 1000, gid 1000, mode 0710), writes a
 * file into it and remounts it read-only (the superblock: `mount -o remount,ro`). After
 * restore the file is there with its data, the root has its owner and mode, and the
 * filesystem is still read-only (a write fails with EROFS, statvfs says ST_RDONLY). */
#include "lib.h"

#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#define DATA "read-only tmpfs data\n"

int main(int argc, char **argv)
{
	char buf[64] = "";
	struct stat st;
	struct statvfs sv;

	test_init(argc, argv);
	if (unshare(CLONE_NEWNS) < 0 || mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0)
		test_fail("mount namespace: %s", strerror(errno));
	if ((mkdir("ro", 0755) < 0 && errno != EEXIST) ||
	    mount("stasis-ro", "ro", "tmpfs", 0, "size=1m,mode=0710,uid=1000,gid=1000") < 0)
		test_fail("mount tmpfs: %s", strerror(errno));
	int fd = open("ro/f", O_WRONLY | O_CREAT | O_CLOEXEC, 0640);
	if (fd < 0 || write(fd, DATA, strlen(DATA)) != (ssize_t)strlen(DATA))
		test_fail("write ro/f: %s", strerror(errno));
	close(fd);
	if (mount(NULL, "ro", NULL, MS_REMOUNT | MS_RDONLY, NULL) < 0)
		test_fail("remount read-only: %s", strerror(errno));
	test_ready();
	test_wait();
	if (test_sabotage())
		(void)mount(NULL, "ro", NULL, MS_REMOUNT, NULL);
	fd = open("ro/f", O_RDONLY | O_CLOEXEC);
	TEST_CHECK(fd >= 0 && read(fd, buf, sizeof(buf) - 1) == (ssize_t)strlen(DATA) &&
			   !strcmp(buf, DATA),
		   "ro/f lost its data");
	if (fd >= 0)
		close(fd);
	TEST_CHECK(stat("ro", &st) == 0 && st.st_uid == 1000 && st.st_gid == 1000 &&
			   (st.st_mode & 07777) == 0710,
		   "the tmpfs root is %u:%u %o, not 1000:1000 710", st.st_uid, st.st_gid,
		   st.st_mode & 07777);
	TEST_CHECK(statvfs("ro", &sv) == 0 && (sv.f_flag & ST_RDONLY), "the tmpfs is writable");
	fd = open("ro/g", O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
	TEST_CHECK(fd < 0 && errno == EROFS, "a file was created in the read-only tmpfs (%s)",
		   fd < 0 ? strerror(errno) : "no error");
	test_pass();
}
