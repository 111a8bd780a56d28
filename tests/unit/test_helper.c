/* The helper's pure code: request/reply encode and decode (round trips, every refusal
 * class: oversized, truncated, trailing bytes, bad magic/version, unknown op, bad
 * arguments, wrong fd count), the /etc/subuid parser, the newuidmap coverage rule and
 * the pidfd fdinfo parser. No privileges needed. */
#include <fcntl.h>
#include <stdint.h>
#include <string.h>

#include "core/util.h"
#include "helper/policy.h"
#include "helper/proto.h"
#include "unit.h"

static char why[256];

static struct helper_req *new_req(uint16_t op)
{
	struct helper_req *q = calloc(1, sizeof(*q));
	if (!q)
		exit(1);
	q->op = op;
	return q;
}

/* Encode @q, decode it back with the fds it needs; the result must equal @q. */
static void roundtrip(const struct helper_req *q, size_t expect_len)
{
	unsigned char buf[HELPER_MAX_MSG];
	struct helper_req *d = new_req(0);
	ssize_t n = helper_req_encode(q, buf, sizeof(buf));

	CHECK_EQ(n, (ssize_t)expect_len);
	if (n > 0) {
		CHECK_EQ(helper_req_decode(buf, (size_t)n, helper_req_nfds(q), d, why, sizeof(why)),
			 0);
		CHECK(!memcmp(q, d, sizeof(*q)));
		/* every shorter prefix is refused as truncated, never accepted */
		for (size_t cut = 0; cut < (size_t)n; cut++) {
			int r = helper_req_decode(buf, cut, helper_req_nfds(q), d, why, sizeof(why));
			if (r == 0)
				UNIT_FAIL("prefix of %zu/%zd bytes accepted", cut, n);
		}
	}
	free(d);
}

static void test_roundtrips(void)
{
	struct helper_req *q = new_req(HELPER_OP_REGISTER_TREE);

	q->u.tree.pid = 1234;
	roundtrip(q, 24);
	q->flags = HELPER_F_PIDFD;
	q->u.tree.pid = 0;
	roundtrip(q, 24);
	free(q);

	q = new_req(HELPER_OP_SET_SOCKBUF_FORCE);
	q->flags = HELPER_F_SNDBUF | HELPER_F_RCVBUF;
	q->u.sockbuf.snd = 8 << 20;
	q->u.sockbuf.rcv = HELPER_SOCKBUF_MAX;
	roundtrip(q, 28);
	free(q);

	q = new_req(HELPER_OP_WRITE_ID_MAP);
	q->flags = HELPER_F_PIDFD | HELPER_F_GID | HELPER_F_DENY_SETGROUPS;
	q->u.idmap.nr = 2;
	q->u.idmap.r[0] = (struct id_range){ 0, 1002, 1 };
	q->u.idmap.r[1] = (struct id_range){ 1, 165536, 65536 };
	roundtrip(q, 16 + 12 + 24);
	/* the kernel's maximum: 340 short lines */
	q->u.idmap.nr = HELPER_MAX_ID_RANGES;
	for (uint32_t i = 0; i < HELPER_MAX_ID_RANGES; i++)
		q->u.idmap.r[i] = (struct id_range){ i, 100 + i, 1 };
	roundtrip(q, 16 + 12 + 12 * HELPER_MAX_ID_RANGES);
	CHECK_EQ(16 + 12 + 12 * HELPER_MAX_ID_RANGES, HELPER_MAX_MSG);
	free(q);

	q = new_req(HELPER_OP_SET_NS_LAST_PID);
	q->u.last_pid.last_pid = 4000;
	roundtrip(q, 24);
	q->flags = HELPER_F_PIDNS_FD;
	roundtrip(q, 24);
	free(q);

	q = new_req(HELPER_OP_OPEN_BY_HANDLE);
	q->u.handle.open_flags = O_RDONLY | O_CLOEXEC;
	q->u.handle.type = 1;
	q->u.handle.bytes = 8;
	memcpy(q->u.handle.f_handle, "\1\2\3\4\5\6\7\10", 8);
	roundtrip(q, 16 + 16 + 8);
	q->u.handle.bytes = HELPER_MAX_HANDLE;
	q->u.handle.open_flags = O_PATH;
	roundtrip(q, 16 + 16 + HELPER_MAX_HANDLE);
	free(q);
}

