/* Pids at pid-namespace levels the creating task has no rights over.
 *
 * A task restored inside a user namespace of the tree holds no capability over the pid
 * namespaces owned by the namespaces above it (the host's, a container's): clone3's
 * set_tid there is refused. The restoring stasis, outside, still may write those
 * namespaces' ns_last_pid: the creator asks it to, then forks with set_tid for the inner
 * levels only, and the kernel hands out the next pid after ns_last_pid at each outer
 * level. Another process of the machine may fork in between and take a pid, so stasis
 * checks the pids the child got (through a pidfd the creator passes back) and the creator
 * retries with a fresh child when one is wrong.
 *
 * ns_last_pid is per pid namespace and the sysctl writes the one of the writer's ACTIVE
 * pid namespace: for its own (the outermost level) stasis writes it; for an inner one a
 * child of stasis forked after setns(CLONE_NEWPID) into it writes it. That child takes a
 * pid at every level above, so the levels are set innermost first, stasis's own last.
 *
 * Protocol, over a SOCK_SEQPACKET socketpair inherited by every restore child (stasis
 * reads the other end), messages {int32 op, int32 val, int32 aux}: the creator sends
 * {PIDREQ_LAST_PID, pid, levels} with one end of a private socketpair (SCM_RIGHTS);
 * stasis sets ns_last_pid at those levels (itself, or through the stasis helper when it
 * may not) and answers {ANSWER, 0 or -errno} on the private socket; the creator clones
 * with CLONE_PIDFD and sends {ANSWER, 0} with the pidfd; stasis answers 0 (right pids) or
 * -EAGAIN. One request at a time: stasis serves the next only when this one is over.
 *
 * The same channel serves {PIDREQ_ID_MAPS, pid}: a creator whose write of a new user
 * namespace's maps was refused (ranges of the user's /etc/subuid) asks stasis, the only
 * process holding the helper's channel, to have them written; one answer. And
 * {PIDREQ_OPEN_FILES, pid}: the creator of a mount namespace, its tree rebuilt, gets the
 * files its tasks share opened in that tree by stasis (with stasis's rights), before it
 * creates them. */
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "core/log.h"
#include "core/util.h"
#include "proc/parse.h"
#include "cr/pidreq.h"
#include "cr/ctx.h"
#include "ns/ns.h"

#define PIDREQ_TIMEOUT_MS 10000

int pidreq_send(int sock, int32_t op, int32_t val, int32_t aux, int fd)
{
	int32_t m[3] = { op, val, aux };
	return send_fds(sock, m, sizeof(m), &fd, fd >= 0 ? 1 : 0, 0);
}

int pidreq_recv(int sock, int32_t *op, int32_t *val, int32_t *aux, int *fd)
{
	char cbuf[CMSG_SPACE(sizeof(int))];
	int32_t m[3];
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
	bool extra = false;
	/* Keep one fd; close any other the sender attached (two fit in cbuf), or they leak. */
	for (struct cmsghdr *cm = CMSG_FIRSTHDR(&mh); n >= 0 && cm; cm = CMSG_NXTHDR(&mh, cm)) {
		if (cm->cmsg_level != SOL_SOCKET || cm->cmsg_type != SCM_RIGHTS ||
		    cm->cmsg_len < CMSG_LEN(0))
			continue;
		size_t nfd = (cm->cmsg_len - CMSG_LEN(0)) / sizeof(int);
		for (size_t i = 0; i < nfd; i++) {
			int one;
			memcpy(&one, CMSG_DATA(cm) + i * sizeof(int), sizeof(int));
			if (got < 0 && !extra && nfd == 1) {
				got = one;
				continue;
			}
			close(one);
			extra = true;
		}
	}
	if (n != (ssize_t)sizeof(m) || (mh.msg_flags & (MSG_TRUNC | MSG_CTRUNC)) || extra ||
	    (got >= 0 && !fd) || (!op && m[0] != PIDREQ_ANSWER)) {
		if (got >= 0)
			close(got);
		return n < 0 ? -errno : -EPROTO;
	}
	if (fd)
		*fd = got;
	if (op)
		*op = m[0];
	*val = m[1];
	if (aux)
		*aux = m[2];
	return 0;
}

