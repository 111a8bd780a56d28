/* Pure parsers for /proc text (see parse.h). Every parser walks a NUL-terminated buffer
 * with a cursor that stops at '\n' or '\0', so no read ever goes past the terminating NUL;
 * numbers are parsed by hand with overflow checks; any deviation from the kernel's format
 * is -EINVAL. Formats: fs/proc/array.c (stat, status), fs/proc/task_mmu.c (maps, smaps),
 * fs/proc/fd.c (fdinfo), fs/proc/base.c (timers, auxv). */
#include "proc/parse.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#ifndef SIGEV_THREAD_ID
#define SIGEV_THREAD_ID 4
#endif

/* Bounds on what a well-formed /proc file can hold. */
#define MAX_PATH_LEN (64u * 1024)      /* a vma path (escaped) */
#define MAX_VMAS (16u * 1024 * 1024)   /* far above any vm.max_map_count in use */
#define MAX_TIMERS (1u * 1024 * 1024)  /* timers per process */
#define STAT_FIELDS 52                 /* fields of /proc/PID/stat we need (1-based) */

/* ---- cursor helpers: never step over '\0' ---------------------------------------- */

static bool is_eol(char c) { return c == '\n' || c == '\0'; }

static void skip_blanks(const char **pp)
{
	while (**pp == ' ' || **pp == '\t')
		(*pp)++;
}

static int expect_char(const char **pp, char c)
{
	if (**pp != c)
		return -EINVAL;
	(*pp)++;
	return 0;
}

/* Go to the start of the next line (past '\n'), or stay on the final '\0'. */
static const char *next_line(const char *p)
{
	while (!is_eol(*p))
		p++;
	return *p == '\n' ? p + 1 : p;
}

static int digit_val(char c, unsigned int base)
{
	unsigned int v;
	if (c >= '0' && c <= '9')
		v = (unsigned int)(c - '0');
	else if (c >= 'a' && c <= 'f')
		v = (unsigned int)(c - 'a' + 10);
	else if (c >= 'A' && c <= 'F')
		v = (unsigned int)(c - 'A' + 10);
	else
		return -1;
	return v < base ? (int)v : -1;
}

/* An unsigned number in @base with at least one digit and no sign; -EINVAL on overflow
 * or above @max. */
static int get_u64(const char **pp, unsigned int base, uint64_t max, uint64_t *out)
{
	const char *p = *pp;
	uint64_t v = 0;
	int d;

	if (digit_val(*p, base) < 0)
		return -EINVAL;
	while ((d = digit_val(*p, base)) >= 0) {
		if (v > (UINT64_MAX - (uint64_t)d) / base)
			return -EINVAL;
		v = v * base + (uint64_t)d;
		p++;
	}
	if (v > max)
		return -EINVAL;
	*pp = p;
	*out = v;
	return 0;
}

/* A decimal number with an optional '-', within [min, max]. */
static int get_s64(const char **pp, int64_t min, int64_t max, int64_t *out)
{
	const char *p = *pp;
	bool neg = false;
	uint64_t mag;
	int64_t v;

	if (*p == '-') {
		neg = true;
		p++;
	}
	if (get_u64(&p, 10, neg ? (uint64_t)INT64_MAX + 1 : (uint64_t)INT64_MAX, &mag))
		return -EINVAL;
	if (neg)
		v = mag == (uint64_t)INT64_MAX + 1 ? INT64_MIN : -(int64_t)mag;
	else
		v = (int64_t)mag;
	if (v < min || v > max)
		return -EINVAL;
	*pp = p;
	*out = v;
	return 0;
}

static int get_int(const char **pp, int min, int max, int *out)
{
	int64_t v;
	int ret = get_s64(pp, min, max, &v);
	if (!ret)
		*out = (int)v;
	return ret;
}

/* The rest of the line must be blanks only; moves to the next line. */
static int end_of_line(const char **pp)
{
	skip_blanks(pp);
	if (!is_eol(**pp))
		return -EINVAL;
	*pp = next_line(*pp);
	return 0;
}

/* Grow a malloc'd array to hold at least @need elements of @size bytes. */
static int grow(void **arr, size_t *cap, size_t need, size_t size, size_t limit)
{
	if (need <= *cap)
		return 0;
	if (need > limit)
		return -EINVAL;
	size_t ncap = *cap ? *cap * 2 : 16;
	if (ncap < need)
		ncap = need;
	if (ncap > limit)
		ncap = limit;
	if (ncap > SIZE_MAX / size)
		return -ENOMEM;
	void *n = realloc(*arr, ncap * size);
	if (!n)
		return -ENOMEM;
	*arr = n;
	*cap = ncap;
	return 0;
}

/* Every line of @buf starting with @prefix (NULL: every non-empty line) parsed by @one,
 * given the rest of the line, into a malloc'd array of @size-byte elements (at most
 * @limit): *out (NULL when *nr == 0). -EINVAL on a line @one refuses, nothing kept. */
static int parse_lines(const char *buf, const char *prefix, size_t size, size_t limit,
		       int (*one)(const char *p, void *elem), void **out, size_t *nr)
{
	char *arr = NULL;
	size_t n = 0, cap = 0, plen = prefix ? strlen(prefix) : 0;
	int ret = 0;

	*out = NULL;
	*nr = 0;
	if (!buf)
		return -EINVAL;
	for (const char *p = buf; *p; p = next_line(p)) {
		if (prefix ? strncmp(p, prefix, plen) != 0 : is_eol(*p))
			continue;
		ret = grow((void **)&arr, &cap, n + 1, size, limit);
		if (!ret)
			ret = one(p + plen, arr + n * size);
		if (ret)
			break;
		n++;
	}
	if (ret) {
		free(arr);
		return ret == -ENOMEM ? -ENOMEM : -EINVAL;
	}
	*out = arr;
	*nr = n;
	return 0;
}

/* ---- smaps / maps -------------------------------------------------------------- */

static const char vmflag_names[][3] = {
	"rd", "wr", "ex", "sh", "mr", "mw", "me", "ms", "gd", "pf", "lo",
	"io", "sr", "rr", "dc", "de", "ac", "nr", "ht", "dd", "mm", "hg",
	"nh", "mg", "wf", "sd", "uw", "um", "lf", "sl", "gu",
};
_Static_assert(ARRAY_SIZE(vmflag_names) == 31, "one name per VMF_* bit");

static bool is_ident_char(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	       c == '_';
}

/* "VmFlags: rd wr mr ...": two-character codes; unknown codes (newer kernels, other
 * architectures: "mt", "ss", "bt", ...) set VMF_UNKNOWN. */
