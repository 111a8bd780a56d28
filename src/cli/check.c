/* `stasis check [--json] [-v]`: print every kernel feature stasis probes (sys/kerndat.h),
 * whether it is present, whether basic dump/restore requires it, and a note. Exits 1 if a
 * required feature is missing. */
#include <fcntl.h>
#include <getopt.h>
#include <unistd.h>
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"
#include "core/log.h"
#include "core/util.h"
#include "helper/policy.h"
#include "image/json.h"
#include "sys/kerndat.h"

struct check_opts {
	bool json;
	bool verbose;
	bool unprivileged;
	/* Room for --unprivileged: it changes which features are required (see
	 * check_required()), not how they are probed or printed. */
};

static void check_usage(FILE *f)
{
	fprintf(f, "usage: stasis check [--json] [--unprivileged] [-v]\n"
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
		if (!has)
			printf("%-32s without it: %s\n", "", kerndat_feature_cost(f));
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
		json_key(&w, "if_missing");
		json_str(&w, kerndat_feature_cost(f));
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
		{ "unprivileged", no_argument, NULL, 'u' },
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
		case 'u': o->unprivileged = true; break;
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

static long read_long(const char *path, long dflt)
{
	_cleanup_free_ char *buf = read_file_at(AT_FDCWD, path, 64, NULL);
	long long v;
	if (!buf)
		return dflt;
	buf[strcspn(buf, "\n")] = '\0';
	return parse_int(buf, -1, 1LL << 40, &v) ? dflt : (long)v;
}

static bool has_cap(int cap)
{
	_cleanup_free_ char *st = read_file_at(AT_FDCWD, "/proc/self/status", 1 << 16, NULL);
	const char *p = st ? strstr(st, "\nCapEff:") : NULL;
	unsigned long long eff = 0;
	return p && sscanf(p + 8, "%llx", &eff) == 1 && (eff >> cap) & 1;
}

/* Whether /etc/subuid and /etc/subgid give the user ranges: a root `stasis helper` then
 * maps them into its user namespaces (more than its own id). */
static void check_subids(void)
{
	struct subid_range u[4], g[4];
	int nu = subid_read("/etc/subuid", getuid(), u, ARRAY_SIZE(u));
	int ng = subid_read("/etc/subgid", getuid(), g, ARRAY_SIZE(g));
	bool ok = (nu > 0 || nu == -E2BIG) && (ng > 0 || ng == -E2BIG); /* E2BIG: > 4 ranges */

	printf("subordinate ids (helper)     %-3s  ", ok || !getuid() ? "yes" : "no");
	if (!getuid())
		printf("root maps any ids itself\n");
	else if (ok && nu > 0 && ng > 0)
		printf("/etc/subuid %u+%u, /etc/subgid %u+%u%s: `stasis helper` maps them "
		       "(restore --helper)\n",
		       u[0].start, u[0].count, g[0].start, g[0].count,
		       nu > 1 || ng > 1 ? " and more" : "");
	else if (ok)
		printf("many ranges in /etc/subuid and /etc/subgid: `stasis helper` maps them "
		       "(restore --helper)\n");
	else if (nu < 0 || ng < 0)
		printf("cannot read %s: %s\n", nu < 0 ? "/etc/subuid" : "/etc/subgid",
		       strerror(nu < 0 ? -nu : -ng));
	else
		printf("no ranges for uid %u in %s: a user namespace maps only the user's own id\n",
		       (unsigned)getuid(), nu == 0 ? "/etc/subuid" : "/etc/subgid");
}

/* What the current user can checkpoint and restore, and what is missing for the rest.
 * Exit 0 when it can at least checkpoint and restore its own process trees. */
static int check_unprivileged(const struct kerndat *kd)
{
	const int CAP_SYS_ADMIN_ = 21, CAP_SYS_PTRACE_ = 19, CAP_CHECKPOINT_RESTORE_ = 40;
	bool root = geteuid() == 0;
	bool cr = has_cap(CAP_CHECKPOINT_RESTORE_) || has_cap(CAP_SYS_ADMIN_);
	bool ptrace_any = has_cap(CAP_SYS_PTRACE_);
	long yama = read_long("/proc/sys/kernel/yama/ptrace_scope", 0);
	long userns = read_long("/proc/sys/user/max_user_namespaces", 0);
	bool own_dump = yama == 0 || (yama == 1 && ptrace_any);
	bool set_pid = kd->clone3_set_tid;

	printf("user: uid %d euid %d%s\n", (int)getuid(), (int)geteuid(), root ? " (root)" : "");
	printf("checkpoint own processes     %s  %s\n", own_dump ? "yes" : "no",
	       own_dump ? "ptrace of own processes allowed"
			: yama >= 2 ? "kernel.yama.ptrace_scope >= 2 forbids it"
				    : "kernel.yama.ptrace_scope = 1: only descendants without "
				      "CAP_SYS_PTRACE");
	printf("checkpoint other users'      %s  %s\n", ptrace_any ? "yes" : "no",
	       ptrace_any ? "CAP_SYS_PTRACE" : "needs CAP_SYS_PTRACE");
	printf("restore with the same PIDs   %s  %s\n", set_pid ? "yes" : "no",
	       set_pid ? "clone3 set_tid allowed"
		       : "needs CAP_CHECKPOINT_RESTORE (e.g. setcap cap_checkpoint_restore+ep on "
			 "stasis) or CAP_SYS_ADMIN");
	printf("restore the exe link         %s  %s\n", cr ? "yes" : "no",
	       cr ? "PR_SET_MM_MAP exe_fd allowed" : "needs CAP_CHECKPOINT_RESTORE");
	printf("copy-on-write pages once     %s  %s\n", has_cap(CAP_SYS_ADMIN_) ? "yes" : "no",
	       has_cap(CAP_SYS_ADMIN_) ? "page frame numbers visible in pagemap"
				       : "needs CAP_SYS_ADMIN (pages are stored per process)");
	printf("namespaces of this user ns   %s  %s\n", root ? "yes" : "no",
	       root ? "CAP_SYS_ADMIN"
		    : "needs CAP_SYS_ADMIN (namespaces owned by a user namespace of the tree "
		      "are fine: the tree's own user namespace gives the rights)");
	printf("user namespaces available    %s  user.max_user_namespaces = %ld\n",
	       userns > 0 ? "yes" : "no", userns);
	check_subids();
	return own_dump && set_pid && cr ? 0 : 1;
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
	if (o.unprivileged) {
		ret = check_unprivileged(kd);
		log_close();
		return ret;
	}
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
