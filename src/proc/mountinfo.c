/* Parser of /proc/PID/mountinfo. Line format (proc(5)):
 *   ID PARENT MAJ:MIN ROOT MOUNTPOINT MOUNT-OPTS [OPTIONAL...] - FSTYPE SOURCE SUPER-OPTS
 * Fields are separated by one space; strings are escaped by the kernel (\040 etc.). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "proc/mountinfo.h"

#define MAX_LINE (4 * MNTINFO_MAX_PATH + 4096)

/* The next space-separated field of [*p, end): its bounds; false if none. */
static bool next_field(const char **p, const char *end, const char **f, size_t *len)
{
	if (*p >= end || **p == ' ')
		return false;
	const char *s = *p;
	while (*p < end && **p != ' ')
		(*p)++;
	*f = s;
	*len = (size_t)(*p - s);
	if (*p < end)
		(*p)++; /* the separator */
	return true;
}

static bool is_odigit(char c)
{
	return c >= '0' && c <= '7';
}

/* Unescape \ooo sequences into a new string; NULL on malformed or oversized input. */
static char *unescape(const char *s, size_t len)
{
	if (len == 0 || len > MNTINFO_MAX_PATH)
		return NULL;
	char *out = malloc(len + 1), *o = out;
	if (!out)
		return NULL;
	for (size_t i = 0; i < len; i++) {
		if (s[i] != '\\') {
			*o++ = s[i];
			continue;
		}
		if (i + 3 >= len || !is_odigit(s[i + 1]) || !is_odigit(s[i + 2]) ||
		    !is_odigit(s[i + 3])) {
			free(out);
			return NULL;
		}
		int v = (s[i + 1] - '0') * 64 + (s[i + 2] - '0') * 8 + (s[i + 3] - '0');
		if (v == 0 || v > 255) {
			free(out);
			return NULL;
		}
		*o++ = (char)v;
		i += 3;
	}
	*o = '\0';
	return out;
}

static bool parse_u32(const char *s, size_t len, uint32_t *out)
{
	uint64_t v = 0;
	if (!len || len > 10)
		return false;
	for (size_t i = 0; i < len; i++) {
		if (s[i] < '0' || s[i] > '9')
			return false;
		v = v * 10 + (uint64_t)(s[i] - '0');
	}
	if (v > UINT32_MAX)
		return false;
	*out = (uint32_t)v;
	return true;
}

static bool field_is(const char *f, size_t len, const char *word)
{
	return strlen(word) == len && !memcmp(f, word, len);
}

/* "rw,nosuid,nodev,relatime" -> MNT_F_* (the kernel prints the atime mode as one of
 * noatime/relatime, or nothing for strictatime). */
static int parse_mnt_opts(const char *s, size_t len, uint32_t *flags)
{
	static const struct {
		const char *name;
		uint32_t set;
	} opts[] = {
		{ "rw", 0 },
		{ "ro", MNT_F_RDONLY },
		{ "nosuid", MNT_F_NOSUID },
		{ "nodev", MNT_F_NODEV },
		{ "noexec", MNT_F_NOEXEC },
		{ "noatime", MNT_F_NOATIME },
		{ "relatime", MNT_F_RELATIME },
		{ "nodiratime", MNT_F_NODIRATIME },
		{ "nosymfollow", MNT_F_NOSYMFOLLOW },
		{ "idmapped", MNT_F_IDMAP },
	};
	bool atime = false, rw = false;
	uint32_t fl = 0;
	const char *end = s + len;
	while (s < end) {
		const char *c = memchr(s, ',', (size_t)(end - s));
		size_t n = c ? (size_t)(c - s) : (size_t)(end - s);
		size_t k;
		for (k = 0; k < ARRAY_SIZE(opts); k++)
			if (field_is(s, n, opts[k].name))
				break;
		if (k == ARRAY_SIZE(opts))
			return -EINVAL;
		if (k <= 1)
			rw = true;
		if (!strcmp(opts[k].name, "noatime") || !strcmp(opts[k].name, "relatime"))
			atime = true;
		fl |= opts[k].set;
		s += n + (c ? 1 : 0);
		if (c && s == end)
			return -EINVAL; /* trailing comma */
	}
	if (!rw)
		return -EINVAL;
	if (!atime)
		fl |= MNT_F_STRICTATIME;
	*flags = fl;
	return 0;
}

