/* ns_run(): the reply comes back bounded and typed, the child's error and message with
 * it, a child that hangs is killed on time and every child is reaped. The namespace
 * tests (ns_fd_is_ours, ns_open_other) and the descriptor passing they go with
 * (send_fds, recv_fds). */
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "unit.h"

#include "core/log.h"
#include "core/util.h"
#include "ns/nsrun.h"
#include "image/stasis.pb-c.h"

static bool no_child_left(void)
{
	return waitpid(-1, NULL, WNOHANG) == -1 && errno == ECHILD;
}

static int put_hello(void *arg, struct nsrun_buf *out)
{
	(void)arg;
	return nsrun_put(out, "hello", 5);
}

static int put_pid(void *arg, struct nsrun_buf *out)
{
	(void)arg;
	pid_t p = getpid();
	return nsrun_put(out, &p, sizeof(p));
}

static int fail_with_msg(void *arg, struct nsrun_buf *out)
{
	(void)arg;
	(void)out;
	return nsrun_error(-EOPNOTSUPP, "thing %d is not supported", 7);
}

static int fail_with_pr_err(void *arg, struct nsrun_buf *out)
{
	(void)arg;
	(void)out;
	pr_err("logged in the child");
	return -EPERM;
}

static int hang(void *arg, struct nsrun_buf *out)
{
	(void)arg;
	(void)out;
	for (;;)
		pause();
	return 0;
}

static int too_big(void *arg, struct nsrun_buf *out)
{
	(void)arg;
	static char big[4096];
	return nsrun_put(out, big, sizeof(big));
}

static void test_reply(void)
{
	struct nsrun r = { .tag = "t", .what = "nothing", .max_reply = 16 };
	void *data;
	size_t len;
	CHECK_EQ(ns_run(&r, put_hello, NULL, &data, &len), 0);
	CHECK_EQ(len, 5);
	CHECK(data && !memcmp(data, "hello", 5));
	free(data);
	CHECK_EQ(ns_run(&r, put_pid, NULL, &data, &len), 0);
	CHECK(len == sizeof(pid_t) && *(pid_t *)data != getpid());
	free(data);
	CHECK(no_child_left());
}

static void test_errors(void)
{
	struct nsrun r = { .tag = "t", .what = "nothing", .err_prefix = "pfx: ", .max_reply = 16 };
	void *data = (void *)1;
	size_t len = 1;
	log_reset_first_error();
	CHECK_EQ(ns_run(&r, fail_with_msg, NULL, &data, &len), -EOPNOTSUPP);
	CHECK(data == NULL && len == 0);
	CHECK_STREQ(log_first_error(), "pfx: thing 7 is not supported");
	log_reset_first_error();
	CHECK_EQ(ns_run(&r, fail_with_pr_err, NULL, &data, &len), -EPERM);
	CHECK_STREQ(log_first_error(), "pfx: logged in the child");
	log_reset_first_error();
	CHECK_EQ(ns_run(&r, too_big, NULL, &data, &len), -EFBIG);
	CHECK(strstr(log_first_error(), "larger than 16 bytes") != NULL);
	CHECK(no_child_left());
}

static void test_timeout(void)
{
	struct nsrun r = { .tag = "t", .what = "a hang", .timeout_ms = 200, .max_reply = 16 };
	void *data;
	size_t len;
	struct timespec a, b;
	log_reset_first_error();
	clock_gettime(CLOCK_MONOTONIC, &a);
	CHECK_EQ(ns_run(&r, hang, NULL, &data, &len), -ETIMEDOUT);
	clock_gettime(CLOCK_MONOTONIC, &b);
	long ms = (b.tv_sec - a.tv_sec) * 1000 + (b.tv_nsec - a.tv_nsec) / 1000000;
	CHECK(ms >= 190 && ms < 5000);
	CHECK_STREQ(log_first_error(), "t: reading a hang timed out");
	CHECK(no_child_left());
}

static ProtobufCMessage *make_uts(void *arg, int *err)
{
	static UtsNs u = UTS_NS__INIT;
	static struct utsname n;
	(void)arg;
	if (uname(&n) < 0) {
		*err = -errno;
		return NULL;
	}
	u.hostname = n.nodename;
	u.domainname = n.domainname;
	return &u.base;
}

/* A protobuf reply, read inside a UTS namespace of our own (made and joined again: needs
 * CAP_SYS_ADMIN in our user namespace, else no namespace is joined). */
