// stasis-test: timeout=60
/* A MAP_SHARED|MAP_ANONYMOUS mapping with data: contents and the shared flag survive,
 * and a second view of the same object made with mremap(old_size 0) still aliases it. */
#include "lib.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>

#define SIZE (4ul << 20)
#define SEED 0xABCDEF0123456789ull

int main(int argc, char **argv)
{
	char before[1024], after[1024];
	uint64_t *mem, *alias;
	long bad;

	test_init(argc, argv);
	mem = mmap(NULL, SIZE, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (mem == MAP_FAILED)
		test_fail("mmap: %s", strerror(errno));
	test_fill(mem, SIZE, SEED);
	/* old_size 0 on a shared mapping: a new mapping of the same pages */
	alias = mremap(mem, 0, SIZE, MREMAP_MAYMOVE);
	if (alias == MAP_FAILED)
		test_fail("mremap alias: %s", strerror(errno));
	TEST_CHECK(alias[5] == mem[5], "alias does not alias before checkpoint");
	test_maps_lines((uintptr_t)mem, (uintptr_t)mem + SIZE, before, sizeof(before));
	test_maps_strip_inode(before);
	TEST_CHECK(strstr(before, "rw-s") != NULL, "mapping not shared: %s", before);
	test_ready();
	test_wait();

	if (test_sabotage())
		((char *)mem)[SIZE / 2 + 11] ^= 0x40;
	test_maps_lines((uintptr_t)mem, (uintptr_t)mem + SIZE, after, sizeof(after));
	test_maps_strip_inode(after);
	TEST_CHECK(strcmp(before, after) == 0, "maps line changed: '%s' -> '%s'", before, after);
	bad = test_check(mem, SIZE, SEED);
	TEST_CHECK(bad < 0, "shared memory differs at offset %ld", bad);
	bad = test_check(alias, SIZE, SEED);
	TEST_CHECK(bad < 0, "alias view differs at offset %ld", bad);
	mem[100] = 0x5555AAAA5555AAAAull;
	TEST_CHECK(alias[100] == 0x5555AAAA5555AAAAull,
		   "the two views of the shared object are no longer shared");
	alias[200] = 0x1111222233334444ull;
	TEST_CHECK(mem[200] == 0x1111222233334444ull, "write through alias not seen");
	test_pass();
}
