/* Terminals (row fd_tty_ops, kind FILE_TTY, FileDesc.tty): unix98 pty pairs whose master
 * is in the dumped tree, in the devpts instance the dumper sees at /dev/pts; and the
 * refusals of the terminals that cannot be rebuilt.
 *
 * Dump, from outside the frozen tree, on pidfd_getfd duplicates:
 *   - a master (/dev/ptmx or /dev/pts/ptmx, rdev 5:2) carries the pair's state: its index
 *     (TIOCGPTN), the slave's termios (TCGETS2 on the master acts on the slave), window
 *     size, packet mode (TIOCGPKT), lock (TIOCGPTLCK), exclusive mode of both sides
 *     (TIOCGEXCL), the session it is the controlling terminal of and its foreground group
 *     (TIOCGSID/TIOCGPGRP on the master), whether the slave was opened and closed again
 *     (POLLHUP on the master), and the data queued both ways;
 *   - a slave (/dev/pts/N, majors 136-143) only says which pair; a slave whose master is
 *     not in the tree (the caller's terminal) becomes an external file (merge hook), and
 *     a tree whose controlling terminal that is, and which holds it open, is a shell job
 *     (--shell-job, src/cr/dump.c);
 *   - a virtual console or serial tty (major 4, /dev/console) is refused unless it is
 *     the task's controlling terminal (then external, a shell job); /dev/tty is refused.
 *
 * The queued data: a tty cannot be peeked. The tree is frozen, so the data is read
 * (non-blocking) and put back at once: what the slave side would read (input) through a
 * second slave description (TIOCGPTPEER) switched to non-canonical mode for the read,
 * what the master would read (output) through the master itself (a packet mode's status
 * byte stripped). Putting back (and filling a new pair at restore) is pty_fill(): with
 * the slave's termios changed only in what does not reset the line discipline's line
 * boundaries (ICANON kept; echo on and raw, input translations, signals and the editing
 * characters off), the input is written to the master and its echo read back from the
 * master, which proves the line discipline processed all of it (line boundaries
 * rebuilt by its newlines and EOL characters); the output is then written to the slave
 * (OPOST off: as it was), and the termios set back. Limits (documented in README): an
 * end-of-file character (^D) pending in canonical input and characters quoted with
 * LNEXT are not told apart from data; a pending packet-mode status byte is refused.
 *
 * Restore: the master is opened at its path until the devpts index is the dumped one
 * (the indices below are opened and closed again: measured in docs), every slave
 * description of the pair with TIOCGPTPEER, the state set, the data refilled. Made
 * together, in the child when the whole pair is in the task, else once by stasis. The
 * controlling terminal: the session leader takes it (TIOCSCTTY) right after setsid,
 * before it creates its children (which inherit it), from the pair stasis opened
 * (tty_ctty_early), or in the late hook in a single-process tree; the foreground group
 * is set in the leader's remote stage (TIOCSPGRP), once every group exists. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <time.h>
#include <unistd.h>
#include <asm/termbits.h>

#include "core/log.h"
#include "core/util.h"
#include "files/fd_ops.h"

#define PTY_SLAVE_MAJOR_FIRST 136
#define PTY_SLAVE_MAJOR_LAST 143
#define TTYAUX_MAJOR 5
#define TTY_MAJOR 4
/* Images are untrusted: bounds. */
#define TTY_INDEX_MAX (1u << 20)
#define TTY_DATA_MAX (64u << 10)
#define TTY_WAIT_MS 3000
/* the kernel's O_LARGEFILE, which open(2) adds on 64-bit (glibc's O_LARGEFILE is 0 there) */
#define KERNEL_O_LARGEFILE 0100000

enum { SLAVE_NEVER = 0, SLAVE_OPEN = 1, SLAVE_CLOSED = 2 };

static bool is_pty_slave(dev_t rdev)
{
	return major(rdev) >= PTY_SLAVE_MAJOR_FIRST && major(rdev) <= PTY_SLAVE_MAJOR_LAST;
}

static uint32_t slave_index(dev_t rdev)
{
	return (major(rdev) - PTY_SLAVE_MAJOR_FIRST) * 256u + minor(rdev);
}

/* /proc/PID/stat's tty_nr as a dev_t (new_encode_dev). */
static dev_t tty_nr_dev(int nr)
{
	unsigned int u = (unsigned int)nr;
	return makedev((u >> 8) & 0xfff, (u & 0xff) | ((u >> 12) & 0xfff00));
}

/* A description of a pty pair (not /dev/tty). */
static bool is_pty(const FileDesc *d)
{
	return d->kind == FILE_KIND__FILE_TTY && d->tty && !d->tty->devtty;
}

static bool same_pair(const FileDesc *a, const FileDesc *b)
{
	return is_pty(a) && is_pty(b) && a->tty->index == b->tty->index &&
	       a->tty->devpts == b->tty->devpts;
}

static long now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---- filling a pair: the line discipline's buffers ---------------------------- */

/* A byte that does not occur in @data and is none of @avoid (n of them); 0 if none. */
static unsigned char unused_byte(const uint8_t *data, size_t len, const unsigned char *avoid,
				 size_t n)
{
	bool used[256] = { false };
	for (size_t i = 0; i < len; i++)
		used[data[i]] = true;
	for (size_t i = 0; i < n; i++)
		used[avoid[i]] = true;
	used[0] = true;
	for (int b = 0x80; b < 0x180; b++)
		if (!used[b & 0xff])
			return (unsigned char)(b & 0xff);
	return 0;
}

/* The termios the input is refilled under: ICANON, EXTPROC, IXON and the start/stop
 * characters as @t (changing them would reset line boundaries or post a packet-mode
 * event); echo on and raw; no signals, translations or editing characters. */
static int fill_termios(const struct termios2 *t, const uint8_t *in, size_t in_len,
			struct termios2 *o)
{
	*o = *t;
	o->c_lflag &= ~(tcflag_t)(ISIG | IEXTEN | ECHOE | ECHOK | ECHONL | ECHOCTL | ECHOPRT |
				  ECHOKE | FLUSHO | PENDIN | TOSTOP | XCASE);
	o->c_lflag |= ECHO;
	o->c_iflag &= ~(tcflag_t)(INLCR | IGNCR | ICRNL | ISTRIP | IUCLC | IMAXBEL | BRKINT |
				  PARMRK | INPCK | IGNBRK | IGNPAR);
	o->c_oflag &= ~(tcflag_t)OPOST;
	unsigned char avoid[] = { '\n', t->c_cc[VEOL], t->c_cc[VEOL2], t->c_cc[VSTART],
				  t->c_cc[VSTOP] };
	unsigned char spare = unused_byte(in, in_len, avoid, sizeof(avoid));
	if (!spare && in_len)
		return -EOPNOTSUPP;
	o->c_cc[VERASE] = o->c_cc[VKILL] = o->c_cc[VEOF] = o->c_cc[VWERASE] = spare;
	o->c_cc[VREPRINT] = o->c_cc[VLNEXT] = o->c_cc[VDISCARD] = spare;
	return 0;
}

