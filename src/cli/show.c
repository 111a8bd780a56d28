/* `stasis show DIR|FILE`: print images as JSON (rules in image/json.h).
 *
 * A directory prints as {"dir": DIR, "images": {"inventory.img": {...}, ...}} with the
 * images ordered by kind (the registry order: inventory, core, mm, files, pages,
 * blobs) and then
 * by pid; a single file prints as that image's object. A metadata image's object is its
 * message; a pages file's object is its header plus, when mm-PID.img is beside it, the
 * page runs the mm image lists (never the page contents); blobs.img's object is a summary
 * (payload length, chunk size, number of blobs, their logical bytes), each blob being
 * shown where a record names it (a BlobRef). The whole output is built in
 * memory first: on any error nothing is printed on stdout, one line on stderr.
 * --pid and --kind keep some images of a directory (the namespaces then are not shown);
 * --pages hexdumps a range of one task's memory as dumped, following page runs into the
 * pages file of the process they are shared with and up the parent images. */
#include <dirent.h>
#include <fcntl.h>
#include <getopt.h>
#include <libgen.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "cli/cli.h"
#include "core/log.h"
#include "core/util.h"
#include "image/blob.h"
#include "image/img.h"
#include "image/json.h"
#include "mem/mem.h"
#include "mem/pagexfer.h"

struct show_entry {
	char *name;
	const struct img_kind_desc *kind;
	long long pid; /* -1 for kinds without a pid */
};

/* What `show` prints of a directory: one task's images, some kinds. */
struct show_filter {
	long long pid;  /* -1: every task */
	unsigned kinds; /* bit (1 << enum img_kind); 0: every kind */
};

#define SHOW_PAGES_DEFAULT 256u
#define SHOW_PAGES_MAX (1u << 20)

static void show_usage(FILE *f)
{
	fprintf(f, "usage: stasis show [-v] [--pid PID] [--kind KIND]... DIR|FILE\n"
		   "       stasis show --pid PID --pages ADDR[+LEN] DIR\n"
		   "  Print an image directory, or one image file, as JSON.\n"
		   "  --pid PID      only the images of task PID\n"
		   "  --kind KIND    only images of this kind (repeatable): inventory, core, mm,\n"
		   "                 files, pages, blobs, ns, stats, seccomp, ...\n"
		   "  --pages ADDR[+LEN]  hexdump LEN bytes (default %u, at most %u) of task PID's\n"
		   "                 memory as dumped, from address ADDR (hex), through the parent\n"
		   "                 images of an incremental dump\n"
		   "  -v             log on stderr while reading\n",
		SHOW_PAGES_DEFAULT, SHOW_PAGES_MAX);
}

/* The pid in a file name of kind @k ("core-42.img" -> 42), -1 if the kind has none. */
static long long name_pid(const struct img_kind_desc *k, const char *name)
{
	const char *pct = strstr(k->pattern, "%d");
	long long pid = 0;

	if (!pct)
		return -1;
	for (const char *p = name + (pct - k->pattern); *p >= '0' && *p <= '9'; p++) {
		pid = pid * 10 + (*p - '0');
		if (pid > INT32_MAX)
			return INT32_MAX;
	}
	return pid;
}

