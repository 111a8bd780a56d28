/* Memory: the address space layout (VMAs), the mm fields, and which pages are stored.
 *
 * Dump: VMAs come from /proc/PID/smaps (read while the task is frozen). Which pages hold
 * data is asked of the kernel with one PAGEMAP_SCAN ioctl per batch of ranges: present or
 * swapped pages, minus the shared zero page, minus page-cache pages of private file
 * mappings (only their written, i.e. anonymous, pages are stored); they become the page
 * runs of the Mm image. Their contents are copied by src/mem/pages.c into a page sink.
 *
 * Restore: the child keeps only its vDSO cluster (moved to the dumped address) and a
 * scratch area; everything else is unmapped, the dumped VMAs are mapped at their exact
 * addresses with remote mmap, contents are copied from the page source into the task
 * (src/mem/pages.c: process_vm_writev, one copy, each run's checksum verified); then
 * protections, madvise flags and the mm fields (PR_SET_MM_MAP) are set. */
#include "cr/resource.h"
#include "mem/mem.h"

#include "mem/internal.h"

#include <fcntl.h>
#include <linux/prctl.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <xxhash.h>

#include "core/log.h"
#include "files/fd_ops.h"
#include "proc/fhpath.h"
#include "mem/pagexfer.h"
#include "sys/syscalls.h"
#include "sys/uapi.h"

/* VmFlags that no part of the restore rebuilds: an area with one is refused at dump. */
static const struct {
	uint32_t flag;
	const char *what;
} vmf_refused[] = {
	{ VMF_UW, "registered with userfaultfd (write-protect; if by stasis pre-dump, use "
		  "--prev-images-dir naming the last pre-dump)" },
	{ VMF_UM, "registered with userfaultfd (missing pages)" },
	{ VMF_UNKNOWN, "has a VmFlags code stasis does not know" },
};

/* The file of a MAP_PRIVATE file mapping may have been opened read-write (its
 * /proc/PID/map_files link's mode says how: S_IWUSR for FMODE_WRITE); reopened read-only
 * the mapping would show another file mode. The link needs CAP_CHECKPOINT_RESTORE in the
 * initial user namespace; without it the mode is taken from the mapping (read-only). */
static void private_file_mode(const struct dump_ctx *c, Vma *v)
{
	char name[64];
	struct stat st;
	if (v->kind != VMA_KIND__VMA_FILE || (v->flags & MAP_SHARED) || (v->has_deleted && v->deleted))
		return;
	snprintf(name, sizeof(name), "map_files/%llx-%llx", (unsigned long long)v->start,
		 (unsigned long long)v->end);
	if (fstatat(c->procfd, name, &st, AT_SYMLINK_NOFOLLOW) == 0 && (st.st_mode & S_IWUSR))
		v->file_writable = true;
	/* the file itself (through the link, which needs CAP_CHECKPOINT_RESTORE in the
	 * initial user namespace; else by its path, in the dumper's view or the task's, when
	 * that is the same inode): what its unwritten pages hold */
	char in_root[PATH_MAX + 16];
	snprintf(in_root, sizeof(in_root), "root%s", v->path);
	bool found = fstatat(c->procfd, name, &st, 0) == 0;
	if (!found)
		found = (stat(v->path, &st) == 0 || fstatat(c->procfd, in_root, &st, 0) == 0) &&
			st.st_ino == v->ino && st.st_dev == v->dev;
	if (found) {
		v->has_file_size = v->has_file_mtime_ns = true;
		v->file_size = (uint64_t)st.st_size;
		v->file_mtime_ns = (int64_t)st.st_mtim.tv_sec * 1000000000 + st.st_mtim.tv_nsec;
	}
}

/* A hugetlb area: its page size, and the anonymous ones classified here (0: done, 1:
 * classify it by its path like any other). */
static int vma_classify_huge(pid_t pid, const struct proc_vma *pv, Vma *v)
{
	const char *p = pv->path;
	uint64_t sz = (uint64_t)pv->page_kb << 10;
	if (!pv->page_kb || (sz & (sz - 1)) || sz < PAGE_SIZE || (pv->start | pv->end) & (sz - 1)) {
		pr_err("vma %llx-%llx of pid %d: hugetlb area with pages of %u KiB: not supported",
		       (unsigned long long)pv->start, (unsigned long long)pv->end, pid, pv->page_kb);
		return -EOPNOTSUPP;
	}
	v->has_huge_kb = true;
	v->huge_kb = pv->page_kb;
	if (p && !strcmp(p, "/anon_hugepage (deleted)")) {
		/* MAP_HUGETLB; a shared one is an object of the hugetlb fs, like shmem's */
		if (pv->shared) {
			v->has_shmid = v->has_pgoff = true;
			v->shmid = (uint32_t)pv->ino;
			v->pgoff = pv->pgoff;
		}
		return 0;
	}
	if (!p || p[0] != '/') {
		pr_err("vma %llx-%llx of pid %d: hugetlb area %s: not supported",
		       (unsigned long long)pv->start, (unsigned long long)pv->end, pid,
		       p ? p : "without a file");
		return -EOPNOTSUPP;
	}
	/* a SysV segment, a hugetlbfs file by path, or deleted (an MFD_HUGETLB memfd too) */
	return 1;
}

