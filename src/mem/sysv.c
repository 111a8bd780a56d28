/* Attached SysV shared memory (Vma kind VMA_SYSV).
 *
 * Dump: an area whose file is "/SYSV%08x" maps segment shmid (the file's inode number)
 * at byte offset pgoff. Its size, key and mode are read by the task itself (a remote
 * shmctl(IPC_STAT) into the scratch memory: the segment is named in the task's IPC
 * namespace, whichever that is). Its data is not in the task's pages: a segment of an
 * IPC namespace the tree created is carried whole by that namespace's image
 * (src/ns/ipc.c, attached ones too, with the key it was made with and whether it was
 * marked for removal); a segment of stasis's own IPC namespace is external — it must
 * still exist at restore (same id, key and size) and is attached as it is, shared with
 * whoever else uses it, so one marked for removal (gone once the tree lets go of it) is
 * refused.
 *
 * Restore (remote, while the layout is built): a whole segment attached at its address
 * with shmat (SHM_RDONLY when it was not attached writable); a part of one (an area
 * split by mprotect or partly unmapped) attached anywhere, the part moved into place
 * with mremap and the rest unmapped. Every area is one attachment, as at dump, so the
 * segment's attach count comes out the same. A segment marked for removal is removed
 * again (IPC_RMID) right after it is attached: Linux lets the later users attach a
 * segment so marked. The protections are set afterwards with the other areas'. */
#include <stdio.h>
#include <sys/ipc.h>
#include <sys/mman.h>
#include <sys/shm.h>
#include <sys/stat.h>
#include <sys/syscall.h>

#include "core/log.h"
#include "core/util.h"
#include "mem/internal.h"
#include "ptrace/rsys.h"

/* IPC_STAT of segment @id by the task of engine @rs (dump or restore). */
static int remote_stat(struct rsys *rs, pid_t pid, uint32_t id, struct shmid_ds *ds)
{
	if (rs->scratch_len < sizeof(*ds)) {
		pr_err("pid %d: no scratch memory to read SysV segment %u", pid, id);
		return -EINVAL;
	}
	long r;
	int ret = rsys_call(rs, SYS_shmctl, id, IPC_STAT, rs->scratch, 0, 0, 0, &r);
	if (ret)
		return ret;
	if (r < 0)
		return (int)r;
	return rsys_peek(rs, rs->scratch, ds, sizeof(*ds));
}

/* Is the task in stasis's own IPC namespace (whose segments no image carries)? */
static int ipc_ns_is_dumpers(const struct dump_ctx *c)
{
	struct stat self;
	if (stat("/proc/self/ns/ipc", &self) < 0)
		return pr_perror("mem: stat /proc/self/ns/ipc");
	return c->core->ns && c->core->ns->has_ipc && c->core->ns->ipc == (uint64_t)self.st_ino;
}

int mem_sysv_dump(struct dump_ctx *c, Vma *v)
{
	struct shmid_ds ds;
	int ret = remote_stat(&c->rs, c->pid, v->shmid, &ds);
	if (ret) {
		pr_err("vma %llx-%llx of pid %d: SysV segment %u cannot be read by its task: %s",
		       (unsigned long long)v->start, (unsigned long long)v->end, c->pid, v->shmid,
		       strerror(-ret));
		return ret < 0 ? ret : -EIO;
	}
	int own = ipc_ns_is_dumpers(c);
	if (own < 0)
		return own;
	v->has_sysv_size = v->has_sysv_key = v->has_sysv_dest = v->has_sysv_external = true;
	v->sysv_size = ds.shm_segsz;
	v->sysv_key = (uint32_t)ds.shm_perm.__key;
	v->sysv_dest = ds.shm_perm.mode & SHM_DEST;
	v->sysv_external = own;
	if (own && v->sysv_dest) {
		pr_err("vma %llx-%llx of pid %d: SysV segment %u of stasis's IPC namespace is "
		       "marked for removal (it would be gone once the tree lets go of it): not "
		       "supported yet (only in an IPC namespace the tree created)",
		       (unsigned long long)v->start, (unsigned long long)v->end, c->pid, v->shmid);
		return -EOPNOTSUPP;
	}
	return 0;
}

int mem_sysv_validate(const Vma *v, size_t i)
{
	uint64_t seg = (v->sysv_size + PAGE_SIZE - 1) & ~(uint64_t)(PAGE_SIZE - 1);
	if (!v->has_shmid || !v->has_sysv_size || !v->sysv_size || v->sysv_size > (1ull << 46) ||
	    !v->has_pgoff || v->pgoff & (PAGE_SIZE - 1) || v->pgoff >= seg ||
	    v->end - v->start > seg - v->pgoff || !(v->flags & MAP_SHARED) || v->shmid > INT32_MAX) {
		pr_err("image: vma %zu (%llx-%llx) is a malformed SysV attachment", i,
		       (unsigned long long)v->start, (unsigned long long)v->end);
		return -EINVAL;
	}
	return 0;
}

int mem_sysv_map(struct rst_ctx *c, const Vma *v)
{
	struct shmid_ds ds;
	uint64_t len = v->end - v->start;
	uint64_t seg = (v->sysv_size + PAGE_SIZE - 1) & ~(uint64_t)(PAGE_SIZE - 1);
	int ret = remote_stat(&c->rs, c->pid, v->shmid, &ds);
	if (!ret && (ds.shm_segsz != v->sysv_size ||
		     (v->sysv_external && (uint32_t)ds.shm_perm.__key != v->sysv_key)))
		ret = -ESTALE;
	if (ret) {
		pr_err("restore: SysV segment %u (key %#x, %llu bytes) mapped at %llx: %s", v->shmid,
		       v->sysv_key, (unsigned long long)v->sysv_size, (unsigned long long)v->start,
		       ret == -ESTALE ? "another segment has that id now" : "gone");
		return ret < 0 ? ret : -EIO;
	}
	uint64_t flags = v->has_file_writable && v->file_writable ? 0 : SHM_RDONLY;
	bool whole = !v->pgoff && len == seg;
	if (!whole) {
		/* the place held first, so that the attachment the part comes from is not
		 * put there */
		long r = rsys_do(&c->rs, "restore: hold the place of SysV shared memory", SYS_mmap,
				 v->start, len, PROT_NONE,
				 MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED | MAP_NORESERVE, (uint64_t)-1,
				 0);
		if (r < 0)
			return (int)r;
	}
	long at = rsys_do(&c->rs, "restore: attach SysV shared memory", SYS_shmat, v->shmid,
			  whole ? v->start : 0, flags, 0, 0, 0);
	if (at < 0)
		return (int)at;
	if (whole && (uint64_t)at != v->start) {
		pr_err("restore: SysV segment %u attached at %lx, not %llx", v->shmid, at,
		       (unsigned long long)v->start);
		return -EFAULT;
	}
	if (!whole) {
		long r = rsys_do(&c->rs, "restore: move a part of SysV shared memory", SYS_mremap,
				 (uint64_t)at + v->pgoff, len, len, MREMAP_MAYMOVE | MREMAP_FIXED,
				 v->start, 0);
		if (r >= 0)
			r = rsys_do(&c->rs, "restore: unmap the rest of SysV shared memory",
				    SYS_munmap, (uint64_t)at, seg, 0, 0, 0, 0);
		if (r < 0)
			return (int)r;
	}
	if (v->sysv_dest) {
		long r = rsys_do(&c->rs, "restore: mark SysV shared memory for removal", SYS_shmctl,
				 v->shmid, IPC_RMID, 0, 0, 0, 0);
		if (r < 0)
			return (int)r;
	}
	return 0;
}
