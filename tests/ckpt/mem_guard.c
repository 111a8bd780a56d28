// stasis-test: timeout=30
/* Guard regions (MADV_GUARD_INSTALL, Linux 6.13; glibc 2.42 guards its thread stacks
 * this way): an anonymous area with data and guards on single pages, on two adjacent
 * pages and on its last page, one guard removed again; a thread running on a stack of
 * its own whose lowest page is a guard (the glibc 2.42 shape); an area whose only guard
 * was removed (VmFlags gu stays); a private file mapping with a guard where the kernel
 * allows it (6.15). After the restore the guard pages are exactly the same (PAGEMAP_SCAN
 * PAGE_IS_GUARD), each raises SIGSEGV when read, every other page holds its data, the
 * areas' VmFlags are the same (gu), the thread still runs on its stack, and a guard can be
 * removed (the page then reads zeros). Refused at dump before ("has guard regions"). */
#include "lib.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#ifndef MADV_GUARD_INSTALL
#define MADV_GUARD_INSTALL 102
#define MADV_GUARD_REMOVE 103
#endif
#ifndef PAGEMAP_SCAN
#define PAGEMAP_SCAN _IOWR('f', 16, struct pm_scan_arg)
struct page_region {
	uint64_t start, end, categories;
};
struct pm_scan_arg {
	uint64_t size, flags, start, end, walk_end, vec, vec_len, max_pages;
	uint64_t category_inverted, category_mask, category_anyof_mask, return_mask;
};
#endif
#define GUARD_BIT (1 << 8) /* PAGE_IS_GUARD */

#define PG 4096ul
#define NPG 32
#define MAXR 16

struct area {
	const char *name;
	char *addr;
	size_t pages;
	uint64_t seed;
	char vmflags[256];
	uint64_t guards[MAXR][2];
	int n;
};

static struct area areas[4];
static int nareas;
static sigjmp_buf jb;
static volatile int alive;

static void on_segv(int sig)
{
	(void)sig;
	siglongjmp(jb, 1);
}

static bool faults(const char *p)
{
	if (sigsetjmp(jb, 1))
		return true;
	(void)*(const volatile char *)p;
	return false;
}

/* The guard ranges of @a (PAGEMAP_SCAN), into @out; how many. */
static int scan_guards(const struct area *a, uint64_t out[][2])
{
	int fd = open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC);
	struct page_region vec[MAXR];
	struct pm_scan_arg arg = { .size = sizeof(arg),
				   .start = (uintptr_t)a->addr,
				   .end = (uintptr_t)a->addr + a->pages * PG,
				   .vec = (uintptr_t)vec,
				   .vec_len = MAXR,
				   .category_mask = GUARD_BIT,
				   .return_mask = GUARD_BIT };
	TEST_CHECK(fd >= 0, "open pagemap: %s", strerror(errno));
	long n = ioctl(fd, PAGEMAP_SCAN, &arg);
	TEST_CHECK(n >= 0, "PAGEMAP_SCAN: %s", strerror(errno));
	close(fd);
	for (long i = 0; i < n; i++) {
		out[i][0] = vec[i].start - (uintptr_t)a->addr;
		out[i][1] = vec[i].end - (uintptr_t)a->addr;
	}
	return (int)n;
}

static bool guarded(const struct area *a, size_t pg)
{
	for (int i = 0; i < a->n; i++)
		if (pg * PG >= a->guards[i][0] && pg * PG < a->guards[i][1])
			return true;
	return false;
}

static void vmflags(const struct area *a, char *out, size_t len)
{
	test_area_vmflags(a->addr, out, len);
}

static struct area *add(const char *name, char *addr, size_t pages, uint64_t seed)
{
	struct area *a = &areas[nareas++];
	a->name = name;
	a->addr = addr;
	a->pages = pages;
	a->seed = seed;
	return a;
}

static int guard(char *p, size_t len, int advice) { return madvise(p, len, advice); }

static void *spin(void *arg)
{
	(void)arg;
	for (;;) {
		volatile char buf[512];
		buf[0] = 1;
		alive++;
		test_sleep_ms(1 + buf[0]);
	}
	return NULL;
}

