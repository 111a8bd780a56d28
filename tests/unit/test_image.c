/* Unit tests of src/image/img.c: round trips of Core, Mm and Files images through an image
 * directory, and img_decode on corrupted, truncated, mislabelled and foreign-version
 * copies (every one must fail cleanly, never crash). Works in a temporary directory under
 * /tmp that is removed at the end. */
#include <dirent.h>
#include <fcntl.h>
#include <ftw.h>
#include <stddef.h>
#include <stdio.h>
#include <sys/file.h>
#include <sys/stat.h>

#include "core/log.h"
#include "image/img.h"
#include "unit.h"

static char base[] = "/tmp/stasis-unit-img.XXXXXX";

static int rm_one(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
	(void)sb;
	(void)flag;
	(void)ftw;
	return remove(path);
}

static void rm_rf(const char *path) { nftw(path, rm_one, 16, FTW_DEPTH | FTW_PHYS); }

static char *path_in(const char *name)
{
	char *p;
	if (asprintf(&p, "%s/%s", base, name) < 0)
		abort();
	return p;
}

static bool exists(const char *dir, const char *name)
{
	char p[4096];
	snprintf(p, sizeof(p), "%s/%s", dir, name);
	return access(p, F_OK) == 0;
}

/* Count entries of @dir whose name starts with @prefix. */
static int count_prefix(const char *dir, const char *prefix)
{
	DIR *d = opendir(dir);
	struct dirent *de;
	int n = 0;
	if (!d)
		return -1;
	while ((de = readdir(d)))
		if (!strncmp(de->d_name, prefix, strlen(prefix)))
			n++;
	closedir(d);
	return n;
}

/* ---- messages ----------------------------------------------------------------- */

static uint32_t groups[] = { 4, 24, 27 };
static uint8_t gpregs[27 * 8];

static void fill_core(Core *c, Creds *cr, Thread *th, Thread **thp, int pid)
{
	core__init(c);
	creds__init(cr);
	thread__init(th);
	cr->uid = 1000;
	cr->euid = 1001;
	cr->suid = 1002;
	cr->fsuid = 1003;
	cr->gid = 100;
	cr->egid = 101;
	cr->sgid = 102;
	cr->fsgid = 103;
	cr->n_groups = ARRAY_SIZE(groups);
	cr->groups = groups;
	cr->cap_bnd = 0x1ffffffffffULL;
	cr->no_new_privs = true;
	for (size_t i = 0; i < sizeof(gpregs); i++)
		gpregs[i] = (uint8_t)(i * 7);
	th->tid = pid;
	th->gpregs.len = sizeof(gpregs);
	th->gpregs.data = gpregs;
	th->blocked = 0x10000;
	thp[0] = th;
	c->pid = pid;
	c->comm = (char *)"a) b (c";
	c->personality = 0;
	c->umask = 022;
	c->n_threads = 1;
	c->threads = thp;
	c->creds = cr;
	c->dumpable = 1;
	c->pdeath_sig = 9;
	c->cwd = (char *)"/tmp/with space";
	c->root = (char *)"/";
	c->has_ppid = true;
	c->ppid = 1;
}

static void fill_mm(Mm *m, Vma *v, Vma **vp, uint64_t *auxv)
{
	mm__init(m);
	vma__init(&v[0]);
	vma__init(&v[1]);
	v[0].start = 0x400000;
	v[0].end = 0x401000;
	v[0].prot = 5;
	v[0].flags = 2;
	v[0].kind = VMA_KIND__VMA_FILE;
	v[0].path = (char *)"/usr/bin/x y";
	v[0].has_pgoff = true;
	v[0].pgoff = 0x1000;
	v[1].start = 0x7ffff0000000;
	v[1].end = 0x7ffff0021000;
	v[1].prot = 3;
	v[1].flags = 0x22;
	v[1].kind = VMA_KIND__VMA_STACK;
	vp[0] = &v[0];
	vp[1] = &v[1];
	m->n_vmas = 2;
	m->vmas = vp;
	m->start_code = 0x400000;
	m->end_code = 0x401000;
	m->start_brk = 0x600000;
	m->brk = 0x621000;
	m->env_end = UINT64_MAX;
	for (int i = 0; i < 6; i++)
		auxv[i] = (uint64_t)i * 0x1111;
	m->n_auxv = 6;
	m->auxv = auxv;
}

