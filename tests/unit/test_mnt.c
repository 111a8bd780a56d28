/* Unit tests of the mountinfo parser (src/proc/mountinfo.c) on fixtures captured on this
 * machine (tests/fixtures/proc/capture-mountinfo.sh) and on hand-made malformed lines,
 * and of the --external option syntax (src/ns/mnt.c). */
#include "unit.h"

#include "core/log.h"
#include "ns/mnt.h"
#include "proc/mountinfo.h"

static const struct mountinfo *by_suffix(const struct mountinfo *m, size_t n, const char *sfx)
{
	for (size_t i = 0; i < n; i++)
		if (str_ends(m[i].mountpoint, sfx))
			return &m[i];
	return NULL;
}

static void test_host_fixture(void)
{
	_cleanup_free_ char *buf = unit_fixture("proc/mountinfo", NULL);
	struct mountinfo *m;
	size_t n;
	CHECK(buf != NULL);
	CHECK_EQ(mountinfo_parse(buf, &m, &n), 0);
	CHECK(n >= 5);
	const struct mountinfo *root = NULL;
	for (size_t i = 0; i < n; i++) {
		CHECK(m[i].mountpoint[0] == '/' && m[i].root[0] == '/' && *m[i].fstype);
		if (!strcmp(m[i].mountpoint, "/"))
			root = &m[i];
	}
	CHECK(root != NULL);
	if (root) {
		CHECK_STREQ(root->fstype, "ext4");
		CHECK_EQ(root->flags, MNT_F_RELATIME);
		CHECK(!root->shared && !root->master && !root->unbindable);
	}
	mountinfo_free(m, n);
}

static void test_ns_fixture(void)
{
	_cleanup_free_ char *buf = unit_fixture("proc/mountinfo-ns", NULL);
	struct mountinfo *m;
	size_t n;
	CHECK(buf != NULL);
	CHECK_EQ(mountinfo_parse(buf, &m, &n), 0);
	const struct mountinfo *sh = by_suffix(m, n, "/sh"), *sl = by_suffix(m, n, "/sl");
	const struct mountinfo *ub = by_suffix(m, n, "/ub"), *ro = by_suffix(m, n, "/ro");
	const struct mountinfo *sp = by_suffix(m, n, "/a b\tc\\d");
	CHECK(sh && sl && ub && ro && sp);
	if (sh && sl && ub && ro && sp) {
		CHECK(sh->shared && !sh->master);
		CHECK_EQ(sl->master, sh->shared);
		CHECK(!sl->shared);
		CHECK_EQ(ro->shared, sh->shared);
		CHECK_EQ(ro->flags, MNT_F_RDONLY | MNT_F_NOSUID | MNT_F_RELATIME);
		CHECK(ub->unbindable);
		CHECK_EQ(ub->flags, MNT_F_NODEV | MNT_F_NOEXEC | MNT_F_NOATIME);
		CHECK_STREQ(sh->fstype, "tmpfs");
		CHECK_STREQ(sh->source, "stasis-sh");
		CHECK_STREQ(sh->sb_opts, "rw,size=1024k,mode=755");
		CHECK_STREQ(sh->root, "/");
		CHECK_EQ(sh->major, 0);
		CHECK_STREQ(sp->source, "stasis-space");
	}
	mountinfo_free(m, n);
}

/* A bound namespace file (a pin) parses; a root that is not a path is refused for any
 * other fs type. */
static void test_nsfs(void)
{
	struct mountinfo *m;
	size_t n;
	CHECK_EQ(mountinfo_parse("1 0 8:1 / / rw - ext4 /dev/sda1 rw\n"
				 "60 1 0:4 uts:[4026532281] /tmp/pin rw shared:1 - nsfs nsfs rw\n"
				 "61 1 0:22 / /proc rw - proc proc rw\n",
				 &m, &n),
		 0);
	CHECK_EQ(n, 3);
	if (n == 3) {
		CHECK(!strcmp(m[1].root, "uts:[4026532281]") && !strcmp(m[1].fstype, "nsfs"));
		mountinfo_free(m, n);
	}
	CHECK_EQ(mountinfo_parse("60 1 0:4 uts:[4026532281] /tmp/pin rw - tmpfs x rw\n", &m, &n),
		 -EINVAL);
}

static void test_inline(void)
{
	struct mountinfo *m;
	size_t n;
	CHECK_EQ(mountinfo_parse("36 35 98:0 /mnt1 /mnt2 rw,noatime master:1 - ext3 /dev/root "
				 "rw,errors=continue\n",
				 &m, &n),
		 0);
	CHECK_EQ(n, 1);
	if (n == 1) {
		CHECK_EQ(m[0].id, 36);
		CHECK_EQ(m[0].parent, 35);
		CHECK_EQ(m[0].major, 98);
		CHECK_STREQ(m[0].root, "/mnt1");
		CHECK_EQ(m[0].master, 1);
		CHECK_EQ(m[0].flags, MNT_F_NOATIME);
	}
	mountinfo_free(m, n);
	/* strictatime is printed as no atime option; several optional fields */
	CHECK_EQ(mountinfo_parse("1 0 0:5 / / rw shared:3 master:2 propagate_from:2 - tmpfs x rw",
				 &m, &n),
		 0);
	CHECK(n == 1 && m[0].flags == MNT_F_STRICTATIME && m[0].shared == 3 && m[0].master == 2);
	mountinfo_free(m, n);
	/* a pinned namespace (restore --pin-ns, mount --bind /proc/PID/ns/mnt FILE) */
	CHECK_EQ(mountinfo_parse("67 27 0:4 mnt:[4026532181] /tmp/pins/mnt-42 rw - nsfs nsfs rw\n",
				 &m, &n),
		 0);
	CHECK(n == 1 && !strcmp(m[0].root, "mnt:[4026532181]") && !strcmp(m[0].fstype, "nsfs"));
	mountinfo_free(m, n);
}

