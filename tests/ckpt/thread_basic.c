// stasis-test: timeout=60
/* Eight threads, each with its own state: TID and pthread_self, a thread name, a __thread
 * (fs-based TLS) value, a blocked signal mask, a pending thread-directed RT signal queued
 * with a value (pthread_sigqueue), and an alternate signal stack. Threads 0-3 spin on a
 * counter; 4-5 sleep in nanosleep loops, 6-7 in FUTEX_WAIT loops (with a timeout). After
 * the restore every thread checks its own state, unblocks its signal (which must then be
 * delivered to it, on its altstack, with its value), and returns; the main thread joins
 * them with a bounded pthread_timedjoin_np (join waits for the kernel's clear_child_tid
 * futex wake). Counters must keep increasing after the restore. */
#include "lib.h"

#include <errno.h>
#include <linux/futex.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#define NTHR 8
#define ALTSTACK_SIZE (64 * 1024)
#define SABOTAGED 5

struct slot {
	pthread_t self;
	pid_t tid;
	char name[16];
	sigset_t mask;
	stack_t ss;
	char *altstack;
	int sig, value;
	_Atomic unsigned long counter;
	/* filled by the handler */
	volatile int got_sig, got_value, got_code, got_pid, got_tid, got_onstack;
	char *fail;
	atomic_int done;
};

static struct slot slots[NTHR];
static char fails[NTHR][200]; /* slots[i].fail, apart from the names it may quote */
static atomic_int phase;	/* 0 setup, 1 running, 2 check */
static atomic_int nready;
static __thread long tls_value = -1;
static __thread struct slot *tls_slot;
static int futex_word;

static pid_t my_tid(void)
{
	return (pid_t)syscall(SYS_gettid);
}

static void on_rt(int sig, siginfo_t *si, void *uc)
{
	struct slot *s = tls_slot;
	int local;

	(void)uc;
	if (!s)
		return;
	s->got_sig = sig;
	s->got_value = si->si_value.sival_int;
	s->got_code = si->si_code;
	s->got_pid = si->si_pid;
	s->got_tid = my_tid();
	s->got_onstack = (char *)&local >= s->altstack && (char *)&local < s->altstack + ALTSTACK_SIZE;
}

#define TFAIL(...)                                                                                 \
	do {                                                                                       \
		snprintf(s->fail, sizeof(fails[0]), __VA_ARGS__);                                   \
		return;                                                                            \
	} while (0)

static bool sets_equal(const sigset_t *a, const sigset_t *b, int *which)
{
	for (int sig = 1; sig <= 64; sig++) {
		if (sig == 32 || sig == 33)
			continue;
		if (sigismember(a, sig) != sigismember(b, sig)) {
			*which = sig;
			return false;
		}
	}
	return true;
}

/* SigPnd (thread-private pending set) of /proc/self/task/TID/status, -1 on error */
static long long task_sigpnd(pid_t tid)
{
	char path[64], line[256];
	long long v = -1;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/self/task/%d/status", (int)tid);
	f = fopen(path, "re");
	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "SigPnd: %llx", &v) == 1)
			break;
	fclose(f);
	return v;
}

