/* The client side of the privileged helper: see client.h. */
#include "helper/client.h"

#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>

#include "core/log.h"
#include "core/util.h"
#include "helper/helper_int.h"
#include "sys/kerndat.h"
#include "sys/syscalls.h"

/* The channel holder must not be ptraceable (see client.h). Also used by spawn.c. */
int helper_channel_harden(struct helper *h)
{
	int d = prctl(PR_GET_DUMPABLE, 0, 0, 0, 0);

	h->was_dumpable = d < 0 ? 1 : d;
	if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0))
		return pr_perror("helper: PR_SET_DUMPABLE 0");
	return 0;
}

void helper_channel_unharden(struct helper *h)
{
	if (h->was_dumpable)
		(void)!prctl(PR_SET_DUMPABLE, h->was_dumpable, 0, 0, 0);
}

int helper_connect(struct helper *h, const char *path)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int ret;

	h->fd = -1;
	h->pid = 0;
	if (strlen(path) >= sizeof(sa.sun_path))
		return pr_errno(-ENAMETOOLONG, "helper: socket path %s", path);
	strcpy(sa.sun_path, path);
	_cleanup_close_ int fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return pr_perror("helper: socket");
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)))
		return pr_perror("helper: cannot connect to %s", path);
	ret = helper_channel_harden(h);
	if (ret)
		return ret;
	h->fd = take_fd(&fd);
	return 0;
}

static struct helper *default_helper;

void helper_set_default(struct helper *h) { default_helper = h; }

struct helper *helper_default(void)
{
	return default_helper && default_helper->fd >= 0 ? default_helper : NULL;
}

void helper_child_after_fork(struct helper *h)
{
	if (h->fd >= 0)
		close(h->fd);
	h->fd = -1;
	h->pid = 0;
	helper_channel_unharden(h);
}

void helper_close(struct helper *h)
{
	int status;

	if (h->fd >= 0)
		close(h->fd);
	h->fd = -1;
	if (h->pid > 0) {
		/* The helper exits when the channel closes: give it 2 s, then kill it. */
		pid_t r = 0;
		for (int i = 0; i < 200 && (r = waitpid(h->pid, &status, WNOHANG)) == 0; i++)
			nanosleep(&(struct timespec){ 0, 10 * 1000 * 1000 }, NULL);
		if (r == 0) {
			pr_warn("helper: pid %d did not exit, killing it", h->pid);
			kill(h->pid, SIGKILL);
			r = waitpid(h->pid, &status, 0);
		}
		if (r == h->pid && !(WIFEXITED(status) && WEXITSTATUS(status) == 0))
			pr_warn("helper: pid %d ended with status 0x%x", h->pid, status);
		h->pid = 0;
	}
	helper_channel_unharden(h);
}


int helper_call_raw(struct helper *h, const void *msg, size_t len, const int *fds,
		    unsigned int nfds, struct helper_reply *rep, int *out_fd)
{
	char buf[HELPER_MAX_REPLY + 1], why[128];
	union {
		char b[CMSG_SPACE(sizeof(int) * 4)];
		struct cmsghdr align;
	} cbuf;
	struct iovec iov = { .iov_base = buf, .iov_len = sizeof(buf) };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf.b,
			     .msg_controllen = sizeof(cbuf.b) };
	struct pollfd p = { .fd = h->fd, .events = POLLIN };
	int got[4], ngot = 0, ret;

	if (out_fd)
		*out_fd = -1;
	if (h->fd < 0)
		return -EBADF;
	/* A helper that refuses the connection replies and closes at once: the send may
	 * then fail, but its reply is still there to read. */
	ret = send_fds(h->fd, msg, len, fds, nfds, 0);
	if (ret && ret != -EPIPE && ret != -ECONNRESET)
		return ret;
	do
		ret = poll(&p, 1, HELPER_CALL_TIMEOUT_MS);
	while (ret < 0 && errno == EINTR);
	if (ret <= 0)
		return ret < 0 ? -errno : -ETIMEDOUT;
	ssize_t n = recvmsg(h->fd, &mh, MSG_CMSG_CLOEXEC);
	/* A helper that closed without reading our request leaves ECONNRESET pending,
	 * reported before the reply it queued (its refusal): read once more for that. */
	if (n < 0 && errno == ECONNRESET)
		n = recvmsg(h->fd, &mh, MSG_CMSG_CLOEXEC | MSG_DONTWAIT);
	if (n < 0)
		return -errno;
	for (struct cmsghdr *c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c)) {
		if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
			continue;
		for (size_t i = 0; i < (c->cmsg_len - CMSG_LEN(0)) / sizeof(int); i++) {
			int fd;
			memcpy(&fd, CMSG_DATA(c) + i * sizeof(int), sizeof(int));
			if (ngot < 4)
				got[ngot++] = fd;
			else
				close(fd);
		}
	}
	if (n == 0)
		ret = -ECONNRESET;
	else if (mh.msg_flags & (MSG_TRUNC | MSG_CTRUNC) || ngot > 1)
		ret = -EPROTO;
	else
		ret = helper_reply_decode(buf, (size_t)n, rep, why, sizeof(why));
	if (!ret && ngot && rep->status)
		ret = -EPROTO; /* an fd with a refusal */
	if (!ret && ngot && out_fd)
		*out_fd = got[--ngot];
	while (ngot)
		close(got[--ngot]);
	return ret;
}

