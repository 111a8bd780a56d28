# stasis-check: timeout=90 needs=root
# stasis-check: why=(userfaultfd of another process: pidfd_getfd, ptrace)
"""Restore with the pages on a page server (`page-server --serve`, `restore --page-server`):
the post-copy shape of a migration, where the pages stay where the dump wrote them and
the other side gets only the metadata. A process holding 64 MiB (incr_chain's workload)
is pre-dumped, writes 1 MiB and a new 4 MiB area, and is dumped against the pre-dump,
locally. The metadata of both images (no pages file) is copied to a directory of its
own with the `parent` link, and `stasis page-server --serve` serves the dump directory.
Restored lazily from there (pages of both images fetched on fault and by the background
pass), the sha256 of its memory is right and every area ends up unregistered; killed,
then restored again fully (not lazy) from the same server: right again. A byte of the pre-dump's pages flipped on the server: the lazily restored
tree is killed when that piece is served ("checksum mismatch"). The server then
refuses what is not its to serve, each with its reason and the connection closed: a
path out of the image, a `parent` link that leads out of the served directory, a write
session. Killing the server ends its sessions."""
import json
import os
import shutil
import socket
import struct
import subprocess
import sys
import time

from checks.incr_chain import WORKLOAD, Work, must
from checks.page_server import HELLO, REPLY, hello, lazy_areas, msg
from lib.proc import Failure, in_rootless_container, kill_pid, pid_alive, proc_children, \
    reap_all, run_cmd, wait_pid

OPENR, READ, DATA, READC = 8, 9, 10, 11
F_READ = 4
MIB = 1 << 20


class Serve:
    """`stasis page-server --serve` on 127.0.0.1, port chosen by the kernel."""

    def __init__(self, c, d):
        self.p = subprocess.Popen([c.stasis, "page-server", "-v", "--serve", "-D", d,
                                   "--address", "127.0.0.1", "--port", "0"], cwd=c.tmp,
                                  stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                  stderr=subprocess.DEVNULL, text=True)
        line = self.p.stdout.readline().strip()
        if not line.startswith("listening on 127.0.0.1:"):
            self.stop()
            raise Failure("page-server --serve did not say where it listens: %r" % line)
        self.port = line.rsplit(":", 1)[1]

    def stop(self):
        kids = proc_children(self.p.pid)
        if self.p.poll() is None:
            kill_pid(self.p.pid)
            self.p.wait(timeout=10)
        return kids


def copy_meta(src, dst):
    """Every file of image @src but its pages files, and its `parent` link, into @dst."""
    os.makedirs(dst)
    for e in os.listdir(src):
        p = os.path.join(src, e)
        if os.path.islink(p):
            os.symlink(os.readlink(p), os.path.join(dst, e))
        elif not e.startswith("pages-"):
            shutil.copy(p, dst)


def ask(port, frames, what):
    """Sends a read-session hello and @frames; the server's last answer must be a REPLY
    with an error (returned), then the connection closed."""
    got = b""
    with socket.create_connection(("127.0.0.1", int(port)), timeout=10) as k:
        try:
            k.sendall(b"".join(frames))
            k.shutdown(socket.SHUT_WR)
            while True:
                b = k.recv(65536)
                if not b:
                    break
                got += b
        except OSError as e:  # a reset after the reply still shows the reply
            if not got:
                raise Failure("%s: the connection ended without a reason: %s" % (what, e))
    last, off = None, 0
    while off + 24 <= len(got):
        magic, t, _, _, ln, st = struct.unpack_from("<IHHIIQ", got, off)
        last = (t, st, got[off + 24:off + 24 + ln])
        off += 24 + ln
    if not last or last[0] != REPLY or not last[1]:
        raise Failure("%s: the server did not refuse it (last answer %r)" % (what, last))
    return last[2].decode(errors="replace")


def session(port, frames, n):
    """Sends @frames on a read session of version 2 and returns the first @n answers
    (type, id, off, payload) after the hello's REPLY."""
    got, out = b"", []
    with socket.create_connection(("127.0.0.1", int(port)), timeout=10) as k:
        k.sendall(b"".join(frames))
        while len(out) < n + 1:
            while len(got) < 24 or len(got) < 24 + struct.unpack_from("<I", got, 12)[0]:
                b = k.recv(1 << 20)
                if not b:
                    raise Failure("the server closed the session after %d answers" % len(out))
                got += b
            _, t, _, ident, ln, off = struct.unpack_from("<IHHIIQ", got)
            out.append((t, ident, off, got[24:24 + ln]))
            got = got[24 + ln:]
    return out[1:]


