/* `stasis swrk FD`, and stasis invoked under the name `criu` (a symlink): CRIU's command
 * spellings for what stasis supports, so that runtimes and scripts calling `criu` work
 * unchanged. Each CRIU option is translated to stasis's own and the same cmd_dump /
 * cmd_restore run; an option stasis cannot honour is one clear line, never ignored. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "core/log.h"
#include "core/util.h"
#include "core/version.h"
#include "mem/mem.h"
#include "rpc/rpc.h"
#include "sys/kerndat.h"

int cmd_swrk(int argc, char **argv)
{
	long long fd;

	if (argc != 2 || parse_int(argv[1], 0, 1 << 20, &fd)) {
		fprintf(stderr, "usage: stasis swrk FD\n"
				"  Serve CRIU-compatible RPC requests (runc, Podman, go-criu) on the\n"
				"  SOCK_SEQPACKET socket FD until the client closes it.\n");
		return 2;
	}
	return rpc_serve((int)fd);
}

void cli_print_version(FILE *f)
{
	fprintf(f, "stasis %s\n", STASIS_VERSION);
}

static void criu_version(void)
{
	/* CRIU's format first (scripts parse "Version: "), then what it really is */
	printf("Version: %d.%d\n", RPC_COMPAT_MAJOR, RPC_COMPAT_MINOR);
	printf("stasis %s (CRIU-compatible command line and RPC)\n", STASIS_VERSION);
}

/* `criu check --feature NAME`: what stasis can do of CRIU's named features. Memory
 * tracking is write tracking with userfaultfd WP_ASYNC and PAGEMAP_SCAN here, not
 * soft-dirty; the others are not there (yet). */
static int criu_check_feature(const char *name)
{
	if (!strcmp(name, "mem_dirty_track")) {
		if (log_init("/dev/null", LOG_ERR))
			log_set_level(LOG_ERR);
		bool ok = mem_track_is_available();
		log_close();
		if (ok) {
			printf("mem_dirty_track is supported (write tracking with userfaultfd "
			       "WP_ASYNC and PAGEMAP_SCAN)\n");
			return 0;
		}
		fprintf(stderr, "Error: mem_dirty_track is not supported: write tracking needs "
				"PAGEMAP_SCAN and userfaultfd WP_ASYNC (Linux 6.7)\n");
		return 1;
	}
	fprintf(stderr, "Error: feature %s is not supported by stasis (known: "
			"mem_dirty_track)\n",
		name);
	return 1;
}

static int criu_check(int argc, char **argv)
{
	const struct kerndat *kd;
	int missing = 0;

	if (argc == 3 && !strcmp(argv[1], "--feature"))
		return criu_check_feature(argv[2]);
	if (argc == 2 && str_starts(argv[1], "--feature="))
		return criu_check_feature(argv[1] + strlen("--feature="));
	if (argc > 1) {
		fprintf(stderr, "criu check: only --feature NAME is supported by stasis "
				"(try `stasis check`)\n");
		return 1;
	}
	if (log_init("/dev/null", LOG_ERR))
		log_set_level(LOG_ERR);
	kd = kerndat_get();
	for (int f = 0; f < KD_NR_FEATURES; f++)
		if (kerndat_is_required(f) && !kerndat_has(kd, f)) {
			fprintf(stderr, "Error: %s is missing\n", kerndat_feature_name(f));
			missing++;
		}
	log_close();
	if (missing)
		return 1;
	printf("Looks good.\n");
	return 0;
}

/* The translated command line. */
struct xargs {
	char *v[320];
	int n;
	char *owned[320]; /* strings made here: freed after the command */
	int n_owned;
	char *work_dir, *images_dir, *log, *pidfile;
	int verbose;
	bool pre; /* pre-dump */
};

static int xadd(struct xargs *x, const char *a, const char *b)
{
	if (x->n + 3 >= (int)ARRAY_SIZE(x->v)) {
		fprintf(stderr, "criu: too many options\n");
		return -1;
	}
	x->v[x->n++] = (char *)a;
	if (b)
		x->v[x->n++] = (char *)b;
	return 0;
}

