#include "image/img.h"

#include <dirent.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <xxhash.h>

#include "core/log.h"
#include "image/blob.h"
#include "image/remote.h"

static const struct img_kind_desc kinds[] = {
	{ IMG_INVENTORY, "inventory", "inventory.img", &inventory__descriptor },
	{ IMG_CORE, "core", "core-%d.img", &core__descriptor },
	{ IMG_MM, "mm", "mm-%d.img", &mm__descriptor },
	{ IMG_FILES, "files", "files-%d.img", &files__descriptor },
	{ IMG_PAGES, "pages", "pages-%d.img", NULL },
	{ IMG_BLOBS, "blobs", BLOB_FILE, NULL },
	{ IMG_NS, "ns", "ns-%d.img", &task_ns__descriptor },
	{ IMG_NETLOCK, "netlock", "netlock.img", &net_lock__descriptor },
	{ IMG_STATS, "stats", "stats-dump.img", &dump_stats__descriptor },
	{ IMG_SECCOMP, "seccomp", "seccomp.img", &seccomp_filters__descriptor },
};

/* Raw kinds: a header page, then data of any length. */
static bool kind_is_raw(enum img_kind kind)
{
	return kind == IMG_PAGES || kind == IMG_BLOBS;
}

const struct img_kind_desc *img_kind_get(enum img_kind kind)
{
	for (size_t i = 0; i < ARRAY_SIZE(kinds); i++)
		if (kinds[i].kind == kind)
			return &kinds[i];
	return NULL;
}

const struct img_kind_desc *img_kind_by_filename(const char *fname)
{
	for (size_t i = 0; i < ARRAY_SIZE(kinds); i++) {
		const char *pct = strstr(kinds[i].pattern, "%d");
		if (!pct) {
			if (!strcmp(fname, kinds[i].pattern))
				return &kinds[i];
			continue;
		}
		size_t pre = (size_t)(pct - kinds[i].pattern);
		if (strncmp(fname, kinds[i].pattern, pre))
			continue;
		const char *p = fname + pre;
		if (*p < '0' || *p > '9')
			continue;
		while (*p >= '0' && *p <= '9')
			p++;
		if (!strcmp(p, pct + 2))
			return &kinds[i];
	}
	return NULL;
}

void img_name(enum img_kind kind, int pid, char *buf, size_t len)
{
	const struct img_kind_desc *k = img_kind_get(kind);
	const char *pct = k ? strstr(k->pattern, "%d") : NULL;
	if (!k)
		snprintf(buf, len, "unknown-%d.img", (int)kind);
	else if (!pct)
		snprintf(buf, len, "%s", k->pattern);
	else
		snprintf(buf, len, "%.*s%d%s", (int)(pct - k->pattern), k->pattern, pid, pct + 2);
}

uint64_t img_hash(const void *buf, size_t len) { return XXH3_64bits(buf, len); }

void img_fill_hdr(struct img_hdr *h, enum img_kind kind, uint64_t len, uint64_t xxh)
{
	memset(h, 0, sizeof(*h));
	h->magic = IMG_MAGIC;
	h->version = IMG_VERSION;
	h->kind = (uint16_t)kind;
	h->payload_len = len;
	h->payload_xxh64 = xxh;
	h->hdr_xxh64 = XXH3_64bits(h, offsetof(struct img_hdr, hdr_xxh64));
}

