/* The peer credentials of unix sockets (SO_PEERCRED, SO_PEERGROUPS): what the kernel
 * keeps of the process that made a socketpair (both ends), called listen() (the
 * listener's own, which its clients copy when they connect: a second listen() renews
 * them) or connected (an accept()ed end's): its pid, effective ids and supplementary
 * groups at that moment.
 *
 * Dump: read as the socket's holder reads them (a child in its pid and user namespaces
 * when they are not the dumper's, ns_run); at the merge the pid is checked: a task of
 * the tree, a process gone by now (made again for the restore), or a live process
 * outside the tree, which no restore can be (refused). The accepted end of a connection
 * still queued at a listener cannot be read: it will name the connector, taken to be
 * the client's holder as it is at the dump (UnixSk.connector).
 *
 * Restore: each call that sets them (socketpair, listen, connect) is made with the
 * recorded ones by the process that makes the sockets (pid and ids already right), else
 * by it with the ids taken for the call (its own pid), else by a transient child with the
 * recorded pid (clone3 set_tid, innermost level: a pid of the tree not made yet, or of a
 * process that was gone at the dump) and ids, sharing the fd table. The sockets the tasks
 * of a network namespace the tree makes share are made by stasis when that namespace's
 * creator asks for them: the children are born in the creator's pid namespace and join
 * its user namespace, and the calls with the creator's own pid are made by the creator
 * (its agent: it serves them while it waits, sk_cred_agent_serve). Where none of that
 * can be (the pid is in use, the ids cannot be taken, a connect by path for the creator,
 * whose view of paths is not stasis's, or holders whose pid namespace is not the maker's
 * and no creator asks) the call is made as the maker and a warning logged. */
#include <errno.h>
#include <stddef.h>
#include <poll.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/log.h"
#include "core/util.h"
#include "cr/ctx.h"
#include "net/sk_unix_int.h"
#include "ns/nsrun.h"
#include "ns/userns.h"
#include "sys/syscalls.h"

/* ------------------------------------------------------------------------ dump ---- */

#define PC_GROUPS_MAX 65536 /* NGROUPS_MAX */
#define PC_REPLY_MAX (sizeof(struct ucred) + sizeof(uint32_t) * (PC_GROUPS_MAX + 1))

/* What SO_PEERCRED and SO_PEERGROUPS say, as one reply: the ucred, the count, the groups. */
static int read_cred(int fd, struct nsrun_buf *out)
{
	struct ucred cr;
	socklen_t l = sizeof(cr);
	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cr, &l) || l != sizeof(cr))
		return -errno;
	_cleanup_free_ uint32_t *g = malloc(PC_GROUPS_MAX * sizeof(*g));
	socklen_t gl = PC_GROUPS_MAX * sizeof(*g);
	if (!g)
		return -ENOMEM;
	if (getsockopt(fd, SOL_SOCKET, SO_PEERGROUPS, g, &gl)) {
		if (errno != ENODATA) /* (ENODATA: no credentials) */
			return -errno;
		gl = 0;
	}
	if (gl % sizeof(*g))
		return -EPROTO;
	uint32_t n = gl / sizeof(*g);
	return nsrun_put(out, &cr, sizeof(cr)) ?: nsrun_put(out, &n, sizeof(n)) ?:
	       nsrun_put(out, g, gl);
}

static int cred_child(void *arg, struct nsrun_buf *out)
{
	int ret = read_cred(*(const int *)arg, out);
	return ret ? nsrun_error(ret, "SO_PEERCRED: %s", strerror(-ret)) : 0;
}

/* A reply of read_cred: its credentials in *@cr and its group count in *@n (the groups
 * follow them), or -EPROTO. */
static int cred_reply(const struct nsrun_buf *b, struct ucred *cr, uint32_t *n)
{
	if (b->len < sizeof(*cr) + sizeof(*n))
		return -EPROTO;
	memcpy(cr, b->data, sizeof(*cr));
	memcpy(n, b->data + sizeof(*cr), sizeof(*n));
	return *n <= PC_GROUPS_MAX && b->len == sizeof(*cr) + sizeof(*n) + *n * sizeof(uint32_t)
		       ? 0
		       : -EPROTO;
}

