/* The dump orchestrator: checks, freeze, the resource modules in order, images, and the
 * end of the task (killed once the images are durable, or left running). Every failure
 * after the freeze puts the task back exactly as it was and removes the partial images. */
#include <dirent.h>
#include <linux/kcmp.h>
#include <sys/syscall.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/ptrace.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <time.h>

#include "core/fault.h"
#include "core/log.h"
#include "ptrace/ptrace.h"
#include "sys/syscalls.h"
#include "cr/resource.h"
#include "cr/stats.h"
#include "files/files.h"
#include "image/remote.h"
#include "net/sk_inet.h"
#include "mem/mem.h"
#include "net/netlock.h"
#include "ns/ns.h"
#include "task/task.h"

#define PF_KTHREAD 0x00200000
#define PF_IO_WORKER 0x00000010

static int parse_proc_facts(struct dump_ctx *c)
{
	_cleanup_free_ char *stat = read_file_at(c->procfd, "stat", 8192, NULL);
	_cleanup_free_ char *status = stat ? read_file_at(c->procfd, "status", 1 << 20, NULL) : NULL;
	int ret;

	if (!stat || !status)
		return pr_perror("dump: read /proc/%d/stat and status", c->ospid);
	ret = proc_parse_stat(stat, &c->stat);
	if (ret)
		return pr_errno(ret, "dump: parse /proc/%d/stat", c->ospid);
	proc_status_free(&c->status);
	ret = proc_parse_status(status, &c->status);
	if (ret)
		return pr_errno(ret, "dump: parse /proc/%d/status", c->ospid);
	return 0;
}

/* The live thread of zombie leader @c with the lowest tid, or 0 (none left). */
static pid_t zleader_live_thread(struct dump_ctx *c)
{
	_cleanup_close_ int tfd = openat(c->procfd, "task", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	DIR *d = tfd >= 0 ? fdopendir(tfd) : NULL;
	pid_t best = 0;
	struct dirent *de;
	if (!d)
		return 0;
	tfd = -1; /* owned by d */
	while ((de = readdir(d))) {
		long long tid;
		char path[64];
		struct proc_stat st;
		if (parse_int(de->d_name, 1, 0x3fffffff, &tid) || tid == c->pid ||
		    (best && tid > best))
			continue;
		snprintf(path, sizeof(path), "task/%lld/stat", tid);
		_cleanup_free_ char *buf = read_file_at(c->procfd, path, 8192, NULL);
		if (buf && !proc_parse_stat(buf, &st) && st.state != 'Z' && st.state != 'X')
			best = (pid_t)tid;
	}
	closedir(d);
	return best;
}

/* What a zombie leader's status shows that the restore gives it from its threads:
 * credentials, capabilities, no_new_privs. */
#define ZL_SAME 14
static void zleader_same(const struct proc_status *s, uint64_t out[ZL_SAME])
{
	const uint64_t v[ZL_SAME] = { s->uid[0], s->uid[1], s->uid[2],  s->uid[3],  s->gid[0],
				      s->gid[1], s->gid[2], s->gid[3],  s->cap_inh, s->cap_prm,
				      s->cap_eff, s->cap_bnd, s->cap_amb,
				      (uint64_t)(s->no_new_privs > 0) };
	memcpy(out, v, sizeof(v));
}

/* A zombie thread-group leader: keep what the leader alone shows, then look at the
 * process through its live thread with the lowest tid (another thread's view of the same
 * memory, files, fs, namespaces, signal handlers). Left as it is if none is left. */
static int zleader_switch(struct dump_ctx *c)
{
	pid_t tid = zleader_live_thread(c);
	if (!tid)
		return 0;
	char path[64];
	snprintf(path, sizeof(path), "/proc/%d", tid);
	int dfd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0)
		return pr_perror("dump: open %s (a live thread of pid %d)", path, c->pid);
	int pfd = sys_pidfd_open(tid, PIDFD_THREAD);
	if (pfd < 0) {
		close(dfd);
		return pr_perror("dump: pidfd of thread %d of pid %d", tid, c->pid);
	}
	/* its own exit code: the thread's view (/proc/PID/stat shows the group's stop
	 * signal there while the process is stopped) */
	char tpath[64];
	struct proc_stat lst;
	snprintf(tpath, sizeof(tpath), "task/%d/stat", c->pid);
	_cleanup_free_ char *lbuf = read_file_at(c->procfd, tpath, 8192, NULL);
	if (!lbuf || proc_parse_stat(lbuf, &lst)) {
		close(dfd);
		close(pfd);
		return pr_perror("dump: read /proc/%d/%s", c->pid, tpath);
	}
	c->zl.on = true;
	c->zl.exit_code = lst.exit_code;
	c->zl.exit_signal = c->stat.exit_signal;
	c->zl.start_time = c->stat.start_time;
	memcpy(c->zl.comm, c->stat.comm, sizeof(c->zl.comm));
	memcpy(c->zl.nspid, c->status.nspid, sizeof(c->zl.nspid));
	c->zl.nspid_len = c->status.nspid_len;
	c->zl.sig_blk = c->status.sig_blk;
	c->zl.seccomp = c->status.seccomp;
	c->zl.seccomp_filters = c->status.seccomp_filters;
	/* what its status shows after the restore is what the threads have: the same */
	uint64_t lead[ZL_SAME], live[ZL_SAME];
	bool pending = c->status.sig_pnd != 0;
	zleader_same(&c->status, lead);
	close(c->procfd);
	close(c->pidfd);
	c->procfd = dfd;
	c->pidfd = pfd;
	c->ospid = tid;
	int ret = parse_proc_facts(c);
	zleader_same(&c->status, live);
	if (!ret && (pending || memcmp(lead, live, sizeof(lead)))) {
		pr_err("pid %d: its exited main thread had %s (a zombie thread-group leader): not "
		       "supported",
		       c->pid, pending ? "signals pending of its own"
				       : "other credentials or no_new_privs than its threads");
		return -EOPNOTSUPP;
	}
	return ret;
}

