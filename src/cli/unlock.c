/* `stasis unlock-network -D DIR`: remove the network lock a dump left for the restore of
 * DIR (netlock.img names its table) when that image will not be restored: the peers of
 * the tree's TCP connections then get resets instead of waiting. Also works on the
 * temporary directory (DIR.stasis-tmp.PID) of a dump that was killed while it held the
 * lock. Removes only the `inet stasis-lock-*` table the record names. */
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"
#include "core/log.h"
#include "net/netlock.h"

static void unlock_usage(FILE *f)
{
	fprintf(f, "usage: stasis unlock-network -D DIR [-v] [-o LOGFILE]\n"
		   "  Remove the network lock (nftables table inet stasis-lock-PID) that the dump\n"
		   "  into DIR left until its restore, for an image that will not be restored.\n");
}

int cmd_unlock_network(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "images-dir", required_argument, NULL, 'D' },
		{ "log-file", required_argument, NULL, 'o' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *dir = NULL, *logfile = NULL;
	int verbose = 0, c;

	optind = 1;
	while ((c = getopt_long(argc, argv, "D:o:vh", opts, NULL)) != -1) {
		switch (c) {
		case 'D':
			dir = optarg;
			break;
		case 'o':
			logfile = optarg;
			break;
		case 'v':
			verbose++;
			break;
		case 'h':
			unlock_usage(stdout);
			return 0;
		default:
			unlock_usage(stderr);
			return 2;
		}
	}
	if (!dir || optind != argc) {
		unlock_usage(stderr);
		return 2;
	}
	if (cli_log_init("unlock-network", logfile, verbose))
		return 2;
	log_set_stage("unlock-network");
	int ret = netlock_unlock_dir(dir);
	if (ret)
		cli_report_failure("unlock-network");
	log_close();
	return ret ? 1 : 0;
}
