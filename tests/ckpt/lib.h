/* Self-checking checkpoint test library (see tests/README.md for the protocol).
 *
 * A test: test_init() -> set up state -> test_ready() -> test_wait() -> verify ->
 * test_pass() / test_fail(). The runner checkpoints and restores the task between
 * test_ready() and the SIGTERM that ends test_wait().
 */
#ifndef STASIS_TEST_LIB_H
#define STASIS_TEST_LIB_H

#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <time.h>

/* Records the pid, reads the environment, installs the SIGTERM handler and makes
 * sure SIGTERM is not blocked. */
void test_init(int argc, char **argv);

/* Writes "ready\n" to the status file. */
void test_ready(void);

/* Waits (sigsuspend with the current mask minus SIGTERM) until SIGTERM came. */
void test_wait(void);

/* True once SIGTERM was received; for tests that must stay busy. */
bool test_stop_requested(void);

/* The flag itself, for assembly loops that cannot call a function. */
const volatile sig_atomic_t *test_stop_flag(void);

/* True when STASIS_TEST_SABOTAGE=1: the test must corrupt its own state after
 * test_ready() so that the verification fails (checks that tests can fail). */
bool test_sabotage(void);

/* Checks that the pid is unchanged, writes "PASS\n" and exits 0. */
__attribute__((noreturn)) void test_pass(void);
/* read exactly @len bytes (retrying short reads and EINTR) / write them in one call:
 * 0, or -1 on error or end of file */
int test_read_full(int fd, void *buf, size_t len);
int test_write_full(int fd, const void *buf, size_t len);

/* Same, but exits with @code (for the exit-status mode). */
__attribute__((noreturn)) void test_pass_code(int code);

/* Writes "FAIL: reason\n" to the status file and to stderr, exits 1. */
__attribute__((noreturn, format(printf, 1, 2))) void test_fail(const char *fmt, ...);

/* A line on stderr (the test's log), prefixed with the test name. */
__attribute__((format(printf, 1, 2))) void test_msg(const char *fmt, ...);

/* One of @n choices, each as likely as its weight (@weight[i] >= 0, not all 0). */
int test_pick_weighted(uint64_t *rng, const int *weight, int n);

/* Deterministic pseudo-random data (64-bit xorshift). */
static inline uint64_t test_xorshift64(uint64_t *state)
{
	uint64_t x = *state;

	x ^= x << 13;
	x ^= x >> 7;
	x ^= x << 17;
	*state = x;
	return x;
}

/* Fills @len bytes (a multiple of 8, @buf 8-aligned) from @seed. */
void test_fill(void *buf, size_t len, uint64_t seed);

/* Returns the byte offset of the first difference from test_fill(@seed), or -1. */
long test_check(const void *buf, size_t len, uint64_t seed);

/* Create @path empty (0644) / append one byte to it; test_fail() on an error. */
void test_create(const char *path);
void test_append(const char *path);

/* CLOCK_MONOTONIC in nanoseconds. */
uint64_t test_now_ns(void);

/* Sleeps @ms milliseconds, resuming after signals. */
void test_sleep_ms(unsigned int ms);

/* Copies the /proc/self/maps lines that lie within [start, end) into @out (NUL
 * terminated, truncated to @size). Returns the number of lines. */
int test_maps_lines(uintptr_t start, uintptr_t end, char *out, size_t size);

/* Rewrites maps lines in place without the inode number and the padding (a restored
 * shared anonymous mapping is a new shmem object with another inode). */
void test_maps_strip_inode(char *lines);

#define TEST_CHECK(cond, ...)                                                                      \
	do {                                                                                       \
		if (!(cond))                                                                       \
			test_fail(__VA_ARGS__);                                                    \
	} while (0)

/* A small text file (at most @len - 1 bytes, NUL-terminated; "" if unreadable). */
void test_read_text(const char *path, char *buf, size_t len);
/* A process's state letter, parent, process group and session from /proc/PID/stat. */
struct test_ids {
	pid_t ppid, pgid, sid;
	char state;
};
/* 0, or -1 when the process is gone or its stat unreadable. */
int test_proc_ids(pid_t pid, struct test_ids *out);
/* Write @s to @path (e.g. a cgroup or sysctl file): 0 or -1. */
int test_write_text(const char *path, const char *s);
/* Read exactly @len bytes from @fd, waiting at most @ms for each chunk: 0 or -1. */
int test_read_within(int fd, void *buf, size_t len, int ms);
/* Processes of a test talking over pipes: one command byte written (failing the test if
 * it cannot be), one read within 10 s (0 if none came). */
void test_say(int fd, char c);
char test_hear(int fd);
/* Move @fd to number @at (dup2 and close; nothing if it is there): fails the test. */
void test_place_fd(int fd, int at);

/* The cgroup2 mount point (in @mnt) and this process's cgroup v2 path (in @own): 0, or
 * -1 when there is no cgroup2 mount or v2 line. */
int test_cgroup2(char *mnt, size_t mlen, char *own, size_t olen);

/* Reap child @pid (SIGKILLed first with @kill_it), waiting at most @secs: its wait
 * status, or -1. */
int test_reap(pid_t pid, bool kill_it, unsigned int secs);

/* The inode of the namespace an nsfs ioctl (@request: NS_GET_PARENT, NS_GET_USERNS)
 * returns for /proc/@pid/ns/@kind, or 0. */
ino_t test_ns_related(pid_t pid, const char *kind, unsigned long request);

/* The /proc/self/smaps area starting at @addr: its header line but the inode number
 * ("start-end perms offset dev path") into @line; test_fail() when there is none. */
void test_area_line(const void *addr, char *line, size_t len);
/* A "Key: N kB" field of that area (0 if absent). */
unsigned long test_area_kb(const void *addr, const char *key);
/* Its VmFlags, as smaps shows them ("rd wr mr ..."). */
void test_area_vmflags(const void *addr, char *out, size_t len);
/* The state letter of thread @tid of process @pid (/proc/PID/task/TID/stat; pid 0: this
 * process), or 0 if it is not listed. */
char test_task_state(pid_t pid, pid_t tid);
/* A pty pair of a devpts instance of this process's own mount namespace: a private mount
 * namespace unshared, a devpts mounted (newinstance, ptmx mode 0666) at @pts, the master
 * opened at @pts/ptmx (into *@m, its index in *@idx), the slave at @pts/N without echo
 * (into *@s). test_fail() on any error. */
void test_devpts_pair(const char *pts, int *m, int *s, int *idx);

#endif