static int show_pages(struct json_writer *w, int dfd, const char *name, long long pid,
		      const char *what)
{
	struct img_hdr h;
	struct stat st;
	int ret;

	_cleanup_close_ int fd = openat(dfd, name, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return pr_perror("%s: cannot open", what);
	if (fstat(fd, &st) < 0)
		return pr_perror("%s: cannot stat", what);
	ssize_t n = pread(fd, &h, sizeof(h), 0);
	if (n < 0)
		return pr_perror("%s: cannot read the header", what);
	if (n != (ssize_t)sizeof(h)) {
		pr_err("%s: truncated image (%zd bytes, header needs %zu)", what, n, sizeof(h));
		return -EBADMSG;
	}
	ret = img_check_hdr(&h, IMG_PAGES, (uint64_t)st.st_size, what);
	if (ret)
		return ret;

	json_obj_begin(w);
	json_key(w, "kind");
	json_str(w, "pages");
	json_key(w, "version");
	json_u64(w, h.version);
	json_key(w, "flags");
	json_u64(w, h.flags);
	json_key(w, "payload_len");
	json_u64(w, h.payload_len);
	struct img_pages_z z;
	if ((h.flags & IMG_F_PAGES_ZSTD) &&
	    pread(fd, &z, sizeof(z), sizeof(h)) == (ssize_t)sizeof(z)) {
		json_key(w, "stream_len"); /* uncompressed; the header checksum is restore's */
		json_u64(w, z.stream_len);
		json_key(w, "frames");
		json_u64(w, z.nr_frames);
	}

	char mmname[64];
	snprintf(mmname, sizeof(mmname), "mm-%d.img", (int)pid); /* the IMG_MM pattern */
	const struct img_kind_desc *mk = img_kind_by_filename(mmname);
	if (pid >= 0 && mk && mk->kind == IMG_MM && faccessat(dfd, mmname, F_OK, 0) == 0) {
		Mm *mm = img_read_msg(dfd, IMG_MM, (int)pid);
		if (!mm)
			return -errno;
		json_key(w, "runs");
		json_arr_begin(w);
		for (size_t i = 0; i < mm->n_pages; i++) {
			const PageRun *r = mm->pages[i];
			json_obj_begin(w);
			json_key(w, "vaddr");
			json_hex(w, r->vaddr);
			json_key(w, "nr_pages");
			json_u64(w, r->nr_pages);
			json_key(w, "offset");
			json_u64(w, r->offset);
			json_obj_end(w);
		}
		json_arr_end(w);
		mm__free_unpacked(mm, NULL);
	}
	json_obj_end(w);
	return 0;
}

/* The blob file: a summary from its checked header (the blobs are listed where they are
 * used, as BlobRefs in the records that name them). */
static int show_blobs(struct json_writer *w, int dfd, const char *name, const char *what)
{
	struct blob_reader r;
	int fd = openat(dfd, name, O_RDONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
	if (fd < 0)
		return pr_perror("%s: cannot open", what);
	int ret = blob_open_fd(fd, what, &r);
	if (ret)
		return ret;
	json_obj_begin(w);
	json_key(w, "kind");
	json_str(w, "blobs");
	json_key(w, "version");
	json_u64(w, IMG_VERSION);
	json_key(w, "payload_len");
	json_u64(w, r.len);
	json_key(w, "chunk_size");
	json_u64(w, BLOB_CHUNK);
	json_key(w, "blobs");
	json_u64(w, r.n_blobs);
	json_key(w, "logical_bytes");
	json_u64(w, r.logical);
	json_obj_end(w);
	blob_close(&r);
	return 0;
}

/* Print image @name (in @dfd) of kind @k; @what names it in errors. */
static int show_image(struct json_writer *w, int dfd, const char *name,
		      const struct img_kind_desc *k, long long pid, const char *what)
{
	size_t len;

	if (k->kind == IMG_BLOBS)
		return show_blobs(w, dfd, name, what);
	if (k->kind == IMG_PAGES || !k->desc)
		return show_pages(w, dfd, name, pid, what);

	_cleanup_free_ char *buf =
		read_file_at(dfd, name, IMG_MAX_META + sizeof(struct img_hdr), &len);
	if (!buf) {
		int e = errno;
		if (e == EFBIG)
			pr_err("%s: larger than any valid %s image", what, k->name);
		else
			pr_err("%s: cannot read: %s", what, strerror(e));
		return -e;
	}
	ProtobufCMessage *msg = img_decode(buf, len, k->kind, what);
	if (!msg)
		return -errno;
	json_msg(w, msg);
	protobuf_c_message_free_unpacked(msg, NULL);
	return 0;
}

static int cmp_entry(const void *a, const void *b)
{
	const struct show_entry *x = a, *y = b;

	if (x->kind->kind != y->kind->kind)
		return x->kind->kind < y->kind->kind ? -1 : 1;
	if (x->pid != y->pid)
		return x->pid < y->pid ? -1 : 1;
	return strcmp(x->name, y->name);
}

static void free_entries(struct show_entry *e, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(e[i].name);
	free(e);
}

/* Collect the image files of directory @dfd, sorted; every entry must be an image. */
static int list_images(int dfd, const char *path, struct show_entry **out, size_t *nout)
{
	struct show_entry *e = NULL;
	size_t n = 0, cap = 0;
	struct dirent *de;
	int ret = 0;

	int dup_fd = fcntl(dfd, F_DUPFD_CLOEXEC, 0);
	if (dup_fd < 0)
		return pr_perror("%s: cannot read the directory", path);
	DIR *dir = fdopendir(dup_fd);
	if (!dir) {
		ret = pr_perror("%s: cannot read the directory", path);
		close(dup_fd);
		return ret;
	}
	errno = 0;
	while ((de = readdir(dir))) {
		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		const struct img_kind_desc *k = img_kind_by_filename(de->d_name);
		if (!k) {
			pr_err("%s/%s: not a stasis image (unknown file name)", path, de->d_name);
			ret = -EINVAL;
			goto out;
		}
		if (n == cap) {
			size_t ncap = cap ? cap * 2 : 16;
			struct show_entry *ne = realloc(e, ncap * sizeof(*e));
			if (!ne) {
				ret = pr_errno(-ENOMEM, "%s: listing", path);
				goto out;
			}
			e = ne;
			cap = ncap;
		}
		e[n].name = strdup(de->d_name);
		if (!e[n].name) {
			ret = pr_errno(-ENOMEM, "%s: listing", path);
			goto out;
		}
		e[n].kind = k;
		e[n].pid = name_pid(k, de->d_name);
		n++;
		errno = 0;
	}
	if (errno) {
		ret = pr_perror("%s: cannot read the directory", path);
		goto out;
	}
	if (n)
		qsort(e, n, sizeof(*e), cmp_entry);
out:
	closedir(dir);
	if (ret) {
		free_entries(e, n);
		return ret;
	}
	*out = e;
	*nout = n;
	return 0;
}

/* The root of a cgroup namespace in each hierarchy (as the dumper saw it). */
static void show_cgroup_roots(struct json_writer *w, const CgroupNs *ns)
{
	json_key(w, "roots");
	json_arr_begin(w);
	for (size_t r = 0; r < ns->n_roots; r++) {
		json_obj_begin(w);
		json_key(w, "hierarchy");
		json_u64(w, ns->roots[r]->hierarchy);
		json_key(w, "controllers");
		json_str(w, ns->roots[r]->controllers);
		json_key(w, "root");
		json_str(w, ns->roots[r]->root);
		json_obj_end(w);
	}
	json_arr_end(w);
}

/* Every namespace of the tree and how they nest: per kind, each namespace with the
 * tasks in it and the namespace of the parent of the task that entered it ("outside":
 * the root's namespaces, not created by the tree) and, but for user namespaces (whose
 * entered_from is their parent), the user namespace that owns it; a cgroup namespace
 * created by the tree also lists its root in every hierarchy. */
static int show_namespaces(struct json_writer *w, int dfd)
{
	static const struct {
		const char *name;
		size_t off;
	} kinds[] = {
		{ "pid", offsetof(NsIds, pid) },   { "uts", offsetof(NsIds, uts) },
		{ "ipc", offsetof(NsIds, ipc) },   { "net", offsetof(NsIds, net) },
		{ "mnt", offsetof(NsIds, mnt) },   { "user", offsetof(NsIds, user) },
		{ "cgroup", offsetof(NsIds, cgroup) }, { "time", offsetof(NsIds, time) },
	};
	Inventory *inv = img_read_msg(dfd, IMG_INVENTORY, 0);
	if (!inv)
		return 0; /* no inventory: nothing to summarize */
	size_t n = inv->n_tasks;
	_cleanup_free_ NsIds *ids = calloc(n ? n : 1, sizeof(*ids));
	_cleanup_free_ bool *have = calloc(n ? n : 1, sizeof(bool));
	_cleanup_free_ CgroupNs **cgns = calloc(n ? n : 1, sizeof(*cgns));
	int ret = ids && have && cgns ? 0 : -ENOMEM;
	for (size_t i = 0; i < n && !ret; i++) {
		if (inv->tasks[i]->zombie)
			continue;
		Core *core = img_read_msg(dfd, IMG_CORE, inv->tasks[i]->pid);
		if (!core) {
			ret = -errno;
			break;
		}
		if (core->ns) {
			ids[i] = *core->ns;
			have[i] = true;
		}
		protobuf_c_message_free_unpacked(&core->base, NULL);
		/* the roots of a cgroup namespace the task created */
		char name[64];
		img_name(IMG_NS, inv->tasks[i]->pid, name, sizeof(name));
		if (faccessat(dfd, name, F_OK, AT_SYMLINK_NOFOLLOW) < 0)
			continue;
		TaskNs *tns = img_read_msg(dfd, IMG_NS, inv->tasks[i]->pid);
		if (!tns) {
			ret = -errno;
			break;
		}
		cgns[i] = steal_ptr(&tns->cgroupns);
		protobuf_c_message_free_unpacked(&tns->base, NULL);
	}
	if (!ret) {
		json_key(w, "namespaces");
		json_obj_begin(w);
		for (size_t k = 0; k < ARRAY_SIZE(kinds); k++) {
			json_key(w, kinds[k].name);
			json_arr_begin(w);
			for (size_t i = 0; i < n; i++) {
				if (!have[i])
					continue;
				uint64_t id = *(uint64_t *)((char *)&ids[i] + kinds[k].off);
				bool first = true;
				for (size_t j = 0; j < i && first; j++)
					first = !(have[j] &&
						  *(uint64_t *)((char *)&ids[j] + kinds[k].off) == id);
				if (!first)
					continue;
				/* the namespace of the parent of the first task in it */
				ssize_t p = -1;
				for (size_t j = 0; j < n; j++)
					if (inv->tasks[j]->pid == inv->tasks[i]->ppid)
						p = (ssize_t)j;
				json_obj_begin(w);
				json_key(w, "id");
				json_u64(w, id);
				json_key(w, "entered_from");
				if (p >= 0 && have[p])
					json_u64(w, *(uint64_t *)((char *)&ids[p] + kinds[k].off));
				else
					json_str(w, "outside");
				/* the user namespace owning it: the one its first task was in when
				 * it entered it (a clone with CLONE_NEWUSER enters that first) */
				if (strcmp(kinds[k].name, "user")) {
					json_key(w, "owner");
					if (p >= 0 && have[p])
						json_u64(w, ids[i].user);
					else
						json_str(w, "outside");
				}
				if (!strcmp(kinds[k].name, "cgroup") && cgns[i])
					show_cgroup_roots(w, cgns[i]);
				json_key(w, "pids");
				json_arr_begin(w);
				for (size_t j = 0; j < n; j++)
					if (have[j] && *(uint64_t *)((char *)&ids[j] + kinds[k].off) == id)
						json_i64(w, inv->tasks[j]->pid);
				json_arr_end(w);
				json_obj_end(w);
			}
			json_arr_end(w);
		}
		json_obj_end(w);
	}
	for (size_t i = 0; cgns && i < n; i++)
		if (cgns[i])
			protobuf_c_message_free_unpacked(&cgns[i]->base, NULL);
	protobuf_c_message_free_unpacked(&inv->base, NULL);
	return ret;
}

static bool show_wanted(const struct show_filter *f, const struct show_entry *e)
{
	if (f->kinds && !(f->kinds & (1u << e->kind->kind)))
		return false;
	return f->pid < 0 || e->pid == f->pid;
}

static int show_dir(struct json_writer *w, const char *path, const struct show_filter *f)
{
	struct img_dir d;
	struct show_entry *e = NULL;
	size_t n = 0;
	int ret = img_dir_open(&d, path);

	if (ret)
		return ret;
	ret = list_images(d.dfd, path, &e, &n);
	if (ret)
		goto out;
	json_obj_begin(w);
	json_key(w, "dir");
	json_str(w, path);
	json_key(w, "images");
	json_obj_begin(w);
	for (size_t i = 0; i < n && !ret; i++) {
		if (!show_wanted(f, &e[i]))
			continue;
		_cleanup_free_ char *what = NULL;
		if (asprintf(&what, "%s/%s", path, e[i].name) < 0) {
			what = NULL;
			ret = pr_errno(-ENOMEM, "show");
			break;
		}
		json_key(w, e[i].name);
		ret = show_image(w, d.dfd, e[i].name, e[i].kind, e[i].pid, what);
	}
	json_obj_end(w);
	if (!ret && f->pid < 0 && !f->kinds)
		ret = show_namespaces(w, d.dfd);
	json_obj_end(w);
out:
	free_entries(e, n);
	img_dir_close(&d);
	return ret;
}

static int show_file(struct json_writer *w, const char *path)
{
	_cleanup_free_ char *d1 = strdup(path);
	_cleanup_free_ char *d2 = strdup(path);
	if (!d1 || !d2)
		return pr_errno(-ENOMEM, "show");
	const char *base = basename(d1);
	const char *dir = dirname(d2);

	const struct img_kind_desc *k = img_kind_by_filename(base);
	if (!k) {
		pr_err("%s: not a stasis image (unknown file name; expected e.g. inventory.img, "
		       "core-PID.img, mm-PID.img, files-PID.img, pages-PID.img, blobs.img)",
		       path);
		return -EINVAL;
	}
	_cleanup_close_ int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0)
		return pr_perror("%s: cannot open directory", dir);
	return show_image(w, dfd, base, k, name_pid(k, base), path);
}

/* ---- --pages: a task's memory as dumped ---- */

/* Read the page at @va of run @r into @buf through task @pid's page source (*@src opened
 * on first use): the pages file of the image @r's data is in, of its pid or of the
 * process it shares with, compressed or not. */
static int read_page(int dfd, long long pid, struct page_source **src, const PageRun *r,
		     uint64_t va, uint8_t *buf)
{
	if (!*src) {
		int ret = pagefile_source_open(dfd, (int)pid, src);
		if (ret)
			return ret;
		(*src)->no_populate = true;
	}
	return page_source_read(*src, r, va - r->vaddr, buf, PAGE_SIZE);
}

/* Parse "ADDR[+LEN]" (hex address, decimal or 0x length). */
static int parse_range(const char *s, uint64_t *addr, uint64_t *len)
{
	char *end;
	errno = 0;
	unsigned long long a = strtoull(s, &end, 16);
	if (errno || end == s || (*end && *end != '+'))
		return -EINVAL;
	*addr = a;
	*len = SHOW_PAGES_DEFAULT;
	if (*end == '+') {
		const char *l = end + 1;
		unsigned long long n = strtoull(l, &end, 0);
		if (errno || end == l || *end || !n || n > SHOW_PAGES_MAX)
			return -EINVAL;
		*len = n;
	}
	if (*addr > UINT64_MAX - *len)
		return -EINVAL;
	return 0;
}

/* Hexdump, 16 bytes a line, of [@addr, @addr + @len) of task @pid's dumped memory; a page
 * no run holds (never touched, or not stored: zero, or a file's) says so once. */
static int show_memory(const char *path, long long pid, uint64_t addr, uint64_t len)
{
	struct img_dir d;
	int ret = img_dir_open(&d, path);
	if (ret)
		return ret;
	_cleanup_free_ uint8_t *page = malloc(PAGE_SIZE);
	Mm *mm = page ? img_read_msg(d.dfd, IMG_MM, (int)pid) : NULL;
	if (!mm) {
		ret = page ? -errno : pr_errno(-ENOMEM, "show");
		img_dir_close(&d);
		return ret;
	}
	for (size_t i = 1; i < mm->n_pages; i++)
		if (mm->pages[i]->vaddr <= mm->pages[i - 1]->vaddr) {
			pr_err("mm-%lld.img: page runs out of order", pid);
			ret = -EINVAL;
			goto out;
		}
	struct page_source *src = NULL;
	uint64_t cur_page = UINT64_MAX;
	bool have = false;
	size_t n;
	for (uint64_t a = addr; a < addr + len; a += n) {
		uint64_t pg = a & ~(uint64_t)(PAGE_SIZE - 1);
		/* a line ends at 16 bytes, the range's end or the page's */
		n = (size_t)MIN(MIN((uint64_t)16, addr + len - a), pg + PAGE_SIZE - a);
		if (pg != cur_page) {
			cur_page = pg;
			const PageRun *r = mem_run_at(mm, pg, NULL, NULL);
			have = r != NULL;
			if (r && (ret = read_page(d.dfd, pid, &src, r, pg, page)))
				goto out;
			if (!r)
				printf("%016llx: page not stored (untouched, zero, or the file's)\n",
				       (unsigned long long)pg);
		}
		if (!have)
			continue;
		const uint8_t *b = page + (a - pg);
		printf("%016llx:", (unsigned long long)a);
		for (size_t k = 0; k < 16; k++) {
			if (k < n)
				printf("%s%02x", k % 2 ? "" : " ", b[k]);
			else
				printf("%s  ", k % 2 ? "" : " ");
		}
		printf("  ");
		for (size_t k = 0; k < n; k++)
			putchar(b[k] >= 0x20 && b[k] < 0x7f ? b[k] : '.');
		putchar('\n');
	}
	if (fflush(stdout))
		ret = pr_perror("show: writing to stdout");
out:
	page_source_close(src);
	mm__free_unpacked(mm, NULL);
	img_dir_close(&d);
	return ret;
}

static int show_run(const char *path, const struct show_filter *f)
{
	struct stat st;
	struct json_writer w;
	char *out = NULL;
	size_t outlen = 0;
	int ret;

	if (stat(path, &st) < 0)
		return pr_perror("%s", path);
	FILE *mf = open_memstream(&out, &outlen);
	if (!mf)
		return pr_perror("show: open_memstream");
	json_init(&w, mf, true);
	if (!S_ISDIR(st.st_mode) && (f->pid >= 0 || f->kinds)) {
		fclose(mf);
		free(out);
		pr_err("show: --pid and --kind choose among the images of a directory");
		return -EINVAL;
	}
	ret = S_ISDIR(st.st_mode) ? show_dir(&w, path, f) : show_file(&w, path);
	if (!ret) {
		ret = json_finish(&w);
		if (ret)
			pr_errno(ret, "show: formatting JSON");
	}
	if (fclose(mf) == EOF && !ret)
		ret = pr_perror("show: formatting JSON");
	if (!ret) {
		ret = write_all(STDOUT_FILENO, out, outlen);
		if (ret)
			pr_errno(ret, "show: writing to stdout");
	}
	free(out);
	return ret;
}

int cmd_show(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "help", no_argument, NULL, 'h' },
		{ "verbose", no_argument, NULL, 'v' },
		{ "pid", required_argument, NULL, 'p' },
		{ "kind", required_argument, NULL, 'k' },
		{ "pages", required_argument, NULL, 'P' },
		{ NULL, 0, NULL, 0 },
	};
	bool verbose = false;
	struct show_filter f = { .pid = -1 };
	const char *pages = NULL;
	uint64_t addr = 0, len = 0;
	int c;

	optind = 1;
	while ((c = getopt_long(argc, argv, "+hv", longopts, NULL)) != -1) {
		switch (c) {
		case 'h': show_usage(stdout); return 0;
		case 'v': verbose = true; break;
		case 'p': {
			char *end;
			errno = 0;
			long v = strtol(optarg, &end, 10);
			if (errno || end == optarg || *end || v <= 0 || v > INT32_MAX) {
				fprintf(stderr, "stasis show: --pid %s: not a pid\n", optarg);
				return 2;
			}
			f.pid = v;
			break;
		}
		case 'k': {
			const struct img_kind_desc *k = NULL;
			for (int i = 1; i < IMG_KIND_MAX && !k; i++) {
				const struct img_kind_desc *x = img_kind_get((enum img_kind)i);
				if (x && !strcmp(x->name, optarg))
					k = x;
			}
			if (!k) {
				fprintf(stderr, "stasis show: --kind %s: no such image kind\n", optarg);
				return 2;
			}
			f.kinds |= 1u << k->kind;
			break;
		}
		case 'P':
			pages = optarg;
			if (parse_range(optarg, &addr, &len)) {
				fprintf(stderr, "stasis show: --pages %s: expected ADDR[+LEN] (hex "
						"address, 1 to %u bytes)\n", optarg, SHOW_PAGES_MAX);
				return 2;
			}
			break;
		default: show_usage(stderr); return 2;
		}
	}
	if (pages && (f.pid < 0 || f.kinds)) {
		fprintf(stderr, "stasis show: --pages needs --pid (and no --kind)\n");
		return 2;
	}
	if (argc - optind != 1) {
		fprintf(stderr, "stasis show: expected one DIR or FILE\n");
		show_usage(stderr);
		return 2;
	}
	/* The one error line is cli_report_failure()'s; the log shows only with -v. */
	if (log_init(verbose ? NULL : "/dev/null", verbose ? LOG_DEBUG : LOG_ERR) < 0)
		log_set_level(LOG_ERR);
	log_set_stage(NULL);
	int ret = pages ? show_memory(argv[optind], f.pid, addr, len) : show_run(argv[optind], &f);
	if (ret)
		cli_report_failure("show");
	log_close();
	return ret ? 1 : 0;
}
