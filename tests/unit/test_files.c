/* files_dump / files_restore_child on a real child.
 *
 * A child sets up a known fd table and stops itself; the parent dumps it with
 * files_dump() and checks the message (kinds, offsets, sharing, pipe data, and that the
 * pipe still holds its data afterwards). A second child then runs files_restore_child()
 * on that message and checks its own fd table, reporting through its exit status and
 * a report fd above svc_lo. */
#include <fcntl.h>
#include <linux/kcmp.h>
#include <netinet/in.h>
#include <netinet/udp.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/inotify.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "core/log.h"
#include "sys/syscalls.h"
#include "files/files.h"
#include "unit.h"

#define PIPE_SZ (128 << 10)
#define PIPE_BYTES 100000
#define REG_POS 42
#define SVC_LO 100
#define REPORT_FD 101

/* The child's fd layout. */
enum {
	FD_NULL = 0,   /* /dev/null O_RDONLY */
	FD_EXT = 1,    /* write end of a pipe whose read end stays in the parent: external */
	/* 2 closed */
	FD_REG = 3,    /* O_RDWR at REG_POS, cloexec */
	FD_APP = 4,    /* O_WRONLY|O_APPEND */
	FD_APPDUP = 5, /* dup(FD_APP) */
	FD_PR = 6,     /* pipe read end, O_NONBLOCK, holds PIPE_BYTES */
	FD_PW = 7,     /* pipe write end */
	FD_REGDUP = 9, /* F_DUPFD_CLOEXEC of FD_REG */
	FD_DIR = 10,   /* a directory */
	FD_FIFO = 11,  /* a named FIFO, O_RDONLY, blocking, no writer */
};

static char tmp_path[] = "/tmp/stasis-test-files-XXXXXX";
static char tmp_dir[] = "/tmp/stasis-test-files-dir-XXXXXX";
static char fifo_path[sizeof(tmp_dir) + 8];

static uint8_t pattern(size_t i)
{
	return (uint8_t)(i * 7 + i / 251);
}

/* waitpid with a deadline; kills the child if it does not change state in time. */
static int wait_bounded(pid_t pid, int *status, int options, int timeout_ms)
{
	for (int waited = 0;; waited += 10) {
		pid_t r = waitpid(pid, status, options | WNOHANG);
		if (r == pid)
			return 0;
		if (r < 0 || waited >= timeout_ms) {
			kill(pid, SIGKILL);
			waitpid(pid, status, 0);
			return -1;
		}
		struct timespec ts = {0, 10 * 1000 * 1000};
		nanosleep(&ts, NULL);
	}
}

static int move_to(int fd, int target)
{
	if (fd == target)
		return 0;
	if (dup2(fd, target) < 0)
		return -1;
	close(fd);
	return 0;
}

static int kcmp_file(pid_t pid, int a, int b)
{
	return (int)syscall(SYS_kcmp, pid, pid, KCMP_FILE, a, b);
}

/* Child to be dumped: exits with 2 on a setup failure. */
static void dumpee(int ext_w)
{
	static uint8_t buf[PIPE_BYTES];
	int p[2];

	if (move_to(ext_w, 200))
		_exit(2);
	if (syscall(SYS_close_range, 0, 199, 0) || syscall(SYS_close_range, 201, ~0U, 0))
		_exit(2);
	if (move_to(200, FD_EXT))
		_exit(2);
	if (open("/dev/null", O_RDONLY) != FD_NULL)
		_exit(2);
	int fd = open(tmp_path, O_RDWR | O_CLOEXEC);
	if (fd < 0 || dup3(fd, FD_REG, O_CLOEXEC) != FD_REG || close(fd) ||
	    lseek(FD_REG, REG_POS, SEEK_SET) != REG_POS)
		_exit(2);
	fd = open(tmp_path, O_WRONLY | O_APPEND);
	if (fd < 0 || move_to(fd, FD_APP) || dup2(FD_APP, FD_APPDUP) != FD_APPDUP)
		_exit(2);
	if (pipe(p) || move_to(p[0], 20) || move_to(p[1], 21) || move_to(20, FD_PR) ||
	    move_to(21, FD_PW))
		_exit(2);
	if (fcntl(FD_PW, F_SETPIPE_SZ, PIPE_SZ) < PIPE_SZ)
		_exit(2);
	for (size_t i = 0; i < PIPE_BYTES; i++)
		buf[i] = pattern(i);
	if (write(FD_PW, buf, PIPE_BYTES) != PIPE_BYTES)
		_exit(2);
	if (fcntl(FD_PR, F_SETFL, O_NONBLOCK))
		_exit(2);
	if (fcntl(FD_REG, F_DUPFD_CLOEXEC, FD_REGDUP) != FD_REGDUP)
		_exit(2);
	fd = open(tmp_dir, O_RDONLY | O_DIRECTORY);
	if (fd < 0 || move_to(fd, FD_DIR))
		_exit(2);
	fd = open(fifo_path, O_RDONLY | O_NONBLOCK);
	if (fd < 0 || move_to(fd, FD_FIFO) || fcntl(FD_FIFO, F_SETFL, 0))
		_exit(2);
	raise(SIGSTOP);
	_exit(0);
}