/* A valid REGISTER_TREE message to corrupt. */
static size_t base_msg(unsigned char *buf)
{
	struct helper_req q = { .op = HELPER_OP_REGISTER_TREE, .u.tree.pid = 77 };
	return (size_t)helper_req_encode(&q, buf, HELPER_MAX_MSG);
}

static int decode(const void *buf, size_t len, unsigned int nfds)
{
	struct helper_req *d = new_req(0);
	int r = helper_req_decode(buf, len, nfds, d, why, sizeof(why));
	/* a refusal leaves nothing behind and always says why */
	if (r) {
		struct helper_req zero;
		memset(&zero, 0, sizeof(zero));
		CHECK(!memcmp(d, &zero, sizeof(zero)));
		CHECK(why[0] != '\0');
	}
	free(d);
	return r;
}

static void test_header_refusals(void)
{
	unsigned char buf[HELPER_MAX_MSG + 64];
	size_t n = base_msg(buf);
	uint32_t v32;
	uint16_t v16;

	CHECK_EQ(decode(buf, n, 0), 0);
	/* oversized: anything over HELPER_MAX_MSG, whatever it holds */
	memset(buf + n, 0, sizeof(buf) - n);
	CHECK_EQ(decode(buf, HELPER_MAX_MSG + 1, 0), -EMSGSIZE);
	/* truncated header, truncated payload */
	CHECK_EQ(decode(buf, 0, 0), -EBADMSG);
	CHECK_EQ(decode(buf, 15, 0), -EBADMSG);
	CHECK_EQ(decode(buf, n - 1, 0), -EBADMSG);
	/* trailing bytes: length field matching, payload longer than the op's */
	v32 = (uint32_t)(n - 16 + 4);
	memcpy(buf + 8, &v32, 4);
	CHECK_EQ(decode(buf, n + 4, 0), -EBADMSG);
	CHECK(strstr(why, "trailing") != NULL);
	/* length field not matching the message */
	n = base_msg(buf);
	CHECK_EQ(decode(buf, n + 4, 0), -EBADMSG);
	/* bad magic, version, reserved */
	n = base_msg(buf);
	buf[0] ^= 0xff;
	CHECK_EQ(decode(buf, n, 0), -EPROTO);
	CHECK(strstr(why, "magic") != NULL);
	n = base_msg(buf);
	v16 = 2;
	memcpy(buf + 4, &v16, 2);
	CHECK_EQ(decode(buf, n, 0), -EPROTONOSUPPORT);
	n = base_msg(buf);
	buf[12] = 1;
	CHECK_EQ(decode(buf, n, 0), -EPROTO);
	/* unknown ops */
	for (uint16_t op = 0; op < 10; op++) {
		if (op >= HELPER_OP_FIRST && op <= HELPER_OP_LAST)
			continue;
		n = base_msg(buf);
		memcpy(buf + 6, &op, 2);
		CHECK_EQ(decode(buf, n, 0), -EOPNOTSUPP);
	}
	n = base_msg(buf);
	v16 = 0xffff;
	memcpy(buf + 6, &v16, 2);
	CHECK_EQ(decode(buf, n, 0), -EOPNOTSUPP);
	CHECK(strstr(why, "unknown operation 65535") != NULL);
	/* fd count must match the op and flags */
	n = base_msg(buf);
	CHECK_EQ(decode(buf, n, 1), -EINVAL);
	CHECK(strstr(why, "fds") != NULL);
}

static int enc_dec(const struct helper_req *q, unsigned int nfds)
{
	unsigned char buf[HELPER_MAX_MSG];
	struct helper_req *raw = new_req(0);
	ssize_t n;

	/* the encoder refuses what the decoder refuses: bypass it by encoding a valid
	 * variant and patching the payload, so the decoder is what is tested */
	memcpy(raw, q, sizeof(*raw));
	n = helper_req_encode(raw, buf, sizeof(buf));
	free(raw);
	if (n < 0)
		return (int)n;
	return decode(buf, (size_t)n, nfds);
}

