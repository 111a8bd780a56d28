/* IPC namespaces (see ipc.h).
 *
 * Dump: a child of stasis joins the task's IPC namespace with setns(CLONE_NEWIPC), where
 * /proc/sys/{kernel,fs/mqueue} show the namespace's own sysctls and the *_STAT_ANY
 * commands list its SysV objects by index. Messages are copied, not received
 * (msgrcv(MSG_COPY) by position); shm segments are attached read-only and copied.
 * The child packs an IpcNs into a memfd (or an error text, exit status 2) that stasis
 * reads once the child exited (bounded wait). The task's objects are untouched (only the
 * kernel's access times and last pids of the objects change).
 *
 * Restore: in the restore child, first thing after clone3(CLONE_NEWIPC): the sysctls
 * (a fixed list: nothing else is ever written), then each object with its id
 * (/proc/sys/kernel/{msg,sem,shm}_next_id is written before each *get, the kernel then
 * allocates exactly that id), created with the creator's effective uid/gid (cuid/cgid),
 * then owner, mode, queue size, contents, and last the *_next_id sysctls as they were (-1,
 * or an id the task chose for its next object). Not carried over: times, last pids, SEM_UNDO
 * adjustments of tasks. Segments attached in tasks are carried whole here and attached
 * again by their tasks (src/mem/sysv.c); one marked for removal is made with the key it
 * was made with and removed by its first user once attached.
 *
 * POSIX message queues: listed in the namespace's mqueue filesystem (mounted by the dump
 * child in a mount namespace of its own); their messages can only be read by receiving
 * them: they are received and sent back at once, in the same order (the tree is frozen),
 * and recreated the same way at restore with their attributes, owner and mode. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <mqueue.h>
#include <stdarg.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/msg.h>
#include <sys/sem.h>
#include <sys/shm.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/log.h"
#include "proc/parse.h"
#include "core/util.h"
#include "sys/uapi.h"
#include "image/img.h"
#include "ns/ipc.h"
#include "sys/uapi.h"
#include "ns/nsrun.h"
#include "sys/syscalls.h"
#include "cr/ctx.h"
#include "ns/ns.h"

/* The sysctls of an IPC namespace, in the order they are restored (a maximum before the
 * default it bounds). */
static const char *const ipc_sysctls[] = {
	"kernel/shm_rmid_forced", "kernel/shmmax",	       "kernel/shmall",
	"kernel/shmmni",	  "kernel/msgmax",	       "kernel/msgmnb",
	"kernel/msgmni",	  "kernel/sem",		       "kernel/auto_msgmni",
	"fs/mqueue/queues_max",	  "fs/mqueue/msg_max",	       "fs/mqueue/msgsize_max",
	"fs/mqueue/msg_default",  "fs/mqueue/msgsize_default",
	/* written after the objects are made (their creation sets and consumes them): the
	 * id the next *get gets, -1 (the kernel picks) unless the task set one */
	"kernel/msg_next_id",	  "kernel/sem_next_id",	       "kernel/shm_next_id",
};
#define IPC_FIRST_LATE_SYSCTL "kernel/msg_next_id"

#define IPC_MAX_DATA (32u << 20) /* bound on queued messages + segment contents */
#define IPC_MAX_OBJS 4096u	 /* bound on the objects of one kind */
#define IPC_WAIT_MS 10000

union semun_arg {
	int val;
	struct semid_ds *buf;
	unsigned short *array;
	struct seminfo *info;
};

/* ---- dump: the child inside the namespace ---- */

struct child {
	IpcNs ns;
	size_t data; /* bytes of messages and segments so far */
};

/* An object the dump cannot carry or read: the child's error (logged by the caller as
 * "pid N's IPC namespace: ..."). */
static __attribute__((format(printf, 2, 3))) int child_err(struct child *ch, const char *fmt, ...)
{
	char msg[NSRUN_MSG_MAX];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	(void)ch;
	nsrun_error(-EOPNOTSUPP, "%s", msg);
	return -1;
}

static void *grow(void *arr, size_t n, size_t elem)
{
	return realloc(arr, (n + 1) * elem);
}