static void test_malformed(void)
{
	static const char *const bad[] = {
		"",
		"\n",
		"36 35 98:0 /a /b rw - ext3",                         /* no super options */
		"36 35 98:0 /a /b rw master:1 ext3 /dev/root rw",     /* no separator */
		"36 35 98 /a /b rw - ext3 /dev/root rw",              /* no minor */
		"36 35 98:0 a /b rw - ext3 /dev/root rw",             /* relative root */
		"36 35 0:4 uts:[1] /b rw - ext3 /dev/root rw",        /* nsfs root, not nsfs */
		"36 35 98:0 /a b rw - ext3 /dev/root rw",             /* relative mount point */
		"36 35 98:0 /a /b rw,bogus - ext3 /dev/root rw",      /* unknown option */
		"36 35 98:0 /a /b nosuid - ext3 /dev/root rw",        /* neither rw nor ro */
		"36 35 98:0 /a /b rw, - ext3 /dev/root rw",           /* trailing comma */
		"36 35 98:0 /a\\04 /b rw - ext3 /dev/root rw",        /* short escape */
		"36 35 98:0 /a\\000 /b rw - ext3 /dev/root rw",       /* NUL escape */
		"36 35 98:0 /a\\999 /b rw - ext3 /dev/root rw",       /* not octal */
		"36 35 98:0 /a /b rw shared:x - ext3 /dev/root rw",   /* bad group */
		"36 35 98:0 /a /b rw shared:0 - ext3 /dev/root rw",   /* group 0 */
		"36 35 98:0 /a /b rw - ext3 /dev/root rw extra",      /* extra field */
		"36  35 98:0 /a /b rw - ext3 /dev/root rw",           /* empty field */
		"99999999999 35 98:0 /a /b rw - ext3 /dev/root rw",   /* id overflow */
		"36 35 98:0 /a /b rw - ext3 /dev/root rw\n\n",        /* empty line */
	};
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
		struct mountinfo *m = (void *)1;
		size_t n = 7;
		int r = mountinfo_parse(bad[i], &m, &n);
		if (r != -EINVAL || m || n)
			UNIT_FAIL("accepted malformed line %zu: '%s'", i, bad[i]);
		unit_checks++;
	}
	/* too many entries */
	size_t cap = (MNTINFO_MAX_ENTRIES + 1) * 40;
	char *big = malloc(cap), *p = big;
	CHECK(big != NULL);
	if (!big)
		return;
	for (int i = 0; i <= MNTINFO_MAX_ENTRIES; i++)
		p += sprintf(p, "%d 1 0:1 / /x rw - tmpfs t rw\n", i + 2);
	struct mountinfo *m;
	size_t n;
	CHECK_EQ(mountinfo_parse(big, &m, &n), -EINVAL);
	free(big);
}

static void test_externals(void)
{
	char *a, *b;
	CHECK_EQ(mnt_parse_external("mnt[/x/y]:key1", true, &a, &b), 0);
	CHECK_STREQ(a, "/x/y");
	CHECK_STREQ(b, "key1");
	free(a);
	free(b);
	/* a mount point may contain "]:" (the last one splits at dump) */
	CHECK_EQ(mnt_parse_external("mnt[/a]:b]:k", true, &a, &b), 0);
	CHECK_STREQ(a, "/a]:b");
	CHECK_STREQ(b, "k");
	free(a);
	free(b);
	CHECK_EQ(mnt_parse_external("mnt[k]:/host/p]:q", false, &a, &b), 0);
	CHECK_STREQ(a, "k");
	CHECK_STREQ(b, "/host/p]:q");
	free(a);
	free(b);
	static const char *const bad_dump[] = { "mnt[]:k", "mnt[/x]:", "mnt[x]:k", "dev[/x]:k",
						"mnt[/x/../y]:k", "mnt[/x]k", "mnt[/x//y]:k" };
	for (size_t i = 0; i < ARRAY_SIZE(bad_dump); i++) {
		CHECK_EQ(mnt_parse_external(bad_dump[i], true, &a, &b), -EINVAL);
		CHECK(!a && !b);
	}
	CHECK_EQ(mnt_parse_external("mnt[k]:relative", false, &a, &b), -EINVAL);
	CHECK_EQ(mnt_parse_external("mnt[k]:/a/./b", false, &a, &b), -EINVAL);
}

int main(void)
{
	if (log_init("/dev/null", LOG_ERR)) /* the expected errors stay quiet */
		return 1;
	RUN(test_host_fixture);
	RUN(test_ns_fixture);
	RUN(test_inline);
	RUN(test_nsfs);
	RUN(test_malformed);
	RUN(test_externals);
	return unit_done();
}
