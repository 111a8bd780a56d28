# stasis-check: timeout=90 needs=root
# stasis-check: why=(userfaultfd of another process: pidfd_getfd, ptrace)
"""The page server (`stasis page-server`, `dump --page-server`), CRIU's way: one server
per image. A process holding 64 MiB (the workload of incr_chain) is pre-dumped to a
page server on loopback (both through `criu`, CRIU's command lines: `criu page-server`,
`criu pre-dump --page-server --address --port`), writes 1 MiB, is pre-dumped again against the first to a new
server, writes more, and is dumped against the second to a third: the dumping side keeps
no pages file (metadata only), each server's directory holds a complete image, and the
chain of the servers' images restores exactly, lazily (`--lazy-pages`, the pages written
since the previous dump in first, the log says: the pages left in
the parent images served on fault too), the sha256 of all its memory right. Then the
failures: a server that takes the hello and some pages and then closes the connection
fails the dump with one line naming the page server, the process runs on exactly as it
was (state comparison) and no temporary directory is left on either side; a client that
goes away mid-image, one that names a file outside the image and one that speaks another
protocol version each end the server with status 1, its reason logged, and nothing in
its directory. Last, a byte of the first image's pages flipped: the lazy restore kills
the tree when it serves that piece (checksum mismatch), a full one refuses."""
import os
import re
import select
import shutil
import socket
import struct
import subprocess
import sys
import time

from checks.incr_chain import WORKLOAD, Work, grandparent_offset, keepers, must
from lib import statecmp
from lib.proc import Failure, in_rootless_container, kill_pid, pid_alive, reap_all, \
    run_cmd, wait_pid
from lib.statecmp_allow import ALLOW

MIB = 1 << 20
MAGIC = 0x31505453
HELLO, OPEN, WRITE, LINK, COMMIT, REPLY = 1, 2, 3, 4, 5, 6


class Server:
    """A `stasis page-server` on 127.0.0.1, port chosen by the kernel."""

    def __init__(self, c, d, criu=None):
        self.c = c
        argv = [criu, "page-server", "-v4"] if criu else [c.stasis, "page-server", "-v"]
        self.p = subprocess.Popen(argv + ["-D", d, "--address", "127.0.0.1", "--port", "0"],
                                  cwd=c.tmp,
                                  stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, text=True)
        line = self.line()
        if not line.startswith("listening on 127.0.0.1:"):
            self.stop()
            raise Failure("page-server did not say where it listens: %r" % line)
        self.port = line.rsplit(":", 1)[1]

    def line(self):
        r, _, _ = select.select([self.p.stdout], [], [], self.c.timeout / 3)
        return self.p.stdout.readline().strip() if r else ""

    def finish(self):
        """(exit status, its stdout, its stderr), bounded."""
        try:
            out, err = self.p.communicate(timeout=self.c.timeout / 3)
        except subprocess.TimeoutExpired:
            self.stop()
            raise Failure("page-server did not exit after its image")
        return self.p.returncode, out, err

    def stop(self):
        if self.p.poll() is None:
            kill_pid(self.p.pid)
            self.p.wait(timeout=10)


def lazy_areas(pid):
    """Areas of @pid still registered with a userfaultfd for missing pages."""
    with open("/proc/%d/smaps" % pid) as f:
        return sum(1 for ln in f if ln.startswith("VmFlags:") and " um" in ln)


def msg(t, ident=0, off=0, payload=b""):
    return struct.pack("<IHHIIQ", MAGIC, t, 0, ident, len(payload), off) + payload


def hello(name=b"", flags=0, version=1):
    return msg(HELLO, payload=struct.pack("<II64s", version, flags, name))


def fake_client(c, d, frames, what):
    """Sends @frames to a new server of @d: it must exit 1, leave @d absent and log a
    reason. Returns its stderr."""
    s = Server(c, d)
    try:
        with socket.create_connection(("127.0.0.1", int(s.port)), timeout=10) as k:
            for f in frames:
                try:
                    k.sendall(f)
                except OSError:
                    break
            k.shutdown(socket.SHUT_WR)
            try:
                while k.recv(4096):
                    pass
            except OSError:
                pass
        rc, _, err = s.finish()
    finally:
        s.stop()
    if rc != 1:
        raise Failure("%s: page-server exited %s (want 1): %s" % (what, rc, err[-300:]))
    parent = os.path.dirname(d)
    left = [e for e in os.listdir(parent) if e.startswith(os.path.basename(d))]
    if left:
        raise Failure("%s: page-server left %s" % (what, left))
    return err


