// stasis-test: timeout=30 hugepages=16
/* Huge pages (hugetlb, 2 MiB): a private MAP_HUGETLB area of three pages, the first two
 * written, the third never touched; a shared MAP_HUGETLB area of two pages, inherited by a
 * child through fork; a SysV segment made with SHM_HUGETLB, attached. After the restore:
 * the same maps lines (but inode numbers) and the same page size in smaps, the data in
 * place, the untouched page still not backed (smaps' *_Hugetlb), the shared area still
 * shared with the child both ways, the child's private copy its own, the segment still
 * on huge pages. */
#include "lib.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ipc.h>
#include <sys/mman.h>
#include <sys/shm.h>
#include <sys/wait.h>
#include <unistd.h>

#define HP (2ul << 20)
#define SEED 0x4855474550ull

static int shmid = -1;
static uint8_t *priv, *shared, *seg;
static int to_child[2], to_root[2];
static pid_t pid;

static void cleanup(void)
{
	if (shmid >= 0)
		shmctl(shmid, IPC_RMID, NULL);
}

/* the segment removed however the test ends (test_fail and test_pass _exit) */
#define FAIL(...)                          \
	do {                               \
		cleanup();                 \
		test_fail(__VA_ARGS__);    \
	} while (0)

/* the area's maps line (but the inode), its KernelPageSize and the huge pages it maps
 * (Private_Hugetlb + Shared_Hugetlb, added to *@phuge) */
static void area(const void *addr, char *line, size_t len, unsigned *kps, unsigned *phuge)
{
	test_area_line(addr, line, len);
	*kps = (unsigned)test_area_kb(addr, "KernelPageSize");
	*phuge += (unsigned)(test_area_kb(addr, "Private_Hugetlb") +
			     test_area_kb(addr, "Shared_Hugetlb"));
}

static __attribute__((noreturn)) void child(void)
{
	uint64_t req[2];
	close(to_child[1]);
	close(to_root[0]);
	for (;;) {
		if (test_read_full(to_child[0], req, sizeof(req)) < 0)
			_exit(2);
		uint64_t ans = 0;
		if (req[0] == 'q')
			_exit(0);
		if (req[0] == 'r') /* the shared area's word at offset req[1] */
			ans = *(volatile uint64_t *)(shared + req[1]);
		else if (req[0] == 'w')
			*(volatile uint64_t *)(shared + HP + 8) = req[1];
		else if (req[0] == 'p') /* its own copy of the private area */
			ans = test_check(priv, 2 * HP, SEED) == -1 ? 1 : 0;
		if (test_write_full(to_root[1], &ans, sizeof(ans)) < 0)
			_exit(3);
	}
}

static uint64_t ask(uint64_t op, uint64_t v)
{
	uint64_t req[2] = { op, v }, ans = 0;
	if (test_write_full(to_child[1], req, sizeof(req)) < 0 ||
	    test_read_full(to_root[0], &ans, sizeof(ans)) < 0) {
		int st = 0;
		test_sleep_ms(100);
		pid_t w = waitpid(pid, &st, WNOHANG);
		FAIL("talk to the child (%s %#x)", w == pid ? "status" : "no status", st);
	}
	return ans;
}