static int parse_vmflags(const char *p, uint32_t *out)
{
	uint32_t flags = 0;

	for (;;) {
		skip_blanks(&p);
		if (is_eol(*p))
			break;
		const char *w = p;
		while (!is_eol(*p) && *p != ' ' && *p != '\t')
			p++;
		if (p - w != 2 || !is_ident_char(w[0]) || !is_ident_char(w[1]))
			return -EINVAL;
		size_t i = 0;
		while (i < ARRAY_SIZE(vmflag_names) &&
		       (w[0] != vmflag_names[i][0] || w[1] != vmflag_names[i][1]))
			i++;
		flags |= i < ARRAY_SIZE(vmflag_names) ? 1u << i : VMF_UNKNOWN;
	}
	*out = flags;
	return 0;
}

/* "start-end perms offset major:minor inode [path]" */
static int parse_vma_header(const char *p, struct proc_vma *v)
{
	uint64_t val;

	memset(v, 0, sizeof(*v));
	if (get_u64(&p, 16, UINT64_MAX, &v->start) || expect_char(&p, '-') ||
	    get_u64(&p, 16, UINT64_MAX, &v->end) || expect_char(&p, ' '))
		return -EINVAL;
	if (v->start >= v->end)
		return -EINVAL;
	static const char perm_ch[3] = { 'r', 'w', 'x' };
	static const uint32_t perm_bit[3] = { PROT_READ, PROT_WRITE, PROT_EXEC };
	for (int i = 0; i < 3; i++, p++) {
		if (*p == perm_ch[i])
			v->prot |= perm_bit[i];
		else if (*p != '-')
			return -EINVAL;
	}
	if (*p == 's')
		v->shared = true;
	else if (*p != 'p')
		return -EINVAL;
	p++;
	if (expect_char(&p, ' ') || get_u64(&p, 16, UINT64_MAX, &v->pgoff) ||
	    expect_char(&p, ' '))
		return -EINVAL;
	if (get_u64(&p, 16, UINT32_MAX, &val))
		return -EINVAL;
	v->dev_major = (uint32_t)val;
	if (expect_char(&p, ':') || get_u64(&p, 16, UINT32_MAX, &val))
		return -EINVAL;
	v->dev_minor = (uint32_t)val;
	if (expect_char(&p, ' ') || get_u64(&p, 10, UINT64_MAX, &v->ino))
		return -EINVAL;
	/* The kernel ends the prefix with one space, then pads with spaces to a column
	 * before the name; an anonymous mapping has no name. Names never start with a
	 * blank (seq_path prints absolute paths; pseudo names start with '['). */
	if (is_eol(*p))
		return 0;
	if (*p != ' ')
		return -EINVAL;
	skip_blanks(&p);
	if (is_eol(*p))
		return 0;
	const char *name = p;
	while (!is_eol(*p))
		p++;
	size_t len = (size_t)(p - name);
	if (len > MAX_PATH_LEN)
		return -EINVAL;
	v->path = strndup(name, len);
	return v->path ? 0 : -ENOMEM;
}

void proc_vmas_free(struct proc_vma *v, size_t nr)
{
	if (!v)
		return;
	for (size_t i = 0; i < nr; i++)
		free(v[i].path);
	free(v);
}

int proc_parse_smaps(const char *buf, struct proc_vma **out, size_t *nr)
{
	struct proc_vma *v = NULL;
	size_t n = 0, cap = 0;
	bool have_flags = false;
	int ret = -EINVAL;

	*out = NULL;
	*nr = 0;
	if (!buf)
		return -EINVAL;
	for (const char *p = buf; *p; p = next_line(p)) {
		const char *q = p;
		while (is_ident_char(*q))
			q++;
		if (q == p)
			goto err; /* empty line or garbage */
		if (*q == ':') {
			/* "Key: value" of the current vma (smaps only) */
			if (n == 0)
				goto err;
			if (q - p == 7 && !memcmp(p, "VmFlags", 7)) {
				if (have_flags || parse_vmflags(q + 1, &v[n - 1].vmflags))
					goto err;
				have_flags = true;
			} else if (q - p == 14 && !memcmp(p, "KernelPageSize", 14)) {
				const char *r = q + 1;
				uint64_t kb;
				skip_blanks(&r);
				if (get_u64(&r, 10, 1u << 24, &kb) || !kb)
					goto err;
				v[n - 1].page_kb = (uint32_t)kb;
			} else if (q - p == 4 && !memcmp(p, "Swap", 4)) {
				const char *r = q + 1;
				skip_blanks(&r);
				if (get_u64(&r, 10, 1ull << 40, &v[n - 1].swap_kb))
					goto err;
			}
			continue;
		}
		if (*q != '-')
			goto err;
		ret = grow((void **)&v, &cap, n + 1, sizeof(*v), MAX_VMAS);
		if (ret)
			goto err;
		ret = parse_vma_header(p, &v[n]);
		if (ret)
			goto err;
		n++;
		ret = -EINVAL;
		if (n > 1 && v[n - 1].start < v[n - 2].end)
			goto err; /* overlapping or out of order */
		have_flags = false;
	}
	if (n == 0)
		goto err; /* every live user task has mappings; only kernel threads and
			   * zombies show empty maps, and those are never parsed */
	*out = v;
	*nr = n;
	return 0;
err:
	proc_vmas_free(v, n);
	return ret;
}

/* ---- stat ---------------------------------------------------------------------- */

/* One field of /proc/PID/stat after the comm: a decimal number, possibly negative,
 * that fits in 64 bits (two's complement for negatives). */
static int stat_field(const char **pp, uint64_t *out, bool *neg)
{
	uint64_t mag;
	*neg = false;
	if (**pp == '-') {
		*neg = true;
		(*pp)++;
	}
	if (get_u64(pp, 10, *neg ? (uint64_t)INT64_MAX + 1 : UINT64_MAX, &mag))
		return -EINVAL;
	*out = *neg ? (uint64_t)0 - mag : mag;
	return 0;
}

/* Range checks for the fields we keep: values as read (two's complement if neg). */
static bool stat_int_ok(uint64_t v, bool neg, int64_t min, int64_t max)
{
	int64_t s = (int64_t)v;
	if (!neg && v > (uint64_t)INT64_MAX)
		return false;
	return s >= min && s <= max;
}

static bool stat_ulong_ok(uint64_t v, bool neg) { return !neg && v <= ULONG_MAX; }

