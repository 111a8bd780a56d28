/* The JSON printer (image/json.h), `stasis show` on an image directory written with the
 * image API, and the kernel feature probes (sys/kerndat.h). JSON validity is checked
 * by python3's json module. */
#include <dirent.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cli/cli.h"
#include "core/log.h"
#include "image/blob.h"
#include "image/img.h"
#include "image/json.h"
#include "sys/kerndat.h"
#include "unit.h"

static bool have_python;
#define STR(x) #x
#define XSTR(x) STR(x)

/* cmd_show() reports through cli_report_failure(), which lives in src/cli/main.c (not in
 * libstasis.a): the test provides it. */
void cli_report_failure(const char *cmd)
{
	fprintf(stderr, "(expected) stasis %s: %s\n", cmd, log_first_error());
}

static bool write_tmp(char *path, const char *data)
{
	int fd = mkstemp(path);
	if (fd < 0)
		return false;
	bool ok = write_all(fd, data, strlen(data)) == 0;
	close(fd);
	return ok;
}

/* Feed @json to python3, which parses it as `d` and runs the assertions in @script.
 * True if python exits 0. */
static bool py_check(const char *json, const char *script)
{
	char jpath[] = "/tmp/stasis-test-show-json-XXXXXX";
	char spath[] = "/tmp/stasis-test-show-py-XXXXXX";
	char *prog = NULL, *cmd = NULL;
	bool ok = false;

	if (asprintf(&prog, "import json, sys\n"
			    "d = json.load(open(sys.argv[1], encoding='utf-8'))\n%s\n",
		     script) < 0)
		return false;
	if (write_tmp(jpath, json) && write_tmp(spath, prog) &&
	    asprintf(&cmd, "python3 %s %s", spath, jpath) >= 0) {
		int st = system(cmd);
		ok = st != -1 && WIFEXITED(st) && WEXITSTATUS(st) == 0;
		free(cmd);
	}
	if (!ok)
		fprintf(stderr, "python check failed on:\n%s\n", json);
	free(prog);
	unlink(jpath);
	unlink(spath);
	return ok;
}

/* The output of `python3 -m json.tool` on @json must be produced without error. */
static bool json_tool_ok(const char *json)
{
	FILE *p = popen("python3 -m json.tool > /dev/null", "w");
	if (!p)
		return false;
	fputs(json, p);
	int st = pclose(p);
	return st != -1 && WIFEXITED(st) && WEXITSTATUS(st) == 0;
}

static char *to_json(const ProtobufCMessage *m, bool pretty)
{
	char *out = NULL;
	size_t len = 0;
	struct json_writer w;
	FILE *f = open_memstream(&out, &len);
	if (!f)
		return NULL;
	json_init(&w, f, pretty);
	json_msg(&w, m);
	int ret = json_finish(&w);
	fclose(f);
	if (ret) {
		free(out);
		return NULL;
	}
	return out;
}

/* ---- messages built in memory ---- */

static uint8_t gpregs[216];
static uint8_t xsave_small[64];
static uint8_t siraw[128];

static void build_core(Core *c, Thread *th, Thread **thp, SigAction *sa, SigAction **sap,
		       Creds *cr, SigInfo *si, SigInfo **sip, Rseq *rs, SigAltStack *alt)
{
	core__init(c);
	creds__init(cr);
	c->pid = 42;
	c->comm = (char *)"a \"quoted\"\tcomm\\";
	c->cwd = (char *)"/tmp/caf\xc3\xa9/\xff\xfe-raw";
	c->root = (char *)"/";
	c->creds = cr;
	c->umask = 022;
	for (size_t i = 0; i < sizeof(gpregs); i++)
		gpregs[i] = (uint8_t)i;
	for (int i = 0; i < 2; i++) {
		thread__init(&th[i]);
		th[i].tid = 42 + i;
		th[i].gpregs.data = gpregs;
		th[i].gpregs.len = sizeof(gpregs);
		th[i].xsave.data = xsave_small;
		th[i].xsave.len = sizeof(xsave_small);
		th[i].blocked = 0xfffffffffffffffeULL;
		thp[i] = &th[i];
	}
	xsave_small[0] = 0xab;
	rseq__init(rs);
	rs->addr = 0x7f0000001000ULL;
	rs->len = 32;
	rs->sig = 0x53053053;
	th[0].rseq = rs;
	sig_alt_stack__init(alt);
	alt->sp = 0x7ffff000;
	alt->size = 8192;
	th[1].altstack = alt;
	th[1].comm = (char *)"worker";
	sig_info__init(si);
	si->raw.data = siraw;
	si->raw.len = sizeof(siraw);
	si->shared = 1;
	sip[0] = si;
	th[0].n_pending = 1;
	th[0].pending = sip;
	c->n_threads = 2;
	c->threads = thp;
	for (int i = 0; i < 2; i++) {
		sig_action__init(&sa[i]);
		sa[i].sig = (uint32_t)(i + 1);
		sa[i].handler = 0x401000 + (uint64_t)i;
		sa[i].restorer = 0x7f1234567890ULL;
		sa[i].flags = 0x04000000;
		sa[i].mask = UINT64_MAX;
		sap[i] = &sa[i];
	}
	c->n_sigactions = 2;
	c->sigactions = sap;
	c->has_ppid = 1;
	c->ppid = -1;
}

