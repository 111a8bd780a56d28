/* Restore of an incremental image: the page runs that lie in parent images
 * (PageRun.parent_depth, written by src/mem/track.c) are checked before anything is
 * restored. The chain is followed through the `parent` links by the page source itself
 * (src/mem/pagefile.c: each directory opened once, so the chain checked here is the one
 * read later): each parent's inventory must carry the id its child names (a parent
 * replaced by another image, or a loop, is refused), hold an mm image of the same
 * process (its start time), and every run must lie inside one run stored in that image,
 * at the matching offset; that run's checksum is verified here (once), since the fill
 * cannot verify a part of it; for a lazy restore, a run the page server serves is not:
 * the server verifies the parent run's 2 MiB pieces as it serves them (rst_ctx.pruns),
 * so that the tree runs without the whole chain read first. */
#include "mem/internal.h"

#include <stdlib.h>
#include <string.h>

#include "core/log.h"
#include "core/util.h"

struct link {
	Inventory *inv;
	Mm *mm;
	bool *verified; /* per run of mm */
};

static bool same_id(const ProtobufCBinaryData *a, const ProtobufCBinaryData *b)
{
	return a->len == b->len && a->len && !memcmp(a->data, b->data, a->len);
}

/* Link @d of the chain: read and checked against link @d - 1 (@child). */
static int load_link(struct rst_ctx *c, uint32_t d, const Inventory *child, struct link *l,
		     const struct link *chain)
{
	int dfd = pagefile_parent_dir(c->pages, d);
	if (dfd < 0)
		return dfd;
	l->inv = img_read_msg(dfd, IMG_INVENTORY, 0);
	if (!l->inv) {
		pr_err("images: the parent image %u up of pid %d has no readable inventory", d,
		       c->pid);
		return -EINVAL;
	}
	if (!child->has_parent_id || !l->inv->has_image_id ||
	    !same_id(&child->parent_id, &l->inv->image_id)) {
		pr_err("images: the parent image %u up is not the image the dump of pid %d was "
		       "made against (image ids differ)",
		       d, c->pid);
		return -EINVAL;
	}
	for (uint32_t k = 1; k < d; k++)
		if (same_id(&chain[k].inv->image_id, &l->inv->image_id)) {
			pr_err("images: the chain of parent images loops (link %u is link %u)", d, k);
			return -ELOOP;
		}
	l->mm = img_read_msg(dfd, IMG_MM, c->pid);
	if (!l->mm) {
		pr_err("images: the parent image %u up has no readable mm image of pid %d", d,
		       c->pid);
		return -EINVAL;
	}
	if (!l->mm->has_start_time || !c->mm->has_start_time ||
	    l->mm->start_time != c->mm->start_time) {
		pr_err("images: pid %d of the parent image %u up is another process", c->pid, d);
		return -EINVAL;
	}
	l->verified = calloc(l->mm->n_pages ? l->mm->n_pages : 1, sizeof(bool));
	return l->verified ? 0 : -ENOMEM;
}

/* Run @i will be served by the lazy page server: a copy of the parent run @q holding it
 * (with its piece checksums), verified piece by piece as it is served. */
static int keep_parent_run(struct rst_ctx *c, size_t i, const PageRun *q, uint32_t depth)
{
	if (!c->pruns && !(c->pruns = calloc(c->mm->n_pages, sizeof(*c->pruns))))
		return -ENOMEM;
	PageRun *p = calloc(1, sizeof(*p));
	uint64_t *pieces = malloc((q->n_piece_xxh ? q->n_piece_xxh : 1) * sizeof(*pieces));
	if (!p || !pieces) {
		free(p);
		free(pieces);
		return -ENOMEM;
	}
	page_run__init(p);
	p->vaddr = q->vaddr;
	p->nr_pages = q->nr_pages;
	p->offset = q->offset;
	p->xxh64 = q->xxh64;
	p->has_parent_depth = true;
	p->parent_depth = depth;
	if (q->n_piece_xxh) /* (none: the whole run is verified at once) */
		memcpy(pieces, q->piece_xxh, q->n_piece_xxh * sizeof(*pieces));
	p->piece_xxh = pieces;
	p->n_piece_xxh = q->n_piece_xxh;
	c->pruns[i] = p;
	return 0;
}

