// stasis-test: timeout=60
/* A tight assembly loop keeps known values in all 16 ymm registers, in rbx, rbp and
 * r12-r15, a non-default MXCSR and x87 control word, and four values on the x87 stack.
 * Every iteration checks the registers; the loop never calls into libc and only polls
 * the stop flag. After the stop it checks once more and stores the x87 stack. */
#include "lib.h"

#include <stddef.h>
#include <string.h>

struct avx_ctx {
	uint64_t exp[16][4];			/* 0 */
	uint64_t tmp[4];			/* 512 */
	const volatile sig_atomic_t *flag;	/* 544 */
	uint64_t iters;				/* 552 */
	uint64_t fail;				/* 560 */
	uint64_t sabotage;			/* 568 */
	unsigned char x87_in[4][16];		/* 576 */
	unsigned char x87_out[4][16];		/* 640 */
	uint32_t mxcsr;				/* 704 */
	uint16_t fcw;				/* 708 */
};

_Static_assert(offsetof(struct avx_ctx, tmp) == 512, "layout");
_Static_assert(offsetof(struct avx_ctx, flag) == 544, "layout");
_Static_assert(offsetof(struct avx_ctx, iters) == 552, "layout");
_Static_assert(offsetof(struct avx_ctx, fail) == 560, "layout");
_Static_assert(offsetof(struct avx_ctx, sabotage) == 568, "layout");
_Static_assert(offsetof(struct avx_ctx, x87_in) == 576, "layout");
_Static_assert(offsetof(struct avx_ctx, x87_out) == 640, "layout");
_Static_assert(offsetof(struct avx_ctx, mxcsr) == 704, "layout");
_Static_assert(offsetof(struct avx_ctx, fcw) == 708, "layout");

void avx_run(struct avx_ctx *ctx);

#define GPR_RBX "0x0123456789abcdef"
#define GPR_RBP "0x1122334455667788"
#define GPR_R12 "0x8877665544332211"
#define GPR_R13 "0xdeadbeefcafef00d"
#define GPR_R14 "0x0f0f0f0ff0f0f0f0"
#define GPR_R15 "0x7fffffff80000001"

/* compare one ymm register (through the scratch buffer at %rsi) with ctx->exp[i] */
#define CHK(i)                                                                                     \
	"	mov $" #i "+1, %r8\n"                                                              \
	"	vmovdqu %ymm" #i ", (%rsi)\n"                                                      \
	"	mov (%rsi), %rax\n	cmp " #i "*32(%rdi), %rax\n	jne .Lavx_out\n"              \
	"	mov 8(%rsi), %rax\n	cmp " #i "*32+8(%rdi), %rax\n	jne .Lavx_out\n"             \
	"	mov 16(%rsi), %rax\n	cmp " #i "*32+16(%rdi), %rax\n	jne .Lavx_out\n"           \
	"	mov 24(%rsi), %rax\n	cmp " #i "*32+24(%rdi), %rax\n	jne .Lavx_out\n"

#define CHKGPR(code, reg, val)                                                                     \
	"	mov $" #code ", %r8\n	movabs $" val ", %rax\n	cmp %rax, " reg "\n	jne .Lavx_out\n"

#define CHECK_ALL                                                                                  \
	CHK(0) CHK(1) CHK(2) CHK(3) CHK(4) CHK(5) CHK(6) CHK(7) CHK(8) CHK(9) CHK(10) CHK(11)      \
	CHK(12) CHK(13) CHK(14) CHK(15)                                                            \
	"	mov $17, %r8\n	stmxcsr (%rsi)\n	mov (%rsi), %eax\n	cmp 704(%rdi), %eax\n"       \
	"	jne .Lavx_out\n"                                                                   \
	"	mov $18, %r8\n	fnstcw (%rsi)\n	movzwl (%rsi), %eax\n	movzwl 708(%rdi), %ecx\n"    \
	"	cmp %ecx, %eax\n	jne .Lavx_out\n"                                                 \
	CHKGPR(19, "%rbx", GPR_RBX) CHKGPR(20, "%rbp", GPR_RBP) CHKGPR(21, "%r12", GPR_R12)       \
	CHKGPR(22, "%r13", GPR_R13) CHKGPR(23, "%r14", GPR_R14) CHKGPR(24, "%r15", GPR_R15)

#define LOAD(i) "	vmovdqu " #i "*32(%rdi), %ymm" #i "\n"