static void test_core_json(void)
{
	Core c;
	Thread th[2], *thp[2];
	SigAction sa[2], *sap[2];
	Creds cr;
	SigInfo si, *sip[1];
	Rseq rs;
	SigAltStack alt;

	build_core(&c, th, thp, sa, sap, &cr, &si, sip, &rs, &alt);
	char *j = to_json(&c.base, true);
	CHECK(j != NULL);
	if (!j)
		return;
	CHECK(json_tool_ok(j));
	CHECK(strstr(j, "\"threads\"") != NULL);
	CHECK(strstr(j, "\"exit_signal\"") == NULL); /* optional, unset */
	CHECK(py_check(j, "assert d['pid'] == 42, d\n"
			  "assert d['comm'] == 'a \"quoted\"\\tcomm\\\\', d['comm']\n"
			  "assert d['cwd'].startswith('/tmp/caf\\u00e9/'), d['cwd']\n"
			  "assert len(d['threads']) == 2\n"
			  "t = d['threads'][0]\n"
			  "assert t['tid'] == 42 and t['blocked'] == 18446744073709551614\n"
			  "assert t['gpregs']['len'] == 216 and t['gpregs']['xxh64'].startswith('0x')\n"
			  "assert len(t['gpregs']['xxh64']) == 18\n"
			  "assert t['xsave'] == 'ab' + '00' * 63\n"
			  "assert t['rseq']['addr'] == '0x7f0000001000' and t['rseq']['len'] == 32\n"
			  "assert t['pending'][0]['shared'] is True and t['pending'][0]['raw']['len'] == 128\n"
			  "assert 'altstack' not in t and d['threads'][1]['altstack']['sp'] == '0x7ffff000'\n"
			  "assert d['threads'][1]['comm'] == 'worker' and 'comm' not in t\n"
			  "assert d['sigactions'][1]['handler'] == '0x401001'\n"
			  "assert d['sigactions'][0]['restorer'] == '0x7f1234567890'\n"
			  "assert d['sigactions'][0]['mask'] == 2**64 - 1\n"
			  "assert d['creds']['groups'] == [] and d['creds']['no_new_privs'] is False\n"
			  "assert d['ppid'] == -1 and 'pgid' not in d\n"
			  "assert d['shared_pending'] == [] and d['umask'] == 18\n"));
	free(j);

	/* Compact output is the same document. */
	j = to_json(&c.base, false);
	CHECK(j && !strchr(j, '\n') && json_tool_ok(j));
	free(j);
}

static void build_mm(Mm *mm, Vma *v, Vma **vp, PageRun *pr, PageRun **prp, uint64_t *auxv)
{
	mm__init(mm);
	for (int i = 0; i < 3; i++) {
		vma__init(&v[i]);
		v[i].start = 0x400000 + (uint64_t)i * 0x10000;
		v[i].end = v[i].start + 0x2000;
		v[i].prot = 3;
		v[i].flags = 2;
		vp[i] = &v[i];
	}
	v[0].kind = VMA_KIND__VMA_FILE;
	v[0].path = (char *)"/usr/bin/x y";
	v[0].has_pgoff = 1;
	v[0].pgoff = 0x1000;
	v[1].kind = VMA_KIND__VMA_VDSO;
	v[2].kind = (VmaKind)99; /* unknown value: printed as a number */
	mm->n_vmas = 3;
	mm->vmas = vp;
	for (int i = 0; i < 2; i++) {
		page_run__init(&pr[i]);
		pr[i].vaddr = v[i].start;
		pr[i].nr_pages = 2;
		pr[i].offset = (uint64_t)i * 8192;
		pr[i].xxh64 = 0x1234;
		prp[i] = &pr[i];
	}
	mm->n_pages = 2;
	mm->pages = prp;
	mm->start_code = 0x400000;
	mm->brk = 0x600000;
	auxv[0] = 6;
	auxv[1] = 4096;
	mm->n_auxv = 2;
	mm->auxv = auxv;
	mm->has_pages_size = 1;
	mm->pages_size = 16384;
}