/* Its live threads exited meanwhile: look at the process itself again. */
static int zleader_undo(struct dump_ctx *c)
{
	char path[64];
	snprintf(path, sizeof(path), "/proc/%d", c->pid);
	int dfd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0)
		return -errno;
	close(c->procfd);
	c->procfd = dfd;
	c->zl.on = false;
	c->ospid = c->pid;
	return 0;
}

static int read_proc_facts(struct dump_ctx *c)
{
	int ret = parse_proc_facts(c);
	if (!ret && !c->zl.on && (c->stat.state == 'Z' || c->stat.state == 'X') &&
	    c->stat.num_threads > 1)
		ret = zleader_switch(c);
	if (ret || !c->zl.on)
		return ret;
	/* the process's own ids and name are the leader's */
	c->stat.pid = c->status.pid = c->pid;
	c->stat.exit_signal = c->zl.exit_signal;
	c->stat.start_time = c->zl.start_time;
	memcpy(c->stat.comm, c->zl.comm, sizeof(c->stat.comm));
	memcpy(c->status.nspid, c->zl.nspid, sizeof(c->status.nspid));
	c->status.nspid_len = c->zl.nspid_len;
	return 0;
}

/* @tid is traced by @tracer (not us): one line naming the tracer. A stasis tracing it is
 * another dump of the same tree. */
static int report_tracer(pid_t pid, pid_t tid, pid_t tracer)
{
	char path[64];
	snprintf(path, sizeof(path), "/proc/%d/comm", tracer);
	_cleanup_free_ char *comm = read_file_at(AT_FDCWD, path, 64, NULL);
	if (comm)
		comm[strcspn(comm, "\n")] = '\0';
	if (comm && !strcmp(comm, "stasis")) {
		pr_err("pid %d is already being dumped (by stasis pid %d)", pid, tracer);
		return -EBUSY;
	}
	if (tid == pid)
		pr_err("pid %d is traced by pid %d (%s): detach the debugger first", pid, tracer,
		       comm ? comm : "gone");
	else
		pr_err("pid %d: thread or child %d is traced by pid %d (%s): detach the debugger "
		       "first",
		       pid, tid, tracer, comm ? comm : "gone");
	return -EBUSY;
}

/* The tracer of @tid (TracerPid in /proc/TID/status), 0 when none or unknown. */
static pid_t tracer_of(pid_t tid)
{
	char path[64];
	struct proc_status st;
	pid_t tracer = 0;
	snprintf(path, sizeof(path), "/proc/%d/status", tid);
	_cleanup_free_ char *buf = read_file_at(AT_FDCWD, path, 1 << 20, NULL);
	if (buf && !proc_parse_status(buf, &st)) {
		tracer = st.tracer_pid;
		proc_status_free(&st);
	}
	return tracer;
}

/* What this version can dump; anything else is refused before the task is touched. */
/* The signal that stopped a job-control stopped task, as /proc/PID/stat's exit_code shows
 * it until its parent waits for the stop (SIGSTOP then; the seize reads it exactly). */
static int stop_signal_of(const struct proc_stat *st)
{
	int sig = st->exit_code & 0x7f;
	return sig == SIGTSTP || sig == SIGTTIN || sig == SIGTTOU ? sig : SIGSTOP;
}

/* A task job-control stopped at dump (state T): restored stopped by that signal; its
 * parent had collected the stop when stat's exit_code is 0. */
static void note_stopped(struct dump_ctx *c)
{
	c->stop_signal = stop_signal_of(&c->stat);
	c->stop_collected = !c->stat.exit_code;
}

