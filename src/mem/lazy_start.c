/* Lazy restore, stasis's side (`restore --lazy-pages`; the page server: lazy.c): which
 * runs are lazy, the server forked, each process's userfaultfd made, registered and
 * handed over, "done" once the tree runs, or the server killed and its reason logged. */
#include "mem/internal.h"
#include "mem/lazy_int.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/log.h"
#include "core/util.h"
#include "sys/syscalls.h"

/* ------------------------------------------------------------------ which pages */

static bool run_own(const PageRun *r)
{
	return !r->has_src_pid && !r->has_parent_depth;
}

/* Served by the page server when in a lazy area: not a run stored once for a parent
 * process (copy-on-write: filled at once, so that the sharing is made again). */
static bool run_lazy(const PageRun *r)
{
	return !r->has_src_pid;
}

/* lazy[i]: run i is served by the page server; vreg[k]: area k is registered. The runs
 * holding the arguments and the environment are not: other processes read them
 * (/proc/PID/cmdline, environ: ps) through a remote access that a userfaultfd cannot
 * make wait, which would read nothing. */
void mem_lazy_plan(const Mm *mm, bool *lazy, bool *vreg)
{
	uint64_t args_lo = MIN(mm->arg_start, mm->env_start);
	uint64_t args_hi = MAX(mm->arg_end, mm->env_end);
	size_t vi = 0;
	for (size_t i = 0; i < mm->n_pages; i++) {
		const PageRun *r = mm->pages[i];
		while (vi < mm->n_vmas && mm->vmas[vi]->end <= r->vaddr)
			vi++;
		bool args = r->vaddr < args_hi && r->vaddr + r->nr_pages * PAGE_SIZE > args_lo;
		/* (not a sealed area: its registration could not be dropped once it is sealed,
		 * at the end of the process's memory stage) */
		lazy[i] = vi < mm->n_vmas && run_lazy(r) && mem_vma_uffd(mm->vmas[vi]) &&
			  !mm->vmas[vi]->sealed && !args;
		if (lazy[i] && vreg)
			vreg[vi] = true;
	}
}

/* ------------------------------------------------------------------ stasis */

int mem_lazy_start(struct rst_ctx *const *procs, size_t n, struct mem_lazy **out)
{
	*out = NULL;
	/* the restored tasks get the restorer's rights to create their userfaultfd */
	int probe = (int)syscall(SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK);
	if (probe < 0) {
		int e = errno;
		if (e == EPERM)
			pr_err("restore --lazy-pages: userfaultfd for faults in kernel mode needs "
			       "CAP_SYS_PTRACE or vm.unprivileged_userfaultfd=1 (user-mode-only "
			       "faults would make the tree's syscalls fail): refused");
		else
			pr_err("restore --lazy-pages: userfaultfd: %s", strerror(e));
		return -e;
	}
	close(probe);
	/* the pages files mapped now (not populated): the server inherits the mappings */
	for (size_t i = 0; i < n; i++) {
		struct rst_ctx *c = procs[i];
		if (!c)
			continue;
		c->pages->no_populate = true;
		/* its own file, and every parent image's file it has runs in (the server
		 * keeps no fd: it could not open them) */
		bool own = false;
		for (size_t k = 0; k < c->mm->n_pages; k++) {
			const PageRun *r = c->mm->pages[k];
			if (!run_lazy(r) || (run_own(r) && own))
				continue;
			own |= run_own(r);
			if (!page_source_map(c->pages, r, 0, 0) && errno != EOPNOTSUPP)
				return -errno;
		}
	}
	struct mem_lazy *l = calloc(1, sizeof(*l));
	int sv[2];
	if (!l)
		return -ENOMEM;
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0) {
		free(l);
		return pr_perror("restore --lazy-pages: socketpair");
	}
	fflush(NULL);
	l->server = fork();
	if (l->server < 0) {
		int e = pr_perror("restore --lazy-pages: fork the page server");
		close(sv[0]);
		close(sv[1]);
		free(l);
		return e;
	}
	if (l->server == 0)
		lazy_server_main(procs, n, sv[1]);
	close(sv[1]);
	l->sock = sv[0];
	*out = l;
	return 0;
}