static void test_mm_json(void)
{
	Mm mm;
	Vma v[3], *vp[3];
	PageRun pr[2], *prp[2];
	uint64_t auxv[2];

	build_mm(&mm, v, vp, pr, prp, auxv);
	char *j = to_json(&mm.base, true);
	CHECK(j && json_tool_ok(j));
	if (!j)
		return;
	CHECK(py_check(j, "v = d['vmas']\n"
			  "assert v[0]['kind'] == 'VMA_FILE' and v[1]['kind'] == 'VMA_VDSO'\n"
			  "assert v[2]['kind'] == 99\n"
			  "assert v[0]['start'] == '0x400000' and v[0]['end'] == '0x402000'\n"
			  "assert v[0]['pgoff'] == 4096 and 'pgoff' not in v[1]\n"
			  "assert v[0]['path'] == '/usr/bin/x y' and 'path' not in v[1]\n"
			  "p = d['pages']\n"
			  "assert p[1]['vaddr'] == '0x410000' and p[1]['offset'] == 8192\n"
			  "assert p[0]['nr_pages'] == 2 and p[0]['xxh64'] == 4660\n"
			  "assert d['start_code'] == '0x400000' and d['brk'] == '0x600000'\n"
			  "assert d['arg_start'] == '0x0' and d['env_end'] == '0x0'\n"
			  "assert d['auxv'] == [6, 4096] and d['pages_size'] == 16384\n"
			  "assert 'exe_path' not in d\n"
			  "assert list(d)[:2] == ['vmas', 'pages']\n"));
	free(j);
}

static void build_files(Files *f, FileDesc *fd, FileDesc **fdp, PipeData *pd, Fd *fds,
			Fd **fdsp, uint8_t *pipebytes)
{
	files__init(f);
	file_desc__init(&fd[0]);
	fd[0].id = 1;
	fd[0].kind = FILE_KIND__FILE_REG;
	fd[0].flags = 02;
	fd[0].path = (char *)"/etc/\x01weird\n";
	fd[0].has_pos = 1;
	fd[0].pos = 17;
	file_desc__init(&fd[1]);
	fd[1].id = 2;
	fd[1].kind = FILE_KIND__FILE_PIPE;
	pipe_data__init(pd);
	pd->ino = 99;
	pd->size = 65536;
	pd->has_data = 1;
	pd->data.data = pipebytes;
	pd->data.len = 5;
	fd[1].pipe = pd;
	fdp[0] = &fd[0];
	fdp[1] = &fd[1];
	f->n_files = 2;
	f->files = fdp;
	for (int i = 0; i < 3; i++) {
		fd__init(&fds[i]);
		fds[i].fd = i;
		fds[i].file_id = i == 0 ? 1 : 2;
		fds[i].cloexec = i == 2;
		fdsp[i] = &fds[i];
	}
	f->n_fds = 3;
	f->fds = fdsp;
}

static void test_files_json(void)
{
	Files f;
	FileDesc fd[2], *fdp[2];
	PipeData pd;
	Fd fds[3], *fdsp[3];
	uint8_t pipebytes[5] = { 'h', 'e', 'l', 'l', 'o' };

	build_files(&f, fd, fdp, &pd, fds, fdsp, pipebytes);
	char *j = to_json(&f.base, true);
	CHECK(j && json_tool_ok(j));
	if (!j)
		return;
	CHECK(py_check(j, "f = d['files']\n"
			  "assert f[0]['kind'] == 'FILE_REG' and f[0]['path'] == '/etc/\\x01weird\\n'\n"
			  "assert f[0]['pos'] == 17 and 'pipe' not in f[0]\n"
			  "assert f[1]['pipe']['data'] == '68656c6c6f' and f[1]['pipe']['size'] == 65536\n"
			  "assert 'pos' not in f[1] and 'path' not in f[1]\n"
			  "assert [x['fd'] for x in d['fds']] == [0, 1, 2]\n"
			  "assert d['fds'][2]['cloexec'] is True\n"));
	free(j);
}

