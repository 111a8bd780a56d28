/* Restore of a set of unix sockets (every unix description of a task, or of a tree), in
 * the order the kernel needs:
 *   1. create: a socketpair for two ends connected to each other that neither accept()
 *      made (and for a socket whose peer is gone: the other end closed after the fill),
 *      else socket(); ends made by accept() are created later;
 *   2. bind every socket that had a name of its own (a stale socket file at its path, one
 *      no socket is bound to, is replaced; a path unlinked since is unlinked again at the
 *      end; a stale file where a temporary socket binds is moved aside meanwhile);
 *   3. listen;
 *   4. connections made by accept(): the client connects to its listener (or a temporary
 *      one bound to the listener's name, for a listener that is gone), then accept();
 *   5. datagrams queued at bound sockets, sent again each from a socket bound to its
 *      sender's address (the sender itself when it is in the set, else a temporary one
 *      bound to that address: a path in a mount namespace made for it, bind_private, so
 *      that nothing in the way matters), before any datagram socket connects (a
 *      connected socket only takes datagrams from its peer);
 *   6. datagram sockets connect to their peer by name, sockets with an external peer to
 *      its address; a datagram socket whose named peer was closed gets a socket with that
 *      name as its peer, closed after the fill (its socketpair end, or, when it has a
 *      name itself, a socket apart it connects to: for a path, bound and connected to in
 *      a mount namespace made for it);
 *   7. queues of connected sockets sent again from the peer;
 *   8. the connections queued at listening sockets, connected again in accept order;
 *   9. buffers, options, shutdown bits; temporaries closed, paths unlinked.
 * Descriptors in flight (SCM_RIGHTS) are sent with their message: sockets of the set as
 * they are at that moment (the same sockets, finished later), other files from the
 * caller (sk_rights). Every fd is close-on-exec and non-blocking; a failure closes them
 * all and removes the socket files this made. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/magic.h>
#include <sched.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/statfs.h>
#include <sys/wait.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "core/log.h"
#include "core/util.h"
#include "net/sk_unix_int.h"
#include "ns/nsrun.h"

#define SOCK_FLAGS (SOCK_CLOEXEC | SOCK_NONBLOCK)

struct usk {
	const FileDesc *d;
	const UnixSk *u;
	int fd;
	int gone;     /* the temporary other end of a socket whose peer is gone, or -1 */
	ssize_t peer; /* index of the peer in the set, or -1 */
	bool paired;  /* made by socketpair with its peer */
	bool queued;  /* the client of a connection queued at a listener of the set */
	bool relisten; /* a listener whose credentials were a client's for a while */
	/* its named datagram peer was closed and it has a name itself (it takes datagrams
	 * from others before it connects): gone is a socket apart, bound to the peer's name
	 * (gone_bound) and connected to by 6., not its socketpair end */
	bool gone_apart, gone_bound;
};

struct ubuild {
	struct usk *s;
	size_t n;
	int *tmp; /* temporary sockets, closed at the end */
	size_t n_tmp;
	char (*paths)[SK_NAME_MAX + 1]; /* socket files made here */
	bool *keep;                     /* ... kept at the end (else unlinked) */
	size_t n_paths;
	char (*aside)[SK_NAME_MAX + 1]; /* stale socket files moved aside, put back at the end */
	size_t n_aside;
	const struct sk_rights *src; /* descriptions in flight not in the set */
	struct sk_rights rights;     /* ... and those of the set */
	struct sk_cred_ctx cx; /* the sockets' network namespace, how peer credentials are made */
};

struct uaddr {
	struct sockaddr_un sa;
	socklen_t len;
};

static void mkaddr(const ProtobufCBinaryData *name, struct uaddr *a)
{
	memset(a, 0, sizeof(*a));
	a->sa.sun_family = AF_UNIX;
	size_t n = name->len < SK_NAME_MAX ? name->len : SK_NAME_MAX;
	memcpy(a->sa.sun_path, name->data, n);
	a->len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n);
}

static bool is_path(const ProtobufCBinaryData *name) { return name->len > 0 && name->data[0] != 0; }

static bool same_name(const ProtobufCBinaryData *a, const ProtobufCBinaryData *b)
{
	return a->len == b->len && (!a->len || !memcmp(a->data, b->data, a->len));
}

static bool named(const UnixSk *u) { return u->has_name && u->name.len > 0; }

/* A datagram socket whose closed peer had a name. */
static bool gone_named(const UnixSk *u)
{
	return u->peer_gone && u->type == SOCK_DGRAM && u->has_peer_name && u->peer_name.len;
}

static const char *nstr(const UnixSk *u, char *buf)
{
	return sk_unix_name_str(&u->name, u->has_name, buf, SK_NAME_MAX + 2);
}