def fake_server(c):
    """A server that answers the hello, takes 3 MiB and hangs up: (port, thread)."""
    import threading
    ls = socket.socket()
    ls.bind(("127.0.0.1", 0))
    ls.listen(1)
    ls.settimeout(c.timeout / 3)

    def serve():
        try:
            k, _ = ls.accept()
            with k:
                k.settimeout(10)
                got = b""
                while len(got) < 24 + 72:
                    got += k.recv(4096)
                k.sendall(msg(REPLY, payload=b"ready"))
                n = len(got)
                while n < 3 * MIB:
                    b = k.recv(1 << 16)
                    if not b:
                        break
                    n += len(b)
        except OSError:
            pass
        finally:
            ls.close()
    t = threading.Thread(target=serve, daemon=True)
    t.start()
    return ls.getsockname()[1], t


def check(c):
    wd = os.path.join(c.tmp, "ps-work")
    os.makedirs(wd, exist_ok=True)
    loc, srv = os.path.join(c.tmp, "ps-local"), os.path.join(c.tmp, "ps-server")
    os.makedirs(loc, exist_ok=True)
    os.makedirs(srv, exist_ok=True)
    before_keepers = set(keepers())
    p = subprocess.Popen([sys.executable, "-c", WORKLOAD], cwd=wd, stdin=subprocess.DEVNULL,
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    pid = p.pid
    w = Work(c, wd)
    servers = []
    try:
        w.wait(0)

        criu = os.path.join(c.tmp, "criu")
        if not os.path.exists(criu):
            os.symlink(os.path.abspath(c.stasis), criu)

        def over_server(i, *args, as_criu=False):
            s = Server(c, os.path.join(srv, "d%d" % i), criu if as_criu else None)
            servers.append(s)
            argv = [criu] + list(args) if as_criu else [c.stasis] + list(args)
            rc, _, err = run_cmd(argv + ["-t", str(pid), "-D", os.path.join(loc, "d%d" % i),
                                         "--page-server", "--address", "127.0.0.1",
                                         "--port", s.port] + ([] if as_criu else
                                                              ["--no-sync"]),
                                 c.timeout, cwd=c.tmp)
            if rc != 0:
                raise Failure("dump %d over the page server failed: %s" % (
                    i, err.strip()[:400]))
            rc, out, err = s.finish()
            if rc != 0 or "image %s/d%d" % (srv, i) not in out:
                raise Failure("page-server %d: exit %s, %r: %s" % (i, rc, out, err[-300:]))
            if os.path.exists(os.path.join(loc, "d%d" % i, "pages-%d.img" % pid)):
                raise Failure("dump %d over the page server wrote a local pages file" % i)
            return os.path.getsize(os.path.join(srv, "d%d" % i, "pages-%d.img" % pid))

        s1 = over_server(1, "pre-dump", "--track-mem", as_criu=True)  # CRIU's spellings
        w.cmd("write 100 256")                      # 1 MiB
        s2 = over_server(2, "pre-dump", "--prev-images-dir", "../d1")
        w.cmd("write 3000 512")                     # 2 MiB
        want = w.cmd("new 4")                       # 4 MiB in a new area
        s3 = over_server(3, "dump", "--prev-images-dir", "../d2")
        p.wait(timeout=c.timeout)
        sizes = "server's pages files: %.1f, %.1f, %.1f MiB" % (s1 / MIB, s2 / MIB, s3 / MIB)
        if s1 < 64 * MIB or not (1 * MIB <= s2 <= 7 * MIB) or not (6 * MIB <= s3 <= 12 * MIB):
            raise Failure("unexpected sizes (want >= 64, 1-7, 6-12 MiB): %s" % sizes)
        os.unlink(os.path.join(wd, "done"))
        # lazily: the runs left in the parent images are served on fault too (not as
        # root of a user namespace: kernel-mode userfaultfd needs CAP_SYS_PTRACE)
        lazy = [] if in_rootless_container() else ["--lazy-pages"]
        lazylog = os.path.join(c.tmp, "ps-lazy.log")
        must(c, "restore from the server's image",
             *c.restore_argv(os.path.join(srv, "d3"))[1:], *lazy, "-o", lazylog, "-v")
        # left alone (it waits for a command), the process gets its pages from the
        # background pass only: those written since the previous dump first
        deadline = time.monotonic() + c.timeout / 3
        while lazy_areas(pid) and time.monotonic() < deadline:  # the page server done
            time.sleep(0.05)
        if lazy_areas(pid):
            raise Failure("areas still registered for lazy restore: %d" % lazy_areas(pid))
        got = w.cmd("hash")
        if got != want:
            raise Failure("restored memory differs: sha256 %s, want %s" % (got, want))
        if lazy:
            text = open(lazylog).read()
            hot = re.search(r"pid %d: the pages written since the previous dump are in after "
                            r"[0-9.]+ ms, ([0-9]+) bytes copied so far" % pid, text)
            done = re.search(r"pid %d: all memory in after [0-9.]+ ms: [0-9]+ faults served, "
                             r"([0-9]+) bytes copied" % pid, text)
            if not hot or not done or not 6 * MIB <= int(hot.group(1)) < int(done.group(1)):
                lines = [ln for ln in text.splitlines()
                         if "pid %d: " % pid in ln and ("written since" in ln or
                                                        "all memory in" in ln)]
                raise Failure("the lazy restore did not copy the 6 MiB written since the "
                              "previous dump first: %s" % (" | ".join(lines) or
                                                           "no such lines in " + lazylog))

        # a server that hangs up mid-image: the dump fails, the process is untouched
        snap = statecmp.snapshot(pid)
        port, t = fake_server(c)
        bad = os.path.join(loc, "hangup")
        line = c.expect_failure([c.stasis, "dump", "-t", str(pid), "-D", bad, "--no-sync",
                                 "--leave-running", "--page-server", "--address",
                                 "127.0.0.1", "--port", str(port)],
                                "dump to a page server that hangs up", allowed=(pid,))
        t.join(10)
        if "page server" not in line:
            raise Failure("hang-up: the error does not name the page server: %s" % line)
        if not pid_alive(pid):
            raise Failure("the process died with the failed dump")
        diffs = statecmp.compare(snap, statecmp.snapshot(pid), ALLOW, {})
        if diffs:
            raise Failure("the process changed: %s" % "; ".join(
                statecmp.describe(d) for d in diffs[:5]))
        left = [e for e in os.listdir(loc) if e.startswith("hangup")]
        if left:
            raise Failure("the failed dump left %s" % left)
        if w.cmd("hash") != want:
            raise Failure("the memory changed after the failed dump")

        # clients the server must refuse, leaving nothing
        gone = fake_client(c, os.path.join(srv, "x1"), [
            hello(), msg(OPEN, 0, payload=b"pages-1.img"),
            msg(WRITE, 0, 4096, b"\0" * 65536)], "a client gone mid-image")
        if "not complete" not in gone:
            raise Failure("client gone: the server does not say so: %s" % gone[-300:])
        out = fake_client(c, os.path.join(srv, "x2"), [
            hello(), msg(OPEN, 0, payload=b"../../etc/passwd")], "a path outside the image")
        if "not an image file" not in out:
            raise Failure("hostile name: the server does not say so: %s" % out[-300:])
        out = fake_client(c, os.path.join(srv, "x3"), [hello(version=3)], "version 3")
        if "version 3" not in out:
            raise Failure("version: the server does not say so: %s" % out[-300:])

        # a corrupted grandparent: a lazy restore verifies each parent piece as it
        # serves it (the tree killed, never run on with wrong memory); a full one refuses
        kill_pid(pid)
        wait_pid(pid, time.monotonic() + 10)
        reap_all()
        d3 = os.path.join(srv, "d3")
        pf = os.path.join(srv, "d1", "pages-%d.img" % pid)
        c.flip(pf, grandparent_offset(c, d3, pid))
        if lazy:
            log = os.path.join(c.tmp, "ps-lazy-bad.log")
            rc, _, err = run_cmd(c.restore_argv(d3) + lazy + ["-o", log], c.timeout,
                                 cwd=c.tmp)
            # the chain is not read ahead: the tree runs, then is killed; or the page
            # server's second copier meets the bad piece while the restore goes on: the
            # restore fails, its last word the mismatch
            wait_pid(pid, time.monotonic() + c.timeout / 3)
            if pid_alive(pid):
                raise Failure("a tree restored from a corrupted parent still runs")
            text = open(log).read() if os.path.exists(log) else err
            if rc != 0 and "checksum mismatch" not in err.strip().splitlines()[-1]:
                raise Failure("lazy restore from a corrupted parent: rc %s: %s" % (
                    rc, err.strip()[-300:]))
            if "checksum mismatch" not in text:
                raise Failure("corrupted parent, lazily: no checksum mismatch said: %s" %
                              text[-300:])
        else:
            line = c.expect_failure(c.restore_argv(d3), "restore with a corrupted parent",
                                    pid=pid)
            if "checksum mismatch" not in line:
                raise Failure("corrupted parent: the error does not say so: %s" % line)
        return "%s; chain restored %sexactly; hang-up, lost client, hostile name, version " \
               "refused; a corrupted parent page caught" % (sizes, "lazily, " if lazy else "")
    finally:
        for s in servers:
            s.stop()
        kill_pid(pid)
        wait_pid(pid, time.monotonic() + 10)
        for k in set(keepers()) - before_keepers:
            kill_pid(k)
        reap_all()
        shutil.rmtree(wd, ignore_errors=True)
        shutil.rmtree(loc, ignore_errors=True)
        shutil.rmtree(srv, ignore_errors=True)
