/* Unit tests of src/proc/parse.c on fixtures captured from this machine
 * (tests/fixtures/proc/capture.sh) and on hand-made good and malformed inputs. */
#include <dirent.h>
#include <elf.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>

#include "proc/parse.h"
#include "unit.h"

#ifndef SIGEV_THREAD_ID
#define SIGEV_THREAD_ID 4
#endif

/* A copy in a buffer of exactly len + 1 bytes, so that ASan catches any over-read. */
static char *dup_exact(const char *s, size_t len)
{
	char *p = malloc(len + 1);
	if (!p)
		abort();
	memcpy(p, s, len);
	p[len] = '\0';
	return p;
}

static bool ends_with(const char *s, const char *suffix)
{
	size_t a, b;
	if (!s)
		return false;
	a = strlen(s);
	b = strlen(suffix);
	return a >= b && !strcmp(s + a - b, suffix);
}

static const struct proc_vma *find_vma(const struct proc_vma *v, size_t n, const char *suffix)
{
	for (size_t i = 0; i < n; i++)
		if (ends_with(v[i].path, suffix))
			return &v[i];
	return NULL;
}

static size_t count_header_lines(const char *buf)
{
	size_t n = 0;
	for (const char *p = buf; *p;) {
		const char *q = p;
		while ((*q >= '0' && *q <= '9') || (*q >= 'a' && *q <= 'f'))
			q++;
		if (q != p && *q == '-')
			n++;
		p = strchr(p, '\n');
		if (!p)
			break;
		p++;
	}
	return n;
}

/* ---- captured fixtures ---------------------------------------------------------- */

static struct proc_stat fx_stat;
static struct proc_vma *fx_vmas;
static size_t fx_nvmas;

static void test_stat_fixture(void)
{
	_cleanup_free_ char *buf = unit_fixture("proc/stat", NULL);
	struct proc_stat *st = &fx_stat;

	CHECK_EQ(proc_parse_stat(buf, st), 0);
	CHECK(st->pid > 0);
	CHECK_STREQ(st->comm, "a) b (c");
	CHECK_EQ(st->state, 'R');
	CHECK(st->ppid > 0);
	CHECK_EQ(st->num_threads, 2);
	CHECK_EQ(st->exit_signal, SIGCHLD);
	CHECK_EQ(st->exit_code, 0);
	CHECK(!(st->flags & 0x00200000)); /* not a kthread */
	CHECK(st->start_code < st->end_code);
	CHECK(st->start_data < st->end_data);
	CHECK(st->arg_start < st->arg_end);
	CHECK(st->arg_end <= st->env_start && st->env_start < st->env_end);
	CHECK(st->start_time > 0);
}

static void test_smaps_fixture(void)
{
	_cleanup_free_ char *buf = unit_fixture("proc/smaps", NULL);
	struct proc_vma *v = NULL;
	size_t n = 0;

	CHECK_EQ(proc_parse_smaps(buf, &v, &n), 0);
	CHECK_EQ(n, count_header_lines(buf));
	CHECK(n > 20);
	for (size_t i = 1; i < n; i++)
		CHECK(v[i - 1].end <= v[i].start);
	for (size_t i = 0; i < n; i++) {
		CHECK(v[i].vmflags != 0); /* every smaps entry has a VmFlags line */
		CHECK_EQ(v[i].page_kb, 4); /* and a KernelPageSize line */
	}

	const struct proc_vma *heap = find_vma(v, n, "[heap]");
	const struct proc_vma *stack = find_vma(v, n, "[stack]");
	const struct proc_vma *vdso = find_vma(v, n, "[vdso]");
	const struct proc_vma *vvar = find_vma(v, n, "[vvar]");
	const struct proc_vma *vclock = find_vma(v, n, "[vvar_vclock]");
	const struct proc_vma *vsys = find_vma(v, n, "[vsyscall]");
	const struct proc_vma *space = find_vma(v, n, "/with space.bin");
	const struct proc_vma *gone = find_vma(v, n, "/gone.bin (deleted)");
	const struct proc_vma *zero = find_vma(v, n, "/dev/zero (deleted)");
	const struct proc_vma *exe = find_vma(v, n, "/a) b (c");
	CHECK(heap && stack && vdso && vvar && vclock && vsys && space && gone && zero && exe);
	if (!(heap && stack && vdso && vvar && vclock && vsys && space && gone && zero && exe))
		goto out;

	CHECK_EQ(heap->prot, PROT_READ | PROT_WRITE);
	CHECK(!heap->shared);
	CHECK(heap->start <= fx_stat.start_brk && fx_stat.start_brk < heap->end);
	CHECK(stack->vmflags & VMF_GD);
	CHECK(stack->start <= fx_stat.start_stack && fx_stat.start_stack < stack->end);
	CHECK_EQ(vdso->prot, PROT_READ | PROT_EXEC);
	CHECK(vdso->vmflags & VMF_EX);
	CHECK(vvar->vmflags & VMF_PF);
	CHECK_EQ(vvar->end, vclock->start); /* the vDSO is three adjacent mappings */
	CHECK_EQ(vclock->end, vdso->start);
	CHECK_EQ(vdso->ino, 0);
	CHECK_EQ(vsys->start, 0xffffffffff600000ULL);
	CHECK_EQ(vsys->prot, PROT_EXEC);

	CHECK_EQ(space->end - space->start, 3 * 4096);
	CHECK_EQ(space->pgoff, 4096);
	CHECK(space->shared);
	CHECK_EQ(space->prot, PROT_READ | PROT_WRITE);
	CHECK(space->ino != 0);
	CHECK(space->dev_major != 0 || space->dev_minor != 0);
	CHECK(space->vmflags & VMF_SH);
	CHECK(space->path[0] == '/');

	CHECK_EQ(gone->end - gone->start, 2 * 4096);
	CHECK_EQ(gone->prot, PROT_READ);
	CHECK(gone->shared);

	CHECK(zero->shared); /* shared anonymous memory shows as /dev/zero (deleted) */
	CHECK_EQ(zero->end - zero->start, 2 * 4096);

	CHECK(exe->start <= fx_stat.start_code || exe->start < fx_stat.end_code);

	/* the MADV_DONTFORK | MADV_DONTDUMP anonymous r-x mapping of 4 pages */
	bool found = false;
	for (size_t i = 0; i < n; i++)
		if (!v[i].path && (v[i].vmflags & (VMF_DC | VMF_DD)) == (VMF_DC | VMF_DD) &&
		    v[i].prot == (PROT_READ | PROT_EXEC) && v[i].end - v[i].start == 4 * 4096)
			found = true;
	CHECK(found);

	fx_vmas = v;
	fx_nvmas = n;
	return;
out:
	proc_vmas_free(v, n);
}

