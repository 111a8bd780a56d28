/* memfd_secret memory (Vma kind VMA_SECRET, "/secretmem (deleted)").
 *
 * Its pages are out of the kernel's direct map: neither process_vm_readv nor
 * /proc/PID/mem nor map_files reads them; only the task itself can, through its own page
 * tables. Dump (remote, the task frozen): the task makes a memfd, pwrites into it each
 * run of present pages of the area (pagemap) at its offset in the area, and stasis takes
 * the memfd (pidfd_getfd) and stores it as a sparse blob: pages never touched stay holes.
 * The secret file's size comes from map_files (stat, not open). Refused: an area whose
 * secret file another area or process maps too (sharing could not be made again), and a
 * memfd_secret fd held open (src/files/kinds.c).
 *
 * Restore: the restore child puts the blob in a plain memfd (holes kept) at the area's
 * service fd; the remote stage has the task make the secret file (memfd_secret,
 * ftruncate), map it at its address and read the memfd's data runs into it (lseek
 * SEEK_DATA/SEEK_HOLE): the pages come into the task's own page tables as at dump, the
 * untouched ones stay untouched. */
#include <fcntl.h>
#include <stdio.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "core/log.h"
#include "core/util.h"
#include "image/blob.h"
#include "mem/internal.h"
#include "ptrace/rsys.h"
#include "sys/syscalls.h"

#ifndef SYS_memfd_secret
#define SYS_memfd_secret 447
#endif

#define PM_PRESENT (1ull << 63)
#define PM_SWAP (1ull << 62)

/* Have the task copy its present pages of @v into its memfd @tfd. */
static int secret_copy_out(struct dump_ctx *c, const Vma *v, int tfd)
{
	_cleanup_close_ int pm = openat(c->procfd, "pagemap", O_RDONLY | O_CLOEXEC);
	if (pm < 0)
		return pr_perror("dump: open /proc/%d/pagemap", c->pid);
	uint64_t npages = (v->end - v->start) / PAGE_SIZE, run = 0;
	uint64_t ent[512];
	for (uint64_t p = 0; p <= npages; p++) {
		bool present = false;
		if (p < npages) {
			if (p % 512 == 0) {
				size_t n = npages - p < 512 ? (size_t)(npages - p) : 512;
				off_t at = (off_t)((v->start / PAGE_SIZE + p) * 8);
				if (pread(pm, ent, n * 8, at) != (ssize_t)(n * 8))
					return pr_perror("dump: read the pagemap of pid %d", c->pid);
			}
			present = ent[p % 512] & (PM_PRESENT | PM_SWAP);
		}
		if (present) {
			run++;
			continue;
		}
		if (!run)
			continue;
		uint64_t off = (p - run) * PAGE_SIZE, len = run * PAGE_SIZE;
		long r = rsys_do(&c->rs, "dump: copy memfd_secret memory", SYS_pwrite64,
				 (uint64_t)tfd, v->start + off, len, off, 0, 0);
		if (r >= 0 && (uint64_t)r != len)
			r = -EIO;
		if (r < 0)
			return (int)r;
		run = 0;
	}
	return 0;
}

int mem_secret_dump(struct dump_ctx *c, Vma *v)
{
	char rel[64];
	struct stat st;
	uint64_t len = v->end - v->start;
	snprintf(rel, sizeof(rel), "map_files/%llx-%llx", (unsigned long long)v->start,
		 (unsigned long long)v->end);
	if (fstatat(c->procfd, rel, &st, 0) < 0) {
		/* (map_files wants CAP_CHECKPOINT_RESTORE in the initial user namespace: a
		 * rootless dump) the size past the mapping cannot be known */
		int e = pr_perror("dump: stat /proc/%d/%s (memfd_secret memory: the secret "
				  "file's size)",
				  c->pid, rel);
		return e == -EPERM || e == -EACCES ? -EOPNOTSUPP : e;
	}
	v->has_file_size = v->has_ino = true;
	v->file_size = (uint64_t)st.st_size;
	v->ino = st.st_ino;
	for (size_t i = 0; i < c->nr_vmas; i++)
		if (c->vmas[i].start != v->start && c->vmas[i].path &&
		    !strcmp(c->vmas[i].path, "/secretmem (deleted)") && c->vmas[i].ino == v->ino) {
			pr_err("vma %llx-%llx of pid %d: memfd_secret memory mapped twice: not "
			       "supported yet",
			       (unsigned long long)v->start, (unsigned long long)v->end, c->pid);
			return -EOPNOTSUPP;
		}
	static const char name[] = "stasis-secret";
	if (!c->rs.scratch || c->rs.scratch_len < sizeof(name))
		return pr_err("pid %d: no scratch memory for memfd_secret memory", c->pid), -EINVAL;
	int ret = rsys_poke(&c->rs, c->rs.scratch, name, sizeof(name));
	if (ret)
		return ret;
	long tfd = rsys_do(&c->rs, "dump: memfd for memfd_secret memory", SYS_memfd_create,
			   c->rs.scratch, MFD_CLOEXEC, 0, 0, 0, 0);
	if (tfd < 0)
		return (int)tfd;
	long r = rsys_do(&c->rs, "dump: size a memfd", SYS_ftruncate, (uint64_t)tfd, len, 0, 0, 0,
			 0);
	ret = r < 0 ? (int)r : secret_copy_out(c, v, (int)tfd);
	_cleanup_close_ int fd = ret ? -1 : sys_pidfd_getfd(c->pidfd, (int)tfd, 0);
	if (!ret && fd < 0)
		ret = pr_perror("dump: take the memfd of pid %d", c->pid);
	r = rsys_do(&c->rs, "dump: close a memfd", SYS_close, (uint64_t)tfd, 0, 0, 0, 0, 0);
	if (!ret && r < 0)
		ret = (int)r;
	if (ret)
		return ret;
	char what[96];
	snprintf(what, sizeof(what), "memfd_secret memory at %llx of pid %d",
		 (unsigned long long)v->start, c->pid);
	return blob_put_file(c->img, fd, len, what, &v->ghost);
}