static char *own(struct xargs *x, char *s)
{
	if (x->n_owned < (int)ARRAY_SIZE(x->owned))
		x->owned[x->n_owned++] = s;
	return s;
}

/* A relative log or pid file is in the work directory (the images directory by
 * default), as CRIU has it. */
static char *in_work_dir(struct xargs *x, char *path)
{
	const char *wd = x->work_dir ? x->work_dir : x->images_dir;
	char *s;
	if (!path || path[0] == '/' || !wd)
		return path;
	if (asprintf(&s, "%s/%s", wd, path) < 0)
		return path;
	return own(x, s);
}

enum {
	O_SHELL_JOB = 256, O_TCP_EST, O_TCP_CLOSE, O_FILE_LOCKS, O_EXT_UNIX, O_MANAGE_CG,
	O_EXTERNAL, O_ROOT, O_INHERIT, O_PIDFILE, O_EXT_MNT, O_VETH, O_JOIN_NS, O_IGNORED,
	O_LAZY, O_TRACK, O_PREV, O_PS, O_ADDRESS, O_PORT, O_NETLOCK, O_LEAVE_STOPPED, O_WORK_DIR, O_CG_ROOT,
};

static const struct option criu_opts[] = {
	{ "tree", required_argument, NULL, 't' },
	{ "images-dir", required_argument, NULL, 'D' },
	{ "work-dir", required_argument, NULL, 'W' },
	{ "log-file", required_argument, NULL, 'o' },
	{ "verbosity", optional_argument, NULL, 'v' },
	{ "leave-running", no_argument, NULL, 'R' },
	{ "restore-detached", no_argument, NULL, 'd' },
	{ "shell-job", no_argument, NULL, O_SHELL_JOB },
	{ "tcp-established", no_argument, NULL, O_TCP_EST },
	{ "tcp-close", no_argument, NULL, O_TCP_CLOSE },
	{ "file-locks", no_argument, NULL, O_FILE_LOCKS },
	{ "ext-unix-sk", optional_argument, NULL, O_EXT_UNIX },
	{ "manage-cgroups", optional_argument, NULL, O_MANAGE_CG },
	{ "external", required_argument, NULL, O_EXTERNAL },
	{ "root", required_argument, NULL, O_ROOT },
	{ "inherit-fd", required_argument, NULL, O_INHERIT },
	{ "pidfile", required_argument, NULL, O_PIDFILE },
	{ "ext-mount-map", required_argument, NULL, O_EXT_MNT },
	{ "veth-pair", required_argument, NULL, O_VETH },
	{ "join-ns", required_argument, NULL, O_JOIN_NS },
	{ "lazy-pages", no_argument, NULL, O_LAZY },
	{ "track-mem", no_argument, NULL, O_TRACK },
	{ "prev-images-dir", required_argument, NULL, O_PREV },
	{ "page-server", no_argument, NULL, O_PS },
	{ "address", required_argument, NULL, O_ADDRESS },
	{ "port", required_argument, NULL, O_PORT },
	{ "network-lock", required_argument, NULL, O_NETLOCK },
	{ "leave-stopped", no_argument, NULL, O_LEAVE_STOPPED },
	/* accepted: stasis already behaves so (see src/rpc/opts.c for why) */
	{ "evasive-devices", no_argument, NULL, O_IGNORED },
	{ "link-remap", no_argument, NULL, O_IGNORED },
	{ "orphan-pts-master", no_argument, NULL, O_IGNORED },
	{ "weak-sysctls", no_argument, NULL, O_IGNORED },
	{ "ghost-limit", required_argument, NULL, O_IGNORED },
	{ "timeout", required_argument, NULL, O_IGNORED },
	{ "freeze-cgroup", required_argument, NULL, O_IGNORED },
	{ "cgroup-root", required_argument, NULL, O_CG_ROOT },
	{ "display-stats", no_argument, NULL, O_IGNORED },
	{ "help", no_argument, NULL, 'h' },
	{ NULL, 0, NULL, 0 },
};

static int criu_refuse(const char *opt, const char *why)
{
	fprintf(stderr, "criu: %s: %s\n", opt, why);
	return -1;
}

