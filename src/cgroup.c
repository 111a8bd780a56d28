/* Cgroup membership: every task's /proc/PID/cgroup line per hierarchy (cgroup v2 and
 * the v1 hierarchies mounted here). At restore a task whose cgroup differs from the one
 * it was created in is moved (by the restorer, through the hierarchy's mount point, the
 * cgroup created if missing — its settings are not carried). Cgroup namespaces are not
 * supported yet (refused at dump by src/ns.c). */
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/log.h"
#include "task/task.h"

int cgroup_dump(struct dump_ctx *c)
{
	_cleanup_free_ char *buf = read_file_at(c->procfd, "cgroup", 1 << 16, NULL);
	if (!buf)
		return pr_perror("cgroup: read /proc/%d/cgroup", c->pid);
	size_t n = 0;
	for (char *p = buf; *p; p++)
		n += *p == '\n';
	c->core->cgroups = calloc(n + 1, sizeof(CgroupEntry *));
	if (!c->core->cgroups)
		return -ENOMEM;
	char *save = NULL;
	for (char *l = strtok_r(buf, "\n", &save); l; l = strtok_r(NULL, "\n", &save)) {
		char *c1 = strchr(l, ':'), *c2 = c1 ? strchr(c1 + 1, ':') : NULL;
		long long id;
		if (!c1 || !c2 || c2[1] != '/') {
			pr_err("cgroup: malformed line '%s' in /proc/%d/cgroup", l, c->pid);
			return -EINVAL;
		}
		*c1 = *c2 = '\0';
		if (parse_int(l, 0, 1 << 20, &id)) {
			pr_err("cgroup: bad hierarchy id in /proc/%d/cgroup", c->pid);
			return -EINVAL;
		}
		CgroupEntry *e = malloc(sizeof(*e));
		if (!e)
			return -ENOMEM;
		cgroup_entry__init(e);
		c->core->cgroups[c->core->n_cgroups++] = e;
		e->hierarchy = (uint32_t)id;
		e->controllers = strdup(c1 + 1);
		e->path = strdup(c2 + 1);
		if (!e->controllers || !e->path)
			return -ENOMEM;
	}
	return 0;
}

/* The mount point of the hierarchy with these controllers (v1) or of cgroup2 (""). */
static int find_mount(const char *controllers, char *out, size_t len)
{
	_cleanup_free_ char *mi = read_file_at(AT_FDCWD, "/proc/self/mountinfo", 1 << 20, NULL);
	if (!mi)
		return pr_perror("cgroup: read mountinfo");
	char *save = NULL;
	for (char *l = strtok_r(mi, "\n", &save); l; l = strtok_r(NULL, "\n", &save)) {
		char mnt[PATH_MAX], fstype[64], opts[512];
		const char *sep = strstr(l, " - ");
		if (!sep || sscanf(l, "%*s %*s %*s %*s %4095s", mnt) != 1 ||
		    sscanf(sep + 3, "%63s %*s %511s", fstype, opts) != 2)
			continue;
		bool v2 = !strcmp(fstype, "cgroup2");
		if (!controllers[0] ? !v2 : strcmp(fstype, "cgroup"))
			continue;
		if (controllers[0]) {
			/* every controller (or name=) listed must be in the options */
			_cleanup_free_ char *want = strdup(controllers);
			bool all = want != NULL;
			char *s2 = NULL;
			for (char *w = want ? strtok_r(want, ",", &s2) : NULL; w && all;
			     w = strtok_r(NULL, ",", &s2)) {
				char pat[80];
				snprintf(pat, sizeof(pat), ",%s,", w);
				char o[520];
				snprintf(o, sizeof(o), ",%s,", opts);
				all = strstr(o, pat) != NULL;
			}
			if (!all)
				continue;
		}
		snprintf(out, len, "%s", mnt);
		return 0;
	}
	return -ENOENT;
}

int cgroup_restore_remote(struct rst_ctx *c)
{
	char mine[64];
	snprintf(mine, sizeof(mine), "/proc/%d/cgroup", c->pid);
	_cleanup_free_ char *now = read_file_at(AT_FDCWD, mine, 1 << 16, NULL);
	if (!now)
		return pr_perror("cgroup: read %s", mine);
	for (size_t i = 0; i < c->core->n_cgroups; i++) {
		const CgroupEntry *e = c->core->cgroups[i];
		char line[PATH_MAX + 256];
		if (!e->path || e->path[0] != '/' || strstr(e->path, "/..") || !e->controllers) {
			pr_err("image: bad cgroup path of pid %d", c->pid);
			return -EINVAL;
		}
		snprintf(line, sizeof(line), "%u:%s:%s\n", e->hierarchy, e->controllers, e->path);
		if (strstr(now, line))
			continue; /* already there (inherited) */
		char mnt[PATH_MAX], dir[PATH_MAX * 2], procs[PATH_MAX * 2 + 32];
		if (find_mount(e->controllers, mnt, sizeof(mnt))) {
			pr_warn("restore: pid %d: no mount of cgroup hierarchy '%s': left as is", c->pid,
				e->controllers);
			continue;
		}
		snprintf(dir, sizeof(dir), "%s%s", mnt, e->path);
		/* create missing levels */
		for (char *p = dir + strlen(mnt) + 1; (p = strchr(p, '/')); p++) {
			*p = '\0';
			mkdir(dir, 0755);
			*p = '/';
		}
		if (mkdir(dir, 0755) < 0 && errno != EEXIST)
			return pr_perror("restore: create cgroup %s", dir);
		snprintf(procs, sizeof(procs), "%s/cgroup.procs", dir);
		char pid[32];
		int n = snprintf(pid, sizeof(pid), "%d", c->pid);
		int ret = write_file(procs, pid, (size_t)n);
		if (ret)
			return pr_errno(ret, "restore: move pid %d into cgroup %s", c->pid, dir);
	}
	return 0;
}
