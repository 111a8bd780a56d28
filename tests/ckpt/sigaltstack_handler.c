// stasis-test: timeout=30
/* The task is checkpointed while a SIGALRM handler (SA_ONSTACK) is RUNNING on the
 * alternate signal stack: the handler fills a local array on that stack, calls
 * test_ready() and spins until the lib's SIGTERM handler (no SA_ONSTACK, not blocked by
 * the SIGALRM handler's mask; it nests on the alternate stack) sets the stop flag. After
 * the restore, inside the handler: sigaltstack() still reports SS_ONSTACK with the same
 * stack, the locals are still on the alternate stack with their values. Then the
 * handler returns through the signal frame saved on the alternate stack: the main flow
 * continues with its blocked mask (SIGUSR2) restored from that frame, its locals intact,
 * and off the alternate stack. */
#include "lib.h"

#include <errno.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#define ALTSTACK_SIZE (64 * 1024)
#define NLOCAL 512

static char *altstack;
static volatile sig_atomic_t entered, left_handler;
static volatile int h_fail_line;
static char h_fail[200];

static bool on_alt(const void *p)
{
	return (const char *)p >= altstack && (const char *)p < altstack + ALTSTACK_SIZE;
}

#define H_CHECK(cond, msg)                                                                         \
	do {                                                                                       \
		if (!(cond) && !h_fail_line) {                                                     \
			h_fail_line = __LINE__;                                                    \
			strncpy(h_fail, msg, sizeof(h_fail) - 1);                                  \
		}                                                                                  \
	} while (0)

static void on_alarm(int sig)
{
	volatile uint64_t local[NLOCAL];
	uint64_t seed = 0xA17A57ACull;
	sigset_t cur;
	stack_t ss;
	int i;

	(void)sig;
	entered++;
	for (i = 0; i < NLOCAL; i++)
		local[i] = test_xorshift64(&seed);
	H_CHECK(on_alt((const void *)local), "before: the handler does not run on the altstack");
	H_CHECK(sigaltstack(NULL, &ss) == 0 && (ss.ss_flags & SS_ONSTACK),
		"before: sigaltstack does not report SS_ONSTACK");
	test_ready();
	while (!test_stop_requested())
		__asm__ volatile("pause" ::: "memory");

	if (test_sabotage())
		local[NLOCAL / 2] ^= 0x100;
	/* after the restore, still inside the handler */
	memset(&ss, 0, sizeof(ss));
	H_CHECK(sigaltstack(NULL, &ss) == 0, "sigaltstack query failed in the handler");
	H_CHECK(ss.ss_flags == SS_ONSTACK,
		"after restore: sigaltstack ss_flags is not SS_ONSTACK in the handler");
	H_CHECK(ss.ss_sp == altstack && ss.ss_size == ALTSTACK_SIZE,
		"after restore: sigaltstack reports another stack in the handler");
	H_CHECK(on_alt((const void *)local), "after restore: the locals left the altstack");
	seed = 0xA17A57ACull;
	for (i = 0; i < NLOCAL; i++)
		if (local[i] != test_xorshift64(&seed))
			break;
	H_CHECK(i == NLOCAL, "after restore: a local on the alternate stack changed");
	sigprocmask(SIG_SETMASK, NULL, &cur);
	H_CHECK(sigismember(&cur, SIGALRM) && sigismember(&cur, SIGUSR2) &&
			!sigismember(&cur, SIGTERM),
		"after restore: wrong blocked mask inside the handler");
	left_handler++;
}

int main(int argc, char **argv)
{
	volatile uint64_t canary[64];
	uint64_t seed = 0xCA7A7Aull;
	struct sigaction sa;
	sigset_t usr2, cur;
	stack_t ss;
	int i;

	test_init(argc, argv);
	altstack = mmap(NULL, ALTSTACK_SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
			-1, 0);
	if (altstack == MAP_FAILED)
		test_fail("mmap: %s", strerror(errno));
	ss.ss_sp = altstack;
	ss.ss_size = ALTSTACK_SIZE;
	ss.ss_flags = 0;
	if (sigaltstack(&ss, NULL) < 0)
		test_fail("sigaltstack: %s", strerror(errno));
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_alarm;
	sa.sa_flags = SA_ONSTACK;
	sigemptyset(&sa.sa_mask); /* SIGTERM stays deliverable inside the handler */
	if (sigaction(SIGALRM, &sa, NULL) < 0)
		test_fail("sigaction: %s", strerror(errno));
	sigemptyset(&usr2);
	sigaddset(&usr2, SIGUSR2);
	if (sigprocmask(SIG_SETMASK, &usr2, NULL) < 0)
		test_fail("sigprocmask: %s", strerror(errno));
	for (i = 0; i < 64; i++)
		canary[i] = test_xorshift64(&seed);

	if (raise(SIGALRM) != 0) /* the handler runs (and is checkpointed) before this returns */
		test_fail("raise: %s", strerror(errno));

	TEST_CHECK(entered == 1 && left_handler == 1, "handler entered %d times, left %d times",
		   (int)entered, (int)left_handler);
	TEST_CHECK(!h_fail_line, "in the handler (line %d): %s", h_fail_line, h_fail);
	TEST_CHECK(test_stop_requested(), "the handler returned without SIGTERM");
	TEST_CHECK(!on_alt((const void *)canary), "main's locals are on the alternate stack");
	seed = 0xCA7A7Aull;
	for (i = 0; i < 64; i++)
		TEST_CHECK(canary[i] == test_xorshift64(&seed), "main's local %d changed", i);
	memset(&ss, 0, sizeof(ss));
	TEST_CHECK(sigaltstack(NULL, &ss) == 0 && ss.ss_flags == 0 && ss.ss_sp == altstack &&
			   ss.ss_size == ALTSTACK_SIZE,
		   "after the handler: sigaltstack %p/%zu/%d, expected %p/%d/0", ss.ss_sp,
		   ss.ss_size, ss.ss_flags, (void *)altstack, ALTSTACK_SIZE);
	sigprocmask(SIG_SETMASK, NULL, &cur);
	TEST_CHECK(sigismember(&cur, SIGUSR2) && !sigismember(&cur, SIGALRM) &&
			   !sigismember(&cur, SIGTERM),
		   "after the handler: blocked mask not restored from the signal frame "
		   "(USR2 %d ALRM %d TERM %d)",
		   sigismember(&cur, SIGUSR2), sigismember(&cur, SIGALRM),
		   sigismember(&cur, SIGTERM));
	test_pass();
}
