// stasis-test: timeout=30
/* Regular file descriptors: a read/write fd at an offset (and a dup of it sharing the
 * offset), an O_APPEND fd, an O_RDONLY|O_CLOEXEC fd, a directory fd, /dev/null and
 * /dev/zero. Offsets, F_GETFL, F_GETFD and the paths are unchanged and the fds work. */
#include "lib.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#define FILE_SIZE 65536
#define SEED 0x0FF5E70FF5E7ull

enum { F_RW, F_DUP, F_APP, F_RO, F_DIR, F_NULL, F_ZERO, NFD };
static const char *const names[NFD] = { "rw", "dup", "append", "rdonly-cloexec", "dir",
					"/dev/null", "/dev/zero" };

struct fdstate {
	int fl, fd_flags;
	off_t off;
	char path[256];
};

static void snap(const int *fds, struct fdstate *s)
{
	char link[64];
	int i;

	for (i = 0; i < NFD; i++) {
		s[i].fl = fcntl(fds[i], F_GETFL);
		s[i].fd_flags = fcntl(fds[i], F_GETFD);
		s[i].off = lseek(fds[i], 0, SEEK_CUR);
		snprintf(link, sizeof(link), "/proc/self/fd/%d", fds[i]);
		memset(s[i].path, 0, sizeof(s[i].path));
		if (readlink(link, s[i].path, sizeof(s[i].path) - 1) < 0)
			snprintf(s[i].path, sizeof(s[i].path), "readlink failed: %s", strerror(errno));
	}
}

static int xopen(const char *path, int flags)
{
	int fd = open(path, flags, 0644);

	if (fd < 0)
		test_fail("open %s: %s", path, strerror(errno));
	return fd;
}

int main(int argc, char **argv)
{
	static uint64_t data[FILE_SIZE / 8];
	static struct fdstate before[NFD], after[NFD];
	unsigned char buf[256], zero[256];
	char *bytes = (char *)data;
	struct stat st, st2;
	int fds[NFD], i;

	test_init(argc, argv);
	test_fill(data, sizeof(data), SEED);
	fds[F_RW] = xopen("data.bin", O_RDWR | O_CREAT | O_TRUNC);
	if (write(fds[F_RW], data, sizeof(data)) != (ssize_t)sizeof(data))
		test_fail("write data.bin: %s", strerror(errno));
	lseek(fds[F_RW], 12345, SEEK_SET);
	/* dup to a high fd number: the number and the shared description must survive */
	fds[F_DUP] = fcntl(fds[F_RW], F_DUPFD, 100);
	fds[F_APP] = xopen("data.bin", O_WRONLY | O_APPEND);
	if (write(fds[F_APP], "tail", 4) != 4)
		test_fail("append: %s", strerror(errno));
	fds[F_RO] = xopen("data.bin", O_RDONLY | O_CLOEXEC);
	lseek(fds[F_RO], 777, SEEK_SET);
	fds[F_DIR] = xopen(".", O_RDONLY | O_DIRECTORY);
	fds[F_NULL] = xopen("/dev/null", O_WRONLY);
	fds[F_ZERO] = xopen("/dev/zero", O_RDONLY);
	snap(fds, before);
	test_ready();
	test_wait();

	if (test_sabotage())
		lseek(fds[F_RO], 778, SEEK_SET);
	snap(fds, after);
	for (i = 0; i < NFD; i++) {
		TEST_CHECK(before[i].fl == after[i].fl, "%s (fd %d): F_GETFL %#x -> %#x", names[i],
			   fds[i], before[i].fl, after[i].fl);
		TEST_CHECK(before[i].fd_flags == after[i].fd_flags, "%s (fd %d): F_GETFD %d -> %d",
			   names[i], fds[i], before[i].fd_flags, after[i].fd_flags);
		TEST_CHECK(before[i].off == after[i].off, "%s (fd %d): offset %lld -> %lld", names[i],
			   fds[i], (long long)before[i].off, (long long)after[i].off);
		TEST_CHECK(strcmp(before[i].path, after[i].path) == 0, "%s (fd %d): path %s -> %s",
			   names[i], fds[i], before[i].path, after[i].path);
	}
	/* the rw fd reads the right data from its offset; its dup shares the offset */
	TEST_CHECK(read(fds[F_RW], buf, 100) == 100, "read rw: %s", strerror(errno));
	TEST_CHECK(memcmp(buf, bytes + 12345, 100) == 0, "rw fd read wrong data");
	TEST_CHECK(lseek(fds[F_DUP], 0, SEEK_CUR) == 12445,
		   "dup'ed fd no longer shares the offset (at %lld)",
		   (long long)lseek(fds[F_DUP], 0, SEEK_CUR));
	TEST_CHECK(read(fds[F_RO], buf, 50) == 50 && memcmp(buf, bytes + 777, 50) == 0,
		   "rdonly fd read wrong data");
	TEST_CHECK(write(fds[F_RO], "x", 1) < 0, "write to the O_RDONLY fd succeeded");
	/* the append fd appends */
	TEST_CHECK(write(fds[F_APP], "more", 4) == 4, "append write: %s", strerror(errno));
	TEST_CHECK(fstat(fds[F_RW], &st) == 0 && st.st_size == FILE_SIZE + 8,
		   "file size %lld after append, expected %d", (long long)st.st_size, FILE_SIZE + 8);
	TEST_CHECK(pread(fds[F_RW], buf, 8, FILE_SIZE) == 8 && memcmp(buf, "tailmore", 8) == 0,
		   "appended data wrong");
	/* the directory fd is the cwd */
	TEST_CHECK(fstat(fds[F_DIR], &st) == 0 && stat(".", &st2) == 0 && st.st_ino == st2.st_ino &&
			   st.st_dev == st2.st_dev,
		   "directory fd is not the test directory");
	TEST_CHECK(fstatat(fds[F_DIR], "data.bin", &st2, 0) == 0, "fstatat via dir fd: %s",
		   strerror(errno));
	TEST_CHECK(fstat(fds[F_NULL], &st) == 0 && S_ISCHR(st.st_mode) &&
			   st.st_rdev == makedev(1, 3),
		   "/dev/null fd is not /dev/null");
	TEST_CHECK(write(fds[F_NULL], buf, 10) == 10, "write /dev/null: %s", strerror(errno));
	memset(zero, 0, sizeof(zero));
	memset(buf, 1, sizeof(buf));
	TEST_CHECK(fstat(fds[F_ZERO], &st) == 0 && S_ISCHR(st.st_mode) &&
			   st.st_rdev == makedev(1, 5),
		   "/dev/zero fd is not /dev/zero");
	TEST_CHECK(read(fds[F_ZERO], buf, sizeof(buf)) == (ssize_t)sizeof(buf) &&
			   memcmp(buf, zero, sizeof(buf)) == 0,
		   "read /dev/zero failed");
	test_pass();
}