int main(int argc, char **argv)
{
	char before[3][512], after[512];
	unsigned kps[3] = { 0 }, ph[3] = { 0 }, k2 = 0, p2 = 0;

	test_init(argc, argv);
	priv = mmap(NULL, 3 * HP, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_HUGETLB,
		    -1, 0);
	shared = mmap(NULL, 2 * HP, PROT_READ | PROT_WRITE,
		      MAP_SHARED | MAP_ANONYMOUS | MAP_HUGETLB, -1, 0);
	if (priv == MAP_FAILED || shared == MAP_FAILED)
		FAIL("mmap MAP_HUGETLB: %s", strerror(errno));
	/* SHM_HUGETLB needs CAP_IPC_LOCK (or vm.hugetlb_shm_group): a non-root run has a
	 * private huge area in the segment's place */
	shmid = shmget(IPC_PRIVATE, HP, IPC_CREAT | SHM_HUGETLB | 0600);
	if (shmid < 0 && errno != EPERM)
		FAIL("shmget SHM_HUGETLB: %s", strerror(errno));
	if (shmid < 0)
		test_msg("no SHM_HUGETLB here (%s): a third MAP_HUGETLB area instead",
			 strerror(errno));
	seg = shmid >= 0 ? shmat(shmid, NULL, 0)
			 : mmap(NULL, HP, PROT_READ | PROT_WRITE,
				MAP_PRIVATE | MAP_ANONYMOUS | MAP_HUGETLB, -1, 0);
	if (seg == (void *)-1)
		FAIL("shmat: %s", strerror(errno));
	test_fill(priv, 2 * HP, SEED);
	test_fill(shared, 2 * HP, SEED + 1);
	test_fill(seg, HP, SEED + 2);
	if (pipe(to_child) < 0 || pipe(to_root) < 0)
		FAIL("pipe");
	pid = fork();
	if (pid < 0)
		FAIL("fork");
	if (!pid)
		child();
	close(to_child[0]);
	close(to_root[1]);
	/* the root's private copy diverges from the child's */
	priv[HP + 64] ^= 0xff;
	area(priv, before[0], sizeof(before[0]), &kps[0], &ph[0]);
	area(shared, before[1], sizeof(before[1]), &kps[1], &ph[1]);
	area(seg, before[2], sizeof(before[2]), &kps[2], &ph[2]);
	if (kps[0] != 2048 || kps[1] != 2048 || kps[2] != 2048 || ph[0] != 4096)
		FAIL("page sizes %u %u %u, private hugetlb %u kB", kps[0], kps[1], kps[2],
			  ph[0]);

	test_ready();
	test_wait();
	if (test_sabotage())
		priv[5] ^= 1;

	const void *at[3] = { priv, shared, seg };
	for (int i = 0; i < 3; i++) {
		p2 = 0;
		area(at[i], after, sizeof(after), &k2, &p2);
		/* the segment's pages are in the segment, not yet in the restored task's
		 * page tables */
		if (strcmp(before[i], after) || k2 != kps[i] || ((i < 2 || shmid < 0) && p2 != ph[i]))
			FAIL("area %d: %s (%u kB pages, %u kB private) now %s (%u, %u)", i,
				  before[i], kps[i], ph[i], after, k2, p2);
	}
	priv[HP + 64] ^= 0xff;
	long bad = test_check(priv, 2 * HP, SEED);
	if (bad >= 0)
		FAIL("private huge pages differ at %ld", bad);
	if ((bad = test_check(shared, 2 * HP, SEED + 1)) >= 0)
		FAIL("shared huge pages differ at %ld", bad);
	if ((bad = test_check(seg, HP, SEED + 2)) >= 0)
		FAIL("the SysV huge segment differs at %ld", bad);
	if (ask('p', 0) != 1)
		FAIL("the child's private copy differs");
	*(volatile uint64_t *)(shared + 16) = 0x1234;
	if (ask('r', 16) != 0x1234)
		FAIL("a write by the root is not seen by the child");
	ask('w', 0x5678);
	if (*(volatile uint64_t *)(shared + HP + 8) != 0x5678)
		FAIL("a write by the child is not seen by the root");
	uint64_t quit[2] = { 'q', 0 };
	if (test_write_full(to_child[1], quit, sizeof(quit)) < 0)
		FAIL("tell the child to exit");
	int st;
	if (waitpid(pid, &st, 0) != pid || !WIFEXITED(st) || WEXITSTATUS(st))
		FAIL("child status %#x", st);
	struct shmid_ds ds;
	if (shmid >= 0 && (shmctl(shmid, IPC_STAT, &ds) < 0 || ds.shm_nattch != 1))
		FAIL("segment attach count %lu", (unsigned long)ds.shm_nattch);
	cleanup();
	test_pass();
}
