#!/usr/bin/env python3
"""Process trees sharing inherited descriptions: dump and restore time of a tree of N
processes that all hold the same 2*P fds (P unix socketpairs and a pipe, opened by the root
before it forked), beside CRIU 4.2 in the same run.

    python3 bench/fdtree.py [--procs 1,50,200] [--pairs 341] [--repeat 3] [--no-criu]
                            [--stasis PATH] [--build DIR]

Run as root from the repository after `make`. For each N, each round starts
bench/fdtree_workload (built into BUILD/bench/) under this script's subreaper, then times
`stasis dump -t ROOT -D DIR --no-sync` and `stasis restore -D DIR -d` (wall time of the
whole command; images on a tmpfs mounted for the run, or /dev/shm), checks that the
restored root runs with its N - 1 children, and kills them by PID; then the same with
`criu dump -t ROOT -D DIR` / `criu restore -D DIR -d` when `criu` on PATH works (put
../shared/tools/criu-4.2 first: Debian's 3.17 cannot run on this kernel). Medians; the
baseline is N = 1 (the same fds in one process): `per process` is how the time grows with
the processes that share them, `stasis/criu` the time against CRIU's.

The shape is that of a prefork server or of the reference suite's random session tree
(341 socketpairs inherited by some 250 processes), where a dump that handles each
process's copy of a description on its own does the same work N times."""
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
TMPFS = "/tmp/stasis-bench-fdtree-tmpfs"
LIVE = set()


def build(build_dir):
    exe = os.path.join(build_dir, "bench", "fdtree_workload")
    os.makedirs(os.path.dirname(exe), exist_ok=True)
    src = os.path.join(ROOT, "bench", "fdtree_workload.c")
    if not os.path.exists(exe) or os.path.getmtime(exe) < os.path.getmtime(src):
        subprocess.run(["cc", "-O2", "-Wall", "-Wextra", "-Werror", "-o", exe, src], check=True)
    return exe


def children(pid):
    try:
        with open("/proc/%d/task/%d/children" % (pid, pid)) as f:
            return [int(x) for x in f.read().split()]
    except OSError:
        return []


