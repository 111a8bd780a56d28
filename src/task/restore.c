/* The restore orchestrator. Reads and validates the images, creates the task with
 * clone3(set_tid) so it gets its PID, lets the child set up what it can itself (files,
 * cwd, signals, limits), then freezes it and rebuilds its memory, credentials, timers and
 * registers from outside with the remote syscall engine, and lets it go. Any failure
 * kills the child: nothing half-restored is left behind. */
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/ptrace.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>

#include "core/log.h"
#include "mem.h"
#include "ptrace/ptrace.h"
#include "sys/syscalls.h"
#include "task/task.h"

#define SVC_STATUS 0 /* offsets from svc_lo */
#define SVC_LOG 1
#define SVC_EXE 2
#define SVC_MAPS 3

static int load_images(struct rst_ctx *c)
{
	int ret;

	c->inv = img_read_msg(c->img.dfd, IMG_INVENTORY, 0);
	if (!c->inv)
		return -errno;
	if (c->inv->img_version != IMG_VERSION || c->inv->n_pids != 1 ||
	    c->inv->pids[0] != c->inv->root_pid || c->inv->root_pid <= 0) {
		pr_err("images: inventory describes %zu tasks (root %d): this version restores one "
		       "process",
		       c->inv->n_pids, c->inv->root_pid);
		return -EINVAL;
	}
	c->pid = c->inv->root_pid;
	c->core = img_read_msg(c->img.dfd, IMG_CORE, c->pid);
	if (!c->core)
		return -errno;
	c->mm = img_read_msg(c->img.dfd, IMG_MM, c->pid);
	if (!c->mm)
		return -errno;
	c->files = img_read_msg(c->img.dfd, IMG_FILES, c->pid);
	if (!c->files)
		return -errno;
	if (c->core->pid != c->pid) {
		pr_err("images: core image is for pid %d, inventory says %d", c->core->pid, c->pid);
		return -EINVAL;
	}
	ret = cpu_validate(c->core);
	if (ret)
		return ret;
	ret = img_pages_open(c->img.dfd, c->pid, &c->pages);
	if (ret)
		return ret;
	return mem_validate(c->mm, c->pages.len);
}

/* --- the child half --------------------------------------------------------------- */

static __attribute__((noreturn)) void child_fail(int status_fd, int err)
{
	char msg[600];
	int n = snprintf(msg, sizeof(msg), "E %d %s", -err, log_first_error());
	if (n > 0)
		(void)!write(status_fd, msg, (size_t)MIN(n, (int)sizeof(msg) - 1));
	_exit(1);
}

static __attribute__((noreturn)) void restore_child(struct rst_ctx *c, int status_wr)
{
	int st = c->svc_lo + SVC_STATUS, lg = c->svc_lo + SVC_LOG;
	int ret;

	/* Service fds first, above every fd the task will own (through numbers above both,
	 * so that moving one never clobbers the other). */
	int hi = st + 64;
	int t_st = fcntl(status_wr, F_DUPFD_CLOEXEC, hi);
	int t_lg = fcntl(log_get_fd(), F_DUPFD_CLOEXEC, hi);
	if (t_st < 0 || t_lg < 0 || dup3(t_st, st, O_CLOEXEC) < 0 || dup3(t_lg, lg, O_CLOEXEC) < 0)
		child_fail(status_wr, pr_perror("restore: move service fds"));
	close(t_st);
	close(t_lg);
	if (status_wr != st && status_wr != lg)
		close(status_wr);
	log_set_fd(lg);
	log_reset_first_error();
	ret = mem_restore_child(c);
	if (!ret)
		ret = files_restore_child(c);
	if (!ret)
		ret = misc_restore_child(c);
	if (!ret)
		ret = signals_restore_child(c);
	if (ret)
		child_fail(st, ret);
	if (write(st, "OK", 2) != 2)
		_exit(1);
	/* Wait to be frozen and replaced; every signal is blocked. */
	for (;;)
		pause();
}

/* --- the parent half -------------------------------------------------------------- */