static void fill_files(Files *f, FileDesc *fd, FileDesc **fdp, Fd *e, Fd **ep, PipeData *pd)
{
	files__init(f);
	file_desc__init(&fd[0]);
	file_desc__init(&fd[1]);
	pipe_data__init(pd);
	fd[0].id = 1;
	fd[0].kind = FILE_KIND__FILE_REG;
	fd[0].flags = 02 | 02000;
	fd[0].has_pos = true;
	fd[0].pos = 1234;
	fd[0].path = (char *)"/tmp/x";
	fd[1].id = 2;
	fd[1].kind = FILE_KIND__FILE_PIPE;
	pd->ino = 9111;
	pd->size = 65536;
	pd->has_data = true;
	pd->data.len = 5;
	pd->data.data = (uint8_t *)"hello";
	fd[1].pipe = pd;
	fdp[0] = &fd[0];
	fdp[1] = &fd[1];
	for (int i = 0; i < 3; i++) {
		fd__init(&e[i]);
		e[i].fd = i;
		e[i].file_id = i == 0 ? 1 : 2;
		e[i].cloexec = i == 2;
		ep[i] = &e[i];
	}
	f->n_files = 2;
	f->files = fdp;
	f->n_fds = 3;
	f->fds = ep;
}

static int write_set(const char *dir, int pid, bool with_files)
{
	struct img_dir d;
	Core core;
	Creds cr;
	Thread th, *thp[1];
	Mm mm;
	Vma v[2], *vp[2];
	uint64_t auxv[6];
	Files files;
	FileDesc fd[2], *fdp[2];
	Fd e[3], *ep[3];
	PipeData pd;
	Inventory inv;
	int32_t pids[1] = { pid };
	int ret;

	fill_core(&core, &cr, &th, thp, pid);
	fill_mm(&mm, v, vp, auxv);
	fill_files(&files, fd, fdp, e, ep, &pd);
	inventory__init(&inv);
	inv.img_version = IMG_VERSION;
	inv.root_pid = pid;
	inv.n_pids = 1;
	inv.pids = pids;

	ret = img_dir_begin(&d, dir, false);
	if (ret)
		return ret;
	if ((ret = img_write_msg(&d, IMG_INVENTORY, 0, &inv.base)) ||
	    (ret = img_write_msg(&d, IMG_CORE, pid, &core.base)) ||
	    (ret = img_write_msg(&d, IMG_MM, pid, &mm.base)) ||
	    (with_files && (ret = img_write_msg(&d, IMG_FILES, pid, &files.base))) ||
	    (ret = img_dir_commit(&d))) {
		img_dir_abort(&d);
		return ret;
	}
	img_dir_close(&d);
	return 0;
}

/* ---- tests -------------------------------------------------------------------- */

