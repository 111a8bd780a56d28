#!/usr/bin/env python3
"""Compressed pages files: dump and restore wall times and image sizes, without (the
baseline) and with `dump --compress`, in the same run.

    python3 bench/compress.py [--sizes 64,512] [--repeat 3] [--level 1] [--dir /tmp]
                              [--sync]

Run as root from the repository after `make`. Each round starts a python process holding
SIZE MiB of private memory, half compressible text and half os.urandom (commands read
from a file), dumps it (`--no-sync` unless --sync) plain or with --compress=LEVEL
(alternating which goes first), restores it (`restore -d`) and checks its memory (the
sha256 it reports, not timed). Times from the exec of `stasis` to its exit; sizes are
the pages files of the image. Medians over the rounds; the ratios compressed/plain are
printed."""
import argparse
import ctypes
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PR_SET_CHILD_SUBREAPER = 36
MIB = 1 << 20

WORKLOAD = r"""
import hashlib, mmap, os, sys, time
N = int(sys.argv[1]) << 20
buf = mmap.mmap(-1, N, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)
line = 0
while buf.tell() < N // 2:
    chunk = b"".join(b"line %08d: the quick brown fox jumps over the lazy dog\n" % (line + i)
                     for i in range(16384))
    line += 16384
    buf.write(chunk[:N // 2 - buf.tell()])
while buf.tell() < N:
    buf.write(os.urandom(min(16 << 20, N - buf.tell())))
def reply(text):
    with open("done.tmp", "w") as f:
        f.write(text + "\n")
    os.rename("done.tmp", "done")
reply(hashlib.sha256(buf).hexdigest())
while True:
    time.sleep(0.005)
    try:
        os.unlink("cmd")
    except OSError:
        continue
    reply(hashlib.sha256(buf).hexdigest())
"""


def wait_done(wd, timeout=600):
    path = os.path.join(wd, "done")
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with open(path) as f:
                return f.read().strip()
        except OSError:
            time.sleep(0.005)
    raise SystemExit("the workload did not answer")


def stasis(exe, *args):
    t0 = time.monotonic()
    p = subprocess.run([exe] + list(args), stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                       stderr=subprocess.PIPE, text=True, timeout=600)
    dt = time.monotonic() - t0
    if p.returncode != 0:
        raise SystemExit("stasis %s: %s" % (args[0], p.stderr.strip()[:300]))
    return dt


def kill(pid):
    try:
        os.kill(pid, 9)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            if os.waitpid(pid, os.WNOHANG)[0] == pid:
                return
        except ChildProcessError:
            return
        time.sleep(0.01)


def round_once(exe, base, size, level, sync):
    """Start, dump, restore, verify: (dump s, restore s, pages bytes)."""
    wd = tempfile.mkdtemp(prefix="w-", dir=base)
    img = os.path.join(base, "img-%d" % os.getpid())
    shutil.rmtree(img, ignore_errors=True)
    p = subprocess.Popen([sys.executable, "-c", WORKLOAD, str(size)], cwd=wd,
                         stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                         stderr=subprocess.DEVNULL)
    try:
        want = wait_done(wd)
        os.unlink(os.path.join(wd, "done"))
        opts = [] if sync else ["--no-sync"]
        if level:
            opts.append("--compress=%d" % level)
        t_dump = stasis(exe, "dump", "-t", str(p.pid), "-D", img, *opts)
        p.wait(timeout=60)
        pages = sum(os.path.getsize(os.path.join(img, f)) for f in os.listdir(img)
                    if f.startswith("pages-"))
        t_rst = stasis(exe, "restore", "-D", img, "-d")
        open(os.path.join(wd, "cmd"), "w").close()
        if wait_done(wd) != want:
            raise SystemExit("restored memory differs (level %d)" % level)
        return t_dump, t_rst, pages
    finally:
        kill(p.pid)
        shutil.rmtree(wd, ignore_errors=True)
        shutil.rmtree(img, ignore_errors=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="64,512")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--level", type=int, default=1)
    ap.add_argument("--dir", default="/tmp")
    ap.add_argument("--sync", action="store_true", help="dump with fsync (the default)")
    ap.add_argument("--build", default=os.path.join(ROOT, "build"))
    a = ap.parse_args()
    exe = os.path.join(a.build, "stasis")
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
    base = tempfile.mkdtemp(prefix="stasis-bench-compress-", dir=a.dir)
    try:
        print("%6s %-9s %9s %9s %10s" % ("MiB", "pages", "dump s", "restore s", "image MiB"))
        for size in [int(s) for s in a.sizes.split(",")]:
            res = {0: [], a.level: []}
            for r in range(a.repeat):
                for lv in ((0, a.level) if r % 2 == 0 else (a.level, 0)):
                    res[lv].append(round_once(exe, base, size, lv, a.sync))
            med = {lv: [statistics.median(x[k] for x in v) for k in range(3)]
                   for lv, v in res.items()}
            for lv in (0, a.level):
                d, rs, pg = med[lv]
                print("%6d %-9s %9.3f %9.3f %10.1f" % (size, "zstd-%d" % lv if lv else "plain",
                                                       d, rs, pg / MIB))
            (d0, r0, p0), (d1, r1, p1) = med[0], med[a.level]
            print("%6d %-9s %9.2fx %8.2fx %9.2fx" % (size, "ratio", d1 / d0, r1 / r0, p1 / p0))
    finally:
        shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    main()