static int tty_write_all(int fd, const uint8_t *p, size_t len)
{
	long end = now_ms() + TTY_WAIT_MS;
	size_t off = 0;
	while (off < len) {
		ssize_t r = write(fd, p + off, len - off);
		if (r > 0) {
			off += (size_t)r;
			continue;
		}
		if (r < 0 && errno != EAGAIN && errno != EINTR)
			return -errno;
		if (now_ms() > end)
			return -ETIMEDOUT;
		struct pollfd pf = { .fd = fd, .events = POLLOUT };
		(void)poll(&pf, 1, 50);
	}
	return 0;
}

/* Read and drop exactly @len bytes of echo from @m (non-blocking), bounded. */
static int drain_echo(int m, size_t len)
{
	long end = now_ms() + TTY_WAIT_MS;
	char buf[4096];
	while (len) {
		ssize_t r = read(m, buf, len < sizeof(buf) ? len : sizeof(buf));
		if (r > 0) {
			len -= (size_t)r;
			continue;
		}
		if (r < 0 && errno != EAGAIN && errno != EINTR)
			return -errno;
		if (now_ms() > end)
			return -ETIMEDOUT;
		struct pollfd pf = { .fd = m, .events = POLLIN };
		(void)poll(&pf, 1, 50);
	}
	return 0;
}

/* Refill pair (@m: the master, non-blocking, nothing queued for it; @s: a slave
 * description, non-blocking): @in for the slave's readers, @out for the master's, and
 * the termios @t last. @what names the pair in messages. */
static int pty_fill(int m, int s, const struct termios2 *t, const uint8_t *in, size_t in_len,
		    const uint8_t *out, size_t out_len, const char *what)
{
	struct termios2 ft;
	if (!in_len && !out_len)
		return ioctl(m, TCSETS2, t) ? pr_perror("%s: TCSETS2", what) : 0;
	if (fill_termios(t, in, in_len, &ft)) {
		pr_err("%s: the queued input uses every byte value: not supported", what);
		return -EOPNOTSUPP;
	}
	if (ioctl(m, TCSETS2, &ft))
		return pr_perror("%s: TCSETS2", what);
	int ret = tty_write_all(m, in, in_len);
	if (!ret)
		ret = drain_echo(m, in_len);
	if (ret)
		return pr_errno(ret, "%s: refill %zu bytes of input", what, in_len);
	ret = tty_write_all(s, out, out_len);
	if (ret)
		return pr_errno(ret, "%s: refill %zu bytes of output", what, out_len);
	return ioctl(m, TCSETS2, t) ? pr_perror("%s: TCSETS2", what) : 0;
}

/* ---- dump ---------------------------------------------------------------------- */

/* Everything @fd reads until it would block (or EIO: the other side closed), at most
 * TTY_DATA_MAX bytes; a packet-mode master's status byte stripped from each read. */
static int read_queue(int fd, bool packet, ProtobufCBinaryData *out, const char *what)
{
	size_t cap = 4096, len = 0;
	uint8_t *buf = malloc(cap + 1);
	if (!buf)
		return -ENOMEM;
	for (;;) {
		if (cap - len < 4096) {
			uint8_t *nb = cap >= TTY_DATA_MAX ? NULL : realloc(buf, cap * 2 + 1);
			if (!nb) {
				free(buf);
				pr_err("%s: more than %u bytes queued: not supported", what, TTY_DATA_MAX);
				return -EOPNOTSUPP;
			}
			buf = nb;
			cap *= 2;
		}
		ssize_t r = read(fd, buf + len, cap - len + (packet ? 1 : 0));
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0 && (errno == EAGAIN || errno == EIO))
			break;
		if (r < 0) {
			int e = -errno;
			free(buf);
			return pr_errno(e, "%s: read the queue", what);
		}
		if (r == 0)
			break;
		if (packet) {
			if (buf[len] != 0) { /* TIOCPKT_DATA is 0 */
				free(buf);
				pr_err("%s: a packet-mode status (0x%x) is pending: not supported",
				       what, buf[len]);
				return -EOPNOTSUPP;
			}
			memmove(buf + len, buf + len + 1, (size_t)r - 1);
			r--;
		}
		len += (size_t)r;
	}
	if (!len) {
		free(buf);
		return 0;
	}
	out->data = buf;
	out->len = len;
	return 0;
}

/* The slave side's input queue of pair @m: read through a new slave description, or,
 * when the slave is exclusive (TIOCEXCL) and stasis may not open it, through @alt (a
 * duplicate of a task's slave fd; -1: none) made non-blocking meanwhile (its flags in
 * *@alt_fl, else -1); in non-canonical mode (*@in). The description is left in *@s for
 * the put back. */
static int read_input(int m, const struct termios2 *t, int alt, int *alt_fl, int *s,
		      ProtobufCBinaryData *in, const char *what)
{
	*alt_fl = -1;
	*s = ioctl(m, TIOCGPTPEER, O_RDWR | O_NOCTTY | O_NONBLOCK | O_CLOEXEC);
	if (*s < 0 && errno == EBUSY && alt >= 0) {
		*alt_fl = fcntl(alt, F_GETFL);
		if (*alt_fl < 0 || fcntl(alt, F_SETFL, *alt_fl | O_NONBLOCK) < 0) {
			*alt_fl = -1;
			return pr_perror("%s: make the slave non-blocking", what);
		}
		*s = alt;
	} else if (*s < 0) {
		if (errno == EBUSY)
			pr_err("%s: its slave is in exclusive mode (TIOCEXCL) and open nowhere in "
			       "the tree: its queue cannot be read without CAP_SYS_ADMIN", what);
		else
			pr_perror("%s: open the slave (TIOCGPTPEER)", what);
		return -EOPNOTSUPP;
	}
	/* what is read must be put back, which needs the output to flow (the echo, the
	 * output): not stopped by ^S, nor the master's buffer full. Nothing read yet. */
	struct pollfd pf = { .fd = *s, .events = POLLOUT };
	if (poll(&pf, 1, 0) < 0)
		return pr_perror("%s: poll", what);
	if (!(pf.revents & POLLOUT)) {
		pr_err("%s: the pty's output is stopped (^S) or its master's buffer is full: not "
		       "supported", what);
		return -EOPNOTSUPP;
	}
	struct termios2 raw = *t;
	raw.c_lflag &= ~(tcflag_t)ICANON;
	raw.c_cc[VMIN] = 0;
	raw.c_cc[VTIME] = 0;
	if (ioctl(*s, TCSETS2, &raw))
		return pr_perror("%s: TCSETS2", what);
	return read_queue(*s, false, in, what);
}

/* Both queues of master @m (a duplicate of the task's; the tree is frozen), put back
 * at once; packet mode off meanwhile (no status is pending: checked at dump). */
