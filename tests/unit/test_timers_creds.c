/* timers and creds modules on live tasks, through the remote syscall engine.
 *
 * A child creates two POSIX timers (one periodic, one disarmed with SIGEV_THREAD_ID) at
 * ids 1 and 3 and an ITIMER_REAL, then pause()s; it is seized and dumped. Fresh
 * children then get the timers restored: once with PR_TIMER_CREATE_RESTORE_IDS, once
 * under a seccomp filter that makes that prctl fail with EINVAL (the ordered fallback).
 * Credentials: the unchanged image is a no-op, a drop to nobody without capabilities
 * is applied and checked in /proc, and asking for uid 0 afterwards is refused with a
 * clear error. Needs root (ptrace of children is fine, but creds changes need it). */
#include <fcntl.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <poll.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>

#include "core/log.h"
#include "ptrace/ptrace.h"
#include "sys/uapi.h"
#include "task/task.h"
#include "unit.h"

#define SEC 1000000000ULL

enum child_kind { CHILD_TIMERS, CHILD_PLAIN, CHILD_NO_RESTORE_IDS };

static timer_t make_timer(clockid_t clk, struct sigevent *sev)
{
	timer_t t;
	if (timer_create(clk, sev, &t))
		_exit(10);
	return t;
}

static void child_main(enum child_kind kind, int wfd)
{
	signal(SIGUSR1, SIG_IGN);
	signal(SIGUSR2, SIG_IGN);
	signal(SIGALRM, SIG_IGN);
	if (kind == CHILD_TIMERS) {
		struct sigevent s1 = { .sigev_notify = SIGEV_SIGNAL, .sigev_signo = SIGUSR1 };
		struct sigevent s2 = { .sigev_notify = SIGEV_SIGNAL | SIGEV_THREAD_ID,
				       .sigev_signo = SIGUSR2 };
		struct itimerspec its = { .it_value = { 100, 0 }, .it_interval = { 50, 0 } };
		struct itimerval iv = { .it_value = { 200, 0 }, .it_interval = { 7, 0 } };

		s1.sigev_value.sival_ptr = (void *)0x5151;
		s2.sigev_value.sival_ptr = (void *)0x1234;
		s2._sigev_un._tid = (int)syscall(SYS_gettid);
		timer_t d0 = make_timer(CLOCK_MONOTONIC, NULL);      /* id 0 */
		timer_t a = make_timer(CLOCK_MONOTONIC, &s1);        /* id 1: periodic */
		timer_t d2 = make_timer(CLOCK_MONOTONIC, NULL);      /* id 2 */
		make_timer(CLOCK_REALTIME, &s2);                     /* id 3: disarmed */
		timer_delete(d0);
		timer_delete(d2);
		if (timer_settime(a, 0, &its, NULL) || setitimer(ITIMER_REAL, &iv, NULL))
			_exit(11);
	} else if (kind == CHILD_NO_RESTORE_IDS) {
		/* prctl(PR_TIMER_CREATE_RESTORE_IDS, ...) -> EINVAL, as on kernels before 6.15 */
		struct sock_filter f[] = {
			BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
			BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_prctl, 0, 3),
			BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, args[0])),
			BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, PR_TIMER_CREATE_RESTORE_IDS, 0, 1),
			BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | EINVAL),
			BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
		};
		struct sock_fprog prog = { .len = ARRAY_SIZE(f), .filter = f };
		if (prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog, 0, 0))
			_exit(12);
	}
	if (write(wfd, "r", 1) != 1)
		_exit(13);
	for (;;)
		pause();
}

/* Fork a child of @kind, wait for it to be ready (bounded), seize it and set up the
 * remote engine with scratch memory. Returns the pid or -1. */
