// stasis-test: timeout=30
/* Signal state: sigactions (handler, flags, mask, restorer) of every signal, the blocked
 * mask, the alternate signal stack, and pending signals: a blocked SIGUSR1 queued with a
 * payload, a realtime signal queued twice and another realtime signal queued once. After
 * the restore they are delivered when unblocked, in order, with the right siginfo. */
#include "lib.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#define NSIG_MAX 64
#define ALTSTACK_SIZE (64 * 1024)

struct delivery {
	int signo, code, value, pid;
	bool on_altstack;
};

static struct delivery log_[16];
static volatile int nlog;
static char *altstack;

static void on_info(int sig, siginfo_t *si, void *uc)
{
	int local;
	int n = nlog;

	(void)uc;
	if (n < 16) {
		log_[n].signo = sig;
		log_[n].code = si->si_code;
		log_[n].value = si->si_value.sival_int;
		log_[n].pid = si->si_pid;
		log_[n].on_altstack = (char *)&local >= altstack &&
				      (char *)&local < altstack + ALTSTACK_SIZE;
	}
	nlog = n + 1;
}

static void on_hup(int sig)
{
	(void)sig;
}

struct snapshot {
	struct sigaction act[NSIG_MAX + 1];
	int act_errno[NSIG_MAX + 1];
	sigset_t blocked;
	stack_t ss;
};

static void take(struct snapshot *s)
{
	int sig;

	memset(s, 0, sizeof(*s));
	for (sig = 1; sig <= NSIG_MAX; sig++)
		s->act_errno[sig] = sigaction(sig, NULL, &s->act[sig]) < 0 ? errno : 0;
	sigprocmask(SIG_SETMASK, NULL, &s->blocked);
	if (sigaltstack(NULL, &s->ss) < 0)
		test_fail("sigaltstack query: %s", strerror(errno));
}

static void compare_sets(const sigset_t *a, const sigset_t *b, const char *what)
{
	int sig;

	for (sig = 1; sig <= NSIG_MAX; sig++) {
		if (sig == 32 || sig == 33) /* reserved by glibc: sigismember refuses them */
			continue;
		TEST_CHECK(sigismember(a, sig) == sigismember(b, sig), "%s: signal %d %s", what,
			   sig, sigismember(a, sig) ? "lost" : "added");
	}
}

static void compare(const struct snapshot *a, const struct snapshot *b)
{
	char what[64];
	int sig;

	for (sig = 1; sig <= NSIG_MAX; sig++) {
		TEST_CHECK(a->act_errno[sig] == b->act_errno[sig], "sigaction(%d) errno %d -> %d", sig,
			   a->act_errno[sig], b->act_errno[sig]);
		if (a->act_errno[sig])
			continue;
		TEST_CHECK(a->act[sig].sa_handler == b->act[sig].sa_handler,
			   "signal %d: handler %p -> %p", sig, (void *)a->act[sig].sa_handler,
			   (void *)b->act[sig].sa_handler);
		TEST_CHECK(a->act[sig].sa_flags == b->act[sig].sa_flags,
			   "signal %d: sa_flags %#x -> %#x", sig, a->act[sig].sa_flags,
			   b->act[sig].sa_flags);
		TEST_CHECK(a->act[sig].sa_restorer == b->act[sig].sa_restorer,
			   "signal %d: sa_restorer changed", sig);
		snprintf(what, sizeof(what), "signal %d sa_mask", sig);
		compare_sets(&a->act[sig].sa_mask, &b->act[sig].sa_mask, what);
	}
	compare_sets(&a->blocked, &b->blocked, "blocked mask");
	TEST_CHECK(a->ss.ss_sp == b->ss.ss_sp && a->ss.ss_size == b->ss.ss_size &&
			   a->ss.ss_flags == b->ss.ss_flags,
		   "sigaltstack %p/%zu/%d -> %p/%zu/%d", a->ss.ss_sp, a->ss.ss_size, a->ss.ss_flags,
		   b->ss.ss_sp, b->ss.ss_size, b->ss.ss_flags);
}

static void install(int sig, int flags, const int *mask_sigs, void (*h)(int),
		    void (*info)(int, siginfo_t *, void *))
{
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sigemptyset(&sa.sa_mask);
	for (; *mask_sigs; mask_sigs++)
		sigaddset(&sa.sa_mask, *mask_sigs);
	sa.sa_flags = flags;
	if (info)
		sa.sa_sigaction = info;
	else
		sa.sa_handler = h;
	if (sigaction(sig, &sa, NULL) < 0)
		test_fail("sigaction(%d): %s", sig, strerror(errno));
}

