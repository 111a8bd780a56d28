/* The privileged helper's server loop: authenticate each connection with SO_PEERCRED,
 * receive one request per SOCK_SEQPACKET message, decode it (proto.c), run its handler
 * (ops.c), reply. Every refusal is logged once here with the reason the peer gets. */
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>

#include "core/log.h"
#include "core/util.h"
#include "helper/helper_int.h"

/* Room for a few more fds than any op takes, so that extra ones are seen (and closed)
 * rather than silently cut off. */
#define RECV_FDS 8

static const helper_op_fn handlers[] = {
	[HELPER_OP_REGISTER_TREE] = helper_op_register_tree,
	[HELPER_OP_SET_SOCKBUF_FORCE] = helper_op_sockbuf,
	[HELPER_OP_WRITE_ID_MAP] = helper_op_write_id_map,
	[HELPER_OP_SET_NS_LAST_PID] = helper_op_set_last_pid,
	[HELPER_OP_OPEN_BY_HANDLE] = helper_op_open_by_handle,
};

static void sess_free(struct helper_sess *s)
{
	if (s->sock >= 0)
		close(s->sock);
	if (s->root_pidfd >= 0)
		close(s->root_pidfd);
	free(s->groups);
	memset(s, 0, sizeof(*s));
	s->sock = s->root_pidfd = -1;
}

/* Send one reply (and @fd if >= 0). 0 or -errno. Never blocks: a peer that does not
 * read its replies is dropped. */
static int send_reply(int sock, uint16_t op, int status, const char *reason, int fd)
{
	char buf[HELPER_MAX_REPLY];
	ssize_t len = helper_reply_encode(op, status, reason, buf, sizeof(buf));

	if (len < 0)
		return (int)len;
	return send_fds(sock, buf, (size_t)len, &fd, fd >= 0 ? 1 : 0, MSG_DONTWAIT);
}

/* The fds of every SCM_RIGHTS message in @mh into @fds (at most RECV_FDS, the rest
 * closed); *@bad set if any other control message came. Returns the number kept. */
static unsigned int take_fds(struct msghdr *mh, int *fds, bool *bad)
{
	unsigned int n = 0;

	for (struct cmsghdr *c = CMSG_FIRSTHDR(mh); c; c = CMSG_NXTHDR(mh, c)) {
		if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS) {
			*bad = true;
			continue;
		}
		size_t cnt = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
		for (size_t i = 0; i < cnt; i++) {
			int fd;
			memcpy(&fd, CMSG_DATA(c) + i * sizeof(int), sizeof(int));
			if (n < RECV_FDS)
				fds[n++] = fd;
			else
				close(fd);
		}
	}
	return n;
}

/* Handle one message on @s. Returns 0 to go on, 1 when the peer closed the connection,
 * -errno to drop the connection. */
static int sess_handle_one(struct helper_sess *s)
{
	/* One byte more than the largest valid message, and MSG_TRUNC for the real size. */
	char buf[HELPER_MAX_MSG + 1];
	union {
		char b[CMSG_SPACE(sizeof(int) * RECV_FDS)];
		struct cmsghdr align;
	} cbuf;
	struct iovec iov = { .iov_base = buf, .iov_len = sizeof(buf) };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf.b,
			     .msg_controllen = sizeof(cbuf.b) };
	struct helper_req *req = NULL;
	int fds[RECV_FDS], out_fd = -1, ret;
	unsigned int nfds;
	bool bad_cmsg = false;
	char why[HELPER_REASON_MAX + 1] = "";
	ssize_t len;

	len = recvmsg(s->sock, &mh, MSG_DONTWAIT | MSG_TRUNC | MSG_CMSG_CLOEXEC);
	if (len < 0) {
		if (errno == EAGAIN || errno == EINTR)
			return 0;
		return pr_perror("helper: recvmsg from pid %d", s->peer.pid);
	}
	nfds = take_fds(&mh, fds, &bad_cmsg);
	if (len == 0 && !nfds)
		return 1;
	req = malloc(sizeof(*req));
	if (!req) {
		ret = -ENOMEM;
		snprintf(why, sizeof(why), "out of memory");
	} else if (mh.msg_flags & MSG_CTRUNC || bad_cmsg || nfds > HELPER_MAX_FDS) {
		ret = -EINVAL;
		snprintf(why, sizeof(why), "too many fds or unexpected control messages");
		memset(req, 0, sizeof(*req));
	} else {
		ret = helper_req_decode(buf, (size_t)len, nfds, req, why, sizeof(why));
	}
	if (!ret)
		ret = handlers[req->op](s, req, fds, &out_fd, why, sizeof(why));
	uint16_t op = req ? req->op : 0;
	if (ret) {
		uint16_t raw_op = 0;
		if (!op && len >= HELPER_HDR_SIZE)
			memcpy(&raw_op, buf + 6, sizeof(raw_op));
		pr_err("helper: refused %s (op %u) from pid %d uid %d: %s",
		       helper_op_name(op ? op : raw_op), op ? op : raw_op, s->peer.pid,
		       (int)s->peer.uid, why[0] ? why : strerror(-ret));
		if (!why[0])
			snprintf(why, sizeof(why), "%s", strerror(-ret));
	}
	free(req);
	for (unsigned int i = 0; i < nfds; i++)
		close(fds[i]);
	int sret = send_reply(s->sock, op, ret, ret ? why : NULL, ret ? -1 : out_fd);
	if (out_fd >= 0)
		close(out_fd);
	if (sret)
		return pr_errno(sret, "helper: cannot reply to pid %d (dropped)", s->peer.pid);
	return 0;
}