/* One CRIU option: translated into @x, or -1 after one line saying why not. */
static int criu_opt(struct xargs *x, int c, bool dump, char *arg, const char *spelled)
{
	char *s;

	switch (c) {
	case 't': return xadd(x, "-t", arg);
	case 'D': x->images_dir = arg; return xadd(x, "-D", arg);
	case 'W': x->work_dir = arg; return 0;
	case 'o': x->log = arg; return 0;
	case 'v': x->verbose = arg ? atoi(arg) : x->verbose + 1; return 0;
	/* a pre-dump always lets the tree run on */
	case 'R': return dump && !x->pre ? xadd(x, "--leave-running", NULL) : 0;
	case 'd': return dump ? criu_refuse("-d", "a restore option") : xadd(x, "-d", NULL);
	case O_SHELL_JOB: return xadd(x, "--shell-job", NULL);
	case O_TCP_EST: return dump ? xadd(x, "--tcp-established", NULL) : 0;
	case O_TCP_CLOSE:
		return dump ? criu_refuse("--tcp-close", "a restore option")
			    : xadd(x, "--tcp-close", NULL);
	/* (file locks are always dumped and restored) */
	case O_FILE_LOCKS:
		return 0;
	case O_EXT_UNIX:
		/* restore: the sockets are connected to their peer's address again; a
		 * pre-dump stores memory only: the external objects are the dump's */
		if (!dump || x->pre)
			return 0;
		if (asprintf(&s, "--ext-unix-sk%s%s", arg ? "=" : "", arg ? arg : "") < 0)
			return -1;
		return xadd(x, own(x, s), NULL);
	case O_MANAGE_CG:
		if (asprintf(&s, "--manage-cgroups=%s", arg ? arg : "soft") < 0)
			return -1;
		return xadd(x, own(x, s), NULL);
	case O_EXTERNAL: return x->pre ? 0 : xadd(x, "--external", arg);
	case O_ROOT: return dump ? 0 : xadd(x, "--root", arg);
	case O_INHERIT:
		return dump ? criu_refuse("--inherit-fd", "a restore option")
			    : xadd(x, "--inherit-fd", arg);
	case O_PIDFILE: x->pidfile = arg; return 0;
	case O_EXT_MNT: {
		if (x->pre)
			return 0;
		char *colon = strchr(arg, ':');
		if (!colon || asprintf(&s, "mnt[%.*s]:%s", (int)(colon - arg), arg, colon + 1) < 0)
			return criu_refuse("--ext-mount-map", "expected KEY:VALUE");
		return xadd(x, "--external", own(x, s));
	}
	case O_VETH: {
		if (x->pre)
			return 0;
		char *eq = strchr(arg, '=');
		if (!eq || asprintf(&s, dump ? "veth[%.*s]" : "veth[%.*s]:%s", (int)(eq - arg),
				    arg, eq + 1) < 0)
			return criu_refuse("--veth-pair", "expected IN=OUT");
		return xadd(x, "--external", own(x, s));
	}
	case O_JOIN_NS: return dump ? 0 : xadd(x, "--join-ns", arg);
	/* dump: where CRIU starts recording settings; stasis records every level's */
	case O_CG_ROOT: return dump ? 0 : xadd(x, "--cgroup-root", arg);
	/* restore: stasis's lazy restore serves the pages itself (no `criu lazy-pages`
	 * daemon needed); a dump that leaves the pages in the live tree for a post-copy
	 * restore is not stasis's: dump, then restore --lazy-pages */
	case O_LAZY:
		return !dump ? xadd(x, "--lazy-pages", NULL)
			     : criu_refuse("--lazy-pages", "a dump serving pages from the live tree "
							   "(post-copy) is not supported: dump, then "
							   "restore --lazy-pages");
	/* incremental dumps: stasis's own spellings (a pre-dump always tracks writes) */
	case O_TRACK:
		return dump ? xadd(x, "--track-mem", NULL)
			    : criu_refuse("--track-mem", "a dump option");
	case O_PREV:
		return dump ? xadd(x, "--prev-images-dir", arg)
			    : criu_refuse("--prev-images-dir", "a dump option (a restore follows "
								"the images' parent link)");
	case O_PS:
		return dump ? xadd(x, "--page-server", NULL)
			    : criu_refuse("--page-server", "a dump option (restore reads the "
							   "images the page server received)");
	case O_ADDRESS: return dump ? xadd(x, "--address", arg) : 0;
	case O_PORT: return dump ? xadd(x, "--port", arg) : 0;
	/* TODO(netlock helper): --network-lock once it lands. */
	case O_NETLOCK: return criu_refuse("--network-lock", "not supported yet");
	case O_LEAVE_STOPPED: return criu_refuse("--leave-stopped", "not supported");
	case O_IGNORED: return 0;
	default:
		fprintf(stderr, "criu: option '%s' is not supported by stasis\n", spelled);
		return -1;
	}
}

