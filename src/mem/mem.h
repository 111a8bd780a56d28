/* Memory module internals shared with the restore orchestrator. */
#ifndef STASIS_MEM_H
#define STASIS_MEM_H

#include "cr/ctx.h"

/* Validate the Mm image against itself and the pages file (untrusted input). */
int mem_validate(const Mm *mm, uint64_t pages_len) __must_check;

#endif