/* Authenticate a new connection: SO_PEERCRED, then its groups. 0, or -EACCES after
 * telling the peer why (the caller closes it). */
static int sess_init(struct helper_sess *s, int sock, const struct helper_cfg *cfg)
{
	socklen_t len = sizeof(s->peer);

	memset(s, 0, sizeof(*s));
	s->sock = sock;
	s->root_pidfd = -1;
	if (getsockopt(sock, SOL_SOCKET, SO_PEERCRED, &s->peer, &len) || len != sizeof(s->peer))
		return pr_perror("helper: SO_PEERCRED");
	if (s->peer.uid != 0 && s->peer.uid != cfg->serve_uid) {
		char why[HELPER_REASON_MAX];
		snprintf(why, sizeof(why), "uid %u is not served by this helper (only uid %u and root)",
			 (unsigned)s->peer.uid, (unsigned)cfg->serve_uid);
		pr_err("helper: refused connection from pid %d uid %u: %s", s->peer.pid,
		       (unsigned)s->peer.uid, why);
		(void)!send_reply(sock, 0, -EACCES, why, -1);
		return -EACCES;
	}
	len = 0;
	if (getsockopt(sock, SOL_SOCKET, SO_PEERGROUPS, NULL, &len) && errno != ERANGE)
		return pr_perror("helper: SO_PEERGROUPS");
	if (len / sizeof(gid_t) > HELPER_MAX_GROUPS)
		return pr_errno(-E2BIG, "helper: peer %d has too many groups", s->peer.pid);
	if (len) {
		s->groups = malloc(len);
		if (!s->groups)
			return -ENOMEM;
		if (getsockopt(sock, SOL_SOCKET, SO_PEERGROUPS, s->groups, &len))
			return pr_perror("helper: SO_PEERGROUPS");
	}
	s->ngroups = len / sizeof(gid_t);
	pr_info("helper: serving pid %d uid %u gid %u", s->peer.pid, (unsigned)s->peer.uid,
		(unsigned)s->peer.gid);
	return 0;
}

/* Whoever drives the helper must not be hijackable, and neither must the helper: no
 * ptrace by same-uid processes, no core dumps of its memory. */
static int helper_harden(void)
{
	if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0))
		return pr_perror("helper: PR_SET_DUMPABLE");
	signal(SIGPIPE, SIG_IGN);
	return 0;
}

int helper_serve_conn(int sock, const struct helper_cfg *cfg)
{
	struct helper_sess s;
	int ret = helper_harden();

	if (ret)
		return ret;
	ret = sess_init(&s, sock, cfg);
	while (!ret) {
		struct pollfd p = { .fd = sock, .events = POLLIN };
		if (poll(&p, 1, -1) < 0) {
			if (errno == EINTR)
				continue;
			ret = pr_perror("helper: poll");
			break;
		}
		ret = sess_handle_one(&s);
	}
	s.sock = -1; /* the caller's */
	sess_free(&s);
	return ret == 1 ? 0 : ret;
}

