/* Helpers of the epoll tests (fd_epoll_shared, fd_epoll_via). */
#ifndef EPOLLLIB_H
#define EPOLLLIB_H

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/epoll.h>
#include <unistd.h>

#include "lib.h"

/* The data of the events epoll @ep reports now (at most 4), as a count. */
static inline int ep_events(int ep, uint64_t *data)
{
	struct epoll_event out[4];
	int n = epoll_wait(ep, out, 4, 0);
	if (n < 0)
		test_fail("epoll_wait(%d): %d", ep, errno);
	for (int i = 0; i < n; i++)
		data[i] = out[i].data.u64;
	return n;
}

static inline bool ep_has(const uint64_t *data, int n, uint64_t want)
{
	for (int i = 0; i < n; i++)
		if (data[i] == want)
			return true;
	return false;
}

/* Add 1 to eventfd @fd. */
static inline void ep_bump(int fd)
{
	uint64_t one = 1;
	TEST_CHECK(write(fd, &one, sizeof(one)) == sizeof(one), "eventfd %d write: %d", fd, errno);
}

#endif
