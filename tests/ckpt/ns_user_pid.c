// stasis-test: timeout=30 needs=root
/* The `unshare -Urpfu` shape: A (a child of the test) unshares a user namespace (maps
 * written by the test: 0..1999 -> 10000..), a pid namespace and a UTS namespace (both
 * owned by the new user namespace) and sets a hostname; its child I is pid 1 of the new
 * pid namespace and forks J (pid 2 there), which runs as uid 1000 inside.
 * The pids of I and J at the host level are chosen by ns_last_pid (A, inside the user
 * namespace, has no rights over the host's pid namespace).
 * After restore: the NSpid lines of A, I and J are the same as before, I and J are in a
 * pid namespace owned by A's user namespace, J's uid inside is 1000, the hostname is
 * A's. */
#include "lib.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/nsfs.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

static int write_text(const char *path, const char *text)
{
	int fd = open(path, O_WRONLY);
	if (fd < 0)
		return -1;
	ssize_t n = write(fd, text, strlen(text));
	close(fd);
	return n == (ssize_t)strlen(text) ? 0 : -1;
}

static int nspid_line(pid_t pid, char *out, size_t size)
{
	char path[64], line[256];
	snprintf(path, sizeof(path), "/proc/%d/status", pid);
	FILE *f = fopen(path, "r");
	if (!f)
		return -1;
	int found = -1;
	while (fgets(line, sizeof(line), f))
		if (!strncmp(line, "NSpid:", 6)) {
			snprintf(out, size, "%s", line);
			found = 0;
		}
	fclose(f);
	return found;
}

static ino_t ino_of(pid_t pid, const char *ns)
{
	char path[64];
	struct stat st;
	snprintf(path, sizeof(path), "/proc/%d/ns/%s", pid, ns);
	return stat(path, &st) == 0 ? st.st_ino : 0;
}

/* the user namespace owning the pid namespace of @pid */
static ino_t pidns_owner(pid_t pid)
{
	return test_ns_related(pid, "pid", NS_GET_USERNS);
}

static pid_t first_child(pid_t pid)
{
	char path[64];
	int c = 0;
	snprintf(path, sizeof(path), "/proc/%d/task/%d/children", pid, pid);
	FILE *f = fopen(path, "r");
	if (!f)
		return 0;
	if (fscanf(f, "%d", &c) != 1)
		c = 0;
	fclose(f);
	return c;
}

static int uid_line_has(pid_t pid, const char *want)
{
	char path[64], line[256];
	snprintf(path, sizeof(path), "/proc/%d/status", pid);
	FILE *f = fopen(path, "r");
	int ok = 0;
	if (!f)
		return 0;
	while (fgets(line, sizeof(line), f))
		if (!strncmp(line, "Uid:", 4) && strstr(line, want))
			ok = 1;
	fclose(f);
	return ok;
}

/* J: pid 2 inside, uid 1000 inside; answers "is my hostname stasis-u and my pid 2". */
static __attribute__((noreturn)) void j_main(int req, int ans)
{
	if (setresgid(1000, 1000, 1000) < 0 || setresuid(1000, 1000, 1000) < 0)
		_exit(5);
	char c;
	while (read(req, &c, 1) == 1) {
		char h[64] = "";
		gethostname(h, sizeof(h));
		char ok = getpid() == 2 && getuid() == 1000 && !strcmp(h, "stasis-u") ? 'y' : 'n';
		if (write(ans, &ok, 1) != 1)
			_exit(2);
	}
	_exit(0);
}

int main(int argc, char **argv)
{
	int up[2], down[2], req[2], ans[2];
	test_init(argc, argv);
	if (pipe(up) < 0 || pipe(down) < 0 || pipe(req) < 0 || pipe(ans) < 0)
		test_fail("pipe: %s", strerror(errno));
	pid_t a = fork();
	if (a == 0) {
		signal(SIGTERM, SIG_IGN);
		char c = 'u';
		if (unshare(CLONE_NEWUSER | CLONE_NEWPID | CLONE_NEWUTS) < 0 ||
		    write(up[1], &c, 1) != 1 || read(down[0], &c, 1) != 1)
			_exit(3);
		if (setresgid(0, 0, 0) < 0 || setresuid(0, 0, 0) < 0 ||
		    prctl(PR_SET_DUMPABLE, 1) < 0 || sethostname("stasis-u", 8) < 0)
			_exit(4);
		pid_t i = fork();
		if (i == 0) {
			/* I: pid 1 of the new pid namespace */
			if (getpid() != 1)
				_exit(6);
			pid_t j = fork();
			if (j == 0)
				j_main(req[0], ans[1]);
			int st;
			while (waitpid(-1, &st, 0) > 0 || errno == EINTR)
				;
			_exit(0);
		}
		int st;
		waitpid(i, &st, 0);
		_exit(0);
	}
	char c;
	char path[64];
	if (read(up[0], &c, 1) != 1)
		test_fail("A did not unshare");
	snprintf(path, sizeof(path), "/proc/%d/uid_map", a);
	if (write_text(path, "0 10000 2000"))
		test_fail("write %s: %s", path, strerror(errno));
	snprintf(path, sizeof(path), "/proc/%d/gid_map", a);
	if (write_text(path, "0 10000 2000") || write(down[1], "m", 1) != 1)
		test_fail("write %s: %s", path, strerror(errno));
	close(req[0]);
	close(ans[1]);

	/* wait for I and J */
	pid_t i = 0, j = 0;
	for (int k = 0; k < 500 && (!i || !j || !uid_line_has(j, "11000")); k++) {
		test_sleep_ms(10);
		i = first_child(a);
		j = i ? first_child(i) : 0;
	}
	char ns_a[256], ns_i[256], ns_j[256];
	if (!i || !j || nspid_line(a, ns_a, sizeof(ns_a)) || nspid_line(i, ns_i, sizeof(ns_i)) ||
	    nspid_line(j, ns_j, sizeof(ns_j)))
		test_fail("the tree did not come up");
	test_msg("A %d I %s J %s", a, ns_i, ns_j);
	test_ready();
	if (test_sabotage())
		kill(j, SIGKILL);
	test_wait();

	char now[256];
	if (nspid_line(a, now, sizeof(now)) || strcmp(now, ns_a))
		test_fail("A: NSpid differs after restore: %s", now);
	if (first_child(a) != i || nspid_line(i, now, sizeof(now)) || strcmp(now, ns_i))
		test_fail("I: not A's child or NSpid differs after restore (was %s)", ns_i);
	if (first_child(i) != j || nspid_line(j, now, sizeof(now)) || strcmp(now, ns_j))
		test_fail("J: not I's child or NSpid differs after restore (was %s)", ns_j);
	if (!ino_of(a, "user") || ino_of(a, "user") == ino_of(getpid(), "user") ||
	    pidns_owner(i) != ino_of(a, "user") || ino_of(i, "user") != ino_of(a, "user"))
		test_fail("the pid namespace is not owned by A's user namespace after restore");
	if (!uid_line_has(j, "11000"))
		test_fail("J's uid seen from the root is not 11000 after restore");
	char ok = 'n';
	if (write(req[1], "?", 1) != 1 || read(ans[0], &ok, 1) != 1 || ok != 'y')
		test_fail("J: pid, uid or hostname inside differ after restore");
	close(req[1]);
	kill(i, SIGKILL); /* the pid namespace's init: J goes with it */
	kill(a, SIGKILL);
	int st;
	waitpid(a, &st, 0);
	test_pass();
}