static void test_arg_refusals(void)
{
	struct helper_req *q = new_req(HELPER_OP_REGISTER_TREE);
	unsigned char buf[HELPER_MAX_MSG];
	ssize_t n;

	q->u.tree.pid = 1;
	CHECK_EQ(enc_dec(q, 0), 0);
	q->u.tree.pid = 0; /* pid 0 without a pidfd */
	CHECK_EQ(enc_dec(q, 0), -EINVAL);
	q->u.tree.pid = HELPER_PID_LIMIT;
	CHECK_EQ(enc_dec(q, 0), -EINVAL);
	q->u.tree.pid = -5;
	q->flags = HELPER_F_PIDFD;
	CHECK_EQ(enc_dec(q, 1), -EINVAL);
	q->u.tree.pid = 5;
	q->flags = HELPER_F_GID; /* not a REGISTER_TREE flag */
	CHECK_EQ(enc_dec(q, 0), -EINVAL);

	/* patch a raw REGISTER_TREE: pid 0, no flag */
	q->flags = 0;
	q->u.tree.pid = 9;
	n = helper_req_encode(q, buf, sizeof(buf));
	memset(buf + 20, 0, 4);
	CHECK_EQ(decode(buf, (size_t)n, 0), -EINVAL);
	free(q);

	q = new_req(HELPER_OP_SET_SOCKBUF_FORCE);
	q->flags = HELPER_F_SNDBUF;
	q->u.sockbuf.snd = HELPER_SOCKBUF_MAX;
	CHECK_EQ(enc_dec(q, 1), 0);
	CHECK_EQ(enc_dec(q, 0), -EINVAL); /* the socket fd is missing */
	n = helper_req_encode(q, buf, sizeof(buf));
	uint32_t big = HELPER_SOCKBUF_MAX + 1;
	memcpy(buf + 20, &big, 4);
	CHECK_EQ(decode(buf, (size_t)n, 1), -EINVAL);
	CHECK(strstr(why, "limit") != NULL);
	q->u.sockbuf.rcv = 5; /* value for a buffer not set */
	CHECK_EQ(helper_req_encode(q, buf, sizeof(buf)), -EINVAL);
	q->flags = 0;
	q->u.sockbuf.snd = q->u.sockbuf.rcv = 0;
	CHECK_EQ(helper_req_encode(q, buf, sizeof(buf)), -EINVAL);
	free(q);

	q = new_req(HELPER_OP_WRITE_ID_MAP);
	q->u.idmap.pid = 10;
	q->u.idmap.nr = 1;
	q->u.idmap.r[0] = (struct id_range){ 0, 1000, 1 };
	CHECK_EQ(enc_dec(q, 0), 0);
	q->flags = HELPER_F_DENY_SETGROUPS; /* deny without GID */
	CHECK_EQ(helper_req_encode(q, buf, sizeof(buf)), -EINVAL);
	q->flags = 0;
	q->u.idmap.r[0].count = 0; /* empty */
	CHECK_EQ(helper_req_encode(q, buf, sizeof(buf)), -EINVAL);
	q->u.idmap.r[0] = (struct id_range){ 0xffffff00, 0, 0x100 }; /* wraps at 2^32 */
	CHECK_EQ(helper_req_encode(q, buf, sizeof(buf)), -EINVAL);
	q->u.idmap.r[0] = (struct id_range){ 0xffffff00, 0, 0xff }; /* ends at 2^32-1 */
	CHECK_EQ(helper_req_encode(q, buf, sizeof(buf)) > 0, 1);
	q->u.idmap.nr = 2;
	q->u.idmap.r[0] = (struct id_range){ 0, 1000, 10 };
	q->u.idmap.r[1] = (struct id_range){ 5, 5000, 10 }; /* overlaps inside */
	CHECK_EQ(helper_req_encode(q, buf, sizeof(buf)), -EINVAL);
	q->u.idmap.r[1] = (struct id_range){ 10, 1009, 10 }; /* overlaps outside */
	CHECK_EQ(helper_req_encode(q, buf, sizeof(buf)), -EINVAL);
	q->u.idmap.r[1] = (struct id_range){ 10, 1010, 10 }; /* adjacent: fine */
	CHECK_EQ(enc_dec(q, 0), 0);
	/* 340 lines too long for one write (< 4096 bytes) */
	q->u.idmap.nr = HELPER_MAX_ID_RANGES;
	for (uint32_t i = 0; i < HELPER_MAX_ID_RANGES; i++)
		q->u.idmap.r[i] = (struct id_range){ 1000000000u + i, 2000000000u + i, 1 };
	CHECK_EQ(helper_req_encode(q, buf, sizeof(buf)), -EINVAL);
	/* a count over 340 in a raw message: refused before reading the ranges */
	q->u.idmap.nr = 1;
	q->u.idmap.r[0] = (struct id_range){ 0, 1000, 1 };
	n = helper_req_encode(q, buf, sizeof(buf));
	uint32_t nr = HELPER_MAX_ID_RANGES + 1;
	memcpy(buf + 24, &nr, 4);
	CHECK_EQ(decode(buf, (size_t)n, 0), -EINVAL);
	nr = 0;
	memcpy(buf + 24, &nr, 4);
	CHECK_EQ(decode(buf, (size_t)n, 0), -EINVAL);
	nr = 2; /* says 2, carries 1 */
	memcpy(buf + 24, &nr, 4);
	CHECK_EQ(decode(buf, (size_t)n, 0), -EBADMSG);
	free(q);

	q = new_req(HELPER_OP_SET_NS_LAST_PID);
	q->u.last_pid.last_pid = -1;
	CHECK_EQ(helper_req_encode(q, buf, sizeof(buf)), -EINVAL);
	q->u.last_pid.last_pid = HELPER_PID_LIMIT;
	CHECK_EQ(helper_req_encode(q, buf, sizeof(buf)), -EINVAL);
	q->u.last_pid.last_pid = 0;
	CHECK_EQ(enc_dec(q, 0), 0);
	CHECK_EQ(enc_dec(q, 1), -EINVAL);
	free(q);

	q = new_req(HELPER_OP_OPEN_BY_HANDLE);
	q->u.handle.bytes = 4;
	q->u.handle.open_flags = O_RDWR;
	CHECK_EQ(enc_dec(q, 1), 0);
	const uint32_t bad_flags[] = { O_RDWR | O_CREAT, O_WRONLY | O_TRUNC, O_RDONLY | O_APPEND,
				       O_PATH | O_RDWR, O_ACCMODE, O_RDONLY | O_DIRECTORY,
				       O_RDONLY | O_NOATIME, O_RDONLY | O_NONBLOCK };
	for (size_t i = 0; i < ARRAY_SIZE(bad_flags); i++) {
		CHECK(!helper_open_flags_ok(bad_flags[i]));
		q->u.handle.open_flags = bad_flags[i];
		CHECK_EQ(helper_req_encode(q, buf, sizeof(buf)), -EINVAL);
	}
	CHECK(helper_open_flags_ok(O_PATH | O_CLOEXEC));
	CHECK(helper_open_flags_ok(O_WRONLY | O_CLOEXEC));
	q->u.handle.open_flags = O_RDONLY;
	q->u.handle.bytes = 0;
	CHECK_EQ(helper_req_encode(q, buf, sizeof(buf)), -EINVAL);
	q->u.handle.bytes = HELPER_MAX_HANDLE + 1;
	CHECK_EQ(helper_req_encode(q, buf, sizeof(buf)), -EINVAL);
	q->u.handle.bytes = 4;
	q->u.handle.type = -1;
	CHECK_EQ(helper_req_encode(q, buf, sizeof(buf)), -EINVAL);
	/* raw: handle bytes over the limit, handle longer than the message */
	q->u.handle.type = 1;
	n = helper_req_encode(q, buf, sizeof(buf));
	uint32_t hb = HELPER_MAX_HANDLE + 1;
	memcpy(buf + 28, &hb, 4);
	CHECK_EQ(decode(buf, (size_t)n, 1), -EINVAL);
	hb = 8;
	memcpy(buf + 28, &hb, 4);
	CHECK_EQ(decode(buf, (size_t)n, 1), -EBADMSG);
	/* an encode into a buffer too small */
	CHECK_EQ(helper_req_encode(q, buf, 20), -ENOBUFS);
	free(q);
}

