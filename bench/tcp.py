#!/usr/bin/env python3
"""stasis TCP benchmark: dump and restore time of one process holding N established TCP
connections (both ends in the process, 100 bytes queued unread each way), against the
same process holding none (the baseline, run in the same invocation).

    python3 bench/tcp.py [--conns 1000] [--repeat 5] [-v] [--stasis PATH] [--build DIR]

bench/tcp_workload (built into BUILD/bench/) sets the connections up and sleeps;
`stasis dump -t PID -D DIR --no-sync` and `stasis restore -D DIR -d` are timed (wall time
of the whole command) with the images in /dev/shm. The restored process must run under
this script's subreaper with the same PID; it is then told (SIGUSR1) to read and check
every queued message, and killed by its PID. Medians of --repeat rounds; the ratio is
against the baseline with no connection, and the cost per connection is the difference
divided by N. Run as root (TCP repair mode needs CAP_NET_ADMIN)."""
import argparse
import ctypes
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
LIBC = ctypes.CDLL(None, use_errno=True)
TIMEOUT = 120


class BenchError(Exception):
    pass


def reap(pid, timeout):
    deadline = time.monotonic() + timeout
    while True:
        try:
            got, status = os.waitpid(pid, os.WNOHANG)
        except ChildProcessError:
            return None
        if got == pid:
            return status
        if time.monotonic() >= deadline:
            return None
        time.sleep(0.005)


def kill_and_reap(pid):
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        return
    reap(pid, 30)


def wait_file(path, pid, what):
    deadline = time.monotonic() + TIMEOUT
    while not os.path.exists(path) or not os.path.getsize(path) and what == "check":
        if time.monotonic() > deadline:
            raise BenchError("workload %d: no %s within %d s" % (pid, what, TIMEOUT))
        time.sleep(0.005)


def timed(argv):
    t0 = time.perf_counter()
    r = subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True, text=True,
                       timeout=TIMEOUT)
    dt = time.perf_counter() - t0
    if r.returncode != 0:
        lines = r.stderr.strip().splitlines()
        raise BenchError("%s failed: %s" % (argv[1], lines[-1] if lines else r.returncode))
    return dt


def one_round(stasis, exe, n, scratch):
    ready, done = os.path.join(scratch, "ready"), os.path.join(scratch, "done")
    img = os.path.join(scratch, "img")
    for p in (ready, done):
        if os.path.exists(p):
            os.unlink(p)
    shutil.rmtree(img, ignore_errors=True)
    pid = os.posix_spawn(exe, [exe, str(n), ready, done], os.environ, setsid=True,
                         file_actions=[(os.POSIX_SPAWN_OPEN, 0, "/dev/null", os.O_RDONLY, 0),
                                       (os.POSIX_SPAWN_OPEN, 1, "/dev/null", os.O_WRONLY, 0),
                                       (os.POSIX_SPAWN_OPEN, 2, "/dev/null", os.O_WRONLY, 0)])
    restored = False
    try:
        wait_file(ready, pid, "ready")
        t_dump = timed([stasis, "dump", "-t", str(pid), "-D", img, "--no-sync"])
        if reap(pid, 10) is None:
            raise BenchError("the workload still runs after the dump")
        t_rst = timed([stasis, "restore", "-D", img, "-d"])
        restored = True
        os.kill(pid, signal.SIGUSR1)
        wait_file(done, pid, "check")
        with open(done) as f:
            res = f.read().strip()
        if res != "ok %d" % n:
            raise BenchError("restored workload: %s" % res)
        return t_dump, t_rst
    finally:
        kill_and_reap(pid)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--conns", type=int, default=1000)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--build", default=os.path.join(ROOT, "build"))
    ap.add_argument("--stasis")
    ap.add_argument("-v", action="store_true")
    a = ap.parse_args()
    stasis = a.stasis or os.path.join(a.build, "stasis")
    exe = os.path.join(a.build, "bench", "tcp_workload")
    os.makedirs(os.path.dirname(exe), exist_ok=True)
    subprocess.run(["cc", "-O2", "-Wall", "-o", exe, os.path.join(ROOT, "bench",
                                                                  "tcp_workload.c")],
                   check=True)
    if LIBC.prctl(36, 1, 0, 0, 0) != 0:  # PR_SET_CHILD_SUBREAPER
        raise BenchError("cannot become a child subreaper")
    scratch = tempfile.mkdtemp(prefix="stasis-bench-tcp.", dir="/dev/shm")
    res = {}
    try:
        for _ in range(a.repeat):
            for n in (0, a.conns):  # alternated: both see the same machine state
                d, r = one_round(stasis, exe, n, scratch)
                res.setdefault(n, []).append((d, r))
                if a.v:
                    print("  %5d connections: dump %.1f ms, restore %.1f ms" % (
                        n, d * 1e3, r * 1e3))
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    med = {n: (statistics.median(x[0] for x in v), statistics.median(x[1] for x in v))
           for n, v in res.items()}
    b, t = med[0], med[a.conns]
    print("| connections | dump ms | restore ms | dump / baseline | restore / baseline |")
    print("| --- | --- | --- | --- | --- |")
    print("| 0 (baseline) | %.1f | %.1f | 1.00 | 1.00 |" % (b[0] * 1e3, b[1] * 1e3))
    print("| %d | %.1f | %.1f | %.2f | %.2f |" % (a.conns, t[0] * 1e3, t[1] * 1e3,
                                                  t[0] / b[0], t[1] / b[1]))
    print("per connection (2 sockets): dump %.1f us, restore %.1f us; medians of %d rounds"
          % ((t[0] - b[0]) / a.conns * 1e6, (t[1] - b[1]) / a.conns * 1e6, a.repeat))
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except BenchError as e:
        print("tcp bench: %s" % e, file=sys.stderr)
        sys.exit(1)
