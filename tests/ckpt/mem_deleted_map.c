// stasis-test: timeout=30
// stasis-test: rootless-known=reading a mapped deleted file through /proc/PID/map_files needs
//   CAP_CHECKPOINT_RESTORE in the initial user namespace
/* Mappings of files that have no name: a memfd mapped shared twice (the two areas are one
 * file: a write through one is seen through the other), and an unlinked file mapped
 * privately and written. Contents survive; the sharing between the two memfd areas too. */
#include "lib.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#define SZ (64 * 1024)

int main(int argc, char **argv)
{
	test_init(argc, argv);
	int mfd = memfd_create("stasis-map", 0);
	int gfd = open("ghost-map.dat", O_RDWR | O_CREAT | O_TRUNC, 0600);
	if (mfd < 0 || gfd < 0 || ftruncate(mfd, SZ) < 0 || ftruncate(gfd, SZ) < 0)
		test_fail("setup: %s", strerror(errno));
	char *a = mmap(NULL, SZ, PROT_READ | PROT_WRITE, MAP_SHARED, mfd, 0);
	char *b = mmap(NULL, SZ, PROT_READ | PROT_WRITE, MAP_SHARED, mfd, 0);
	memset(a, 'm', SZ);
	(void)!pwrite(gfd, "filedata", 8, 100);
	char *g = mmap(NULL, SZ, PROT_READ | PROT_WRITE, MAP_PRIVATE, gfd, 0);
	if (a == MAP_FAILED || b == MAP_FAILED || g == MAP_FAILED)
		test_fail("mmap: %s", strerror(errno));
	g[5000] = 'P'; /* a private written page */
	close(mfd);
	close(gfd);
	unlink("ghost-map.dat");
	test_ready();
	test_wait();
	if (test_sabotage())
		a[10] = 'x';
	TEST_CHECK(b[10] == 'm' && a[SZ - 1] == 'm', "memfd contents lost");
	a[20] = 'Q';
	TEST_CHECK(b[20] == 'Q', "the two memfd areas are no longer one file");
	TEST_CHECK(!memcmp(g + 100, "filedata", 8), "the unlinked file's contents are lost");
	TEST_CHECK(g[5000] == 'P', "the private written page is lost");
	test_pass();
}
