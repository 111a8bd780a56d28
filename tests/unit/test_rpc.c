/* The CRIU-compatible RPC server (src/rpc/): every request type through a real server
 * (rpc_serve in a forked child on a SOCK_SEQPACKET pair): VERSION (what runc's and
 * go-criu's version checks compute), CHECK, FEATURE_CHECK (honest: memory tracking as the
 * kernel allows it, no lazy pages), the refused types (PAGE_SERVER, CPUINFO, WAIT_PID, a
 * NOTIFY out of place, EMPTY, anything but PRE_DUMP or DUMP after a PRE_DUMP);
 * malformed, oversized and truncated packets, an unknown field, an unknown type, options
 * stasis cannot honour — each an error response naming the problem, the server going on;
 * a client that closes (idle, or in the middle of a dump's notification: the dumped
 * process runs on) ends the server cleanly. Then a PRE_DUMP (the child runs on) and, in
 * the same session as CRIU's, a DUMP with parent_img naming it, and a RESTORE of the
 * child through the server with the NOTIFY round trips in order and the restored pid in
 * the response; the stats files each leaves in the work directory, in CRIU's framing. */
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "core/log.h"
#include "ns/cgroup.h"
#include "rpc/rpc.h"
#include "sys/kerndat.h"
#include "unit.h"

static pid_t server_pid;

/* A server on one end of a fresh pair; the client's end. */
static int start_server(void)
{
	int sv[2];
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0)
		return -1;
	fflush(NULL);
	server_pid = fork();
	if (server_pid == 0) {
		close(sv[0]);
		_exit(rpc_serve(sv[1]));
	}
	close(sv[1]);
	return sv[0];
}

/* The server's exit status once the client closed its end. */
static int stop_server(int sk)
{
	int st = 0;
	close(sk);
	for (int i = 0; i < 500; i++) {
		pid_t r = waitpid(server_pid, &st, WNOHANG);
		if (r == server_pid)
			return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
		usleep(10000);
	}
	kill(server_pid, SIGKILL);
	waitpid(server_pid, &st, 0);
	return -1;
}

static RpcResponse *recv_resp(int sk)
{
	static uint8_t buf[RPC_MAX_MSG + 1];
	ssize_t n = rpc_recv(sk, buf, 10000);
	if (n <= 0)
		return NULL;
	return rpc_response__unpack(NULL, (size_t)n, buf);
}

static RpcResponse *send_raw(int sk, const void *buf, size_t len)
{
	if (send(sk, buf, len, MSG_NOSIGNAL) != (ssize_t)len)
		return NULL;
	return recv_resp(sk);
}

static RpcResponse *send_req(int sk, const RpcRequest *q)
{
	uint8_t buf[RPC_MAX_MSG];
	size_t len = rpc_request__get_packed_size(q);
	rpc_request__pack(q, buf);
	return send_raw(sk, buf, len);
}

static RpcResponse *simple(int sk, RpcType t)
{
	RpcRequest q = RPC_REQUEST__INIT;
	q.type = t;
	return send_req(sk, &q);
}

static bool has_msg(const RpcResponse *r, const char *needle)
{
	return r && r->cr_errmsg && strstr(r->cr_errmsg, needle);
}

static void test_version_check_features(void)
{
	int sk = start_server();
	RpcResponse *r = simple(sk, RPC_TYPE__RPC_VERSION);
	CHECK(r && r->success && r->type == RPC_TYPE__RPC_VERSION && r->version);
	if (r && r->version) {
		/* runc 1.1 and go-criu: major * 10000 + minor * 100 + sublevel, +100 with a
		 * gitid; runc wants >= 30000 (3.0), Podman >= 31100 */
		int v = r->version->major * 10000 + r->version->minor * 100 +
			(r->version->has_sublevel ? r->version->sublevel : 0);
		if (r->version->gitid)
			v = v - v % 100 + 100;
		CHECK(v >= 31100);
		CHECK(r->version->name && strstr(r->version->name, "stasis"));
	}
	rpc_response__free_unpacked(r, NULL);

	r = simple(sk, RPC_TYPE__RPC_CHECK);
	CHECK(r && r->type == RPC_TYPE__RPC_CHECK && r->success);
	rpc_response__free_unpacked(r, NULL);

	RpcRequest q = RPC_REQUEST__INIT;
	RpcFeatures f = RPC_FEATURES__INIT;
	q.type = RPC_TYPE__RPC_FEATURE_CHECK;
	f.has_mem_track = f.mem_track = true;
	f.has_lazy_pages = f.lazy_pages = true;
	q.features = &f;
	r = send_req(sk, &q);
	CHECK(r && r->success && r->type == RPC_TYPE__RPC_FEATURE_CHECK && r->features);
	if (r && r->features) {
		/* write tracking (userfaultfd WP_ASYNC + PAGEMAP_SCAN), not soft-dirty */
		CHECK(r->features->has_mem_track &&
		      r->features->mem_track == (kdat_has(KD_PAGEMAP_SCAN) &&
						 kdat_has(KD_UFFD_WP_ASYNC)));
		CHECK(r->features->has_lazy_pages && !r->features->lazy_pages);
		CHECK(!r->features->has_pidfd_store);
	}
	rpc_response__free_unpacked(r, NULL);
	CHECK_EQ(stop_server(sk), 0);
}

