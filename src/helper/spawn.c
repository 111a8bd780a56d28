/* The spawned mode of the privileged helper (client.h, helper_spawn): a forked copy of
 * the caller serves it over a socketpair. Apart from client.c so that a program that only
 * connects to a helper (stasis itself: `restore --helper`) does not link the server. */
#include "helper/client.h"

#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>

#include "core/log.h"
#include "core/util.h"
#include "helper/helper_int.h"
#include "sys/syscalls.h"

/* Close every fd from 3 up except those in @keep (each >= 3 or ignored). */
static void close_all_but(const int *keep, size_t n)
{
	unsigned int from = 3;

	for (;;) {
		unsigned int next = ~0U;
		for (size_t i = 0; i < n; i++)
			if (keep[i] >= (int)from && (unsigned int)keep[i] < next)
				next = (unsigned int)keep[i];
		if (next > from)
			close_range(from, next == ~0U ? ~0U : next - 1, 0);
		if (next == ~0U)
			break;
		from = next + 1;
	}
}

static void __attribute__((noreturn)) helper_child(int sock, pid_t parent)
{
	struct helper_cfg cfg = { .serve_uid = geteuid() };
	int keep[2] = { sock, log_get_fd() };
	sigset_t none;

	if (prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0) || getppid() != parent)
		_exit(1);
	close_all_but(keep, ARRAY_SIZE(keep));
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	log_set_stage("helper");
	_exit(helper_serve_conn(sock, &cfg) ? 1 : 0);
}

int helper_spawn(struct helper *h)
{
	pid_t parent = getpid(), pid;
	int sv[2], ret;

	h->fd = -1;
	h->pid = 0;
	/* Before the fork, so that the helper is never dumpable, not even for a moment. */
	ret = helper_channel_harden(h);
	if (ret)
		return ret;
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv)) {
		ret = pr_perror("helper: socketpair");
		helper_channel_unharden(h);
		return ret;
	}
	pid = fork();
	if (pid < 0) {
		ret = pr_perror("helper: fork");
		close(sv[0]);
		close(sv[1]);
		helper_channel_unharden(h);
		return ret;
	}
	if (pid == 0) {
		close(sv[0]);
		helper_child(sv[1], parent);
	}
	close(sv[1]);
	h->fd = sv[0];
	h->pid = pid;
	pr_info("helper: spawned pid %d", pid);
	return 0;
}
