/* The local pages file as a page sink and a page source (src/mem/pagexfer.h).
 *
 * pages-PID.img: a one-page header (src/image/img.c: img_pages_*), then the process's
 * page stream, so a run's offset is its file offset. The sink writes the stream with a
 * pipelined writer thread (src/mem/pwriter.c: the caller reads the task into one buffer
 * while the previous one is written) and the header at commit, then fdatasync when the
 * image is synced. The source maps the file (MAP_POPULATE: one pass over the page cache)
 * and hands out pointers into it; runs stored in another process's file (src_pid) map
 * that file, at most PAGEFILE_MAX_EXT of them per process. Every range asked for is
 * checked against the file it lies in. A compressed file (`dump --compress`, any file of
 * the chain may be one) is not mapped: its runs are read through src/mem/pagez.c, and
 * map() fails with EOPNOTSUPP for them.
 *
 * `restore --page-server`: the same source with the pages files on a page server started
 * with --serve (the metadata and the `parent` links of the chain stay local), the image
 * of the same name as the local one (the last component of -D) below its directory: each file
 * is opened there by its path in the chain ("parent/.../pages-PID.img") and read with
 * requests, map() fails with EOPNOTSUPP. A connection belongs to one process: a lazy
 * page server forked from stasis opens its own (and the files again) on its first
 * read. Compressed files are not read this way. */
#include "mem/pagexfer.h"
#include "mem/internal.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include "core/log.h"
#include "image/remote.h"
#include "mem/pagez.h"
#include "mem/pwriter.h"

#define PAGEFILE_MAX_EXT 8

/* ------------------------------------------------------------------ sink */

struct pagefile_sink {
	struct page_sink s;
	struct img_dir *d;
	struct img_pages pg;
	struct pwriter *pw;
};

static int pfs_get_buf(struct page_sink *s, void **buf, size_t *cap)
{
	struct pagefile_sink *ps = s->priv;
	char *b;
	int ret = pwriter_get(ps->pw, &b);
	*buf = b;
	*cap = PAGEFILE_BUF;
	return ret;
}

static int pfs_put(struct page_sink *s, void *buf, size_t len, const struct iovec *iov,
		   size_t niov)
{
	struct pagefile_sink *ps = s->priv;
	(void)buf, (void)iov, (void)niov; /* the file keeps only the bytes, in stream order */
	pwriter_put(ps->pw, len);
	ps->pg.len += len;
	return 0;
}

static void pfs_free(struct pagefile_sink *ps)
{
	if (ps->pg.fd >= 0)
		close(ps->pg.fd);
	free(ps);
}

static int pfs_commit(struct page_sink *s)
{
	struct pagefile_sink *ps = s->priv;
	int ret = pwriter_finish(ps->pw);
	if (!ret)
		ret = img_pages_finish(ps->d, &ps->pg);
	pfs_free(ps);
	return ret;
}

static void pfs_abort(struct page_sink *s)
{
	struct pagefile_sink *ps = s->priv;
	int ret = pwriter_finish(ps->pw); /* logs a write error */
	(void)ret;
	pfs_free(ps);
}

static int pfs_discard(struct page_sink *s)
{
	struct pagefile_sink *ps = s->priv;
	int ret = pwriter_finish(ps->pw);
	(void)ret; /* what it wrote goes anyway */
	ret = img_pages_discard(ps->d, &ps->pg);
	pfs_free(ps);
	return ret;
}

static const struct page_sink_ops pagefile_sink_ops = {
	.get_buf = pfs_get_buf,
	.put = pfs_put,
	.commit = pfs_commit,
	.abort = pfs_abort,
	.discard = pfs_discard,
};

