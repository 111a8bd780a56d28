/* See fhpath.h. */
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
	char link[64], path[PATH_MAX];
	snprintf(link, sizeof(link), "/proc/self/fd/%d", fd);
	ssize_t n = readlink(link, path, sizeof(path) - 1);
	if (n <= 0)
		return n < 0 ? -errno : -ESTALE;
	path[n] = '\0';
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
		if (makedev(m[i].major, m[i].minor) != st.st_dev || strcmp(m[i].root, "/"))
			continue;
		int r = lookup(m[i].mountpoint, fh, st.st_dev, st.st_ino, out);
		if (!r || ret == -ENOENT)
			ret = r;
	}
	mountinfo_free(m, n);
	return ret;
}
