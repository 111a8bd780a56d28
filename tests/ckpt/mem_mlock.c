// stasis-test: timeout=30
/* Locked memory: 1 MiB locked with mlock, 512 KiB with mlock2(MLOCK_ONFAULT), both locked
 * again after the restore ("lo", and "lf" for the second, in smaps). As root the locks
 * are taken before the task drops its effective uid to 1000 with a 64 KiB
 * RLIMIT_MEMLOCK (so that it could not take them any more itself): the restored task,
 * with those credentials, still holds them. */
#include "lib.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <unistd.h>

#define A_LEN (1u << 20)
#define B_LEN (512u << 10)

/* The VmFlags line of the area starting at @addr, in @out. */
static void vmflags_of(void *addr, char *out, size_t len)
{
	char line[512], want[32];
	bool in = false;
	FILE *f = fopen("/proc/self/smaps", "r");
	snprintf(want, sizeof(want), "%lx-", (unsigned long)addr);
	out[0] = '\0';
	while (f && fgets(line, sizeof(line), f)) {
		if (strchr(line, '-') && strchr(line, ' ') > strchr(line, '-'))
			in = !strncmp(line, want, strlen(want));
		else if (in && !strncmp(line, "VmFlags:", 8)) {
			snprintf(out, len, "%s", line + 8);
			break;
		}
	}
	if (f)
		fclose(f);
}

static bool has_flag(const char *flags, const char *fl)
{
	char pad[600];
	snprintf(pad, sizeof(pad), " %s", flags);
	for (char *p = pad; (p = strstr(p, fl)); p++)
		if (p[-1] == ' ' && (p[2] == ' ' || p[2] == '\n' || !p[2]))
			return true;
	return false;
}

int main(int argc, char **argv)
{
	char fa[512], fb[512];
	test_init(argc, argv);
	char *a = mmap(NULL, A_LEN, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	char *b = mmap(NULL, B_LEN, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (a == MAP_FAILED || b == MAP_FAILED)
		test_fail("mmap: %s", strerror(errno));
	memset(a, 0x5a, A_LEN);
	if (mlock(a, A_LEN) < 0 || mlock2(b, B_LEN, MLOCK_ONFAULT) < 0)
		test_fail("mlock: %s", strerror(errno));
	bool root = geteuid() == 0;
	if (root) {
		struct rlimit rl = { 64 << 10, 64 << 10 };
		if (setrlimit(RLIMIT_MEMLOCK, &rl) < 0 || setresuid(0, 1000, 0) < 0)
			test_fail("drop privileges: %s", strerror(errno));
	}
	/* (the status file is root's: written with euid 0 for a moment) */
	if (root && seteuid(0) < 0)
		test_fail("seteuid(0): %s", strerror(errno));
	test_ready();
	if (root && seteuid(1000) < 0)
		test_fail("seteuid(1000): %s", strerror(errno));
	test_wait();

	uid_t euid = geteuid();
	struct rlimit rl;
	getrlimit(RLIMIT_MEMLOCK, &rl);
	/* (back to euid 0 to report: the status file is root's) */
	if (root && seteuid(0) < 0)
		test_fail("seteuid(0): %s", strerror(errno));
	TEST_CHECK(!root || euid == 1000, "euid %d after the restore", euid);
	TEST_CHECK(!root || (rl.rlim_cur == 64 << 10 && rl.rlim_max == 64 << 10),
		   "RLIMIT_MEMLOCK %llu/%llu after the restore", (unsigned long long)rl.rlim_cur,
		   (unsigned long long)rl.rlim_max);
	if (test_sabotage())
		munlock(a, A_LEN);
	vmflags_of(a, fa, sizeof(fa));
	vmflags_of(b, fb, sizeof(fb));
	TEST_CHECK(has_flag(fa, "lo") && !has_flag(fa, "lf"), "mlock'ed area: VmFlags %s", fa);
	TEST_CHECK(has_flag(fb, "lo") && has_flag(fb, "lf"), "MLOCK_ONFAULT area: VmFlags %s", fb);
	for (size_t i = 0; i < A_LEN; i += 4096)
		TEST_CHECK(a[i] == 0x5a, "locked memory differs at %zu", i);
	test_pass();
}