static int check_dumpable(struct dump_ctx *c)
{
	if (c->stat.flags & PF_KTHREAD) {
		pr_err("pid %d (%s) is a kernel thread: kernel threads cannot be checkpointed",
		       c->pid, c->stat.comm);
		return -EPERM;
	}
	if (!c->nr_thr && c->status.tracer_pid && c->status.tracer_pid != getpid())
		return report_tracer(c->pid, c->pid, c->status.tracer_pid);
	/* (once frozen by us, every task shows 't') */
	if (!c->nr_thr && c->stat.state == 't') {
		pr_err("pid %d is traced by another process: cannot freeze it", c->pid);
		return -EBUSY;
	}
	if (!c->nr_thr && c->stat.state == 'T')
		note_stopped(c);
	if ((c->stat.state == 'Z' || c->stat.state == 'X') && c->stat.num_threads > 1) {
		/* a zombie leader whose other threads all exit too */
		pr_err("pid %d is exiting: its main thread and its %ld other threads are gone",
		       c->pid, c->stat.num_threads - 1);
		return -ESRCH;
	}
	if (c->stat.state == 'Z' || c->stat.state == 'X') {
		pr_err("pid %d is a zombie: nothing to checkpoint", c->pid);
		return -ESRCH;
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

/* Seize @tid and read its blocked mask (signals are blocked by the remote engines while
 * they work: a frozen task receives none). -ESRCH if it is gone. */
static int freeze_one(struct dump_ctx *c, pid_t tid)
{
	struct dump_thread *t;
	int stopsig = 0;
	int ret = pt_seize_stop_sig(tid, false, &stopsig);
	if (ret == -EPERM) {
		/* traced by someone else (a debugger, another dump): say by whom */
		pid_t tracer = tracer_of(tid);
		if (tracer && tracer != getpid()) {
			log_reset_first_error();
			return report_tracer(c->pid, tid, tracer);
		}
	}
	if (ret)
		return ret;
	/* the signal that stopped a job-control stopped task (its parent may have consumed
	 * the stop report, which clears it from /proc/PID/stat) */
	if (tid == c->ospid && c->stop_signal && stopsig)
		c->stop_signal = stopsig;
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
	return seccomp_dump_suspend(c, tid);
}

/* A kernel io worker of the process (an io_uring's SQPOLL thread or io-wq worker): no
 * ptrace stop freezes it, and it is not carried (the ring's restore makes its own). */
static bool is_io_worker(const struct dump_ctx *c, pid_t tid)
{
	char path[64];
	struct proc_stat st;
	snprintf(path, sizeof(path), "task/%d/stat", tid);
	_cleanup_free_ char *buf = read_file_at(c->procfd, path, 8192, NULL);
	return buf && !proc_parse_stat(buf, &st) && (st.flags & PF_IO_WORKER);
}

/* Freeze every thread. A thread not yet frozen may create more, so list again until a
 * pass finds nothing new: then every thread is stopped and the set cannot change. */
static int freeze_threads(struct dump_ctx *c)
{
	int ret = freeze_one(c, c->ospid); /* the main thread, or the first live one */
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
			if (parse_int(de->d_name, 1, 0x3fffffff, &tid) || thread_known(c, (pid_t)tid) ||
			    (c->zl.on && tid == c->pid) || is_io_worker(c, (pid_t)tid))
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

/* (the engines, finished before, put back each thread's registers and mask) */
static void unfreeze_threads(struct dump_ctx *c)
{
	for (size_t i = 0; i < c->nr_thr; i++)
		pt_detach(c->thr[i].tid, 0);
}

int dump_threads_call(struct dump_ctx *c, const char *what, long nr, const uint64_t tmpl[6],
		      int slot_arg, size_t slot_size, void *out)
{
	const uint64_t base = c->rs.scratch + 4096;
	size_t per = (c->rs.scratch_len - 4096) / slot_size;
	_cleanup_free_ struct rsys **rs = calloc(c->nr_thr, sizeof(*rs));
	_cleanup_free_ uint64_t (*args)[6] = calloc(c->nr_thr, sizeof(*args));
	_cleanup_free_ long *ret = calloc(c->nr_thr, sizeof(*ret));

	if (!rs || !args || !ret || !per)
		return -ENOMEM;
	for (size_t lo = 0; lo < c->nr_thr; lo += per) {
		size_t n = MIN(per, c->nr_thr - lo);
		for (size_t k = 0; k < n; k++) {
			rs[k] = dump_thread_rs(c, lo + k);
			memcpy(args[k], tmpl, sizeof(args[k]));
			args[k][slot_arg] = base + k * slot_size;
		}
		int err = rsys_call_vec(rs, n, nr, (const uint64_t(*)[6])args, ret);
		if (err)
			return err;
		for (size_t k = 0; k < n; k++)
			if (ret[k] < 0 && ret[k] > -4096) {
				pr_err("%s in thread %d: %s", what, rs[k]->tid, strerror((int)-ret[k]));
				return (int)ret[k];
			}
		err = rsys_peek(&c->rs, base, (char *)out + lo * slot_size, n * slot_size);
		if (err)
			return err;
	}
	return 0;
}

/* smaps, read by a thread of its own while this one asks for the present pages of the
 * areas maps lists (src/mem/scan.c: the two walk the same page tables, the task is
 * frozen): the areas' flags and the page scan of the largest areas at once. */
struct smaps_job {
	int procfd;
	struct proc_vma *v;
	size_t n;
	int err;
	bool parsing; /* the error is the parser's */
};

static void *smaps_main(void *arg)
{
	struct smaps_job *j = arg;
	_cleanup_free_ char *buf = read_records_at(j->procfd, "smaps", 1 << 28);
	if (!buf) {
		j->err = errno ? -errno : -EIO;
		return NULL;
	}
	j->parsing = true;
	j->err = proc_parse_smaps(buf, &j->v, &j->n);
	return NULL;
}

static int read_vmas(struct dump_ctx *c)
{
	if (c->track && mem_track_layout(c))
		return 0; /* a pre-dump: the areas as the parent pass left them */
	struct smaps_job j = { .procfd = c->procfd };
	pthread_t th;
	if (!pthread_create(&th, NULL, smaps_main, &j)) {
		/* the scan ahead is an optimization: without it every area is scanned later */
		if (mem_prescan(c->procfd, &c->prescan))
			pr_debug("dump: pid %d: no page scan ahead", c->pid);
		pthread_join(th, NULL);
	} else {
		smaps_main(&j);
	}
	if (j.err)
		return pr_errno(j.err, "dump: %s /proc/%d/smaps", j.parsing ? "parse" : "read",
				c->pid);
	c->vmas = j.v;
	c->nr_vmas = j.n;
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
	if (c->opts->pre_dump) /* memory only; nothing of a process gone meanwhile */
		return c->gone ? 0 : img_write_msg(c->img, IMG_MM, c->pid, &c->mm->base);
	int ret = img_write_msg(c->img, IMG_CORE, c->pid, &c->core->base);
	/* only a task that created a namespace has a record of them */
	if (!ret && protobuf_c_message_get_packed_size(&c->tns->base))
		ret = img_write_msg(c->img, IMG_NS, c->pid, &c->tns->base);
	if (!ret)
		ret = img_write_msg(c->img, IMG_MM, c->pid, &c->mm->base);
	if (!ret)
		ret = img_write_msg(c->img, IMG_FILES, c->pid, &c->files->base);
	return ret;
}

static void free_ctx(struct dump_ctx *c)
{
	if (!c)
		return;
	if (c->core)
		protobuf_c_message_free_unpacked(&c->core->base, NULL);
	if (c->tns)
		protobuf_c_message_free_unpacked(&c->tns->base, NULL);
	if (c->mm)
		protobuf_c_message_free_unpacked(&c->mm->base, NULL);
	if (c->files)
		protobuf_c_message_free_unpacked(&c->files->base, NULL);
	proc_vmas_free(c->vmas, c->nr_vmas);
	mem_prescan_free(c->prescan);
	if (c->prev_mm)
		mm__free_unpacked(c->prev_mm, NULL);
	proc_status_free(&c->status);
	mem_dump_state_free(c->mem);
	free(c->thr);
	if (c->procfd >= 0)
		close(c->procfd);
	if (c->pidfd >= 0)
		close(c->pidfd);
	free(c);
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

/* ---------------------------------------------------------------- the tree ---- */


/* Open a process for dumping: pinned by a pidfd, /proc dir, stat and status read. */
static int proc_open(struct dump_tree *t, pid_t pid, struct dump_ctx **out)
{
	char path[64];
	struct dump_ctx *c = calloc(1, sizeof(*c));
	int ret;

	if (!c)
		return -ENOMEM;
	c->opts = t->opts;
	c->pid = c->ospid = pid;
	c->procfd = -1;
	c->img = &t->img;
	c->pidfd = sys_pidfd_open(pid, 0);
	if (c->pidfd < 0) {
		ret = -errno;
		if (ret == -ESRCH)
			pr_err("pid %d: no such process", pid);
		else
			pr_err("pid %d: cannot open it: %s", pid, strerror(-ret));
		free_ctx(c);
		return ret;
	}
	snprintf(path, sizeof(path), "/proc/%d", pid);
	c->procfd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (c->procfd < 0) {
		ret = pr_perror("dump: open %s", path);
		free_ctx(c);
		return ret;
	}
	ret = read_proc_facts(c);
	if (ret) {
		free_ctx(c);
		return ret;
	}
	*out = c;
	return 0;
}

static int add_proc(struct dump_tree *t, struct dump_ctx *c, pid_t ppid)
{
	if (t->nr % 32 == 0) {
		struct dump_ctx **n = realloc(t->procs, (t->nr + 32) * sizeof(*n));
		pid_t *p = realloc(t->ppid, (t->nr + 32) * sizeof(*p));
		if (n)
			t->procs = n;
		if (p)
			t->ppid = p;
		if (!n || !p)
			return -ENOMEM;
	}
	c->sk = t->sk;
	c->seccomp = &t->seccomp;
	t->procs[t->nr] = c;
	t->ppid[t->nr++] = ppid;
	return 0;
}

static int add_zombie(struct dump_tree *t, const struct proc_stat *st, pid_t ppid,
		      const struct proc_status *status)
{
	if (t->nr_zombies % 32 == 0) {
		struct zombie *n = realloc(t->zombies, (t->nr_zombies + 32) * sizeof(*n));
		if (!n)
			return -ENOMEM;
		t->zombies = n;
	}
	t->zombies[t->nr_zombies++] = (struct zombie){
		.pid = st->pid, .ppid = ppid, .pgid = st->pgrp, .sid = st->session,
		.exit_status = st->exit_code, .exit_signal = st->exit_signal,
	};
	struct zombie *z = &t->zombies[t->nr_zombies - 1];
	snprintf(z->comm, sizeof(z->comm), "%s", st->comm);
	z->nspid_len = status ? status->nspid_len : 0;
	z->nssid_len = status ? status->nssid_len : 0;
	z->nspgid_len = status ? status->nspgid_len : 0;
	if (status) {
		memcpy(z->nspgid, status->nspgid, sizeof(z->nspgid));
		memcpy(z->nspid, status->nspid, sizeof(z->nspid));
		memcpy(z->nssid, status->nssid, sizeof(z->nssid));
		z->has_caps = true;
		z->caps[0] = status->cap_inh;
		z->caps[1] = status->cap_prm;
		z->caps[2] = status->cap_eff;
		z->caps[3] = status->cap_bnd;
		z->caps[4] = status->cap_amb;
	}
	return 0;
}

/* The children of every thread of @c (/proc/PID/task/TID/children). */
static int list_children(struct dump_ctx *c, pid_t **out, size_t *nr)
{
	*out = NULL;
	*nr = 0;
	for (size_t k = 0; k < c->nr_thr; k++) {
		char path[64];
		snprintf(path, sizeof(path), "task/%d/children", c->thr[k].tid);
		_cleanup_free_ char *buf = read_file_at(c->procfd, path, 1 << 22, NULL);
		if (!buf)
			return pr_perror("dump: read /proc/%d/%s", c->pid, path);
		char *save = NULL;
		for (char *tok = strtok_r(buf, " \n", &save); tok; tok = strtok_r(NULL, " \n", &save)) {
			long long v;
			if (parse_int(tok, 1, 0x3fffffff, &v)) {
				pr_err("dump: malformed /proc/%d/%s", c->pid, path);
				return -EINVAL;
			}
			pid_t *n = realloc(*out, (*nr + 1) * sizeof(*n));
			if (!n)
				return -ENOMEM;
			*out = n;
			(*out)[(*nr)++] = (pid_t)v;
		}
	}
	return 0;
}

/* Freeze the whole tree, parents before children: a frozen process cannot fork, so once
 * a process is frozen the list of its children is final (children that exit meanwhile
 * are caught as zombies). */
static int freeze_tree(struct dump_tree *t)
{
	for (size_t i = 0; i < t->nr; i++) {
		struct dump_ctx *c = t->procs[i];
		int ret = freeze_threads(c);
		if (ret == -ESRCH && i > 0) {
			/* it exited before we got to it: now a zombie of its parent (or gone) */
			log_reset_first_error();
			ret = c->zl.on ? zleader_undo(c) : 0;
			if (!ret)
				ret = read_proc_facts(c);
			if (!ret && (c->stat.state == 'Z' || c->stat.state == 'X'))
				ret = add_zombie(t, &c->stat, t->ppid[i], &c->status);
			else if (ret == -ENOENT || ret == -ESRCH)
				ret = 0; /* reaped meanwhile */
			else if (!ret)
				ret = pr_errno(-EAGAIN, "dump: pid %d could not be frozen", c->pid);
			if (ret)
				return ret;
			log_reset_first_error();
			/* drop it from the live list */
			for (size_t k = 0; k < c->nr_thr; k++)
				pt_detach(c->thr[k].tid, 0);
			free_ctx(c);
			memmove(&t->procs[i], &t->procs[i + 1], (t->nr - i - 1) * sizeof(*t->procs));
			memmove(&t->ppid[i], &t->ppid[i + 1], (t->nr - i - 1) * sizeof(*t->ppid));
			t->nr--;
			i--;
			continue;
		}
		if (ret)
			return ret;
		if (sys_pidfd_send_signal(c->pidfd, 0, NULL, 0) < 0)
			return pr_perror("dump: pid %d exited before it was frozen", c->pid);
		_cleanup_free_ pid_t *kids = NULL;
		size_t nk;
		ret = list_children(c, &kids, &nk);
		if (ret)
			return ret;
		for (size_t k = 0; k < nk; k++) {
			if (kids[k] == getpid()) {
				pr_err("stasis itself (pid %d) is inside the tree of pid %d: run it from "
				       "outside the tree",
				       getpid(), t->procs[0]->pid);
				return -EINVAL;
			}
			if (dump_tree_has(t, kids[k]))
				continue;
			struct dump_ctx *k_ctx;
			ret = proc_open(t, kids[k], &k_ctx);
			if (ret == -ESRCH) {
				log_reset_first_error();
				continue; /* exited and reaped meanwhile */
			}
			if (ret)
				return ret;
			if (k_ctx->stat.state == 'Z' || k_ctx->stat.state == 'X') {
				ret = add_zombie(t, &k_ctx->stat, c->pid, &k_ctx->status);
				free_ctx(k_ctx);
				if (ret)
					return ret;
				continue;
			}
			if (k_ctx->stat.state == 'T')
				note_stopped(k_ctx);
			k_ctx->parent = c;
			ret = add_proc(t, k_ctx, c->pid);
			if (ret) {
				free_ctx(k_ctx);
				return ret;
			}
			/* frozen on its own turn; a child dying meanwhile becomes a zombie */
		}
	}
	return 0;
}

/* Processes sharing an fd table (CLONE_FILES), fs info (CLONE_FS) or an address space
 * (CLONE_VM without CLONE_THREAD, e.g. a vfork child) cannot be rebuilt yet. */
static int check_sharing(struct dump_tree *t)
{
	static const struct {
		int type;
		const char *what;
	} kinds[] = {
		{ KCMP_VM, "an address space (CLONE_VM)" },
		{ KCMP_FILES, "an fd table (CLONE_FILES)" },
		{ KCMP_FS, "root/cwd/umask (CLONE_FS)" },
	};
	for (size_t i = 1; i < t->nr; i++)
		for (size_t j = 0; j < i; j++) {
			/* every pair for trees of usual size; parents only for huge ones */
			if (t->nr > 256 && t->procs[j]->pid != t->ppid[i])
				continue;
			for (size_t k = 0; k < ARRAY_SIZE(kinds); k++) {
				long r = syscall(SYS_kcmp, t->procs[i]->ospid, t->procs[j]->ospid, kinds[k].type,
						 0, 0);
				if (r < 0)
					return pr_perror("dump: kcmp pids %d and %d", t->procs[i]->pid,
							 t->procs[j]->pid);
				if (r == 0 && t->procs[j]->pid == t->ppid[i] && kinds[k].type != KCMP_VM) {
					/* with its parent: rebuilt by creating it with the flag */
					if (kinds[k].type == KCMP_FILES)
						t->procs[i]->shares_files = true;
					else
						t->procs[i]->shares_fs = true;
					continue;
				}
				if (r == 0) {
					pr_err("pids %d and %d share %s: not supported yet (only with the "
					       "parent)", t->procs[j]->pid, t->procs[i]->pid, kinds[k].what);
					return -EOPNOTSUPP;
				}
			}
		}
	return 0;
}

/* The restored main thread of a zombie leader forks its children, then exits: a child
 * with a parent-death signal would get it then (the kernel sends it when the thread
 * that forked it exits), a second time. */
static int check_zleader_children(const struct dump_tree *t)
{
	for (size_t i = 1; i < t->nr; i++) {
		const struct dump_ctx *p = t->procs[i]->parent;
		if (p && p->zl.on && t->procs[i]->core->pdeath_sig) {
			pr_err("pid %d has a parent-death signal (%u) and a parent whose main thread "
			       "exited (pid %d, a zombie thread-group leader): not supported",
			       t->procs[i]->pid, t->procs[i]->core->pdeath_sig, p->pid);
			return -EOPNOTSUPP;
		}
	}
	return 0;
}

static int prepare_proc(struct dump_ctx *c)
{
	int ret = read_proc_facts(c);
	if (!ret)
		ret = check_dumpable(c);
	if (!ret)
		ret = read_vmas(c);
	if (ret)
		return ret;
	uint64_t vdso = 0, vdso_len = 0;
	ret = find_vdso(c, &vdso, &vdso_len);
	if (!ret)
		ret = rsys_init(&c->rs, c->ospid, vdso, vdso_len);
	if (ret)
		return ret;
	c->rs_ready = true;
	for (size_t i = 1; i < c->nr_thr; i++) {
		ret = rsys_init_insn(&c->thr[i].rs, c->thr[i].tid, c->rs.insn, 0, 0);
		if (ret)
			return ret;
		c->thr[i].rs_ready = true;
	}
	/* Armed engines: if stasis dies, every thread finds its own context again. */
	_cleanup_free_ struct rsys **rs = calloc(c->nr_thr, sizeof(*rs));
	if (!rs)
		return -ENOMEM;
	for (size_t i = 0; i < c->nr_thr; i++)
		rs[i] = dump_thread_rs(c, i);
	ret = rsys_arm(rs, c->nr_thr, 64 * 1024);
	if (ret)
		return ret;
	c->core = calloc(1, sizeof(*c->core));
	if (!c->core)
		return -ENOMEM;
	core__init(c->core);
	c->core->creds = calloc(1, sizeof(Creds));
	if (!c->core->creds)
		return -ENOMEM;
	creds__init(c->core->creds);
	c->tns = calloc(1, sizeof(*c->tns));
	if (!c->tns)
		return -ENOMEM;
	task_ns__init(c->tns);
	ret = res_dump(c);
	if (!ret && c->zl.on && !c->opts->pre_dump)
		ret = cpu_dump_zleader(c);
	return ret;
}

static int release_proc(struct dump_ctx *c)
{
	int ret = 0;
	_cleanup_free_ struct rsys **rs = calloc(c->nr_thr + 1, sizeof(*rs));
	size_t n = 0;
	for (size_t i = 1; i < c->nr_thr; i++)
		if (c->thr[i].rs_ready) {
			c->thr[i].rs_ready = false;
			if (rs)
				rs[n++] = &c->thr[i].rs;
			else if (rsys_fini(&c->thr[i].rs) && !ret)
				ret = -EIO;
		}
	if (n)
		ret = rsys_fini_vec(rs, n);
	if (c->rs_ready) {
		int r = rsys_fini(&c->rs);
		if (r && !ret)
			ret = r;
		c->rs_ready = false;
	}
	return ret;
}

static int write_inventory(struct dump_tree *t)
{
	Inventory inv = INVENTORY__INIT;
	struct utsname u;
	struct timespec ts;
	size_t n = t->nr + t->nr_zombies;
	_cleanup_free_ int32_t *pids = calloc(t->nr, sizeof(*pids));
	_cleanup_free_ TaskEntry *ents = calloc(n, sizeof(*ents));
	_cleanup_free_ TaskEntry **pents = calloc(n, sizeof(*pents));

	if (!pids || !ents || !pents)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++) {
		TaskEntry *e = &ents[i];
		task_entry__init(e);
		pents[i] = e;
		if (i < t->nr) {
			const struct proc_stat *st = &t->procs[i]->stat;
			if (!t->procs[i]->gone) /* the next pass looks its mm up by these */
				pids[inv.n_pids++] = st->pid;
			e->pid = st->pid;
			e->ppid = t->ppid[i];
			e->pgid = st->pgrp;
			e->sid = st->session;
			e->has_exit_signal = true;
			e->exit_signal = (uint32_t)st->exit_signal;
			e->has_shares_files = t->procs[i]->shares_files;
			e->shares_files = t->procs[i]->shares_files;
			e->has_shares_fs = t->procs[i]->shares_fs;
			e->shares_fs = t->procs[i]->shares_fs;
			e->has_creator = t->procs[i]->creator > 0;
			e->creator = t->procs[i]->creator;
			e->has_mnt_sibling = t->procs[i]->mnt_sibling > 0;
			e->mnt_sibling = t->procs[i]->mnt_sibling;
			if (e->has_creator && e->has_mnt_sibling) {
				pr_err("pid %d is in a session made through another task and in the "
				       "mount namespace of its sibling %d (setns): not supported",
				       e->pid, e->mnt_sibling);
				return -EOPNOTSUPP;
			}
			e->n_nspid = t->procs[i]->status.nspid_len;
			e->nspid = t->procs[i]->status.nspid;
			e->n_nspgid = t->procs[i]->status.nspgid_len;
			e->nspgid = t->procs[i]->status.nspgid;
			e->has_born_sid = t->procs[i]->born_sid > 0;
			e->born_sid = t->procs[i]->born_sid;
			if (t->procs[i]->via_session) {
				const struct dump_ctx *c = t->procs[i];
				e->has_via_session = e->via_session = true;
				e->n_nssid = c->sess_nssid ? c->sess_nssid_len : c->status.nssid_len;
				e->nssid = (int32_t *)(c->sess_nssid ? c->sess_nssid : c->status.nssid);
			}
		} else {
			const struct zombie *z = &t->zombies[i - t->nr];
			e->pid = z->pid;
			e->ppid = z->ppid;
			e->pgid = z->pgid;
			e->sid = z->sid;
			e->has_zombie = e->zombie = true;
			e->has_exit_status = true;
			e->exit_status = z->exit_status;
			e->has_exit_signal = true;
			e->exit_signal = (uint32_t)z->exit_signal;
			e->n_nspid = z->nspid_len;
			e->nspid = (int32_t *)z->nspid;
			e->n_nspgid = z->nspgid_len;
			e->nspgid = (int32_t *)z->nspgid;
			e->comm = (char *)z->comm;
			e->n_caps = z->has_caps ? 5 : 0;
			e->caps = (uint64_t *)z->caps;
			e->has_creator = z->creator > 0;
			e->creator = z->creator;
			if (z->via_session) {
				e->has_via_session = e->via_session = true;
				e->n_nssid = z->nssid_len;
				e->nssid = (int32_t *)z->nssid;
			}
		}
	}
	inv.img_version = IMG_VERSION;
	inv.root_pid = t->procs[0]->pid;
	inv.pids = pids;
	inv.n_tasks = n;
	inv.tasks = pents;
	uname(&u);
	inv.kernel = u.release;
	clock_gettime(CLOCK_REALTIME, &ts);
	inv.has_dump_time_ns = true;
	inv.dump_time_ns = (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
	inv.has_page_size = true;
	inv.page_size = PAGE_SIZE;
	inv.tool = (char *)"stasis";
	struct stat nst;
	if (stat("/proc/self/ns/user", &nst) == 0) {
		inv.has_dumper_userns = true;
		inv.dumper_userns = nst.st_ino;
	}
	/* a shell job (src/files/tty.c refused one without --shell-job): the root's group
	 * goes to the restorer's terminal's foreground if it was the caller's */
	const struct proc_stat *rs = &t->procs[0]->stat;
	if (t->opts->shell_job && rs->tty_nr) {
		inv.has_shell_job = inv.shell_job = true;
		inv.has_shell_job_fg = true;
		inv.shell_job_fg = rs->pgrp == rs->pid && rs->tpgid == rs->pgrp;
	}
	mem_track_inventory(t->track, &inv);
	/* The inventory is written last: a directory without it is incomplete. */
	return img_write_msg(&t->img, IMG_INVENTORY, 0, &inv.base);
}

static void free_tree(struct dump_tree *t)
{
	for (size_t i = 0; i < t->nr; i++)
		free_ctx(t->procs[i]);
	free(t->procs);
	free(t->ppid);
	free(t->zombies);
	if (t->seccomp)
		seccomp_filters__free_unpacked(t->seccomp, NULL);
}

/* A dump that failed because the image directory's filesystem did (full, read-only, over
 * quota, an I/O error): the one line says so and names the directory, whatever layer saw
 * it first (the pages writer, a metadata write, the commit). */
static void report_storage_error(const struct dump_opts *o, int ret)
{
	char first[400];
	const char *stage = "dump: ";

	if (ret != -ENOSPC && ret != -EDQUOT && ret != -EROFS && ret != -EIO && ret != -EFBIG)
		return;
	snprintf(first, sizeof(first), "%s", log_first_error());
	const char *why = str_starts(first, stage) ? first + strlen(stage) : first;
	log_reset_first_error();
	pr_err("dump: cannot write the images of pid %d to %s: %s (%s); nothing was kept, the "
	       "tree runs on untouched",
	       o->pid, o->dir, strerror(-ret), why[0] ? why : "no detail");
}

/* A pre-dump, once the tracking is armed and handed to its keeper: the tree runs on
 * while its pages are copied. A page written from now on is marked written by the
 * tracking (the next pass stores it again); one that is not keeps the contents it had
 * when the tracking was armed, which is what the copy reads. */
static int thaw_tree(struct dump_tree *t)
{
	int ret = 0;
	for (size_t i = 0; i < t->nr; i++) {
		int r = release_proc(t->procs[i]);
		if (r && !ret)
			ret = r;
	}
	for (size_t i = t->nr; i-- > 0;)
		unfreeze_threads(t->procs[i]);
	t->thawed = now_ns();
	pr_info("pre-dump: the tree runs again; its pages are copied now");
	return ret;
}

/* The tree's root, its first process (@t empty when it cannot be opened). */
static int open_root(struct dump_tree *t)
{
	struct dump_ctx *root;
	int ret = proc_open(t, t->opts->pid, &root);
	if (ret)
		return ret;
	ret = add_proc(t, root, 0);
	if (ret) {
		free_ctx(root);
		return ret;
	}
	return check_dumpable(root);
}

/* New connections to the tree's listeners held back until the dump ends; connections
 * waiting in their accept queues when it froze (one from a client outside the tree, or
 * with data its server has not read, could not be made again): the tree runs on until it
 * accepted them itself (or stopped accepting), then it is frozen again, from its root: it
 * may have changed. */
static int drain_accept_queues(struct dump_tree *t, struct netlock_drain **d, uint64_t *t0)
{
	int ret = netlock_drain_start(t, d);
	if (ret <= 0)
		return ret;
	for (size_t i = t->nr; i-- > 0;)
		unfreeze_threads(t->procs[i]);
	netlock_drain_wait(*d);
	for (size_t i = 0; i < t->nr; i++)
		free_ctx(t->procs[i]);
	t->nr = t->nr_zombies = 0;
	*t0 = now_ns(); /* (the tree ran until now) */
	return open_root(t) ?: freeze_tree(t);
}

/* Every image, the inventory last, then the directory renamed into place. */
static int write_tree_images(struct dump_tree *t, uint64_t t0, uint64_t frozen)
{
	uint64_t collected = now_ns();
	int ret = 0;
	for (size_t i = 0; i < t->nr && !ret; i++)
		ret = fault_at("dump:write", NULL) ?: write_images(t->procs[i]);
	if (!ret)
		ret = write_inventory(t);
	if (!ret)
		ret = stats_write(t, t0, frozen, collected, now_ns());
	if (!ret)
		ret = fault_at("dump:commit", NULL) ?: img_dir_commit(&t->img);
	if (!ret)
		pr_info("%s: images of pid %d written to %s", t->opts->pre_dump ? "pre-dump" : "dump",
			t->opts->pid, t->opts->dir);
	return ret;
}

/* The temporary image directory, its page server, its parent link. */
static int begin_images(struct dump_tree *t)
{
	const struct dump_opts *o = t->opts;
	int ret = o->keep_foreign ? img_dir_begin_keep(&t->img, o->dir, o->sync)
				  : img_dir_begin(&t->img, o->dir, o->sync);
	if (!ret && o->ps_port)
		ret = img_remote_connect(o->ps_addr, o->ps_port, o->ps_name,
					 (o->sync ? PS_F_SYNC : 0) | (o->pre_dump ? 0 : PS_F_FINAL),
					 &t->img.remote);
	return ret ?: mem_track_link(t->track, &t->img);
}

int dump_run(const struct dump_opts *o)
{
	struct dump_tree t = { .opts = o };
	bool net_locked = false;
	struct netlock *nl = NULL;
	struct netlock_drain *drain = NULL;
	int ret;

	t.img.dfd = -1;
	log_set_stage("dump");
	if (o->pid == getpid()) {
		pr_err("pid %d is stasis itself: cannot checkpoint the checkpointer", o->pid);
		return -EINVAL;
	}
	t.sk = sk_dump_new();
	if (!t.sk)
		return pr_errno(-ENOMEM, "dump");
	ret = open_root(&t);
	if (ret && !t.nr) {
		sk_dump_release(t.sk, false);
		return ret;
	}
	ret = ret ?: mem_track_open(o, &t.track);
	if (ret)
		goto out;
	/* a dump killed while it held the network lock: its tree runs on, unlock it */
	img_gc_set_stale_hook(netlock_gc_stale);
	ret = begin_images(&t);
	if (!ret)
		ret = cr_notify(o->notify, o->notify_arg, "pre-dump", o->pid);
	if (ret)
		goto out;

	uint64_t t0 = now_ns();
	ret = freeze_tree(&t) ?: fault_at("dump:freeze", NULL);
	if (!ret && !o->pre_dump)
		ret = drain_accept_queues(&t, &drain, &t0);
	if (ret)
		goto out;
	uint64_t frozen = now_ns();
	/* a pre-dump lets the tree run on: its network is not locked */
	ret = o->pre_dump ? 0 : cr_notify(o->notify, o->notify_arg, "network-lock", o->pid);
	net_locked = !ret && !o->pre_dump;
	if (ret)
		goto out;
	size_t nthr = 0;
	for (size_t i = 0; i < t.nr; i++)
		nthr += t.procs[i]->nr_thr;
	pr_info("dump: %zu processes (%zu threads) and %zu zombies frozen in %.3f ms", t.nr, nthr,
		t.nr_zombies, (double)(now_ns() - t0) / 1e6);
	/* from here until the restored tree runs, its TCP peers see a pause, not a reset */
	ret = o->pre_dump ? 0 : netlock_dump(&t, &nl);
	if (!ret)
		ret = check_sharing(&t);
	for (size_t i = 0; i < t.nr; i++)
		t.procs[i]->track = t.track;
	for (size_t i = 0; i < t.nr && !ret; i++)
		ret = prepare_proc(t.procs[i]);
	/* a pre-dump copies the pages once the tree runs again: below */
	if (!ret && !o->pre_dump)
		ret = check_zleader_children(&t) ?: res_dump_tree(&t);
	if (!ret)
		ret = mem_track_keep(t.track, t.procs, t.nr);
	if (!ret && o->pre_dump)
		ret = thaw_tree(&t) ?: res_dump_tree(&t);
	if (ret)
		goto out;
	netlock_dump_mark(nl, &t);
	pr_info("dump: tree state collected in %.3f ms", (double)(now_ns() - t0) / 1e6);
	ret = write_tree_images(&t, t0, frozen);
	/* a pre-dump is no checkpoint: no post-dump (runc marks its container checkpointed) */
	if (!ret && !o->pre_dump)
		ret = cr_notify(o->notify, o->notify_arg, "post-dump", o->pid);

out:
	for (size_t i = 0; i < t.nr && !t.thawed; i++) {
		int r = release_proc(t.procs[i]);
		if (r && !ret)
			ret = r;
	}
	if (ret)
		report_storage_error(o, ret);
	if (ret && t.img.tmp)
		img_dir_abort(&t.img);
	else
		img_dir_close(&t.img);
	/* sockets held (TCP repair mode) go back before a tree that lives on runs again */
	bool killed = !ret && !o->leave_running && !o->pre_dump;
	if (!killed)
		sk_dump_release(t.sk, false);
	/* the tracking handed over (pre-dump) or disarmed, before the tree goes on */
	mem_track_close(t.track, !ret);
	/* children first when killing: parents must not see them die before the end */
	for (size_t i = t.nr; i-- > 0;) {
		if (killed)
			finish_task(t.procs[i]);
		else if (!t.thawed)
			unfreeze_threads(t.procs[i]);
	}
	if (killed)
		sk_dump_release(t.sk, true);
	/* the tree runs again (or is gone): a failed or --leave-running dump unlocks */
	if (ret || o->leave_running)
		netlock_unlock(nl);
	else
		netlock_keep(nl, o->dir);
	netlock_free(nl);
	netlock_drain_end(drain);
	free_tree(&t);
	/* the tree runs again (failure, --leave-running): its network too */
	if (net_locked && (ret || o->leave_running)) {
		int r = cr_notify(o->notify, o->notify_arg, "network-unlock", o->pid);
		if (r && !ret)
			ret = r;
	}
	return ret;
}
