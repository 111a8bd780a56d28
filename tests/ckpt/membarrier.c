// stasis-test: timeout=30
/* membarrier registrations of the address space (a runtime that issues
 * MEMBARRIER_CMD_PRIVATE_EXPEDITED registered for it first: without the registration the
 * command fails with EPERM): private expedited, its rseq flavor and global expedited
 * registered before the dump. After the restore MEMBARRIER_CMD_GET_REGISTRATIONS says
 * the same and the private expedited barrier succeeds. (It needs a kernel that can say
 * what is registered: 6.3 or later.) */
#include "lib.h"

#include <errno.h>
#include <linux/membarrier.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#define GET_REGISTRATIONS (1 << 9)

static long mb(int cmd)
{
	return syscall(SYS_membarrier, cmd, 0, 0);
}

int main(int argc, char **argv)
{
	test_init(argc, argv);
	long q = mb(MEMBARRIER_CMD_QUERY);
	if (q < 0 || mb(GET_REGISTRATIONS) < 0)
		test_fail("membarrier cannot say what is registered here (a kernel before 6.3)");
	int want = MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED;
	if (q & MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED_RSEQ)
		want |= MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED_RSEQ;
	if (q & MEMBARRIER_CMD_REGISTER_GLOBAL_EXPEDITED)
		want |= MEMBARRIER_CMD_REGISTER_GLOBAL_EXPEDITED;
	for (int bit = 1; bit <= want; bit <<= 1)
		if ((want & bit) && mb(bit) < 0)
			test_fail("register %#x: %s", bit, strerror(errno));
	long before = mb(GET_REGISTRATIONS);
	if (before != want)
		test_fail("registered %#lx, wanted %#x", before, want);
	test_ready();
	test_wait();

	long after = mb(GET_REGISTRATIONS);
	if (test_sabotage())
		after &= ~MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED;
	TEST_CHECK(after == before, "registrations %#lx, were %#lx", after, before);
	TEST_CHECK(mb(MEMBARRIER_CMD_PRIVATE_EXPEDITED) == 0,
		   "MEMBARRIER_CMD_PRIVATE_EXPEDITED fails after the restore: %s", strerror(errno));
	test_pass();
}
