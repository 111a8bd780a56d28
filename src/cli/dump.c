#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "ns/cgroup.h"
#include "cli/cli.h"
#include "core/log.h"
#include "net/netlock.h"
#include "ns/mnt.h"
#include "cr/ctx.h"

static void dump_usage(FILE *f)
{
	fprintf(f, "usage: stasis dump -t PID -D DIR [--leave-running] [--no-sync] [-j] [-v] [-o LOGFILE]\n"
		   "                   [--tcp-established] [--network-lock nftables|none]\n"
		   "                   [--external mnt[MOUNTPOINT]:KEY | veth[NAME] | unix[INODE]]...\n"
		   "  -t, --tree PID       the process to checkpoint\n"
		   "  -D, --images-dir DIR where the images go (created; replaced atomically)\n"
		   "  -R, --leave-running  let the process go on after the dump\n"
		   "      --no-sync        do not fsync the images\n"
		   "      --tcp-established  accepted for CRIU users: TCP connections are always\n"
		   "                       dumped (in TCP repair mode)\n"
		   "      --keep-foreign   DIR may hold other files (a log, a runtime's): they are\n"
		   "                       kept, not refused (CRIU's convention)\n"
		   "      --external mnt[MOUNTPOINT]:KEY  a mount stasis cannot recreate: restore\n"
		   "                       binds what --external mnt[KEY]:HOSTPATH names there\n"
		   "      --external veth[NAME]  accepted (a veth whose peer is outside the tree is\n"
		   "                       found by itself; restore names its host end)\n"
		   "  -j, --shell-job      the tree is attached to the caller's terminal (a shell\n"
		   "                       job): restore it with --shell-job on the restorer's\n"
		   "                       terminal\n"
		   "      --external unix[INODE]  a unix socket (or its peer) of that inode whose peer\n"
		   "                       is outside the tree: restore connects it to the peer's\n"
		   "                       address again (CRIU's --ext-unix-sk[=INODE] too; alone:\n"
		   "                       every such socket)\n"
		   "      --network-lock nftables|none  drop the packets of the tree's TCP\n"
		   "                       connections until its restore runs (nftables, the\n"
		   "                       default), or not: locked by other means (none)\n"
		   "      --prev-images-dir PREV  incremental: store only the pages written since\n"
		   "                       the pre-dump in PREV (relative to DIR, or absolute)\n"
		   "      --compress[=LEVEL]  store the pages zstd-compressed (LEVEL 1..19, default\n"
		   "                       1); restore reads either\n"
		   "      --track-mem      accepted (write tracking is always on for pre-dump)\n"
		   "      --page-server --address ADDR --port PORT  send the images to the\n"
		   "                       `stasis page-server` there: the pages as they are\n"
		   "                       read, the rest at the end (DIR keeps the metadata)\n"
		   "  -v                   more log output (repeat for debug)\n"
		   "  -o, --log-file FILE  write the log there instead of stderr\n");
}

static const struct option dump_longopts[] = {
	{ "tree", required_argument, NULL, 't' },
	{ "images-dir", required_argument, NULL, 'D' },
	{ "leave-running", no_argument, NULL, 'R' },
	{ "no-sync", no_argument, NULL, 'S' },
	{ "tcp-established", no_argument, NULL, 'T' },
	{ "log-file", required_argument, NULL, 'o' },
	{ "external", required_argument, NULL, 'E' },
	{ "manage-cgroups", optional_argument, NULL, 'G' },
	{ "shell-job", no_argument, NULL, 'j' },
	{ "keep-foreign", no_argument, NULL, 'K' },
	{ "ext-unix-sk", optional_argument, NULL, 'U' },
	{ "network-lock", required_argument, NULL, 'N' },
	{ "prev-images-dir", required_argument, NULL, 'P' },
	{ "track-mem", no_argument, NULL, 'M' },
	{ "compress", optional_argument, NULL, 'C' },
	{ "page-server", no_argument, NULL, 'p' },
	{ "address", required_argument, NULL, 'a' },
	{ "port", required_argument, NULL, 'r' },
	{ "help", no_argument, NULL, 'h' },
	{ NULL, 0, NULL, 0 },
};

#define MAX_EXT 64

/* --external @arg, or --ext-unix-sk[=@arg] (@unix_sk: spelled unix[INODE]), into @ext.
 * 0, or -1 said on stderr. */