static int vma_classify(pid_t pid, const struct proc_vma *pv, Vma *v, bool tracked)
{
	const char *p = pv->path;

	v->start = pv->start;
	v->end = pv->end;
	v->prot = pv->prot;
	v->flags = pv->shared ? MAP_SHARED : MAP_PRIVATE;
	if (pv->vmflags & VMF_GD)
		v->flags |= MAP_GROWSDOWN;
	v->has_madv = true;
	v->madv = ((pv->vmflags & VMF_DC) ? MADV_BIT_DONTFORK : 0) |
		  ((pv->vmflags & VMF_DD) ? MADV_BIT_DONTDUMP : 0) |
		  ((pv->vmflags & VMF_HG) ? MADV_BIT_HUGEPAGE : 0) |
		  ((pv->vmflags & VMF_NH) ? MADV_BIT_NOHUGEPAGE : 0) |
		  ((pv->vmflags & VMF_WF) ? MADV_BIT_WIPEONFORK : 0) |
		  ((pv->vmflags & VMF_MG) ? MADV_BIT_MERGEABLE : 0) |
		  ((pv->vmflags & VMF_LO) ? MADV_BIT_LOCKED : 0) |
		  ((pv->vmflags & VMF_LF) ? MADV_BIT_LOCKONFAULT : 0) |
		  ((pv->vmflags & VMF_SR) ? MADV_BIT_SEQUENTIAL : 0) |
		  ((pv->vmflags & VMF_RR) ? MADV_BIT_RANDOM : 0) |
		  ((pv->vmflags & VMF_AC) && !pv->shared && !(pv->prot & PROT_WRITE)
			   ? MADV_BIT_ACCOUNT
			   : 0);
	if (pv->vmflags & VMF_NR)
		v->flags |= MAP_NORESERVE;
	for (size_t k = 0; k < ARRAY_SIZE(vmf_refused); k++)
		if ((pv->vmflags & vmf_refused[k].flag) && !(p && p[0] == '[') &&
		    !(tracked && vmf_refused[k].flag == VMF_UW)) {
			pr_err("vma %llx-%llx of pid %d %s: not supported yet",
			       (unsigned long long)pv->start, (unsigned long long)pv->end, pid,
			       vmf_refused[k].what);
			return -EOPNOTSUPP;
		}
	if ((pv->vmflags & (VMF_IO | VMF_PF)) && !(p && p[0] == '[')) {
		pr_err("vma %llx-%llx of pid %d is a device mapping: not supported yet",
		       (unsigned long long)pv->start, (unsigned long long)pv->end, pid);
		return -EOPNOTSUPP;
	}
	v->kind = VMA_KIND__VMA_ANON;
	if (pv->vmflags & VMF_HT) {
		int ret = vma_classify_huge(pid, pv, v);
		if (ret <= 0)
			return ret;
	}
	if (!p)
		return 0;
	if (!strcmp(p, "[heap]")) {
		v->kind = VMA_KIND__VMA_HEAP;
	} else if (!strcmp(p, "[stack]")) {
		v->kind = VMA_KIND__VMA_STACK;
	} else if (!strcmp(p, "[vdso]")) {
		v->kind = VMA_KIND__VMA_VDSO;
	} else if (!strcmp(p, "[vvar]")) {
		v->kind = VMA_KIND__VMA_VVAR;
	} else if (!strcmp(p, "[vvar_vclock]")) {
		v->kind = VMA_KIND__VMA_VVAR_VCLOCK;
	} else if (!strcmp(p, "[vsyscall]")) {
		v->kind = VMA_KIND__VMA_VSYSCALL;
	} else if (str_starts(p, "[anon:") || str_starts(p, "[anon_shmem:")) {
		const char *n = strchr(p, ':') + 1;
		v->name = strndup(n, strlen(n) - 1);
		if (!v->name)
			return -ENOMEM;
	} else if (pv->shared && str_starts(p, "/dev/zero")) {
		/* MAP_SHARED|MAP_ANONYMOUS: a shmem object shown as "/dev/zero (deleted)" */
		v->has_shmid = true;
		v->shmid = (uint32_t)pv->ino;
		v->has_pgoff = true;
		v->pgoff = pv->pgoff;
	} else if (!pv->shared && !strcmp(p, "/dev/zero")) {
		/* private mapping of /dev/zero is plain anonymous memory */
	} else if (!strcmp(p, "/secretmem (deleted)") && pv->shared) {
		v->kind = VMA_KIND__VMA_SECRET; /* read by the task itself: secret.c */
		v->has_pgoff = true;
		v->pgoff = pv->pgoff;
	} else if (!strcmp(p, "anon_inode:[io_uring]") && pv->shared) {
		/* a ring: made again with its io_uring (src/files/io_uring.c) */
		v->kind = VMA_KIND__VMA_IO_URING;
		v->has_pgoff = v->has_ino = true;
		v->pgoff = pv->pgoff;
		v->ino = pv->ino;
	} else if (!strcmp(p, "/[aio] (deleted)") && pv->shared) {
		v->kind = VMA_KIND__VMA_AIO; /* the ring's state is mem_aio_dump's */
	} else if (p[0] == '/' && str_starts(p, "/SYSV") && pv->shared) {
		/* the segment's id is its file's inode number; the rest is mem_sysv_dump's */
		v->kind = VMA_KIND__VMA_SYSV;
		v->has_shmid = v->has_pgoff = v->has_file_writable = true;
		v->shmid = (uint32_t)pv->ino;
		v->pgoff = pv->pgoff;
		v->file_writable = pv->vmflags & VMF_MW;
		if (pv->ino > INT32_MAX)
			return -EINVAL;
	} else if (p[0] == '/') {
		v->kind = VMA_KIND__VMA_FILE;
		if (str_ends(p, " (deleted)")) {
			/* unlinked file or memfd: carried in the image (mem_dump_ghosts) */
			v->has_deleted = v->deleted = true;
			v->path = strndup(p, strlen(p) - strlen(" (deleted)"));
			if (v->path && str_starts(v->path, "/memfd:"))
				v->memfd = strdup(v->path + strlen("/memfd:"));
		} else {
			v->path = strdup(p);
		}
		if (!v->path)
			return -ENOMEM;
		v->has_pgoff = v->has_dev = v->has_ino = true;
		v->pgoff = pv->pgoff;
		v->dev = makedev(pv->dev_major, pv->dev_minor);
		v->ino = pv->ino;
		v->has_file_writable = true;
		v->file_writable = pv->shared && (pv->vmflags & VMF_MW);
	} else {
		pr_err("vma %llx-%llx of pid %d is a special mapping %s: not supported yet",
		       (unsigned long long)pv->start, (unsigned long long)pv->end, pid, p);
		return -EOPNOTSUPP;
	}
	return 0;
}

static bool vma_is_special(const Vma *v)
{
	return v->kind == VMA_KIND__VMA_VDSO || v->kind == VMA_KIND__VMA_VVAR ||
	       v->kind == VMA_KIND__VMA_VVAR_VCLOCK || v->kind == VMA_KIND__VMA_VSYSCALL;
}

/* Which pages of @v hold data that the image must carry. */
static bool vma_wants_pages(const Vma *v)
{
	if (vma_is_special(v))
		return false;
	if (v->kind == VMA_KIND__VMA_FILE && (v->flags & MAP_SHARED))
		return false; /* the file holds the data */
	if (v->kind == VMA_KIND__VMA_SYSV)
		return false; /* the segment does (sysv.c) */
	if (v->kind == VMA_KIND__VMA_AIO)
		return false; /* its unreaped events are in the Vma (aio.c) */
	if (v->kind == VMA_KIND__VMA_SECRET)
		return false; /* read by the task itself (secret.c) */
	if (v->kind == VMA_KIND__VMA_IO_URING)
		return false; /* its io_uring's (src/files/io_uring.c) */
	return true;
}

/* Runs never cross a VMA boundary (restore checks each lies inside one VMA). */
int mem_run_add(struct run_list *l, uint64_t vma_start, uint64_t vaddr, uint64_t nr_pages)
{
	if (l->nr && l->runs[l->nr - 1]->vaddr >= vma_start &&
	    l->runs[l->nr - 1]->vaddr + l->runs[l->nr - 1]->nr_pages * PAGE_SIZE == vaddr) {
		l->runs[l->nr - 1]->nr_pages += nr_pages;
		return 0;
	}
	if (l->nr == l->cap) {
		size_t ncap = l->cap ? l->cap * 2 : 64;
		PageRun **n = realloc(l->runs, ncap * sizeof(*n));
		if (!n)
			return -ENOMEM;
		l->runs = n;
		l->cap = ncap;
	}
	PageRun *r = malloc(sizeof(*r));
	if (!r)
		return -ENOMEM;
	page_run__init(r);
	r->vaddr = vaddr;
	r->nr_pages = nr_pages;
	l->runs[l->nr++] = r;
	return 0;
}

static int dump_mm_fields(struct dump_ctx *c, Mm *mm)
{
	long brk = rsys_do(&c->rs, "mem: read brk", SYS_brk, 0, 0, 0, 0, 0, 0);
	if (brk < 0)
		return (int)brk;
	mm->start_code = c->stat.start_code;
	mm->end_code = c->stat.end_code;
	mm->start_data = c->stat.start_data;
	mm->end_data = c->stat.end_data;
	mm->start_brk = c->stat.start_brk;
	mm->brk = (uint64_t)brk;
	mm->start_stack = c->stat.start_stack;
	mm->arg_start = c->stat.arg_start;
	mm->arg_end = c->stat.arg_end;
	mm->env_start = c->stat.env_start;
	mm->env_end = c->stat.env_end;

	size_t len;
	_cleanup_free_ char *auxv = read_file_at(c->procfd, "auxv", 8192, &len);
	if (!auxv)
		return pr_perror("mem: read /proc/%d/auxv", c->pid);
	uint64_t words[512];
	int n = proc_parse_auxv(auxv, len, words, ARRAY_SIZE(words));
	if (n < 0) {
		pr_err("mem: malformed /proc/%d/auxv", c->pid);
		return n;
	}
	mm->auxv = malloc(sizeof(uint64_t) * (size_t)(n ? n : 1));
	if (!mm->auxv)
		return -ENOMEM;
	memcpy(mm->auxv, words, sizeof(uint64_t) * (size_t)n);
	mm->n_auxv = (size_t)n;

	char exe[PATH_MAX];
	ssize_t l = readlinkat(c->procfd, "exe", exe, sizeof(exe) - 1);
	if (l < 0)
		return pr_perror("mem: readlink /proc/%d/exe", c->pid);
	exe[l] = '\0';
	mm->exe_path = strdup(exe);
	if (!mm->exe_path)
		return -ENOMEM;
	struct stat st;
	_cleanup_close_ int efd = openat(c->procfd, "exe", O_PATH | O_CLOEXEC);
	int view = efd >= 0 && !fstat(efd, &st) ? path_view(c->procfd, exe, st.st_dev, st.st_ino)
						: -1;
	if (view < 0 && efd >= 0)
		view = mem_view_by_handle(c, efd, &mm->exe_path, &mm->has_exe_detached_at,
				      &mm->exe_detached_at);
	else if (view == 0)
		mem_view_name(c, &mm->exe_path, &mm->has_exe_detached_at, &mm->exe_detached_at);
	mm->has_exe_in_task_root = view >= 0;
	mm->exe_in_task_root = view == 1;
	return 0;
}


/* The description of @f that is the unlinked file or memfd (@dev, @ino), or NULL. */
static const FileDesc *ghost_desc(const Files *f, uint64_t dev, uint64_t ino)
{
	for (size_t i = 0; f && i < f->n_files; i++) {
		const FileDesc *d = f->files[i];
		if ((d->unlinked || d->memfd) && d->has_dev && d->has_ino && d->dev == dev &&
		    d->ino == ino)
			return d;
	}
	return NULL;
}