static int criu_dump_restore(int argc, char **argv, bool dump, bool pre)
{
	struct xargs x = { .n = 0, .pre = pre };
	char vbuf[8];
	int c;

	xadd(&x, pre ? "pre-dump" : dump ? "dump" : "restore", NULL);
	/* CRIU writes into the images directory whatever it holds (its log, too) */
	if (dump)
		xadd(&x, "--keep-foreign", NULL);
	optind = 1;
	opterr = 0;
	while ((c = getopt_long(argc, argv, "+t:D:W:o:v::RdjlxM:h", criu_opts, NULL)) != -1) {
		const char *spelled = argv[optind - 1];
		if (c == 'h') {
			printf("usage: criu %s [CRIU options]: see `stasis %s --help` for what "
			       "they map to\n",
			       argv[0], argv[0]);
			return 0;
		}
		if (c == 'j')
			c = O_SHELL_JOB;
		else if (c == 'l')
			c = O_FILE_LOCKS;
		else if (c == 'x')
			c = O_EXT_UNIX;
		else if (c == 'M')
			c = O_EXT_MNT;
		if (c == '?')
			c = -1;
		if (criu_opt(&x, c, dump, optarg, spelled))
			return 2;
	}
	if (optind != argc) {
		fprintf(stderr, "criu %s: unexpected argument '%s'\n", argv[0], argv[optind]);
		return 2;
	}
	if (x.log && xadd(&x, "-o", in_work_dir(&x, x.log)))
		return 2;
	if (x.pidfile && xadd(&x, "--pidfile", in_work_dir(&x, x.pidfile)))
		return 2;
	/* CRIU's levels: 0-1 errors, 2 warnings (default), 3 info, 4 debug */
	snprintf(vbuf, sizeof(vbuf), "%s", x.verbose >= 4 ? "-vv" : x.verbose == 3 ? "-v" : "");
	if (vbuf[0] && xadd(&x, vbuf, NULL))
		return 2;
	x.v[x.n] = NULL;
	int ret = pre ? cmd_pre_dump(x.n, x.v) : dump ? cmd_dump(x.n, x.v) : cmd_restore(x.n, x.v);
	for (int i = 0; i < x.n_owned; i++)
		free(x.owned[i]);
	return ret;
}

/* `criu page-server -D DIR --port P [--address A] [-o LOG] [-v...]`: stasis's page
 * server (its own protocol: the dumping side must be stasis too). */
/* `criu lazy-pages -D DIR` (started before `criu restore --lazy-pages`): stasis's lazy
 * restore serves the pages itself, so there is nothing to run; from a page server
 * (--page-server) it is not stasis's shape: `stasis restore --lazy-pages --page-server`. */
static int criu_lazy_pages(int argc, char **argv)
{
	static const struct option o[] = {
		{ "images-dir", required_argument, NULL, 'D' },
		{ "work-dir", required_argument, NULL, 'W' },
		{ "log-file", required_argument, NULL, 'o' },
		{ "page-server", no_argument, NULL, 'P' },
		{ "address", required_argument, NULL, 'a' },
		{ "port", required_argument, NULL, 'p' },
		{ NULL, 0, NULL, 0 },
	};
	int c;
	optind = 1;
	opterr = 0;
	while ((c = getopt_long(argc, argv, "+D:W:o:v::", o, NULL)) != -1) {
		if (c == 'P' || c == 'a' || c == 'p')
			return criu_refuse("lazy-pages --page-server", "use `stasis restore "
					   "--lazy-pages --page-server --address A --port P`");
		if (c == '?') {
			fprintf(stderr, "criu lazy-pages: option '%s' is not supported by stasis\n",
				argv[optind - 1]);
			return 2;
		}
	}
	fprintf(stderr, "criu lazy-pages: nothing to do: `restore --lazy-pages` serves the "
			"pages itself\n");
	return 0;
}

