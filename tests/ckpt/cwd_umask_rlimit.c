// stasis-test: timeout=30
/* Process attributes: cwd (a subdirectory of the test dir), umask 027, a lowered
 * RLIMIT_NOFILE soft limit and RLIMIT_CORE, the comm set with PR_SET_NAME and the
 * personality (ADDR_NO_RANDOMIZE added). */
#include "lib.h"

#include <errno.h>
#include <limits.h>
#include <string.h>
#include <sys/personality.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#define COMM "stasis-cwdtest"

int main(int argc, char **argv)
{
	struct rlimit nofile, core, r;
	char cwd[PATH_MAX], now[PATH_MAX], comm[17];
	struct stat st0, st1;
	int pers, p;
	mode_t m;

	test_init(argc, argv);
	if (mkdir("work dir", 0755) < 0 && errno != EEXIST)
		test_fail("mkdir: %s", strerror(errno));
	if (chdir("work dir") < 0)
		test_fail("chdir: %s", strerror(errno));
	if (!getcwd(cwd, sizeof(cwd)) || stat(".", &st0) < 0)
		test_fail("getcwd: %s", strerror(errno));
	umask(027);
	if (getrlimit(RLIMIT_NOFILE, &nofile) < 0)
		test_fail("getrlimit: %s", strerror(errno));
	nofile.rlim_cur = 200;
	if (setrlimit(RLIMIT_NOFILE, &nofile) < 0)
		test_fail("setrlimit NOFILE: %s", strerror(errno));
	getrlimit(RLIMIT_CORE, &core);
	core.rlim_cur = 4096 * 3;
	if (core.rlim_max != RLIM_INFINITY && core.rlim_max < core.rlim_cur)
		core.rlim_cur = core.rlim_max;
	if (setrlimit(RLIMIT_CORE, &core) < 0)
		test_fail("setrlimit CORE: %s", strerror(errno));
	if (prctl(PR_SET_NAME, COMM, 0, 0, 0) < 0)
		test_fail("PR_SET_NAME: %s", strerror(errno));
	pers = personality(0xffffffff);
	if (personality((unsigned long)pers | ADDR_NO_RANDOMIZE) < 0)
		test_fail("personality: %s", strerror(errno));
	pers = personality(0xffffffff);
	test_ready();
	test_wait();

	if (test_sabotage())
		umask(022);
	TEST_CHECK(getcwd(now, sizeof(now)) != NULL, "getcwd: %s", strerror(errno));
	TEST_CHECK(strcmp(now, cwd) == 0, "cwd is '%s', was '%s'", now, cwd);
	TEST_CHECK(stat(".", &st1) == 0 && st1.st_ino == st0.st_ino && st1.st_dev == st0.st_dev,
		   "cwd is another directory with the same name");
	m = umask(0);
	umask(m);
	TEST_CHECK(m == 027, "umask is %03o, expected 027", (unsigned)m);
	getrlimit(RLIMIT_NOFILE, &r);
	TEST_CHECK(r.rlim_cur == nofile.rlim_cur && r.rlim_max == nofile.rlim_max,
		   "RLIMIT_NOFILE %llu/%llu, expected %llu/%llu", (unsigned long long)r.rlim_cur,
		   (unsigned long long)r.rlim_max, (unsigned long long)nofile.rlim_cur,
		   (unsigned long long)nofile.rlim_max);
	getrlimit(RLIMIT_CORE, &r);
	TEST_CHECK(r.rlim_cur == core.rlim_cur && r.rlim_max == core.rlim_max,
		   "RLIMIT_CORE %llu/%llu, expected %llu/%llu", (unsigned long long)r.rlim_cur,
		   (unsigned long long)r.rlim_max, (unsigned long long)core.rlim_cur,
		   (unsigned long long)core.rlim_max);
	memset(comm, 0, sizeof(comm));
	prctl(PR_GET_NAME, comm, 0, 0, 0);
	TEST_CHECK(strcmp(comm, COMM) == 0, "comm is '%s', expected '%s'", comm, COMM);
	p = personality(0xffffffff);
	TEST_CHECK(p == pers, "personality %#x, expected %#x", p, pers);
	test_pass();
}