static int lazy_send(struct mem_lazy *l, const struct lazy_msg *m, const int *fds)
{
	char cbuf[CMSG_SPACE(2 * sizeof(int))];
	struct iovec iov = { (void *)m, sizeof(*m) };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1 };
	if (fds) {
		mh.msg_control = cbuf;
		mh.msg_controllen = sizeof(cbuf);
		struct cmsghdr *cm = CMSG_FIRSTHDR(&mh);
		cm->cmsg_level = SOL_SOCKET;
		cm->cmsg_type = SCM_RIGHTS;
		cm->cmsg_len = CMSG_LEN(2 * sizeof(int));
		memcpy(CMSG_DATA(cm), fds, 2 * sizeof(int));
	}
	if (sendmsg(l->sock, &mh, MSG_NOSIGNAL) != (ssize_t)sizeof(*m))
		return pr_perror("restore --lazy-pages: talk to the page server");
	return 0;
}

/* The task's userfaultfd (made by the task itself), taken by stasis. */
static int lazy_uffd(struct rst_ctx *c, int pidfd, int *out)
{
	int ret = mem_task_uffd(&c->rs, c->pid, pidfd, 0, false, out);
	if (ret)
		return ret;
	struct uffdio_api api = { .api = UFFD_API, .features = LAZY_EVENTS };
	if (ioctl(*out, UFFDIO_API, &api) < 0)
		return pr_perror("restore --lazy-pages: UFFDIO_API for pid %d", c->pid);
	return 0;
}

int mem_lazy_fill(struct rst_ctx *c, struct mem_lazy *l)
{
	Mm *mm = c->mm;
	_cleanup_free_ bool *lazy = calloc(mm->n_pages + 1, sizeof(bool));
	_cleanup_free_ bool *vreg = calloc(mm->n_vmas + 1, sizeof(bool));
	if (!lazy || !vreg)
		return -ENOMEM;
	mem_lazy_plan(mm, lazy, vreg);
	/* the rest first: a write into a registered area would wait for the server */
	int ret = mem_fill_runs(c, lazy);
	if (ret)
		return ret;
	bool any = false;
	for (size_t i = 0; i < mm->n_vmas; i++)
		any |= vreg[i];
	if (!any)
		return 0;
	_cleanup_close_ int pidfd = sys_pidfd_open(c->pid, 0);
	_cleanup_close_ int uffd = -1;
	if (pidfd < 0)
		return pr_perror("restore --lazy-pages: pidfd of %d", c->pid);
	ret = lazy_uffd(c, pidfd, &uffd);
	for (size_t i = 0; i < mm->n_vmas && !ret; i++) {
		const Vma *v = mm->vmas[i];
		if (!vreg[i])
			continue;
		struct uffdio_register reg = {
			.range = { .start = v->start, .len = v->end - v->start },
			.mode = UFFDIO_REGISTER_MODE_MISSING,
		};
		if (ioctl(uffd, UFFDIO_REGISTER, &reg) < 0)
			ret = pr_perror("restore --lazy-pages: register area %llx-%llx of pid %d",
					(unsigned long long)v->start, (unsigned long long)v->end,
					c->pid);
	}
	if (ret)
		return ret;
	struct lazy_msg m = { MSG_ADD, c->pid };
	int fds[2] = { uffd, pidfd };
	return lazy_send(l, &m, fds);
}

/* Why the page server killed the tree before it ran, if it said so: logged as the
 * restore's last word, and the one stasis ends with on stderr. */
static void lazy_reason(struct mem_lazy *l)
{
	char msg[512];
	ssize_t n = recv(l->sock, msg, sizeof(msg) - 1, MSG_DONTWAIT);
	if (n > 0 && n != sizeof(struct lazy_msg)) {
		msg[n] = 0;
		log_reset_first_error(); /* the cause of the errors before it: what stasis says */
		pr_err("%.*s", (int)strcspn(msg, "\n"), msg);
	}
}

int mem_lazy_commit(struct mem_lazy *l)
{
	if (!l)
		return 0;
	struct lazy_msg m = { MSG_DONE, 0 };
	int ret = lazy_send(l, &m, NULL);
	if (ret) { /* (dead or dying) */
		kill(l->server, SIGKILL);
		waitpid(l->server, NULL, 0);
		lazy_reason(l);
	}
	close(l->sock);
	free(l);
	return ret;
}

void mem_lazy_abort(struct mem_lazy *l)
{
	if (!l)
		return;
	kill(l->server, SIGKILL);
	waitpid(l->server, NULL, 0);
	lazy_reason(l);
	close(l->sock);
	free(l);
}