static void test_writer_misuse(void)
{
	char *out = NULL;
	size_t len = 0;
	struct json_writer w;
	FILE *f = open_memstream(&out, &len);

	json_init(&w, f, false);
	json_obj_begin(&w);
	json_u64(&w, 1); /* value without a key */
	CHECK_EQ(json_finish(&w), -EINVAL);
	fclose(f);
	free(out);

	CHECK(json_is_addr_field("vaddr"));
	CHECK(json_is_addr_field("start_brk"));
	CHECK(json_is_addr_field("tid_address"));
	CHECK(!json_is_addr_field("nr_pages"));
	CHECK(!json_is_addr_field("offset"));
}

/* ---- stasis show on a directory ---- */

static char tmpdir[64];

/* Run `stasis show ARG` in-process with stdout captured; returns its exit status and the
 * output in *@out. */
static int run_show(const char *arg, char **out)
{
	char path[128];
	snprintf(path, sizeof(path), "%s/show.out", tmpdir);
	fflush(stdout);
	int saved = dup(STDOUT_FILENO);
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (saved < 0 || fd < 0)
		return -1;
	dup2(fd, STDOUT_FILENO);
	close(fd);
	char *argv[] = { (char *)"show", (char *)arg, NULL };
	log_reset_first_error();
	int rc = cmd_show(2, argv);
	fflush(stdout);
	dup2(saved, STDOUT_FILENO);
	close(saved);
	size_t len;
	*out = read_file_at(AT_FDCWD, path, 1 << 24, &len);
	unlink(path);
	return rc;
}

static int write_images(const char *dir)
{
	struct img_dir d;
	Inventory inv = INVENTORY__INIT;
	int32_t pids[2] = { 7, 42 };
	Core c;
	Thread th[2], *thp[2];
	SigAction sa[2], *sap[2];
	Creds cr;
	SigInfo si, *sip[1];
	Rseq rs;
	SigAltStack alt;
	Mm mm;
	Vma v[3], *vp[3];
	PageRun pr[2], *prp[2];
	uint64_t auxv[2];
	Files f;
	FileDesc fdesc[2], *fdp[2];
	PipeData pd;
	Fd fds[3], *fdsp[3];
	uint8_t pipebytes[5] = { 0 };
	struct img_pages pages;
	static uint8_t buf[4 * 4096];
	MntNs mns;
	Mount mnt, *mntp[1];
	TmpfsEntry te[2], *tep[2];
	BlobRef *blob = NULL;

	if (img_dir_begin(&d, dir, false))
		return -1;
	/* a tmpfs whose one file's 5000 bytes are in blobs.img */
	if (blob_put_buf(&d, buf, 5000, "test file", &blob)) {
		img_dir_abort(&d);
		return -1;
	}
	mnt_ns__init(&mns);
	mount__init(&mnt);
	mnt.mountpoint = mnt.root = mnt.content_root = (char *)"/";
	mnt.fstype = (char *)"tmpfs";
	mnt.source = mnt.sb_opts = (char *)"";
	mnt.kind = MOUNT_KIND__MOUNT_FRESH;
	tmpfs_entry__init(&te[0]);
	tmpfs_entry__init(&te[1]);
	te[0].path = (char *)".";
	te[0].mode = 040755;
	te[1].path = (char *)"f";
	te[1].mode = 0100644;
	te[1].blob = blob;
	tep[0] = &te[0];
	tep[1] = &te[1];
	mnt.n_tmpfs = 2;
	mnt.tmpfs = tep;
	mntp[0] = &mnt;
	mns.n_mounts = 1;
	mns.mounts = mntp;
	inv.img_version = IMG_VERSION;
	inv.root_pid = 7;
	inv.n_pids = 2;
	inv.pids = pids;
	inv.kernel = (char *)"6.18";
	build_core(&c, th, thp, sa, sap, &cr, &si, sip, &rs, &alt);
	build_mm(&mm, v, vp, pr, prp, auxv);
	build_files(&f, fdesc, fdp, &pd, fds, fdsp, pipebytes);
	TaskNs tns = TASK_NS__INIT;
	tns.mnt = &mns;
	int ret = img_write_msg(&d, IMG_INVENTORY, 0, &inv.base) ?:
		  img_write_msg(&d, IMG_CORE, 42, &c.base) ?:
		  img_write_msg(&d, IMG_NS, 42, &tns.base) ?:
		  img_write_msg(&d, IMG_CORE, 7, &c.base) ?:
		  img_write_msg(&d, IMG_FILES, 42, &f.base) ?:
		  img_write_msg(&d, IMG_MM, 42, &mm.base) ?:
		  img_pages_create(&d, 42, &pages);
	if (!ret) {
		ret = pwrite_all(pages.fd, buf, sizeof(buf), IMG_PAGES_HDR_SIZE);
		pages.len = sizeof(buf);
		ret = ret ?: img_pages_finish(&d, &pages);
	}
	ret = ret ?: img_dir_commit(&d);
	if (ret)
		img_dir_abort(&d);
	else
		img_dir_close(&d);
	blob_ref__free_unpacked(blob, NULL);
	return ret;
}

