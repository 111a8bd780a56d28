/* The dump orchestrator: checks, freeze, the resource modules in order, images, and the
 * end of the task (killed once the images are durable, or left running). Every failure
 * after the freeze puts the task back exactly as it was and removes the partial images. */
#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/ptrace.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <time.h>

#include "core/log.h"
#include "ptrace/ptrace.h"
#include "sys/syscalls.h"
#include "task/task.h"

#define PF_KTHREAD 0x00200000

static int read_proc_facts(struct dump_ctx *c)
{
	_cleanup_free_ char *stat = read_file_at(c->procfd, "stat", 8192, NULL);
	_cleanup_free_ char *status = stat ? read_file_at(c->procfd, "status", 1 << 20, NULL) : NULL;
	int ret;

	if (!stat || !status)
		return pr_perror("dump: read /proc/%d/stat and status", c->pid);
	ret = proc_parse_stat(stat, &c->stat);
	if (ret)
		return pr_errno(ret, "dump: parse /proc/%d/stat", c->pid);
	proc_status_free(&c->status);
	ret = proc_parse_status(status, &c->status);
	if (ret)
		return pr_errno(ret, "dump: parse /proc/%d/status", c->pid);
	return 0;
}

static bool has_children(struct dump_ctx *c)
{
	char path[64];
	snprintf(path, sizeof(path), "task/%d/children", c->pid);
	_cleanup_free_ char *buf = read_file_at(c->procfd, path, 1 << 20, NULL);
	return buf && buf[strspn(buf, " \n")] != '\0';
}

/* What this version can dump; anything else is refused before the task is touched. */
static int check_dumpable(struct dump_ctx *c)
{
	if (c->stat.flags & PF_KTHREAD) {
		pr_err("pid %d (%s) is a kernel thread: kernel threads cannot be checkpointed",
		       c->pid, c->stat.comm);
		return -EPERM;
	}
	if (c->stat.state == 'Z' || c->stat.state == 'X') {
		pr_err("pid %d is a zombie: nothing to checkpoint", c->pid);
		return -ESRCH;
	}
	if (has_children(c)) {
		pr_err("pid %d has child processes: process trees are not supported yet", c->pid);
		return -EOPNOTSUPP;
	}
	if (c->status.seccomp) {
		pr_err("pid %d runs under seccomp: not supported yet", c->pid);
		return -EOPNOTSUPP;
	}
	return 0;
}

static int cmp_thread(const void *a, const void *b)
{
	pid_t x = ((const struct dump_thread *)a)->tid, y = ((const struct dump_thread *)b)->tid;
	return (x > y) - (x < y);
}

static bool thread_known(const struct dump_ctx *c, pid_t tid)
{
	struct dump_thread key = { .tid = tid };
	if (c->nr_thr && c->thr[0].tid == tid)
		return true;
	return c->nr_thr > 1 &&
	       bsearch(&key, c->thr + 1, c->nr_thr - 1, sizeof(key), cmp_thread) != NULL;
}

/* Seize @tid, save its blocked mask and block every signal. -ESRCH if it is gone. */
static int freeze_one(struct dump_ctx *c, pid_t tid)
{
	struct dump_thread *t;
	int ret = pt_seize_stop(tid, false);
	if (ret)
		return ret;
	if (c->nr_thr % 64 == 0) {
		struct dump_thread *n = realloc(c->thr, (c->nr_thr + 64) * sizeof(*n));
		if (!n) {
			pt_detach(tid, 0);
			return -ENOMEM;
		}
		c->thr = n;
	}
	t = &c->thr[c->nr_thr++];
	memset(t, 0, sizeof(*t));
	t->tid = tid;
	if (ptrace(PTRACE_GETSIGMASK, tid, (void *)sizeof(uint64_t), &t->saved_sigmask) < 0)
		return pr_perror("dump: read blocked signals of %d", tid);
	uint64_t all = ~0ULL;
	if (ptrace(PTRACE_SETSIGMASK, tid, (void *)sizeof(all), &all) < 0)
		return pr_perror("dump: block signals of %d", tid);
	t->sigmask_set = true;
	return 0;
}

/* Freeze every thread. A thread not yet frozen may create more, so list again until a
 * pass finds nothing new: then every thread is stopped and the set cannot change. */