static void test_round_trip(void)
{
	_cleanup_free_ char *dir = path_in("img");
	struct img_dir d;

	CHECK_EQ(write_set(dir, 42, true), 0);
	CHECK(exists(dir, "inventory.img") && exists(dir, "core-42.img") &&
	      exists(dir, "mm-42.img") && exists(dir, "files-42.img"));
	CHECK_EQ(count_prefix(base, "img.stasis-tmp"), 0);
	CHECK_EQ(img_dir_open(&d, dir), 0);
	if (d.dfd < 0)
		return;

	Core *c = img_read_msg(d.dfd, IMG_CORE, 42);
	CHECK(c != NULL);
	if (c) {
		CHECK_EQ(c->pid, 42);
		CHECK_STREQ(c->comm, "a) b (c");
		CHECK_STREQ(c->cwd, "/tmp/with space");
		CHECK_EQ(c->umask, 022);
		CHECK_EQ(c->pdeath_sig, 9);
		CHECK(c->has_ppid && c->ppid == 1);
		CHECK(!c->has_pgid);
		CHECK_EQ(c->n_threads, 1);
		if (c->n_threads == 1) {
			CHECK_EQ(c->threads[0]->tid, 42);
			CHECK_EQ(c->threads[0]->blocked, 0x10000);
			CHECK_EQ(c->threads[0]->gpregs.len, sizeof(gpregs));
			CHECK(!memcmp(c->threads[0]->gpregs.data, gpregs, sizeof(gpregs)));
		}
		CHECK(c->creds != NULL);
		if (c->creds) {
			CHECK_EQ(c->creds->fsuid, 1003);
			CHECK_EQ(c->creds->sgid, 102);
			CHECK_EQ(c->creds->n_groups, 3);
			CHECK(c->creds->n_groups == 3 && c->creds->groups[2] == 27);
			CHECK_EQ(c->creds->cap_bnd, 0x1ffffffffffULL);
			CHECK(c->creds->no_new_privs);
		}
		protobuf_c_message_free_unpacked(&c->base, NULL);
	}

	Mm *m = img_read_msg(d.dfd, IMG_MM, 42);
	CHECK(m != NULL);
	if (m) {
		CHECK_EQ(m->n_vmas, 2);
		if (m->n_vmas == 2) {
			CHECK_EQ(m->vmas[0]->start, 0x400000);
			CHECK_STREQ(m->vmas[0]->path, "/usr/bin/x y");
			CHECK(m->vmas[0]->has_pgoff && m->vmas[0]->pgoff == 0x1000);
			CHECK_EQ(m->vmas[1]->kind, VMA_KIND__VMA_STACK);
			CHECK(m->vmas[1]->path == NULL);
			CHECK_EQ(m->vmas[1]->end, 0x7ffff0021000ULL);
		}
		CHECK_EQ(m->env_end, UINT64_MAX);
		CHECK_EQ(m->brk, 0x621000);
		CHECK_EQ(m->n_auxv, 6);
		CHECK(m->n_auxv == 6 && m->auxv[5] == 5 * 0x1111);
		protobuf_c_message_free_unpacked(&m->base, NULL);
	}

	Files *f = img_read_msg(d.dfd, IMG_FILES, 42);
	CHECK(f != NULL);
	if (f) {
		CHECK_EQ(f->n_files, 2);
		CHECK_EQ(f->n_fds, 3);
		if (f->n_files == 2 && f->n_fds == 3) {
			CHECK_EQ(f->files[0]->pos, 1234);
			CHECK_STREQ(f->files[0]->path, "/tmp/x");
			CHECK_EQ(f->files[1]->kind, FILE_KIND__FILE_PIPE);
			CHECK(f->files[1]->pipe && f->files[1]->pipe->data.len == 5 &&
			      !memcmp(f->files[1]->pipe->data.data, "hello", 5));
			CHECK(f->fds[2]->cloexec && f->fds[2]->file_id == 2);
		}
		protobuf_c_message_free_unpacked(&f->base, NULL);
	}

	Inventory *inv = img_read_msg(d.dfd, IMG_INVENTORY, 0);
	CHECK(inv && inv->root_pid == 42 && inv->n_pids == 1 && inv->img_version == IMG_VERSION);
	if (inv)
		protobuf_c_message_free_unpacked(&inv->base, NULL);

	/* a missing image: NULL, errno ENOENT, the file named in the error */
	CHECK_EQ(log_init("/dev/null", LOG_ERR), 0);
	log_reset_first_error();
	errno = 0;
	CHECK(img_read_msg(d.dfd, IMG_CORE, 43) == NULL);
	CHECK_EQ(errno, ENOENT);
	CHECK(strstr(log_first_error(), "core-43.img") != NULL);
	log_close();
	log_reset_first_error();
	img_dir_close(&d);
}

static uint8_t *slurp(const char *dir, const char *name, size_t *len)
{
	_cleanup_close_ int dfd = open(dir, O_RDONLY | O_DIRECTORY);
	uint8_t *b = (uint8_t *)read_file_at(dfd, name, 1 << 20, len);
	if (!b)
		abort();
	return b;
}

/* Decode @len bytes from an exactly-sized copy (so ASan sees over-reads). */
static void *decode_exact(const uint8_t *buf, size_t len, enum img_kind kind)
{
	uint8_t *copy = malloc(len ? len : 1);
	if (!copy)
		abort();
	memcpy(copy, buf, len);
	void *m = img_decode(copy, len, kind, "test");
	free(copy);
	return m;
}