static int child_sysctls(struct child *ch)
{
	for (size_t i = 0; i < ARRAY_SIZE(ipc_sysctls); i++) {
		char path[80];
		snprintf(path, sizeof(path), "/proc/sys/%s", ipc_sysctls[i]);
		size_t len;
		char *v = read_file_at(AT_FDCWD, path, 256, &len);
		if (!v) {
			if (errno == ENOENT)
				continue; /* auto_msgmni, mqueue: not on every kernel */
			return child_err(ch, "cannot read %s: %s", path, strerror(errno));
		}
		v[strcspn(v, "\n")] = '\0';
		IpcSysctl *s = malloc(sizeof(*s));
		IpcSysctl **a = grow(ch->ns.sysctls, ch->ns.n_sysctls, sizeof(*a));
		if (!s || !a)
			return child_err(ch, "out of memory");
		ch->ns.sysctls = a;
		ipc_sysctl__init(s);
		s->name = strdup(ipc_sysctls[i]);
		s->value = v;
		a[ch->ns.n_sysctls++] = s;
		if (!s->name)
			return child_err(ch, "out of memory");
	}
	return 0;
}

static IpcPerm *new_perm(int id, const struct ipc_perm *p)
{
	IpcPerm *r = malloc(sizeof(*r));
	if (!r)
		return NULL;
	ipc_perm__init(r);
	r->id = id;
	r->key = p->__key;
	r->uid = p->uid;
	r->gid = p->gid;
	r->cuid = p->cuid;
	r->cgid = p->cgid;
	r->mode = p->mode;
	return r;
}

static int child_msgqs(struct child *ch)
{
	struct msginfo info;
	int maxidx = msgctl(0, MSG_INFO, (struct msqid_ds *)(void *)&info);
	if (maxidx < 0)
		return child_err(ch, "msgctl(MSG_INFO): %s", strerror(errno));
	for (int idx = 0; idx <= maxidx; idx++) {
		struct msqid_ds ds;
		int id = msgctl(idx, MSG_STAT_ANY, &ds);
		if (id < 0)
			continue; /* a free index */
		if (ch->ns.n_msgqs >= IPC_MAX_OBJS)
			return child_err(ch, "more than %u message queues", IPC_MAX_OBJS);
		IpcMsgQueue *q = malloc(sizeof(*q));
		IpcMsgQueue **a = grow(ch->ns.msgqs, ch->ns.n_msgqs, sizeof(*a));
		if (!q || !a)
			return child_err(ch, "out of memory");
		ch->ns.msgqs = a;
		ipc_msg_queue__init(q);
		a[ch->ns.n_msgqs++] = q;
		q->perm = new_perm(id, &ds.msg_perm);
		if (!q->perm)
			return child_err(ch, "out of memory");
		q->qbytes = ds.msg_qbytes;
		size_t cbytes = ds.__msg_cbytes, qnum = ds.msg_qnum;
		if (qnum > 1u << 20 || cbytes > IPC_MAX_DATA - ch->data)
			return child_err(ch, "message queue %d holds more than %u MiB", id,
					 IPC_MAX_DATA >> 20);
		ch->data += cbytes;
		/* every message fits in the queue's byte count */
		long *buf = malloc(sizeof(long) + cbytes + 1);
		q->msgs = calloc(qnum ? qnum : 1, sizeof(*q->msgs));
		if (!buf || !q->msgs) {
			free(buf);
			return child_err(ch, "out of memory");
		}
		for (size_t n = 0; n < qnum; n++) {
			ssize_t r = msgrcv(id, buf, cbytes + 1, (long)n, MSG_COPY | IPC_NOWAIT);
			if (r < 0) {
				int e = errno;
				free(buf);
				return child_err(ch, "copy of message %zu of queue %d: %s%s", n, id,
						 strerror(e),
						 e == ENOSYS ? " (kernel without MSG_COPY)" : "");
			}
			IpcMsg *m = malloc(sizeof(*m));
			void *d = malloc((size_t)r + 1);
			if (!m || !d) {
				free(m);
				free(d);
				free(buf);
				return child_err(ch, "out of memory");
			}
			ipc_msg__init(m);
			m->mtype = buf[0];
			memcpy(d, buf + 1, (size_t)r);
			m->data.data = d;
			m->data.len = (size_t)r;
			q->msgs[q->n_msgs++] = m;
		}
		free(buf);
	}
	return 0;
}

