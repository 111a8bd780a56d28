/* Restore of an incremental image: the page runs that lie in parent images
 * (PageRun.parent_depth, written by src/mem/track.c) are checked before anything is
 * restored. The chain is followed through the `parent` links by the page source itself
 * (src/mem/pagefile.c: each directory opened once, so the chain checked here is the one
 * read later): each parent's inventory must carry the id its child names (a parent
 * replaced by another image, or a loop, is refused), hold an mm image of the same
 * process (its start time), and every run must lie inside one run stored in that image,
 * at the matching offset; that run's checksum is verified here (once), since the fill
 * cannot verify a part of it. */
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

static int check_run(struct rst_ctx *c, const PageRun *r, struct link *l)
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
	for (size_t i = 0; i < c->mm->n_pages && !ret; i++) {
		const PageRun *r = c->mm->pages[i];
		if (r->has_parent_depth)
			ret = check_run(c, r, &chain[r->parent_depth]);
	}
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
