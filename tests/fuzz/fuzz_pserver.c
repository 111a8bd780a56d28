/* libFuzzer target: the page server's side of one connection (src/image/pserver.c), fed
 * the input as what its client sends (a memfd in place of the socket: replies go nowhere).
 * Invariants: whatever the bytes, the server writes only inside its directory: a refused
 * or unfinished image leaves the directory empty (no temporary directory, no file); a
 * committed one is a directory of image files (and the parent link) there, removed
 * before the next input. Built and run by tests/fuzz/build.sh. */
#include <dirent.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "core/log.h"
#include "image/img.h"
#include "image/remote.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char base[64];

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc, (void)argv;
	if (log_init("/dev/null", LOG_ERR))
		abort();
	strcpy(base, "/tmp/fuzz-pserver.XXXXXX");
	if (!mkdtemp(base))
		abort();
	return 0;
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
