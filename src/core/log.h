/* Logging and the error convention of stasis.
 *
 * Convention (docs/ARCHITECTURE.md, "Errors"):
 *   - int functions return 0 (or a non-negative count) on success and -errno on failure;
 *   - pointer functions return NULL with errno set;
 *   - predicates (_is_/_has_/_can_) return bool and never fail.
 * The place that sees a failure logs it once with its context (pr_err / pr_perror);
 * callers propagate the -errno and may add one line at a stage boundary.
 * The first error logged at LOG_ERR level is remembered: it is the one line the CLI
 * prints on stderr when a command fails. */
#ifndef STASIS_CORE_LOG_H
#define STASIS_CORE_LOG_H

#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>

enum log_level { LOG_NONE = -1, LOG_ERR = 0, LOG_WARN = 1, LOG_INFO = 2, LOG_DEBUG = 3 };

/* Open the log: messages at or below @level go to @path (or stderr if NULL). */
int log_init(const char *path, enum log_level level) __attribute__((warn_unused_result));
void log_close(void);
void log_set_level(enum log_level level);
enum log_level log_get_level(void);
/* Short name of the current stage ("dump", "restore", ...), printed with the first error. */
void log_set_stage(const char *stage);

void log_msg(enum log_level lvl, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* The first error message logged since log_init() (empty string if none). */
const char *log_first_error(void);
void log_reset_first_error(void);
/* Make log writes go to an inherited fd (restore children). */
int log_get_fd(void);
/* Send log output to @fd from now on (the restore child moves it out of the way). */
void log_set_fd(int fd);

#define pr_err(fmt, ...)   log_msg(LOG_ERR, fmt "\n", ##__VA_ARGS__)
#define pr_warn(fmt, ...)  log_msg(LOG_WARN, fmt "\n", ##__VA_ARGS__)
#define pr_info(fmt, ...)  log_msg(LOG_INFO, fmt "\n", ##__VA_ARGS__)
#define pr_debug(fmt, ...) log_msg(LOG_DEBUG, fmt "\n", ##__VA_ARGS__)
/* Log an error with the text of -@err (a negative errno). Evaluates to @err. */
#define pr_errno(err, fmt, ...)                                                             \
	({                                                                                  \
		int __e = (err);                                                            \
		log_msg(LOG_ERR, fmt ": %s\n", ##__VA_ARGS__, strerror(-__e));              \
		__e;                                                                        \
	})
/* Log an error with the text of the current errno; evaluates to -errno. */
#define pr_perror(fmt, ...)                                                                 \
	({                                                                                  \
		int __e = errno;                                                            \
		log_msg(LOG_ERR, fmt ": %s\n", ##__VA_ARGS__, strerror(__e));               \
		-__e;                                                                       \
	})

#include <string.h>

#endif
