// stasis-test: timeout=60
/* A tight assembly loop keeps known values in all 32 zmm registers (all 512 bits: the
 * legacy xmm part, the AVX upper halves, the ZMM_Hi256 state of zmm0-15 and the Hi16_ZMM
 * state of zmm16-31) and in the 8 opmask registers k0-k7 (64 bits each). Every iteration
 * stores and compares them; the loop never calls into libc and only polls the stop flag.
 * Needs avx512f and avx512bw (kmovq); the instructions are written in inline assembly so
 * the Makefile's -mavx2 is enough. */
#include "lib.h"

#include <stddef.h>
#include <stdio.h>
#include <string.h>

struct z_ctx {
	uint64_t exp[32][8];			/* 0 */
	uint64_t kexp[8];			/* 2048 */
	uint64_t tmp[8];			/* 2112 */
	const volatile sig_atomic_t *flag;	/* 2176 */
	uint64_t iters;				/* 2184 */
	uint64_t fail;				/* 2192 */
	uint64_t sabotage;			/* 2200 */
	uint64_t got[8];			/* 2208: the failing register's value */
};

_Static_assert(offsetof(struct z_ctx, kexp) == 2048, "layout");
_Static_assert(offsetof(struct z_ctx, tmp) == 2112, "layout");
_Static_assert(offsetof(struct z_ctx, flag) == 2176, "layout");
_Static_assert(offsetof(struct z_ctx, iters) == 2184, "layout");
_Static_assert(offsetof(struct z_ctx, fail) == 2192, "layout");
_Static_assert(offsetof(struct z_ctx, sabotage) == 2200, "layout");
_Static_assert(offsetof(struct z_ctx, got) == 2208, "layout");

void z_run(struct z_ctx *ctx);

#define S_(x) #x
#define S(x) S_(x)

/* compare one qword of the scratch buffer (%rsi) with ctx->exp[i][q] */
#define QCMP(i, q) "	mov " S(q) "*8(%rsi), %rax\n	cmp " S(i) "*64+" S(q) "*8(%rdi), %rax\n	jne .Lz_out\n"
#define CHK(i)                                                                                     \
	"	mov $" #i "+1, %r8\n"                                                              \
	"	vmovdqu64 %zmm" #i ", (%rsi)\n"                                                   \
	QCMP(i, 0) QCMP(i, 1) QCMP(i, 2) QCMP(i, 3) QCMP(i, 4) QCMP(i, 5) QCMP(i, 6) QCMP(i, 7)
#define KCHK(i)                                                                                    \
	"	mov $" #i "+33, %r8\n"                                                             \
	"	kmovq %k" #i ", %rax\n"                                                             \
	"	mov %rax, (%rsi)\n"                                                                \
	"	cmp 2048+" #i "*8(%rdi), %rax\n	jne .Lz_out\n"

#define CHECK_ALL                                                                                  \
	CHK(0) CHK(1) CHK(2) CHK(3) CHK(4) CHK(5) CHK(6) CHK(7) CHK(8) CHK(9) CHK(10) CHK(11)      \
	CHK(12) CHK(13) CHK(14) CHK(15) CHK(16) CHK(17) CHK(18) CHK(19) CHK(20) CHK(21) CHK(22)    \
	CHK(23) CHK(24) CHK(25) CHK(26) CHK(27) CHK(28) CHK(29) CHK(30) CHK(31)                    \
	KCHK(0) KCHK(1) KCHK(2) KCHK(3) KCHK(4) KCHK(5) KCHK(6) KCHK(7)

#define LOAD(i) "	vmovdqu64 " #i "*64(%rdi), %zmm" #i "\n"
#define KLOAD(i) "	kmovq 2048+" #i "*8(%rdi), %k" #i "\n"

