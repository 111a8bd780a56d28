// stasis-test: timeout=40
/* File locks held by a tree, each by its owner:
 *   - "flock": an flock LOCK_EX on a description the parent shares with child C1 (fork);
 *     C3 waits in flock(LOCK_EX) on a description of its own;
 *   - "flock_sh": an flock LOCK_SH on a description of C1 only;
 *   - "posix": POSIX record locks of two processes on one file: parent read [0, 99] and
 *     write [200, 299], C1 read [100, 149] and write [1000, 1099]; an OFD write lock
 *     [5000, EOF] on a description the parent shares with C1; C2 waits in F_SETLKW for a
 *     write lock on [200, 299];
 *   - "lease": a read lease on a read-only description of the parent.
 * After the restore a fresh process probes every range with F_GETLK / F_OFD_GETLK (type,
 * exact bounds, holder pid; -1 for the OFD lock) and flock LOCK_NB from descriptions of
 * its own; C1 proves the flock and the OFD lock are its shared descriptions' (re-taking
 * them succeeds, a fresh description is refused) and its POSIX locks its own; the parent
 * reads its lease back. Then the parent releases [200, 299] and its flock: the waiters
 * C2 and C3 (whose waits restarted) get their locks. */
#include "lib.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define EOF_LEN 0

static int open_file(const char *name, int flags)
{
	int fd = open(name, flags | O_CLOEXEC, 0600);
	if (fd < 0)
		test_fail("open %s: %s", name, strerror(errno));
	return fd;
}

static int setlk(int fd, int cmd, short type, off_t start, off_t len)
{
	struct flock fl = { .l_type = type, .l_whence = SEEK_SET, .l_start = start, .l_len = len };
	return fcntl(fd, cmd, &fl);
}

/* In a process of its own: what the kernel says of one range. 0 if as expected. */
static int probe(int fd, int cmd, short want, off_t start, off_t len, short type, off_t hstart,
		 off_t hlen, pid_t holder, char *why, size_t n)
{
	struct flock fl = { .l_type = want, .l_whence = SEEK_SET, .l_start = start, .l_len = len };
	if (fcntl(fd, cmd, &fl)) {
		snprintf(why, n, "GETLK [%lld,+%lld]: %s", (long long)start, (long long)len,
			 strerror(errno));
		return -1;
	}
	if (fl.l_type != type ||
	    (type != F_UNLCK && (fl.l_start != hstart || fl.l_len != hlen || fl.l_pid != holder))) {
		snprintf(why, n,
			 "%s %s [%lld,+%lld]: got type %d [%lld,+%lld] pid %d, expected type %d "
			 "[%lld,+%lld] pid %d",
			 cmd == F_GETLK ? "F_GETLK" : "F_OFD_GETLK",
			 want == F_WRLCK ? "write" : "read", (long long)start, (long long)len,
			 fl.l_type, (long long)fl.l_start, (long long)fl.l_len, fl.l_pid, type,
			 (long long)hstart, (long long)hlen, holder);
		return -1;
	}
	return 0;
}

