// stasis-test: timeout=60
/* Random fd tables across a tree. The root R drives tasks (itself and up to five forked
 * ones) from fixed seeds: a task opens pipes, unix stream and datagram socket pairs,
 * eventfds, memfds and regular files, dups them (dup, dup2 over another fd, F_DUPFD
 * with close-on-exec), closes some, writes into them (data left queued), reads part of
 * it back, seeks, sets O_NONBLOCK or O_APPEND, toggles FD_CLOEXEC, and forks (the child
 * inherits the table). After the restore, in every task: which fds share an open file
 * description with which (kcmp, across tasks too), each fd's flags, close-on-exec and
 * offset, and the data of every object: the bytes queued in each pipe and stream
 * direction, each datagram in order, the eventfd counters, the files' sizes and
 * contents. STASIS_TEST_SEED=N runs seed N only. */
#include "lib.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/kcmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#define MAX_T 6   /* tasks */
#define MAX_O 40  /* objects */
#define FD_LO 3
#define FD_HI 48  /* random fds live in [FD_LO, FD_HI) */
#define CMD_FD 60 /* each task's command and answer pipes (60..) */

enum kind { K_PIPE, K_STREAM, K_DGRAM, K_EVENT, K_MEMFD, K_FILE, K_SEQ, K_N };
enum op { OP_OPEN, OP_DUP, OP_DUP2, OP_DUPCX, OP_CLOSE, OP_WRITE, OP_READ, OP_SEEK, OP_FL,
	  OP_CX, OP_FORK, OP_SHUT, OP_CHECK, OP_N };

struct obj {
	int kind;
	/* two directions (0: into end 1 / the pipe, 1: into end 0): bytes or datagrams
	 * written and read; a datagram's length follows from its index */
	uint64_t wr[2], rd[2];
	uint64_t count;   /* eventfd */
	uint64_t size;    /* memfd, file */
};

struct slot {
	int obj, end; /* obj -1: closed */
};

struct shared {
	struct obj o[MAX_O];
	int no;
	struct slot fd[MAX_T][FD_HI];
	pid_t pid[MAX_T];
	int nt;
	int bad;
	char why[256];
	/* before the checkpoint: every fd's flags, close-on-exec, offset; kcmp pairs */
	int fl[MAX_T][FD_HI], cx[MAX_T][FD_HI];
	long long off[MAX_T][FD_HI];
	unsigned char same[MAX_T][FD_HI][MAX_T][FD_HI];
};

struct cmd {
	int op, a, b, c;
};

static struct shared *S;
static int me;

static unsigned char byte_at(int o, int dir, uint64_t pos)
{
	return (unsigned char)(o * 29 + dir * 101 + pos * 7 + (pos >> 8));
}

static size_t dgram_len(int o, int dir, uint64_t k)
{
	return 1 + (size_t)((o * 13 + dir * 7 + k * 37) % 300);
}

static void fail_in_task(const char *fmt, int a, int b)
{
	if (!S->bad++)
		snprintf(S->why, sizeof(S->why), "task %d: %s (%d, %d)", me, fmt, a, b);
}

/* the direction an end writes into, and the one it reads from */
static int wdir(const struct slot *s)
{
	return S->o[s->obj].kind == K_PIPE ? 0 : s->end;
}

static bool can_write(const struct slot *s)
{
	int k = S->o[s->obj].kind;
	return k != K_PIPE || s->end == 1;
}

static bool can_read(const struct slot *s)
{
	int k = S->o[s->obj].kind;
	return (k == K_PIPE && s->end == 0) || k == K_STREAM || k == K_DGRAM || k == K_SEQ ||
	       k == K_EVENT;
}

static bool messages(int kind)
{
	return kind == K_DGRAM || kind == K_SEQ;
}

static void set_slot(int fd, int obj, int end)
{
	if (fd >= FD_LO && fd < FD_HI) {
		S->fd[me][fd].obj = obj;
		S->fd[me][fd].end = end;
	} else if (fd >= 0) {
		close(fd); /* (outside the random range: not kept) */
	}
}

