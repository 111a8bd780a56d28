// stasis-test: timeout=60
/* Four threads each run a tight assembly loop holding distinct values in all 16 ymm
 * registers (256 bits each), in r12-r15, and a distinct MXCSR (rounding mode), and check
 * them every iteration; the loop stores its iteration count and only polls a stop flag.
 * Each thread's xsave area and registers must come back to that thread. After the
 * restore every thread must still be iterating; then the stop flag is set, each thread
 * checks once more and returns. */
#include "lib.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#define NTHR 4
#define SABOTAGED 2

struct tavx_ctx {
	uint64_t exp[16][4];			/* 0 */
	uint64_t tmp[4];			/* 512 */
	const volatile int *flag;		/* 544 */
	volatile uint64_t iters;		/* 552 */
	uint64_t fail;				/* 560 */
	uint64_t sabotage;			/* 568 */
	uint64_t gpr[4];			/* 576: r12 r13 r14 r15 */
	uint32_t mxcsr;				/* 608 */
} __attribute__((aligned(64)));

_Static_assert(offsetof(struct tavx_ctx, tmp) == 512, "layout");
_Static_assert(offsetof(struct tavx_ctx, flag) == 544, "layout");
_Static_assert(offsetof(struct tavx_ctx, iters) == 552, "layout");
_Static_assert(offsetof(struct tavx_ctx, fail) == 560, "layout");
_Static_assert(offsetof(struct tavx_ctx, sabotage) == 568, "layout");
_Static_assert(offsetof(struct tavx_ctx, gpr) == 576, "layout");
_Static_assert(offsetof(struct tavx_ctx, mxcsr) == 608, "layout");

void tavx_run(struct tavx_ctx *ctx);

/* ymm i against exp[i], through the scratch buffer at %rsi; r8 = i + 1 on a mismatch */
#define YCHK(i)                                                                                    \
	"	mov $" #i "+1, %r8d\n"                                                             \
	"	vmovdqu %ymm" #i ", (%rsi)\n"                                                      \
	"	mov (%rsi), %rax\n	cmp " #i "*32(%rdi), %rax\n	jne 9f\n"                      \
	"	mov 8(%rsi), %rax\n	cmp " #i "*32+8(%rdi), %rax\n	jne 9f\n"                     \
	"	mov 16(%rsi), %rax\n	cmp " #i "*32+16(%rdi), %rax\n	jne 9f\n"                   \
	"	mov 24(%rsi), %rax\n	cmp " #i "*32+24(%rdi), %rax\n	jne 9f\n"

#define GCHK(code, reg, off)                                                                       \
	"	mov $" #code ", %r8d\n	cmp " #off "(%rdi), " reg "\n	jne 9f\n"

#define ALL_CHECKS                                                                                 \
	YCHK(0) YCHK(1) YCHK(2) YCHK(3) YCHK(4) YCHK(5) YCHK(6) YCHK(7) YCHK(8) YCHK(9)            \
	YCHK(10) YCHK(11) YCHK(12) YCHK(13) YCHK(14) YCHK(15)                                      \
	"	mov $17, %r8d\n	stmxcsr (%rsi)\n	mov (%rsi), %eax\n	cmp 608(%rdi), %eax\n"       \
	"	jne 9f\n"                                                                          \
	GCHK(18, "%r12", 576) GCHK(19, "%r13", 584) GCHK(20, "%r14", 592) GCHK(21, "%r15", 600)

#define YLOAD(i) "	vmovdqu " #i "*32(%rdi), %ymm" #i "\n"

__asm__(".text\n"
	".globl tavx_run\n"
	".type tavx_run,@function\n"
	"tavx_run:\n"
	"	push %rbx\n	push %r12\n	push %r13\n	push %r14\n	push %r15\n"
	"	lea 512(%rdi), %rsi\n"
	"	mov 544(%rdi), %rdx\n"
	"	xor %r11, %r11\n"
	"	ldmxcsr 608(%rdi)\n"
	YLOAD(0) YLOAD(1) YLOAD(2) YLOAD(3) YLOAD(4) YLOAD(5) YLOAD(6) YLOAD(7)
	YLOAD(8) YLOAD(9) YLOAD(10) YLOAD(11) YLOAD(12) YLOAD(13) YLOAD(14) YLOAD(15)
	"	mov 576(%rdi), %r12\n	mov 584(%rdi), %r13\n"
	"	mov 592(%rdi), %r14\n	mov 600(%rdi), %r15\n"
	"1:\n"
	ALL_CHECKS
	"	inc %r11\n"
	"	mov %r11, 552(%rdi)\n"
	"	mov (%rdx), %eax\n"
	"	test %eax, %eax\n"
	"	jz 1b\n"
	/* sabotage: a VEX.128 move zeroes bits 128-255 of ymm7 */
	"	cmpq $0, 568(%rdi)\n"
	"	je 2f\n"
	"	vmovdqa %xmm7, %xmm7\n"
	"2:\n"
	ALL_CHECKS
	"	xor %r8d, %r8d\n"
	"9:\n"
	"	mov %r8, 560(%rdi)\n"
	"	mov %r11, 552(%rdi)\n"
	"	movl $0x1f80, (%rsi)\n"
	"	ldmxcsr (%rsi)\n"
	"	vzeroupper\n"
	"	pop %r15\n	pop %r14\n	pop %r13\n	pop %r12\n	pop %rbx\n"
	"	ret\n"
	".size tavx_run, .-tavx_run\n");

