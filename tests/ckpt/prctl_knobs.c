// stasis-test: timeout=30
/* prctl settings: the machine-check kill policy per thread (PR_MCE_KILL: early in the main
 * thread, late in a second one), memory-deny-write-execute (PR_SET_MDWE, where the kernel
 * has it: after the restore an mprotect that adds PROT_EXEC to writable memory is still
 * refused) and KSM for the whole process (PR_SET_MEMORY_MERGE, where the test may set
 * it: it needs CAP_SYS_RESOURCE). */
#include "lib.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>

#ifndef PR_SET_MDWE
#define PR_SET_MDWE 65
#define PR_GET_MDWE 66
#endif
#ifndef PR_SET_MEMORY_MERGE
#define PR_SET_MEMORY_MERGE 67
#define PR_GET_MEMORY_MERGE 68
#endif

static pthread_barrier_t bar;
static int second_mce = -1;

static void *second(void *arg)
{
	sigset_t term;
	(void)arg;
	sigemptyset(&term);
	sigaddset(&term, SIGTERM);
	pthread_sigmask(SIG_BLOCK, &term, NULL);
	if (prctl(PR_MCE_KILL, PR_MCE_KILL_SET, PR_MCE_KILL_LATE, 0, 0) < 0)
		test_fail("PR_MCE_KILL late: %s", strerror(errno));
	pthread_barrier_wait(&bar);
	pthread_barrier_wait(&bar);
	second_mce = prctl(PR_MCE_KILL_GET, 0, 0, 0, 0);
	pthread_barrier_wait(&bar);
	return NULL;
}

int main(int argc, char **argv)
{
	pthread_t th;
	test_init(argc, argv);
	pthread_barrier_init(&bar, NULL, 2);
	if (pthread_create(&th, NULL, second, NULL))
		test_fail("pthread_create");
	if (prctl(PR_MCE_KILL, PR_MCE_KILL_SET, PR_MCE_KILL_EARLY, 0, 0) < 0)
		test_fail("PR_MCE_KILL early: %s", strerror(errno));
	bool mdwe = prctl(PR_SET_MDWE, 1, 0, 0, 0) == 0; /* PR_MDWE_REFUSE_EXEC_GAIN */
	bool ksm = prctl(PR_SET_MEMORY_MERGE, 1, 0, 0, 0) == 0;
	pthread_barrier_wait(&bar);
	test_ready();
	test_wait();

	if (test_sabotage())
		prctl(PR_MCE_KILL, PR_MCE_KILL_CLEAR, 0, 0, 0);
	pthread_barrier_wait(&bar);
	pthread_barrier_wait(&bar);
	int mce = prctl(PR_MCE_KILL_GET, 0, 0, 0, 0);
	TEST_CHECK(mce == PR_MCE_KILL_EARLY, "main thread: MCE kill policy %d, expected %d", mce,
		   PR_MCE_KILL_EARLY);
	TEST_CHECK(second_mce == PR_MCE_KILL_LATE, "second thread: MCE kill policy %d, expected %d",
		   second_mce, PR_MCE_KILL_LATE);
	if (mdwe) {
		int m = prctl(PR_GET_MDWE, 0, 0, 0, 0);
		TEST_CHECK(m == 1, "PR_GET_MDWE %d, expected 1", m);
		void *p = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1,
			       0);
		TEST_CHECK(p != MAP_FAILED && mprotect(p, 4096, PROT_READ | PROT_EXEC) < 0,
			   "MDWE does not refuse making writable memory executable");
	}
	if (ksm)
		TEST_CHECK(prctl(PR_GET_MEMORY_MERGE, 0, 0, 0, 0) == 1, "KSM merge-any lost");
	pthread_join(th, NULL);
	test_pass();
}
