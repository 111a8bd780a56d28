/* libFuzzer target: every /proc parser of src/proc/parse.c and src/proc/mountinfo.c on
 * the input (NUL-terminated copy, exactly sized so ASan sees any over-read), and
 * proc_parse_auxv on the raw bytes.
 * Built and run by tests/fuzz/build.sh. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "proc/mountinfo.h"
#include "proc/parse.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *buf = malloc(size + 1);
	if (!buf)
		return 0;
	memcpy(buf, data, size);
	buf[size] = '\0';

	struct proc_vma *v = NULL;
	size_t n = 0;
	if (proc_parse_smaps(buf, &v, &n) == 0) {
		for (size_t i = 0; i < n; i++)
			if (v[i].start >= v[i].end || (i && v[i].start < v[i - 1].end))
				abort(); /* the parser promised address order */
		proc_vmas_free(v, n);
	} else if (v || n) {
		abort(); /* failure must leave nothing allocated */
	}

	struct proc_stat st;
	if (proc_parse_stat(buf, &st) == 0 && memchr(st.comm, '\0', sizeof(st.comm)) == NULL)
		abort();

	struct proc_status ss;
	int r = proc_parse_status(buf, &ss);
	if (r == 0 && (ss.nspid_len > PROC_MAX_NS_LEVEL || ss.ngroups > PROC_MAX_GROUPS))
		abort();
	if (r != 0 && ss.groups)
		abort();
	proc_status_free(&ss);

	struct proc_fdinfo fi;
	(void)!proc_parse_fdinfo(buf, &fi);

	for (int fdi = 0; fdi < 2; fdi++) {
		struct proc_lock *lk = NULL;
		size_t nl = 0;
		if (proc_parse_locks(buf, fdi, &lk, &nl) == 0) {
			for (size_t i = 0; i < nl; i++)
				if ((lk[i].end >= 0 && lk[i].end < lk[i].start) ||
				    lk[i].start < 0 || lk[i].pid < -1)
					abort(); /* the parser promised these */
		} else if (lk || nl) {
			abort();
		}
		free(lk);
	}

	struct proc_fsnotify_mark *fm = NULL;
	struct proc_fanotify fan;
	size_t nfm = 0;
	if (proc_parse_fdinfo_inotify(buf, &fm, &nfm) == 0)
		for (size_t i = 0; i < nfm; i++)
			if (fm[i].wd < 1 || fm[i].fh_bytes > PROC_FHANDLE_MAX)
				abort();
	free(fm);
	fm = NULL;
	if (proc_parse_fdinfo_fanotify(buf, &fan, &fm, &nfm) == 0)
		for (size_t i = 0; i < nfm; i++)
			if (fm[i].fh_bytes > PROC_FHANDLE_MAX || fm[i].type > PROC_MARK_SB)
				abort();
	free(fm);

	struct proc_posix_timer *t = NULL;
	size_t nt = 0;
	(void)!proc_parse_timers(buf, &t, &nt);
	free(t);

	struct id_range ids[8];
	int nid = proc_parse_idmap(buf, ids, 8);
	for (int i = 0; i < nid; i++)
		if (!ids[i].count || nid > 8)
			abort();
	struct mountinfo *mi = NULL;
	size_t nm = 0;
	if (mountinfo_parse(buf, &mi, &nm) == 0) {
		for (size_t i = 0; i < nm; i++)
			if ((mi[i].root[0] != '/' && strcmp(mi[i].fstype, "nsfs")) ||
			    mi[i].mountpoint[0] != '/')
				abort(); /* the parser promised absolute paths (but the root of
					  * an nsfs bind, "mnt:[N]") */
		mountinfo_free(mi, nm);
	} else if (mi || nm) {
		abort();
	}
	struct proc_cgroup *cg = NULL;
	size_t ncg = 0;
	if (proc_parse_cgroup(buf, &cg, &ncg) == 0) {
		for (size_t i = 0; i < ncg; i++)
			if (cg[i].path[0] != '/' || strlen(cg[i].path) > PROC_MAX_CGROUP_PATH ||
			    !cg[i].controllers[0] != !cg[i].hierarchy || ncg > PROC_MAX_CGROUPS)
				abort(); /* the parser promised these */
		proc_cgroups_free(cg, ncg);
	} else if (cg || ncg) {
		abort();
	}
	free(buf);

	uint64_t auxv[64];
	int w = proc_parse_auxv(data, size, auxv, sizeof(auxv) / sizeof(auxv[0]));
	if (w > 64 || (w > 0 && (w % 2 || auxv[w - 2] != 0)))
		abort();
	return 0;
}