int proc_parse_stat(const char *buf, struct proc_stat *st)
{
	uint64_t f[STAT_FIELDS + 1] = { 0 };
	bool neg[STAT_FIELDS + 1] = { false };
	const char *p = buf, *close;
	int pid;

	if (!buf)
		return -EINVAL;
	memset(st, 0, sizeof(*st));
	if (get_int(&p, 0, INT_MAX, &pid) || expect_char(&p, ' ') || expect_char(&p, '('))
		return -EINVAL;
	close = strrchr(p, ')');
	if (!close)
		return -EINVAL;
	size_t clen = (size_t)(close - p);
	if (clen > sizeof(st->comm) - 1)
		clen = sizeof(st->comm) - 1; /* workqueue workers show longer names: cut */
	memcpy(st->comm, p, clen);
	st->comm[clen] = '\0';
	p = close + 1;
	if (expect_char(&p, ' '))
		return -EINVAL;
	/* field 3: one state character */
	if (*p <= ' ' || *p > '~')
		return -EINVAL;
	st->state = *p++;
	/* fields 4.. : numbers separated by single spaces; later kernels may add more */
	for (int i = 4;; i++) {
		uint64_t val;
		bool n;
		if (*p == '\n' || *p == '\0') {
			if (i <= STAT_FIELDS)
				return -EINVAL;
			break;
		}
		if (expect_char(&p, ' ') || stat_field(&p, &val, &n))
			return -EINVAL;
		if (i <= STAT_FIELDS) {
			f[i] = val;
			neg[i] = n;
		}
		if (i > 4096)
			return -EINVAL;
	}
	if (*p == '\n')
		p++;
	if (*p != '\0')
		return -EINVAL;

	static const unsigned char int_fields[] = { 4, 5, 6, 38 };
	for (size_t i = 0; i < ARRAY_SIZE(int_fields); i++)
		if (!stat_int_ok(f[int_fields[i]], neg[int_fields[i]], INT_MIN, INT_MAX))
			return -EINVAL;
	if (!stat_int_ok(f[7], neg[7], INT_MIN, INT_MAX) ||
	    !stat_int_ok(f[8], neg[8], INT_MIN, INT_MAX) ||
	    !stat_int_ok(f[52], neg[52], INT_MIN, INT_MAX) || neg[9] || f[9] > UINT_MAX ||
	    !stat_int_ok(f[20], neg[20], 0, LONG_MAX) || neg[22])
		return -EINVAL;
	static const unsigned char ulong_fields[] = { 26, 27, 28, 45, 46, 47, 48, 49, 50, 51 };
	for (size_t i = 0; i < ARRAY_SIZE(ulong_fields); i++)
		if (!stat_ulong_ok(f[ulong_fields[i]], neg[ulong_fields[i]]))
			return -EINVAL;

	st->pid = pid;
	st->ppid = (int)(int64_t)f[4];
	st->pgrp = (int)(int64_t)f[5];
	st->session = (int)(int64_t)f[6];
	st->tty_nr = (int)(int64_t)f[7];
	st->tpgid = (int)(int64_t)f[8];
	st->flags = (unsigned long)f[9];
	st->num_threads = (long)f[20];
	st->start_time = f[22];
	st->start_code = (unsigned long)f[26];
	st->end_code = (unsigned long)f[27];
	st->start_stack = (unsigned long)f[28];
	st->exit_signal = (int)(int64_t)f[38];
	st->start_data = (unsigned long)f[45];
	st->end_data = (unsigned long)f[46];
	st->start_brk = (unsigned long)f[47];
	st->arg_start = (unsigned long)f[48];
	st->arg_end = (unsigned long)f[49];
	st->env_start = (unsigned long)f[50];
	st->env_end = (unsigned long)f[51];
	st->exit_code = (int)(int64_t)f[52];
	return 0;
}

/* ---- status -------------------------------------------------------------------- */

enum status_key {
	SK_UMASK,
	SK_STATE,
	SK_TGID,
	SK_PID,
	SK_PPID,
	SK_TRACERPID,
	SK_UID,
	SK_GID,
	SK_GROUPS,
	SK_NSPID,
	SK_NSPGID,
	SK_NSSID,
	SK_THREADS,
	SK_SIGPND,
	SK_SHDPND,
	SK_SIGBLK,
	SK_SIGIGN,
	SK_SIGCGT,
	SK_CAPINH,
	SK_CAPPRM,
	SK_CAPEFF,
	SK_CAPBND,
	SK_CAPAMB,
	SK_NONEWPRIVS,
	SK_SECCOMP,
	SK_SECCOMP_FILTERS,
	SK_NR
};

static const char *const status_keys[SK_NR] = {
	[SK_UMASK] = "Umask",	    [SK_STATE] = "State",	[SK_TGID] = "Tgid",
	[SK_PID] = "Pid",	    [SK_PPID] = "PPid",		[SK_TRACERPID] = "TracerPid",
	[SK_UID] = "Uid",	    [SK_GID] = "Gid",		[SK_GROUPS] = "Groups",
	[SK_NSPID] = "NSpid",	    [SK_NSPGID] = "NSpgid",	[SK_NSSID] = "NSsid",
	[SK_THREADS] = "Threads",   [SK_SIGPND] = "SigPnd",	[SK_SHDPND] = "ShdPnd",
	[SK_SIGBLK] = "SigBlk",	    [SK_SIGIGN] = "SigIgn",	[SK_SIGCGT] = "SigCgt",
	[SK_CAPINH] = "CapInh",	    [SK_CAPPRM] = "CapPrm",	[SK_CAPEFF] = "CapEff",
	[SK_CAPBND] = "CapBnd",	    [SK_CAPAMB] = "CapAmb",	[SK_NONEWPRIVS] = "NoNewPrivs",
	[SK_SECCOMP] = "Seccomp",	    [SK_SECCOMP_FILTERS] = "Seccomp_filters",
};

/* Lines every kernel we support prints; the others are optional (config or version). */
static const enum status_key status_required[] = {
	SK_STATE,  SK_TGID,   SK_PID,	 SK_PPID,   SK_UID,    SK_GID,	  SK_THREADS, SK_SIGPND,
	SK_SHDPND, SK_SIGBLK, SK_SIGIGN, SK_SIGCGT, SK_CAPINH, SK_CAPPRM, SK_CAPEFF, SK_CAPBND,
};

static int status_key_lookup(const char *key, size_t len)
{
	for (int i = 0; i < SK_NR; i++)
		if (strlen(status_keys[i]) == len && !memcmp(status_keys[i], key, len))
			return i;
	return -1;
}

/* Tab- or space-separated numbers up to the end of the line. */
static int get_int_list(const char **pp, int *arr, size_t max, size_t *len)
{
	size_t n = 0;
	for (;;) {
		skip_blanks(pp);
		if (is_eol(**pp))
			break;
		if (n == max)
			return -EINVAL;
		if (get_int(pp, 0, INT_MAX, &arr[n++]))
			return -EINVAL;
		if (!is_eol(**pp) && **pp != ' ' && **pp != '\t')
			return -EINVAL;
	}
	if (n == 0)
		return -EINVAL;
	*len = n;
	return 0;
}