static void free_msg(void *m)
{
	if (m)
		protobuf_c_message_free_unpacked(m, NULL);
}

static void rehash_hdr(uint8_t *buf)
{
	struct img_hdr h;
	memcpy(&h, buf, sizeof(h));
	h.hdr_xxh64 = img_hash(&h, offsetof(struct img_hdr, hdr_xxh64));
	memcpy(buf, &h, sizeof(h));
}

static void test_corruption(void)
{
	_cleanup_free_ char *dir = path_in("img");
	static const struct {
		enum img_kind kind;
		const char *name;
	} files[] = { { IMG_CORE, "core-42.img" },
		      { IMG_MM, "mm-42.img" },
		      { IMG_FILES, "files-42.img" },
		      { IMG_INVENTORY, "inventory.img" } };

	CHECK_EQ(log_init("/dev/null", LOG_ERR), 0); /* thousands of expected errors */
	for (size_t k = 0; k < ARRAY_SIZE(files); k++) {
		size_t len;
		_cleanup_free_ uint8_t *img = slurp(dir, files[k].name, &len);
		enum img_kind kind = files[k].kind;
		void *m;

		m = decode_exact(img, len, kind);
		CHECK(m != NULL);
		free_msg(m);

		/* truncated at every length, and one byte too long */
		for (size_t cut = 0; cut < len; cut++) {
			m = decode_exact(img, cut, kind);
			if (m) {
				UNIT_FAIL("%s truncated to %zu bytes decoded", files[k].name, cut);
				free_msg(m);
			}
		}
		uint8_t *longer = calloc(1, len + 1);
		memcpy(longer, img, len);
		m = decode_exact(longer, len + 1, kind);
		CHECK(m == NULL);
		free_msg(m);
		free(longer);

		/* every single byte flipped (all bits, then the lowest bit) */
		uint8_t *bad = malloc(len);
		for (size_t i = 0; i < len; i++) {
			for (int pass = 0; pass < 2; pass++) {
				memcpy(bad, img, len);
				bad[i] ^= pass ? 0x01 : 0xff;
				m = decode_exact(bad, len, kind);
				if (m) {
					UNIT_FAIL("%s with byte %zu ^0x%02x decoded", files[k].name,
						  i, pass ? 1 : 0xff);
					free_msg(m);
				}
			}
		}
		unit_checks++;

		/* a valid image of another kind */
		for (size_t o = 0; o < ARRAY_SIZE(files); o++) {
			if (o == k)
				continue;
			errno = 0;
			m = decode_exact(img, len, files[o].kind);
			CHECK(m == NULL);
			CHECK_EQ(errno, EINVAL);
			free_msg(m);
		}
		CHECK(decode_exact(img, len, IMG_PAGES) == NULL);
		CHECK(decode_exact(img, len, (enum img_kind)0) == NULL);
		CHECK(decode_exact(img, len, (enum img_kind)999) == NULL);

		/* relabelled with a consistent header: kind of another type, other version */
		struct img_hdr h;
		memcpy(bad, img, len);
		memcpy(&h, bad, sizeof(h));
		h.kind = (uint16_t)(kind == IMG_CORE ? IMG_MM : IMG_CORE);
		memcpy(bad, &h, sizeof(h));
		rehash_hdr(bad);
		errno = 0;
		m = decode_exact(bad, len, h.kind);
		CHECK(m == NULL); /* the payload is not a valid message of that kind */
		if (m)
			UNIT_FAIL("%s relabelled as kind %u decoded", files[k].name, h.kind);
		free_msg(m);

		memcpy(bad, img, len);
		memcpy(&h, bad, sizeof(h));
		h.version = IMG_VERSION + 1;
		memcpy(bad, &h, sizeof(h));
		rehash_hdr(bad);
		errno = 0;
		log_reset_first_error();
		m = decode_exact(bad, len, kind);
		CHECK(m == NULL);
		CHECK_EQ(errno, EPROTO);
		CHECK(strstr(log_first_error(), "version") != NULL);
		free_msg(m);

		/* a huge payload_len with a matching header checksum */
		memcpy(bad, img, len);
		memcpy(&h, bad, sizeof(h));
		h.payload_len = UINT64_MAX - 3;
		memcpy(bad, &h, sizeof(h));
		rehash_hdr(bad);
		m = decode_exact(bad, len, kind);
		CHECK(m == NULL);
		free_msg(m);
		free(bad);
	}

	/* garbage payload with valid framing and checksums */
	static const uint8_t garbage[] = { 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
					   0xff, 0xff, 0x01, 0x0a, 0x80, 0x80, 0x80, 0x80 };
	uint8_t framed[sizeof(struct img_hdr) + sizeof(garbage)];
	struct img_hdr h;
	img_fill_hdr(&h, IMG_CORE, sizeof(garbage), img_hash(garbage, sizeof(garbage)));
	memcpy(framed, &h, sizeof(h));
	memcpy(framed + sizeof(h), garbage, sizeof(garbage));
	errno = 0;
	CHECK(decode_exact(framed, sizeof(framed), IMG_CORE) == NULL);
	CHECK_EQ(errno, EBADMSG);
	/* an empty payload lacks Core's required fields */
	img_fill_hdr(&h, IMG_CORE, 0, img_hash("", 0));
	CHECK(decode_exact((const uint8_t *)&h, sizeof(h), IMG_CORE) == NULL);
	log_close();
	log_set_level(LOG_WARN);
	log_reset_first_error();
}

