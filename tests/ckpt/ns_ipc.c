// stasis-test: timeout=30 needs=root
/* IPC namespaces: the root enters an IPC namespace of its own, changes sysctls
 * (kernel.msgmax, fs.mqueue.msg_max), creates a message queue with 3 messages of
 * different types, a semaphore set with values, a shared memory segment with data
 * (detached) and a POSIX message queue with messages of several priorities, after creating and removing objects so that the ids carry a sequence
 * number; it forks a child that stays in the namespace, and a child G that enters an IPC
 * namespace of its own (two in the tree) with a queue under the same key and its own
 * kernel.msgmax. After restore: same ids, owners,
 * modes, queue size, messages in order, semaphore values, segment contents, sysctls; the
 * namespace is not the parent's and the parent's namespace has none of the keys; the id
 * the task chose for its next queue (kernel.msg_next_id) is still the next one. */
#include "lib.h"

#include <errno.h>
#include <fcntl.h>
#include <mqueue.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/msg.h>
#include <sys/sem.h>
#include <sys/shm.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define MSG_KEY 0x53545301
#define SEM_KEY 0x53545302
#define SHM_KEY 0x53545303
#define SHM_SIZE (3 * 4096 + 96)
#define SHM_SEED 0x1234abcdULL
#define MSGMAX "12345"
#define MQ_NAME "/stasis-ns-ipc"

union semun_arg {
	int val;
	struct semid_ds *buf;
	unsigned short *array;
};

static const struct {
	long type;
	const char *text;
} msgs[] = { { 5, "five" }, { 2, "the second message, longer" }, { 7, "" } };
static const unsigned short semvals[] = { 1, 0, 42, 32767 };
/* sent in this order; received by priority, then age */
static const struct {
	unsigned prio;
	const char *text;
} mqmsgs[] = { { 1, "low-1" }, { 5, "high" }, { 1, "low-2, longer" } };
static const int mq_order[] = { 1, 0, 2 };

struct msgbuf_ {
	long mtype;
	char text[256];
};

static int write_sysctl(const char *path, const char *val)
{
	int fd = open(path, O_WRONLY);
	if (fd < 0)
		return -1;
	ssize_t n = write(fd, val, strlen(val));
	close(fd);
	return n == (ssize_t)strlen(val) ? 0 : -1;
}

static int sysctl_is(const char *path, const char *val)
{
	char buf[64] = "";
	int fd = open(path, O_RDONLY);
	if (fd < 0)
		return 0;
	ssize_t n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return 0;
	buf[strcspn(buf, "\n")] = '\0';
	return !strcmp(buf, val);
}

static int same_ns(pid_t a, pid_t b)
{
	char pa[64], pb[64], la[64], lb[64];
	snprintf(pa, sizeof(pa), "/proc/%d/ns/ipc", a);
	snprintf(pb, sizeof(pb), "/proc/%d/ns/ipc", b);
	ssize_t n = readlink(pa, la, sizeof(la) - 1);
	ssize_t m = readlink(pb, lb, sizeof(lb) - 1);
	if (n <= 0 || m <= 0)
		return -1;
	la[n] = lb[m] = '\0';
	return !strcmp(la, lb);
}

/* In a child that joins @pid's IPC namespace: none of the test's keys exist there. */
static int keys_absent_in(pid_t pid)
{
	pid_t c = fork();
	if (c == 0) {
		char p[64];
		snprintf(p, sizeof(p), "/proc/%d/ns/ipc", pid);
		int fd = open(p, O_RDONLY);
		if (fd >= 0 && setns(fd, CLONE_NEWIPC) < 0 && errno == EPERM)
			_exit(0); /* in a rootless container the host's is out of reach */
		if (fd < 0)
			_exit(2);
		if (msgget(MSG_KEY, 0) >= 0 || semget(SEM_KEY, 0, 0) >= 0 ||
		    shmget(SHM_KEY, 0, 0) >= 0 || mq_open(MQ_NAME, O_RDONLY) != (mqd_t)-1)
			_exit(1);
		_exit(0);
	}
	int st;
	if (c < 0 || waitpid(c, &st, 0) != c)
		return 0;
	return WIFEXITED(st) && WEXITSTATUS(st) == 0;
}

