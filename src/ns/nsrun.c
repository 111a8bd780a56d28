/* ns_run(): work done in a child that joined other namespaces, its answer brought back
 * over a pipe. See nsrun.h for the contract.
 *
 * Wire format, child to caller, written once when the work is done:
 *   struct reply_hdr, then msg_len bytes of error message, then len bytes of data.
 * The caller reads while it waits (a reply bigger than the pipe cannot block the child),
 * never more than the header, NSRUN_MSG_MAX and max_reply bytes. */
#include "ns/nsrun.h"

#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <linux/nsfs.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>

#include "core/log.h"
#include "sys/syscalls.h"

#define NSRUN_DEFAULT_MS 10000

struct reply_hdr {
	int32_t err;      /* the child's result: 0 or -errno */
	uint32_t raw;     /* the message is not the work's: logged without err_prefix */
	uint32_t msg_len; /* <= NSRUN_MSG_MAX */
	uint32_t pad;
	uint64_t len; /* bytes of data (0 unless err is 0) */
};

/* the child's first error message (only ever set in a child) */
static char child_msg[NSRUN_MSG_MAX];

int nsrun_error(int err, const char *fmt, ...)
{
	if (!child_msg[0]) {
		va_list ap;
		va_start(ap, fmt);
		vsnprintf(child_msg, sizeof(child_msg), fmt, ap);
		va_end(ap);
	}
	return err;
}

int nsrun_put(struct nsrun_buf *b, const void *p, size_t n)
{
	if (n > b->max - b->len)
		return nsrun_error(-EFBIG, "the reply is larger than %zu bytes", b->max);
	if (b->len + n > b->cap) {
		size_t cap = MIN(MAX(b->cap * 2, b->len + n), b->max);
		uint8_t *d = realloc(b->data, cap ? cap : 1);
		if (!d)
			return -ENOMEM;
		b->data = d;
		b->cap = cap;
	}
	memcpy(b->data + b->len, p, n);
	b->len += n;
	return 0;
}

int ns_open_of(pid_t pid, const char *kind, const char *tag)
{
	char path[64];
	snprintf(path, sizeof(path), "/proc/%d/ns/%s", pid, kind);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	return fd >= 0 ? fd : pr_perror("%s: open %s", tag, path);
}

bool ns_fd_is_ours(int nsfd, const char *kind)
{
	char self[64];
	struct stat a, b;
	snprintf(self, sizeof(self), "/proc/thread-self/ns/%s", kind);
	return fstat(nsfd, &a) == 0 && stat(self, &b) == 0 && a.st_ino == b.st_ino &&
	       a.st_dev == b.st_dev;
}

int ns_open_other(int proc_dfd, pid_t pid, const char *kind, const char *tag, int *fd)
{
	char path[64];
	snprintf(path, sizeof(path), "%s%d/ns/%s", proc_dfd >= 0 ? "" : "/proc/", pid, kind);
	*fd = openat(proc_dfd >= 0 ? proc_dfd : AT_FDCWD, path, O_RDONLY | O_CLOEXEC);
	if (*fd < 0)
		return pr_perror("%s: open %s", tag, path);
	if (ns_fd_is_ours(*fd, kind)) {
		close(*fd);
		*fd = -1;
	}
	return 0;
}

/* In the child: the owning user namespace of the first namespace if asked (and not
 * ours), then every namespace but a pid one (the child was born in that). */
static int join_all(const struct nsrun *r)
{
	for (size_t i = 0; i < r->n_ns; i++) {
		if (r->ns[i].type == CLONE_NEWPID)
			continue;
		if (r->via_owner) {
			_cleanup_close_ int ufd = ioctl(r->ns[i].fd, NS_GET_USERNS);
			struct stat owner, mine;
			if (ufd < 0 || fstat(ufd, &owner) < 0 || stat("/proc/self/ns/user", &mine) < 0)
				return -errno;
			if ((owner.st_ino != mine.st_ino || owner.st_dev != mine.st_dev) &&
			    setns(ufd, CLONE_NEWUSER) < 0)
				return -errno;
		}
		if (setns(r->ns[i].fd, r->ns[i].type) < 0)
			return -errno;
	}
	return 0;
}

