/* Pure policy code of the privileged helper: the /etc/subuid and /etc/subgid parser and
 * the newuidmap/newgidmap rule for which id ranges a user may map. No I/O: unit-tested
 * on strings (tests/unit/test_helper.c) and fuzzed with the request decoder. */
#ifndef STASIS_HELPER_POLICY_H
#define STASIS_HELPER_POLICY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "helper/proto.h"

/* Subordinate ids are read from files of at most this size, and at most this many
 * ranges per user are considered (more is refused, not truncated). */
#define SUBID_FILE_MAX (1 << 20)
#define SUBID_MAX_RANGES 1024

struct subid_range {
	uint32_t start, count;
};

/* The ranges of /etc/subuid or /etc/subgid text @buf that belong to the user @name (may
 * be NULL) or to the decimal @id: lines "OWNER:START:COUNT", OWNER a user name or a
 * uid. Malformed lines (wrong field count, non-decimal or out-of-range numbers, a zero
 * count, a range past 2^32) are skipped, as are blank lines and '#' comments. Returns
 * the number of ranges stored in @out, or -E2BIG if more than @max belong to the user. */
int subid_parse(const char *buf, const char *name, uint32_t id, struct subid_range *out,
		size_t max) __attribute__((warn_unused_result));

/* The one I/O function here: the ranges of @file (/etc/subuid or /etc/subgid, at most
 * SUBID_FILE_MAX bytes) that belong to @uid, by its passwd name or the number. Returns
 * the number of ranges (0 if the file does not exist), or -errno. */
int subid_read(const char *file, uint32_t uid, struct subid_range *out, size_t max)
	__attribute__((warn_unused_result));

/* Whether [first, first+count) lies within the union of @r (adjacent or overlapping
 * entries may together cover it). */
bool subid_covers(const struct subid_range *r, size_t n, uint32_t first, uint32_t count);

/* newuidmap's rule for an unprivileged user: every range's outside ids must lie within
 * the user's subordinate ids @sub, except that the user's own id @own may be mapped as
 * one range of count 1. 0, or -EPERM with the offending range in @why. *@used_subids
 * says whether some range was allowed through subordinate ids (newgidmap then leaves
 * setgroups alone; otherwise it must be "deny"). */
int idmap_permitted(const struct id_range *r, size_t n, uint32_t own,
		    const struct subid_range *sub, size_t nsub, bool *used_subids, char *why,
		    size_t whylen) __attribute__((warn_unused_result));


#endif
