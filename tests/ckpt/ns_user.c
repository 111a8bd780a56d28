// stasis-test: timeout=30 needs=root
// stasis-test: uns-known=the test checks its user namespaces against the initial one (its
//   root must be the host's root, uid 0 mapped to 0)
/* User namespaces, several in one tree, one nested in another:
 *   root (the test, host user namespace)
 *    `- A: creates U1 as uid 3000 (its owner), maps 0..1999 -> 10000.. (written by the
 *        |  root), is uid 0 in it,
 *        |  an IPC namespace with a SysV queue owned by uid 42 / gid 43 of U1, and a
 *        |  mount namespace with a tmpfs on /mnt mounted with uid=42,gid=43
 *        |- C: in U1 (no namespace of its own), uid 42 / gid 43 inside
 *        `- B: creates U2 inside U1, maps 0..99 -> U1's 1000.. (written by A),
 *              uid 5 / gid 7 inside, setgroups denied
 * After restore each checks its ids as seen inside, its own uid_map/gid_map/setgroups
 * as seen from inside, which namespace is its parent's (NS_GET_PARENT), and the root
 * checks from outside that B's uid is 11005 in its own namespace. The ids fit in the
 * 65536 a rootless container has, so the test runs there too. */
#include "lib.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <linux/nsfs.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <linux/magic.h>
#include <sys/mount.h>
#include <sys/msg.h>
#include <sys/statfs.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

struct worker {
	pid_t pid;
	int req, ans; /* the root's ends */
};

static int write_file(const char *path, const char *text)
{
	int fd = open(path, O_WRONLY);
	if (fd < 0)
		return -1;
	ssize_t n = write(fd, text, strlen(text));
	close(fd);
	return n == (ssize_t)strlen(text) ? 0 : -1;
}

static int file_is(const char *path, const char *want)
{
	char buf[512];
	int fd = open(path, O_RDONLY);
	if (fd < 0)
		return 0;
	ssize_t n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n < 0)
		return 0;
	buf[n] = '\0';
	/* compare without the kernel's column padding */
	char norm[512];
	size_t k = 0;
	for (ssize_t i = 0; i < n && k + 1 < sizeof(norm); i++) {
		if (buf[i] == ' ' && (k == 0 || norm[k - 1] == ' ' || norm[k - 1] == '\n'))
			continue;
		norm[k++] = buf[i];
	}
	norm[k] = '\0';
	return !strcmp(norm, want);
}

static ino_t ns_ino_of(const char *path)
{
	struct stat st;
	return stat(path, &st) == 0 ? st.st_ino : 0;
}

/* the inode of the parent of the user namespace of @pid (only works from outside:
 * from inside, the parent is out of reach) */
static ino_t parent_userns(pid_t pid)
{
	return test_ns_related(pid, "user", NS_GET_PARENT);
}

static uid_t userns_owner(pid_t pid)
{
	char path[64];
	uid_t uid = (uid_t)-1;
	snprintf(path, sizeof(path), "/proc/%d/ns/user", pid);
	int fd = open(path, O_RDONLY);
	if (fd < 0)
		return (uid_t)-1;
	if (ioctl(fd, NS_GET_OWNER_UID, &uid) < 0)
		uid = (uid_t)-1;
	close(fd);
	return uid;
}

static ino_t userns_of(pid_t pid)
{
	char path[64];
	snprintf(path, sizeof(path), "/proc/%d/ns/user", pid);
	return ns_ino_of(path);
}

/* Serve checks until the root closes the request pipe. */
static __attribute__((noreturn)) void serve(int req, int ans, int (*check)(void))
{
	char c;
	while (read(req, &c, 1) == 1) {
		char ok = check() ? 'y' : 'n';
		if (write(ans, &ok, 1) != 1)
			_exit(2);
	}
	_exit(0);
}

static ino_t root_userns;

/* A's IPC namespace (owned by U1): a SysV message queue created by A (root in U1) and
 * given to uid 42 / gid 43 of U1, one message queued. */
static int a_msqid = -1;

static int a_ipc_setup(void)
{
	struct { long type; char text[8]; } m = { 1, "hello" };
	struct msqid_ds ds;
	if (unshare(CLONE_NEWIPC) < 0)
		return -1;
	a_msqid = msgget(IPC_PRIVATE, IPC_CREAT | 0640);
	if (a_msqid < 0 || msgctl(a_msqid, IPC_STAT, &ds) < 0)
		return -1;
	ds.msg_perm.uid = 42;
	ds.msg_perm.gid = 43;
	if (msgctl(a_msqid, IPC_SET, &ds) < 0 || msgsnd(a_msqid, &m, sizeof(m.text), 0) < 0)
		return -1;
	return 0;
}