int pagefile_sink_open(struct img_dir *d, int pid, struct page_sink **out)
{
	struct pagefile_sink *ps = calloc(1, sizeof(*ps));
	if (!ps)
		return -ENOMEM;
	ps->d = d;
	int ret = img_pages_create(d, pid, &ps->pg);
	if (ret) {
		free(ps);
		return ret;
	}
	ret = pwriter_start(&ps->pw, &ps->pg, PAGE_STREAM_START, PAGEFILE_BUF);
	if (ret) {
		pfs_free(ps);
		return ret;
	}
	ps->s = (struct page_sink){ .ops = &pagefile_sink_ops, .priv = ps };
	*out = &ps->s;
	return 0;
}

/* ------------------------------------------------------------------ source */

struct pagefile_map {
	int32_t pid; /* 0: this process's own file */
	uint32_t depth; /* in the image this many `parent` links up (pid: this process) */
	const char *map;
	size_t len;    /* header and stream: what a run's offset is checked against */
	struct pagez *z; /* a compressed file (map is NULL) */
	bool remote;     /* on the page server (map is NULL): path, rid */
	pid_t rid_pid;   /* the process whose connection rid is an id of */
	uint32_t rid;
	uint64_t fsize;  /* the file's size there */
	char path[PS_MAX_DEPTH * 7 + 32];
};

struct pagefile_src {
	struct page_source s;
	int dfd;
	int pid;
	struct img_pages pg;
	struct pagefile_map own;
	struct pagefile_map ext[PAGEFILE_MAX_EXT];
	size_t n_ext;
	int chain[MEM_MAX_CHAIN + 1]; /* chain[d]: the image d links up (0: unopened) */
	pthread_mutex_t mu; /* map() from read() of several threads */
	const char *ps_addr, *ps_port; /* restore --page-server, else NULL */
	char ps_image[PS_NAME_MAX];    /* the image's name there */
	struct img_remote *rem;        /* its connection, of process rem_pid */
	pid_t rem_pid;
};

/* The connection of this process to the page server, and @f opened over it. */
static struct img_remote *remote_file(struct pagefile_src *ps, struct pagefile_map *f)
{
	pid_t me = getpid();
	if (ps->rem && ps->rem_pid != me) {
		img_remote_free(ps->rem); /* the parent's copy: not ours to talk over */
		ps->rem = NULL;
	}
	if (!ps->rem) {
		int ret = img_remote_connect(ps->ps_addr, ps->ps_port, ps->ps_image, PS_F_READ,
					     &ps->rem);
		if (ret) {
			errno = -ret;
			return NULL;
		}
		ps->rem_pid = me;
	}
	if (f->rid_pid != me) {
		uint64_t size;
		int ret = img_remote_openr(ps->rem, f->path, &f->rid, &size);
		if (ret) {
			errno = -ret;
			return NULL;
		}
		if (f->rid_pid && size != f->fsize) {
			pr_err("page server: %s changed size (%llu bytes, was %llu)", f->path,
			       (unsigned long long)size, (unsigned long long)f->fsize);
			errno = ESTALE;
			return NULL;
		}
		f->fsize = size;
		f->rid_pid = me;
	}
	return ps->rem;
}

/* Pages file @f on the page server: opened, its header checked. */
static int remote_open(struct pagefile_src *ps, struct pagefile_map *f, uint32_t depth, int pid)
{
	char name[32];
	struct img_hdr h;
	img_name(IMG_PAGES, pid, name, sizeof(name));
	f->remote = true;
	f->path[0] = '\0';
	for (uint32_t d = 0; d < depth; d++)
		strcat(f->path, IMG_PARENT_LINK "/");
	strcat(f->path, name);
	struct img_remote *r = remote_file(ps, f);
	if (!r)
		return -errno;
	int ret = f->fsize < sizeof(h) ? -EBADMSG : img_remote_pread(r, f->rid, &h, sizeof(h), 0);
	if (!ret)
		ret = img_check_hdr(&h, IMG_PAGES, f->fsize, f->path);
	if (!ret && (h.flags & IMG_F_PAGES_ZSTD))
		ret = pr_errno(-EOPNOTSUPP, "page server: %s is compressed: not read from a page "
					    "server yet (restore from a copy of the image)",
			       f->path);
	if (!ret && (f->fsize < IMG_PAGES_HDR_SIZE ||
		     h.payload_len > f->fsize - IMG_PAGES_HDR_SIZE))
		ret = -EBADMSG;
	if (ret == -EBADMSG)
		pr_err("page server: %s: truncated", f->path);
	f->len = ret ? 0 : (size_t)(IMG_PAGES_HDR_SIZE + h.payload_len);
	return ret;
}

