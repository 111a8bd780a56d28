/* The dump's figures (stats.h): the freeze, the pages stored where, the time of every
 * stage, the size of the images. Written as stats-dump.img before the image directory
 * is committed, so a complete image always has them. */
#include <dirent.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>

#include "core/log.h"
#include "core/util.h"
#include "cr/stats.h"
#include "image/img.h"

#define MAX_STAGES 64

static struct {
	const char *name;
	bool tree;
	uint64_t ns;
} stages[MAX_STAGES];
static size_t n_stages;

void stats_stage(const char *name, bool tree, uint64_t ns)
{
	for (size_t i = 0; i < n_stages; i++)
		if (stages[i].name == name && stages[i].tree == tree) {
			stages[i].ns += ns;
			return;
		}
	if (n_stages < MAX_STAGES)
		stages[n_stages++] = (typeof(stages[0])){ name, tree, ns };
}

/* Bytes of every file in the (temporary) image directory. */
static uint64_t dir_bytes(int dfd)
{
	uint64_t sum = 0;
	int fd = openat(dfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
	if (!d) {
		if (fd >= 0)
			close(fd);
		return 0;
	}
	struct dirent *de;
	while ((de = readdir(d))) {
		struct stat st;
		if (de->d_name[0] != '.' && !fstatat(dfd, de->d_name, &st, AT_SYMLINK_NOFOLLOW) &&
		    S_ISREG(st.st_mode))
			sum += (uint64_t)st.st_size;
	}
	closedir(d);
	return sum;
}

static uint32_t to_us(uint64_t ns)
{
	return ns / 1000 > UINT32_MAX ? UINT32_MAX : (uint32_t)(ns / 1000);
}

/* The figures a runtime asks for (CRIU's, written by the RPC server: src/rpc/stats.c). */
static void stats_for_runtime(const DumpStats *s, struct cr_stats *out)
{
	memset(out, 0, sizeof(*out));
	out->freezing_us = to_us(s->freezing_ns);
	out->frozen_us = to_us(s->frozen_ns);
	out->memdump_us = to_us(s->collect_ns);
	out->memwrite_us = to_us(s->write_ns);
	out->pages_scanned = s->pages_stored + s->pages_in_parent + s->pages_shared_cow;
	out->pages_skipped_parent = s->pages_in_parent;
	out->pages_written = s->pages_stored;
}

int stats_write(struct dump_tree *t, uint64_t t0, uint64_t frozen, uint64_t collected,
		uint64_t written)
{
	DumpStats s = DUMP_STATS__INIT;
	StageTime st[MAX_STAGES], *pst[MAX_STAGES];
	uint64_t now = now_ns();

	s.has_freezing_ns = s.has_frozen_ns = s.has_collect_ns = s.has_write_ns = true;
	s.freezing_ns = frozen - t0;
	s.frozen_ns = (t->thawed ? t->thawed : now) - t0;
	s.collect_ns = collected - frozen;
	s.write_ns = written - collected;
	s.has_processes = s.has_threads = s.has_zombies = s.has_pre_dump = true;
	s.processes = (uint32_t)t->nr;
	s.zombies = (uint32_t)t->nr_zombies;
	s.pre_dump = t->opts->pre_dump;
	s.has_pages_stored = s.has_pages_in_parent = s.has_pages_shared_cow = true;
	for (size_t i = 0; i < t->nr; i++) {
		const Mm *mm = t->procs[i]->mm;
		s.threads += (uint32_t)t->procs[i]->nr_thr;
		for (size_t k = 0; mm && k < mm->n_pages; k++) {
			const PageRun *r = mm->pages[k];
			if (r->has_parent_depth)
				s.pages_in_parent += r->nr_pages;
			else if (r->has_src_pid)
				s.pages_shared_cow += r->nr_pages;
			else
				s.pages_stored += r->nr_pages;
		}
	}
	for (size_t i = 0; i < n_stages; i++) {
		stage_time__init(&st[i]);
		st[i].name = (char *)stages[i].name;
		st[i].tree = stages[i].tree;
		st[i].ns = stages[i].ns;
		pst[i] = &st[i];
	}
	s.n_stages = n_stages;
	s.stages = pst;
	s.has_image_bytes = true;
	s.image_bytes = dir_bytes(t->img.dfd);
	if (t->opts->stats)
		stats_for_runtime(&s, t->opts->stats);
	int ret = img_write_msg(&t->img, IMG_STATS, 0, &s.base);
	if (!ret)
		pr_info("%s: frozen %.3f ms (freezing %.3f ms), %llu pages stored, %llu in the "
			"parent images, %llu bytes of images",
			s.pre_dump ? "pre-dump" : "dump", (double)s.frozen_ns / 1e6,
			(double)s.freezing_ns / 1e6, (unsigned long long)s.pages_stored,
			(unsigned long long)s.pages_in_parent, (unsigned long long)s.image_bytes);
	return ret;
}