static void test_show_dir(void)
{
	char dir[128], file[160];
	char *out = NULL;

	snprintf(dir, sizeof(dir), "%s/img", tmpdir);
	CHECK_EQ(write_images(dir), 0);

	CHECK_EQ(run_show(dir, &out), 0);
	CHECK(out && py_check(out, "i = d['images']\n"
				   "assert list(i) == ['inventory.img', 'core-7.img', 'core-42.img',"
				   " 'mm-42.img', 'files-42.img', 'pages-42.img', 'blobs.img', 'ns-42.img'], list(i)\n"
				   "assert i['inventory.img']['pids'] == [7, 42]\n"
				   "p = i['pages-42.img']\n"
				   "assert p['kind'] == 'pages' and p['payload_len'] == 16384\n"
				   "assert p['runs'] == [{'vaddr': '0x400000', 'nr_pages': 2, 'offset': 0},"
				   " {'vaddr': '0x410000', 'nr_pages': 2, 'offset': 8192}], p\n"
				   "assert i['core-42.img']['threads'][0]['tid'] == 42\n"
				   "b = i['blobs.img']\n"
				   "assert b == {'kind': 'blobs', 'version': " XSTR(IMG_VERSION) ","
				   " 'payload_len': 5000,"
				   " 'chunk_size': 1048576, 'blobs': 1, 'logical_bytes': 5000}, b\n"
				   "f = i['ns-42.img']['mnt']['mounts'][0]['tmpfs'][1]\n"
				   "assert f['blob'] == {'offset': 0, 'size': 5000, 'extents': [[0, 5000]],"
				   " 'stored': 5000, 'chunks': 1}, f\n"
				   "assert 'data' not in f\n"));
	free(out);

	/* One file: that image's object. */
	snprintf(file, sizeof(file), "%s/mm-42.img", dir);
	CHECK_EQ(run_show(file, &out), 0);
	CHECK(out && py_check(out, "assert d['vmas'][0]['kind'] == 'VMA_FILE'\n"));
	free(out);

	/* blobs.img alone: its summary; cut short: the error names it */
	snprintf(file, sizeof(file), "%s/blobs.img", dir);
	CHECK_EQ(run_show(file, &out), 0);
	CHECK(out && py_check(out, "assert d['kind'] == 'blobs' and d['blobs'] == 1\n"));
	free(out);
	CHECK_EQ(truncate(file, 4096 + 100), 0);
	CHECK_EQ(run_show(file, &out), 1);
	CHECK(strstr(log_first_error(), "blobs.img") != NULL);
	CHECK(strstr(log_first_error(), "truncated") != NULL);
	free(out);

	/* A corrupted payload: the checksum error, nothing on stdout, exit 1. */
	snprintf(file, sizeof(file), "%s/core-42.img", dir);
	int fd = open(file, O_RDWR | O_CLOEXEC);
	CHECK(fd >= 0);
	char b;
	CHECK(pread(fd, &b, 1, 60) == 1);
	b ^= 0x5a;
	CHECK(pwrite(fd, &b, 1, 60) == 1);
	close(fd);
	CHECK_EQ(run_show(file, &out), 1);
	CHECK(out && out[0] == '\0');
	CHECK(strstr(log_first_error(), "checksum") != NULL);
	CHECK(strstr(log_first_error(), "core-42.img") != NULL);
	free(out);
	CHECK_EQ(run_show(dir, &out), 1);
	CHECK(out && out[0] == '\0');
	free(out);

	/* An unknown file is named in the error. */
	snprintf(file, sizeof(file), "%s/notes.txt", dir);
	CHECK_EQ(write_file(file, "x", 1), 0);
	CHECK_EQ(run_show(file, &out), 1);
	CHECK(strstr(log_first_error(), "notes.txt") != NULL);
	free(out);
	CHECK_EQ(run_show(dir, &out), 1);
	CHECK(strstr(log_first_error(), "notes.txt") != NULL);
	free(out);

	char cmd[256];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	CHECK_EQ(system(cmd), 0);
}