/* The mapping of the file run @r lies in (made on first use). */
static const struct pagefile_map *pfsrc_file(struct pagefile_src *ps, const PageRun *r)
{
	if (!r->has_src_pid && !r->has_parent_depth) {
		if (!ps->own.map && !ps->own.z && !ps->own.remote) {
			size_t len = (size_t)(IMG_PAGES_HDR_SIZE + ps->pg.len);
			int pop = ps->s.no_populate ? 0 : MAP_POPULATE;
			void *m = mmap(NULL, len, PROT_READ, MAP_SHARED | pop, ps->pg.fd, 0);
			if (m == MAP_FAILED) {
				errno = -pr_perror("pages: map the pages file of pid %d", ps->pid);
				return NULL;
			}
			ps->own = (struct pagefile_map){ 0, 0, m, len, NULL };
		}
		return &ps->own;
	}
	for (size_t e = 0; e < ps->n_ext; e++)
		if (r->has_parent_depth ? ps->ext[e].depth == r->parent_depth
					: ps->ext[e].pid == r->src_pid)
			return &ps->ext[e];
	if (ps->n_ext == PAGEFILE_MAX_EXT) {
		pr_err("image: pid %d has pages in more than %d other processes' files", ps->pid,
		       PAGEFILE_MAX_EXT);
		errno = E2BIG;
		return NULL;
	}
	struct img_pages sp;
	int dfd = ps->dfd, ret;
	if (ps->ps_addr) {
		struct pagefile_map *f = &ps->ext[ps->n_ext];
		*f = (struct pagefile_map){ .pid = r->has_parent_depth ? 0 : r->src_pid,
					    .depth = r->has_parent_depth ? r->parent_depth : 0 };
		ret = remote_open(ps, f, f->depth, r->has_parent_depth ? ps->pid : r->src_pid);
		if (ret) {
			errno = -ret;
			return NULL;
		}
		return &ps->ext[ps->n_ext++];
	}
	if (r->has_parent_depth) {
		dfd = pagefile_parent_dir(&ps->s, r->parent_depth);
		if (dfd < 0) {
			errno = -dfd;
			return NULL;
		}
	}
	int fpid = r->has_parent_depth ? ps->pid : r->src_pid;
	ret = img_pages_open(dfd, fpid, &sp);
	if (ret) {
		errno = -ret;
		return NULL;
	}
	struct pagefile_map f = { r->has_parent_depth ? 0 : r->src_pid,
				  r->has_parent_depth ? r->parent_depth : 0, NULL, 0, NULL };
	if (sp.flags & IMG_F_PAGES_ZSTD) {
		ret = pagez_open(&sp, fpid, &f.z);
		close(sp.fd);
		if (ret) {
			errno = -ret;
			return NULL;
		}
		f.len = (size_t)(IMG_PAGES_HDR_SIZE + pagez_stream_len(f.z));
	} else {
		f.len = (size_t)(IMG_PAGES_HDR_SIZE + sp.len);
		void *m = mmap(NULL, f.len, PROT_READ, MAP_SHARED, sp.fd, 0);
		close(sp.fd);
		if (m == MAP_FAILED) {
			errno = -pr_perror("pages: map the pages file of pid %d", fpid);
			return NULL;
		}
		f.map = m;
	}
	ps->ext[ps->n_ext] = f;
	return &ps->ext[ps->n_ext++];
}

