/* Writes seed inputs for fuzz_helper into the directory argv[1]: one valid request of
 * each operation (first byte: the number of fds it takes), a reply, an /etc/subuid text
 * and a pidfd fdinfo text. */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "helper/proto.h"

static void put(const char *dir, const char *name, unsigned char sel, const void *a, size_t n)
{
	char path[4096];
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	FILE *f = fopen(path, "wb");
	if (!f || fwrite(&sel, 1, 1, f) != 1 || (n && fwrite(a, n, 1, f) != 1) || fclose(f)) {
		perror(path);
		exit(1);
	}
}

static void seed(const char *dir, const char *name, const struct helper_req *q)
{
	static unsigned char buf[HELPER_MAX_MSG];
	ssize_t n = helper_req_encode(q, buf, sizeof(buf));
	if (n < 0) {
		fprintf(stderr, "cannot encode seed %s\n", name);
		exit(1);
	}
	put(dir, name, (unsigned char)helper_req_nfds(q), buf, (size_t)n);
}

int main(int argc, char **argv)
{
	static struct helper_req q;
	unsigned char rbuf[HELPER_MAX_REPLY];
	const char *subuid = "root:100000:65536\nuser:165536:65536\n1000:300000:10\n";
	const char *fdinfo = "pos:\t0\nflags:\t02000002\nmnt_id:\t4\nPid:\t4242\nNSpid:\t4242\n";

	if (argc != 2) {
		fprintf(stderr, "usage: %s DIR\n", argv[0]);
		return 2;
	}
	memset(&q, 0, sizeof(q));
	q.op = HELPER_OP_REGISTER_TREE;
	q.flags = HELPER_F_PIDFD;
	seed(argv[1], "register_tree", &q);
	memset(&q, 0, sizeof(q));
	q.op = HELPER_OP_SET_SOCKBUF_FORCE;
	q.flags = HELPER_F_SNDBUF | HELPER_F_RCVBUF;
	q.u.sockbuf.snd = q.u.sockbuf.rcv = 1 << 20;
	seed(argv[1], "sockbuf", &q);
	memset(&q, 0, sizeof(q));
	q.op = HELPER_OP_WRITE_ID_MAP;
	q.flags = HELPER_F_GID | HELPER_F_DENY_SETGROUPS;
	q.u.idmap.pid = 100;
	q.u.idmap.nr = 3;
	q.u.idmap.r[0] = (struct id_range){ 0, 1000, 1 };
	q.u.idmap.r[1] = (struct id_range){ 1, 100000, 1000 };
	q.u.idmap.r[2] = (struct id_range){ 2000, 165536, 10 };
	seed(argv[1], "write_id_map", &q);
	memset(&q, 0, sizeof(q));
	q.op = HELPER_OP_SET_NS_LAST_PID;
	q.u.last_pid.last_pid = 299;
	seed(argv[1], "set_ns_last_pid", &q);
	memset(&q, 0, sizeof(q));
	q.op = HELPER_OP_OPEN_BY_HANDLE;
	q.u.handle.open_flags = O_RDONLY | O_CLOEXEC;
	q.u.handle.type = 1;
	q.u.handle.bytes = 8;
	memcpy(q.u.handle.f_handle, "\x12\x34\x56\x78\x9a\xbc\xde\xf0", 8);
	seed(argv[1], "open_by_handle", &q);
	ssize_t n = helper_reply_encode(HELPER_OP_WRITE_ID_MAP, -1, "range not owned", rbuf,
					sizeof(rbuf));
	if (n < 0)
		return 1;
	put(argv[1], "reply", 0, rbuf, (size_t)n);
	put(argv[1], "subuid", 0, subuid, strlen(subuid));
	put(argv[1], "fdinfo", 0, fdinfo, strlen(fdinfo));
	return 0;
}
