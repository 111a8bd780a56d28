/* Pure policy code of the helper: see policy.h. */
#include "helper/policy.h"

#include <errno.h>
#include <fcntl.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/util.h"

/* A decimal number of [s, e) without sign or blanks, at most @max. */
static bool dec_field(const char *s, const char *e, uint64_t max, uint64_t *out)
{
	uint64_t v = 0;

	if (s == e || e - s > 20)
		return false;
	for (; s < e; s++) {
		if (*s < '0' || *s > '9')
			return false;
		v = v * 10 + (uint64_t)(*s - '0');
		if (v > max)
			return false;
	}
	*out = v;
	return true;
}

static bool owner_matches(const char *s, const char *e, const char *name, uint32_t id)
{
	uint64_t v;
	size_t n = (size_t)(e - s);

	if (name && strlen(name) == n && n && !memcmp(s, name, n))
		return true;
	return dec_field(s, e, UINT32_MAX, &v) && v == id;
}

int subid_parse(const char *buf, const char *name, uint32_t id, struct subid_range *out,
		size_t max)
{
	size_t nr = 0;

	for (const char *line = buf; *line;) {
		const char *end = strchrnul(line, '\n');
		const char *c1 = memchr(line, ':', (size_t)(end - line));
		const char *c2 = c1 ? memchr(c1 + 1, ':', (size_t)(end - c1 - 1)) : NULL;
		uint64_t start, count;

		if (c2 && line[0] != '#' && !memchr(c2 + 1, ':', (size_t)(end - c2 - 1)) &&
		    owner_matches(line, c1, name, id) && dec_field(c1 + 1, c2, UINT32_MAX, &start) &&
		    dec_field(c2 + 1, end, UINT32_MAX, &count) && count &&
		    start + count <= (uint64_t)UINT32_MAX + 1) {
			if (nr == max)
				return -E2BIG;
			out[nr].start = (uint32_t)start;
			out[nr].count = (uint32_t)count;
			nr++;
		}
		line = *end ? end + 1 : end;
	}
	return (int)nr;
}

int subid_read(const char *file, uint32_t uid, struct subid_range *out, size_t max)
{
	char pwbuf[4096];
	struct passwd pw, *pwp = NULL;
	_cleanup_free_ char *text = read_file_at(AT_FDCWD, file, SUBID_FILE_MAX, NULL);

	if (!text)
		return errno == ENOENT ? 0 : -errno;
	if (getpwuid_r(uid, &pw, pwbuf, sizeof(pwbuf), &pwp))
		pwp = NULL;
	return subid_parse(text, pwp ? pwp->pw_name : NULL, uid, out, max);
}

bool subid_covers(const struct subid_range *r, size_t n, uint32_t first, uint32_t count)
{
	uint64_t pos = first, end = (uint64_t)first + count;

	/* Each pass moves pos to the end of a range containing it, so a range helps at most
	 * once: n + 1 passes are enough. */
	for (size_t pass = 0; pos < end && pass <= n; pass++) {
		uint64_t next = pos;
		for (size_t i = 0; i < n; i++) {
			uint64_t s = r[i].start, e = s + r[i].count;
			if (s <= pos && pos < e && e > next)
				next = e;
		}
		if (next == pos)
			return false;
		pos = next;
	}
	return pos >= end;
}

int idmap_permitted(const struct id_range *r, size_t n, uint32_t own,
		    const struct subid_range *sub, size_t nsub, bool *used_subids, char *why,
		    size_t whylen)
{
	bool own_used = false;

	*used_subids = false;
	for (size_t i = 0; i < n; i++) {
		if (r[i].count && subid_covers(sub, nsub, r[i].outside, r[i].count)) {
			*used_subids = true;
			continue;
		}
		if (r[i].count == 1 && r[i].outside == own && !own_used) {
			own_used = true;
			continue;
		}
		if (why && whylen)
			snprintf(why, whylen,
				 "range %u %u %u: outside ids %u..%llu are neither the caller's own "
				 "id %u nor its subordinate ids",
				 r[i].inside, r[i].outside, r[i].count, r[i].outside,
				 (unsigned long long)r[i].outside + r[i].count - 1, own);
		return -EPERM;
	}
	return 0;
}