/* A unix socket bound at @path: 0600, owned by @uid; a stale socket file is replaced. */
static int listen_at(const char *path, uid_t uid)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	struct stat st;
	mode_t old;
	int ret;

	if (strlen(path) >= sizeof(sa.sun_path))
		return pr_errno(-ENAMETOOLONG, "helper: socket path %s", path);
	strcpy(sa.sun_path, path);
	if (!lstat(path, &st)) {
		if (!S_ISSOCK(st.st_mode))
			return pr_errno(-EEXIST, "helper: %s exists and is not a socket", path);
		if (unlink(path))
			return pr_perror("helper: cannot remove the stale socket %s", path);
	}
	_cleanup_close_ int fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return pr_perror("helper: socket");
	old = umask(0177);
	ret = bind(fd, (struct sockaddr *)&sa, sizeof(sa));
	umask(old);
	if (ret)
		return pr_perror("helper: bind %s", path);
	if (chown(path, uid, (gid_t)-1) || chmod(path, 0600) || listen(fd, 16)) {
		ret = pr_perror("helper: set up %s", path);
		unlink(path);
		return ret;
	}
	return take_fd(&fd);
}

static int stop_signals_fd(sigset_t *old)
{
	sigset_t set;

	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGHUP);
	if (sigprocmask(SIG_BLOCK, &set, old))
		return pr_perror("helper: sigprocmask");
	int fd = signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK);
	if (fd < 0) {
		int e = pr_perror("helper: signalfd");
		sigprocmask(SIG_SETMASK, old, NULL);
		return e;
	}
	return fd;
}

static void accept_one(int lfd, struct helper_sess *cl, size_t *ncl, const struct helper_cfg *cfg)
{
	int c = accept4(lfd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);

	if (c < 0) {
		if (errno != EAGAIN && errno != EINTR)
			pr_perror("helper: accept");
		return;
	}
	if (*ncl == HELPER_MAX_CLIENTS) {
		pr_err("helper: refused a connection: already %d clients", HELPER_MAX_CLIENTS);
		(void)!send_reply(c, 0, -EUSERS, "too many clients", -1);
		close(c);
		return;
	}
	if (sess_init(&cl[*ncl], c, cfg)) {
		sess_free(&cl[*ncl]);
		return;
	}
	(*ncl)++;
}

int helper_serve_socket(const char *path, const struct helper_cfg *cfg)
{
	struct helper_sess cl[HELPER_MAX_CLIENTS];
	struct pollfd p[HELPER_MAX_CLIENTS + 2];
	size_t ncl = 0;
	sigset_t old;
	int ret = helper_harden();

	if (ret)
		return ret;
	_cleanup_close_ int sfd = stop_signals_fd(&old);
	if (sfd < 0)
		return sfd;
	_cleanup_close_ int lfd = listen_at(path, cfg->serve_uid);
	if (lfd < 0) {
		sigprocmask(SIG_SETMASK, &old, NULL);
		return lfd;
	}
	pr_info("helper: listening on %s for uid %u and root", path, (unsigned)cfg->serve_uid);
	for (;;) {
		p[0] = (struct pollfd){ .fd = sfd, .events = POLLIN };
		p[1] = (struct pollfd){ .fd = lfd, .events = POLLIN };
		for (size_t i = 0; i < ncl; i++)
			p[i + 2] = (struct pollfd){ .fd = cl[i].sock, .events = POLLIN };
		if (poll(p, ncl + 2, -1) < 0) {
			if (errno == EINTR)
				continue;
			ret = pr_perror("helper: poll");
			break;
		}
		if (p[0].revents) {
			struct signalfd_siginfo si;
			/* consumed here, or it would kill us when unblocked below */
			if (read(sfd, &si, sizeof(si)) != sizeof(si))
				si.ssi_signo = 0;
			pr_info("helper: stopping on signal %u", si.ssi_signo);
			break;
		}
		/* Clients first, from the last so that removing one keeps the indices valid. */
		for (size_t i = ncl; i-- > 0;) {
			if (!p[i + 2].revents)
				continue;
			if (sess_handle_one(&cl[i])) {
				pr_info("helper: pid %d disconnected", cl[i].peer.pid);
				sess_free(&cl[i]);
				cl[i] = cl[--ncl];
			}
		}
		if (p[1].revents)
			accept_one(lfd, cl, &ncl, cfg);
	}
	for (size_t i = 0; i < ncl; i++)
		sess_free(&cl[i]);
	unlink(path);
	sigprocmask(SIG_SETMASK, &old, NULL);
	return ret;
}
