# stasis-check: timeout=60
"""`stasis show` for one task, some kinds, and a task's memory. A python process holds
two 1 MiB regions, each starting with a marker. A full dump: `show --pid P --pages
ADDR+LEN` prints the first region's marker (hexdump, ASCII column); `--pid P --kind
core` shows exactly core-P.img, `--kind mm --kind files` exactly those kinds. Then
pre-dump, the first region rewritten with a new marker, and an incremental dump: the
first region shows the new marker (its pages in this image), the second the old one
(its pages in the parent image, reached through the `parent` link). A page nothing
stored says so; bad arguments fail with one line."""
import json
import os
import subprocess
import sys
import time

from lib.proc import Failure, kill_pid, wait_pid

PROG = r"""
import ctypes, mmap, os, sys
a = mmap.mmap(-1, 1 << 20, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)
b = mmap.mmap(-1, 1 << 20, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)
a.write(b"FIRST-REGION-MARKER-ONE." + os.urandom((1 << 20) - 24))
b.write(b"SECOND-REGION-MARKER-XY." + os.urandom((1 << 20) - 24))
addr = lambda m: ctypes.addressof(ctypes.c_char.from_buffer(m))
sys.stdout.write("%x %x\n" % (addr(a), addr(b))); sys.stdout.flush()
while True:
    if not sys.stdin.readline():
        break
    a.seek(0); a.write(b"FIRST-REGION-MARKER-TWO." + os.urandom((1 << 20) - 24))
    sys.stdout.write("done\n"); sys.stdout.flush()
"""


def run(c, *args):
    return subprocess.run([c.stasis, "show"] + list(args), capture_output=True, text=True,
                          timeout=c.timeout)


def text_of(dump):
    """The ASCII column of a hexdump (past "ADDR:" and 8 groups of 4 digits), joined."""
    return "".join(ln[17 + 40 + 2:] for ln in dump.splitlines() if "not stored" not in ln)


def memory(c, img, pid, addr, n):
    r = run(c, "--pid", str(pid), "--pages", "%x+%d" % (addr, n), img)
    if r.returncode != 0:
        raise Failure("show --pages %x+%d: %s" % (addr, n, r.stderr.strip()))
    return r.stdout


def images(c, img, *args):
    r = run(c, *(list(args) + [img]))
    if r.returncode != 0:
        raise Failure("show %s: %s" % (" ".join(args), r.stderr.strip()))
    return set(json.loads(r.stdout)["images"])


def dump(c, pid, d, *extra):
    r = subprocess.run([c.stasis] + list(extra[:1]) + ["-t", str(pid), "-D", d]
                       + list(extra[1:]), capture_output=True, text=True, timeout=c.timeout)
    if r.returncode != 0:
        raise Failure("%s: %s" % (extra[0], r.stderr.strip()))


def check(c):
    p = subprocess.Popen([sys.executable, "-c", PROG], stdin=subprocess.PIPE,
                         stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    try:
        line = p.stdout.readline().split()
        if len(line) != 2:
            raise Failure("the process did not start")
        a, b = int(line[0], 16), int(line[1], 16)
        full = os.path.join(c.tmp, "show-full")
        dump(c, p.pid, full, "dump", "-R")
        out = memory(c, full, p.pid, a, 40)
        if not text_of(out).startswith("FIRST-REGION-MARKER-ONE.") or \
                not out.startswith("%016x: 4649 5253 542d" % a):
            raise Failure("--pages of the first region:\n%s" % out)
        got = images(c, full, "--pid", str(p.pid), "--kind", "core")
        if got != {"core-%d.img" % p.pid}:
            raise Failure("--pid --kind core shows %s" % sorted(got))
        got = images(c, full, "--kind", "mm", "--kind", "files")
        if got != {"mm-%d.img" % p.pid, "files-%d.img" % p.pid}:
            raise Failure("--kind mm --kind files shows %s" % sorted(got))
        out = memory(c, full, p.pid, 0x10000, 16)
        if "not stored" not in out:
            raise Failure("a page at 0x10000: %s" % out.strip())

        pre = os.path.join(c.tmp, "show-pre")
        dump(c, p.pid, pre, "pre-dump")
        p.stdin.write(b"go\n")
        p.stdin.flush()
        if p.stdout.readline() != b"done\n":
            raise Failure("the process did not rewrite its memory")
        inc = os.path.join(c.tmp, "show-inc")
        dump(c, p.pid, inc, "dump", "-R", "--prev-images-dir", "../show-pre")
        one = text_of(memory(c, inc, p.pid, a, 24))
        two = text_of(memory(c, inc, p.pid, b, 24))
        if one != "FIRST-REGION-MARKER-TWO." or two != "SECOND-REGION-MARKER-XY.":
            raise Failure("incremental image: first region %r, second %r" % (one, two))

        for args, why in ((["--pages", "%x" % a, full], "--pages without --pid"),
                          (["--kind", "nothing", full], "an unknown kind"),
                          (["--pid", "x1", full], "a bad pid"),
                          (["--pid", str(p.pid), "--pages", "zz", full], "a bad range"),
                          (["--pid", "1", os.path.join(full, "inventory.img")],
                           "--pid on a file")):
            r = run(c, *args)
            if r.returncode == 0 or len(r.stderr.strip().splitlines()) != 1:
                raise Failure("show with %s: exit %d, stderr %r" % (why, r.returncode,
                                                                   r.stderr))
        return "markers read back from the full and the incremental image (via its parent)"
    finally:
        kill_pid(p.pid)
        wait_pid(p.pid, time.monotonic() + 5)
