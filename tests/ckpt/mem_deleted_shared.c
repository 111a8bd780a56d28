// stasis-test: timeout=60
// stasis-test: rootless-known=reading a mapped deleted file through /proc/PID/map_files needs
//   CAP_CHECKPOINT_RESTORE in the initial user namespace
/* A deleted file and a memfd, each mapped MAP_SHARED by a parent and two children it
 * forked, with no fd left open: the way Python's multiprocessing shares a POSIX semaphore
 * (sem_open, then sem_unlink). Each object holds two process-shared semaphores and a
 * word; at the dump both children are blocked in sem_wait on the first one. After the
 * restore the parent writes a word and posts the semaphore once per child: each child
 * wakes (the same object, still shared), adds its number to the word and posts the
 * second semaphore, which the parent waits for: the word is then the sum. A copy of the
 * object per process (what the restore made before) leaves the children asleep. */
#include "lib.h"

#include <errno.h>
#include <fcntl.h>
#include <semaphore.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

struct shared {
	sem_t go, done;
	volatile long word;
};

static struct shared *map_deleted(int fd)
{
	if (fd < 0 || ftruncate(fd, 65536))
		test_fail("make the shared file: %s", strerror(errno));
	struct shared *s = mmap(NULL, 65536, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (s == MAP_FAILED)
		test_fail("mmap: %s", strerror(errno));
	close(fd);
	if (sem_init(&s->go, 1, 0) || sem_init(&s->done, 1, 0))
		test_fail("sem_init: %s", strerror(errno));
	return s;
}

static void child(struct shared *a, struct shared *b, long n)
{
	for (struct shared *s = a; s; s = s == a ? b : NULL) {
		while (sem_wait(&s->go) && errno == EINTR)
			;
		__atomic_add_fetch(&s->word, n, __ATOMIC_SEQ_CST);
		sem_post(&s->done);
	}
	_exit(0);
}

static int wait_done(struct shared *s)
{
	struct timespec t;
	clock_gettime(CLOCK_REALTIME, &t);
	t.tv_sec += 5;
	while (sem_timedwait(&s->done, &t))
		if (errno != EINTR)
			return -1;
	return 0;
}

int main(int argc, char **argv)
{
	test_init(argc, argv);
	char path[64];
	snprintf(path, sizeof(path), "/dev/shm/stasis-test-%d", (int)getpid());
	int fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd < 0) { /* no /dev/shm here: the test's directory */
		snprintf(path, sizeof(path), "shared-%d", (int)getpid());
		fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	}
	struct shared *a = map_deleted(fd);
	unlink(path);
	struct shared *b = map_deleted(memfd_create("stasis-sem", MFD_CLOEXEC));
	pid_t kids[2];
	for (int k = 0; k < 2; k++) {
		kids[k] = fork();
		if (kids[k] < 0)
			test_fail("fork: %s", strerror(errno));
		if (kids[k] == 0)
			child(a, b, 10 + k);
	}
	test_sleep_ms(100); /* the children in sem_wait */
	test_ready();
	test_wait();

	if (test_sabotage()) {
		kill(kids[0], SIGKILL);
		kill(kids[1], SIGKILL);
	}
	long got[2] = { -1, -1 };
	int k = 0;
	for (struct shared *s = a; s; s = s == a ? b : NULL, k++) {
		s->word = 100;
		sem_post(&s->go);
		sem_post(&s->go);
		int ok = !wait_done(s) && !wait_done(s);
		got[k] = ok ? s->word : -1;
	}
	test_reap(kids[0], true, 10);
	test_reap(kids[1], true, 10);
	TEST_CHECK(got[0] == 121, "the deleted file is no longer shared: word %ld, want 121 "
		   "(-1: a child never woke)", got[0]);
	TEST_CHECK(got[1] == 121, "the memfd is no longer shared: word %ld, want 121", got[1]);
	test_pass();
}