static void test_replies(void)
{
	unsigned char buf[HELPER_MAX_REPLY + 16];
	struct helper_reply r;
	ssize_t n;

	n = helper_reply_encode(HELPER_OP_WRITE_ID_MAP, -EPERM, "range not owned", buf, sizeof(buf));
	CHECK_EQ(n, 16 + 15);
	CHECK_EQ(helper_reply_decode(buf, (size_t)n, &r, why, sizeof(why)), 0);
	CHECK_EQ(r.op, HELPER_OP_WRITE_ID_MAP);
	CHECK_EQ(r.status, -EPERM);
	CHECK_STREQ(r.reason, "range not owned");
	/* control characters are replaced, long reasons cut */
	char long_reason[400];
	memset(long_reason, 'x', sizeof(long_reason));
	long_reason[sizeof(long_reason) - 1] = '\0';
	long_reason[3] = '\n';
	n = helper_reply_encode(1, 0, long_reason, buf, sizeof(buf));
	CHECK_EQ(n, 16 + HELPER_REASON_MAX);
	CHECK_EQ(helper_reply_decode(buf, (size_t)n, &r, why, sizeof(why)), 0);
	CHECK_EQ(r.reason[3], '?');
	CHECK_EQ(strlen(r.reason), HELPER_REASON_MAX);
	CHECK_EQ(helper_reply_encode(1, 1, NULL, buf, sizeof(buf)), -EINVAL);
	CHECK_EQ(helper_reply_encode(1, -5000, NULL, buf, sizeof(buf)), -EINVAL);
	/* malformed replies */
	n = helper_reply_encode(2, -EACCES, "no", buf, sizeof(buf));
	CHECK_EQ(helper_reply_decode(buf, (size_t)n - 1, &r, why, sizeof(why)), -EBADMSG);
	CHECK_EQ(helper_reply_decode(buf, 10, &r, why, sizeof(why)), -EBADMSG);
	buf[16] = 0x07;
	CHECK_EQ(helper_reply_decode(buf, (size_t)n, &r, why, sizeof(why)), -EPROTO);
	n = helper_reply_encode(2, 0, NULL, buf, sizeof(buf));
	int32_t st = 7;
	memcpy(buf + 8, &st, 4);
	CHECK_EQ(helper_reply_decode(buf, (size_t)n, &r, why, sizeof(why)), -EPROTO);
	CHECK_EQ(helper_reply_decode(buf, HELPER_MAX_REPLY + 1, &r, why, sizeof(why)), -EMSGSIZE);
}