static int do_open(int kind)
{
	if (S->no >= MAX_O)
		return 0;
	int o = S->no, fds[2] = { -1, -1 };
	char name[32];
	switch (kind) {
	case K_PIPE:
		if (pipe(fds) < 0)
			return errno;
		break;
	case K_STREAM:
	case K_DGRAM:
	case K_SEQ:
		if (socketpair(AF_UNIX,
			       kind == K_STREAM ? SOCK_STREAM : kind == K_DGRAM ? SOCK_DGRAM
										: SOCK_SEQPACKET,
			       0, fds) < 0)
			return errno;
		break;
	case K_EVENT:
		fds[0] = eventfd(0, 0);
		break;
	case K_MEMFD:
		fds[0] = memfd_create("fd_random", 0);
		break;
	default:
		snprintf(name, sizeof(name), "f%d.dat", o);
		fds[0] = open(name, O_RDWR | O_CREAT | O_TRUNC, 0600);
		break;
	}
	if (fds[0] < 0)
		return errno;
	memset(&S->o[o], 0, sizeof(S->o[o]));
	S->o[o].kind = kind;
	S->no++;
	set_slot(fds[0], o, 0);
	set_slot(fds[1], o, 1);
	return 0;
}

static int do_write(int fd, int len)
{
	struct slot *s = &S->fd[me][fd];
	struct obj *ob = &S->o[s->obj];
	unsigned char buf[512];
	int d = wdir(s);
	if (!can_write(s))
		return 0;
	if (ob->kind == K_EVENT) {
		uint64_t v = (uint64_t)len + 1;
		if (write(fd, &v, 8) == 8)
			ob->count += v;
		return 0;
	}
	if (ob->kind == K_MEMFD || ob->kind == K_FILE) {
		long long at = lseek(fd, 0, SEEK_CUR);
		int fl = fcntl(fd, F_GETFL);
		if (fl & O_APPEND)
			at = (long long)ob->size;
		for (int i = 0; i < len; i++)
			buf[i] = byte_at(s->obj, 0, (uint64_t)at + (uint64_t)i);
		ssize_t n = write(fd, buf, (size_t)len);
		if (n > 0 && (uint64_t)at + (uint64_t)n > ob->size)
			ob->size = (uint64_t)at + (uint64_t)n;
		return 0;
	}
	if (messages(ob->kind)) {
		size_t l = dgram_len(s->obj, d, ob->wr[d]);
		for (size_t i = 0; i < l; i++)
			buf[i] = byte_at(s->obj, d, ob->wr[d] * 1000 + i);
		ssize_t n = send(fd, buf, l, MSG_DONTWAIT);
		if (n == (ssize_t)l)
			ob->wr[d]++;
		else if (n < 0 && errno == ECONNREFUSED && ob->kind == K_DGRAM)
			ob->rd[1 - d] = ob->wr[1 - d]; /* the peer is gone: the kernel drops what
							* the socket had queued */
		return 0;
	}
	if (ob->wr[d] - ob->rd[d] > 8192) /* (never blocks: far below any buffer) */
		return 0;
	for (int i = 0; i < len; i++)
		buf[i] = byte_at(s->obj, d, ob->wr[d] + (uint64_t)i);
	ssize_t n = write(fd, buf, (size_t)len);
	if (n > 0)
		ob->wr[d] += (uint64_t)n;
	return 0;
}