/* The credentials of @dup as the task of @c reads them, into *@b (a reply of read_cred):
 * read again by a child in the task's pid and user namespaces unless they are the
 * dumper's (*@ours, *@b then left as it is: the dumper's reading). */
static int holder_view(const struct dump_ctx *c, int dup, struct nsrun_buf *b, bool *ours)
{
	_cleanup_close_ int ufd = -1, pfd = -1;
	int ret = ns_open_other(-1, c->ospid, "user", "unix", &ufd) ?:
		  ns_open_other(-1, c->ospid, "pid", "unix", &pfd);
	*ours = ufd < 0 && pfd < 0;
	if (ret || *ours)
		return ret;
	char what[64];
	snprintf(what, sizeof(what), "the namespaces of pid %d", c->pid);
	struct nsrun r = { .tag = "unix", .what = what, .err_prefix = "unix socket",
			   .timeout_ms = 5000, .max_reply = PC_REPLY_MAX };
	if (ufd >= 0)
		r.ns[r.n_ns++] = (struct nsrun_ns){ ufd, CLONE_NEWUSER };
	if (pfd >= 0)
		r.ns[r.n_ns++] = (struct nsrun_ns){ pfd, CLONE_NEWPID };
	void *data = NULL;
	size_t len = 0;
	ret = ns_run(&r, cred_child, &dup, &data, &len);
	free(b->data);
	b->data = data;
	b->len = len;
	return ret;
}

int sk_unix_peer_cred(const struct dump_ctx *c, int fd, int dup, UnixSk *u)
{
	struct nsrun_buf b = { .max = PC_REPLY_MAX };
	struct ucred cr;
	uint32_t n = 0;
	bool ours = false;
	int ret = read_cred(dup, &b) ?: cred_reply(&b, &cr, &n);
	if (!ret && !cr.pid && cr.uid == (uid_t)-1 && cr.gid == (gid_t)-1) {
		free(b.data);
		return 0; /* none */
	}
	pid_t host = cr.pid;
	if (!ret)
		ret = holder_view(c, dup, &b, &ours) ?: cred_reply(&b, &cr, &n);
	PeerCred *pc = ret ? NULL : malloc(sizeof(*pc));
	uint32_t *g = ret ? NULL : malloc((n ? n : 1) * sizeof(*g));
	if (!ret && (!pc || !g))
		ret = -ENOMEM;
	if (ret) {
		free(pc);
		free(g);
		free(b.data);
		return pr_errno(ret, "fd %d of pid %d: the peer credentials of unix socket %llu",
				fd, c->pid, (unsigned long long)u->ino);
	}
	peer_cred__init(pc);
	memcpy(g, b.data + sizeof(cr) + sizeof(n), n * sizeof(*g));
	free(b.data);
	pc->pid = cr.pid;
	pc->uid = cr.uid;
	pc->gid = cr.gid;
	pc->has_host_pid = true;
	pc->host_pid = host;
	pc->has_dumper_ns = pc->dumper_ns = ours;
	pc->groups = g;
	pc->n_groups = n;
	pc->has_with_groups = pc->with_groups = true;
	u->peer_cred = pc;
	return 0;
}

int sk_unix_cred_merge(struct dump_ctx **procs, size_t n, pid_t holder, UnixSk *u)
{
	PeerCred *pc = u->peer_cred;
	/* (an end connected to a peer outside the tree, --external: connected to it again,
	 * it copies that peer's listener's credentials as it did) */
	if (!pc || !pc->has_host_pid || pc->host_pid <= 0 || u->external)
		return 0;
	for (size_t i = 0; i < n; i++)
		if (procs[i]->pid == pc->host_pid)
			return 0; /* a task of the tree */
	_cleanup_close_ int pfd = sys_pidfd_open(pc->host_pid, 0);
	if (pfd >= 0) {
		pr_err("pid %d: unix socket %llu holds the credentials of pid %d, a process "
		       "outside the tree, as its peer's (SO_PEERCRED): no restore can make them "
		       "again: not supported",
		       holder, (unsigned long long)u->ino, pc->host_pid);
		return -EOPNOTSUPP;
	}
	pc->has_dead = pc->dead = true;
	return 0;
}

