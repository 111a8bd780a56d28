#include <fcntl.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "ns/cgroup.h"
#include "cli/cli.h"
#include "core/log.h"
#include "net/netlock.h"
#include "ns/mnt.h"
#include "cr/ctx.h"
#include "files/files.h"

/* ------------------------------------------------- an image that goes away ---- */

/* The restore maps the pages files (src/mem/pagefile.c): one truncated meanwhile, or on a
 * filesystem that failed, turns a read into SIGBUS. Instead of a silent "Bus error", say
 * which file, once, on stderr and in the log, and exit: every task restored so far dies
 * with stasis (PTRACE_O_EXITKILL, PR_SET_PDEATHSIG). Only async-signal-safe calls. */
static pid_t sigbus_owner;
static const char *sigbus_log;
static char sigbus_maps[1 << 18];

static size_t put_str(char *buf, size_t pos, size_t cap, const char *s)
{
	while (*s && pos + 1 < cap)
		buf[pos++] = *s++;
	buf[pos] = '\0';
	return pos;
}

static size_t put_hex(char *buf, size_t pos, size_t cap, unsigned long v)
{
	char tmp[2 + 16];
	int n = 0;
	do {
		tmp[n++] = "0123456789abcdef"[v & 15];
		v >>= 4;
	} while (v);
	pos = put_str(buf, pos, cap, "0x");
	while (n && pos + 1 < cap)
		buf[pos++] = tmp[--n];
	buf[pos] = '\0';
	return pos;
}

static unsigned long parse_hex(const char **p)
{
	unsigned long v = 0;
	for (;; (*p)++) {
		char ch = **p;
		int d = ch >= '0' && ch <= '9'   ? ch - '0'
			: ch >= 'a' && ch <= 'f' ? ch - 'a' + 10
						 : -1;
		if (d < 0)
			return v;
		v = v * 16 + (unsigned long)d;
	}
}

/* The file mapped at @addr (from /proc/self/maps) in @path and the offset in it. */
static bool sigbus_find(unsigned long addr, char *path, size_t cap, unsigned long *off)
{
	int fd = open("/proc/self/maps", O_RDONLY | O_CLOEXEC);
	size_t len = 0;
	ssize_t n;
	if (fd < 0)
		return false;
	while (len + 1 < sizeof(sigbus_maps) &&
	       (n = read(fd, sigbus_maps + len, sizeof(sigbus_maps) - 1 - len)) > 0)
		len += (size_t)n;
	close(fd);
	sigbus_maps[len] = '\0';
	for (const char *l = sigbus_maps; *l;) {
		const char *p = l;
		unsigned long start = parse_hex(&p), end = (*p == '-') ? (p++, parse_hex(&p)) : 0;
		/* "start-end perms offset dev inode   path" */
		while (*p == ' ')
			p++;
		while (*p && *p != ' ')
			p++; /* perms */
		while (*p == ' ')
			p++;
		unsigned long foff = parse_hex(&p);
		for (int f = 0; f < 2; f++) { /* dev, inode */
			while (*p == ' ')
				p++;
			while (*p && *p != ' ' && *p != '\n')
				p++;
		}
		while (*p == ' ')
			p++;
		const char *eol = strchr(p, '\n');
		if (!eol)
			eol = p + strlen(p);
		if (addr >= start && addr < end && *p == '/') {
			size_t k = 0;
			while (p + k < eol && k + 1 < cap) {
				path[k] = p[k];
				k++;
			}
			path[k] = '\0';
			*off = addr - start + foff;
			return true;
		}
		l = *eol ? eol + 1 : eol;
	}
	return false;
}

