/* Mount namespaces: the mount tree of every mount namespace a task of the tree created,
 * recorded at dump (src/ns/mnt.c) and rebuilt from scratch in the restore child of its
 * creator, which then pivots into it. */
#ifndef STASIS_MNT_H
#define STASIS_MNT_H

#include <stdbool.h>

#include "cr/ctx.h"

/* Dump: the mount namespace of @c, which it created (it differs from its parent's).
 * @creator is the parent in the tree whose namespace it was copied from, NULL for
 * stasis's own. Fills c->tns->mnt. */
int mnt_dump_ns(struct dump_ctx *c, const struct dump_ctx *creator) __must_check;

/* Restore, in the parent before any process exists: check the recorded tree of @c
 * (paths, counts, kinds) and that every external mount has a mapping. */
int mnt_validate(const struct rst_ctx *c) __must_check;

/* The id of the mount namespace of nsfs file @path (the one the kernel compares to refuse
 * a bind of a namespace's file into a younger namespace), 0 if the kernel cannot say. */
uint64_t mnt_ns_id(const char *path);

/* Restore child of a task that created a mount namespace (cloned with CLONE_NEWNS),
 * first thing: build the recorded mount tree and pivot into it. */
int mnt_restore_child(struct rst_ctx *c) __must_check;

/* The same restore child once its children exist: mount the proc filesystems that show
 * the pid namespace of a child (the mount namespace's creator is outside it, as `unshare
 * --pid --fork --mount-proc` makes it) on top of their mount points. @pidns(@arg, id)
 * returns an fd of the child's pid namespace with image id @id, or -errno (logged). */
int mnt_restore_late(struct rst_ctx *c, int (*pidns)(void *arg, uint64_t id),
		     void *arg) __must_check;

/* Split an --external value "mnt[A]:B" into malloc'd A and B. At dump A is a mount
 * point and B a key; at restore A is a key and B a host path. 0 or -EINVAL. */
int mnt_parse_external(const char *arg, bool at_dump, char **a, char **b) __must_check;

#endif