static int dump_queues(int m, int alt, TtyData *td, const struct termios2 *t, const char *what)
{
	int alt_fl = -1;
	int fl = fcntl(m, F_GETFL), off = 0, on = 1;
	if (fl < 0)
		return pr_perror("%s: F_GETFL", what);
	if (fcntl(m, F_SETFL, fl | O_NONBLOCK) < 0)
		return pr_perror("%s: F_SETFL", what);
	int ret = 0, s = -1;
	bool unlocked = false, unpacket = false;
	ProtobufCBinaryData in = { 0 }, out = { 0 };
	if (td->packet && !ioctl(m, TIOCPKT, &off))
		unpacket = true;
	if (td->slave_state != SLAVE_NEVER) {
		if (td->locked && !ioctl(m, TIOCSPTLCK, &off))
			unlocked = true;
		ret = read_input(m, t, alt, &alt_fl, &s, &in, what);
		int x = 0;
		if (!ret && ioctl(s, TIOCGEXCL, &x))
			ret = pr_perror("%s: TIOCGEXCL of the slave", what);
		td->has_slave_excl = true;
		td->slave_excl = x != 0;
	}
	if (td->slave_state == SLAVE_NEVER) {
		/* nothing can be put back without a slave: look, do not read (what is there
		 * is the echo of input typed for a slave never opened, which is not carried) */
		int queued = 0;
		if (ioctl(m, FIONREAD, &queued))
			ret = pr_perror("%s: FIONREAD", what);
		else if (queued > 0) {
			pr_err("%s: a pty master with %d bytes queued whose slave was never opened: "
			       "not supported", what, queued);
			ret = -EOPNOTSUPP;
		}
	} else if (!ret) {
		ret = read_queue(m, false, &out, what);
	}
	/* put everything back, whatever happened */
	int pret = s >= 0 ? pty_fill(m, s, t, in.data, in.len, out.data, out.len, what) : 0;
	if (s >= 0 && s != alt)
		close(s);
	if (alt_fl >= 0 && fcntl(alt, F_SETFL, alt_fl) < 0 && !pret)
		pret = pr_perror("%s: F_SETFL of the slave", what);
	if (unlocked && ioctl(m, TIOCSPTLCK, &on) && !pret)
		pret = pr_perror("%s: lock it again", what);
	if (unpacket && ioctl(m, TIOCPKT, &on) && !pret)
		pret = pr_perror("%s: packet mode again", what);
	if (fcntl(m, F_SETFL, fl) < 0 && !pret)
		pret = pr_perror("%s: F_SETFL", what);
	if (pret)
		pr_err("%s: the data queued in the pty may have been lost by the dump", what);
	if (!ret)
		ret = pret;
	if (ret) {
		free(in.data);
		free(out.data);
		return ret;
	}
	td->has_in_data = in.len > 0;
	td->in_data = in;
	td->has_out_data = out.len > 0;
	td->out_data = out;
	return 0;
}

static int get_flag(int fd, unsigned long req, protobuf_c_boolean *has, protobuf_c_boolean *v,
		    const char *what)
{
	int x = 0;
	if (ioctl(fd, req, &x))
		return pr_perror("%s: ioctl 0x%lx", what, req);
	*has = true;
	*v = x != 0;
	return 0;
}

/* Is devpts instance @dev where the master @e was opened, in the task's own mount tree:
 * the directory of the master's path (or its pts/, for a ptmx bound beside it)? */
static bool devpts_at(const struct dump_ctx *c, const struct fd_ent *e, dev_t dev)
{
	char rel[PATH_MAX];
	struct stat st;
	size_t len = strlen(e->link) - strlen("/ptmx");
	if (snprintf(rel, sizeof(rel), "root%.*s", (int)len, e->link) >= (int)sizeof(rel) - 4)
		return false;
	if (!fstatat(c->procfd, rel, &st, 0) && st.st_dev == dev)
		return true;
	/* a /dev/ptmx bound on pts/ptmx of the instance mounted at /dev/pts */
	return !fstatat(c->procfd, strcat(rel, "/pts"), &st, 0) && st.st_dev == dev;
}

/* A pair of another devpts instance than the dumper's /dev/pts must be there: the task
 * opens the master's path again in its mount tree. */
static int own_devpts(const struct dump_ctx *c, const struct fd_ent *e, dev_t dev)
{
	return devpts_at(c, e, dev) ? 0 : fd_unsupported(c, e, "a pty whose devpts instance is "
							 "not mounted where its master was opened");
}

static int dump_master(const struct dump_ctx *c, const struct fd_ent *e, int m, TtyData *td,
		       const char *what)
{
	struct termios2 t;
	struct winsize ws;
	unsigned int idx = 0;
	if (e->link[0] != '/' || !str_ends(e->link, "/ptmx"))
		return fd_unsupported(c, e, "a pty master opened at another path");
	if ((e->flags & O_ACCMODE) != O_RDWR)
		return fd_unsupported(c, e, "a pty master not open for reading and writing");
	if (ioctl(m, TIOCGPTN, &idx))
		return pr_perror("%s: TIOCGPTN", what);
	/* the devpts instance of the pair: the one the dumper sees at /dev/pts */
	struct stat pts, sl;
	_cleanup_close_ int peer = ioctl(m, TIOCGPTPEER, O_PATH | O_NOCTTY | O_CLOEXEC);
	if (peer < 0 || fstat(peer, &sl) || stat("/dev/pts", &pts))
		return pr_perror("%s: its slave", what);
	if (sl.st_dev != pts.st_dev) {
		int ret = own_devpts(c, e, sl.st_dev);
		if (ret)
			return ret;
		td->has_own_devpts = td->own_devpts = true;
	} else if (strcmp(e->link, "/dev/ptmx") && strcmp(e->link, "/dev/pts/ptmx")) {
		return fd_unsupported(c, e, "a pty master opened at another path");
	} else if (fd_in_task_mount(c, e) && devpts_at(c, e, sl.st_dev)) {
		/* the dumper's instance through a mount of the task's own namespace */
		td->has_task_view = td->task_view = true;
	}
	td->index = idx;
	td->has_devpts = true;
	td->devpts = sl.st_dev;
	if (ioctl(m, TCGETS2, &t) || ioctl(m, TIOCGWINSZ, &ws))
		return pr_perror("%s: termios", what);
	td->has_termios = true;
	td->termios.data = malloc(sizeof(t));
	if (!td->termios.data)
		return -ENOMEM;
	memcpy(td->termios.data, &t, sizeof(t));
	td->termios.len = sizeof(t);
	td->has_rows = td->has_cols = td->has_xpixel = td->has_ypixel = true;
	td->rows = ws.ws_row, td->cols = ws.ws_col;
	td->xpixel = ws.ws_xpixel, td->ypixel = ws.ws_ypixel;
	int ret = get_flag(m, TIOCGPKT, &td->has_packet, &td->packet, what);
	if (!ret)
		ret = get_flag(m, TIOCGPTLCK, &td->has_locked, &td->locked, what);
	if (!ret)
		ret = get_flag(m, TIOCGEXCL, &td->has_excl, &td->excl, what);
	if (ret)
		return ret;
	struct pollfd pf = { .fd = m, .events = POLLIN | POLLPRI };
	if (poll(&pf, 1, 0) < 0)
		return pr_perror("%s: poll", what);
	if ((pf.revents & POLLPRI) && td->packet) {
		pr_err("%s: a packet-mode status is pending: not supported", what);
		return -EOPNOTSUPP;
	}
	td->has_slave_state = true;
	td->slave_state = (pf.revents & POLLHUP) ? SLAVE_CLOSED : SLAVE_NEVER;
	pid_t sid = 0, pg = 0;
	if (!ioctl(m, TIOCGSID, &sid) && sid > 0) {
		td->has_sid = true;
		td->sid = sid;
		if (!ioctl(m, TIOCGPGRP, &pg) && pg > 0) {
			td->has_fg_pgrp = true;
			td->fg_pgrp = pg; /* the dumper's view: the merge hook maps it */
		}
	}
	return 0;
}

