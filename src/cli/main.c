#include <stdio.h>
#include <string.h>

#include "cli/cli.h"
#include "core/log.h"
#include "core/util.h"
#include "ns/mnt.h"
#include "net/netns.h"

static void usage(FILE *f)
{
	fprintf(f, "usage: stasis <command> [options]\n"
		   "  dump -t PID -D DIR [--leave-running] [--no-sync] [-v] [-o LOGFILE]\n"
		   "       [--prev-images-dir PREV] [--track-mem]\n"
		   "  pre-dump -t PID -D DIR [--prev-images-dir PREV] [--track-mem] [--no-sync]\n"
		   "  restore -D DIR [-d] [--pidfile FILE] [-v] [-o LOGFILE]\n"
		   "  show DIR|FILE\n"
		   "  check [--unprivileged] [--json]\n"
		   "  gc DIR...\n"
		   "  unlock-network -D DIR [-v] [-o LOGFILE]\n"
		   "  page-server -D DIR --port PORT [--address ADDR]\n"
		   "  migrate -t PID -D DIR --address ADDR --port PORT\n"
		   "  helper --socket PATH [--user NAME] [-v] [-o LOGFILE]\n"
		   "  swrk FD             serve CRIU-compatible RPC (runc, Podman) on socket FD\n"
		   "  --version\n"
		   "Invoked as `criu` (a symlink), stasis takes CRIU's command line.\n");
}

int cli_log_init(const char *cmd, const char *logfile, int verbose)
{
	enum log_level lvl = verbose >= 2 ? LOG_DEBUG
			     : verbose	  ? LOG_INFO
			     : logfile	  ? LOG_WARN
					  : LOG_NONE;
	if (log_init(logfile, lvl)) {
		fprintf(stderr, "stasis %s: cannot open log file %s: %s\n", cmd, logfile,
			strerror(errno));
		return -1;
	}
	return 0;
}

void cli_report_failure(const char *cmd)
{
	const char *e = log_first_error();
	fprintf(stderr, "stasis: %s\n", e[0] ? e : cmd);
}

int main(int argc, char **argv)
{
	static const struct {
		const char *name;
		int (*fn)(int, char **);
	} cmds[] = {
		{ "dump", cmd_dump },
		{ "pre-dump", cmd_pre_dump },
		{ "restore", cmd_restore },
		{ "show", cmd_show },
		{ "check", cmd_check },
		{ "helper", cmd_helper },
		{ "gc", cmd_gc },
		{ "swrk", cmd_swrk },
		{ "unlock-network", cmd_unlock_network },
		{ "page-server", cmd_page_server },
		{ "migrate", cmd_migrate },
	};
	const char *base = argc > 0 ? strrchr(argv[0], '/') : NULL;

	base = base ? base + 1 : argc > 0 ? argv[0] : "";
	if (!strcmp(base, "criu"))
		return cmd_criu(argc, argv);

	if (argc < 2) {
		usage(stderr);
		return 2;
	}
	if (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help") || !strcmp(argv[1], "help")) {
		usage(stdout);
		return 0;
	}
	if (!strcmp(argv[1], "--version") || !strcmp(argv[1], "-V")) {
		cli_print_version(stdout);
		return 0;
	}
	for (size_t i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++)
		if (!strcmp(argv[1], cmds[i].name))
			return cmds[i].fn(argc - 1, argv + 1);
	fprintf(stderr, "stasis: unknown command '%s'\n", argv[1]);
	usage(stderr);
	return 2;
}

/* unix[INODE] (or unix[*]: every unix socket whose peer is outside the tree), at dump */
static int parse_unix_external(const char *arg, bool at_dump)
{
	long long v;
	char num[32];
	const char *end = strchr(arg, ']');
	size_t len = end ? (size_t)(end - arg) - 5 : 0;
	if (!at_dump || !end || end[1] || !len || len >= sizeof(num))
		return -1;
	memcpy(num, arg + 5, len);
	num[len] = 0;
	return !strcmp(num, "*") || !parse_int(num, 1, 0xffffffffll, &v) ? 0 : -1;
}

int cli_parse_compress(const char *arg, const char *cmd, int *level)
{
	long long v = 1;
	if (arg && parse_int(arg, 1, 19, &v)) {
		fprintf(stderr, "stasis %s: invalid --compress level '%s' (1..19)\n", cmd, arg);
		return -1;
	}
	*level = (int)v;
	return 0;
}

int cli_parse_external(const char *arg, bool at_dump)
{
	char *a = NULL, *b = NULL, *c = NULL;
	if (str_starts(arg, "unix["))
		return parse_unix_external(arg, at_dump);
	int ret = str_starts(arg, "veth[") ? net_parse_external(arg, at_dump, &a, &b, &c)
					   : mnt_parse_external(arg, at_dump, &a, &b);
	free(a);
	free(b);
	free(c);
	return ret;
}