static void test_maps_fixture(void)
{
	_cleanup_free_ char *buf = unit_fixture("proc/maps", NULL);
	struct proc_vma *v = NULL;
	size_t n = 0;

	CHECK_EQ(proc_parse_smaps(buf, &v, &n), 0);
	CHECK_EQ(n, count_header_lines(buf));
	/* the same process, read a moment later: the same layout */
	CHECK_EQ(n, fx_nvmas);
	for (size_t i = 0; i < n && i < fx_nvmas; i++) {
		CHECK_EQ(v[i].start, fx_vmas[i].start);
		CHECK_EQ(v[i].end, fx_vmas[i].end);
		CHECK_EQ(v[i].prot, fx_vmas[i].prot);
		CHECK_EQ(v[i].shared, fx_vmas[i].shared);
		CHECK_EQ(v[i].pgoff, fx_vmas[i].pgoff);
		CHECK_EQ(v[i].ino, fx_vmas[i].ino);
		CHECK_EQ(v[i].vmflags, 0);
		CHECK((!v[i].path && !fx_vmas[i].path) ||
		      (v[i].path && fx_vmas[i].path && !strcmp(v[i].path, fx_vmas[i].path)));
	}
	proc_vmas_free(v, n);
}

static void test_smaps_handmade(void)
{
	_cleanup_free_ char *buf = unit_fixture("proc/smaps-handmade", NULL);
	struct proc_vma *v = NULL;
	size_t n = 0;

	CHECK_EQ(proc_parse_smaps(buf, &v, &n), 0);
	CHECK_EQ(n, 4);
	if (n != 4)
		goto out;
	CHECK_EQ(v[0].ino, UINT64_MAX);
	CHECK_EQ(v[0].dev_major, 8);
	CHECK_EQ(v[0].dev_minor, 1);
	CHECK_STREQ(v[0].path, "/opt/x y/prog");
	CHECK_EQ(v[0].vmflags, VMF_RD | VMF_EX | VMF_MR | VMF_MW | VMF_ME | VMF_UNKNOWN); /* dw, zz */
	CHECK_STREQ(v[1].path, "[anon:stasis fixture]");
	CHECK_EQ(v[1].vmflags,
		 VMF_RD | VMF_WR | VMF_MR | VMF_MW | VMF_ME | VMF_AC | VMF_LO | VMF_GU | VMF_SL);
	CHECK_STREQ(v[2].path, "/memfd:buf (deleted)");
	CHECK(v[2].shared);
	CHECK_EQ(v[2].vmflags, 0);
	CHECK_STREQ(v[3].path, "[vsyscall]");
	CHECK_EQ(v[3].end, 0xffffffffff601000ULL);
out:
	proc_vmas_free(v, n);
}

static void test_status_fixture(void)
{
	_cleanup_free_ char *buf = unit_fixture("proc/status", NULL);
	struct proc_status st;

	CHECK_EQ(proc_parse_status(buf, &st), 0);
	CHECK_EQ(st.pid, fx_stat.pid);
	CHECK_EQ(st.tgid, fx_stat.pid);
	CHECK_EQ(st.ppid, fx_stat.ppid);
	CHECK_EQ(st.state, 'R');
	CHECK_EQ(st.threads, 2);
	CHECK_EQ(st.umask, 022);
	CHECK_EQ(st.tracer_pid, 0);
	for (int i = 1; i < 4; i++) {
		CHECK_EQ(st.uid[i], st.uid[0]);
		CHECK_EQ(st.gid[i], st.gid[0]);
	}
	/* captured in a child PID namespace: NSpid has two levels, innermost pid 1 */
	CHECK_EQ(st.nspid_len, 2);
	CHECK_EQ(st.nspid[0], fx_stat.pid);
	CHECK_EQ(st.nspid[1], 1);
	CHECK_EQ(st.nspgid_len, 2);
	CHECK_EQ(st.nspgid[0], fx_stat.pgrp);
	CHECK_EQ(st.nssid_len, 2);
	CHECK_EQ(st.nssid[0], fx_stat.session);
	CHECK(st.cap_bnd != 0);
	CHECK_EQ(st.no_new_privs, 0);
	CHECK_EQ(st.seccomp, 0);
	CHECK_EQ(st.seccomp_filters, 0);
	CHECK_EQ(st.sig_pnd, 0);
	proc_status_free(&st);
	CHECK(st.groups == NULL);
}

static void test_fdinfo_fixtures(void)
{
	struct proc_fdinfo fi;
	_cleanup_free_ char *reg = unit_fixture("proc/fdinfo-reg", NULL);
	_cleanup_free_ char *pipe = unit_fixture("proc/fdinfo-pipe", NULL);
	_cleanup_free_ char *efd = unit_fixture("proc/fdinfo-eventfd", NULL);

	CHECK_EQ(proc_parse_fdinfo(reg, &fi), 0);
	CHECK_EQ(fi.pos, 1234);
	CHECK_EQ(fi.flags, 0100000u /* kernel O_LARGEFILE */ | O_RDWR | O_APPEND);
	CHECK(fi.mnt_id > 0);
	CHECK(fi.ino > 0);

	CHECK_EQ(proc_parse_fdinfo(pipe, &fi), 0);
	CHECK_EQ(fi.pos, 0);
	CHECK_EQ(fi.flags, (unsigned)(O_RDONLY | O_NONBLOCK | O_CLOEXEC));
	CHECK(fi.ino > 0);

	CHECK_EQ(proc_parse_fdinfo(efd, &fi), 0); /* eventfd-* lines skipped */
	CHECK_EQ(fi.flags, (unsigned)O_RDWR);

	CHECK_EQ(proc_parse_fdinfo("pos:\t-1\nflags:\t02\nmnt_id:\t3\n", &fi), 0);
	CHECK_EQ(fi.pos, UINT64_MAX);
	CHECK_EQ(fi.ino, 0); /* before 5.14 there was no ino line */
}

/* Type-specific fdinfo lines of anon-inode files, as this 6.18 kernel prints them. */
static const char fdi_eventfd[] = "pos:\t0\nflags:\t04002\nmnt_id:\t17\nino:\t1038\n"
				  "eventfd-count:                7\neventfd-id: 1\n"
				  "eventfd-semaphore: 1\n";
static const char fdi_timerfd[] = "pos:\t0\nflags:\t04002\nmnt_id:\t17\nino:\t1038\n"
				  "clockid: 1\nticks: 3\nsettime flags: 03\n"
				  "it_value: (1, 499993692)\nit_interval: (0, 100000000)\n";