/* Contents of mapped files that have no name any more (unlinked, memfd), once per file:
 * none when the task also holds the file open (the files module carries them, and the
 * area maps the file restored for that fd), else read through /proc/PID/map_files (needs
 * CAP_CHECKPOINT_RESTORE or CAP_SYS_ADMIN) into the image's blob store (holes kept). */
/* Does an ancestor map deleted file @v the other way (@in_fd: held open by this process)?
 * Restored, the file of an fd is the files module's and a file mapped without one is made
 * from the image: they would be two files (restore refuses the case between cousins). */
static bool ghost_mixed(const struct dump_ctx *c, const Vma *v, bool in_fd)
{
	for (const struct dump_ctx *a = c->parent; a; a = a->parent)
		for (size_t i = 0; a->mm && i < a->mm->n_vmas; i++) {
			const Vma *u = a->mm->vmas[i];
			if (u->deleted && u->dev == v->dev && u->ino == v->ino &&
			    (u->ghost_in_fd ? !in_fd : in_fd && u->ghost))
				return true;
		}
	return false;
}

static int dump_mapped_ghosts(struct dump_ctx *c, Mm *mm)
{
	for (size_t i = 0; i < mm->n_vmas; i++) {
		Vma *v = mm->vmas[i];
		if (!v->has_deleted || !v->deleted)
			continue;
		bool seen = false;
		for (size_t j = 0; j < i && !seen; j++)
			seen = mm->vmas[j]->deleted && mm->vmas[j]->dev == v->dev &&
			       mm->vmas[j]->ino == v->ino;
		if (seen)
			continue;
		bool in_fd = ghost_desc(c->files, v->dev, v->ino) != NULL;
		if (ghost_mixed(c, v, in_fd)) {
			pr_err("pid %d maps deleted file %s, which an ancestor in the tree %s: one "
			       "held open and mapped without an fd elsewhere is not supported yet",
			       c->pid, v->path, in_fd ? "maps without holding it open" : "holds open");
			return -EOPNOTSUPP;
		}
		if (in_fd) {
			v->has_ghost_in_fd = v->ghost_in_fd = true;
			continue;
		}
		char name[64];
		snprintf(name, sizeof(name), "map_files/%llx-%llx", (unsigned long long)v->start,
			 (unsigned long long)v->end);
		_cleanup_close_ int fd = openat(c->procfd, name, O_RDONLY | O_CLOEXEC);
		struct stat st;
		if (fd < 0 || fstat(fd, &st) < 0)
			return pr_perror("mem: open %s of pid %d (deleted file %s)", name, c->pid,
					 v->path);
		if (!S_ISREG(st.st_mode)) {
			pr_err("vma %llx-%llx of pid %d maps deleted file %s, not a regular file: "
			       "not supported",
			       (unsigned long long)v->start, (unsigned long long)v->end, c->pid,
			       v->path);
			return -EOPNOTSUPP;
		}
		char what[PATH_MAX + 96];
		snprintf(what, sizeof(what), "deleted file %s mapped at %llx by pid %d", v->path,
			 (unsigned long long)v->start, c->pid);
		int ret = blob_put_file(c->img, fd, (uint64_t)st.st_size, what, &v->ghost);
		if (ret)
			return ret;
	}
	return 0;
}

int mem_dump(struct dump_ctx *c)
{
	struct run_list runs = { 0 }, all = { 0 };
	_cleanup_close_ int pmfd = -1;
	_cleanup_free_ struct page_region *vec = NULL;
	const size_t vec_len = 4096;
	int ret;

	Mm *mm = calloc(1, sizeof(*mm));
	if (!mm)
		return -ENOMEM;
	mm__init(mm);
	c->mm = mm;
	mm->vmas = calloc(c->nr_vmas ? c->nr_vmas : 1, sizeof(Vma *));
	if (!mm->vmas)
		return -ENOMEM;
	/* incremental: the parent image's view of this process, before the areas (ours
	 * are registered with userfaultfd) */
	struct mem_dump_state *ms = c->mem = calloc(1, sizeof(*c->mem));
	if (!ms)
		return -ENOMEM;
	if (c->track && (ret = mem_track_proc(c)))
		return ret;
	for (size_t i = 0; i < c->nr_vmas; i++) {
		Vma *v = calloc(1, sizeof(*v));
		if (!v)
			return -ENOMEM;
		vma__init(v);
		mm->vmas[mm->n_vmas++] = v;
		ret = vma_classify(c->pid, &c->vmas[i], v, mem_track_allows_uffd(c));
		v->has_guard_flag = v->guard_flag = (c->vmas[i].vmflags & VMF_GU) != 0; /* scan.c */
		/* (the kernel seals its own vDSO-like areas, at exec) */
		v->has_sealed = v->sealed = (c->vmas[i].vmflags & VMF_SL) && !vma_is_special(v);
		if (!ret && v->sealed && v->kind != VMA_KIND__VMA_ANON &&
		    v->kind != VMA_KIND__VMA_FILE && v->kind != VMA_KIND__VMA_HEAP &&
		    v->kind != VMA_KIND__VMA_STACK) {
			pr_err("vma %llx-%llx of pid %d is sealed (mseal) and not plain memory or "
			       "a file: not supported yet",
			       (unsigned long long)v->start, (unsigned long long)v->end, c->pid);
			ret = -EOPNOTSUPP;
		}
		if (!ret)
			private_file_mode(c, v);
		if (!ret && v->kind == VMA_KIND__VMA_SYSV)
			ret = mem_sysv_dump(c, v);
		if (!ret && v->kind == VMA_KIND__VMA_AIO)
			ret = mem_aio_dump(c, v);
		if (!ret && v->kind == VMA_KIND__VMA_SECRET)
			ret = mem_secret_dump(c, v);
		if (ret)
			return ret;
	}
	ret = dump_mm_fields(c, mm);
	if (!ret)
		ret = dump_mapped_ghosts(c, mm);
	if (ret)
		return ret;
	ret = mem_file_views(c, mm);
	if (ret)
		return ret;

	pmfd = openat(c->procfd, "pagemap", O_RDONLY | O_CLOEXEC);
	if (pmfd < 0)
		return pr_perror("mem: open /proc/%d/pagemap", c->pid);
	vec = calloc(vec_len, sizeof(*vec));
	if (!vec)
		return -ENOMEM;
	for (size_t i = 0; i < mm->n_vmas; i++) {
		Vma *v = mm->vmas[i];
		if (v->guard_flag && !mem_guard_scan(pmfd)) {
			pr_err("vma %llx-%llx of pid %d has guard regions (MADV_GUARD_INSTALL), "
			       "which this kernel's page scan does not report: not supported",
			       (unsigned long long)v->start, (unsigned long long)v->end, c->pid);
			ret = -EOPNOTSUPP;
			goto out;
		}
		bool tables = false; /* its page tables scanned, its guard regions with them */
		if (vma_wants_pages(v)) {
			ret = vma_is_shm(v) ? mem_shm_scan(c, v, i, &runs) : 1;
			if (ret == 1) /* scanned while smaps was read (scan.c), or now */
				tables = !(ret = mem_prescan_take(c->prescan, v, &runs));
			if (ret == 1) /* (a shared hugetlb object seen only through its views) */
				tables = !(ret = mem_scan_vma(pmfd, v, &runs, vec, vec_len));
		}
		if (!ret && !tables && v->guard_flag)
			ret = mem_scan_guards(pmfd, v, vec, vec_len);
		if (ret)
			goto out;
	}
	mem_prescan_free(c->prescan); /* what no area took */
	c->prescan = NULL;
	ret = c->track ? mem_track_scan(c, pmfd, &runs, &ms->own, &all)
		       : mem_split_cow_shared(c, pmfd, &runs, &ms->own, &all, ms);
	if (ret)
		goto out;
	mm->pages = all.runs;
	mm->n_pages = all.nr;
out:
	for (size_t i = 0; i < runs.nr; i++)
		free(runs.runs[i]);
	free(runs.runs);
	if (ret) {
		for (size_t i = 0; i < all.nr; i++)
			free(all.runs[i]);
	}
	if (ret || !c->mm->pages)
		free(all.runs);
	return ret;
}

/* ------------------------------------------------------------------ restore */

