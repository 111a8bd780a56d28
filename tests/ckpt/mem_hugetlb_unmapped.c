// stasis-test: timeout=30 hugepages=8
// stasis-test: nonroot-known=which huge pages a shared hugetlb object holds needs /proc/PID/map_files (CAP_CHECKPOINT_RESTORE); the page tables of the tree do not show a page no process maps
// stasis-test: uns-known=the same: map_files needs CAP_CHECKPOINT_RESTORE in the initial user namespace
// stasis-test: rootless-known=the same: map_files needs CAP_CHECKPOINT_RESTORE in the initial user namespace
/* The hugetlb shape of mem_shared_unmapped: a shared MAP_HUGETLB object of four 2 MiB
 * pages whose data no process of the tree maps at the dump — page 0 written by a child
 * that exited since, page 1 written by the process and dropped from its page tables
 * (MADV_DONTNEED: the object keeps it), page 2 written and mapped, page 3 never
 * touched. After the restore the first three hold their data, the fourth zeros. */
#include "lib.h"

#include <errno.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#define HP (2ul << 20)
#define SEED 0x48554745ull

int main(int argc, char **argv)
{
	test_init(argc, argv);
	char *m = mmap(NULL, 4 * HP, PROT_READ | PROT_WRITE,
		       MAP_SHARED | MAP_ANONYMOUS | MAP_HUGETLB, -1, 0);
	if (m == MAP_FAILED)
		test_fail("mmap MAP_HUGETLB: %s (the runner reserves huge pages)", strerror(errno));
	pid_t kid = fork();
	if (kid < 0)
		test_fail("fork: %s", strerror(errno));
	if (kid == 0) {
		test_fill(m, HP, SEED);
		_exit(0);
	}
	if (test_reap(kid, false, 10))
		test_fail("the writing child did not exit");
	test_fill(m + HP, HP, SEED + 1);
	if (madvise(m + HP, HP, MADV_DONTNEED))
		test_fail("madvise: %s", strerror(errno));
	test_fill(m + 2 * HP, HP, SEED + 2);
	test_ready();
	test_wait();

	if (test_sabotage())
		madvise(m, HP, MADV_REMOVE); /* what a lost page looks like */
	for (int k = 0; k < 3; k++) {
		long bad = test_check(m + k * HP, HP, SEED + (uint64_t)k);
		TEST_CHECK(bad < 0, "huge page %d differs at offset %ld", k, bad);
	}
	for (size_t i = 0; i < HP; i++)
		TEST_CHECK(!m[3 * HP + i], "the untouched huge page holds %#x at %zu", m[3 * HP + i],
			   i);
	test_pass();
}
