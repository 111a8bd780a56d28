/* User namespaces (src/ns/userns.c). */
#ifndef STASIS_USERNS_H
#define STASIS_USERNS_H

#include "helper/client.h"
#include "cr/ctx.h"

/* Dump, after every process: record each user namespace in the task that created it
 * (maps relative to the parent namespace) and turn the credentials of the tasks in them
 * into ids as seen inside. @mine: the dumper's user namespace. */
int userns_dump_tree(struct dump_ctx **procs, size_t n, const pid_t *ppid, uint64_t mine)
	__must_check;

/* An id as the initial user namespace shows it (tmpfs and devpts uid=/gid= options) as
 * the user namespace of task @pid (/proc/PID at @procfd) sees it: through stasis's own
 * map (its namespace taken for a child of the initial one), then the task's map as
 * stasis reads it. -ERANGE if one of them does not map it. */
int userns_id_from_init(int procfd, pid_t pid, bool gid, uint32_t id, uint32_t *out)
	__must_check;
/* Ids as stasis sees them (a file's owner) as the user namespace of task @pid sees them:
 * its maps read once. */
struct userns_view {
	struct id_range *uid, *gid;
	int nu, ng;
	bool same; /* the task is in stasis's user namespace */
};
int userns_view_open(int procfd, pid_t pid, struct userns_view *v) __must_check;
/* -ERANGE if the task's namespace does not map @id */
int userns_view_id(const struct userns_view *v, bool gid, uint32_t id, uint32_t *out)
	__must_check;
void userns_view_close(struct userns_view *v);

/* Restore. Bounds of an image's maps. */
int userns_validate(const UserNs *u, pid_t pid) __must_check;
/* By the creator of @pid (in the parent namespace): setgroups, uid_map, gid_map, through
 * @proc_dfd (a /proc whose pids are the image's). A refused write is -EPERM, logged
 * unless @quiet_eperm (the caller then asks the stasis helper). */
int userns_write_maps(int proc_dfd, pid_t pid, const UserNs *u, bool quiet_eperm) __must_check;
/* The same through the stasis helper (src/helper/client.h), for the maps not written yet:
 * ranges of the restoring user's /etc/subuid and /etc/subgid, like newuidmap. */
int userns_write_maps_helper(int proc_dfd, struct helper *h, pid_t pid, const UserNs *u)
	__must_check;
/* Around the clone that creates @u's namespace, in its creator: the namespace's owner is
 * the creator's euid at that moment, so the creator takes the recorded owner's uid as
 * its euid, keeping its capabilities (SECBIT_NO_SETUID_FIXUP), and goes back after. Not
 * possible without CAP_SETUID and CAP_SETPCAP: the restorer owns it then (warned). */
struct userns_owner {
	bool active;
	uid_t euid;
	int secbits, dumpable;
};
void userns_owner_begin(const UserNs *u, struct userns_owner *sw);
int userns_owner_end(struct userns_owner *sw) __must_check;
/* In the new task, once its maps are written: become the namespace's root while
 * setting itself up. */
int userns_child_enter(const UserNs *u) __must_check;
/* @in (as seen inside the user namespace of @pid) as seen by stasis, in @out (groups
 * allocated in *groups when translated; free it). */
int userns_creds_outside(pid_t pid, const Creds *in, Creds *out, uint32_t **groups)
	__must_check;

#endif