int sk_unix_connector(const struct dump_ctx *hl, const struct dump_ctx *hc, UnixSk *client)
{
	struct userns_view v;
	uint32_t uid, gid;
	_cleanup_close_ int pfd = -1;
	int ret = ns_open_other(-1, hl->ospid, "pid", "unix", &pfd) ?:
		  userns_view_open(hl->procfd, hl->pid, &v);
	if (ret)
		return ret;
	ret = userns_view_id(&v, false, hc->status.uid[1], &uid) ?:
	      userns_view_id(&v, true, hc->status.gid[1], &gid);
	userns_view_close(&v);
	if (ret) /* (not mapped there: the overflow ids, as the kernel shows them) */
		uid = gid = 65534;
	size_t depth = hl->status.nspid_len;
	pid_t pid = pfd < 0 ? hc->pid
		    : depth && hc->status.nspid_len >= depth ? hc->status.nspid[depth - 1]
							     : 0;
	PeerCred *pc = malloc(sizeof(*pc));
	if (!pc)
		return -ENOMEM;
	peer_cred__init(pc);
	pc->pid = pid;
	pc->uid = uid;
	pc->gid = gid;
	pc->has_host_pid = true;
	pc->host_pid = hc->pid;
	client->connector = pc;
	return 0;
}

/* --------------------------------------------------------------------- restore ---- */

enum cred_op { OP_PAIR, OP_LISTEN, OP_CONNECT };
struct cop {
	enum cred_op kind;
	int fd, backlog, netns, userns;
	const struct sockaddr *sa;
	socklen_t len;
	/* OP_PAIR: @npair socketpairs, of types @types, into @svs[2i] and @svs[2i + 1] (one
	 * maker for all of them: a child of stasis is a fork, 341 of them took seconds) */
	size_t npair;
	const int *types;
	int *svs;
	int ret;     /* the call's 0 or -errno */
	bool denied; /* the ids or the pid could not be taken: made as the maker */
};

/* A thread or child joins the holders' user namespace (a child: it has every right
 * there then), and enters the network namespace a socketpair is made in, before it
 * takes the ids. */
static int cop_enter(const struct cop *o)
{
	if (o->userns >= 0 && syscall(SYS_setns, o->userns, CLONE_NEWUSER))
		return -errno;
	if (o->kind == OP_PAIR && o->netns >= 0 && syscall(SYS_setns, o->netns, CLONE_NEWNET))
		return -errno;
	return 0;
}

static void close_pairs(int *svs, size_t n)
{
	for (size_t i = 0; i < 2 * n; i++)
		if (svs[i] >= 0) {
			close(svs[i]);
			svs[i] = -1;
		}
}

/* The socketpairs of @o, each in network namespace @netns (-1: the caller's): 0, or
 * -errno with none left open. */
static int make_pairs(struct cop *o, int netns)
{
	for (size_t i = 0; i < o->npair; i++) {
		int r = netns >= 0 ? ns_socketpair_in(netns, AF_UNIX, o->types[i], 0, &o->svs[2 * i],
						      "restore unix socketpair",
						      "its network namespace")
				   : socketpair(AF_UNIX, o->types[i], 0, &o->svs[2 * i]) ? -errno : 0;
		if (r) {
			close_pairs(o->svs, i);
			return r;
		}
	}
	return 0;
}

/* The call itself, in whichever task makes it. */
static int cop_raw(struct cop *o)
{
	if (o->kind == OP_PAIR)
		return make_pairs(o, -1);
	int r = o->kind == OP_LISTEN ? listen(o->fd, o->backlog) : connect(o->fd, o->sa, o->len);
	return r ? -errno : 0;
}

/* As the maker (a socketpair in another network namespace by a thread that enters it). */
static int cop_self(struct cop *o)
{
	if (o->kind == OP_PAIR)
		return make_pairs(o, o->netns);
	return cop_raw(o);
}

/* This thread's supplementary groups are @g[0..@n)? */
static bool groups_are(const uint32_t *g, size_t n)
{
	gid_t cur[64];
	long k = syscall(SYS_getgroups, 64, cur);
	if (k < 0 || (size_t)k != n)
		return false;
	for (size_t i = 0; i < n; i++)
		if (cur[i] != g[i])
			return false;
	return true;
}