static const char fdi_signalfd[] = "pos:\t0\nflags:\t02000002\nmnt_id:\t17\nino:\t1038\n"
				   "sigmask:\t0000001000000200\n";
static const char fdi_epoll[] =
	"pos:\t0\nflags:\t02\nmnt_id:\t17\nino:\t1038\n"
	"tfd:        3 events:       1c data:                5  pos:0 ino:40e sdev:10\n"
	"tfd:        7 events: 80000019 data:       1234567890  pos:0 ino:d05ab sdev:f\n";

/* The keys proc_fdinfo_each_key reports: every line but the generic four, by its first
 * word; the refusal of unknown state at dump (files.c) rests on it. */
struct keys_seen {
	char buf[256];
	size_t len;
};

static int collect_key(const char *key, size_t klen, void *arg)
{
	struct keys_seen *k = arg;
	if (k->len + klen + 2 > sizeof(k->buf))
		return -E2BIG;
	memcpy(k->buf + k->len, key, klen);
	k->len += klen;
	k->buf[k->len++] = ',';
	k->buf[k->len] = '\0';
	return 0;
}

static int stop_at_lock(const char *key, size_t klen, void *arg)
{
	(void)arg;
	return klen == 4 && !memcmp(key, "lock", 4) ? 42 : 0;
}

static void test_fdinfo_keys(void)
{
	struct keys_seen k = { .len = 0 };
	static const char locked[] = "pos:\t0\nflags:\t02100001\nmnt_id:\t27\nino:\t10952739\n"
				     "lock:\t1: FLOCK  ADVISORY  WRITE 28784 fe:00:10952739 0 EOF\n"
				     "lock:\t2: POSIX  ADVISORY  WRITE 28784 fe:00:10952739 0 9\n";

	CHECK_EQ(proc_fdinfo_each_key(fdi_timerfd, collect_key, &k), 0);
	CHECK_STREQ(k.buf, "clockid,ticks,settime,it_value,it_interval,");
	k.len = 0;
	k.buf[0] = '\0';
	CHECK_EQ(proc_fdinfo_each_key(fdi_epoll, collect_key, &k), 0);
	CHECK_STREQ(k.buf, "tfd,tfd,");
	k.len = 0;
	k.buf[0] = '\0';
	CHECK_EQ(proc_fdinfo_each_key("pos:\t0\nflags:\t02\nmnt_id:\t3\nino:\t4\n", collect_key,
				      &k),
		 0);
	CHECK_EQ(k.len, 0);
	CHECK_EQ(proc_fdinfo_each_key(locked, stop_at_lock, NULL), 42);
	CHECK_EQ(proc_fdinfo_each_key("pos:\t0\n:\tx\n", collect_key, &k), -EINVAL);
	CHECK_EQ(proc_fdinfo_each_key(NULL, collect_key, &k), -EINVAL);
}

static void test_fdinfo_anon(void)
{
	struct proc_fdinfo_eventfd e;
	struct proc_fdinfo_timerfd t;
	struct proc_epoll_tfd *ep = NULL;
	uint64_t mask;
	size_t n;

	CHECK_EQ(proc_parse_fdinfo_eventfd(fdi_eventfd, &e), 0);
	CHECK_EQ(e.count, 7);
	CHECK_EQ(e.semaphore, 1);
	CHECK_EQ(proc_parse_fdinfo_eventfd("eventfd-count: ffffffff12345678\n", &e), 0);
	CHECK_EQ(e.count, 0xffffffff12345678ULL);
	CHECK_EQ(e.semaphore, -1); /* older kernels: no semaphore line */
	CHECK_EQ(proc_parse_fdinfo_eventfd("eventfd-count: ffffffffffffffff\n", &e), -EINVAL);
	CHECK_EQ(proc_parse_fdinfo_eventfd("eventfd-count: 1\neventfd-count: 2\n", &e), -EINVAL);
	CHECK_EQ(proc_parse_fdinfo_eventfd("eventfd-count: 1 x\n", &e), -EINVAL);
	CHECK_EQ(proc_parse_fdinfo_eventfd("eventfd-count: 1\neventfd-semaphore: 2\n", &e),
		 -EINVAL);
	CHECK_EQ(proc_parse_fdinfo_eventfd(fdi_timerfd, &e), -EINVAL);

	CHECK_EQ(proc_parse_fdinfo_timerfd(fdi_timerfd, &t), 0);
	CHECK_EQ(t.clockid, 1);
	CHECK_EQ(t.ticks, 3);
	CHECK_EQ(t.settime_flags, 3u);
	CHECK_EQ(t.value_sec, 1);
	CHECK_EQ(t.value_nsec, 499993692);
	CHECK_EQ(t.interval_sec, 0);
	CHECK_EQ(t.interval_nsec, 100000000);
	CHECK_EQ(proc_parse_fdinfo_timerfd("clockid: 1\nticks: 0\nsettime flags: 00\n"
					   "it_value: (1, 1000000000)\nit_interval: (0, 0)\n", &t),
		 -EINVAL);
	CHECK_EQ(proc_parse_fdinfo_timerfd("clockid: 1\nticks: 0\nsettime flags: 09\n"
					   "it_value: (1, 0)\nit_interval: (0, 0)\n", &t),
		 -EINVAL);
	CHECK_EQ(proc_parse_fdinfo_timerfd("clockid: 1\nticks: 0\nsettime flags: 00\n"
					   "it_value: (1, 0\nit_interval: (0, 0)\n", &t),
		 -EINVAL);
	CHECK_EQ(proc_parse_fdinfo_timerfd(fdi_eventfd, &t), -EINVAL);

	CHECK_EQ(proc_parse_fdinfo_signalfd(fdi_signalfd, &mask), 0);
	CHECK_EQ(mask, (1ULL << (SIGUSR1 - 1)) | (1ULL << 36));
	CHECK_EQ(proc_parse_fdinfo_signalfd("sigmask:\t0000001g00000200\n", &mask), -EINVAL);
	CHECK_EQ(proc_parse_fdinfo_signalfd("sigmask:\t10000000000000000\n", &mask), -EINVAL);
	CHECK_EQ(proc_parse_fdinfo_signalfd(fdi_eventfd, &mask), -EINVAL);

	CHECK_EQ(proc_parse_fdinfo_epoll(fdi_epoll, &ep, &n), 0);
	CHECK_EQ(n, 2);
	if (n == 2) {
		CHECK_EQ(ep[0].tfd, 3);
		CHECK_EQ(ep[0].events, 0x1cu);
		CHECK_EQ(ep[0].data, 5);
		CHECK_EQ(ep[0].ino, 0x40e);
		CHECK_EQ(ep[0].sdev, 0x10);
		CHECK_EQ(ep[1].tfd, 7);
		CHECK_EQ(ep[1].events, 0x80000019u);
		CHECK_EQ(ep[1].data, 0x1234567890ULL);
		CHECK_EQ(ep[1].ino, 0xd05ab);
	}
	free(ep);
	CHECK_EQ(proc_parse_fdinfo_epoll(fdi_eventfd, &ep, &n), 0); /* empty set */
	CHECK_EQ(n, 0);
	CHECK(ep == NULL);
	CHECK_EQ(proc_parse_fdinfo_epoll("tfd: -1 events: 1 data: 0 pos:0 ino:1 sdev:1\n", &ep, &n),
		 -EINVAL);
	CHECK_EQ(proc_parse_fdinfo_epoll("tfd: 3 events: 1 data: 0 pos:0 ino:1\n", &ep, &n),
		 -EINVAL);
	CHECK_EQ(proc_parse_fdinfo_epoll("tfd: 3 events: 100000000 data: 0 pos:0 ino:1 sdev:1\n",
					 &ep, &n), -EINVAL);
	CHECK(ep == NULL);
	/* newer kernels may append fields after a blank */
	CHECK_EQ(proc_parse_fdinfo_epoll("tfd: 3 events: 1 data: 0 pos:0 ino:1 sdev:1 x:2\n", &ep,
					 &n), 0);
	free(ep);

	/* every prefix: a clean result, no over-read */
	static const char *const all[] = { fdi_eventfd, fdi_timerfd, fdi_signalfd, fdi_epoll };
	for (size_t f = 0; f < ARRAY_SIZE(all); f++) {
		size_t len = strlen(all[f]);
		for (size_t cut = 0; cut < len; cut++) {
			char *b = dup_exact(all[f], cut);
			int r[4];
			r[0] = proc_parse_fdinfo_eventfd(b, &e);
			r[1] = proc_parse_fdinfo_timerfd(b, &t);
			r[2] = proc_parse_fdinfo_signalfd(b, &mask);
			ep = NULL;
			r[3] = proc_parse_fdinfo_epoll(b, &ep, &n);
			free(ep);
			for (int i = 0; i < 4; i++)
				if (r[i] != 0 && r[i] != -EINVAL)
					UNIT_FAIL("anon fdinfo %zu cut at %zu: parser %d returned %d",
						  f, cut, i, r[i]);
			free(b);
		}
		unit_checks++;
	}
}