int img_check_hdr(const struct img_hdr *h, enum img_kind expect, uint64_t file_len,
		  const char *what)
{
	if (h->magic != IMG_MAGIC) {
		pr_err("%s: not a stasis image (bad magic 0x%08x)", what, h->magic);
		return -EINVAL;
	}
	if (h->hdr_xxh64 != XXH3_64bits(h, offsetof(struct img_hdr, hdr_xxh64))) {
		pr_err("%s: image header checksum mismatch (corrupted header)", what);
		return -EBADMSG;
	}
	if (h->version != IMG_VERSION) {
		pr_err("%s: image version %u, this stasis reads version %u", what, h->version,
		       IMG_VERSION);
		return -EPROTO;
	}
	if (h->kind != expect) {
		pr_err("%s: image kind %u, expected %u", what, h->kind, expect);
		return -EINVAL;
	}
	uint32_t known = expect == IMG_PAGES ? IMG_F_PAGES_ZSTD : 0;
	if (h->flags & ~known) {
		pr_err("%s: unknown image flags %#x", what, h->flags & ~known);
		return -EPROTO;
	}
	uint64_t hdr = kind_is_raw(expect) ? IMG_PAGES_HDR_SIZE : sizeof(*h);
	if (file_len < hdr || h->payload_len != file_len - hdr) {
		pr_err("%s: truncated or oversized image (payload %llu bytes, file %llu bytes)",
		       what, (unsigned long long)h->payload_len, (unsigned long long)file_len);
		return -EBADMSG;
	}
	if (!kind_is_raw(expect) && h->payload_len > IMG_MAX_META) {
		pr_err("%s: metadata payload of %llu bytes exceeds the %u byte bound", what,
		       (unsigned long long)h->payload_len, IMG_MAX_META);
		return -EFBIG;
	}
	return 0;
}

static int fsync_dir_of(const char *path)
{
	_cleanup_free_ char *dup = strdup(path);
	if (!dup)
		return -ENOMEM;
	_cleanup_close_ int fd = open(dirname(dup), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0 || fsync(fd) < 0)
		return -errno;
	return 0;
}

/* An existing DIR may be empty or hold a previous image set (inventory.img), which is
 * replaced; anything else is refused so that a typo never deletes a user's files. */
static int check_target_dir(const char *path, bool *exists, bool keep_foreign)
{
	DIR *dir = opendir(path);
	*exists = false;
	if (!dir) {
		if (errno == ENOENT)
			return 0;
		return pr_perror("images: cannot open %s", path);
	}
	*exists = true;
	/* the images replace DIR with a rename, which a mount point refuses (EBUSY): say so
	 * now, before the tree is frozen */
	struct statx stx;
	if (statx(dirfd(dir), "", AT_EMPTY_PATH, STATX_BASIC_STATS, &stx) == 0 &&
	    (stx.stx_attributes_mask & STATX_ATTR_MOUNT_ROOT) &&
	    (stx.stx_attributes & STATX_ATTR_MOUNT_ROOT)) {
		pr_err("images: %s is a mount point, which the images cannot replace: dump into a "
		       "directory below it",
		       path);
		closedir(dir);
		return -EBUSY;
	}
	struct dirent *de;
	int ret = 0;
	while ((de = readdir(dir))) {
		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		if (!keep_foreign && !img_kind_by_filename(de->d_name) &&
		    strcmp(de->d_name, IMG_PARENT_LINK)) {
			pr_err("images: %s holds %s, which is not a stasis image; refusing to "
			       "replace it",
			       path, de->d_name);
			ret = -EEXIST;
			break;
		}
	}
	closedir(dir);
	return ret;
}

#define TMP_SUFFIX ".stasis-tmp."
/* How long a dumper waits for a collector that took the lock of its fresh temporary
 * directory (to find it stale: the dumper had not locked it yet) to let go. */
#define TMP_LOCK_WAIT_MS 10000

/* @name is "BASE.stasis-tmp.DIGITS" (any non-empty BASE when @base is NULL). */
static bool is_tmp_name(const char *name, const char *base)
{
	const char *digits = NULL;
	if (base) {
		size_t n = strlen(base);
		if (!n || strncmp(name, base, n) || strncmp(name + n, TMP_SUFFIX, strlen(TMP_SUFFIX)))
			return false;
		digits = name + n + strlen(TMP_SUFFIX);
	} else {
		for (const char *s = strstr(name, TMP_SUFFIX); s; s = strstr(s + 1, TMP_SUFFIX))
			if (s > name)
				digits = s + strlen(TMP_SUFFIX);
		if (!digits)
			return false;
	}
	size_t nd = strspn(digits, "0123456789");
	return nd > 0 && nd <= 10 && !digits[nd];
}