static void test_subid_parse(void)
{
	struct subid_range r[8];
	const char *text = "# comment\n"
			   "\n"
			   "alice:100000:65536\n"
			   "stasis-test:165536:65536\n"
			   "1002:300000:10\n"           /* by uid */
			   "stasis-test:400000:0\n"     /* empty: skipped */
			   "stasis-test:-5:10\n"        /* negative: skipped */
			   "stasis-test:4294967295:2\n" /* past 2^32: skipped */
			   "stasis-test:4294967295:1\n" /* the very last id: fine */
			   "stasis-test:1:2:3\n"        /* four fields: skipped */
			   "stasis-test:12\n"           /* two fields: skipped */
			   "stasis-test: 5:5\n"         /* blank: skipped */
			   "stasis-testx:500000:10\n"   /* another user */
			   "stasis-tes:600000:10\n"
			   "01002:700000:10\n"          /* 1002 with a leading zero: same uid */
			   ":800000:10\n"
			   "stasis-test:99999999999999999999999:1\n"
			   "stasis-test:900000:10"; /* no final newline */
	int n = subid_parse(text, "stasis-test", 1002, r, ARRAY_SIZE(r));

	CHECK_EQ(n, 5);
	if (n == 5) {
		CHECK_EQ(r[0].start, 165536);
		CHECK_EQ(r[0].count, 65536);
		CHECK_EQ(r[1].start, 300000);
		CHECK_EQ(r[2].start, 4294967295u);
		CHECK_EQ(r[2].count, 1);
		CHECK_EQ(r[3].start, 700000);
		CHECK_EQ(r[4].start, 900000);
	}
	CHECK_EQ(subid_parse(text, NULL, 1002, r, ARRAY_SIZE(r)), 2); /* by uid only */
	CHECK_EQ(subid_parse(text, "nobody", 65534, r, ARRAY_SIZE(r)), 0);
	CHECK_EQ(subid_parse("", "a", 1, r, ARRAY_SIZE(r)), 0);
	CHECK_EQ(subid_parse(text, "stasis-test", 1002, r, 4), -E2BIG);
	CHECK_EQ(subid_parse("a:1:1\na:5:1\n", "a", 7, r, 2), 2);
}

static void test_subid_covers(void)
{
	const struct subid_range r[] = { { 100, 10 }, { 110, 5 }, { 200, 50 }, { 120, 10 } };

	CHECK(subid_covers(r, 4, 100, 10));
	CHECK(subid_covers(r, 4, 100, 15)); /* across two adjacent entries */
	CHECK(!subid_covers(r, 4, 100, 16)); /* 115..119 is a hole */
	CHECK(subid_covers(r, 4, 120, 10));
	CHECK(subid_covers(r, 4, 249, 1));
	CHECK(!subid_covers(r, 4, 249, 2));
	CHECK(!subid_covers(r, 4, 99, 2));
	CHECK(!subid_covers(r, 0, 100, 1));
	const struct subid_range top[] = { { 0xfffffff0u, 0x10 } };
	CHECK(subid_covers(top, 1, 0xfffffff0u, 0x10));
	CHECK(!subid_covers(top, 1, 0xffffffefu, 0x2));
}

