/* The container of the uns test flavor: runs PROG as root of a new user namespace (uids
 * and gids 0..COUNT-1 mapped to BASE..BASE+COUNT-1 outside), as the init of new pid,
 * mount, net, ipc and uts namespaces, pivot_root'ed into ROOT: a bind of that directory
 * holding binds of the host paths given (at the same paths), a tmpfs /dev with binds of
 * the host's null, zero, full, random, urandom and tty, a devpts of its own at /dev/pts
 * (/dev/ptmx a link to its ptmx), a /dev/shm, and its own /proc. The shape an independent checkpoint test suite uses.
 *
 *   uns_launch [-b BASE] [-n COUNT] ROOT [HOSTPATH...] -- PROG [ARG...]
 *
 * Run as root of the initial namespaces. The launcher (outside) waits for PROG and exits
 * with its status (128+N if killed by signal N). The mount points are made by the
 * launcher before the namespaces are; the ones under ROOT stay after it exits (ROOT is
 * the caller's to remove). */
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

static const char *const devs[] = { "null", "zero", "full", "random", "urandom", "tty" };

static void die(const char *what)
{
	fprintf(stderr, "uns_launch: %s: %s\n", what, strerror(errno));
	exit(125);
}

static void dief(const char *what, const char *path)
{
	fprintf(stderr, "uns_launch: %s %s: %s\n", what, path, strerror(errno));
	exit(125);
}

/* mkdir -p of @path. */
static void mkdirs(const char *path)
{
	char buf[4096];
	if (snprintf(buf, sizeof(buf), "%s", path) >= (int)sizeof(buf))
		dief("path too long", path);
	for (char *p = buf + 1;; p++) {
		if (*p == '/' || !*p) {
			char c = *p;
			*p = 0;
			if (mkdir(buf, 0755) && errno != EEXIST)
				dief("mkdir", buf);
			*p = c;
			if (!c)
				break;
		}
	}
}

/* The mount point of @host under @root: a directory, a file, or the same symlink. */
static void make_point(const char *root, const char *host)
{
	char dst[4096], link[4096];
	struct stat st;
	snprintf(dst, sizeof(dst), "%s%s", root, host);
	if (lstat(host, &st))
		dief("stat", host);
	if (S_ISLNK(st.st_mode)) {
		ssize_t n = readlink(host, link, sizeof(link) - 1);
		if (n < 0)
			dief("readlink", host);
		link[n] = 0;
		char *slash = strrchr(dst, '/');
		*slash = 0;
		mkdirs(dst);
		*slash = '/';
		if (symlink(link, dst) && errno != EEXIST)
			dief("symlink", dst);
		return;
	}
	if (S_ISDIR(st.st_mode)) {
		mkdirs(dst);
		return;
	}
	char *slash = strrchr(dst, '/');
	*slash = 0;
	mkdirs(dst);
	*slash = '/';
	int fd = open(dst, O_CREAT | O_WRONLY | O_CLOEXEC, 0644);
	if (fd < 0)
		dief("create", dst);
	close(fd);
}

struct args {
	const char *root;
	char **binds;
	int n_binds;
	char **argv;
	int sync[2];
	char cwd[4096];
};

static void write_file(const char *path, const char *text)
{
	int fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd < 0 || write(fd, text, strlen(text)) != (ssize_t)strlen(text))
		dief("write", path);
	close(fd);
}

static void setup_dev(void)
{
	char p[64];
	if (mount("uns-dev", "dev", "tmpfs", MS_NOSUID | MS_NOEXEC, "mode=755"))
		die("mount tmpfs /dev");
	for (size_t i = 0; i < sizeof(devs) / sizeof(devs[0]); i++) {
		snprintf(p, sizeof(p), "dev/%s", devs[i]);
		int fd = open(p, O_CREAT | O_WRONLY | O_CLOEXEC, 0666);
		if (fd < 0)
			dief("create", p);
		close(fd);
		char host[64];
		snprintf(host, sizeof(host), "/dev/%s", devs[i]);
		if (mount(host, p, NULL, MS_BIND, NULL))
			dief("bind", host);
	}
	if (mkdir("dev/pts", 0755) || mkdir("dev/shm", 01777) || mkdir("dev/mqueue", 0755))
		die("mkdir /dev/pts, /dev/shm, /dev/mqueue");
	if (mount("uns-shm", "dev/shm", "tmpfs", MS_NOSUID | MS_NODEV, "mode=1777"))
		die("mount /dev/shm");
	if (mount("devpts", "dev/pts", "devpts", MS_NOSUID | MS_NOEXEC,
		  "newinstance,ptmxmode=0666,mode=0620") ||
	    symlink("pts/ptmx", "dev/ptmx"))
		die("mount /dev/pts");
	if (symlink("/proc/self/fd", "dev/fd") || symlink("/proc/self/fd/0", "dev/stdin") ||
	    symlink("/proc/self/fd/1", "dev/stdout") || symlink("/proc/self/fd/2", "dev/stderr"))
		die("symlinks of /dev");
}