static void check_self(struct slot *s, int idx)
{
	char path[64], comm[32] = "", pname[16] = "";
	sigset_t mask, pend, one;
	stack_t ss;
	long long pnd;
	int which = 0;
	FILE *f;

	if (my_tid() != s->tid || gettid() != s->tid)
		TFAIL("thread %d: tid %d, was %d", idx, (int)my_tid(), (int)s->tid);
	if (!pthread_equal(pthread_self(), s->self))
		TFAIL("thread %d: pthread_self changed", idx);
	if (tls_value != 0x5100 + idx || tls_slot != s)
		TFAIL("thread %d: TLS value %#lx, expected %#x", idx, tls_value, 0x5100 + idx);
	snprintf(path, sizeof(path), "/proc/self/task/%d/comm", (int)s->tid);
	f = fopen(path, "re");
	if (!f)
		TFAIL("thread %d: cannot open %s: %s", idx, path, strerror(errno));
	if (!fgets(comm, sizeof(comm), f))
		comm[0] = '\0';
	fclose(f);
	comm[strcspn(comm, "\n")] = '\0';
	if (strcmp(comm, s->name) != 0)
		TFAIL("thread %d: comm '%s', expected '%s'", idx, comm, s->name);
	pthread_getname_np(pthread_self(), pname, sizeof(pname));
	if (strcmp(pname, s->name) != 0)
		TFAIL("thread %d: pthread_getname_np '%s', expected '%s'", idx, pname, s->name);
	pthread_sigmask(SIG_SETMASK, NULL, &mask);
	if (!sets_equal(&mask, &s->mask, &which))
		TFAIL("thread %d: blocked mask differs at signal %d (%s)", idx, which,
		      sigismember(&mask, which) ? "now blocked" : "now unblocked");
	if (sigaltstack(NULL, &ss) < 0)
		TFAIL("thread %d: sigaltstack: %s", idx, strerror(errno));
	if (ss.ss_sp != s->ss.ss_sp || ss.ss_size != s->ss.ss_size || ss.ss_flags != s->ss.ss_flags)
		TFAIL("thread %d: sigaltstack %p/%zu/%d, expected %p/%zu/%d", idx, ss.ss_sp,
		      ss.ss_size, ss.ss_flags, s->ss.ss_sp, s->ss.ss_size, s->ss.ss_flags);
	sigpending(&pend);
	for (int j = 0; j < NTHR; j++)
		if ((j == idx) != (sigismember(&pend, slots[j].sig) == 1))
			TFAIL("thread %d: signal %d (thread %d's) %s pending", idx, slots[j].sig, j,
			      j == idx ? "not" : "also");
	pnd = task_sigpnd(s->tid);
	if (pnd < 0 || !(pnd & (1LL << (s->sig - 1))))
		TFAIL("thread %d: SigPnd %llx of task %d lacks signal %d (not thread-private)",
		      idx, pnd, (int)s->tid, s->sig);
	if (s->got_sig)
		TFAIL("thread %d: signal %d delivered while blocked", idx, s->got_sig);
	sigemptyset(&one);
	sigaddset(&one, s->sig);
	pthread_sigmask(SIG_UNBLOCK, &one, NULL);
	if (s->got_sig != s->sig || s->got_value != s->value)
		TFAIL("thread %d: after unblock got signal %d value %d, expected %d value %d", idx,
		      s->got_sig, s->got_value, s->sig, s->value);
	if (s->got_code != SI_QUEUE || s->got_pid != getpid() || s->got_tid != s->tid)
		TFAIL("thread %d: siginfo code %d pid %d in tid %d, expected %d %d %d", idx,
		      s->got_code, s->got_pid, s->got_tid, SI_QUEUE, (int)getpid(), (int)s->tid);
	if (!s->got_onstack)
		TFAIL("thread %d: handler did not run on the thread's alternate stack", idx);
}

static void *worker(void *arg)
{
	int idx = (int)(intptr_t)arg;
	struct slot *s = &slots[idx];
	union sigval v;

	s->tid = gettid();
	s->self = pthread_self();
	tls_value = 0x5100 + idx;
	tls_slot = s;
	if (pthread_setname_np(pthread_self(), s->name) != 0)
		snprintf(s->fail, sizeof(fails[0]), "pthread_setname_np failed");
	/* distinct blocked masks: SIGTERM (left to the main thread), the thread's own RT
	 * signal and a per-thread pattern of others */
	sigemptyset(&s->mask);
	sigaddset(&s->mask, SIGTERM);
	sigaddset(&s->mask, s->sig);
	if (idx & 1)
		sigaddset(&s->mask, SIGUSR1);
	if (idx & 2)
		sigaddset(&s->mask, SIGUSR2);
	if (idx & 4)
		sigaddset(&s->mask, SIGWINCH);
	sigaddset(&s->mask, SIGRTMIN + 20 + idx);
	pthread_sigmask(SIG_SETMASK, &s->mask, NULL);
	s->ss.ss_sp = s->altstack;
	s->ss.ss_size = ALTSTACK_SIZE;
	s->ss.ss_flags = 0;
	if (sigaltstack(&s->ss, NULL) < 0)
		snprintf(s->fail, sizeof(fails[0]), "sigaltstack: %s", strerror(errno));
	v.sival_int = s->value;
	if (pthread_sigqueue(pthread_self(), s->sig, v) != 0)
		snprintf(s->fail, sizeof(fails[0]), "pthread_sigqueue failed");
	atomic_fetch_add(&nready, 1);

	while (atomic_load(&phase) < 2) {
		atomic_fetch_add(&s->counter, 1);
		if (idx >= 6) {
			struct timespec ts = { 0, 20 * 1000000L };

			syscall(SYS_futex, &futex_word, FUTEX_WAIT_PRIVATE, 0, &ts, NULL, 0);
		} else if (idx >= 4) {
			struct timespec ts = { 0, 10 * 1000000L };

			nanosleep(&ts, NULL);
		}
	}
	if (test_sabotage() && idx == SABOTAGED) {
		struct timespec zero = { 0, 0 };
		sigset_t one;

		sigemptyset(&one);
		sigaddset(&one, s->sig);
		sigtimedwait(&one, NULL, &zero);
	}
	if (!s->fail[0])
		check_self(s, idx);
	atomic_store(&s->done, 1);
	return (void *)(intptr_t)(0x7000 + idx);
}

