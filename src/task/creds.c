/* Credentials of a task: uids, gids, supplementary groups, capability sets, securebits
 * and no_new_privs.
 *
 * Dump reads them from /proc/PID/status (already parsed by the orchestrator) plus one
 * remote prctl(PR_GET_SECUREBITS). Restore sets them with remote syscalls in the
 * restored task, which is a fork of the restoring stasis and so starts with ITS
 * credentials. Nothing here tries to gain what stasis lacks: every change is a plain
 * syscall the kernel checks, and a refusal is reported naming what was refused.
 *
 * The raw syscalls change the credentials of the calling THREAD only (glibc's setxid
 * broadcast does not happen): this runs while the task is still single-threaded, and
 * threads created later inherit the credentials. */
#include <fcntl.h>
#include <linux/capability.h>
#include <linux/securebits.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>

#include "core/log.h"
#include "core/util.h"
#include "cr/resource.h"
#include "task/task.h"
#include "ns/userns.h"

#define STATUS_MAX (1u << 20)

/* Scratch layout for restore. */
enum {
	SCR_CAP_HDR = 0,   /* struct __user_cap_header_struct */
	SCR_CAP_DATA = 16, /* struct __user_cap_data_struct[2] */
	SCR_GROUPS = 64,   /* gid_t[] */
};

/* ---- dump ---------------------------------------------------------------------- */

int creds_dump(struct dump_ctx *c)
{
	const struct proc_status *st = &c->status;
	long secbits;
	Creds *cr;

	secbits = rsys_do(&c->rs, "dump: prctl(PR_GET_SECUREBITS)", SYS_prctl,
			  PR_GET_SECUREBITS, 0, 0, 0, 0, 0);
	if (secbits < 0)
		return (int)secbits;
	if (st->ngroups > PROC_MAX_GROUPS || (st->ngroups && !st->groups)) {
		pr_err("dump: pid %d: bad group list", c->pid);
		return -EINVAL;
	}

	if (!c->core->creds) {
		c->core->creds = malloc(sizeof(*c->core->creds));
		if (!c->core->creds)
			return -ENOMEM;
		creds__init(c->core->creds);
	}
	cr = c->core->creds;
	cr->uid = st->uid[0];
	cr->euid = st->uid[1];
	cr->suid = st->uid[2];
	cr->fsuid = st->uid[3];
	cr->gid = st->gid[0];
	cr->egid = st->gid[1];
	cr->sgid = st->gid[2];
	cr->fsgid = st->gid[3];
	free(cr->groups);
	cr->groups = NULL;
	cr->n_groups = 0;
	if (st->ngroups) {
		cr->groups = malloc(st->ngroups * sizeof(*cr->groups));
		if (!cr->groups)
			return -ENOMEM;
		for (size_t i = 0; i < st->ngroups; i++)
			cr->groups[i] = st->groups[i];
		cr->n_groups = st->ngroups;
	}
	cr->cap_inh = st->cap_inh;
	cr->cap_prm = st->cap_prm;
	cr->cap_eff = st->cap_eff;
	cr->cap_bnd = st->cap_bnd;
	cr->cap_amb = st->cap_amb;
	cr->securebits = (uint32_t)secbits;
	cr->no_new_privs = st->no_new_privs > 0;
	return 0;
}

/* ---- restore ------------------------------------------------------------------- */

/* What the restored task has now. */
struct cred_now {
	struct proc_status st;
	uint32_t securebits;
};

static void cred_now_free(struct cred_now *n) { proc_status_free(&n->st); }

/* Log "restore: cannot <what> for pid N: <error>" once; evaluates to @err. */
static int __attribute__((format(printf, 3, 4))) refused(struct rst_ctx *c, long err,
							 const char *fmt, ...)
{
	char what[256];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(what, sizeof(what), fmt, ap);
	va_end(ap);
	pr_err("restore: cannot %s for pid %d: %s", what, c->pid, strerror((int)-err));
	return (int)err;
}

/* A remote call; a transport failure is logged here, the task's -errno is returned
 * for the caller to report. */
