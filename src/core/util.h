/* Small helpers shared by every module: cleanup attributes, ownership hand-over,
 * bounded I/O loops, string helpers. */
#ifndef STASIS_CORE_UTIL_H
#define STASIS_CORE_UTIL_H

#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <unistd.h>

#define __must_check __attribute__((warn_unused_result))
#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))
#ifndef PAGE_SIZE
#define PAGE_SIZE 4096UL
#endif
#ifndef PAGE_MASK
#define PAGE_MASK (~(PAGE_SIZE - 1))
#endif
#define ALIGN_UP(x, a) (((x) + (a)-1) & ~((__typeof__(x))(a)-1))
#define MIN(a, b) ((a) < (b) ? (a) : (b))
#define MAX(a, b) ((a) > (b) ? (a) : (b))

static inline void freep(void *p) { free(*(void **)p); }
static inline void closep(int *fd)
{
	if (*fd >= 0) {
		int saved = errno;
		close(*fd);
		errno = saved;
	}
}
#define _cleanup_free_ __attribute__((cleanup(freep)))
#define _cleanup_close_ __attribute__((cleanup(closep)))

/* Hand over ownership out of a cleanup-managed local. */
static inline int take_fd(int *fd)
{
	int r = *fd;
	*fd = -1;
	return r;
}
#define steal_ptr(pp)                                                                       \
	({                                                                                  \
		__typeof__(*(pp)) __p = *(pp);                                              \
		*(pp) = NULL;                                                               \
		__p;                                                                        \
	})

static inline bool str_starts(const char *s, const char *prefix)
{
	return strncmp(s, prefix, strlen(prefix)) == 0;
}
static inline bool str_ends(const char *s, const char *suffix)
{
	size_t a = strlen(s), b = strlen(suffix);
	return a >= b && strcmp(s + a - b, suffix) == 0;
}

/* Write/read all of @len bytes, retrying short transfers and EINTR. 0 or -errno
 * (-EIO on an unexpected EOF when reading). */
int write_all(int fd, const void *buf, size_t len) __must_check;
int read_all(int fd, void *buf, size_t len) __must_check;
int pwrite_all(int fd, const void *buf, size_t len, off_t off) __must_check;
/* Read a whole (small, /proc-like) file relative to @dirfd into a NUL-terminated malloc'd
 * buffer of at most @max bytes. Returns NULL with errno set (EFBIG if larger). */
char *read_file_at(int dirfd, const char *path, size_t max, size_t *lenp);
/* read_file_at for a seq_file whose records are costly to make (/proc/PID/smaps): each
 * made once (small reads). */
char *read_records_at(int dirfd, const char *path, size_t max);
/* The first whole lines of @path in at most @max bytes (a file that may be longer, whose
 * head is all the reader needs); NULL with errno set. */
char *read_head_at(int dirfd, const char *path, size_t max);
/* What /proc/self/fd/@fd links to, NUL-terminated in @buf (@len bytes): its length, or
 * -errno (-ENAMETOOLONG when it does not fit). */
ssize_t fd_link(int fd, char *buf, size_t len) __must_check;
/* Write a string to a file (e.g. a pidfile). */
int write_file(const char *path, const char *data, size_t len) __must_check;
/* Parse a decimal integer that must fill the whole string; 0 or -EINVAL/-ERANGE. */
int parse_int(const char *s, long long min, long long max, long long *out) __must_check;

/* One message of @len bytes on a unix socket with @nfds (<= SEND_FDS_MAX) file
 * descriptors as SCM_RIGHTS; MSG_NOSIGNAL is always added to @flags. 0, -errno, or
 * -EIO when the message went out short. */
#define SEND_FDS_MAX 4
int send_fds(int sock, const void *buf, size_t len, const int *fds, unsigned int nfds,
	     int flags) __must_check;
/* Its counterpart: one message into @buf (at most @len bytes, MSG_CMSG_CLOEXEC added to
 * @flags, EINTR retried) with up to @max (<= SEND_FDS_MAX) descriptors into @fds (the
 * slots past those received untouched). The bytes read (0 at end of file), or -errno;
 * -EPROTO, its descriptors closed, for a message cut short or with more than @max. */
ssize_t recv_fds(int sock, void *buf, size_t len, int *fds, unsigned int max, int flags);
/* Monotonic time in nanoseconds. */
uint64_t now_ns(void);

/* An absolute path ("/", "/a/b") or a relative one ("a/b", "."): at most @max bytes, no
 * empty, "." or ".." component (so it cannot climb out of where it is resolved). */
bool path_is_clean(const char *p, size_t max, bool absolute);
/* Is absolute path @p @base or below it, component-wise ("/" holds every path)? Pure. */
bool path_is_under(const char *p, const char *base);

/* @path opened with @flags: in this process's view when @rootfd < 0 (AT_FDCWD too), else
 * inside the mount tree whose root @rootfd is (RESOLVE_IN_ROOT: "/" is that root). */
int open_in_root(int rootfd, const char *path, int flags);
/* Wait for child @pid to change state (a stop, or death), polling for at most @ms
 * milliseconds. Returns the waitpid() result: @pid, 0 on time-out, -1 on error. */
pid_t waitpid_bounded(pid_t pid, int *status, long ms);
/* Which view @path (a readlink of /proc/PID/fd/N or a /proc/PID/maps path: relative to
 * the reader's root when the reader reaches the file, else to the root of the file's
 * mount namespace) is in: 0 this process's (it names the file @dev/@ino here), 1 the
 * task's (under /proc/PID/root, @procfd being /proc/PID), -1 neither. */
int path_view(int procfd, const char *path, dev_t dev, ino_t ino);
/* Both views at once: PATH_VIEW_MINE | PATH_VIEW_TASK where @path names the file. */
enum { PATH_VIEW_MINE = 1, PATH_VIEW_TASK = 2 };
int path_views(int procfd, const char *path, dev_t dev, ino_t ino);
/* ... where @path is on mount @mnt_id (statx STATX_MNT_ID). */
int path_mount_views(int procfd, const char *path, uint64_t mnt_id);
/* The inode of this process's namespace of @kind ("net", "mnt", ...; /proc/self/ns), 0 if
 * it cannot be read (errno set). */
uint64_t self_ns_ino(const char *kind);

/* A directory removed since the dump (a cwd, an open directory): made again at @path (in
 * the view of @dfd: AT_FDCWD, or a root resolved with RESOLVE_IN_ROOT; under a stasis name
 * beside it if the path is taken) with @mode and the owner, opened with @flags, removed
 * again. The fd or a logged -errno; @what names it in messages. */
int removed_dir_open(int dfd, const char *path, mode_t mode, bool has_owner, uid_t uid,
		     gid_t gid, int flags, const char *what) __attribute__((warn_unused_result));

#endif
