/* The contents of a tmpfs mounted fresh in a mount namespace of the tree (src/ns/mnt.c
 * decides which mounts): at dump its files, directories, links, devices and fifos are
 * walked through /proc/PID/root without following symlinks or crossing into other
 * mounts (modes, owners as the task sees them, times, hard links); file data goes to the
 * blob store (src/image/blob.h: streamed in bounded chunks, holes kept). At restore the
 * entries are recreated in the new superblock before it is attached. */
#include <dirent.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "core/log.h"
#include "image/blob.h"
#include "ns/mnt_int.h"
#include "ns/userns.h"
#include "proc/mountinfo.h"
#include "sys/syscalls.h"

#define TMPFS_MAX_ENTRIES 100000
#define TMPFS_MAX_DEPTH 128

struct walk {
	const char *mp;      /* for messages */
	uint64_t mnt_id;     /* the tmpfs mount read: other mounts are not entered */
	struct img_dir *img; /* file data goes to its blob store */
	uint64_t bytes;      /* file sizes, for the log */
	TmpfsEntry **v;
	size_t n, cap;
	struct {
		uint64_t ino;
		size_t idx;
	} *links;
	size_t nlinks;
};

static TmpfsEntry *walk_add(struct walk *w, const char *path, const struct statx *sx)
{
	if (w->n >= TMPFS_MAX_ENTRIES) {
		pr_err("dump: tmpfs at %s has more than %d entries: not supported", w->mp,
		       TMPFS_MAX_ENTRIES);
		errno = EFBIG;
		return NULL;
	}
	if (w->n == w->cap) {
		size_t nc = w->cap ? w->cap * 2 : 64;
		TmpfsEntry **t = realloc(w->v, nc * sizeof(*t));
		if (!t)
			return NULL;
		w->v = t;
		w->cap = nc;
	}
	TmpfsEntry *e = malloc(sizeof(*e));
	if (!e)
		return NULL;
	tmpfs_entry__init(e);
	e->path = strdup(path);
	if (!e->path) {
		free(e);
		return NULL;
	}
	w->v[w->n++] = e;
	e->mode = sx->stx_mode;
	e->uid = sx->stx_uid;
	e->gid = sx->stx_gid;
	e->has_mtime_sec = e->has_mtime_nsec = e->has_atime_sec = e->has_atime_nsec = true;
	e->mtime_sec = sx->stx_mtime.tv_sec;
	e->mtime_nsec = sx->stx_mtime.tv_nsec;
	e->atime_sec = sx->stx_atime.tv_sec;
	e->atime_nsec = sx->stx_atime.tv_nsec;
	return e;
}

/* A regular file's data, streamed into the blob store (holes kept as holes). */
static int read_regular(struct walk *w, int dfd, const char *name, const char *path,
			const struct statx *sx, TmpfsEntry *e)
{
	if (!sx->stx_size)
		return 0;
	_cleanup_close_ int fd = openat(dfd, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK |
						     O_NOCTTY | O_CLOEXEC);
	if (fd < 0)
		return pr_perror("dump: open %s in the tmpfs at %s", path, w->mp);
	char what[MNTINFO_MAX_PATH + 64];
	snprintf(what, sizeof(what), "tmpfs file %s at %s", path, w->mp);
	int ret = blob_put_file(w->img, fd, sx->stx_size, what, &e->blob);
	if (!ret)
		w->bytes += sx->stx_size;
	return ret;
}

static int walk_dir(struct walk *w, int dfd, const char *rel, int depth);