static int take_ids(const PeerCred *pc)
{
	/* raw: glibc's wrappers would change every thread of the process */
	if (pc->with_groups && !groups_are(pc->groups, pc->n_groups) &&
	    syscall(SYS_setgroups, pc->n_groups, pc->groups))
		return -errno;
	if ((gid_t)syscall(SYS_getegid) != pc->gid && syscall(SYS_setresgid, -1, pc->gid, -1))
		return -errno;
	if ((uid_t)syscall(SYS_geteuid) != pc->uid && syscall(SYS_setresuid, -1, pc->uid, -1))
		return -errno;
	return 0;
}

/* In this thread, with @pc's ids for the call (raw: only this thread's; the real and
 * saved ids stay, so ours come back): a process whose pid is @pc's. */
static void with_ids(struct cop *o, const PeerCred *pc)
{
	uid_t uid = (uid_t)syscall(SYS_geteuid);
	gid_t gid = (gid_t)syscall(SYS_getegid);
	gid_t groups[64];
	long ng = syscall(SYS_getgroups, 64, groups);
	if (ng < 0) { /* (more than 64 of our own: left as they are) */
		o->denied = true;
		return;
	}
	if (take_ids(pc)) {
		o->denied = true;
	} else {
		o->ret = cop_raw(o);
	}
	if (syscall(SYS_setresuid, -1, uid, -1) || syscall(SYS_setresgid, -1, gid, -1) ||
	    (!groups_are((const uint32_t *)groups, (size_t)ng) &&
	     syscall(SYS_setgroups, ng, groups))) {
		/* (cannot be: the saved ids are ours) */
		pr_err("restore unix socket: our ids back: %m");
		o->ret = o->ret ? o->ret : -EPERM;
	}
}

/* By a transient child with @pc's pid (innermost level: of pid namespace @pidns, -1 ours)
 * and ids, sharing our fd table. */
static void by_child(struct cop *o, const PeerCred *pc, int pidns)
{
	size_t nsv = o->kind == OP_PAIR ? 2 * o->npair : 0;
	size_t len = sizeof(*o) + nsv * sizeof(int);
	struct cop *shared = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS,
				  -1, 0);
	if (shared == MAP_FAILED) {
		o->denied = true;
		return;
	}
	*shared = *o;
	if (nsv) /* (the child's fds are ours: CLONE_FILES) */
		shared->svs = memcpy(shared + 1, o->svs, nsv * sizeof(int));
	pid_t want = pc->pid, ch = -1;
	struct stasis_clone_args ca = { .flags = CLONE_FILES,
					.exit_signal = SIGCHLD,
					.set_tid = (uint64_t)(uintptr_t)&want,
					.set_tid_size = 1 };
	/* born in @pidns: this thread's children's namespace for the clone, then ours again */
	int own = pidns >= 0 ? open("/proc/thread-self/ns/pid", O_RDONLY | O_CLOEXEC) : -1;
	if (pidns < 0 || (own >= 0 && !setns(pidns, CLONE_NEWPID)))
		ch = (pid_t)sys_clone3(&ca, sizeof(ca));
	if (ch == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (cop_enter(shared) || take_ids(pc))
			shared->denied = true;
		else
			shared->ret = cop_raw(shared);
		_exit(0);
	}
	int e = errno;
	if (own >= 0 && setns(own, CLONE_NEWPID))
		pr_warn("restore unix socket: back to stasis's pid namespace: %m");
	if (own >= 0)
		close(own);
	if (ch < 0) {
		pr_debug("restore unix socket: a process with pid %d: %s", want, strerror(e));
		shared->denied = true;
	} else {
		int st;
		while (waitpid(ch, &st, __WALL) < 0 && errno == EINTR)
			;
	}
	int *svs = o->svs;
	*o = *shared;
	o->svs = svs;
	if (nsv)
		memcpy(svs, shared + 1, nsv * sizeof(int));
	munmap(shared, len);
}

/* ------------------------------------------------- the creator's agent (stasis asks) */