static pid_t start_child(enum child_kind kind, struct rsys *rs)
{
	int p[2];
	char b;
	if (pipe(p))
		return -1;
	pid_t pid = fork();
	if (pid < 0)
		return -1;
	if (pid == 0) {
		close(p[0]);
		child_main(kind, p[1]);
	}
	close(p[1]);
	struct pollfd pfd = { .fd = p[0], .events = POLLIN };
	int ok = poll(&pfd, 1, 5000) == 1 && read(p[0], &b, 1) == 1;
	close(p[0]);
	if (!ok) {
		UNIT_FAIL("child %d (kind %d) did not get ready", pid, kind);
		goto kill;
	}
	if (pt_seize_stop(pid, true)) {
		UNIT_FAIL("pt_seize_stop(%d) failed: %s", pid, log_first_error());
		goto kill;
	}

	char path[64], line[512];
	unsigned long long lo = 0, hi = 0;
	snprintf(path, sizeof(path), "/proc/%d/maps", pid);
	FILE *f = fopen(path, "r");
	while (f && fgets(line, sizeof(line), f))
		if (strstr(line, "[vdso]") && sscanf(line, "%llx-%llx", &lo, &hi) == 2)
			break;
	if (f)
		fclose(f);
	if (!lo) {
		UNIT_FAIL("no [vdso] in %s", path);
		goto kill;
	}
	if (rsys_init(rs, pid, lo, hi - lo) || rsys_scratch_map(rs, 0, 65536)) {
		UNIT_FAIL("rsys setup on %d failed: %s", pid, log_first_error());
		goto kill;
	}
	return pid;
kill:
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
	return -1;
}

static void stop_child(pid_t pid, struct rsys *rs)
{
	if (rsys_fini(rs))
		UNIT_FAIL("rsys_fini(%d) failed: %s", pid, log_first_error());
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
}

static Core *dumped;

static const PosixTimer *find_timer(const Core *core, int id)
{
	for (size_t i = 0; i < core->n_posix_timers; i++)
		if (core->posix_timers[i]->id == id)
			return core->posix_timers[i];
	return NULL;
}

static void test_dump(void)
{
	struct dump_ctx c;
	memset(&c, 0, sizeof(c));
	c.pid = c.ospid = start_child(CHILD_TIMERS, &c.rs);
	if (c.pid < 0)
		return;
	char path[64];
	snprintf(path, sizeof(path), "/proc/%d", c.pid);
	c.procfd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	char *buf = read_file_at(c.procfd, "status", 1 << 20, NULL);
	CHECK(buf && proc_parse_status(buf, &c.status) == 0);
	free(buf);
	c.core = malloc(sizeof(*c.core));
	core__init(c.core);

	CHECK_EQ(timers_dump(&c), 0);
	CHECK_EQ(creds_dump(&c), 0);

	Core *k = c.core;
	CHECK_EQ(k->n_itimers, (size_t)3);
	for (size_t i = 0; i < k->n_itimers; i++) {
		const Itimer *it = k->itimers[i];
		if (it->which == ITIMER_REAL) {
			CHECK(it->value_us > 190 * 1000000ULL && it->value_us <= 200 * 1000000ULL);
			CHECK_EQ(it->interval_us, 7 * 1000000ULL);
		} else {
			CHECK_EQ(it->value_us, 0ULL);
			CHECK_EQ(it->interval_us, 0ULL);
		}
	}
	CHECK_EQ(k->n_posix_timers, (size_t)2);
	const PosixTimer *a = find_timer(k, 1), *b = find_timer(k, 3);
	CHECK(a && b);
	if (a && b) {
		CHECK_EQ(a->clock, CLOCK_MONOTONIC);
		CHECK_EQ(a->notify, SIGEV_SIGNAL);
		CHECK_EQ(a->signo, SIGUSR1);
		CHECK_EQ(a->sigval, 0x5151ULL);
		CHECK(a->value_ns > 90 * SEC && a->value_ns <= 100 * SEC);
		CHECK_EQ(a->interval_ns, 50 * SEC);
		CHECK_EQ(b->clock, CLOCK_REALTIME);
		CHECK_EQ(b->notify, SIGEV_SIGNAL | SIGEV_THREAD_ID);
		CHECK_EQ(b->signo, SIGUSR2);
		CHECK_EQ(b->sigval, 0x1234ULL);
		CHECK(b->has_notify_tid);
		CHECK_EQ(b->notify_tid, c.pid);
		CHECK_EQ(b->value_ns, 0ULL);
		CHECK_EQ(b->interval_ns, 0ULL);
	}
	CHECK(k->creds != NULL);
	if (k->creds) {
		CHECK_EQ(k->creds->uid, getuid());
		CHECK_EQ(k->creds->fsgid, getgid());
		CHECK_EQ(k->creds->cap_bnd, c.status.cap_bnd);
		CHECK_EQ(k->creds->securebits, (uint32_t)prctl(PR_GET_SECUREBITS));
	}
	stop_child(c.pid, &c.rs);
	close(c.procfd);
	proc_status_free(&c.status);
	dumped = k;
}