static int add_tmp(struct ubuild *b, int fd)
{
	int *n = realloc(b->tmp, (b->n_tmp + 1) * sizeof(*n));
	if (!n) {
		close(fd);
		return -ENOMEM;
	}
	b->tmp = n;
	b->tmp[b->n_tmp++] = fd;
	return 0;
}

static int new_sock(const struct ubuild *b, unsigned int type, uint64_t ino)
{
	int fd;
	if (b->cx.netns >= 0) { /* (logged) */
		fd = ns_socket_in(-1, b->cx.netns, AF_UNIX, (int)type | SOCK_FLAGS, 0, "restore unix "
				  "socket", "its network namespace");
		if (fd < 0)
			return fd;
	} else if ((fd = socket(AF_UNIX, (int)type | SOCK_FLAGS, 0)) < 0) {
		return pr_perror("restore unix socket %llu: socket(%s)", (unsigned long long)ino,
				 sk_unix_type_name(type));
	}
	sk_unix_raise_sndbuf(fd);
	return fd;
}

/* Is the socket file @path bound by a live socket? A datagram connect probes it without
 * a side effect on the socket (a stream or seqpacket one answers EPROTOTYPE). */
static bool live_socket(const struct uaddr *a)
{
	int p = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (p < 0)
		return true;
	int r = connect(p, (const struct sockaddr *)&a->sa, a->len), e = errno;
	close(p);
	return !(r < 0 && e == ECONNREFUSED);
}

static int grow_paths(struct ubuild *b, uint64_t ino)
{
	char(*np)[SK_NAME_MAX + 1] = realloc(b->paths, (b->n_paths + 1) * sizeof(*np));
	if (np)
		b->paths = np;
	bool *nk = np ? realloc(b->keep, (b->n_paths + 1) * sizeof(*nk)) : NULL;
	if (nk)
		b->keep = nk;
	char(*na)[SK_NAME_MAX + 1] = nk ? realloc(b->aside, (b->n_aside + 1) * sizeof(*na)) : NULL;
	if (na)
		b->aside = na;
	return na ? 0 : pr_errno(-ENOMEM, "restore unix socket %llu", (unsigned long long)ino);
}

static void aside_name(const char *path, char *out, size_t len)
{
	snprintf(out, len, "%s.stasis-aside", path);
}

/* A socket file at the path of @a: a stale one (no socket bound to it, left by a socket
 * that is gone) is replaced for a socket that keeps the name, moved aside for the time
 * of the restore for a temporary one (put back at the end); anything else is refused. */
static int clear_path(struct ubuild *b, const struct uaddr *a, bool unlink_after, uint64_t ino)
{
	const char *path = a->sa.sun_path;
	char aside[SK_NAME_MAX + 32];
	struct stat st;

	if (lstat(path, &st))
		return 0;
	if (!S_ISSOCK(st.st_mode) || live_socket(a)) {
		pr_err("restore unix socket %llu: %s exists and is %s: cannot bind a socket to it",
		       (unsigned long long)ino, path,
		       S_ISSOCK(st.st_mode) ? "bound by a running socket" : "not a socket");
		return -EEXIST;
	}
	if (!unlink_after) {
		if (unlink(path))
			return pr_perror("restore unix socket %llu: replace the socket file %s",
					 (unsigned long long)ino, path);
		return 0;
	}
	aside_name(path, aside, sizeof(aside));
	if (rename(path, aside))
		return pr_perror("restore unix socket %llu: move %s aside", (unsigned long long)ino,
				 path);
	memcpy(b->aside[b->n_aside], path, SK_NAME_MAX + 1);
	b->aside[b->n_aside++][SK_NAME_MAX] = 0;
	return 0;
}

/* Bind @fd to @name; a path is recorded (kept unless @unlink_after). */
static int bind_name(struct ubuild *b, int fd, const ProtobufCBinaryData *name, bool unlink_after,
		     uint64_t ino)
{
	struct uaddr a;
	char nb[SK_NAME_MAX + 2];

	mkaddr(name, &a);
	if (is_path(name)) {
		int ret = grow_paths(b, ino);
		if (!ret)
			ret = clear_path(b, &a, unlink_after, ino);
		if (ret)
			return ret;
	}
	if (bind(fd, (struct sockaddr *)&a.sa, a.len))
		return pr_perror("restore unix socket %llu: bind to %s", (unsigned long long)ino,
				 sk_unix_name_str(name, true, nb, sizeof(nb)));
	if (is_path(name)) {
		memcpy(b->paths[b->n_paths], a.sa.sun_path, SK_NAME_MAX + 1);
		b->paths[b->n_paths][SK_NAME_MAX] = 0;
		b->keep[b->n_paths++] = !unlink_after;
	}
	return 0;
}

