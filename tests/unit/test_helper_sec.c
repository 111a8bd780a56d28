// stasis-test: rootless-known=runs helpers as the host's root and as another host user
/* Security tests of the privileged helper against real helpers (needs root; exit 77
 * otherwise). Every refusal must come back with a non-zero status and a reason, and be
 * logged in the helper's log.
 *
 *  1. spawned mode, root peer: unknown op, oversized, truncated, bad magic, extra fds,
 *     requests before a tree is registered, a tree root that is not the caller's
 *     descendant, a target outside the tree: refused. Allowed: id maps of a child in a
 *     new user namespace (any ranges for root; the kernel's one-write rule still
 *     holds), ns_last_pid (the next fork gets the pid; another PID namespace refused),
 *     SO_*BUFFORCE (over the limit and on a non-socket refused), open by handle.
 *  2. long-lived mode, run as root serving `stasis-test` (its first /etc/subuid and
 *     /etc/subgid ranges): a child of the test drops to that user and checks that an owned
 *     range works (/proc/CHILD/uid_map shows it), a range it does not own and a gid map
 *     of its own gid without setgroups "deny" are refused, tasks outside its tree are
 *     refused, SO_SNDBUFFORCE works through the helper (not without), a handle of its own
 *     file opens, a root-only file and a file under a directory it cannot search are
 *     refused, ns_last_pid works; the channel holder and a spawned helper are not
 *     dumpable (not even the peer can ptrace its own helper).
 *  3. a long-lived helper serving only root: `stasis-test` cannot connect (socket mode
 *     0600) and, once the socket is opened up, is refused by SO_PEERCRED.
 *  4. the command `stasis helper --socket PATH --user stasis-test` (BUILD/stasis next to
 *     this binary): it execs the separate program BUILD/stasis-helper, which serves,
 *     refuses and logs, stops on SIGTERM and removes its socket; a stasis without a
 *     stasis-helper beside it fails (127) and names the missing program.
 * Every child is killed by pid and reaped; every wait is bounded. */
#include <fcntl.h>
#include <grp.h>
#include <poll.h>
#include <pwd.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <sys/prctl.h>
#include <sys/ptrace.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>

#include "core/log.h"
#include "core/util.h"
#include "helper/client.h"
#include "helper/helper.h"
#include "helper/proto.h"
#include "unit.h"

#define USER_NAME "stasis-test"
#define WAIT_MS 10000

static char tmpdir[64];
static char client_log[128], spawn_log[128], ll_log[128], ll_sock[128], root_log[128], root_sock[128];
static uid_t user_uid;
static uint32_t sub_uid, sub_gid, sub_end; /* the user's subordinate ids (setup) */
static gid_t user_gid;
static bool user_has_subids;

/* ---- processes -------------------------------------------------------------------- */

static void reap(pid_t pid)
{
	int st;

	if (pid <= 0)
		return;
	kill(pid, SIGKILL);
	while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
		;
}

/* Wait (bounded) for @pid's exit status; killed on a timeout (-1). */
static int wait_exit(pid_t pid, int ms)
{
	int st;

	for (int i = 0; i < ms / 10; i++) {
		pid_t r = waitpid(pid, &st, WNOHANG);
		if (r == pid)
			return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
		nanosleep(&(struct timespec){ 0, 10000000 }, NULL);
	}
	reap(pid);
	return -1;
}

static bool wait_byte(int fd)
{
	struct pollfd p = { .fd = fd, .events = POLLIN };
	char c;
	return poll(&p, 1, WAIT_MS) == 1 && read(fd, &c, 1) == 1;
}

/* A child that sleeps until killed; in a new user namespace if @newuser. */
static pid_t start_sleeper(bool newuser, struct helper *h)
{
	int p[2];
	pid_t pid;

	if (pipe2(p, O_CLOEXEC))
		return -1;
	pid = fork();
	if (pid == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (h)
			helper_child_after_fork(h);
		if (newuser && unshare(CLONE_NEWUSER))
			_exit(3);
		if (write(p[1], "r", 1) != 1)
			_exit(4);
		for (;;)
			pause();
	}
	close(p[1]);
	if (pid > 0 && !wait_byte(p[0])) {
		reap(pid);
		pid = -1;
	}
	close(p[0]);
	return pid;
}

static bool log_has(const char *path, const char *needle)
{
	_cleanup_free_ char *t = read_file_at(AT_FDCWD, path, 1 << 22, NULL);
	return t && strstr(t, needle);
}

static char *read_proc(pid_t pid, const char *file)
{
	char path[64];
	snprintf(path, sizeof(path), "/proc/%d/%s", pid, file);
	return read_file_at(AT_FDCWD, path, 65536, NULL);
}

/* ---- raw requests ------------------------------------------------------------------- */

static int raw(struct helper *h, const void *msg, size_t len, const int *fds, unsigned int nfds,
	       struct helper_reply *rep)
{
	int r = helper_call_raw(h, msg, len, fds, nfds, rep, NULL);
	if (r) {
		UNIT_FAIL("no reply from the helper: %s", strerror(-r));
		return r;
	}
	return rep->status;
}