def readc_checks(port, d1, pid):
    """READC (version 2): part of a piece with the checksum of the whole piece (what a lazy
    restore's fault takes from a page server), its bounds, its version."""
    name = b"pages-%d.img" % pid
    with open(os.path.join(d1, name.decode()), "rb") as f:
        data = f.read()
    piece = 2 * MIB
    base = 4096 if len(data) >= 4096 + 2 * piece else 0
    if len(data) < base + piece + 8192:
        raise Failure("the pre-dump's pages file is too small: %d bytes" % len(data))

    def rc(poff, plen, so, sl):
        return msg(READC, 0, poff, struct.pack("<IIII", plen, so, sl, 0))
    rd = [hello(name=b"d1", flags=F_READ, version=2), msg(OPENR, 0, payload=name)]
    a = session(port, rd + [rc(base, piece, 65536, 4096), rc(base, piece, 0, 65536),
                            rc(base + piece, piece, 0, 4096)], 4)
    if a[0][0] != DATA or a[0][2] != len(data):
        raise Failure("OPENR: %r" % (a[0][:3],))
    for (t, ident, off, pl), (want_off, n) in zip(a[1:], ((base + 65536, 4096), (base, 65536),
                                                           (base + piece, 4096))):
        if t != DATA or ident or off != want_off or len(pl) != n + 16:
            raise Failure("READC at %d: answer %r with %d bytes" % (want_off, (t, ident, off),
                                                                    len(pl)))
        if pl[:n] != data[off:off + n]:
            raise Failure("READC at %d: not the file's bytes" % off)
    h = [struct.unpack_from("<QQ", pl, len(pl) - 16) for _, _, _, pl in a[1:]]
    if h[0][0] != h[1][0] or h[0][0] == h[2][0] or h[0][1] == h[1][1]:
        raise Failure("READC checksums: one piece's differ or two pieces' agree: %r" % h)
    for frames, why, what in (
            ([hello(name=b"d1", flags=F_READ), msg(OPENR, 0, payload=name),
              rc(base, piece, 0, 4096)], "bad checked read", "a READC in a version 1 session"),
            (rd + [rc(base, piece, piece - 4096, 8192)], "out of bounds",
             "a part beyond its piece"),
            (rd + [rc(base, 9 * MIB, 0, 4096)], "out of bounds", "a piece over 8 MiB"),
            (rd + [rc(len(data) - 4096, piece, 0, 4096)], "the file has",
             "a piece beyond the end of the file")):
        out = ask(port, frames, what)
        if why not in out:
            raise Failure("%s: %s" % (what, out))
    return "READC served a piece's part with its checksum and refused 4 requests"