static int wait_child_ready(struct rst_ctx *c, int status_rd)
{
	struct pollfd p = { .fd = status_rd, .events = POLLIN };
	char buf[640];
	int r = poll(&p, 1, 30000);
	if (r <= 0) {
		pr_err("restore: task %d did not get ready in time", c->pid);
		return -ETIMEDOUT;
	}
	ssize_t n = read(status_rd, buf, sizeof(buf) - 1);
	if (n <= 0) {
		pr_err("restore: task %d died while setting itself up", c->pid);
		return -ECHILD;
	}
	buf[n] = '\0';
	if (!strcmp(buf, "OK"))
		return 0;
	int err = EIO;
	char *msg = buf;
	if (buf[0] == 'E') {
		err = (int)strtol(buf + 2, &msg, 10);
		if (*msg == ' ')
			msg++;
	}
	/* The child's first error is the one to report. */
	log_reset_first_error();
	pr_err("%s", msg);
	return err > 0 ? -err : -EIO;
}

static int self_vdso(uint64_t *start, uint64_t *len)
{
	struct proc_vma *v = NULL;
	size_t n = 0;
	_cleanup_free_ char *buf = read_file_at(AT_FDCWD, "/proc/self/maps", 1 << 24, NULL);
	if (!buf || proc_parse_smaps(buf, &v, &n))
		return pr_perror("restore: read /proc/self/maps");
	int ret = -ENOEXEC;
	for (size_t i = 0; i < n; i++)
		if (v[i].path && !strcmp(v[i].path, "[vdso]")) {
			*start = v[i].start;
			*len = v[i].end - v[i].start;
			ret = 0;
		}
	proc_vmas_free(v, n);
	if (ret)
		pr_err("restore: stasis itself has no vDSO");
	return ret;
}

/* Credentials are per thread (the raw set*id syscalls act on the calling thread): set
 * them in every thread, the main thread last. */
static int creds_all_threads(struct rst_ctx *c)
{
	for (size_t i = 0; i < c->nr_trs; i++) {
		struct rsys main_rs = c->rs;
		c->rs = c->trs[i];
		int ret = creds_restore_remote(c);
		c->trs[i] = c->rs;
		c->rs = main_rs;
		if (ret)
			return ret;
	}
	return creds_restore_remote(c);
}

static int rebuild(struct rst_ctx *c)
{
	static const struct {
		const char *name;
		int (*fn)(struct rst_ctx *);
	} stages[] = {
		{ "drop the restorer's rseq", cpu_restore_prepare },
		{ "memory", mem_restore_remote },
		{ "threads", cpu_restore_threads },
		{ "credentials", creds_all_threads },
		{ "timers", timers_restore_remote },
		{ "process attributes", misc_restore_remote },
		{ "rseq and tid address", cpu_restore_remote },
		{ "registers", cpu_restore_final },
		{ "signal mask", signals_restore_final },
	};
	uint64_t vdso = 0, vdso_len = 0;
	int ret = self_vdso(&vdso, &vdso_len);
	if (!ret)
		ret = rsys_init(&c->rs, c->pid, vdso, vdso_len);
	if (ret)
		return ret;
	for (size_t i = 0; i < ARRAY_SIZE(stages); i++) {
		uint64_t t0 = now_ns();
		ret = stages[i].fn(c);
		if (ret) {
			pr_err("restore: %s of pid %d failed", stages[i].name, c->pid);
			return ret;
		}
		pr_info("restore: %s took %.3f ms", stages[i].name, (double)(now_ns() - t0) / 1e6);
		if (stages[i].fn == mem_restore_remote) {
			/* Service fds are not the task's: close them all. */
			long r = rsys_do(&c->rs, "restore: close service fds", SYS_close_range,
					 (uint64_t)c->svc_lo, ~0U, 0, 0, 0, 0);
			if (r < 0)
				return (int)r;
		}
	}
	return 0;
}

static void free_rst(struct rst_ctx *c)
{
	if (c->inv)
		protobuf_c_message_free_unpacked(&c->inv->base, NULL);
	if (c->core)
		protobuf_c_message_free_unpacked(&c->core->base, NULL);
	if (c->mm)
		protobuf_c_message_free_unpacked(&c->mm->base, NULL);
	if (c->files)
		protobuf_c_message_free_unpacked(&c->files->base, NULL);
	if (c->pages.fd >= 0)
		close(c->pages.fd);
	free(c->trs);
	c->trs = NULL;
	img_dir_close(&c->img);
}

static int exit_status_of(int status)
{
	if (WIFEXITED(status))
		return WEXITSTATUS(status);
	if (WIFSIGNALED(status))
		return 128 + WTERMSIG(status);
	return 1;
}