/* Never NULL: a missing fd yields a placeholder with fd -1 (checked by has_fd). */
static Fd *find_fd(Files *f, int n)
{
	static Fd missing = FD__INIT;
	for (size_t i = 0; i < f->n_fds; i++)
		if (f->fds[i]->fd == n)
			return f->fds[i];
	missing.fd = -1;
	missing.file_id = UINT32_MAX;
	return &missing;
}

static bool has_fd(Files *f, int n)
{
	return find_fd(f, n)->fd == n;
}

static FileDesc *find_desc(Files *f, int n)
{
	Fd *fd = find_fd(f, n);
	for (size_t i = 0; i < f->n_files; i++)
		if (f->files[i]->id == fd->file_id)
			return f->files[i];
	return NULL;
}

static void check_dump(Files *f, const struct stat *reg)
{
	CHECK_EQ(f->n_fds, (size_t)10);
	CHECK(!has_fd(f, 2));
	FileDesc *d;

	d = find_desc(f, FD_NULL);
	CHECK(d && d->kind == FILE_KIND__FILE_CHR && d->has_rdev &&
	      d->rdev == makedev(1, 3) && (d->flags & O_ACCMODE) == O_RDONLY);
	CHECK(d && d->path && !strcmp(d->path, "/dev/null"));
	d = find_desc(f, FD_EXT);
	CHECK(d && d->kind == FILE_KIND__FILE_EXTERNAL && (d->flags & O_ACCMODE) == O_WRONLY);
	CHECK(d && d->link && !strncmp(d->link, "pipe:[", 6));

	d = find_desc(f, FD_REG);
	CHECK(d && d->kind == FILE_KIND__FILE_REG && d->has_pos && d->pos == REG_POS);
	CHECK(d && (d->flags & O_ACCMODE) == O_RDWR && !(d->flags & O_CLOEXEC));
	CHECK(d && d->path && !strcmp(d->path, tmp_path));
	CHECK(d && d->ino == reg->st_ino && d->dev == reg->st_dev && d->size == 100);
	CHECK(has_fd(f, FD_REG) && find_fd(f, FD_REG)->cloexec);
	CHECK(has_fd(f, FD_REGDUP) && find_fd(f, FD_REGDUP)->cloexec &&
	      find_fd(f, FD_REGDUP)->file_id == find_fd(f, FD_REG)->file_id);

	d = find_desc(f, FD_APP);
	CHECK(d && d->kind == FILE_KIND__FILE_REG && (d->flags & O_APPEND) &&
	      (d->flags & O_ACCMODE) == O_WRONLY);
	CHECK(has_fd(f, FD_APP) && has_fd(f, FD_APPDUP) && !find_fd(f, FD_APP)->cloexec &&
	      !find_fd(f, FD_APPDUP)->cloexec &&
	      find_fd(f, FD_APPDUP)->file_id == find_fd(f, FD_APP)->file_id);
	CHECK(find_fd(f, FD_APP)->file_id != find_fd(f, FD_REG)->file_id);

	FileDesc *r = find_desc(f, FD_PR), *w = find_desc(f, FD_PW);
	CHECK(r && w && r != w && r->kind == FILE_KIND__FILE_PIPE &&
	      w->kind == FILE_KIND__FILE_PIPE && r->pipe && w->pipe);
	if (r && w && r->pipe && w->pipe) {
		CHECK_EQ(r->pipe->ino, w->pipe->ino);
		CHECK_EQ(r->pipe->size, (uint32_t)PIPE_SZ);
		CHECK_EQ(w->pipe->size, (uint32_t)PIPE_SZ);
		CHECK(r->flags & O_NONBLOCK);
		CHECK(!w->pipe->has_data);
		CHECK(r->pipe->has_data && r->pipe->data.len == PIPE_BYTES);
		bool same = r->pipe->data.len == PIPE_BYTES;
		for (size_t i = 0; same && i < PIPE_BYTES; i++)
			same = r->pipe->data.data[i] == pattern(i);
		CHECK(same);
	}
	d = find_desc(f, FD_DIR);
	CHECK(d && d->kind == FILE_KIND__FILE_DIR && d->path && !strcmp(d->path, tmp_dir));
	d = find_desc(f, FD_FIFO);
	CHECK(d && d->kind == FILE_KIND__FILE_FIFO && d->path && !strcmp(d->path, fifo_path));
	CHECK(d && (d->flags & O_ACCMODE) == O_RDONLY && !(d->flags & O_NONBLOCK));

	/* ids are unique */
	for (size_t i = 0; i < f->n_files; i++)
		for (size_t j = 0; j < i; j++)
			CHECK(f->files[i]->id != f->files[j]->id);
}

