/* Between stasis and the lazy page server it forks (src/mem/lazy.c, lazy_start.c). */
#ifndef STASIS_MEM_LAZY_INT_H
#define STASIS_MEM_LAZY_INT_H

#include <linux/userfaultfd.h>
#include <stdint.h>
#include <sys/types.h>

#include "mem/internal.h"

/* the non-cooperative events every userfaultfd of a lazy restore asks for */
#define LAZY_EVENTS                                                                    \
	(UFFD_FEATURE_EVENT_FORK | UFFD_FEATURE_EVENT_REMAP | UFFD_FEATURE_EVENT_REMOVE |  \
	 UFFD_FEATURE_EVENT_UNMAP)

/* stasis -> server on their socket (SOCK_SEQPACKET): a process to serve (its userfaultfd
 * and a pidfd with it), or "the tree runs". Server -> stasis, while it restores: why the
 * server killed the tree (text). */
enum { MSG_ADD = 1, MSG_DONE = 2 };
struct lazy_msg {
	uint32_t kind;
	int32_t pid;
};

struct mem_lazy {
	pid_t server;
	int sock; /* stasis's end */
};

/* The page server process (forked by mem_lazy_start): serves until the tree is in. */
void lazy_server_main(struct rst_ctx *const *procs, size_t n, int sock)
	__attribute__((noreturn));

#endif