static int add_external(char **ext, size_t *n, char *arg, bool unix_sk)
{
	static char ext_unix[MAX_EXT][32];
	char *val = arg;
	if (unix_sk) {
		val = ext_unix[*n < MAX_EXT ? *n : 0];
		snprintf(val, sizeof(ext_unix[0]), "unix[%s]", arg ? arg : "*");
	}
	if (*n < MAX_EXT && !cli_parse_external(val, true)) {
		ext[(*n)++] = val;
		return 0;
	}
	if (unix_sk)
		fprintf(stderr, "stasis dump: invalid --ext-unix-sk '%s'\n", arg ? arg : "");
	else
		fprintf(stderr, "stasis dump: invalid --external '%s' (at most %d, "
				"mnt[MOUNTPOINT]:KEY, veth[NAME] or unix[INODE])\n",
			arg, MAX_EXT);
	return -1;
}

static int dump_main(int argc, char **argv, bool pre)
{
	struct dump_opts o = { .pid = -1, .sync = true, .pre_dump = pre };
	const char *cmd = pre ? "pre-dump" : "dump";
	const char *logfile = NULL;
	int verbose = 0, c;
	long long v;
	char *ext[MAX_EXT];
	size_t n_ext = 0;
	bool ps = false;

	optind = 1;
	while ((c = getopt_long(argc, argv, "t:D:Ro:vjh", dump_longopts, NULL)) != -1) {
		switch (c) {
		case 't':
			if (parse_int(optarg, 1, 0x3fffffff, &v)) {
				fprintf(stderr, "stasis dump: invalid pid '%s'\n", optarg);
				return 2;
			}
			o.pid = (pid_t)v;
			break;
		case 'D':
			o.dir = optarg;
			break;
		case 'R':
			o.leave_running = true;
			break;
		case 'S':
			o.sync = false;
			break;
		case 'j':
			o.shell_job = true;
			break;
		case 'T': /* CRIU's: stasis dumps established connections anyway */
		case 'M': /* CRIU's: a pre-dump always tracks */
			break;
		case 'K':
			o.keep_foreign = true;
			break;
		case 'P':
			o.prev_dir = optarg;
			break;
		case 'C':
			if (cli_parse_compress(optarg, cmd, &o.compress))
				return 2;
			break;
		case 'o':
			logfile = optarg;
			break;
		case 'p':
			ps = true;
			break;
		case 'a':
			o.ps_addr = optarg;
			break;
		case 'r':
			if (parse_int(optarg, 1, 65535, &v)) {
				fprintf(stderr, "stasis %s: invalid --port '%s'\n", cmd, optarg);
				return 2;
			}
			o.ps_port = optarg;
			break;
		case 'E':
		case 'U':
			if (add_external(ext, &n_ext, optarg, c == 'U'))
				return 2;
			break;
		case 'G':
			/* the settings of the tree's cgroups are always recorded: the mode is
			 * the restore's (accepted here for CRIU's command lines) */
			if (cgroup_mode(optarg ? optarg : "soft") < 0) {
				fprintf(stderr, "stasis dump: --manage-cgroups: unknown mode '%s'\n",
					optarg);
				return 2;
			}
			break;
		case 'N':
			if (netlock_parse_mode(optarg, &o.network_lock_none)) {
				fprintf(stderr, "stasis dump: invalid --network-lock '%s' (nftables "
						"or none)\n",
					optarg);
				return 2;
			}
			break;
		case 'v':
			verbose++;
			break;
		case 'h':
			dump_usage(stdout);
			return 0;
		default:
			dump_usage(stderr);
			return 2;
		}
	}
	if (o.pid < 0 || !o.dir || optind != argc) {
		fprintf(stderr, "stasis dump: -t PID and -D DIR are required\n");
		dump_usage(stderr);
		return 2;
	}
	if (pre && (o.leave_running || n_ext)) {
		fprintf(stderr, "stasis pre-dump: --leave-running and --external are dump options "
				"(a pre-dump always leaves the tree running)\n");
		return 2;
	}
	if (ps != (o.ps_addr && o.ps_port) || (!ps && (o.ps_addr || o.ps_port)))
		return fprintf(stderr, "stasis %s: --page-server needs --address and --port (and "
				       "they only go with it)\n", cmd), 2;
	if (cli_log_init(cmd, logfile, verbose))
		return 2;
	o.externals = ext;
	o.n_externals = n_ext;
	int ret = dump_run(&o);
	if (ret)
		cli_report_failure(cmd);
	log_close();
	return ret ? 1 : 0;
}

int cmd_dump(int argc, char **argv)
{
	return dump_main(argc, argv, false);
}

int cmd_pre_dump(int argc, char **argv)
{
	return dump_main(argc, argv, true);
}