/* The file bytes [@off, @off + @len) of run @r lie in, checked against it. */
static const struct pagefile_map *pfsrc_locate(struct pagefile_src *ps, const PageRun *r,
					       uint64_t off, uint64_t len)
{
	const struct pagefile_map *f = pfsrc_file(ps, r);
	if (!f)
		return NULL;
	uint64_t limit = f->len, rlen = r->nr_pages * PAGE_SIZE;
	if (r->offset < IMG_PAGES_HDR_SIZE || r->offset > limit || rlen > limit - r->offset ||
	    off > rlen || len > rlen - off) {
		pr_err("image: page run at %llx lies outside its pages file",
		       (unsigned long long)r->vaddr);
		errno = EINVAL;
		return NULL;
	}
	return f;
}

static const void *pfsrc_map(struct page_source *s, const PageRun *r, uint64_t off,
			     uint64_t len)
{
	const struct pagefile_map *f = pfsrc_locate(s->priv, r, off, len);
	if (f && !f->map)
		errno = EOPNOTSUPP; /* compressed or remote: read() it */
	return f && f->map ? f->map + r->offset + off : NULL;
}

/* The file holding [@off, @off + @len) of run @r and, on the page server, its
 * connection in *@rem (else NULL); NULL with errno set. */
static const struct pagefile_map *pfsrc_find(struct pagefile_src *ps, const PageRun *r,
					     uint64_t off, uint64_t len, struct img_remote **rem)
{
	pthread_mutex_lock(&ps->mu);
	const struct pagefile_map *f = pfsrc_locate(ps, r, off, len);
	*rem = f && f->remote ? remote_file(ps, (struct pagefile_map *)f) : NULL;
	if (*rem == NULL && f && f->remote)
		f = NULL; /* (errno set by remote_file) */
	int e = errno;
	pthread_mutex_unlock(&ps->mu);
	errno = e;
	return f;
}

static int pfsrc_read(struct page_source *s, const PageRun *r, uint64_t off, void *buf,
		      size_t len)
{
	struct img_remote *rem;
	const struct pagefile_map *f = pfsrc_find(s->priv, r, off, len, &rem);
	if (!f)
		return -errno;
	if (rem)
		return img_remote_pread(rem, f->rid, buf, len, r->offset + off);
	if (f->z)
		return pagez_read(f->z, r->offset + off, buf, len);
	memcpy(buf, f->map + r->offset + off, len);
	return 0;
}

static int pfsrc_prefetch(struct page_source *s, const PageRun *r, uint64_t off, void *buf,
			  size_t len)
{
	struct img_remote *rem;
	const struct pagefile_map *f = pfsrc_find(s->priv, r, off, len, &rem);
	if (!f)
		return -errno;
	return rem ? img_remote_prefetch(rem, f->rid, buf, len, r->offset + off) : 0;
}

static int pfsrc_read_checked(struct page_source *s, const PageRun *r, uint64_t poff,
			      uint32_t plen, uint32_t soff, void *buf, uint32_t slen, uint64_t *xxh)
{
	struct img_remote *rem;
	const struct pagefile_map *f = pfsrc_find(s->priv, r, poff, plen, &rem);
	if (!f)
		return -errno;
	return rem ? img_remote_preadc(rem, f->rid, r->offset + poff, plen, soff, buf, slen, xxh)
		   : -EOPNOTSUPP;
}

static int pfsrc_warm(struct page_source *s)
{
	struct pagefile_src *ps = s->priv;
	if (!ps->own.remote)
		return 0;
	pthread_mutex_lock(&ps->mu);
	int ret = remote_file(ps, &ps->own) ? 0 : -errno;
	pthread_mutex_unlock(&ps->mu);
	return ret;
}