/* read up to @len (all of it: @len < 0) from @fd, checking what comes */
static int do_read(int fd, int len)
{
	struct slot *s = &S->fd[me][fd];
	struct obj *ob = &S->o[s->obj];
	unsigned char buf[512];
	int d = ob->kind == K_PIPE ? 0 : 1 - s->end;
	if (!can_read(s))
		return 0;
	if (ob->kind == K_EVENT) {
		uint64_t v = 0;
		if (ob->count == 0)
			return 0;
		if (read(fd, &v, 8) != 8 || v != ob->count)
			fail_in_task("eventfd counter", (int)v, (int)ob->count);
		ob->count = 0;
		return 0;
	}
	if (messages(ob->kind)) {
		for (int k = 0; ob->rd[d] < ob->wr[d] && (len < 0 || k < 1); k++) {
			size_t l = dgram_len(s->obj, d, ob->rd[d]);
			ssize_t n = recv(fd, buf, sizeof(buf), MSG_DONTWAIT);
			if (n != (ssize_t)l) {
				fail_in_task("datagram length", (int)n, (int)l);
				return 0;
			}
			for (size_t i = 0; i < l; i++)
				if (buf[i] != byte_at(s->obj, d, ob->rd[d] * 1000 + i)) {
					fail_in_task("datagram byte", (int)i, s->obj);
					return 0;
				}
			ob->rd[d]++;
		}
		return 0;
	}
	while (ob->rd[d] < ob->wr[d]) {
		uint64_t want = ob->wr[d] - ob->rd[d];
		if (len >= 0 && want > (uint64_t)len)
			want = (uint64_t)len;
		if (want > sizeof(buf))
			want = sizeof(buf);
		ssize_t n = read(fd, buf, want);
		if (n <= 0) {
			fail_in_task("queued bytes missing", (int)(ob->wr[d] - ob->rd[d]), s->obj);
			return 0;
		}
		for (ssize_t i = 0; i < n; i++)
			if (buf[i] != byte_at(s->obj, d, ob->rd[d] + (uint64_t)i)) {
				fail_in_task("queued byte", (int)i, s->obj);
				return 0;
			}
		ob->rd[d] += (uint64_t)n;
		if (len >= 0)
			break;
	}
	return 0;
}

static void check_file(int fd)
{
	struct obj *ob = &S->o[S->fd[me][fd].obj];
	struct stat st;
	unsigned char buf[512];
	if (fstat(fd, &st) || (uint64_t)st.st_size != ob->size) {
		fail_in_task("file size", (int)st.st_size, (int)ob->size);
		return;
	}
	for (uint64_t at = 0; at < ob->size; at += sizeof(buf)) {
		ssize_t n = pread(fd, buf, sizeof(buf), (off_t)at);
		for (ssize_t i = 0; i < n; i++)
			if (buf[i] && buf[i] != byte_at(S->fd[me][fd].obj, 0, at + (uint64_t)i)) {
				fail_in_task("file byte", (int)(at + (uint64_t)i), S->fd[me][fd].obj);
				return;
			}
	}
}

/* after the restore: the data of every object this task is the first holder of */
static void check_data(void)
{
	for (int fd = FD_LO; fd < FD_HI; fd++) {
		struct slot *s = &S->fd[me][fd];
		if (s->obj < 0)
			continue;
		bool first = true;
		for (int t = 0; t < MAX_T && first; t++)
			for (int f = FD_LO; f < FD_HI && first; f++)
				if ((t < me || (t == me && f < fd)) && S->pid[t] &&
				    S->fd[t][f].obj == s->obj && S->fd[t][f].end == s->end)
					first = false;
		if (!first)
			continue;
		int fl = fcntl(fd, F_GETFL);
		fcntl(fd, F_SETFL, fl | O_NONBLOCK); /* (shared by the holders: checked already) */
		int k = S->o[s->obj].kind;
		if (k == K_MEMFD || k == K_FILE)
			check_file(fd);
		else
			do_read(fd, -1);
		fcntl(fd, F_SETFL, fl);
	}
}

static int run(const struct cmd *c);

static __attribute__((noreturn)) void task_loop(void)
{
	struct cmd c;
	for (;;) {
		if (test_read_full(CMD_FD + 2 * me, &c, sizeof(c)) != 0)
			_exit(3);
		int st = run(&c);
		if (test_write_full(CMD_FD + 2 * me + 1 + 2 * MAX_T, &st, sizeof(st)) != 0)
			_exit(3);
	}
}

