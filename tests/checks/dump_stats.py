# stasis-check: timeout=60
"""Every dump leaves its figures in stats-dump.img: a 32 MiB process dumped in full, then
(pre-dump, 1 MiB rewritten, dump --prev-images-dir) incrementally. The full dump's stats
count one process, its frozen time covers the freezing and is below the dump's own wall
time, the pages stored cover the 32 MiB and the image bytes the pages file; the
incremental dump stores a small part and says the rest is in the parent image; every
resource row has a stage time."""
import json
import os
import subprocess
import sys
import time

from lib.proc import Failure, kill_pid, wait_pid

PROG = r"""
import mmap, os, sys
m = mmap.mmap(-1, 32 << 20, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)
m.write(os.urandom(32 << 20))
sys.stdout.write("ready\n"); sys.stdout.flush()
while True:
    line = sys.stdin.readline()
    if not line:
        break
    m.seek(0); m.write(os.urandom(1 << 20))
    sys.stdout.write("done\n"); sys.stdout.flush()
"""


def stats(c, img):
    r = subprocess.run([c.stasis, "show", os.path.join(img, "stats-dump.img")],
                       capture_output=True, text=True, timeout=c.timeout)
    if r.returncode != 0:
        raise Failure("show stats-dump.img: %s" % r.stderr.strip())
    d = json.loads(r.stdout)
    return d.get("images", {}).get("stats-dump.img", d)


def check(c):
    p = subprocess.Popen([sys.executable, "-c", PROG], stdin=subprocess.PIPE,
                         stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    try:
        if p.stdout.readline() != b"ready\n":
            raise Failure("the process did not start")
        full = os.path.join(c.tmp, "full")
        t0 = time.monotonic()
        r = subprocess.run([c.stasis, "dump", "-R", "-t", str(p.pid), "-D", full],
                           capture_output=True, text=True, timeout=c.timeout)
        wall = time.monotonic() - t0
        if r.returncode != 0:
            raise Failure("dump: %s" % r.stderr.strip())
        s = stats(c, full)
        pages = os.path.getsize(os.path.join(full, "pages-%d.img" % p.pid))
        if s.get("processes") != 1 or s.get("threads", 0) < 1:
            raise Failure("processes/threads: %r" % s)
        if not 0 < s["freezing_ns"] <= s["frozen_ns"] < wall * 1e9:
            raise Failure("freezing %s, frozen %s ns, the dump took %.3f s"
                          % (s["freezing_ns"], s["frozen_ns"], wall))
        if s["pages_stored"] < (32 << 20) // 4096 or s["image_bytes"] < pages:
            raise Failure("%d pages stored, %d image bytes (pages file %d)"
                          % (s["pages_stored"], s["image_bytes"], pages))
        names = {st["name"] for st in s.get("stages", [])}
        for want in ("memory", "files", "registers", "namespaces"):
            if want not in names:
                raise Failure("no stage time for %s: %s" % (want, sorted(names)))
        pre = os.path.join(c.tmp, "pre")
        r = subprocess.run([c.stasis, "pre-dump", "-t", str(p.pid), "-D", pre],
                           capture_output=True, text=True, timeout=c.timeout)
        if r.returncode != 0:
            raise Failure("pre-dump: %s" % r.stderr.strip())
        p.stdin.write(b"go\n")
        p.stdin.flush()
        if p.stdout.readline() != b"done\n":
            raise Failure("the process did not rewrite its memory")
        inc = os.path.join(c.tmp, "inc")
        r = subprocess.run([c.stasis, "dump", "-R", "-t", str(p.pid), "-D", inc,
                            "--prev-images-dir", "../pre"],
                           capture_output=True, text=True, timeout=c.timeout)
        if r.returncode != 0:
            raise Failure("incremental dump: %s" % r.stderr.strip())
        i = stats(c, inc)
        if not (0 < i["pages_stored"] < s["pages_stored"] // 4 and
                i["pages_in_parent"] >= (28 << 20) // 4096):
            raise Failure("incremental: %d pages stored, %d in the parent"
                          % (i["pages_stored"], i["pages_in_parent"]))
        return ("full: frozen %.1f ms, %d pages, %d bytes; incremental: %d pages stored, "
                "%d in the parent" % (s["frozen_ns"] / 1e6, s["pages_stored"],
                                      s["image_bytes"], i["pages_stored"],
                                      i["pages_in_parent"]))
    finally:
        kill_pid(p.pid)
        wait_pid(p.pid, time.monotonic() + 5)