static void sigbus_handler(int sig, siginfo_t *si, void *uc)
{
	char msg[1024], path[512];
	unsigned long off = 0;
	size_t n = 0;
	(void)uc;

	if (getpid() != sigbus_owner) {
		/* a restore child that inherited it: the default action */
		signal(sig, SIG_DFL);
		raise(sig);
		return;
	}
	/* several copying threads may fault at once: one reports, the
	 * others wait for its _exit */
	static int reported;
	if (__atomic_exchange_n(&reported, 1, __ATOMIC_SEQ_CST))
		for (;;)
			pause();
	n = put_str(msg, n, sizeof(msg),
		    "stasis: restore: an image file went away while it was "
		    "read (SIGBUS at ");
	if (sigbus_find((unsigned long)si->si_addr, path, sizeof(path), &off)) {
		n = put_str(msg, n, sizeof(msg), "offset ");
		n = put_hex(msg, n, sizeof(msg), off);
		n = put_str(msg, n, sizeof(msg), " of ");
		n = put_str(msg, n, sizeof(msg), path);
	} else {
		n = put_hex(msg, n, sizeof(msg), (unsigned long)si->si_addr);
	}
	n = put_str(msg, n, sizeof(msg),
		    ": truncated, or its filesystem failed); the restore "
		    "was abandoned and its tasks killed\n");
	(void)!write(STDERR_FILENO, msg, n);
	if (sigbus_log) {
		int fd = open(sigbus_log, O_WRONLY | O_APPEND | O_CLOEXEC);
		if (fd >= 0) {
			(void)!write(fd, msg + strlen("stasis: "), n - strlen("stasis: "));
			close(fd);
		}
	}
	_exit(1);
}

static void sigbus_install(const char *logfile)
{
	struct sigaction sa = { .sa_sigaction = sigbus_handler, .sa_flags = SA_SIGINFO };
	sigbus_owner = getpid();
	sigbus_log = logfile;
	sigemptyset(&sa.sa_mask);
	if (sigaction(SIGBUS, &sa, NULL) < 0)
		pr_warn("restore: cannot handle SIGBUS: %s", strerror(errno));
}

static void restore_usage(FILE *f)
{
	fprintf(f, "usage: stasis restore -D DIR [-d] [-j] [--pidfile FILE] [-v] [-o LOGFILE]\n"
		   "                      [--external mnt[KEY]:HOSTPATH | veth[NAME]:HOST[@BRIDGE]]...\n"
		   "                      [--root DIR] [--join-ns TYPE:PATH]... [--pin-ns DIR]\n"
		   "                      [--helper SOCKET] [--manage-cgroups[=MODE]]\n"
		   "                      [--cgroup-root [CONTROLLERS:]/PATH]...\n"
		   "                      [--tcp-close] [--inherit-fd fd[N]:KEY]...\n"
		   "                      [--network-lock nftables|none] [--lazy-pages]\n"
		   "                      [--page-server --address ADDR --port PORT]\n"
		   "  -D, --images-dir DIR the images to restore from\n"
		   "  -d, --restore-detached  return once the task runs (it is reparented)\n"
		   "      --pidfile FILE   write the restored task's pid there\n"
		   "      --lazy-pages     run the tree at once: its private anonymous memory\n"
		   "                       is served on fault (userfaultfd) and streamed in by\n"
		   "                       a page server process (stasis-lazy) that exits when\n"
		   "                       all of it is in; needs CAP_SYS_PTRACE\n"
		   "      --page-server --address ADDR --port PORT  read the pages files from\n"
		   "                       `stasis page-server --serve` there (DIR holds the\n"
		   "                       rest of the image and of its parents); lazy or not\n"
		   "      --join-ns TYPE:PATH  restore the root into that existing namespace\n"
		   "                       (TYPE uts, ipc or net; PATH /proc/PID/ns/TYPE or a\n"
		   "                       bind-mounted nsfs file); repeatable\n"
		   "      --external mnt[KEY]:HOSTPATH  bind HOSTPATH where the mount declared\n"
		   "                       external with KEY at dump was\n"
		   "      --external veth[NAME]:HOST[@BRIDGE]  the host end of external veth NAME:\n"
		   "                       created as HOST in stasis's net namespace, up, on BRIDGE\n"
		   "      --root DIR       the root of the restored mount tree (external root)\n"
		   "      --helper SOCKET  ask the `stasis helper` listening there for what the\n"
		   "                       restoring user may not do itself (id maps of its\n"
		   "                       /etc/subuid ranges, ns_last_pid, socket buffers)\n"
		   "      --pin-ns DIR     keep every namespace the restore creates alive: its\n"
		   "                       nsfs file is bind-mounted on DIR/KIND-PID (KIND user,\n"
		   "                       pid, mnt, uts, ipc, net, time or cgroup; PID the task\n"
		   "                       put in it when it was made); enter it later with\n"
		   "                       nsenter --KIND=FILE (uts, ipc, net: --join-ns too);\n"
		   "                       an existing file is refused; see README for DIR on a\n"
		   "                       shared mount\n"
		   "      --manage-cgroups[=MODE]  the tree's cgroups (CRIU's modes): soft (the\n"
		   "                       default) creates missing ones and sets the dumped\n"
		   "                       settings of those it created; full sets every one's;\n"
		   "                       props and none need them to exist (props sets them);\n"
		   "                       strict needs the tree's own not to exist; ignore leaves\n"
		   "                       the tasks in stasis's cgroups\n"
		   "      --cgroup-root [CONTROLLERS:]/PATH  the root task's cgroup in the\n"
		   "                       hierarchy of CONTROLLERS (without: every hierarchy\n"
		   "                       not named by another) becomes PATH, what was below\n"
		   "                       it is below PATH; repeatable\n"
		   "  -j, --shell-job      a tree dumped with --shell-job: attached to stasis's\n"
		   "                       terminal (its session; its group in the foreground\n"
		   "                       if it was)\n"
		   "      --tcp-close      restore TCP connections closed (as if reset by the\n"
		   "                       peer; what was queued for reading is kept): for a\n"
		   "                       peer that is gone\n"
		   "      --inherit-fd fd[N]:KEY  stasis's fd N takes the place of the external\n"
		   "                       file KEY (e.g. pipe:[1234], a pipe to outside the tree)\n"
		   "      --network-lock nftables|none  lock the image's TCP connections again\n"
		   "                       until the tree runs (nftables, the default), or not\n"
		   "  -v                   more log output (repeat for debug)\n"
		   "  -o, --log-file FILE  write the log there instead of stderr\n"
		   "Without -d, stasis waits for the task and exits with its exit status\n"
		   "(128+N if it was killed by signal N).\n");
}