static long rcall(struct rst_ctx *c, const char *what, long nr, uint64_t a0, uint64_t a1,
		  uint64_t a2)
{
	long res;
	int err = rsys_call(&c->rs, nr, a0, a1, a2, 0, 0, 0, &res);
	if (err) {
		pr_err("restore: %s in pid %d: remote call failed: %s", what, c->pid,
		       strerror(-err));
		return err;
	}
	return res;
}

static int read_now(struct rst_ctx *c, struct cred_now *n)
{
	char path[64];
	long r;
	int ret;

	memset(n, 0, sizeof(*n));
	/* the thread being worked on: credentials are per thread */
	snprintf(path, sizeof(path), "/proc/%d/task/%d/status", c->pid, c->rs.tid);
	_cleanup_free_ char *buf = read_file_at(AT_FDCWD, path, STATUS_MAX, NULL);
	if (!buf)
		return pr_perror("restore: read %s", path);
	ret = proc_parse_status(buf, &n->st);
	if (ret) {
		pr_err("restore: cannot parse %s", path);
		return ret;
	}
	r = rcall(c, "prctl(PR_GET_SECUREBITS)", SYS_prctl, PR_GET_SECUREBITS, 0, 0);
	if (r < 0) {
		cred_now_free(n);
		return refused(c, r, "read securebits");
	}
	n->securebits = (uint32_t)r;
	return 0;
}

static int cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
	return (x > y) - (x < y);
}

/* The kernel keeps groups sorted; compare as sets of the same size. */
static bool groups_equal(const Creds *img, const struct proc_status *st)
{
	if (img->n_groups != st->ngroups)
		return false;
	if (!st->ngroups)
		return true;
	_cleanup_free_ uint32_t *a = malloc(st->ngroups * sizeof(*a));
	_cleanup_free_ uint32_t *b = malloc(st->ngroups * sizeof(*b));
	if (!a || !b)
		return false;
	for (size_t i = 0; i < st->ngroups; i++) {
		a[i] = img->groups[i];
		b[i] = st->groups[i];
	}
	qsort(a, st->ngroups, sizeof(*a), cmp_u32);
	qsort(b, st->ngroups, sizeof(*b), cmp_u32);
	return !memcmp(a, b, st->ngroups * sizeof(*a));
}

static bool uids_equal(const Creds *img, const struct proc_status *st)
{
	return st->uid[0] == img->uid && st->uid[1] == img->euid && st->uid[2] == img->suid;
}

static bool gids_equal(const Creds *img, const struct proc_status *st)
{
	return st->gid[0] == img->gid && st->gid[1] == img->egid && st->gid[2] == img->sgid;
}

/* Name of the first difference between the image and the task, NULL if none. */
static const char *creds_diff(const Creds *img, const struct cred_now *n)
{
	const struct proc_status *st = &n->st;

	if (!uids_equal(img, st))
		return "uids";
	if (st->uid[3] != img->fsuid)
		return "fsuid";
	if (!gids_equal(img, st))
		return "gids";
	if (st->gid[3] != img->fsgid)
		return "fsgid";
	if (!groups_equal(img, st))
		return "supplementary groups";
	if (st->cap_bnd != img->cap_bnd)
		return "bounding set";
	if (st->cap_prm != img->cap_prm)
		return "permitted capabilities";
	if (st->cap_eff != img->cap_eff)
		return "effective capabilities";
	if (st->cap_inh != img->cap_inh)
		return "inheritable capabilities";
	if (st->cap_amb != img->cap_amb)
		return "ambient capabilities";
	if (n->securebits != img->securebits)
		return "securebits";
	if ((st->no_new_privs > 0) != !!img->no_new_privs)
		return "no_new_privs";
	return NULL;
}

static int set_securebits(struct rst_ctx *c, uint32_t cur, uint32_t want)
{
	long r;

	if (cur == want)
		return 0;
	/* Only KEEP_CAPS differs: PR_SET_KEEPCAPS needs no capability. */
	if ((cur ^ want) == SECBIT_KEEP_CAPS && !(cur & SECBIT_KEEP_CAPS_LOCKED))
		r = rcall(c, "prctl(PR_SET_KEEPCAPS)", SYS_prctl, PR_SET_KEEPCAPS,
			  !!(want & SECBIT_KEEP_CAPS), 0);
	else
		r = rcall(c, "prctl(PR_SET_SECUREBITS)", SYS_prctl, PR_SET_SECUREBITS, want, 0);
	if (r < 0)
		return refused(c, r, "set securebits 0x%x (from 0x%x)", want, cur);
	return 0;
}

