// stasis-test: timeout=120 needs=root
/* Large and sparse tmpfs contents (carried in blobs.img, streamed in chunks): in a mount
 * namespace of its own (/ made private), a tmpfs (noatime, so that reading the files
 * does not move their access times) holding
 *   - "big": 100 MiB of pseudo-random data (more than a metadata image may hold);
 *   - "sparse": a 1 GiB file with a few pages written (one at 64 KiB, two adjacent at
 *     256 MiB + 8 KiB, one at 777 MiB, none near the end: its size is only in the
 *     record), the rest holes;
 *   - "holes": 16 MiB of holes only;
 *   - "sub/small": a few bytes.
 * After restore: each file's size, mode, owner, times, an FNV-1a hash of all its bytes,
 * its data/hole layout (SEEK_DATA/SEEK_HOLE) and st_blocks are what they were, and the
 * written pages of "sparse" hold their data. */
#include "lib.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#define MiB (1024UL * 1024)
#define BIG_LEN (100 * MiB)
#define SPARSE_LEN (1024 * MiB)
#define HOLES_LEN (16 * MiB)
#define MAX_EXT 32

static char base[PATH_MAX];

struct picture {
	const char *name;
	struct stat st;
	uint64_t hash;
	size_t n_ext;
	off_t ext[MAX_EXT][2];
};

static const char *at(const char *rel)
{
	static char buf[4][2 * PATH_MAX];
	static int k;
	k = (k + 1) % 4;
	snprintf(buf[k], sizeof(buf[k]), "%s/t/%s", base, rel);
	return buf[k];
}

static void must(int r, const char *what)
{
	if (r < 0)
		test_fail("setup: %s: %s", what, strerror(errno));
}

/* FNV-1a over every 8-byte word of the file (holes read as zeros; a short tail
 * zero-padded) and its length, in 1 MiB pieces. */
static uint64_t file_hash(int fd)
{
	static uint64_t buf[MiB / 8];
	uint64_t h = 0xcbf29ce484222325ULL;
	off_t off = 0;
	for (;;) {
		ssize_t n = pread(fd, buf, sizeof(buf), off);
		if (n < 0)
			test_fail("read for the hash: %s", strerror(errno));
		if (n == 0)
			return (h ^ (uint64_t)off) * 0x100000001b3ULL;
		if (n % 8)
			memset((char *)buf + n, 0, 8 - (size_t)n % 8);
		for (ssize_t i = 0; i < (n + 7) / 8; i++)
			h = (h ^ buf[i]) * 0x100000001b3ULL;
		off += n;
	}
}

static void take(struct picture *p, const char *name)
{
	memset(p, 0, sizeof(*p));
	p->name = name;
	/* the times first: nothing below may change them (noatime) but be exact anyway */
	if (stat(at(name), &p->st) < 0)
		test_fail("stat %s: %s", name, strerror(errno));
	int fd = open(at(name), O_RDONLY);
	if (fd < 0)
		test_fail("open %s: %s", name, strerror(errno));
	off_t off = 0;
	while (off < p->st.st_size) {
		off_t ds = lseek(fd, off, SEEK_DATA);
		if (ds < 0 && errno == ENXIO)
			break;
		if (ds < 0)
			test_fail("SEEK_DATA %s: %s", name, strerror(errno));
		off_t de = lseek(fd, ds, SEEK_HOLE);
		if (de < 0)
			test_fail("SEEK_HOLE %s: %s", name, strerror(errno));
		if (p->n_ext == MAX_EXT)
			test_fail("%s has more than %d data extents", name, MAX_EXT);
		p->ext[p->n_ext][0] = ds;
		p->ext[p->n_ext][1] = de;
		p->n_ext++;
		off = de;
	}
	p->hash = file_hash(fd);
	close(fd);
}

static void compare(const struct picture *a, const struct picture *b)
{
	const char *n = a->name;
	TEST_CHECK(a->st.st_size == b->st.st_size, "%s: size %lld, was %lld", n,
		   (long long)b->st.st_size, (long long)a->st.st_size);
	TEST_CHECK(a->st.st_mode == b->st.st_mode && a->st.st_uid == b->st.st_uid &&
			   a->st.st_gid == b->st.st_gid,
		   "%s: mode %o owner %d:%d, was %o %d:%d", n, b->st.st_mode, b->st.st_uid,
		   b->st.st_gid, a->st.st_mode, a->st.st_uid, a->st.st_gid);
	TEST_CHECK(a->st.st_mtim.tv_sec == b->st.st_mtim.tv_sec &&
			   a->st.st_mtim.tv_nsec == b->st.st_mtim.tv_nsec &&
			   a->st.st_atim.tv_sec == b->st.st_atim.tv_sec &&
			   a->st.st_atim.tv_nsec == b->st.st_atim.tv_nsec,
		   "%s: times changed (mtime %ld.%09ld, was %ld.%09ld)", n,
		   (long)b->st.st_mtim.tv_sec, b->st.st_mtim.tv_nsec, (long)a->st.st_mtim.tv_sec,
		   a->st.st_mtim.tv_nsec);
	TEST_CHECK(a->hash == b->hash, "%s: contents differ (hash %016llx, was %016llx)", n,
		   (unsigned long long)b->hash, (unsigned long long)a->hash);
	TEST_CHECK(a->n_ext == b->n_ext, "%s: %zu data extents, was %zu (holes filled or lost)",
		   n, b->n_ext, a->n_ext);
	for (size_t i = 0; i < a->n_ext; i++)
		TEST_CHECK(a->ext[i][0] == b->ext[i][0] && a->ext[i][1] == b->ext[i][1],
			   "%s: data extent %zu is [%lld, %lld), was [%lld, %lld)", n, i,
			   (long long)b->ext[i][0], (long long)b->ext[i][1],
			   (long long)a->ext[i][0], (long long)a->ext[i][1]);
	TEST_CHECK(a->st.st_blocks == b->st.st_blocks, "%s: %lld blocks allocated, was %lld", n,
		   (long long)b->st.st_blocks, (long long)a->st.st_blocks);
}