static int parse_cg_mode(const char *arg, int *mode)
{
	int m = cgroup_mode(arg ? arg : "soft");
	if (m < 0) {
		fprintf(stderr, "stasis restore: --manage-cgroups: unknown mode '%s' "
				"(soft, full, props, none, strict, ignore)\n",
			arg);
		return -1;
	}
	*mode = m;
	return 0;
}

static int add_inherit(const char *arg, const char **inh, size_t *n, size_t cap)
{
	int fd;
	const char *key;
	if (*n == cap || files_parse_inherit(arg, &fd, &key)) {
		fprintf(stderr, "stasis restore: invalid --inherit-fd '%s' (at most %zu, fd[N]:KEY)\n",
			arg, cap);
		return -1;
	}
	inh[(*n)++] = arg;
	return 0;
}

static int add_cg_root(const char *arg, const char **cgr, size_t *n, size_t cap)
{
	char ctrl[PROC_MAX_CGROUP_CTRL + 1];
	const char *path;
	if (*n == cap || cgroup_root_parse(arg, ctrl, sizeof(ctrl), &path)) {
		fprintf(stderr, "stasis restore: invalid --cgroup-root '%s' (at most %zu, "
				"[CONTROLLERS:]/PATH)\n",
			arg, cap);
		return -1;
	}
	cgr[(*n)++] = arg;
	return 0;
}

static int add_external(char *arg, char **ext, size_t *n, size_t cap)
{
	if (*n == cap || cli_parse_external(arg, false)) {
		fprintf(stderr, "stasis restore: invalid --external '%s' (at most %zu, "
				"mnt[KEY]:HOSTPATH or veth[NAME]:HOSTNAME[@BRIDGE])\n",
			arg, cap);
		return -1;
	}
	ext[(*n)++] = arg;
	return 0;
}

static const struct option restore_longopts[] = {
	{ "images-dir", required_argument, NULL, 'D' },
	{ "restore-detached", no_argument, NULL, 'd' },
	{ "pidfile", required_argument, NULL, 'p' },
	{ "join-ns", required_argument, NULL, 'J' },
	{ "log-file", required_argument, NULL, 'o' },
	{ "external", required_argument, NULL, 'E' },
	{ "root", required_argument, NULL, 'r' },
	{ "helper", required_argument, NULL, 'H' },
	{ "pin-ns", required_argument, NULL, 'P' },
	{ "manage-cgroups", optional_argument, NULL, 'G' },
	{ "cgroup-root", required_argument, NULL, 'g' },
	{ "shell-job", no_argument, NULL, 'j' },
	{ "tcp-close", no_argument, NULL, 'C' },
	{ "network-lock", required_argument, NULL, 'N' },
	{ "inherit-fd", required_argument, NULL, 'I' },
	{ "lazy-pages", no_argument, NULL, 'L' },
	{ "page-server", no_argument, NULL, 'S' },
	{ "address", required_argument, NULL, 'A' },
	{ "port", required_argument, NULL, 'T' },
	{ "help", no_argument, NULL, 'h' },
	{ NULL, 0, NULL, 0 },
};