__asm__(".text\n"
	".globl z_run\n"
	".type z_run,@function\n"
	"z_run:\n"
	"	lea 2112(%rdi), %rsi\n"
	"	mov 2176(%rdi), %rdx\n"
	"	xor %r11, %r11\n"
	LOAD(0) LOAD(1) LOAD(2) LOAD(3) LOAD(4) LOAD(5) LOAD(6) LOAD(7)
	LOAD(8) LOAD(9) LOAD(10) LOAD(11) LOAD(12) LOAD(13) LOAD(14) LOAD(15)
	LOAD(16) LOAD(17) LOAD(18) LOAD(19) LOAD(20) LOAD(21) LOAD(22) LOAD(23)
	LOAD(24) LOAD(25) LOAD(26) LOAD(27) LOAD(28) LOAD(29) LOAD(30) LOAD(31)
	KLOAD(0) KLOAD(1) KLOAD(2) KLOAD(3) KLOAD(4) KLOAD(5) KLOAD(6) KLOAD(7)
	".Lz_loop:\n"
	CHECK_ALL
	"	inc %r11\n"
	"	mov (%rdx), %eax\n"
	"	test %eax, %eax\n"
	"	jz .Lz_loop\n"
	/* sabotage: an EVEX 256-bit move zeroes bits 256-511 of zmm20 (Hi16_ZMM state), as
	 * a restore of the AVX part of the xsave area only would */
	"	cmpq $0, 2200(%rdi)\n"
	"	je .Lz_final\n"
	"	vmovdqa64 %ymm20, %ymm20\n"
	".Lz_final:\n"
	CHECK_ALL
	"	xor %r8, %r8\n"
	".Lz_out:\n"
	"	mov %r8, 2192(%rdi)\n"
	"	mov %r11, 2184(%rdi)\n"
	/* copy the scratch buffer (last register stored) for the report */
	"	vmovdqu64 (%rsi), %zmm0\n"
	"	vmovdqu64 %zmm0, 2208(%rdi)\n"
	"	vzeroupper\n"
	"	ret\n"
	".size z_run, .-z_run\n");

static bool cpu_has(const char *flag)
{
	char line[8192];
	bool found = false;
	FILE *f = fopen("/proc/cpuinfo", "re");

	if (!f)
		return false;
	while (!found && fgets(line, sizeof(line), f)) {
		char *p;

		if (strncmp(line, "flags", 5))
			continue;
		for (p = strtok(strchr(line, ':') ? strchr(line, ':') + 1 : line, " \n"); p;
		     p = strtok(NULL, " \n"))
			if (!strcmp(p, flag))
				found = true;
		break;
	}
	fclose(f);
	return found;
}

int main(int argc, char **argv)
{
	static struct z_ctx ctx __attribute__((aligned(64)));
	uint64_t seed = 0x0123FEDC98765432ull;
	int i, j;

	test_init(argc, argv);
	if (!cpu_has("avx512f") || !cpu_has("avx512bw")) {
		test_msg("no avx512f/avx512bw in /proc/cpuinfo: skip");
		return 77;
	}
	for (i = 0; i < 32; i++)
		for (j = 0; j < 8; j++)
			ctx.exp[i][j] = test_xorshift64(&seed);
	for (i = 0; i < 8; i++)
		ctx.kexp[i] = test_xorshift64(&seed);
	ctx.flag = test_stop_flag();
	ctx.sabotage = test_sabotage();

	test_ready();
	z_run(&ctx);

	if (ctx.fail) {
		unsigned f = (unsigned)ctx.fail;
		char name[16];

		if (f <= 32)
			snprintf(name, sizeof(name), "zmm%u", f - 1);
		else
			snprintf(name, sizeof(name), "k%u", f - 33);
		if (f <= 32) {
			for (j = 0; j < 8 && ctx.got[j] == ctx.exp[f - 1][j]; j++)
				;
			test_fail("register %s lost its value after %llu iterations (stop flag %d): "
				  "qword %d is %#llx, expected %#llx",
				  name, (unsigned long long)ctx.iters, (int)test_stop_requested(), j,
				  (unsigned long long)ctx.got[j & 7],
				  (unsigned long long)ctx.exp[f - 1][j & 7]);
		}
		test_fail("register %s lost its value after %llu iterations (stop flag %d): %#llx, "
			  "expected %#llx",
			  name, (unsigned long long)ctx.iters, (int)test_stop_requested(),
			  (unsigned long long)ctx.got[0], (unsigned long long)ctx.kexp[f - 33]);
	}
	TEST_CHECK(ctx.iters > 0, "the loop did not run");
	test_msg("%llu iterations", (unsigned long long)ctx.iters);
	test_pass();
}
