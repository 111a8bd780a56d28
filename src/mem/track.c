/* Incremental dumps without soft-dirty: write tracking with userfaultfd (WP_ASYNC) and
 * PAGEMAP_SCAN, parent images, the keeper process.
 *
 * Arming (pre-dump, tree frozen): the task creates a userfaultfd (a remote call: a
 * userfaultfd belongs to the mm of the process that creates it), stasis takes a
 * duplicate (pidfd_getfd) and closes the task's fd again, so nothing stays in the task's
 * fd table. Every ioctl of a userfaultfd acts on the mm it was created for, whoever
 * calls it: stasis negotiates UFFD_FEATURE_WP_ASYNC, registers every private area with
 * UFFDIO_REGISTER_MODE_WP and write-protects it (UFFDIO_WRITEPROTECT). With WP_ASYNC a
 * write to a protected page is resolved by the kernel itself (the uffd-wp bit of the
 * PTE is dropped, no message, no reader needed); PAGEMAP_SCAN reports such pages as
 * PAGE_IS_WRITTEN. A page faulted in after the arming has no uffd-wp bit: written too.
 *
 * The registration lives as long as the userfaultfd file: its last close unregisters
 * every area and clears every uffd-wp bit (fs/userfaultfd.c, userfaultfd_release). Hence
 * the *keeper*: a small process forked by stasis at the end of a pre-dump that holds the
 * userfaultfds (fds 3...) and does nothing but wait for the tracked processes to exit
 * (pidfds). Its pid and start time are in the inventory, each process's fd in its Mm
 * (track_fd). The next pass takes the userfaultfds from it (pidfd_getfd), a successful
 * pre-dump hands them to a new keeper and kills the old one, a final dump (or any failed
 * pass) kills it: tracking disarmed, every area back to what it was.
 *
 * A pass with a parent image: tracking is unbroken since the parent iff the parent's
 * keeper is alive (pid, start time, name). Pages written since (PAGEMAP_SCAN
 * PAGE_IS_WRITTEN; a pre-dump re-protects them in the same call: PM_SCAN_WP_MATCHING),
 * areas not tracked (new ones, shared ones, a process new in the tree, a dead keeper) and
 * pages the parent does not hold are stored; every other present page refers to the
 * parent image's data at the same address (PageRun.parent_depth: where it really lies,
 * one or more links up). A pass that fails after re-protecting kills the keeper: the
 * writes it re-protected would be lost to the next pass, which now copies everything. */
#include "mem/internal.h"

#include <fcntl.h>
#include <limits.h>
#include <linux/userfaultfd.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>
#include <xxhash.h>

#include "core/log.h"
#include "core/util.h"
#include "sys/kerndat.h"
#include "proc/parse.h"
#include "sys/syscalls.h"
#include "sys/uapi.h"

#define KEEPER_COMM "stasis-track"
#define ID_LEN 16

struct mem_track {
	const struct dump_opts *o;
	int prev_dfd;        /* the parent image directory, or -1 */
	Inventory *prev_inv; /* its inventory */
	int keeper_pidfd;    /* the parent's keeper, alive when the pass began, or -1 */
	int new_keeper_pidfd;
	pid_t new_keeper;
	uint64_t new_keeper_start;
	bool rearmed; /* write-protection was changed: a failure must disarm */
	uint8_t id[ID_LEN];
};

struct track_proc {
	Mm *pmm;      /* the process's Mm in the parent image, or NULL */
	bool tracked; /* its areas are tracked since the parent pass */
	int uffd;     /* stasis's duplicate of its userfaultfd, or -1 */
};

/* ------------------------------------------------------------------ chain */