void mem_chain_free(struct rst_ctx *c)
{
	for (size_t i = 0; c->pruns && c->mm && i < c->mm->n_pages; i++)
		if (c->pruns[i])
			protobuf_c_message_free_unpacked(&c->pruns[i]->base, NULL);
	free(c->pruns);
	c->pruns = NULL;
}

static int check_run(struct rst_ctx *c, size_t i, const PageRun *r, struct link *l, bool lazy)
{
	size_t qi;
	const PageRun *q = mem_run_at(l->mm, r->vaddr, &qi, NULL);
	uint64_t len = r->nr_pages * PAGE_SIZE;
	if (!q || q->has_src_pid || q->has_parent_depth ||
	    r->vaddr + len > q->vaddr + q->nr_pages * PAGE_SIZE ||
	    r->offset != q->offset + (r->vaddr - q->vaddr)) {
		pr_err("images: pages %llx-%llx of pid %d are not stored in the parent image %u "
		       "up",
		       (unsigned long long)r->vaddr, (unsigned long long)(r->vaddr + len), c->pid,
		       r->parent_depth);
		return -EINVAL;
	}
	if (lazy) /* pieces (or the whole run, without them) verified when served */
		return keep_parent_run(c, i, q, r->parent_depth);
	if (l->verified[qi])
		return 0;
	PageRun at = *q;
	at.has_parent_depth = true;
	at.parent_depth = r->parent_depth;
	uint64_t h;
	int ret = mem_source_hash(c->pages, &at, 0, q->nr_pages * PAGE_SIZE, &h);
	if (ret)
		return ret;
	if (h != q->xxh64) {
		pr_err("images: pages %llx-%llx of pid %d in the parent image %u up: checksum "
		       "mismatch (pages image corrupted)",
		       (unsigned long long)q->vaddr,
		       (unsigned long long)(q->vaddr + q->nr_pages * PAGE_SIZE), c->pid,
		       r->parent_depth);
		return -EBADMSG;
	}
	l->verified[qi] = true;
	return 0;
}

int mem_chain_validate(struct rst_ctx *c)
{
	uint32_t maxd = 0;
	for (size_t i = 0; i < c->mm->n_pages; i++)
		if (c->mm->pages[i]->has_parent_depth)
			maxd = MAX(maxd, c->mm->pages[i]->parent_depth);
	if (!maxd)
		return 0;
	struct link *chain = calloc(maxd + 1, sizeof(*chain));
	if (!chain)
		return -ENOMEM;
	int ret = 0;
	chain[0].inv = img_read_msg(c->img_dfd, IMG_INVENTORY, 0);
	if (!chain[0].inv)
		ret = -EINVAL;
	for (uint32_t d = 1; d <= maxd && !ret; d++)
		ret = load_link(c, d, chain[d - 1].inv, &chain[d], chain);
	/* restore --lazy-pages: the runs the page server will serve are verified by it */
	bool *lazy = c->opts->lazy_pages ? calloc(c->mm->n_pages + 1, sizeof(bool)) : NULL;
	if (c->opts->lazy_pages && !lazy)
		ret = -ENOMEM;
	if (lazy)
		mem_lazy_plan(c->mm, lazy, NULL);
	for (size_t i = 0; i < c->mm->n_pages && !ret; i++) {
		const PageRun *r = c->mm->pages[i];
		if (r->has_parent_depth)
			ret = check_run(c, i, r, &chain[r->parent_depth], lazy && lazy[i]);
	}
	free(lazy);
	for (uint32_t d = 0; d <= maxd; d++) {
		if (chain[d].inv)
			inventory__free_unpacked(chain[d].inv, NULL);
		if (chain[d].mm)
			mm__free_unpacked(chain[d].mm, NULL);
		free(chain[d].verified);
	}
	free(chain);
	page_source_release(c->pages);
	return ret;
}