/* --page-server --address A --port P: all three or none. */
static int page_server_opts(int c, const char *arg, struct restore_opts *o, bool *ps)
{
	long long v;
	if (c == 'S')
		*ps = true;
	else if (c == 'A')
		o->ps_addr = arg;
	else if (c == 'T' && !parse_int(arg, 1, 65535, &v))
		o->ps_port = arg;
	else if (c == 'T')
		return fprintf(stderr, "stasis restore: invalid --port '%s'\n", arg), 2;
	else if (*ps != (o->ps_addr && o->ps_port) || (!*ps && (o->ps_addr || o->ps_port)))
		return fprintf(stderr, "stasis restore: --page-server needs --address and --port "
				       "(and they need it)\n"),
		       2;
	return 0;
}

int cmd_restore(int argc, char **argv)
{
	struct restore_opts o = { 0 };
	const char *logfile = NULL;
	int verbose = 0, c;
	char *ext[64];
	const char *inh[64], *cgr[64];
	size_t n_ext = 0, n_inh = 0, n_cgr = 0;

	optind = 1;
	bool ps = false;
	while ((c = getopt_long(argc, argv, "D:do:vjh", restore_longopts, NULL)) != -1) {
		if (c == 'S' || c == 'A' || c == 'T') {
			if (page_server_opts(c, optarg, &o, &ps))
				return 2;
			continue;
		}
		switch (c) {
		case 'D':
			o.dir = optarg;
			break;
		case 'd':
			o.detach = true;
			break;
		case 'j':
			o.shell_job = true;
			break;
		case 'L':
			o.lazy_pages = true;
			break;
		case 'p':
			o.pidfile = optarg;
			break;
		case 'J':
			if (o.n_join_ns == MAX_JOIN_NS) {
				fprintf(stderr, "stasis restore: at most %d --join-ns\n", MAX_JOIN_NS);
				return 2;
			}
			o.join_ns[o.n_join_ns++] = optarg;
			break;
		case 'o':
			logfile = optarg;
			break;
		case 'E':
			if (add_external(optarg, ext, &n_ext, ARRAY_SIZE(ext)))
				return 2;
			break;
		case 'r':
			if (optarg[0] != '/') {
				fprintf(stderr, "stasis restore: --root needs an absolute path\n");
				return 2;
			}
			o.root_dir = optarg;
			break;
		case 'H':
			o.helper_socket = optarg;
			break;
		case 'P':
			o.pin_dir = optarg;
			break;
		case 'G':
			if (parse_cg_mode(optarg, &o.manage_cgroups))
				return 2;
			break;
		case 'I':
			if (add_inherit(optarg, inh, &n_inh, ARRAY_SIZE(inh)))
				return 2;
			break;
		case 'g':
			if (add_cg_root(optarg, cgr, &n_cgr, ARRAY_SIZE(cgr)))
				return 2;
			break;
		case 'C':
			o.tcp_close = true;
			break;
		case 'N':
			if (netlock_parse_mode(optarg, &o.network_lock_none)) {
				fprintf(stderr, "stasis restore: invalid --network-lock '%s' "
						"(nftables or none)\n",
					optarg);
				return 2;
			}
			break;
		case 'v':
			verbose++;
			break;
		case 'h':
			restore_usage(stdout);
			return 0;
		default:
			restore_usage(stderr);
			return 2;
		}
	}
	if (!o.dir || optind != argc) {
		fprintf(stderr, "stasis restore: -D DIR is required\n");
		restore_usage(stderr);
		return 2;
	}
	if (page_server_opts(0, NULL, &o, &ps))
		return 2;
	if (cli_log_init("restore", logfile, verbose))
		return 2;
	o.externals = ext;
	o.n_externals = n_ext;
	o.inherit_fds = inh;
	o.n_inherit_fds = n_inh;
	o.cg_roots = cgr;
	o.n_cg_roots = n_cgr;
	sigbus_install(logfile);
	int ret = restore_run(&o);
	if (ret < 0) {
		cli_report_failure("restore");
		log_close();
		return 1;
	}
	log_close();
	return ret;
}