/* Check the timers of a restored child through remote calls. */
static void check_restored(struct rst_ctx *c)
{
	struct itimerspec its;
	struct itimerval iv;
	long r;

	r = rsys_do(&c->rs, "timer_gettime", SYS_timer_gettime, 1, c->rs.scratch, 0, 0, 0, 0);
	CHECK_EQ(r, 0L);
	CHECK(rsys_peek(&c->rs, c->rs.scratch, &its, sizeof(its)) == 0);
	CHECK(its.it_value.tv_sec >= 85 && its.it_value.tv_sec < 100);
	CHECK_EQ(its.it_interval.tv_sec, 50L);
	CHECK_EQ(its.it_interval.tv_nsec, 0L);
	r = rsys_do(&c->rs, "timer_gettime", SYS_timer_gettime, 3, c->rs.scratch, 0, 0, 0, 0);
	CHECK_EQ(r, 0L);
	CHECK(rsys_peek(&c->rs, c->rs.scratch, &its, sizeof(its)) == 0);
	CHECK_EQ(its.it_value.tv_sec, 0L);
	CHECK_EQ(its.it_value.tv_nsec, 0L);
	CHECK_EQ(its.it_interval.tv_sec, 0L);
	/* ids 0 and 2 were not restored (the fallback deleted its stand-ins) */
	long rc0, rc2;
	CHECK(rsys_call(&c->rs, SYS_timer_gettime, 0, c->rs.scratch, 0, 0, 0, 0, &rc0) == 0);
	CHECK(rsys_call(&c->rs, SYS_timer_gettime, 2, c->rs.scratch, 0, 0, 0, 0, &rc2) == 0);
	CHECK_EQ(rc0, (long)-EINVAL);
	CHECK_EQ(rc2, (long)-EINVAL);
	r = rsys_do(&c->rs, "getitimer", SYS_getitimer, ITIMER_REAL, c->rs.scratch, 0, 0, 0, 0);
	CHECK_EQ(r, 0L);
	CHECK(rsys_peek(&c->rs, c->rs.scratch, &iv, sizeof(iv)) == 0);
	CHECK(iv.it_value.tv_sec >= 185 && iv.it_value.tv_sec < 200);
	CHECK_EQ(iv.it_interval.tv_sec, 7L);

	/* notification as the kernel shows it */
	char path[64];
	snprintf(path, sizeof(path), "/proc/%d/timers", c->pid);
	char *buf = read_file_at(AT_FDCWD, path, 1 << 20, NULL);
	struct proc_posix_timer *pt = NULL;
	size_t n = 0;
	CHECK(buf && proc_parse_timers(buf, &pt, &n) == 0);
	CHECK_EQ(n, (size_t)2);
	for (size_t i = 0; i < n; i++) {
		if (pt[i].id == 1) {
			CHECK_EQ(pt[i].signo, SIGUSR1);
			CHECK_EQ(pt[i].sigval, 0x5151ULL);
			CHECK_EQ(pt[i].notify, SIGEV_SIGNAL);
		} else {
			CHECK_EQ(pt[i].id, 3);
			CHECK_EQ(pt[i].signo, SIGUSR2);
			CHECK_EQ(pt[i].sigval, 0x1234ULL);
			CHECK_EQ(pt[i].notify, SIGEV_SIGNAL | SIGEV_THREAD_ID);
			CHECK_EQ(pt[i].notify_tid, c->pid);
			CHECK_EQ(pt[i].clock, CLOCK_REALTIME);
		}
	}
	free(pt);
	free(buf);
}

/* The dumped timer 3 notifies the dumped child's thread: point it at the new child. */
static void retarget(pid_t pid)
{
	for (size_t i = 0; i < dumped->n_posix_timers; i++)
		if (dumped->posix_timers[i]->notify & SIGEV_THREAD_ID)
			dumped->posix_timers[i]->notify_tid = pid;
}

static void restore_timers(enum child_kind kind)
{
	struct rst_ctx c;
	if (!dumped)
		return;
	memset(&c, 0, sizeof(c));
	c.pid = start_child(kind, &c.rs);
	if (c.pid < 0)
		return;
	c.core = dumped;
	retarget(c.pid);
	log_reset_first_error();
	CHECK_EQ(timers_restore_remote(&c), 0);
	if (log_first_error()[0])
		UNIT_FAIL("error logged: %s", log_first_error());
	check_restored(&c);
	/* PR_TIMER_CREATE_RESTORE_IDS is off again */
	if (kind == CHILD_PLAIN) {
		long r = rsys_do(&c.rs, "prctl", SYS_prctl, PR_TIMER_CREATE_RESTORE_IDS,
				 PR_TIMER_CREATE_RESTORE_IDS_GET, 0, 0, 0, 0);
		CHECK_EQ(r, 0L);
	}
	stop_child(c.pid, &c.rs);
}