static int get_groups(const char **pp, struct proc_status *st)
{
	size_t cap = 0;
	for (;;) {
		uint64_t g;
		skip_blanks(pp);
		if (is_eol(**pp))
			return 0;
		int ret = grow((void **)&st->groups, &cap, st->ngroups + 1, sizeof(*st->groups),
			       PROC_MAX_GROUPS);
		if (ret)
			return ret;
		if (get_u64(pp, 10, UINT_MAX, &g))
			return -EINVAL;
		if (!is_eol(**pp) && **pp != ' ' && **pp != '\t')
			return -EINVAL;
		st->groups[st->ngroups++] = (unsigned int)g;
	}
}

static int get_hex64(const char **pp, uint64_t *out)
{
	const char *start = *pp;
	if (get_u64(pp, 16, UINT64_MAX, out) || *pp - start > 16)
		return -EINVAL;
	return 0;
}

static int status_value(const char **pp, enum status_key k, struct proc_status *st)
{
	uint64_t u;
	int ret = 0;

	switch (k) {
	case SK_UMASK:
		if (get_u64(pp, 8, 0777, &u))
			return -EINVAL;
		st->umask = (unsigned int)u;
		return 0;
	case SK_STATE:
		/* "S (sleeping)" */
		if (**pp <= ' ' || **pp > '~')
			return -EINVAL;
		st->state = **pp;
		*pp = next_line(*pp);
		return 1; /* rest of the line is free text */
	case SK_TGID:
		return get_int(pp, 0, INT_MAX, &st->tgid);
	case SK_PID:
		return get_int(pp, 0, INT_MAX, &st->pid);
	case SK_PPID:
		return get_int(pp, 0, INT_MAX, &st->ppid);
	case SK_TRACERPID:
		return get_int(pp, 0, INT_MAX, &st->tracer_pid);
	case SK_UID:
	case SK_GID: {
		unsigned int *ids = k == SK_UID ? st->uid : st->gid;
		for (int i = 0; i < 4; i++) {
			skip_blanks(pp);
			if (get_u64(pp, 10, UINT_MAX, &u))
				return -EINVAL;
			ids[i] = (unsigned int)u;
		}
		return 0;
	}
	case SK_GROUPS:
		return get_groups(pp, st);
	case SK_NSPID:
		return get_int_list(pp, st->nspid, PROC_MAX_NS_LEVEL, &st->nspid_len);
	case SK_NSPGID:
		return get_int_list(pp, st->nspgid, PROC_MAX_NS_LEVEL, &st->nspgid_len);
	case SK_NSSID:
		return get_int_list(pp, st->nssid, PROC_MAX_NS_LEVEL, &st->nssid_len);
	case SK_THREADS: {
		int64_t t;
		ret = get_s64(pp, 0, LONG_MAX, &t);
		st->threads = (long)t;
		return ret;
	}
	case SK_SIGPND:
		return get_hex64(pp, &st->sig_pnd);
	case SK_SHDPND:
		return get_hex64(pp, &st->shd_pnd);
	case SK_SIGBLK:
		return get_hex64(pp, &st->sig_blk);
	case SK_SIGIGN:
		return get_hex64(pp, &st->sig_ign);
	case SK_SIGCGT:
		return get_hex64(pp, &st->sig_cgt);
	case SK_CAPINH:
		return get_hex64(pp, &st->cap_inh);
	case SK_CAPPRM:
		return get_hex64(pp, &st->cap_prm);
	case SK_CAPEFF:
		return get_hex64(pp, &st->cap_eff);
	case SK_CAPBND:
		return get_hex64(pp, &st->cap_bnd);
	case SK_CAPAMB:
		return get_hex64(pp, &st->cap_amb);
	case SK_NONEWPRIVS:
		return get_int(pp, 0, 1, &st->no_new_privs);
	case SK_SECCOMP:
		return get_int(pp, 0, 2, &st->seccomp);
	case SK_SECCOMP_FILTERS:
		return get_int(pp, 0, INT_MAX, &st->seccomp_filters);
	case SK_NR:
		break;
	}
	return -EINVAL;
}

void proc_status_free(struct proc_status *st)
{
	free(st->groups);
	st->groups = NULL;
	st->ngroups = 0;
}

int proc_parse_status(const char *buf, struct proc_status *st)
{
	bool seen[SK_NR] = { false };
	int ret;

	memset(st, 0, sizeof(*st));
	st->umask = UINT_MAX;
	st->seccomp_filters = -1;
	if (!buf)
		return -EINVAL;
	for (const char *p = buf; *p;) {
		const char *key = p;
		while (!is_eol(*p) && *p != ':')
			p++;
		if (p == key || *p != ':') {
			ret = -EINVAL;
			goto err;
		}
		int k = status_key_lookup(key, (size_t)(p - key));
		p++;
		if (k < 0) {
			p = next_line(p); /* a line we do not need (Name is escaped: one line) */
			continue;
		}
		if (seen[k]) {
			ret = -EINVAL;
			goto err;
		}
		seen[k] = true;
		skip_blanks(&p);
		ret = status_value(&p, (enum status_key)k, st);
		if (ret < 0)
			goto err;
		if (ret == 0 && end_of_line(&p)) {
			ret = -EINVAL;
			goto err;
		}
	}
	for (size_t i = 0; i < ARRAY_SIZE(status_required); i++) {
		if (!seen[status_required[i]]) {
			ret = -EINVAL;
			goto err;
		}
	}
	return 0;
err:
	proc_status_free(st);
	return ret;
}

/* ---- fdinfo -------------------------------------------------------------------- */

int proc_parse_fdinfo(const char *buf, struct proc_fdinfo *fi)
{
	bool have_pos = false, have_flags = false, have_mnt = false, have_ino = false;

	memset(fi, 0, sizeof(*fi));
	if (!buf)
		return -EINVAL;
	for (const char *p = buf; *p && !(have_pos && have_flags && have_mnt && have_ino);) {
		const char *key = p;
		/* type-specific lines ("eventfd-count:", "tfd:", "inotify wd:...") vary: only
		 * the four generic keys, which come first, are parsed, others skipped */
		while (!is_eol(*p) && *p != ':')
			p++;
		if (*p != ':')
			return -EINVAL;
		size_t klen = (size_t)(p - key);
		p++;
		skip_blanks(&p);
		uint64_t u;
		int64_t s;
		if (klen == 3 && !memcmp(key, "pos", 3)) {
			/* printed with %lli: some devices use offsets beyond LLONG_MAX */
			if (have_pos || get_s64(&p, INT64_MIN, INT64_MAX, &s))
				return -EINVAL;
			fi->pos = (uint64_t)s;
			have_pos = true;
		} else if (klen == 5 && !memcmp(key, "flags", 5)) {
			if (have_flags || get_u64(&p, 8, UINT_MAX, &u))
				return -EINVAL;
			fi->flags = (unsigned int)u;
			have_flags = true;
		} else if (klen == 6 && !memcmp(key, "mnt_id", 6)) {
			if (have_mnt || get_int(&p, 0, INT_MAX, &fi->mnt_id))
				return -EINVAL;
			have_mnt = true;
		} else if (klen == 3 && !memcmp(key, "ino", 3)) {
			if (have_ino || get_u64(&p, 10, UINT64_MAX, &fi->ino))
				return -EINVAL;
			have_ino = true;
		} else {
			p = next_line(p);
			continue;
		}
		if (end_of_line(&p))
			return -EINVAL;
	}
	/* "ino:" appeared in 5.14; the other three are always there */
	return have_pos && have_flags && have_mnt ? 0 : -EINVAL;
}