static int child_sems(struct child *ch)
{
	struct seminfo info;
	union semun_arg arg = { .info = &info };
	int maxidx = semctl(0, 0, SEM_INFO, arg);
	if (maxidx < 0)
		return child_err(ch, "semctl(SEM_INFO): %s", strerror(errno));
	for (int idx = 0; idx <= maxidx; idx++) {
		struct semid_ds ds;
		arg.buf = &ds;
		int id = semctl(idx, 0, SEM_STAT_ANY, arg);
		if (id < 0)
			continue;
		if (ch->ns.n_sems >= IPC_MAX_OBJS)
			return child_err(ch, "more than %u semaphore sets", IPC_MAX_OBJS);
		IpcSemSet *s = malloc(sizeof(*s));
		IpcSemSet **a = grow(ch->ns.sems, ch->ns.n_sems, sizeof(*a));
		if (!s || !a)
			return child_err(ch, "out of memory");
		ch->ns.sems = a;
		ipc_sem_set__init(s);
		a[ch->ns.n_sems++] = s;
		s->perm = new_perm(id, &ds.sem_perm);
		size_t n = ds.sem_nsems;
		unsigned short *vals = calloc(n ? n : 1, sizeof(*vals));
		s->values = calloc(n ? n : 1, sizeof(*s->values));
		if (!s->perm || !vals || !s->values) {
			free(vals);
			return child_err(ch, "out of memory");
		}
		arg.array = vals;
		if (semctl(id, 0, GETALL, arg) < 0) {
			free(vals);
			return child_err(ch, "semctl(%d, GETALL): %s", id, strerror(errno));
		}
		for (size_t i = 0; i < n; i++)
			s->values[i] = vals[i];
		s->n_values = n;
		free(vals);
	}
	return 0;
}

/* A segment marked for removal reads key IPC_PRIVATE; the key it was made with stays in
 * its file's name, "/SYSV%08x", which our attachment at @at shows in our maps. */
static int child_shm_name_key(struct child *ch, IpcShmSeg *s, const void *at)
{
	struct proc_vma *v = NULL;
	size_t n = 0;
	unsigned int key = 0;
	bool found = false;
	if (proc_read_self_maps(&v, &n))
		return child_err(ch, "cannot read our own maps");
	for (size_t i = 0; i < n && !found; i++)
		if (v[i].start == (uint64_t)(uintptr_t)at && v[i].path)
			found = sscanf(v[i].path, "/SYSV%8x", &key) == 1;
	proc_vmas_free(v, n);
	if (!found)
		return child_err(ch, "shared memory segment %d: its name is not in our maps",
				 s->perm->id);
	s->has_dest = s->dest = true;
	s->has_name_key = true;
	s->name_key = key;
	return 0;
}

static int child_shms(struct child *ch)
{
	struct shm_info info;
	int maxidx = shmctl(0, SHM_INFO, (struct shmid_ds *)(void *)&info);
	if (maxidx < 0)
		return child_err(ch, "shmctl(SHM_INFO): %s", strerror(errno));
	for (int idx = 0; idx <= maxidx; idx++) {
		struct shmid_ds ds;
		int id = shmctl(idx, SHM_STAT_ANY, &ds);
		if (id < 0)
			continue;
		if (ch->ns.n_shms >= IPC_MAX_OBJS)
			return child_err(ch, "more than %u shared memory segments", IPC_MAX_OBJS);
		if (ds.shm_segsz > IPC_MAX_DATA - ch->data)
			return child_err(ch, "shared memory segment %d: more than %u MiB of SysV data",
					 id, IPC_MAX_DATA >> 20);
		ch->data += ds.shm_segsz;
		IpcShmSeg *s = malloc(sizeof(*s));
		IpcShmSeg **a = grow(ch->ns.shms, ch->ns.n_shms, sizeof(*a));
		if (!s || !a)
			return child_err(ch, "out of memory");
		ch->ns.shms = a;
		ipc_shm_seg__init(s);
		a[ch->ns.n_shms++] = s;
		s->perm = new_perm(id, &ds.shm_perm);
		s->size = ds.shm_segsz;
		s->data.data = malloc(ds.shm_segsz ? ds.shm_segsz : 1);
		if (!s->perm || !s->data.data)
			return child_err(ch, "out of memory");
		void *p = shmat(id, NULL, SHM_RDONLY);
		if (p == (void *)-1)
			return child_err(ch, "shmat(%d): %s", id, strerror(errno));
		memcpy(s->data.data, p, ds.shm_segsz);
		s->data.len = ds.shm_segsz;
		/* SHM_HUGETLB shows only in the attachment */
		uint32_t kb = 0;
		int ret = proc_self_huge_kb((uint64_t)(uintptr_t)p, &kb);
		if (ret) {
			shmdt(p);
			return child_err(ch, "shared memory segment %d: its attachment is not in our "
					 "smaps", id);
		}
		s->has_huge_kb = kb != 0;
		s->huge_kb = kb;
		ret = (ds.shm_perm.mode & SHM_DEST) ? child_shm_name_key(ch, s, p) : 0;
		shmdt(p);
		if (ret)
			return ret;
	}
	return 0;
}

