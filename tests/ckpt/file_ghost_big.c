// stasis-test: timeout=180
/* Large and sparse files without a name (their contents go through blobs.img, with no
 * size cap): a 200 MiB memfd with a hole, seals, mode, owner and an offset, mapped shared;
 * a 100 MiB unlinked file; a sparse 1 GiB unlinked file with a few written pages, mapped
 * shared. Contents, size, holes (SEEK_DATA/SEEK_HOLE, allocated blocks), mode, owner,
 * seals, the offsets and the mappings survive, each mapping still of its fd's file. */
#include "lib.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#define MIB (1ull << 20)
#define MEMFD_SIZE (200 * MIB)
#define MEMFD_HOLE (100 * MIB) /* [100 MiB, 104 MiB) never written */
#define MEMFD_HOLE_LEN (4 * MIB)
#define BIG_SIZE (100 * MIB)
#define SPARSE_SIZE (1024 * MIB)
#define PG 4096ull

/* the written pages of the sparse file, each filled from its own seed */
static const unsigned long long sparse_pages[] = { 0, 300 * MIB + PG, 777 * MIB, SPARSE_SIZE - PG };
#define N_SPARSE (sizeof(sparse_pages) / sizeof(sparse_pages[0]))

static uint64_t *chunk;

/* @len bytes of deterministic data (1 MiB pieces, seeded by @seed and their offset). */
static int fill_file(int fd, unsigned long long from, unsigned long long len, uint64_t seed)
{
	for (unsigned long long off = from; off < from + len; off += MIB) {
		test_fill(chunk, MIB, seed + off / MIB);
		if (pwrite(fd, chunk, MIB, (off_t)off) != (ssize_t)MIB)
			return -1;
	}
	return 0;
}

static void check_file(const char *what, int fd, unsigned long long from, unsigned long long len,
		       uint64_t seed)
{
	for (unsigned long long off = from; off < from + len; off += MIB) {
		TEST_CHECK(pread(fd, chunk, MIB, (off_t)off) == (ssize_t)MIB,
			   "%s: read at %llu: %s", what, off, strerror(errno));
		long bad = test_check(chunk, MIB, seed + off / MIB);
		TEST_CHECK(bad < 0, "%s: contents differ at byte %llu", what,
			   off + (unsigned long long)bad);
	}
}

/* Give the file to 1234:1235 if we may (root), else keep ours; the expected owner. */
static void set_owner(int fd, uid_t *uid, gid_t *gid)
{
	struct stat st;
	if (fchown(fd, 1234, 1235) < 0 && errno != EPERM && errno != EINVAL)
		test_fail("fchown: %s", strerror(errno));
	if (fstat(fd, &st) < 0)
		test_fail("fstat: %s", strerror(errno));
	*uid = st.st_uid;
	*gid = st.st_gid;
}

static void check_stat(const char *what, int fd, unsigned long long size, mode_t mode, uid_t uid,
		       gid_t gid)
{
	struct stat st;
	TEST_CHECK(fstat(fd, &st) == 0, "%s: fstat: %s", what, strerror(errno));
	TEST_CHECK(S_ISREG(st.st_mode) && st.st_nlink == 0, "%s: not an unlinked regular file", what);
	TEST_CHECK((unsigned long long)st.st_size == size, "%s: size %lld, expected %llu", what,
		   (long long)st.st_size, size);
	TEST_CHECK((st.st_mode & 07777) == mode, "%s: mode %o, expected %o", what,
		   st.st_mode & 07777, mode);
	TEST_CHECK(st.st_uid == uid && st.st_gid == gid, "%s: owner %u:%u, expected %u:%u", what,
		   st.st_uid, st.st_gid, uid, gid);
}