static void test_refused_types(void)
{
	static const struct {
		RpcType t;
		const char *why;
	} cases[] = {
		{ RPC_TYPE__RPC_PAGE_SERVER, "page server" },
		{ RPC_TYPE__RPC_CPUINFO_DUMP, "cpuinfo" },
		{ RPC_TYPE__RPC_WAIT_PID, "wait-pid" },
		{ RPC_TYPE__RPC_NOTIFY, "outside a notification" },
		{ RPC_TYPE__RPC_EMPTY, "empty" },
	};
	int sk = start_server();
	RpcOptions o = RPC_OPTIONS__INIT;
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		RpcRequest q = RPC_REQUEST__INIT;
		q.type = cases[i].t;
		q.opts = &o; /* the types that need options have them */
		RpcResponse *r = send_req(sk, &q);
		CHECK(r && !r->success && r->type == cases[i].t && r->has_cr_errno);
		if (!has_msg(r, cases[i].why))
			UNIT_FAIL("type %d: '%s' not in '%s'", (int)cases[i].t, cases[i].why,
				  r && r->cr_errmsg ? r->cr_errmsg : "(none)");
		rpc_response__free_unpacked(r, NULL);
	}
	/* a dump without options, and with options stasis refuses */
	RpcRequest q = RPC_REQUEST__INIT;
	q.type = RPC_TYPE__RPC_DUMP;
	RpcResponse *r = send_req(sk, &q);
	CHECK(has_msg(r, "without options"));
	rpc_response__free_unpacked(r, NULL);
	CHECK_EQ(stop_server(sk), 0);
}

static void test_malformed(void)
{
	int sk = start_server();
	uint8_t junk[] = { 0xff, 0xff, 0xff, 0xff, 0xff, 0x01, 0x02 };
	RpcResponse *r = send_raw(sk, junk, sizeof(junk));
	CHECK(r && !r->success && r->type == RPC_TYPE__RPC_EMPTY && has_msg(r, "malformed"));
	rpc_response__free_unpacked(r, NULL);

	/* oversized: refused before decoding, the server goes on */
	uint8_t *big = calloc(1, RPC_MAX_MSG + 100);
	r = send_raw(sk, big, RPC_MAX_MSG + 100);
	CHECK(r && !r->success && has_msg(r, "larger than"));
	rpc_response__free_unpacked(r, NULL);
	free(big);

	/* a VERSION request with an unknown field 99 (varint 7), then an unknown type */
	uint8_t unk[] = { 0x08, 0x0a, 0x98, 0x06, 0x07 };
	r = send_raw(sk, unk, sizeof(unk));
	CHECK(r && !r->success && has_msg(r, "field 99"));
	rpc_response__free_unpacked(r, NULL);
	uint8_t badtype[] = { 0x08, 0x2a };
	r = send_raw(sk, badtype, sizeof(badtype));
	CHECK(r && !r->success && has_msg(r, "unknown request type 42"));
	rpc_response__free_unpacked(r, NULL);
	/* truncated: a length-delimited field cut short; a required field missing */
	uint8_t cut[] = { 0x08, 0x01, 0x12, 0x10, 0x08 };
	r = send_raw(sk, cut, sizeof(cut));
	CHECK(r && !r->success && has_msg(r, "malformed"));
	rpc_response__free_unpacked(r, NULL);
	uint8_t noreq[] = { 0x18, 0x01 };
	r = send_raw(sk, noreq, sizeof(noreq));
	CHECK(r && !r->success && has_msg(r, "malformed"));
	rpc_response__free_unpacked(r, NULL);

	/* still serving */
	r = simple(sk, RPC_TYPE__RPC_VERSION);
	CHECK(r && r->success);
	rpc_response__free_unpacked(r, NULL);
	CHECK_EQ(stop_server(sk), 0);

	/* the pure decoder on its own: a string longer than the bound */
	char err[256];
	RpcRequest q = RPC_REQUEST__INIT;
	RpcOptions o = RPC_OPTIONS__INIT;
	char *longs = malloc(RPC_MAX_STR + 2);
	memset(longs, 'a', RPC_MAX_STR + 1);
	longs[RPC_MAX_STR + 1] = '\0';
	q.type = RPC_TYPE__RPC_DUMP;
	q.opts = &o;
	o.log_file = longs;
	uint8_t *buf = malloc(RPC_MAX_MSG);
	size_t len = rpc_request__pack(&q, buf);
	RpcRequest *d = rpc_decode(buf, len, err, sizeof(err));
	CHECK(!d && strstr(err, "longer than"));
	CHECK(!rpc_decode(buf, 0, err, sizeof(err)));
	free(buf);
	free(longs);
}

