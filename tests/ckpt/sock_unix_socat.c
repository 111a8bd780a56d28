// stasis-test: timeout=60
/* A real program relaying a unix stream: socat (a child: UNIX-LISTEN on one path,
 * UNIX-CONNECT to the test's listener on another) between the test's client socket and
 * the connection the test accepted. A pseudo-random 8 MiB stream goes through it; at the
 * dump some 300 KiB are in flight (written by the client and not read at the far end: in
 * the queues of socat's two sockets and of the far end, in socat's buffer). After
 * the restore the rest is written while the far end reads: every byte arrives in order,
 * none twice, and socat exits 0 once the client closes. Needs socat (scripts/deps.sh). */
#include "lib.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#define TOTAL (8u << 20)
#define CHUNK 65536

static char dir[96];
static uint8_t *stream;

static socklen_t mkaddr(struct sockaddr_un *a, const char *leaf)
{
	memset(a, 0, sizeof(*a));
	a->sun_family = AF_UNIX;
	snprintf(a->sun_path, sizeof(a->sun_path), "%s/%s", dir, leaf);
	return (socklen_t)(offsetof(struct sockaddr_un, sun_path) + strlen(a->sun_path) + 1);
}

/* write what the socket takes now */
static size_t pump_out(int c, size_t sent)
{
	while (sent < TOTAL) {
		size_t n = TOTAL - sent < CHUNK ? TOTAL - sent : CHUNK;
		ssize_t r = send(c, stream + sent, n, MSG_DONTWAIT | MSG_NOSIGNAL);
		if (r < 0 && (errno == EAGAIN || errno == EINTR))
			break;
		if (r <= 0)
			test_fail("send at %zu: %s", sent, strerror(errno));
		sent += (size_t)r;
	}
	return sent;
}

int main(int argc, char **argv)
{
	struct sockaddr_un in, out;
	char a1[160], a2[160];
	int status;

	test_init(argc, argv);
	/* in the test's own directory: its socket files go with it */
	if (!getcwd(dir, sizeof(dir)) || strlen(dir) > 80)
		test_fail("cwd too long for socket paths");
	socklen_t inl = mkaddr(&in, "in"), outl = mkaddr(&out, "out");
	unlink(in.sun_path);
	unlink(out.sun_path);
	stream = malloc(TOTAL);
	if (!stream)
		test_fail("no memory");
	test_fill(stream, TOTAL, 0x50CA7);
	int l = socket(AF_UNIX, SOCK_STREAM, 0);
	if (l < 0 || bind(l, (struct sockaddr *)&out, outl) || listen(l, 1))
		test_fail("listen on %s: %s", out.sun_path, strerror(errno));
	snprintf(a1, sizeof(a1), "UNIX-LISTEN:%s", in.sun_path);
	snprintf(a2, sizeof(a2), "UNIX-CONNECT:%s", out.sun_path);
	pid_t socat = fork();
	if (socat < 0)
		test_fail("fork: %s", strerror(errno));
	if (!socat) {
		close(l);
		execlp("socat", "socat", "-b", "16384", a1, a2, (char *)NULL);
		_exit(127);
	}
	int c = -1;
	for (int i = 0; i < 500 && c < 0; i++) { /* socat listening: up to 5 s */
		c = socket(AF_UNIX, SOCK_STREAM, 0);
		if (connect(c, (struct sockaddr *)&in, inl)) {
			close(c);
			c = -1;
			if (waitpid(socat, &status, WNOHANG) == socat)
				test_fail("socat exited (status %#x): is it installed? "
					  "(scripts/deps.sh)", status);
			test_sleep_ms(10);
		}
	}
	struct pollfd p = { .fd = l, .events = POLLIN };
	if (c < 0 || poll(&p, 1, 5000) != 1)
		test_fail("socat does not relay");
	int far = accept(l, NULL, NULL);
	if (far < 0)
		test_fail("accept: %s", strerror(errno));
	/* fill everything between the client and the far end, then a quiet moment */
	size_t sent = 0, got = 0;
	for (int i = 0; i < 50; i++) {
		sent = pump_out(c, sent);
		test_sleep_ms(10);
	}

	test_ready();
	if (test_sabotage()) {
		char b;
		(void)recv(far, &b, 1, MSG_DONTWAIT);
	}
	test_wait();

	_Alignas(8) static uint8_t buf[CHUNK];
	while (got < TOTAL) {
		struct pollfd fds[2] = { { .fd = far, .events = POLLIN },
					 { .fd = c, .events = sent < TOTAL ? POLLOUT : 0 } };
		if (poll(fds, 2, 5000) <= 0)
			test_fail("stalled at %zu of %u bytes (%zu sent)", got, TOTAL, sent);
		if (fds[1].revents & POLLOUT)
			sent = pump_out(c, sent);
		if (!(fds[0].revents & POLLIN))
			continue;
		ssize_t r = recv(far, buf, sizeof(buf), MSG_DONTWAIT);
		if (r < 0 && (errno == EAGAIN || errno == EINTR))
			continue;
		if (r <= 0 || got + (size_t)r > TOTAL)
			test_fail("recv at %zu: %zd (%s)", got, r, r < 0 ? strerror(errno) : "eof");
		if (memcmp(buf, stream + got, (size_t)r))
			test_fail("the stream differs in the %zd bytes at %zu", r, got);
		got += (size_t)r;
	}
	close(c);
	char b;
	p.fd = far;
	if (poll(&p, 1, 5000) != 1 || recv(far, &b, 1, 0) != 0)
		test_fail("no end of stream after the client closed");
	for (int i = 0; i < 500 && waitpid(socat, &status, WNOHANG) != socat; i++)
		test_sleep_ms(10);
	if (kill(socat, 0) == 0) {
		kill(socat, SIGKILL);
		waitpid(socat, &status, 0);
		test_fail("socat did not exit");
	}
	if (!WIFEXITED(status) || WEXITSTATUS(status))
		test_fail("socat exited with status %#x", status);
	unlink(in.sun_path);
	unlink(out.sun_path);
	test_pass();
}