__asm__(".text\n"
	".globl avx_run\n"
	".type avx_run,@function\n"
	"avx_run:\n"
	"	push %rbx\n	push %rbp\n	push %r12\n	push %r13\n	push %r14\n	push %r15\n"
	"	lea 512(%rdi), %rsi\n"
	"	mov 544(%rdi), %rdx\n"
	"	xor %r11, %r11\n"
	"	fninit\n"
	"	fldcw 708(%rdi)\n"
	"	ldmxcsr 704(%rdi)\n"
	"	fldt 624(%rdi)\n	fldt 608(%rdi)\n	fldt 592(%rdi)\n	fldt 576(%rdi)\n"
	LOAD(0) LOAD(1) LOAD(2) LOAD(3) LOAD(4) LOAD(5) LOAD(6) LOAD(7)
	LOAD(8) LOAD(9) LOAD(10) LOAD(11) LOAD(12) LOAD(13) LOAD(14) LOAD(15)
	"	movabs $" GPR_RBX ", %rbx\n"
	"	movabs $" GPR_RBP ", %rbp\n"
	"	movabs $" GPR_R12 ", %r12\n"
	"	movabs $" GPR_R13 ", %r13\n"
	"	movabs $" GPR_R14 ", %r14\n"
	"	movabs $" GPR_R15 ", %r15\n"
	".Lavx_loop:\n"
	CHECK_ALL
	"	inc %r11\n"
	"	mov (%rdx), %eax\n"
	"	test %eax, %eax\n"
	"	jz .Lavx_loop\n"
	/* sabotage: a VEX 128-bit move zeroes the upper half of ymm7, as a restore of the
	 * legacy (FXSAVE) area only would */
	"	cmpq $0, 568(%rdi)\n"
	"	je .Lavx_final\n"
	"	vmovdqa %xmm7, %xmm7\n"
	".Lavx_final:\n"
	CHECK_ALL
	"	xor %r8, %r8\n"
	".Lavx_out:\n"
	"	mov %r8, 560(%rdi)\n"
	"	mov %r11, 552(%rdi)\n"
	"	fstpt 640(%rdi)\n	fstpt 656(%rdi)\n	fstpt 672(%rdi)\n	fstpt 688(%rdi)\n"
	"	fninit\n"
	"	movl $0x1f80, (%rsi)\n"
	"	ldmxcsr (%rsi)\n"
	"	vzeroupper\n"
	"	pop %r15\n	pop %r14\n	pop %r13\n	pop %r12\n	pop %rbp\n	pop %rbx\n"
	"	ret\n"
	".size avx_run, .-avx_run\n");

static const char *const fail_names[] = {
	"none", "ymm0", "ymm1", "ymm2", "ymm3", "ymm4", "ymm5", "ymm6", "ymm7", "ymm8", "ymm9",
	"ymm10", "ymm11", "ymm12", "ymm13", "ymm14", "ymm15", "mxcsr", "x87 control word",
	"rbx", "rbp", "r12", "r13", "r14", "r15",
};

int main(int argc, char **argv)
{
	static struct avx_ctx ctx __attribute__((aligned(64)));
	const long double x87_vals[4] = { 3.14159265358979323846264L, -2.5e300L, 1.0L / 3.0L,
					  12345678901234567.0L };
	uint64_t seed = 0xA5A5A5A5DEADBEEFull;
	int i, j;

	test_init(argc, argv);
	for (i = 0; i < 16; i++)
		for (j = 0; j < 4; j++)
			ctx.exp[i][j] = test_xorshift64(&seed);
	memset(ctx.x87_in, 0, sizeof(ctx.x87_in));
	for (i = 0; i < 4; i++)
		memcpy(ctx.x87_in[i], &x87_vals[i], 10);
	ctx.flag = test_stop_flag();
	ctx.sabotage = test_sabotage();
	ctx.mxcsr = 0x1f80 | 0x6000 | 0x8000; /* round toward zero, flush to zero */
	ctx.fcw = 0x037f | 0x0c00;		 /* x87: round toward zero */
	ctx.fcw &= (uint16_t)~0x0100;		 /* x87: double precision */
	memset(ctx.x87_out, 0xee, sizeof(ctx.x87_out));

	test_ready();
	avx_run(&ctx);

	if (ctx.fail) {
		unsigned f = (unsigned)ctx.fail;

		test_fail("register %s lost its value after %llu iterations (stop flag %d)",
			  f < sizeof(fail_names) / sizeof(fail_names[0]) ? fail_names[f] : "?",
			  (unsigned long long)ctx.iters, (int)test_stop_requested());
	}
	for (i = 0; i < 4; i++)
		TEST_CHECK(memcmp(ctx.x87_in[i], ctx.x87_out[i], 10) == 0, "x87 st(%d) changed", i);
	TEST_CHECK(ctx.iters > 0, "the loop did not run");
	test_msg("%llu iterations", (unsigned long long)ctx.iters);
	test_pass();
}