def check(c):
    wd = os.path.join(c.tmp, "sv-work")
    src, dst = os.path.join(c.tmp, "sv-src"), os.path.join(c.tmp, "sv-dst")
    os.makedirs(wd)
    os.makedirs(src)
    p = subprocess.Popen([sys.executable, "-c", WORKLOAD], cwd=wd, stdin=subprocess.DEVNULL,
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    pid = p.pid
    w = Work(c, wd)
    srv = None
    try:
        w.wait(0)
        must(c, "pre-dump", "pre-dump", "-t", str(pid), "-D", os.path.join(src, "d1"))
        w.cmd("write 100 256")
        want = w.cmd("new 4")
        must(c, "dump", "dump", "-t", str(pid), "-D", os.path.join(src, "d2"),
             "--prev-images-dir", "../d1")
        p.wait(timeout=c.timeout)
        os.unlink(os.path.join(wd, "done"))
        copy_meta(os.path.join(src, "d1"), os.path.join(dst, "d1"))
        copy_meta(os.path.join(src, "d2"), os.path.join(dst, "d2"))
        srv = Serve(c, src)
        remote = ["--page-server", "--address", "127.0.0.1", "--port", srv.port]
        lazy = [] if in_rootless_container() else ["--lazy-pages"]
        for mode in (lazy, []):
            argv = c.restore_argv(os.path.join(dst, "d2"))[1:] + remote + mode
            must(c, "restore %s from the page server" % (mode or "fully"), *argv)
            w.n = 2  # the workload's count at the dump
            got = w.cmd("hash")
            if got != want:
                raise Failure("restored %s: memory sha256 %s, want %s" % (
                    mode or "fully", got, want))
            deadline = time.monotonic() + c.timeout / 3
            while lazy_areas(pid) and time.monotonic() < deadline:
                time.sleep(0.05)
            if lazy_areas(pid):
                raise Failure("areas still registered: %d" % lazy_areas(pid))
            kill_pid(pid)
            wait_pid(pid, time.monotonic() + 10)
            reap_all()
            os.unlink(os.path.join(wd, "done"))

        readc = readc_checks(srv.port, os.path.join(src, "d1"), pid)

        # a byte of the pre-dump's pages flipped on the server: the lazily restored tree
        # is killed when that piece is first served, never run on with it
        if lazy:
            rc, out, err = run_cmd([c.stasis, "show", os.path.join(dst, "d2",
                                                                  "mm-%d.img" % pid)],
                                   c.timeout)
            runs = json.loads(out)
            runs = runs.get("mm", runs)["pages"]
            off = [int(str(r["offset"]), 0) + 8 * 4096 + 123 for r in runs
                   if int(r.get("parent_depth", 0)) == 1 and int(r["nr_pages"]) > 16]
            if rc != 0 or not off:
                raise Failure("no run of the dump lies in the pre-dump: %s" % err[-200:])
            c.flip(os.path.join(src, "d1", "pages-%d.img" % pid), off[0])
            log = os.path.join(c.tmp, "sv-bad.log")
            rc, _, err = run_cmd(c.restore_argv(os.path.join(dst, "d2")) + remote + lazy +
                                 ["-o", log], c.timeout, cwd=c.tmp)
            if rc != 0:
                raise Failure("lazy restore with a corrupted page there: rc %s: %s" % (
                    rc, err.strip()[-300:]))
            wait_pid(pid, time.monotonic() + c.timeout / 3)
            if pid_alive(pid):
                raise Failure("a tree restored from a corrupted page still runs")
            if "checksum mismatch" not in open(log).read():
                raise Failure("corrupted page: no checksum mismatch said")
            reap_all()

        # what the server must not serve
        rd = hello(name=b"d2", flags=F_READ)
        out = ask(srv.port, [rd, msg(OPENR, 0, payload=b"../d1/pages-%d.img" % pid)],
                  "a path out of the image")
        if "not an image file" not in out:
            raise Failure("path out: %s" % out)
        evil = os.path.join(src, "evil")
        os.makedirs(evil)
        os.symlink("/proc/self", os.path.join(evil, "parent"))
        out = ask(srv.port, [hello(name=b"evil", flags=F_READ),
                             msg(OPENR, 0, payload=b"parent/pages-1.img")],
                  "a parent link out of the served directory")
        if "outside the served directory" not in out:
            raise Failure("parent link out: %s" % out)
        out = ask(srv.port, [hello(name=b"d3")], "a write session")
        if "--serve" not in out:
            raise Failure("write session: %s" % out)
        out = ask(srv.port, [rd, msg(READ, 7, 0, struct.pack("<I", 4096))],
                  "a read of a file never opened")
        if "never opened" not in out:
            raise Failure("read of a file never opened: %s" % out)
        # a session open when the server is killed ends with it
        k = socket.create_connection(("127.0.0.1", int(srv.port)), timeout=10)
        k.sendall(rd)
        if struct.unpack_from("<IHHIIQ", k.recv(24 + 64))[1] != REPLY:
            raise Failure("no answer to a read session's hello")
        kids = srv.stop()
        srv = None
        deadline = time.monotonic() + 10
        while any(os.path.exists("/proc/%d" % s) for s in kids) and \
                time.monotonic() < deadline:
            reap_all()
            time.sleep(0.05)
        k.close()
        left = [s for s in kids if os.path.exists("/proc/%d/stat" % s)]
        if left:
            raise Failure("sessions outlived the server: %s" % left)
        return "lazily and fully restored from a page server; a corrupted page there " \
               "caught; 4 requests refused; %s" % readc
    finally:
        if srv:
            srv.stop()
        kill_pid(pid)
        wait_pid(pid, time.monotonic() + 10)