static void test_restore_timers(void) { restore_timers(CHILD_PLAIN); }
static void test_restore_timers_fallback(void) { restore_timers(CHILD_NO_RESTORE_IDS); }

static int child_status(pid_t pid, struct proc_status *st)
{
	char path[64];
	snprintf(path, sizeof(path), "/proc/%d/status", pid);
	char *buf = read_file_at(AT_FDCWD, path, 1 << 20, NULL);
	memset(st, 0, sizeof(*st));
	int ret = buf ? proc_parse_status(buf, st) : -errno;
	free(buf);
	return ret;
}

static void test_restore_creds(void)
{
	struct rst_ctx c;
	struct proc_status st;
	if (!dumped || !dumped->creds)
		return;
	memset(&c, 0, sizeof(c));
	c.pid = start_child(CHILD_PLAIN, &c.rs);
	if (c.pid < 0)
		return;
	c.core = dumped;

	/* 1. same creds as the restoring process: nothing to do */
	log_reset_first_error();
	CHECK_EQ(creds_restore_remote(&c), 0);
	CHECK_STREQ(log_first_error(), "");

	/* 2. drop to nobody/nogroup, no capabilities but CAP_NET_BIND_SERVICE (also
	 * ambient), a smaller bounding set, NOROOT securebits, no_new_privs */
	Creds save = *dumped->creds;
	Creds *cr = dumped->creds;
	uint32_t groups[2] = { 65534, 100 };
	const uint64_t nbs = 1ULL << 10 /* CAP_NET_BIND_SERVICE */;
	cr->uid = cr->euid = cr->suid = cr->fsuid = 65534;
	cr->gid = cr->egid = cr->sgid = cr->fsgid = 65534;
	cr->groups = groups;
	cr->n_groups = 2;
	cr->cap_prm = cr->cap_eff = cr->cap_inh = cr->cap_amb = nbs;
	cr->cap_bnd = save.cap_bnd & ~(1ULL << 21 /* CAP_SYS_ADMIN */);
	cr->securebits = 1 /* SECBIT_NOROOT */;
	cr->no_new_privs = true;
	log_reset_first_error();
	CHECK_EQ(creds_restore_remote(&c), 1); /* changed */
	if (log_first_error()[0])
		UNIT_FAIL("error logged: %s", log_first_error());
	CHECK_EQ(child_status(c.pid, &st), 0);
	CHECK_EQ(st.uid[0], 65534u);
	CHECK_EQ(st.uid[3], 65534u);
	CHECK_EQ(st.gid[1], 65534u);
	CHECK_EQ(st.ngroups, (size_t)2);
	CHECK_EQ(st.cap_prm, nbs);
	CHECK_EQ(st.cap_eff, nbs);
	CHECK_EQ(st.cap_amb, nbs);
	CHECK_EQ(st.cap_bnd, cr->cap_bnd);
	CHECK_EQ(st.no_new_privs, 1);
	proc_status_free(&st);
	long sb = rsys_do(&c.rs, "prctl", SYS_prctl, PR_GET_SECUREBITS, 0, 0, 0, 0, 0);
	CHECK_EQ(sb, 1L);

	/* 3. asking for root back is refused, with the reason */
	cr->uid = cr->euid = cr->suid = cr->fsuid = 0;
	log_reset_first_error();
	CHECK_EQ(creds_restore_remote(&c), -EPERM);
	CHECK(strstr(log_first_error(), "cannot set uid 0") != NULL);
	CHECK(strstr(log_first_error(), "Operation not permitted") != NULL);
	printf("  expected error: %s\n", log_first_error());

	*dumped->creds = save;
	stop_child(c.pid, &c.rs);
}

int main(void)
{
	if (geteuid() != 0)
		UNIT_SKIP("needs root (ptrace and credential changes)");
	log_set_level(LOG_WARN);
	RUN(test_dump);
	RUN(test_restore_timers);
	RUN(test_restore_timers_fallback);
	RUN(test_restore_creds);
	if (dumped) {
		dumped->comm = strdup("");
		dumped->cwd = strdup("");
		dumped->root = strdup("");
		core__free_unpacked(dumped, NULL);
	}
	return unit_done();
}
