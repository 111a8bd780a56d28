# stasis-check: timeout=60 needs=root
# stasis-check: why=(userfaultfd of another process: pidfd_getfd, ptrace)
"""Incremental dumps: a process holding 64 MiB of private memory (python, commands read
from a file) is pre-dumped (write tracking armed), writes 1 MiB and makes that memory
MADV_DONTFORK (its areas' bounds unchanged), is pre-dumped again against the first
(--prev-images-dir ../d1: it takes the areas' flags from there, no smaps read; the
restored buffer must be DONTFORK all the same: the dump that ends a chain reads them), writes 2 MiB more, maps 4 MiB anew and
drops 64 KiB, and is dumped against the second. Each later pages file must hold the
pages written since the previous pass, not much more (the interpreter itself writes a
few MiB: slack of 6 MiB; the first holds all 64 MiB), and the chain of three restores
exactly (the sha256 of every buffer, asked of the restored process). Before that, a
corrupted parent (a flipped byte of a page the last dump refers to), a missing parent and
the wrong parent (the `parent` link pointed at the grandparent) are each one clear line
and nothing restored. Last, on the restored process: a pre-dump and then a dump that
fails at its commit (STASIS_FAULT) leave it exactly as before (the state comparison of
tests/lib/statecmp.py: no area still registered with userfaultfd, no fd more) and its
keeper gone; a plain dump refuses nothing afterwards."""
import json
import os
import shutil
import subprocess
import sys
import time

from lib import statecmp
from lib.proc import Failure, kill_pid, pid_alive, reap_all, run_cmd, wait_pid
from lib.statecmp_allow import ALLOW

MIB = 1 << 20

WORKLOAD = r"""
import hashlib, mmap, os, sys, time
P = mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS
N = 64 << 20
buf = mmap.mmap(-1, N, flags=P)
buf.write(os.urandom(N))
extra = []
def digest():
    h = hashlib.sha256(buf)
    for e in extra:
        h.update(e)
    return h.hexdigest()
def reply(n, text):
    with open("done.tmp", "w") as f:
        f.write("%d %s\n" % (n, text))
    os.rename("done.tmp", "done")
reply(0, digest())
n = 0
while True:
    time.sleep(0.01)
    try:
        cmd = open("cmd").read().split()
    except OSError:
        continue
    os.unlink("cmd")
    n += 1
    if cmd[0] == "write":
        off, ln = int(cmd[1]) << 12, int(cmd[2]) << 12
        buf[off:off + ln] = bytes([n]) * ln
    elif cmd[0] == "new":
        m = mmap.mmap(-1, int(cmd[1]) << 20, flags=P)
        m.write(bytes([n]) * (int(cmd[1]) << 20))
        extra.append(m)
    elif cmd[0] == "drop":
        buf.madvise(mmap.MADV_DONTNEED, int(cmd[1]) << 12, int(cmd[2]) << 12)
    elif cmd[0] == "dontfork":  # the whole area: its flags change, not its bounds
        buf.madvise(mmap.MADV_DONTFORK)
    elif cmd[0] == "dontdump":
        buf.madvise(mmap.MADV_DONTDUMP)
    reply(n, digest())
"""


class Work:
    def __init__(self, c, d):
        self.c, self.d, self.n = c, d, 0

    def wait(self, n):
        path = os.path.join(self.d, "done")
        deadline = time.monotonic() + self.c.timeout
        while time.monotonic() < deadline:
            try:
                k, h = open(path).read().split()
                if int(k) == n:
                    return h
            except (OSError, ValueError):
                pass
            time.sleep(0.01)
        raise Failure("the workload did not answer command %d" % n)

    def cmd(self, text):
        self.n += 1
        tmp = os.path.join(self.d, "cmd.tmp")
        with open(tmp, "w") as f:
            f.write(text + "\n")
        os.rename(tmp, os.path.join(self.d, "cmd"))
        return self.wait(self.n)


def stasis(c, *args, env=None):
    rc, _, err = run_cmd([c.stasis] + list(args), c.timeout, cwd=c.tmp) if env is None \
        else _run_env(c, args, env)
    return rc, err


def _run_env(c, args, env):
    p = subprocess.run([c.stasis] + list(args), cwd=c.tmp, env=dict(os.environ, **env),
                       stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                       stderr=subprocess.PIPE, text=True, timeout=c.timeout)
    return p.returncode, "", p.stderr


def must(c, what, *args):
    rc, err = stasis(c, *args)
    if rc != 0:
        raise Failure("%s failed: %s" % (what, err.strip()[:400]))


