/* Self-checking checkpoint test library: status file protocol, SIGTERM wait, helpers. */
#include "lib.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <sched.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

static volatile sig_atomic_t stop_flag;
static pid_t start_pid;
static const char *status_path;
static const char *test_name = "test";
static bool sabotage;

static void on_sigterm(int sig)
{
	(void)sig;
	stop_flag = 1;
}

static void write_all(int fd, const char *buf, size_t len)
{
	while (len > 0) {
		ssize_t n = write(fd, buf, len);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return;
		}
		buf += n;
		len -= (size_t)n;
	}
}

/* The status file is opened for each write and closed again, so that no extra fd
 * stays open in the checkpointed task and the runner may truncate it. */
static void status_write(const char *text)
{
	int fd;

	if (!status_path)
		return;
	fd = open(status_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
	if (fd < 0) {
		dprintf(2, "%s: cannot open status file %s: %s\n", test_name, status_path,
			strerror(errno));
		return;
	}
	write_all(fd, text, strlen(text));
	close(fd);
}

void test_init(int argc, char **argv)
{
	struct sigaction sa;
	sigset_t set;
	const char *s;

	if (argc > 0 && argv[0]) {
		s = strrchr(argv[0], '/');
		test_name = s ? s + 1 : argv[0];
	}
	start_pid = getpid();
	status_path = getenv("STASIS_TEST_STATUS");
	s = getenv("STASIS_TEST_SABOTAGE");
	sabotage = s && strcmp(s, "1") == 0;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_sigterm;
	sigemptyset(&sa.sa_mask);
	if (sigaction(SIGTERM, &sa, NULL) < 0)
		test_fail("sigaction(SIGTERM): %s", strerror(errno));
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	if (sigprocmask(SIG_UNBLOCK, &set, NULL) < 0)
		test_fail("sigprocmask: %s", strerror(errno));
}

void test_ready(void)
{
	status_write("ready\n");
}

void test_wait(void)
{
	sigset_t mask;

	sigprocmask(SIG_SETMASK, NULL, &mask);
	sigdelset(&mask, SIGTERM);
	while (!stop_flag)
		sigsuspend(&mask);
}

bool test_stop_requested(void)
{
	return stop_flag != 0;
}

const volatile sig_atomic_t *test_stop_flag(void)
{
	return &stop_flag;
}

bool test_sabotage(void)
{
	return sabotage;
}

void test_pass_code(int code)
{
	pid_t now = getpid();

	if (now != start_pid)
		test_fail("pid changed: %d at start, %d now", (int)start_pid, (int)now);
	status_write("PASS\n");
	dprintf(2, "%s: PASS\n", test_name);
	_exit(code);
}

void test_pass(void)
{
	test_pass_code(0);
}

void test_fail(const char *fmt, ...)
{
	char reason[512], line[600], *p;
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(reason, sizeof(reason), fmt, ap);
	va_end(ap);
	/* one line in the status file: the runner reports the first FAIL line */
	for (p = reason; *p; p++)
		if (*p == '\n')
			*p = *(p + 1) ? '|' : ' ';
	snprintf(line, sizeof(line), "FAIL: %s\n", reason);
	status_write(line);
	dprintf(2, "%s: %s", test_name, line);
	_exit(1);
}

void test_msg(const char *fmt, ...)
{
	char text[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(text, sizeof(text), fmt, ap);
	va_end(ap);
	dprintf(2, "%s: %s\n", test_name, text);
}

void test_fill(void *buf, size_t len, uint64_t seed)
{
	uint64_t *p = buf, state = seed ? seed : 0x9E3779B97F4A7C15ull;
	size_t i, n = len / 8;

	for (i = 0; i < n; i++)
		p[i] = test_xorshift64(&state);
}

long test_check(const void *buf, size_t len, uint64_t seed)
{
	const uint64_t *p = buf;
	uint64_t state = seed ? seed : 0x9E3779B97F4A7C15ull;
	size_t i, n = len / 8;

	for (i = 0; i < n; i++) {
		if (p[i] != test_xorshift64(&state))
			return (long)(i * 8);
	}
	return -1;
}

uint64_t test_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

void test_sleep_ms(unsigned int ms)
{
	struct timespec ts = { .tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L };

	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

int test_maps_lines(uintptr_t start, uintptr_t end, char *out, size_t size)
{
	char line[512];
	size_t used = 0;
	int count = 0;
	FILE *f;

	if (size)
		out[0] = '\0';
	f = fopen("/proc/self/maps", "re");
	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f)) {
		unsigned long lo, hi;
		size_t len = strlen(line);

		if (sscanf(line, "%lx-%lx", &lo, &hi) != 2)
			continue;
		if (lo < start || hi > end)
			continue;
		count++;
		if (used + len + 1 <= size) {
			memcpy(out + used, line, len + 1);
			used += len;
		}
	}
	fclose(f);
	return count;
}

void test_maps_strip_inode(char *lines)
{
	char *src = lines, *dst = lines;

	while (*src) {
		char *eol = strchr(src, '\n');
		size_t len = eol ? (size_t)(eol - src) : strlen(src);
		char range[64], perms[8], off[32], dev[16], name[256] = "";
		unsigned long ino;
		int n, consumed = 0;
		char tmp[512];

		snprintf(tmp, sizeof(tmp), "%.*s", (int)len, src);
		n = sscanf(tmp, "%63s %7s %31s %15s %lu %n", range, perms, off, dev, &ino, &consumed);
		if (n >= 5)
			snprintf(name, sizeof(name), "%s", tmp + consumed);
		src += len + (eol ? 1 : 0);
		if (n < 5)
			continue;
		dst += sprintf(dst, "%s %s %s %s %s\n", range, perms, off, dev, name);
	}
	*dst = '\0';
}

int test_read_full(int fd, void *buf, size_t len)
{
	size_t got = 0;

	while (got < len) {
		ssize_t n = read(fd, (char *)buf + got, len - got);

		if (n > 0)
			got += (size_t)n;
		else if (n == 0 || errno != EINTR)
			return -1;
	}
	return 0;
}

int test_write_full(int fd, const void *buf, size_t len)
{
	return write(fd, buf, len) == (ssize_t)len ? 0 : -1;
}

void test_read_text(const char *path, char *buf, size_t len)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	ssize_t n = fd >= 0 ? read(fd, buf, len - 1) : -1;
	buf[n > 0 ? n : 0] = '\0';
	if (fd >= 0)
		close(fd);
}