static void test_timers_fixture(void)
{
	_cleanup_free_ char *buf = unit_fixture("proc/timers", NULL);
	struct proc_posix_timer *t = NULL;
	size_t n = 0;

	CHECK_EQ(proc_parse_timers(buf, &t, &n), 0);
	CHECK_EQ(n, 2);
	for (size_t i = 0; i < n; i++) {
		if (t[i].id == 0) {
			CHECK_EQ(t[i].signo, SIGRTMIN + 1);
			CHECK_EQ(t[i].sigval, 0x1234abcdULL);
			CHECK_EQ(t[i].notify, SIGEV_SIGNAL);
			CHECK_EQ(t[i].notify_tid, fx_stat.pid);
			CHECK_EQ(t[i].clock, CLOCK_REALTIME);
		} else {
			CHECK_EQ(t[i].id, 1);
			CHECK_EQ(t[i].signo, SIGUSR2);
			CHECK_EQ(t[i].sigval, 7);
			CHECK_EQ(t[i].notify, SIGEV_SIGNAL | SIGEV_THREAD_ID);
			CHECK(t[i].notify_tid > fx_stat.pid); /* the second thread */
			CHECK_EQ(t[i].clock, CLOCK_MONOTONIC);
		}
	}
	free(t);
}

static void test_timers_inline(void)
{
	struct proc_posix_timer *t = NULL;
	size_t n = 99;

	CHECK_EQ(proc_parse_timers("", &t, &n), 0);
	CHECK_EQ(n, 0);
	free(t);
	CHECK_EQ(proc_parse_timers("ID: 3\nsignal: 0/0000000000000000\nnotify: none/pid.0\n"
				   "ClockID: -6\nID: 4\nsignal: 14/ffffffffffffffff\n"
				   "notify: thread/pid.9\nClockID: 7\n",
				   &t, &n),
		 0);
	CHECK_EQ(n, 2);
	if (n == 2) {
		CHECK_EQ(t[0].notify, SIGEV_NONE);
		CHECK_EQ(t[0].clock, -6); /* CLOCK_PROCESS_CPUTIME_ID of the process */
		CHECK_EQ(t[1].notify, SIGEV_THREAD);
		CHECK_EQ(t[1].sigval, UINT64_MAX);
		CHECK_EQ(t[1].notify_tid, 9);
	}
	free(t);
}

static void test_auxv_fixture(void)
{
	size_t len;
	_cleanup_free_ char *buf = unit_fixture("proc/auxv", &len);
	uint64_t out[256];
	int n = proc_parse_auxv(buf, len, out, ARRAY_SIZE(out));
	bool pagesz = false, ehdr = false;

	CHECK(n > 2 && n % 2 == 0);
	if (n <= 2)
		return;
	CHECK_EQ(out[n - 2], AT_NULL);
	for (int i = 0; i + 1 < n; i += 2) {
		if (out[i] == AT_PAGESZ) {
			CHECK_EQ(out[i + 1], 4096);
			pagesz = true;
		}
		if (out[i] == AT_SYSINFO_EHDR) {
			const struct proc_vma *vdso = NULL;
			for (size_t k = 0; k < fx_nvmas; k++)
				if (fx_vmas[k].path && !strcmp(fx_vmas[k].path, "[vdso]"))
					vdso = &fx_vmas[k];
			CHECK(vdso && vdso->start == out[i + 1]);
			ehdr = true;
		}
	}
	CHECK(pagesz && ehdr);
	/* the exact number of words fits; one less does not */
	CHECK_EQ(proc_parse_auxv(buf, len, out, (size_t)n), n);
	CHECK_EQ(proc_parse_auxv(buf, len, out, (size_t)n - 1), -EINVAL);
	/* without its AT_NULL pair, or cut mid-pair */
	CHECK_EQ(proc_parse_auxv(buf, (size_t)(n - 2) * 8, out, ARRAY_SIZE(out)), -EINVAL);
	CHECK_EQ(proc_parse_auxv(buf, (size_t)n * 8 - 1, out, ARRAY_SIZE(out)), -EINVAL);
	CHECK_EQ(proc_parse_auxv(buf, 0, out, ARRAY_SIZE(out)), -EINVAL);
	/* unaligned input */
	char *un = malloc(len + 1);
	memcpy(un + 1, buf, len);
	CHECK_EQ(proc_parse_auxv(un + 1, len, out, ARRAY_SIZE(out)), n);
	free(un);
}

