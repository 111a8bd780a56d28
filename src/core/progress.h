/* A progress line on a terminal for long dumps and restores (src/core/progress.c):
 * "stasis restore: 312 / 2048 MiB, 1630 MiB/s", redrawn four times a second by a thread
 * of its own once the work has gone on for half a second, erased when it ends. Only when
 * stderr is a terminal the log does not write to (-v without -o) (STASIS_PROGRESS=0 turns it off, =1 on
 * from the start even without a terminal, for tests). The work pays one relaxed atomic add per batch. */
#ifndef STASIS_CORE_PROGRESS_H
#define STASIS_CORE_PROGRESS_H

#include <stdint.h>

/* Work of @bytes more begins (@what: "dump", "restore"); calls nest and may overlap
 * (tasks copied in parallel): the line covers them all until the last progress_end(). */
void progress_begin(const char *what, uint64_t bytes);
void progress_add(uint64_t bytes);
void progress_end(void);

#endif