int restore_run(const struct restore_opts *o)
{
	struct rst_ctx c = { .opts = o, .pages = { .fd = -1 } };
	int pipefd[2] = { -1, -1 };
	pid_t child = -1;
	int ret, status;

	c.img.dfd = -1;
	log_set_stage("restore");
	ret = img_dir_open(&c.img, o->dir);
	if (!ret)
		ret = load_images(&c);
	if (ret)
		goto fail;

	int maxfd = files_max_fd(c.files);
	c.svc_lo = maxfd + 1 > 3 ? maxfd + 1 : 3;
	c.exe_fd = c.svc_lo + SVC_EXE;
	c.map_fd_base = c.svc_lo + SVC_MAPS;
	struct rlimit nofile;
	int need = c.map_fd_base + (int)c.mm->n_vmas + 1;
	if (getrlimit(RLIMIT_NOFILE, &nofile) == 0 && (rlim_t)need > nofile.rlim_cur) {
		if ((rlim_t)need > nofile.rlim_max) {
			pr_err("restore: needs %d file descriptors, RLIMIT_NOFILE allows %llu", need,
			       (unsigned long long)nofile.rlim_max);
			ret = -EMFILE;
			goto fail;
		}
		nofile.rlim_cur = (rlim_t)need;
		setrlimit(RLIMIT_NOFILE, &nofile);
	}
	if (pipe2(pipefd, O_CLOEXEC) < 0) {
		ret = pr_perror("restore: pipe");
		goto fail;
	}

	pid_t want = c.pid;
	struct stasis_clone_args ca = {
		.exit_signal = SIGCHLD,
		.set_tid = (uint64_t)(uintptr_t)&want,
		.set_tid_size = 1,
	};
	fflush(NULL);
	child = (pid_t)sys_clone3(&ca, sizeof(ca));
	if (child < 0) {
		ret = -errno;
		child = -1;
		if (ret == -EEXIST)
			pr_err("pid %d is already in use: cannot restore the task with its pid",
			       c.pid);
		else if (ret == -EPERM)
			pr_err("cannot create pid %d: choosing a pid needs CAP_CHECKPOINT_RESTORE or "
			       "CAP_SYS_ADMIN",
			       c.pid);
		else
			pr_err("clone3 for pid %d: %s", c.pid, strerror(-ret));
		goto fail;
	}
	if (child == 0) {
		close(pipefd[0]);
		restore_child(&c, pipefd[1]);
	}
	close(pipefd[1]);
	pipefd[1] = -1;
	if (child != c.pid) {
		pr_err("clone3 gave pid %d instead of %d", child, c.pid);
		ret = -EINVAL;
		goto fail;
	}
	ret = wait_child_ready(&c, pipefd[0]);
	if (ret)
		goto fail;
	ret = pt_seize_stop(child, true);
	if (ret)
		goto fail;
	ret = rebuild(&c);
	if (ret)
		goto fail;
	for (size_t i = 0; i < c.nr_trs; i++) {
		ret = pt_detach(c.trs[i].tid, 0);
		if (ret)
			goto fail;
	}
	ret = pt_detach(child, 0);
	if (ret)
		goto fail;
	pr_info("restore: pid %d restored", c.pid);
	if (o->pidfile) {
		char buf[32];
		int n = snprintf(buf, sizeof(buf), "%d\n", c.pid);
		ret = write_file(o->pidfile, buf, (size_t)n);
		if (ret) {
			pr_errno(ret, "restore: write pidfile %s", o->pidfile);
			goto fail;
		}
	}
	close(pipefd[0]);
	free_rst(&c);
	if (o->detach)
		return 0;
	for (;;) {
		pid_t r = waitpid(child, &status, 0);
		if (r == child)
			return exit_status_of(status);
		if (r < 0 && errno != EINTR) {
			pr_perror("restore: wait for %d", child);
			return 1;
		}
	}

fail:
	if (child > 0) {
		kill(child, SIGKILL);
		while (waitpid(child, &status, __WALL) < 0 && errno == EINTR)
			;
	}
	if (pipefd[0] >= 0)
		close(pipefd[0]);
	if (pipefd[1] >= 0)
		close(pipefd[1]);
	free_rst(&c);
	return -1000 + ret; /* < 0: stasis failed (not the task) */
}
