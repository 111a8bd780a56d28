// stasis-test: timeout=30 needs=root
/* Credentials of an unprivileged task made from root: supplementary groups {1001,1002},
 * gids 1001/1002/1003, uids 2001/2002/2003 (kept capabilities through PR_SET_KEEPCAPS),
 * then capabilities cut down to CAP_NET_BIND_SERVICE permitted+effective and CAP_CHOWN
 * inheritable, with CAP_SYS_BOOT and CAP_MKNOD dropped from the bounding set. After the
 * restore: getresuid/getresgid, fsuid/fsgid, getgroups, capget, the securebits
 * (KEEP_CAPS), PR_GET_KEEPCAPS, PR_GET_DUMPABLE and the CapBnd/CapAmb lines of
 * /proc/self/status, compared with the expected values and with the values before. */
#include "lib.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <libgen.h>
#include <linux/capability.h>
#include <linux/securebits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/fsuid.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#define UID_R 2001
#define UID_E 2002
#define UID_S 2003
#define GID_R 1001
#define GID_E 1002
#define GID_S 1003

struct creds {
	uid_t uid[3];
	gid_t gid[3];
	int fsuid, fsgid;
	int ngroups;
	gid_t groups[16];
	struct __user_cap_data_struct cap[2];
	int securebits, keepcaps, dumpable;
	char capbnd[64], capamb[64];
};

static void status_line(const char *key, char *out, size_t size)
{
	char line[256];
	size_t klen = strlen(key);
	FILE *f = fopen("/proc/self/status", "re");

	out[0] = '\0';
	if (!f)
		test_fail("open /proc/self/status: %s", strerror(errno));
	while (fgets(line, sizeof(line), f)) {
		if (!strncmp(line, key, klen) && line[klen] == ':') {
			char *p = line + klen + 1;

			while (*p == ' ' || *p == '\t')
				p++;
			p[strcspn(p, "\n")] = '\0';
			snprintf(out, size, "%s", p);
			break;
		}
	}
	fclose(f);
	if (!out[0])
		test_fail("no %s line in /proc/self/status", key);
}

static void take(struct creds *c)
{
	struct __user_cap_header_struct hdr = { _LINUX_CAPABILITY_VERSION_3, 0 };

	memset(c, 0, sizeof(*c));
	if (getresuid(&c->uid[0], &c->uid[1], &c->uid[2]) < 0 ||
	    getresgid(&c->gid[0], &c->gid[1], &c->gid[2]) < 0)
		test_fail("getresuid/getresgid: %s", strerror(errno));
	c->fsuid = setfsuid(-1);
	c->fsgid = setfsgid(-1);
	c->ngroups = getgroups(16, c->groups);
	if (c->ngroups < 0)
		test_fail("getgroups: %s", strerror(errno));
	if (syscall(SYS_capget, &hdr, c->cap) < 0)
		test_fail("capget: %s", strerror(errno));
	c->securebits = prctl(PR_GET_SECUREBITS, 0, 0, 0, 0);
	c->keepcaps = prctl(PR_GET_KEEPCAPS, 0, 0, 0, 0);
	c->dumpable = prctl(PR_GET_DUMPABLE, 0, 0, 0, 0);
	status_line("CapBnd", c->capbnd, sizeof(c->capbnd));
	status_line("CapAmb", c->capamb, sizeof(c->capamb));
}

static void check_expected(const struct creds *c, const char *when, const char *bnd)
{
	const uint32_t nbs = 1u << CAP_NET_BIND_SERVICE, chown_ = 1u << CAP_CHOWN;
	int i;

	TEST_CHECK(c->uid[0] == UID_R && c->uid[1] == UID_E && c->uid[2] == UID_S,
		   "%s: uids %u/%u/%u, expected %u/%u/%u", when, c->uid[0], c->uid[1], c->uid[2],
		   UID_R, UID_E, UID_S);
	TEST_CHECK(c->gid[0] == GID_R && c->gid[1] == GID_E && c->gid[2] == GID_S,
		   "%s: gids %u/%u/%u, expected %u/%u/%u", when, c->gid[0], c->gid[1], c->gid[2],
		   GID_R, GID_E, GID_S);
	TEST_CHECK(c->fsuid == UID_E && c->fsgid == GID_E, "%s: fsuid %d fsgid %d", when,
		   c->fsuid, c->fsgid);
	TEST_CHECK(c->ngroups == 2, "%s: %d supplementary groups, expected 2", when, c->ngroups);
	for (i = 0; i < c->ngroups; i++)
		TEST_CHECK(c->groups[i] == (gid_t)(1001 + i), "%s: group[%d] = %u, expected %d",
			   when, i, c->groups[i], 1001 + i);
	TEST_CHECK(c->cap[0].effective == nbs && c->cap[1].effective == 0,
		   "%s: effective caps %#x %#x, expected %#x 0", when, c->cap[0].effective,
		   c->cap[1].effective, nbs);
	TEST_CHECK(c->cap[0].permitted == nbs && c->cap[1].permitted == 0,
		   "%s: permitted caps %#x %#x, expected %#x 0", when, c->cap[0].permitted,
		   c->cap[1].permitted, nbs);
	TEST_CHECK(c->cap[0].inheritable == chown_ && c->cap[1].inheritable == 0,
		   "%s: inheritable caps %#x %#x, expected %#x 0", when, c->cap[0].inheritable,
		   c->cap[1].inheritable, chown_);
	TEST_CHECK(c->securebits == (1 << SECURE_KEEP_CAPS),
		   "%s: securebits %#x, expected %#x (KEEP_CAPS)", when, c->securebits,
		   1 << SECURE_KEEP_CAPS);
	TEST_CHECK(c->keepcaps == 1, "%s: PR_GET_KEEPCAPS %d", when, c->keepcaps);
	TEST_CHECK(!strcmp(c->capamb, "0000000000000000"), "%s: CapAmb %s", when, c->capamb);
	TEST_CHECK(!strcmp(c->capbnd, bnd), "%s: CapBnd %s, expected %s", when, c->capbnd, bnd);
}