int main(int argc, char **argv)
{
	test_init(argc, argv);
	char *a = mmap(NULL, NPG * PG, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	TEST_CHECK(a != MAP_FAILED, "mmap: %s", strerror(errno));
	test_fill(a, NPG * PG, 0x6a4d);
	if (guard(a + PG, PG, MADV_GUARD_INSTALL) < 0 && (errno == EINVAL || errno == ENOSYS)) {
		printf("SKIP: MADV_GUARD_INSTALL: %s\n", strerror(errno));
		return 77;
	}
	TEST_CHECK(!guard(a + 5 * PG, 2 * PG, MADV_GUARD_INSTALL) &&
			   !guard(a + 10 * PG, PG, MADV_GUARD_INSTALL) &&
			   !guard(a + 10 * PG, PG, MADV_GUARD_REMOVE) &&
			   !guard(a + (NPG - 1) * PG, PG, MADV_GUARD_INSTALL),
		   "guards in the first area: %s", strerror(errno));
	add("anonymous", a, NPG, 0x6a4d);

	/* a thread stack whose lowest page is a guard (glibc 2.42's shape) */
	size_t ssz = 64 * PG;
	char *stk = mmap(NULL, ssz, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK,
			 -1, 0);
	TEST_CHECK(stk != MAP_FAILED && !guard(stk, PG, MADV_GUARD_INSTALL), "stack: %s",
		   strerror(errno));
	pthread_attr_t at;
	pthread_t th;
	pthread_attr_init(&at);
	pthread_attr_setstack(&at, stk + PG, ssz - PG);
	TEST_CHECK(!pthread_create(&th, &at, spin, NULL), "pthread_create");
	add("thread stack", stk, 64, 0);

	/* its only guard removed: the kernel keeps the area's mark */
	char *m = mmap(NULL, 8 * PG, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	TEST_CHECK(m != MAP_FAILED && !guard(m + 3 * PG, PG, MADV_GUARD_INSTALL) &&
			   !guard(m + 3 * PG, PG, MADV_GUARD_REMOVE),
		   "marked area: %s", strerror(errno));
	test_fill(m, 8 * PG, 0x6a4e);
	add("guard removed", m, 8, 0x6a4e);

	/* a private file mapping (6.15 allows guards there) */
	test_create("mapped");
	int fd = open("mapped", O_RDWR | O_CLOEXEC);
	TEST_CHECK(fd >= 0 && ftruncate(fd, 8 * PG) == 0, "file: %s", strerror(errno));
	char *f = mmap(NULL, 8 * PG, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
	TEST_CHECK(f != MAP_FAILED, "mmap file: %s", strerror(errno));
	close(fd);
	test_fill(f, 8 * PG, 0x6a4f);
	if (!guard(f + 2 * PG, PG, MADV_GUARD_INSTALL))
		add("file", f, 8, 0x6a4f);

	struct sigaction sa = { .sa_handler = on_segv };
	sigaction(SIGSEGV, &sa, NULL);
	for (int i = 0; i < nareas; i++) {
		areas[i].n = scan_guards(&areas[i], areas[i].guards);
		vmflags(&areas[i], areas[i].vmflags, sizeof(areas[i].vmflags));
	}
	TEST_CHECK(areas[0].n == 3, "the first area has %d guard ranges, not 3", areas[0].n);
	test_ready();
	test_wait();

	if (test_sabotage())
		guard(a + 5 * PG, PG, MADV_GUARD_REMOVE);
	for (int i = 0; i < nareas; i++) {
		struct area *ar = &areas[i];
		uint64_t now[MAXR][2];
		char flags[256];
		int n = scan_guards(ar, now), k = 0;
		while (k < n && k < ar->n && !memcmp(now[k], ar->guards[k], sizeof(now[k])))
			k++;
		TEST_CHECK(n == ar->n && k == n,
			   "%s: %d guard ranges, were %d; range %d: "
			   "+%#lx-+%#lx, was +%#lx-+%#lx",
			   ar->name, n, ar->n, k, k < n ? (unsigned long)now[k][0] : 0ul,
			   k < n ? (unsigned long)now[k][1] : 0ul,
			   k < ar->n ? (unsigned long)ar->guards[k][0] : 0ul,
			   k < ar->n ? (unsigned long)ar->guards[k][1] : 0ul);
		vmflags(ar, flags, sizeof(flags));
		TEST_CHECK(!strcmp(flags, ar->vmflags), "%s: [%s], was [%s]", ar->name, flags,
			   ar->vmflags);
		for (size_t pg = 0; pg < ar->pages; pg++) {
			bool g = guarded(ar, pg);
			TEST_CHECK(faults(ar->addr + pg * PG) == g, "%s: page %zu %s", ar->name, pg,
				   g ? "is a guard but can be read" : "faults");
		}
	}
	/* data: whole areas compared page by page against a copy of the pattern */
	char *want = malloc(NPG * PG);
	TEST_CHECK(want != NULL, "malloc");
	for (int i = 0; i < nareas; i++) {
		struct area *ar = &areas[i];
		if (!ar->seed)
			continue;
		test_fill(want, ar->pages * PG, ar->seed);
		for (size_t pg = 0; pg < ar->pages; pg++)
			if (!guarded(ar, pg) && !(ar->addr == a && pg == 10))
				TEST_CHECK(!memcmp(ar->addr + pg * PG, want + pg * PG, PG),
					   "%s: page %zu differs", ar->name, pg);
	}
	/* page 10 of the first area lost its data to the guard installed there, then removed */
	static const char zero[PG];
	TEST_CHECK(!memcmp(a + 10 * PG, zero, PG), "anonymous: page 10 is not zeros");
	int before = alive;
	test_sleep_ms(50);
	TEST_CHECK(alive != before, "the thread on the guarded stack stopped");
	TEST_CHECK(!guard(a + PG, PG, MADV_GUARD_REMOVE) && !faults(a + PG) && !memcmp(a + PG, zero, PG),
		   "a guard removed after the restore: %s", strerror(errno));
	test_pass();
}