def pages_size(d, pid):
    return os.path.getsize(os.path.join(d, "pages-%d.img" % pid))


def keepers():
    """pids of live write-tracking keepers of ours: a keeper leaves the stasis that made
    it and is given to the runner, our subreaper (other suites' keepers are not ours)."""
    out = []
    for p in os.listdir("/proc"):
        if p.isdigit():
            try:
                with open("/proc/%s/stat" % p) as f:
                    s = f.read()
            except OSError:
                continue
            rest = s.rsplit(")", 1)[1].split()
            if "(stasis-track)" in s and rest[0] != "Z" and int(rest[1]) == os.getpid():
                out.append(int(p))
    return out


def dontfork_areas(pid):
    with open("/proc/%d/smaps" % pid) as f:
        return sum(1 for ln in f if ln.startswith("VmFlags:") and " dc" in ln)


def uffd_areas(pid):
    with open("/proc/%d/smaps" % pid) as f:
        return sum(1 for ln in f if ln.startswith("VmFlags:") and " uw" in ln)


def grandparent_offset(c, d, pid):
    """The offset in the grandparent's pages file of a page the image @d refers to."""
    rc, out, err = run_cmd([c.stasis, "show", os.path.join(d, "mm-%d.img" % pid)], c.timeout)
    if rc != 0:
        raise Failure("show mm-%d.img: %s" % (pid, err.strip()[:200]))
    runs = json.loads(out)
    runs = runs.get("mm", runs)["pages"]
    for r in runs:
        if int(r.get("parent_depth", 0)) == 2 and int(r["nr_pages"]) > 16:
            return int(str(r["offset"]), 0) + 8 * 4096 + 123
    raise Failure("the last image refers to no run of the first")