int pidreq_pidfd_nspid(int pidfd, int *nspid, size_t max, size_t *n)
{
	char path[64];
	snprintf(path, sizeof(path), "/proc/self/fdinfo/%d", pidfd);
	_cleanup_free_ char *buf = read_file_at(AT_FDCWD, path, 4096, NULL);
	if (!buf)
		return -errno;
	return proc_parse_pidfd_nspid(buf, nspid, max, n);
}

static int write_last_pid(pid_t last)
{
	char buf[16];
	int n = snprintf(buf, sizeof(buf), "%d", last);
	_cleanup_close_ int fd = open("/proc/sys/kernel/ns_last_pid", O_WRONLY | O_CLOEXEC);
	if (fd < 0 || write(fd, buf, (size_t)n) != n)
		return -errno;
	return 0;
}

int pidreq_set_last_pid(int ns_fd, pid_t last)
{
	int v = last;
	return ns_fd < 0 ? write_last_pid(last) : ns_last_pid_in(ns_fd, &v, true);
}

int pidreq_serve(int sock, const struct pidreq_ops *ops)
{
	int32_t op, want, levels;
	int priv;
	int ret = pidreq_recv(sock, &op, &want, &levels, &priv);
	if (ret)
		return ret == -ETIMEDOUT ? 0 : ret;
	if (priv < 0)
		return 0;
	int32_t answer = 0;
	bool pids = op == PIDREQ_LAST_PID || op == PIDREQ_LAST_SID || op == PIDREQ_LAST_FREE ||
		    op == PIDREQ_LAST_PGID;
	if ((op != PIDREQ_ID_MAPS && op != PIDREQ_OPEN_FILES && op != PIDREQ_SOCKBUF && !pids) ||
	    want <= 1 || !ops->allowed(ops->arg, want)) {
		pr_err("restore: refused a request (%d) for pid %d (not a task of the image)", op,
		       want);
		answer = -EPERM;
	} else if (op == PIDREQ_OPEN_FILES) {
		ops->open_files(ops->arg, want, priv);
		close(priv);
		return 0; /* the creator reports a failure */
	} else if (op == PIDREQ_SOCKBUF) {
		int32_t opt, size;
		int sk = -1;
		ret = pidreq_recv(priv, NULL, &opt, &size, &sk);
		answer = ret ? ret
		       : sk < 0 || (opt != SO_SNDBUF && opt != SO_RCVBUF) || size <= 0
			       ? -EINVAL
		       : !ops->sockbuf ? -EOPNOTSUPP
				       : ops->sockbuf(ops->arg, sk, opt, size);
		if (sk >= 0)
			close(sk);
		if (pidreq_send(priv, PIDREQ_ANSWER, answer, 0, -1))
			pr_debug("restore: pid %d went away", want);
		close(priv);
		return 0; /* the task reports the failure */
	} else if (op == PIDREQ_ID_MAPS) {
		answer = ops->write_maps(ops->arg, want);
		if (pidreq_send(priv, PIDREQ_ANSWER, answer, 0, -1))
			pr_debug("restore: the creator of pid %d went away", want);
		close(priv);
		return 0; /* the creator reports the failure */
	} else {
		answer = ops->prepare_pids(ops->arg, want, levels, op);
	}
	ret = pidreq_send(priv, PIDREQ_ANSWER, answer, 0, -1);
	if (!ret && !answer) {
		int32_t st;
		int pidfd;
		ret = pidreq_recv(priv, NULL, &st, NULL, &pidfd);
		if (!ret && !st) {
			int32_t verdict =
				pidfd >= 0 && ops->check_pids(ops->arg, want, levels, op, pidfd) ? 0
											: -EAGAIN;
			ret = pidreq_send(priv, PIDREQ_ANSWER, verdict, 0, -1);
		}
		if (pidfd >= 0)
			close(pidfd);
	}
	close(priv);
	/* a creator that died or gave up fails on its own; stasis goes on serving */
	return answer && answer != -EPERM ? answer : 0;
}