/* Encode, send, wait; log a transport failure or a refusal once. */
static int helper_call(struct helper *h, const struct helper_req *req, const int *fds,
		       int *out_fd)
{
	char msg[HELPER_MAX_MSG];
	struct helper_reply rep;
	const char *name = helper_op_name(req->op);
	ssize_t len = helper_req_encode(req, msg, sizeof(msg));
	int ret;

	if (len < 0)
		return pr_errno((int)len, "helper: cannot encode %s", name);
	ret = helper_call_raw(h, msg, (size_t)len, fds, helper_req_nfds(req), &rep, out_fd);
	if (ret)
		return pr_errno(ret, "helper: %s: no valid reply from the helper", name);
	if (rep.status) {
		pr_err("helper refused %s: %s", name,
		       rep.reason[0] ? rep.reason : strerror(-rep.status));
		return rep.status;
	}
	if (rep.op != req->op)
		return pr_errno(-EPROTO, "helper: reply to %s names op %u", name, rep.op);
	return 0;
}

/* A pidfd for @pid (the helper then finds the task whatever PID namespace the caller
 * is in), or -1 with *pid_field = pid on a kernel without pidfd_open. */
static int target_fd(pid_t pid, int32_t *pid_field, uint32_t *flags)
{
	if (!kdat_has(KD_PIDFD_OPEN)) {
		*pid_field = pid;
		return -1;
	}
	int fd = sys_pidfd_open(pid, 0);
	if (fd < 0)
		return pr_perror("helper: pidfd_open %d", pid);
	*pid_field = 0;
	*flags |= HELPER_F_PIDFD;
	return fd;
}

int helper_register_tree(struct helper *h, pid_t root)
{
	struct helper_req req = { .op = HELPER_OP_REGISTER_TREE };
	_cleanup_close_ int fd = target_fd(root, &req.u.tree.pid, &req.flags);

	if (fd < 0 && !(req.u.tree.pid))
		return fd;
	return helper_call(h, &req, &fd, NULL);
}

int helper_write_id_map(struct helper *h, pid_t pid, enum helper_id_map which,
			const struct id_range *r, size_t n, bool deny_setgroups)
{
	_cleanup_free_ struct helper_req *req = calloc(1, sizeof(*req));

	if (!req)
		return pr_errno(-ENOMEM, "helper: WRITE_ID_MAP");
	if (n == 0 || n > HELPER_MAX_ID_RANGES)
		return pr_errno(-EINVAL, "helper: %zu id ranges (1..%d)", n, HELPER_MAX_ID_RANGES);
	if (deny_setgroups && which != HELPER_GID_MAP)
		return pr_errno(-EINVAL, "helper: setgroups applies to a gid_map only");
	req->op = HELPER_OP_WRITE_ID_MAP;
	req->flags = (which == HELPER_GID_MAP ? HELPER_F_GID : 0) |
		     (deny_setgroups ? HELPER_F_DENY_SETGROUPS : 0);
	req->u.idmap.nr = (uint32_t)n;
	memcpy(req->u.idmap.r, r, n * sizeof(*r));
	_cleanup_close_ int fd = target_fd(pid, &req->u.idmap.pid, &req->flags);
	if (fd < 0 && !req->u.idmap.pid)
		return fd;
	return helper_call(h, req, &fd, NULL);
}

int helper_set_last_pid(struct helper *h, int pidns_fd, pid_t last_pid)
{
	struct helper_req req = { .op = HELPER_OP_SET_NS_LAST_PID };

	req.flags = pidns_fd >= 0 ? HELPER_F_PIDNS_FD : 0;
	req.u.last_pid.last_pid = last_pid;
	return helper_call(h, &req, &pidns_fd, NULL);
}

int helper_sockbuf_force(struct helper *h, int sk, int snd, int rcv)
{
	struct helper_req req = { .op = HELPER_OP_SET_SOCKBUF_FORCE };

	if (snd >= 0) {
		req.flags |= HELPER_F_SNDBUF;
		req.u.sockbuf.snd = (uint32_t)snd;
	}
	if (rcv >= 0) {
		req.flags |= HELPER_F_RCVBUF;
		req.u.sockbuf.rcv = (uint32_t)rcv;
	}
	if (!req.flags)
		return 0;
	return helper_call(h, &req, &sk, NULL);
}

int helper_open_by_handle(struct helper *h, int mount_fd, const struct file_handle *fh,
			  int flags, int *fd)
{
	struct helper_req req = { .op = HELPER_OP_OPEN_BY_HANDLE };

	*fd = -1;
	if (fh->handle_bytes == 0 || fh->handle_bytes > HELPER_MAX_HANDLE)
		return pr_errno(-EINVAL, "helper: file handle of %u bytes", fh->handle_bytes);
	req.u.handle.open_flags = (uint32_t)flags | O_CLOEXEC;
	req.u.handle.type = fh->handle_type;
	req.u.handle.bytes = fh->handle_bytes;
	memcpy(req.u.handle.f_handle, fh->f_handle, fh->handle_bytes);
	return helper_call(h, &req, &mount_fd, fd);
}
