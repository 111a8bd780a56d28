#include "core/util.h"
#include "core/log.h"
#include "sys/syscalls.h"

#include <fcntl.h>
#include <stdio.h>
#include <sys/stat.h>
#include <linux/openat2.h>
#include <limits.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>

int write_all(int fd, const void *buf, size_t len)
{
	const char *p = buf;
	while (len) {
		ssize_t n = write(fd, p, len);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

int pwrite_all(int fd, const void *buf, size_t len, off_t off)
{
	const char *p = buf;
	while (len) {
		ssize_t n = pwrite(fd, p, len, off);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		p += n;
		off += n;
		len -= (size_t)n;
	}
	return 0;
}

int read_all(int fd, void *buf, size_t len)
{
	char *p = buf;
	while (len) {
		ssize_t n = read(fd, p, len);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (n == 0)
			return -EIO;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

/* read_file_at, or with @head the first whole lines of at most @max bytes; with @chunk,
 * no read asks for more than @chunk bytes. */
static char *read_at(int dirfd, const char *path, size_t max, size_t *lenp, bool head,
		     size_t chunk)
{
	_cleanup_close_ int fd = openat(dirfd, path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return NULL;
	size_t cap = 4096, len = 0;
	char *buf = malloc(cap + 1);
	if (!buf)
		return NULL;
	for (;;) {
		if (len == cap) {
			if (cap >= max && head) {
				/* more may follow: keep the whole lines */
				char *nl = memrchr(buf, '\n', len);
				len = nl ? (size_t)(nl - buf) + 1 : 0;
				break;
			}
			if (cap >= max) {
				free(buf);
				errno = EFBIG;
				return NULL;
			}
			cap = MIN(cap * 2, max);
			char *nb = realloc(buf, cap + 1);
			if (!nb) {
				free(buf);
				errno = ENOMEM;
				return NULL;
			}
			buf = nb;
		}
		size_t want = cap - len;
		if (chunk && want > chunk)
			want = chunk;
		ssize_t n = read(fd, buf + len, want);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			int e = errno;
			free(buf);
			errno = e;
			return NULL;
		}
		if (n == 0)
			break;
		len += (size_t)n;
	}
	buf[len] = '\0';
	if (lenp)
		*lenp = len;
	return buf;
}

char *read_file_at(int dirfd, const char *path, size_t max, size_t *lenp)
{
	return read_at(dirfd, path, max, lenp, false, 0);
}

/* A seq_file fills its buffer (a page at first) with as many records as a read asks for;
 * the record that overflows it is dropped and made again by the next read. Asking for
 * at most 1 KiB at a time, a record of up to 3 KiB is never made twice: for
 * /proc/PID/smaps, where making a record walks every page table entry of its area, the
 * big area at a buffer's edge was walked twice (18 ms per 2 GiB here). */
char *read_records_at(int dirfd, const char *path, size_t max)
{
	return read_at(dirfd, path, max, NULL, false, 1024);
}

char *read_head_at(int dirfd, const char *path, size_t max)
{
	return read_at(dirfd, path, max, NULL, true, 0);
}

ssize_t fd_link(int fd, char *buf, size_t len)
{
	char link[64];
	snprintf(link, sizeof(link), "/proc/self/fd/%d", fd);
	ssize_t n = len ? readlink(link, buf, len) : -1;
	if (n < 0)
		return len ? -errno : -ENAMETOOLONG;
	if ((size_t)n >= len)
		return -ENAMETOOLONG;
	buf[n] = '\0';
	return n;
}

int write_file(const char *path, const char *data, size_t len)
{
	_cleanup_close_ int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0)
		return -errno;
	return write_all(fd, data, len);
}

int parse_int(const char *s, long long min, long long max, long long *out)
{
	char *end;
	if (!s || !*s)
		return -EINVAL;
	errno = 0;
	long long v = strtoll(s, &end, 0);
	if (errno == ERANGE)
		return -ERANGE;
	if (*end != '\0')
		return -EINVAL;
	if (v < min || v > max)
		return -ERANGE;
	*out = v;
	return 0;
}

uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

int send_fds(int sock, const void *buf, size_t len, const int *fds, unsigned int nfds,
	     int flags)
{
	union {
		char b[CMSG_SPACE(sizeof(int) * SEND_FDS_MAX)];
		struct cmsghdr align;
	} cbuf;
	struct iovec iov = { .iov_base = (void *)buf, .iov_len = len };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1 };

	if (nfds > SEND_FDS_MAX)
		return -EINVAL;
	if (nfds) {
		memset(&cbuf, 0, sizeof(cbuf));
		mh.msg_control = cbuf.b;
		mh.msg_controllen = CMSG_SPACE(sizeof(int) * nfds);
		struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
		c->cmsg_level = SOL_SOCKET;
		c->cmsg_type = SCM_RIGHTS;
		c->cmsg_len = CMSG_LEN(sizeof(int) * nfds);
		memcpy(CMSG_DATA(c), fds, sizeof(int) * nfds);
	}
	ssize_t n = sendmsg(sock, &mh, flags | MSG_NOSIGNAL);
	if (n < 0)
		return -errno;
	return (size_t)n == len ? 0 : -EIO;
}

ssize_t recv_fds(int sock, void *buf, size_t len, int *fds, unsigned int max, int flags)
{
	union {
		char b[CMSG_SPACE(sizeof(int) * SEND_FDS_MAX)];
		struct cmsghdr align;
	} cbuf;
	struct iovec iov = { .iov_base = buf, .iov_len = len };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf.b,
			     .msg_controllen = sizeof(cbuf.b) };
	ssize_t n;

	if (max > SEND_FDS_MAX)
		return -EINVAL;
	while ((n = recvmsg(sock, &mh, flags | MSG_CMSG_CLOEXEC)) < 0 && errno == EINTR)
		;
	if (n < 0)
		return -errno;
	bool bad = mh.msg_flags & (MSG_TRUNC | MSG_CTRUNC);
	for (struct cmsghdr *c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c)) {
		if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
			continue;
		size_t got = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
		bad |= got > max;
		for (size_t i = 0; i < got; i++) {
			int fd;
			memcpy(&fd, CMSG_DATA(c) + i * sizeof(int), sizeof(int));
			if (i < max && !bad)
				fds[i] = fd;
			else
				close(fd);
		}
	}
	return bad ? -EPROTO : n;
}