/* uid_map as the kernel prints it (%10u %10u %10u), and broken ones */
static void test_idmap(void)
{
	struct id_range r[4];
	CHECK_EQ(proc_parse_idmap("         0          0 4294967295\n", r, 4), 1);
	CHECK_EQ(r[0].count, 4294967295u);
	CHECK_EQ(proc_parse_idmap("         0     100000      65536\n"
				  "     65536       1002          1\n",
				  r, 4),
		 2);
	CHECK_EQ(r[1].inside, 65536);
	CHECK_EQ(r[1].outside, 1002);
	CHECK_EQ(proc_parse_idmap("", r, 4), 0);
	CHECK_EQ(proc_parse_idmap("0 0 1\n0 1 1\n", r, 1), -EINVAL);    /* too many */
	CHECK_EQ(proc_parse_idmap("0 0 0\n", r, 4), -EINVAL);            /* empty range */
	CHECK_EQ(proc_parse_idmap("1 0 4294967295\n", r, 4), -EINVAL);   /* wraps */
	CHECK_EQ(proc_parse_idmap("0 -1 1\n", r, 4), -EINVAL);
	CHECK_EQ(proc_parse_idmap("0 0\n", r, 4), -EINVAL);
	CHECK_EQ(proc_parse_idmap("0 0 1 7\n", r, 4), -EINVAL);
	CHECK_EQ(proc_parse_idmap("0 0 99999999999\n", r, 4), -EINVAL);
}

/* ---- inline cases --------------------------------------------------------------- */

#define STAT_TAIL                                                                           \
	" 0 0 0 0 0 0 0 0 20 0 1 0 61696 10993664 337 18446744073709551615 1 2 3 0 0 0 0 "  \
	"0 0 0 0 0 17 1 0 0 0 0 0 4 5 6 7 8 9 10 0\n"

static void test_stat_inline(void)
{
	struct proc_stat st;

	CHECK_EQ(proc_parse_stat("7 (x) S 1 7 7 34816 -1 4194560" STAT_TAIL, &st), 0);
	CHECK_STREQ(st.comm, "x");
	CHECK_EQ(st.tty_nr, 34816);
	CHECK_EQ(st.flags, 4194560UL);
	CHECK_EQ(st.start_code, 1);
	CHECK_EQ(st.start_stack, 3);
	CHECK_EQ(st.env_end, 10);
	/* a comm with newline, ')' and '(' */
	CHECK_EQ(proc_parse_stat("7 ()\n) ((x) S 1 7 7 0 -1 0" STAT_TAIL, &st), 0);
	CHECK_STREQ(st.comm, ")\n) ((x");
	/* empty comm; a comm longer than 16 bytes is cut (workqueue workers) */
	CHECK_EQ(proc_parse_stat("7 () S 1 7 7 0 -1 0" STAT_TAIL, &st), 0);
	CHECK_STREQ(st.comm, "");
	CHECK_EQ(proc_parse_stat("7 (kworker/u8:2-events_unbound) I 2 0 0 0 -1 69238880" STAT_TAIL,
				 &st),
		 0);
	CHECK_STREQ(st.comm, "kworker/u8:2-eve");
	CHECK_EQ(st.flags & 0x00200000, 0x00200000);
	/* more fields than today's kernel prints are accepted, no trailing newline too */
	CHECK_EQ(proc_parse_stat("7 (x) S 1 7 7 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 61696 10993664 "
				 "337 18446744073709551615 1 2 3 0 0 0 0 0 0 0 0 0 17 1 0 0 0 0 0 4 "
				 "5 6 7 8 9 10 0 99 -5",
				 &st),
		 0);
	CHECK_EQ(proc_parse_stat("", &st), -EINVAL);
	CHECK_EQ(proc_parse_stat("7 (x", &st), -EINVAL);
	CHECK_EQ(proc_parse_stat("7 (x)", &st), -EINVAL);
	CHECK_EQ(proc_parse_stat("7 (x) S", &st), -EINVAL);
	CHECK_EQ(proc_parse_stat("-7 (x) S 1 7 7 0 -1 0" STAT_TAIL, &st), -EINVAL);
	CHECK_EQ(proc_parse_stat("7 (x) S 1 7 7 0 -1 -1" STAT_TAIL, &st), -EINVAL); /* flags < 0 */
	CHECK_EQ(proc_parse_stat("7 (x) S 1 7 7 0 -1 4294967296" STAT_TAIL, &st), -EINVAL);
	CHECK_EQ(proc_parse_stat("7 (x) S 1 7 7 0 -1 0" STAT_TAIL "\n", &st), -EINVAL);
}

static void test_status_inline(void)
{
	_cleanup_free_ char *base = unit_fixture("proc/status", NULL);
	struct proc_status st;
	char *buf;

	/* Groups with the kernel's trailing space; no Umask, NS*, CapAmb lines */
	CHECK_EQ(proc_parse_status("Name:\ta\\nb\nState:\tS (sleeping)\nTgid:\t5\nPid:\t6\n"
				   "PPid:\t1\nUid:\t1000\t1001\t1002\t1003\nGid:\t4\t4\t4\t4\n"
				   "Groups:\t4 24 27 \nThreads:\t3\nSigPnd:\t0\nShdPnd:\t1\n"
				   "SigBlk:\tffffffffffffffff\nSigIgn:\t0\nSigCgt:\t0\nCapInh:\t0\n"
				   "CapPrm:\t0\nCapEff:\t0\nCapBnd:\t000001ffffffffff\n",
				   &st),
		 0);
	CHECK_EQ(st.umask, UINT_MAX);
	CHECK_EQ(st.uid[1], 1001);
	CHECK_EQ(st.uid[3], 1003);
	CHECK_EQ(st.ngroups, 3);
	if (st.ngroups == 3)
		CHECK(st.groups[0] == 4 && st.groups[1] == 24 && st.groups[2] == 27);
	CHECK_EQ(st.nspid_len, 0);
	CHECK_EQ(st.sig_blk, UINT64_MAX);
	CHECK_EQ(st.shd_pnd, 1);
	CHECK_EQ(st.cap_bnd, 0x1ffffffffffULL);
	CHECK_EQ(st.tgid, 5);
	CHECK_EQ(st.pid, 6);
	proc_status_free(&st);

	CHECK_EQ(proc_parse_status("", &st), -EINVAL);
	CHECK(st.groups == NULL);
	/* a malformed Groups line after a good one frees what was collected */
	if (asprintf(&buf, "%sGroups:\t1 2 3 x\n", base) > 0) {
		CHECK_EQ(proc_parse_status(buf, &st), -EINVAL);
		CHECK(st.groups == NULL);
		free(buf);
	}
	/* NSpid deeper than PROC_MAX_NS_LEVEL */
	char ns[512] = "NSpid:";
	for (int i = 0; i < PROC_MAX_NS_LEVEL + 1; i++)
		strcat(ns, "\t1");
	if (asprintf(&buf, "%s%s\n", base, ns) > 0) {
		char *p = strstr(buf, "NSpid:");
		*p = 'X'; /* drop the real one */
		CHECK_EQ(proc_parse_status(buf, &st), -EINVAL);
		free(buf);
	}
}

