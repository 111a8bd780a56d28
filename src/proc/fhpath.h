/* A path in this process's view for an open file that no path the kernel shows reaches:
 * the file of a mount that was detached (a task that pivot_root'ed away from the mount
 * its executable is on), or one only another mount namespace has. */
#ifndef STASIS_PROC_FHPATH_H
#define STASIS_PROC_FHPATH_H

#include <sys/types.h>

/* The file open at @fd, looked up through its file handle (name_to_handle_at) on a mount
 * of this process's view that shows its whole filesystem, and named by that lookup's
 * path, which is checked to reach the same file. *@out is malloc'd. -ENOENT: no such
 * mount here, -EPERM: open_by_handle_at needs CAP_DAC_READ_SEARCH, -EOPNOTSUPP: the
 * filesystem has no file handles, -ESTALE: the path found does not reach the file. */
int fh_path(int fd, char **out) __attribute__((warn_unused_result));

struct file_handle;
/* The same for a file known by its handle @fh (as name_to_handle_at or an fdinfo shows
 * it), on the filesystem of device @dev, inode @ino. */
int fh_path_handle(struct file_handle *fh, dev_t dev, ino_t ino, char **out)
	__attribute__((warn_unused_result));

/* The paths near task @procfd (/proc/PID) in this process's view, with the file each
 * names: its cwd and the files it has open, every directory above them, and the entries
 * of those directories and of the open directories (bounded). For files the task watches
 * (inotify, fanotify) when no file handle can be opened. */
struct near_paths;
int near_paths_collect(int procfd, struct near_paths **out)
	__attribute__((warn_unused_result));
/* Add @dir, the directories above it and its entries. */
int near_paths_add_dir(struct near_paths *np, const char *dir)
	__attribute__((warn_unused_result));
/* A path of @np naming the file (@dev, @ino), or NULL. */
const char *near_paths_find(const struct near_paths *np, dev_t dev, ino_t ino);
void near_paths_free(struct near_paths *np);

#endif
