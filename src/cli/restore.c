#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"
#include "core/log.h"
#include "ns/mnt.h"
#include "cr/ctx.h"

static void restore_usage(FILE *f)
{
	fprintf(f, "usage: stasis restore -D DIR [-d] [--pidfile FILE] [-v] [-o LOGFILE]\n"
		   "                      [--external mnt[KEY]:HOSTPATH | veth[NAME]:HOST[@BRIDGE]]...\n"
		   "                      [--root DIR] [--join-ns TYPE:PATH]... [--pin-ns DIR]\n"
		   "                      [--helper SOCKET]\n"
		   "  -D, --images-dir DIR the images to restore from\n"
		   "  -d, --restore-detached  return once the task runs (it is reparented)\n"
		   "      --pidfile FILE   write the restored task's pid there\n"
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
		   "  -v                   more log output (repeat for debug)\n"
		   "  -o, --log-file FILE  write the log there instead of stderr\n"
		   "Without -d, stasis waits for the task and exits with its exit status\n"
		   "(128+N if it was killed by signal N).\n");
}

int cmd_restore(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "images-dir", required_argument, NULL, 'D' },
		{ "restore-detached", no_argument, NULL, 'd' },
		{ "pidfile", required_argument, NULL, 'p' },
		{ "join-ns", required_argument, NULL, 'J' },
		{ "log-file", required_argument, NULL, 'o' },
		{ "external", required_argument, NULL, 'E' },
		{ "root", required_argument, NULL, 'r' },
		{ "helper", required_argument, NULL, 'H' },
		{ "pin-ns", required_argument, NULL, 'P' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct restore_opts o = { 0 };
	const char *logfile = NULL;
	int verbose = 0, c;
	char *ext[64];
	size_t n_ext = 0;

	optind = 1;
	while ((c = getopt_long(argc, argv, "D:do:vh", opts, NULL)) != -1) {
		switch (c) {
		case 'D':
			o.dir = optarg;
			break;
		case 'd':
			o.detach = true;
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
		case 'E': {
			if (n_ext == ARRAY_SIZE(ext) || cli_parse_external(optarg, false)) {
				fprintf(stderr, "stasis restore: invalid --external '%s' (at most %zu, "
						"mnt[KEY]:HOSTPATH or veth[NAME]:HOSTNAME[@BRIDGE])\n",
					optarg, ARRAY_SIZE(ext));
				return 2;
			}
			ext[n_ext++] = optarg;
			break;
		}
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
	if (cli_log_init("restore", logfile, verbose))
		return 2;
	o.externals = ext;
	o.n_externals = n_ext;
	int ret = restore_run(&o);
	if (ret < 0) {
		cli_report_failure("restore");
		log_close();
		return 1;
	}
	log_close();
	return ret;
}