static int run(const struct cmd *c)
{
	int fd = c->a, r;
	struct slot *s = fd >= FD_LO && fd < FD_HI ? &S->fd[me][fd] : NULL;
	switch (c->op) {
	case OP_OPEN:
		return do_open(c->b);
	case OP_DUP:
	case OP_DUPCX:
		r = c->op == OP_DUP ? dup(fd) : fcntl(fd, F_DUPFD_CLOEXEC, FD_LO + c->b % 20);
		if (r >= 0)
			set_slot(r, s->obj, s->end);
		return 0;
	case OP_DUP2:
		if (c->b == fd || dup2(fd, c->b) < 0)
			return 0;
		set_slot(c->b, s->obj, s->end);
		return 0;
	case OP_CLOSE:
		close(fd);
		s->obj = -1;
		return 0;
	case OP_WRITE:
		return do_write(fd, 1 + c->b % 500);
	case OP_READ: {
		int fl = fcntl(fd, F_GETFL);
		fcntl(fd, F_SETFL, fl | O_NONBLOCK);
		do_read(fd, 1 + c->b % 300);
		fcntl(fd, F_SETFL, fl);
		return 0;
	}
	case OP_SEEK:
		if (S->o[s->obj].kind == K_MEMFD || S->o[s->obj].kind == K_FILE)
			lseek(fd, c->b % 3000, SEEK_SET);
		return 0;
	case OP_FL: {
		int k = S->o[s->obj].kind, fl = fcntl(fd, F_GETFL);
		int bit = (k == K_MEMFD || k == K_FILE) && c->b % 2 ? O_APPEND : O_NONBLOCK;
		fcntl(fd, F_SETFL, fl ^ bit);
		return 0;
	}
	case OP_CX:
		fcntl(fd, F_SETFD, fcntl(fd, F_GETFD) ^ FD_CLOEXEC);
		return 0;
	case OP_SHUT: /* a connected socket stops reading or writing (or both) */
		if (S->o[s->obj].kind == K_STREAM || S->o[s->obj].kind == K_SEQ)
			shutdown(fd, c->b % 3);
		return 0;
	case OP_FORK: {
		int id = c->b;
		memcpy(S->fd[id], S->fd[me], sizeof(S->fd[me]));
		pid_t p = fork();
		if (p == 0) {
			me = id;
			task_loop();
		}
		if (p < 0)
			return errno;
		S->pid[id] = p;
		return 0;
	}
	case OP_CHECK:
		check_data();
		return 0;
	default:
		return 0;
	}
}

static void tell(int t, int op, int a, int b)
{
	struct cmd c = { op, a, b, 0 };
	int st = 0;
	if (t == 0) {
		st = run(&c);
	} else if (test_write_full(CMD_FD + 2 * t + 1, &c, sizeof(c)) != 0 ||
		   test_read_within(CMD_FD + 2 * t + 2 * MAX_T, &st, sizeof(st), 5000) != 0) {
		test_fail("task %d does not answer (op %d)", t, op);
	}
	if (st)
		test_fail("task %d: op %d on fd %d: %s", t, op, a, strerror(st));
}

static int pick_fd(int t, uint64_t *rng, bool open_only)
{
	int cand[FD_HI], n = 0;
	for (int fd = FD_LO; fd < FD_HI; fd++)
		if ((S->fd[t][fd].obj >= 0) == open_only)
			cand[n++] = fd;
	return n ? cand[test_xorshift64(rng) % (uint64_t)n] : -1;
}

static void grow(uint64_t seed)
{
	static const int weight[OP_N] = { 8, 4, 3, 3, 4, 12, 4, 3, 3, 3, 2, 1, 0 };
	uint64_t rng = seed * 0x9E3779B97F4A7C15ull + 7;
	for (int step = 0; step < 300; step++) {
		int op = test_pick_weighted(&rng, weight, OP_N);
		int t = (int)(test_xorshift64(&rng) % (uint64_t)S->nt);
		int fd = pick_fd(t, &rng, true), b = (int)(test_xorshift64(&rng) % 100000);
		if (op == OP_OPEN) {
			tell(t, op, 0, b % K_N);
		} else if (op == OP_FORK) {
			if (S->nt < MAX_T) {
				tell(t, op, 0, S->nt);
				S->nt++;
			}
		} else if (fd >= 0) {
			if (op == OP_DUP2)
				b = FD_LO + b % (FD_HI - FD_LO);
			tell(t, op, fd, b);
		}
	}
}