static void test_opts_refused(void)
{
	char err[512];
	RpcOptions o = RPC_OPTIONS__INIT;
	o.has_pid = true;
	o.pid = 1234;
	CHECK_EQ(rpc_opts_check(&o, RPC_TYPE__RPC_DUMP, err, sizeof(err)), 0);
	o.has_tcp_established = o.tcp_established = true; /* accepted: always dumped */
	CHECK_EQ(rpc_opts_check(&o, RPC_TYPE__RPC_DUMP, err, sizeof(err)), 0);
	o.has_tcp_established = o.tcp_established = false;
	o.has_tcp_skip_in_flight = o.tcp_skip_in_flight = true;
	CHECK_EQ(rpc_opts_check(&o, RPC_TYPE__RPC_DUMP, err, sizeof(err)), -EOPNOTSUPP);
	CHECK(strstr(err, "tcp_skip_in_flight"));
	o.has_tcp_skip_in_flight = o.tcp_skip_in_flight = false;
	o.has_lazy_pages = o.lazy_pages = true; /* a lazy restore, not a post-copy dump */
	CHECK_EQ(rpc_opts_check(&o, RPC_TYPE__RPC_RESTORE, err, sizeof(err)), 0);
	CHECK_EQ(rpc_opts_check(&o, RPC_TYPE__RPC_DUMP, err, sizeof(err)), -EOPNOTSUPP);
	CHECK(strstr(err, "lazy_pages"));
	o.has_lazy_pages = o.lazy_pages = false;
	o.has_manage_cgroups_mode = true;
	o.manage_cgroups_mode = RPC_CG_MODE__CGM_FULL;
	CHECK_EQ(rpc_opts_check(&o, RPC_TYPE__RPC_DUMP, err, sizeof(err)), 0);
	o.manage_cgroups_mode = (RpcCgMode)9;
	CHECK_EQ(rpc_opts_check(&o, RPC_TYPE__RPC_DUMP, err, sizeof(err)), -EINVAL);
	o.manage_cgroups_mode = RPC_CG_MODE__CGM_SOFT;
	CHECK_EQ(rpc_opts_check(&o, RPC_TYPE__RPC_DUMP, err, sizeof(err)), 0);
	o.has_empty_ns = true;
	o.empty_ns = 0x40000000; /* CLONE_NEWNET: what runc always sends */
	CHECK_EQ(rpc_opts_check(&o, RPC_TYPE__RPC_DUMP, err, sizeof(err)), 0);
	o.empty_ns |= 0x20000000; /* CLONE_NEWPID */
	CHECK_EQ(rpc_opts_check(&o, RPC_TYPE__RPC_DUMP, err, sizeof(err)), -EOPNOTSUPP);
	o.has_empty_ns = false;
	/* incremental dumps: parent_img and track_mem for the dumps, not the restore */
	o.parent_img = (char *)"../parent";
	o.has_track_mem = o.track_mem = true;
	CHECK_EQ(rpc_opts_check(&o, RPC_TYPE__RPC_DUMP, err, sizeof(err)), 0);
	CHECK_EQ(rpc_opts_check(&o, RPC_TYPE__RPC_PRE_DUMP, err, sizeof(err)), 0);
	CHECK_EQ(rpc_opts_check(&o, RPC_TYPE__RPC_SINGLE_PRE_DUMP, err, sizeof(err)), 0);
	CHECK_EQ(rpc_opts_check(&o, RPC_TYPE__RPC_RESTORE, err, sizeof(err)), -EOPNOTSUPP);
	CHECK(strstr(err, "parent_img"));
	o.parent_img = (char *)"";
	CHECK_EQ(rpc_opts_check(&o, RPC_TYPE__RPC_PRE_DUMP, err, sizeof(err)), -EINVAL);
	o.parent_img = NULL;
	CHECK_EQ(rpc_opts_check(&o, RPC_TYPE__RPC_RESTORE, err, sizeof(err)), -EOPNOTSUPP);
	CHECK(strstr(err, "track_mem"));
	o.has_track_mem = o.track_mem = false;
	o.has_pre_dump_mode = true;
	o.pre_dump_mode = 2; /* READ */
	CHECK_EQ(rpc_opts_check(&o, RPC_TYPE__RPC_PRE_DUMP, err, sizeof(err)), 0);
	o.pre_dump_mode = 7;
	CHECK_EQ(rpc_opts_check(&o, RPC_TYPE__RPC_PRE_DUMP, err, sizeof(err)), -EINVAL);
	o.has_pre_dump_mode = false;
	char *ext[] = { (char *)"unix[123]" };
	o.n_external = 1;
	o.external = ext;
	CHECK_EQ(rpc_opts_check(&o, RPC_TYPE__RPC_DUMP, err, sizeof(err)), -EOPNOTSUPP);
	o.n_external = 0;
	o.has_pid = false;
	CHECK_EQ(rpc_opts_check(&o, RPC_TYPE__RPC_DUMP, err, sizeof(err)), -EINVAL);
	CHECK_EQ(rpc_opts_check(&o, RPC_TYPE__RPC_RESTORE, err, sizeof(err)), 0);
}

