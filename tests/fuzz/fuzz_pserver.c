/* libFuzzer target: the page server's side of one connection (src/image/pserver.c), fed
 * the input as what its client sends (a memfd in place of the socket: replies go nowhere).
 * Invariants: whatever the bytes, the server writes only inside its directory: a refused
 * or unfinished image leaves the directory empty (no temporary directory, no file); a
 * committed one is a directory of image files (and the parent link) there, removed
 * before the next input. An input whose first byte is 0xff is a read session instead
 * (`page-server --serve`: ps_serve_read_conn) over a socketpair, against a directory
 * holding an image, a parent link inside and one leading out: it must write nothing.
 * Built and run by tests/fuzz/build.sh. */
#include <dirent.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <pthread.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/log.h"
#include "image/img.h"
#include "image/remote.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char base[64], rbase[64];

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st, (void)flag, (void)ftw;
	remove(path);
	return 0;
}

/* The two directories go when the fuzzer exits (its normal end calls exit). */
static void rm_dirs(void)
{
	nftw(base, rm_one, 16, FTW_DEPTH | FTW_PHYS);
	nftw(rbase, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc, (void)argv;
	if (log_init("/dev/null", LOG_ERR))
		abort();
	strcpy(base, "/tmp/fuzz-pserver.XXXXXX");
	strcpy(rbase, "/tmp/fuzz-pserver-rd.XXXXXX");
	if (!mkdtemp(base) || !mkdtemp(rbase) || atexit(rm_dirs))
		abort();
	/* rbase/a/pages-1.img (a header and a page), rbase/b/parent -> ../a,
	 * rbase/c/parent -> / */
	char p[128];
	static char page[8192];
	snprintf(p, sizeof(p), "%s/a", rbase);
	if (mkdir(p, 0700))
		abort();
	snprintf(p, sizeof(p), "%s/a/pages-1.img", rbase);
	int fd = open(p, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd < 0 || write(fd, page, sizeof(page)) != (ssize_t)sizeof(page))
		abort();
	close(fd);
	snprintf(p, sizeof(p), "%s/b", rbase);
	if (mkdir(p, 0700))
		abort();
	snprintf(p, sizeof(p), "%s/b/parent", rbase);
	if (symlink("../a", p))
		abort();
	snprintf(p, sizeof(p), "%s/c", rbase);
	if (mkdir(p, 0700))
		abort();
	snprintf(p, sizeof(p), "%s/c/parent", rbase);
	if (symlink("/", p))
		abort();
	return 0;
}

static void *drain(void *arg)
{
	char buf[65536];
	int fd = *(int *)arg;
	while (read(fd, buf, sizeof(buf)) > 0)
		;
	return NULL;
}

static int entries(const char *path)
{
	DIR *d = opendir(path);
	struct dirent *de;
	int n = 0;
	if (!d)
		abort();
	while ((de = readdir(d)))
		n += strcmp(de->d_name, ".") && strcmp(de->d_name, "..");
	closedir(d);
	return n;
}

/* A read session fed @data; the server's answers drained. */
static void read_session(const uint8_t *data, size_t size)
{
	int sv[2];
	pthread_t t;
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv))
		abort();
	if (pthread_create(&t, NULL, drain, &sv[1]))
		abort();
	/* the input first (the server reads it as it comes), from a second thread's
	 * point of view: a blocking write that the server consumes */
	size_t off = 0;
	while (off < size) {
		ssize_t w = send(sv[1], data + off, size - off, MSG_NOSIGNAL | MSG_DONTWAIT);
		if (w <= 0)
			break; /* the buffer is full before the server runs: the rest is cut */
		off += (size_t)w;
	}
	shutdown(sv[1], SHUT_WR);
	(void)!ps_serve_read_conn(sv[0], rbase);
	close(sv[0]);
	pthread_join(t, NULL);
	close(sv[1]);
}

/* The entries of @path removed; 1 if there was any sub-directory (a stray). */
static int empty_dir(const char *path, bool keep_subdirs_fatal)
{
	DIR *d = opendir(path);
	struct dirent *de;
	int strays = 0;
	if (!d)
		abort();
	while ((de = readdir(d))) {
		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		char p[4096];
		snprintf(p, sizeof(p), "%s/%s", path, de->d_name);
		if (de->d_type == DT_DIR) {
			if (keep_subdirs_fatal)
				abort();
			strays |= empty_dir(p, true);
			if (rmdir(p))
				abort();
			continue;
		}
		if (!img_kind_by_filename(de->d_name) && strcmp(de->d_name, IMG_PARENT_LINK))
			abort(); /* a file the server must never have written */
		unlink(p);
		strays = 1;
	}
	closedir(d);
	return strays;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size && data[0] == 0xff) {
		read_session(data + 1, size - 1);
		char a[128];
		snprintf(a, sizeof(a), "%s/a", rbase);
		if (entries(rbase) != 3 || entries(a) != 1)
			abort(); /* a read session wrote something */
		return 0;
	}
	int fd = memfd_create("client", MFD_CLOEXEC);
	if (fd < 0 || (size && write(fd, data, size) != (ssize_t)size) || lseek(fd, 0, SEEK_SET))
		abort();
	uint32_t flags;
	char done[4096];
	int r = ps_serve_conn(fd, base, &flags, done, sizeof(done));
	close(fd);
	int left = empty_dir(base, false);
	if (r && left)
		abort(); /* a refused image left something behind */
	return 0;
}