bool path_is_under(const char *p, const char *base)
{
	size_t n = strlen(base);
	if (!strcmp(base, "/"))
		return true;
	return !strncmp(p, base, n) && (p[n] == '/' || !p[n]);
}

bool path_is_clean(const char *p, size_t max, bool absolute)
{
	size_t len = p ? strnlen(p, max + 1) : 0;
	if (!len || len > max || (p[0] == '/') != absolute)
		return false;
	if (absolute && len == 1)
		return true;
	if (!absolute && !strcmp(p, "."))
		return true;
	const char *s = absolute ? p + 1 : p;
	for (;;) {
		const char *e = strchrnul(s, '/');
		size_t n = (size_t)(e - s);
		if (!n || (n == 1 && s[0] == '.') || (n == 2 && s[0] == '.' && s[1] == '.'))
			return false;
		if (!*e)
			return true;
		s = e + 1;
	}
}

int open_in_root(int rootfd, const char *path, int flags)
{
	/* (a file it makes: 0600, its caller sets the mode it wants) */
	mode_t mode = (flags & O_CREAT) || (flags & O_TMPFILE) == O_TMPFILE ? 0600 : 0;
	if (rootfd < 0)
		return open(path, flags, mode);
	if (flags & O_PATH) /* (what open() ignores there openat2 refuses: EINVAL) */
		flags &= O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC;
	struct open_how how = { .flags = (uint64_t)flags, .mode = mode,
				.resolve = RESOLVE_IN_ROOT };
	return sys_openat2(rootfd, path, &how, sizeof(how));
}

/* @path from @dfd (AT_FDCWD: this process's view; else a root, RESOLVE_IN_ROOT) is the
 * file (@dev, @ino). */
static bool path_is_file(int dfd, const char *path, dev_t dev, ino_t ino)
{
	_cleanup_close_ int fd = open_in_root(dfd, path, O_PATH | O_CLOEXEC);
	struct stat x;
	return fd >= 0 && fstat(fd, &x) == 0 && x.st_dev == dev && x.st_ino == ino;
}

int path_view(int procfd, const char *path, dev_t dev, ino_t ino)
{
	if (path_is_file(AT_FDCWD, path, dev, ino))
		return 0;
	_cleanup_close_ int root = openat(procfd, "root", O_PATH | O_DIRECTORY | O_CLOEXEC);
	return root >= 0 && path_is_file(root, path, dev, ino) ? 1 : -1;
}

