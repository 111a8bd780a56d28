/* Unit tests of the /proc/PID/cgroup parser (src/proc/parse.c) on fixtures captured on
 * this machine (tests/fixtures/proc/capture-cgroup.sh) and hand-made lines, and of the
 * pure parts of src/ns/cgroup.c: a cgroup namespace's root from the two views, path checks,
 * v1 mount options, the root of a fresh cgroup mount, image validation, --cgroup-root. */
#include "unit.h"

#include "ns/cgroup.h"
#include "core/log.h"
#include "proc/parse.h"

static const struct proc_cgroup *by_hier(const struct proc_cgroup *v, size_t n, uint32_t h)
{
	for (size_t i = 0; i < n; i++)
		if (v[i].hierarchy == h)
			return &v[i];
	return NULL;
}

static void test_fixtures(void)
{
	_cleanup_free_ char *host = unit_fixture("proc/cgroup", NULL);
	_cleanup_free_ char *in = unit_fixture("proc/cgroup-inside", NULL);
	_cleanup_free_ char *out = unit_fixture("proc/cgroup-outside", NULL);
	struct proc_cgroup *h, *vi, *vo;
	size_t nh, ni, no;
	CHECK(host && in && out);
	if (!host || !in || !out)
		return;
	CHECK_EQ(proc_parse_cgroup(host, &h, &nh), 0);
	CHECK_EQ(proc_parse_cgroup(in, &vi, &ni), 0);
	CHECK_EQ(proc_parse_cgroup(out, &vo, &no), 0);
	CHECK(nh >= 1 && ni == no && ni == nh);
	const struct proc_cgroup *v2 = by_hier(h, nh, 0);
	CHECK(v2 && !strcmp(v2->controllers, "") && v2->path[0] == '/');
	/* the namespace's root from the two views: A (the fixture's stasis-fixture-N) in
	 * cgroup v2, where each v1 hierarchy's cgroup was at the unshare */
	for (size_t i = 0; i < no; i++) {
		const struct proc_cgroup *o = &vo[i], *x = by_hier(vi, ni, o->hierarchy);
		char root[PROC_MAX_CGROUP_PATH + 1];
		CHECK(x && !strcmp(x->controllers, o->controllers));
		if (!x)
			continue;
		CHECK_EQ(cgroup_ns_root(o->path, x->path, root, sizeof(root)), 0);
		if (o->hierarchy == 0) {
			CHECK_STREQ(x->path, "/B");
			CHECK(str_starts(root, "/stasis-fixture-") && !strchr(root + 1, '/'));
		} else {
			CHECK_STREQ(root, o->path); /* it sits at its namespace's root */
		}
	}
	proc_cgroups_free(h, nh);
	proc_cgroups_free(vi, ni);
	proc_cgroups_free(vo, no);
}

static void test_parse_inline(void)
{
	static const char *const bad[] = {
		"0::\n",                    /* no path */
		"0::B\n",                   /* relative */
		"x::/\n",                   /* id */
		"0:pids:/\n",               /* v2 with controllers */
		"3::/\n",                   /* v1 without */
		"3:pi ds:/\n",              /* a blank in the controllers */
		"3:pids/\n",                /* one colon */
		"0::/\n0::/a\n",            /* a hierarchy twice */
		"99999999999::/\n",         /* id out of range */
		"\n",                       /* an empty line */
	};
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
		struct proc_cgroup *v = (void *)1;
		size_t n = 7;
		CHECK_EQ(proc_parse_cgroup(bad[i], &v, &n), -EINVAL);
		CHECK(v == NULL && n == 0);
	}
	struct proc_cgroup *v;
	size_t n;
	CHECK_EQ(proc_parse_cgroup("", &v, &n), 0);
	CHECK(v == NULL && n == 0);
	CHECK_EQ(proc_parse_cgroup("12:cpu,cpuacct:/a:b c\n0::/..\n1:name=systemd:/x", &v, &n), 0);
	CHECK_EQ(n, 3);
	if (n == 3) {
		CHECK_EQ(v[0].hierarchy, 12);
		CHECK_STREQ(v[0].controllers, "cpu,cpuacct");
		CHECK_STREQ(v[0].path, "/a:b c"); /* everything after the second colon */
		CHECK_STREQ(v[1].path, "/..");   /* outside the reader's root: kept verbatim */
		CHECK_STREQ(v[2].controllers, "name=systemd");
		CHECK_STREQ(v[2].path, "/x");
	}
	proc_cgroups_free(v, n);
	/* bounds: 64 lines, 4095-byte paths */
	char *big = malloc(70 * 16 + 4200);
	CHECK(big != NULL);
	if (!big)
		return;
	big[0] = '\0';
	for (int i = 0; i < 65; i++)
		sprintf(big + strlen(big), "%d:c%d:/\n", i + 1, i);
	CHECK_EQ(proc_parse_cgroup(big, &v, &n), -EINVAL);
	strcpy(big, "0::/");
	memset(big + 4, 'a', 4094); /* a path of 4095 bytes */
	big[4098] = '\0';
	CHECK_EQ(proc_parse_cgroup(big, &v, &n), 0);
	proc_cgroups_free(v, n);
	strcat(big, "b");
	CHECK_EQ(proc_parse_cgroup(big, &v, &n), -EINVAL);
	free(big);
}