static int tty_dump(const struct dump_ctx *c, const struct fd_ent *e, FileDesc *d)
{
	char what[96];
	snprintf(what, sizeof(what), "fd %d of pid %d (%s)", e->fd, c->pid, e->link);
	TtyData *td = malloc(sizeof(*td));
	if (!td)
		return -ENOMEM;
	tty_data__init(td);
	d->tty = td;
	if (major(e->st.st_rdev) == TTYAUX_MAJOR && minor(e->st.st_rdev) == 0) {
		td->has_devtty = td->devtty = true;
		return 0;
	}
	if (is_pty_slave(e->st.st_rdev)) {
		/* hung up (its master closed, or vhangup): its file is dead, not rebuilt */
		_cleanup_close_ int sd = fd_dup(c, e);
		struct pollfd pf = { .fd = sd, .events = POLLIN };
		if (sd < 0)
			return sd;
		if (poll(&pf, 1, 0) < 0)
			return pr_perror("%s: poll", what);
		if (pf.revents & POLLHUP) {
			pr_err("fd %d of pid %d is a pty slave (%s) that was hung up (its master "
			       "closed): not supported yet", e->fd, c->pid, e->link);
			return -EOPNOTSUPP;
		}
		td->master = false;
		td->index = slave_index(e->st.st_rdev);
		td->has_devpts = true;
		td->devpts = e->st.st_dev;
		return 0;
	}
	td->master = true;
	_cleanup_close_ int m = fd_dup(c, e);
	if (m < 0)
		return m;
	return dump_master(c, e, m, td, what);
}

/* ---- dump: the tree ---------------------------------------------------------- */

/* The master of pair @index of devpts instance @devpts, or, @devpts 0, of any instance
 * whose session is @sid (0: any). */
static const FileDesc *find_master(struct dump_ctx **procs, size_t n, uint32_t index,
				   uint64_t devpts, pid_t sid)
{
	for (size_t p = 0; p < n; p++)
		for (size_t i = 0; i < procs[p]->files->n_files; i++) {
			const FileDesc *d = procs[p]->files->files[i];
			if (is_pty(d) && d->tty->master && d->tty->index == index &&
			    (!devpts || d->tty->devpts == devpts) &&
			    (!sid || (d->tty->has_sid && d->tty->sid == sid)))
				return d;
		}
	return NULL;
}

static struct dump_ctx *find_proc(struct dump_ctx **procs, size_t n, pid_t pid)
{
	for (size_t p = 0; p < n; p++)
		if (procs[p]->pid == pid)
			return procs[p];
	return NULL;
}

/* Does @p hold a description of the pair of master @m? */
static bool holds_pair(const struct dump_ctx *p, const FileDesc *m)
{
	for (size_t i = 0; i < p->files->n_files; i++)
		if (same_pair(p->files->files[i], m))
			return true;
	return false;
}

/* Slaves of a master outside the tree become external; a master with a slave in the
 * tree has it open. */
static void merge_slaves(struct dump_ctx **procs, size_t n)
{
	for (size_t p = 0; p < n; p++) {
		Files *f = procs[p]->files;
		for (size_t i = 0; i < f->n_files; i++) {
			FileDesc *d = f->files[i];
			if (!is_pty(d) || d->tty->master)
				continue;
			const FileDesc *m = find_master(procs, n, d->tty->index, d->tty->devpts, 0);
			if (m) {
				m->tty->slave_state = SLAVE_OPEN;
				continue;
			}
			tty_data__free_unpacked(d->tty, NULL);
			d->tty = NULL;
			d->kind = FILE_KIND__FILE_EXTERNAL;
		}
	}
}

/* The session of a pair in the tree: its leader holds the pair, every task whose
 * controlling terminal it is is in that session; the foreground group as the leader sees
 * it. */
static int merge_session(struct dump_ctx **procs, size_t n, FileDesc *m)
{
	TtyData *td = m->tty;
	const char *name = m->link ?: "/dev/ptmx";
	struct dump_ctx *l = find_proc(procs, n, td->sid);
	if (!l || l->stat.session != td->sid) {
		pr_err("pty %u (%s) is the controlling terminal of session %d, whose leader is "
		       "outside the tree: not supported", td->index, name, td->sid);
		return -EOPNOTSUPP;
	}
	if (!holds_pair(l, m)) {
		pr_err("pid %d leads the session of pty %u but holds no fd of it: not supported "
		       "yet", l->pid, td->index);
		return -EOPNOTSUPP;
	}
	size_t lvl = l->status.nspid_len ? l->status.nspid_len - 1 : 0;
	td->has_sid_self = true;
	td->sid_self = l->status.nspid_len ? l->status.nspid[lvl] : l->pid;
	if (!td->has_fg_pgrp)
		return 0;
	for (size_t p = 0; p < n; p++) {
		const struct dump_ctx *q = procs[p];
		if (q->stat.pgrp != td->fg_pgrp)
			continue;
		if (q->status.nspgid_len <= lvl) {
			pr_err("pty %u: its foreground group %d is not seen from pid %d", td->index,
			       td->fg_pgrp, l->pid);
			return -EOPNOTSUPP;
		}
		td->fg_pgrp = q->status.nspgid_len ? q->status.nspgid[lvl] : q->stat.pgrp;
		return 0;
	}
	pr_err("pty %u: its foreground process group %d is not in the tree: not supported",
	       td->index, td->fg_pgrp);
	return -EOPNOTSUPP;
}

/* The slaves of the pair of @m say whose controlling terminal it is too (the leader may
 * hold only a slave). */
static void copy_session(struct dump_ctx **procs, size_t n, const FileDesc *md)
{
	const TtyData *m = md->tty;
	for (size_t p = 0; p < n; p++)
		for (size_t i = 0; i < procs[p]->files->n_files; i++) {
			TtyData *o = procs[p]->files->files[i]->tty;
			if (!same_pair(procs[p]->files->files[i], md) || o->master)
				continue;
			o->has_sid = o->has_sid_self = true;
			o->sid = m->sid;
			o->sid_self = m->sid_self;
			o->has_fg_pgrp = m->has_fg_pgrp;
			o->fg_pgrp = m->fg_pgrp;
		}
}