/* A segment marked for removal is made again with the key it was made with, and removed
 * once attached: no other segment may hold that key meanwhile. */
static int child_shm_keys(struct child *ch)
{
	for (size_t i = 0; i < ch->ns.n_shms; i++) {
		const IpcShmSeg *d = ch->ns.shms[i];
		if (!d->dest || d->name_key == IPC_PRIVATE)
			continue;
		for (size_t k = 0; k < ch->ns.n_shms; k++) {
			const IpcShmSeg *o = ch->ns.shms[k];
			key_t ok = o->dest ? (key_t)o->name_key : o->perm->key;
			if (k != i && ok == (key_t)d->name_key)
				return child_err(ch, "shared memory segment %d, marked for removal, "
						 "was made with key %#x, which segment %d holds "
						 "now: not supported yet", d->perm->id,
						 d->name_key, o->perm->id);
		}
	}
	return 0;
}

/* One POSIX message queue: attributes from the mqueue filesystem and mq_getattr; the
 * messages are received (highest priority first, oldest first within a priority) and
 * sent back at once in the same order, which gives the same queue. A queue with a
 * registered notification is refused (the re-send could fire it). */
static int child_mqueue(struct child *ch, int dirfd, const char *name)
{
	struct stat st;
	if (fstatat(dirfd, name, &st, 0) < 0)
		return child_err(ch, "stat of POSIX message queue /%s: %s", name, strerror(errno));
	char *info = read_file_at(dirfd, name, 256, NULL);
	if (!info)
		return child_err(ch, "read POSIX message queue /%s: %s", name, strerror(errno));
	char *np = strstr(info, "NOTIFY_PID:");
	long long npid = np ? strtoll(np + 11, NULL, 10) : -1;
	free(info);
	if (npid != 0)
		return child_err(ch, "POSIX message queue /%s has a notification registered: not "
				 "supported yet", name);
	char qname[NAME_MAX + 2];
	snprintf(qname, sizeof(qname), "/%s", name);
	mqd_t q = mq_open(qname, O_RDWR | O_NONBLOCK);
	if (q == (mqd_t)-1)
		return child_err(ch, "mq_open %s: %s", qname, strerror(errno));
	struct mq_attr at;
	if (mq_getattr(q, &at) < 0 || at.mq_msgsize <= 0 || at.mq_msgsize > (long)IPC_MAX_DATA ||
	    at.mq_curmsgs < 0 || at.mq_curmsgs > 65536) {
		mq_close(q);
		return child_err(ch, "mq_getattr %s: %s", qname, strerror(errno));
	}
	if ((size_t)at.mq_curmsgs * (size_t)at.mq_msgsize > IPC_MAX_DATA - ch->data) {
		mq_close(q);
		return child_err(ch, "POSIX message queue %s: more than %u MiB of IPC data", qname,
				 IPC_MAX_DATA >> 20);
	}
	IpcMqueue *m = malloc(sizeof(*m));
	IpcMqueue **a = grow(ch->ns.mqueues, ch->ns.n_mqueues, sizeof(*a));
	if (!m || !a) {
		mq_close(q);
		return child_err(ch, "out of memory");
	}
	ch->ns.mqueues = a;
	ipc_mqueue__init(m);
	a[ch->ns.n_mqueues++] = m;
	m->name = strdup(name);
	m->mode = st.st_mode & 07777;
	m->uid = st.st_uid;
	m->gid = st.st_gid;
	m->maxmsg = at.mq_maxmsg;
	m->msgsize = at.mq_msgsize;
	m->msgs = calloc((size_t)at.mq_curmsgs + 1, sizeof(*m->msgs));
	if (!m->name || !m->msgs) {
		mq_close(q);
		return child_err(ch, "out of memory");
	}
	for (long i = 0; i < at.mq_curmsgs; i++) {
		IpcMqMsg *msg = malloc(sizeof(*msg));
		void *d = malloc((size_t)at.mq_msgsize);
		if (!msg || !d) {
			free(msg);
			free(d);
			break; /* the messages received so far are sent back below */
		}
		ipc_mq_msg__init(msg);
		unsigned prio;
		ssize_t n = mq_receive(q, d, (size_t)at.mq_msgsize, &prio);
		if (n < 0) {
			free(msg);
			free(d);
			break;
		}
		msg->prio = prio;
		msg->data.data = d;
		msg->data.len = (size_t)n;
		m->msgs[m->n_msgs++] = msg;
		ch->data += (size_t)n;
	}
	int bad = m->n_msgs != (size_t)at.mq_curmsgs;
	for (size_t i = 0; i < m->n_msgs; i++)
		if (mq_send(q, (const char *)m->msgs[i]->data.data, m->msgs[i]->data.len,
			    m->msgs[i]->prio) < 0) {
			mq_close(q);
			return child_err(ch, "POSIX message queue %s: message %zu could not be put "
					 "back: %s", qname, i, strerror(errno));
		}
	mq_close(q);
	if (bad)
		return child_err(ch, "POSIX message queue %s: %zu of %ld messages read", qname,
				 m->n_msgs, (long)at.mq_curmsgs);
	return 0;
}