static void test_foreign_dir(void)
{
	_cleanup_free_ char *dir = path_in("foreign");
	_cleanup_free_ char *file = path_in("foreign/notes.txt");
	struct img_dir d;

	CHECK_EQ(mkdir(dir, 0700), 0);
	CHECK_EQ(write_file(file, "keep me", 7), 0);
	CHECK_EQ(log_init("/dev/null", LOG_ERR), 0);
	CHECK_EQ(img_dir_begin(&d, dir, false), -EEXIST);
	log_close();
	CHECK(exists(dir, "notes.txt"));
	CHECK_EQ(count_prefix(base, "foreign.stasis-tmp"), 0);
	/* an image file name that only looks like one */
	CHECK_EQ(unlink(file), 0);
	_cleanup_free_ char *f2 = path_in("foreign/core-x.img");
	CHECK_EQ(write_file(f2, "x", 1), 0);
	CHECK_EQ(log_init("/dev/null", LOG_ERR), 0);
	CHECK_EQ(img_dir_begin(&d, dir, false), -EEXIST);
	log_close();
	CHECK(exists(dir, "core-x.img"));
	/* an empty existing directory is fine */
	CHECK_EQ(unlink(f2), 0);
	CHECK_EQ(write_set(dir, 7, true), 0);
	CHECK(exists(dir, "core-7.img"));
	CHECK_EQ(count_prefix(base, "foreign.stasis-tmp"), 0);
}

static void test_replace(void)
{
	_cleanup_free_ char *dir = path_in("img");
	struct img_dir d;

	/* the set of pid 42 from test_round_trip is replaced as a whole */
	CHECK(exists(dir, "core-42.img"));
	CHECK_EQ(write_set(dir, 43, false), 0);
	CHECK(exists(dir, "core-43.img") && exists(dir, "mm-43.img"));
	CHECK(!exists(dir, "core-42.img") && !exists(dir, "mm-42.img") &&
	      !exists(dir, "files-42.img"));
	CHECK_EQ(count_prefix(base, "img.stasis-tmp"), 0);
	CHECK_EQ(img_dir_open(&d, dir), 0);
	Inventory *inv = img_read_msg(d.dfd, IMG_INVENTORY, 0);
	CHECK(inv && inv->root_pid == 43);
	if (inv)
		protobuf_c_message_free_unpacked(&inv->base, NULL);
	img_dir_close(&d);

	/* an aborted dump leaves the committed set alone and no temporary directory */
	CHECK_EQ(img_dir_begin(&d, dir, true), 0);
	img_dir_abort(&d);
	CHECK(exists(dir, "core-43.img"));
	CHECK_EQ(count_prefix(base, "img.stasis-tmp"), 0);
}

/* A temporary directory of a dump into @dir by @pid holding one pages file of @len bytes
 * (and @extra, not an image, if given). */