int test_proc_ids(pid_t pid, struct test_ids *out)
{
	char path[64], buf[1024];
	snprintf(path, sizeof(path), "/proc/%d/stat", pid);
	test_read_text(path, buf, sizeof(buf));
	char *p = strrchr(buf, ')');
	if (!p || sscanf(p + 2, "%c %d %d %d", &out->state, &out->ppid, &out->pgid, &out->sid) != 4)
		return -1;
	return 0;
}

int test_write_text(const char *path, const char *s)
{
	int fd = open(path, O_WRONLY | O_CLOEXEC);
	int ok = fd >= 0 && write(fd, s, strlen(s)) == (ssize_t)strlen(s);
	if (fd >= 0)
		close(fd);
	return ok ? 0 : -1;
}

int test_read_within(int fd, void *buf, size_t len, int ms)
{
	size_t got = 0;
	while (got < len) {
		struct pollfd p = { .fd = fd, .events = POLLIN };
		int r = poll(&p, 1, ms);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return -1;
		ssize_t n = read(fd, (char *)buf + got, len - got);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return -1;
		got += (size_t)n;
	}
	return 0;
}

void test_say(int fd, char c)
{
	TEST_CHECK(write(fd, &c, 1) == 1, "command pipe write: %d", errno);
}

char test_hear(int fd)
{
	char c = 0;
	return test_read_within(fd, &c, 1, 10000) ? 0 : c;
}