/* Does @p hold an fd on the terminal @dev that is not rebuilt? */
static bool holds_external(const struct dump_ctx *p, dev_t dev)
{
	for (size_t i = 0; i < p->files->n_files; i++) {
		const FileDesc *d = p->files->files[i];
		if (d->kind == FILE_KIND__FILE_EXTERNAL && d->has_rdev && d->rdev == dev)
			return true;
	}
	return false;
}

/* Every task's controlling terminal: a pair of the tree (its session must be the
 * task's), or the caller's terminal: a tree that holds it open is a shell job. */
static int merge_ctty(struct dump_ctx **procs, size_t n)
{
	for (size_t p = 0; p < n; p++) {
		const struct dump_ctx *q = procs[p];
		if (!q->stat.tty_nr)
			continue;
		dev_t dev = tty_nr_dev(q->stat.tty_nr);
		const FileDesc *m = is_pty_slave(dev) ? find_master(procs, n, slave_index(dev), 0,
								    q->stat.session)
						      : NULL;
		if (!m && is_pty_slave(dev))
			m = find_master(procs, n, slave_index(dev), 0, 0);
		if (m) {
			if (!m->tty->has_sid || m->tty->sid != q->stat.session) {
				pr_err("pid %d: its controlling terminal /dev/pts/%u belongs to "
				       "another session: not supported", q->pid, m->tty->index);
				return -EOPNOTSUPP;
			}
			continue;
		}
		if (find_proc(procs, n, q->stat.session)) {
			/* restored, the session would have no terminal: only the caller's
			 * session, outside the tree, can be attached to the caller's terminal */
			pr_err("pid %d: its session %d, led in the tree, has a terminal outside "
			       "the tree (%u:%u) as controlling terminal: not supported", q->pid,
			       q->stat.session, major(dev), minor(dev));
			return -EOPNOTSUPP;
		}
		if (holds_external(q, dev) && !q->opts->shell_job) {
			pr_err("pid %d is attached to the terminal %u:%u outside the tree (its "
			       "controlling terminal, open): dump with --shell-job (-j)", q->pid,
			       major(dev), minor(dev));
			return -EOPNOTSUPP;
		}
	}
	return 0;
}

static bool same_mnt_ns(const struct dump_ctx *a, const struct dump_ctx *b)
{
	const NsIds *x = a->core->ns, *y = b->core->ns;
	return x && y && x->has_mnt && y->has_mnt && x->mnt == y->mnt;
}

/* A pair of the task's own devpts instance (or of the dumper's, opened through the
 * task's mount: task_view) is opened in that task's mount tree: by the task when it holds
 * all of it, else by stasis in the rebuilt tree of that mount namespace (restored:
 * tty_open_tree): its holders and the members of its session must all be in the mount
 * namespace of process @p. A task_view pair that is not is opened in stasis's view, as
 * before (its files then on stasis's mounts). */
static int merge_own_devpts(struct dump_ctx **procs, size_t n, const struct dump_ctx *p,
			    FileDesc *m)
{
	for (size_t q = 0; q < n; q++) {
		if (procs[q] == p || same_mnt_ns(procs[q], p))
			continue;
		bool held = false;
		for (size_t i = 0; i < procs[q]->files->n_files; i++)
			held |= same_pair(procs[q]->files->files[i], m);
		bool ctty = m->tty->has_sid && procs[q]->stat.tty_nr &&
			    is_pty_slave(tty_nr_dev(procs[q]->stat.tty_nr)) &&
			    slave_index(tty_nr_dev(procs[q]->stat.tty_nr)) == m->tty->index &&
			    procs[q]->stat.session == m->tty->sid;
		if ((held || ctty) && m->tty->task_view) {
			pr_info("pty %u of pid %d is used from another mount namespace (pid %d): "
				"opened in stasis's view", m->tty->index, p->pid, procs[q]->pid);
			m->tty->has_task_view = m->tty->task_view = false;
			return 0;
		}
		if (held) {
			pr_err("pty %u of pid %d (%s) is shared with pid %d of another mount "
			       "namespace: a pty of a devpts instance other than /dev/pts held "
			       "across mount namespaces is not supported", m->tty->index, p->pid,
			       m->link, procs[q]->pid);
			return -EOPNOTSUPP;
		}
		if (ctty) {
			pr_err("pid %d has pty %u (%s) of pid %d as controlling terminal from another "
			       "mount namespace: not supported", procs[q]->pid, m->tty->index,
			       m->link, p->pid);
			return -EOPNOTSUPP;
		}
	}
	return 0;
}

/* A duplicate of a task's fd on the slave of pair @index, or -1. */
static int slave_dup(struct dump_ctx **procs, size_t n, const FileDesc *m)
{
	for (size_t p = 0; p < n; p++) {
		const Files *f = procs[p]->files;
		for (size_t i = 0; i < f->n_files; i++) {
			const FileDesc *d = f->files[i];
			if (!same_pair(d, m) || d->tty->master)
				continue;
			struct fd_ent e = { .fd = fd_desc_fd(f, i), .link = d->link };
			return e.fd >= 0 ? fd_dup(procs[p], &e) : -1;
		}
	}
	return -1;
}

/* A /dev/tty description is opened by its task (once it has its terminal): one process. */
static int merge_devtty(struct dump_ctx **procs, size_t n)
{
	for (size_t p = 0; p < n; p++)
		for (size_t i = 0; i < procs[p]->files->n_files; i++) {
			const FileDesc *d = procs[p]->files->files[i];
			if (d->kind != FILE_KIND__FILE_TTY || !d->tty || !d->tty->devtty)
				continue;
			for (size_t q = p + 1; q < n; q++)
				if (fd_desc_index(procs[q]->files, d->id) >= 0) {
					pr_err("fd %d of pid %d is /dev/tty shared with pid %d: not "
					       "supported yet", fd_desc_fd(procs[p]->files, i),
					       procs[p]->pid, procs[q]->pid);
					return -EOPNOTSUPP;
				}
		}
	return 0;
}

static int tty_merge(struct dump_ctx **procs, size_t n)
{
	int mret = merge_devtty(procs, n);
	if (mret)
		return mret;
	merge_slaves(procs, n);
	for (size_t p = 0; p < n; p++) {
		Files *f = procs[p]->files;
		for (size_t i = 0; i < f->n_files; i++) {
			FileDesc *d = f->files[i];
			if (!is_pty(d) || !d->tty->master)
				continue;
			char what[64];
			snprintf(what, sizeof(what), "fd %d of pid %d (pty %u)", fd_desc_fd(f, i),
				 procs[p]->pid, d->tty->index);
			/* the slave's input is read once its state is known */
			int ret = 0;
			if (d->tty->has_termios && !d->tty->has_in_data && !d->tty->has_out_data) {
				struct fd_ent e = { .fd = fd_desc_fd(f, i), .link = d->link };
				_cleanup_close_ int m = fd_dup(procs[p], &e);
				if (m < 0)
					return m;
				_cleanup_close_ int alt = slave_dup(procs, n, d);
				struct termios2 t;
				memcpy(&t, d->tty->termios.data, sizeof(t));
				ret = dump_queues(m, alt, d->tty, &t, what);
			}
			if (!ret && (d->tty->own_devpts || d->tty->task_view))
				ret = merge_own_devpts(procs, n, procs[p], d);
			if (!ret && d->tty->has_sid)
				ret = merge_session(procs, n, d);
			if (ret)
				return ret;
			if (d->tty->has_sid)
				copy_session(procs, n, d);
		}
	}
	return merge_ctty(procs, n);
}

