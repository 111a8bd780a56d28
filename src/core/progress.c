/* The progress line (see progress.h). */
#include "core/progress.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "core/log.h"

#define PROGRESS_DELAY_MS 500
#define PROGRESS_EVERY_MS 250

static pthread_mutex_t life = PTHREAD_MUTEX_INITIALIZER; /* a thread made or joined */
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t wake = PTHREAD_COND_INITIALIZER;
static pthread_t thread;
static bool running;   /* the thread exists */
static int active;     /* begun and not ended */
static uint64_t total; /* bytes of the work begun */
static uint64_t done;  /* atomic */
static const char *label;

static uint64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static uint64_t delay_ms = PROGRESS_DELAY_MS;

static bool wanted(void)
{
	const char *e = getenv("STASIS_PROGRESS");
	delay_ms = PROGRESS_DELAY_MS;
	if (e && !strcmp(e, "0"))
		return false;
	if (e && !strcmp(e, "1")) {
		delay_ms = 0; /* tests: from the start */
		return true;
	}
	return isatty(STDERR_FILENO) == 1 &&
	       (log_get_fd() != STDERR_FILENO || log_get_level() == LOG_NONE);
}

static void draw(uint64_t start, uint64_t t, bool *shown)
{
	uint64_t d = __atomic_load_n(&done, __ATOMIC_RELAXED);
	uint64_t ms = now_ms() - start;
	char line[128];
	int n = snprintf(line, sizeof(line), "\rstasis %s: %llu / %llu MiB, %llu MiB/s\033[K",
			 label, (unsigned long long)(d >> 20), (unsigned long long)(t >> 20),
			 (unsigned long long)(ms ? (d >> 20) * 1000 / ms : 0));
	if (n > 0 && write(STDERR_FILENO, line, (size_t)n) == n)
		*shown = true;
}

static void *progress_main(void *arg)
{
	(void)arg;
	uint64_t start = now_ms(), next = start + delay_ms;
	bool shown = false;
	pthread_mutex_lock(&lock);
	while (active > 0) {
		uint64_t now = now_ms();
		if (now >= next) {
			uint64_t t = total;
			pthread_mutex_unlock(&lock); /* a slow terminal holds up no begin or end */
			draw(start, t, &shown);
			pthread_mutex_lock(&lock);
			next = now + PROGRESS_EVERY_MS;
			continue;
		}
		struct timespec ts;
		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_sec += (time_t)((next - now) / 1000);
		ts.tv_nsec += (long)((next - now) % 1000) * 1000000;
		if (ts.tv_nsec >= 1000000000) {
			ts.tv_sec++;
			ts.tv_nsec -= 1000000000;
		}
		pthread_cond_timedwait(&wake, &lock, &ts);
	}
	pthread_mutex_unlock(&lock);
	if (shown)
		(void)!write(STDERR_FILENO, "\r\033[K", 4);
	return NULL;
}

void progress_begin(const char *what, uint64_t bytes)
{
	pthread_mutex_lock(&life);
	pthread_mutex_lock(&lock);
	if (active++ == 0) {
		total = 0;
		__atomic_store_n(&done, 0, __ATOMIC_RELAXED);
		label = what;
		running = wanted() && pthread_create(&thread, NULL, progress_main, NULL) == 0;
	}
	total += bytes;
	pthread_mutex_unlock(&lock);
	pthread_mutex_unlock(&life);
}

void progress_add(uint64_t bytes)
{
	__atomic_add_fetch(&done, bytes, __ATOMIC_RELAXED);
}

void progress_end(void)
{
	pthread_mutex_lock(&life);
	pthread_mutex_lock(&lock);
	bool join = active > 0 && --active == 0 && running;
	if (join) {
		running = false;
		pthread_cond_signal(&wake);
	}
	pthread_mutex_unlock(&lock);
	if (join)
		pthread_join(thread, NULL);
	pthread_mutex_unlock(&life);
}
