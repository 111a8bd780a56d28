/* A network namespace's settings beyond those stasis knows by name (src/net/netns.c's
 * list, written first at restore): every other readable and writable file under
 * /proc/sys/net of the namespace (a TCP buffer size, a congestion control, a conntrack
 * timeout, a MPTCP knob...), read at dump inside the namespace and written back at
 * restore where the new namespace's value differs. The directories of one link's own
 * settings (ipv4/conf/NAME, ipv6/conf/NAME, ipv4/neigh/NAME, ipv6/neigh/NAME) are not
 * walked: the links do not exist yet when these are written; each link's files there
 * are read the same way, keyed "ipv4/KEY" (conf) or "ipv4/neigh/KEY", and written once
 * the links exist. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "core/util.h"
#include "net/netns.h"

#define SYSCTL_ROOT "/proc/sys/net/"
#define SYSCTL_MAX_DEPTH 6
#define SYSCTL_MAX 4096 /* settings per namespace */

/* "ipv4/conf/NAME" and the like: a link's own directory (NAME not all or default). */
static bool link_dir(const char *rel)
{
	static const char *const dirs[] = { "ipv4/conf/", "ipv6/conf/", "ipv4/neigh/",
					    "ipv6/neigh/" };
	for (size_t i = 0; i < ARRAY_SIZE(dirs); i++) {
		size_t l = strlen(dirs[i]);
		if (strncmp(rel, dirs[i], l))
			continue;
		size_t c = strcspn(rel + l, "/"); /* the whole component: a link "allnet" */
		return !(c == 3 && !strncmp(rel + l, "all", 3)) &&
		       !(c == 7 && !strncmp(rel + l, "default", 7));
	}
	return false;
}

bool net_sysctl_name_ok(const char *name)
{
	static const char ok[] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
				 "0123456789_.-+/";
	size_t comps = 1;
	if (!path_is_clean(name, 160, false) || !strcmp(name, ".") || name[strspn(name, ok)] ||
	    link_dir(name))
		return false;
	for (const char *p = name; (p = strchr(p, '/')); p++)
		comps++;
	return comps >= 2 && comps <= SYSCTL_MAX_DEPTH;
}

static bool have(NetSysctl *const *arr, size_t n, const char *name)
{
	for (size_t i = 0; i < n; i++)
		if (!strcmp(arr[i]->name, name))
			return true;
	return false;
}

static int add(NetSysctl ***arr, size_t *n, const char *name, char *value)
{
	NetSysctl **a = realloc(*arr, (*n + 1) * sizeof(*a));
	NetSysctl *s = malloc(sizeof(*s));
	if (a)
		*arr = a;
	if (!a || !s) {
		free(s);
		free(value);
		return -ENOMEM;
	}
	net_sysctl__init(s);
	s->value = value;
	s->name = strdup(name);
	(*arr)[(*n)++] = s;
	return s->name ? 0 : -ENOMEM;
}

/* The setting at @path (@st) recorded as @name, unless it is no readable and writable
 * file, is recorded already, or is a secret never set (EIO: stable_secret). */
static int record(const char *path, const struct stat *st, const char *name,
		  NetSysctl ***arr, size_t *n, char *err, size_t errlen)
{
	if (!S_ISREG(st->st_mode) || !(st->st_mode & S_IRUSR) || !(st->st_mode & S_IWUSR) ||
	    have(*arr, *n, name))
		return 0;
	if (*n >= SYSCTL_MAX) {
		snprintf(err, errlen, "net: more than %d settings under %s", SYSCTL_MAX,
			 SYSCTL_ROOT);
		return -E2BIG;
	}
	char *v = read_file_at(AT_FDCWD, path, 4096, NULL);
	if (!v && errno != EIO) {
		snprintf(err, errlen, "net: read %s: %s", path, strerror(errno));
		return -errno;
	}
	if (!v)
		return 0;
	v[strcspn(v, "\n")] = '\0';
	return add(arr, n, name, v);
}

int net_setting_read(const char *path, const char *name, NetSysctl ***arr, size_t *n,
		     char *err, size_t errlen)
{
	struct stat st;
	if (stat(path, &st) < 0) {
		if (errno == ENOENT)
			return 0;
		snprintf(err, errlen, "net: stat %s: %s", path, strerror(errno));
		return -errno;
	}
	return record(path, &st, name, arr, n, err, errlen);
}

