/* Helpers of the datagram socket rows (sk_udp.c, sk_netlink.c, sk_packet.c): see
 * sk_dgram.h. */
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdlib.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <linux/sock_diag.h>
#include <unistd.h>

#include "core/log.h"
#include "core/util.h"
#include "net/sk_dgram.h"
#include "ns/nsrun.h"

#define DIAG_BUF (32u << 10)

int sk_ident_of(const struct dump_ctx *c, const struct fd_ent *e, struct sk_ident *id)
{
	(void)c;
	if (!S_ISSOCK(e->st.st_mode))
		return 0;
	*id = (struct sk_ident){ e->sk_domain, e->sk_type, e->sk_proto }; /* (collect_ent) */
	return 1;
}

int sk_refuse(pid_t pid, int fd, const char *link, const char *what)
{
	pr_err("fd %d of pid %d is %s (%s): not supported yet", fd, pid, what, link ?: "?");
	return -EOPNOTSUPP;
}

static int netns_cookie(int sk, uint64_t *cookie)
{
	socklen_t l = sizeof(*cookie);
	return getsockopt(sk, SOL_SOCKET, SO_NETNS_COOKIE, cookie, &l) ? -errno : 0;
}

/* In a child inside the namespace: the sock_diag socket, sent back over @arg. */
static int diag_child(void *arg, struct nsrun_buf *out)
{
	(void)out;
	int sv = *(const int *)arg;
	int s = socket(AF_NETLINK, SOCK_DGRAM | SOCK_CLOEXEC, NETLINK_SOCK_DIAG);
	if (s < 0)
		return nsrun_error(-errno, "socket(NETLINK_SOCK_DIAG): %s", strerror(errno));
	int ret = send_fds(sv, "s", 1, &s, 1, 0);
	close(s);
	return ret ? nsrun_error(ret, "send the sock_diag socket back: %s", strerror(-ret)) : 0;
}

static int recv_one_fd(int sv)
{
	_Alignas(struct cmsghdr) char cbuf[CMSG_SPACE(sizeof(int))];
	char b;
	struct iovec iov = { .iov_base = &b, .iov_len = 1 };
	struct msghdr mh = { .msg_iov = &iov,
			     .msg_iovlen = 1,
			     .msg_control = cbuf,
			     .msg_controllen = sizeof(cbuf) };
	if (recvmsg(sv, &mh, MSG_CMSG_CLOEXEC | MSG_DONTWAIT) != 1)
		return -EIO;
	struct cmsghdr *cm = CMSG_FIRSTHDR(&mh);
	if (!cm || cm->cmsg_level != SOL_SOCKET || cm->cmsg_type != SCM_RIGHTS ||
	    cm->cmsg_len != CMSG_LEN(sizeof(int)))
		return -EIO;
	int fd;
	memcpy(&fd, CMSG_DATA(cm), sizeof(fd));
	return fd;
}

/* The sock_diag socket of namespace @ns: made here when it is ours or we may enter it
 * and come back (ns_socket_in), else by a child that enters it through its owning user
 * namespace (a namespace the tree made inside a user namespace, when stasis has no
 * CAP_SYS_ADMIN over its own namespace to come back to). */
static int diag_socket_of(pid_t pid, int ns, const char *what)
{
	if (ns_fd_is_ours(ns, "net"))
		return ns_socket_in(-1, ns, AF_NETLINK, SOCK_DGRAM | SOCK_CLOEXEC,
				    NETLINK_SOCK_DIAG, "sock_diag", what);
	int sv[2];
	if (socketpair(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0, sv))
		return pr_perror("sock_diag: socketpair");
	struct nsrun r = { .tag = "sock_diag",
			   .what = what,
			   .err_prefix = "sock_diag",
			   .ns = { { .fd = ns, .type = CLONE_NEWNET } },
			   .n_ns = 1,
			   .via_owner = true,
			   .timeout_ms = 5000,
			   .max_reply = 0 };
	void *data = NULL;
	size_t len = 0;
	int ret = ns_run(&r, diag_child, &sv[1], &data, &len);
	free(data);
	close(sv[1]);
	int fd = ret ? ret : recv_one_fd(sv[0]);
	close(sv[0]);
	if (fd < 0)
		return pr_errno(fd, "sock_diag: a socket in %s (pid %d)", what, pid);
	return fd;
}