static void test_ns_root(void)
{
	char r[64];
	CHECK_EQ(cgroup_ns_root("/a/b/c", "/b/c", r, sizeof(r)), 0);
	CHECK_STREQ(r, "/a");
	CHECK_EQ(cgroup_ns_root("/a/b", "/", r, sizeof(r)), 0);
	CHECK_STREQ(r, "/a/b");
	CHECK_EQ(cgroup_ns_root("/a", "/a", r, sizeof(r)), 0);
	CHECK_STREQ(r, "/");
	CHECK_EQ(cgroup_ns_root("/", "/", r, sizeof(r)), 0);
	CHECK_STREQ(r, "/");
	CHECK_EQ(cgroup_ns_root("/ab/c", "/b/c", r, sizeof(r)), -EINVAL); /* not at a boundary */
	CHECK_EQ(cgroup_ns_root("/a/b", "/c", r, sizeof(r)), -EINVAL);
	CHECK_EQ(cgroup_ns_root("/a", "/a/b", r, sizeof(r)), -EINVAL);
	CHECK_EQ(cgroup_ns_root("/a/b", "/../b", r, sizeof(r)), -ERANGE);
	CHECK_EQ(cgroup_ns_root("/a/b", "/..", r, sizeof(r)), -ERANGE);
	CHECK_EQ(cgroup_ns_root("/../a", "/a", r, sizeof(r)), -EINVAL); /* outside the dumper's */
	CHECK_EQ(cgroup_ns_root("/a//b", "/b", r, sizeof(r)), -EINVAL);
	CHECK_EQ(cgroup_ns_root("/aaaa/b", "/b", r, 5), -ENAMETOOLONG);
}

static void test_paths_opts(void)
{
	CHECK(cgroup_path_is_clean("/"));
	CHECK(cgroup_path_is_clean("/a/b c/d:e"));
	CHECK(!cgroup_path_is_clean(""));
	CHECK(!cgroup_path_is_clean(NULL));
	CHECK(!cgroup_path_is_clean("a"));
	CHECK(!cgroup_path_is_clean("/a/"));
	CHECK(!cgroup_path_is_clean("//a"));
	CHECK(!cgroup_path_is_clean("/a/./b"));
	CHECK(!cgroup_path_is_clean("/a/.."));
	CHECK(!cgroup_path_is_clean("/../etc"));
	CHECK(cgroup_path_is_clean("/..a/b..")); /* names, not components */
	char *big = malloc(4097);
	CHECK(big != NULL);
	if (big) {
		big[0] = '/';
		memset(big + 1, 'a', 4095);
		big[4096] = '\0';
		CHECK(!cgroup_path_is_clean(big));
		big[4095] = '\0';
		CHECK(cgroup_path_is_clean(big));
		free(big);
	}
	CHECK(cgroup_opts_have("rw,cpu,cpuacct", "cpu,cpuacct"));
	CHECK(cgroup_opts_have("rw,cpuacct,cpu", "cpu"));
	CHECK(!cgroup_opts_have("rw,cpuacct", "cpu"));
	CHECK(cgroup_opts_have("rw,name=systemd", "name=systemd"));
	CHECK(!cgroup_opts_have("rw,name=systemd", ""));
}