/* ------------------------------------------------ dump and restore ---- */

static char base[] = "/tmp/stasis-unit-rpc.XXXXXX";

/* A child to dump: a program of its own (a restored copy of this test's binary would
 * map the file that is the restoring process's exe, which PR_SET_MM_MAP refuses). */
static pid_t spawn_sleeper(void)
{
	pid_t pid = fork();
	if (pid == 0) {
		setsid();
		execl("/bin/sleep", "sleep", "1000", (char *)NULL);
		_exit(127);
	}
	for (int i = 0; pid > 0 && i < 500; i++) {
		char path[64], buf[256] = "";
		snprintf(path, sizeof(path), "/proc/%d/exe", (int)pid);
		if (readlink(path, buf, sizeof(buf) - 1) > 0 && strstr(buf, "sleep"))
			break;
		usleep(10000);
	}
	return pid;
}

/* Answer every notification until the final response of @type: the scripts seen, in
 * order, go to @seen; @close_at: close the channel at that script instead. */
static RpcResponse *drive(int sk, RpcType type, char *seen, size_t cap, const char *close_at)
{
	seen[0] = '\0';
	for (;;) {
		RpcResponse *r = recv_resp(sk);
		if (!r || r->type != RPC_TYPE__RPC_NOTIFY)
			return r;
		if (r->notify && r->notify->script) {
			snprintf(seen + strlen(seen), cap - strlen(seen), "%s%s", seen[0] ? " " : "",
				 r->notify->script);
			if (close_at && !strcmp(r->notify->script, close_at)) {
				rpc_response__free_unpacked(r, NULL);
				return NULL;
			}
		}
		rpc_response__free_unpacked(r, NULL);
		RpcRequest q = RPC_REQUEST__INIT;
		q.type = RPC_TYPE__RPC_NOTIFY;
		q.has_notify_success = q.notify_success = true;
		uint8_t buf[64];
		size_t len = rpc_request__pack(&q, buf);
		if (send(sk, buf, len, MSG_NOSIGNAL) != (ssize_t)len)
			return NULL;
		(void)type;
	}
}

