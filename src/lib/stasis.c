/* libstasis (include/stasis.h): the public API over the same drivers the command line
 * and the RPC server use (dump_run, restore_run). Only the stasis_* symbols are exported
 * (src/lib/libstasis.map). */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "../../include/stasis.h"
#include "core/log.h"
#include "core/version.h"
#include "cr/ctx.h"

#define EXPORT __attribute__((visibility("default")))

static char last_error[512];

/* The caller's struct is @size bytes: members beyond it are zero (an older program). */
static void copy_opts(void *dst, size_t dst_size, const void *src, size_t src_size)
{
	memset(dst, 0, dst_size);
	memcpy(dst, src, src_size < dst_size ? src_size : dst_size);
}

static int start(const char *log_file, int level)
{
	last_error[0] = '\0';
	if (level < LOG_ERR)
		level = LOG_ERR;
	if (level > LOG_DEBUG)
		level = LOG_DEBUG;
	log_reset_first_error();
	return log_init(log_file, (enum log_level)level);
}

static int finish(int ret)
{
	if (ret)
		snprintf(last_error, sizeof(last_error), "%s", log_first_error());
	log_close();
	return ret;
}

EXPORT int stasis_dump(const struct stasis_dump_opts *in)
{
	struct stasis_dump_opts o;
	if (!in || in->size < offsetof(struct stasis_dump_opts, pid) + sizeof(pid_t))
		return -EINVAL;
	copy_opts(&o, sizeof(o), in, in->size);
	if (o.pid <= 0 || !o.images_dir || !o.images_dir[0] || o.compress < 0 ||
	    o.compress > 19)
		return -EINVAL;
	if (start(o.log_file, o.log_level))
		return -EIO;
	log_set_stage(o.pre_dump ? "pre-dump" : "dump");
	struct dump_opts d = {
		.pid = o.pid,
		.dir = o.images_dir,
		.leave_running = o.leave_running != 0,
		.sync = !o.no_sync,
		.shell_job = o.shell_job != 0,
		.notify = o.notify,
		.notify_arg = o.notify_arg,
		.pre_dump = o.pre_dump != 0,
		.prev_dir = o.prev_images_dir,
		.compress = o.compress,
	};
	return finish(dump_run(&d));
}

struct restore_watch {
	stasis_notify_fn user;
	void *arg;
	pid_t root;
};

/* The root's pid, from the points that name it; then the caller's callback. */
static int watch_root(void *arg, const char *point, pid_t pid)
{
	struct restore_watch *w = arg;
	if (pid > 0)
		w->root = pid;
	return w->user ? w->user(w->arg, point, pid) : 0;
}

EXPORT int stasis_restore(const struct stasis_restore_opts *in, pid_t *root)
{
	struct stasis_restore_opts o;
	if (!in || in->size < offsetof(struct stasis_restore_opts, images_dir) + sizeof(char *))
		return -EINVAL;
	copy_opts(&o, sizeof(o), in, in->size);
	if (!o.images_dir || !o.images_dir[0])
		return -EINVAL;
	if (start(o.log_file, o.log_level))
		return -EIO;
	log_set_stage("restore");
	struct restore_watch w = { o.notify, o.notify_arg, 0 };
	struct restore_opts r = {
		.dir = o.images_dir,
		.detach = true,
		.root_dir = o.root_dir,
		.shell_job = o.shell_job != 0,
		.tcp_close = o.tcp_close != 0,
		.notify = watch_root,
		.notify_arg = &w,
	};
	int ret = restore_run(&r);
	/* restore_run: < 0 when stasis failed (-1000 - errno) */
	if (ret < 0)
		ret = ret <= -1000 ? ret + 1000 : ret;
	if (!ret && root)
		*root = w.root;
	return finish(ret ? (ret < 0 ? ret : -EIO) : 0);
}

EXPORT const char *stasis_last_error(void)
{
	return last_error;
}

EXPORT const char *stasis_version(void)
{
	return "stasis " STASIS_VERSION;
}
