// stasis-test: timeout=60
/* Recursion 8 MiB deep with data in every frame; the test waits at the bottom and
 * checks every frame's data while unwinding. */
#include "lib.h"

#include <errno.h>
#include <string.h>
#include <sys/resource.h>

#define FRAME_BYTES 4096
#define DEPTH 2100 /* > 8 MiB of frames */

static volatile uint64_t *sabotage_target;
static unsigned long bad_frames;
static int first_bad = -1;

__attribute__((noinline)) static uint64_t descend(int depth)
{
	uint64_t data[FRAME_BYTES / 8];
	uint64_t sum;

	test_fill(data, sizeof(data), 0xDEE9000000000000ull + (uint64_t)depth);
	if (depth == DEPTH / 2)
		sabotage_target = &data[77];
	if (depth < DEPTH) {
		sum = descend(depth + 1);
	} else {
		test_ready();
		test_wait();
		if (test_sabotage())
			*sabotage_target ^= 1;
		sum = 0;
	}
	if (test_check(data, sizeof(data), 0xDEE9000000000000ull + (uint64_t)depth) >= 0) {
		bad_frames++;
		if (first_bad < 0)
			first_bad = depth;
	}
	/* use data after the call so that the frame cannot be reused or elided */
	return sum + data[depth % (FRAME_BYTES / 8)];
}

int main(int argc, char **argv)
{
	struct rlimit rl;
	uint64_t sum;

	test_init(argc, argv);
	/* the stack grows on demand up to RLIMIT_STACK: make room for > 8 MiB */
	if (getrlimit(RLIMIT_STACK, &rl) < 0)
		test_fail("getrlimit: %s", strerror(errno));
	if (rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur < (64ul << 20)) {
		rl.rlim_cur = rl.rlim_max == RLIM_INFINITY || rl.rlim_max >= (64ul << 20) ?
				      (64ul << 20) : rl.rlim_max;
		if (setrlimit(RLIMIT_STACK, &rl) < 0)
			test_fail("setrlimit(RLIMIT_STACK): %s", strerror(errno));
	}
	sum = descend(0);
	TEST_CHECK(bad_frames == 0, "%lu stack frames corrupted, first at depth %d", bad_frames,
		   first_bad);
	test_msg("unwound %d frames, checksum %llx", DEPTH, (unsigned long long)sum);
	test_pass();
}
