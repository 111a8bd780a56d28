/* libFuzzer target: the pidreq channel of src/cr/pidreq.c, stasis's end of the requests a
 * restored task (untrusted: it runs whatever its image holds once its memory is back)
 * sends while it sets up. Input:
 *   byte 0: bits 0-1 how many fds ride on the first message (0-2; the first is a fresh
 *           socket for the reply when serving), bit 2 serve (else receive), bit 3
 *           receive without @op (an answer is expected), bit 4 without @aux, bit 5
 *           without @fd, bit 6 a pidfd-like fd on the follow-up message;
 *   byte 1: the length L of the first message (0-63);
 *   then L bytes: the first message, sent as one SOCK_SEQPACKET datagram;
 *   the rest: the follow-up (the creator's message after stasis's answer), if any.
 * Receive mode: pidreq_recv() on it. Serve mode: pidreq_serve() with ops that answer by
 * the pid's parity, the reply socket's peer closed after the follow-up (no wait).
 * Invariants: a failed receive hands out no fd; no fd is leaked either way. Built and run
 * by tests/fuzz/build.sh. */
#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "core/log.h"
#include "cr/pidreq.h"
#include "ns/ns.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);

/* pidreq.c's one link to the namespaces module, never reached here */
int ns_last_pid_in(int ns_fd, int *val, bool set)
{
	(void)ns_fd;
	(void)val;
	(void)set;
	abort();
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	if (log_init("/dev/null", LOG_ERR))
		abort();
	return 0;
}

static bool op_allowed(void *arg, pid_t pid)
{
	(void)arg;
	return pid < 100000;
}

static int op_prepare(void *arg, pid_t pid, int levels, int op)
{
	(void)arg;
	/* all untrusted */
	return ((unsigned)pid + (unsigned)levels + (unsigned)op) % 3 ? 0 : -EAGAIN;
}

static bool op_check(void *arg, pid_t pid, int levels, int op, int pidfd)
{
	(void)arg;
	(void)levels;
	(void)op;
	if (fcntl(pidfd, F_GETFD) < 0)
		abort(); /* handed a closed fd */
	return pid % 2;
}

static int op_maps(void *arg, pid_t pid)
{
	(void)arg;
	return pid % 2 ? 0 : -EPERM;
}

static void op_open_files(void *arg, pid_t pid, int sock)
{
	(void)arg;
	(void)pid;
	(void)!pidreq_send(sock, PIDREQ_ANSWER, 0, 0, -1);
}

static int op_sockbuf(void *arg, int sk, int opt, int size)
{
	(void)arg;
	(void)opt;
	if (fcntl(sk, F_GETFD) < 0)
		abort(); /* handed a closed fd */
	return size % 2 ? 0 : -EPERM;
}

/* The number of open fds among the first 256 (the harness's own are few). */
static int count_fds(void)
{
	int n = 0;
	for (int fd = 0; fd < 256; fd++)
		n += fcntl(fd, F_GETFD) >= 0;
	return n;
}

static void send_msg(int sock, const uint8_t *buf, size_t len, const int *fds, unsigned nfds)
{
	if (send_fds(sock, buf, len, fds, nfds, MSG_DONTWAIT))
		abort(); /* a datagram of <= 64 KiB always fits an empty socket */
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const struct pidreq_ops ops = {
		.allowed = op_allowed,
		.prepare_pids = op_prepare,
		.check_pids = op_check,
		.write_maps = op_maps,
		.open_files = op_open_files,
		.sockbuf = op_sockbuf,
	};
	int sv[2], priv[2] = { -1, -1 }, extra;

	if (size < 2)
		return 0;
	uint8_t mode = data[0];
	size_t len = data[1] % 64;
	if (size - 2 < len)
		return 0;
	const uint8_t *msg = data + 2, *follow = msg + len;
	size_t flen = size - 2 - len;
	unsigned nfds = mode & 3;
	bool serve = mode & 4;
	if (nfds == 3)
		nfds = 2;
	if (flen > 4096)
		return 0;

	int before = count_fds();
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0)
		abort();
	extra = open("/dev/null", O_RDONLY | O_CLOEXEC);
	if (extra < 0)
		abort();
	int fds[2] = { extra, extra };
	if (serve && nfds) {
		if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, priv) < 0)
			abort();
		fds[0] = priv[0];
	}
	send_msg(sv[1], msg, len, fds, nfds);
	if (priv[0] >= 0) {
		close(priv[0]); /* now only in flight */
		if (flen)
			send_msg(priv[1], follow, flen, &extra, (mode & 0x40) ? 1 : 0);
		/* stasis must not wait for more: the creator is gone */
		shutdown(priv[1], SHUT_WR);
	}
	close(sv[1]);

	if (serve) {
		int ret = pidreq_serve(sv[0], &ops);
		if (ret > 0)
			abort();
	} else {
		int32_t op = -1, val = 0, aux = 0;
		int fd = -2;
		int ret = pidreq_recv(sv[0], (mode & 8) ? NULL : &op, &val,
				      (mode & 16) ? NULL : &aux, (mode & 32) ? NULL : &fd);
		if (ret > 0)
			abort();
		if (!(mode & 32)) {
			if (ret && fd != -1)
				abort(); /* a failed receive hands out no fd */
			if (!ret && fd >= 0)
				close(fd);
		}
	}
	close(sv[0]);
	if (priv[1] >= 0)
		close(priv[1]);
	close(extra);
	if (count_fds() != before)
		abort(); /* an fd received and not closed */
	log_reset_first_error();
	return 0;
}
