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
	char *buf[NBUF];
	size_t len[NBUF];
	unsigned head;  /* next buffer the producer fills */
	unsigned tail;  /* next buffer the writer writes */
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
		size_t len = pw->len[i];
		off_t off = pw->off;
		pthread_mutex_unlock(&pw->mu);
		const void *out = pw->buf[i];
		size_t olen = len;
		int ret = 0;
		if (!pw->err && pw->xform)
			ret = pw->xform(pw->xarg, pw->buf[i], len, &out, &olen);
		if (!pw->err && !ret)
			ret = img_pages_pwrite(pw->pg, out, olen, off);
		pthread_mutex_lock(&pw->mu);
		if (ret && !pw->err)
			pw->err = ret;
		pw->off += (off_t)olen;
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
	for (int i = 0; i < NBUF; i++)
		if (posix_memalign((void **)&pw->buf[i], 4096, bufsz)) {
			for (int j = 0; j < i; j++)
				free(pw->buf[j]);
			free(pw);
			return -ENOMEM;
		}
	pthread_mutex_init(&pw->mu, NULL);
	pthread_cond_init(&pw->cv, NULL);
	int ret = pthread_create(&pw->thread, NULL, writer_main, pw);
	if (ret) {
		for (int i = 0; i < NBUF; i++)
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
	while (pw->count == NBUF && !pw->err)
		pthread_cond_wait(&pw->cv, &pw->mu);
	err = pw->err;
	*buf = err ? NULL : pw->buf[pw->head % NBUF];
	pthread_mutex_unlock(&pw->mu);
	return err;
}

void pwriter_put(struct pwriter *pw, size_t len)
{
	pthread_mutex_lock(&pw->mu);
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
	for (int i = 0; i < NBUF; i++)
		free(pw->buf[i]);
	pthread_mutex_destroy(&pw->mu);
	pthread_cond_destroy(&pw->cv);
	free(pw);
	return err;
}
