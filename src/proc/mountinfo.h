/* A pure parser of /proc/PID/mountinfo (see proc(5)): one entry per mount, strings
 * unescaped (the kernel writes space, tab, newline and backslash as \ooo). Bounded and
 * defensive like src/proc/parse.c: malformed input gives -EINVAL, never a crash; an
 * unknown per-mount option is refused (better a clear error than a silently lost flag). */
#ifndef STASIS_PROC_MOUNTINFO_H
#define STASIS_PROC_MOUNTINFO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/util.h"

#define MNTINFO_MAX_ENTRIES 4096
#define MNTINFO_MAX_PATH 4096

/* Per-mount flags, as the MOUNT_ATTR_* bits of mount_setattr(2). */
#define MNT_F_RDONLY 0x00000001u
#define MNT_F_NOSUID 0x00000002u
#define MNT_F_NODEV 0x00000004u
#define MNT_F_NOEXEC 0x00000008u
#define MNT_F__ATIME 0x00000070u
#define MNT_F_RELATIME 0x00000000u
#define MNT_F_NOATIME 0x00000010u
#define MNT_F_STRICTATIME 0x00000020u
#define MNT_F_NODIRATIME 0x00000080u
#define MNT_F_IDMAP 0x00100000u
#define MNT_F_NOSYMFOLLOW 0x00200000u

struct mountinfo {
	uint32_t id, parent;
	uint32_t major, minor;
	char *root;       /* within its filesystem, absolute */
	char *mountpoint; /* relative to the reading task's root, absolute */
	char *fstype;     /* "tmpfs", "cgroup2", "fuse.sshfs" (subtype joined with a dot) */
	char *source;
	char *sb_opts;    /* superblock options, as written ("rw,size=1024k,mode=755") */
	uint32_t flags;   /* MNT_F_* */
	uint32_t shared;  /* peer group id, 0: not shared */
	uint32_t master;  /* peer group of the master, 0: not a slave */
	bool unbindable;
};

/* Parse a whole mountinfo buffer (NUL-terminated). On success *out holds *n entries in
 * the order of the file; on failure nothing is allocated (*out NULL, *n 0). */
int mountinfo_parse(const char *buf, struct mountinfo **out, size_t *n) __must_check;
void mountinfo_free(struct mountinfo *m, size_t n);


#endif