static size_t enc(const struct helper_req *q, unsigned char *buf)
{
	ssize_t n = helper_req_encode(q, buf, HELPER_MAX_MSG);
	if (n < 0)
		UNIT_FAIL("cannot encode op %u", q->op);
	return n < 0 ? 0 : (size_t)n;
}

static void check_malformed(struct helper *h)
{
	unsigned char buf[HELPER_MAX_MSG + 512];
	struct helper_reply rep;
	struct helper_req q = { .op = HELPER_OP_REGISTER_TREE, .u.tree.pid = 1 };
	size_t n = enc(&q, buf);
	uint16_t op = 42;
	int fds[3] = { 0, 1, 2 };

	memcpy(buf + 6, &op, 2);
	CHECK_EQ(raw(h, buf, n, NULL, 0, &rep), -EOPNOTSUPP);
	CHECK(strstr(rep.reason, "unknown operation 42") != NULL);
	CHECK(log_has(spawn_log, "refused unknown (op 42)"));

	memset(buf, 0x5a, sizeof(buf));
	n = enc(&q, buf);
	CHECK_EQ(raw(h, buf, sizeof(buf), NULL, 0, &rep), -EMSGSIZE);
	CHECK(strstr(rep.reason, "message of") != NULL);
	CHECK(log_has(spawn_log, "message of 4620 bytes"));

	CHECK_EQ(raw(h, buf, 10, NULL, 0, &rep), -EBADMSG);
	CHECK(log_has(spawn_log, "truncated header (10 bytes)"));
	CHECK_EQ(raw(h, buf, n - 2, NULL, 0, &rep), -EBADMSG);
	CHECK(log_has(spawn_log, "header says 8 payload bytes, message has 6"));

	buf[0] = 'X';
	CHECK_EQ(raw(h, buf, n, NULL, 0, &rep), -EPROTO);
	CHECK(strstr(rep.reason, "bad magic") != NULL);
	CHECK(log_has(spawn_log, "bad magic"));

	n = enc(&q, buf);
	CHECK_EQ(raw(h, buf, n, fds, 3, &rep), -EINVAL);
	CHECK(log_has(spawn_log, "too many fds"));
	CHECK_EQ(raw(h, buf, n, fds, 1, &rep), -EINVAL);
	CHECK(log_has(spawn_log, "takes 0 fds, got 1"));
}

/* ---- 1. spawned mode, root peer ------------------------------------------------------ */

/* Returns the registered tree root, alive (the caller reaps it). */
static pid_t check_spawned_tree_and_maps(struct helper *h)
{
	struct id_range map[] = { { 0, 100000, 1000 }, { 1000, 5000, 1 } };
	pid_t a = start_sleeper(true, h), b = start_sleeper(false, h);

	if (a < 0 || b < 0) {
		UNIT_FAIL("cannot start children");
		reap(a);
		reap(b);
		return -1;
	}
	/* nothing before a tree is registered */
	CHECK_EQ(helper_write_id_map(h, a, HELPER_UID_MAP, map, 2, false), -EPERM);
	CHECK(log_has(spawn_log, "no tree registered on this connection"));
	CHECK_EQ(helper_set_last_pid(h, -1, 1000), -EPERM);
	/* the tree root must be the caller or its descendant: not pid 1 */
	CHECK_EQ(helper_register_tree(h, 1), -EPERM);
	CHECK(log_has(spawn_log, "pid 1 is not the caller"));
	CHECK_EQ(helper_register_tree(h, a), 0);
	CHECK_EQ(helper_register_tree(h, a), -EBUSY);
	/* b is the caller's child but not in the tree of a */
	CHECK_EQ(helper_write_id_map(h, b, HELPER_UID_MAP, map, 2, false), -EPERM);
	char msg[128];
	snprintf(msg, sizeof(msg), "pid %d is not the registered tree root %d", b, a);
	CHECK(log_has(spawn_log, msg));
	/* root may map anything into a child namespace */
	CHECK_EQ(helper_write_id_map(h, a, HELPER_UID_MAP, map, 2, false), 0);
	_cleanup_free_ char *um = read_proc(a, "uid_map");
	CHECK(um && strstr(um, "0     100000       1000") && strstr(um, "1000       5000          1"));
	/* a map file takes one write: the kernel refuses the second, and the reason says so */
	CHECK_EQ(helper_write_id_map(h, a, HELPER_UID_MAP, map, 1, false), -EPERM);
	CHECK(log_has(spawn_log, "/uid_map: Operation not permitted"));
	CHECK_EQ(helper_write_id_map(h, a, HELPER_GID_MAP, map, 1, true), 0);
	_cleanup_free_ char *sg = read_proc(a, "setgroups");
	CHECK(sg && str_starts(sg, "deny"));
	/* the caller itself is above the tree */
	CHECK_EQ(helper_write_id_map(h, getpid(), HELPER_UID_MAP, map, 1, false), -EPERM);
	reap(b);
	return a;
}

static long read_long(const char *path)
{
	_cleanup_free_ char *t = read_file_at(AT_FDCWD, path, 64, NULL);
	return t ? strtol(t, NULL, 10) : -1;
}