/* POSIX message queues live in the namespace's mqueue filesystem: mounted privately (a
 * mount namespace of the child's own) to list them. */
static int child_mqueues(struct child *ch)
{
	if (unshare(CLONE_NEWNS) < 0 || mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0)
		return child_err(ch, "private mount namespace: %s", strerror(errno));
	if (mount("mqueue", "/tmp", "mqueue", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL) < 0) {
		if (errno == ENODEV)
			return 0; /* no POSIX message queues in this kernel */
		return child_err(ch, "mount mqueue: %s", strerror(errno));
	}
	DIR *d = opendir("/tmp");
	if (!d)
		return child_err(ch, "open the mqueue filesystem: %s", strerror(errno));
	struct dirent *de;
	int ret = 0;
	while (!ret && (de = readdir(d))) {
		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		if (ch->ns.n_mqueues >= IPC_MAX_OBJS)
			ret = child_err(ch, "more than %u POSIX message queues", IPC_MAX_OBJS);
		else
			ret = child_mqueue(ch, dirfd(d), de->d_name);
	}
	closedir(d);
	return ret;
}

static ProtobufCMessage *dump_child(void *arg, int *err)
{
	struct child *ch = arg;
	ipc_ns__init(&ch->ns);
	if (child_sysctls(ch) || child_msgqs(ch) || child_sems(ch) || child_shms(ch) ||
	    child_shm_keys(ch) ||
	    child_mqueues(ch)) {
		*err = -EOPNOTSUPP;
		return NULL;
	}
	return &ch->ns.base;
}

int ipc_dump_ns(pid_t pid, IpcNs **out)
{
	char what[64], prefix[64];
	snprintf(what, sizeof(what), "the IPC namespace of pid %d", pid);
	snprintf(prefix, sizeof(prefix), "pid %d's IPC namespace: ", pid);
	/* read inside the owning user namespace: owners as the namespace's tasks see them */
	struct nsrun r = { .tag = "ipc", .what = what, .err_prefix = prefix, .n_ns = 1,
			   .via_owner = true, .timeout_ms = IPC_WAIT_MS, .max_reply = IMG_MAX_META };
	_cleanup_close_ int nsfd = ns_open_of(pid, "ipc", "ipc");
	if (nsfd < 0)
		return nsfd;
	r.ns[0] = (struct nsrun_ns){ nsfd, CLONE_NEWIPC };
	struct child ch;
	memset(&ch, 0, sizeof(ch));
	ProtobufCMessage *m;
	int ret = ns_run_msg(&r, &ipc_ns__descriptor, dump_child, &ch, &m);
	if (ret)
		return ret;
	IpcNs *ns = (IpcNs *)m;
	pr_info("ipc: pid %d: %zu sysctls, %zu message queues, %zu semaphore sets, %zu shm "
		"segments, %zu POSIX message queues",
		pid, ns->n_sysctls, ns->n_msgqs, ns->n_sems, ns->n_shms, ns->n_mqueues);
	*out = ns;
	return 0;
}

/* ---- restore: in the restore child, inside the new namespace ---- */

/* stasis's /proc in the restore child (ipc_restore_ns): the task's own may be gone
 * (pivot_root); an IPC sysctl file shows the IPC namespace of whoever opens it. */