static int walk_entry(struct walk *w, int dfd, const char *name, const char *rel, int depth)
{
	char path[MNTINFO_MAX_PATH];
	int n = strcmp(rel, ".") ? snprintf(path, sizeof(path), "%s/%s", rel, name)
				 : snprintf(path, sizeof(path), "%s", name);
	if (n < 0 || (size_t)n >= sizeof(path)) {
		pr_err("dump: a path in the tmpfs at %s is too long", w->mp);
		return -ENAMETOOLONG;
	}
	struct statx sx;
	if (statx(dfd, name, AT_SYMLINK_NOFOLLOW, STATX_BASIC_STATS | STATX_MNT_ID, &sx) < 0)
		return pr_perror("dump: stat %s in the tmpfs at %s", path, w->mp);
	bool mountpoint = sx.stx_mnt_id != w->mnt_id;
	mode_t t = sx.stx_mode & S_IFMT;
	if (t == S_IFSOCK) {
		pr_warn("dump: socket %s in the tmpfs at %s is not recreated", path, w->mp);
		return 0;
	}
	if (!mountpoint && t == S_IFREG && sx.stx_nlink > 1) {
		for (size_t k = 0; k < w->nlinks; k++)
			if (w->links[k].ino == sx.stx_ino) {
				TmpfsEntry *e = walk_add(w, path, &sx);
				if (!e)
					return -errno;
				e->link = strdup(w->v[w->links[k].idx]->path);
				return e->link ? 0 : -ENOMEM;
			}
		void *nl = realloc(w->links, (w->nlinks + 1) * sizeof(*w->links));
		if (!nl)
			return -ENOMEM;
		w->links = nl;
		w->links[w->nlinks].ino = sx.stx_ino;
		w->links[w->nlinks++].idx = w->n;
	}
	TmpfsEntry *e = walk_add(w, path, &sx);
	if (!e)
		return -errno;
	if (mountpoint) {
		/* another mount sits here: keep the mount point, not what it hides. Its own
		 * owner cannot be read (the stat is of the mount on top, whose owner the
		 * task's user namespace may not map: a bind of the host's /dev/null): it
		 * takes the tmpfs root's; nothing sees it while the mount is there. */
		if (t != S_IFDIR)
			e->mode = (sx.stx_mode & 07777) | S_IFREG;
		e->uid = w->v[0]->uid;
		e->gid = w->v[0]->gid;
		return 0;
	}
	switch (t) {
	case S_IFDIR: {
		if (depth >= TMPFS_MAX_DEPTH) {
			pr_err("dump: the tmpfs at %s is nested too deep (%s)", w->mp, path);
			return -ELOOP;
		}
		int sub = openat(dfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		if (sub < 0)
			return pr_perror("dump: open %s in the tmpfs at %s", path, w->mp);
		return walk_dir(w, sub, path, depth + 1); /* closes sub */
	}
	case S_IFREG:
		return read_regular(w, dfd, name, path, &sx, e);
	case S_IFLNK: {
		char target[MNTINFO_MAX_PATH];
		ssize_t len = readlinkat(dfd, name, target, sizeof(target) - 1);
		if (len < 0)
			return pr_perror("dump: readlink %s in the tmpfs at %s", path, w->mp);
		target[len] = '\0';
		e->target = strdup(target);
		return e->target ? 0 : -ENOMEM;
	}
	default: /* fifo, devices */
		e->has_rdev = true;
		e->rdev = makedev(sx.stx_rdev_major, sx.stx_rdev_minor);
		return 0;
	}
}

/* Takes @dfd. */
static int walk_dir(struct walk *w, int dfd, const char *rel, int depth)
{
	DIR *d = fdopendir(dfd);
	if (!d) {
		int ret = pr_perror("dump: read directory %s of the tmpfs at %s", rel, w->mp);
		close(dfd);
		return ret;
	}
	int ret = 0;
	for (;;) {
		errno = 0;
		struct dirent *de = readdir(d);
		if (!de) {
			if (errno)
				ret = pr_perror("dump: read directory %s of the tmpfs at %s", rel,
						w->mp);
			break;
		}
		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		ret = walk_entry(w, dirfd(d), de->d_name, rel, depth);
		if (ret)
			break;
	}
	closedir(d);
	return ret;
}

/* The contents of the tmpfs mounted (reachably) at @fd, a directory of mount @mnt_id. */
int tmpfs_dump(struct dump_ctx *c, Mount *m, int fd, uint64_t mnt_id, const char *mp)
{
	struct walk w = { .mp = mp, .mnt_id = mnt_id, .img = c->img };
	struct statx sx;
	int ret;
	if (statx(fd, "", AT_EMPTY_PATH, STATX_BASIC_STATS, &sx) < 0)
		return pr_perror("dump: stat the tmpfs at %s", mp);
	if (!walk_add(&w, ".", &sx)) {
		ret = -errno;
	} else {
		int dfd = openat(fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		ret = dfd < 0 ? pr_perror("dump: open the tmpfs at %s", mp) : walk_dir(&w, dfd, ".", 0);
	}
	free(w.links);
	m->tmpfs = w.v;
	m->n_tmpfs = w.n;
	pr_info("dump: tmpfs at %s: %zu entries, %llu bytes of files", mp, w.n,
		(unsigned long long)w.bytes);
	return ret;
}

/* The image's blob store (a context made without one has none: any BlobRef fails). */
static const struct blob_reader *blobs_of(const struct rst_ctx *c)
{
	static const struct blob_reader none = { .fd = -1 };
	return c->blobs ? c->blobs : &none;
}

static bool entry_is_valid(const TmpfsEntry *e, size_t k)
{
	mode_t t = e->mode & S_IFMT;
	if (!mnt_path_ok(e->path, false) || (k == 0) != !strcmp(e->path, ".") ||
	    (e->link && (!mnt_path_ok(e->link, false) || !strcmp(e->link, "."))))
		return false;
	if (e->blob && (t != S_IFREG || e->link))
		return false; /* contents only for a regular file's first name */
	if (k == 0)
		return t == S_IFDIR;
	if (e->link)
		return t == S_IFREG;
	switch (t) {
	case S_IFDIR:
	case S_IFCHR:
	case S_IFBLK:
	case S_IFIFO:
		return true;
	case S_IFREG:
		return true;
	case S_IFLNK:
		return e->target && *e->target && strlen(e->target) < MNTINFO_MAX_PATH;
	default:
		return false;
	}
}

int tmpfs_validate(const struct rst_ctx *c, const Mount *m)
{
	for (size_t k = 0; k < m->n_tmpfs; k++) {
		const TmpfsEntry *e = m->tmpfs[k];
		if (!entry_is_valid(e, k)) {
			pr_err("image: entry %zu of the tmpfs at %s of pid %d is invalid", k,
			       m->mountpoint, c->pid);
			return -EINVAL;
		}
		/* the contents' bounds in blobs.img (their checksums when they are copied) */
		if (e->blob) {
			char what[2 * MNTINFO_MAX_PATH + 64];
			snprintf(what, sizeof(what), "tmpfs file %s at %s", e->path, m->mountpoint);
			int ret = blob_check(blobs_of(c), e->blob, what);
			if (ret)
				return ret;
		}
	}
	return 0;
}

/* The directory containing @path (relative, clean) beneath @base, without following
 * symlinks or leaving the filesystem; *name gets the last component. */
static int open_parent(int base, const char *path, const char **name)
{
	const char *slash = strrchr(path, '/');
	if (!slash) {
		*name = path;
		return fcntl(base, F_DUPFD_CLOEXEC, 0);
	}
	char dir[MNTINFO_MAX_PATH];
	snprintf(dir, sizeof(dir), "%.*s", (int)(slash - path), path);
	*name = slash + 1;
	return mnt_open_beneath(base, dir, RESOLVE_BENEATH | RESOLVE_NO_XDEV, O_PATH | O_DIRECTORY);
}

static int make_entry(const struct rst_ctx *c, int base, const Mount *m, const TmpfsEntry *e)
{
	const char *name;
	_cleanup_close_ int pd = open_parent(base, e->path, &name);
	if (pd < 0)
		return pr_perror("restore: tmpfs entry %s: its directory", e->path);
	int r;
	if (e->link) {
		const char *lname;
		_cleanup_close_ int lpd = open_parent(base, e->link, &lname);
		r = lpd < 0 ? -1 : linkat(lpd, lname, pd, name, 0);
	} else {
		switch (e->mode & S_IFMT) {
		case S_IFDIR:
			r = mkdirat(pd, name, 0700);
			break;
		case S_IFREG: {
			_cleanup_close_ int fd =
				openat(pd, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
				       0600);
			r = fd < 0 ? -1 : 0;
			if (!r && e->blob) {
				char what[2 * MNTINFO_MAX_PATH + 64];
				snprintf(what, sizeof(what), "tmpfs file %s at %s", e->path,
					 m->mountpoint);
				int w = blob_read_fd(blobs_of(c), e->blob, fd, what);
				if (w)
					return w;
			}
			break;
		}
		case S_IFLNK:
			r = symlinkat(e->target, pd, name);
			break;
		default:
			r = mknodat(pd, name, (e->mode & S_IFMT) | 0600, (dev_t)e->rdev);
			break;
		}
	}
	if (r < 0)
		return pr_perror("restore: create tmpfs entry %s", e->path);
	if (fchownat(pd, name, e->uid, e->gid, AT_SYMLINK_NOFOLLOW) < 0)
		return pr_perror("restore: chown tmpfs entry %s", e->path);
	if (!S_ISLNK(e->mode) && !e->link && fchmodat(pd, name, e->mode & 07777, 0) < 0)
		return pr_perror("restore: chmod tmpfs entry %s", e->path);
	return 0;
}

static void set_times(int base, const TmpfsEntry *e)
{
	const char *name;
	_cleanup_close_ int pd = open_parent(base, e->path, &name);
	struct timespec ts[2] = {
		{ .tv_sec = e->atime_sec, .tv_nsec = e->atime_nsec },
		{ .tv_sec = e->mtime_sec, .tv_nsec = e->mtime_nsec },
	};
	if (!e->has_mtime_sec || pd < 0 || e->atime_nsec >= 1000000000u ||
	    e->mtime_nsec >= 1000000000u)
		return;
	if (utimensat(pd, name, ts, AT_SYMLINK_NOFOLLOW) < 0)
		pr_warn("restore: times of tmpfs entry %s: %s", e->path, strerror(errno));
}

/* Fill a fresh tmpfs (@sb: its root) with the recorded contents. */
int tmpfs_fill(const struct rst_ctx *c, int sb, const Mount *m)
{
	if (!m->n_tmpfs)
		return 0;
	/* the part of the filesystem the contents were read from */
	const char *cr = mnt_rel_of(m->content_root);
	if (strcmp(cr, ".")) {
		char dir[MNTINFO_MAX_PATH];
		for (const char *s = cr;; s++) {
			if (*s != '/' && *s)
				continue;
			snprintf(dir, sizeof(dir), "%.*s", (int)(s - cr), cr);
			const char *name;
			_cleanup_close_ int pd = open_parent(sb, dir, &name);
			if (pd < 0 || (mkdirat(pd, name, 0755) < 0 && errno != EEXIST))
				return pr_perror("restore: tmpfs at %s: create %s", m->mountpoint, dir);
			if (!*s)
				break;
		}
	}
	_cleanup_close_ int base =
		mnt_open_beneath(sb, cr, RESOLVE_BENEATH | RESOLVE_NO_XDEV, O_PATH | O_DIRECTORY);
	if (base < 0)
		return pr_perror("restore: tmpfs at %s: open %s", m->mountpoint, cr);
	for (size_t k = 1; k < m->n_tmpfs; k++) {
		int ret = make_entry(c, base, m, m->tmpfs[k]);
		if (ret)
			return ret;
	}
	const TmpfsEntry *r = m->tmpfs[0];
	if (fchownat(base, ".", r->uid, r->gid, 0) < 0 || fchmodat(base, ".", r->mode & 07777, 0) < 0)
		return pr_perror("restore: tmpfs at %s: owner and mode of its root", m->mountpoint);
	/* times last, children before their directories */
	for (size_t k = m->n_tmpfs; k-- > 0;)
		set_times(base, m->tmpfs[k]);
	return 0;
}
