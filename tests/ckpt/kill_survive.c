// stasis-test: timeout=60 mode=leave-running
/* What a dump killed at any moment must leave intact (the kill_dump check SIGKILLs stasis
 * at random moments of `dump --leave-running` of this test; as a checkpoint test it is
 * dumped and restored like the others). Three threads, each with its own blocked mask and
 * altstack that it checks after every round: one blocked in read() on a pipe nobody
 * writes to (-ERESTARTSYS when frozen), one in a loop of relative 20 ms nanosleeps
 * (-ERESTART_RESTARTBLOCK; each must sleep its full time and never fail), one in an
 * assembly loop holding known values in rbx, rsi, r12-r15, xmm8-xmm15 (ymm with AVX) and a
 * non-default MXCSR and checking them. The main thread waits in sigsuspend
 * (-ERESTARTNOHAND) with its own altstack, a blocked mask and a blocked signal pending;
 * 32 MiB of memory make a dump take a while. At SIGTERM: no thread found anything wrong,
 * the reader gets the byte written to it (not an error), the signal is still pending,
 * the masks and altstacks are the same, the memory is unchanged. */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "lib.h"

#define MEM (32UL << 20)
#define NTHR 3
#define NAP_MS 20

static char failure[256];
static atomic_int failed;
static int pipefd[2];
static atomic_long rounds[NTHR];
static int have_avx;
static atomic_int done; /* the looping threads stop */

static void fail_once(const char *fmt, ...)
{
	va_list ap;
	if (atomic_exchange(&failed, 1))
		return;
	va_start(ap, fmt);
	vsnprintf(failure, sizeof(failure), fmt, ap);
	va_end(ap);
}

struct own {
	const char *who;
	sigset_t mask;
	stack_t ss;
};

/* Block @extra signals (and SIGTERM in the threads: the main thread takes it), set an
 * altstack of its own. */
static void own_setup(struct own *o, const char *who, int extra, bool block_term)
{
	sigset_t set;
	sigemptyset(&set);
	sigaddset(&set, SIGUSR2);
	sigaddset(&set, extra);
	if (block_term)
		sigaddset(&set, SIGTERM);
	pthread_sigmask(SIG_SETMASK, &set, NULL);
	o->who = who;
	o->ss.ss_size = 64 * 1024;
	o->ss.ss_sp = malloc(o->ss.ss_size);
	o->ss.ss_flags = 0;
	if (!o->ss.ss_sp || sigaltstack(&o->ss, NULL))
		test_fail("sigaltstack in %s", who);
	pthread_sigmask(SIG_SETMASK, NULL, &o->mask);
}

static bool own_ok(const struct own *o)
{
	sigset_t cur;
	stack_t ss;
	pthread_sigmask(SIG_SETMASK, NULL, &cur);
	for (int s = 1; s < 65; s++)
		if (sigismember(&cur, s) != sigismember(&o->mask, s)) {
			fail_once("%s: blocked mask changed (signal %d)", o->who, s);
			return false;
		}
	if (sigaltstack(NULL, &ss) || ss.ss_sp != o->ss.ss_sp || ss.ss_size != o->ss.ss_size ||
	    ss.ss_flags != 0) {
		fail_once("%s: altstack changed (%p %zu flags %d)", o->who, ss.ss_sp, ss.ss_size,
			  ss.ss_flags);
		return false;
	}
	return true;
}

static void *reader(void *arg)
{
	struct own o;
	char b = 0;
	(void)arg;
	own_setup(&o, "reader", SIGRTMIN + 1, true);
	atomic_fetch_add(&rounds[0], 1);
	ssize_t n = read(pipefd[0], &b, 1); /* until the end of the test */
	if (n != 1 || b != 'x')
		fail_once("reader: read returned %zd (%s), byte %d", n, n < 0 ? strerror(errno) : "",
			  b);
	own_ok(&o);
	return NULL;
}