static void make_tmp(const char *dir, int pid, size_t len, const char *extra)
{
	char p[4096];
	snprintf(p, sizeof(p), "%s.stasis-tmp.%d", dir, pid);
	CHECK_EQ(mkdir(p, 0700), 0);
	snprintf(p, sizeof(p), "%s.stasis-tmp.%d/pages-%d.img", dir, pid, pid);
	int fd = open(p, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
	CHECK(fd >= 0);
	if (fd >= 0) {
		CHECK_EQ(ftruncate(fd, (off_t)len), 0);
		CHECK_EQ(pwrite(fd, "x", 1, 0), 1); /* one block allocated */
		close(fd);
	}
	if (extra) {
		snprintf(p, sizeof(p), "%s.stasis-tmp.%d/%s", dir, pid, extra);
		fd = open(p, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
		CHECK(fd >= 0);
		if (fd >= 0)
			close(fd);
	}
}

struct gc_seen {
	int removed, live, foreign, failed;
};

static void gc_count(void *arg, const char *tmp, enum img_gc_what what, uint64_t bytes, int err,
		     const char *foreign)
{
	struct gc_seen *s = arg;
	(void)tmp;
	(void)bytes;
	(void)err;
	s->removed += what == IMG_GC_REMOVED;
	s->live += what == IMG_GC_LIVE;
	s->foreign += what == IMG_GC_FOREIGN && foreign && !strcmp(foreign, "notes.txt");
	s->failed += what == IMG_GC_FAILED;
}

/* Stale temporary directories (no lock held) are removed by img_gc and by the next dump
 * into the same place; a locked one (a live dump) and one holding a foreign file never. */
static void test_gc(void)
{
	_cleanup_free_ char *dir = path_in("gc");
	_cleanup_free_ char *live = NULL;
	struct gc_seen s = { 0 };
	struct img_dir d;

	make_tmp(dir, 999991, 1 << 20, NULL);
	make_tmp(dir, 999992, 4096, NULL);
	make_tmp(dir, 999993, 4096, "notes.txt");
	if (asprintf(&live, "%s.stasis-tmp.999992", dir) < 0)
		abort();
	/* the "live dumper" holds the lock through its own open file description */
	int lfd = open(live, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	CHECK(lfd >= 0 && flock(lfd, LOCK_EX | LOCK_NB) == 0);
	CHECK_EQ(img_gc(dir, false, gc_count, &s), 1);
	CHECK(s.removed == 1 && s.live == 1 && s.foreign == 1 && s.failed == 0);
	CHECK_EQ(count_prefix(base, "gc.stasis-tmp."), 2);
	CHECK(access(live, F_OK) == 0);

	/* the next dump removes a stale one by itself, not the live one */
	make_tmp(dir, 999994, 4096, NULL);
	CHECK_EQ(img_dir_begin(&d, dir, false), 0);
	CHECK(!exists(base, "gc.stasis-tmp.999994") && exists(base, "gc.stasis-tmp.999992"));
	/* its own directory is locked: a collector leaves it alone */
	memset(&s, 0, sizeof(s));
	CHECK_EQ(img_gc(dir, false, gc_count, &s), 0);
	CHECK(s.live == 2 && s.removed == 0);
	img_dir_abort(&d);

	/* the live dump is gone: now it is stale; with @inside, from the parent directory */
	close(lfd);
	memset(&s, 0, sizeof(s));
	CHECK_EQ(img_gc(base, true, gc_count, &s), 1);
	CHECK(s.removed == 1 && s.foreign == 1);
	CHECK_EQ(count_prefix(base, "gc.stasis-tmp."), 1); /* the foreign one */
	_cleanup_free_ char *missing = path_in("missing");
	CHECK_EQ(img_gc(missing, true, NULL, NULL), 0);
}

int main(void)
{
	if (!mkdtemp(base))
		UNIT_SKIP("cannot create a temporary directory under /tmp: %s", strerror(errno));
	RUN(test_round_trip);
	RUN(test_corruption);
	RUN(test_foreign_dir);
	RUN(test_replace);
	RUN(test_gc);
	rm_rf(base);
	return unit_done();
}