int mem_validate(const Mm *mm, const struct page_source *src)
{
	uint64_t pages_len = src->len;
	uint64_t prev_end = 0;
	size_t vi = 0;

	if (mm->has_exe_detached_at && !mem_droot_valid(mm->exe_path, mm->exe_detached_at)) {
		pr_err("image: the executable's detached root is malformed");
		return -EINVAL;
	}
	for (size_t i = 0; i < mm->n_vmas; i++) {
		const Vma *v = mm->vmas[i];
		if (v->start >= v->end || (v->start | v->end) & (PAGE_SIZE - 1) ||
		    v->start < prev_end ||
		    (v->kind != VMA_KIND__VMA_VSYSCALL && v->end > ARCH_TASK_SIZE) ||
		    (int)v->kind < 0 || v->kind > VMA_KIND__VMA_IO_URING ||
		    (v->prot & ~(uint32_t)(PROT_READ | PROT_WRITE | PROT_EXEC)) ||
		    (v->flags & ~(uint32_t)(MAP_SHARED | MAP_PRIVATE | MAP_GROWSDOWN | MAP_NORESERVE)) ||
		    (v->kind == VMA_KIND__VMA_FILE && (!v->path || v->path[0] != '/')) ||
		    (v->has_detached_at && !mem_droot_valid(v->path, v->detached_at))) {
			pr_err("image: vma %zu (%llx-%llx) is malformed", i,
			       (unsigned long long)v->start, (unsigned long long)v->end);
			return -EINVAL;
		}
		if (v->kind == VMA_KIND__VMA_AIO && mem_aio_validate(v, i))
			return -EINVAL;
		uint64_t hs = (uint64_t)vma_huge_kb(v) << 10;
		if (v->has_huge_kb &&
		    (hs < PAGE_SIZE || hs > (1ull << 30) || (hs & (hs - 1)) ||
		     (v->start | v->end) & (hs - 1) ||
		     (v->kind != VMA_KIND__VMA_ANON && v->kind != VMA_KIND__VMA_FILE &&
		      v->kind != VMA_KIND__VMA_SYSV))) {
			pr_err("image: vma %zu (%llx-%llx) is a malformed hugetlb area", i,
			       (unsigned long long)v->start, (unsigned long long)v->end);
			return -EINVAL;
		}
		if (v->kind == VMA_KIND__VMA_SYSV && mem_sysv_validate(v, i))
			return -EINVAL;
		if (mem_guards_validate(v, i))
			return -EINVAL;
		prev_end = v->end;
	}
	uint64_t prev = 0, next_off = PAGE_STREAM_START;
	for (size_t i = 0; i < mm->n_pages; i++) {
		const PageRun *r = mm->pages[i];
		uint64_t len = r->nr_pages * PAGE_SIZE;
		/* in another process's stream or a parent image's: the source checks it */
		bool ext = r->has_src_pid || r->has_parent_depth;
		if (!r->nr_pages || r->nr_pages > (ARCH_TASK_SIZE >> 12) || r->vaddr & (PAGE_SIZE - 1) ||
		    r->vaddr < prev || (ext && r->offset & (PAGE_SIZE - 1)) ||
		    (r->has_src_pid && (r->src_pid <= 0 || r->has_parent_depth)) ||
		    (r->has_parent_depth && (!r->parent_depth || r->parent_depth > MEM_MAX_CHAIN)) ||
		    (!ext && (r->offset != next_off ||
			      r->offset - PAGE_STREAM_START + len > pages_len))) {
			pr_err("image: page run %zu (%llx, %llu pages) is malformed or outside the "
			       "pages file",
			       i, (unsigned long long)r->vaddr, (unsigned long long)r->nr_pages);
			return -EINVAL;
		}
		if (r->n_piece_xxh &&
		    (ext || r->n_piece_xxh != (len + HASH_PIECE - 1) / HASH_PIECE ||
		     XXH3_64bits(r->piece_xxh, r->n_piece_xxh * sizeof(uint64_t)) != r->xxh64)) {
			pr_err("image: page run %zu (%llx): its piece checksums do not match its "
			       "checksum",
			       i, (unsigned long long)r->vaddr);
			return -EINVAL;
		}
		while (vi < mm->n_vmas && mm->vmas[vi]->end <= r->vaddr)
			vi++;
		if (vi == mm->n_vmas || mm->vmas[vi]->start > r->vaddr ||
		    r->vaddr + len > mm->vmas[vi]->end || !vma_wants_pages(mm->vmas[vi]) ||
		    mem_guard_overlaps(mm->vmas[vi], r->vaddr, r->vaddr + len)) {
			pr_err("image: page run %zu (%llx, %llu pages) lies outside a memory area "
			       "that holds data",
			       i, (unsigned long long)r->vaddr, (unsigned long long)r->nr_pages);
			return -EINVAL;
		}
		prev = r->vaddr + len;
		if (!ext)
			next_off += len;
	}
	if (mm->has_pages_size && mm->pages_size != pages_len) {
		pr_err("image: pages file holds %llu bytes, mm image expects %llu",
		       (unsigned long long)pages_len, (unsigned long long)mm->pages_size);
		return -EINVAL;
	}
	return 0;
}

/* The file of area @v that the task holds open too (Vma.ghost_in_fd): its fd, already
 * restored, when its access mode suits the mapping, else a new description of it. */
static int ghost_of_fd(const struct rst_ctx *c, const Vma *v)
{
	const FileDesc *d = ghost_desc(c->files, v->dev, v->ino);
	int nr = -1;
	for (size_t k = 0; d && k < c->files->n_fds && nr < 0; k++)
		if (c->files->fds[k]->file_id == d->id)
			nr = c->files->fds[k]->fd;
	if (nr < 0) {
		pr_err("image: deleted file %s mapped at %llx: no fd of the task holds it", v->path,
		       (unsigned long long)v->start);
		return -EINVAL;
	}
	unsigned int acc = d->flags & O_ACCMODE;
	if (!(d->flags & O_PATH) && (acc == O_RDWR || (acc == O_RDONLY && !v->file_writable))) {
		int fd = fcntl(nr, F_DUPFD_CLOEXEC, 0);
		return fd >= 0 ? fd : pr_perror("restore: dup fd %d (%s) to map it", nr, v->path);
	}
	/* through the task's own /proc, like a memfd reopened in another access mode (the
	 * fd table is rebuilt: stasis's /proc fd may be gone from it) */
	char path[64];
	snprintf(path, sizeof(path), "/proc/self/fd/%d", nr);
	int fd = open(path, (v->file_writable ? O_RDWR : O_RDONLY) | O_CLOEXEC);
	if (fd < 0)
		return pr_perror("restore: open fd %d (%s) again to map it", nr, v->path);
	return fd;
}

/* The file behind an area that mapped an unlinked file or a memfd: recreated from the
 * contents in the image (a memfd with its name, or a file created and unlinked again
 * beside its old path or in /tmp); areas of the same file share it. Returns an fd, or
 * -errno. An area whose file an earlier area recreated gets a dup of that one at its
 * own service fd, and the function returns -ENOENT - 1000 (nothing else to do). */
int mem_ghost_create(const struct blob_reader *blobs, const Vma *v, size_t tag)
{
	if (!v->ghost) {
		pr_err("image: deleted file %s mapped at %llx has no contents", v->path,
		       (unsigned long long)v->start);
		return -EINVAL;
	}
	int fd;
	bool beside = false;
	char path[PATH_MAX] = "";
	unsigned int huge = v->has_huge_kb ? memfd_huge_flags(v->huge_kb) : 0;
	if (v->has_huge_kb && !huge) {
		pr_err("image: deleted file %s mapped at %llx has huge pages of %u KiB", v->path,
		       (unsigned long long)v->start, v->huge_kb);
		return -EINVAL;
	}
	if (v->memfd) {
		fd = memfd_create(strlen(v->memfd) < 240 ? v->memfd : "stasis", MFD_CLOEXEC | huge);
	} else {
		const char *slash = strrchr(v->path, '/');
		int dl = slash ? (int)(slash - v->path) : 0;
		snprintf(path, sizeof(path), "%.*s/.stasis-mghost-%d-%zu", dl, v->path, (int)getpid(),
			 tag);
		fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
		/* (on huge pages only beside it: /tmp would give a file of small pages) */
		beside = fd >= 0;
		if (fd < 0 && !huge) {
			snprintf(path, sizeof(path), "/tmp/.stasis-mghost-%d-%zu", (int)getpid(), tag);
			fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
		}
	}
	if (fd < 0)
		return pr_perror("restore: recreate deleted file %s", v->path);
	if (path[0])
		fd_ghost_unlink(path, beside ? v->path : NULL);
	char what[PATH_MAX + 64];
	snprintf(what, sizeof(what), "deleted file %s mapped at %llx", v->path,
		 (unsigned long long)v->start);
	int ret = fd_read_blob(blobs, v->ghost, fd, what);
	if (ret) {
		close(fd);
		return ret;
	}
	return fd;
}

