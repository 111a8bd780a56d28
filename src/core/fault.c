/* See fault.h. */
#include <ctype.h>
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/fault.h"
#include "core/log.h"

#define POINT_MAX 96

static struct {
	bool read, list;
	char point[POINT_MAX];
	long nth; /* 0: every pass */
	long passes;
} f;

static void read_env(void)
{
	f.read = true;
	const char *v = getenv("STASIS_FAULT");
	if (!v || !*v)
		return;
	if (!strcmp(v, "list")) {
		f.list = true;
		return;
	}
	snprintf(f.point, sizeof(f.point), "%s", v);
	char *colon = strrchr(f.point, ':');
	if (colon && colon[1] && strspn(colon + 1, "0123456789") == strlen(colon + 1)) {
		f.nth = strtol(colon + 1, NULL, 10);
		*colon = '\0';
	}
}

int fault_at(const char *point, const char *detail)
{
	if (!f.read)
		read_env();
	if (!f.list && !f.point[0])
		return 0;
	char name[POINT_MAX];
	int n = snprintf(name, sizeof(name), "%s%s%s", point, detail ? ":" : "",
			 detail ? detail : "");
	for (int i = 0; i < n && i < (int)sizeof(name); i++)
		if (isspace((unsigned char)name[i]))
			name[i] = '-';
	if (f.list) {
		pr_warn("fault point %s", name);
		return 0;
	}
	if (strcmp(name, f.point) || (f.nth && ++f.passes != f.nth))
		return 0;
	pr_err("fault injected at %s", name);
	return -EIO;
}