#define RCHECK(cond)                                                                        \
	do {                                                                                \
		if (!(cond)) {                                                              \
			dprintf(REPORT_FD, "restored child: CHECK(%s) failed (line %d)\n",  \
				#cond, __LINE__);                                           \
			fails++;                                                            \
		}                                                                           \
	} while (0)

static int fl(int fd) { return fcntl(fd, F_GETFL); }
static int fdfl(int fd) { return fcntl(fd, F_GETFD); }

/* In the restoring child: restore, then check our own table. Exit status: failures. */
static void restoree(Files *f, const struct stat *out1, bool have_out1, bool no_stdout)
{
	static uint8_t buf[PIPE_BYTES + 1];
	int fails = 0;

	if (dup2(2, REPORT_FD) != REPORT_FD)
		_exit(100);
	/* junk that must disappear, and a service fd that must survive */
	if (dup2(REPORT_FD, 8) != 8 || dup2(REPORT_FD, 50) != 50 || dup2(REPORT_FD, SVC_LO) != SVC_LO)
		_exit(100);
	if (no_stdout) {
		close(1);
		have_out1 = false;  /* files_restore_child warns that /dev/null replaces it */
	}
	struct rst_ctx c = {.pid = getpid(), .files = f, .svc_lo = SVC_LO,
			    .map_fd_base = -1, .exe_fd = -1};
	int ret = files_restore_child(&c);
	if (ret) {
		dprintf(REPORT_FD, "files_restore_child: %d (%s)\n", ret, log_first_error());
		_exit(101);
	}
	RCHECK((fl(FD_NULL) & O_ACCMODE) == O_RDONLY);
	struct stat st;
	RCHECK(fstat(FD_NULL, &st) == 0 && S_ISCHR(st.st_mode) && st.st_rdev == makedev(1, 3));
	/* external: inherited from "stasis" (our parent's fd 1), or /dev/null if it had none */
	RCHECK(fstat(FD_EXT, &st) == 0);
	if (have_out1)
		RCHECK(st.st_dev == out1->st_dev && st.st_ino == out1->st_ino);
	if (no_stdout)
		RCHECK(S_ISCHR(st.st_mode) && st.st_rdev == makedev(1, 3) &&
		       (fl(FD_EXT) & O_ACCMODE) == O_WRONLY);
	RCHECK(fdfl(2) < 0 && errno == EBADF);
	RCHECK(fdfl(8) < 0 && errno == EBADF);
	RCHECK(fdfl(50) < 0 && errno == EBADF);
	RCHECK(fdfl(SVC_LO) >= 0);
	for (int fd = FD_FIFO + 1; fd < SVC_LO; fd++)
		RCHECK(fdfl(fd) < 0);

	RCHECK(lseek(FD_REG, 0, SEEK_CUR) == REG_POS);
	RCHECK((fl(FD_REG) & O_ACCMODE) == O_RDWR && (fdfl(FD_REG) & FD_CLOEXEC));
	RCHECK(kcmp_file(getpid(), FD_REG, FD_REGDUP) == 0 && (fdfl(FD_REGDUP) & FD_CLOEXEC));
	RCHECK((fl(FD_APP) & O_APPEND) && (fl(FD_APP) & O_ACCMODE) == O_WRONLY);
	RCHECK(!(fdfl(FD_APP) & FD_CLOEXEC) && !(fdfl(FD_APPDUP) & FD_CLOEXEC));
	RCHECK(kcmp_file(getpid(), FD_APP, FD_APPDUP) == 0);
	RCHECK(kcmp_file(getpid(), FD_APP, FD_REG) != 0);
	RCHECK(fstat(FD_DIR, &st) == 0 && S_ISDIR(st.st_mode));
	RCHECK(fstat(FD_FIFO, &st) == 0 && S_ISFIFO(st.st_mode));
	RCHECK((fl(FD_FIFO) & O_ACCMODE) == O_RDONLY && !(fl(FD_FIFO) & O_NONBLOCK));

	RCHECK((fl(FD_PR) & O_NONBLOCK) && (fl(FD_PR) & O_ACCMODE) == O_RDONLY);
	RCHECK(!(fl(FD_PW) & O_NONBLOCK) && (fl(FD_PW) & O_ACCMODE) == O_WRONLY);
	RCHECK(fcntl(FD_PR, F_GETPIPE_SZ) == PIPE_SZ);
	struct stat a, b;
	RCHECK(fstat(FD_PR, &a) == 0 && fstat(FD_PW, &b) == 0 && a.st_ino == b.st_ino);
	size_t got = 0;
	for (;;) {
		ssize_t n = read(FD_PR, buf + got, sizeof(buf) - got);
		if (n <= 0)
			break;
		got += (size_t)n;
	}
	RCHECK(got == PIPE_BYTES);
	bool same = got == PIPE_BYTES;
	for (size_t i = 0; same && i < got; i++)
		same = buf[i] == pattern(i);
	RCHECK(same);
	_exit(fails > 99 ? 99 : fails);
}

static void test_dump_restore(void)
{
	int fd = mkstemp(tmp_path);
	if (fd < 0 || !mkdtemp(tmp_dir))
		UNIT_SKIP("cannot create temporary files: %s", strerror(errno));
	snprintf(fifo_path, sizeof(fifo_path), "%s/fifo", tmp_dir);
	if (mkfifo(fifo_path, 0600))
		UNIT_SKIP("mkfifo: %s", strerror(errno));
	static char hundred[100];
	if (write(fd, hundred, sizeof(hundred)) != (ssize_t)sizeof(hundred))
		UNIT_SKIP("cannot write a temporary file");
	struct stat reg;
	CHECK(fstat(fd, &reg) == 0);
	close(fd);

	int ext[2];
	CHECK(pipe2(ext, O_CLOEXEC) == 0);
	pid_t pid = fork();
	if (pid < 0)
		UNIT_SKIP("fork: %s", strerror(errno));
	if (pid == 0)
		dumpee(ext[1]);
	close(ext[1]);
	int status;
	if (wait_bounded(pid, &status, WUNTRACED, 10000) || !WIFSTOPPED(status)) {
		UNIT_FAIL("dumpee did not stop (status 0x%x)", status);
		goto out;
	}

	struct dump_ctx c = {.pid = pid, .ospid = pid};
	c.pidfd = sys_pidfd_open(pid, 0);
	char path[64];
	snprintf(path, sizeof(path), "/proc/%d", pid);
	c.procfd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (c.pidfd < 0 || c.procfd < 0) {
		kill(pid, SIGKILL);
		waitpid(pid, NULL, 0);
		UNIT_SKIP("pidfd_open or /proc: %s", strerror(errno));
	}
	int ret = files_dump(&c);
	CHECK_EQ(ret, 0);
	if (ret || !c.files) {
		kill(pid, SIGKILL);
		waitpid(pid, NULL, 0);
		goto out;
	}
	check_dump(c.files, &reg);

	/* non-consuming: the pipe still holds every byte */
	int dup = sys_pidfd_getfd(c.pidfd, FD_PR, 0);
	int queued = -1;
	CHECK(dup >= 0 && ioctl(dup, FIONREAD, &queued) == 0);
	CHECK_EQ(queued, PIPE_BYTES);
	if (dup >= 0)
		close(dup);
	close(c.pidfd);
	close(c.procfd);
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);

	/* the image survives an encode/decode round trip */
	size_t len = files__get_packed_size(c.files);
	uint8_t *packed = malloc(len ? len : 1);
	CHECK(packed != NULL);
	files__pack(c.files, packed);
	Files *f = files__unpack(NULL, len, packed);
	free(packed);
	CHECK(f != NULL);
	protobuf_c_message_free_unpacked(&c.files->base, NULL);
	if (!f)
		goto out;

	struct stat out1;
	bool have_out1 = fstat(1, &out1) == 0;
	for (int no_stdout = 0; no_stdout <= 1; no_stdout++) {
		fflush(stdout);
		fflush(stderr);
		pid_t r = fork();
		if (r < 0) {
			UNIT_FAIL("fork: %s", strerror(errno));
		} else if (r == 0) {
			restoree(f, &out1, have_out1, no_stdout);
		} else if (wait_bounded(r, &status, 0, 10000)) {
			UNIT_FAIL("restoring child timed out");
		} else {
			CHECK(WIFEXITED(status));
			CHECK_EQ(WEXITSTATUS(status), 0);
		}
	}
	protobuf_c_message_free_unpacked(&f->base, NULL);
out:
	close(ext[0]);
	unlink(tmp_path);
	unlink(fifo_path);
	rmdir(tmp_dir);
}