int proc_fdinfo_each_key(const char *buf, int (*fn)(const char *key, size_t klen, void *arg),
			 void *arg)
{
	static const char *const generic[] = { "pos", "flags", "mnt_id", "ino" };

	if (!buf)
		return -EINVAL;
	for (const char *p = buf; *p; p = next_line(p)) {
		const char *key = p;
		while (!is_eol(*p) && *p != ':' && *p != ' ' && *p != '\t')
			p++;
		size_t klen = (size_t)(p - key);
		if (!klen)
			return -EINVAL;
		bool known = false;
		for (size_t k = 0; k < ARRAY_SIZE(generic) && !known; k++)
			known = strlen(generic[k]) == klen && !memcmp(generic[k], key, klen);
		if (known)
			continue;
		int r = fn(key, klen, arg);
		if (r)
			return r;
	}
	return 0;
}

/* ---- timers -------------------------------------------------------------------- */

/* Match a literal prefix and advance. */
static int expect_str(const char **pp, const char *s)
{
	size_t n = strlen(s);
	if (strncmp(*pp, s, n))
		return -EINVAL;
	*pp += n;
	return 0;
}

static int parse_one_timer(const char **pp, struct proc_posix_timer *t)
{
	const char *p = *pp;
	uint64_t val;
	int base;

	memset(t, 0, sizeof(*t));
	if (expect_str(&p, "ID: ") || get_int(&p, 0, INT_MAX, &t->id) || end_of_line(&p))
		return -EINVAL;
	/* "signal: 14/00007ffc12345678" (the value is a pointer printed in hex) */
	if (expect_str(&p, "signal: ") || get_int(&p, 0, INT_MAX, &t->signo) ||
	    expect_char(&p, '/') || get_hex64(&p, &val) || end_of_line(&p))
		return -EINVAL;
	t->sigval = val;
	/* "notify: signal/pid.123", "thread/tid.123", "none/pid.0" */
	if (expect_str(&p, "notify: "))
		return -EINVAL;
	if (!expect_str(&p, "signal/"))
		base = SIGEV_SIGNAL;
	else if (!expect_str(&p, "none/"))
		base = SIGEV_NONE;
	else if (!expect_str(&p, "thread/"))
		base = SIGEV_THREAD;
	else
		return -EINVAL;
	if (!expect_str(&p, "tid."))
		t->notify = base | SIGEV_THREAD_ID;
	else if (!expect_str(&p, "pid."))
		t->notify = base;
	else
		return -EINVAL;
	if (get_int(&p, 0, INT_MAX, &t->notify_tid) || end_of_line(&p))
		return -EINVAL;
	/* CPU-time clocks are negative ids */
	if (expect_str(&p, "ClockID: ") || get_int(&p, INT_MIN, INT_MAX, &t->clock) ||
	    end_of_line(&p))
		return -EINVAL;
	*pp = p;
	return 0;
}

int proc_parse_timers(const char *buf, struct proc_posix_timer **out, size_t *nr)
{
	struct proc_posix_timer *t = NULL;
	size_t n = 0, cap = 0;
	int ret;

	*out = NULL;
	*nr = 0;
	if (!buf)
		return -EINVAL;
	for (const char *p = buf; *p;) {
		ret = grow((void **)&t, &cap, n + 1, sizeof(*t), MAX_TIMERS);
		if (ret)
			goto err;
		ret = parse_one_timer(&p, &t[n]);
		if (ret)
			goto err;
		n++;
	}
	*out = t;
	*nr = n;
	return 0;
err:
	free(t);
	return ret;
}

/* ---- auxv ---------------------------------------------------------------------- */

int proc_parse_auxv(const void *buf, size_t len, uint64_t *out, size_t max)
{
	const unsigned char *b = buf;
	const size_t w = sizeof(unsigned long);

	if (!buf || (max && !out))
		return -EINVAL;
	for (size_t i = 0; (i + 2) * w <= len; i += 2) {
		unsigned long type, val;
		memcpy(&type, b + i * w, w);
		memcpy(&val, b + (i + 1) * w, w);
		if (i + 2 > max)
			return -EINVAL; /* the vector with its AT_NULL does not fit */
		out[i] = type;
		out[i + 1] = val;
		if (type == 0 /* AT_NULL */) {
			if (i + 2 > INT_MAX)
				return -EINVAL;
			return (int)(i + 2);
		}
	}
	return -EINVAL; /* no AT_NULL */
}

/* ---- uid_map / gid_map ---------------------------------------------------------- */

int proc_parse_idmap(const char *buf, struct id_range *out, size_t max)
{
	size_t n = 0;

	if (!buf || (max && !out))
		return -EINVAL;
	for (const char *p = buf; *p;) {
		uint64_t v[3];
		skip_blanks(&p);
		if (is_eol(*p)) {
			p = next_line(p);
			continue;
		}
		for (int k = 0; k < 3; k++) {
			skip_blanks(&p);
			if (get_u64(&p, 10, UINT32_MAX, &v[k]))
				return -EINVAL;
		}
		/* as the kernel: first + count must not wrap a u32 (so the id 4294967295,
		 * the invalid id, is never mapped) */
		if (end_of_line(&p) || !v[2] || v[0] + v[2] > UINT32_MAX ||
		    v[1] + v[2] > UINT32_MAX || n >= max)
			return -EINVAL;
		out[n++] = (struct id_range){ (uint32_t)v[0], (uint32_t)v[1], (uint32_t)v[2] };
	}
	return (int)n;
}

/* ---- fdinfo of anon-inode files (fs/eventfd.c, fs/timerfd.c, fs/signalfd.c,
 * fs/eventpoll.c: their show_fdinfo) ------------------------------------------- */

/* The value of the line "@key:" (after the blanks that follow the colon), or NULL if
 * there is none; -EINVAL in *err if it appears twice. */
static const char *fdinfo_value(const char *buf, const char *key, int *err)
{
	size_t klen = strlen(key);
	const char *found = NULL;

	for (const char *p = buf; *p; p = next_line(p)) {
		if (strncmp(p, key, klen) || p[klen] != ':')
			continue;
		if (found) {
			*err = -EINVAL;
			return NULL;
		}
		found = p + klen + 1;
		skip_blanks(&found);
	}
	return found;
}