/* Take the lock of a temporary directory for its dumper, waiting at most @wait_ms for a
 * collector holding it. */
static int tmp_lock(int dfd, int wait_ms)
{
	for (int waited = 0;; waited += 10) {
		if (flock(dfd, LOCK_EX | LOCK_NB) == 0)
			return 0;
		if ((errno != EWOULDBLOCK && errno != EINTR) || waited >= wait_ms)
			return -errno;
		usleep(10000);
	}
}

/* Every entry of the stale directory @dfd is an image file: their allocated bytes in
 * @bytes; else the name of the first that is not (malloc'd) in @foreign. */
static int tmp_scan(int dfd, uint64_t *bytes, char **foreign)
{
	DIR *dir = fdopendir(dup(dfd));
	struct dirent *de;
	*bytes = 0;
	*foreign = NULL;
	if (!dir)
		return -errno;
	rewinddir(dir); /* the offset is shared with @dfd */
	while ((de = readdir(dir))) {
		struct stat st;
		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		bool link = !strcmp(de->d_name, IMG_PARENT_LINK);
		if ((!link && !img_kind_by_filename(de->d_name)) ||
		    fstatat(dfd, de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0 ||
		    !(link ? S_ISLNK(st.st_mode) : S_ISREG(st.st_mode))) {
			*foreign = strdup(de->d_name);
			break;
		}
		*bytes += (uint64_t)st.st_blocks * 512;
	}
	closedir(dir);
	return *foreign ? -ENOTEMPTY : 0;
}

static void (*stale_hook)(const char *tmp);

void img_gc_set_stale_hook(void (*fn)(const char *tmp))
{
	stale_hook = fn;
}

/* One temporary directory @name in @pdfd (@ppath for the report): removed if stale. */
static int gc_one(int pdfd, const char *ppath, const char *name, img_gc_report_fn report, void *arg)
{
	_cleanup_free_ char *path = NULL;
	_cleanup_free_ char *foreign = NULL;
	uint64_t bytes = 0;
	int ret;

	if ((strcmp(ppath, ".") ? asprintf(&path, "%s/%s", ppath, name)
				: asprintf(&path, "%s", name)) < 0) {
		path = NULL;
		return -ENOMEM;
	}
	_cleanup_close_ int fd = openat(pdfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0) {
		ret = -errno;
		if (ret == -ENOENT)
			return 0; /* removed meanwhile */
		goto failed;
	}
	/* Held by its dumper from before the directory holds anything until it is renamed
	 * away (and then by no one: the previous image set it is left with is garbage). A
	 * dumper that made it and has not locked it yet waits for us, finds it removed and
	 * makes another. */
	if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
		ret = -errno;
		if (ret != -EWOULDBLOCK)
			goto failed;
		if (report)
			report(arg, path, IMG_GC_LIVE, 0, 0, NULL);
		return 0;
	}
	ret = tmp_scan(fd, &bytes, &foreign);
	if (ret == -ENOTEMPTY) {
		if (report)
			report(arg, path, IMG_GC_FOREIGN, bytes, 0, foreign);
		return 0;
	}
	if (ret)
		goto failed;
	if (stale_hook)
		stale_hook(path);
	DIR *dir = fdopendir(dup(fd));
	struct dirent *de;
	if (!dir) {
		ret = -errno;
		goto failed;
	}
	rewinddir(dir);
	while ((de = readdir(dir)))
		if (strcmp(de->d_name, ".") && strcmp(de->d_name, "..") &&
		    unlinkat(fd, de->d_name, 0) < 0 && errno != ENOENT && !ret)
			ret = -errno;
	closedir(dir);
	if (!ret && unlinkat(pdfd, name, AT_REMOVEDIR) < 0 && errno != ENOENT)
		ret = -errno;
	if (ret)
		goto failed;
	if (report)
		report(arg, path, IMG_GC_REMOVED, bytes, 0, NULL);
	return 1;
failed:
	if (report)
		report(arg, path, IMG_GC_FAILED, bytes, ret, NULL);
	return 0;
}

