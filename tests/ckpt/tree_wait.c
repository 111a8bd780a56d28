// stasis-test: timeout=30
/* The root is blocked in waitpid() for its child at the dump; the child sleeps 2 s after
 * ready (nanosleep, across the checkpoint) and exits 33. After the restore the root's
 * waitpid returns the child's pid with exit status 33, no earlier than 2 s after ready,
 * and the child saw the right parent. */
#include "lib.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define CODE 33
#define DELAY_MS 2000

int main(int argc, char **argv)
{
	int go[2], st = 0;
	pid_t pid, root, w;
	uint64_t t0, waited;
	char c;

	test_init(argc, argv);
	root = getpid();
	if (pipe(go) < 0)
		test_fail("pipe: %s", strerror(errno));
	pid = fork();
	if (pid < 0)
		test_fail("fork: %s", strerror(errno));
	if (pid == 0) {
		close(go[1]);
		while (read(go[0], &c, 1) < 0 && errno == EINTR)
			;
		test_sleep_ms(DELAY_MS);
		_exit(getppid() == root ? CODE : CODE + 1);
	}
	close(go[0]);
	t0 = test_now_ns();
	if (write(go[1], "g", 1) != 1)
		test_fail("write: %s", strerror(errno));
	close(go[1]);
	/* ready once the child closed its copy of the write end (its state must not change
	 * between the runner's snapshot and the dump) */
	char path[64];
	snprintf(path, sizeof(path), "/proc/%d/fd/%d", (int)pid, go[1]);
	for (int i = 0; i < 200 && access(path, F_OK) == 0; i++)
		test_sleep_ms(10);
	test_ready();
	if (test_sabotage())
		kill(pid, SIGKILL); /* the child never gets to exit 33 */
	/* SIGTERM (after the restore) may interrupt the wait: wait on */
	do
		w = waitpid(pid, &st, 0);
	while (w < 0 && errno == EINTR);
	waited = test_now_ns() - t0;
	test_wait();

	TEST_CHECK(w == pid, "waitpid returned %d (%s), expected %d", (int)w,
		   w < 0 ? strerror(errno) : "", (int)pid);
	TEST_CHECK(WIFEXITED(st) && WEXITSTATUS(st) == CODE,
		   "child status %#x, expected exit %d%s", st, CODE,
		   WIFEXITED(st) && WEXITSTATUS(st) == CODE + 1 ? " (the child saw a wrong parent)"
								 : "");
	TEST_CHECK(waited >= (uint64_t)DELAY_MS * 1000000ull, "waitpid returned after %llu ms",
		   (unsigned long long)(waited / 1000000));
	TEST_CHECK(waitpid(-1, &st, WNOHANG) < 0 && errno == ECHILD, "another child is left");
	test_msg("waitpid returned after %llu ms", (unsigned long long)(waited / 1000000));
	test_pass();
}
