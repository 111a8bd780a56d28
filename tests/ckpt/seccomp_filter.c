// stasis-test: timeout=30
// stasis-test: nonroot-known=reading a seccomp filter (PTRACE_SECCOMP_GET_FILTER) needs
//   CAP_SYS_ADMIN in the initial user namespace: the dump is refused
// stasis-test: rootless-known=reading a seccomp filter (PTRACE_SECCOMP_GET_FILTER) needs
//   CAP_SYS_ADMIN in the initial user namespace: the dump is refused
/* Stacked seccomp filters. The root installs A (getcpu fails with EACCES, getpriority
 * with EAGAIN) then B (flag LOG: sysinfo fails with EDOM, getpriority with ENOMEM: the
 * most recent filter wins between two errnos), starts a thread (it inherits A and B) and
 * forks a child that adds its own C (sysinfo fails with ENOEXEC) and then drops every
 * capability (so neither it nor its restore as it is could install a filter: it has no
 * no_new_privs either).
 * After the restore each task and the thread: every filtered syscall fails with its
 * errno, unfiltered ones work (getpid, getppid, uname), /proc status says Seccomp 2 with
 * 2 filters (3 in the child). Then the root installs D with SECCOMP_FILTER_FLAG_TSYNC,
 * which succeeds only if the thread still shares the root's filters (the same filter
 * objects, not copies), and the thread sees D (times fails with EPERM, 3 filters). */
#include "lib.h"

#include <errno.h>
#include <linux/capability.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <pthread.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <unistd.h>

struct rule {
	long nr;
	int err;
};

static int install(const struct rule *rules, int n, unsigned int flags)
{
	struct sock_filter f[32];
	int k = 0;
	f[k++] = (struct sock_filter)BPF_STMT(BPF_LD | BPF_W | BPF_ABS,
					      offsetof(struct seccomp_data, nr));
	for (int i = 0; i < n; i++) {
		f[k++] = (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K,
						      (unsigned int)rules[i].nr, 0, 1);
		f[k++] = (struct sock_filter)BPF_STMT(BPF_RET | BPF_K,
						      SECCOMP_RET_ERRNO | (unsigned int)rules[i].err);
	}
	f[k++] = (struct sock_filter)BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW);
	struct sock_fprog prog = { .len = (unsigned short)k, .filter = f };
	return (int)syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, flags, &prog);
}

/* The errno syscall @nr fails with (0: it worked). */
static int err_of(long nr)
{
	long r;
	errno = 0;
	if (nr == SYS_getpriority)
		r = syscall(nr, PRIO_PROCESS, 0);
	else if (nr == SYS_getcpu)
		r = syscall(nr, NULL, NULL, NULL);
	else {
		char buf[512];
		r = syscall(nr, buf);
	}
	return r == -1 ? errno : 0;
}

/* "Seccomp" and "Seccomp_filters" of /proc/self/task/TID/status. */
static void status_of(pid_t tid, int *mode, int *filters)
{
	char path[64], buf[4096];
	snprintf(path, sizeof(path), "/proc/self/task/%d/status", tid);
	test_read_text(path, buf, sizeof(buf));
	const char *m = strstr(buf, "\nSeccomp:"), *f = strstr(buf, "\nSeccomp_filters:");
	*mode = m ? atoi(m + 9) : -1;
	*filters = f ? atoi(f + 17) : -1;
}

/* Empty if every check holds, else what differs. */
static void check(char *why, size_t len, int sysinfo_err, int nfilters, bool with_d)
{
	int mode, n;
	struct utsname u;
	status_of((pid_t)syscall(SYS_gettid), &mode, &n);
	why[0] = '\0';
	if (err_of(SYS_getcpu) != EACCES)
		snprintf(why, len, "getcpu: errno %d, not EACCES", err_of(SYS_getcpu));
	else if (err_of(SYS_getpriority) != ENOMEM)
		snprintf(why, len, "getpriority: errno %d, not ENOMEM", err_of(SYS_getpriority));
	else if (err_of(SYS_sysinfo) != sysinfo_err)
		snprintf(why, len, "sysinfo: errno %d, not %d", err_of(SYS_sysinfo), sysinfo_err);
	else if (err_of(SYS_times) != (with_d ? EPERM : 0))
		snprintf(why, len, "times: errno %d", err_of(SYS_times));
	else if (syscall(SYS_getpid) <= 0 || getppid() < 0 || uname(&u))
		snprintf(why, len, "an unfiltered syscall failed: %s", strerror(errno));
	else if (mode != 2 || n != nfilters)
		snprintf(why, len, "status: Seccomp %d, Seccomp_filters %d (want 2, %d)", mode, n,
			 nfilters);
}