static void *sleeper(void *arg)
{
	struct own o;
	(void)arg;
	own_setup(&o, "sleeper", SIGRTMIN + 2, true);
	while (!atomic_load(&done) && own_ok(&o)) {
		struct timespec ts = { 0, NAP_MS * 1000000L };
		uint64_t t0 = test_now_ns();
		int r = clock_nanosleep(CLOCK_MONOTONIC, 0, &ts, NULL);
		uint64_t dt = test_now_ns() - t0;
		if (r || dt < NAP_MS * 1000000ULL) {
			fail_once("sleeper: nanosleep returned %d after %llu ns", r,
				  (unsigned long long)dt);
			break;
		}
		atomic_fetch_add(&rounds[1], 1);
	}
	return NULL;
}

/* One round: known values in callee-saved and vector registers and MXCSR, a spin, then
 * every value compared; returns the number of registers that differ. */
static int reg_round(uint64_t seed)
{
	uint64_t bad;
	uint32_t mx = 0x1f80 | 0x6000; /* round toward zero */
	uint32_t old_mx, cur_mx;
	__asm__ volatile(
		"stmxcsr %[old]\n\t"
		"ldmxcsr %[mx]\n\t"
		"mov %[s], %%rbx\n\t"
		"lea 1(%%rbx), %%rsi\n\t"
		"lea 2(%%rbx), %%r12\n\t"
		"lea 3(%%rbx), %%r13\n\t"
		"lea 4(%%rbx), %%r14\n\t"
		"lea 5(%%rbx), %%r15\n\t"
		"movq %%rbx, %%xmm8\n\t"
		"movq %%rsi, %%xmm9\n\t"
		"movq %%r12, %%xmm10\n\t"
		"movq %%r13, %%xmm11\n\t"
		"pshufd $0x44, %%xmm8, %%xmm8\n\t"
		"pshufd $0x44, %%xmm9, %%xmm9\n\t"
		"pshufd $0x44, %%xmm10, %%xmm10\n\t"
		"pshufd $0x44, %%xmm11, %%xmm11\n\t"
		"testl %[avx], %[avx]\n\t"
		"jz 1f\n\t"
		"vinserti128 $1, %%xmm9, %%ymm8, %%ymm12\n\t"
		"vinserti128 $1, %%xmm11, %%ymm10, %%ymm13\n\t"
		"1: mov $300000, %%ecx\n\t"
		"2: dec %%ecx\n\t"
		"jnz 2b\n\t"
		"xor %[bad], %[bad]\n\t"
		"cmp %%rbx, %[s]\n\t"
		"jne 8f\n\t"
		"lea 1(%%rbx), %%rax\n\t"
		"cmp %%rax, %%rsi\n\t"
		"jne 8f\n\t"
		"lea 2(%%rbx), %%rax\n\t"
		"cmp %%rax, %%r12\n\t"
		"jne 8f\n\t"
		"lea 3(%%rbx), %%rax\n\t"
		"cmp %%rax, %%r13\n\t"
		"jne 8f\n\t"
		"lea 4(%%rbx), %%rax\n\t"
		"cmp %%rax, %%r14\n\t"
		"jne 8f\n\t"
		"lea 5(%%rbx), %%rax\n\t"
		"cmp %%rax, %%r15\n\t"
		"jne 8f\n\t"
		"movq %%rbx, %%xmm0\n\t"
		"pshufd $0x44, %%xmm0, %%xmm0\n\t"
		"pcmpeqd %%xmm8, %%xmm0\n\t"
		"pmovmskb %%xmm0, %%eax\n\t"
		"cmp $0xffff, %%eax\n\t"
		"jne 8f\n\t"
		"movq %%r13, %%xmm0\n\t"
		"pshufd $0x44, %%xmm0, %%xmm0\n\t"
		"pcmpeqd %%xmm11, %%xmm0\n\t"
		"pmovmskb %%xmm0, %%eax\n\t"
		"cmp $0xffff, %%eax\n\t"
		"jne 8f\n\t"
		"stmxcsr %[cur]\n\t"
		"mov %[cur], %%eax\n\t"
		"cmp %[mx], %%eax\n\t"
		"jne 8f\n\t"
		"testl %[avx], %[avx]\n\t"
		"jz 9f\n\t"
		"vextracti128 $1, %%ymm12, %%xmm0\n\t"
		"pcmpeqd %%xmm9, %%xmm0\n\t"
		"pmovmskb %%xmm0, %%eax\n\t"
		"cmp $0xffff, %%eax\n\t"
		"jne 8f\n\t"
		"vextracti128 $1, %%ymm13, %%xmm0\n\t"
		"pcmpeqd %%xmm11, %%xmm0\n\t"
		"pmovmskb %%xmm0, %%eax\n\t"
		"cmp $0xffff, %%eax\n\t"
		"jne 8f\n\t"
		"jmp 9f\n\t"
		"8: mov $1, %[bad]\n\t"
		"9: ldmxcsr %[old]\n\t"
		: [bad] "=&r"(bad), [old] "=m"(old_mx), [cur] "=m"(cur_mx)
		: [s] "r"(seed), [mx] "m"(mx), [avx] "r"(have_avx)
		: "rax", "rbx", "rcx", "rsi", "r12", "r13", "r14", "r15", "xmm0", "xmm8", "xmm9", "xmm10",
		  "xmm11", "xmm12", "xmm13", "cc", "memory");
	return (int)bad;
}