static void send_job(int sk, RpcType t, int dfd, pid_t pid, const char *parent)
{
	RpcRequest q = RPC_REQUEST__INIT;
	RpcOptions o = RPC_OPTIONS__INIT;
	q.type = t;
	q.opts = &o;
	o.images_dir_fd = dfd;
	o.has_notify_scripts = o.notify_scripts = true;
	o.log_file = (char *)"rpc.log";
	o.has_log_level = true;
	o.log_level = 4;
	if (pid > 0) {
		o.has_pid = true;
		o.pid = pid;
	}
	/* as runc sends them: the parent relative to the images directory, track_mem */
	o.parent_img = (char *)parent;
	o.has_track_mem = o.track_mem = parent != NULL || t == RPC_TYPE__RPC_PRE_DUMP;
	uint8_t buf[1024];
	size_t len = rpc_request__pack(&q, buf);
	CHECK_EQ(send(sk, buf, len, MSG_NOSIGNAL), (ssize_t)len);
}

/* CRIU's stats file framing, as go-criu reads it: the two magics, the size, the message
 * (dump in field 1, restore in field 2); a file that is not one is refused. */
static void test_stats_file(void)
{
	struct cr_stats st = { .freezing_us = 1200, .frozen_us = 90000, .memdump_us = 300,
			       .memwrite_us = 700, .pages_scanned = 40, .pages_written = 38,
			       .pages_skipped_parent = 2 };
	uint8_t buf[256];
	ssize_t n = rpc_stats_encode(true, &st, buf, sizeof(buf));
	CHECK(n > 12);
	static const uint8_t magic[8] = { 0x40, 0x59, 0x10, 0x55, 0x06, 0x33, 0x09, 0x57 };
	CHECK_EQ(memcmp(buf, magic, 8), 0);
	CHECK_EQ(buf[8] | buf[9] << 8 | buf[10] << 16 | (uint32_t)buf[11] << 24, (uint32_t)n - 12);
	CHECK_EQ(buf[12], 0x0a); /* field 1 (dump), length-delimited */
	CriuStats *s = rpc_stats_decode(buf, (size_t)n);
	CHECK(s && s->dump && !s->restore);
	if (s && s->dump) {
		CHECK_EQ(s->dump->frozen_time, 90000u);
		CHECK_EQ(s->dump->pages_written, 38u);
		CHECK_EQ(s->dump->pages_skipped_parent, 2u);
	}
	criu_stats__free_unpacked(s, NULL);
	st.forking_us = 5;
	st.restore_us = 6000;
	st.pages_restored = 40;
	n = rpc_stats_encode(false, &st, buf, sizeof(buf));
	CHECK(n > 12 && buf[12] == 0x12); /* field 2 (restore) */
	s = rpc_stats_decode(buf, (size_t)n);
	CHECK(s && s->restore && !s->dump && s->restore->restore_time == 6000 &&
	      s->restore->pages_restored == 40);
	criu_stats__free_unpacked(s, NULL);
	CHECK_EQ(rpc_stats_encode(true, &st, buf, 12), -ENOSPC);
	CHECK(!rpc_stats_decode(buf, 11));
	buf[4] ^= 1;
	CHECK(!rpc_stats_decode(buf, (size_t)n));
	buf[4] ^= 1;
	buf[8] = 0xff; /* a size past the end */
	CHECK(!rpc_stats_decode(buf, (size_t)n));
}

/* The stats file @name in @dfd: a dump's (@dump) or a restore's, with pages. */
static void check_stats_file(int dfd, const char *name, bool dump)
{
	uint8_t buf[512];
	int fd = openat(dfd, name, O_RDONLY);
	CHECK(fd >= 0);
	ssize_t n = fd >= 0 ? read(fd, buf, sizeof(buf)) : -1;
	if (fd >= 0)
		close(fd);
	CriuStats *s = n > 0 ? rpc_stats_decode(buf, (size_t)n) : NULL;
	CHECK(s && (dump ? !!s->dump : !!s->restore));
	if (s && dump && s->dump)
		CHECK(s->dump->pages_scanned > 0 && s->dump->frozen_time > 0 &&
		      s->dump->pages_written + s->dump->pages_skipped_parent <=
			      s->dump->pages_scanned);
	if (s && !dump && s->restore)
		CHECK(s->restore->pages_restored > 0 && s->restore->restore_time > 0);
	criu_stats__free_unpacked(s, NULL);
}