static const off_t pages[] = { 64 * 1024, 256 * MiB + 8192, 256 * MiB + 12288, 777 * MiB };

static void setup(void)
{
	char dir[PATH_MAX + 8];
	snprintf(dir, sizeof(dir), "%s/t", base);
	must(mkdir(dir, 0755), "mkdir t");
	must(mount("stasis-big", dir, "tmpfs", MS_NOATIME, "size=512m,mode=755"), "tmpfs t");

	static uint64_t buf[MiB / 8];
	int fd = open(at("big"), O_WRONLY | O_CREAT | O_EXCL, 0640);
	must(fd, "big");
	for (size_t i = 0; i < BIG_LEN / MiB; i++) {
		test_fill(buf, MiB, 0xb16b00b5ULL + i);
		must(test_write_full(fd, buf, MiB), "write big");
	}
	close(fd);

	fd = open(at("sparse"), O_WRONLY | O_CREAT | O_EXCL, 0600);
	must(fd, "sparse");
	must(ftruncate(fd, SPARSE_LEN), "truncate sparse");
	for (size_t i = 0; i < sizeof(pages) / sizeof(pages[0]); i++) {
		test_fill(buf, 4096, 0x5ba45eULL + i);
		must(pwrite(fd, buf, 4096, pages[i]) == 4096 ? 0 : -1, "write a page of sparse");
	}
	close(fd);

	fd = open(at("holes"), O_WRONLY | O_CREAT | O_EXCL, 0604);
	must(fd, "holes");
	must(ftruncate(fd, HOLES_LEN), "truncate holes");
	close(fd);

	must(mkdir(at("sub"), 0750), "sub");
	fd = open(at("sub/small"), O_WRONLY | O_CREAT | O_EXCL, 0644);
	must(fd, "small");
	must(test_write_full(fd, "a few bytes", 11), "write small");
	close(fd);

	must(chown(at("big"), 1234, 5678), "chown big");
	must(chown(at("sparse"), 42, 43), "chown sparse");
	struct timespec t1[2] = { { 1300000000, 11 }, { 1200000000, 22 } };
	struct timespec t2[2] = { { 1400000000, 33 }, { 1100000000, 44 } };
	must(utimensat(AT_FDCWD, at("big"), t1, 0), "times big");
	must(utimensat(AT_FDCWD, at("sparse"), t2, 0), "times sparse");
}

static const char *const names[] = { "big", "sparse", "holes", "sub/small" };
#define N_FILES (sizeof(names) / sizeof(names[0]))

int main(int argc, char **argv)
{
	static struct picture before[N_FILES], after[N_FILES];
	test_init(argc, argv);
	if (!getcwd(base, sizeof(base) - 64))
		test_fail("getcwd: %s", strerror(errno));
	if (unshare(CLONE_NEWNS) < 0 || mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0)
		test_fail("setup: private mount namespace: %s", strerror(errno));
	setup();
	for (size_t i = 0; i < N_FILES; i++)
		take(&before[i], names[i]);
	/* the layout the test means, checked once before the dump */
	TEST_CHECK(before[1].n_ext == 3 && before[1].st.st_blocks == 4 * 8,
		   "setup: sparse has %zu extents, %lld blocks", before[1].n_ext,
		   (long long)before[1].st.st_blocks);
	TEST_CHECK(before[2].n_ext == 0 && before[2].st.st_blocks == 0, "setup: holes has data");
	test_ready();
	test_wait();
	if (test_sabotage()) {
		int fd = open(at("big"), O_WRONLY);
		char x = 'x';
		if (fd < 0 || pwrite(fd, &x, 1, 50 * MiB + 7) != 1)
			test_fail("sabotage: %s", strerror(errno));
		close(fd);
		/* only the contents differ: the times put back */
		struct timespec t[2] = { before[0].st.st_atim, before[0].st.st_mtim };
		utimensat(AT_FDCWD, at("big"), t, 0);
	}
	for (size_t i = 0; i < N_FILES; i++) {
		take(&after[i], names[i]);
		compare(&before[i], &after[i]);
	}
	static uint64_t page[512];
	int fd = open(at("sparse"), O_RDONLY);
	TEST_CHECK(fd >= 0, "open sparse: %s", strerror(errno));
	for (size_t i = 0; i < sizeof(pages) / sizeof(pages[0]); i++) {
		TEST_CHECK(pread(fd, page, 4096, pages[i]) == 4096, "read a page of sparse");
		long bad = test_check(page, 4096, 0x5ba45eULL + i);
		TEST_CHECK(bad < 0, "sparse: page at %lld differs at byte %ld", (long long)pages[i],
			   bad);
	}
	close(fd);
	test_pass();
}
