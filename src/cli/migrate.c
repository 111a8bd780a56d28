/* `stasis migrate -t PID -D DIR --address ADDR --port PORT`: live migration with pre-copy.
 * The tree's memory goes to the `stasis page-server` at ADDR:PORT while the tree runs
 * (pre-dump 1: everything; pre-dump k: only what was written since pre-dump k-1, found
 * with the write tracking of src/mem/track.c), until a pass has little left to send
 * (--dirty-limit) or stops shrinking or --max-iterations passes were made; then the final
 * dump freezes the tree, sends what was written since the last pass and the metadata,
 * and, once the server has the whole image, kills the tree here. Image k goes to DIR/k on
 * both sides (its `parent` link is ../k-1 on both): the other side restores the last one
 * with `stasis restore -D SERVERDIR/N`. A failed pass leaves the tree running here. */
#include <getopt.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "cli/cli.h"
#include "core/log.h"
#include "cr/ctx.h"
#include "net/netlock.h"

static void migrate_usage(FILE *f)
{
	fprintf(f, "usage: stasis migrate -t PID -D DIR --address ADDR --port PORT\n"
		   "                      [--max-iterations N] [--dirty-limit MIB] [--compress[=L]]\n"
		   "                      [--no-sync] [--network-lock nftables|none] [-j] [-v] [-o LOG]\n"
		   "  Move the tree to the `stasis page-server` at ADDR:PORT: copy its memory while\n"
		   "  it runs, then only what it wrote since, until little is left; then freeze it,\n"
		   "  send the rest and kill it here. Restore it there from SERVERDIR/N (printed).\n"
		   "  -D, --images-dir DIR  the metadata of each pass here (DIR/1, DIR/2, ...)\n"
		   "      --max-iterations N  pre-copy passes at most (default 8; 0: one dump)\n"
		   "      --dirty-limit MIB  stop pre-copying once a pass sends no more (default 16)\n");
}

/* The passes: pre-dumps while they shrink, then the dump. 0 or -errno (logged). */
static int migrate_run(const struct dump_opts *b, int iters, uint64_t limit)
{
	struct dump_opts base = *b;
	char sub[4096], name[16], prev[24];
	uint64_t last = UINT64_MAX;
	int ret = 0, k;
	for (k = 1; k <= iters + 1 && !ret; k++) {
		bool final = k == iters + 1;
		struct cr_stats st = { 0 };
		struct dump_opts o = base;
		snprintf(name, sizeof(name), "%d", k);
		snprintf(prev, sizeof(prev), "../%d", k - 1);
		if ((size_t)snprintf(sub, sizeof(sub), "%s/%d", base.dir, k) >= sizeof(sub)) {
			ret = -ENAMETOOLONG;
			pr_err("migrate: the -D path is too long");
			break;
		}
		o.dir = sub;
		o.ps_name = name;
		o.prev_dir = k > 1 ? prev : NULL;
		o.pre_dump = !final;
		o.stats = &st;
		uint64_t t0 = now_ns();
		ret = dump_run(&o);
		if (ret)
			break;
		uint64_t sent = st.pages_written * PAGE_SIZE;
		printf("%s %d: %.1f MiB sent in %.0f ms, tree frozen %.1f ms\n",
		       final ? "dump" : "pre-dump", k, (double)sent / (1 << 20),
		       (double)(now_ns() - t0) / 1e6, st.frozen_us / 1e3);
		fflush(stdout);
		if (final) {
			printf("migrated: image %s at %s:%s\n", name, base.ps_addr, base.ps_port);
			break;
		}
		/* little left, or no longer converging: freeze now */
		if (sent <= limit || sent >= last)
			iters = k;
		last = sent;
	}
	return ret;
}

int cmd_migrate(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "tree", required_argument, NULL, 't' },
		{ "images-dir", required_argument, NULL, 'D' },
		{ "address", required_argument, NULL, 'a' },
		{ "port", required_argument, NULL, 'p' },
		{ "max-iterations", required_argument, NULL, 'i' },
		{ "dirty-limit", required_argument, NULL, 'l' },
		{ "compress", optional_argument, NULL, 'C' },
		{ "no-sync", no_argument, NULL, 'S' },
		{ "network-lock", required_argument, NULL, 'N' },
		{ "shell-job", no_argument, NULL, 'j' },
		{ "tcp-established", no_argument, NULL, 'T' },
		{ "log-file", required_argument, NULL, 'o' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct dump_opts base = { .pid = -1, .sync = true };
	const char *logfile = NULL;
	long long v, iters = 8, limit_mib = 16;
	int verbose = 0, c;

	optind = 1;
	while ((c = getopt_long(argc, argv, "t:D:o:vjh", opts, NULL)) != -1) {
		switch (c) {
		case 't':
			if (parse_int(optarg, 1, 0x3fffffff, &v)) {
				fprintf(stderr, "stasis migrate: invalid pid '%s'\n", optarg);
				return 2;
			}
			base.pid = (pid_t)v;
			break;
		case 'D':
			base.dir = optarg;
			break;
		case 'a':
			base.ps_addr = optarg;
			break;
		case 'p':
			if (parse_int(optarg, 1, 65535, &v)) {
				fprintf(stderr, "stasis migrate: invalid --port '%s'\n", optarg);
				return 2;
			}
			base.ps_port = optarg;
			break;
		case 'i':
			if (parse_int(optarg, 0, 64, &iters)) {
				fprintf(stderr, "stasis migrate: --max-iterations: 0..64\n");
				return 2;
			}
			break;
		case 'l':
			if (parse_int(optarg, 0, 1 << 20, &limit_mib)) {
				fprintf(stderr, "stasis migrate: --dirty-limit: MiB, 0..1048576\n");
				return 2;
			}
			break;
		case 'C':
			if (cli_parse_compress(optarg, "migrate", &base.compress))
				return 2;
			break;
		case 'S':
			base.sync = false;
			break;
		case 'N':
			if (netlock_parse_mode(optarg, &base.network_lock_none)) {
				fprintf(stderr, "stasis migrate: invalid --network-lock '%s'\n", optarg);
				return 2;
			}
			break;
		case 'j':
			base.shell_job = true;
			break;
		case 'T':
			break;
		case 'o':
			logfile = optarg;
			break;
		case 'v':
			verbose++;
			break;
		case 'h':
			migrate_usage(stdout);
			return 0;
		default:
			migrate_usage(stderr);
			return 2;
		}
	}
	if (base.pid < 0 || !base.dir || !base.ps_addr || !base.ps_port || optind != argc) {
		fprintf(stderr, "stasis migrate: -t PID, -D DIR, --address and --port are required\n");
		migrate_usage(stderr);
		return 2;
	}
	if (cli_log_init("migrate", logfile, verbose))
		return 2;
	if (mkdir(base.dir, 0700) < 0 && errno != EEXIST) {
		fprintf(stderr, "stasis migrate: mkdir %s: %s\n", base.dir, strerror(errno));
		log_close();
		return 1;
	}

	int ret = migrate_run(&base, (int)iters, (uint64_t)limit_mib << 20);
	if (ret)
		cli_report_failure("migrate");
	log_close();
	return ret ? 1 : 0;
}
