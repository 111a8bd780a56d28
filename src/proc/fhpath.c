/* See fhpath.h. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "core/util.h"
#include "proc/fhpath.h"
#include "proc/mountinfo.h"

#define MOUNTINFO_MAX (4u << 20)

/* Open the file of handle @fh on the mount at @mountpoint and name it; 0 and *@out, or
 * -errno. */
static int lookup(const char *mountpoint, struct file_handle *fh, dev_t dev, ino_t ino,
		  char **out)
{
	/* (not O_PATH: open_by_handle_at wants a real file as the mount fd) */
	_cleanup_close_ int mfd = open(mountpoint, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (mfd < 0)
		return -errno;
	_cleanup_close_ int fd = open_by_handle_at(mfd, fh, O_PATH | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	char path[PATH_MAX];
	ssize_t n = fd_link(fd, path, sizeof(path));
	if (n <= 0)
		return n < 0 ? (int)n : -ESTALE;
	struct stat st;
	_cleanup_close_ int check = path[0] == '/' ? open(path, O_PATH | O_CLOEXEC) : -1;
	if (check < 0 || fstat(check, &st) || st.st_dev != dev || st.st_ino != ino)
		return -ESTALE;
	*out = strdup(path);
	return *out ? 0 : -ENOMEM;
}

int fh_path(int fd, char **out)
{
	struct stat st;
	*out = NULL;
	if (fstat(fd, &st))
		return -errno;
	_cleanup_free_ struct file_handle *fh = malloc(sizeof(*fh) + MAX_HANDLE_SZ);
	if (!fh)
		return -ENOMEM;
	fh->handle_bytes = MAX_HANDLE_SZ;
	int mnt_id;
	if (name_to_handle_at(fd, "", fh, &mnt_id, AT_EMPTY_PATH))
		return -errno;
	return fh_path_handle(fh, st.st_dev, st.st_ino, out);
}

int fh_path_handle(struct file_handle *fh, dev_t dev, ino_t ino, char **out)
{
	*out = NULL;
	_cleanup_free_ char *buf = read_file_at(AT_FDCWD, "/proc/self/mountinfo", MOUNTINFO_MAX,
						NULL);
	if (!buf)
		return -errno;
	struct mountinfo *m;
	size_t n;
	int ret = mountinfo_parse(buf, &m, &n);
	if (ret)
		return ret;
	ret = -ENOENT;
	for (size_t i = 0; i < n && ret; i++) {
		if (makedev(m[i].major, m[i].minor) != dev || strcmp(m[i].root, "/"))
			continue;
		int r = lookup(m[i].mountpoint, fh, dev, ino, out);
		if (!r || ret == -ENOENT)
			ret = r;
	}
	mountinfo_free(m, n);
	return ret;
}

/* ---- paths near a task ------------------------------------------------------------ */

#define NEAR_MAX 65536 /* paths looked at */

struct near_path {
	char *path;
	dev_t dev;
	ino_t ino;
};

struct near_paths {
	struct near_path *p;
	size_t n, cap;
};

/* Add @path (in this process's view) if it names a file (the same path may come twice);
 * 0 or -ENOMEM. */
static int near_add(struct near_paths *np, const char *path)
{
	struct stat st;
	if (np->n >= NEAR_MAX || path[0] != '/' || stat(path, &st))
		return 0;
	if (np->n == np->cap) {
		size_t cap = np->cap ? np->cap * 2 : 64;
		struct near_path *p = realloc(np->p, cap * sizeof(*p));
		if (!p)
			return -ENOMEM;
		np->p = p;
		np->cap = cap;
	}
	char *dup = strdup(path);
	if (!dup)
		return -ENOMEM;
	np->p[np->n++] = (struct near_path){ .path = dup, .dev = st.st_dev, .ino = st.st_ino };
	return 0;
}

/* @path, every directory above it, and, when @list, the entries of its directory (of
 * @path itself when it is one). */
static int near_add_around(struct near_paths *np, const char *path, bool list)
{
	char buf[PATH_MAX];
	struct stat st;
	if (path[0] != '/' || strlen(path) >= sizeof(buf) || stat(path, &st))
		return 0;
	snprintf(buf, sizeof(buf), "%s", path);
	int ret = near_add(np, buf);
	char *slash;
	bool is_dir = S_ISDIR(st.st_mode);
	while (!ret && (slash = strrchr(buf, '/')) && slash != buf) {
		*slash = '\0';
		ret = near_add(np, buf);
		if (!ret && list && !is_dir) {
			/* the entries of the directory of a file */
			ret = near_add_around(np, buf, true);
			list = false;
		}
	}
	if (ret || !list || !is_dir)
		return ret;
	DIR *dir = opendir(path);
	struct dirent *de;
	while (!ret && dir && (de = readdir(dir))) {
		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		if (snprintf(buf, sizeof(buf), "%s/%s", strcmp(path, "/") ? path : "",
			     de->d_name) < (int)sizeof(buf))
			ret = near_add(np, buf);
	}
	if (dir)
		closedir(dir);
	return ret;
}

int near_paths_collect(int procfd, struct near_paths **out)
{
	struct near_paths *np = calloc(1, sizeof(*np));
	if (!np)
		return -ENOMEM;
	char link[PATH_MAX];
	int ret = 0;
	ssize_t n = readlinkat(procfd, "cwd", link, sizeof(link) - 1);
	if (n > 0) {
		link[n] = '\0';
		ret = near_add_around(np, link, true);
	}
	_cleanup_close_ int dfd = openat(procfd, "fd", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	DIR *dir = dfd >= 0 ? fdopendir(dfd) : NULL;
	if (dir)
		dfd = -1; /* the DIR owns it */
	struct dirent *de;
	while (!ret && dir && (de = readdir(dir))) {
		n = readlinkat(dirfd(dir), de->d_name, link, sizeof(link) - 1);
		if (n <= 0 || link[0] != '/')
			continue;
		link[n] = '\0';
		ret = near_add_around(np, link, true);
	}
	if (dir)
		closedir(dir);
	if (ret) {
		near_paths_free(np);
		return ret;
	}
	*out = np;
	return 0;
}

int near_paths_add_dir(struct near_paths *np, const char *dir)
{
	return near_add_around(np, dir, true);
}

const char *near_paths_find(const struct near_paths *np, dev_t dev, ino_t ino)
{
	for (size_t i = 0; np && i < np->n; i++)
		if (np->p[i].dev == dev && np->p[i].ino == ino)
			return np->p[i].path;
	return NULL;
}

void near_paths_free(struct near_paths *np)
{
	if (!np)
		return;
	for (size_t i = 0; i < np->n; i++)
		free(np->p[i].path);
	free(np->p);
	free(np);
}
