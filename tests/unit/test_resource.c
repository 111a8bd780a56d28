/* The resource registry (src/cr/resource.h, src/cr/stages.c): every hook a row fills is
 * run by its stage (a row with a hook missing from the stage's list would silently never
 * run), every row of a stage's list has that stage's hook (the driver calls it without a
 * check), no row twice in one stage, every row named and listed in res_all. */
#include "cr/resource.h"
#include "core/log.h"
#include "unit.h"

static bool in_list(const struct resource *const *l, const struct resource *r)
{
	for (; *l; l++)
		if (*l == r)
			return true;
	return false;
}

static void test_hooks_in_stages(void)
{
	size_t rows = 0;
	for (const struct resource *const *r = res_all; *r; r++, rows++) {
		CHECK((*r)->name && (*r)->name[0]);
		bool any = false;
		for (int s = 0; s < STAGE_COUNT; s++) {
			any |= res_has_hook(*r, (enum res_stage)s);
			if (res_has_hook(*r, (enum res_stage)s) != in_list(res_stages[s], *r))
				UNIT_FAIL("row %s: hook of stage %d and the stage's list disagree",
					  (*r)->name, s);
		}
		CHECK(any);
	}
	CHECK(rows >= 10);
}

static void test_stage_lists(void)
{
	for (int s = 0; s < STAGE_COUNT; s++) {
		const struct resource *const *l = res_stages[s];
		CHECK(l != NULL);
		for (size_t i = 0; l && l[i]; i++) {
			CHECK(res_has_hook(l[i], (enum res_stage)s));
			CHECK(in_list(res_all, l[i]));
			for (size_t j = 0; j < i; j++)
				CHECK(l[j] != l[i]);
		}
	}
	/* the orders the code depends on */
	const struct resource *const *d = res_stages[STAGE_DUMP];
	size_t n = 0;
	while (d[n])
		n++;
	CHECK(n && d[n - 1] == &mem_resource); /* the page scan last */
	/* final: the registers, then the blocked mask, last (files may come first: the TCP
	 * connections are finished from outside, through duplicates) */
	const struct resource *const *f = res_stages[STAGE_FINAL];
	n = 0;
	while (f[n])
		n++;
	CHECK(n >= 2 && f[n - 1] == &signals_resource && f[n - 2] == &regs_resource);
}

int main(void)
{
	if (log_init("/dev/null", LOG_ERR) < 0)
		return 1;
	RUN(test_hooks_in_stages);
	RUN(test_stage_lists);
	return unit_done();
}