static int rst_proc_dfd = -1;

static int write_proc_sys(const char *name, const char *val)
{
	char path[80];
	snprintf(path, sizeof(path), "%ssys/%s", rst_proc_dfd >= 0 ? "" : "/proc/", name);
	_cleanup_close_ int fd = openat(rst_proc_dfd >= 0 ? rst_proc_dfd : AT_FDCWD, path,
					O_WRONLY | O_CLOEXEC);
	if (fd < 0)
		return pr_perror("restore: open %s", path);
	ssize_t n = write(fd, val, strlen(val));
	if (n != (ssize_t)strlen(val))
		return n < 0 ? pr_perror("restore: write '%s' to %s", val, path) : -EIO;
	return 0;
}

/* The sysctls of the namespace, every name checked first; @late: the *_next_id ones
 * (after the objects), else the others. */
static int restore_sysctls(const IpcNs *ns, bool late)
{
	for (size_t i = 0; i < ns->n_sysctls; i++) {
		const IpcSysctl *s = ns->sysctls[i];
		bool known = false;
		for (size_t k = 0; k < ARRAY_SIZE(ipc_sysctls); k++)
			known |= !strcmp(s->name, ipc_sysctls[k]);
		if (!known) {
			pr_err("image: unknown IPC sysctl '%s'", s->name);
			return -EINVAL;
		}
		if (!s->value[0] || strspn(s->value, "0123456789 \t-") != strlen(s->value) ||
		    strlen(s->value) > 128) {
			pr_err("image: malformed value of sysctl %s", s->name);
			return -EINVAL;
		}
	}
	size_t first_late = 0;
	while (strcmp(ipc_sysctls[first_late], IPC_FIRST_LATE_SYSCTL))
		first_late++;
	size_t from = late ? first_late : 0, to = late ? ARRAY_SIZE(ipc_sysctls) : first_late;
	for (size_t k = from; k < to; k++) {
		for (size_t i = 0; i < ns->n_sysctls; i++) {
			const IpcSysctl *s = ns->sysctls[i];
			if (strcmp(s->name, ipc_sysctls[k]))
				continue;
			/* -1 (the kernel picks) cannot be written; a *get leaves it so */
			if (late && !strcmp(s->value, "-1"))
				continue;
			int ret = write_proc_sys(s->name, s->value);
			if (ret)
				return ret;
		}
	}
	return 0;
}

enum ipc_kind { K_MSG, K_SEM, K_SHM };
static const char *const kind_name[] = { "msg", "sem", "shm" };

/* Create the object of @p with its id: next_id, then *get as its creator. */
static int create_obj(enum ipc_kind k, const IpcPerm *p, key_t key, size_t arg, int extra)
{
	char name[32], val[16];
	if (p->id < 0) {
		pr_err("image: invalid SysV %s id %d", kind_name[k], p->id);
		return -EINVAL;
	}
	snprintf(name, sizeof(name), "kernel/%s_next_id", kind_name[k]);
	snprintf(val, sizeof(val), "%d", p->id);
	int ret = write_proc_sys(name, val);
	if (ret)
		return ret;
	uid_t ru, eu, su;
	gid_t rg, eg, sg;
	if (getresuid(&ru, &eu, &su) < 0 || getresgid(&rg, &eg, &sg) < 0)
		return pr_perror("restore: getresuid");
	bool as_creator = p->cuid != eu || p->cgid != eg;
	if (as_creator && (setresgid((gid_t)-1, p->cgid, (gid_t)-1) < 0 ||
			   setresuid((uid_t)-1, p->cuid, (uid_t)-1) < 0)) {
		ret = pr_perror("restore: become creator %u:%u of SysV %s %d", p->cuid, p->cgid,
				kind_name[k], p->id);
		(void)!setresuid((uid_t)-1, eu, (uid_t)-1);
		(void)!setresgid((gid_t)-1, eg, (gid_t)-1);
		return ret;
	}
	int fl = IPC_CREAT | IPC_EXCL | 0600 | extra;
	int id = k == K_MSG ? msgget(key, fl) : k == K_SEM ? semget(key, (int)arg, fl)
							    : shmget(key, arg, fl);
	int e = errno;
	if (as_creator && (setresuid((uid_t)-1, eu, (uid_t)-1) < 0 ||
			   setresgid((gid_t)-1, eg, (gid_t)-1) < 0))
		return pr_perror("restore: back to %u:%u", eu, eg);
	if (id < 0)
		return pr_errno(-e, "restore: create SysV %s %d (key %#x)", kind_name[k], p->id,
				(unsigned)key);
	if (id != p->id) {
		pr_err("restore: SysV %s got id %d instead of %d", kind_name[k], id, p->id);
		return -EEXIST;
	}
	return 0;
}

