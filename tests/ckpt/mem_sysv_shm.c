// stasis-test: timeout=30
/* Attached SysV shared memory. Segment A (keyed, 5 pages and a bit) is attached writable
 * in the root and, through fork, in its child; segment B read-only; segment C is
 * attached writable, then its first page unmapped and its third made read-only (three
 * areas of one attachment, two not starting at its offset 0). After the restore: the
 * areas are where they were with the same maps lines (address, protection, offset, the
 * segment's name and id), every segment has its size, key and attach count; the data
 * written before the dump is there, a write by the root is seen by the child and one by
 * the child by the root; B still cannot be made writable (attached SHM_RDONLY), C's
 * read-only page can be made writable again. In the host's IPC namespace the segments
 * are the live ones (attached again), in a namespace of the tree (ns flavors) they are
 * made again from the image. The segments are removed at the end. */
#include "lib.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/ipc.h>
#include <sys/mman.h>
#include <sys/shm.h>
#include <sys/wait.h>
#include <unistd.h>

#define PG 4096
#define A_SIZE (5 * PG + 100)
#define B_SIZE (2 * PG)
#define C_SIZE (4 * PG)
#define SEED 0x5359537653484dull

static int ids[3] = { -1, -1, -1 };
static volatile uint64_t *a;
static int to_child[2], to_root[2];

static void cleanup(void)
{
	for (int i = 0; i < 3; i++)
		if (ids[i] >= 0)
			shmctl(ids[i], IPC_RMID, NULL);
}

static void fail_clean(const char *what)
{
	cleanup();
	test_fail("%s: %s", what, strerror(errno));
}

/* the child: 'r' -> reply a[PG/8] (the root's probe); 'w' v -> a[2*PG/8] = v; 'q' -> exit */
static __attribute__((noreturn)) void child(void)
{
	uint64_t req[2];
	close(to_child[1]);
	close(to_root[0]);
	for (;;) {
		if (test_read_full(to_child[0], req, sizeof(req)) < 0)
			_exit(2);
		uint64_t ans = 1;
		if (req[0] == 'q')
			_exit(0);
		if (req[0] == 'r')
			ans = a[PG / 8];
		else if (req[0] == 'w')
			a[2 * PG / 8] = req[1];
		if (test_write_full(to_root[1], &ans, sizeof(ans)) < 0)
			_exit(3);
	}
}

static uint64_t ask(uint64_t op, uint64_t v)
{
	uint64_t req[2] = { op, v }, ans = 0;
	if (test_write_full(to_child[1], req, sizeof(req)) < 0 ||
	    test_read_full(to_root[0], &ans, sizeof(ans)) < 0)
		fail_clean("talk to the child");
	return ans;
}

static int nattch(int id, size_t *size, key_t *key)
{
	struct shmid_ds ds;
	if (shmctl(id, IPC_STAT, &ds) < 0)
		return -1;
	*size = ds.shm_segsz;
	*key = ds.shm_perm.__key;
	return (int)ds.shm_nattch;
}