static void test_max_fd(void)
{
	Files f = FILES__INIT;
	CHECK_EQ(files_max_fd(NULL), -1);
	CHECK_EQ(files_max_fd(&f), -1);
	Fd a = FD__INIT, b = FD__INIT;
	Fd *fds[] = {&a, &b};
	a.fd = 7;
	b.fd = 3;
	f.fds = fds;
	f.n_fds = 2;
	CHECK_EQ(files_max_fd(&f), 7);
}

/* Datagram sockets (src/net/sk_udp.c, sk_netlink.c, sk_packet.c): hostile socket data,
 * each refused by the validation (-EINVAL) before any socket is made. */
static int bad_dgram_images(struct rst_ctx *c, FileDesc *d)
{
	static uint8_t big[70000];
	uint8_t a4[4] = { 127, 0, 0, 1 }, a6[16] = { 0 };
	int bad = 0;

	d->memfd = NULL;
	d->kind = FILE_KIND__FILE_INET_DGRAM;   /* no socket data */
	bad += files_restore_child(c) != -EINVAL;
	InetDgramSk u = INET_DGRAM_SK__INIT;
	d->inet_dgram = &u;
	u.family = AF_INET;
	u.type = SOCK_STREAM;                    /* not a datagram socket */
	u.protocol = IPPROTO_UDP;
	bad += files_restore_child(c) != -EINVAL;
	u.type = SOCK_DGRAM;
	InetAddr b = INET_ADDR__INIT, src = INET_ADDR__INIT, dst = INET_ADDR__INIT;
	b.addr.len = 16;                         /* an IPv6 address on an IPv4 socket */
	b.addr.data = a6;
	b.port = 5000;
	u.bound = &b;
	bad += files_restore_child(c) != -EINVAL;
	b.addr.len = 4;
	b.addr.data = a4;
	b.port = 70000;                          /* a port out of range */
	bad += files_restore_child(c) != -EINVAL;
	b.port = 5000;
	src.addr.len = dst.addr.len = 4;
	src.addr.data = dst.addr.data = a4;
	src.port = 6000;
	dst.port = 5000;
	DgramMsg m = DGRAM_MSG__INIT;
	DgramMsg *ms[] = { &m };
	m.src = &src;
	m.dst = &dst;
	m.data.data = big;
	m.data.len = sizeof(big);                /* longer than a datagram can be */
	u.queue = ms;
	u.n_queue = 1;
	bad += files_restore_child(c) != -EINVAL;
	m.data.len = 10;
	src.addr.len = 16;                       /* a source of the wrong family */
	src.addr.data = a6;
	bad += files_restore_child(c) != -EINVAL;
	src.addr.len = 4;
	src.addr.data = a4;
	dst.port = 5001;                         /* sent to another port than the bound one */
	bad += files_restore_child(c) != -EINVAL;
	dst.port = 5000;
	u.protocol = IPPROTO_ICMP;               /* a queue on a ping socket */
	bad += files_restore_child(c) != -EINVAL;
	d->inet_dgram = NULL;
	d->kind = FILE_KIND__FILE_NETLINK;
	NetlinkSk n = NETLINK_SK__INIT;
	d->netlink = &n;
	n.type = SOCK_STREAM;                    /* not a netlink type */
	bad += files_restore_child(c) != -EINVAL;
	n.type = SOCK_RAW;
	n.protocol = 4000;                       /* no such protocol */
	bad += files_restore_child(c) != -EINVAL;
	d->netlink = NULL;
	d->kind = FILE_KIND__FILE_PACKET;
	PacketSk k = PACKET_SK__INIT;
	d->packet = &k;
	k.type = SOCK_RAW;
	k.protocol = 0x12345;                    /* not a 16-bit protocol */
	bad += files_restore_child(c) != -EINVAL;
	d->packet = NULL;
	return bad;
}