static int parse_optional(const char *f, size_t len, struct mountinfo *m)
{
	const char *colon = memchr(f, ':', len);
	if (!colon)
		return field_is(f, len, "unbindable") ? (m->unbindable = true, 0) : 0;
	size_t tl = (size_t)(colon - f);
	uint32_t v;
	if (!parse_u32(colon + 1, len - tl - 1, &v) || !v)
		return -EINVAL;
	if (field_is(f, tl, "shared"))
		m->shared = v;
	else if (field_is(f, tl, "master"))
		m->master = v;
	/* propagate_from and tags of newer kernels: not needed */
	return 0;
}

static void entry_free(struct mountinfo *m)
{
	free(m->root);
	free(m->mountpoint);
	free(m->fstype);
	free(m->source);
	free(m->sb_opts);
}

static int parse_line(const char *p, const char *end, struct mountinfo *m)
{
	const char *f;
	size_t len;
	memset(m, 0, sizeof(*m));
	if (!next_field(&p, end, &f, &len) || !parse_u32(f, len, &m->id) ||
	    !next_field(&p, end, &f, &len) || !parse_u32(f, len, &m->parent))
		return -EINVAL;
	if (!next_field(&p, end, &f, &len))
		return -EINVAL;
	const char *colon = memchr(f, ':', len);
	if (!colon || !parse_u32(f, (size_t)(colon - f), &m->major) ||
	    !parse_u32(colon + 1, len - (size_t)(colon - f) - 1, &m->minor))
		return -EINVAL;
	if (!next_field(&p, end, &f, &len) || !(m->root = unescape(f, len)))
		return -EINVAL;
	if (!next_field(&p, end, &f, &len) || !(m->mountpoint = unescape(f, len)))
		return -EINVAL;
	if (m->mountpoint[0] != '/')
		return -EINVAL;
	if (!next_field(&p, end, &f, &len) || parse_mnt_opts(f, len, &m->flags))
		return -EINVAL;
	for (int k = 0;; k++) {
		if (k > 32 || !next_field(&p, end, &f, &len))
			return -EINVAL;
		if (field_is(f, len, "-"))
			break;
		if (parse_optional(f, len, m))
			return -EINVAL;
	}
	if (!next_field(&p, end, &f, &len) || !(m->fstype = unescape(f, len)) ||
	    !next_field(&p, end, &f, &len) || !(m->source = unescape(f, len)) ||
	    !next_field(&p, end, &f, &len) || !(m->sb_opts = unescape(f, len)))
		return -EINVAL;
	/* a bind of a namespace file (a pinned namespace) has the nsfs dentry's name as its
	 * root, "mnt:[4026532181]"; every other root is a path */
	if (m->root[0] != '/' && strcmp(m->fstype, "nsfs"))
		return -EINVAL;
	return p == end ? 0 : -EINVAL;
}

void mountinfo_free(struct mountinfo *m, size_t n)
{
	for (size_t i = 0; m && i < n; i++)
		entry_free(&m[i]);
	free(m);
}

int mountinfo_parse(const char *buf, struct mountinfo **out, size_t *n)
{
	struct mountinfo *v = NULL;
	size_t nv = 0, cap = 0;
	*out = NULL;
	*n = 0;
	if (!buf)
		return -EINVAL;
	for (const char *p = buf; *p;) {
		const char *nl = strchr(p, '\n');
		const char *end = nl ? nl : p + strlen(p);
		if (end - p > MAX_LINE || end == p || nv >= MNTINFO_MAX_ENTRIES)
			goto bad;
		if (nv == cap) {
			size_t nc = cap ? cap * 2 : 32;
			struct mountinfo *t = realloc(v, nc * sizeof(*v));
			if (!t) {
				mountinfo_free(v, nv);
				return -ENOMEM;
			}
			v = t;
			cap = nc;
		}
		if (parse_line(p, end, &v[nv])) {
			entry_free(&v[nv]);
			goto bad;
		}
		nv++;
		p = nl ? nl + 1 : end;
	}
	if (!nv)
		goto bad;
	*out = v;
	*n = nv;
	return 0;
bad:
	mountinfo_free(v, nv);
	return -EINVAL;
}
