// stasis-test: timeout=30
/* fanotify: a group reporting file ids (FAN_REPORT_FID: allowed without privilege) with
 * inode marks on a file and on a directory (events on its children) whose child has an
 * ignore mask; and, where the test may (CAP_SYS_ADMIN: not as non-root nor in a user
 * namespace), a mount namespace of its own with a tmpfs and a second group with a mount
 * mark and a filesystem mark on it, event fds opened O_RDONLY. After the restore: the
 * queues are empty, writing each marked file gives the event with the right mask and file
 * (the file handle, or the event's fd naming the file), the ignored child gives none. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/fanotify.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lib.h"

struct fev {
	uint64_t mask;
	char file[PATH_MAX]; /* the event fd's path, or "fid:HEX" */
};

static void hexname(char *out, size_t len, const unsigned char *b, unsigned int n)
{
	size_t o = 0;
	o += (size_t)snprintf(out, len, "fid:");
	for (unsigned int i = 0; i < n && o + 3 < len; i++)
		o += (size_t)snprintf(out + o, len - o, "%02x", b[i]);
}

/* Every event queued on @fd (never blocks). */
static int events(int fd, struct fev *out, int max)
{
	char buf[8192] __attribute__((aligned(8)));
	int n = 0, q = 0;
	while (!ioctl(fd, FIONREAD, &q) && q > 0) {
		ssize_t len = read(fd, buf, sizeof(buf));
		TEST_CHECK(len > 0, "read fanotify: %d", errno);
		struct fanotify_event_metadata *ev = (struct fanotify_event_metadata *)buf;
		for (; FAN_EVENT_OK(ev, len); ev = FAN_EVENT_NEXT(ev, len), n++) {
			if (n >= max)
				continue;
			out[n].mask = ev->mask;
			out[n].file[0] = '\0';
			if (ev->fd >= 0) {
				char link[64];
				snprintf(link, sizeof(link), "/proc/self/fd/%d", ev->fd);
				ssize_t l = readlink(link, out[n].file, sizeof(out[n].file) - 1);
				out[n].file[l > 0 ? l : 0] = '\0';
				close(ev->fd);
			} else if (ev->event_len > ev->metadata_len) {
				struct fanotify_event_info_fid *fid =
					(struct fanotify_event_info_fid *)(ev + 1);
				struct file_handle *fh = (struct file_handle *)fid->handle;
				hexname(out[n].file, sizeof(out[n].file), fh->f_handle,
					fh->handle_bytes);
			}
		}
	}
	return n;
}

static void fid_of(const char *path, char *out, size_t len)
{
	struct {
		struct file_handle fh;
		unsigned char b[128];
	} h = { .fh.handle_bytes = 128 };
	int mnt;
	TEST_CHECK(name_to_handle_at(AT_FDCWD, path, &h.fh, &mnt, 0) == 0,
		   "name_to_handle_at %s: %d", path, errno);
	hexname(out, len, h.fh.f_handle, h.fh.handle_bytes);
}

static void mark(int fd, unsigned int flags, uint64_t mask, const char *path)
{
	TEST_CHECK(fanotify_mark(fd, FAN_MARK_ADD | flags, mask, AT_FDCWD, path) == 0,
		   "fanotify_mark %#x %#llx %s: %d", flags, (unsigned long long)mask, path, errno);
}

/* exactly one event, of @mask, on @file */
static void expect1(int fd, uint64_t mask, const char *file, const char *what)
{
	struct fev e[8];
	int n = events(fd, e, 8);
	TEST_CHECK(n == 1, "%s: %d events (first mask %#llx), expected 1", what, n,
		   n ? (unsigned long long)e[0].mask : 0ULL);
	TEST_CHECK(e[0].mask == mask && !strcmp(e[0].file, file),
		   "%s: event %#llx on %s, expected %#llx on %s", what,
		   (unsigned long long)e[0].mask, e[0].file, (unsigned long long)mask, file);
}