static void snapshot(int fl[MAX_T][FD_HI], int cx[MAX_T][FD_HI], long long off[MAX_T][FD_HI],
		     unsigned char same[MAX_T][FD_HI][MAX_T][FD_HI])
{
	char path[64];
	for (int t = 0; t < S->nt; t++)
		for (int fd = FD_LO; fd < FD_HI; fd++) {
			fl[t][fd] = cx[t][fd] = -1;
			off[t][fd] = -1;
			if (S->fd[t][fd].obj < 0)
				continue;
			char buf[256];
			snprintf(path, sizeof(path), "/proc/%d/fdinfo/%d", S->pid[t], fd);
			test_read_text(path, buf, sizeof(buf));
			unsigned long long pos = 0;
			unsigned int flags = 0;
			if (sscanf(buf, "pos: %llu flags: %o", &pos, &flags) == 2) {
				off[t][fd] = (long long)pos;
				fl[t][fd] = (int)(flags & ~O_CLOEXEC);
				cx[t][fd] = !!(flags & O_CLOEXEC);
			}
			for (int u = 0; u < S->nt; u++)
				for (int g = FD_LO; g < FD_HI; g++)
					same[t][fd][u][g] =
						S->fd[u][g].obj >= 0 &&
						syscall(SYS_kcmp, S->pid[t], S->pid[u], KCMP_FILE, fd,
							g) == 0;
		}
}

int main(int argc, char **argv)
{
	static const uint64_t seeds[] = { 1, 2, 3 };
	const char *env = getenv("STASIS_TEST_SEED");

	test_init(argc, argv);
	signal(SIGPIPE, SIG_IGN); /* (writes into pipes and sockets whose readers are gone) */
	S = mmap(NULL, sizeof(*S), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (S == MAP_FAILED)
		test_fail("mmap: %s", strerror(errno));
	for (int t = 0; t < MAX_T; t++)
		for (int fd = 0; fd < FD_HI; fd++)
			S->fd[t][fd].obj = -1;
	/* command pipes of every task: to it at CMD_FD + 2t (read) / + 1 (write), answers
	 * at CMD_FD + 2 MAX_T + 2t / + 1 */
	for (int t = 0; t < MAX_T; t++) {
		int p[2], q[2];
		if (pipe(p) < 0 || pipe(q) < 0)
			test_fail("pipe: %s", strerror(errno));
		test_place_fd(p[0], CMD_FD + 2 * t);
		test_place_fd(p[1], CMD_FD + 2 * t + 1);
		test_place_fd(q[0], CMD_FD + 2 * MAX_T + 2 * t);
		test_place_fd(q[1], CMD_FD + 2 * MAX_T + 2 * t + 1);
	}
	S->pid[0] = getpid();
	S->nt = 1;
	me = 0;
	if (env) {
		grow(strtoull(env, NULL, 10));
	} else {
		for (size_t k = 0; k < sizeof(seeds) / sizeof(seeds[0]); k++)
			grow(seeds[k]);
	}
	snapshot(S->fl, S->cx, S->off, S->same);
	test_ready();
	test_wait();

	static int fl[MAX_T][FD_HI], cx[MAX_T][FD_HI];
	static long long off[MAX_T][FD_HI];
	static unsigned char same[MAX_T][FD_HI][MAX_T][FD_HI];
	snapshot(fl, cx, off, same);
	for (int fd = FD_LO; fd < FD_HI && test_sabotage(); fd++)
		if (S->fd[0][fd].obj >= 0) {
			S->off[0][fd]++;
			break;
		}
	for (int t = 0; t < S->nt && !S->bad; t++)
		for (int fd = FD_LO; fd < FD_HI && !S->bad; fd++) {
			if (S->fd[t][fd].obj < 0)
				continue;
			if (fl[t][fd] != S->fl[t][fd] || cx[t][fd] != S->cx[t][fd] ||
			    off[t][fd] != S->off[t][fd])
				test_fail("task %d fd %d: flags %o cloexec %d offset %lld, was %o %d %lld",
					  t, fd, fl[t][fd], cx[t][fd], off[t][fd], S->fl[t][fd],
					  S->cx[t][fd], S->off[t][fd]);
			if (memcmp(same[t][fd], S->same[t][fd], sizeof(same[t][fd])))
				test_fail("task %d fd %d: shares its open file with other fds than "
					  "before",
					  t, fd);
		}
	for (int t = 0; t < S->nt; t++)
		tell(t, OP_CHECK, 0, 0);
	if (S->bad)
		test_fail("%s", S->why);
	for (int t = 1; t < S->nt; t++)
		kill(S->pid[t], SIGKILL);
	for (int t = 1; t < S->nt; t++)
		test_reap(S->pid[t], false, 10);
	test_pass();
}