static int ghost_for_vma(struct rst_ctx *c, size_t i)
{
	const Vma *v = c->mm->vmas[i];
	for (size_t j = 0; j < i; j++) {
		const Vma *o = c->mm->vmas[j];
		if (o->kind == VMA_KIND__VMA_FILE && o->deleted && o->dev == v->dev && o->ino == v->ino) {
			if (dup3(c->map_fd_base + (int)j, c->map_fd_base + (int)i, O_CLOEXEC) < 0)
				return pr_perror("restore: share deleted file %s", v->path);
			return -ENOENT - 1000;
		}
	}
	if (v->ghost_in_fd)
		return ghost_of_fd(c, v);
	for (size_t k = 0; k < c->n_ghosts; k++) /* mapped by several processes: made once */
		if (c->ghosts[k].dev == v->dev && c->ghosts[k].ino == v->ino) {
			int fd = fcntl(c->ghosts[k].fd, F_DUPFD_CLOEXEC, 0);
			return fd < 0 ? pr_perror("restore: share deleted file %s", v->path) : fd;
		}
	return mem_ghost_create(blob_reader_or_none(c->blobs), v, i);
}

/* @path in the view it was dumped in: the restorer's (@dumper_view, through the root fd
 * stasis opened, when the task's own may be another mount tree) or the task's own. */
static int open_in_view(const struct rst_ctx *c, const char *path, int flags, bool dumper_view)
{
	bool own = !dumper_view || c->shares_files;
	return open_in_root(own ? -1 : c->host_root_fd, path, flags);
}

/* A mapped file or the executable as dumped: in the detached copy of the root the task
 * reached it through (@has_at, @at: droot.c) when there is one, else in its view. */
static int open_mapped(const struct rst_ctx *c, const char *path, bool has_at, uint32_t at,
		       int flags, bool dumper_view)
{
	int fd = has_at ? mem_droot_open(c, path, at, flags) : -ENOENT;
	return fd == -ENOENT ? open_in_view(c, path, flags, dumper_view) : fd;
}

int mem_restore_child(struct rst_ctx *c)
{
	for (size_t i = 0; i < c->mm->n_vmas; i++) {
		const Vma *v = c->mm->vmas[i];
		if (v->kind == VMA_KIND__VMA_SECRET) {
			int ret = mem_secret_child(c, v, c->map_fd_base + (int)i);
			if (ret)
				return ret;
			continue;
		}
		size_t k = vma_is_shm(v) ? shm_obj_of(c->shm, c->n_shm, v) : c->n_shm;
		if (k < c->n_shm && c->shm[k].fd >= 0 &&
		    dup3(c->shm[k].fd, c->map_fd_base + (int)i, O_CLOEXEC) < 0)
			return pr_perror("restore: dup shared hugetlb memory to fd %d",
					 c->map_fd_base + (int)i);
		if (v->kind != VMA_KIND__VMA_FILE)
			continue;
		int flags = (v->file_writable ? O_RDWR : O_RDONLY) | O_CLOEXEC;
		int fd = v->has_deleted && v->deleted
				 ? ghost_for_vma(c, i)
				 : open_mapped(c, v->path, v->has_detached_at, v->detached_at, flags,
					       v->has_in_task_root && !v->in_task_root);
		if (fd == -ENOENT - 1000)
			continue; /* same file as an earlier area: already placed (dup'ed) */
		if (fd < 0 && v->has_deleted && v->deleted)
			return fd;
		if (fd < 0)
			return pr_perror("restore: open %s to map it at %llx", v->path,
					 (unsigned long long)v->start);
		struct stat st;
		if (!v->deleted && !fstat(fd, &st) && v->has_file_size && v->has_file_mtime_ns &&
		    ((uint64_t)st.st_size != v->file_size ||
		     (int64_t)st.st_mtim.tv_sec * 1000000000 + st.st_mtim.tv_nsec != v->file_mtime_ns)) {
			/* its pages not written by the task come from the file: they would differ */
			pr_err("restore: %s, mapped privately at %llx, changed since the dump (size "
			       "%lld, was %llu)",
			       v->path, (unsigned long long)v->start, (long long)st.st_size,
			       (unsigned long long)v->file_size);
			close(fd);
			return -ESTALE;
		}
		if (!v->deleted && !fstat(fd, &st) && v->has_ino && st.st_ino != v->ino)
			pr_warn("restore: %s is not the file that was mapped at dump (inode %llu, "
				"was %llu)",
				v->path, (unsigned long long)st.st_ino, (unsigned long long)v->ino);
		int target = c->map_fd_base + (int)i;
		if (fd == target)
			continue;
		if (dup3(fd, target, O_CLOEXEC) < 0) {
			int e = pr_perror("restore: dup %s to fd %d", v->path, target);
			close(fd);
			return e;
		}
		close(fd);
	}
	if (c->mm->exe_path) {
		const Mm *mm = c->mm;
		int fd = open_mapped(c, mm->exe_path, mm->has_exe_detached_at, mm->exe_detached_at,
				     O_RDONLY | O_CLOEXEC,
				     mm->has_exe_in_task_root && !mm->exe_in_task_root);
		if (fd < 0)
			return pr_perror("restore: open executable %s", c->mm->exe_path);
		if (fd != c->exe_fd && dup3(fd, c->exe_fd, O_CLOEXEC) < 0) {
			int e = pr_perror("restore: dup executable to fd %d", c->exe_fd);
			close(fd);
			return e;
		}
		if (fd != c->exe_fd)
			close(fd);
	}
	return 0;
}

struct range {
	uint64_t start, end;
};

static bool overlaps(uint64_t s1, uint64_t e1, uint64_t s2, uint64_t e2)
{
	return s1 < e2 && s2 < e1;
}

/* Lowest address >= 1 MiB where [a, a+len) avoids the image's VMAs, @avoid and the
 * shared memory objects being carried into the child. */
static uint64_t find_gap(const struct rst_ctx *c, uint64_t len, const struct range *avoid,
			 size_t navoid)
{
	const Mm *mm = c->mm;
	const struct shm_obj *shm = c->shm;
	size_t nshm = c->n_shm;
	uint64_t a = 1ULL << 20;
	for (int guard = 0; guard < 100000; guard++) {
		bool moved = false;
		for (size_t i = 0; i < nshm && !moved; i++)
			if (overlaps(a, a + len, shm[i].tmp, shm[i].tmp + shm[i].size)) {
				a = ALIGN_UP(shm[i].tmp + shm[i].size, PAGE_SIZE);
				moved = true;
			}
		for (size_t i = 0; i < mm->n_vmas && !moved; i++)
			if (overlaps(a, a + len, mm->vmas[i]->start, mm->vmas[i]->end)) {
				a = mm->vmas[i]->end;
				moved = true;
			}
		for (size_t i = 0; i < navoid && !moved; i++)
			if (overlaps(a, a + len, avoid[i].start, avoid[i].end)) {
				a = ALIGN_UP(avoid[i].end, PAGE_SIZE);
				moved = true;
			}
		if (!moved)
			return a + len <= ARCH_TASK_SIZE ? a : 0;
	}
	return 0;
}

/* The vDSO cluster of the child (same as ours: it is a fork of stasis). */
struct vdso_cluster {
	struct range r[3]; /* vvar, vvar_vclock, vdso (absent: start == end == 0) */
	uint64_t lo, hi;
};

static int child_vdso(pid_t pid, struct vdso_cluster *vc)
{
	char path[64];
	struct proc_vma *v = NULL;
	size_t n = 0;
	int ret;

	snprintf(path, sizeof(path), "/proc/%d/maps", pid);
	_cleanup_free_ char *buf = read_file_at(AT_FDCWD, path, 1 << 24, NULL);
	if (!buf)
		return pr_perror("restore: read %s", path);
	ret = proc_parse_smaps(buf, &v, &n);
	if (ret)
		return pr_errno(ret, "restore: parse %s", path);
	memset(vc, 0, sizeof(*vc));
	for (size_t i = 0; i < n; i++) {
		int k = -1;
		if (!v[i].path)
			continue;
		if (!strcmp(v[i].path, "[vvar]"))
			k = 0;
		else if (!strcmp(v[i].path, "[vvar_vclock]"))
			k = 1;
		else if (!strcmp(v[i].path, "[vdso]"))
			k = 2;
		if (k >= 0) {
			vc->r[k].start = v[i].start;
			vc->r[k].end = v[i].end;
		}
	}
	proc_vmas_free(v, n);
	vc->lo = UINT64_MAX;
	for (int k = 0; k < 3; k++)
		if (vc->r[k].end) {
			vc->lo = MIN(vc->lo, vc->r[k].start);
			vc->hi = MAX(vc->hi, vc->r[k].end);
		}
	if (!vc->r[2].end) {
		pr_err("restore: no vDSO in the restore child");
		return -ENOEXEC;
	}
	return 0;
}