static int restore_msgq(const IpcMsgQueue *q)
{
	size_t total = 0;
	for (size_t i = 0; i < q->n_msgs; i++) {
		if (q->msgs[i]->mtype <= 0 || q->msgs[i]->data.len > IPC_MAX_DATA) {
			pr_err("image: invalid message in queue %d", q->perm->id);
			return -EINVAL;
		}
		total += q->msgs[i]->data.len;
	}
	int ret = create_obj(K_MSG, q->perm, q->perm->key, 0, 0);
	if (ret)
		return ret;
	int id = q->perm->id;
	struct msqid_ds ds;
	if (msgctl(id, IPC_STAT, &ds) < 0)
		return pr_perror("restore: msgctl(%d, IPC_STAT)", id);
	ds.msg_perm.uid = q->perm->uid;
	ds.msg_perm.gid = q->perm->gid;
	ds.msg_perm.mode = q->perm->mode & 0777;
	/* room for every message first, the dumped size after */
	ds.msg_qbytes = q->qbytes > total ? q->qbytes : total;
	if (msgctl(id, IPC_SET, &ds) < 0)
		return pr_perror("restore: msgctl(%d, IPC_SET)", id);
	for (size_t i = 0; i < q->n_msgs; i++) {
		const IpcMsg *m = q->msgs[i];
		long *buf = malloc(sizeof(long) + m->data.len + 1);
		if (!buf)
			return -ENOMEM;
		buf[0] = m->mtype;
		if (m->data.len)
			memcpy(buf + 1, m->data.data, m->data.len);
		int r = msgsnd(id, buf, m->data.len, IPC_NOWAIT);
		free(buf);
		if (r < 0)
			return pr_perror("restore: message %zu of queue %d (%zu bytes)", i, id,
					 m->data.len);
	}
	if (ds.msg_qbytes != q->qbytes) {
		ds.msg_qbytes = q->qbytes;
		if (msgctl(id, IPC_SET, &ds) < 0)
			return pr_perror("restore: msgctl(%d, IPC_SET qbytes)", id);
	}
	return 0;
}

static int restore_sem(const IpcSemSet *s)
{
	if (!s->n_values || s->n_values > 65536) {
		pr_err("image: semaphore set %d has %zu semaphores", s->perm->id, s->n_values);
		return -EINVAL;
	}
	for (size_t i = 0; i < s->n_values; i++)
		if (s->values[i] > 32767) {
			pr_err("image: semaphore value %u out of range", s->values[i]);
			return -EINVAL;
		}
	int ret = create_obj(K_SEM, s->perm, s->perm->key, s->n_values, 0);
	if (ret)
		return ret;
	int id = s->perm->id;
	unsigned short *vals = calloc(s->n_values, sizeof(*vals));
	if (!vals)
		return -ENOMEM;
	for (size_t i = 0; i < s->n_values; i++)
		vals[i] = (unsigned short)s->values[i];
	union semun_arg arg = { .array = vals };
	int r = semctl(id, 0, SETALL, arg);
	free(vals);
	if (r < 0)
		return pr_perror("restore: semctl(%d, SETALL)", id);
	struct semid_ds ds;
	arg.buf = &ds;
	if (semctl(id, 0, IPC_STAT, arg) < 0)
		return pr_perror("restore: semctl(%d, IPC_STAT)", id);
	ds.sem_perm.uid = s->perm->uid;
	ds.sem_perm.gid = s->perm->gid;
	ds.sem_perm.mode = s->perm->mode & 0777;
	if (semctl(id, 0, IPC_SET, arg) < 0)
		return pr_perror("restore: semctl(%d, IPC_SET)", id);
	return 0;
}