/* Can a description of our own take flock @op? 1 yes (released again), 0 no, -1 error. */
static int flock_free(const char *name, int op)
{
	int fd = open(name, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	int r = flock(fd, op | LOCK_NB);
	int err = errno;
	close(fd);
	return r == 0 ? 1 : err == EWOULDBLOCK ? 0 : -1;
}

/* A fresh process, after the restore: every lock of the tree seen from outside. */
static __attribute__((noreturn)) void prober(int out, pid_t parent, pid_t c1)
{
	char why[256] = "";
	int fd = open("posix", O_RDWR | O_CLOEXEC);
	int bad = fd < 0;
	if (bad)
		snprintf(why, sizeof(why), "open posix: %s", strerror(errno));
	struct {
		short want;
		off_t start, len;
		short type;
		off_t hstart, hlen;
		pid_t holder;
	} t[] = {
		{ F_WRLCK, 0, 1, F_RDLCK, 0, 100, parent },
		{ F_WRLCK, 99, 1, F_RDLCK, 0, 100, parent },
		{ F_RDLCK, 0, 100, F_UNLCK, 0, 0, 0 },
		{ F_WRLCK, 100, 1, F_RDLCK, 100, 50, c1 },
		{ F_WRLCK, 149, 1, F_RDLCK, 100, 50, c1 },
		{ F_WRLCK, 150, 50, F_UNLCK, 0, 0, 0 },
		{ F_RDLCK, 200, 1, F_WRLCK, 200, 100, parent },
		{ F_RDLCK, 299, 1, F_WRLCK, 200, 100, parent },
		{ F_WRLCK, 300, 700, F_UNLCK, 0, 0, 0 },
		{ F_RDLCK, 1000, 1, F_WRLCK, 1000, 100, c1 },
		{ F_RDLCK, 1099, 1, F_WRLCK, 1000, 100, c1 },
		{ F_WRLCK, 1100, 3900, F_UNLCK, 0, 0, 0 },
	};
	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]) && !bad; i++)
		bad = probe(fd, F_GETLK, t[i].want, t[i].start, t[i].len, t[i].type, t[i].hstart,
			    t[i].hlen, t[i].holder, why, sizeof(why));
	/* the OFD lock: no pid, to the end of the file */
	if (!bad)
		bad = probe(fd, F_OFD_GETLK, F_RDLCK, 5000, 1, F_WRLCK, 5000, EOF_LEN, -1, why,
			    sizeof(why));
	if (!bad)
		bad = probe(fd, F_OFD_GETLK, F_RDLCK, 1 << 30, 1, F_WRLCK, 5000, EOF_LEN, -1, why,
			    sizeof(why));
	if (!bad)
		bad = probe(fd, F_OFD_GETLK, F_WRLCK, 4000, 1000, F_UNLCK, 0, 0, 0, why, sizeof(why));
	if (!bad && (flock_free("flock", LOCK_SH) != 0 || flock_free("flock", LOCK_EX) != 0)) {
		bad = 1;
		snprintf(why, sizeof(why), "the flock LOCK_EX on \"flock\" is not held");
	}
	if (!bad && (flock_free("flock_sh", LOCK_SH) != 1 || flock_free("flock_sh", LOCK_EX) != 0)) {
		bad = 1;
		snprintf(why, sizeof(why), "the flock LOCK_SH on \"flock_sh\" is not held as shared");
	}
	if (bad)
		(void)!write(out, why, strlen(why));
	_exit(bad ? 1 : 0);
}

/* C1: its own POSIX locks and a description of its own with LOCK_SH, the parent's flock
 * and OFD descriptions inherited. Checks after @go, reports in its exit status, exits at
 * @end. */
static __attribute__((noreturn)) void child1(int posix, int fl, int ofd, int go, int end, int ready)
{
	char c;
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	int sh = open_file("flock_sh", O_RDONLY);
	if (setlk(posix, F_SETLK, F_RDLCK, 100, 50) || setlk(posix, F_SETLK, F_WRLCK, 1000, 100) ||
	    flock(sh, LOCK_SH | LOCK_NB))
		_exit(10);
	if (write(ready, "r", 1) != 1)
		_exit(11);
	if (test_read_full(go, &c, 1))
		_exit(12);
	/* the shared descriptions own their locks: taking them again is no conflict */
	if (flock(fl, LOCK_EX | LOCK_NB))
		_exit(13);
	if (setlk(ofd, F_OFD_SETLK, F_WRLCK, 5000, EOF_LEN))
		_exit(14);
	/* ... and another description of this process is refused */
	int other = open_file("flock", O_RDONLY);
	if (flock(other, LOCK_EX | LOCK_NB) == 0 || errno != EWOULDBLOCK)
		_exit(15);
	close(other);
	/* its POSIX locks are its own (no conflict with itself), the parent's are not */
	struct flock q = { .l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = 100, .l_len = 50 };
	if (fcntl(posix, F_GETLK, &q) || q.l_type != F_UNLCK)
		_exit(16);
	q = (struct flock){ .l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = 1000, .l_len = 100 };
	if (fcntl(posix, F_GETLK, &q) || q.l_type != F_UNLCK)
		_exit(17);
	q = (struct flock){ .l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = 0, .l_len = 1 };
	if (fcntl(posix, F_GETLK, &q) || q.l_type != F_RDLCK || q.l_pid != getppid())
		_exit(18);
	if (test_read_full(end, &c, 1))
		_exit(19);
	_exit(0);
}