/* Ask for last_pid, fork: the child must get last_pid + 1 (retrying a few times: any
 * other fork on the machine may take the pid first). Returns true on success. */
static bool fork_with_pid(struct helper *h, int pidns_fd)
{
	long pid_max = read_long("/proc/sys/kernel/pid_max");
	long want = read_long("/proc/sys/kernel/ns_last_pid") + 1000;

	for (int tries = 0; tries < 20; tries++, want += 7) {
		char path[32];
		if (want + 1 >= pid_max - 10)
			want = 1000;
		snprintf(path, sizeof(path), "/proc/%ld", want + 1);
		if (!access(path, F_OK))
			continue;
		if (helper_set_last_pid(h, pidns_fd, (pid_t)want))
			return false;
		pid_t c = fork();
		if (c == 0) {
			helper_child_after_fork(h);
			_exit(0);
		}
		if (c < 0)
			return false;
		wait_exit(c, WAIT_MS);
		if (c == want + 1)
			return true;
	}
	return false;
}

static void check_spawned_last_pid(struct helper *h)
{
	_cleanup_close_ int own = open("/proc/self/ns/pid", O_RDONLY | O_CLOEXEC);
	_cleanup_close_ int uts = open("/proc/self/ns/uts", O_RDONLY | O_CLOEXEC);
	_cleanup_close_ int other = -1;
	int p[2];
	pid_t outer = -1;

	CHECK(fork_with_pid(h, -1));
	CHECK(fork_with_pid(h, own));
	CHECK_EQ(helper_set_last_pid(h, uts, 500), -EINVAL);
	CHECK(log_has(spawn_log, "the passed fd is not a PID namespace"));
	long pid_max = read_long("/proc/sys/kernel/pid_max");
	CHECK_EQ(helper_set_last_pid(h, -1, (pid_t)pid_max), -EINVAL);
	/* (at the largest pid_max the request's own bound refuses it first) */
	if (pid_max < HELPER_PID_LIMIT)
		CHECK(log_has(spawn_log, "is not below pid_max"));
	/* a PID namespace of a child: not the helper's */
	if (pipe2(p, O_CLOEXEC))
		return;
	outer = fork();
	if (outer == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		helper_child_after_fork(h);
		if (unshare(CLONE_NEWPID))
			_exit(3);
		pid_t in = fork();
		if (in == 0) {
			prctl(PR_SET_PDEATHSIG, SIGKILL);
			if (write(p[1], "r", 1) != 1)
				_exit(4);
			for (;;)
				pause();
		}
		for (;;)
			pause(); /* the inner init dies with us (SIGKILL of its namespace) */
	}
	close(p[1]);
	if (outer > 0 && wait_byte(p[0])) {
		char path[64];
		snprintf(path, sizeof(path), "/proc/%d/ns/pid_for_children", outer);
		other = open(path, O_RDONLY | O_CLOEXEC);
		CHECK(other >= 0);
		CHECK_EQ(helper_set_last_pid(h, other, 500), -EPERM);
		CHECK(log_has(spawn_log, "the PID namespace passed is not the helper's own"));
	} else {
		UNIT_FAIL("cannot start a child in a new PID namespace");
	}
	close(p[0]);
	reap(outer);
}

static void check_sockbuf(struct helper *h, const char *logpath)
{
	int sv[2], pp[2], v;
	socklen_t len = sizeof(v);
	unsigned char buf[HELPER_MAX_MSG];
	struct helper_reply rep;

	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) || pipe2(pp, O_CLOEXEC)) {
		UNIT_FAIL("socketpair/pipe");
		return;
	}
	CHECK_EQ(helper_sockbuf_force(h, sv[0], 8 << 20, 6 << 20), 0);
	CHECK_EQ(getsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &v, &len), 0);
	CHECK_EQ(v, 16 << 20); /* the kernel doubles it */
	CHECK_EQ(getsockopt(sv[0], SOL_SOCKET, SO_RCVBUF, &v, &len), 0);
	CHECK_EQ(v, 12 << 20);
	CHECK_EQ(helper_sockbuf_force(h, pp[0], 1 << 20, -1), -ENOTSOCK);
	CHECK(log_has(logpath, "the passed fd is not a socket"));
	/* over the limit: the client refuses to encode it; a raw message is refused too */
	CHECK_EQ(helper_sockbuf_force(h, sv[0], HELPER_SOCKBUF_MAX + 1, -1), -EINVAL);
	struct helper_req q = { .op = HELPER_OP_SET_SOCKBUF_FORCE, .flags = HELPER_F_SNDBUF,
				.u.sockbuf.snd = 1 };
	size_t n = enc(&q, buf);
	uint32_t big = 1u << 30;
	memcpy(buf + 20, &big, 4);
	CHECK_EQ(raw(h, buf, n, sv, 1, &rep), -EINVAL);
	CHECK(log_has(logpath, "over the helper's limit"));
	close(sv[0]);
	close(sv[1]);
	close(pp[0]);
	close(pp[1]);
}

/* Handles made by root before any test runs (the user could not make the one under the
 * private directory itself). */