static int image_vdso(const Mm *mm, struct vdso_cluster *vc)
{
	memset(vc, 0, sizeof(*vc));
	for (size_t i = 0; i < mm->n_vmas; i++) {
		const Vma *v = mm->vmas[i];
		int k = v->kind == VMA_KIND__VMA_VVAR ? 0
			: v->kind == VMA_KIND__VMA_VVAR_VCLOCK ? 1
			: v->kind == VMA_KIND__VMA_VDSO	? 2
							: -1;
		if (k >= 0) {
			vc->r[k].start = v->start;
			vc->r[k].end = v->end;
		}
	}
	vc->lo = UINT64_MAX;
	for (int k = 0; k < 3; k++)
		if (vc->r[k].end) {
			vc->lo = MIN(vc->lo, vc->r[k].start);
			vc->hi = MAX(vc->hi, vc->r[k].end);
		}
	return 0;
}

/* Move the child's vDSO cluster so that it sits where the image had it. */
static int move_vdso(struct rst_ctx *c, struct vdso_cluster *cur, const struct vdso_cluster *want)
{
	if (!want->r[2].end) {
		pr_err("restore: the image has no vDSO (task without vDSO is not supported)");
		return -EINVAL;
	}
	for (int k = 0; k < 3; k++) {
		uint64_t a = cur->r[k].end - cur->r[k].start, b = want->r[k].end - want->r[k].start;
		if (a != b) {
			pr_err("restore: the vDSO of this kernel differs from the dumped one "
			       "(area %d: %llu bytes here, %llu in the image)",
			       k, (unsigned long long)a, (unsigned long long)b);
			return -ENOEXEC;
		}
	}
	if (cur->r[2].start == want->r[2].start && cur->r[0].start == want->r[0].start)
		return 0;
	/* Relative layout may differ: move area by area; go through a free spot first when
	 * the old and new places overlap. */
	uint64_t old_vdso = cur->r[2].start;
	uint64_t span = cur->hi - cur->lo;
	struct range avoid[2] = { { cur->lo, cur->hi }, { want->lo, want->hi } };
	uint64_t tmp = 0;
	if (overlaps(cur->lo, cur->hi, want->lo, want->hi)) {
		tmp = find_gap(c, span + (want->hi - want->lo), avoid, 2);
		if (!tmp) {
			pr_err("restore: no room to move the vDSO");
			return -ENOMEM;
		}
	}
	for (int pass = tmp ? 0 : 1; pass < 2; pass++) {
		for (int k = 0; k < 3; k++) {
			if (!cur->r[k].end)
				continue;
			uint64_t len = cur->r[k].end - cur->r[k].start;
			uint64_t dst = pass == 0 ? tmp + (cur->r[k].start - cur->lo) : want->r[k].start;
			long ret = rsys_do(&c->rs, "restore: move vDSO", SYS_mremap, cur->r[k].start, len,
					   len, MREMAP_MAYMOVE | MREMAP_FIXED, dst, 0);
			if (ret < 0)
				return (int)ret;
			cur->r[k].start = dst;
			cur->r[k].end = dst + len;
			if (k == 2)
				rsys_set_insn(&c->rs, c->rs.insn - old_vdso + dst);
			if (k == 2)
				old_vdso = dst;
		}
	}
	cur->lo = want->lo;
	cur->hi = want->hi;
	return 0;
}

static int unmap_all_but(struct rst_ctx *c, struct range *keep, size_t nkeep)
{
	/* sort the (few) ranges */
	for (size_t i = 0; i < nkeep; i++)
		for (size_t j = i + 1; j < nkeep; j++)
			if (keep[j].start < keep[i].start) {
				struct range t = keep[i];
				keep[i] = keep[j];
				keep[j] = t;
			}
	uint64_t a = 0;
	for (size_t i = 0; i <= nkeep; i++) {
		uint64_t b = i < nkeep ? keep[i].start : ARCH_TASK_SIZE;
		if (b > a) {
			long ret = rsys_do(&c->rs, "restore: unmap the restorer's memory", SYS_munmap,
					   a, b - a, 0, 0, 0, 0);
			if (ret < 0)
				return (int)ret;
		}
		if (i < nkeep)
			a = MAX(a, keep[i].end);
	}
	return 0;
}

static bool vma_has_runs(const Mm *mm, size_t vi, size_t *ri)
{
	const Vma *v = mm->vmas[vi];
	while (*ri < mm->n_pages && mm->pages[*ri]->vaddr < v->start)
		(*ri)++;
	return *ri < mm->n_pages && mm->pages[*ri]->vaddr < v->end;
}

/* In the child: drop the inherited creation mappings once the views exist. */
static int shm_objects_drop(struct rst_ctx *c)
{
	for (size_t k = 0; k < c->n_shm; k++) {
		if (!c->shm[k].tmp)
			continue;
		long r = rsys_do(&c->rs, "restore: drop spare shared mapping", SYS_munmap,
				 c->shm[k].tmp, c->shm[k].size, 0, 0, 0, 0);
		if (r < 0)
			return (int)r;
	}
	return 0;
}

static int map_vmas(struct rst_ctx *c, bool *added_write)
{
	const struct shm_obj *objs = c->shm;
	size_t nobjs = c->n_shm;
	size_t ri = 0;
	for (size_t i = 0; i < c->mm->n_vmas; i++) {
		const Vma *v = c->mm->vmas[i];
		if (vma_is_special(v))
			continue;
		if (vma_is_shm(v)) {
			size_t k = shm_obj_of(objs, nobjs, v);
			if (k == nobjs)
				return -EINVAL;
			if (objs[k].huge_kb) {
				/* the object's file, at the area's service fd */
				long r = rsys_do(&c->rs, "restore: map shared hugetlb memory",
						 SYS_mmap, v->start, v->end - v->start,
						 PROT_READ | PROT_WRITE, MAP_SHARED | MAP_FIXED,
						 (uint64_t)(c->map_fd_base + (int)i),
						 v->has_pgoff ? v->pgoff : 0);
				if (r < 0)
					return (int)r;
				added_write[i] = true;
				continue;
			}
			long r = rsys_do(&c->rs, "restore: map shared memory", SYS_mremap,
					 objs[k].tmp + (v->has_pgoff ? v->pgoff : 0), 0,
					 v->end - v->start, MREMAP_MAYMOVE | MREMAP_FIXED, v->start, 0);
			if (r < 0)
				return (int)r;
			added_write[i] = true; /* the view is RW like its source: set prot */
			continue;
		}
		if (v->kind == VMA_KIND__VMA_SYSV) {
			int r = mem_sysv_map(c, v);
			if (r)
				return r;
			added_write[i] = true; /* attached RW or RO: set prot */
			continue;
		}
		if (v->kind == VMA_KIND__VMA_SECRET) {
			int r = mem_secret_map(c, v, c->map_fd_base + (int)i);
			if (r)
				return r;
			added_write[i] = true; /* mapped RW: set prot */
			continue;
		}
		if (v->kind == VMA_KIND__VMA_IO_URING) {
			/* held until its io_uring exists (the final stage maps the ring) */
			long r = rsys_do(&c->rs, "restore: reserve an io_uring's area", SYS_mmap,
					 v->start, v->end - v->start, PROT_NONE,
					 MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED | MAP_NORESERVE,
					 (uint64_t)-1, 0);
			if (r < 0)
				return (int)r;
			added_write[i] = false;
			continue;
		}
		if (v->kind == VMA_KIND__VMA_AIO) {
			int r = mem_aio_map(c, v);
			if (r)
				return r;
			added_write[i] = true; /* made RW: set prot */
			continue;
		}
		uint32_t prot = v->prot;
		added_write[i] = (vma_has_runs(c->mm, i, &ri) || (v->madv & MADV_BIT_ACCOUNT)) &&
				 !(prot & PROT_WRITE);
		if (added_write[i])
			prot |= PROT_WRITE;
		uint64_t flags =
			(v->flags & (MAP_SHARED | MAP_PRIVATE | MAP_GROWSDOWN | MAP_NORESERVE)) |
			MAP_FIXED;
		uint64_t fd = (uint64_t)-1, off = 0;
		if (v->kind == VMA_KIND__VMA_FILE) {
			fd = (uint64_t)(c->map_fd_base + (int)i);
			off = v->pgoff;
		} else {
			flags |= MAP_ANONYMOUS;
			if (v->has_huge_kb)
				flags |= huge_map_flags(v->huge_kb);
		}
		long ret = rsys_do(&c->rs, "restore: map memory area", SYS_mmap, v->start,
				   v->end - v->start, prot, flags, fd, off);
		if (ret < 0) {
			pr_err("restore: cannot map %llx-%llx %s", (unsigned long long)v->start,
			       (unsigned long long)v->end, v->path ? v->path : "(anonymous)");
			return (int)ret;
		}
		if ((uint64_t)ret != v->start) {
			pr_err("restore: %llx-%llx mapped at %lx instead", (unsigned long long)v->start,
			       (unsigned long long)v->end, ret);
			return -EFAULT;
		}
	}
	return 0;
}