/* A hostile image is refused before anything is touched. */
static void test_bad_image(void)
{
	fflush(stdout);
	fflush(stderr);
	pid_t pid = fork();
	if (pid == 0) {
		if (log_init("/dev/null", LOG_ERR))  /* the expected errors stay quiet */
			_exit(90);
		FileDesc d = FILE_DESC__INIT;
		FileDesc *ds[] = {&d};
		Fd a = FD__INIT;
		Fd *fds[] = {&a};
		Files f = FILES__INIT;
		f.files = ds;
		f.n_files = 1;
		f.fds = fds;
		f.n_fds = 1;
		d.id = 1;
		d.kind = FILE_KIND__FILE_REG;  /* no path */
		a.fd = 3;
		a.file_id = 1;
		struct rst_ctx c = {.files = &f, .svc_lo = 100};
		int bad = 0;
		bad += files_restore_child(&c) != -EINVAL;
		d.path = (char *)"/dev/null";
		a.file_id = 2;  /* unknown id */
		bad += files_restore_child(&c) != -EINVAL;
		a.file_id = 1;
		a.fd = 100;     /* collides with service fds */
		bad += files_restore_child(&c) != -EINVAL;
		d.kind = FILE_KIND__FILE_PIPE;  /* pipe without data */
		a.fd = 3;
		bad += files_restore_child(&c) != -EINVAL;
		d.kind = FILE_KIND__FILE_UNIX_SK;  /* socket without socket data */
		bad += files_restore_child(&c) != -EINVAL;
		UnixSk u = UNIX_SK__INIT;
		d.unix_sk = &u;
		u.ino = 10;
		u.peer_ino = 11;
		u.type = 77;                        /* unknown type */
		bad += files_restore_child(&c) != -EINVAL;
		u.type = SOCK_STREAM;
		ProtobufCBinaryData m = {.len = 1, .data = (uint8_t *)"x"};
		u.msgs = &m;                        /* messages on a stream */
		u.n_msgs = 1;
		bad += files_restore_child(&c) != -EINVAL;
		u.n_msgs = 0;                       /* no other end in the task */
		bad += files_restore_child(&c) != -EINVAL;
		d.kind = FILE_KIND__FILE_REG;       /* unlinked file, memfd: contents */
		d.unix_sk = NULL;
		d.path = (char *)"/tmp/gone";
		UnlinkedFile ul = UNLINKED_FILE__INIT;
		d.unlinked = &ul;                   /* no contents */
		bad += files_restore_child(&c) != -EINVAL;
		BlobRef br = BLOB_REF__INIT;
		br.size = 5;
		ul.blob = &br;
		d.has_size = true;
		d.size = 4;                         /* contents of another size */
		bad += files_restore_child(&c) != -EINVAL;
		d.size = 5;                         /* the image has no blobs.img */
		bad += files_restore_child(&c) != -ENOENT;
		d.unlinked = NULL;
		MemfdData md = MEMFD_DATA__INIT;
		md.name = (char *)"m";
		d.memfd = &md;                      /* no contents */
		bad += files_restore_child(&c) != -EINVAL;
		md.blob = &br;                      /* the image has no blobs.img */
		bad += files_restore_child(&c) != -ENOENT;
		d.memfd = NULL;
		d.kind = FILE_KIND__FILE_PROCPID;   /* a /proc/PID file: no data */
		d.path = (char *)"/proc/42/status";
		bad += files_restore_child(&c) != -EINVAL;
		ProcPidData pp = PROC_PID_DATA__INIT;
		int32_t ns[1] = { 43 };
		pp.nspid = ns;
		pp.n_nspid = 1;
		pp.root_len = 5;
		d.procpid = &pp;                    /* N is not nspid[0] */
		bad += files_restore_child(&c) != -EINVAL;
		pp.root_len = 15;                   /* its root beyond the path */
		ns[0] = 42;
		bad += files_restore_child(&c) != -EINVAL;
		pp.root_len = 5;
		d.flags = O_CREAT;                  /* a flag that would make a file */
		bad += files_restore_child(&c) != -EINVAL;
		d.flags = 0;
		pp.has_target = true;               /* a target that is no pid */
		bad += files_restore_child(&c) != -EINVAL;
		d.procpid = NULL;
		bad += bad_dgram_images(&c, &d);
		bad += fcntl(1, F_GETFD) < 0;   /* nothing was closed */
		_exit(bad);
	}
	int status;
	CHECK(pid > 0 && wait_bounded(pid, &status, 0, 10000) == 0);
	CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
}