/* A waiter: blocked in F_SETLKW (@use_flock 0) or flock (1) during the dump. */
static __attribute__((noreturn)) void waiter(int use_flock, int ready)
{
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	int fd = open_file(use_flock ? "flock" : "posix", O_RDWR);
	if (write(ready, "w", 1) != 1)
		_exit(20);
	int r;
	do
		r = use_flock ? flock(fd, LOCK_EX) : setlk(fd, F_SETLKW, F_WRLCK, 200, 100);
	while (r && errno == EINTR);
	_exit(r ? 21 : 0);
}

static void make_file(const char *name, size_t size)
{
	int fd = open_file(name, O_RDWR | O_CREAT | O_TRUNC);
	TEST_CHECK(ftruncate(fd, (off_t)size) == 0, "ftruncate %s: %s", name, strerror(errno));
	close(fd);
}

static ino_t ino_of(const char *name)
{
	struct stat st;
	TEST_CHECK(stat(name, &st) == 0, "stat %s: %s", name, strerror(errno));
	return st.st_ino;
}

/* The number of requests waiting on inode @ino ("->" lines of /proc/locks). */
static int waiters_on(ino_t ino)
{
	static char buf[1 << 16];
	char pat[32];
	FILE *f = fopen("/proc/locks", "r");
	int n = 0;
	snprintf(pat, sizeof(pat), ":%llu ", (unsigned long long)ino);
	while (f && fgets(buf, sizeof(buf), f))
		if (strstr(buf, "->") && strstr(buf, pat))
			n++;
	if (f)
		fclose(f);
	return n;
}