/* The permission bits and owner of @u's socket file, as dumped. The owner is set only
 * where it differs from what the bind gave (the restored task binding its own socket
 * makes it its own); one that cannot be set is a warning. */
static int file_attrs(const UnixSk *u)
{
	struct uaddr a;
	struct stat st;
	mkaddr(&u->name, &a);
	if (!is_path(&u->name) || u->unlinked || !u->has_file_mode)
		return 0;
	if (lstat(a.sa.sun_path, &st))
		return pr_perror("restore unix socket %llu: stat %s", (unsigned long long)u->ino,
				 a.sa.sun_path);
	if (u->has_file_uid && u->has_file_gid && (st.st_uid != u->file_uid || st.st_gid != u->file_gid) &&
	    lchown(a.sa.sun_path, u->file_uid, u->file_gid))
		pr_warn("restore unix socket %llu: cannot give %s to %u:%u: %m",
			(unsigned long long)u->ino, a.sa.sun_path, u->file_uid, u->file_gid);
	if ((st.st_mode & 07777) != u->file_mode && chmod(a.sa.sun_path, u->file_mode))
		return pr_perror("restore unix socket %llu: chmod %s %o", (unsigned long long)u->ino,
				 a.sa.sun_path, u->file_mode);
	return 0;
}

static ssize_t find_ino(const struct ubuild *b, uint64_t ino)
{
	for (size_t k = 0; k < b->n; k++)
		if (b->s[k].u->ino == ino)
			return (ssize_t)k;
	return -1;
}

/* A socket of the set of type @type bound to @name itself (not by accept), optionally
 * listening. */
static ssize_t find_name(const struct ubuild *b, unsigned int type, const ProtobufCBinaryData *name,
			 bool listening)
{
	for (size_t k = 0; k < b->n; k++) {
		const UnixSk *u = b->s[k].u;
		if (u->type == type && named(u) && !u->accepted && same_name(&u->name, name) &&
		    (!listening || sk_unix_state(u) == SK_LISTEN))
			return (ssize_t)k;
	}
	return -1;
}

/* Peers, the clients of queued connections, and the consistency of the set. */
static int link_set(struct ubuild *b)
{
	for (size_t k = 0; k < b->n; k++) {
		struct usk *s = &b->s[k];
		if (find_ino(b, s->u->ino) != (ssize_t)k) {
			pr_err("files image: two unix sockets have inode %llu",
			       (unsigned long long)s->u->ino);
			return -EINVAL;
		}
		s->peer = s->u->peer_ino && !s->u->external ? find_ino(b, s->u->peer_ino) : -1;
	}
	for (size_t k = 0; k < b->n; k++) {
		const UnixSk *u = b->s[k].u;
		for (size_t i = 0; i < u->n_icons; i++) {
			ssize_t c = find_ino(b, u->icons[i]);
			if (c < 0 || b->s[c].peer >= 0 || b->s[c].queued ||
			    b->s[c].u->type != u->type || sk_unix_state(b->s[c].u) != SK_ESTABLISHED ||
			    b->s[c].u->peer_gone || b->s[c].u->external || b->s[c].u->accepted) {
				pr_err("files image: connection %zu queued at unix socket %llu has no "
				       "client in the tree",
				       i, (unsigned long long)u->ino);
				return -EINVAL;
			}
			b->s[c].queued = true;
		}
	}
	for (size_t k = 0; k < b->n; k++) {
		const struct usk *s = &b->s[k];
		const UnixSk *u = s->u;
		if (sk_unix_state(u) != SK_ESTABLISHED || u->peer_gone || u->external ||
		    s->queued || (u->type == SOCK_DGRAM && !u->peer_ino))
			continue;
		const UnixSk *p = s->peer >= 0 ? b->s[s->peer].u : NULL;
		bool ok = p && p->type == u->type;
		if (ok && u->type != SOCK_DGRAM)
			ok = p->peer_ino == u->ino && !(u->accepted && p->accepted);
		if (!ok) {
			pr_err("files image: unix socket %llu is connected to socket %llu, which is "
			       "not its other end in the tree",
			       (unsigned long long)u->ino, (unsigned long long)u->peer_ino);
			return -EINVAL;
		}
	}
	return 0;
}

static bool same_cred(const PeerCred *a, const PeerCred *b)
{
	if (!a || !b)
		return a == b;
	return a->pid == b->pid && a->uid == b->uid && a->gid == b->gid &&
	       a->with_groups == b->with_groups && a->n_groups == b->n_groups &&
	       (!a->n_groups || !memcmp(a->groups, b->groups, a->n_groups * sizeof(*a->groups)));
}