void test_place_fd(int fd, int at)
{
	TEST_CHECK(fd >= 0 && (fd == at || dup2(fd, at) == at), "fd %d to %d: %d", fd, at, errno);
	if (fd != at)
		close(fd);
}

int test_cgroup2(char *mnt, size_t mlen, char *own, size_t olen)
{
	char mi[65536], cg[4096];
	test_read_text("/proc/self/mountinfo", mi, sizeof(mi));
	test_read_text("/proc/self/cgroup", cg, sizeof(cg));
	mnt[0] = '\0';
	char *save = NULL;
	for (char *l = strtok_r(mi, "\n", &save); l && !mnt[0]; l = strtok_r(NULL, "\n", &save)) {
		char m[128], fstype[64];
		char *sep = strstr(l, " - ");
		if (sep && sscanf(l, "%*s %*s %*s %*s %127s", m) == 1 &&
		    sscanf(sep + 3, "%63s", fstype) == 1 && !strcmp(fstype, "cgroup2"))
			snprintf(mnt, mlen, "%s", m);
	}
	char *p = strstr(cg, "0::/");
	if (!mnt[0] || !p || (p != cg && p[-1] != '\n'))
		return -1;
	p += 3;
	snprintf(own, olen, "%.*s", (int)strcspn(p, "\n"), p);
	return 0;
}

int test_reap(pid_t pid, bool kill_it, unsigned int secs)
{
	int st = 0;
	pid_t w;
	if (kill_it)
		kill(pid, SIGKILL);
	alarm(secs); /* a child that never exits ends the test (SIGALRM) */
	while ((w = waitpid(pid, &st, 0)) < 0 && errno == EINTR)
		;
	alarm(0);
	return w == pid ? st : -1;
}

ino_t test_ns_related(pid_t pid, const char *kind, unsigned long request)
{
	char path[64];
	snprintf(path, sizeof(path), "/proc/%d/ns/%s", pid, kind);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return 0;
	int r = ioctl(fd, request);
	close(fd);
	struct stat st;
	ino_t ino = r >= 0 && fstat(r, &st) == 0 ? st.st_ino : 0;
	if (r >= 0)
		close(r);
	return ino;
}

void test_create(const char *path)
{
	int fd = open(path, O_CREAT | O_WRONLY | O_TRUNC | O_CLOEXEC, 0644);
	TEST_CHECK(fd >= 0, "create %s: %s", path, strerror(errno));
	close(fd);
}

void test_append(const char *path)
{
	int fd = open(path, O_WRONLY | O_APPEND | O_CLOEXEC);
	TEST_CHECK(fd >= 0 && write(fd, "x", 1) == 1, "append to %s: %s", path, strerror(errno));
	close(fd);
}

/* Calls @fn(@arg, line) for each line of the smaps area starting at @addr, the header
 * first; 0 if there is such an area. */
static int area_lines(const void *addr, void (*fn)(void *arg, const char *line), void *arg)
{
	char l[512];
	bool in = false, found = false;
	FILE *f = fopen("/proc/self/smaps", "r");
	if (!f)
		test_fail("smaps: %s", strerror(errno));
	while (fgets(l, sizeof(l), f)) {
		unsigned long long s, e;
		char perm[8];
		if (sscanf(l, "%llx-%llx %7s", &s, &e, perm) == 3) {
			in = s == (uintptr_t)addr;
			found |= in;
		}
		if (in)
			fn(arg, l);
	}
	fclose(f);
	return found ? 0 : -1;
}

struct area_line_arg {
	char *line;
	size_t len;
};

static void area_line_fn(void *arg, const char *l)
{
	struct area_line_arg *a = arg;
	unsigned long long s, e, ino;
	char perm[8], off[32], dev[16], path[256] = "";
	if (sscanf(l, "%llx-%llx %7s %31s %15s %llu %255[^\n]", &s, &e, perm, off, dev, &ino,
		   path) >= 6)
		snprintf(a->line, a->len, "%llx-%llx %s %s %s %s", s, e, perm, off, dev, path);
}

