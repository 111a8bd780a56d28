/* `stasis-helper --socket PATH [--user NAME|UID] [-v] [-o LOGFILE]`: the long-lived
 * privileged helper (helper/helper.h), a program of its own. It listens on PATH (mode
 * 0600, owned by the served user) and serves that user and root until
 * SIGTERM/SIGINT/SIGHUP. Refusals are logged (stderr by default, or LOGFILE).
 *
 * It is linked only with the helper's server (helper.c, ops.c, policy.c, proto.c) and
 * what that needs (core/log.c, core/util.c, the pure parsers of proc/parse.c): no
 * checkpoint code runs privileged (Makefile, HELPER_OBJS). `stasis helper ARGS` execs it
 * (src/cli/helper.c). The spawned mode has no program: the restoring stasis forks it
 * (helper_spawn(), spawn.c). */
#include <getopt.h>
#include <pwd.h>
#include <stdio.h>
#include <string.h>

#include "core/log.h"
#include "core/util.h"
#include "helper/helper.h"

#define PROG "stasis-helper"

static void helper_usage(FILE *f)
{
	fprintf(f, "usage: " PROG " --socket PATH [--user NAME|UID] [-v] [-o LOGFILE]\n"
		   "  Serve privileged operations (id maps from /etc/subuid and /etc/subgid,\n"
		   "  ns_last_pid, socket buffer sizes, open by handle) to the user and root\n"
		   "  over a unix socket at PATH, until SIGTERM or SIGINT.\n"
		   "  --user   the user served besides root (default: the helper's own uid)\n"
		   "  -v       log what is served, not only refusals (-vv: debug)\n"
		   "  -o FILE  log to FILE instead of stderr\n");
}

static int lookup_user(const char *s, uid_t *uid)
{
	struct passwd *pw = getpwnam(s);
	long long v;

	if (pw) {
		*uid = pw->pw_uid;
		return 0;
	}
	if (!parse_int(s, 0, UINT32_MAX - 1, &v)) {
		*uid = (uid_t)v;
		return 0;
	}
	return -ENOENT;
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "socket", required_argument, NULL, 's' },
		{ "user", required_argument, NULL, 'u' },
		{ "verbose", no_argument, NULL, 'v' },
		{ "log-file", required_argument, NULL, 'o' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct helper_cfg cfg = { .serve_uid = geteuid() };
	const char *path = NULL, *logfile = NULL, *user = NULL;
	int verbose = 0, c;

	while ((c = getopt_long(argc, argv, "+hvo:", longopts, NULL)) != -1) {
		switch (c) {
		case 's': path = optarg; break;
		case 'u': user = optarg; break;
		case 'v': verbose++; break;
		case 'o': logfile = optarg; break;
		case 'h': helper_usage(stdout); return 0;
		default: helper_usage(stderr); return 2;
		}
	}
	if (optind < argc || !path) {
		fprintf(stderr, PROG ": %s\n",
			optind < argc ? "unexpected argument" : "--socket PATH is required");
		helper_usage(stderr);
		return 2;
	}
	if (user && lookup_user(user, &cfg.serve_uid)) {
		fprintf(stderr, PROG ": unknown user '%s'\n", user);
		return 2;
	}
	if (log_init(logfile, verbose >= 2 ? LOG_DEBUG : verbose ? LOG_INFO : LOG_WARN)) {
		fprintf(stderr, PROG ": cannot open log file %s: %s\n", logfile, strerror(errno));
		return 1;
	}
	log_set_stage("helper");
	int ret = helper_serve_socket(path, &cfg);
	if (ret) {
		/* the one-line summary, as the stasis commands print it */
		const char *e = log_first_error();
		fprintf(stderr, PROG ": %s\n", e[0] ? e : "failed");
	}
	log_close();
	return ret ? 1 : 0;
}