/* The socketpairs of the sockets @want[0..@n) (their peers, or a spare end for one whose
 * peer is gone), made in groups of the same peer credentials: one maker for each. */
static int make_pairs(struct ubuild *b, size_t *want, size_t n)
{
	_cleanup_free_ int *types = calloc(n ? n : 1, sizeof(*types));
	_cleanup_free_ int *svs = calloc(n ? 2 * n : 1, sizeof(*svs));
	_cleanup_free_ size_t *grp = calloc(n ? n : 1, sizeof(*grp));
	if (!types || !svs || !grp)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++) {
		if (want[i] == SIZE_MAX)
			continue; /* (made with an earlier group) */
		const UnixSk *u = b->s[want[i]].u;
		size_t g = 0;
		for (size_t j = i; j < n; j++)
			if (want[j] != SIZE_MAX && same_cred(b->s[want[j]].u->peer_cred, u->peer_cred)) {
				grp[g] = want[j];
				types[g++] = (int)b->s[want[j]].u->type | SOCK_FLAGS;
				if (j > i)
					want[j] = SIZE_MAX;
			}
		int r = sk_cred_socketpairs(&b->cx, u->peer_cred, g, types, svs);
		if (r && b->cx.netns >= 0)
			return r;
		if (r)
			return pr_errno(r, "restore unix socket %llu: socketpair(%s)",
					(unsigned long long)u->ino, sk_unix_type_name(u->type));
		for (size_t k = 0; k < g; k++) {
			struct usk *s = &b->s[grp[k]];
			struct usk *p = s->peer >= 0 ? &b->s[s->peer] : NULL;
			sk_unix_raise_sndbuf(svs[2 * k]);
			sk_unix_raise_sndbuf(svs[2 * k + 1]);
			s->fd = svs[2 * k];
			if (p && p->fd == -2) {
				p->fd = svs[2 * k + 1];
				s->paired = p->paired = true;
			} else {
				s->gone = svs[2 * k + 1];
			}
		}
	}
	return 0;
}

/* 1. socketpairs and sockets */
static int create_all(struct ubuild *b)
{
	_cleanup_free_ size_t *want = calloc(b->n ? b->n : 1, sizeof(*want));
	size_t nw = 0;
	if (!want)
		return -ENOMEM;
	for (size_t k = 0; k < b->n; k++) {
		struct usk *s = &b->s[k];
		const UnixSk *u = s->u;
		struct usk *p = s->peer >= 0 ? &b->s[s->peer] : NULL;
		if (s->fd != -1 || u->accepted)
			continue; /* (made, or wanted as the peer of an earlier one) */
		bool pair = p && sk_unix_state(u) == SK_ESTABLISHED && !p->u->accepted &&
			    p->u->peer_ino == u->ino &&
			    (u->type != SOCK_DGRAM || (!named(u) && !named(p->u)));
		if (u->peer_gone && gone_named(u) && named(u)) {
			s->fd = new_sock(b, u->type, u->ino);
			s->gone = s->fd < 0 ? -1 : new_sock(b, u->type, u->ino);
			if (s->gone < 0)
				return s->fd < 0 ? s->fd : s->gone;
			s->gone_apart = true;
			continue;
		}
		if (pair || u->peer_gone) {
			if (pair)
				p->fd = -2; /* (made with this one, as its socketpair) */
			want[nw++] = k;
			continue;
		}
		s->fd = new_sock(b, u->type, u->ino);
		if (s->fd < 0)
			return s->fd;
	}
	int ret = make_pairs(b, want, nw);
	for (size_t k = 0; k < b->n && !ret; k++)
		ret = b->s[k].fd >= 0 ? sk_unix_early(b->s[k].fd, b->s[k].u) : 0;
	return ret;
}

/* listen() on @s, made or again, with the peer credentials @pc (its own, or for a while
 * the ones a client connecting now must copy) */
static int listen_as(struct ubuild *b, struct usk *s, const PeerCred *pc)
{
	int ret = sk_cred_listen(&b->cx, pc, s->fd, (int)MIN(s->u->backlog, 1u << 30));
	if (ret)
		return pr_errno(ret, "restore unix socket %llu: listen(%u)",
				(unsigned long long)s->u->ino, s->u->backlog);
	s->relisten = pc != s->u->peer_cred;
	return 0;
}

/* Listeners made to lend their credentials get their own back. */
static int relisten_all(struct ubuild *b)
{
	for (size_t k = 0; k < b->n; k++) {
		int ret = b->s[k].relisten ? listen_as(b, &b->s[k], b->s[k].u->peer_cred) : 0;
		if (ret)
			return ret;
	}
	return 0;
}