static __attribute__((noreturn)) void child_main(const struct nsrun *r, int wfd, nsrun_fn fn,
						 void *arg, pid_t parent, bool born_in_pidns)
{
	/* dies with the caller; a caller outside a pid namespace we were born in is ppid 0 */
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	if (!born_in_pidns && getppid() != parent)
		_exit(1);
	child_msg[0] = '\0';
	log_reset_first_error();
	log_set_stage(NULL);
	struct nsrun_buf b = { .max = r->max_reply };
	struct reply_hdr h = { 0 };
	int err = join_all(r);
	if (err) {
		h.raw = 1;
		snprintf(child_msg, sizeof(child_msg), "%s: enter %s: %s", r->tag ? r->tag : "ns",
			 r->what, strerror(-err));
	} else {
		err = fn(arg, &b);
	}
	const char *msg = !err ? "" : child_msg[0] ? child_msg : log_first_error();
	h.err = err;
	h.msg_len = (uint32_t)MIN(strlen(msg), (size_t)NSRUN_MSG_MAX);
	h.len = err ? 0 : b.len;
	if (write_all(wfd, &h, sizeof(h)) || write_all(wfd, msg, h.msg_len) ||
	    (h.len && write_all(wfd, b.data, b.len)))
		_exit(1);
	_exit(0);
}

static long ms_left(const struct timespec *end)
{
	struct timespec now;
	clock_gettime(CLOCK_MONOTONIC, &now);
	long ms = (end->tv_sec - now.tv_sec) * 1000 + (end->tv_nsec - now.tv_nsec) / 1000000;
	return ms > 0 ? ms : 0;
}

/* Reap @child: wait (through @pidfd) until @end at most, then kill it. */
static int reap(pid_t child, int pidfd, const struct timespec *end, bool kill_now)
{
	if (!kill_now && pidfd >= 0) {
		struct pollfd pf = { .fd = pidfd, .events = POLLIN };
		int n;
		while ((n = poll(&pf, 1, (int)ms_left(end))) < 0 && errno == EINTR)
			;
		kill_now = n == 0;
	}
	if (kill_now)
		kill(child, SIGKILL);
	int st = 0;
	while (waitpid(child, &st, 0) < 0)
		if (errno != EINTR)
			return -1;
	return st;
}

/* Fork the child (born in the pid namespace of @r if there is one). */
static pid_t fork_child(const struct nsrun *r, int wfd, nsrun_fn fn, void *arg, int *err)
{
	const char *tag = r->tag ? r->tag : "ns";
	int pidns = -1;
	for (size_t i = 0; i < r->n_ns; i++)
		if (r->ns[i].type == CLONE_NEWPID)
			pidns = r->ns[i].fd;
	_cleanup_close_ int self = -1;
	if (pidns >= 0) {
		self = open("/proc/self/ns/pid", O_RDONLY | O_CLOEXEC);
		if (self < 0) {
			*err = pr_perror("%s: open /proc/self/ns/pid", tag);
			return -1;
		}
		if (setns(pidns, CLONE_NEWPID) < 0) {
			*err = pr_perror("%s: enter %s", tag, r->what);
			return -1;
		}
	}
	pid_t parent = getpid();
	/* the next fork lands in the pid namespace entered: its active one */
	pid_t child = fork();
	int ferr = errno;
	if (child == 0)
		child_main(r, wfd, fn, arg, parent, pidns >= 0);
	if (pidns >= 0 && setns(self, CLONE_NEWPID) < 0) {
		/* every later fork of stasis would land in the other namespace */
		*err = pr_perror("%s: back to stasis's pid namespace", tag);
		if (child > 0) {
			kill(child, SIGKILL);
			while (waitpid(child, NULL, 0) < 0 && errno == EINTR)
				;
		}
		return -1;
	}
	if (child < 0)
		*err = pr_errno(-ferr, "%s: fork to reach %s", tag, r->what);
	return child;
}

