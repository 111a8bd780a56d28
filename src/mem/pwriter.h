/* A pipelined writer for the pages file: the caller fills buffers (e.g. with
 * process_vm_readv) while a writer thread writes the previous ones, so that reading the
 * task's memory and writing the image overlap on two cores. Buffers are written in the
 * order they are queued, back to back from the start offset. */
#ifndef STASIS_MEM_PWRITER_H
#define STASIS_MEM_PWRITER_H

#include <stddef.h>
#include <sys/types.h>

#include "core/util.h"
#include "image/img.h"

struct pwriter;

/* Buffers go to pages file @pg (local or on a page server: img_pages_pwrite), which
 * outlives the writer. */
int pwriter_start(struct pwriter **pw, const struct img_pages *pg, off_t off, size_t bufsz)
	__must_check;
/* Called in the writer thread on each buffer before it is written: what to write instead
 * in *@out, *@outlen (valid until the next call). 0 or -errno (logged by @fn). */
typedef int (*pwriter_xform_fn)(void *arg, const char *in, size_t len, const void **out,
				size_t *outlen);
/* Before the first pwriter_put(). */
void pwriter_set_xform(struct pwriter *pw, pwriter_xform_fn fn, void *arg);
/* A free buffer of bufsz bytes in *@buf (waits for one). 0, or the writer's first error
 * (-errno, not logged here: pwriter_finish() logs it). */
int pwriter_get(struct pwriter *pw, char **buf) __must_check;
/* Queue the buffer last returned by pwriter_get() with @len bytes. */
void pwriter_put(struct pwriter *pw, size_t len);
/* Wait for every queued write, stop the thread, free everything. 0 or the first
 * write error (-errno). Always frees @pw. */
int pwriter_finish(struct pwriter *pw) __must_check;

#endif
