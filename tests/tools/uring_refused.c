/* io_uring states a dump refuses (check bad_dump_io_uring): prints its pid, then, by
 * @argv[1], holds a ring with
 *   poll      a POLL_ADD on an empty pipe in flight
 *   timeout   a 60 s timeout in flight (not polled: seen as an SQE taken without a CQE)
 *   eventfd   an eventfd registered for its completions
 *   small     8 entries and no SQ array (its SQE size cannot be told)
 *   shared    a child process holding it too (an io_uring cannot be passed to another)
 *   ringfd    its fd registered in the thread's own table (IORING_REGISTER_RING_FDS)
 *   disabled  made disabled (IORING_SETUP_R_DISABLED), not enabled yet
 * and waits (60 s). */
#include <linux/io_uring.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

static int setup(unsigned int entries, unsigned int flags, struct io_uring_params *p)
{
	memset(p, 0, sizeof(*p));
	p->flags = flags;
	return (int)syscall(SYS_io_uring_setup, entries, p);
}

/* Submit one SQE (@op on @fd, @addr, @len) and leave it in flight. */
static int submit(int fd, const struct io_uring_params *p, uint8_t op, int target,
		  uint64_t addr, uint32_t len)
{
	uint8_t *r = mmap(NULL, p->sq_off.array + p->sq_entries * 4, PROT_READ | PROT_WRITE,
			  MAP_SHARED, fd, IORING_OFF_SQ_RING);
	struct io_uring_sqe *s = mmap(NULL, p->sq_entries * sizeof(*s), PROT_READ | PROT_WRITE,
				      MAP_SHARED, fd, IORING_OFF_SQES);
	if (r == MAP_FAILED || s == MAP_FAILED)
		return -1;
	memset(s, 0, sizeof(*s));
	s->opcode = op;
	s->fd = target;
	s->addr = addr;
	s->len = len;
	s->poll32_events = op == IORING_OP_POLL_ADD ? 1 /* POLLIN */ : 0;
	((uint32_t *)(r + p->sq_off.array))[0] = 0;
	__atomic_store_n((uint32_t *)(r + p->sq_off.tail), 1, __ATOMIC_RELEASE);
	return syscall(SYS_io_uring_enter, fd, 1, 0, 0, NULL, 0) == 1 ? 0 : -1;
}

int main(int argc, char **argv)
{
	struct io_uring_params p;
	const char *m = argc > 1 ? argv[1] : "";
	int pfd[2], ret = -1;
	static struct __kernel_timespec ts = { 60, 0 };
	if (pipe(pfd))
		return 1;
	if (!strcmp(m, "small")) {
		ret = setup(8, 1U << 16 /* IORING_SETUP_NO_SQARRAY */, &p);
	} else if (!strcmp(m, "disabled")) {
		ret = setup(8, IORING_SETUP_R_DISABLED, &p);
	} else {
		int fd = ret = setup(8, 0, &p);
		if (fd >= 0 && !strcmp(m, "poll"))
			ret = submit(fd, &p, IORING_OP_POLL_ADD, pfd[0], 0, 0);
		else if (fd >= 0 && !strcmp(m, "timeout"))
			ret = submit(fd, &p, IORING_OP_TIMEOUT, -1, (uintptr_t)&ts, 1);
		else if (fd >= 0 && !strcmp(m, "eventfd")) {
			int e = eventfd(0, 0);
			ret = (int)syscall(SYS_io_uring_register, fd, IORING_REGISTER_EVENTFD, &e, 1);
		} else if (fd >= 0 && !strcmp(m, "ringfd")) {
			struct io_uring_rsrc_update up = { .offset = 3, .data = (uint64_t)fd };
			ret = (int)syscall(SYS_io_uring_register, fd, IORING_REGISTER_RING_FDS, &up, 1);
		} else if (fd >= 0 && !strcmp(m, "shared")) {
			ret = fork();
			if (ret == 0) {
				sleep(60);
				_exit(0);
			}
		} else if (fd >= 0) {
			ret = -1;
		}
	}
	if (ret < 0) {
		perror(m);
		return 1;
	}
	printf("%d\n", getpid());
	fflush(stdout);
	sleep(60);
	return 0;
}
