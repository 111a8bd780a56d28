/* What a dump measures (stats-dump.img, kind IMG_STATS; `stasis show` prints it). */
#ifndef STASIS_CR_STATS_H
#define STASIS_CR_STATS_H

#include <stdbool.h>
#include <stdint.h>

#include "cr/ctx.h"

/* Time spent in resource row @name (a static string): once per tree (@tree) or, summed,
 * per process. */
void stats_stage(const char *name, bool tree, uint64_t ns);
/* The stats of dump @t into its image directory (before the commit): @t0 when the freeze
 * began, @frozen when every thread was frozen, @collected when the tree's state and pages
 * were read, @written when the other images were written. */
int stats_write(struct dump_tree *t, uint64_t t0, uint64_t frozen, uint64_t collected,
		uint64_t written) __must_check;

#endif
