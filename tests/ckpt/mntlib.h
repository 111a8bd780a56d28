/* Helpers of the mount namespace tests (ns_mnt, ns_mnt_nested): a normalized picture of
 * /proc/self/mountinfo that must be identical before the dump and after the restore.
 * Mount ids, peer group ids and device numbers change with a restore; they are replaced
 * by the index of the first mount that had them, so the picture still says which mount
 * sits on which, which mounts share a superblock, and which are peers or slaves. */
#ifndef STASIS_TEST_MNTLIB_H
#define STASIS_TEST_MNTLIB_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MNT_PIC_MAX 256

static int mnt_pic_index(char ids[][32], int *n, const char *id)
{
	for (int i = 0; i < *n; i++)
		if (!strcmp(ids[i], id))
			return i;
	if (*n < MNT_PIC_MAX)
		snprintf(ids[(*n)++], 32, "%s", id);
	return *n - 1;
}

/* The picture as one malloc'd string, or NULL. Lines look like
 * "mnt1 on mnt0 dev2 /sub /x/ro ro,nosuid peer- master3 - tmpfs tmpfs rw,size=1024k". */
static inline char *mnt_picture(void)
{
	static char ids[MNT_PIC_MAX][32], devs[MNT_PIC_MAX][32], groups[MNT_PIC_MAX][32];
	int nids = 0, ndevs = 0, ngroups = 0;
	FILE *f = fopen("/proc/self/mountinfo", "r");
	if (!f)
		return NULL;
	size_t cap = 1 << 16, len = 0;
	char *out = malloc(cap), line[8192];
	if (!out) {
		fclose(f);
		return NULL;
	}
	out[0] = '\0';
	while (fgets(line, sizeof(line), f)) {
		char *save = NULL, *tok[64];
		int nt = 0;
		for (char *t = strtok_r(line, " \n", &save); t && nt < 64; t = strtok_r(NULL, " \n", &save))
			tok[nt++] = t;
		if (nt < 10)
			continue;
		char opt[256] = "";
		int k = 6;
		for (; k < nt && strcmp(tok[k], "-"); k++) {
			char *colon = strchr(tok[k], ':');
			char one[64];
			if (colon) {
				*colon = '\0';
				snprintf(one, sizeof(one), " %s%d", tok[k],
					 mnt_pic_index(groups, &ngroups, colon + 1));
			} else {
				snprintf(one, sizeof(one), " %s", tok[k]);
			}
			strncat(opt, one, sizeof(opt) - strlen(opt) - 1);
		}
		if (k + 3 >= nt + 1)
			continue;
		int id = mnt_pic_index(ids, &nids, tok[0]);
		int parent = mnt_pic_index(ids, &nids, tok[1]);
		int dev = mnt_pic_index(devs, &ndevs, tok[2]);
		char one[12288];
		int n = snprintf(one, sizeof(one), "mnt%d on mnt%d dev%d %s %s %s%s - %s %s %s\n", id,
				 parent, dev, tok[3], tok[4], tok[5], opt, tok[k + 1],
				 k + 2 < nt ? tok[k + 2] : "", k + 3 < nt ? tok[k + 3] : "");
		if (len + (size_t)n + 1 > cap) {
			cap = (cap + (size_t)n) * 2;
			char *t = realloc(out, cap);
			if (!t)
				break;
			out = t;
		}
		memcpy(out + len, one, (size_t)n + 1);
		len += (size_t)n;
	}
	fclose(f);
	return out;
}

/* The first line that differs between two pictures (for the failure message). */
static inline const char *mnt_picture_diff(const char *a, const char *b, char *buf, size_t size)
{
	while (*a && *b) {
		size_t la = strcspn(a, "\n"), lb = strcspn(b, "\n");
		if (la != lb || memcmp(a, b, la)) {
			snprintf(buf, size, "'%.*s' became '%.*s'", (int)la, a, (int)lb, b);
			return buf;
		}
		a += la + (a[la] ? 1 : 0);
		b += lb + (b[lb] ? 1 : 0);
	}
	snprintf(buf, size, "%s", *a ? "a mount is missing" : *b ? "an extra mount" : "same");
	return buf;
}

#endif