/* The temporary directories in directory @ppath (of dumps into @ppath/@base, or any). */
static int gc_in(const char *ppath, const char *base, img_gc_report_fn report, void *arg)
{
	_cleanup_close_ int pdfd = open(ppath, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (pdfd < 0)
		return -errno;
	DIR *dir = fdopendir(dup(pdfd));
	if (!dir)
		return -errno;
	struct dirent *de;
	int n = 0;
	while ((de = readdir(dir))) {
		if (!is_tmp_name(de->d_name, base))
			continue;
		int r = gc_one(pdfd, ppath, de->d_name, report, arg);
		if (r < 0) {
			closedir(dir);
			return r;
		}
		n += r;
	}
	closedir(dir);
	return n;
}

/* @path without trailing slashes ("/" stays), malloc'd. */
static char *strip_slashes(const char *path)
{
	char *p = strdup(path);
	size_t n = p ? strlen(p) : 0;
	while (n > 1 && p[n - 1] == '/')
		p[--n] = '\0';
	return p;
}

int img_gc(const char *path, bool inside, img_gc_report_fn report, void *arg)
{
	_cleanup_free_ char *p = strip_slashes(path);
	_cleanup_free_ char *d = p ? strdup(p) : NULL;
	_cleanup_free_ char *b = p ? strdup(p) : NULL;
	int n = 0, ret;

	if (!p || !d || !b)
		return -ENOMEM;
	const char *base = basename(b);
	if (strcmp(base, "/") && strcmp(base, ".") && strcmp(base, "..")) {
		ret = gc_in(dirname(d), base, report, arg);
		if (ret < 0 && ret != -ENOENT)
			return ret;
		n += MAX(ret, 0);
	}
	if (inside) {
		ret = gc_in(p, NULL, report, arg);
		if (ret < 0 && ret != -ENOENT && ret != -ENOTDIR)
			return ret;
		n += MAX(ret, 0);
	}
	return n;
}

static void begin_gc_report(void *arg, const char *tmp, enum img_gc_what what, uint64_t bytes,
			    int err, const char *foreign)
{
	(void)arg;
	if (what == IMG_GC_REMOVED)
		pr_info("images: removed %s (%llu bytes), left by a dump that is gone", tmp,
			(unsigned long long)bytes);
	else if (what == IMG_GC_LIVE)
		pr_debug("images: %s belongs to a dump in progress", tmp);
	else if (what == IMG_GC_FOREIGN)
		pr_warn("images: %s is stale but holds %s, which is not an image: left alone", tmp,
			foreign);
	else
		pr_warn("images: cannot remove the stale %s: %s", tmp, strerror(-err));
}

static int dir_begin(struct img_dir *d, const char *path, bool sync, bool keep_foreign)
{
	bool exists;
	int ret;

	memset(d, 0, sizeof(*d));
	d->dfd = -1;
	d->keep_foreign = keep_foreign;
	d->path = strip_slashes(path);
	if (!d->path)
		return -ENOMEM;
	ret = check_target_dir(d->path, &exists, keep_foreign);
	if (ret) {
		img_dir_close(d);
		return ret;
	}
	ret = img_gc(d->path, false, begin_gc_report, NULL);
	if (ret < 0)
		pr_debug("images: looking for stale temporary directories of %s: %s", d->path,
			 strerror(-ret));
	if (asprintf(&d->tmp, "%s" TMP_SUFFIX "%d", d->path, (int)getpid()) < 0) {
		d->tmp = NULL;
		img_dir_close(d);
		return -ENOMEM;
	}
	d->sync = sync;
	for (int attempt = 0;; attempt++) {
		struct stat st;
		if (mkdir(d->tmp, 0700) < 0) {
			ret = pr_perror("images: cannot create %s", d->tmp);
			free(d->tmp);
			d->tmp = NULL;
			img_dir_close(d);
			return ret;
		}
		d->dfd = open(d->tmp, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		if (d->dfd < 0) {
			ret = pr_perror("images: cannot open %s", d->tmp);
			img_dir_abort(d);
			return ret;
		}
		ret = tmp_lock(d->dfd, TMP_LOCK_WAIT_MS);
		if (ret) {
			pr_errno(ret, "images: cannot lock %s", d->tmp);
			img_dir_abort(d);
			return ret;
		}
		if (fstat(d->dfd, &st) < 0) {
			ret = pr_perror("images: stat %s", d->tmp);
			img_dir_abort(d);
			return ret;
		}
		if (st.st_nlink > 0)
			return 0;
		/* a collector found it unlocked and removed it: make it again */
		close(d->dfd);
		d->dfd = -1;
		if (attempt == 3) {
			pr_err("images: %s keeps being removed while it is made", d->tmp);
			free(d->tmp);
			d->tmp = NULL;
			img_dir_close(d);
			return -EAGAIN;
		}
	}
}

int img_dir_begin(struct img_dir *d, const char *path, bool sync)
{
	return dir_begin(d, path, sync, false);
}

int img_dir_begin_keep(struct img_dir *d, const char *path, bool sync)
{
	return dir_begin(d, path, sync, true);
}

/* The files of the old DIR (@old) that are not images move into the new one (@new). */
static void move_foreign_files(int old, int new)
{
	DIR *dir = fdopendir(dup(old));
	struct dirent *de;
	if (!dir)
		return;
	while ((de = readdir(dir))) {
		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, "..") ||
		    img_kind_by_filename(de->d_name) || !strcmp(de->d_name, IMG_PARENT_LINK))
			continue;
		if (renameat2(old, de->d_name, new, de->d_name, RENAME_NOREPLACE) < 0)
			pr_warn("images: cannot keep %s: %s", de->d_name, strerror(errno));
	}
	closedir(dir);
}