static void test_smaps_inline(void)
{
	struct proc_vma *v = NULL;
	size_t n = 0;

	CHECK_EQ(proc_parse_smaps("", &v, &n), -EINVAL);
	CHECK(v == NULL && n == 0);
	/* no newline at the end; anonymous without the trailing space */
	CHECK_EQ(proc_parse_smaps("1000-2000 r--p 00000000 00:00 0", &v, &n), 0);
	CHECK_EQ(n, 1);
	if (n == 1)
		CHECK(v[0].path == NULL && v[0].prot == PROT_READ);
	proc_vmas_free(v, n);
	/* a path longer than the bound */
	size_t big = 70 * 1024;
	char *s = malloc(big + 64);
	strcpy(s, "1000-2000 r--p 00000000 00:00 0 /");
	memset(s + strlen(s), 'a', big);
	s[33 + big] = '\0';
	CHECK_EQ(proc_parse_smaps(s, &v, &n), -EINVAL);
	free(s);
	/* a hugetlb area's page size; a zero or absurd one */
	CHECK_EQ(proc_parse_smaps("200000-600000 rw-p 00000000 00:10 7 /anon_hugepage (deleted)\n"
				  "KernelPageSize:     2048 kB\nVmFlags: rd wr ht\n",
				  &v, &n),
		 0);
	if (n == 1)
		CHECK(v[0].page_kb == 2048 && (v[0].vmflags & VMF_HT));
	proc_vmas_free(v, n);
	CHECK_EQ(proc_parse_smaps("1000-2000 r--p 00000000 00:00 0 \nKernelPageSize: 0 kB\n", &v, &n),
		 -EINVAL);
	CHECK_EQ(proc_parse_smaps("1000-2000 r--p 00000000 00:00 0 \nKernelPageSize: 99999999999 kB\n",
				  &v, &n),
		 -EINVAL);
	/* two VmFlags for one vma */
	CHECK_EQ(proc_parse_smaps("1000-2000 r--p 00000000 00:00 0 \nVmFlags: rd\nVmFlags: rd\n",
				  &v, &n),
		 -EINVAL);
}

/* read_records_at (small reads, each smaps record made once) gives the same areas as one
 * read_file_at (not the same text: the counts of pages shared with this process move as
 * it writes): a child with areas of many sizes, many pages of text. */