/* ---- kernel feature probes ---- */

static int count_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	int n = 0;
	if (!d)
		return -1;
	while (readdir(d))
		n++;
	closedir(d);
	return n;
}

static void test_kerndat(void)
{
	int before = count_fds();
	const struct kerndat *a = kerndat_get();
	int after = count_fds();
	struct kerndat copy = *a;
	const struct kerndat *b = kerndat_get();

	CHECK(a != NULL);
	CHECK(a == b);
	CHECK(memcmp(&copy, b, sizeof(copy)) == 0);
	CHECK_EQ(before, after);      /* no fd left behind */
	CHECK(waitpid(-1, NULL, WNOHANG) == -1 && errno == ECHILD); /* no child */
	CHECK(a->release[0] != '\0');

	bool privileged = a->cap_checkpoint_restore || a->cap_sys_admin;
	for (int f = 0; f < KD_NR_FEATURES; f++) {
		CHECK(kerndat_feature_name(f) != NULL);
		/* what lacking it costs: said for every feature, and "get it" unless free */
		const char *cost = kerndat_feature_cost(f);
		CHECK(cost != NULL && strlen(cost) > 10);
		CHECK(cost && (strstr(cost, "get it: ") || strstr(cost, "nothing") ||
			       strstr(cost, "informational")));
		if (!kerndat_is_required(f) || kerndat_has(a, f))
			continue;
		if (f == KD_EXACT_PIDS && !privileged && a->clone3_set_tid_eperm)
			continue; /* the kernel has it; this user may not use it */
		UNIT_FAIL("required feature %s missing", kerndat_feature_name(f));
	}
	CHECK(kerndat_is_required(KD_EXACT_PIDS));
	CHECK(kerndat_is_required(KD_PROCESS_VM_READV));
	CHECK(kerndat_is_required(KD_PTRACE_SIGMASK));
	CHECK(kerndat_is_required(KD_PRCTL_MM_MAP));
	CHECK(kerndat_is_required(KD_PIDFD_OPEN));
	CHECK(!kerndat_is_required(KD_SOFT_DIRTY));
	CHECK(kerndat_feature_name(KD_NR_FEATURES) == NULL);
	CHECK(kerndat_feature_cost(KD_NR_FEATURES) == NULL);
	for (int f = 0; f < KD_NR_FEATURES; f++) /* the lazy, per-feature answer is the same */
		CHECK(kdat_has(f) == kerndat_has(a, f));
	CHECK(!kdat_has(KD_NR_FEATURES));
	if (a->vdso)
		CHECK(a->vdso_size > 0 && a->vdso_size % 4096 == 0);
	if (a->xsave)
		CHECK(a->xsave_size >= 576 && (a->xfeatures & 3) == 3);
	char note[256];
	CHECK(strlen(kerndat_feature_note(a, KD_VDSO, note, sizeof(note))) > 0);
}

int main(void)
{
	/* First: the probes must leave no child and no fd behind, checked before the
	 * other tests start helpers. */
	RUN(test_kerndat);

	have_python = system("python3 -c 'import json' 2>/dev/null") == 0;
	if (!have_python)
		UNIT_SKIP("python3 is needed to validate the JSON output");
	snprintf(tmpdir, sizeof(tmpdir), "/tmp/stasis-test-show.XXXXXX");
	if (!mkdtemp(tmpdir)) {
		perror("mkdtemp");
		return 1;
	}
	RUN(test_writer_misuse);
	RUN(test_core_json);
	RUN(test_mm_json);
	RUN(test_files_json);
	RUN(test_show_dir);
	rmdir(tmpdir);
	return unit_done();
}