int ns_run(const struct nsrun *r, nsrun_fn fn, void *arg, void **data, size_t *len)
{
	const char *tag = r->tag ? r->tag : "ns";
	*data = NULL;
	*len = 0;
	int p[2];
	if (pipe2(p, O_CLOEXEC) < 0)
		return pr_perror("%s: pipe", tag);
	int ret = 0;
	pid_t child = fork_child(r, p[1], fn, arg, &ret);
	close(p[1]);
	if (child < 0) {
		close(p[0]);
		return ret;
	}
	_cleanup_close_ int pidfd = sys_pidfd_open(child, 0);
	struct timespec end;
	clock_gettime(CLOCK_MONOTONIC, &end);
	int tmo = r->timeout_ms > 0 ? r->timeout_ms : NSRUN_DEFAULT_MS;
	end.tv_sec += tmo / 1000;
	end.tv_nsec += (long)(tmo % 1000) * 1000000L;
	if (end.tv_nsec >= 1000000000L) {
		end.tv_sec++;
		end.tv_nsec -= 1000000000L;
	}

	/* read everything the child writes, bounded in size and time */
	const size_t max = sizeof(struct reply_hdr) + NSRUN_MSG_MAX + r->max_reply;
	size_t cap = MIN(max, (size_t)65536), n = 0;
	_cleanup_free_ uint8_t *buf = malloc(cap);
	if (!buf)
		ret = -ENOMEM;
	while (!ret) {
		struct pollfd pf = { .fd = p[0], .events = POLLIN };
		int k = poll(&pf, 1, (int)ms_left(&end));
		if (k < 0 && errno == EINTR)
			continue;
		if (k < 0) {
			ret = pr_perror("%s: poll", tag);
			break;
		}
		if (k == 0) {
			pr_err("%s: reading %s timed out", tag, r->what);
			ret = -ETIMEDOUT;
			break;
		}
		if (n == cap) {
			if (cap == max) {
				pr_err("%s: the reply for %s is larger than %zu bytes", tag, r->what,
				       r->max_reply);
				ret = -EFBIG;
				break;
			}
			size_t nc = MIN(cap * 2, max);
			uint8_t *nb = realloc(buf, nc);
			if (!nb) {
				ret = -ENOMEM;
				break;
			}
			buf = nb;
			cap = nc;
		}
		ssize_t got = read(p[0], buf + n, cap - n);
		if (got < 0 && errno == EINTR)
			continue;
		if (got < 0)
			ret = pr_perror("%s: read the reply for %s", tag, r->what);
		if (got <= 0)
			break;
		n += (size_t)got;
	}
	close(p[0]);
	int st = reap(child, pidfd, &end, ret != 0);
	if (ret)
		return ret;

	struct reply_hdr h;
	if (n < sizeof(h) || st != 0) {
		pr_err("%s: the child reading %s failed (status %#x)", tag, r->what, st);
		return -EIO;
	}
	memcpy(&h, buf, sizeof(h));
	if (h.msg_len > NSRUN_MSG_MAX || h.len > r->max_reply ||
	    n != sizeof(h) + h.msg_len + h.len || h.err > 0 || h.err < -4095 ||
	    (h.err && h.len)) {
		pr_err("%s: malformed reply for %s", tag, r->what);
		return -EIO;
	}
	if (h.err) {
		if (h.msg_len)
			pr_err("%s%.*s", h.raw || !r->err_prefix ? "" : r->err_prefix,
			       (int)h.msg_len, (const char *)buf + sizeof(h));
		return h.err;
	}
	if (h.len) {
		memmove(buf, buf + sizeof(h) + h.msg_len, h.len);
		*data = steal_ptr(&buf);
		*len = h.len;
	}
	return 0;
}

struct msg_call {
	nsrun_msg_fn fn;
	void *arg;
};

static int msg_child(void *arg, struct nsrun_buf *out)
{
	const struct msg_call *c = arg;
	int err = 0;
	ProtobufCMessage *m = c->fn(c->arg, &err);
	if (!m)
		return err ? err : -EIO;
	size_t n = protobuf_c_message_get_packed_size(m);
	if (n > out->max)
		return nsrun_error(-EFBIG, "the reply is larger than %zu bytes", out->max);
	out->data = malloc(n ? n : 1);
	if (!out->data)
		return -ENOMEM;
	out->cap = n;
	out->len = protobuf_c_message_pack(m, out->data);
	return 0;
}

int ns_run_msg(const struct nsrun *r, const ProtobufCMessageDescriptor *desc, nsrun_msg_fn fn,
	       void *arg, ProtobufCMessage **out)
{
	struct msg_call c = { fn, arg };
	_cleanup_free_ void *data = NULL;
	size_t len = 0;
	*out = NULL;
	int ret = ns_run(r, msg_child, &c, &data, &len);
	if (ret)
		return ret;
	*out = protobuf_c_message_unpack(desc, NULL, len, data);
	if (!*out) {
		pr_err("%s: cannot decode the reply for %s", r->tag ? r->tag : "ns", r->what);
		return -EIO;
	}
	return 0;
}