/* 2, 3: names and listening sockets */
static int bind_listen(struct ubuild *b)
{
	for (size_t k = 0; k < b->n; k++) {
		const UnixSk *u = b->s[k].u;
		if (named(u) && !u->accepted) {
			int ret = bind_name(b, b->s[k].fd, &u->name, u->unlinked, u->ino);
			if (!ret)
				ret = file_attrs(u);
			if (ret)
				return ret;
		}
		int ret = sk_unix_state(u) == SK_LISTEN ? listen_as(b, &b->s[k], u->peer_cred) : 0;
		if (ret)
			return ret;
	}
	return 0;
}

static int write_proc(const char *path, const char *text)
{
	_cleanup_close_ int fd = open(path, O_WRONLY | O_CLOEXEC);
	return fd < 0 ? -errno : write_all(fd, text, strlen(text));
}

/* In a child: @fd bound to path @a in a mount namespace of its own, under a root that is
 * a fresh tmpfs holding the path's directories (a user namespace of its own first when
 * it has no right to make one: the caller is not root). */
static int private_bind_child(int fd, const struct uaddr *a, int conn)
{
	if (unshare(CLONE_NEWNS)) {
		char map[64];
		int u = (int)geteuid(), g = (int)getegid();
		/* (a fork of a stasis with file capabilities is not dumpable: its /proc files
		 * would be root's) */
		if (errno != EPERM || unshare(CLONE_NEWUSER | CLONE_NEWNS) ||
		    (prctl(PR_GET_DUMPABLE) != 1 && prctl(PR_SET_DUMPABLE, 1)))
			return 10;
		snprintf(map, sizeof(map), "0 %d 1", u);
		if (write_proc("/proc/self/setgroups", "deny") ||
		    write_proc("/proc/self/uid_map", map))
			return 11;
		snprintf(map, sizeof(map), "0 %d 1", g);
		if (write_proc("/proc/self/gid_map", map))
			return 12;
	}
	/* nothing of this namespace reaches the caller's */
	if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL))
		return 13;
	static const char *const at[] = { "/tmp", "/dev", "/proc", "/mnt", "/" };
	struct statfs fs;
	size_t k = 0;
	for (; k < ARRAY_SIZE(at); k++)
		if (!mount("stasis", at[k], "tmpfs", MS_NOSUID | MS_NODEV, "size=64k,mode=0755") &&
		    !chdir(at[k]) && !statfs(".", &fs) && fs.f_type == TMPFS_MAGIC)
			break;
	if (k == ARRAY_SIZE(at) || chroot("."))
		return 14;
	char dir[SK_NAME_MAX + 1];
	snprintf(dir, sizeof(dir), "%s", a->sa.sun_path);
	for (char *sl = strchr(dir + 1, '/'); sl; sl = strchr(sl + 1, '/')) {
		*sl = 0;
		if (mkdir(dir, 0755) && errno != EEXIST)
			return 15;
		*sl = '/';
	}
	if (bind(fd, (const struct sockaddr *)&a->sa, a->len))
		return 16;
	return conn >= 0 && connect(conn, (const struct sockaddr *)&a->sa, a->len) ? 17 : 0;
}

/* Bind @fd to path @a where only the binding sees it (a mount namespace made for it), and
 * connect @conn (-1: none) to it there: the socket has the name (what getpeername says of
 * a socket connected to it, the sender address of what it sends) while no file of the
 * caller's view is made or moved, even where a live socket holds that path. */
static int bind_private(int fd, const struct uaddr *a, int conn, uint64_t ino)
{
	pid_t pid = fork();
	if (pid < 0)
		return pr_perror("restore unix socket %llu: fork", (unsigned long long)ino);
	if (!pid)
		_exit(private_bind_child(fd, a, conn));
	int st = 0;
	if (waitpid_bounded(pid, &st, 5000) != pid) {
		kill(pid, SIGKILL);
		(void)waitpid_bounded(pid, &st, 5000);
		pr_err("restore unix socket %llu: binding %s apart: no answer",
		       (unsigned long long)ino, a->sa.sun_path);
		return -ETIMEDOUT;
	}
	if (!WIFEXITED(st) || WEXITSTATUS(st)) {
		pr_err("restore unix socket %llu: %s could not be bound apart (step %d)",
		       (unsigned long long)ino, a->sa.sun_path, WIFEXITED(st) ? WEXITSTATUS(st) : -1);
		return -EIO;
	}
	return 0;
}