static void test_idmap_permitted(void)
{
	const struct subid_range sub[] = { { 165536, 65536 } };
	struct id_range ok[] = { { 0, 1002, 1 }, { 1, 165536, 100 } };
	struct id_range own_twice[] = { { 0, 1002, 1 }, { 5, 1002, 1 } };
	struct id_range foreign[] = { { 0, 1002, 1 }, { 1, 100000, 10 } };
	struct id_range root[] = { { 0, 0, 1 } };
	struct id_range own_range[] = { { 0, 1002, 2 } };
	struct id_range edge[] = { { 0, 165536 + 65535, 2 } };
	bool used;

	CHECK_EQ(idmap_permitted(ok, 2, 1002, sub, 1, &used, why, sizeof(why)), 0);
	CHECK(used);
	CHECK_EQ(idmap_permitted(ok, 1, 1002, sub, 1, &used, why, sizeof(why)), 0);
	CHECK(!used);
	CHECK_EQ(idmap_permitted(own_twice, 2, 1002, sub, 1, &used, why, sizeof(why)), -EPERM);
	CHECK_EQ(idmap_permitted(foreign, 2, 1002, sub, 1, &used, why, sizeof(why)), -EPERM);
	CHECK(strstr(why, "100000") != NULL);
	CHECK_EQ(idmap_permitted(root, 1, 1002, sub, 1, &used, why, sizeof(why)), -EPERM);
	CHECK_EQ(idmap_permitted(own_range, 1, 1002, sub, 1, &used, why, sizeof(why)), -EPERM);
	CHECK_EQ(idmap_permitted(edge, 1, 1002, sub, 1, &used, why, sizeof(why)), -EPERM);
	CHECK_EQ(idmap_permitted(ok + 1, 1, 1002, NULL, 0, &used, why, sizeof(why)), -EPERM);
}

static void test_pidfd_fdinfo(void)
{
	int pid = 0;

	CHECK_EQ(proc_parse_pidfd_pid("pos:\t0\nflags:\t02000002\nPid:\t28616\nNSpid:\t28616\n", &pid),
		 0);
	CHECK_EQ(pid, 28616);
	CHECK_EQ(proc_parse_pidfd_pid("Pid:\t-1\n", &pid), -ESRCH);
	CHECK_EQ(proc_parse_pidfd_pid("Pid:\t0\n", &pid), -ENOENT);
	CHECK_EQ(proc_parse_pidfd_pid("pos:\t0\n", &pid), -EINVAL);
	CHECK_EQ(proc_parse_pidfd_pid("Pid:\tx\n", &pid), -EINVAL);
	CHECK_EQ(proc_parse_pidfd_pid("Pid:\t-2\n", &pid), -EINVAL);
	CHECK_EQ(proc_parse_pidfd_pid("Pid:\t99999999999\n", &pid), -EINVAL);

	/* the pids at every level, from the reader's namespace down */
	int ns[4];
	size_t n = 0;
	CHECK_EQ(proc_parse_pidfd_nspid("Pid:\t900\nNSpid:\t900\t12\t1\n", ns, 4, &n), 0);
	CHECK(n == 3 && ns[0] == 900 && ns[1] == 12 && ns[2] == 1);
	CHECK_EQ(proc_parse_pidfd_nspid("NSpid:\t1 2 3 4 5\n", ns, 4, &n), -EINVAL);
	CHECK_EQ(proc_parse_pidfd_nspid("NSpid:\t\n", ns, 4, &n), -EINVAL);
	CHECK_EQ(proc_parse_pidfd_nspid("NSpid:\t-1\n", ns, 4, &n), -EINVAL);
	CHECK_EQ(proc_parse_pidfd_nspid("NSpid:\t5x\n", ns, 4, &n), -EINVAL);
	CHECK_EQ(proc_parse_pidfd_nspid("Pid:\t5\n", ns, 4, &n), -EINVAL);
	CHECK_EQ(proc_parse_pidfd_nspid("NSpid:\t5\nNSpid:\t6\n", ns, 4, &n), -EINVAL);
}

int main(void)
{
	RUN(test_roundtrips);
	RUN(test_header_refusals);
	RUN(test_arg_refusals);
	RUN(test_replies);
	RUN(test_subid_parse);
	RUN(test_subid_covers);
	RUN(test_idmap_permitted);
	RUN(test_pidfd_fdinfo);
	return unit_done();
}