static int a_ipc_ok(void)
{
	struct msqid_ds ds;
	if (msgctl(a_msqid, IPC_STAT, &ds) < 0)
		return 0;
	return ds.msg_perm.uid == 42 && ds.msg_perm.gid == 43 && ds.msg_perm.cuid == 0 &&
	       ds.msg_perm.cgid == 0 && ds.msg_qnum == 1;
}

/* A's mount namespace (owned by U1): a tmpfs on /mnt owned by uid 42 / gid 43 of U1
 * (mount options take ids of the mounter's user namespace, mountinfo shows the initial
 * one's). */
static int a_mnt_setup(void)
{
	if (unshare(CLONE_NEWNS) < 0 || mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0)
		return -1;
	return mount("stasis-u1", "/mnt", "tmpfs", 0, "size=64k,uid=42,gid=43");
}

static int a_mnt_ok(void)
{
	struct stat st;
	struct statfs sf;
	return stat("/mnt", &st) == 0 && st.st_uid == 42 && st.st_gid == 43 &&
	       statfs("/mnt", &sf) == 0 && sf.f_type == TMPFS_MAGIC;
}

static int check_a(void)
{
	return getuid() == 0 && getgid() == 0 && a_ipc_ok() && a_mnt_ok() &&
	       file_is("/proc/self/uid_map", "0 10000 2000\n") &&
	       file_is("/proc/self/gid_map", "0 10000 2000\n") &&
	       file_is("/proc/self/setgroups", "allow\n") &&
	       ns_ino_of("/proc/self/ns/user") != root_userns;
}

static int check_b(void)
{
	return getuid() == 5 && geteuid() == 5 && getgid() == 7 &&
	       file_is("/proc/self/uid_map", "0 1000 100\n") &&
	       file_is("/proc/self/gid_map", "0 1000 100\n") &&
	       file_is("/proc/self/setgroups", "deny\n");
}

static int check_c(void)
{
	return getuid() == 42 && getgid() == 43;
}

static void new_pipes(int req[2], int ans[2])
{
	if (pipe(req) < 0 || pipe(ans) < 0)
		test_fail("pipe: %s", strerror(errno));
}

/* Child side of a namespace creation: unshare, tell the parent, wait for the maps. */
static void unshare_user(int tell, int wait_fd)
{
	char c = 'u';
	if (unshare(CLONE_NEWUSER) < 0 || write(tell, &c, 1) != 1 || read(wait_fd, &c, 1) != 1)
		_exit(3);
}

static void map_child(pid_t pid, int wait_fd, int tell, const char *map, bool deny)
{
	char path[64], c;
	if (read(wait_fd, &c, 1) != 1)
		test_fail("child %d did not unshare", pid);
	snprintf(path, sizeof(path), "/proc/%d/uid_map", pid);
	if (write_file(path, map))
		test_fail("write %s: %s", path, strerror(errno));
	snprintf(path, sizeof(path), "/proc/%d/setgroups", pid);
	if (deny && write_file(path, "deny"))
		test_fail("write %s: %s", path, strerror(errno));
	snprintf(path, sizeof(path), "/proc/%d/gid_map", pid);
	if (write_file(path, map))
		test_fail("write %s: %s", path, strerror(errno));
	if (write(tell, "m", 1) != 1)
		test_fail("tell child: %s", strerror(errno));
}

static struct worker spawn_c(void)
{
	int req[2], ans[2];
	new_pipes(req, ans);
	pid_t pid = fork();
	if (pid == 0) {
		close(req[1]);
		close(ans[0]);
		if (setresgid(43, 43, 43) < 0 || setresuid(42, 42, 42) < 0 ||
		    prctl(PR_SET_DUMPABLE, 1) < 0)
			_exit(4);
		serve(req[0], ans[1], check_c);
	}
	close(req[0]);
	close(ans[1]);
	return (struct worker){ pid, req[1], ans[0] };
}

static struct worker spawn_b(void)
{
	int req[2], ans[2], up[2], down[2];
	new_pipes(req, ans);
	new_pipes(up, down);
	pid_t pid = fork();
	if (pid == 0) {
		close(req[1]);
		close(ans[0]);
		unshare_user(up[1], down[0]);
		if (setresgid(7, 7, 7) < 0 || setresuid(5, 5, 5) < 0)
			_exit(4);
		serve(req[0], ans[1], check_b);
	}
	map_child(pid, up[0], down[1], "0 1000 100", true);
	close(req[0]);
	close(ans[1]);
	close(up[0]);
	close(up[1]);
	close(down[0]);
	close(down[1]);
	return (struct worker){ pid, req[1], ans[0] };
}

/* A: serves its own checks and relays the root's requests for B and C (the root cannot
 * reach them directly: their pipes were made by A). Request byte: 'a', 'b', 'c'. */