static int drop_bounding(struct rst_ctx *c, const Creds *img, uint64_t cur)
{
	uint64_t gain = img->cap_bnd & ~cur, drop = cur & ~img->cap_bnd;

	if (gain)
		return refused(c, -EPERM, "add capabilities 0x%llx to the bounding set",
			       (unsigned long long)gain);
	for (unsigned int cap = 0; cap < 64; cap++) {
		if (!(drop & (1ULL << cap)))
			continue;
		long r = rcall(c, "prctl(PR_CAPBSET_DROP)", SYS_prctl, PR_CAPBSET_DROP, cap, 0);
		if (r < 0)
			return refused(c, r, "drop capability %u from the bounding set", cap);
	}
	return 0;
}

static int set_groups(struct rst_ctx *c, const Creds *img)
{
	size_t n = img->n_groups;
	long r;

	if (n > PROC_MAX_GROUPS || (n && !img->groups) ||
	    SCR_GROUPS + n * sizeof(gid_t) > c->rs.scratch_len) {
		pr_err("restore: image of pid %d: %zu supplementary groups is too many", c->pid,
		       n);
		return -EINVAL;
	}
	if (n) {
		_cleanup_free_ gid_t *g = malloc(n * sizeof(*g));
		if (!g)
			return -ENOMEM;
		for (size_t i = 0; i < n; i++)
			g[i] = img->groups[i];
		r = rsys_poke(&c->rs, c->rs.scratch + SCR_GROUPS, g, n * sizeof(*g));
		if (r)
			return (int)r;
	}
	r = rcall(c, "setgroups", SYS_setgroups, n, c->rs.scratch + SCR_GROUPS, 0);
	if (r < 0)
		return refused(c, r, "set %zu supplementary groups", n);
	return 0;
}

/* setfsuid/setfsgid never fail: they return the old value. Check with an invalid id
 * (-1), which changes nothing and returns the current one. */
static int set_fsid(struct rst_ctx *c, long nr, const char *name, uint32_t want)
{
	long r = rcall(c, name, nr, want, 0, 0);
	if (r < 0)
		return refused(c, r, "%s %u", name, want);
	r = rcall(c, name, nr, (uint32_t)-1, 0, 0);
	if (r < 0)
		return refused(c, r, "%s %u", name, want);
	if ((uint32_t)r != want)
		return refused(c, -EPERM, "%s %u (it stays %u)", name, want, (uint32_t)r);
	return 0;
}

static const char *const cap_names[] = {
	"chown", "dac_override", "dac_read_search", "fowner", "fsetid", "kill", "setgid",
	"setuid", "setpcap", "linux_immutable", "net_bind_service", "net_broadcast",
	"net_admin", "net_raw", "ipc_lock", "ipc_owner", "sys_module", "sys_rawio",
	"sys_chroot", "sys_ptrace", "sys_pacct", "sys_admin", "sys_boot", "sys_nice",
	"sys_resource", "sys_time", "sys_tty_config", "mknod", "lease", "audit_write",
	"audit_control", "setfcap", "mac_override", "mac_admin", "syslog", "wake_alarm",
	"block_suspend", "audit_read", "perfmon", "bpf", "checkpoint_restore",
};

/* "cap_a,cap_b,..." for the bits of @mask (at most 6 named, then "..."). */
static void cap_list(uint64_t mask, char *buf, size_t len)
{
	size_t off = 0;
	int named = 0;
	buf[0] = '\0';
	for (unsigned int i = 0; i < 64 && off + 1 < len; i++) {
		if (!(mask & (1ULL << i)))
			continue;
		int n;
		if (named++ == 6)
			n = snprintf(buf + off, len - off, ",...");
		else if (named > 7)
			continue;
		else if (i < ARRAY_SIZE(cap_names))
			n = snprintf(buf + off, len - off, "%scap_%s", off ? "," : "", cap_names[i]);
		else
			n = snprintf(buf + off, len - off, "%scap_%u", off ? "," : "", i);
		if (n < 0)
			break;
		off += MIN((size_t)n, len - off - 1);
	}
}

