/* A tiny header-only unit-test framework.
 *
 *   CHECK(cond)            count a check; on failure print file:line and the expression
 *   CHECK_EQ(a, b)         integers, compared as unsigned long long (-1 == UINT64_MAX)
 *   CHECK_STREQ(a, b)      strings (NULL-safe)
 *   UNIT_SKIP(fmt, ...)    print the reason and exit 77
 *   RUN(fn)                run `static void fn(void)` and report its name
 *   return unit_done();    at the end of main(): 0 if every check passed, 1 otherwise
 *
 * Fixtures are found under $STASIS_SRCDIR (default "."): unit_fixture("proc/stat", &len)
 * reads tests/fixtures/proc/stat into a NUL-terminated malloc'd buffer. */
#ifndef STASIS_TESTS_UNIT_H
#define STASIS_TESTS_UNIT_H

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int unit_checks __attribute__((unused));
static int unit_failures __attribute__((unused));
static const char *unit_current __attribute__((unused)) = "";

#define UNIT_FAIL(fmt, ...)                                                                 \
	do {                                                                                \
		unit_failures++;                                                            \
		fprintf(stderr, "%s:%d: [%s] " fmt "\n", __FILE__, __LINE__, unit_current,  \
			##__VA_ARGS__);                                                     \
	} while (0)

#define CHECK(cond)                                                                         \
	do {                                                                                \
		unit_checks++;                                                              \
		if (!(cond))                                                                \
			UNIT_FAIL("CHECK(%s) failed", #cond);                               \
	} while (0)

#define CHECK_EQ(a, b)                                                                      \
	do {                                                                                \
		__typeof__(a) __a = (a);                                                    \
		__typeof__(b) __b = (b);                                                    \
		unit_checks++;                                                              \
		if ((unsigned long long)__a != (unsigned long long)__b)                     \
			UNIT_FAIL("CHECK_EQ(%s, %s) failed: %lld (0x%llx) != %lld (0x%llx)",  \
				  #a, #b, (long long)__a, (unsigned long long)__a,          \
				  (long long)__b, (unsigned long long)__b);                 \
	} while (0)

#define CHECK_STREQ(a, b)                                                                   \
	do {                                                                                \
		const char *__a = (a), *__b = (b);                                          \
		unit_checks++;                                                              \
		if (!__a || !__b || strcmp(__a, __b))                                       \
			UNIT_FAIL("CHECK_STREQ(%s, %s) failed: \"%s\" != \"%s\"", #a, #b,     \
				  __a ? __a : "(null)", __b ? __b : "(null)");              \
	} while (0)

#define UNIT_SKIP(fmt, ...)                                                                 \
	do {                                                                                \
		printf("SKIP: " fmt "\n", ##__VA_ARGS__);                                   \
		exit(77);                                                                   \
	} while (0)

#define RUN(fn)                                                                             \
	do {                                                                                \
		int __before = unit_failures;                                               \
		unit_current = #fn;                                                         \
		fn();                                                                       \
		printf("%s %s\n", unit_failures == __before ? "ok  " : "FAIL", #fn);        \
	} while (0)

static inline __attribute__((unused)) int unit_done(void)
{
	printf("%d checks, %d failed\n", unit_checks, unit_failures);
	return unit_failures ? 1 : 0;
}

/* Path of a fixture: $STASIS_SRCDIR/tests/fixtures/@rel (malloc'd). */
static inline __attribute__((unused)) char *unit_fixture_path(const char *rel)
{
	const char *src = getenv("STASIS_SRCDIR");
	char *p;
	if (!src || !*src)
		src = ".";
	if (asprintf(&p, "%s/tests/fixtures/%s", src, rel) < 0) {
		fprintf(stderr, "out of memory\n");
		exit(1);
	}
	return p;
}

/* Read a fixture into a NUL-terminated malloc'd buffer; a missing fixture is a failure
 * of the test setup: exit 1 with the path. */
static inline __attribute__((unused)) char *unit_fixture(const char *rel, size_t *lenp)
{
	char *path = unit_fixture_path(rel);
	FILE *f = fopen(path, "rb");
	char *buf = NULL;
	size_t len = 0, cap = 0;

	if (!f) {
		fprintf(stderr, "cannot open fixture %s: %s (set STASIS_SRCDIR to the source "
				"tree)\n",
			path, strerror(errno));
		exit(1);
	}
	for (;;) {
		if (cap - len < 4096) {
			cap = cap ? cap * 2 : 8192;
			buf = realloc(buf, cap);
			if (!buf) {
				fprintf(stderr, "out of memory\n");
				exit(1);
			}
		}
		size_t n = fread(buf + len, 1, cap - len - 1, f);
		len += n;
		if (n == 0)
			break;
	}
	fclose(f);
	free(path);
	buf[len] = '\0';
	if (lenp)
		*lenp = len;
	return buf;
}

#endif
