// stasis-test: timeout=30 needs=root
/* A SysV segment marked for removal while attached (shmget, shmat, fork, IPC_RMID: the
 * usual way to get memory that goes away with its last user), in an IPC namespace of the
 * tree's own, beside a live keyed segment. After the restore: the removed one still reads
 * key IPC_PRIVATE with SHM_DEST set and two attachments, its maps line still names the
 * key it was made with, its data is there and shared between root and child; once both
 * let go of it, it is gone, and the keyed one stays. */
#include "lib.h"

#include <errno.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <sys/ipc.h>
#include <sys/shm.h>
#include <sys/wait.h>
#include <unistd.h>

#define SIZE (3 * 4096)
#define KEY_D 0x53565244
#define KEY_E 0x53565245
#define SEED 0x524d4944ull

static int to_child[2], to_root[2];

static int stat_of(int id, struct shmid_ds *ds)
{
	return shmctl(id, IPC_STAT, ds);
}

int main(int argc, char **argv)
{
	struct shmid_ds ds;
	char before[512], after[512];

	test_init(argc, argv);
	if (unshare(CLONE_NEWIPC) < 0)
		test_fail("unshare(CLONE_NEWIPC): %s", strerror(errno));
	int d = shmget(KEY_D, SIZE, IPC_CREAT | IPC_EXCL | 0640);
	int e = shmget(KEY_E, 4096, IPC_CREAT | IPC_EXCL | 0600);
	if (d < 0 || e < 0)
		test_fail("shmget: %s", strerror(errno));
	volatile uint64_t *m = shmat(d, NULL, 0);
	if (m == (void *)-1 || pipe(to_child) < 0 || pipe(to_root) < 0)
		test_fail("shmat/pipe: %s", strerror(errno));
	test_fill((void *)m, SIZE, SEED);
	pid_t pid = fork();
	if (pid < 0)
		test_fail("fork: %s", strerror(errno));
	if (pid == 0) {
		uint64_t v;
		close(to_child[1]);
		close(to_root[0]);
		/* each request: write v at word 1, answer word 0 */
		while (test_read_full(to_child[0], &v, sizeof(v)) == 0) {
			m[1] = v;
			uint64_t ans = m[0];
			if (test_write_full(to_root[1], &ans, sizeof(ans)) < 0)
				_exit(3);
		}
		shmdt((const void *)m);
		_exit(0);
	}
	close(to_child[0]);
	close(to_root[1]);
	if (shmctl(d, IPC_RMID, NULL) < 0)
		test_fail("IPC_RMID: %s", strerror(errno));
	if (test_maps_lines((uintptr_t)m, (uintptr_t)m + SIZE, before, sizeof(before)) != 1)
		test_fail("maps before");
	test_ready();
	test_wait();

	if (test_sabotage())
		shmctl(e, IPC_RMID, NULL);
	if (stat_of(d, &ds) < 0)
		test_fail("the removed segment is gone after the restore: %s", strerror(errno));
	if (ds.shm_perm.__key != IPC_PRIVATE || !(ds.shm_perm.mode & SHM_DEST) ||
	    ds.shm_nattch != 2 || ds.shm_segsz != SIZE || (ds.shm_perm.mode & 0777) != 0640)
		test_fail("the removed segment: key %#x mode %#o, %lu attachments, %zu bytes",
			  (unsigned)ds.shm_perm.__key, ds.shm_perm.mode, (unsigned long)ds.shm_nattch,
			  (size_t)ds.shm_segsz);
	test_maps_lines((uintptr_t)m, (uintptr_t)m + SIZE, after, sizeof(after));
	if (strcmp(before, after))
		test_fail("maps differ:\n%s---\n%s", before, after);
	static uint64_t ref[SIZE / 8];
	test_fill(ref, SIZE, SEED);
	if (memcmp((const void *)m, ref, SIZE))
		test_fail("the removed segment's data differ");
	m[0] = 0x5151;
	uint64_t v = 0x7777, ans = 0;
	if (test_write_full(to_child[1], &v, sizeof(v)) < 0 ||
	    test_read_full(to_root[0], &ans, sizeof(ans)) < 0 || ans != 0x5151 || m[1] != 0x7777)
		test_fail("the removed segment is not shared with the child any more");
	close(to_child[1]);
	if (test_reap(pid, false, 10) != 0)
		test_fail("the child did not exit well");
	shmdt((const void *)m);
	errno = 0;
	if (stat_of(d, &ds) == 0 || (errno != EINVAL && errno != EIDRM))
		test_fail("the removed segment outlived its users (%s)", strerror(errno));
	if (shmget(KEY_E, 0, 0) != e)
		test_fail("the keyed segment is gone");
	shmctl(e, IPC_RMID, NULL);
	test_pass();
}