static int set_caps(struct rst_ctx *c, const Creds *img, uint64_t held)
{
	struct __user_cap_header_struct hdr = { .version = _LINUX_CAPABILITY_VERSION_3, .pid = 0 };
	struct __user_cap_data_struct data[2];
	long r;

	for (int i = 0; i < 2; i++) {
		data[i].effective = (uint32_t)(img->cap_eff >> (32 * i));
		data[i].permitted = (uint32_t)(img->cap_prm >> (32 * i));
		data[i].inheritable = (uint32_t)(img->cap_inh >> (32 * i));
	}
	r = rsys_poke(&c->rs, c->rs.scratch + SCR_CAP_HDR, &hdr, sizeof(hdr));
	if (!r)
		r = rsys_poke(&c->rs, c->rs.scratch + SCR_CAP_DATA, data, sizeof(data));
	if (r)
		return (int)r;
	r = rcall(c, "capset", SYS_capset, c->rs.scratch + SCR_CAP_HDR,
		  c->rs.scratch + SCR_CAP_DATA, 0);
	uint64_t missing = img->cap_prm & ~held;
	if (r == -EPERM && missing) {
		char names[160];
		cap_list(missing, names, sizeof(names));
		return refused(c, r, "grant capabilities the restorer does not hold (%s: 0x%llx)",
			       names, (unsigned long long)missing);
	}
	if (r < 0)
		return refused(c, r,
			       "set capabilities (permitted 0x%llx, effective 0x%llx, "
			       "inheritable 0x%llx)",
			       (unsigned long long)img->cap_prm, (unsigned long long)img->cap_eff,
			       (unsigned long long)img->cap_inh);
	return 0;
}

static int set_ambient(struct rst_ctx *c, const Creds *img)
{
	long r = rcall(c, "prctl(PR_CAP_AMBIENT)", SYS_prctl, PR_CAP_AMBIENT,
		       PR_CAP_AMBIENT_CLEAR_ALL, 0);
	if (r < 0)
		return refused(c, r, "clear the ambient capabilities");
	for (unsigned int cap = 0; cap < 64; cap++) {
		if (!(img->cap_amb & (1ULL << cap)))
			continue;
		r = rcall(c, "prctl(PR_CAP_AMBIENT)", SYS_prctl, PR_CAP_AMBIENT,
			  PR_CAP_AMBIENT_RAISE, cap);
		if (r < 0)
			return refused(c, r, "raise ambient capability %u", cap);
	}
	return 0;
}

/* The order matters:
 *  - securebits first (with KEEP_CAPS, so that the permitted set survives leaving uid 0)
 *    and the bounding set: both need CAP_SETPCAP, which the uid change may take away;
 *  - groups and gids before uids: they need CAP_SETGID;
 *  - fs ids right after their ids, before capset (leaving fsuid 0 trims the effective
 *    set, capset then sets it exactly);
 *  - capset, then ambient (needs the bits in permitted and inheritable);
 *  - the final securebits (dropping the added KEEP_CAPS needs no capability) and
 *    no_new_privs last. */