static void pfsrc_release(struct page_source *s)
{
	struct pagefile_src *ps = s->priv;
	if (ps->own.map)
		munmap((void *)ps->own.map, ps->own.len);
	ps->own.map = NULL;
	for (size_t e = 0; e < ps->n_ext; e++) {
		if (ps->ext[e].map)
			munmap((void *)ps->ext[e].map, ps->ext[e].len);
		pagez_close(ps->ext[e].z);
	}
	ps->n_ext = 0;
}

static void pfsrc_close(struct page_source *s)
{
	struct pagefile_src *ps = s->priv;
	pfsrc_release(s);
	pagez_close(ps->own.z);
	if (ps->pg.fd >= 0)
		close(ps->pg.fd);
	img_remote_free(ps->rem);
	for (size_t d = 1; d <= MEM_MAX_CHAIN; d++)
		if (ps->chain[d] > 0)
			close(ps->chain[d]);
	pthread_mutex_destroy(&ps->mu);
	free(ps);
}

int pagefile_parent_dir(struct page_source *s, uint32_t depth)
{
	struct pagefile_src *ps = s->priv;
	if (s->ops->close != pfsrc_close || !depth || depth > MEM_MAX_CHAIN)
		return -EINVAL;
	for (uint32_t d = 1; d <= depth; d++) {
		if (ps->chain[d] > 0)
			continue;
		int fd = openat(d == 1 ? ps->dfd : ps->chain[d - 1], IMG_PARENT_LINK,
				O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (fd < 0)
			return pr_perror("images: the parent image %u link%s up of pid %d's pages", d,
					 d > 1 ? "s" : "", ps->pid);
		ps->chain[d] = fd;
	}
	return ps->chain[depth];
}

static const struct page_source_ops pagefile_source_ops = {
	.map = pfsrc_map,
	.read = pfsrc_read,
	.prefetch = pfsrc_prefetch,
	.read_checked = pfsrc_read_checked,
	.warm = pfsrc_warm,
	.release = pfsrc_release,
	.close = pfsrc_close,
};

int pageremote_source_open(int dfd, int pid, const char *addr, const char *port,
			   const char *image, struct page_source **out)
{
	if (strlen(image) >= PS_NAME_MAX) {
		pr_err("page server: image name %s too long", image);
		return -ENAMETOOLONG;
	}
	struct pagefile_src *ps = calloc(1, sizeof(*ps));
	if (!ps)
		return -ENOMEM;
	strcpy(ps->ps_image, image);
	ps->dfd = dfd;
	ps->pid = pid;
	ps->pg.fd = -1;
	ps->ps_addr = addr;
	ps->ps_port = port;
	pthread_mutex_init(&ps->mu, NULL);
	ps->s = (struct page_source){ .ops = &pagefile_source_ops, .priv = ps };
	int ret = remote_open(ps, &ps->own, 0, pid);
	if (ret) {
		pfsrc_close(&ps->s);
		return ret;
	}
	ps->s.len = ps->own.len - IMG_PAGES_HDR_SIZE;
	*out = &ps->s;
	return 0;
}

int pagefile_source_open(int dfd, int pid, struct page_source **out)
{
	struct pagefile_src *ps = calloc(1, sizeof(*ps));
	if (!ps)
		return -ENOMEM;
	int ret = img_pages_open(dfd, pid, &ps->pg);
	if (ret) {
		free(ps);
		return ret;
	}
	ps->dfd = dfd;
	ps->pid = pid;
	uint64_t slen = ps->pg.len;
	if (ps->pg.flags & IMG_F_PAGES_ZSTD) { /* the index checked now: errors come early */
		ret = pagez_open(&ps->pg, pid, &ps->own.z);
		if (ret) {
			close(ps->pg.fd);
			free(ps);
			return ret;
		}
		slen = pagez_stream_len(ps->own.z);
		ps->own.len = (size_t)(IMG_PAGES_HDR_SIZE + slen);
	}
	pthread_mutex_init(&ps->mu, NULL);
	ps->s = (struct page_source){ .ops = &pagefile_source_ops, .priv = ps, .len = slen };
	*out = &ps->s;
	return 0;
}
