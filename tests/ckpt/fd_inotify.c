// stasis-test: timeout=30
/* inotify: one instance (non-blocking) watching three files, a directory and a fifth file
 * at a high wd, with gaps (a watch removed, throw-away watches added and removed),
 * IN_ONESHOT and IN_MASK_ADD masks; a second one blocking and close-on-exec. After the
 * restore: the queues are empty, the flags kept, each wd is the same number and touching
 * each file gives the right event with the right wd and mask (the one-shot watch fires
 * once), the removed wd stays gone and a new watch gets the number after the highest. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lib.h"

struct ev {
	int wd;
	uint32_t mask;
	char name[32];
};

/* Every event queued on @fd (never blocks). */
static int events(int fd, struct ev *out, int max)
{
	char buf[4096] __attribute__((aligned(8)));
	int n = 0, q = 0;
	while (!ioctl(fd, FIONREAD, &q) && q > 0) {
		ssize_t len = read(fd, buf, sizeof(buf));
		TEST_CHECK(len > 0, "read inotify: %d", errno);
		for (ssize_t off = 0; off < len;) {
			struct inotify_event *e = (struct inotify_event *)(buf + off);
			if (n < max) {
				out[n].wd = e->wd;
				out[n].mask = e->mask;
				snprintf(out[n].name, sizeof(out[n].name), "%s", e->len ? e->name : "");
				n++;
			}
			off += (ssize_t)(sizeof(*e) + e->len);
		}
	}
	return n;
}

static int watch(int fd, const char *path, uint32_t mask)
{
	int wd = inotify_add_watch(fd, path, mask);
	TEST_CHECK(wd > 0, "inotify_add_watch %s: %d", path, errno);
	return wd;
}

/* exactly one event @wd/@mask (name @name) after the action that preceded */
static void expect1(int fd, int wd, uint32_t mask, const char *name, const char *what)
{
	struct ev e[8];
	int n = events(fd, e, 8);
	TEST_CHECK(n == 1, "%s: %d events (first wd %d mask %#x), expected 1", what, n,
		   n ? e[0].wd : 0, n ? e[0].mask : 0);
	TEST_CHECK(e[0].wd == wd && e[0].mask == mask && !strcmp(e[0].name, name),
		   "%s: event wd %d mask %#x name '%s', expected wd %d mask %#x name '%s'", what,
		   e[0].wd, e[0].mask, e[0].name, wd, mask, name);
}

int main(int argc, char **argv)
{
	test_init(argc, argv);
	struct ev e[64];
	test_create("f1");
	test_create("f2");
	test_create("f3");
	test_create("f4");
	test_create("f5");
	TEST_CHECK(mkdir("d", 0755) == 0 || errno == EEXIST, "mkdir: %d", errno);

	int in = inotify_init1(IN_NONBLOCK);
	int blk = inotify_init1(IN_CLOEXEC);
	TEST_CHECK(in >= 0 && blk >= 0, "inotify_init1: %d", errno);
	int w1 = watch(in, "f1", IN_MODIFY);
	int w2 = watch(in, "f2", IN_MODIFY | IN_ATTRIB);
	int wd = watch(in, "d", IN_CREATE | IN_DELETE);
	int w3 = watch(in, "f3", IN_MODIFY | IN_ONESHOT);
	int w4 = watch(in, "f4", IN_CLOSE_WRITE);
	TEST_CHECK(watch(in, "f4", IN_MODIFY | IN_MASK_ADD) == w4, "IN_MASK_ADD changed the wd");
	TEST_CHECK(inotify_rm_watch(in, w2) == 0, "inotify_rm_watch: %d", errno);
	for (int i = 0; i < 10; i++) /* a gap of ten numbers */
		TEST_CHECK(inotify_rm_watch(in, watch(in, "f5", IN_ATTRIB)) == 0, "rm: %d", errno);
	int w5 = watch(in, "f5", IN_ATTRIB);
	int b1 = watch(blk, "f1", IN_OPEN);
	events(in, e, 64); /* the IN_IGNORED of the removals */
	TEST_CHECK(w1 == 1 && w2 == 2 && wd == 3 && w3 == 4 && w4 == 5 && w5 == 16 && b1 == 1,
		   "unexpected wds %d %d %d %d %d %d %d", w1, w2, wd, w3, w4, w5, b1);

	test_ready();
	test_wait();
	if (test_sabotage())
		inotify_rm_watch(in, w1);

	int q = -1;
	TEST_CHECK(ioctl(in, FIONREAD, &q) == 0 && q == 0, "%d bytes queued after restore", q);
	TEST_CHECK(ioctl(blk, FIONREAD, &q) == 0 && q == 0, "%d bytes queued (blocking one)", q);
	TEST_CHECK(fcntl(in, F_GETFL) & O_NONBLOCK, "O_NONBLOCK lost");
	TEST_CHECK(!(fcntl(blk, F_GETFL) & O_NONBLOCK), "O_NONBLOCK gained");
	TEST_CHECK(fcntl(blk, F_GETFD) == FD_CLOEXEC && fcntl(in, F_GETFD) == 0, "FD_CLOEXEC");

	test_append("f1");
	expect1(in, w1, IN_MODIFY, "", "f1 written");
	test_append("f2");
	TEST_CHECK(chmod("f2", 0600) == 0, "chmod: %d", errno);
	TEST_CHECK(events(in, e, 64) == 0, "the removed watch of f2 gave events");
	test_create("d/new");
	expect1(in, wd, IN_CREATE, "new", "d/new created");
	test_append("f3");
	TEST_CHECK(events(in, e, 64) == 2 && e[0].wd == w3 && e[0].mask == IN_MODIFY &&
			   e[1].wd == w3 && e[1].mask == IN_IGNORED,
		   "one-shot f3: wd %d mask %#x, then wd %d mask %#x", e[0].wd, e[0].mask, e[1].wd,
		   e[1].mask);
	test_append("f3");
	TEST_CHECK(events(in, e, 64) == 0, "the one-shot watch fired twice");
	test_append("f4");
	TEST_CHECK(events(in, e, 64) == 2 && e[0].wd == w4 && e[0].mask == IN_MODIFY &&
			   e[1].wd == w4 && e[1].mask == IN_CLOSE_WRITE,
		   "f4: wd %d mask %#x, then wd %d mask %#x", e[0].wd, e[0].mask, e[1].wd, e[1].mask);
	TEST_CHECK(chmod("f5", 0600) == 0, "chmod: %d", errno);
	expect1(in, w5, IN_ATTRIB, "", "f5 chmod");
	TEST_CHECK(inotify_rm_watch(in, w2) < 0 && errno == EINVAL, "wd %d came back", w2);
	int w6 = watch(in, "f2", IN_MODIFY);
	TEST_CHECK(w6 == w5 + 1, "a new watch got wd %d, not %d", w6, w5 + 1);
	int fd = open("f1", O_RDONLY);
	TEST_CHECK(fd >= 0, "open f1: %d", errno);
	close(fd);
	struct inotify_event ev = { 0 };
	TEST_CHECK(ioctl(blk, FIONREAD, &q) == 0 && q > 0, "blocking inotify: no event");
	TEST_CHECK(read(blk, &ev, sizeof(ev)) == (ssize_t)sizeof(ev) && ev.wd == b1 &&
			   ev.mask == IN_OPEN,
		   "blocking inotify: wd %d mask %#x", ev.wd, ev.mask);
	test_pass();
}