static int criu_page_server(int argc, char **argv)
{
	static const struct option o[] = {
		{ "images-dir", required_argument, NULL, 'D' },
		{ "work-dir", required_argument, NULL, 'W' },
		{ "address", required_argument, NULL, 'a' },
		{ "port", required_argument, NULL, 'p' },
		{ "log-file", required_argument, NULL, 'o' },
		{ "daemon", no_argument, NULL, 'd' },
		{ NULL, 0, NULL, 0 },
	};
	char *v[16], *log = NULL, *wd = NULL, *dir = NULL, *logpath = NULL;
	int n = 0, c, verbose = 0;
	v[n++] = (char *)"page-server";
	optind = 1;
	opterr = 0;
	while ((c = getopt_long(argc, argv, "+D:W:o:v::d", o, NULL)) != -1) {
		switch (c) {
		case 'D': dir = optarg; break;
		case 'W': wd = optarg; break;
		case 'o': log = optarg; break;
		case 'v': /* -v, -vvvv, -v4 */
			verbose = !optarg ? verbose + 1
				  : optarg[0] == 'v' ? 1 + (int)strlen(optarg) : atoi(optarg);
			break;
		case 'a':
			v[n++] = (char *)"--address";
			v[n++] = optarg;
			break;
		case 'p':
			v[n++] = (char *)"--port";
			v[n++] = optarg;
			break;
		case 'd':
			return criu_refuse("--daemon", "run it in the background yourself");
		default:
			fprintf(stderr, "criu page-server: option '%s' is not supported by stasis\n",
				argv[optind - 1]);
			return 2;
		}
	}
	if (!dir || optind != argc) {
		fprintf(stderr, "criu page-server: -D DIR and --port PORT are required\n");
		return 2;
	}
	v[n++] = (char *)"-D";
	v[n++] = dir;
	/* a relative log is in the work directory (the images directory by default) */
	if (log && log[0] != '/' && asprintf(&logpath, "%s/%s", wd ? wd : dir, log) < 0)
		return 1;
	if (log) {
		v[n++] = (char *)"-o";
		v[n++] = logpath ? logpath : log;
	}
	if (verbose >= 3)
		v[n++] = (char *)(verbose >= 4 ? "-vv" : "-v");
	v[n] = NULL;
	int ret = cmd_page_server(n, v);
	free(logpath);
	return ret;
}

int cmd_criu(int argc, char **argv)
{
	if (argc < 2) {
		fprintf(stderr, "usage: criu dump|pre-dump|restore|check|swrk|page-server|"
				"lazy-pages [options] (stasis's CRIU-compatible command line)\n");
		return 2;
	}
	const char *cmd = argv[1];
	if (!strcmp(cmd, "--version") || !strcmp(cmd, "-V")) {
		criu_version();
		return 0;
	}
	if (!strcmp(cmd, "dump") || !strcmp(cmd, "restore") || !strcmp(cmd, "pre-dump"))
		return criu_dump_restore(argc - 1, argv + 1, strcmp(cmd, "restore") != 0,
					 !strcmp(cmd, "pre-dump"));
	if (!strcmp(cmd, "check"))
		return criu_check(argc - 1, argv + 1);
	if (!strcmp(cmd, "swrk"))
		return cmd_swrk(argc - 1, argv + 1);
	if (!strcmp(cmd, "page-server"))
		return criu_page_server(argc - 1, argv + 1);
	if (!strcmp(cmd, "lazy-pages"))
		return criu_lazy_pages(argc - 1, argv + 1);
	fprintf(stderr, "criu: command '%s' is not supported by stasis (dump, pre-dump, restore, "
			"check, swrk, page-server, lazy-pages, --version)\n",
		cmd);
	return 1;
}
