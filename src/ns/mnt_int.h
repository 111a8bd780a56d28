/* Internals shared by the files of the mount-namespace module (src/ns/mnt.c, tmpfs.c);
 * nothing outside src/ns includes it. */
#ifndef STASIS_NS_MNT_INT_H
#define STASIS_NS_MNT_INT_H

#include <stdbool.h>
#include <stdint.h>

#include "cr/ctx.h"

/* A mountinfo-bounded clean path (core/util.h). */
bool mnt_path_ok(const char *p, bool absolute);
/* @path relative to "/" ("." for "/" itself). */
const char *mnt_rel_of(const char *path);
/* openat2 of @rel beneath @dfd with @resolve flags. */
int mnt_open_beneath(int dfd, const char *rel, uint64_t resolve, int flags);

/* tmpfs.c: dump the contents of the tmpfs mount @m (open at @fd, mount id @mnt_id,
 * mounted at @mp) into m->tmpfs; check them at restore; recreate them in the detached
 * superblock @sb. */
int tmpfs_dump(struct dump_ctx *c, Mount *m, int fd, uint64_t mnt_id, const char *mp)
	__must_check;
int tmpfs_validate(const struct rst_ctx *c, const Mount *m) __must_check;
int tmpfs_fill(const struct rst_ctx *c, int sb, const Mount *m) __must_check;

#endif