void test_area_line(const void *addr, char *line, size_t len)
{
	struct area_line_arg a = { line, len };
	line[0] = '\0';
	if (area_lines(addr, area_line_fn, &a) || !line[0])
		test_fail("no area at %p", addr);
}

struct area_kb_arg {
	const char *key;
	unsigned long kb;
};

static void area_kb_fn(void *arg, const char *l)
{
	struct area_kb_arg *a = arg;
	size_t n = strlen(a->key);
	unsigned long v;
	if (!strncmp(l, a->key, n) && l[n] == ':' && sscanf(l + n + 1, "%lu", &v) == 1)
		a->kb = v;
}

unsigned long test_area_kb(const void *addr, const char *key)
{
	struct area_kb_arg a = { key, 0 };
	if (area_lines(addr, area_kb_fn, &a))
		test_fail("no area at %p", addr);
	return a.kb;
}

static void area_flags_fn(void *arg, const char *l)
{
	struct area_line_arg *a = arg;
	if (!strncmp(l, "VmFlags:", 8))
		snprintf(a->line, a->len, "%s", l + 8 + strspn(l + 8, " "));
}

void test_area_vmflags(const void *addr, char *out, size_t len)
{
	struct area_line_arg a = { out, len };
	out[0] = '\0';
	if (area_lines(addr, area_flags_fn, &a))
		test_fail("no area at %p", addr);
	out[strcspn(out, "\n")] = '\0';
}

char test_task_state(pid_t pid, pid_t tid)
{
	char path[64], buf[512], *p;
	if (pid)
		snprintf(path, sizeof(path), "/proc/%d/task/%d/stat", (int)pid, (int)tid);
	else
		snprintf(path, sizeof(path), "/proc/self/task/%d/stat", (int)tid);
	test_read_text(path, buf, sizeof(buf));
	p = strrchr(buf, ')');
	return p && p[1] == ' ' ? p[2] : 0;
}

int test_pick_weighted(uint64_t *rng, const int *weight, int n)
{
	int sum = 0, k = 0;
	for (int i = 0; i < n; i++)
		sum += weight[i];
	int r = (int)(test_xorshift64(rng) % (uint64_t)(sum > 0 ? sum : 1));
	while (k < n - 1 && r >= weight[k])
		r -= weight[k++];
	return k;
}

void test_devpts_pair(const char *pts, int *m, int *s, int *idx)
{
	char path[PATH_MAX];
	int off = 0;
	struct termios t;
	if (unshare(CLONE_NEWNS) < 0 || mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0)
		test_fail("setup: private mount namespace: %s", strerror(errno));
	if (mkdir(pts, 0755) < 0 && errno != EEXIST)
		test_fail("mkdir %s: %s", pts, strerror(errno));
	if (mount("devpts", pts, "devpts", MS_NOSUID | MS_NOEXEC,
		  "newinstance,ptmxmode=0666,mode=620") < 0)
		test_fail("mount devpts: %s", strerror(errno));
	snprintf(path, sizeof(path), "%s/ptmx", pts);
	*m = open(path, O_RDWR | O_NOCTTY);
	if (*m < 0)
		test_fail("open %s: %s", path, strerror(errno));
	if (ioctl(*m, TIOCSPTLCK, &off) || ioctl(*m, TIOCGPTN, idx))
		test_fail("unlock: %s", strerror(errno));
	snprintf(path, sizeof(path), "%s/%d", pts, *idx);
	*s = open(path, O_RDWR | O_NOCTTY);
	if (*s < 0 || tcgetattr(*s, &t))
		test_fail("open %s: %s", path, strerror(errno));
	t.c_lflag &= ~(tcflag_t)ECHO;
	if (tcsetattr(*s, TCSANOW, &t))
		test_fail("tcsetattr: %s", strerror(errno));
}