int mem_secret_validate(const Vma *v, const struct blob_reader *blobs, size_t i)
{
	if (!(v->flags & MAP_SHARED) || !v->ghost || v->ghost->size != v->end - v->start ||
	    !v->has_file_size || !v->has_pgoff || v->pgoff & (PAGE_SIZE - 1) ||
	    v->pgoff > v->file_size || v->end - v->start > v->file_size - v->pgoff || v->path) {
		pr_err("image: vma %zu (%llx-%llx) is malformed memfd_secret memory", i,
		       (unsigned long long)v->start, (unsigned long long)v->end);
		return -EINVAL;
	}
	return blob_check(blobs, v->ghost, "memfd_secret memory");
}

int mem_secret_child(struct rst_ctx *c, const Vma *v, int target)
{
	int fd = memfd_create("stasis-secret", MFD_CLOEXEC);
	if (fd < 0)
		return pr_perror("restore: memfd for memfd_secret memory");
	int ret = blob_read_fd(blob_reader_or_none(c->blobs), v->ghost, fd, "memfd_secret memory");
	if (!ret && fd != target && dup3(fd, target, O_CLOEXEC) < 0)
		ret = pr_perror("restore: dup memfd_secret memory to fd %d", target);
	if (fd != target)
		close(fd);
	return ret;
}

/* The task reads each data run of its memfd @dfd into the area: its own page tables get
 * them, as at dump; holes stay untouched. */
static int secret_fill(struct rst_ctx *c, const Vma *v, int dfd)
{
	uint64_t len = v->end - v->start, off = 0;
	while (off < len) {
		long d = rsys_do(&c->rs, "restore: find data", SYS_lseek, (uint64_t)dfd, off,
				 SEEK_DATA, 0, 0, 0);
		if (d == -ENXIO || (d >= 0 && (uint64_t)d >= len))
			break;
		long h = d < 0 ? d
			       : rsys_do(&c->rs, "restore: find a hole", SYS_lseek, (uint64_t)dfd,
					 (uint64_t)d, SEEK_HOLE, 0, 0, 0);
		if (h < 0)
			return (int)h;
		uint64_t end = (uint64_t)h < len ? (uint64_t)h : len;
		for (uint64_t at = (uint64_t)d; at < end;) {
			long r = rsys_do(&c->rs, "restore: fill memfd_secret memory", SYS_pread64,
					 (uint64_t)dfd, v->start + at, end - at, at, 0, 0);
			if (r <= 0)
				return r ? (int)r : -EIO;
			at += (uint64_t)r;
		}
		off = end;
	}
	return 0;
}

int mem_secret_map(struct rst_ctx *c, const Vma *v, int dfd)
{
	long sfd = rsys_do(&c->rs, "restore: memfd_secret", SYS_memfd_secret, O_CLOEXEC, 0, 0, 0, 0,
			   0);
	if (sfd < 0)
		return (int)sfd;
	long r = rsys_do(&c->rs, "restore: size memfd_secret memory", SYS_ftruncate, (uint64_t)sfd,
			 v->file_size, 0, 0, 0, 0);
	if (r >= 0)
		r = rsys_do(&c->rs, "restore: map memfd_secret memory", SYS_mmap, v->start,
			    v->end - v->start, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_FIXED,
			    (uint64_t)sfd, v->pgoff);
	long cr = rsys_do(&c->rs, "restore: close memfd_secret", SYS_close, (uint64_t)sfd, 0, 0, 0,
			  0, 0);
	if (r < 0 || cr < 0)
		return r < 0 ? (int)r : (int)cr;
	return secret_fill(c, v, dfd);
}