static void remove_dir_files(int dfd)
{
	DIR *dir = fdopendir(dup(dfd));
	struct dirent *de;
	if (!dir)
		return;
	while ((de = readdir(dir)))
		if (strcmp(de->d_name, ".") && strcmp(de->d_name, ".."))
			unlinkat(dfd, de->d_name, 0);
	closedir(dir);
}

void img_dir_abort(struct img_dir *d)
{
	if (d->tmp) {
		if (d->dfd >= 0)
			remove_dir_files(d->dfd);
		rmdir(d->tmp);
	}
	img_dir_close(d);
}

int img_dir_commit(struct img_dir *d)
{
	int ret = blob_writer_finish(d);
	if (ret)
		return ret;
	/* the remote image first: a dump whose server did not take it fails */
	if (d->remote && (ret = img_remote_commit(d->remote, d->dfd)))
		return ret;
	if (d->sync && fsync(d->dfd) < 0)
		return pr_perror("images: fsync %s", d->tmp);
	/* Replace an existing (empty or previous-image) directory atomically. */
	if (renameat2(AT_FDCWD, d->tmp, AT_FDCWD, d->path, RENAME_EXCHANGE) == 0) {
		_cleanup_close_ int old = open(d->tmp, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (old >= 0 && d->keep_foreign)
			move_foreign_files(old, d->dfd);
		if (old >= 0)
			remove_dir_files(old);
		if (rmdir(d->tmp) < 0)
			pr_warn("images: cannot remove old images in %s: %s", d->tmp,
				strerror(errno));
	} else if (errno == ENOENT) {
		if (rename(d->tmp, d->path) < 0)
			return pr_perror("images: rename %s -> %s", d->tmp, d->path);
	} else {
		return pr_perror("images: rename %s -> %s", d->tmp, d->path);
	}
	free(d->tmp);
	d->tmp = NULL;
	if (d->sync && (ret = fsync_dir_of(d->path)) < 0)
		return pr_errno(ret, "images: fsync parent of %s", d->path);
	return 0;
}

int img_dir_open(struct img_dir *d, const char *path)
{
	memset(d, 0, sizeof(*d));
	d->dfd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (d->dfd < 0)
		return pr_perror("images: cannot open directory %s", path);
	d->path = strdup(path);
	if (!d->path) {
		close(d->dfd);
		d->dfd = -1;
		return -ENOMEM;
	}
	return 0;
}

void img_dir_close(struct img_dir *d)
{
	blob_writer_free(d);
	img_remote_free(d->remote);
	d->remote = NULL;
	if (d->dfd >= 0)
		close(d->dfd);
	d->dfd = -1;
	free(d->path);
	free(d->tmp);
	d->path = d->tmp = NULL;
}

int img_write_msg(struct img_dir *d, enum img_kind kind, int pid, const ProtobufCMessage *msg)
{
	char name[64];
	struct img_hdr h;
	size_t len = protobuf_c_message_get_packed_size(msg);
	_cleanup_free_ uint8_t *buf = malloc(sizeof(h) + len);
	int ret;

	img_name(kind, pid, name, sizeof(name));
	if (len > IMG_MAX_META) {
		/* a reader would refuse it: fail the dump rather than leave it unrestorable */
		pr_err("images: %s would hold %zu bytes of metadata, over the %u byte bound",
		       name, len, IMG_MAX_META);
		return -EFBIG;
	}
	if (!buf)
		return -ENOMEM;
	protobuf_c_message_pack(msg, buf + sizeof(h));
	img_fill_hdr(&h, kind, len, XXH3_64bits(buf + sizeof(h), len));
	memcpy(buf, &h, sizeof(h));

	_cleanup_close_ int fd =
		openat(d->dfd, name, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd < 0)
		return pr_perror("images: create %s", name);
	ret = write_all(fd, buf, sizeof(h) + len);
	if (ret)
		return pr_errno(ret, "images: write %s", name);
	if (d->sync && fsync(fd) < 0)
		return pr_perror("images: fsync %s", name);
	return 0;
}

void *img_decode(const void *buf, size_t len, enum img_kind expect, const char *what)
{
	struct img_hdr h;
	const struct img_kind_desc *k = img_kind_get(expect);

	if (!k || !k->desc) {
		errno = EINVAL;
		return NULL;
	}
	if (len < sizeof(h)) {
		pr_err("%s: truncated image (%zu bytes, header needs %zu)", what, len, sizeof(h));
		errno = EBADMSG;
		return NULL;
	}
	memcpy(&h, buf, sizeof(h));
	int ret = img_check_hdr(&h, expect, len, what);
	if (ret) {
		errno = -ret;
		return NULL;
	}
	const uint8_t *payload = (const uint8_t *)buf + sizeof(h);
	if (XXH3_64bits(payload, h.payload_len) != h.payload_xxh64) {
		pr_err("%s: checksum mismatch (image corrupted)", what);
		errno = EBADMSG;
		return NULL;
	}
	void *msg = protobuf_c_message_unpack(k->desc, NULL, h.payload_len, payload);
	if (!msg) {
		pr_err("%s: malformed %s record", what, k->name);
		errno = EBADMSG;
		return NULL;
	}
	return msg;
}

void *img_read_msg(int dfd, enum img_kind kind, int pid)
{
	char name[64];
	size_t len;

	img_name(kind, pid, name, sizeof(name));
	_cleanup_free_ char *buf = read_file_at(dfd, name, IMG_MAX_META + sizeof(struct img_hdr),
						&len);
	if (!buf) {
		int e = errno;
		if (e == ENOENT)
			pr_err("images: %s is missing", name);
		else
			pr_err("images: cannot read %s: %s", name, strerror(e));
		errno = e;
		return NULL;
	}
	return img_decode(buf, len, kind, name);
}

int img_pages_create(struct img_dir *d, int pid, struct img_pages *p)
{
	char name[64];
	img_name(IMG_PAGES, pid, name, sizeof(name));
	p->len = 0;
	p->flags = 0;
	p->pid = pid;
	p->rem = d->remote;
	if (p->rem) {
		p->fd = -1;
		return img_remote_open(p->rem, name, &p->rid);
	}
	p->fd = openat(d->dfd, name, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (p->fd < 0)
		return pr_perror("images: create %s", name);
	return 0;
}

int img_pages_finish(struct img_dir *d, struct img_pages *p)
{
	char hdrpage[IMG_PAGES_HDR_SIZE] = { 0 };
	struct img_hdr h;
	int ret;

	img_fill_hdr(&h, IMG_PAGES, p->len, 0);
	if (p->flags & IMG_F_PAGES_ZSTD) {
		h.flags = IMG_F_PAGES_ZSTD;
		h.hdr_xxh64 = XXH3_64bits(&h, offsetof(struct img_hdr, hdr_xxh64));
		p->z.xxh64 = XXH3_64bits(&p->z, offsetof(struct img_pages_z, xxh64));
		memcpy(hdrpage + sizeof(h), &p->z, sizeof(p->z));
	}
	memcpy(hdrpage, &h, sizeof(h));
	if (p->rem) /* synced by the server before it confirms the commit */
		return img_remote_write(p->rem, p->rid, hdrpage, sizeof(hdrpage), 0);
	ret = pwrite_all(p->fd, hdrpage, sizeof(hdrpage), 0);
	if (ret)
		return pr_errno(ret, "images: write pages header");
	if (d->sync && fdatasync(p->fd) < 0)
		return pr_perror("images: fsync pages");
	close(p->fd);
	p->fd = -1;
	return 0;
}

int img_pages_discard(struct img_dir *d, struct img_pages *p)
{
	char name[64];
	if (p->rem)
		return img_remote_drop(p->rem, p->rid);
	if (p->fd >= 0)
		close(p->fd);
	p->fd = -1;
	img_name(IMG_PAGES, p->pid, name, sizeof(name));
	if (unlinkat(d->dfd, name, 0) < 0)
		return pr_perror("images: remove %s", name);
	return 0;
}

int img_pages_pwrite(const struct img_pages *p, const void *buf, size_t len, off_t off)
{
	if (p->rem)
		return img_remote_write(p->rem, p->rid, buf, len, (uint64_t)off);
	return pwrite_all(p->fd, buf, len, off);
}

int img_pages_open(int dfd, int pid, struct img_pages *p)
{
	char name[64];
	struct img_hdr h;
	struct stat st;
	int ret;

	p->rem = NULL;
	img_name(IMG_PAGES, pid, name, sizeof(name));
	p->fd = openat(dfd, name, O_RDONLY | O_CLOEXEC);
	if (p->fd < 0)
		return pr_perror("images: open %s", name);
	if (fstat(p->fd, &st) < 0) {
		ret = pr_perror("images: stat %s", name);
		goto err;
	}
	ret = (int)pread(p->fd, &h, sizeof(h), 0);
	if (ret != (int)sizeof(h)) {
		pr_err("images: %s: truncated header", name);
		ret = -EBADMSG;
		goto err;
	}
	ret = img_check_hdr(&h, IMG_PAGES, (uint64_t)st.st_size, name);
	if (ret)
		goto err;
	p->len = h.payload_len;
	p->flags = h.flags;
	if ((h.flags & IMG_F_PAGES_ZSTD) &&
	    (pread(p->fd, &p->z, sizeof(p->z), sizeof(h)) != (ssize_t)sizeof(p->z) ||
	     p->z.xxh64 != XXH3_64bits(&p->z, offsetof(struct img_pages_z, xxh64)))) {
		pr_err("images: %s: compressed pages header corrupted", name);
		ret = -EBADMSG;
		goto err;
	}
	return 0;
err:
	close(p->fd);
	p->fd = -1;
	return ret;
}
