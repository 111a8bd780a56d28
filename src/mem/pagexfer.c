/* The page transport's one switch: which sink or source a process's pages go through
 * (src/mem/pagexfer.h). A new transport is a file with its ops and a case here, chosen
 * from the dump or restore options. */
#include "mem/pagexfer.h"

int page_sink_open(const struct dump_ctx *c, struct page_sink **out)
{
	return pagefile_sink_open(c->img, c->pid, out);
}

int page_sink_reopen(const struct dump_ctx *c, struct page_source **out)
{
	return pagefile_source_open(c->img->dfd, c->pid, out);
}

int page_source_open(const struct rst_ctx *c, struct page_source **out)
{
	return pagefile_source_open(c->img_dfd, c->pid, out);
}

void page_source_close(struct page_source *s)
{
	if (s)
		s->ops->close(s);
}