static struct worker spawn_a(void)
{
	int req[2], ans[2], up[2], down[2];
	new_pipes(req, ans);
	new_pipes(up, down);
	pid_t pid = fork();
	if (pid == 0) {
		signal(SIGTERM, SIG_IGN);
		close(req[1]);
		close(ans[0]);
		/* U1 is owned by uid 3000 of the root's namespace, not by the root */
		if (setresgid(3000, 3000, 3000) < 0 || setresuid(3000, 3000, 3000) < 0)
			_exit(5);
		unshare_user(up[1], down[0]);
		/* the id change made A non-dumpable: its /proc files (and its children's)
		 * would belong to the host's root, out of A's reach */
		if (setresgid(0, 0, 0) < 0 || setresuid(0, 0, 0) < 0 ||
		    prctl(PR_SET_DUMPABLE, 1) < 0 || a_ipc_setup() < 0 || a_mnt_setup() < 0)
			_exit(4);
		struct worker c = spawn_c(), b = spawn_b();
		char r;
		while (read(req[0], &r, 1) == 1) {
			char ok = 'n';
			if (r == 'a') {
				ok = check_a() ? 'y' : 'n';
			} else {
				struct worker *w = r == 'b' ? &b : &c;
				if (write(w->req, "?", 1) != 1 || read(w->ans, &ok, 1) != 1)
					ok = 'n';
				/* C is in A's user namespace (the inode changes with a restore,
				 * the relation does not); only A may look (C has no rights on
				 * A's /proc files) */
				char path[64];
				snprintf(path, sizeof(path), "/proc/%d/ns/user", c.pid);
				if (r == 'c' && ns_ino_of(path) != ns_ino_of("/proc/self/ns/user"))
					ok = 'n';
			}
			if (write(ans[1], &ok, 1) != 1)
				_exit(2);
		}
		close(b.req);
		close(c.req);
		waitpid(b.pid, NULL, 0);
		waitpid(c.pid, NULL, 0);
		_exit(0);
	}
	map_child(pid, up[0], down[1], "0 10000 2000", false);
	close(req[0]);
	close(ans[1]);
	close(up[0]);
	close(up[1]);
	close(down[0]);
	close(down[1]);
	return (struct worker){ pid, req[1], ans[0] };
}

static int ask(struct worker *a, char what)
{
	char ok = 0;
	if (write(a->req, &what, 1) != 1 || read(a->ans, &ok, 1) != 1)
		return 0;
	return ok == 'y';
}

/* From outside: B's uid is U2's 5 = U1's 1005 = 11005 for the root; A's namespace is a child
 * of the root's, B's a child of A's, C is in A's. */
static int shape_ok(pid_t a)
{
	char path[64], line[256];
	snprintf(path, sizeof(path), "/proc/%d/task/%d/children", a, a);
	FILE *f = fopen(path, "r");
	if (!f)
		return 0;
	int kids[2] = { 0, 0 };
	int n = fscanf(f, "%d %d", &kids[0], &kids[1]);
	fclose(f);
	ino_t ua = userns_of(a);
	int found_b = 0, found_c = 0;
	if (n != 2 || !ua || parent_userns(a) != root_userns || userns_owner(a) != 3000)
		return 0;
	for (int i = 0; i < n; i++) {
		int is_b = 0;
		snprintf(path, sizeof(path), "/proc/%d/status", kids[i]);
		f = fopen(path, "r");
		if (!f)
			return 0;
		while (fgets(line, sizeof(line), f))
			if (!strncmp(line, "Uid:", 4) && strstr(line, "11005"))
				is_b = 1;
		fclose(f);
		if (is_b)
			found_b = parent_userns(kids[i]) == ua;
		else
			found_c = userns_of(kids[i]) == ua;
	}
	return found_b && found_c;
}

int main(int argc, char **argv)
{
	test_init(argc, argv);
	root_userns = ns_ino_of("/proc/self/ns/user");
	struct worker a = spawn_a();
	if (!ask(&a, 'a') || !ask(&a, 'b') || !ask(&a, 'c') || !shape_ok(a.pid))
		test_fail("set-up is not as expected before checkpoint (a %d b %d c %d host %d)",
			  ask(&a, 'a'), ask(&a, 'b'), ask(&a, 'c'), shape_ok(a.pid));
	test_ready();
	if (test_sabotage()) {
		/* break the premise: a request A does not know answers 'n' */
		close(a.req);
		a.req = -1;
	}
	test_wait();
	if (!ask(&a, 'a'))
		test_fail("A: ids, maps or parent of its user namespace differ after restore");
	if (!ask(&a, 'b'))
		test_fail("B: ids, maps, setgroups or parent (A's namespace) differ after restore");
	if (!ask(&a, 'c'))
		test_fail("C: ids or user namespace (A's) differ after restore");
	if (!shape_ok(a.pid))
		test_fail("B's uid is not 11005 seen from the root, U1 is not owned by uid 3000, "
			  "or the namespaces do not nest as before");
	close(a.req);
	int st;
	waitpid(a.pid, &st, 0);
	test_pass();
}