static void compare(const struct creds *a, const struct creds *b)
{
	TEST_CHECK(a->dumpable == b->dumpable, "PR_GET_DUMPABLE %d -> %d", a->dumpable,
		   b->dumpable);
	TEST_CHECK(memcmp(a, b, sizeof(*a)) == 0, "credentials changed (a field not named above)");
}

/* The lib opens the status file by path for each write: after the uid change the task
 * must still reach it (search permission on its directory) and write it. */
static void prepare_status_file(void)
{
	const char *path = getenv("STASIS_TEST_STATUS");
	char *copy;
	int fd;

	if (!path)
		return;
	fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0664);
	if (fd < 0)
		test_fail("open %s: %s", path, strerror(errno));
	if (fchown(fd, UID_E, GID_E) < 0)
		test_fail("fchown status file: %s", strerror(errno));
	close(fd);
	copy = strdup(path);
	if (!copy)
		test_fail("strdup");
	if (chmod(dirname(copy), 0711) < 0)
		test_fail("chmod the status directory: %s", strerror(errno));
	free(copy);
}

int main(int argc, char **argv)
{
	static struct creds before, after;
	struct __user_cap_header_struct hdr = { _LINUX_CAPABILITY_VERSION_3, 0 };
	struct __user_cap_data_struct data[2];
	const gid_t groups[2] = { 1001, 1002 };
	char bnd_root[64], bnd[64];
	unsigned long long b;

	test_init(argc, argv);
	if (geteuid() != 0)
		test_fail("needs root");
	prepare_status_file();
	status_line("CapBnd", bnd_root, sizeof(bnd_root));
	b = strtoull(bnd_root, NULL, 16) & ~((1ull << CAP_SYS_BOOT) | (1ull << CAP_MKNOD));
	snprintf(bnd, sizeof(bnd), "%016llx", b);

	if (prctl(PR_CAPBSET_DROP, CAP_SYS_BOOT, 0, 0, 0) < 0 ||
	    prctl(PR_CAPBSET_DROP, CAP_MKNOD, 0, 0, 0) < 0)
		test_fail("PR_CAPBSET_DROP: %s", strerror(errno));
	if (setgroups(2, groups) < 0)
		test_fail("setgroups: %s", strerror(errno));
	if (setresgid(GID_R, GID_E, GID_S) < 0)
		test_fail("setresgid: %s", strerror(errno));
	if (prctl(PR_SET_KEEPCAPS, 1, 0, 0, 0) < 0)
		test_fail("PR_SET_KEEPCAPS: %s", strerror(errno));
	if (setresuid(UID_R, UID_E, UID_S) < 0)
		test_fail("setresuid: %s", strerror(errno));
	memset(data, 0, sizeof(data));
	data[0].effective = data[0].permitted = 1u << CAP_NET_BIND_SERVICE;
	data[0].inheritable = 1u << CAP_CHOWN;
	if (syscall(SYS_capset, &hdr, data) < 0)
		test_fail("capset: %s", strerror(errno));

	take(&before);
	check_expected(&before, "before", bnd);
	test_ready();
	test_wait();

	if (test_sabotage()) {
		/* drop CAP_NET_BIND_SERVICE from the effective set (needs no privilege) */
		data[0].effective = 0;
		if (syscall(SYS_capset, &hdr, data) < 0)
			test_fail("sabotage capset: %s", strerror(errno));
	}
	take(&after);
	check_expected(&after, "after restore", bnd);
	compare(&before, &after);
	test_pass();
}