static int restore_shm(const IpcShmSeg *s)
{
	if (s->data.len != s->size || s->size > IPC_MAX_DATA) {
		pr_err("image: shared memory segment %d: %zu bytes of data for %llu", s->perm->id,
		       s->data.len, (unsigned long long)s->size);
		return -EINVAL;
	}
	uint32_t kb = s->has_huge_kb ? s->huge_kb : 0;
	if (kb && (kb < 4 || kb > (1u << 20) || (kb & (kb - 1)))) {
		pr_err("image: shared memory segment %d: huge pages of %u KiB", s->perm->id, kb);
		return -EINVAL;
	}
	int huge = kb ? SHM_HUGETLB | (__builtin_ctz(kb) + 10) << SHM_HUGE_SHIFT : 0;
	int ret = create_obj(K_SHM, s->perm, s->dest ? (key_t)s->name_key : s->perm->key, s->size,
			     huge);
	if (ret)
		return ret;
	int id = s->perm->id;
	void *p = shmat(id, NULL, 0);
	if (p == (void *)-1)
		return pr_perror("restore: shmat(%d)", id);
	if (s->size)
		memcpy(p, s->data.data, s->size);
	shmdt(p);
	struct shmid_ds ds;
	if (shmctl(id, IPC_STAT, &ds) < 0)
		return pr_perror("restore: shmctl(%d, IPC_STAT)", id);
	ds.shm_perm.uid = s->perm->uid;
	ds.shm_perm.gid = s->perm->gid;
	ds.shm_perm.mode = s->perm->mode & 0777;
	if (shmctl(id, IPC_SET, &ds) < 0)
		return pr_perror("restore: shmctl(%d, IPC_SET)", id);
	if ((s->perm->mode & SHM_LOCKED) && shmctl(id, SHM_LOCK, NULL) < 0)
		return pr_perror("restore: shmctl(%d, SHM_LOCK)", id);
	return 0;
}

static int restore_mqueue(const IpcMqueue *m)
{
	if (!m->name[0] || strchr(m->name, '/') || strlen(m->name) > NAME_MAX ||
	    m->maxmsg <= 0 || m->maxmsg > 65536 || m->msgsize <= 0 ||
	    m->msgsize > (int64_t)IPC_MAX_DATA || m->n_msgs > (size_t)m->maxmsg) {
		pr_err("image: malformed POSIX message queue '%s'", m->name);
		return -EINVAL;
	}
	char qname[NAME_MAX + 2];
	snprintf(qname, sizeof(qname), "/%s", m->name);
	struct mq_attr at = { .mq_maxmsg = m->maxmsg, .mq_msgsize = m->msgsize };
	mqd_t q = mq_open(qname, O_CREAT | O_EXCL | O_WRONLY | O_NONBLOCK | O_CLOEXEC, 0600, &at);
	if (q == (mqd_t)-1)
		return pr_perror("restore: mq_open %s (maxmsg %lld, msgsize %lld)", qname,
				 (long long)m->maxmsg, (long long)m->msgsize);
	int ret = 0;
	for (size_t i = 0; i < m->n_msgs && !ret; i++) {
		const IpcMqMsg *msg = m->msgs[i];
		if (msg->data.len > (size_t)m->msgsize || msg->prio >= 32768) {
			pr_err("image: malformed message %zu of POSIX message queue %s", i, qname);
			ret = -EINVAL;
		} else if (mq_send(q, (const char *)msg->data.data, msg->data.len, msg->prio) < 0) {
			ret = pr_perror("restore: mq_send to %s", qname);
		}
	}
	/* the mqd is a file descriptor of the queue's inode */
	if (!ret && fchown(q, m->uid, m->gid) < 0)
		ret = pr_perror("restore: chown of POSIX message queue %s", qname);
	if (!ret && fchmod(q, m->mode & 07777) < 0)
		ret = pr_perror("restore: chmod of POSIX message queue %s", qname);
	mq_close(q);
	return ret;
}

int ipc_restore_ns(const IpcNs *ns, pid_t pid, int proc_dfd)
{
	rst_proc_dfd = proc_dfd;
	int ret = restore_sysctls(ns, false);
	for (size_t i = 0; i < ns->n_msgqs && !ret; i++)
		ret = restore_msgq(ns->msgqs[i]);
	for (size_t i = 0; i < ns->n_sems && !ret; i++)
		ret = restore_sem(ns->sems[i]);
	for (size_t i = 0; i < ns->n_shms && !ret; i++)
		ret = restore_shm(ns->shms[i]);
	for (size_t i = 0; i < ns->n_mqueues && !ret; i++)
		ret = restore_mqueue(ns->mqueues[i]);
	if (!ret)
		ret = restore_sysctls(ns, true);
	if (ret)
		pr_err("restore: IPC namespace of pid %d failed", pid);
	return ret;
}
