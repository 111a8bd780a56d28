/* A process that holds MIB MiB of memory and keeps rewriting a small part of it, for the
 * incremental-dump checks (tests/checks/runc_predump.py, criu_predump.py): built static,
 * so that it runs alone in a container's root.
 *
 *   memhog MIB HOT_KIB DIR
 *
 * Every page holds one pattern, a function of its index and a generation written in its
 * first word: the cold pages keep generation 0; the HOT_KIB KiB at the start are
 * rewritten one page after the other, over and over, each pass with the next generation
 * (pages before the cursor have the current pass's, the others the previous pass's).
 * Ready, it writes DIR/ready; on SIGUSR1 it checks every page against that rule and
 * writes DIR/result: "ok GEN" or "bad PAGE ..." (so a restored copy proves its memory,
 * cold pages from a parent image included, is exactly what it must be). */
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#define PAGE 4096UL
#define WORDS (PAGE / sizeof(uint64_t))

static volatile sig_atomic_t verify_asked;

static void on_usr1(int sig)
{
	(void)sig;
	verify_asked = 1;
}

static uint64_t word(uint64_t page, uint64_t gen, uint64_t k)
{
	return (page * 0x9e3779b97f4a7c15ULL) ^ (gen << 40) ^ (k * 0xff51afd7ed558ccdULL);
}

static void fill(uint64_t *p, uint64_t page, uint64_t gen)
{
	p[0] = gen;
	for (uint64_t k = 1; k < WORDS; k++)
		p[k] = word(page, gen, k);
}

static int write_file(const char *dir, const char *name, const char *text)
{
	char path[4096], tmp[4096];
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	snprintf(tmp, sizeof(tmp), "%s/.%s.tmp", dir, name);
	FILE *f = fopen(tmp, "w");
	if (!f)
		return -1;
	fputs(text, f);
	if (fclose(f))
		return -1;
	return rename(tmp, path);
}

/* Every page as the rule says: the result line. */
static void verify(const uint64_t *mem, uint64_t pages, uint64_t hot, uint64_t gen,
		   uint64_t cursor, char *out, size_t cap)
{
	for (uint64_t i = 0; i < pages; i++) {
		const uint64_t *p = mem + i * WORDS;
		uint64_t want = i >= hot ? 0 : i < cursor ? gen : gen - 1;
		if (p[0] != want) {
			snprintf(out, cap, "bad page %llu: generation %llu, not %llu\n",
				 (unsigned long long)i, (unsigned long long)p[0],
				 (unsigned long long)want);
			return;
		}
		for (uint64_t k = 1; k < WORDS; k++)
			if (p[k] != word(i, want, k)) {
				snprintf(out, cap, "bad page %llu: word %llu\n",
					 (unsigned long long)i, (unsigned long long)k);
				return;
			}
	}
	snprintf(out, cap, "ok %llu\n", (unsigned long long)gen);
}

int main(int argc, char **argv)
{
	if (argc != 4) {
		fprintf(stderr, "usage: memhog MIB HOT_KIB DIR\n");
		return 2;
	}
	uint64_t pages = strtoull(argv[1], NULL, 10) * 256;
	uint64_t hot = strtoull(argv[2], NULL, 10) / 4;
	const char *dir = argv[3];
	if (!pages || hot > pages)
		return 2;
	uint64_t *mem = mmap(NULL, pages * PAGE, PROT_READ | PROT_WRITE,
			     MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (mem == MAP_FAILED)
		return 1;
	struct sigaction sa = { .sa_handler = on_usr1 };
	sigaction(SIGUSR1, &sa, NULL);
	for (uint64_t i = 0; i < pages; i++)
		fill(mem + i * WORDS, i, 0);
	/* generation 1 starts over the hot pages: all of them at 0 count as the previous */
	uint64_t gen = 1, cursor = 0;
	if (write_file(dir, "ready", "ready\n"))
		return 1;
	for (;;) {
		if (verify_asked) {
			char line[128];
			verify_asked = 0;
			verify(mem, pages, hot, gen, cursor, line, sizeof(line));
			if (write_file(dir, "result", line))
				return 1;
		}
		if (!hot) {
			pause();
			continue;
		}
		fill(mem + cursor * WORDS, cursor, gen);
		if (++cursor == hot) {
			cursor = 0;
			gen++;
			struct timespec ts = { 0, 2 * 1000 * 1000 };
			nanosleep(&ts, NULL);
		}
	}
}
