// stasis-test: timeout=30 needs=root
/* UTS namespaces: the root enters a UTS namespace of its own with a hostname and a
 * domainname, and forks a child that enters another one (nested) with other names.
 * After restore: each has its names, in a namespace that is not its parent's. */
#include "lib.h"

#include <errno.h>
#include <limits.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static int names_are(const char *host, const char *dom)
{
	char h[256] = "", d[256] = "";
	if (gethostname(h, sizeof(h)) < 0 || getdomainname(d, sizeof(d)) < 0)
		return 0;
	return !strcmp(h, host) && !strcmp(d, dom);
}

static int own_ns(pid_t parent)
{
	char a[64], b[64], pa[64];
	snprintf(pa, sizeof(pa), "/proc/%d/ns/uts", parent);
	ssize_t n = readlink("/proc/self/ns/uts", a, sizeof(a) - 1);
	ssize_t m = readlink(pa, b, sizeof(b) - 1);
	if (n <= 0 || m <= 0)
		return 0;
	a[n] = b[m] = '\0';
	return strcmp(a, b) != 0;
}

int main(int argc, char **argv)
{
	int req[2], ans[2];

	test_init(argc, argv);
	if (unshare(CLONE_NEWUTS) < 0 || sethostname("stasis-outer", 12) < 0 ||
	    setdomainname("outer.dom", 9) < 0 || pipe(req) < 0 || pipe(ans) < 0)
		test_fail("setup: %s", strerror(errno));
	pid_t root = getpid();
	pid_t child = fork();
	if (child == 0) {
		signal(SIGTERM, SIG_IGN);
		close(req[1]);
		close(ans[0]);
		if (unshare(CLONE_NEWUTS) < 0 || sethostname("stasis-inner", 12) < 0 ||
		    setdomainname("inner.dom", 9) < 0)
			_exit(1);
		char c;
		while (read(req[0], &c, 1) == 1) {
			char ok = names_are("stasis-inner", "inner.dom") && own_ns(root) ? 'y' : 'n';
			if (write(ans[1], &ok, 1) != 1)
				_exit(2);
		}
		_exit(0);
	}
	close(req[0]);
	close(ans[1]);
	char c = '?', ok = 'n';
	TEST_CHECK(write(req[1], &c, 1) == 1 && read(ans[0], &ok, 1) == 1 && ok == 'y',
		   "child setup");
	test_ready();
	test_wait();
	if (test_sabotage())
		sethostname("sabotaged", 9);
	TEST_CHECK(names_are("stasis-outer", "outer.dom"), "the root's UTS names were lost");
	/* (a pid namespace's init cannot see its parent: nothing to compare with) */
	TEST_CHECK(getppid() == 0 || own_ns(getppid()),
		   "the root is not in a UTS namespace of its own");
	TEST_CHECK(write(req[1], &c, 1) == 1 && read(ans[0], &ok, 1) == 1, "no answer");
	TEST_CHECK(ok == 'y', "the child's nested UTS namespace or names were lost");
	close(req[1]);
	int st;
	alarm(10);
	TEST_CHECK(waitpid(child, &st, 0) == child && WIFEXITED(st) && !WEXITSTATUS(st),
		   "child status %#x", st);
	test_pass();
}