/* Child for test_unsupported: fd 3 is a corked UDP socket with data pending, an inotify
 * fd watching a deleted file, a deleted FIFO, a unix socket bound to a relative path, one end of a socketpair
 * whose other end is in the parent (3 and 4: files_dump accepts it, files_merge_tree
 * refuses it), a unix socket with SO_PASSCRED and a message queued, a UDP socket of the
 * net namespace the
 * task left (6: refused by files_merge_tree), a netlink socket with a reply queued or a
 * UDP socket with a pending error. */
static int sv_parent = -1, sv_other = -1;

static void unsupported_child(int which)
{
	int fd = -1;
	char path[] = "/tmp/stasis-test-files-del-XXXXXX";

	switch (which) {
	case 0: {
		/* a UDP socket with corked data: it cannot be read */
		struct sockaddr_in to = { .sin_family = AF_INET, .sin_port = htons(9),
					  .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
		int one = 1;
		fd = socket(AF_INET, SOCK_DGRAM, 0);
		if (fd < 0 || setsockopt(fd, IPPROTO_UDP, UDP_CORK, &one, sizeof(one)) ||
		    connect(fd, (struct sockaddr *)&to, sizeof(to)) || send(fd, "x", 1, 0) != 1)
			_exit(91);
		break;
	}
	case 1: { /* an inotify watching a file deleted since (no path reaches it; the
		   * file stays open, else its watch would go with it) */
		char f[] = "/tmp/stasis-test-files-ino-XXXXXX";
		int tmp = mkstemp(f);
		fd = inotify_init1(0);
		if (tmp < 0 || fd < 0 || inotify_add_watch(fd, f, IN_MODIFY) != 1 || unlink(f))
			_exit(95);
		break;
	}
	case 3:
		fd = socket(AF_UNIX, SOCK_STREAM, 0);
		if (fd >= 0) {  /* bound to a relative path (in /tmp) */
			struct sockaddr_un sa = {.sun_family = AF_UNIX};
			snprintf(sa.sun_path, sizeof(sa.sun_path), "stasis-test-files-rel.%d",
				 getpid());
			if (chdir("/tmp") || bind(fd, (struct sockaddr *)&sa, sizeof(sa)) ||
			    unlink(sa.sun_path))
				fd = -1;
		}
		break;
	case 4:
		close(sv_other);  /* the other end stays in the parent only */
		fd = sv_parent;
		break;
	case 5: { /* a unix socket whose reader takes its senders' credentials, a message
		   * queued: the credentials are not carried */
		int sp[2], on = 1;
		fd = -1;
		if (!socketpair(AF_UNIX, SOCK_DGRAM, 0, sp) &&
		    !setsockopt(sp[0], SOL_SOCKET, SO_PASSCRED, &on, sizeof(on)) &&
		    send(sp[1], "m", 1, 0) == 1 && dup2(sp[1], 40) == 40)
			fd = sp[0];
		break;
	}
	case 6: /* a UDP socket of the namespace the task left */
		fd = socket(AF_INET, SOCK_DGRAM, 0);
		if (unshare(CLONE_NEWNET))
			_exit(92);
		break;
	case 7: { /* a netlink socket with the reply to a request queued */
		struct {
			struct nlmsghdr h;
			struct rtgenmsg g;
		} req = { .h = { .nlmsg_len = sizeof(req), .nlmsg_type = RTM_GETLINK,
				 .nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP },
			  .g = { .rtgen_family = AF_UNSPEC } };
		fd = socket(AF_NETLINK, SOCK_RAW, NETLINK_ROUTE);
		if (fd >= 0 && send(fd, &req, sizeof(req), 0) != (ssize_t)sizeof(req))
			fd = -1;
		usleep(100000);
		break;
	}
	case 8: { /* a UDP socket with a pending error (ICMP port unreachable) */
		struct sockaddr_in to = { .sin_family = AF_INET,
					  .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
		socklen_t tl = sizeof(to);
		int probe = socket(AF_INET, SOCK_DGRAM, 0); /* a port nobody listens on */
		if (probe < 0 || bind(probe, (struct sockaddr *)&to, sizeof(to)) ||
		    getsockname(probe, (struct sockaddr *)&to, &tl))
			_exit(93);
		close(probe);
		fd = socket(AF_INET, SOCK_DGRAM, 0);
		if (fd < 0 || connect(fd, (struct sockaddr *)&to, sizeof(to)) ||
		    send(fd, "x", 1, 0) != 1)
			_exit(94);
		usleep(100000);
		break;
	}
	default: /* a deleted FIFO (deleted regular files and directories are carried) */
		if (mkdtemp(path)) {
			char fifo[64];
			snprintf(fifo, sizeof(fifo), "%s/p", path);
			if (!mkfifo(fifo, 0600))
				fd = open(fifo, O_RDWR);
			unlink(fifo);
			rmdir(path);
		}
		break;
	}
	if (fd < 0 || dup2(fd, 3) != 3)
		_exit(2);
	raise(SIGSTOP);
	_exit(0);
}

static void test_unsupported(void)
{
	static const char *const want[] = {" pending in its write queue",
					   " which no path reaches", "refers to deleted file",
					   " is a unix socket bound to a relative path",
					   "is outside the dumped tree: declare it with --external unix[",
					   "credentials its reader takes",
					   "of another network namespace than its task's",
					   "netlink socket with messages queued",
					   "with a pending error"};
	for (int which = 0; which < 9; which++) {
		int sv[2] = {-1, -1};
		if (which == 4 && socketpair(AF_UNIX, SOCK_STREAM, 0, sv)) {
			UNIT_FAIL("socketpair: %s", strerror(errno));
			continue;
		}
		sv_parent = sv[1];
		sv_other = sv[0];
		fflush(stdout);
		fflush(stderr);
		pid_t pid = fork();
		if (pid == 0)
			unsupported_child(which);
		if (sv[1] >= 0)
			close(sv[1]);  /* sv[0] stays open here until the dump is done */
		int status;
		if (pid < 0 || wait_bounded(pid, &status, WUNTRACED, 10000) ||
		    !WIFSTOPPED(status)) {
			UNIT_FAIL("case %d: child did not stop", which);
			continue;
		}
		char path[64], msg[64];
		snprintf(path, sizeof(path), "/proc/%d", pid);
		struct dump_ctx c = {.pid = pid, .ospid = pid};
		c.pidfd = sys_pidfd_open(pid, 0);
		c.procfd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		CHECK(c.pidfd >= 0 && c.procfd >= 0);
		log_reset_first_error();
		if (which == 4 || which == 6) {
			struct dump_ctx *procs[] = {&c};
			CHECK_EQ(files_dump(&c), 0);
			if (c.files)
				CHECK_EQ(files_merge_tree(procs, 1), -EOPNOTSUPP);
			if (c.files)
				protobuf_c_message_free_unpacked(&c.files->base, NULL);
			c.files = NULL;
		} else {
			CHECK_EQ(files_dump(&c), -EOPNOTSUPP);
			CHECK(c.files == NULL);
		}
		snprintf(msg, sizeof(msg), "fd 3 of pid %d", pid);
		CHECK(strstr(log_first_error(), msg) != NULL);
		CHECK(strstr(log_first_error(), want[which]) != NULL);
		close(c.pidfd);
		close(c.procfd);
		if (sv[0] >= 0)
			close(sv[0]);
		kill(pid, SIGKILL);
		waitpid(pid, NULL, 0);
	}
}

int main(void)
{
	RUN(test_max_fd);
	RUN(test_dump_restore);
	RUN(test_bad_image);
	if (log_init("/dev/null", LOG_ERR))  /* the expected errors stay quiet */
		return 1;
	RUN(test_unsupported);
	return unit_done();
}