int sk_diag_open(pid_t pid, int fd, int dup, const char *link)
{
	char what[64];
	snprintf(what, sizeof(what), "the network namespace of pid %d", pid);
	_cleanup_close_ int ns = ns_open_of(pid, "net", "sock_diag");
	if (ns < 0)
		return ns;
	_cleanup_close_ int nl = diag_socket_of(pid, ns, what);
	if (nl < 0)
		return nl;
	struct timeval tv = { .tv_sec = 5 };
	(void)setsockopt(nl, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	if (dup >= 0) {
		uint64_t a = 0, b = 0;
		int ret = netns_cookie(dup, &a);
		if (!ret)
			ret = netns_cookie(nl, &b);
		if (ret)
			return pr_errno(ret, "fd %d of pid %d: SO_NETNS_COOKIE", fd, pid);
		if (a != b)
			return sk_refuse(pid, fd, link,
					 "a socket of another network namespace "
					 "than its task's");
	}
	return take_fd(&nl);
}

static int diag_walk(const char *buf, size_t n, sk_diag_cb cb, void *arg, const char *what, bool *done)
{
	for (const struct nlmsghdr *h = (const struct nlmsghdr *)buf; NLMSG_OK(h, n);
	     h = NLMSG_NEXT(h, n)) {
		if (h->nlmsg_type == NLMSG_DONE) {
			*done = true;
			return 0;
		}
		if (h->nlmsg_type == NLMSG_ERROR) {
			const struct nlmsgerr *e = NLMSG_DATA(h);
			int err = h->nlmsg_len >= NLMSG_LENGTH(sizeof(*e)) && e->error ? e->error
										       : -EIO;
			return pr_errno(err, "sock_diag dump of %s", what);
		}
		int ret = cb(h, arg);
		if (ret)
			return ret;
	}
	return 0;
}

int sk_diag_dump(int nl, void *req, size_t len, sk_diag_cb cb, void *arg, const char *what)
{
	struct nlmsghdr *rh = req;
	rh->nlmsg_len = (uint32_t)len;
	rh->nlmsg_type = SOCK_DIAG_BY_FAMILY;
	rh->nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP;
	rh->nlmsg_seq = 1;
	if (send(nl, req, len, 0) != (ssize_t)len)
		return pr_perror("sock_diag dump request of %s", what);
	_cleanup_free_ char *buf = malloc(DIAG_BUF);
	if (!buf)
		return pr_errno(-ENOMEM, "sock_diag dump of %s", what);
	bool done = false;
	/* bounded: the socket has a receive timeout, and a dump ends */
	for (unsigned int rounds = 0; !done; rounds++) {
		if (rounds > (1u << 20)) {
			pr_err("sock_diag dump of %s does not end", what);
			return -EIO;
		}
		ssize_t n = recv(nl, buf, DIAG_BUF, 0);
		if (n < 0)
			return pr_perror("sock_diag dump of %s", what);
		if (n == 0) {
			pr_err("sock_diag dump of %s: end of stream", what);
			return -EIO;
		}
		int ret = diag_walk(buf, (size_t)n, cb, arg, what, &done);
		if (ret)
			return ret;
	}
	return 0;
}

uint64_t sk_netns_ino(const struct dump_ctx *c)
{
	/* (read once per process by the namespaces resource, which runs first) */
	if (c->core && c->core->ns && c->core->ns->net)
		return c->core->ns->net;
	struct stat st;
	if (fstatat(c->procfd, "ns/net", &st, 0)) {
		pr_perror("stat /proc/%d/ns/net", c->pid);
		return 0;
	}
	return st.st_ino;
}

bool sk_has_queued(int sk)
{
	struct pollfd p = { .fd = sk, .events = POLLIN | POLLRDHUP };
	return poll(&p, 1, 0) == 1 && (p.revents & POLLIN) && !(p.revents & POLLRDHUP);
}

int sk_refuse_error(pid_t pid, int fd, int sk, const char *link, const char *what)
{
	struct pollfd p = { .fd = sk, .events = 0 };
	if (poll(&p, 1, 0) != 1 || !(p.revents & POLLERR))
		return 0;
	char msg[160];
	snprintf(msg, sizeof(msg),
		 "%s with a pending error or a non-empty error queue (it "
		 "would be consumed by reading it)",
		 what);
	return sk_refuse(pid, fd, link, msg);
}

int sk_refuse_shared(struct dump_ctx **procs, size_t n, FileKind kind, const char *what)
{
	_cleanup_free_ uint64_t *ns = calloc(n ? n : 1, sizeof(*ns));
	if (!ns)
		return pr_errno(-ENOMEM, "the %ss of the tree", what);
	bool one = true; /* (every process in one namespace: nothing to check) */
	for (size_t p = 0; p < n; p++) {
		if (!(ns[p] = sk_netns_ino(procs[p])))
			return -EIO;
		one &= ns[p] == ns[0];
	}
	for (size_t p = 0; p < n && !one; p++) {
		const Files *f = procs[p]->files;
		for (size_t i = 0; i < f->n_files; i++) {
			/* (of another namespace than its holders': made there: see
			 * files_netns_merge) */
			if (f->files[i]->kind != kind || f->files[i]->has_netns)
				continue;
			for (size_t q = p + 1; q < n; q++) {
				const Files *g = procs[q]->files;
				ssize_t j = fd_desc_index(g, f->files[i]->id);
				if (ns[q] == ns[p] || j < 0 || g->files[j]->has_netns)
					continue;
				pr_err("fd %d of pid %d is %s shared with pid %d, in another "
				       "network namespace: not supported yet",
				       fd_desc_fd(f, i), procs[p]->pid, what, procs[q]->pid);
				return -EOPNOTSUPP;
			}
		}
	}
	return 0;
}

int sk_inos_add(struct sk_inos *s, uint64_t ino)
{
	if (s->n == s->cap) {
		size_t nc = s->cap ? s->cap * 2 : 64;
		uint64_t *nv = realloc(s->v, nc * sizeof(*nv));
		if (!nv)
			return -ENOMEM;
		s->v = nv;
		s->cap = nc;
	}
	s->v[s->n++] = ino;
	return 0;
}

int sk_check_seen(struct dump_ctx **procs, size_t n, const uint64_t *ns, uint64_t netns,
		  FileKind kind, const struct sk_inos *seen, const char *what)
{
	for (size_t p = 0; p < n; p++) {
		const Files *f = procs[p]->files;
		for (size_t i = 0; ns[p] == netns && i < f->n_files; i++) {
			if (f->files[i]->kind != kind)
				continue;
			bool found = false;
			for (size_t k = 0; k < seen->n && !found; k++)
				found = seen->v[k] == f->files[i]->ino;
			if (!found)
				return sk_refuse(procs[p]->pid, fd_desc_fd(f, i), f->files[i]->link,
						 what);
		}
	}
	return 0;
}

static bool ns_has_kind(const struct sk_scan *s, FileKind kind)
{
	for (size_t p = 0; p < s->n; p++)
		for (size_t i = 0; s->ns[p] == s->netns && i < s->procs[p]->files->n_files; i++)
			if (s->procs[p]->files->files[i]->kind == kind)
				return true;
	return false;
}

int sk_diag_scan(struct dump_ctx **procs, size_t n, FileKind kind, void *req, size_t len,
		 sk_diag_cb one, const char *what)
{
	_cleanup_free_ uint64_t *ns = calloc(n, sizeof(*ns));
	if (!ns)
		return pr_errno(-ENOMEM, "the %ss of the tree", what);
	for (size_t p = 0; p < n; p++)
		if (!(ns[p] = sk_netns_ino(procs[p])))
			return -EIO;
	struct sk_scan s = { .procs = procs, .n = n, .ns = ns };
	int ret = 0;
	for (size_t p = 0; p < n && !ret; p++) {
		bool first = true;
		for (size_t q = 0; q < p && first; q++)
			first = ns[q] != ns[p];
		s.netns = ns[p];
		if (!first || !ns_has_kind(&s, kind))
			continue;
		int nl = sk_diag_open(procs[p]->ospid, -1, -1, NULL);
		if (nl < 0) {
			ret = nl;
			break;
		}
		char dump[96], other[128];
		snprintf(dump, sizeof(dump), "the %ss of pid %d", what, procs[p]->pid);
		snprintf(other, sizeof(other), "a %s of another network namespace than its task's",
			 what);
		s.seen.n = 0;
		ret = sk_diag_dump(nl, req, len, one, &s, dump);
		close(nl);
		if (!ret)
			ret = sk_check_seen(procs, n, ns, s.netns, kind, &s.seen, other);
	}
	free(s.seen.v);
	return ret;
}