static int child(void *arg)
{
	struct args *a = arg;
	char c, dst[4096];

	close(a->sync[1]);
	if (read(a->sync[0], &c, 1) != 1)
		_exit(125); /* the launcher failed to write the maps */
	close(a->sync[0]);
	if (setresgid(0, 0, 0) || setresuid(0, 0, 0))
		die("become root of the user namespace");
	if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL))
		die("make / private");
	if (mount(a->root, a->root, NULL, MS_BIND | MS_REC, NULL))
		dief("bind", a->root);
	for (int i = 0; i < a->n_binds; i++) {
		struct stat st;
		if (lstat(a->binds[i], &st) || S_ISLNK(st.st_mode))
			continue; /* a symlink is made as one in ROOT */
		snprintf(dst, sizeof(dst), "%s%s", a->root, a->binds[i]);
		if (mount(a->binds[i], dst, NULL, MS_BIND | MS_REC, NULL))
			dief("bind", a->binds[i]);
	}
	if (chdir(a->root))
		dief("chdir", a->root);
	setup_dev();
	/* while the host's /proc is visible: a proc may only be mounted in a user namespace
	 * where one is fully visible */
	if (mount("proc", "proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL))
		die("mount /proc");
	if (mkdir("old", 0700) && errno != EEXIST)
		die("mkdir old");
	if (syscall(SYS_pivot_root, ".", "old"))
		die("pivot_root");
	if (umount2("/old", MNT_DETACH))
		die("umount /old");
	(void)rmdir("/old");
	if (chdir(a->cwd))
		dief("chdir", a->cwd);
	execv(a->argv[0], a->argv);
	dief("exec", a->argv[0]);
	return 125;
}

int main(int argc, char **argv)
{
	static char stack[1 << 16] __attribute__((aligned(16)));
	struct args a = { 0 };
	unsigned long base = 20000, count = 20000;
	int opt, sep = -1;

	while ((opt = getopt(argc, argv, "+b:n:")) != -1) {
		if (opt == 'b')
			base = strtoul(optarg, NULL, 10);
		else if (opt == 'n')
			count = strtoul(optarg, NULL, 10);
		else
			return 125;
	}
	for (int i = optind; i < argc; i++)
		if (!strcmp(argv[i], "--")) {
			sep = i;
			break;
		}
	if (sep < 0 || sep == optind || sep + 1 >= argc || argv[optind][0] != '/') {
		fprintf(stderr, "usage: uns_launch [-b BASE] [-n COUNT] /ROOT [HOSTPATH...] -- "
				"PROG [ARG...]\n");
		return 125;
	}
	a.root = argv[optind];
	a.binds = argv + optind + 1;
	a.n_binds = sep - optind - 1;
	a.argv = argv + sep + 1;
	if (!getcwd(a.cwd, sizeof(a.cwd)))
		die("getcwd");
	for (int i = 0; i < a.n_binds; i++) {
		if (a.binds[i][0] != '/')
			dief("not an absolute path:", a.binds[i]);
		make_point(a.root, a.binds[i]);
	}
	char dir[4096];
	snprintf(dir, sizeof(dir), "%s/dev", a.root);
	mkdirs(dir);
	snprintf(dir, sizeof(dir), "%s/proc", a.root);
	mkdirs(dir);
	if (pipe2(a.sync, O_CLOEXEC))
		die("pipe");

	pid_t pid = clone(child, stack + sizeof(stack),
			  CLONE_NEWUSER | CLONE_NEWPID | CLONE_NEWNS | CLONE_NEWNET | CLONE_NEWIPC |
				  CLONE_NEWUTS | SIGCHLD,
			  &a);
	if (pid < 0)
		die("clone");
	close(a.sync[0]);
	char path[64], map[64];
	snprintf(map, sizeof(map), "0 %lu %lu\n", base, count);
	snprintf(path, sizeof(path), "/proc/%d/uid_map", pid);
	write_file(path, map);
	snprintf(path, sizeof(path), "/proc/%d/gid_map", pid);
	write_file(path, map);
	if (write(a.sync[1], "x", 1) != 1)
		die("wake the child");
	close(a.sync[1]);

	int status;
	while (waitpid(pid, &status, 0) < 0)
		if (errno != EINTR)
			die("waitpid");
	if (WIFSIGNALED(status))
		return 128 + WTERMSIG(status);
	return WEXITSTATUS(status);
}
