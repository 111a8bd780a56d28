// stasis-test: timeout=30
/* Files made with O_TMPFILE (never named: MariaDB's temporary files, the write-then-linkat
 * pattern of atomic file creation): one O_RDWR with 64 KiB of data and a hole, read to an
 * offset, one O_WRONLY|O_APPEND. After the restore: the same status flags, offset and
 * contents, still no name in the directory, and each can still be given one with linkat
 * (through /proc/self/fd), the named file holding the contents. */
#include "lib.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define SIZE (64 * 1024)

static char buf[SIZE], back[SIZE];

static int entries(const char *dir)
{
	DIR *d = opendir(dir);
	int n = 0;
	for (struct dirent *e; d && (e = readdir(d));)
		n += strcmp(e->d_name, ".") && strcmp(e->d_name, "..");
	if (d)
		closedir(d);
	return d ? n : -1;
}

/* give @fd the name @name in the cwd: its contents must be @len bytes of @want */
static bool linkable(int fd, const char *name, const char *want, size_t len)
{
	char self[64];
	snprintf(self, sizeof(self), "/proc/self/fd/%d", fd);
	if (linkat(AT_FDCWD, self, AT_FDCWD, name, AT_SYMLINK_FOLLOW))
		return false;
	int r = open(name, O_RDONLY);
	bool ok = r >= 0 && pread(r, back, len, 0) == (ssize_t)len && !memcmp(back, want, len);
	if (r >= 0)
		close(r);
	unlink(name);
	return ok;
}

int main(int argc, char **argv)
{
	test_init(argc, argv);
	if (mkdir("d", 0700) && errno != EEXIST)
		test_fail("mkdir: %s", strerror(errno));
	test_fill(buf, SIZE, 7);
	memset(buf + 16384, 0, 8192);
	int a = open("d", O_TMPFILE | O_RDWR, 0640);
	int w = open("d", O_TMPFILE | O_WRONLY | O_APPEND, 0600);
	if (a < 0 || w < 0)
		test_fail("O_TMPFILE: %s", strerror(errno));
	if (pwrite(a, buf, 16384, 0) != 16384 || pwrite(a, buf + 24576, SIZE - 24576, 24576) !=
							 SIZE - 24576 ||
	    lseek(a, 1000, SEEK_SET) != 1000 || write(w, "appended", 8) != 8)
		test_fail("write: %s", strerror(errno));
	int fla = fcntl(a, F_GETFL), flw = fcntl(w, F_GETFL);

	test_ready();
	test_wait();

	if (test_sabotage())
		(void)!pwrite(a, "x", 1, 5);
	TEST_CHECK(fcntl(a, F_GETFL) == fla && fcntl(w, F_GETFL) == flw,
		   "status flags %#x %#x, were %#x %#x", fcntl(a, F_GETFL), fcntl(w, F_GETFL), fla,
		   flw);
	TEST_CHECK(lseek(a, 0, SEEK_CUR) == 1000, "offset %lld", (long long)lseek(a, 0, SEEK_CUR));
	TEST_CHECK(pread(a, back, SIZE, 0) == SIZE && !memcmp(back, buf, SIZE),
		   "the O_RDWR file's contents differ");
	TEST_CHECK(entries("d") == 0, "the directory has %d entries", entries("d"));
	TEST_CHECK(write(w, "+", 1) == 1, "the O_WRONLY|O_APPEND file: %s", strerror(errno));
	TEST_CHECK(linkable(a, "d/a", buf, SIZE), "the O_RDWR file cannot be linked: %s",
		   strerror(errno));
	TEST_CHECK(linkable(w, "d/w", "appended+", 9), "the O_WRONLY file cannot be linked: %s",
		   strerror(errno));
	test_pass();
}