/* The socket apart of @r (gone_apart) bound to its closed peer's abstract name, now. */
static int bind_gone(struct usk *r)
{
	struct uaddr a;
	char nb[SK_NAME_MAX + 2];
	mkaddr(&r->u->peer_name, &a);
	if (!r->gone_bound && bind(r->gone, (const struct sockaddr *)&a.sa, a.len))
		return pr_perror("restore unix socket %llu: bind its closed peer's name %s",
				 (unsigned long long)r->u->ino,
				 sk_unix_name_str(&r->u->peer_name, true, nb, sizeof(nb)));
	r->gone_bound = true;
	return r->gone;
}

/* A socket to send a datagram from @name (empty: unbound), for receiver @r. */
static int sender_for(struct ubuild *b, struct usk *r, const ProtobufCBinaryData *name)
{
	const struct usk *p = r->peer >= 0 ? &b->s[r->peer] : NULL;
	if (!name->len && p && !named(p->u))
		return p->fd;
	if (name->len) {
		ssize_t j = find_name(b, SOCK_DGRAM, name, false);
		if (j >= 0)
			return b->s[j].fd;
	}
	/* its closed peer's abstract name: the socket it connects to by 6. (the name, taken
	 * by a temporary, could not be bound there) */
	if (r->gone_apart && !is_path(name) && same_name(name, &r->u->peer_name))
		return bind_gone(r);
	int fd = new_sock(b, SOCK_DGRAM, r->u->ino);
	if (fd < 0)
		return fd;
	int ret = add_tmp(b, fd);
	if (ret)
		return pr_errno(ret, "restore unix socket %llu", (unsigned long long)r->u->ino);
	if (name->len) {
		/* the address of a sender that is gone: bound for the time of the restore, a
		 * path apart (nothing in the way, whatever holds that path now) */
		struct uaddr a;
		mkaddr(name, &a);
		ret = is_path(name) ? bind_private(fd, &a, -1, r->u->ino)
				    : bind_name(b, fd, name, true, r->u->ino);
		if (ret)
			return ret;
	}
	return fd;
}

/* 5. datagrams queued at bound sockets */
static int fill_bound_dgrams(struct ubuild *b)
{
	for (size_t k = 0; k < b->n; k++) {
		struct usk *s = &b->s[k];
		const UnixSk *u = s->u;
		if (u->type != SOCK_DGRAM || !named(u) || !u->n_msgs)
			continue;
		struct uaddr to;
		mkaddr(&u->name, &to);
		for (size_t i = 0; i < u->n_msgs; i++) {
			static const ProtobufCBinaryData none;
			const ProtobufCBinaryData *nm = u->n_msg_names ? &u->msg_names[i] : &none;
			int snd = sender_for(b, s, nm);
			if (snd < 0)
				return snd;
			int ret = sk_unix_send_msg(snd, u, i, &to.sa, to.len, &b->rights);
			if (ret)
				return ret;
		}
	}
	return 0;
}

/* 4. one connection made by accept(): @s is the accepted end */
static int accept_one(struct ubuild *b, struct usk *s)
{
	const UnixSk *u = s->u;
	struct uaddr a;
	char nb[SK_NAME_MAX + 2];
	ssize_t l = find_name(b, u->type, &u->name, true);
	int lfd, ret;
	/* the client copies the listener's credentials as it connects */
	const PeerCred *cpc = s->peer >= 0 ? b->s[s->peer].u->peer_cred : NULL;

	mkaddr(&u->name, &a);
	if (l >= 0) {
		lfd = b->s[l].fd;
		if (cpc && cpc != b->s[l].u->peer_cred && (ret = listen_as(b, &b->s[l], cpc)))
			return ret;
	} else {
		/* its listener is gone: a temporary one with the same name */
		lfd = new_sock(b, u->type, u->ino);
		if (lfd < 0 || (ret = add_tmp(b, lfd)))
			return lfd < 0 ? lfd : pr_errno(ret, "restore unix socket");
		ret = bind_name(b, lfd, &u->name, true, u->ino);
		if (ret)
			return ret;
		if ((ret = sk_cred_listen(&b->cx, cpc, lfd, 1)))
			return pr_errno(ret, "restore unix socket %llu: listen",
					(unsigned long long)u->ino);
	}
	int cfd = s->peer >= 0 ? b->s[s->peer].fd : new_sock(b, u->type, u->ino);
	if (cfd < 0)
		return cfd;
	if (s->peer < 0)
		s->gone = cfd; /* the client that is gone, closed after the fill */
	if ((ret = sk_cred_connect(&b->cx, u->peer_cred, cfd, (struct sockaddr *)&a.sa, a.len)))
		return pr_errno(ret, "restore unix socket %llu: connect to %s",
				(unsigned long long)u->ino, nstr(u, nb));
	s->fd = accept4(lfd, NULL, NULL, SOCK_FLAGS);
	if (s->fd < 0)
		return pr_perror("restore unix socket %llu: accept on %s",
				 (unsigned long long)u->ino, nstr(u, nb));
	sk_unix_raise_sndbuf(s->fd);
	return sk_unix_early(s->fd, u);
}