/* A request to the agent: the call, the ids, the address of a connect; the socket of a
 * listen or connect with it (SCM_RIGHTS). The answer: the call's 0 or -errno (-EPERM:
 * the ids could not be taken), with the two ends of a socketpair. */
#define AGENT_GROUPS 64
struct agent_req {
	int32_t kind, type, backlog;
	uint32_t uid, gid, alen;
	struct sockaddr_un sa;
	uint32_t ngroups; /* UINT32_MAX: not recorded */
	uint32_t groups[AGENT_GROUPS];
};

int sk_cred_agent_serve(int sk)
{
	struct agent_req q;
	int fd = -1;
	ssize_t n = recv_fds(sk, &q, sizeof(q), &fd, 1, 0);
	if (n <= 0)
		return n < 0 ? (int)n : -EPIPE;
	int32_t ret = -EPROTO;
	int sv[2] = { -1, -1 };
	struct cop o = { .kind = (enum cred_op)q.kind, .fd = fd, .npair = 1, .types = &q.type,
			 .svs = sv, .backlog = q.backlog, .sa = (const struct sockaddr *)&q.sa,
			 .len = q.alen, .netns = -1, .userns = -1 };
	if (n == sizeof(q) && q.kind >= OP_PAIR && q.kind <= OP_CONNECT &&
	    q.alen <= sizeof(q.sa) && (q.kind == OP_PAIR) == (fd < 0) &&
	    (q.ngroups <= AGENT_GROUPS || q.ngroups == UINT32_MAX)) {
		PeerCred pc = PEER_CRED__INIT;
		pc.uid = q.uid;
		pc.gid = q.gid;
		pc.with_groups = q.ngroups != UINT32_MAX;
		pc.n_groups = pc.with_groups ? q.ngroups : 0;
		pc.groups = q.groups;
		with_ids(&o, &pc);
		ret = o.denied ? -EPERM : o.ret;
	}
	bool pair = !ret && q.kind == OP_PAIR;
	int e = send_fds(sk, &ret, sizeof(ret), sv, pair ? 2 : 0, 0);
	if (fd >= 0)
		close(fd);
	if (pair)
		close_pairs(sv, 1);
	return e;
}

int sk_cred_agent_start(int *sk)
{
	int sv[2];
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv))
		return pr_perror("restore: socketpair");
	*sk = sv[1]; /* stasis's end */
	return sv[0];
}

/* One request to the agent: its answer in *@ret, a pair's two ends in @sv; false when
 * it did not answer. */
static bool agent_ask(int agent, const struct agent_req *q, int fd, bool pair, int32_t *ret,
		      int sv[2])
{
	struct pollfd p = { .fd = agent, .events = POLLIN };
	sv[0] = sv[1] = -1;
	if (send_fds(agent, q, sizeof(*q), &fd, pair ? 0 : 1, 0) || poll(&p, 1, 10000) != 1 ||
	    recv_fds(agent, ret, sizeof(*ret), sv, 2, 0) != sizeof(*ret) ||
	    (!*ret && pair && (sv[0] < 0 || sv[1] < 0))) {
		close_pairs(sv, 1);
		return false;
	}
	return true;
}

/* Stasis: the call made by the agent of the creator (its pid, a thread with @pc's ids);
 * a request per socketpair. */
static void by_agent(struct cop *o, const PeerCred *pc, int agent)
{
	struct agent_req q = { .kind = o->kind, .backlog = o->backlog,
			       .uid = pc->uid, .gid = pc->gid,
			       .ngroups = pc->with_groups ? (uint32_t)pc->n_groups : UINT32_MAX };
	if (pc->with_groups && pc->n_groups > AGENT_GROUPS) {
		o->denied = true;
		return;
	}
	if (pc->with_groups && pc->n_groups)
		memcpy(q.groups, pc->groups, pc->n_groups * sizeof(*pc->groups));
	if (o->kind == OP_CONNECT) {
		if (o->len > sizeof(q.sa)) {
			o->denied = true;
			return;
		}
		memcpy(&q.sa, o->sa, o->len);
		q.alen = o->len;
	}
	bool pair = o->kind == OP_PAIR;
	for (size_t i = 0; i < (pair ? o->npair : 1); i++) {
		int32_t ret;
		int sv[2];
		q.type = pair ? o->types[i] : 0;
		bool answered = agent_ask(agent, &q, o->fd, pair, &ret, sv);
		o->denied = !answered || ret == -EPERM;
		o->ret = answered ? ret : 0;
		if (!answered || ret) {
			if (pair)
				close_pairs(o->svs, i);
			return;
		}
		if (pair) {
			o->svs[2 * i] = sv[0];
			o->svs[2 * i + 1] = sv[1];
		}
	}
}