int main(int argc, char **argv)
{
	test_init(argc, argv);
	chunk = aligned_alloc(4096, MIB);
	if (!chunk)
		test_fail("no memory");

	/* the memfd: 200 MiB of data but a 4 MiB hole */
	int mfd = memfd_create("stasis-big", MFD_ALLOW_SEALING);
	uid_t muid, buid;
	gid_t mgid, bgid;
	if (mfd < 0 || ftruncate(mfd, MEMFD_SIZE) < 0 || fill_file(mfd, 0, MEMFD_HOLE, 1) < 0 ||
	    fill_file(mfd, MEMFD_HOLE + MEMFD_HOLE_LEN, MEMFD_SIZE - MEMFD_HOLE - MEMFD_HOLE_LEN, 1) < 0 ||
	    fchmod(mfd, 0640) < 0 || lseek(mfd, 123456789, SEEK_SET) != 123456789)
		test_fail("memfd setup: %s", strerror(errno));
	set_owner(mfd, &muid, &mgid);
	if (fcntl(mfd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW) < 0)
		test_fail("seal: %s", strerror(errno));
	unsigned char *mmem = mmap(NULL, MEMFD_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, mfd, 0);
	if (mmem == MAP_FAILED)
		test_fail("mmap memfd: %s", strerror(errno));

	/* the 100 MiB unlinked file */
	int bfd = open("big.dat", O_RDWR | O_CREAT | O_TRUNC, 0600);
	if (bfd < 0 || fill_file(bfd, 0, BIG_SIZE, 1000) < 0 || fchmod(bfd, 0604) < 0 ||
	    lseek(bfd, 98765432, SEEK_SET) != 98765432)
		test_fail("big file setup: %s", strerror(errno));
	set_owner(bfd, &buid, &bgid);

	/* the sparse 1 GiB unlinked file, a few pages written, mapped shared */
	int sfd = open("sparse.dat", O_RDWR | O_CREAT | O_TRUNC, 0644);
	if (sfd < 0 || ftruncate(sfd, SPARSE_SIZE) < 0)
		test_fail("sparse file setup: %s", strerror(errno));
	for (size_t i = 0; i < N_SPARSE; i++) {
		test_fill(chunk, PG, 5000 + i);
		if (pwrite(sfd, chunk, PG, (off_t)sparse_pages[i]) != (ssize_t)PG)
			test_fail("sparse write: %s", strerror(errno));
	}
	if (lseek(sfd, 5555, SEEK_SET) != 5555)
		test_fail("sparse lseek: %s", strerror(errno));
	struct stat st;
	if (fstat(sfd, &st) < 0 || st.st_blocks * 512 > 64 * (long long)PG)
		test_fail("the file system does not keep the sparse file sparse (%lld blocks)",
			  (long long)st.st_blocks);
	unsigned char *map = mmap(NULL, SPARSE_SIZE, PROT_READ, MAP_SHARED, sfd, 0);
	if (map == MAP_FAILED)
		test_fail("mmap: %s", strerror(errno));
	if (unlink("big.dat") < 0 || unlink("sparse.dat") < 0)
		test_fail("unlink: %s", strerror(errno));

	test_ready();
	test_wait();
	if (test_sabotage())
		(void)!pwrite(mfd, "X", 1, 150 * MIB + 17);

	/* the memfd */
	check_stat("memfd", mfd, MEMFD_SIZE, 0640, muid, mgid);
	char self[64], link[256];
	snprintf(self, sizeof(self), "/proc/self/fd/%d", mfd);
	ssize_t n = readlink(self, link, sizeof(link) - 1);
	TEST_CHECK(n > 0, "readlink: %s", strerror(errno));
	link[n] = '\0';
	TEST_CHECK(strstr(link, "/memfd:stasis-big") == link, "memfd link is %s", link);
	TEST_CHECK(lseek(mfd, 0, SEEK_CUR) == 123456789, "memfd offset lost");
	int seals = fcntl(mfd, F_GET_SEALS);
	TEST_CHECK(seals == (F_SEAL_SHRINK | F_SEAL_GROW), "memfd seals %#x", seals);
	TEST_CHECK(lseek(mfd, 0, SEEK_HOLE) == (off_t)MEMFD_HOLE, "memfd: the hole moved (%lld)",
		   (long long)lseek(mfd, 0, SEEK_HOLE));
	TEST_CHECK(lseek(mfd, MEMFD_HOLE, SEEK_DATA) == (off_t)(MEMFD_HOLE + MEMFD_HOLE_LEN),
		   "memfd: the hole is not a hole any more");
	check_file("memfd", mfd, 0, MEMFD_HOLE, 1);
	check_file("memfd", mfd, MEMFD_HOLE + MEMFD_HOLE_LEN,
		   MEMFD_SIZE - MEMFD_HOLE - MEMFD_HOLE_LEN, 1);
	TEST_CHECK(pread(mfd, chunk, MIB, MEMFD_HOLE) == (ssize_t)MIB, "memfd: read the hole");
	for (size_t i = 0; i < MIB / 8; i++)
		TEST_CHECK(chunk[i] == 0, "memfd: the hole holds data");
	TEST_CHECK(ftruncate(mfd, 10) < 0 && errno == EPERM, "memfd: the shrink seal is gone");
	for (unsigned long long off = 0; off < MEMFD_SIZE; off += 33 * MIB)
		TEST_CHECK(test_check(mmem + off, MIB, 1 + off / MIB) < 0,
			   "memfd: the mapping differs at %llu", off);
	TEST_CHECK(mmem[MEMFD_HOLE + 12345] == 0, "memfd: the hole holds data in the mapping");
	mmem[MEMFD_HOLE + 7] = 'M';
	char m = 0;
	TEST_CHECK(pread(mfd, &m, 1, MEMFD_HOLE + 7) == 1 && m == 'M',
		   "memfd: the mapping is no longer the fd's file");

	/* the big unlinked file */
	check_stat("big file", bfd, BIG_SIZE, 0604, buid, bgid);
	TEST_CHECK(lseek(bfd, 0, SEEK_CUR) == 98765432, "big file: offset lost");
	check_file("big file", bfd, 0, BIG_SIZE, 1000);

	/* the sparse file: the same data pages, holes elsewhere, the mapping */
	check_stat("sparse file", sfd, SPARSE_SIZE, 0644, st.st_uid, st.st_gid);
	TEST_CHECK(lseek(sfd, 0, SEEK_CUR) == 5555, "sparse file: offset lost");
	struct stat now;
	TEST_CHECK(fstat(sfd, &now) == 0 && now.st_blocks * 512 <= 64 * (long long)PG,
		   "sparse file: %lld blocks allocated, the holes were filled",
		   (long long)now.st_blocks);
	for (size_t i = 0; i < N_SPARSE; i++) {
		off_t p = (off_t)sparse_pages[i];
		TEST_CHECK(lseek(sfd, i ? p - 1 : 0, SEEK_DATA) == p,
			   "sparse file: page %zu is not "
			   "the next data after the hole before it",
			   i);
		TEST_CHECK(pread(sfd, chunk, PG, p) == (ssize_t)PG, "sparse read: %s", strerror(errno));
		TEST_CHECK(test_check(chunk, PG, 5000 + i) < 0, "sparse file: page %zu differs", i);
		TEST_CHECK(test_check(map + p, PG, 5000 + i) < 0,
			   "sparse file: page %zu differs in the mapping", i);
		if (i + 1 < N_SPARSE)
			TEST_CHECK(lseek(sfd, p, SEEK_HOLE) == p + (off_t)PG,
				   "sparse file: no hole after page %zu", i);
	}
	TEST_CHECK(map[200 * MIB] == 0 && map[SPARSE_SIZE - PG - 1] == 0,
		   "sparse file: a hole reads non-zero through the mapping");
	TEST_CHECK(pwrite(sfd, "S", 1, 3) == 1 && map[3] == 'S',
		   "sparse file: the mapping is no longer the fd's file");
	test_pass();
}