/* "@key: NUMBER" in @base, alone on its line; -ENOENT if absent. */
static int fdinfo_u64(const char *buf, const char *key, unsigned int base, uint64_t max,
		      uint64_t *out)
{
	int err = 0;
	const char *p = fdinfo_value(buf, key, &err);
	if (err)
		return err;
	if (!p)
		return -ENOENT;
	if (get_u64(&p, base, max, out) || end_of_line(&p))
		return -EINVAL;
	return 0;
}

int proc_parse_fdinfo_eventfd(const char *buf, struct proc_fdinfo_eventfd *e)
{
	uint64_t v;
	int ret;

	memset(e, 0, sizeof(*e));
	e->semaphore = -1;
	if (!buf)
		return -EINVAL;
	/* printed with %16llx; a count of ULLONG_MAX is impossible (writes stop short) */
	if (fdinfo_u64(buf, "eventfd-count", 16, UINT64_MAX - 1, &e->count))
		return -EINVAL;
	ret = fdinfo_u64(buf, "eventfd-semaphore", 10, 1, &v);
	if (ret == 0)
		e->semaphore = (int)v;
	else if (ret != -ENOENT)
		return -EINVAL;
	return 0;
}

/* "(SEC, NSEC)" */
static int fdinfo_timespec(const char *buf, const char *key, uint64_t *sec, uint64_t *nsec)
{
	int err = 0;
	const char *p = fdinfo_value(buf, key, &err);
	if (err || !p)
		return -EINVAL;
	if (expect_char(&p, '(') || get_u64(&p, 10, INT64_MAX, sec) || expect_char(&p, ',') ||
	    (skip_blanks(&p), get_u64(&p, 10, 999999999, nsec)) || expect_char(&p, ')') ||
	    end_of_line(&p))
		return -EINVAL;
	return 0;
}

int proc_parse_fdinfo_timerfd(const char *buf, struct proc_fdinfo_timerfd *t)
{
	uint64_t v;

	memset(t, 0, sizeof(*t));
	if (!buf)
		return -EINVAL;
	if (fdinfo_u64(buf, "clockid", 10, INT_MAX, &v))
		return -EINVAL;
	t->clockid = (int)v;
	if (fdinfo_u64(buf, "ticks", 10, UINT64_MAX, &t->ticks))
		return -EINVAL;
	/* "settime flags: 0%o" */
	if (fdinfo_u64(buf, "settime flags", 8, UINT_MAX, &v))
		return -EINVAL;
	t->settime_flags = (unsigned int)v;
	if (fdinfo_timespec(buf, "it_value", &t->value_sec, &t->value_nsec) ||
	    fdinfo_timespec(buf, "it_interval", &t->interval_sec, &t->interval_nsec))
		return -EINVAL;
	return 0;
}

int proc_parse_fdinfo_signalfd(const char *buf, uint64_t *sigmask)
{
	*sigmask = 0;
	if (!buf)
		return -EINVAL;
	return fdinfo_u64(buf, "sigmask", 16, UINT64_MAX, sigmask) ? -EINVAL : 0;
}

#define MAX_EPOLL_TFDS (1u << 22)

/* "tfd: %8d events: %8x data: %16llx  pos:%lli ino:%lx sdev:%x" */
static int parse_epoll_line(const char *p, struct proc_epoll_tfd *t)
{
	uint64_t v;
	int64_t s;

	memset(t, 0, sizeof(*t));
	skip_blanks(&p);
	if (get_int(&p, 0, INT_MAX, &t->tfd))
		return -EINVAL;
	skip_blanks(&p);
	if (expect_str(&p, "events:") || (skip_blanks(&p), get_u64(&p, 16, UINT32_MAX, &v)))
		return -EINVAL;
	t->events = (uint32_t)v;
	skip_blanks(&p);
	if (expect_str(&p, "data:") || (skip_blanks(&p), get_u64(&p, 16, UINT64_MAX, &t->data)))
		return -EINVAL;
	skip_blanks(&p);
	if (expect_str(&p, "pos:") || get_s64(&p, INT64_MIN, INT64_MAX, &s))
		return -EINVAL;
	t->pos = s;
	skip_blanks(&p);
	if (expect_str(&p, "ino:") || get_u64(&p, 16, UINT64_MAX, &t->ino))
		return -EINVAL;
	skip_blanks(&p);
	if (expect_str(&p, "sdev:") || get_u64(&p, 16, UINT32_MAX, &t->sdev))
		return -EINVAL;
	/* newer kernels may append fields: ignore what follows a blank */
	if (!is_eol(*p) && *p != ' ' && *p != '\t')
		return -EINVAL;
	return 0;
}

static int epoll_line(const char *p, void *elem) { return parse_epoll_line(p, elem); }

int proc_parse_fdinfo_epoll(const char *buf, struct proc_epoll_tfd **out, size_t *nr)
{
	return parse_lines(buf, "tfd:", sizeof(**out), MAX_EPOLL_TFDS, epoll_line, (void **)out, nr);
}

/* ---- fdinfo of inotify and fanotify files (fs/notify/fdinfo.c) --------------------- */

#define MAX_FSNOTIFY_MARKS (1u << 22)

/* "@key" then a hex number up to @max. */
static int key_hex(const char **pp, const char *key, uint64_t max, uint64_t *v)
{
	skip_blanks(pp);
	if (expect_str(pp, key))
		return -EINVAL;
	return get_u64(pp, 16, max, v);
}

/* The optional " fhandle-bytes:%x fhandle-type:%x f_handle:HEX" ending a mark's line. */
static int parse_fhandle(const char **pp, struct proc_fsnotify_mark *m)
{
	uint64_t bytes, type;
	skip_blanks(pp);
	if (is_eol(**pp))
		return 0;
	if (key_hex(pp, "fhandle-bytes:", PROC_FHANDLE_MAX, &bytes) ||
	    key_hex(pp, "fhandle-type:", INT32_MAX, &type))
		return -EINVAL;
	skip_blanks(pp);
	if (expect_str(pp, "f_handle:"))
		return -EINVAL;
	for (uint64_t i = 0; i < bytes; i++) {
		int hi = digit_val((*pp)[0], 16), lo = hi < 0 ? -1 : digit_val((*pp)[1], 16);
		if (lo < 0)
			return -EINVAL;
		m->fh[i] = (unsigned char)(hi << 4 | lo);
		*pp += 2;
	}
	m->fh_bytes = (unsigned int)bytes;
	m->fh_type = (int)type;
	m->has_fh = true;
	return 0;
}