static void test_msg(void)
{
	struct nsrun r = { .tag = "t", .what = "our UTS namespace", .via_owner = true,
			   .max_reply = 1024 };
	bool own = unshare(CLONE_NEWUTS) == 0 && sethostname("nsrun-test", 10) == 0;
	int fd = open("/proc/self/ns/uts", O_RDONLY | O_CLOEXEC);
	CHECK(fd >= 0);
	if (own && fd >= 0) {
		r.ns[0] = (struct nsrun_ns){ fd, CLONE_NEWUTS };
		r.n_ns = 1;
	}
	ProtobufCMessage *m = NULL;
	CHECK_EQ(ns_run_msg(&r, &uts_ns__descriptor, make_uts, NULL, &m), 0);
	struct utsname n;
	CHECK(uname(&n) == 0);
	if (m)
		CHECK_STREQ(((UtsNs *)m)->hostname, n.nodename);
	if (m && own)
		CHECK_STREQ(((UtsNs *)m)->hostname, "nsrun-test");
	protobuf_c_message_free_unpacked(m, NULL);
	close(fd);
	CHECK(no_child_left());
}

static bool same_file(int a, int b)
{
	struct stat x, y;
	return !fstat(a, &x) && !fstat(b, &y) && x.st_ino == y.st_ino && x.st_dev == y.st_dev;
}

static void test_fds(void)
{
	int sv[2], p[2];
	CHECK(!socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv));
	CHECK(!pipe(p));
	int got[2] = { -1, -1 };
	char m = 0;
	/* two descriptors in a message */
	CHECK_EQ(send_fds(sv[0], "a", 1, p, 2, 0), 0);
	CHECK_EQ(recv_fds(sv[1], &m, 1, got, 2, 0), 1);
	CHECK(m == 'a' && same_file(got[0], p[0]) && same_file(got[1], p[1]));
	CHECK(fcntl(got[0], F_GETFD) & FD_CLOEXEC);
	close(got[0]);
	close(got[1]);
	/* more than asked for: refused, nothing left open */
	int before = dup(0), after;
	close(before);
	got[0] = got[1] = -1;
	CHECK_EQ(send_fds(sv[0], "b", 1, p, 2, 0), 0);
	CHECK_EQ(recv_fds(sv[1], &m, 1, got, 1, 0), -EPROTO);
	CHECK(got[0] == -1);
	after = dup(0);
	CHECK_EQ(after, before);
	close(after);
	/* none, then the end */
	CHECK_EQ(send_fds(sv[0], "c", 1, NULL, 0, 0), 0);
	CHECK_EQ(recv_fds(sv[1], &m, 1, got, 2, 0), 1);
	CHECK(m == 'c' && got[0] == -1);
	close(sv[0]);
	CHECK_EQ(recv_fds(sv[1], &m, 1, got, 2, 0), 0);
	close(sv[1]);
	close(p[0]);
	close(p[1]);
}

static void test_ns_ours(void)
{
	int fd = ns_open_of(getpid(), "net", "test");
	CHECK(fd >= 0 && ns_fd_is_ours(fd, "net"));
	CHECK(fd >= 0 && !ns_fd_is_ours(fd, "uts")); /* another kind's file: not the same */
	close(fd);
	int other = -2;
	CHECK_EQ(ns_open_other(-1, getpid(), "pid", "test", &other), 0);
	CHECK_EQ(other, -1); /* ours */
	if (getuid() != 0)
		return;
	/* a child in a network namespace of its own */
	int go[2];
	CHECK(!pipe(go));
	pid_t c = fork();
	if (c == 0) {
		if (unshare(CLONE_NEWNET) || write(go[1], "r", 1) != 1)
			_exit(1);
		pause(); /* until killed */
		_exit(0);
	}
	close(go[1]);
	char b;
	CHECK(read(go[0], &b, 1) == 1);
	CHECK_EQ(ns_open_other(-1, c, "net", "test", &other), 0);
	CHECK(other >= 0 && !ns_fd_is_ours(other, "net"));
	if (other >= 0)
		close(other);
	kill(c, SIGKILL);
	CHECK(waitpid(c, NULL, 0) == c);
	close(go[0]);
}

int main(void)
{
	if (log_init(NULL, LOG_NONE))
		return 1;
	RUN(test_reply);
	RUN(test_errors);
	RUN(test_timeout);
	RUN(test_msg);
	RUN(test_fds);
	RUN(test_ns_ours);
	return unit_done();
}