static void test_dump_restore(void)
{
	char seen[512], dir[128], *e;

	if (geteuid() != 0)
		return; /* dump and restore with the same pid need privileges */
	if (!mkdtemp(base)) {
		UNIT_FAIL("mkdtemp");
		return;
	}
	snprintf(dir, sizeof(dir), "%s/img", base);
	CHECK_EQ(mkdir(dir, 0700), 0);
	/* a runtime's own file in the images directory is kept */
	CHECK_EQ(close(open(strcat(strcpy(seen, dir), "/descriptors.json"), O_CREAT | O_WRONLY,
			    0600)),
		 0);
	int dfd = open(dir, O_RDONLY | O_DIRECTORY);
	pid_t child = spawn_sleeper();
	CHECK(child > 0);

	/* the client closes during the dump's network-lock notification (the tree frozen):
	 * no images, the child runs on, the server exits cleanly with an error */
	int sk = start_server();
	send_job(sk, RPC_TYPE__RPC_DUMP, dfd, child, NULL);
	RpcResponse *r = drive(sk, RPC_TYPE__RPC_DUMP, seen, sizeof(seen), "network-lock");
	CHECK(!r);
	CHECK_EQ(stop_server(sk), 1);
	CHECK_EQ(kill(child, 0), 0);
	CHECK_EQ(waitpid(child, NULL, WNOHANG), 0);
	CHECK(faccessat(dfd, "inventory.img", F_OK, 0) < 0);

	/* a pre-dump: memory only, the child runs on; no post-dump point (no checkpoint) */
	char pre[128];
	snprintf(pre, sizeof(pre), "%s/pre", base);
	CHECK_EQ(mkdir(pre, 0700), 0);
	int pfd = open(pre, O_RDONLY | O_DIRECTORY);
	sk = start_server();
	send_job(sk, RPC_TYPE__RPC_PRE_DUMP, pfd, child, NULL);
	r = drive(sk, RPC_TYPE__RPC_PRE_DUMP, seen, sizeof(seen), NULL);
	CHECK(r && r->type == RPC_TYPE__RPC_PRE_DUMP && r->success && !r->dump);
	if (r && !r->success)
		fprintf(stderr, "pre-dump: %s\n", r->cr_errmsg ? r->cr_errmsg : "?");
	CHECK_STREQ(seen, "pre-dump");
	rpc_response__free_unpacked(r, NULL);
	close(pfd);
	CHECK_EQ(kill(child, 0), 0);
	CHECK_EQ(waitpid(child, NULL, WNOHANG), 0);
	/* after a pre-dump, only the next pass: anything else ends the session */
	r = simple(sk, RPC_TYPE__RPC_VERSION);
	CHECK(has_msg(r, "only PRE_DUMP or DUMP"));
	rpc_response__free_unpacked(r, NULL);
	CHECK_EQ(stop_server(sk), 0);

	/* a second pre-dump on the first, and in the same session (as CRIU's) the dump
	 * naming it as its parent */
	snprintf(pre, sizeof(pre), "%s/pre2", base);
	CHECK_EQ(mkdir(pre, 0700), 0);
	pfd = open(pre, O_RDONLY | O_DIRECTORY);
	sk = start_server();
	send_job(sk, RPC_TYPE__RPC_PRE_DUMP, pfd, child, "../pre");
	r = drive(sk, RPC_TYPE__RPC_PRE_DUMP, seen, sizeof(seen), NULL);
	CHECK(r && r->type == RPC_TYPE__RPC_PRE_DUMP && r->success);
	if (r && !r->success)
		fprintf(stderr, "pre-dump 2: %s\n", r->cr_errmsg ? r->cr_errmsg : "?");
	rpc_response__free_unpacked(r, NULL);
	close(pfd);
	send_job(sk, RPC_TYPE__RPC_DUMP, dfd, child, "../pre2");
	r = drive(sk, RPC_TYPE__RPC_DUMP, seen, sizeof(seen), NULL);
	CHECK(r && r->type == RPC_TYPE__RPC_DUMP && r->success);
	if (r && !r->success)
		fprintf(stderr, "dump: %s\n", r->cr_errmsg ? r->cr_errmsg : "?");
	CHECK_STREQ(seen, "pre-dump network-lock post-dump");
	rpc_response__free_unpacked(r, NULL);
	CHECK_EQ(stop_server(sk), 0);
	int st;
	CHECK_EQ(waitpid(child, &st, 0), child); /* killed by the dump */
	close(dfd); /* the images replaced the directory: open the new one */
	dfd = open(dir, O_RDONLY | O_DIRECTORY);
	CHECK(faccessat(dfd, "inventory.img", F_OK, 0) == 0);
	CHECK(faccessat(dfd, "descriptors.json", F_OK, 0) == 0);
	CHECK(faccessat(dfd, "rpc.log", F_OK, 0) == 0);
	check_stats_file(dfd, "stats-dump", true);
	char link[64] = "";
	CHECK(readlinkat(dfd, "parent", link, sizeof(link) - 1) > 0);
	CHECK_STREQ(link, "../pre2");

	/* the restored tree is the server's child, then ours (subreaper) */
	prctl(PR_SET_CHILD_SUBREAPER, 1);
	sk = start_server();
	send_job(sk, RPC_TYPE__RPC_RESTORE, dfd, 0, NULL);
	r = drive(sk, RPC_TYPE__RPC_RESTORE, seen, sizeof(seen), NULL);
	CHECK(r && r->type == RPC_TYPE__RPC_RESTORE && r->success && r->restore);
	if (r && !r->success)
		fprintf(stderr, "restore: %s\n", r->cr_errmsg ? r->cr_errmsg : "?");
	CHECK_STREQ(seen, "pre-restore setup-namespaces post-setup-namespaces post-restore "
			  "network-unlock pre-resume post-resume");
	CHECK(r && r->restore && r->restore->pid == child);
	rpc_response__free_unpacked(r, NULL);
	CHECK_EQ(stop_server(sk), 0);
	check_stats_file(dfd, "stats-restore", false);
	CHECK_EQ(kill(child, 0), 0);
	kill(child, SIGKILL);
	for (int i = 0; i < 300 && waitpid(child, &st, WNOHANG) != child; i++)
		usleep(10000);
	close(dfd);
	if (asprintf(&e, "rm -rf %s", base) > 0 && system(e))
		UNIT_FAIL("cannot remove %s", base);
	free(e);
}