static struct tavx_ctx ctxs[NTHR];
static volatile int stop;

static void *worker(void *arg)
{
	struct tavx_ctx *ctx = arg;
	sigset_t set;

	sigemptyset(&set);
	sigaddset(&set, SIGTERM); /* SIGTERM is for the main thread */
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	tavx_run(ctx);
	return NULL;
}

static const char *reg_name(uint64_t f, char *buf, size_t len)
{
	if (f >= 1 && f <= 16)
		snprintf(buf, len, "ymm%d", (int)f - 1);
	else if (f == 17)
		snprintf(buf, len, "mxcsr");
	else if (f >= 18 && f <= 21)
		snprintf(buf, len, "r%d", (int)f - 18 + 12);
	else
		snprintf(buf, len, "? (%llu)", (unsigned long long)f);
	return buf;
}

int main(int argc, char **argv)
{
	pthread_t th[NTHR];
	uint64_t before[NTHR], deadline;
	int i, j, k;

	test_init(argc, argv);
	for (i = 0; i < NTHR; i++) {
		struct tavx_ctx *c = &ctxs[i];
		uint64_t seed = 0x9E3779B97F4A7C15ull * (uint64_t)(i + 3);
		int err;

		for (j = 0; j < 16; j++)
			for (k = 0; k < 4; k++)
				c->exp[j][k] = test_xorshift64(&seed);
		for (k = 0; k < 4; k++)
			c->gpr[k] = test_xorshift64(&seed);
		c->flag = &stop;
		c->sabotage = test_sabotage() && i == SABOTAGED;
		/* a distinct rounding mode per thread (bits 13-14), FTZ on odd threads */
		c->mxcsr = 0x1f80 | ((uint32_t)i << 13) | ((i & 1) ? 0x8000 : 0);
		c->fail = 0xff;
		err = pthread_create(&th[i], NULL, worker, c);
		if (err)
			test_fail("pthread_create: %s", strerror(err));
	}
	deadline = test_now_ns() + 10000000000ull;
	for (i = 0; i < NTHR; i++) {
		while (ctxs[i].iters < 1000 && test_now_ns() < deadline)
			test_sleep_ms(5);
		TEST_CHECK(ctxs[i].iters >= 1000, "thread %d did not start its loop (fail code %llu)",
			   i, (unsigned long long)ctxs[i].fail);
	}

	test_ready();
	test_wait();

	for (i = 0; i < NTHR; i++)
		before[i] = ctxs[i].iters;
	deadline = test_now_ns() + 5000000000ull;
	for (i = 0; i < NTHR; i++) {
		while (ctxs[i].iters <= before[i] + 1000 && test_now_ns() < deadline)
			test_sleep_ms(5);
		TEST_CHECK(ctxs[i].iters > before[i] + 1000,
			   "thread %d does not iterate after the restore: %llu -> %llu (fail code %llu)",
			   i, (unsigned long long)before[i], (unsigned long long)ctxs[i].iters,
			   (unsigned long long)ctxs[i].fail);
	}
	stop = 1;
	for (i = 0; i < NTHR; i++) {
		struct timespec ts;
		char name[32];
		int err;

		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_sec += 10;
		err = pthread_timedjoin_np(th[i], NULL, &ts);
		TEST_CHECK(err == 0, "pthread_join of thread %d: %s", i, strerror(err));
		TEST_CHECK(ctxs[i].fail == 0, "thread %d: register %s lost its value after %llu iterations",
			   i, reg_name(ctxs[i].fail, name, sizeof(name)),
			   (unsigned long long)ctxs[i].iters);
	}
	test_msg("iterations %llu %llu %llu %llu", (unsigned long long)ctxs[0].iters,
		 (unsigned long long)ctxs[1].iters, (unsigned long long)ctxs[2].iters,
		 (unsigned long long)ctxs[3].iters);
	test_pass();
}