/* ---- classification ------------------------------------------------------------ */

/* /dev/tty: the task's controlling terminal opened by name; reopened by name at restore,
 * so it must still be that terminal (TIOCGDEV). */
static int devtty_classify(const struct dump_ctx *c, struct fd_ent *e)
{
	_cleanup_close_ int dup = fd_dup(c, e);
	unsigned int dev = 0;
	if (dup < 0)
		return dup;
	if (ioctl(dup, TIOCGDEV, &dev))
		return pr_perror("fd %d of pid %d (/dev/tty): TIOCGDEV", e->fd, c->pid);
	if (!c->stat.tty_nr || tty_nr_dev(c->stat.tty_nr) != makedev(major(dev), minor(dev))) {
		pr_err("fd %d of pid %d is /dev/tty of terminal %u:%u, which is not its controlling "
		       "terminal any more: not supported", e->fd, c->pid, major(dev), minor(dev));
		return -EOPNOTSUPP;
	}
	e->kind = FILE_KIND__FILE_TTY;
	return 1;
}

static int tty_classify(const struct dump_ctx *c, struct fd_ent *e)
{
	if (!S_ISCHR(e->st.st_mode))
		return 0;
	unsigned int maj = major(e->st.st_rdev), mi = minor(e->st.st_rdev);
	if (is_pty_slave(e->st.st_rdev) || (maj == TTYAUX_MAJOR && mi == 2)) {
		e->kind = FILE_KIND__FILE_TTY;
		return 1;
	}
	if (maj == TTYAUX_MAJOR && mi == 0)
		return devtty_classify(c, e);
	if (maj == TTY_MAJOR || (maj == TTYAUX_MAJOR && mi == 1)) {
		/* the caller's terminal of a shell job: inherited (external.c) */
		if (c->stat.tty_nr && tty_nr_dev(c->stat.tty_nr) == e->st.st_rdev)
			return 0;
		pr_err("fd %d of pid %d is a virtual console or serial tty (%s): cannot be "
		       "checkpointed", e->fd, c->pid, e->link);
		return -EOPNOTSUPP;
	}
	return 0;
}

/* ---- restore ------------------------------------------------------------------- */

static int devtty_validate(const FileDesc *d, const struct blob_reader *blobs)
{
	(void)blobs;
	const TtyData *td = d->tty;
	if (!td || !td->devtty || td->master || td->has_termios || td->has_sid ||
	    td->has_in_data || td->has_out_data || (d->flags & O_PATH)) {
		pr_err("files image: /dev/tty %u has bad tty data", d->id);
		return -EINVAL;
	}
	return 0;
}

static int tty_validate(const FileDesc *d, const struct blob_reader *blobs)
{
	(void)blobs;
	const TtyData *td = d->tty;
	if (!td || td->index >= TTY_INDEX_MAX) {
		pr_err("files image: tty %u has no or bad tty data", d->id);
		return -EINVAL;
	}
	if (!td->master) {
		if (td->has_termios || td->has_in_data || td->has_out_data || td->task_view ||
		    (td->has_sid && (td->sid <= 0 || !td->has_sid_self || td->sid_self <= 0)) ||
		    (td->has_fg_pgrp && td->fg_pgrp <= 0)) {
			pr_err("files image: pty slave %u carries the state of a master", d->id);
			return -EINVAL;
		}
		return 0;
	}
	if (!d->link || d->link[0] != '/' || !str_ends(d->link, "/ptmx") ||
	    strstr(d->link, "/../") ||
	    (!td->own_devpts && strcmp(d->link, "/dev/ptmx") && strcmp(d->link, "/dev/pts/ptmx")) ||
	    (td->own_devpts && td->task_view) ||
	    (d->flags & O_ACCMODE) != O_RDWR || !td->has_termios ||
	    td->termios.len != sizeof(struct termios2) || td->rows > 0xffff ||
	    td->cols > 0xffff || td->xpixel > 0xffff || td->ypixel > 0xffff ||
	    td->slave_state > SLAVE_CLOSED || td->in_data.len > TTY_DATA_MAX ||
	    td->out_data.len > TTY_DATA_MAX || (td->has_sid && (td->sid <= 0 || !td->has_sid_self ||
								td->sid_self <= 0)) ||
	    (td->has_fg_pgrp && td->fg_pgrp <= 0) ||
	    ((td->has_in_data || td->has_out_data) && td->slave_state == SLAVE_NEVER)) {
		pr_err("files image: pty master %u has bad tty data", d->id);
		return -EINVAL;
	}
	return 0;
}

/* The master of pair @index at @path with that index: the lower free ones are held
 * open while searching (each open takes the lowest free index), then closed. */
static int open_ptmx_index(const char *path, uint32_t index, int rootfd)
{
	struct stat pst;
	int pfd = open_in_root(rootfd, path, O_PATH | O_CLOEXEC);
	bool ok = pfd >= 0 && !fstat(pfd, &pst) && S_ISCHR(pst.st_mode) &&
		  pst.st_rdev == makedev(TTYAUX_MAJOR, 2);
	if (pfd >= 0)
		close(pfd);
	if (!ok) {
		pr_err("restore: %s is not a ptmx device (pty %u)", path, index);
		return -EINVAL;
	}
	int *held = calloc(index + 1, sizeof(int));
	if (!held)
		return -ENOMEM;
	size_t n = 0;
	int ret = -EEXIST;
	while (n <= index) {
		/* (an image is untrusted: a path ending in /ptmx; the node is checked) */
		int m = open_in_root(rootfd, path, O_RDWR | O_NOCTTY | O_NONBLOCK | O_CLOEXEC);
		if (m < 0) {
			ret = pr_perror("restore: open %s for pty %u", path, index);
			break;
		}
		unsigned int got = 0;
		struct stat st;
		if (fstat(m, &st) || !S_ISCHR(st.st_mode) ||
		    st.st_rdev != makedev(TTYAUX_MAJOR, 2)) {
			pr_err("restore: %s is not a ptmx device", path);
			close(m);
			break;
		}
		if (ioctl(m, TIOCGPTN, &got)) {
			ret = pr_perror("restore: TIOCGPTN");
			close(m);
			break;
		}
		if (got == index) {
			ret = m;
			break;
		}
		held[n++] = m;
		if (got > index) {
			pr_err("restore: pty index %u is taken in the devpts instance of %s (the "
			       "lowest free one is %u)", index, path, got);
			break;
		}
	}
	for (size_t k = 0; k < n; k++)
		close(held[k]);
	free(held);
	return ret;
}