int main(int argc, char **argv)
{
	test_init(argc, argv);
	char cwd[PATH_MAX - 64], fid1[300], fid3[300];
	struct fev e[16];
	TEST_CHECK(getcwd(cwd, sizeof(cwd)) != NULL, "getcwd: %d", errno);
	test_create("f1");
	TEST_CHECK(mkdir("d", 0755) == 0 || errno == EEXIST, "mkdir: %d", errno);
	test_create("d/f2");
	test_create("d/f3");
	fid_of("f1", fid1, sizeof(fid1));
	fid_of("d/f3", fid3, sizeof(fid3));

	int fid = fanotify_init(FAN_CLASS_NOTIF | FAN_REPORT_FID | FAN_NONBLOCK, O_RDONLY);
	if (fid < 0 && (errno == EPERM || errno == EINVAL || errno == ENOSYS)) {
		printf("SKIP: fanotify_init(FAN_REPORT_FID): %s\n", strerror(errno));
		return 77;
	}
	TEST_CHECK(fid >= 0, "fanotify_init: %d", errno);
	mark(fid, 0, FAN_MODIFY, "f1");
	mark(fid, 0, FAN_MODIFY | FAN_EVENT_ON_CHILD, "d");
	mark(fid, FAN_MARK_IGNORED_MASK | FAN_MARK_IGNORED_SURV_MODIFY, FAN_MODIFY, "d/f2");

	/* privileged: a mount and a filesystem mark on a tmpfs of a namespace of its own */
	int mnt = fanotify_init(FAN_CLASS_NOTIF | FAN_NONBLOCK, O_RDONLY | O_LARGEFILE);
	if (mnt >= 0) {
		TEST_CHECK(mkdir("m", 0755) == 0 || errno == EEXIST, "mkdir m: %d", errno);
		TEST_CHECK(unshare(CLONE_NEWNS) == 0 &&
				   mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) == 0 &&
				   mount("stasis-fan", "m", "tmpfs", 0, "size=1m") == 0,
			   "a tmpfs in a mount namespace of its own: %d", errno);
		test_create("m/a");
		mark(mnt, FAN_MARK_MOUNT, FAN_CLOSE_WRITE, "m");
		mark(mnt, FAN_MARK_FILESYSTEM, FAN_MODIFY, "m");
		dup2(mnt, 20);
		close(mnt);
		mnt = 20;
	}
	events(fid, e, 16);
	if (mnt >= 0)
		events(mnt, e, 16);

	test_ready();
	test_wait();
	if (test_sabotage())
		fanotify_mark(fid, FAN_MARK_REMOVE, FAN_MODIFY, AT_FDCWD, "f1");

	int q = -1;
	TEST_CHECK(ioctl(fid, FIONREAD, &q) == 0 && q == 0, "%d bytes queued after restore", q);
	TEST_CHECK(fcntl(fid, F_GETFL) & O_NONBLOCK, "O_NONBLOCK lost");
	test_append("f1");
	expect1(fid, FAN_MODIFY, fid1, "f1 written");
	test_append("d/f2");
	TEST_CHECK(events(fid, e, 16) == 0, "the ignored d/f2 gave an event (mask %#llx)",
		   (unsigned long long)e[0].mask);
	test_append("d/f3");
	expect1(fid, FAN_MODIFY, fid3, "d/f3 written");
	if (mnt >= 0) {
		char want[PATH_MAX];
		snprintf(want, sizeof(want), "%s/m/a", cwd);
		TEST_CHECK(ioctl(mnt, FIONREAD, &q) == 0 && q == 0, "%d bytes queued (mount)", q);
		test_append("m/a");
		int n = events(mnt, e, 16);
		uint64_t all = 0;
		for (int i = 0; i < n; i++) {
			TEST_CHECK(!strcmp(e[i].file, want), "mount event on %s, not %s", e[i].file,
				   want);
			all |= e[i].mask;
		}
		TEST_CHECK(all == (FAN_MODIFY | FAN_CLOSE_WRITE),
			   "m/a written: events %#llx, expected FAN_MODIFY | FAN_CLOSE_WRITE",
			   (unsigned long long)all);
		test_msg("mount and filesystem marks checked");
	}
	test_pass();
}