/* The masks ending a mark's line: "[mflags:%x ]mask:%x ignored_mask:%x". */
static int parse_masks(const char **pp, struct proc_fsnotify_mark *m, bool mflags)
{
	uint64_t v;
	if (mflags) {
		if (key_hex(pp, "mflags:", UINT32_MAX, &v))
			return -EINVAL;
		m->mflags = (uint32_t)v;
	}
	if (key_hex(pp, "mask:", UINT32_MAX, &v))
		return -EINVAL;
	m->mask = (uint32_t)v;
	if (key_hex(pp, "ignored_mask:", UINT32_MAX, &v))
		return -EINVAL;
	m->ignored_mask = (uint32_t)v;
	return 0;
}

/* After "inotify": "wd:%x ino:%lx sdev:%x mask:%x ignored_mask:%x [fhandle]" */
static int parse_inotify_line(const char *p, struct proc_fsnotify_mark *m)
{
	uint64_t v;
	memset(m, 0, sizeof(*m));
	m->type = PROC_MARK_INODE;
	if (key_hex(&p, "wd:", INT32_MAX, &v) || v == 0)
		return -EINVAL;
	m->wd = (int)v;
	if (key_hex(&p, "ino:", UINT64_MAX, &m->ino) || key_hex(&p, "sdev:", UINT32_MAX, &v))
		return -EINVAL;
	m->sdev = (uint32_t)v;
	if (parse_masks(&p, m, false) || parse_fhandle(&p, m))
		return -EINVAL;
	return end_of_line(&p);
}

/* After "fanotify": "ino:%lx sdev:%x mflags:... [fhandle]", "mnt_id:%x mflags:...",
 * "sdev:%x mflags:..." */
static int parse_fanotify_mark(const char *p, struct proc_fsnotify_mark *m)
{
	uint64_t v;
	memset(m, 0, sizeof(*m));
	skip_blanks(&p);
	if (!strncmp(p, "mnt_id:", 7)) {
		m->type = PROC_MARK_MOUNT;
		if (key_hex(&p, "mnt_id:", INT32_MAX, &v) || parse_masks(&p, m, true))
			return -EINVAL;
		m->mnt_id = (int)v;
		return end_of_line(&p);
	}
	m->type = PROC_MARK_SB;
	if (!strncmp(p, "ino:", 4)) {
		m->type = PROC_MARK_INODE;
		if (key_hex(&p, "ino:", UINT64_MAX, &m->ino))
			return -EINVAL;
	}
	if (key_hex(&p, "sdev:", UINT32_MAX, &v))
		return -EINVAL;
	m->sdev = (uint32_t)v;
	if (parse_masks(&p, m, true))
		return -EINVAL;
	if (m->type == PROC_MARK_INODE && parse_fhandle(&p, m))
		return -EINVAL;
	return end_of_line(&p);
}

/* Every line starting with @prefix (a fanotify header line excepted) parsed into *out. */
static int parse_marks(const char *buf, const char *prefix, bool fan,
		       struct proc_fsnotify_mark **out, size_t *nr)
{
	struct proc_fsnotify_mark *arr = NULL;
	size_t n = 0, cap = 0, plen = strlen(prefix);
	int ret = 0;

	for (const char *p = buf; *p && !ret; p = next_line(p)) {
		if (strncmp(p, prefix, plen) || (fan && !strncmp(p + plen, "flags:", 6)))
			continue;
		ret = grow((void **)&arr, &cap, n + 1, sizeof(*arr), MAX_FSNOTIFY_MARKS);
		if (!ret)
			ret = fan ? parse_fanotify_mark(p + plen, &arr[n])
				  : parse_inotify_line(p + plen, &arr[n]);
		n++;
	}
	if (ret) {
		free(arr);
		return ret == -ENOMEM ? -ENOMEM : -EINVAL;
	}
	*out = arr;
	*nr = n;
	return 0;
}

int proc_parse_fdinfo_inotify(const char *buf, struct proc_fsnotify_mark **out, size_t *nr)
{
	*out = NULL;
	*nr = 0;
	if (!buf)
		return -EINVAL;
	return parse_marks(buf, "inotify ", false, out, nr);
}

int proc_parse_fdinfo_fanotify(const char *buf, struct proc_fanotify *f,
			       struct proc_fsnotify_mark **out, size_t *nr)
{
	uint64_t v;
	const char *p = NULL;

	*out = NULL;
	*nr = 0;
	memset(f, 0, sizeof(*f));
	if (!buf)
		return -EINVAL;
	for (const char *q = buf; *q; q = next_line(q))
		if (!strncmp(q, "fanotify flags:", 15)) {
			if (p)
				return -EINVAL;
			p = q + 9;
		}
	if (!p || key_hex(&p, "flags:", UINT32_MAX, &v))
		return -EINVAL;
	f->flags = (uint32_t)v;
	if (key_hex(&p, "event-flags:", UINT32_MAX, &v) || end_of_line(&p))
		return -EINVAL;
	f->event_flags = (uint32_t)v;
	return parse_marks(buf, "fanotify ", true, out, nr);
}

int proc_parse_pidfd_nspid(const char *buf, int *nspid, size_t max, size_t *n)
{
	int err = 0;
	const char *p = fdinfo_value(buf, "NSpid", &err);
	if (err || !p)
		return -EINVAL;
	return get_int_list(&p, nspid, max, n);
}

int proc_parse_pidfd_pid(const char *buf, int *pid)
{
	int err = 0;
	int64_t v;
	const char *p = fdinfo_value(buf, "Pid", &err);

	if (err || !p || get_s64(&p, -1, INT32_MAX, &v) || end_of_line(&p))
		return -EINVAL;
	if (v == -1)
		return -ESRCH;
	if (v == 0)
		return -ENOENT;
	*pid = (int)v;
	return 0;
}

/* ---- file locks (fs/locks.c: lock_get_status) ----------------------------------- */

/* Match word @w followed by a blank; advance past the blanks. */
static bool take_word(const char **pp, const char *w)
{
	size_t n = strlen(w);
	if (strncmp(*pp, w, n) || ((*pp)[n] != ' ' && (*pp)[n] != '\t'))
		return false;
	*pp += n;
	skip_blanks(pp);
	return true;
}