static int wait_exit(pid_t pid, const char *who)
{
	int status = 0;
	pid_t w = 0;
	for (int t = 0; t < 1000 && (w = waitpid(pid, &status, WNOHANG)) == 0; t++)
		test_sleep_ms(10);
	TEST_CHECK(w == pid, "%s (pid %d) did not exit", who, (int)pid);
	return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

int main(int argc, char **argv)
{
	int go[2], end[2], rdy[2], pr[2];
	char c;

	test_init(argc, argv);
	make_file("flock", 4096);
	make_file("flock_sh", 4096);
	make_file("posix", 8192);
	make_file("lease", 4096);
	int fl = open_file("flock", O_RDWR);
	int posix = open_file("posix", O_RDWR);
	int ofd = open_file("posix", O_RDWR);
	int lease = open_file("lease", O_RDONLY);
	TEST_CHECK(flock(fl, LOCK_EX | LOCK_NB) == 0, "flock: %s", strerror(errno));
	TEST_CHECK(setlk(posix, F_SETLK, F_RDLCK, 0, 100) == 0 &&
			   setlk(posix, F_SETLK, F_WRLCK, 200, 100) == 0,
		   "F_SETLK: %s", strerror(errno));
	TEST_CHECK(setlk(ofd, F_OFD_SETLK, F_WRLCK, 5000, EOF_LEN) == 0, "F_OFD_SETLK: %s",
		   strerror(errno));
	TEST_CHECK(signal(SIGIO, SIG_IGN) != SIG_ERR, "SIGIO");
	TEST_CHECK(fcntl(lease, F_SETLEASE, F_RDLCK) == 0, "F_SETLEASE: %s", strerror(errno));
	TEST_CHECK(pipe(go) == 0 && pipe(end) == 0 && pipe(rdy) == 0, "pipe: %s", strerror(errno));

	pid_t c1 = fork();
	TEST_CHECK(c1 >= 0, "fork: %s", strerror(errno));
	if (c1 == 0)
		child1(posix, fl, ofd, go[0], end[0], rdy[1]);
	TEST_CHECK(test_read_full(rdy[0], &c, 1) == 0, "child 1 did not start");
	pid_t c2 = fork();
	TEST_CHECK(c2 >= 0, "fork: %s", strerror(errno));
	if (c2 == 0)
		waiter(0, rdy[1]);
	pid_t c3 = fork();
	TEST_CHECK(c3 >= 0, "fork: %s", strerror(errno));
	if (c3 == 0)
		waiter(1, rdy[1]);
	TEST_CHECK(test_read_full(rdy[0], &c, 1) == 0 && test_read_full(rdy[0], &c, 1) == 0,
		   "the waiters did not start");
	/* both waiters queued on their locks */
	ino_t ip = ino_of("posix"), ifl = ino_of("flock");
	for (int t = 0; t < 500 && (waiters_on(ip) < 1 || waiters_on(ifl) < 1); t++)
		test_sleep_ms(10);
	TEST_CHECK(waiters_on(ip) == 1 && waiters_on(ifl) == 1, "waiters: %d on posix, %d on flock",
		   waiters_on(ip), waiters_on(ifl));
	test_ready();
	test_wait();

	if (test_sabotage())
		setlk(posix, F_SETLK, F_UNLCK, 50, 10); /* splits the read lock */
	TEST_CHECK(fcntl(lease, F_GETLEASE) == F_RDLCK, "lease: F_GETLEASE %d",
		   fcntl(lease, F_GETLEASE));
	TEST_CHECK(pipe(pr) == 0, "pipe: %s", strerror(errno));
	pid_t p = fork();
	TEST_CHECK(p >= 0, "fork: %s", strerror(errno));
	if (p == 0) {
		close(pr[0]);
		prober(pr[1], getppid(), c1);
	}
	close(pr[1]);
	int st = wait_exit(p, "the prober");
	char why[256] = "";
	ssize_t n = read(pr[0], why, sizeof(why) - 1);
	why[n > 0 ? n : 0] = 0;
	TEST_CHECK(st == 0, "prober: %s (status %d)", why, st);
	TEST_CHECK(write(go[1], "g", 1) == 1, "wake child 1: %s", strerror(errno));
	/* the waiters get their locks once the parent lets them go */
	TEST_CHECK(waitpid(c2, NULL, WNOHANG) == 0 && waitpid(c3, NULL, WNOHANG) == 0,
		   "a waiter got its lock while it is held");
	TEST_CHECK(setlk(posix, F_SETLK, F_UNLCK, 200, 100) == 0, "unlock: %s", strerror(errno));
	st = wait_exit(c2, "the F_SETLKW waiter");
	TEST_CHECK(st == 0, "the F_SETLKW waiter failed: %d", st);
	/* C1 checks its locks, then the flock goes with its last holder */
	TEST_CHECK(write(end[1], "e", 1) == 1, "end child 1: %s", strerror(errno));
	st = wait_exit(c1, "child 1");
	TEST_CHECK(st == 0, "child 1 failed: %d", st);
	TEST_CHECK(waitpid(c3, NULL, WNOHANG) == 0, "the flock waiter got its lock while held");
	TEST_CHECK(flock(fl, LOCK_UN) == 0, "flock LOCK_UN: %s", strerror(errno));
	st = wait_exit(c3, "the flock waiter");
	TEST_CHECK(st == 0, "the flock waiter failed: %d", st);
	test_pass();
}