/* Locked areas (mlock, mlock2 MLOCK_ONFAULT), one call per run of adjacent ones locked
 * the same way. Before the credentials are the task's (the stage order): a task that
 * locked memory as root and then dropped its privileges keeps its locks, and so does the
 * restored one, locked while it still has the restorer's. */
static int mlock_vmas(struct rst_ctx *c)
{
	const uint32_t lk = MADV_BIT_LOCKED | MADV_BIT_LOCKONFAULT;
	for (size_t i = 0; i < c->mm->n_vmas; i++) {
		const Vma *v = c->mm->vmas[i];
		/* memfd_secret memory is locked by being secret (and mlock's populate fails
		 * on it) */
		if (vma_is_special(v) || !(v->madv & MADV_BIT_LOCKED) ||
		    v->kind == VMA_KIND__VMA_SECRET)
			continue;
		uint64_t start = v->start, end = v->end;
		while (i + 1 < c->mm->n_vmas && c->mm->vmas[i + 1]->start == end &&
		       !vma_is_special(c->mm->vmas[i + 1]) &&
		       c->mm->vmas[i + 1]->kind != VMA_KIND__VMA_SECRET &&
		       (c->mm->vmas[i + 1]->madv & lk) == (v->madv & lk))
			end = c->mm->vmas[++i]->end;
		long ret = rsys_do(&c->rs, "restore: mlock2", SYS_mlock2, start, end - start,
				   (v->madv & MADV_BIT_LOCKONFAULT) ? MLOCK_ONFAULT : 0, 0, 0, 0);
		if (ret < 0)
			return pr_errno((int)ret, "restore: pid %d: lock %llx-%llx", c->pid,
					(unsigned long long)start, (unsigned long long)end);
	}
	return 0;
}

/* The madvise flags of @mask given back, one call per advice over each run of adjacent
 * areas that have it (glibc puts MADV_NOHUGEPAGE on every thread stack and its guard:
 * thousands of areas). */
static int advise_vmas(struct rst_ctx *c, uint32_t mask)
{
	static const struct {
		uint32_t bit;
		int advice;
	} adv[] = {
		{ MADV_BIT_DONTFORK, MADV_DONTFORK },	{ MADV_BIT_DONTDUMP, MADV_DONTDUMP },
		{ MADV_BIT_HUGEPAGE, MADV_HUGEPAGE },	{ MADV_BIT_NOHUGEPAGE, MADV_NOHUGEPAGE },
		{ MADV_BIT_WIPEONFORK, MADV_WIPEONFORK }, { MADV_BIT_MERGEABLE, MADV_MERGEABLE },
		{ MADV_BIT_SEQUENTIAL, MADV_SEQUENTIAL }, { MADV_BIT_RANDOM, MADV_RANDOM },
	};
	for (size_t k = 0; k < ARRAY_SIZE(adv); k++) {
		for (size_t i = 0; i < c->mm->n_vmas && (mask & adv[k].bit); i++) {
			const Vma *v = c->mm->vmas[i];
			if (vma_is_special(v) || !(v->madv & adv[k].bit))
				continue;
			uint64_t start = v->start, end = v->end;
			while (i + 1 < c->mm->n_vmas && c->mm->vmas[i + 1]->start == end &&
			       !vma_is_special(c->mm->vmas[i + 1]) &&
			       (c->mm->vmas[i + 1]->madv & adv[k].bit))
				end = c->mm->vmas[++i]->end;
			long ret = rsys_do(&c->rs, "restore: madvise", SYS_madvise, start, end - start,
					   (uint64_t)adv[k].advice, 0, 0, 0);
			if (ret < 0 && adv[k].bit != MADV_BIT_MERGEABLE)
				return (int)ret;
		}
	}
	return 0;
}

/* Before the pages come in: an area's huge-page advice decides what its faults map
 * (MADV_HUGEPAGE: huge pages, as the task's did, at the huge-page fault rate) and how
 * the fill copies (src/mem/pages.c). */
#define MADV_BITS_BEFORE (MADV_BIT_HUGEPAGE | MADV_BIT_NOHUGEPAGE)

static int madvise_vmas(struct rst_ctx *c)
{
	int aret = advise_vmas(c, ~(uint32_t)MADV_BITS_BEFORE);
	if (aret)
		return aret;
	int lret = mlock_vmas(c);
	if (lret)
		return lret;
	for (size_t i = 0; i < c->mm->n_vmas; i++) {
		const Vma *v = c->mm->vmas[i];
		if (vma_is_special(v))
			continue;
		if (v->name) {
			size_t nl = strlen(v->name) + 1;
			if (nl > c->rs.scratch_len)
				return -ENAMETOOLONG;
			int r = rsys_poke(&c->rs, c->rs.scratch, v->name, nl);
			if (r)
				return r;
			long ret = rsys_do(&c->rs, "restore: name anonymous memory", SYS_prctl,
					   PR_SET_VMA, PR_SET_VMA_ANON_NAME, v->start, v->end - v->start,
					   c->rs.scratch, 0);
			if (ret < 0)
				return (int)ret;
		}
	}
	return 0;
}

/* The task runs the restorer's executable, which is the image's already: the kernel
 * refuses to change the exe link while the old file is mapped (EBUSY), which it is
 * when the restorer is the restored program itself (a caller of libstasis). */
static bool exe_is_current(const struct rst_ctx *c)
{
	char cur[32], want[48];
	struct stat a, b;
	snprintf(cur, sizeof(cur), "%d/exe", c->pid);
	snprintf(want, sizeof(want), "%d/fd/%d", c->pid, c->exe_fd);
	return c->exe_fd >= 0 && !fstatat(c->proc_dfd, cur, &a, 0) &&
	       !fstatat(c->proc_dfd, want, &b, 0) && a.st_dev == b.st_dev && a.st_ino == b.st_ino;
}

static int set_mm_map(struct rst_ctx *c)
{
	const Mm *mm = c->mm;
	struct prctl_mm_map m = {
		.start_code = mm->start_code,
		.end_code = mm->end_code,
		.start_data = mm->start_data,
		.end_data = mm->end_data,
		.start_brk = mm->start_brk,
		.brk = mm->brk,
		.start_stack = mm->start_stack,
		.arg_start = mm->arg_start,
		.arg_end = mm->arg_end,
		.env_start = mm->env_start,
		.env_end = mm->env_end,
		.auxv_size = (__u32)(mm->n_auxv * sizeof(uint64_t)),
		.exe_fd = mm->exe_path && !exe_is_current(c) ? (__u32)c->exe_fd : (__u32)-1,
	};
	uint64_t auxv_at = c->rs.scratch + 4096;
	if (m.auxv_size > c->rs.scratch_len - 4096)
		return -E2BIG;
	m.auxv = (__u64 *)(uintptr_t)auxv_at;
	int r = rsys_poke(&c->rs, c->rs.scratch, &m, sizeof(m));
	if (!r && m.auxv_size)
		r = rsys_poke(&c->rs, auxv_at, mm->auxv, m.auxv_size);
	if (r)
		return r;
	long ret = rsys_do(&c->rs, "restore: set mm fields (PR_SET_MM_MAP)", SYS_prctl, PR_SET_MM,
			   PR_SET_MM_MAP, c->rs.scratch, sizeof(m), 0, 0);
	return ret < 0 ? (int)ret : 0;
}