static int apply_creds(struct rst_ctx *c, const Creds *img, const Creds *himg,
		       const struct cred_now *n)
{
	const struct proc_status *st = &n->st;
	bool uid_change = !uids_equal(himg, st);
	uint32_t secbits = n->securebits;
	uint32_t early = img->securebits & ~(uint32_t)SECBIT_KEEP_CAPS_LOCKED;
	long r;
	int ret;

	if (uid_change)
		early |= SECBIT_KEEP_CAPS;
	ret = set_securebits(c, secbits, early);
	if (ret)
		return ret;
	secbits = early;
	ret = drop_bounding(c, img, st->cap_bnd);
	if (ret)
		return ret;
	if (!groups_equal(himg, st)) {
		ret = set_groups(c, img);
		if (ret)
			return ret;
	}
	if (!gids_equal(himg, st)) {
		r = rcall(c, "setresgid", SYS_setresgid, img->gid, img->egid, img->sgid);
		if (r < 0)
			return refused(c, r, "set gid %u (egid %u, sgid %u)", img->gid, img->egid,
				       img->sgid);
	}
	ret = set_fsid(c, SYS_setfsgid, "setfsgid", img->fsgid);
	if (ret)
		return ret;
	if (uid_change) {
		r = rcall(c, "setresuid", SYS_setresuid, img->uid, img->euid, img->suid);
		if (r < 0)
			return refused(c, r, "set uid %u (euid %u, suid %u)", img->uid, img->euid,
				       img->suid);
	}
	ret = set_fsid(c, SYS_setfsuid, "setfsuid", img->fsuid);
	if (ret)
		return ret;
	ret = set_caps(c, img, st->cap_prm);
	if (ret)
		return ret;
	if (img->cap_amb || st->cap_amb) {
		ret = set_ambient(c, img);
		if (ret)
			return ret;
	}
	ret = set_securebits(c, secbits, img->securebits);
	if (ret)
		return ret;
	if (img->no_new_privs && st->no_new_privs <= 0) {
		r = rcall(c, "prctl(PR_SET_NO_NEW_PRIVS)", SYS_prctl, PR_SET_NO_NEW_PRIVS, 1, 0);
		if (r < 0)
			return refused(c, r, "set no_new_privs");
	}
	return 0;
}

int creds_restore_remote(struct rst_ctx *c)
{
	const Creds *img = c->core ? c->core->creds : NULL;
	struct cred_now now;
	const char *diff;
	int ret;

	if (!img) {
		pr_err("restore: image of pid %d has no credentials", c->pid);
		return -EINVAL;
	}
	if (!c->rs.scratch || c->rs.scratch_len < SCR_GROUPS) {
		pr_err("restore: no scratch memory in pid %d", c->pid);
		return -EINVAL;
	}
	/* the image's ids are as seen inside the task's user namespace, /proc shows them
	 * as stasis sees them */
	Creds host;
	_cleanup_free_ uint32_t *hgroups = NULL;
	ret = userns_creds_outside(c->pid, img, &host, &hgroups);
	if (ret)
		return ret;
	ret = read_now(c, &now);
	if (ret)
		return ret;
	diff = creds_diff(&host, &now);
	if (!diff) {
		cred_now_free(&now);
		return 0; /* nothing to change */
	}
	pr_debug("restore: pid %d: %s differ from the image, setting credentials", c->pid,
		 diff);
	/* no_new_privs cannot be cleared: refuse before changing anything. */
	if (!img->no_new_privs && now.st.no_new_privs > 0) {
		cred_now_free(&now);
		return refused(c, -EPERM, "clear no_new_privs");
	}
	ret = apply_creds(c, img, &host, &now);
	cred_now_free(&now);
	if (ret)
		return ret;

	ret = read_now(c, &now);
	if (ret)
		return ret;
	diff = creds_diff(&host, &now);
	cred_now_free(&now);
	if (diff) {
		pr_err("restore: %s of pid %d differ from the image after setting them", diff,
		       c->pid);
		return -EIO;
	}
	return 1; /* changed */
}

/* Credentials are per thread (the raw set*id syscalls act on the calling thread). The
 * other threads were cloned from the main thread after the memory switch and hold its
 * credentials of that moment: if the main thread needs no change, neither do they. */
static int creds_all_threads(struct rst_ctx *c)
{
	int r = creds_restore_remote(c);
	if (r <= 0)
		return r;
	for (size_t i = 0; i < c->nr_trs; i++) {
		struct rsys main_rs = c->rs;
		c->rs = c->trs[i];
		int ret = creds_restore_remote(c);
		c->trs[i] = c->rs;
		c->rs = main_rs;
		if (ret < 0)
			return ret;
	}
	return 0;
}

const struct resource creds_resource = {
	.name = "credentials",
	.dump = creds_dump,
	.remote = creds_all_threads,
};