static void *spinner(void *arg)
{
	struct own o;
	uint64_t seed = 0x1234567890abcdefULL;
	(void)arg;
	own_setup(&o, "spinner", SIGRTMIN + 3, true);
	while (!atomic_load(&done) && own_ok(&o)) {
		if (reg_round(test_xorshift64(&seed) & ~0xffULL)) {
			fail_once("spinner: a register changed under the loop");
			break;
		}
		atomic_fetch_add(&rounds[2], 1);
	}
	return NULL;
}

int main(int argc, char **argv)
{
	void *(*fn[NTHR])(void *) = { reader, sleeper, spinner };
	pthread_t th[NTHR];
	struct own o;
	sigset_t pend;

	test_init(argc, argv);
	__builtin_cpu_init();
	have_avx = __builtin_cpu_supports("avx2");
	char *mem = malloc(MEM);
	if (!mem || pipe(pipefd))
		test_fail("setup: %s", strerror(errno));
	test_fill(mem, MEM, 42);
	own_setup(&o, "main", SIGRTMIN + 4, false);
	raise(SIGUSR2); /* blocked: stays pending */
	for (int i = 0; i < NTHR; i++)
		if (pthread_create(&th[i], NULL, fn[i], NULL))
			test_fail("pthread_create");
	for (int i = 0; i < NTHR; i++)
		while (!atomic_load(&rounds[i]))
			test_sleep_ms(1);
	test_ready();
	test_wait();
	long before[NTHR];
	for (int i = 0; i < NTHR; i++)
		before[i] = atomic_load(&rounds[i]);
	test_sleep_ms(3 * NAP_MS); /* every looping thread goes round once more */
	long after[NTHR];
	for (int i = 0; i < NTHR; i++)
		after[i] = atomic_load(&rounds[i]);
	atomic_store(&done, 1);
	if (write(pipefd[1], "x", 1) != 1)
		test_fail("write to the reader: %s", strerror(errno));
	for (int i = 0; i < NTHR; i++)
		pthread_join(th[i], NULL);
	if (test_sabotage())
		mem[12345] ^= 1;
	TEST_CHECK(!atomic_load(&failed), "%s", failure);
	for (int i = 1; i < NTHR; i++)
		TEST_CHECK(after[i] > before[i], "thread %d stopped going round (%ld rounds)", i,
			   before[i]);
	TEST_CHECK(own_ok(&o), "%s", failure);
	sigpending(&pend);
	TEST_CHECK(sigismember(&pend, SIGUSR2), "the pending SIGUSR2 is gone");
	long bad = test_check(mem, MEM, 42);
	TEST_CHECK(bad < 0, "memory differs at offset %ld", bad);
	test_pass();
}