def check(c):
    wd = os.path.join(c.tmp, "incr-work")
    os.makedirs(wd, exist_ok=True)
    before_keepers = set(keepers())
    p = subprocess.Popen([sys.executable, "-c", WORKLOAD], cwd=wd, stdin=subprocess.DEVNULL,
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    pid, restored = p.pid, None
    w = Work(c, wd)
    try:
        w.wait(0)
        d1, d2, d3 = (os.path.join(c.tmp, "incr-d%d" % i) for i in (1, 2, 3))
        must(c, "pre-dump", "pre-dump", "-t", str(pid), "-D", d1, "--no-sync", "--track-mem")
        if uffd_areas(pid) == 0:
            raise Failure("no area of pid %d is registered for write tracking" % pid)
        w.cmd("write 100 256")                      # 1 MiB
        # the buffer made MADV_DONTFORK, the layout as it was: the second pre-dump takes
        # the areas' flags from the first (it reads no smaps), the dump that ends the chain
        # reads them, and the restored buffer must be DONTFORK (dc) again
        w.cmd("dontfork")
        log2 = os.path.join(c.tmp, "incr-d2.log")
        must(c, "second pre-dump", "pre-dump", "-t", str(pid), "-D", d2, "--no-sync",
             "--prev-images-dir", "../incr-d1", "-v", "-o", log2)
        with open(log2) as f:
            if "smaps not read" not in f.read():
                raise Failure("the second pre-dump read smaps: the layout kept is not used")
        w.cmd("write 3000 512")                     # 2 MiB
        w.cmd("new 4")                              # 4 MiB in a new area
        want = w.cmd("drop 9000 16")                # 64 KiB gone
        must(c, "dump", "dump", "-t", str(pid), "-D", d3, "--no-sync", "--prev-images-dir",
             d2)
        p.wait(timeout=c.timeout)
        s1, s2, s3 = pages_size(d1, pid), pages_size(d2, pid), pages_size(d3, pid)
        sizes = "pages files: %.1f, %.1f, %.1f MiB" % (s1 / MIB, s2 / MIB, s3 / MIB)
        if s1 < 64 * MIB or not (1 * MIB <= s2 <= 7 * MIB) or not (6 * MIB <= s3 <= 12 * MIB):
            raise Failure("unexpected sizes (want >= 64, 1-7, 6-12 MiB): %s" % sizes)
        left = set(keepers()) - before_keepers
        if left:
            raise Failure("write-tracking keepers left after the final dump: %s" % left)

        # bad chains: one line each, nothing restored
        ref = os.path.join(c.tmp, "incr-d1-moved")
        os.rename(d1, ref)
        line = c.expect_failure(c.restore_argv(d3), "restore with the grandparent missing",
                                pid=pid)
        if "parent image" not in line:
            raise Failure("missing parent: the error does not say so: %s" % line)
        os.rename(ref, d1)
        link = os.path.join(d3, "parent")
        os.unlink(link)
        os.symlink(d1, link)
        line = c.expect_failure(c.restore_argv(d3), "restore against the wrong parent",
                                pid=pid)
        if "image ids differ" not in line:
            raise Failure("wrong parent: the error does not say so: %s" % line)
        os.unlink(link)
        os.symlink(d2, link)
        pf = os.path.join(d1, "pages-%d.img" % pid)
        off = grandparent_offset(c, d3, pid)   # a page never written since the first
        c.flip(pf, off)
        line = c.expect_failure(c.restore_argv(d3), "restore with a corrupted parent",
                                pid=pid)
        if "checksum mismatch" not in line:
            raise Failure("corrupted parent: the error does not say so: %s" % line)
        c.flip(pf, off)
        line = c.expect_failure([c.stasis, "restore", "-D", d2, "-d"], "restore of a pre-dump",
                                pid=pid)
        if "pre-dump" not in line:
            raise Failure("restore of a pre-dump: the error does not say so: %s" % line)

        # the chain of three
        os.unlink(os.path.join(wd, "done"))
        must(c, "restore", *c.restore_argv(d3)[1:])
        restored = pid
        got = w.cmd("hash")
        if got != want:
            raise Failure("restored memory differs: sha256 %s, want %s" % (got, want))
        if dontfork_areas(pid) != 1:
            raise Failure("%d areas of the restored task are MADV_DONTFORK (dc), not the "
                          "buffer alone" % dontfork_areas(pid))

        # a pre-dump and a failed dump leave the task exactly as it was
        snap = statecmp.snapshot(pid)
        e1, e2 = os.path.join(c.tmp, "incr-e1"), os.path.join(c.tmp, "incr-e2")
        must(c, "pre-dump of the restored task", "pre-dump", "-t", str(pid), "-D", e1,
             "--no-sync")
        rc, err = stasis(c, "dump", "-t", str(pid), "-D", e2, "--no-sync", "--leave-running",
                         "--prev-images-dir", e1, env={"STASIS_FAULT": "dump:commit"})
        if rc == 0:
            raise Failure("the dump with STASIS_FAULT=dump:commit succeeded")
        if not pid_alive(pid) or uffd_areas(pid):
            raise Failure("after the failed dump: alive %s, %d areas still registered" % (
                pid_alive(pid), uffd_areas(pid)))
        left = set(keepers()) - before_keepers
        if left:
            raise Failure("write-tracking keepers left after the failed dump: %s" % left)
        diffs = statecmp.compare(snap, statecmp.snapshot(pid), ALLOW, {})
        if diffs:
            raise Failure("the task changed: %s" % "; ".join(
                statecmp.describe(d) for d in diffs[:5]))
        if w.cmd("hash") != want:
            raise Failure("the memory changed after the failed dump")

        # flags changed between a pre-dump and the dump after it, bounds kept (the buffer,
        # DONTFORK, made DONTDUMP too: no neighbour to merge with): the dump reads them
        f1, f2 = os.path.join(c.tmp, "incr-f1"), os.path.join(c.tmp, "incr-f2")
        must(c, "pre-dump before MADV_DONTDUMP", "pre-dump", "-t", str(pid), "-D", f1,
             "--no-sync")
        w.cmd("dontdump")
        must(c, "dump after MADV_DONTDUMP", "dump", "-t", str(pid), "-D", f2, "--no-sync",
             "--leave-running", "--prev-images-dir", f1)
        rc, out, err = run_cmd([c.stasis, "show", os.path.join(f2, "mm-%d.img" % pid)],
                               c.timeout)
        if rc != 0:
            raise Failure("show mm-%d.img: %s" % (pid, err.strip()[:200]))
        mm = json.loads(out)
        big = [v for v in mm.get("mm", mm)["vmas"]
               if int(str(v["end"]), 0) - int(str(v["start"]), 0) >= 64 * MIB]
        if len(big) != 1 or int(str(big[0].get("madv", 0)), 0) & 3 != 3:
            raise Failure("the dump after MADV_DONTDUMP: the buffer's area %s (madv: "
                          "dontfork 1, dontdump 2)" % big)
        return "%s; chain of 3 restored exactly" % sizes
    finally:
        kill_pid(pid)
        wait_pid(pid, time.monotonic() + 10)
        for k in set(keepers()) - before_keepers:
            kill_pid(k)
        reap_all()
        shutil.rmtree(wd, ignore_errors=True)
