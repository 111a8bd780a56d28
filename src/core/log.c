#include "core/log.h"

#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

static int log_fd = 2;
static enum log_level log_level = LOG_WARN;
static const char *log_stage;
static char first_error[512];

int log_init(const char *path, enum log_level level)
{
	log_level = level;
	if (!path)
		return 0;
	int fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
	if (fd < 0)
		return -errno;
	log_fd = fd;
	return 0;
}

void log_close(void)
{
	if (log_fd > 2)
		close(log_fd);
	log_fd = 2;
}

void log_set_level(enum log_level level) { log_level = level; }
enum log_level log_get_level(void) { return log_level; }
void log_set_stage(const char *stage) { log_stage = stage; }
int log_get_fd(void) { return log_fd; }
void log_set_fd(int fd) { log_fd = fd; }
const char *log_first_error(void) { return first_error; }
void log_reset_first_error(void) { first_error[0] = '\0'; }

void log_msg(enum log_level lvl, const char *fmt, ...)
{
	int saved = errno;
	char msg[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);

	if (lvl == LOG_ERR && first_error[0] == '\0') {
		size_t n = strlen(msg);
		while (n && msg[n - 1] == '\n')
			n--;
		/* "stage: message", unless the message already names the stage */
		bool named = log_stage && !strncmp(msg, log_stage, strlen(log_stage)) &&
			     msg[strlen(log_stage)] == ':';
		bool pre = log_stage && !named;
		snprintf(first_error, sizeof(first_error), "%s%s%.*s", pre ? log_stage : "",
			 pre ? ": " : "", (int)n, msg);
	}
	if (lvl > log_level) {
		errno = saved;
		return;
	}
	static const char *const tags[] = { "Error", "Warn", "Info", "Debug" };
	struct timespec ts;
	char line[1200];
	clock_gettime(CLOCK_MONOTONIC, &ts);
	int n = snprintf(line, sizeof(line), "(%5lld.%06ld) %5d %s: %s", (long long)ts.tv_sec,
			 ts.tv_nsec / 1000, (int)getpid(), tags[lvl], msg);
	if (n > 0) {
		if ((size_t)n >= sizeof(line))
			n = sizeof(line) - 1;
		ssize_t w = write(log_fd, line, (size_t)n);
		(void)w;
	}
	errno = saved;
}