/* cg_root: stasis's --cgroup-root values ("CTRL:PATH", PATH alone without ctrl), the
 * mode soft unless given; a malformed one refused. */
static void test_job_cg_root(void)
{
	char dir[] = "/tmp/stasis-unit-rpc-XXXXXX";
	CHECK(mkdtemp(dir) != NULL);
	int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	CHECK(dfd >= 0);
	RpcOptions o = RPC_OPTIONS__INIT;
	RpcCgroupRoot a = RPC_CGROUP_ROOT__INIT, b = RPC_CGROUP_ROOT__INIT;
	RpcCgroupRoot *roots[2] = { &a, &b };
	a.ctrl = (char *)"cpu,cpuacct";
	a.path = (char *)"/k8s/pod1";
	b.path = (char *)"/machine/c1";
	o.images_dir_fd = dfd;
	o.cg_root = roots;
	o.n_cg_root = 2;
	struct rpc_job j;
	char err[256] = "";
	CHECK_EQ(rpc_job_prepare(&j, &o, RPC_TYPE__RPC_RESTORE, getpid(), err, sizeof(err)), 0);
	CHECK_EQ(j.restore.n_cg_roots, 2);
	if (j.restore.n_cg_roots == 2) {
		CHECK_STREQ(j.restore.cg_roots[0], "cpu,cpuacct:/k8s/pod1");
		CHECK_STREQ(j.restore.cg_roots[1], "/machine/c1");
	}
	CHECK_EQ(j.restore.manage_cgroups, CG_MODE_SOFT);
	rpc_job_free(&j);
	b.path = (char *)"machine/../c1";
	CHECK_EQ(rpc_job_prepare(&j, &o, RPC_TYPE__RPC_RESTORE, getpid(), err, sizeof(err)),
		 -EINVAL);
	CHECK(strstr(err, "cg_root 'machine/../c1'") != NULL);
	rpc_job_free(&j);
	close(dfd);
	rmdir(dir);
}

int main(void)
{
	signal(SIGPIPE, SIG_IGN);
	RUN(test_version_check_features);
	RUN(test_refused_types);
	RUN(test_malformed);
	RUN(test_opts_refused);
	RUN(test_stats_file);
	RUN(test_dump_restore);
	RUN(test_job_cg_root);
	return unit_done();
}