static void test_smaps_records(void)
{
	int p[2];
	CHECK_EQ(pipe(p), 0);
	pid_t pid = fork();
	if (pid == 0) {
		for (int i = 0; i < 40; i++) {
			size_t len = (size_t)(i % 7 + 1) << (12 + i % 5);
			char *a = mmap(NULL, len, PROT_READ | (i % 2 ? PROT_WRITE : 0),
				       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
			if (a != MAP_FAILED && i % 2)
				memset(a, 1, len);
		}
		if (write(p[1], "r", 1) != 1)
			_exit(1);
		for (;;)
			pause();
	}
	char c;
	CHECK(pid > 0 && read(p[0], &c, 1) == 1);
	close(p[0]);
	close(p[1]);
	char path[64];
	snprintf(path, sizeof(path), "/proc/%d/smaps", (int)pid);
	size_t len = 0;
	char *whole = read_file_at(AT_FDCWD, path, 1 << 24, &len);
	char *recs = read_records_at(AT_FDCWD, path, 1 << 24);
	CHECK(whole && recs && len > 16384);
	struct proc_vma *v = NULL, *w = NULL;
	size_t n = 0, nw = 0;
	CHECK_EQ(proc_parse_smaps(recs, &v, &n), 0);
	CHECK_EQ(proc_parse_smaps(whole, &w, &nw), 0);
	CHECK(n > 40 && n == nw);
	for (size_t i = 0; i < n && n == nw; i++)
		CHECK(v[i].start == w[i].start && v[i].end == w[i].end &&
		      v[i].vmflags == w[i].vmflags && v[i].prot == w[i].prot);
	proc_vmas_free(v, n);
	proc_vmas_free(w, nw);
	/* the bound holds as for read_file_at */
	CHECK(read_records_at(AT_FDCWD, path, 8192) == NULL && errno == EFBIG);
	free(whole);
	free(recs);
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
}

/* Every file in tests/fixtures/proc/bad/ is malformed; its name prefix says which parser. */
static void test_bad_fixtures(void)
{
	_cleanup_free_ char *dirpath = unit_fixture_path("proc/bad");
	DIR *d = opendir(dirpath);
	struct dirent *de;
	int count = 0;

	CHECK(d != NULL);
	if (!d)
		return;
	while ((de = readdir(d))) {
		char rel[512];
		int ret = 1;
		if (de->d_name[0] == '.')
			continue;
		snprintf(rel, sizeof(rel), "proc/bad/%s", de->d_name);
		_cleanup_free_ char *buf = unit_fixture(rel, NULL);
		if (!strncmp(de->d_name, "maps-", 5) || !strncmp(de->d_name, "smaps-", 6)) {
			struct proc_vma *v = NULL;
			size_t n = 0;
			ret = proc_parse_smaps(buf, &v, &n);
			CHECK(v == NULL);
			proc_vmas_free(v, n);
		} else if (!strncmp(de->d_name, "stat-", 5)) {
			struct proc_stat st;
			ret = proc_parse_stat(buf, &st);
		} else if (!strncmp(de->d_name, "status-", 7)) {
			struct proc_status st;
			ret = proc_parse_status(buf, &st);
			CHECK(st.groups == NULL);
			proc_status_free(&st);
		} else if (!strncmp(de->d_name, "fdinfo-", 7)) {
			struct proc_fdinfo fi;
			ret = proc_parse_fdinfo(buf, &fi);
		} else if (!strncmp(de->d_name, "timers-", 7)) {
			struct proc_posix_timer *t = NULL;
			size_t n = 0;
			ret = proc_parse_timers(buf, &t, &n);
			free(t);
		} else {
			UNIT_FAIL("unknown bad fixture %s", de->d_name);
			continue;
		}
		if (ret != -EINVAL)
			UNIT_FAIL("bad fixture %s: got %d, want -EINVAL", de->d_name, ret);
		unit_checks++;
		count++;
	}
	closedir(d);
	CHECK(count >= 20);
}

/* Every prefix of every good fixture: a clean result (0 or -EINVAL), no over-read (the
 * copies are exactly sized for ASan), no leak. */
static void test_truncations(void)
{
	static const char *const names[] = { "proc/stat",	"proc/status",	"proc/smaps",
					     "proc/maps",	"proc/timers",	"proc/fdinfo-reg",
					     "proc/fdinfo-eventfd", "proc/smaps-handmade" };
	for (size_t f = 0; f < ARRAY_SIZE(names); f++) {
		size_t len;
		_cleanup_free_ char *full = unit_fixture(names[f], &len);
		size_t step = len > 4000 ? 7 : 1; /* keep smaps quick */
		for (size_t cut = 0; cut < len; cut += step) {
			char *b = dup_exact(full, cut);
			int r[5];
			struct proc_vma *v = NULL;
			struct proc_posix_timer *t = NULL;
			struct proc_stat st;
			struct proc_status ss;
			struct proc_fdinfo fi;
			size_t n = 0, nt = 0;
			r[0] = proc_parse_smaps(b, &v, &n);
			proc_vmas_free(v, n);
			r[1] = proc_parse_stat(b, &st);
			r[2] = proc_parse_status(b, &ss);
			proc_status_free(&ss);
			r[3] = proc_parse_fdinfo(b, &fi);
			r[4] = proc_parse_timers(b, &t, &nt);
			free(t);
			for (int i = 0; i < 5; i++)
				if (r[i] != 0 && r[i] != -EINVAL)
					UNIT_FAIL("%s cut at %zu: parser %d returned %d", names[f],
						  cut, i, r[i]);
			free(b);
		}
		unit_checks++;
	}
}

/* /proc/locks and the lock lines of an fdinfo, captured on this 6.18 kernel: a lease,
 * an OFD lock (pid -1), POSIX locks with a waiter ("->"), a flock with a waiter. */
static void test_locks_fixtures(void)
{
	_cleanup_free_ char *all = unit_fixture("proc/locks", NULL);
	_cleanup_free_ char *fdi = unit_fixture("proc/fdinfo-locks", NULL);
	struct proc_lock *l = NULL;
	size_t n = 0;

	CHECK_EQ(proc_parse_locks(all, false, &l, &n), 0);
	CHECK_EQ(n, 7);
	if (n == 7) {
		CHECK_EQ(l[0].kind, PROC_LOCK_LEASE);
		CHECK_EQ(l[0].type, F_RDLCK);
		CHECK(l[0].advisory && !l[0].breaking && !l[0].waiter);
		CHECK_EQ(l[0].end, -1);
		CHECK_EQ(l[1].kind, PROC_LOCK_OFD);
		CHECK_EQ(l[1].pid, -1);
		CHECK_EQ(l[1].start, 200);
		CHECK_EQ(l[1].end, -1);
		CHECK_EQ(l[1].dev_major, 0xfe);
		CHECK_EQ(l[1].dev_minor, 0);
		CHECK_EQ(l[1].ino, 10953142);
		CHECK_EQ(l[2].kind, PROC_LOCK_POSIX);
		CHECK_EQ(l[2].type, F_WRLCK);
		CHECK_EQ(l[2].start, 50);
		CHECK_EQ(l[2].end, 69);
		CHECK(!l[2].waiter && l[3].waiter);
		CHECK_EQ(l[3].pid, 5533);
		CHECK_EQ(l[5].kind, PROC_LOCK_FLOCK);
		CHECK(l[6].waiter && l[6].kind == PROC_LOCK_FLOCK && l[6].type == F_RDLCK);
	}
	free(l);
	CHECK_EQ(proc_parse_locks(fdi, true, &l, &n), 0);
	CHECK_EQ(n, 2);
	if (n == 2) {
		CHECK_EQ(l[0].kind, PROC_LOCK_POSIX);
		CHECK_EQ(l[0].type, F_RDLCK);
		CHECK_EQ(l[0].start, 5);
		CHECK_EQ(l[0].end, 14);
		CHECK_EQ(l[1].pid, 5488);
	}
	free(l);
	/* an fdinfo without locks, a mandatory lock, a breaking lease */
	CHECK_EQ(proc_parse_locks("pos:\t0\nflags:\t02\nmnt_id:\t3\n", true, &l, &n), 0);
	CHECK_EQ(n, 0);
	CHECK_EQ(proc_parse_locks("1: POSIX  MANDATORY WRITE 7 08:01:9 0 EOF\n", false, &l, &n), 0);
	CHECK(n == 1 && !l[0].advisory);
	free(l);
	CHECK_EQ(proc_parse_locks("1: LEASE  BREAKING  UNLCK 7 08:01:9 0 EOF\n", false, &l, &n), 0);
	CHECK(n == 1 && l[0].breaking && l[0].type == F_UNLCK);
	free(l);
	static const char *const bad[] = {
		"1: POSIX  ADVISORY  WRITE 7 08:01:9 10 5\n",  /* end before start */
		"1: POSIX  ADVISORY  WRITE 7 08:01:9 -1 5\n",  /* negative start */
		"1: POSIX  ADVISORY  WRITE -2 08:01:9 0 5\n",  /* pid */
		"1: POSIX  ADVISORY  WRITE 7 08:01 0 5\n",     /* no inode */
		"1: POSIX  ADVISORY  WRITE 7 08:01:9 0 5 x\n", /* trailing junk */
		"1: SPLAT  ADVISORY  WRITE 7 08:01:9 0 5\n",   /* kind */
		"1: POSIX  ADVISORY  BOTH 7 08:01:9 0 5\n",    /* type */
		"x: POSIX  ADVISORY  WRITE 7 08:01:9 0 5\n",   /* id */
		"1: POSIX  ADVISORY  WRITE 7 08:01:9 0 9223372036854775807\n",
	};
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
		l = (struct proc_lock *)1;
		CHECK_EQ(proc_parse_locks(bad[i], false, &l, &n), -EINVAL);
		CHECK(l == NULL && n == 0);
	}
	CHECK_EQ(proc_parse_locks("lock:\t1: FLOCK  ADVISORY  WRITE 7 08:01:9 0\n", true, &l, &n),
		 -EINVAL);
}