static int parse_lock_kind(const char **pp, struct proc_lock *l)
{
	if (take_word(pp, "FLOCK"))
		l->kind = PROC_LOCK_FLOCK;
	else if (take_word(pp, "POSIX"))
		l->kind = PROC_LOCK_POSIX;
	else if (take_word(pp, "OFDLCK"))
		l->kind = PROC_LOCK_OFD;
	else if (take_word(pp, "LEASE"))
		l->kind = PROC_LOCK_LEASE;
	else if (take_word(pp, "DELEG") || take_word(pp, "ACCESS") || take_word(pp, "UNKNOWN"))
		l->kind = PROC_LOCK_OTHER;
	else
		return -EINVAL;
	/* the mode: ADVISORY, MANDATORY (old kernels), *NOINODE*; a lease's state */
	if (take_word(pp, "ADVISORY") || take_word(pp, "ACTIVE"))
		l->advisory = true;
	else if (take_word(pp, "BREAKING") || take_word(pp, "BREAKER")) {
		l->advisory = true;
		l->breaking = true;
	} else if (!take_word(pp, "MANDATORY") && !take_word(pp, "*NOINODE*") &&
		   !take_word(pp, "UNKNOWN"))
		return -EINVAL;
	if (take_word(pp, "READ"))
		l->type = F_RDLCK;
	else if (take_word(pp, "WRITE"))
		l->type = F_WRLCK;
	else if (take_word(pp, "UNLCK"))
		l->type = F_UNLCK;
	else
		return -EINVAL;
	return 0;
}

/* One lock after its "ID: " */
static int parse_lock_line(const char *p, struct proc_lock *l)
{
	uint64_t v;

	memset(l, 0, sizeof(*l));
	skip_blanks(&p);
	if (!strncmp(p, "->", 2)) {
		l->waiter = true;
		p += 2;
		skip_blanks(&p);
	}
	if (parse_lock_kind(&p, l) || get_int(&p, -1, INT_MAX, &l->pid))
		return -EINVAL;
	skip_blanks(&p);
	if (get_u64(&p, 16, UINT_MAX, &v) || expect_char(&p, ':'))
		return -EINVAL;
	l->dev_major = (unsigned int)v;
	if (get_u64(&p, 16, UINT_MAX, &v) || expect_char(&p, ':'))
		return -EINVAL;
	l->dev_minor = (unsigned int)v;
	if (get_u64(&p, 10, UINT64_MAX, &l->ino))
		return -EINVAL;
	skip_blanks(&p);
	if (get_s64(&p, 0, INT64_MAX, &l->start))
		return -EINVAL;
	skip_blanks(&p);
	if (!strncmp(p, "EOF", 3)) {
		l->end = -1;
		p += 3;
	} else if (get_s64(&p, l->start, INT64_MAX - 1, &l->end)) {
		return -EINVAL;
	}
	return end_of_line(&p);
}

/* "ID: LOCK" */
static int lock_entry(const char *p, void *elem)
{
	uint64_t id;
	skip_blanks(&p);
	if (get_u64(&p, 10, UINT64_MAX, &id) || expect_char(&p, ':'))
		return -EINVAL;
	return parse_lock_line(p, elem);
}

int proc_parse_locks(const char *buf, bool fdinfo, struct proc_lock **out, size_t *nr)
{
	return parse_lines(buf, fdinfo ? "lock:" : NULL, sizeof(**out), PROC_MAX_LOCKS, lock_entry,
			   (void **)out, nr);
}

/* ---- /proc/PID/cgroup (kernel/cgroup/cgroup.c: proc_cgroup_show) ------------------ */

bool proc_cgroup_ctrl_char(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	       c == '_' || c == '.' || c == '-' || c == '=' || c == ',';
}

void proc_cgroups_free(struct proc_cgroup *c, size_t nr)
{
	for (size_t i = 0; c && i < nr; i++) {
		free(c[i].controllers);
		free(c[i].path);
	}
	free(c);
}

/* One line at *pp into @e (strings malloc'd); *pp is left at the next line. */
static int cgroup_line(const char **pp, struct proc_cgroup *e)
{
	const char *p = *pp;
	uint64_t id;
	if (get_u64(&p, 10, 1u << 20, &id) || expect_char(&p, ':'))
		return -EINVAL;
	const char *ctl = p;
	while (proc_cgroup_ctrl_char(*p))
		p++;
	size_t clen = (size_t)(p - ctl);
	if (expect_char(&p, ':') || clen > PROC_MAX_CGROUP_CTRL || (id == 0) != (clen == 0) ||
	    *p != '/')
		return -EINVAL;
	const char *path = p;
	while (!is_eol(*p))
		p++;
	size_t plen = (size_t)(p - path);
	if (plen > PROC_MAX_CGROUP_PATH)
		return -EINVAL;
	e->hierarchy = (uint32_t)id;
	e->controllers = strndup(ctl, clen);
	e->path = strndup(path, plen);
	if (!e->controllers || !e->path)
		return -ENOMEM;
	*pp = next_line(p);
	return 0;
}

int proc_parse_cgroup(const char *buf, struct proc_cgroup **out, size_t *nr)
{
	struct proc_cgroup *v = NULL;
	size_t n = 0;
	int ret = 0;

	*out = NULL;
	*nr = 0;
	if (!buf)
		return -EINVAL;
	for (const char *p = buf; *p && !ret;) {
		if (n == PROC_MAX_CGROUPS) {
			ret = -EINVAL;
			break;
		}
		if (!v) {
			v = calloc(PROC_MAX_CGROUPS, sizeof(*v));
			if (!v)
				return -ENOMEM;
		}
		ret = cgroup_line(&p, &v[n]);
		n++; /* what was allocated is freed on failure */
		for (size_t k = 0; !ret && k + 1 < n; k++)
			if (v[k].hierarchy == v[n - 1].hierarchy)
				ret = -EINVAL;
	}
	if (ret) {
		proc_cgroups_free(v, n);
		return ret;
	}
	*out = v;
	*nr = n;
	return 0;
}

int proc_self_huge_kb(uint64_t addr, uint32_t *kb)
{
	struct proc_vma *v = NULL;
	size_t n = 0;
	int ret = -EIO;
	*kb = 0;
	for (int attempt = 0; attempt < 8 && ret; attempt++) {
		_cleanup_free_ char *buf = read_file_at(AT_FDCWD, "/proc/self/smaps", 1 << 28, NULL);
		if (!buf)
			return -errno;
		ret = proc_parse_smaps(buf, &v, &n);
	}
	if (ret)
		return ret;
	ret = -ENOENT;
	for (size_t i = 0; i < n && ret; i++)
		if (v[i].start <= addr && addr < v[i].end) {
			*kb = (v[i].vmflags & VMF_HT) ? v[i].page_kb : 0;
			ret = 0;
		}
	proc_vmas_free(v, n);
	return ret;
}

int proc_read_self_maps(struct proc_vma **v, size_t *n)
{
	/* The text comes in several reads; this process allocating between two of them
	 * (growing the buffer: a sanitizer's allocator maps memory) may show one area twice
	 * across the cut. The parser refuses that: read again. */
	int ret = -EIO;
	for (int attempt = 0; attempt < 8 && ret; attempt++) {
		_cleanup_free_ char *buf = read_file_at(AT_FDCWD, "/proc/self/maps", 1 << 26, NULL);
		if (!buf)
			return -errno;
		ret = proc_parse_smaps(buf, v, n);
	}
	return ret;
}
