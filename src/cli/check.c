/* `stasis check [--json] [-v]`: print every kernel feature stasis probes (sys/kerndat.h),
 * whether it is present, whether basic dump/restore requires it, and a note. Exits 1 if a
 * required feature is missing. */
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"
#include "core/log.h"
#include "image/json.h"
#include "sys/kerndat.h"

struct check_opts {
	bool json;
	bool verbose;
	/* Room for --unprivileged: it changes which features are required (see
	 * check_required()), not how they are probed or printed. */
};

static void check_usage(FILE *f)
{
	fprintf(f, "usage: stasis check [--json] [-v]\n"
		   "  Probe the kernel features stasis uses and say which are missing.\n"
		   "  --json   print the result as one JSON object\n"
		   "  -v       log the probes on stderr\n"
		   "  Exit status: 0 if every required feature is present, 1 otherwise.\n");
}

/* Whether the feature is required in the mode the user asked about. */
static bool check_required(const struct check_opts *o, enum kd_feature f)
{
	(void)o;
	return kerndat_is_required(f);
}

static int check_print_text(const struct check_opts *o, const struct kerndat *kd)
{
	char note[256];

	printf("kernel %s\n", kd->release[0] ? kd->release : "(unknown)");
	for (int f = 0; f < KD_NR_FEATURES; f++) {
		bool has = kerndat_has(kd, f);
		bool req = check_required(o, f);
		printf("%-32s %-3s  %-8s  %s\n", kerndat_feature_name(f), has ? "yes" : "no",
		       req ? "required" : "optional", kerndat_feature_note(kd, f, note, sizeof(note)));
	}
	return fflush(stdout) == EOF ? -EIO : 0;
}

static int check_print_json(const struct check_opts *o, const struct kerndat *kd, bool ok)
{
	struct json_writer w;
	char note[256];

	json_init(&w, stdout, true);
	json_obj_begin(&w);
	json_key(&w, "kernel");
	json_str(&w, kd->release);
	json_key(&w, "ok");
	json_bool(&w, ok);
	json_key(&w, "features");
	json_arr_begin(&w);
	for (int f = 0; f < KD_NR_FEATURES; f++) {
		json_obj_begin(&w);
		json_key(&w, "name");
		json_str(&w, kerndat_feature_name(f));
		json_key(&w, "present");
		json_bool(&w, kerndat_has(kd, f));
		json_key(&w, "required");
		json_bool(&w, check_required(o, f));
		json_key(&w, "note");
		json_str(&w, kerndat_feature_note(kd, f, note, sizeof(note)));
		json_obj_end(&w);
	}
	json_arr_end(&w);
	json_key(&w, "values");
	json_obj_begin(&w);
	json_key(&w, "mm_map_size");
	json_u64(&w, kd->mm_map_size);
	json_key(&w, "uffd_features");
	json_hex(&w, kd->uffd_features);
	json_key(&w, "vdso_size");
	json_u64(&w, kd->vdso_size);
	json_key(&w, "vvar_size");
	json_u64(&w, kd->vvar_size);
	json_key(&w, "vvar_vclock_size");
	json_u64(&w, kd->vvar_vclock_size);
	json_key(&w, "xsave_size");
	json_u64(&w, kd->xsave_size);
	json_key(&w, "xfeatures");
	json_hex(&w, kd->xfeatures);
	json_obj_end(&w);
	json_obj_end(&w);
	return json_finish(&w);
}

static int check_parse(int argc, char **argv, struct check_opts *o)
{
	static const struct option longopts[] = {
		{ "json", no_argument, NULL, 'j' },
		{ "verbose", no_argument, NULL, 'v' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	int c;

	memset(o, 0, sizeof(*o));
	optind = 1;
	while ((c = getopt_long(argc, argv, "+hv", longopts, NULL)) != -1) {
		switch (c) {
		case 'j': o->json = true; break;
		case 'v': o->verbose = true; break;
		case 'h': check_usage(stdout); return 1;
		default: check_usage(stderr); return -EINVAL;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "stasis check: unexpected argument '%s'\n", argv[optind]);
		check_usage(stderr);
		return -EINVAL;
	}
	return 0;
}

int cmd_check(int argc, char **argv)
{
	struct check_opts o;
	char missing[512] = "";
	int ret = check_parse(argc, argv, &o);

	if (ret)
		return ret > 0 ? 0 : 2;
	/* Errors reach the user as the one summary line of cli_report_failure(); the log
	 * itself is shown only with -v. */
	if (log_init(o.verbose ? NULL : "/dev/null", o.verbose ? LOG_DEBUG : LOG_ERR) < 0)
		log_set_level(LOG_ERR);

	const struct kerndat *kd = kerndat_get();
	for (int f = 0; f < KD_NR_FEATURES; f++) {
		if (!check_required(&o, f) || kerndat_has(kd, f))
			continue;
		size_t n = strlen(missing);
		snprintf(missing + n, sizeof(missing) - n, "%s%s", n ? ", " : "",
			 kerndat_feature_name(f));
	}
	ret = o.json ? check_print_json(&o, kd, !missing[0]) : check_print_text(&o, kd);
	if (ret)
		pr_errno(ret, "cannot write the report");
	else if (missing[0])
		pr_err("required kernel features missing: %s", missing);
	if (ret || missing[0])
		cli_report_failure("check");
	log_close();
	return ret || missing[0] ? 1 : 0;
}