int main(int argc, char **argv)
{
	int req[2], ans[2];

	test_init(argc, argv);
	if (unshare(CLONE_NEWIPC) < 0)
		test_fail("unshare: %s", strerror(errno));
	if (write_sysctl("/proc/sys/kernel/msgmax", MSGMAX) < 0 ||
	    write_sysctl("/proc/sys/fs/mqueue/msg_max", "17") < 0)
		test_fail("sysctl: %s", strerror(errno));
	/* objects created and removed: the ids then carry sequence numbers */
	for (int i = 0; i < 3; i++) {
		int m = msgget(IPC_PRIVATE, 0600), s = semget(IPC_PRIVATE, 1, 0600),
		    h = shmget(IPC_PRIVATE, 4096, 0600);
		if (m < 0 || s < 0 || h < 0)
			test_fail("dummy objects: %s", strerror(errno));
		if (i == 1)
			continue; /* leave a hole at index 1 of the next round */
		msgctl(m, IPC_RMID, NULL);
		semctl(s, 0, IPC_RMID);
		shmctl(h, IPC_RMID, NULL);
	}
	int qid = msgget(MSG_KEY, IPC_CREAT | IPC_EXCL | 0600);
	int sid = semget(SEM_KEY, 4, IPC_CREAT | IPC_EXCL | 0600);
	int hid = shmget(SHM_KEY, SHM_SIZE, IPC_CREAT | IPC_EXCL | 0600);
	int pq = msgget(IPC_PRIVATE, 0600); /* an empty private queue */
	if (qid < 0 || sid < 0 || hid < 0 || pq < 0)
		test_fail("objects: %s", strerror(errno));
	struct msqid_ds mds;
	TEST_CHECK(msgctl(qid, IPC_STAT, &mds) == 0, "msg stat");
	mds.msg_perm.mode = 0640;
	mds.msg_perm.gid = 12;
	mds.msg_qbytes = 4000;
	TEST_CHECK(msgctl(qid, IPC_SET, &mds) == 0, "msg set: %s", strerror(errno));
	for (size_t i = 0; i < 3; i++) {
		struct msgbuf_ b = { .mtype = msgs[i].type };
		strcpy(b.text, msgs[i].text);
		TEST_CHECK(msgsnd(qid, &b, strlen(b.text), IPC_NOWAIT) == 0, "msgsnd: %s",
			   strerror(errno));
	}
	union semun_arg arg = { .array = (unsigned short *)semvals };
	TEST_CHECK(semctl(sid, 0, SETALL, arg) == 0, "SETALL: %s", strerror(errno));
	struct shmid_ds hds;
	TEST_CHECK(shmctl(hid, IPC_STAT, &hds) == 0, "shm stat");
	hds.shm_perm.uid = 1000;
	hds.shm_perm.mode = 0604;
	TEST_CHECK(shmctl(hid, IPC_SET, &hds) == 0, "shm set: %s", strerror(errno));
	void *p = shmat(hid, NULL, 0);
	TEST_CHECK(p != (void *)-1, "shmat: %s", strerror(errno));
	test_fill(p, SHM_SIZE, SHM_SEED);
	TEST_CHECK(shmdt(p) == 0, "shmdt");
	struct mq_attr at = { .mq_maxmsg = 8, .mq_msgsize = 64 };
	mqd_t mq = mq_open(MQ_NAME, O_CREAT | O_EXCL | O_RDWR, 0640, &at);
	TEST_CHECK(mq != (mqd_t)-1, "mq_open: %s", strerror(errno));
	for (size_t i = 0; i < 3; i++)
		TEST_CHECK(mq_send(mq, mqmsgs[i].text, strlen(mqmsgs[i].text), mqmsgs[i].prio) == 0,
			   "mq_send: %s", strerror(errno));
	TEST_CHECK(fchown(mq, 0, 12) == 0, "fchown mq: %s", strerror(errno));
	mq_close(mq);
	test_msg("ids: msg %d (private %d), sem %d, shm %d", qid, pq, sid, hid);

	if (pipe(req) < 0 || pipe(ans) < 0)
		test_fail("pipe");
	pid_t root = getpid();
	pid_t child = fork();
	if (child == 0) {
		signal(SIGTERM, SIG_IGN);
		close(req[1]);
		close(ans[0]);
		char c;
		while (read(req[0], &c, 1) == 1) {
			struct msqid_ds d;
			char ok = same_ns(getpid(), root) == 1 && msgctl(qid, IPC_STAT, &d) == 0 &&
						  d.msg_qnum == 3 && d.msg_perm.__key == MSG_KEY
					  ? 'y'
					  : 'n';
			if (write(ans[1], &ok, 1) != 1)
				_exit(2);
		}
		_exit(0);
	}
	close(req[0]);
	close(ans[1]);
	char c = '?', ok = 'n';
	TEST_CHECK(write(req[1], &c, 1) == 1 && read(ans[0], &ok, 1) == 1 && ok == 'y',
		   "child setup");
	/* a second IPC namespace in the tree: G's own, with a queue under the same key and
	 * its own kernel.msgmax */
	int req2[2], ans2[2];
	if (pipe(req2) < 0 || pipe(ans2) < 0)
		test_fail("pipe");
	pid_t g = fork();
	if (g == 0) {
		signal(SIGTERM, SIG_IGN);
		close(req2[1]);
		close(ans2[0]);
		struct msgbuf_ b = { .mtype = 9 };
		strcpy(b.text, "second");
		int q2 = -1;
		if (unshare(CLONE_NEWIPC) < 0 || write_sysctl("/proc/sys/kernel/msgmax", "4321") < 0 ||
		    (q2 = msgget(MSG_KEY, IPC_CREAT | IPC_EXCL | 0600)) < 0 ||
		    msgsnd(q2, &b, strlen(b.text), IPC_NOWAIT) < 0)
			_exit(3);
		while (read(req2[0], &c, 1) == 1) {
			struct msqid_ds d;
			ok = same_ns(getpid(), root) == 0 && msgget(MSG_KEY, 0) == q2 &&
					     msgctl(q2, IPC_STAT, &d) == 0 && d.msg_qnum == 1 &&
					     sysctl_is("/proc/sys/kernel/msgmax", "4321")
				     ? 'y'
				     : 'n';
			if (write(ans2[1], &ok, 1) != 1)
				_exit(2);
		}
		_exit(0);
	}
	close(req2[0]);
	close(ans2[1]);
	TEST_CHECK(g > 0 && write(req2[1], &c, 1) == 1 && read(ans2[0], &ok, 1) == 1 && ok == 'y',
		   "second IPC namespace setup");
	/* the id its next message queue gets, chosen by the task (kept across the restore,
	 * although restoring the queues sets and consumes it) */
	TEST_CHECK(write_sysctl("/proc/sys/kernel/msg_next_id", "4242") == 0,
		   "set kernel.msg_next_id");
	test_ready();
	test_wait();
	if (test_sabotage()) {
		struct msgbuf_ b;
		msgrcv(qid, &b, sizeof(b.text), 0, IPC_NOWAIT);
	}
	/* (a pid namespace's init cannot see its parent: nothing to compare with) */
	TEST_CHECK(getppid() == 0 || same_ns(getpid(), getppid()) == 0,
		   "the root is not in an IPC namespace of its own");
	TEST_CHECK(getppid() == 0 || keys_absent_in(getppid()),
		   "the parent's IPC namespace has the test's objects");
	TEST_CHECK(sysctl_is("/proc/sys/kernel/msgmax", MSGMAX), "kernel.msgmax lost");
	TEST_CHECK(sysctl_is("/proc/sys/fs/mqueue/msg_max", "17"), "fs.mqueue.msg_max lost");
	TEST_CHECK(sysctl_is("/proc/sys/kernel/msg_next_id", "4242"), "kernel.msg_next_id lost");
	int next = msgget(IPC_PRIVATE, IPC_CREAT | 0600);
	TEST_CHECK(next == 4242, "the next message queue got id %d, not the 4242 chosen", next);
	if (next >= 0)
		msgctl(next, IPC_RMID, NULL);
	TEST_CHECK(sysctl_is("/proc/sys/kernel/sem_next_id", "-1"), "kernel.sem_next_id set");
	TEST_CHECK(write(req[1], &c, 1) == 1 && read(ans[0], &ok, 1) == 1, "no answer");
	TEST_CHECK(ok == 'y', "the child does not see the queue in the root's IPC namespace");
	TEST_CHECK(write(req2[1], &c, 1) == 1 && read(ans2[0], &ok, 1) == 1 && ok == 'y',
		   "G's IPC namespace (its queue under the same key, its msgmax) was not restored "
		   "apart from the root's");

	/* message queue */
	TEST_CHECK(msgget(MSG_KEY, 0) == qid, "queue key %#x: id %d, not %d", MSG_KEY,
		   msgget(MSG_KEY, 0), qid);
	TEST_CHECK(msgctl(qid, IPC_STAT, &mds) == 0, "msg stat after restore: %s", strerror(errno));
	TEST_CHECK(mds.msg_qnum == 3, "%lu messages", (unsigned long)mds.msg_qnum);
	TEST_CHECK(mds.msg_qbytes == 4000 && (mds.msg_perm.mode & 0777) == 0640 &&
			   mds.msg_perm.gid == 12,
		   "queue attributes: qbytes %lu mode %o gid %u", (unsigned long)mds.msg_qbytes,
		   mds.msg_perm.mode, mds.msg_perm.gid);
	struct msqid_ds pds;
	TEST_CHECK(msgctl(pq, IPC_STAT, &pds) == 0 && pds.msg_perm.__key == IPC_PRIVATE &&
			   pds.msg_qnum == 0,
		   "private queue %d lost", pq);
	for (size_t i = 0; i < 3; i++) {
		struct msgbuf_ b;
		ssize_t n = msgrcv(qid, &b, sizeof(b.text), 0, IPC_NOWAIT);
		TEST_CHECK(n == (ssize_t)strlen(msgs[i].text) && b.mtype == msgs[i].type &&
				   !memcmp(b.text, msgs[i].text, (size_t)n),
			   "message %zu: %zd bytes, type %ld", i, n, n >= 0 ? b.mtype : -1L);
	}
	/* semaphores */
	TEST_CHECK(semget(SEM_KEY, 0, 0) == sid, "semaphore key: id %d, not %d",
		   semget(SEM_KEY, 0, 0), sid);
	unsigned short vals[4] = { 9, 9, 9, 9 };
	arg.array = vals;
	TEST_CHECK(semctl(sid, 0, GETALL, arg) == 0, "GETALL: %s", strerror(errno));
	TEST_CHECK(!memcmp(vals, semvals, sizeof(vals)), "semaphore values %u %u %u %u", vals[0],
		   vals[1], vals[2], vals[3]);
	/* shared memory */
	TEST_CHECK(shmget(SHM_KEY, 0, 0) == hid, "segment key: id %d, not %d",
		   shmget(SHM_KEY, 0, 0), hid);
	TEST_CHECK(shmctl(hid, IPC_STAT, &hds) == 0 && hds.shm_segsz == SHM_SIZE &&
			   hds.shm_perm.uid == 1000 && (hds.shm_perm.mode & 0777) == 0604,
		   "segment attributes: size %zu uid %u mode %o", hds.shm_segsz, hds.shm_perm.uid,
		   hds.shm_perm.mode);
	p = shmat(hid, NULL, SHM_RDONLY);
	TEST_CHECK(p != (void *)-1, "shmat after restore: %s", strerror(errno));
	long off = test_check(p, SHM_SIZE, SHM_SEED);
	TEST_CHECK(off < 0, "segment contents differ at %ld", off);
	shmdt(p);
	/* POSIX message queue */
	mq = mq_open(MQ_NAME, O_RDONLY | O_NONBLOCK);
	TEST_CHECK(mq != (mqd_t)-1, "mq_open after restore: %s", strerror(errno));
	TEST_CHECK(mq_getattr(mq, &at) == 0 && at.mq_maxmsg == 8 && at.mq_msgsize == 64 &&
			   at.mq_curmsgs == 3,
		   "mqueue attributes: maxmsg %ld msgsize %ld curmsgs %ld", at.mq_maxmsg,
		   at.mq_msgsize, at.mq_curmsgs);
	struct stat sb;
	TEST_CHECK(fstat(mq, &sb) == 0 && (sb.st_mode & 0777) == 0640 && sb.st_gid == 12,
		   "mqueue mode %o gid %u", sb.st_mode, sb.st_gid);
	for (size_t i = 0; i < 3; i++) {
		char buf[64];
		unsigned prio = 99;
		int k = mq_order[i];
		ssize_t n = mq_receive(mq, buf, sizeof(buf), &prio);
		TEST_CHECK(n == (ssize_t)strlen(mqmsgs[k].text) && prio == mqmsgs[k].prio &&
				   !memcmp(buf, mqmsgs[k].text, (size_t)n),
			   "mqueue message %zu: %zd bytes, priority %u", i, n, prio);
	}
	mq_close(mq);

	close(req[1]);
	close(req2[1]);
	int st;
	alarm(10);
	TEST_CHECK(waitpid(child, &st, 0) == child && WIFEXITED(st) && !WEXITSTATUS(st),
		   "child status %#x", st);
	TEST_CHECK(waitpid(g, &st, 0) == g && WIFEXITED(st) && !WEXITSTATUS(st),
		   "G's status %#x", st);
	test_pass();
}