/* CRIU's rule: a relative PREV is relative to DIR. Lexically: DIR may not exist yet. */
static char *prev_path(const char *dir, const char *prev)
{
	if (prev[0] == '/')
		return strdup(prev);
	char *p = malloc(strlen(dir) + strlen(prev) + 2);
	if (!p)
		return NULL;
	strcpy(p, dir);
	size_t n = strlen(p);
	while (n > 1 && p[n - 1] == '/')
		p[--n] = 0;
	for (const char *s = prev; *s;) {
		size_t l = strcspn(s, "/");
		if (l == 2 && !strncmp(s, "..", 2) && n && strcmp(p, ".") && strcmp(p, "/")) {
			char *slash = strrchr(p, '/');
			const char *last = slash ? slash + 1 : p;
			if (strcmp(last, "..")) {
				if (slash)
					*(slash == p ? slash + 1 : slash) = 0;
				else
					strcpy(p, ".");
				n = strlen(p);
				s += l + (s[l] == '/');
				continue;
			}
		}
		if (l && !(l == 1 && s[0] == '.')) {
			if (n && p[n - 1] != '/')
				p[n++] = '/';
			memcpy(p + n, s, l);
			n += l;
			p[n] = 0;
		}
		s += l + (s[l] == '/');
	}
	return p;
}