struct sock_in {
	int nsfd, domain, type, proto;
	int fd, err;
	bool entered;
	int *pair; /* socketpair() into these instead */
};

/* The socket (or pair) of @s, in the calling thread's network namespace. */
static void sock_make(struct sock_in *s)
{
	s->fd = s->pair ? socketpair(s->domain, s->type, s->proto, s->pair)
			: socket(s->domain, s->type, s->proto);
	s->err = s->fd < 0 ? errno : 0;
}

/* A thread of its own enters the namespace and ends there: whether this thread could
 * come back (CAP_SYS_ADMIN over the user namespace owning its own namespace, which a
 * stasis in a rootless container lacks) does not matter. */
static void *sock_in_thread(void *arg)
{
	struct sock_in *s = arg;
	s->entered = setns(s->nsfd, CLONE_NEWNET) == 0;
	if (s->entered)
		sock_make(s);
	else
		s->err = errno;
	return NULL;
}

static int sock_in(int proc_dfd, struct sock_in *s, const char *tag, const char *what)
{
	struct stat a, b;
	_cleanup_close_ int self =
		openat(proc_dfd >= 0 ? proc_dfd : AT_FDCWD,
		       proc_dfd >= 0 ? "thread-self/ns/net" : "/proc/thread-self/ns/net",
		       O_RDONLY | O_CLOEXEC);
	if (self < 0 || fstat(self, &a) < 0 || fstat(s->nsfd, &b) < 0)
		return pr_perror("%s: %s", tag, what);
	pthread_t th;
	int r = 0;
	if (a.st_ino == b.st_ino && a.st_dev == b.st_dev)
		sock_make(s); /* ours */
	else if ((r = pthread_create(&th, NULL, sock_in_thread, s)) ||
		 (r = pthread_join(th, NULL)))
		return pr_errno(-r, "%s: a thread to enter %s", tag, what);
	if (!s->entered)
		return pr_errno(-s->err, "%s: enter %s", tag, what);
	if (s->fd < 0)
		return pr_errno(-s->err, "%s: socket in %s", tag, what);
	return s->fd;
}

int ns_socket_in(int proc_dfd, int nsfd, int domain, int type, int proto, const char *tag,
		 const char *what)
{
	struct sock_in s = { nsfd, domain, type, proto, -1, 0, true, NULL };
	return sock_in(proc_dfd, &s, tag, what);
}

int ns_socketpair_in(int nsfd, int domain, int type, int proto, int sv[2], const char *tag,
		     const char *what)
{
	struct sock_in s = { nsfd, domain, type, proto, -1, 0, true, sv };
	int r = sock_in(-1, &s, tag, what);
	return r < 0 ? r : 0;
}

struct fd_child {
	nsrun_fd_fn fn;
	void *arg;
	int sock;
};

static int fd_child(void *arg, struct nsrun_buf *out)
{
	(void)out;
	const struct fd_child *q = arg;
	int fd = q->fn(q->arg);
	if (fd < 0)
		return fd;
	int ret = send_fds(q->sock, "f", 1, &fd, 1, 0);
	close(fd);
	return ret ? nsrun_error(ret, "send the file back: %s", strerror(-ret)) : 0;
}

int ns_run_fd(const struct nsrun *r, nsrun_fd_fn fn, void *arg)
{
	int sv[2];
	if (socketpair(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0, sv))
		return pr_perror("%s: socketpair", r->tag);
	struct fd_child q = { fn, arg, sv[1] };
	void *data = NULL;
	size_t len = 0;
	int ret = ns_run(r, fd_child, &q, &data, &len);
	free(data);
	close(sv[1]);
	int fd = -1;
	char byte;
	if (!ret) {
		ssize_t n = recv_fds(sv[0], &byte, 1, &fd, 1, MSG_DONTWAIT);
		ret = n < 0 ? (int)n : fd < 0 ? -EIO : 0;
	}
	close(sv[0]);
	if (ret && fd >= 0)
		close(fd);
	return ret ? ret : fd;
}