static volatile int phase; /* 1: check, 2: check with D */
static char thread_why[256];

static void *thread_main(void *arg)
{
	(void)arg;
	for (int want = 1; want <= 2; want++) {
		while (phase != want)
			usleep(1000);
		check(thread_why, sizeof(thread_why), EDOM, want == 1 ? 2 : 3, want == 2);
		if (thread_why[0])
			return NULL;
		__atomic_store_n(&phase, want * 10, __ATOMIC_SEQ_CST);
	}
	return NULL;
}

static int wait_phase(int want)
{
	for (int i = 0; i < 10000 && phase != want; i++) {
		if (thread_why[0])
			return -1;
		usleep(1000);
	}
	return phase == want ? 0 : -1;
}

static void child_main(int rd, int wr)
{
	char c, why[256];
	const struct rule rc[] = { { SYS_sysinfo, ENOEXEC } };
	if (install(rc, 1, 0))
		_exit(11);
	/* every capability dropped, no no_new_privs: the restore cannot install the filters
	 * as the task is now, only before its credentials */
	struct __user_cap_header_struct hdr = { .version = _LINUX_CAPABILITY_VERSION_3 };
	struct __user_cap_data_struct none[2] = { 0 };
	if (syscall(SYS_capset, &hdr, none))
		_exit(10);
	check(why, sizeof(why), ENOEXEC, 3, false);
	if (why[0] || write(wr, "r", 1) != 1)
		_exit(12);
	if (read(rd, &c, 1) != 1)
		_exit(13);
	check(why, sizeof(why), ENOEXEC, 3, false);
	if (why[0]) {
		dprintf(2, "child: %s\n", why);
		_exit(14);
	}
	_exit(0);
}

int main(int argc, char **argv)
{
	test_init(argc, argv);
	const struct rule ra[] = { { SYS_getcpu, EACCES }, { SYS_getpriority, EAGAIN } };
	const struct rule rb[] = { { SYS_sysinfo, EDOM }, { SYS_getpriority, ENOMEM } };
	const struct rule rd[] = { { SYS_times, EPERM } };
	TEST_CHECK(install(ra, 2, 0) == 0, "install A: %s", strerror(errno));
	TEST_CHECK(install(rb, 2, SECCOMP_FILTER_FLAG_LOG) == 0, "install B: %s", strerror(errno));

	pthread_t th;
	TEST_CHECK(pthread_create(&th, NULL, thread_main, NULL) == 0, "pthread_create");
	int down[2], up[2];
	TEST_CHECK(pipe(down) == 0 && pipe(up) == 0, "pipe: %s", strerror(errno));
	pid_t child = fork();
	TEST_CHECK(child >= 0, "fork: %s", strerror(errno));
	if (child == 0)
		child_main(down[0], up[1]);
	char c, why[256];
	TEST_CHECK(test_read_within(up[0], &c, 1, 5000) == 0, "the child did not get ready");
	check(why, sizeof(why), EDOM, 2, false);
	TEST_CHECK(!why[0], "before: %s", why);
	test_ready();
	test_wait();
	if (test_sabotage()) /* a filter more: every task but the child sees it */
		install(rd, 1, SECCOMP_FILTER_FLAG_TSYNC);

	check(why, sizeof(why), EDOM, 2, false);
	TEST_CHECK(!why[0], "root: %s", why);
	phase = 1;
	TEST_CHECK(wait_phase(10) == 0, "thread: %s", thread_why[0] ? thread_why : "no answer");
	TEST_CHECK(write(down[1], "g", 1) == 1, "write to the child");
	int st = test_reap(child, false, 10);
	TEST_CHECK(st == 0, "child: wait status %#x", st);
	/* the thread shares the root's filters: TSYNC can give it one more */
	long r = install(rd, 1, SECCOMP_FILTER_FLAG_TSYNC);
	TEST_CHECK(r == 0, "TSYNC install: %ld (%s): the thread's filters are not the root's", r,
		   r < 0 ? strerror(errno) : "a thread could not take it");
	check(why, sizeof(why), EDOM, 3, true);
	TEST_CHECK(!why[0], "root with D: %s", why);
	phase = 2;
	TEST_CHECK(wait_phase(20) == 0, "thread with D: %s", thread_why[0] ? thread_why : "no answer");
	pthread_join(th, NULL);
	test_pass();
}