static void queue(int sig, int value)
{
	union sigval v = { .sival_int = value };

	if (sigqueue(getpid(), sig, v) < 0)
		test_fail("sigqueue(%d): %s", sig, strerror(errno));
}

int main(int argc, char **argv)
{
	static struct snapshot before, after;
	const int rt_a = SIGRTMIN + 2, rt_b = SIGRTMIN + 5;
	const int info_mask[] = { SIGUSR1, rt_a, rt_b, SIGWINCH, 0 };
	const int hup_mask[] = { SIGQUIT, SIGCHLD, 0 };
	const int none[] = { 0 };
	const struct delivery expect[4] = {
		{ SIGUSR1, SI_QUEUE, 0x1234, 0, true },
		{ rt_a, SI_QUEUE, 111, 0, false },
		{ rt_a, SI_QUEUE, 222, 0, false },
		{ rt_b, SI_QUEUE, 333, 0, false },
	};
	sigset_t block, pending;
	stack_t ss;
	int i;

	test_init(argc, argv);
	altstack = mmap(NULL, ALTSTACK_SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
			-1, 0);
	if (altstack == MAP_FAILED)
		test_fail("mmap: %s", strerror(errno));
	ss.ss_sp = altstack;
	ss.ss_size = ALTSTACK_SIZE;
	ss.ss_flags = 0;
	if (sigaltstack(&ss, NULL) < 0)
		test_fail("sigaltstack: %s", strerror(errno));

	install(SIGUSR1, SA_SIGINFO | SA_RESTART | SA_ONSTACK, info_mask, NULL, on_info);
	install(rt_a, SA_SIGINFO | SA_RESTART, info_mask, NULL, on_info);
	install(rt_b, SA_SIGINFO, info_mask, NULL, on_info);
	install(SIGHUP, SA_RESETHAND | SA_NODEFER, hup_mask, on_hup, NULL);
	install(SIGPIPE, 0, none, SIG_IGN, NULL);
	install(SIGUSR2, SA_RESTART, none, on_hup, NULL);

	sigemptyset(&block);
	sigaddset(&block, SIGUSR1);
	sigaddset(&block, SIGUSR2);
	sigaddset(&block, rt_a);
	sigaddset(&block, rt_b);
	if (sigprocmask(SIG_BLOCK, &block, NULL) < 0)
		test_fail("sigprocmask: %s", strerror(errno));
	queue(SIGUSR1, 0x1234);
	queue(rt_b, 333);
	queue(rt_a, 111);
	queue(rt_a, 222);
	TEST_CHECK(nlog == 0, "a blocked signal was delivered");
	take(&before);
	test_ready();
	test_wait();

	if (test_sabotage()) {
		struct timespec zero = { 0, 0 };
		sigset_t one;

		sigemptyset(&one);
		sigaddset(&one, rt_a);
		sigtimedwait(&one, NULL, &zero);
	}
	take(&after);
	compare(&before, &after);
	TEST_CHECK(nlog == 0, "%d signals were delivered while blocked", nlog);
	sigpending(&pending);
	TEST_CHECK(sigismember(&pending, SIGUSR1) && sigismember(&pending, rt_a) &&
			   sigismember(&pending, rt_b) && !sigismember(&pending, SIGUSR2),
		   "pending set wrong: USR1 %d rt_a %d rt_b %d USR2 %d",
		   sigismember(&pending, SIGUSR1), sigismember(&pending, rt_a),
		   sigismember(&pending, rt_b), sigismember(&pending, SIGUSR2));

	sigprocmask(SIG_UNBLOCK, &block, NULL);
	TEST_CHECK(nlog == 4, "%d signals delivered after unblock, expected 4", nlog);
	for (i = 0; i < 4; i++) {
		const struct delivery *g = &log_[i], *e = &expect[i];

		TEST_CHECK(g->signo == e->signo && g->value == e->value,
			   "delivery %d: signal %d value %d, expected signal %d value %d", i, g->signo,
			   g->value, e->signo, e->value);
		TEST_CHECK(g->code == e->code, "delivery %d: si_code %d, expected %d", i, g->code,
			   e->code);
		TEST_CHECK(g->pid == getpid(), "delivery %d: si_pid %d, expected %d", i, g->pid,
			   (int)getpid());
		TEST_CHECK(g->on_altstack == e->on_altstack, "delivery %d: %s the alternate stack", i,
			   g->on_altstack ? "on" : "not on");
	}
	test_pass();
}