static int cop_as(const struct sk_cred_ctx *x, const PeerCred *pc, struct cop *o)
{
	o->netns = x->netns;
	o->userns = -1;
	o->ret = 0;
	o->denied = false;
	if (!pc || !x->exact || pc->pid <= 0)
		return cop_self(o);
	bool here = x->pidns < 0 && x->userns < 0; /* the maker is in the holders' namespaces */
	bool ids = (uid_t)syscall(SYS_geteuid) == pc->uid && (gid_t)syscall(SYS_getegid) == pc->gid;
	if (here && pc->pid == getpid() && ids)
		return cop_self(o);
	if (here && pc->pid == getpid()) {
		with_ids(o, pc);
	} else if (x->agent >= 0 && pc->pid == x->agent_pid &&
		   !(o->kind == OP_CONNECT && o->len > offsetof(struct sockaddr_un, sun_path) &&
		     ((const struct sockaddr_un *)o->sa)->sun_path[0])) {
		/* (a path is the creator's view there, not ours: never by it) */
		by_agent(o, pc, x->agent);
	} else {
		o->userns = x->userns;
		by_child(o, pc, x->pidns);
	}
	if (!o->denied)
		return o->ret;
	/* (the holders read other credentials: said once per socket) */
	pr_warn("restore unix socket: peer credentials of pid %d (uid %u gid %u) not made: that "
		"pid is in use at this point of the restore, or the ids cannot be taken",
		pc->pid, pc->uid, pc->gid);
	return cop_self(o);
}

int sk_cred_socketpairs(const struct sk_cred_ctx *x, const PeerCred *pc, size_t n,
			const int *types, int *svs)
{
	for (size_t i = 0; i < 2 * n; i++)
		svs[i] = -1;
	struct cop o = { .kind = OP_PAIR, .npair = n, .types = types, .svs = svs };
	return n ? cop_as(x, pc, &o) : 0;
}

int sk_cred_listen(const struct sk_cred_ctx *x, const PeerCred *pc, int fd, int backlog)
{
	struct cop o = { .kind = OP_LISTEN, .fd = fd, .backlog = backlog };
	return cop_as(x, pc, &o);
}

int sk_cred_connect(const struct sk_cred_ctx *x, const PeerCred *pc, int fd,
		    const struct sockaddr *sa, unsigned int len)
{
	struct cop o = { .kind = OP_CONNECT, .fd = fd, .sa = sa, .len = len };
	return cop_as(x, pc, &o);
}

void sk_cred_check(const struct sk_cred_ctx *x, int fd, const UnixSk *u)
{
	const PeerCred *pc = u->peer_cred;
	struct ucred cr;
	socklen_t l = sizeof(cr);
	/* (in our view: only when it is the holders') */
	if (!pc || !x->exact || x->pidns >= 0 || x->userns >= 0 ||
	    getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cr, &l) || l != sizeof(cr))
		return;
	uint32_t g[64];
	socklen_t gl = sizeof(g);
	bool groups = !pc->with_groups ||
		      (!getsockopt(fd, SOL_SOCKET, SO_PEERGROUPS, g, &gl) &&
		       gl == pc->n_groups * sizeof(*g) && (!gl || !memcmp(g, pc->groups, gl)));
	if (cr.pid == pc->pid && cr.uid == pc->uid && cr.gid == pc->gid && groups)
		return;
	pr_warn("restore unix socket %llu: its peer credentials are pid %d uid %d gid %d%s, were "
		"pid %d uid %d gid %d (that pid was in use, or the ids could not be taken)",
		(unsigned long long)u->ino, cr.pid, (int)cr.uid, (int)cr.gid,
		groups ? "" : " (other groups)", pc->pid, (int)pc->uid, (int)pc->gid);
}
