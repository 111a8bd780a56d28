/* A path in this process's view for an open file that no path the kernel shows reaches:
 * the file of a mount that was detached (a task that pivot_root'ed away from the mount
 * its executable is on), or one only another mount namespace has. */
#ifndef STASIS_PROC_FHPATH_H
#define STASIS_PROC_FHPATH_H

/* The file open at @fd, looked up through its file handle (name_to_handle_at) on a mount
 * of this process's view that shows its whole filesystem, and named by that lookup's
 * path, which is checked to reach the same file. *@out is malloc'd. -ENOENT: no such
 * mount here, -EPERM: open_by_handle_at needs CAP_DAC_READ_SEARCH, -EOPNOTSUPP: the
 * filesystem has no file handles, -ESTALE: the path found does not reach the file. */
int fh_path(int fd, char **out) __attribute__((warn_unused_result));

#endif