/* The start time of @pid (/proc/PID/stat), or 0. */
static uint64_t start_time_of(pid_t pid, char *comm, size_t comm_len)
{
	char path[64];
	snprintf(path, sizeof(path), "/proc/%d", pid);
	_cleanup_close_ int pfd = open(path, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (pfd < 0)
		return 0;
	_cleanup_free_ char *buf = read_file_at(pfd, "stat", 8192, NULL);
	struct proc_stat st;
	if (!buf || proc_parse_stat(buf, &st))
		return 0;
	if (comm)
		snprintf(comm, comm_len, "%s", st.comm);
	return st.start_time;
}

/* A pidfd of the keeper @pid started at @start, if it is still that keeper. */
static int keeper_open(pid_t pid, uint64_t start)
{
	char comm[32];
	if (pid <= 0)
		return -1;
	int fd = sys_pidfd_open(pid, 0);
	if (fd < 0)
		return -1;
	/* checked after the pidfd pins it: a reused pid shows another start time */
	if (start_time_of(pid, comm, sizeof(comm)) != start || strcmp(comm, KEEPER_COMM)) {
		close(fd);
		return -1;
	}
	return fd;
}

/* Kill a keeper and wait (bounded) until it is gone: its userfaultfds are released
 * (areas unregistered, uffd-wp bits cleared) before the tree is let go. */
static void keeper_kill(int *pidfd, bool wait)
{
	if (*pidfd < 0)
		return;
	if (sys_pidfd_send_signal(*pidfd, SIGKILL, NULL, 0) == 0 && wait) {
		struct pollfd p = { .fd = *pidfd, .events = POLLIN };
		if (poll(&p, 1, 5000) != 1)
			pr_warn("mem: the write-tracking keeper did not exit within 5 s");
	}
	close(*pidfd);
	*pidfd = -1;
}

bool mem_track_is_available(void)
{
	return kdat_has(KD_PAGEMAP_SCAN) && kdat_has(KD_UFFD_WP_ASYNC);
}

int mem_track_open(const struct dump_opts *o, struct mem_track **out)
{
	*out = NULL;
	if (!o->pre_dump && !o->prev_dir)
		return 0;
	if (!mem_track_is_available()) {
		pr_err("%s: write tracking needs PAGEMAP_SCAN and userfaultfd WP_ASYNC (Linux "
		       "6.7), which this kernel lacks",
		       o->pre_dump ? "pre-dump" : "dump --prev-images-dir");
		return -EOPNOTSUPP;
	}
	struct mem_track *t = calloc(1, sizeof(*t));
	if (!t)
		return -ENOMEM;
	t->o = o;
	t->prev_dfd = t->keeper_pidfd = t->new_keeper_pidfd = -1;
	*out = t;
	if (getrandom(t->id, sizeof(t->id), 0) != (ssize_t)sizeof(t->id))
		return pr_perror("dump: getrandom");
	if (!o->prev_dir)
		return 0;
	_cleanup_free_ char *path = prev_path(o->dir, o->prev_dir);
	if (!path)
		return -ENOMEM;
	t->prev_dfd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (t->prev_dfd < 0)
		return pr_perror("dump: parent images %s (--prev-images-dir %s)", path, o->prev_dir);
	struct stat a, b;
	if (fstat(t->prev_dfd, &a) == 0 && stat(o->dir, &b) == 0 && a.st_dev == b.st_dev &&
	    a.st_ino == b.st_ino) {
		pr_err("dump: --prev-images-dir %s is the image directory itself", o->prev_dir);
		return -EINVAL;
	}
	t->prev_inv = img_read_msg(t->prev_dfd, IMG_INVENTORY, 0);
	if (!t->prev_inv) {
		pr_err("dump: parent images %s: no readable inventory", path);
		return -errno ?: -EINVAL;
	}
	const Inventory *pi = t->prev_inv;
	if (pi->img_version != IMG_VERSION || !pi->has_image_id || pi->image_id.len != ID_LEN) {
		pr_err("dump: parent images %s were not made by stasis pre-dump (no image id)",
		       path);
		return -EINVAL;
	}
	if (pi->root_pid != o->pid) {
		pr_err("dump: parent images %s are of pid %d, not of pid %d", path, pi->root_pid,
		       o->pid);
		return -EINVAL;
	}
	if (pi->has_keeper_pid)
		t->keeper_pidfd = keeper_open(pi->keeper_pid, pi->keeper_start);
	if (t->keeper_pidfd < 0)
		pr_warn("dump: the write tracking of parent images %s is gone (its keeper exited, "
			"or another pass followed it): every page is stored again",
			path);
	return 0;
}

int mem_track_link(struct mem_track *t, struct img_dir *d)
{
	if (!t || t->prev_dfd < 0)
		return 0;
	if (symlinkat(t->o->prev_dir, d->dfd, IMG_PARENT_LINK) < 0)
		return pr_perror("dump: symlink %s -> %s", IMG_PARENT_LINK, t->o->prev_dir);
	return 0;
}

void mem_track_inventory(struct mem_track *t, Inventory *inv)
{
	if (!t)
		return;
	inv->has_image_id = true;
	inv->image_id = (ProtobufCBinaryData){ ID_LEN, t->id };
	if (t->prev_inv) {
		inv->has_parent_id = true;
		inv->parent_id = t->prev_inv->image_id;
	}
	inv->has_pre_dump = inv->pre_dump = t->o->pre_dump;
	if (t->new_keeper > 0) {
		inv->has_keeper_pid = inv->has_keeper_start = true;
		inv->keeper_pid = t->new_keeper;
		inv->keeper_start = t->new_keeper_start;
	}
}

/* The pass is over: @ok, it is durable. The parent's keeper goes (a pre-dump's new
 * keeper took over its userfaultfds; a final dump disarms). On failure the new keeper
 * goes too, and the old one whenever protections were changed. */
void mem_track_close(struct mem_track *t, bool ok)
{
	if (!t)
		return;
	if (!ok)
		keeper_kill(&t->new_keeper_pidfd, true);
	/* after a successful pre-dump the new keeper holds the same files: nothing changes
	 * when the old one is gone, no need to wait for it */
	if (ok || t->rearmed || !t->o->pre_dump)
		keeper_kill(&t->keeper_pidfd, !(ok && t->o->pre_dump));
	if (t->keeper_pidfd >= 0)
		close(t->keeper_pidfd);
	if (t->new_keeper_pidfd >= 0)
		close(t->new_keeper_pidfd);
	if (t->prev_dfd >= 0)
		close(t->prev_dfd);
	if (t->prev_inv)
		inventory__free_unpacked(t->prev_inv, NULL);
	free(t);
}

/* ------------------------------------------------------------------ per process */

void mem_track_proc_free(struct track_proc *p)
{
	if (!p)
		return;
	if (p->pmm)
		mm__free_unpacked(p->pmm, NULL);
	if (p->uffd >= 0)
		close(p->uffd);
	free(p);
}

bool mem_track_allows_uffd(const struct dump_ctx *c)
{
	return c->mem && c->mem->trk && c->mem->trk->tracked;
}

/* Is @pid a process of the parent images? */
static bool prev_listed(const struct mem_track *t, pid_t pid)
{
	for (size_t i = 0; i < t->prev_inv->n_pids; i++)
		if (t->prev_inv->pids[i] == pid)
			return true;
	return false;
}

/* Before the areas are read: the parent image's Mm of this process (the same process:
 * its start time) and whether its tracking is unbroken since. */
int mem_track_proc(struct dump_ctx *c)
{
	struct mem_track *t = c->track;
	struct track_proc *p = calloc(1, sizeof(*p));
	if (!p)
		return -ENOMEM;
	p->uffd = -1;
	c->mem->trk = p;
	if (t->prev_dfd < 0)
		return 0;
	if (!prev_listed(t, c->pid))
		return 0; /* new in the tree: stored in full */
	p->pmm = c->prev_mm ? c->prev_mm : img_read_msg(t->prev_dfd, IMG_MM, c->pid);
	c->prev_mm = NULL;
	if (!p->pmm) {
		pr_err("dump: parent images: no readable mm image of pid %d", c->pid);
		return -errno ?: -EINVAL;
	}
	if (!p->pmm->has_start_time || p->pmm->start_time != c->stat.start_time) {
		pr_info("mem: pid %d of the parent images is another process: stored in full",
			c->pid);
		mm__free_unpacked(p->pmm, NULL);
		p->pmm = NULL;
		return 0;
	}
	if (t->keeper_pidfd >= 0 && p->pmm->has_track_fd) {
		p->uffd = sys_pidfd_getfd(t->keeper_pidfd, p->pmm->track_fd, 0);
		if (p->uffd < 0)
			return pr_perror("mem: take the write-tracking userfaultfd of pid %d from its "
					 "keeper",
					 c->pid);
		p->tracked = true;
	}
	return 0;
}

/* Private anonymous areas (heap, stack, anonymous mappings). Not private file mappings:
 * write-protecting a file-backed area puts a uffd-wp PTE marker in every empty PTE of
 * its page tables (mm/mprotect.c: file-backed uffd-wp always uses markers), and
 * PAGEMAP_SCAN reports a marker as PAGE_IS_SWAPPED and not PAGE_IS_FILE: the page scan
 * would take every never-touched page of a library for a swapped-out anonymous one.
 * Their written (anonymous) pages are stored at every pass instead. Not shared memory:
 * its pages are stored at every pass. Not areas that cannot be written (a malloc arena's
 * PROT_NONE reserve): write-protecting one makes the next pass's page scan report its
 * never-touched pages as present (seen on 6.x: a 64 MiB reserve of a Python thread's
 * arena stored as 64 MiB of pages); they hold few pages, stored at every pass. */
static bool vma_trackable(const Vma *v)
{
	/* (nor areas with guard regions: write-protecting an area puts the uffd-wp bit on
	 * every swap-like entry, a guard region's marker too; nor sealed ones: a registration
	 * outlives a seal, seen with lazy restore) */
	return !(v->flags & MAP_SHARED) && (v->prot & PROT_WRITE) && !v->has_huge_kb &&
	       !v->guard_flag && !v->n_guards && !v->sealed &&
	       (v->kind == VMA_KIND__VMA_ANON || v->kind == VMA_KIND__VMA_HEAP ||
		v->kind == VMA_KIND__VMA_STACK);
}

int mem_task_uffd(struct rsys *rs, pid_t pid, int pidfd, int flags, bool quiet, int *out)
{
	long fd, r;
	int ret = rsys_call(rs, SYS_userfaultfd, O_CLOEXEC | O_NONBLOCK | (unsigned)flags, 0, 0, 0,
			    0, 0, &fd);
	if (ret)
		return ret;
	if (fd < 0 && quiet)
		return 1;
	if (fd < 0) {
		pr_err("mem: userfaultfd() in pid %d: %s%s", pid, strerror((int)-fd),
		       fd == -EPERM && !(flags & UFFD_USER_MODE_ONLY)
			       ? " (faults in kernel mode need CAP_SYS_PTRACE in the initial user "
				 "namespace)"
			       : "");
		return (int)fd;
	}
	*out = sys_pidfd_getfd(pidfd, (int)fd, 0);
	int e = errno;
	ret = rsys_call(rs, SYS_close, (uint64_t)fd, 0, 0, 0, 0, 0, &r);
	if (*out < 0) {
		if (!quiet)
			pr_err("mem: pidfd_getfd of pid %d's userfaultfd: %s", pid, strerror(e));
		return ret ?: quiet ? 1 : -e;
	}
	return ret;
}

/* The task creates its userfaultfd; stasis keeps a duplicate, the task's fd is closed. */
static int uffd_create(struct dump_ctx *c, int *out)
{
	int ret = mem_task_uffd(&c->rs, c->pid, c->pidfd, UFFD_USER_MODE_ONLY, false, out);
	if (ret)
		return ret;
	struct uffdio_api api = { .api = UFFD_API, .features = UFFD_FEATURE_WP_ASYNC };
	if (ioctl(*out, UFFDIO_API, &api) < 0)
		return pr_perror("mem: UFFDIO_API (WP_ASYNC) for pid %d", c->pid);
	return 0;
}

/* Pre-dump: every trackable area not tracked yet is registered and write-protected (its
 * VmFlags then show uw: noted for the layout the next pass compares with). */
static int arm_vmas(struct dump_ctx *c, const Mm *mm)
{
	struct track_proc *p = c->mem->trk;
	int ret;
	for (size_t i = 0; i < mm->n_vmas; i++) {
		const Vma *v = mm->vmas[i];
		if (!vma_trackable(v) || (c->vmas[i].vmflags & VMF_UW))
			continue;
		if (p->uffd < 0 && (ret = uffd_create(c, &p->uffd)))
			return ret;
		c->track->rearmed = true;
		struct uffdio_register reg = {
			.range = { .start = v->start, .len = v->end - v->start },
			.mode = UFFDIO_REGISTER_MODE_WP,
		};
		if (ioctl(p->uffd, UFFDIO_REGISTER, &reg) < 0) {
			/* not trackable: stored in full at every pass */
			pr_info("mem: pid %d: area %llx-%llx not write-tracked: %s", c->pid,
				(unsigned long long)v->start, (unsigned long long)v->end,
				strerror(errno));
			continue;
		}
		struct uffdio_writeprotect wp = {
			.range = reg.range,
			.mode = UFFDIO_WRITEPROTECT_MODE_WP,
		};
		if (ioctl(p->uffd, UFFDIO_WRITEPROTECT, &wp) < 0)
			return pr_perror("mem: write-protect %llx-%llx of pid %d",
					 (unsigned long long)v->start, (unsigned long long)v->end,
					 c->pid);
		c->vmas[i].vmflags |= VMF_UW;
	}
	return 0;
}

/* ------------------------------------------------------------------ the layout */

/* XXH3 of the areas @v (maps fields), those inside [@lo, @hi) left out (none when
 * @hi is 0). */
static uint64_t layout_hash(const struct proc_vma *v, size_t n, uint64_t lo, uint64_t hi)
{
	XXH3_state_t *st = XXH3_createState();
	if (!st)
		return 0;
	XXH3_64bits_reset(st);
	for (size_t i = 0; i < n; i++) {
		if (v[i].start >= lo && v[i].end <= hi)
			continue;
		const uint64_t f[8] = { v[i].start, v[i].end, v[i].pgoff, v[i].ino, v[i].prot,
					v[i].shared, v[i].dev_major, v[i].dev_minor };
		XXH3_64bits_update(st, f, sizeof(f));
		const char *p = v[i].path ? v[i].path : "";
		XXH3_64bits_update(st, p, strlen(p) + 1);
	}
	uint64_t h = XXH3_64bits_digest(st);
	XXH3_freeState(st);
	return h;
}

/* End of a pre-dump's scan (still frozen, tracking armed): the areas as they are now and
 * their flags, in the image for the next pass. Without them the next pass reads smaps. */
static int record_layout(struct dump_ctx *c)
{
	struct proc_vma *v = NULL;
	size_t n = 0, k = 0, na = 0;
	if (mem_read_maps(c->procfd, &v, &n))
		return 0;
	const uint64_t lo = c->rs.map, hi = c->rs.map + c->rs.map_len;
	AreaFlags **a = calloc(n, sizeof(*a));
	int ret = a ? 0 : -ENOMEM;
	for (size_t i = 0; i < n && !ret; i++) {
		if (v[i].start >= lo && v[i].end <= hi)
			continue;
		while (k < c->nr_vmas && c->vmas[k].end <= v[i].start)
			k++;
		if (k == c->nr_vmas || c->vmas[k].start > v[i].start)
			goto out; /* an area the pass did not see: no layout */
		if (!(a[na] = calloc(1, sizeof(**a)))) {
			ret = -ENOMEM;
			break;
		}
		area_flags__init(a[na]);
		a[na]->start = v[i].start;
		a[na]->end = v[i].end;
		a[na]->vmflags = c->vmas[k].vmflags;
		a[na++]->page_kb = c->vmas[k].page_kb;
	}
	if (!ret) {
		c->mm->layout = a;
		c->mm->n_layout = na;
		c->mm->has_layout_xxh = true;
		c->mm->layout_xxh = layout_hash(v, n, lo, hi);
		a = NULL;
	}
out:
	for (size_t i = 0; a && i < na; i++)
		free(a[i]);
	free(a);
	proc_vmas_free(v, n);
	return ret;
}

bool mem_track_layout(struct dump_ctx *c)
{
	struct mem_track *t = c->track;
	if (!c->opts->pre_dump || t->prev_dfd < 0 || t->keeper_pidfd < 0 ||
	    !prev_listed(t, c->pid))
		return false;
	Mm *pm = img_read_msg(t->prev_dfd, IMG_MM, c->pid);
	if (!pm)
		return false; /* (mem_track_proc says why) */
	c->prev_mm = pm; /* for mem_track_proc */
	struct proc_vma *v = NULL;
	size_t n = 0;
	if (!pm->has_start_time || pm->start_time != c->stat.start_time || !pm->has_track_fd ||
	    !pm->has_layout_xxh || !pm->n_layout || mem_read_maps(c->procfd, &v, &n))
		return false;
	bool same = n == pm->n_layout && layout_hash(v, n, 0, 0) == pm->layout_xxh;
	for (size_t i = 0; i < n && same; i++) {
		const AreaFlags *a = pm->layout[i];
		same = a->start == v[i].start && a->end == v[i].end;
		v[i].vmflags = a->vmflags;
		v[i].page_kb = a->page_kb;
	}
	if (!same) {
		proc_vmas_free(v, n);
		return false;
	}
	c->vmas = v;
	c->nr_vmas = n;
	pr_info("mem: pid %d: %zu areas as the parent pass left them: their flags from there, "
		"smaps not read", c->pid, n);
	return true;
}

/* ------------------------------------------------------------------ which pages */

struct span {
	uint64_t s, e;
};
struct span_list {
	struct span *v;
	size_t n, cap;
};

static int span_add(struct span_list *l, uint64_t s, uint64_t e)
{
	if (l->n && l->v[l->n - 1].e == s) {
		l->v[l->n - 1].e = e;
		return 0;
	}
	if (l->n == l->cap) {
		size_t nc = l->cap ? l->cap * 2 : 256;
		struct span *n = realloc(l->v, nc * sizeof(*n));
		if (!n)
			return -ENOMEM;
		l->v = n;
		l->cap = nc;
	}
	l->v[l->n++] = (struct span){ s, e };
	return 0;
}

static int span_add_one(void *arg, const struct page_region *r)
{
	return span_add(arg, r->start, r->end);
}

/* Pages of @v written since the last pass (re-protected by a pre-dump). */
static int scan_written(int pmfd, const Vma *v, bool rearm, struct span_list *w,
			struct page_region *vec, size_t vec_len)
{
	struct pm_scan_arg a = {
		.size = sizeof(a),
		.flags = rearm ? PM_SCAN_WP_MATCHING | PM_SCAN_CHECK_WPASYNC : 0,
		.start = v->start,
		.end = v->end,
		.vec = (uint64_t)(uintptr_t)vec,
		.vec_len = vec_len,
		.category_mask = PAGE_IS_WRITTEN,
		.return_mask = PAGE_IS_WRITTEN,
	};
	return mem_pm_scan(pmfd, &a, " (written)", span_add_one, w);
}

static int emit(struct run_list *all, struct run_list *own, uint64_t va, uint64_t end,
		const PageRun *pr, bool merge)
{
	uint32_t depth = pr ? (pr->has_parent_depth ? pr->parent_depth : 0) + 1 : 0;
	uint64_t off = pr ? pr->offset + (va - pr->vaddr) : 0;
	PageRun *last = all->nr ? all->runs[all->nr - 1] : NULL;
	if (merge && last && last->vaddr + last->nr_pages * PAGE_SIZE == va &&
	    last->parent_depth == depth &&
	    (!depth || last->offset + last->nr_pages * PAGE_SIZE == off)) {
		last->nr_pages += (end - va) / PAGE_SIZE;
		return 0;
	}
	PageRun *r = calloc(1, sizeof(*r));
	if (!r)
		return -ENOMEM;
	page_run__init(r);
	r->vaddr = va;
	r->nr_pages = (end - va) / PAGE_SIZE;
	if (depth) {
		r->has_parent_depth = true;
		r->parent_depth = depth;
		r->offset = off;
	}
	int ret = mem_run_push(all, r);
	if (ret) {
		free(r);
		return ret;
	}
	return depth ? 0 : mem_run_push(own, r);
}

/* After the scan: which present pages this pass stores (@own, also in @all) and which
 * refer to the parent image (@all only). @in's runs are freed. */
static int split_runs(struct dump_ctx *c, const struct span_list *w, struct run_list *in,
		      struct run_list *own, struct run_list *all)
{
	const Mm *pm = c->mem->trk->pmm;
	size_t wi = 0;
	uint64_t stored = 0, referred = 0;
	for (size_t i = 0; i < in->nr; i++) {
		const PageRun *r = in->runs[i];
		uint64_t pos = r->vaddr, b = r->vaddr + r->nr_pages * PAGE_SIZE;
		bool merge = false; /* runs never cross the input runs (one area each) */
		while (pos < b) {
			while (wi < w->n && w->v[wi].e <= pos)
				wi++;
			uint64_t end;
			const PageRun *pr = NULL;
			if (wi < w->n && w->v[wi].s <= pos) {
				end = MIN(b, w->v[wi].e);
			} else {
				uint64_t lim = wi < w->n ? MIN(b, w->v[wi].s) : b, next;
				pr = mem_run_at(pm, pos, NULL, &next);
				if (pr && (pr->has_src_pid ||
					   (pr->has_parent_depth && pr->parent_depth >= MEM_MAX_CHAIN))) {
					end = MIN(lim, pr->vaddr + pr->nr_pages * PAGE_SIZE);
					pr = NULL;
				} else {
					end = MIN(lim, pr ? pr->vaddr + pr->nr_pages * PAGE_SIZE : next);
				}
			}
			int ret = emit(all, own, pos, end, pr, merge);
			if (ret)
				return ret;
			*(pr ? &referred : &stored) += end - pos;
			merge = true;
			pos = end;
		}
	}
	for (size_t i = 0; i < in->nr; i++)
		free(in->runs[i]);
	in->nr = 0;
	pr_info("mem: pid %d: %llu bytes written since the parent pass or new, %llu bytes "
		"referred to the parent images",
		c->pid, (unsigned long long)stored, (unsigned long long)referred);
	return 0;
}

/* The incremental part of the page scan (mem_dump), after the present pages were found
 * (@in): arm or re-arm the tracking (pre-dump), find the written pages, split. */
int mem_track_scan(struct dump_ctx *c, int pmfd, struct run_list *in, struct run_list *own,
		   struct run_list *all)
{
	struct track_proc *p = c->mem->trk;
	const Mm *mm = c->mm;
	struct span_list w = { 0 };
	const size_t vec_len = 4096;
	_cleanup_free_ struct page_region *vec = calloc(vec_len, sizeof(*vec));
	int ret = 0;

	if (!vec)
		return -ENOMEM;
	c->mm->has_start_time = true;
	c->mm->start_time = c->stat.start_time;
	for (size_t i = 0; i < mm->n_vmas && !ret; i++) {
		const Vma *v = mm->vmas[i];
		if (p->tracked && vma_trackable(v) && (c->vmas[i].vmflags & VMF_UW)) {
			if (c->opts->pre_dump)
				c->track->rearmed = true;
			ret = scan_written(pmfd, v, c->opts->pre_dump, &w, vec, vec_len);
		} else {
			ret = span_add(&w, v->start, v->end); /* not tracked: all of it */
		}
	}
	if (!ret && c->opts->pre_dump)
		ret = arm_vmas(c, mm);
	if (!ret && c->opts->pre_dump)
		ret = record_layout(c);
	if (!ret)
		ret = split_runs(c, &w, in, own, all);
	free(w.v);
	return ret;
}

/* ------------------------------------------------------------------ the keeper */

static void keeper_main(int n, int wfd)
{
	/* fds 3..3+n-1: the userfaultfds; 3+n..3+2n-1: pidfds of the tracked processes */
	prctl(PR_SET_NAME, KEEPER_COMM);
	pid_t me = getpid();
	if (write(wfd, &me, sizeof(me)) != (ssize_t)sizeof(me))
		_exit(1);
	close(wfd);
	int left = n;
	struct pollfd *p = calloc((size_t)n, sizeof(*p));
	if (!p)
		_exit(1);
	for (int i = 0; i < n; i++)
		p[i] = (struct pollfd){ .fd = 3 + n + i, .events = POLLIN };
	while (left > 0) {
		if (poll(p, (nfds_t)n, -1) < 0)
			continue;
		for (int i = 0; i < n; i++)
			if (p[i].fd >= 0 && p[i].revents) {
				close(p[i].fd);
				close(3 + i); /* that process is gone: its userfaultfd too */
				p[i].fd = -1;
				left--;
			}
	}
	_exit(0);
}

/* Pre-dump, everything read and copied: a new keeper takes every process's userfaultfd
 * (Mm.track_fd: its fd there). Before the images are written: they name it. */
int mem_track_keep(struct mem_track *t, struct dump_ctx **procs, size_t nr)
{
	if (!t || !t->o->pre_dump)
		return 0;
	_cleanup_free_ int *fds = calloc(2 * nr + 1, sizeof(int));
	if (!fds)
		return -ENOMEM;
	int n = 0;
	for (size_t i = 0; i < nr; i++) {
		struct track_proc *p = procs[i]->mem ? procs[i]->mem->trk : NULL;
		if (!p || p->uffd < 0)
			continue;
		procs[i]->mm->has_track_fd = true;
		procs[i]->mm->track_fd = 3 + n;
		fds[n] = p->uffd;
		fds[nr + (size_t)n] = procs[i]->pidfd;
		n++;
	}
	if (!n)
		return 0;
	int pfd[2];
	if (pipe2(pfd, O_CLOEXEC) < 0)
		return pr_perror("mem: pipe");
	fflush(NULL);
	pid_t child = fork();
	if (child < 0) {
		close(pfd[0]);
		close(pfd[1]);
		return pr_perror("mem: fork the write-tracking keeper");
	}
	if (child == 0) {
		setsid();
		if (fork() != 0)
			_exit(0);
		/* fds: copies above the final places first (F_DUPFD never overwrites), then
		 * down to 3... */
		int base = 3 + 2 * n, *dups = malloc(2 * (size_t)n * sizeof(int));
		int wfd = fcntl(pfd[1], F_DUPFD, base);
		if (!dups)
			_exit(1);
		for (int i = 0; i < n; i++) {
			dups[i] = fcntl(fds[i], F_DUPFD, base);
			dups[n + i] = fcntl(fds[nr + (size_t)i], F_DUPFD, base);
			if (dups[i] < 0 || dups[n + i] < 0 || wfd < 0)
				_exit(1);
		}
		for (int i = 0; i < 2 * n; i++)
			if (dup2(dups[i], 3 + i) < 0)
				_exit(1);
		int nul = open("/dev/null", O_RDWR);
		if (nul < 0 || dup2(nul, 0) < 0 || dup2(nul, 1) < 0 || dup2(nul, 2) < 0)
			_exit(1);
		if (wfd > base)
			syscall(SYS_close_range, (unsigned)base, (unsigned)(wfd - 1), 0);
		syscall(SYS_close_range, (unsigned)(wfd + 1), ~0u, 0);
		sigset_t all;
		sigemptyset(&all);
		sigprocmask(SIG_SETMASK, &all, NULL);
		signal(SIGPIPE, SIG_IGN);
		keeper_main(n, wfd);
	}
	close(pfd[1]);
	int st;
	waitpid(child, &st, 0);
	pid_t k = -1;
	ssize_t r = read(pfd[0], &k, sizeof(k));
	close(pfd[0]);
	if (r != (ssize_t)sizeof(k) || k <= 0) {
		pr_err("mem: the write-tracking keeper did not start");
		return -EIO;
	}
	t->new_keeper = k;
	t->new_keeper_start = start_time_of(k, NULL, 0);
	t->new_keeper_pidfd = sys_pidfd_open(k, 0);
	if (t->new_keeper_pidfd < 0 || !t->new_keeper_start)
		return pr_perror("mem: pidfd of the write-tracking keeper %d", k);
	pr_info("mem: write tracking of %d processes held by keeper pid %d", n, k);
	return 0;
}