/* A datagram socket whose named peer was closed: the other end of its socketpair, closed
 * after the fill, gets that name; a socket apart (gone_apart) gets it and the socket
 * connects to it (a path: both where only they see it). */
static int name_gone_peer(struct usk *s)
{
	const UnixSk *u = s->u;
	struct uaddr a;
	mkaddr(&u->peer_name, &a);
	if (is_path(&u->peer_name))
		return bind_private(s->gone, &a, s->gone_apart ? s->fd : -1, u->ino);
	int ret = bind_gone(s);
	if (ret < 0 || !s->gone_apart)
		return ret < 0 ? ret : 0;
	if (connect(s->fd, (const struct sockaddr *)&a.sa, a.len))
		return pr_perror("restore unix socket %llu: connect to its closed peer's name",
				 (unsigned long long)u->ino);
	return 0;
}

/* 6. connect to a peer by name (a stream or seqpacket one: as @pc, who its accepted end
 * will name) */
static int connect_as(struct ubuild *b, const struct usk *s, const ProtobufCBinaryData *name,
		      const PeerCred *pc)
{
	struct uaddr a;
	char nb[SK_NAME_MAX + 2];
	mkaddr(name, &a);
	int ret = sk_cred_connect(&b->cx, pc, s->fd, (struct sockaddr *)&a.sa, a.len);
	if (ret)
		return pr_errno(ret, "restore unix socket %llu: connect to %s",
				(unsigned long long)s->u->ino,
				sk_unix_name_str(name, true, nb, sizeof(nb)));
	return 0;
}

static int connect_to(struct ubuild *b, const struct usk *s, const ProtobufCBinaryData *name)
{
	return connect_as(b, s, name, NULL);
}

static int accept_all(struct ubuild *b)
{
	for (size_t k = 0; k < b->n; k++) {
		struct usk *s = &b->s[k];
		int ret = 0;
		if (s->u->accepted && sk_unix_state(s->u) == SK_ESTABLISHED)
			ret = accept_one(b, s);
		if (ret)
			return ret;
	}
	return relisten_all(b);
}

static int connect_all(struct ubuild *b)
{
	for (size_t k = 0; k < b->n; k++) {
		struct usk *s = &b->s[k];
		const UnixSk *u = s->u;
		int ret = 0;
		if (gone_named(u) && s->gone >= 0 && (ret = name_gone_peer(s)))
			return ret;
		if (sk_unix_state(u) != SK_ESTABLISHED || s->paired || s->queued || u->accepted ||
		    u->peer_gone)
			continue;
		if (u->external) {
			if (!u->has_peer_name || !u->peer_name.len) {
				pr_err("restore unix socket %llu: its peer outside the tree had no "
				       "address: cannot connect to it again",
				       (unsigned long long)u->ino);
				return -EOPNOTSUPP;
			}
			ret = connect_to(b, s, &u->peer_name);
		} else if (u->type == SOCK_DGRAM) {
			if (s->peer < 0)
				continue; /* others connected to it (or its peer is gone) */
			const UnixSk *p = b->s[s->peer].u;
			if (!named(p) || p->accepted) {
				pr_err("files image: datagram unix socket %llu is connected to an "
				       "unnamed socket %llu",
				       (unsigned long long)u->ino, (unsigned long long)p->ino);
				return -EINVAL;
			}
			ret = connect_to(b, s, &p->name);
		} else {
			continue; /* the client of an accepted connection: connected by 4. */
		}
		if (ret)
			return ret;
	}
	return 0;
}

/* 7. queues of connected sockets (bound datagram sockets were filled by 5.) */
static int fill_connected(struct ubuild *b)
{
	for (size_t k = 0; k < b->n; k++) {
		struct usk *s = &b->s[k];
		const UnixSk *u = s->u;
		bool empty = u->type == SOCK_STREAM ? !u->has_data || !u->data.len : !u->n_msgs;
		if (empty || (u->type == SOCK_DGRAM && named(u)))
			continue;
		int snd = s->gone >= 0 ? s->gone : s->peer >= 0 ? b->s[s->peer].fd : -1;
		if (snd < 0 || s->queued || u->external || sk_unix_state(u) != SK_ESTABLISHED) {
			pr_err("files image: unix socket %llu has queued data no socket of the tree "
			       "can have sent",
			       (unsigned long long)u->ino);
			return -EINVAL;
		}
		int ret = sk_unix_fill(snd, u, &b->rights);
		if (ret)
			return ret;
	}
	for (size_t k = 0; k < b->n; k++)
		if (b->s[k].gone >= 0) {
			/* a peer that closed with data unread left the error ECONNRESET: the
			 * one that closes now has a byte unread */
			if (b->s[k].u->pending_reset &&
			    send(b->s[k].fd, "", 1, MSG_DONTWAIT | MSG_NOSIGNAL) != 1)
				return pr_perror("restore unix socket %llu: its pending error",
						 (unsigned long long)b->s[k].u->ino);
			close(b->s[k].gone);
			b->s[k].gone = -1;
		}
	return 0;
}