/* Sealed areas (mseal) sealed again, last: nothing may change them after (adjacent
 * sealed areas in one call). */
static int seal_vmas(struct rst_ctx *c)
{
	for (size_t i = 0; i < c->mm->n_vmas; i++) {
		const Vma *v = c->mm->vmas[i];
		if (!v->sealed)
			continue;
		uint64_t start = v->start, end = v->end;
		while (i + 1 < c->mm->n_vmas && c->mm->vmas[i + 1]->sealed &&
		       c->mm->vmas[i + 1]->start == end)
			end = c->mm->vmas[++i]->end;
		long r = rsys_do(&c->rs, "restore: mseal", __NR_mseal, start, end - start, 0, 0, 0, 0);
		if (r < 0)
			return pr_errno((int)r, "restore: pid %d: seal %llx-%llx (mseal)", c->pid,
					(unsigned long long)start, (unsigned long long)end);
	}
	return 0;
}

int mem_restore_remote(struct rst_ctx *c)
{
	struct vdso_cluster cur, want;
	int ret;

	ret = child_vdso(c->pid, &cur);
	if (!ret)
		ret = image_vdso(c->mm, &want);
	if (ret)
		return ret;
	/* Scratch: a spot free in the final layout, away from both vDSO places. */
	struct range avoid[2] = { { cur.lo, cur.hi }, { want.lo, want.hi } };
	const size_t scratch_len = 256 * 1024;
	uint64_t scratch = find_gap(c, scratch_len, avoid, 2);
	if (!scratch) {
		pr_err("restore: no free room for the restore scratch area");
		return -ENOMEM;
	}
	ret = rsys_scratch_map(&c->rs, scratch, scratch_len);
	if (ret)
		return ret;
	ret = move_vdso(c, &cur, &want);
	if (ret)
		return ret;
	_cleanup_free_ struct range *keep = calloc(4 + c->n_shm, sizeof(*keep));
	size_t nkeep = 0;
	if (!keep)
		return -ENOMEM;
	keep[nkeep++] = (struct range){ scratch, scratch + scratch_len };
	for (int k = 0; k < 3; k++)
		if (cur.r[k].end)
			keep[nkeep++] = cur.r[k];
	for (size_t k = 0; k < c->n_shm; k++)
		if (c->shm[k].tmp)
			keep[nkeep++] = (struct range){ c->shm[k].tmp,
							c->shm[k].tmp + c->shm[k].size };
	ret = unmap_all_but(c, keep, nkeep);
	if (ret)
		return ret;

	_cleanup_free_ bool *added_write = calloc(c->mm->n_vmas + 1, sizeof(bool));
	if (!added_write)
		return -ENOMEM;
	uint64_t t0 = now_ns();
	ret = map_vmas(c, added_write);
	if (!ret)
		ret = shm_objects_drop(c);
	pr_debug("restore: pid %d: %zu areas mapped in %.3f ms", c->pid, c->mm->n_vmas,
		 (double)(now_ns() - t0) / 1e6);
	if (ret)
		return ret;
	long r = rsys_do(&c->rs, "restore: close mapped files", SYS_close_range,
			 (uint64_t)c->map_fd_base, (uint64_t)(c->map_fd_base + (int)c->mm->n_vmas), 0,
			 0, 0, 0);
	if (r < 0)
		return (int)r;
	ret = mem_guards_install(c);
	if (!ret)
		ret = advise_vmas(c, MADV_BITS_BEFORE);
	if (ret)
		return ret;
	t0 = now_ns();
	ret = c->lazy ? mem_lazy_fill(c, c->lazy) : mem_fill_pages(c);
	if (ret)
		return ret;
	pr_debug("restore: pid %d: %zu page runs filled in %.3f ms", c->pid, c->mm->n_pages,
		 (double)(now_ns() - t0) / 1e6);
	t0 = now_ns();
	size_t ri = 0; /* (the areas are in address order, as the runs) */
	for (size_t i = 0; i < c->mm->n_vmas; i++) {
		const Vma *v = c->mm->vmas[i];
		if (!added_write[i])
			continue;
		/* an anonymous area made unwritable keeps its commit (ac) only when it has
		 * had a page: one is faulted in and dropped again */
		if ((v->madv & MADV_BIT_ACCOUNT) && v->kind != VMA_KIND__VMA_FILE &&
		    !vma_has_runs(c->mm, i, &ri)) {
			static const char zero;
			r = rsys_poke(&c->rs, v->start, &zero, 1);
			if (!r)
				r = rsys_do(&c->rs, "restore: drop a page", SYS_madvise, v->start,
					    4096, MADV_DONTNEED, 0, 0, 0);
			if (r < 0)
				return (int)r;
		}
		r = rsys_do(&c->rs, "restore: set memory protection", SYS_mprotect, v->start,
			    v->end - v->start, v->prot, 0, 0, 0);
		if (r < 0)
			return (int)r;
	}
	pr_debug("restore: pid %d: protections set in %.3f ms", c->pid,
		 (double)(now_ns() - t0) / 1e6);
	t0 = now_ns();
	ret = madvise_vmas(c);
	if (ret)
		return ret;
	pr_debug("restore: pid %d: madvise in %.3f ms", c->pid, (double)(now_ns() - t0) / 1e6);
	ret = set_mm_map(c);
	if (ret)
		return ret;
	r = rsys_do(&c->rs, "restore: close the executable", SYS_close, (uint64_t)c->exe_fd, 0, 0,
		    0, 0, 0);
	return r < 0 ? (int)r : seal_vmas(c);
}

/* memfd_secret memory mapped by two processes (inherited across fork): each would get a
 * copy of its own. */
static int secret_shared(const struct dump_tree *t)
{
	for (size_t i = 0; i < t->nr; i++)
		for (size_t a = 0; a < t->procs[i]->mm->n_vmas; a++) {
			const Vma *v = t->procs[i]->mm->vmas[a];
			if (v->kind != VMA_KIND__VMA_SECRET)
				continue;
			for (size_t j = i + 1; j < t->nr; j++)
				for (size_t b = 0; b < t->procs[j]->mm->n_vmas; b++) {
					const Vma *w = t->procs[j]->mm->vmas[b];
					if (w->kind == VMA_KIND__VMA_SECRET && w->ino == v->ino) {
						pr_err("memfd_secret memory at %llx of pid %d is shared "
						       "with pid %d: not supported yet",
						       (unsigned long long)v->start, t->procs[i]->pid,
						       t->procs[j]->pid);
						return -EOPNOTSUPP;
					}
				}
		}
	return 0;
}

static int mem_dump_tree(struct dump_tree *t)
{
	int sret = secret_shared(t);
	if (sret)
		return sret;
	for (size_t i = 0; i < t->nr; i++) {
		int ret = mem_dump_pages(t->procs[i]);
		if (ret)
			return ret;
	}
	return 0;
}

/* The contents of mapped deleted files: their bounds in blobs.img. */
static int mem_validate_ghosts(const struct rst_ctx *c)
{
	for (size_t i = 0; i < c->mm->n_vmas; i++) {
		const Vma *v = c->mm->vmas[i];
		if (v->ghost_in_fd && !ghost_desc(c->files, v->dev, v->ino)) {
			pr_err("image: deleted file %s mapped at %llx: no open file of the task is it",
			       v->path ? v->path : "?", (unsigned long long)v->start);
			return -EINVAL;
		}
		if (v->kind == VMA_KIND__VMA_SECRET) {
			int ret = mem_secret_validate(v, blob_reader_or_none(c->blobs), i);
			if (ret)
				return ret;
			continue;
		}
		if (!v->ghost)
			continue;
		char what[PATH_MAX + 64];
		snprintf(what, sizeof(what), "deleted file %s mapped at %llx",
			 v->path ? v->path : "?", (unsigned long long)v->start);
		int ret = blob_check(blob_reader_or_none(c->blobs), v->ghost, what);
		if (ret)
			return ret;
	}
	return 0;
}

static int mem_validate_ctx(struct rst_ctx *c)
{
	int ret = mem_validate(c->mm, c->pages) ?: mem_validate_ghosts(c);
	return ret ?: mem_chain_validate(c);
}

const struct resource mem_resource = {
	.name = "memory",
	.dump = mem_dump,
	.dump_tree = mem_dump_tree,
	.validate = mem_validate_ctx,
	.child = mem_restore_child,
	.remote = mem_restore_remote,
};
