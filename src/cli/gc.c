/* `stasis gc DIR...`: remove the temporary directories (DIR.stasis-tmp.PID) that dumps
 * killed midway left behind, and say what was removed. A dump in progress holds a lock on
 * its own (src/image/img.h, img_gc) and is never touched. A dump into DIR does the same
 * for DIR by itself; this command is for the places no dump goes to again. */
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"
#include "core/log.h"
#include "image/img.h"
#include "net/netlock.h"

struct gc_totals {
	unsigned int removed, live, kept, failed;
	uint64_t bytes;
};

static void gc_usage(FILE *f)
{
	fprintf(f, "usage: stasis gc DIR...\n"
		   "  Remove the temporary directories DIR.stasis-tmp.PID left by dumps into DIR\n"
		   "  that were killed (and, when DIR is a directory, those of dumps into DIR/NAME).\n"
		   "  A dump still running holds a lock on its directory: it is never touched.\n"
		   "  Exit status: 0, or 1 if a directory could not be read or removed.\n");
}

static void gc_report(void *arg, const char *tmp, enum img_gc_what what, uint64_t bytes, int err,
		      const char *foreign)
{
	struct gc_totals *t = arg;
	switch (what) {
	case IMG_GC_REMOVED:
		printf("removed %s (%.1f MiB): its dump is gone\n", tmp, (double)bytes / (1 << 20));
		t->removed++;
		t->bytes += bytes;
		break;
	case IMG_GC_LIVE:
		printf("kept %s: a dump in progress holds it\n", tmp);
		t->live++;
		break;
	case IMG_GC_FOREIGN:
		printf("kept %s: it holds %s, which is not a stasis image\n", tmp, foreign);
		t->kept++;
		break;
	case IMG_GC_FAILED:
		fprintf(stderr, "stasis gc: cannot remove %s: %s\n", tmp, strerror(-err));
		t->failed++;
		break;
	}
}

int cmd_gc(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct gc_totals t = { 0 };
	int c, status = 0;

	optind = 1;
	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		if (c == 'h') {
			gc_usage(stdout);
			return 0;
		}
		gc_usage(stderr);
		return 2;
	}
	if (optind == argc) {
		gc_usage(stderr);
		return 2;
	}
	if (log_init(NULL, LOG_NONE))
		return 2;
	/* the network lock a killed dump left goes with its directory (its tree runs on) */
	img_gc_set_stale_hook(netlock_gc_stale);
	for (int i = optind; i < argc; i++) {
		int ret = img_gc(argv[i], true, gc_report, &t);
		if (ret < 0) {
			fprintf(stderr, "stasis gc: %s: %s\n", argv[i], strerror(-ret));
			status = 1;
		}
	}
	printf("%u stale temporary director%s removed (%.1f MiB), %u of dumps in progress kept",
	       t.removed, t.removed == 1 ? "y" : "ies", (double)t.bytes / (1 << 20), t.live);
	if (t.kept)
		printf(", %u with other files kept", t.kept);
	printf("\n");
	log_close();
	return status || t.failed ? 1 : 0;
}