static CgroupNsRoot *mk_root(uint32_t h, const char *ctl, const char *root)
{
	CgroupNsRoot *r = malloc(sizeof(*r));
	cgroup_ns_root__init(r);
	r->hierarchy = h;
	r->controllers = strdup(ctl);
	r->root = strdup(root);
	return r;
}

static void test_mount_root(void)
{
	CgroupNs ns = CGROUP_NS__INIT;
	CgroupNsRoot *roots[2] = { mk_root(0, "", "/A"), mk_root(4, "cpu,cpuacct", "/") };
	ns.roots = roots;
	ns.n_roots = 2;
	char r[64];
	CHECK_EQ(cgroup_mount_root(NULL, "/m", "cgroup2", "rw", "/A/x", r, sizeof(r)), 0);
	CHECK_STREQ(r, "/A/x");
	CHECK_EQ(cgroup_mount_root(&ns, "/m", "cgroup2", "rw", "/A", r, sizeof(r)), 0);
	CHECK_STREQ(r, "/");
	CHECK_EQ(cgroup_mount_root(&ns, "/m", "cgroup2", "rw", "/A/x/y", r, sizeof(r)), 0);
	CHECK_STREQ(r, "/x/y");
	CHECK_EQ(cgroup_mount_root(&ns, "/m", "cgroup", "rw,cpuacct,cpu", "/z", r, sizeof(r)), 0);
	CHECK_STREQ(r, "/z");
	/* above the namespace's root, a sibling sharing a prefix, an unknown hierarchy */
	CHECK_EQ(cgroup_mount_root(&ns, "/m", "cgroup2", "rw", "/", r, sizeof(r)), -EOPNOTSUPP);
	CHECK_EQ(cgroup_mount_root(&ns, "/m", "cgroup2", "rw", "/AB", r, sizeof(r)), -EOPNOTSUPP);
	CHECK_EQ(cgroup_mount_root(&ns, "/m", "cgroup", "rw,pids", "/", r, sizeof(r)),
		 -EOPNOTSUPP);
	for (int i = 0; i < 2; i++)
		cgroup_ns_root__free_unpacked(roots[i], NULL);
}

static void test_validate(void)
{
	Core core = CORE__INIT;
	CgroupNs ns = CGROUP_NS__INIT;
	const CgroupNs *cns = NULL;
	CgroupEntry e = CGROUP_ENTRY__INIT;
	CgroupEntry *ents[1] = { &e };
	e.hierarchy = 0;
	e.controllers = (char *)"";
	e.path = (char *)"/A/B";
	core.cgroups = ents;
	core.n_cgroups = 1;
	CHECK_EQ(cgroup_validate(&core, cns, 42), 0);
	e.path = (char *)"/A/../../etc";
	CHECK_EQ(cgroup_validate(&core, cns, 42), -EINVAL);
	e.path = (char *)"/A";
	e.controllers = (char *)"pids";
	CHECK_EQ(cgroup_validate(&core, cns, 42), -EINVAL); /* v2 with controllers */
	e.controllers = (char *)"";
	cns = &ns;
	CHECK_EQ(cgroup_validate(&core, cns, 42), -EINVAL); /* no root */
	CgroupNsRoot *roots[2] = { mk_root(0, "", "/A"), mk_root(3, "pids", "/") };
	ns.roots = roots;
	ns.n_roots = 2;
	CHECK_EQ(cgroup_validate(&core, cns, 42), 0);
	static const char *const bad[] = { "A", "/A/..", "/A/./B", "/A//B", "", "/../A" };
	log_reset_first_error();
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
		char *keep = roots[1]->root;
		roots[1]->root = (char *)bad[i];
		CHECK_EQ(cgroup_validate(&core, cns, 42), -EINVAL);
		CHECK(strstr(log_first_error(), "bad root") != NULL);
		log_reset_first_error();
		roots[1]->root = keep;
	}
	roots[1]->hierarchy = 0; /* twice */
	CHECK_EQ(cgroup_validate(&core, cns, 42), -EINVAL);
	roots[1]->hierarchy = 3;
	free(roots[1]->controllers);
	roots[1]->controllers = strdup("pids;rm");
	CHECK_EQ(cgroup_validate(&core, cns, 42), -EINVAL);
	for (int i = 0; i < 2; i++)
		cgroup_ns_root__free_unpacked(roots[i], NULL);
}