/* Captured on 6.18: an inotify with a directory and a one-shot file watch, a fanotify
 * with inode, filesystem and mount marks. */
static const char fdi_inotify[] =
	"pos:\t0\nflags:\t00\nmnt_id:\t17\nino:\t1038\n"
	"inotify wd:2 ino:a7c1eb sdev:fe00000 mask:4000fff ignored_mask:0 fhandle-bytes:8 "
	"fhandle-type:1 f_handle:ebc1a700e865cfce\n"
	"inotify wd:1 ino:a7c204 sdev:fe00000 mask:80000002 ignored_mask:0 fhandle-bytes:8 "
	"fhandle-type:1 f_handle:04c2a70089774298\n";
static const char fdi_fanotify[] =
	"pos:\t0\nflags:\t04002\nmnt_id:\t17\nino:\t1038\n"
	"fanotify flags:6 event-flags:8000\n"
	"fanotify ino:a7c1eb sdev:fe00000 mflags:0 mask:0 ignored_mask:1 fhandle-bytes:8 "
	"fhandle-type:1 f_handle:ebc1a700e865cfce\n"
	"fanotify sdev:fe00000 mflags:0 mask:2 ignored_mask:0\n"
	"fanotify mnt_id:1b mflags:0 mask:22 ignored_mask:0\n";

static void test_fdinfo_fsnotify(void)
{
	struct proc_fsnotify_mark *m = NULL;
	struct proc_fanotify fan;
	size_t n = 0;

	CHECK_EQ(proc_parse_fdinfo_inotify(fdi_inotify, &m, &n), 0);
	CHECK_EQ(n, 2);
	if (n == 2) {
		CHECK_EQ(m[0].wd, 2);
		CHECK_EQ(m[0].ino, 0xa7c1eb);
		CHECK_EQ(m[0].sdev, 0xfe00000);
		CHECK_EQ(m[0].mask, 0x4000fffu);
		CHECK(m[0].has_fh && m[0].fh_bytes == 8 && m[0].fh_type == 1);
		CHECK(m[0].fh[0] == 0xeb && m[0].fh[7] == 0xce);
		CHECK_EQ(m[1].wd, 1);
		CHECK_EQ(m[1].mask, 0x80000002u);
	}
	free(m);
	CHECK_EQ(proc_parse_fdinfo_inotify(fdi_eventfd, &m, &n), 0);
	CHECK_EQ(n, 0);
	/* a line without a handle (a filesystem that cannot encode one) */
	CHECK_EQ(proc_parse_fdinfo_inotify("inotify wd:3 ino:5 sdev:1 mask:2 ignored_mask:0 \n",
					   &m, &n), 0);
	CHECK(n == 1 && !m[0].has_fh && m[0].wd == 3);
	free(m);
	static const char *const bad[] = {
		"inotify wd:0 ino:5 sdev:1 mask:2 ignored_mask:0\n",
		"inotify wd:80000000 ino:5 sdev:1 mask:2 ignored_mask:0\n",
		"inotify wd:1 ino:5 mask:2 ignored_mask:0\n",
		"inotify wd:1 ino:5 sdev:1 mask:2 ignored_mask:0 fhandle-bytes:81 fhandle-type:1 "
		"f_handle:00\n",
		"inotify wd:1 ino:5 sdev:1 mask:2 ignored_mask:0 fhandle-bytes:2 fhandle-type:1 "
		"f_handle:0\n",
		"inotify wd:1 ino:5 sdev:1 mask:2 ignored_mask:0 fhandle-bytes:1 fhandle-type:1 "
		"f_handle:0011\n",
	};
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
		m = NULL;
		if (proc_parse_fdinfo_inotify(bad[i], &m, &n) != -EINVAL || m)
			UNIT_FAIL("bad inotify line %zu accepted", i);
	}

	CHECK_EQ(proc_parse_fdinfo_fanotify(fdi_fanotify, &fan, &m, &n), 0);
	CHECK_EQ(fan.flags, 6);
	CHECK_EQ(fan.event_flags, 0x8000);
	CHECK_EQ(n, 3);
	if (n == 3) {
		CHECK(m[0].type == PROC_MARK_INODE && m[0].ino == 0xa7c1eb && m[0].has_fh);
		CHECK(m[0].mask == 0 && m[0].ignored_mask == 1);
		CHECK(m[1].type == PROC_MARK_SB && m[1].sdev == 0xfe00000 && m[1].mask == 2);
		CHECK(m[2].type == PROC_MARK_MOUNT && m[2].mnt_id == 0x1b && m[2].mask == 0x22);
	}
	free(m);
	CHECK_EQ(proc_parse_fdinfo_fanotify(fdi_inotify, &fan, &m, &n), -EINVAL);
	CHECK_EQ(proc_parse_fdinfo_fanotify("fanotify flags:6 event-flags:8000\n"
					    "fanotify mnt_id:1b mask:22 ignored_mask:0\n",
					    &fan, &m, &n), -EINVAL);

	/* every prefix: a clean result, no over-read */
	static const char *const all[] = { fdi_inotify, fdi_fanotify };
	for (size_t f = 0; f < ARRAY_SIZE(all); f++) {
		size_t len = strlen(all[f]);
		for (size_t cut = 0; cut < len; cut++) {
			char *b = dup_exact(all[f], cut);
			m = NULL;
			int r0 = proc_parse_fdinfo_inotify(b, &m, &n);
			free(m);
			m = NULL;
			int r1 = proc_parse_fdinfo_fanotify(b, &fan, &m, &n);
			free(m);
			if ((r0 && r0 != -EINVAL) || (r1 && r1 != -EINVAL))
				UNIT_FAIL("fsnotify fdinfo %zu cut at %zu: %d %d", f, cut, r0, r1);
			free(b);
		}
	}
}

int main(void)
{
	RUN(test_stat_fixture);
	RUN(test_smaps_fixture);
	RUN(test_maps_fixture);
	RUN(test_smaps_handmade);
	RUN(test_status_fixture);
	RUN(test_fdinfo_fixtures);
	RUN(test_fdinfo_anon);
	RUN(test_locks_fixtures);
	RUN(test_fdinfo_fsnotify);
	RUN(test_timers_fixture);
	RUN(test_timers_inline);
	RUN(test_auxv_fixture);
	RUN(test_idmap);
	RUN(test_stat_inline);
	RUN(test_status_inline);
	RUN(test_smaps_inline);
	RUN(test_smaps_records);
	RUN(test_bad_fixtures);
	RUN(test_truncations);
	RUN(test_fdinfo_keys);
	proc_vmas_free(fx_vmas, fx_nvmas);
	return unit_done();
}