static int set_state(int m, const TtyData *td, const char *what)
{
	struct winsize ws = { .ws_row = (unsigned short)td->rows,
			      .ws_col = (unsigned short)td->cols,
			      .ws_xpixel = (unsigned short)td->xpixel,
			      .ws_ypixel = (unsigned short)td->ypixel };
	if (ioctl(m, TIOCSWINSZ, &ws))
		return pr_perror("%s: TIOCSWINSZ", what);
	return 0;
}

/* Make pair @m (its master description) and its slave descriptions @sl[0..ns): fds in
 * *@mfd and sfd[] (close-on-exec, non-blocking; the caller sets status flags). */
static int pty_open_pair(const FileDesc *md, const FileDesc *const *sl, size_t ns, int rootfd,
			 int *mfd, int *sfd)
{
	const TtyData *td = md->tty;
	char what[64];
	snprintf(what, sizeof(what), "restore pty %u", td->index);
	struct termios2 t;
	memcpy(&t, td->termios.data, sizeof(t));
	_cleanup_close_ int m = open_ptmx_index(md->link, td->index, rootfd);
	if (m < 0)
		return m;
	int off = 0, on = 1, ret = 0;
	if (ioctl(m, TIOCSPTLCK, &off))
		return pr_perror("%s: unlock", what);
	ret = set_state(m, td, what);
	_cleanup_close_ int s = -1;
	if (!ret && td->slave_state != SLAVE_NEVER) {
		s = ioctl(m, TIOCGPTPEER, O_RDWR | O_NOCTTY | O_NONBLOCK | O_CLOEXEC);
		if (s < 0)
			ret = pr_perror("%s: open the slave", what);
	}
	if (!ret && s >= 0)
		ret = pty_fill(m, s, &t, td->in_data.data, td->in_data.len, td->out_data.data,
			       td->out_data.len, what);
	else if (!ret && ioctl(m, TCSETS2, &t))
		ret = pr_perror("%s: TCSETS2", what);
	size_t k = 0;
	for (; !ret && k < ns; k++) {
		/* as open(2) makes it: O_LARGEFILE, and O_CLOEXEC kept out of f_flags */
		int fl = (int)(sl[k]->flags & O_ACCMODE) | O_NOCTTY | O_NONBLOCK | KERNEL_O_LARGEFILE;
		sfd[k] = ioctl(m, TIOCGPTPEER, fl);
		if (sfd[k] < 0 || fcntl(sfd[k], F_SETFD, FD_CLOEXEC) < 0)
			ret = pr_perror("%s: open slave file %u", what, sl[k]->id);
	}
	if (!ret && td->packet && ioctl(m, TIOCPKT, &on))
		ret = pr_perror("%s: TIOCPKT", what);
	if (!ret && td->excl && ioctl(m, TIOCEXCL))
		ret = pr_perror("%s: TIOCEXCL", what);
	if (!ret && td->slave_excl && s >= 0 && ioctl(s, TIOCEXCL))
		ret = pr_perror("%s: TIOCEXCL of the slave", what);
	if (!ret && td->locked && ioctl(m, TIOCSPTLCK, &on))
		ret = pr_perror("%s: lock", what);
	if (ret) {
		while (k-- > 0)
			if (sfd[k] >= 0)
				close(sfd[k]);
		return ret;
	}
	*mfd = take_fd(&m);
	return 0;
}


/* The descriptions of the pair of @d among @n tables: the master in *@m, the slaves. */
static int gather(Files *const *f, size_t n, const FileDesc *d, const FileDesc **m,
		  const FileDesc ***sl, size_t *ns)
{
	size_t cap = 0;
	*m = NULL;
	*ns = 0;
	*sl = NULL;
	for (size_t p = 0; p < n; p++)
		for (size_t i = 0; i < f[p]->n_files; i++)
			cap += same_pair(d, f[p]->files[i]);
	*sl = calloc(cap + 1, sizeof(**sl));
	if (!*sl)
		return -ENOMEM;
	for (size_t p = 0; p < n; p++)
		for (size_t i = 0; i < f[p]->n_files; i++) {
			const FileDesc *o = f[p]->files[i];
			if (!same_pair(d, o))
				continue;
			if (o->tty->master && (!*m || *m == o))
				*m = o;
			else if (!o->tty->master) {
				bool dup = false;
				for (size_t k = 0; k < *ns; k++)
					dup |= (*sl)[k]->id == o->id;
				if (!dup)
					(*sl)[(*ns)++] = o;
			}
		}
	if (!*m) {
		pr_err("files image: pty %u has no master", d->tty->index);
		return -EINVAL;
	}
	return 0;
}

static int tty_open_task(struct fd_rst *s, size_t i)
{
	Files *f = (Files *)s->f;
	const FileDesc *m, **sl;
	size_t ns;
	int ret = gather(&f, 1, f->files[i], &m, &sl, &ns);
	if (ret) {
		free(sl);
		return ret;
	}
	_cleanup_free_ int *sfd = calloc(ns + 1, sizeof(int));
	int mfd;
	ret = sfd ? pty_open_pair(m, sl, ns, -1, &mfd, sfd) : -ENOMEM;
	for (size_t k = 0; !ret && k <= ns; k++) {
		const FileDesc *d = k < ns ? sl[k] : m;
		int fd = k < ns ? sfd[k] : mfd;
		ssize_t j = fd_desc_index(f, d->id);
		int r = fd_stage(fd, s->stage_lo, fd_desc_fd(f, (size_t)j), fd_desc_name(d));
		if (r < 0) {
			ret = r;
			for (size_t q = k + 1; q <= ns; q++)
				close(q < ns ? sfd[q] : mfd);
			break;
		}
		s->staged[j] = r;
	}
	free(sl);
	return ret;
}

/* A pair of a devpts instance of the tree (not stasis's /dev/pts): left to the task that
 * holds all of it (it opens it in its mount tree), or, held by several processes, to the
 * creator of their mount namespace: stasis makes it in that namespace's rebuilt tree
 * when the creator asks for its files (files_make_in_root), before the others exist. */
static int defer_own_devpts(struct fd_tree *t, const FileDesc *m, const FileDesc *const *sl,
			    size_t ns)
{
	ssize_t owner = -2, holder = -1;
	bool several = false;
	for (size_t p = 0; p < t->n; p++)
		for (size_t i = 0; i < t->f[p]->n_files; i++) {
			if (!same_pair(t->f[p]->files[i], m))
				continue;
			ssize_t k = t->mnt ? t->mnt[p] : -1;
			several |= holder >= 0 && holder != (ssize_t)p;
			holder = (ssize_t)p;
			owner = owner == -2 || owner == k ? k : -1;
		}
	if (!several)
		return 0; /* opened by its task */
	if (owner < 0 || !t->defer) {
		pr_err("restore: pty %u of a devpts instance of the tree is held by processes "
		       "that are not all in one mount namespace the tree makes", m->tty->index);
		return -EINVAL;
	}
	t->defer[m->id] = owner;
	for (size_t k = 0; k < ns; k++)
		t->defer[sl[k]->id] = owner;
	return 0;
}