/* 8. connections queued at listeners, in accept order */
static int queue_connections(struct ubuild *b)
{
	for (size_t k = 0; k < b->n; k++) {
		const UnixSk *u = b->s[k].u;
		for (size_t i = 0; i < u->n_icons; i++) {
			const struct usk *c = &b->s[find_ino(b, u->icons[i])];
			const PeerCred *cpc = c->u->peer_cred;
			int ret = cpc && cpc != u->peer_cred ? listen_as(b, &b->s[k], cpc) : 0;
			if (!ret)
				ret = connect_as(b, c, &u->name, c->u->connector);
			if (ret)
				return ret;
		}
	}
	return relisten_all(b);
}

static int build(struct ubuild *b)
{
	int ret = link_set(b);
	if (!ret)
		ret = create_all(b);
	if (!ret)
		ret = bind_listen(b);
	if (!ret) /* before the datagrams: a socket made by accept() may be in flight */
		ret = accept_all(b);
	if (!ret)
		ret = fill_bound_dgrams(b);
	if (!ret)
		ret = connect_all(b);
	if (!ret)
		ret = fill_connected(b);
	if (!ret)
		ret = queue_connections(b);
	for (size_t k = 0; k < b->n && !ret; k++)
		ret = sk_unix_finish(b->s[k].fd, b->s[k].u);
	for (size_t k = 0; k < b->n && !ret; k++)
		sk_cred_check(&b->cx, b->s[k].fd, b->s[k].u);
	return ret;
}

/* The fd of description @id in flight: a socket of the set (made by now), else @src's. */
static int rights_fd(void *arg, uint32_t id)
{
	const struct ubuild *b = arg;
	for (size_t k = 0; k < b->n; k++)
		if (b->s[k].d->id == id) {
			if (b->s[k].fd >= 0)
				return b->s[k].fd;
			pr_err("restore unix socket %llu: it is in flight before it exists",
			       (unsigned long long)b->s[k].u->ino);
			return -EINVAL;
		}
	if (!b->src) {
		pr_err("files image: file %u in flight is not in the image", id);
		return -EINVAL;
	}
	return b->src->fd(b->src->arg, id);
}

int sk_unix_build(const FileDesc *const *d, size_t n, int *fds, const struct sk_rights *src,
		  const struct sk_cred_ctx *cx)
{
	struct ubuild b = { .n = n, .s = calloc(n ? n : 1, sizeof(struct usk)), .src = src,
			    .cx = *cx };
	b.rights = (struct sk_rights){ rights_fd, &b };
	if (!b.s)
		return pr_errno(-ENOMEM, "restore unix sockets");
	for (size_t k = 0; k < n; k++)
		b.s[k] = (struct usk){ .d = d[k], .u = d[k]->unix_sk, .fd = -1, .gone = -1, .peer = -1 };
	int ret = build(&b);
	for (size_t k = 0; k < n; k++) {
		if (b.s[k].gone >= 0)
			close(b.s[k].gone);
		if (ret && b.s[k].fd >= 0)
			close(b.s[k].fd);
		fds[k] = ret ? -1 : b.s[k].fd;
	}
	for (size_t i = 0; i < b.n_tmp; i++)
		close(b.tmp[i]);
	for (size_t i = 0; i < b.n_paths; i++)
		if ((ret || !b.keep[i]) && unlink(b.paths[i]) && errno != ENOENT)
			pr_warn("restore unix sockets: cannot remove %s: %m", b.paths[i]);
	for (size_t i = 0; i < b.n_aside; i++) {
		char aside[SK_NAME_MAX + 32];
		aside_name(b.aside[i], aside, sizeof(aside));
		if (rename(aside, b.aside[i]))
			pr_warn("restore unix sockets: cannot move %s back to %s: %m", aside,
				b.aside[i]);
	}
	free(b.tmp);
	free(b.aside);
	free(b.paths);
	free(b.keep);
	free(b.s);
	return ret;
}
