#include "mem/pwriter.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>

#include "core/log.h"

#define NBUF 4

struct pwriter {
	pthread_t thread;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	const struct img_pages *pg;
	off_t off;
	size_t bufsz;
	/* Buffers are made when first needed and the one written last is filled next: a
	 * writer that keeps up touches two of them, not NBUF (each page of a fresh buffer is
	 * a fault and a cleared page: 2048 of them for 4 x 2 MiB, a few ms of a small
	 * incremental pass). */
	char *buf[NBUF];
	unsigned nbuf;   /* made */
	char *free_[NBUF];
	unsigned nfree;
	char *cur;       /* the one the producer fills (taken off free_), or NULL */
	char *q[NBUF];   /* queued, in file order */
	size_t len[NBUF];
	unsigned head;  /* next slot of q the producer queues in */
	unsigned tail;  /* next slot the writer writes */
	unsigned count; /* queued, not yet written */
	bool stop;
	int err;
	pwriter_xform_fn xform;
	void *xarg;
};

void pwriter_set_xform(struct pwriter *pw, pwriter_xform_fn fn, void *arg)
{
	pw->xform = fn;
	pw->xarg = arg;
}

static void *writer_main(void *arg)
{
	struct pwriter *pw = arg;

	pthread_mutex_lock(&pw->mu);
	for (;;) {
		while (!pw->count && !pw->stop)
			pthread_cond_wait(&pw->cv, &pw->mu);
		if (!pw->count)
			break;
		unsigned i = pw->tail % NBUF;
		char *b = pw->q[i];
		size_t len = pw->len[i];
		off_t off = pw->off;
		pthread_mutex_unlock(&pw->mu);
		const void *out = b;
		size_t olen = len;
		int ret = 0;
		if (!pw->err && pw->xform)
			ret = pw->xform(pw->xarg, b, len, &out, &olen);
		if (!pw->err && !ret)
			ret = img_pages_pwrite(pw->pg, out, olen, off);
		pthread_mutex_lock(&pw->mu);
		if (ret && !pw->err)
			pw->err = ret;
		pw->off += (off_t)olen;
		pw->free_[pw->nfree++] = b;
		pw->tail++;
		pw->count--;
		pthread_cond_broadcast(&pw->cv);
	}
	pthread_mutex_unlock(&pw->mu);
	return NULL;
}

int pwriter_start(struct pwriter **out, const struct img_pages *pg, off_t off, size_t bufsz)
{
	struct pwriter *pw = calloc(1, sizeof(*pw));
	if (!pw)
		return -ENOMEM;
	pw->pg = pg;
	pw->off = off;
	pw->bufsz = bufsz;
	if (posix_memalign((void **)&pw->buf[0], 4096, bufsz)) {
		free(pw);
		return -ENOMEM;
	}
	pw->free_[pw->nfree++] = pw->buf[pw->nbuf++];
	pthread_mutex_init(&pw->mu, NULL);
	pthread_cond_init(&pw->cv, NULL);
	int ret = pthread_create(&pw->thread, NULL, writer_main, pw);
	if (ret) {
		for (unsigned i = 0; i < pw->nbuf; i++)
			free(pw->buf[i]);
		free(pw);
		return pr_errno(-ret, "pages: start writer thread");
	}
	*out = pw;
	return 0;
}

int pwriter_get(struct pwriter *pw, char **buf)
{
	int err;
	pthread_mutex_lock(&pw->mu);
	while (!pw->cur && !pw->nfree && pw->nbuf == NBUF && !pw->err)
		pthread_cond_wait(&pw->cv, &pw->mu);
	err = pw->err;
	if (!err && !pw->cur && !pw->nfree) {
		if (posix_memalign((void **)&pw->buf[pw->nbuf], 4096, pw->bufsz))
			err = -ENOMEM;
		else
			pw->free_[pw->nfree++] = pw->buf[pw->nbuf++];
	}
	if (!err && !pw->cur)
		pw->cur = pw->free_[--pw->nfree];
	*buf = err ? NULL : pw->cur;
	pthread_mutex_unlock(&pw->mu);
	return err;
}

void pwriter_put(struct pwriter *pw, size_t len)
{
	pthread_mutex_lock(&pw->mu);
	pw->q[pw->head % NBUF] = pw->cur;
	pw->cur = NULL;
	pw->len[pw->head % NBUF] = len;
	pw->head++;
	pw->count++;
	pthread_cond_broadcast(&pw->cv);
	pthread_mutex_unlock(&pw->mu);
}

int pwriter_finish(struct pwriter *pw)
{
	pthread_mutex_lock(&pw->mu);
	pw->stop = true;
	pthread_cond_broadcast(&pw->cv);
	pthread_mutex_unlock(&pw->mu);
	pthread_join(pw->thread, NULL);
	int err = pw->err;
	if (err)
		pr_errno(err, "pages: write pages file");
	for (unsigned i = 0; i < pw->nbuf; i++)
		free(pw->buf[i]);
	pthread_mutex_destroy(&pw->mu);
	pthread_cond_destroy(&pw->cv);
	free(pw);
	return err;
}