/* @path (SYSCTL_ROOT + the relative part), a directory at @depth. */
static int walk(char *path, size_t cap, int depth, NetSysctl ***arr, size_t *n, char *err,
		size_t errlen)
{
	DIR *d = opendir(path);
	if (!d) {
		snprintf(err, errlen, "net: open %s: %s", path, strerror(errno));
		return -errno;
	}
	size_t plen = strlen(path);
	int ret = 0;
	struct dirent *de;
	while (!ret && (de = readdir(d))) {
		if (de->d_name[0] == '.' || plen + 2 + strlen(de->d_name) > cap)
			continue;
		snprintf(path + plen, cap - plen, "/%s", de->d_name);
		const char *rel = path + strlen(SYSCTL_ROOT);
		struct stat st;
		if (stat(path, &st) < 0 || link_dir(rel)) {
			path[plen] = '\0';
			continue;
		}
		if (S_ISDIR(st.st_mode) && depth < SYSCTL_MAX_DEPTH)
			ret = walk(path, cap, depth + 1, arr, n, err, errlen);
		else if (net_sysctl_name_ok(rel))
			ret = record(path, &st, rel, arr, n, err, errlen);
		path[plen] = '\0';
	}
	closedir(d);
	return ret;
}

int net_sysctls_walk(NetSysctl ***arr, size_t *n, char *err, size_t errlen)
{
	char path[PATH_MAX] = SYSCTL_ROOT;
	path[strlen(path) - 1] = '\0'; /* the directory itself */
	return walk(path, sizeof(path), 1, arr, n, err, errlen);
}

/* A link's key (untrusted at restore): "ipv4/KEY", "ipv6/KEY", "ipv4/neigh/KEY" or
 * "ipv6/neigh/KEY", KEY one path component. */
bool net_link_conf_name_ok(const char *key)
{
	const char *k = !strncmp(key, "ipv4/", 5) || !strncmp(key, "ipv6/", 5) ? key + 5 : NULL;
	if (k && !strncmp(k, "neigh/", 6))
		k += 6;
	char probe[200];
	if (!k || strchr(k, '/') || snprintf(probe, sizeof(probe), "x/%s", k) >= (int)sizeof(probe))
		return false;
	return net_sysctl_name_ok(probe);
}

int net_link_confs_walk(const char *link, NetSysctl ***arr, size_t *n, char *err,
			size_t errlen)
{
	static const char *const dirs[][2] = { { "ipv4/conf", "ipv4/" }, { "ipv6/conf", "ipv6/" },
					       { "ipv4/neigh", "ipv4/neigh/" },
					       { "ipv6/neigh", "ipv6/neigh/" } };
	if (strchr(link, '/') || !strcmp(link, ".") || !strcmp(link, ".."))
		return -EINVAL;
	for (size_t i = 0; i < ARRAY_SIZE(dirs); i++) {
		char path[PATH_MAX], key[256];
		snprintf(path, sizeof(path), SYSCTL_ROOT "%s/%s", dirs[i][0], link);
		DIR *d = opendir(path);
		if (!d && errno == ENOENT)
			continue; /* (no IPv6 on the link, no neighbour table) */
		if (!d) {
			snprintf(err, errlen, "net: open %s: %s", path, strerror(errno));
			return -errno;
		}
		size_t plen = strlen(path);
		int ret = 0;
		struct dirent *de;
		while (!ret && (de = readdir(d))) {
			struct stat st;
			if (de->d_name[0] == '.' || plen + 2 + strlen(de->d_name) > sizeof(path) ||
			    (size_t)snprintf(key, sizeof(key), "%s%s", dirs[i][1], de->d_name) >=
				    sizeof(key))
				continue;
			snprintf(path + plen, sizeof(path) - plen, "/%s", de->d_name);
			if (!stat(path, &st) && net_link_conf_name_ok(key))
				ret = record(path, &st, key, arr, n, err, errlen);
			path[plen] = '\0';
		}
		closedir(d);
		if (ret)
			return ret;
	}
	return 0;
}