struct handle_buf {
	struct file_handle fh;
	unsigned char bytes[MAX_HANDLE_SZ];
};
static struct handle_buf h_user, h_root, h_hidden;

static int make_file(const char *rel, const char *text, uid_t uid, mode_t mode)
{
	char path[256];
	snprintf(path, sizeof(path), "%s/%s", tmpdir, rel);
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
	if (fd < 0 || write(fd, text, strlen(text)) != (ssize_t)strlen(text) ||
	    fchown(fd, uid, (gid_t)-1) || fchmod(fd, mode))
		return -1;
	return close(fd);
}

static int make_handle(const char *rel, struct handle_buf *hb)
{
	char path[256];
	int mnt;
	snprintf(path, sizeof(path), "%s/%s", tmpdir, rel);
	hb->fh.handle_bytes = MAX_HANDLE_SZ;
	return name_to_handle_at(AT_FDCWD, path, &hb->fh, &mnt, 0);
}

static void read_text(int fd, char *buf, size_t n)
{
	ssize_t r = fd >= 0 ? pread(fd, buf, n - 1, 0) : -1;
	buf[r > 0 ? r : 0] = '\0';
}

static void check_handle_root(struct helper *h)
{
	_cleanup_close_ int mnt = open(tmpdir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	unsigned char buf[HELPER_MAX_MSG];
	struct helper_reply rep;
	char text[32];
	int fd = -1;

	CHECK_EQ(helper_open_by_handle(h, mnt, &h_hidden.fh, O_RDONLY, &fd), 0);
	read_text(fd, text, sizeof(text));
	CHECK_STREQ(text, "hidden");
	CHECK(fd < 0 || (fcntl(fd, F_GETFD) & FD_CLOEXEC));
	if (fd >= 0)
		close(fd);
	/* O_CREAT never reaches the helper's open: refused by the decoder */
	struct helper_req q = { .op = HELPER_OP_OPEN_BY_HANDLE };
	q.u.handle.open_flags = O_RDONLY;
	q.u.handle.type = h_root.fh.handle_type;
	q.u.handle.bytes = h_root.fh.handle_bytes;
	memcpy(q.u.handle.f_handle, h_root.fh.f_handle, h_root.fh.handle_bytes);
	size_t n = enc(&q, buf);
	uint32_t fl = O_RDWR | O_CREAT | O_TRUNC;
	memcpy(buf + 16 + 4, &fl, 4);
	CHECK_EQ(raw(h, buf, n, &mnt, 1, &rep), -EINVAL);
	CHECK(log_has(spawn_log, "not allowed (only an access mode or O_PATH"));
	/* a garbage handle */
	struct handle_buf bad = h_root;
	memset(bad.fh.f_handle, 0xee, bad.fh.handle_bytes);
	CHECK(helper_open_by_handle(h, mnt, &bad.fh, O_RDONLY, &fd) < 0);
}

static void test_spawned(void)
{
	struct helper h = HELPER_INIT;
	pid_t hpid;

	if (log_init(spawn_log, LOG_INFO)) {
		UNIT_FAIL("log_init %s", spawn_log);
		return;
	}
	if (helper_spawn(&h)) {
		UNIT_FAIL("helper_spawn");
		return;
	}
	hpid = h.pid;
	/* the helper keeps spawn.log; this process (and its children) log elsewhere, so
	 * that what spawn.log says was logged by the helper */
	if (log_init(client_log, LOG_INFO))
		UNIT_FAIL("log_init %s", client_log);
	CHECK_EQ(prctl(PR_GET_DUMPABLE), 0);
	check_malformed(&h);
	pid_t root = check_spawned_tree_and_maps(&h);
	check_spawned_last_pid(&h);
	check_sockbuf(&h, spawn_log);
	check_handle_root(&h);
	reap(root);
	CHECK_EQ(helper_set_last_pid(&h, -1, 1000), -ESRCH); /* the tree is gone */
	CHECK(log_has(spawn_log, "has exited"));
	helper_close(&h);
	CHECK_EQ(h.pid, 0);
	CHECK_EQ(kill(hpid, 0), -1); /* exited with the channel and reaped */
	CHECK_EQ(prctl(PR_GET_DUMPABLE), 1);
}

/* ---- 2. long-lived helper serving stasis-test ------------------------------------------ */

static pid_t start_ll_helper(const char *sock, const char *logpath, uid_t serve)
{
	pid_t pid = fork();
	struct stat st;

	if (pid == 0) {
		struct helper_cfg cfg = { .serve_uid = serve };
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (log_init(logpath, LOG_INFO))
			_exit(2);
		_exit(helper_serve_socket(sock, &cfg) ? 1 : 0);
	}
	for (int i = 0; pid > 0 && i < WAIT_MS / 10; i++) {
		if (!stat(sock, &st))
			return pid;
		nanosleep(&(struct timespec){ 0, 10000000 }, NULL);
	}
	UNIT_FAIL("helper on %s did not start", sock);
	reap(pid);
	return -1;
}

static void stop_ll_helper(pid_t pid, const char *sock)
{
	struct stat st;

	if (pid <= 0)
		return;
	kill(pid, SIGTERM);
	CHECK_EQ(wait_exit(pid, WAIT_MS), 0);
	CHECK(stat(sock, &st) && errno == ENOENT); /* removed on exit */
}

static void become_user(void)
{
	if (setgroups(0, NULL) || setresgid(user_gid, user_gid, user_gid) ||
	    setresuid(user_uid, user_uid, user_uid)) {
		fprintf(stderr, "cannot become %s: %s\n", USER_NAME, strerror(errno));
		_exit(1);
	}
}

static void user_idmaps(struct helper *h)
{
	struct id_range owned[] = { { 0, 0, 1 }, { 1, sub_uid, 100 } };
	struct id_range owned_g[] = { { 0, 0, 1 }, { 1, sub_gid, 100 } };
	struct id_range foreign[] = { { 0, 0, 1 }, { 1, sub_end, 10 } };
	struct id_range own_gid[] = { { 0, 0, 1 } };
	char want[64], wlog[128];
	pid_t g1 = start_sleeper(true, h), g2 = start_sleeper(true, h), other;

	if (g1 < 0 || g2 < 0) {
		UNIT_FAIL("cannot start children in new user namespaces");
		reap(g1);
		reap(g2);
		return;
	}
	owned[0].outside = foreign[0].outside = (uint32_t)user_uid;
	own_gid[0].outside = owned_g[0].outside = (uint32_t)user_gid;
	/* the tree is this process: every child is in it */
	CHECK_EQ(helper_register_tree(h, getpid()), 0);
	if (user_has_subids) {
		CHECK_EQ(helper_write_id_map(h, g1, HELPER_UID_MAP, owned, 2, false), 0);
		_cleanup_free_ char *um = read_proc(g1, "uid_map");
		snprintf(want, sizeof(want), "1 %10u        100", sub_uid);
		CHECK(um && strstr(um, want));
		CHECK_EQ(helper_write_id_map(h, g1, HELPER_GID_MAP, owned_g, 2, false), 0);
		_cleanup_free_ char *gm = read_proc(g1, "gid_map");
		snprintf(want, sizeof(want), "1 %10u        100", sub_gid);
		CHECK(gm && strstr(gm, want));
		_cleanup_free_ char *sg = read_proc(g1, "setgroups");
		CHECK(sg && str_starts(sg, "allow"));
	}
	/* a range the user does not own: refused, the map stays empty */
	CHECK_EQ(helper_write_id_map(h, g2, HELPER_UID_MAP, foreign, 2, false), -EPERM);
	snprintf(wlog, sizeof(wlog), "range 1 %u 10: outside ids %u..%u are neither", sub_end,
		 sub_end, sub_end + 9);
	CHECK(log_has(ll_log, wlog));
	_cleanup_free_ char *um2 = read_proc(g2, "uid_map");
	CHECK(um2 && um2[0] == '\0');
	/* uid 0 of the host is not the user's */
	struct id_range host_root[] = { { 0, 0, 1 } };
	CHECK_EQ(helper_write_id_map(h, g2, HELPER_UID_MAP, host_root, 1, false), -EPERM);
	/* its own gid only: setgroups must be "deny" (newgidmap's rule) */
	CHECK_EQ(helper_write_id_map(h, g2, HELPER_GID_MAP, own_gid, 1, false), -EPERM);
	CHECK(log_has(ll_log, "only the caller's own gid needs setgroups \"deny\""));
	CHECK_EQ(helper_write_id_map(h, g2, HELPER_GID_MAP, own_gid, 1, true), 0);
	_cleanup_free_ char *sg2 = read_proc(g2, "setgroups");
	CHECK(sg2 && str_starts(sg2, "deny"));
	/* tasks outside the tree: init, and the test's root process */
	CHECK_EQ(helper_write_id_map(h, 1, HELPER_UID_MAP, own_gid, 1, false), -EPERM);
	CHECK(log_has(ll_log, "pid 1 is not the registered tree root"));
	CHECK_EQ(helper_write_id_map(h, getppid(), HELPER_UID_MAP, own_gid, 1, false), -EPERM);
	/* a child in the caller's own user namespace: not below the helper's */
	other = start_sleeper(false, h);
	CHECK_EQ(helper_write_id_map(h, other, HELPER_UID_MAP, own_gid, 1, false), -EPERM);
	CHECK(log_has(ll_log, "is not below the helper's"));
	reap(g1);
	reap(g2);
	reap(other);
}

static void user_sockbuf(struct helper *h)
{
	int sv[2], v = 8 << 20;

	if (socketpair(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0, sv)) {
		UNIT_FAIL("socketpair");
		return;
	}
	CHECK_EQ(setsockopt(sv[0], SOL_SOCKET, SO_SNDBUFFORCE, &v, sizeof(v)), -1);
	CHECK_EQ(errno, EPERM); /* the user cannot do it itself */
	close(sv[0]);
	close(sv[1]);
	check_sockbuf(h, ll_log);
}

static void user_handles(struct helper *h)
{
	_cleanup_close_ int mnt = open(tmpdir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	char text[32];
	int fd = -1;

	CHECK(mnt >= 0);
	CHECK_EQ(helper_open_by_handle(h, mnt, &h_user.fh, O_RDWR, &fd), 0);
	read_text(fd, text, sizeof(text));
	CHECK_STREQ(text, "user");
	if (fd >= 0)
		close(fd);
	CHECK_EQ(helper_open_by_handle(h, mnt, &h_root.fh, O_RDONLY, &fd), -EACCES);
	CHECK(log_has(ll_log, "the caller cannot open"));
	CHECK_EQ(fd, -1);
	/* O_PATH needs only search permission on the directories above: the user has it */
	CHECK_EQ(helper_open_by_handle(h, mnt, &h_root.fh, O_PATH, &fd), 0);
	if (fd >= 0)
		close(fd);
	/* a world-readable file under a directory the user cannot search */
	CHECK_EQ(helper_open_by_handle(h, mnt, &h_hidden.fh, O_RDONLY, &fd), -EACCES);
	CHECK_EQ(helper_open_by_handle(h, mnt, &h_hidden.fh, O_PATH, &fd), -EACCES);
	/* the helper's credentials came back: root-only things still work for root
	 * (checked by the parent after this child is done) */
}

static void user_dumpable(void)
{
	struct helper h2 = HELPER_INIT;
	struct stat st;
	char path[64];

	/* the channel holder (this process) */
	CHECK_EQ(prctl(PR_GET_DUMPABLE), 0);
	/* a helper the user spawns runs as the user but is not dumpable: its /proc is
	 * root's and not even its parent (same uid, no CAP_SYS_PTRACE) can attach */
	if (helper_spawn(&h2)) {
		UNIT_FAIL("helper_spawn as %s", USER_NAME);
		return;
	}
	snprintf(path, sizeof(path), "/proc/%d/status", h2.pid);
	CHECK_EQ(stat(path, &st), 0);
	CHECK_EQ(st.st_uid, 0);
	errno = 0;
	CHECK_EQ(ptrace(PTRACE_ATTACH, h2.pid, NULL, NULL), -1);
	CHECK_EQ(errno, EPERM);
	/* it serves its user even without privileges for what needs none */
	CHECK_EQ(helper_register_tree(&h2, getpid()), 0);
	helper_close(&h2);
}

static void user_last_pid(struct helper *h)
{
	CHECK(fork_with_pid(h, -1));
}

static void test_long_lived_user(void)
{
	pid_t helper = start_ll_helper(ll_sock, ll_log, user_uid), peer;
	struct stat st;

	if (helper < 0)
		return;
	CHECK_EQ(stat(ll_sock, &st), 0);
	CHECK_EQ(st.st_mode & 07777, 0600);
	CHECK_EQ(st.st_uid, user_uid);
	peer = fork();
	if (peer == 0) {
		struct helper h = HELPER_INIT;
		int before = unit_failures;
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		become_user();
		if (helper_connect(&h, ll_sock)) {
			fprintf(stderr, "cannot connect to %s\n", ll_sock);
			_exit(1);
		}
		unit_current = "test_long_lived_user (as " USER_NAME ")";
		user_idmaps(&h);
		user_sockbuf(&h);
		user_handles(&h);
		user_last_pid(&h);
		user_dumpable();
		helper_close(&h);
		_exit(unit_failures != before);
	}
	CHECK_EQ(wait_exit(peer, 60000), 0);
	/* a second client, root: served too, and the helper's root credentials are intact
	 * after the user's open-by-handle requests */
	struct helper h = HELPER_INIT;
	_cleanup_close_ int mnt = open(tmpdir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	int fd = -1;
	char text[32];
	CHECK_EQ(helper_connect(&h, ll_sock), 0);
	CHECK_EQ(helper_open_by_handle(&h, mnt, &h_root.fh, O_RDONLY, &fd), 0);
	read_text(fd, text, sizeof(text));
	CHECK_STREQ(text, "root");
	if (fd >= 0)
		close(fd);
	helper_close(&h);
	stop_ll_helper(helper, ll_sock);
}

/* ---- 3. a helper serving only root ------------------------------------------------------ */

static void test_other_user_refused(void)
{
	pid_t helper = start_ll_helper(root_sock, root_log, 0), peer;

	if (helper < 0)
		return;
	peer = fork();
	if (peer == 0) {
		struct helper h = HELPER_INIT;
		int before = unit_failures;
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		become_user();
		/* the socket is 0600 root: the user cannot even connect */
		CHECK_EQ(helper_connect(&h, root_sock), -EACCES);
		_exit(unit_failures != before);
	}
	CHECK_EQ(wait_exit(peer, WAIT_MS), 0);
	/* opened up by mistake: SO_PEERCRED still keeps the user out */
	CHECK_EQ(chmod(root_sock, 0666), 0);
	peer = fork();
	if (peer == 0) {
		struct helper h = HELPER_INIT;
		int before = unit_failures;
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		become_user();
		CHECK_EQ(helper_connect(&h, root_sock), 0);
		CHECK_EQ(helper_register_tree(&h, getpid()), -EACCES);
		helper_close(&h);
		_exit(unit_failures != before);
	}
	CHECK_EQ(wait_exit(peer, WAIT_MS), 0);
	char msg[128];
	snprintf(msg, sizeof(msg), "refused connection from pid %d uid %u: uid %u is not served",
		 peer, (unsigned)user_uid, (unsigned)user_uid);
	CHECK(log_has(root_log, msg));
	stop_ll_helper(helper, root_sock);
}

/* ---- 4. the command: `stasis helper --socket` ------------------------------------------ */

static void test_cli_missing(const char *stasis);

static void test_cli(void)
{
	char exe[512], stasis[600], helper_prog[600], sock[160], logp[160];
	ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	struct helper h = HELPER_INIT;
	int sv[2];
	pid_t pid;

	if (n <= 0) {
		UNIT_FAIL("readlink /proc/self/exe");
		return;
	}
	exe[n] = '\0';
	/* BUILD/tests/unit/test_helper_sec -> BUILD/stasis */
	for (int i = 0; i < 3; i++)
		*strrchr(exe, '/') = '\0';
	snprintf(stasis, sizeof(stasis), "%s/stasis", exe);
	snprintf(sock, sizeof(sock), "%s/cli.sock", tmpdir);
	snprintf(logp, sizeof(logp), "%s/cli.log", tmpdir);
	if (access(stasis, X_OK)) {
		printf("note: %s not built, the command is not tested\n", stasis);
		return;
	}
	pid = fork();
	if (pid == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		execl(stasis, stasis, "helper", "--socket", sock, "--user", USER_NAME, "-v", "-o",
		      logp, (char *)NULL);
		_exit(127);
	}
	for (int i = 0; pid > 0 && i < WAIT_MS / 10 && access(sock, F_OK); i++)
		nanosleep(&(struct timespec){ 0, 10000000 }, NULL);
	/* the process serving is the helper program, not stasis */
	char link[64], served[600];
	snprintf(link, sizeof(link), "/proc/%d/exe", pid);
	snprintf(helper_prog, sizeof(helper_prog), "%s/stasis-helper", exe);
	n = readlink(link, served, sizeof(served) - 1);
	served[n > 0 ? n : 0] = '\0';
	CHECK(n > 0 && !strcmp(served, helper_prog));
	CHECK_EQ(helper_connect(&h, sock), 0);
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == 0) {
		CHECK_EQ(helper_sockbuf_force(&h, sv[0], 5 << 20, -1), 0);
		CHECK_EQ(helper_write_id_map(&h, getpid(), HELPER_UID_MAP,
					     &(struct id_range){ 0, 0, 1 }, 1, false), -EPERM);
		close(sv[0]);
		close(sv[1]);
	}
	helper_close(&h);
	kill(pid, SIGTERM);
	CHECK_EQ(wait_exit(pid, WAIT_MS), 0);
	CHECK(access(sock, F_OK) && errno == ENOENT);
	CHECK(log_has(logp, "listening on"));
	CHECK(log_has(logp, "refused WRITE_ID_MAP (op 3) from pid"));
	CHECK(log_has(logp, "stopping on signal 15"));
	remove(logp);
	test_cli_missing(stasis);
}

/* A copy of @stasis alone in a directory: `stasis helper` fails and says what is missing. */
static void test_cli_missing(const char *stasis)
{
	char dir[160], copy[200], errp[200], sock[200];
	pid_t pid;

	snprintf(dir, sizeof(dir), "%s/alone", tmpdir);
	snprintf(copy, sizeof(copy), "%s/stasis", dir);
	snprintf(errp, sizeof(errp), "%s/stderr", dir);
	snprintf(sock, sizeof(sock), "%s/never.sock", dir);
	if (mkdir(dir, 0700)) {
		UNIT_FAIL("mkdir %s", dir);
		return;
	}
	_cleanup_close_ int in = open(stasis, O_RDONLY | O_CLOEXEC);
	_cleanup_close_ int out = open(copy, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0700);
	ssize_t n = 1;
	while (in >= 0 && out >= 0 && n > 0)
		n = copy_file_range(in, NULL, out, NULL, 1 << 30, 0);
	if (in < 0 || out < 0 || n < 0) {
		UNIT_FAIL("copy %s to %s", stasis, copy);
		goto out;
	}
	close(take_fd(&out));
	pid = fork();
	if (pid == 0) {
		int fd = open(errp, O_WRONLY | O_CREAT | O_TRUNC, 0600);
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (fd < 0 || dup2(fd, 2) < 0)
			_exit(126);
		execl(copy, copy, "helper", "--socket", sock, (char *)NULL);
		_exit(126);
	}
	CHECK_EQ(wait_exit(pid, WAIT_MS), 127);
	CHECK(log_has(errp, "stasis helper: cannot run "));
	CHECK(log_has(errp, "/alone/stasis-helper: No such file or directory"));
	CHECK(access(sock, F_OK) && errno == ENOENT);
out:
	remove(errp);
	remove(copy);
	rmdir(dir);
}

/* ---- setup ---------------------------------------------------------------------------- */

/* The user's first range of at least 100 ids in /etc/subuid text @txt (start in
 * *@start), and the end of the highest of its ranges (a range it does not own starts
 * there: the policy looks only at the user's own lines). */
static bool sub_range(const char *txt, uint32_t *start, uint32_t *end)
{
	bool found = false;
	const size_t nl = strlen(USER_NAME ":");
	*end = 0;
	for (const char *l = txt; l && *l; l = strchr(l, '\n') ? strchr(l, '\n') + 1 : NULL) {
		unsigned long long a, n;
		if (strncmp(l, USER_NAME ":", nl) || sscanf(l + nl, "%llu:%llu", &a, &n) != 2 ||
		    a + n > UINT32_MAX - 16)
			continue;
		if (!found && n >= 100) {
			*start = (uint32_t)a;
			found = true;
		}
		*end = MAX(*end, (uint32_t)(a + n));
	}
	return found;
}

static bool setup(void)
{
	struct passwd *pw = getpwnam(USER_NAME);
	char path[256];

	if (!pw)
		return false;
	user_uid = pw->pw_uid;
	user_gid = pw->pw_gid;
	_cleanup_free_ char *sub = read_file_at(AT_FDCWD, "/etc/subuid", 1 << 20, NULL);
	_cleanup_free_ char *subg = read_file_at(AT_FDCWD, "/etc/subgid", 1 << 20, NULL);
	uint32_t gend = 0;
	user_has_subids = sub && subg && sub_range(sub, &sub_uid, &sub_end) &&
			  sub_range(subg, &sub_gid, &gend);
	sub_end = MAX(sub_end, gend);
	if (!user_has_subids) {
		printf("note: no range of 100 ids for %s in /etc/subuid and /etc/subgid: the "
		       "owned-range case is skipped\n", USER_NAME);
		sub_end = 100000; /* not the user's: it has none */
	}
	snprintf(tmpdir, sizeof(tmpdir), "/tmp/stasis-helper-sec-XXXXXX");
	if (!mkdtemp(tmpdir) || chmod(tmpdir, 0755))
		return false;
	snprintf(spawn_log, sizeof(spawn_log), "%s/spawn.log", tmpdir);
	snprintf(client_log, sizeof(client_log), "%s/client.log", tmpdir);
	snprintf(ll_log, sizeof(ll_log), "%s/user-helper.log", tmpdir);
	snprintf(ll_sock, sizeof(ll_sock), "%s/user.sock", tmpdir);
	snprintf(root_log, sizeof(root_log), "%s/root-helper.log", tmpdir);
	snprintf(root_sock, sizeof(root_sock), "%s/root.sock", tmpdir);
	/* made here, readable by the user: the helpers only append to them */
	if (make_file("spawn.log", "", 0, 0644) || make_file("user-helper.log", "", 0, 0644) ||
	    make_file("root-helper.log", "", 0, 0644) || make_file("client.log", "", user_uid, 0644))
		return false;
	snprintf(path, sizeof(path), "%s/private", tmpdir);
	if (mkdir(path, 0700) || make_file("user.txt", "user", user_uid, 0600) ||
	    make_file("root.txt", "root", 0, 0600) ||
	    make_file("private/hidden.txt", "hidden", 0, 0644) ||
	    make_handle("user.txt", &h_user) || make_handle("root.txt", &h_root) ||
	    make_handle("private/hidden.txt", &h_hidden))
		return false;
	return true;
}

static void cleanup(void)
{
	const char *files[] = { "user.txt", "root.txt", "private/hidden.txt", "private",
				"spawn.log", "user-helper.log", "root-helper.log", "client.log" };
	char path[256];

	if (unit_failures) {
		printf("logs kept in %s\n", tmpdir);
		return;
	}
	for (size_t i = 0; i < ARRAY_SIZE(files); i++) {
		snprintf(path, sizeof(path), "%s/%s", tmpdir, files[i]);
		remove(path);
	}
	rmdir(tmpdir);
}

int main(void)
{
	if (geteuid() != 0)
		UNIT_SKIP("needs root (helpers run as root, a peer drops to %s)", USER_NAME);
	/* root of a user namespace is not enough: the helper's point is host privileges */
	_cleanup_free_ char *map = read_file_at(AT_FDCWD, "/proc/self/uid_map", 4096, NULL);
	unsigned long in, out, cnt;
	if (!map || sscanf(map, "%lu %lu %lu", &in, &out, &cnt) != 3 || in || out ||
	    cnt != 4294967295UL)
		UNIT_SKIP("needs root of the initial user namespace (uid_map: %s)",
			  map ? strtok(map, "\n") : "?");
	if (!getpwnam(USER_NAME))
		UNIT_SKIP("no user %s (tests/run.py --flavor nonroot creates it)", USER_NAME);
	if (!setup()) {
		fprintf(stderr, "setup failed: %s\n", strerror(errno));
		return 1;
	}
	RUN(test_spawned);
	RUN(test_long_lived_user);
	RUN(test_other_user_refused);
	RUN(test_cli);
	log_close();
	cleanup();
	return unit_done();
}