int main(int argc, char **argv)
{
	char before[3][1024], after[3][1024];
	size_t sizes[3] = { A_SIZE, B_SIZE, C_SIZE }, sz = 0;
	int natt[3];
	key_t keys[3], k = 0;
	pid_t pid;

	test_init(argc, argv);
	keys[0] = (key_t)(0x53560000 | (getpid() & 0xffff));
	keys[1] = keys[2] = IPC_PRIVATE;
	for (int i = 0; i < 3; i++) {
		ids[i] = shmget(keys[i], sizes[i], IPC_CREAT | IPC_EXCL | 0600);
		if (ids[i] < 0)
			fail_clean("shmget");
	}
	a = shmat(ids[0], NULL, 0);
	uint8_t *bw = shmat(ids[1], NULL, 0);
	if (a == (void *)-1 || bw == (void *)-1)
		fail_clean("shmat");
	test_fill((void *)a, A_SIZE, SEED);
	test_fill(bw, B_SIZE, SEED + 1);
	shmdt(bw);
	const uint8_t *b = shmat(ids[1], NULL, SHM_RDONLY);
	uint8_t *c = shmat(ids[2], NULL, 0);
	if (b == (void *)-1 || c == (void *)-1)
		fail_clean("shmat");
	test_fill(c, C_SIZE, SEED + 2);
	if (munmap(c, PG) < 0 || mprotect(c + 2 * PG, PG, PROT_READ) < 0)
		fail_clean("munmap/mprotect of C");
	if (pipe(to_child) < 0 || pipe(to_root) < 0)
		fail_clean("pipe");
	pid = fork();
	if (pid < 0)
		fail_clean("fork");
	if (pid == 0)
		child();
	close(to_child[0]);
	close(to_root[1]);
	a[PG / 8] = 0x1111;
	if (ask('w', 0x2222) != 1)
		fail_clean("the child's write");
	for (int i = 0; i < 3; i++)
		natt[i] = nattch(ids[i], &sz, &k);
	if (test_maps_lines((uintptr_t)a, (uintptr_t)a + 6 * PG, before[0], sizeof(before[0])) <= 0 ||
	    test_maps_lines((uintptr_t)b, (uintptr_t)b + B_SIZE, before[1], sizeof(before[1])) <= 0 ||
	    test_maps_lines((uintptr_t)c + PG, (uintptr_t)c + C_SIZE, before[2],
			    sizeof(before[2])) != 3)
		fail_clean("maps before");
	test_ready();
	test_wait();

	if (test_sabotage())
		shmdt((const void *)b);
	for (int i = 0; i < 3; i++) {
		int n = nattch(ids[i], &sz, &k);
		if (n != natt[i] || sz != sizes[i] || k != keys[i]) {
			cleanup();
			test_fail("segment %d: %d attachments, %zu bytes, key %#x (was %d, %zu, %#x)",
				  i, n, sz, (unsigned)k, natt[i], sizes[i], (unsigned)keys[i]);
		}
	}
	test_maps_lines((uintptr_t)a, (uintptr_t)a + 6 * PG, after[0], sizeof(after[0]));
	test_maps_lines((uintptr_t)b, (uintptr_t)b + B_SIZE, after[1], sizeof(after[1]));
	test_maps_lines((uintptr_t)c + PG, (uintptr_t)c + C_SIZE, after[2], sizeof(after[2]));
	for (int i = 0; i < 3; i++)
		if (strcmp(before[i], after[i])) {
			cleanup();
			test_fail("segment %d maps differ:\n%s---\n%s", i, before[i], after[i]);
		}
	static uint64_t ra[A_SIZE / 8 + 1];
	static uint8_t rb[B_SIZE], rc[C_SIZE];
	test_fill(ra, A_SIZE, SEED);
	test_fill(rb, B_SIZE, SEED + 1);
	test_fill(rc, C_SIZE, SEED + 2);
	ra[PG / 8] = 0x1111;
	ra[2 * PG / 8] = 0x2222;
	if (memcmp((const void *)a, ra, A_SIZE)) {
		cleanup();
		test_fail("A's data differ (probes %#llx %#llx)", (unsigned long long)a[PG / 8],
			  (unsigned long long)a[2 * PG / 8]);
	}
	if (memcmp(b, rb, B_SIZE) || memcmp(c + PG, rc + PG, C_SIZE - PG)) {
		cleanup();
		test_fail("B's or C's data differ");
	}
	a[PG / 8] = 0x3333;
	if (ask('r', 0) != 0x3333 || ask('w', 0x4444) != 1 || a[2 * PG / 8] != 0x4444) {
		cleanup();
		test_fail("A is not shared with the child any more");
	}
	if (mprotect((void *)b, B_SIZE, PROT_READ | PROT_WRITE) == 0 || errno != EACCES) {
		cleanup();
		test_fail("B (attached read-only) could be made writable");
	}
	if (mprotect(c + 2 * PG, PG, PROT_READ | PROT_WRITE) < 0)
		fail_clean("C's read-only page cannot be made writable");
	c[2 * PG] ^= 1;
	uint64_t q[2] = { 'q', 0 };
	if (test_write_full(to_child[1], q, sizeof(q)) < 0 || test_reap(pid, false, 10) != 0)
		fail_clean("the child did not exit well");
	cleanup();
	test_pass();
}