def reap_all(timeout=30):
    """Reap every child of ours (the tree's processes come to our subreaper)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            pid, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid:
            LIVE.discard(pid)
        else:
            time.sleep(0.01)
    print("fdtree: warning: children left after %d s" % timeout, file=sys.stderr)


def kill_tree(root):
    for pid in [root] + children(root):
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    reap_all()


def start(exe, scratch, nproc, npair):
    ready = os.path.join(scratch, "ready")
    if os.path.exists(ready):
        os.unlink(ready)
    p = subprocess.Popen([exe, ready, str(nproc), str(npair)], stdin=subprocess.DEVNULL,
                         stdout=subprocess.DEVNULL, start_new_session=True)
    LIVE.add(p.pid)
    deadline = time.monotonic() + 60
    while not os.path.exists(ready):
        if p.poll() is not None or time.monotonic() > deadline:
            kill_tree(p.pid)
            raise SystemExit("fdtree_workload did not start (%d processes)" % nproc)
        time.sleep(0.005)
    return p.pid


def timed(argv, what):
    t0 = time.monotonic()
    r = subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                       stderr=subprocess.PIPE, text=True, timeout=600)
    t = time.monotonic() - t0
    if r.returncode:
        lines = r.stderr.strip().splitlines() or ["?"]
        return None, "%s: %s" % (what, lines[-1][:200])
    return t, None


def round_(tool, exe, scratch, img, nproc, npair):
    pid = start(exe, scratch, nproc, npair)
    shutil.rmtree(img, ignore_errors=True)
    os.makedirs(img)
    if tool[0].endswith("stasis"):
        dump = tool + ["dump", "-t", str(pid), "-D", img, "--no-sync"]
        rst = tool + ["restore", "-D", img, "-d"]
    else:
        dump = tool + ["dump", "-t", str(pid), "-D", img, "-o", "dump.log"]
        rst = tool + ["restore", "-D", img, "-d", "-o", "restore.log"]
    try:
        td, err = timed(dump, "dump")
        if err:
            return None, None, err
        reap_all()
        tr, err = timed(rst, "restore")
        if err:
            return td, None, err
        n = len(children(pid))
        if n != nproc - 1:
            return td, None, "restored root %d has %d children, not %d" % (pid, n, nproc - 1)
        return td, tr, None
    finally:
        kill_tree(pid)


def criu_works():
    path = shutil.which("criu")
    if not path:
        return None, "no criu on PATH"
    r = subprocess.run([path, "check"], capture_output=True, text=True)
    if r.returncode:
        return None, "criu check failed: %s" % (r.stderr.strip().splitlines() or ["?"])[-1]
    return path, None


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--procs", default="1,50,200")
    ap.add_argument("--pairs", type=int, default=341)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--no-criu", action="store_true")
    ap.add_argument("--stasis", default=None)
    ap.add_argument("--build", default=os.path.join(ROOT, "build"))
    args = ap.parse_args()
    if os.geteuid():
        raise SystemExit("run as root")
    ctypes.CDLL(None, use_errno=True).prctl(36, 1, 0, 0, 0)  # PR_SET_CHILD_SUBREAPER
    stasis = args.stasis or os.path.join(args.build, "stasis")
    exe = build(args.build)
    criu, why = (None, "--no-criu") if args.no_criu else criu_works()
    os.makedirs(TMPFS, exist_ok=True)
    mounted = subprocess.run(["mount", "-t", "tmpfs", "tmpfs", TMPFS]).returncode == 0
    base = TMPFS if mounted else "/dev/shm"
    scratch = tempfile.mkdtemp(prefix="stasis-fdtree-", dir=base)
    tools = [("stasis", [stasis])] + ([("criu", [criu])] if criu else [])
    print("fdtree: %d socketpairs and a pipe inherited by every process; images on %s; %s"
          % (args.pairs, "tmpfs" if mounted else "/dev/shm",
             "criu: %s" % criu if criu else "no criu column (%s)" % why))
    res = {}
    try:
        for nproc in [int(x) for x in args.procs.split(",")]:
            for _ in range(args.repeat):
                for name, tool in tools:
                    td, tr, err = round_(tool, exe, scratch, os.path.join(scratch, name),
                                         nproc, args.pairs)
                    if err:
                        print("fdtree: %s, %d processes: %s" % (name, nproc, err))
                    r = res.setdefault((name, nproc), {"dump": [], "restore": []})
                    if td is not None:
                        r["dump"].append(td)
                    if tr is not None:
                        r["restore"].append(tr)
    finally:
        kill_all = list(LIVE)
        for pid in kill_all:
            kill_tree(pid)
        shutil.rmtree(scratch, ignore_errors=True)
        if mounted:
            subprocess.run(["umount", TMPFS])
            os.rmdir(TMPFS)
    report(res, [int(x) for x in args.procs.split(",")], bool(criu))


def report(res, procs, with_criu):
    def med(name, n, op):
        v = res.get((name, n), {}).get(op, [])
        return statistics.median(v) if v else None

    def fmt(t):
        return "%.3f s" % t if t is not None else "-"

    print("| procs | op | stasis | per process | criu 4.2 | stasis/criu |")
    print("| --- | --- | --- | --- | --- | --- |")
    for n in procs:
        for op in ("dump", "restore"):
            s, c = med("stasis", n, op), med("criu", n, op) if with_criu else None
            per = "%.1f ms" % (s / n * 1000) if s is not None else "-"
            ratio = "%.2f" % (s / c) if s is not None and c else "-"
            print("| %d | %s | %s | %s | %s | %s |" % (n, op, fmt(s), per, fmt(c), ratio))


if __name__ == "__main__":
    main()
