#!/usr/bin/env python3
"""Incremental dumps: a second dump of a process that wrote 1% of its memory since the
first, against the first (time and bytes), beside a full dump in the same run.

    python3 bench/incr.py [--size 2048] [--permille 10] [--repeat 3] [--dir /dev/shm]

Run as root from the repository after `make`. Each round starts `incr_workload` (SIZE MiB
of private anonymous memory, written once), then times:
  full:   stasis dump --leave-running --no-sync (the baseline: every page)
  first:  stasis pre-dump --no-sync (every page; write tracking armed)
  second: after the workload rewrote PERMILLE/1000 of its pages (every 100th page for
          1%), stasis pre-dump --prev-images-dir FIRST --no-sync
  final:  after the same again, stasis dump --prev-images-dir SECOND --no-sync (kills it)
and the size of each pages file. Medians over the rounds; the ratios second/first are
the target (under 5% of the time and of the bytes)."""
import argparse
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def build(build_dir):
    exe = os.path.join(build_dir, "bench", "incr_workload")
    os.makedirs(os.path.dirname(exe), exist_ok=True)
    src = os.path.join(ROOT, "bench", "incr_workload.c")
    if not os.path.exists(exe) or os.path.getmtime(exe) < os.path.getmtime(src):
        subprocess.run(["cc", "-O2", "-Wall", "-Wextra", "-Werror", "-o", exe, src], check=True)
    return exe


def wait_file(path, p, timeout=120):
    deadline = time.monotonic() + timeout
    while not os.path.exists(path):
        if p.poll() is not None or time.monotonic() > deadline:
            raise SystemExit("incr_workload did not create %s" % path)
        time.sleep(0.005)


def timed(argv):
    t0 = time.monotonic()
    r = subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                       stderr=subprocess.PIPE, text=True)
    t = time.monotonic() - t0
    if r.returncode:
        raise SystemExit("%s failed: %s" % (" ".join(argv[:2]), r.stderr.strip()[:300]))
    return t


def pages_bytes(d):
    return sum(os.path.getsize(os.path.join(d, f)) for f in os.listdir(d)
               if f.startswith("pages-"))


def one_round(a, exe, scratch, rnd):
    ready = os.path.join(scratch, "ready.%d" % rnd)
    p = subprocess.Popen([exe, str(a.size * 1024), ready, str(a.permille)],
                         stdin=subprocess.DEVNULL, start_new_session=True)
    res = {}
    try:
        wait_file(ready, p)
        dirs = {k: os.path.join(scratch, "%s.%d" % (k, rnd)) for k in
                ("full", "first", "second", "final")}
        st = a.stasis
        res["full"] = (timed([st, "dump", "-t", str(p.pid), "-D", dirs["full"],
                              "--leave-running", "--no-sync"]), pages_bytes(dirs["full"]))
        shutil.rmtree(dirs["full"])
        res["first"] = (timed([st, "pre-dump", "-t", str(p.pid), "-D", dirs["first"],
                               "--no-sync"]), pages_bytes(dirs["first"]))
        for n, (k, parent, cmd) in enumerate((("second", "first", "pre-dump"),
                                              ("final", "second", "dump")), 1):
            os.kill(p.pid, signal.SIGUSR1)
            wait_file("%s.%d" % (ready, n), p)
            res[k] = (timed([st, cmd, "-t", str(p.pid), "-D", dirs[k], "--no-sync",
                             "--prev-images-dir", dirs[parent]]), pages_bytes(dirs[k]))
    finally:
        try:
            os.kill(p.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        p.wait()
        for f in os.listdir(scratch):
            path = os.path.join(scratch, f)
            shutil.rmtree(path) if os.path.isdir(path) else os.unlink(path)
    return res


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", type=int, default=2048, help="MiB")
    ap.add_argument("--permille", type=int, default=10, help="pages rewritten per pass, /1000")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--dir", default="/dev/shm", help="where the images go (tmpfs)")
    ap.add_argument("--stasis", default=os.path.join(ROOT, "build", "stasis"))
    ap.add_argument("--build", default=os.path.join(ROOT, "build"))
    a = ap.parse_args()
    exe = build(a.build)
    scratch = tempfile.mkdtemp(prefix="stasis-bench-incr-", dir=a.dir)
    rounds = []
    try:
        for r in range(a.repeat):
            rounds.append(one_round(a, exe, scratch, r))
            print("round %d: %s" % (r, ", ".join("%s %.3f s %.1f MiB" % (k, t, b / 2**20)
                                                  for k, (t, b) in rounds[-1].items())),
                  flush=True)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    med = {k: (statistics.median(x[k][0] for x in rounds),
               statistics.median(x[k][1] for x in rounds)) for k in rounds[0]}
    print("\n%d MiB, %.1f%% of the pages rewritten per pass, medians of %d rounds:" % (
        a.size, a.permille / 10, len(rounds)))
    print("| pass | time | pages file | time vs first | bytes vs first |")
    print("| --- | --- | --- | --- | --- |")
    for k in ("full", "first", "second", "final"):
        t, b = med[k]
        print("| %s | %.3f s | %.1f MiB | %.1f%% | %.2f%% |" % (
            k, t, b / 2**20, 100 * t / med["first"][0], 100 * b / med["first"][1]))
    ok = med["second"][0] < 0.05 * med["first"][0] and med["second"][1] < 0.05 * med["first"][1]
    print("target (second < 5%% of first in time and bytes): %s" % ("ok" if ok else "MISS"))


if __name__ == "__main__":
    sys.exit(main())
