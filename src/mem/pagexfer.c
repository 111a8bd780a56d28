/* The page transport's one switch: which sink or source a process's pages go through
 * (src/mem/pagexfer.h). A new transport is a file with its ops and a case here, chosen
 * from the dump or restore options. Compressed pages files (--compress) are written by
 * src/mem/pagez.c; the pages-file source reads either kind, file by file (a chain of
 * images may mix them), from each file's header. */
#include "mem/pagexfer.h"
#include "mem/pagez.h"

#include <limits.h>
#include <stdio.h>
#include <string.h>

int page_sink_open(const struct dump_ctx *c, struct page_sink **out)
{
	if (c->opts->compress)
		return pagez_sink_open(c->img, c->pid, c->opts->compress, out);
	return pagefile_sink_open(c->img, c->pid, out);
}

int page_sink_reopen(const struct dump_ctx *c, struct page_source **out)
{
	if (c->img->remote) /* the pages are on the page server */
		return -EOPNOTSUPP;
	return pagefile_source_open(c->img->dfd, c->pid, out);
}

int page_source_open(const struct rst_ctx *c, struct page_source **out)
{
	if (c->opts && c->opts->ps_addr) {
		/* the image of the same name there: -D's last component */
		char path[PATH_MAX];
		snprintf(path, sizeof(path), "%s", c->opts->dir);
		size_t n = strlen(path);
		while (n > 1 && path[n - 1] == '/')
			path[--n] = '\0';
		const char *base = strrchr(path, '/');
		return pageremote_source_open(c->img_dfd, c->pid, c->opts->ps_addr,
					      c->opts->ps_port, base ? base + 1 : path, out);
	}
	return pagefile_source_open(c->img_dfd, c->pid, out);
}

void page_source_close(struct page_source *s)
{
	if (s)
		s->ops->close(s);
}