int path_views(int procfd, const char *path, dev_t dev, ino_t ino)
{
	int v = path_is_file(AT_FDCWD, path, dev, ino) ? PATH_VIEW_MINE : 0;
	_cleanup_close_ int root = openat(procfd, "root", O_PATH | O_DIRECTORY | O_CLOEXEC);
	return v | (root >= 0 && path_is_file(root, path, dev, ino) ? PATH_VIEW_TASK : 0);
}

/* @path from @dfd (AT_FDCWD, or a root) is on mount @mnt_id. */
static bool path_on_mount(int dfd, const char *path, uint64_t mnt_id)
{
	_cleanup_close_ int fd = open_in_root(dfd, path, O_PATH | O_CLOEXEC);
	struct statx sx;
	return fd >= 0 && !statx(fd, "", AT_EMPTY_PATH, STATX_MNT_ID, &sx) &&
	       (sx.stx_mask & STATX_MNT_ID) && sx.stx_mnt_id == mnt_id;
}

int path_mount_views(int procfd, const char *path, uint64_t mnt_id)
{
	int v = path_on_mount(AT_FDCWD, path, mnt_id) ? PATH_VIEW_MINE : 0;
	_cleanup_close_ int root = openat(procfd, "root", O_PATH | O_DIRECTORY | O_CLOEXEC);
	return v | (root >= 0 && path_on_mount(root, path, mnt_id) ? PATH_VIEW_TASK : 0);
}

uint64_t self_ns_ino(const char *kind)
{
	char path[64];
	struct stat st;
	snprintf(path, sizeof(path), "/proc/self/ns/%s", kind);
	return stat(path, &st) ? 0 : st.st_ino;
}

/* The parent directory of @path (absolute) from @dfd: AT_FDCWD, or a root. */
static int open_parent_at(int dfd, const char *path)
{
	const char *slash = strrchr(path, '/');
	_cleanup_free_ char *dir = strndup(path, (size_t)(slash - path));
	if (!dir)
		return -ENOMEM;
	return open_in_root(dfd, *dir ? dir : "/", O_PATH | O_DIRECTORY | O_CLOEXEC);
}

int removed_dir_open(int dfd, const char *path, mode_t mode, bool has_owner, uid_t uid,
		     gid_t gid, int flags, const char *what)
{
	const char *slash = strrchr(path, '/');
	if (path[0] != '/' || !slash || !slash[1] || strlen(slash + 1) > NAME_MAX) {
		pr_err("image: the removed %s %s is not a directory's path", what, path);
		return -EINVAL;
	}
	_cleanup_close_ int pd = open_parent_at(dfd, path);
	if (pd < 0)
		return pr_perror("restore: the removed %s %s: open its parent", what, path);
	char name[NAME_MAX + 1];
	snprintf(name, sizeof(name), "%s", slash + 1);
	if (mkdirat(pd, name, 0700) < 0) {
		if (errno != EEXIST)
			return pr_perror("restore: make the removed %s %s again", what, path);
		snprintf(name, sizeof(name), ".stasis-rmdir-%d", getpid());
		if (mkdirat(pd, name, 0700) < 0)
			return pr_perror("restore: make the removed %s %s again (as %s)", what,
					 path, name);
	}
	/* (RESOLVE_NO_SYMLINKS, not O_NOFOLLOW: that flag would stay in the file's flags) */
	struct open_how how = { .flags = (uint64_t)(flags | O_DIRECTORY | O_CLOEXEC),
				.resolve = RESOLVE_NO_SYMLINKS };
	int fd = sys_openat2(pd, name, &how, sizeof(how));
	int ret = fd < 0 ? pr_perror("restore: open the removed %s %s", what, path) : 0;
	if (!ret && has_owner &&
	    fchownat(pd, name, uid, gid, AT_SYMLINK_NOFOLLOW) < 0 && errno != EPERM)
		ret = pr_perror("restore: owner of the removed %s %s", what, path);
	if (!ret && fchmodat(pd, name, mode & 07777, 0) < 0)
		ret = pr_perror("restore: mode of the removed %s %s", what, path);
	if (unlinkat(pd, name, AT_REMOVEDIR) < 0 && !ret)
		ret = pr_perror("restore: remove the %s %s again", what, path);
	if (ret && fd >= 0)
		close(fd);
	return ret ? ret : fd;
}

pid_t waitpid_bounded(pid_t pid, int *status, long ms)
{
	struct timespec one = { 0, 1000000L };
	for (long waited = 0;; waited++) {
		pid_t r = waitpid(pid, status, WNOHANG | __WALL);
		if (r != 0 || waited >= ms)
			return r;
		nanosleep(&one, NULL);
	}
}