int main(int argc, char **argv)
{
	unsigned long c1[NTHR];
	struct sigaction sa;
	pthread_attr_t attr;
	uint64_t deadline;
	int i;

	test_init(argc, argv);
	memset(&sa, 0, sizeof(sa));
	sa.sa_sigaction = on_rt;
	sa.sa_flags = SA_SIGINFO | SA_ONSTACK | SA_RESTART;
	sigemptyset(&sa.sa_mask);
	pthread_attr_init(&attr);
	pthread_attr_setstacksize(&attr, 256 * 1024);
	for (i = 0; i < NTHR; i++) {
		struct slot *s = &slots[i];
		int ret;

		s->fail = fails[i];
		s->sig = SIGRTMIN + 1 + i;
		s->value = 4242 + 17 * i;
		snprintf(s->name, sizeof(s->name), "tb-%s-%d", i < 4 ? "spin" : "slp", i);
		if (sigaction(s->sig, &sa, NULL) < 0)
			test_fail("sigaction: %s", strerror(errno));
		s->altstack = mmap(NULL, ALTSTACK_SIZE, PROT_READ | PROT_WRITE,
				   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		if (s->altstack == MAP_FAILED)
			test_fail("mmap: %s", strerror(errno));
		ret = pthread_create(&s->self, &attr, worker, (void *)(intptr_t)i);
		if (ret)
			test_fail("pthread_create: %s", strerror(ret));
	}
	atomic_store(&phase, 1);
	deadline = test_now_ns() + 10000000000ull;
	while (atomic_load(&nready) < NTHR && test_now_ns() < deadline)
		test_sleep_ms(5);
	TEST_CHECK(atomic_load(&nready) == NTHR, "only %d threads started", atomic_load(&nready));
	for (i = 0; i < NTHR; i++)
		TEST_CHECK(!slots[i].fail[0], "setup of thread %d: %s", i, slots[i].fail);
	test_sleep_ms(50); /* every thread is in its loop */

	test_ready();
	test_wait();

	/* the counters keep increasing */
	for (i = 0; i < NTHR; i++)
		c1[i] = atomic_load(&slots[i].counter);
	deadline = test_now_ns() + 5000000000ull;
	for (i = 0; i < NTHR; i++) {
		while (atomic_load(&slots[i].counter) <= c1[i] + 2 && test_now_ns() < deadline)
			test_sleep_ms(5);
		TEST_CHECK(atomic_load(&slots[i].counter) > c1[i] + 2,
			   "thread %d (%s) does not run after the restore: counter %lu -> %lu", i,
			   slots[i].name, c1[i], atomic_load(&slots[i].counter));
	}

	atomic_store(&phase, 2);
	syscall(SYS_futex, &futex_word, FUTEX_WAKE_PRIVATE, NTHR, NULL, NULL, 0);
	for (i = 0; i < NTHR; i++) {
		struct timespec ts;
		void *ret = NULL;
		int err;

		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_sec += 10;
		err = pthread_timedjoin_np(slots[i].self, &ret, &ts);
		TEST_CHECK(err == 0, "pthread_join of thread %d (tid %d, done %d): %s", i,
			   (int)slots[i].tid, atomic_load(&slots[i].done), strerror(err));
		TEST_CHECK(ret == (void *)(intptr_t)(0x7000 + i), "thread %d returned %p", i, ret);
		TEST_CHECK(!slots[i].fail[0], "%s", slots[i].fail);
	}
	TEST_CHECK(tls_value == -1, "main thread TLS value %ld, expected -1", tls_value);
	test_pass();
}