static int freeze_threads(struct dump_ctx *c)
{
	int ret = freeze_one(c, c->pid);
	if (ret) {
		if (ret == -ESRCH)
			pr_err("pid %d exited before it was frozen", c->pid);
		return ret;
	}
	for (int pass = 0; pass < 1000; pass++) {
		_cleanup_close_ int tfd = openat(c->procfd, "task", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		DIR *d = tfd >= 0 ? fdopendir(tfd) : NULL;
		bool found = false;
		struct dirent *de;

		if (!d)
			return pr_perror("dump: list threads of %d", c->pid);
		tfd = -1; /* owned by d */
		while ((de = readdir(d))) {
			long long tid;
			if (parse_int(de->d_name, 1, 0x3fffffff, &tid) || thread_known(c, (pid_t)tid))
				continue;
			ret = freeze_one(c, (pid_t)tid);
			if (ret == -ESRCH)
				continue; /* exited meanwhile */
			if (ret) {
				closedir(d);
				return ret;
			}
			found = true;
			/* keep thr sorted (main first: it has the lowest tid of its group
			 * unless tids wrapped; sort the rest only) */
			qsort(c->thr + 1, c->nr_thr - 1, sizeof(*c->thr), cmp_thread);
		}
		closedir(d);
		if (!found)
			return 0;
	}
	pr_err("dump: threads of pid %d keep appearing; cannot freeze it", c->pid);
	return -EAGAIN;
}

static void unfreeze_threads(struct dump_ctx *c)
{
	for (size_t i = 0; i < c->nr_thr; i++) {
		struct dump_thread *t = &c->thr[i];
		if (t->sigmask_set && ptrace(PTRACE_SETSIGMASK, t->tid, (void *)sizeof(uint64_t),
					      &t->saved_sigmask) < 0)
			pr_warn("dump: cannot put back the signal mask of %d", t->tid);
		pt_detach(t->tid, 0);
	}
}

static int read_vmas(struct dump_ctx *c)
{
	_cleanup_free_ char *buf = read_file_at(c->procfd, "smaps", 1 << 28, NULL);
	if (!buf)
		return pr_perror("dump: read /proc/%d/smaps", c->pid);
	int ret = proc_parse_smaps(buf, &c->vmas, &c->nr_vmas);
	if (ret)
		return pr_errno(ret, "dump: parse /proc/%d/smaps", c->pid);
	return 0;
}

static int find_vdso(struct dump_ctx *c, uint64_t *start, uint64_t *len)
{
	for (size_t i = 0; i < c->nr_vmas; i++)
		if (c->vmas[i].path && !strcmp(c->vmas[i].path, "[vdso]")) {
			*start = c->vmas[i].start;
			*len = c->vmas[i].end - c->vmas[i].start;
			return 0;
		}
	pr_err("dump: pid %d has no vDSO", c->pid);
	return -ENOEXEC;
}

static int write_images(struct dump_ctx *c)
{
	Inventory inv = INVENTORY__INIT;
	struct utsname u;
	struct timespec ts;
	int32_t pids[1] = { c->pid };
	int ret;

	ret = img_write_msg(&c->img, IMG_CORE, c->pid, &c->core->base);
	if (!ret)
		ret = img_write_msg(&c->img, IMG_MM, c->pid, &c->mm->base);
	if (!ret)
		ret = img_write_msg(&c->img, IMG_FILES, c->pid, &c->files->base);
	if (ret)
		return ret;
	inv.img_version = IMG_VERSION;
	inv.root_pid = c->pid;
	inv.n_pids = 1;
	inv.pids = pids;
	uname(&u);
	inv.kernel = u.release;
	clock_gettime(CLOCK_REALTIME, &ts);
	inv.has_dump_time_ns = true;
	inv.dump_time_ns = (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
	inv.has_page_size = true;
	inv.page_size = PAGE_SIZE;
	inv.tool = (char *)"stasis";
	/* The inventory is written last: a directory without it is incomplete. */
	return img_write_msg(&c->img, IMG_INVENTORY, 0, &inv.base);
}

static int collect(struct dump_ctx *c)
{
	static const struct {
		const char *name;
		int (*fn)(struct dump_ctx *);
	} stages[] = {
		{ "process attributes", misc_dump }, { "credentials", creds_dump },
		{ "registers", cpu_dump },	     { "signals", signals_dump },
		{ "timers", timers_dump },	     { "files", files_dump },
		{ "memory", mem_dump },
	};
	for (size_t i = 0; i < ARRAY_SIZE(stages); i++) {
		uint64_t t0 = now_ns();
		int ret = stages[i].fn(c);
		if (ret) {
			pr_err("dump: %s of pid %d failed", stages[i].name, c->pid);
			return ret;
		}
		pr_info("dump: %s took %.3f ms", stages[i].name, (double)(now_ns() - t0) / 1e6);
	}
	return 0;
}

static void free_ctx(struct dump_ctx *c)
{
	if (c->core)
		protobuf_c_message_free_unpacked(&c->core->base, NULL);
	if (c->mm)
		protobuf_c_message_free_unpacked(&c->mm->base, NULL);
	if (c->files)
		protobuf_c_message_free_unpacked(&c->files->base, NULL);
	proc_vmas_free(c->vmas, c->nr_vmas);
	proc_status_free(&c->status);
	free(c->thr);
	if (c->procfd >= 0)
		close(c->procfd);
	if (c->pidfd >= 0)
		close(c->pidfd);
}

/* Kill the checkpointed task and wait until it is gone (its parent reaps it). */
static void finish_task(struct dump_ctx *c)
{
	int status;
	if (sys_pidfd_send_signal(c->pidfd, SIGKILL, NULL, 0) < 0)
		pr_warn("dump: kill %d: %s", c->pid, strerror(errno));
	/* As the tracer of every thread we see each exit first; consuming them lets the
	 * parent reap the process. Non-leader threads first: the leader is reported last. */
	for (size_t k = c->nr_thr; k-- > 0;) {
		pid_t tid = c->thr[k].tid;
		for (int i = 0; i < 100; i++) {
			int r = pt_wait(tid, &status, 1000);
			if (r == 0 && WIFSTOPPED(status)) {
				ptrace(PTRACE_CONT, tid, NULL, NULL);
				continue;
			}
			break;
		}
	}
}

int dump_run(const struct dump_opts *o)
{
	struct dump_ctx c = { .opts = o, .pid = o->pid, .pidfd = -1, .procfd = -1 };
	bool frozen = false, rs_ready = false;
	char path[64];
	int ret;

	c.img.dfd = -1;
	log_set_stage("dump");
	if (o->pid == getpid()) {
		pr_err("pid %d is stasis itself: cannot checkpoint the checkpointer", o->pid);
		return -EINVAL;
	}
	c.pidfd = sys_pidfd_open(o->pid, 0);
	if (c.pidfd < 0) {
		ret = -errno;
		if (ret == -ESRCH)
			pr_err("pid %d: no such process", o->pid);
		else
			pr_err("pid %d: cannot open it: %s", o->pid, strerror(-ret));
		return ret;
	}
	snprintf(path, sizeof(path), "/proc/%d", o->pid);
	c.procfd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (c.procfd < 0) {
		ret = pr_perror("dump: open %s", path);
		goto out;
	}
	ret = read_proc_facts(&c);
	if (!ret)
		ret = check_dumpable(&c);
	if (ret)
		goto out;
	ret = img_dir_begin(&c.img, o->dir, o->sync);
	if (ret)
		goto out;

	uint64_t t0 = now_ns();
	frozen = true;
	ret = freeze_threads(&c);
	if (ret)
		goto out;
	/* The pidfd pins the process we checked; make sure the PID was not reused. */
	if (sys_pidfd_send_signal(c.pidfd, 0, NULL, 0) < 0) {
		ret = pr_perror("dump: pid %d exited before it was frozen", o->pid);
		goto out;
	}
	c.saved_sigmask = c.thr[0].saved_sigmask;
	pr_info("dump: %zu threads frozen in %.3f ms", c.nr_thr, (double)(now_ns() - t0) / 1e6);
	/* Facts that may have changed between the check and the freeze. */
	ret = read_proc_facts(&c);
	if (!ret)
		ret = check_dumpable(&c);
	if (!ret)
		ret = read_vmas(&c);
	if (ret)
		goto out;
	uint64_t vdso = 0, vdso_len = 0;
	ret = find_vdso(&c, &vdso, &vdso_len);
	if (!ret)
		ret = rsys_init(&c.rs, o->pid, vdso, vdso_len);
	if (ret)
		goto out;
	rs_ready = true;
	ret = rsys_scratch_map(&c.rs, 0, 64 * 1024);
	if (ret)
		goto out;
	for (size_t i = 1; i < c.nr_thr; i++) {
		ret = rsys_init_insn(&c.thr[i].rs, c.thr[i].tid, c.rs.insn, c.rs.scratch,
				     c.rs.scratch_len);
		if (ret)
			goto out;
		c.thr[i].rs_ready = true;
	}

	c.core = calloc(1, sizeof(*c.core));
	c.core ? core__init(c.core) : (void)0;
	Creds *cr = c.core ? calloc(1, sizeof(*cr)) : NULL;
	if (!cr) {
		ret = -ENOMEM;
		goto out;
	}
	creds__init(cr);
	c.core->creds = cr;
	ret = collect(&c);
	if (ret)
		goto out;
	pr_info("dump: task state collected in %.3f ms", (double)(now_ns() - t0) / 1e6);
	ret = write_images(&c);
	if (!ret)
		ret = img_dir_commit(&c.img);
	if (ret)
		goto out;
	pr_info("dump: images of pid %d written to %s", o->pid, o->dir);

out:
	for (size_t i = 1; i < c.nr_thr; i++) {
		if (!c.thr[i].rs_ready)
			continue;
		int r = rsys_fini(&c.thr[i].rs);
		if (r && !ret)
			ret = r;
	}
	if (rs_ready) {
		int r = rsys_fini(&c.rs);
		if (r && !ret)
			ret = r;
	}
	if (ret && c.img.tmp)
		img_dir_abort(&c.img);
	else
		img_dir_close(&c.img);
	if (frozen) {
		if (!ret && !o->leave_running)
			finish_task(&c);
		else
			unfreeze_threads(&c);
	}
	free_ctx(&c);
	return ret;
}