static int tty_open_tree(struct fd_tree *t, const FileDesc *d)
{
	const FileDesc *m, **sl;
	size_t ns;
	int ret = gather(t->f, t->n, d, &m, &sl, &ns);
	bool in_tree = !ret && (m->tty->own_devpts || m->tty->task_view);
	if (in_tree && t->rootfd < 0)
		ret = defer_own_devpts(t, m, sl, ns);
	if (ret || (in_tree && t->rootfd < 0)) {
		free(sl);
		return ret;
	}
	_cleanup_free_ int *sfd = calloc(ns + 1, sizeof(int));
	int mfd;
	ret = sfd ? pty_open_pair(m, sl, ns, in_tree ? t->rootfd : -1, &mfd, sfd) : -ENOMEM;
	for (size_t k = 0; !ret && k <= ns; k++) {
		const FileDesc *o = k < ns ? sl[k] : m;
		int fd = k < ns ? sfd[k] : mfd;
		if (fcntl(fd, F_SETFL, (int)(o->flags & SETFL_MASK)) < 0)
			ret = pr_perror("restore: status flags of pty %u", d->tty->index);
		if (ret) {
			for (size_t q = k; q <= ns; q++)
				close(q < ns ? sfd[q] : mfd);
			break;
		}
		ret = fd_gfd_place(fd, t->base, &t->gfd[o->id]);
		if (ret)
			for (size_t q = k + 1; q <= ns; q++)
				close(q < ns ? sfd[q] : mfd);
	}
	free(sl);
	return ret;
}

/* The controlling terminal of a session leader of a single-process restore (else taken
 * early, tty_ctty_early): its fds are placed. */
static int tty_late(struct fd_rst *s)
{
	const Files *f = s->f;
	pid_t me = getpid();
	if (getsid(0) != me)
		return 0;
	for (size_t k = 0; k < f->n_fds; k++) {
		ssize_t i = fd_desc_index(f, f->fds[k]->file_id);
		const FileDesc *d = f->files[i];
		if (!is_pty(d) || !d->tty->has_sid || d->tty->sid_self != me)
			continue;
		if (ioctl((int)f->fds[k]->fd, TIOCSCTTY, 0))
			return pr_perror("restore: pid %d: take pty %u as controlling terminal", me,
					 d->tty->index);
		return 0;
	}
	return 0;
}

int files_ctty_early(const Files *f, const int *gfd, uint32_t n_gfd, pid_t sid)
{
	for (size_t i = 0; gfd && f && i < f->n_files; i++) {
		const FileDesc *d = f->files[i];
		if (!is_pty(d) || !d->tty->has_sid || d->tty->sid != sid)
			continue;
		if (d->id >= n_gfd || gfd[d->id] < 0)
			continue; /* opened by the task itself: its late hook */
		if (ioctl(gfd[d->id], TIOCSCTTY, 0))
			return pr_perror("restore: pid %d: take pty %u as controlling terminal",
					 sid, d->tty->index);
		return 1;
	}
	return 0;
}

/* In the leader's remote stage, every group existing: the foreground group. */
int files_tty_fg(struct rst_ctx *c)
{
	const Files *f = c->files;
	for (size_t k = 0; f && k < f->n_fds; k++) {
		ssize_t i = fd_desc_index(f, f->fds[k]->file_id);
		const FileDesc *d = f->files[i];
		if (!is_pty(d) || !d->tty->has_sid || d->tty->sid != c->pid || !d->tty->has_fg_pgrp)
			continue;
		int32_t pg = d->tty->fg_pgrp;
		int ret = rsys_poke(&c->rs, c->rs.scratch, &pg, sizeof(pg));
		if (ret)
			return ret;
		long r = rsys_do(&c->rs, "restore: TIOCSPGRP", SYS_ioctl, (uint64_t)f->fds[k]->fd,
				 TIOCSPGRP, c->rs.scratch, 0, 0, 0);
		if (r < 0)
			return pr_errno((int)r, "restore: pid %d: foreground group %d of pty %u",
					c->pid, pg, d->tty->index);
		return 0;
	}
	return 0;
}

/* /dev/tty descriptions, once every other fd is placed (the controlling terminal is
 * taken by then: tty_late or tty_ctty_early): opened by name. */
static int devtty_late(struct fd_rst *s)
{
	const Files *f = s->f;
	for (size_t i = 0; i < f->n_files; i++) {
		const FileDesc *d = f->files[i];
		int target = fd_desc_fd(f, i);
		if (d->kind != FILE_KIND__FILE_TTY || !d->tty->devtty || s->staged[i] >= 0 ||
		    target < 0)
			continue;
		int tmp = open("/dev/tty", (int)(d->flags & O_ACCMODE) | O_NOCTTY | O_CLOEXEC);
		if (tmp < 0)
			return pr_perror("restore fd %d: open /dev/tty", target);
		if (fcntl(tmp, F_SETFL, (int)(d->flags & SETFL_MASK)) < 0) {
			int ret = pr_perror("restore fd %d: status flags of /dev/tty", target);
			close(tmp);
			return ret;
		}
		int st = fd_stage(tmp, s->stage_lo, target, "/dev/tty");
		if (st < 0)
			return st;
		int ret = 0;
		for (size_t k = 0; k < f->n_fds && !ret; k++)
			if (f->fds[k]->file_id == d->id &&
			    dup3(st, (int)f->fds[k]->fd, f->fds[k]->cloexec ? O_CLOEXEC : 0) < 0)
				ret = pr_perror("restore fd %d (/dev/tty): dup3", f->fds[k]->fd);
		close(st);
		if (ret)
			return ret;
	}
	return 0;
}

static bool devtty_owns(const FileDesc *d)
{
	return d->tty && d->tty->devtty;
}

static bool pty_owns(const FileDesc *d)
{
	return !devtty_owns(d);
}

const struct fd_ops fd_devtty_ops = {
	.name = "/dev/tty",
	.kind = FILE_KIND__FILE_TTY,
	.flags = FD_OPS_LATE,
	.owns = devtty_owns,
	.validate = devtty_validate,
	.late = devtty_late,
};

const struct fd_ops fd_tty_ops = {
	.name = "pty",
	.kind = FILE_KIND__FILE_TTY,
	.flags = FD_OPS_ROOT_GROUP,
	.fdinfo_keys = (const char *const[]){ "tty-index", NULL },
	.owns = pty_owns,
	.classify = tty_classify,
	.dump = tty_dump,
	.merge = tty_merge,
	.validate = tty_validate,
	.open_task = tty_open_task,
	.open_tree = tty_open_tree,
	.late = tty_late,
};
