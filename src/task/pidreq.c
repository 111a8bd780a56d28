/* Pids at a pid-namespace level the creating task has no rights over.
 *
 * A task restored inside a user namespace of the tree holds no capability over the pid
 * namespaces owned by the namespaces above it (the host's, typically): clone3's set_tid
 * there is refused. The restoring stasis, outside, still may write that namespace's
 * ns_last_pid: the creator asks it to, then forks, and the kernel hands out the next pid
 * after it. Another process of the machine may fork in between and take the pid, so
 * stasis checks the pid the child got (through a pidfd the creator passes back) and the
 * creator retries with a fresh child when it is wrong.
 *
 * Protocol, over a SOCK_SEQPACKET socketpair inherited by every restore child (stasis
 * reads the other end), messages {int32 op, int32 val}: the creator sends
 * {PIDREQ_LAST_PID, want} with one end of a private socketpair (SCM_RIGHTS); stasis
 * writes ns_last_pid = want - 1 (itself, or through the stasis helper when it may not)
 * and answers {ANSWER, 0 or -errno} on the private socket; the creator clones with
 * CLONE_PIDFD and sends {ANSWER, 0} with the pidfd; stasis answers 0 (right pid) or
 * -EAGAIN. One request at a time: stasis serves the next only when this one is over.
 *
 * The same channel serves {PIDREQ_ID_MAPS, pid}: a creator whose write of a new user
 * namespace's maps was refused (ranges of the user's /etc/subuid) asks stasis, the only
 * process holding the helper's channel, to have them written; one answer. */
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "core/log.h"
#include "core/util.h"
#include "proc/parse.h"
#include "task/pidreq.h"

#define PIDREQ_TIMEOUT_MS 10000

int pidreq_send(int sock, int32_t op, int32_t val, int fd)
{
	int32_t m[2] = { op, val };
	return send_fds(sock, m, sizeof(m), &fd, fd >= 0 ? 1 : 0, 0);
}

int pidreq_recv(int sock, int32_t *op, int32_t *val, int *fd)
{
	char cbuf[CMSG_SPACE(sizeof(int))];
	int32_t m[2];
	struct iovec iov = { .iov_base = m, .iov_len = sizeof(m) };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf,
			     .msg_controllen = sizeof(cbuf) };
	struct pollfd p = { .fd = sock, .events = POLLIN };
	if (fd)
		*fd = -1;
	int r = poll(&p, 1, PIDREQ_TIMEOUT_MS);
	if (r != 1)
		return r == 0 ? -ETIMEDOUT : -errno;
	ssize_t n = recvmsg(sock, &mh, MSG_CMSG_CLOEXEC);
	int got = -1;
	for (struct cmsghdr *cm = CMSG_FIRSTHDR(&mh); cm; cm = CMSG_NXTHDR(&mh, cm))
		if (cm->cmsg_level == SOL_SOCKET && cm->cmsg_type == SCM_RIGHTS &&
		    cm->cmsg_len == CMSG_LEN(sizeof(int)))
			memcpy(&got, CMSG_DATA(cm), sizeof(int));
	if (n != (ssize_t)sizeof(m) || (mh.msg_flags & (MSG_TRUNC | MSG_CTRUNC)) ||
	    (got >= 0 && !fd)) {
		if (got >= 0)
			close(got);
		return n < 0 ? -errno : -EPROTO;
	}
	if (fd)
		*fd = got;
	if (op)
		*op = m[0];
	else if (m[0] != PIDREQ_ANSWER)
		return -EPROTO;
	*val = m[1];
	return 0;
}

/* The pid (in stasis's pid namespace) of a pidfd, -1 if unknown. */
static pid_t pidfd_pid(int pidfd)
{
	char path[64];
	int pid;
	snprintf(path, sizeof(path), "/proc/self/fdinfo/%d", pidfd);
	_cleanup_free_ char *buf = read_file_at(AT_FDCWD, path, 4096, NULL);
	return buf && !proc_parse_pidfd_pid(buf, &pid) ? pid : -1;
}

static int set_last_pid(const struct pidreq_ops *ops, pid_t want)
{
	char buf[16];
	int n = snprintf(buf, sizeof(buf), "%d", want - 1);
	_cleanup_close_ int fd = open("/proc/sys/kernel/ns_last_pid", O_WRONLY | O_CLOEXEC);
	if (fd >= 0 && write(fd, buf, (size_t)n) == n)
		return 0;
	/* without CAP_CHECKPOINT_RESTORE over this pid namespace: the helper may */
	if ((errno == EPERM || errno == EACCES) && ops->helper_last_pid)
		return ops->helper_last_pid(ops->arg, want - 1);
	return pr_perror("restore: write ns_last_pid for pid %d", want);
}

int pidreq_serve(int sock, const struct pidreq_ops *ops)
{
	int32_t op, want;
	int priv;
	int ret = pidreq_recv(sock, &op, &want, &priv);
	if (ret)
		return ret == -ETIMEDOUT ? 0 : ret;
	if (priv < 0)
		return 0;
	int32_t answer = 0;
	if ((op != PIDREQ_LAST_PID && op != PIDREQ_ID_MAPS) || want <= 1 ||
	    !ops->allowed(ops->arg, want)) {
		pr_err("restore: refused a request (%d) for pid %d (not a task of the image)", op,
		       want);
		answer = -EPERM;
	} else if (op == PIDREQ_ID_MAPS) {
		answer = ops->write_maps(ops->arg, want);
		if (pidreq_send(priv, PIDREQ_ANSWER, answer, -1))
			pr_debug("restore: the creator of pid %d went away", want);
		close(priv);
		return 0; /* the creator reports the failure */
	} else {
		answer = set_last_pid(ops, want);
	}
	ret = pidreq_send(priv, PIDREQ_ANSWER, answer, -1);
	if (!ret && !answer) {
		int32_t st;
		int pidfd;
		ret = pidreq_recv(priv, NULL, &st, &pidfd);
		if (!ret && !st) {
			pid_t got = pidfd >= 0 ? pidfd_pid(pidfd) : -1;
			int32_t verdict = got == want ? 0 : -EAGAIN;
			if (verdict)
				pr_info("restore: pid %d was taken meanwhile (the child got %d): retry",
					want, got);
			ret = pidreq_send(priv, PIDREQ_ANSWER, verdict, -1);
		}
		if (pidfd >= 0)
			close(pidfd);
	}
	close(priv);
	/* a creator that died or gave up fails on its own; stasis goes on serving */
	return answer && answer != -EPERM ? answer : 0;
}