static CgroupEntry *mk_ent(uint32_t h, const char *ctrl, const char *path)
{
	CgroupEntry *e = malloc(sizeof(*e));
	cgroup_entry__init(e);
	e->hierarchy = h;
	e->controllers = strdup(ctrl);
	e->path = strdup(path);
	return e;
}

static CgroupProps *mk_props(uint32_t h, const char *ctrl, const char *path)
{
	CgroupProps *p = malloc(sizeof(*p));
	cgroup_props__init(p);
	p->hierarchy = h;
	p->controllers = strdup(ctrl);
	p->path = strdup(path);
	return p;
}

/* --cgroup-root: the values, then a tree of three (root R, child C in a cgroup namespace
 * of its own with a cgroup mount, grandchild G) moved. */
static void test_remap(void)
{
	char ctrl[64];
	const char *path;
	CHECK_EQ(cgroup_root_parse("/new", ctrl, sizeof(ctrl), &path), 0);
	CHECK_STREQ(ctrl, "");
	CHECK_STREQ(path, "/new");
	CHECK_EQ(cgroup_root_parse("name=systemd:/a/b", ctrl, sizeof(ctrl), &path), 0);
	CHECK_STREQ(ctrl, "name=systemd");
	CHECK_STREQ(path, "/a/b");
	static const char *const bad[] = { "new", ":/new", "cpu:new", "cpu:/a/../b", "c;d:/x",
					   "cpu", "" };
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++)
		CHECK_EQ(cgroup_root_parse(bad[i], ctrl, sizeof(ctrl), &path), -EINVAL);

	const char *roots_opt[] = { "/def", "cpu:/k8s/pod", "pids:/" };
	struct restore_opts o = { .cg_roots = roots_opt, .n_cg_roots = 3 };
	TaskEntry te[3] = { TASK_ENTRY__INIT, TASK_ENTRY__INIT, TASK_ENTRY__INIT };
	TaskEntry *tes[3] = { &te[0], &te[1], &te[2] };
	te[0].pid = 10, te[1].pid = 11, te[1].ppid = 10, te[2].pid = 12, te[2].ppid = 11;
	Inventory inv = INVENTORY__INIT;
	inv.tasks = tes;
	inv.n_tasks = 3;
	Core core[3] = { CORE__INIT, CORE__INIT, CORE__INIT };
	TaskNs tns[3] = { TASK_NS__INIT, TASK_NS__INIT, TASK_NS__INIT };
	struct rst_ctx ctx[3] = { { 0 } };
	struct rst_ctx *procs[3];
	static const char *const paths[3][3] = {
		{ "/old", "/old", "/x" }, { "/old/c", "/old", "/x/y" }, { "/old/c/g", "/old", "/x" }
	};
	for (int i = 0; i < 3; i++) {
		core[i].cgroups = calloc(3, sizeof(CgroupEntry *));
		core[i].cgroups[0] = mk_ent(0, "", paths[i][0]);
		core[i].cgroups[1] = mk_ent(4, "cpu,cpuacct", paths[i][1]);
		core[i].cgroups[2] = mk_ent(7, "pids", paths[i][2]);
		core[i].n_cgroups = 3;
		ctx[i] = (struct rst_ctx){ .opts = &o, .pid = te[i].pid, .core = &core[i],
					   .tns = &tns[i] };
		procs[i] = &ctx[i];
	}
	/* the root's settings: of its cgroup, of one above it (dropped), of a child */
	core[0].cgroup_props = calloc(3, sizeof(CgroupProps *));
	core[0].cgroup_props[0] = mk_props(0, "", "/");
	core[0].cgroup_props[1] = mk_props(0, "", "/old");
	core[0].cgroup_props[2] = mk_props(4, "cpu,cpuacct", "/old");
	core[0].n_cgroup_props = 3;
	/* C's namespace rooted at its cgroups; R's mount namespace shows cgroup2 from /old */
	CgroupNs ns = CGROUP_NS__INIT;
	CgroupNsRoot *nsr[1] = { mk_root(0, "", "/old/c") };
	ns.roots = nsr;
	ns.n_roots = 1;
	tns[1].cgroupns = &ns;
	MntNs mnt = MNT_NS__INIT;
	Mount m[2] = { MOUNT__INIT, MOUNT__INIT };
	Mount *ms[2] = { &m[0], &m[1] };
	m[0].kind = m[1].kind = MOUNT_KIND__MOUNT_FRESH;
	m[0].fstype = (char *)"cgroup2", m[0].sb_opts = (char *)"rw", m[0].root = strdup("/old/c");
	m[1].fstype = (char *)"cgroup", m[1].sb_opts = (char *)"rw,cpuacct,cpu";
	m[1].root = strdup("/elsewhere");
	mnt.mounts = ms;
	mnt.n_mounts = 2;
	tns[0].mnt = &mnt;

	CHECK_EQ(cgroup_remap(&inv, procs, 3), 0);
	CHECK_STREQ(core[0].cgroups[0]->path, "/def");
	CHECK_STREQ(core[1].cgroups[0]->path, "/def/c");
	CHECK_STREQ(core[2].cgroups[0]->path, "/def/c/g");
	CHECK_STREQ(core[2].cgroups[1]->path, "/k8s/pod");
	CHECK_STREQ(core[1].cgroups[2]->path, "/y"); /* /x -> / */
	CHECK_STREQ(core[0].cgroups[2]->path, "/");
	CHECK_EQ(core[0].n_cgroup_props, 2);
	CHECK_STREQ(core[0].cgroup_props[0]->path, "/def");
	CHECK_STREQ(core[0].cgroup_props[1]->path, "/k8s/pod");
	CHECK_STREQ(ns.roots[0]->root, "/def/c");
	CHECK_STREQ(m[0].root, "/def/c");
	CHECK_STREQ(m[1].root, "/elsewhere"); /* not the tree's: as it was */

	/* C's pids cgroup (now /y) is not below R's when that is /x again: refused */
	free(core[0].cgroups[2]->path);
	core[0].cgroups[2]->path = strdup("/x");
	log_reset_first_error();
	CHECK_EQ(cgroup_remap(&inv, procs, 3), -ERANGE);
	CHECK(strstr(log_first_error(), "pid 11 is in cgroup /y") != NULL);
	/* ignore: nothing moves */
	o.manage_cgroups = CG_MODE_IGNORE;
	CHECK_EQ(cgroup_remap(&inv, procs, 3), 0);
	CHECK_STREQ(core[2].cgroups[0]->path, "/def/c/g");

	for (int i = 0; i < 3; i++) {
		for (size_t k = 0; k < core[i].n_cgroups; k++)
			cgroup_entry__free_unpacked(core[i].cgroups[k], NULL);
		for (size_t k = 0; k < core[i].n_cgroup_props; k++)
			cgroup_props__free_unpacked(core[i].cgroup_props[k], NULL);
		free(core[i].cgroups);
		free(core[i].cgroup_props);
	}
	cgroup_ns_root__free_unpacked(nsr[0], NULL);
	free(m[0].root);
	free(m[1].root);
}

int main(void)
{
	if (log_init("/dev/null", LOG_ERR) < 0)
		return 1;
	RUN(test_fixtures);
	RUN(test_parse_inline);
	RUN(test_ns_root);
	RUN(test_paths_opts);
	RUN(test_mount_root);
	RUN(test_validate);
	RUN(test_remap);
	return unit_done();
}
