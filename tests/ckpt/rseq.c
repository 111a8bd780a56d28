// stasis-test: timeout=30
/* glibc's rseq registration of the main thread (struct rseq in the TLS block at
 * __rseq_offset from the thread pointer, 32 bytes, signature RSEQ_SIG). After the
 * restore the kernel must still own the area: a bogus cpu_id / cpu_id_start written by
 * the task is rewritten with the real cpu on the next signal delivery, and the rseq
 * syscall with the same area, length and signature says EBUSY (that exact registration
 * exists; another area would give EINVAL, another signature EPERM, none at all would
 * register anew and return 0). */
#include "lib.h"

#include <errno.h>
#include <string.h>
#include <sys/rseq.h>
#include <sys/syscall.h>
#include <unistd.h>

#define BOGUS_CPU 0xFFFFFFF0u
#define RSEQ_AREA_LEN 32u /* what glibc 2.36 passes to rseq(2) */

static volatile sig_atomic_t usr1;

static void on_usr1(int sig)
{
	(void)sig;
	usr1++;
}

static struct rseq *area(void)
{
	return (struct rseq *)((char *)__builtin_thread_pointer() + __rseq_offset);
}

static long rseq_call(void *p, unsigned int len, int flags, uint32_t sig)
{
	return syscall(SYS_rseq, p, len, flags, sig);
}

/* The registration must be exactly (area, 32, RSEQ_SIG). */
static void check_registration(const char *when)
{
	struct rseq *r = area();
	long rc;
	int err;

	rc = rseq_call(r, RSEQ_AREA_LEN, 0, RSEQ_SIG);
	err = errno;
	if (rc == 0) {
		/* there was none: undo the registration we just made, then fail */
		rseq_call(r, RSEQ_AREA_LEN, RSEQ_FLAG_UNREGISTER, RSEQ_SIG);
		test_fail("%s: rseq(area, %u, 0, RSEQ_SIG) registered anew: no rseq registration",
			  when, RSEQ_AREA_LEN);
	}
	TEST_CHECK(err == EBUSY,
		   "%s: rseq(area, %u, 0, RSEQ_SIG): %s, expected EBUSY (EINVAL: another area or "
		   "length is registered)",
		   when, RSEQ_AREA_LEN, strerror(err));
	rc = rseq_call(r, RSEQ_AREA_LEN, 0, RSEQ_SIG ^ 0x1);
	err = errno;
	TEST_CHECK(rc < 0 && err == EPERM,
		   "%s: rseq with another signature: rc %ld %s, expected EPERM", when, rc,
		   rc < 0 ? strerror(err) : "success");
	rc = rseq_call((char *)r + 64, RSEQ_AREA_LEN, 0, RSEQ_SIG);
	err = errno;
	TEST_CHECK(rc < 0 && err == EINVAL,
		   "%s: rseq with another area: rc %ld %s, expected EINVAL", when, rc,
		   rc < 0 ? strerror(err) : "success");
}

/* Scribbles over the cpu fields and lets a signal delivery make the kernel rewrite them. */
static void check_updates(const char *when, unsigned int ncpu)
{
	struct rseq *r = area();
	volatile struct rseq *vr = r;
	sig_atomic_t before = usr1;
	uint32_t cpu, cpu_start;

	vr->cpu_id_start = BOGUS_CPU;
	vr->cpu_id = BOGUS_CPU;
	if (raise(SIGUSR1) != 0)
		test_fail("%s: raise: %s", when, strerror(errno));
	TEST_CHECK(usr1 == before + 1, "%s: SIGUSR1 handler ran %d times", when,
		   (int)(usr1 - before));
	cpu = vr->cpu_id;
	cpu_start = vr->cpu_id_start;
	TEST_CHECK(cpu < ncpu && cpu_start < ncpu,
		   "%s: the kernel did not rewrite the rseq area after a signal: cpu_id %#x "
		   "cpu_id_start %#x (%u cpus)",
		   when, cpu, cpu_start, ncpu);
	TEST_CHECK(vr->rseq_cs == 0, "%s: rseq_cs is %#llx", when,
		   (unsigned long long)vr->rseq_cs);
}

int main(int argc, char **argv)
{
	struct sigaction sa;
	long n;
	unsigned int ncpu;

	test_init(argc, argv);
	if (__rseq_size == 0) {
		test_msg("glibc did not register rseq (glibc.pthread.rseq=0?): skip");
		return 77;
	}
	n = sysconf(_SC_NPROCESSORS_CONF);
	ncpu = n > 0 ? (unsigned int)n : 1;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_usr1;
	sigemptyset(&sa.sa_mask);
	if (sigaction(SIGUSR1, &sa, NULL) < 0)
		test_fail("sigaction: %s", strerror(errno));

	/* the behaviour the checks rely on, before the checkpoint */
	check_registration("before");
	check_updates("before", ncpu);

	test_ready();
	test_wait();

	if (test_sabotage())
		rseq_call(area(), RSEQ_AREA_LEN, RSEQ_FLAG_UNREGISTER, RSEQ_SIG);
	check_updates("after restore", ncpu);
	check_registration("after restore");
	test_pass();
}
