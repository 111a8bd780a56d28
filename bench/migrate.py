#!/usr/bin/env python3
"""Live migration: the frozen time of a process that keeps writing PERMILLE/1000 of its
memory per second, moved with pre-copy (`stasis migrate`: pre-dumps while it runs, then
the final dump), beside the same move without pre-copy (`--max-iterations 0`: one dump,
frozen for the whole copy) in the same run.

    python3 bench/migrate.py [--size 2048] [--permille 10] [--repeat 3] [--dir /dev/shm]

Run as root from the repository after `make`. Each round starts `migrate_workload`
(SIZE MiB of private anonymous memory, then PERMILLE/1000 of its pages rewritten every
second, spread over all of it), a `stasis page-server` on loopback writing into DIR, and
`stasis migrate --no-sync` to it; the image is then restored from the server's directory
(the restored process must run with its memory resident) and killed. Reported per mode,
medians over the rounds: the final dump's frozen time (what the target is about: under
50 ms at 2 GiB and 1%/s), the passes, the MiB sent in all and the whole migration's time;
then the ratio of the frozen times."""
import argparse
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def build(build_dir):
    exe = os.path.join(build_dir, "bench", "migrate_workload")
    os.makedirs(os.path.dirname(exe), exist_ok=True)
    src = os.path.join(ROOT, "bench", "migrate_workload.c")
    if not os.path.exists(exe) or os.path.getmtime(exe) < os.path.getmtime(src):
        subprocess.run(["cc", "-O2", "-Wall", "-Wextra", "-Werror", "-o", exe, src], check=True)
    return exe


def rss_mib(pid):
    with open("/proc/%d/status" % pid) as f:
        for ln in f:
            if ln.startswith("VmRSS:"):
                return int(ln.split()[1]) >> 10
    return 0


def one(stasis, exe, size, permille, base, iters):
    work = tempfile.mkdtemp(dir=base, prefix="stasis-migrate-")
    ready = os.path.join(work, "ready")
    srv = os.path.join(work, "server")
    os.mkdir(srv)
    w = subprocess.Popen([exe, str(size), ready, str(permille)], stdin=subprocess.DEVNULL,
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                         start_new_session=True)
    ps = None
    restored = None
    try:
        deadline = time.monotonic() + 120
        while not os.path.exists(ready):
            if w.poll() is not None or time.monotonic() > deadline:
                raise SystemExit("migrate_workload did not start")
            time.sleep(0.01)
        time.sleep(1.0)  # writing for a while
        ps = subprocess.Popen([stasis, "page-server", "-D", srv, "--address", "127.0.0.1",
                               "--port", "0"], stdout=subprocess.PIPE,
                              stderr=subprocess.DEVNULL, text=True)
        port = ps.stdout.readline().strip().rsplit(":", 1)[1]
        t0 = time.monotonic()
        m = subprocess.run([stasis, "migrate", "-t", str(w.pid), "-D",
                            os.path.join(work, "local"), "--address", "127.0.0.1", "--port",
                            port, "--no-sync", "--max-iterations", str(iters)],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                           timeout=300)
        total = time.monotonic() - t0
        if m.returncode:
            raise SystemExit("migrate failed: " + m.stderr.strip()[-400:])
        out, _ = ps.communicate(timeout=60)
        image = [ln.split(None, 1)[1] for ln in out.splitlines() if ln.startswith("image ")][-1]
        w.wait(timeout=30)
        passes = re.findall(r"(pre-dump|dump) \d+: ([\d.]+) MiB sent in \d+ ms, tree frozen "
                            r"([\d.]+) ms", m.stdout)
        r = subprocess.run([stasis, "restore", "-D", image, "-d"], stdout=subprocess.DEVNULL,
                           stderr=subprocess.PIPE, text=True, timeout=300)
        if r.returncode:
            raise SystemExit("restore failed: " + r.stderr.strip()[-400:])
        restored = w.pid
        if rss_mib(restored) < size * 9 // 10:
            raise SystemExit("the restored process holds %d MiB, not %d" % (
                rss_mib(restored), size))
        return {"frozen": float(passes[-1][2]), "passes": len(passes),
                "sent": sum(float(p[1]) for p in passes), "total": total,
                "pre_frozen": max([float(p[2]) for p in passes[:-1]] or [0.0])}
    finally:
        for p in (w.pid, restored):
            if p:
                try:
                    os.kill(p, 9)
                except OSError:
                    pass
        if ps and ps.poll() is None:
            ps.kill()
            ps.wait()
        try:
            w.wait(timeout=10)
        except subprocess.TimeoutExpired:
            pass
        if restored:
            for _ in range(500):
                if not os.path.exists("/proc/%d" % restored):
                    break
                try:
                    os.waitpid(restored, os.WNOHANG)
                except ChildProcessError:
                    pass
                time.sleep(0.01)
        shutil.rmtree(work, ignore_errors=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", type=int, default=2048, help="MiB (default 2048)")
    ap.add_argument("--permille", type=int, default=10, help="written per second (10: 1%%)")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--dir", default="/dev/shm", help="where both sides' images go")
    ap.add_argument("--build", default=os.path.join(ROOT, "build"))
    a = ap.parse_args()
    import ctypes
    ctypes.CDLL(None).prctl(36, 1, 0, 0, 0)  # subreaper: the restored task comes back to us
    stasis = os.path.join(a.build, "stasis")
    exe = build(a.build)
    res = {"pre-copy": [], "one dump": []}
    for _ in range(a.repeat):
        res["pre-copy"].append(one(stasis, exe, a.size, a.permille, a.dir, 8))
        res["one dump"].append(one(stasis, exe, a.size, a.permille, a.dir, 0))
    print("%d MiB, %.1f%% written per second, %d rounds (medians)" % (
        a.size, a.permille / 10, a.repeat))
    med = {}
    for mode, rs in res.items():
        med[mode] = {k: statistics.median(r[k] for r in rs) for k in rs[0]}
        m = med[mode]
        print("  %-9s final freeze %7.1f ms (%d passes, longest pre-dump freeze %.1f ms), "
              "%7.1f MiB sent, %.2f s in all" % (mode, m["frozen"], m["passes"],
                                                  m["pre_frozen"], m["sent"], m["total"]))
    print("  frozen time, pre-copy / one dump: %.3f" % (
        med["pre-copy"]["frozen"] / med["one dump"]["frozen"]))


if __name__ == "__main__":
    sys.exit(main())
