#!/usr/bin/env python3
"""runc checkpoint/restore of a busybox container with stasis and with CRIU as runc's
`--criu`, in one run on the same container, and the container's frozen time.

    python3 bench/runc.py [--repeat 7] [--stasis build/stasis]
                          [--criu /work/shared/tools/criu-4.2/criu] [--no-criu] [-v]

Root only; needs runc and busybox-static (scripts/deps.sh). A benchmark, not a test:
nothing is asserted beyond each step working. One round, per tool: `runc run -d` a
container (rootfs from busybox-static, a counter bumped every 20 ms into a bind-mounted
file), wait until it counts, then time `runc checkpoint` and `runc restore -d` (wall
time of each runc command), and watch the counter from another thread: the frozen time
is the longest the counter stood still across the checkpoint and the restore. Rounds
alternate between the tools; medians are printed with stasis/CRIU ratios."""
import argparse
import ctypes
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time

COUNTER = ('i=0; while true; do i=$((i+1)); echo $i > /data/next; mv /data/next /data/counter; '
           'sleep 0.02; done')


def make_bundle(d):
    rootfs = os.path.join(d, "bundle", "rootfs")
    for sub in ("bin", "proc", "sys", "dev", "data", "tmp"):
        os.makedirs(os.path.join(rootfs, sub))
    shutil.copy("/bin/busybox", os.path.join(rootfs, "bin", "busybox"))
    for app in ("sh", "sleep", "echo", "cat", "mv"):
        os.symlink("busybox", os.path.join(rootfs, "bin", app))
    bundle = os.path.join(d, "bundle")
    subprocess.run(["runc", "spec"], cwd=bundle, check=True)
    path = os.path.join(bundle, "config.json")
    with open(path) as f:
        cfg = json.load(f)
    cfg["process"]["terminal"] = False
    cfg["process"]["args"] = ["sh", "-c", COUNTER]
    cfg["root"]["readonly"] = False
    os.makedirs(os.path.join(d, "data"))
    cfg["mounts"].append({"destination": "/data", "type": "bind",
                          "source": os.path.join(d, "data"), "options": ["rbind", "rw"]})
    with open(path, "w") as f:
        json.dump(cfg, f)
    return bundle


def runc(d, args, criu=None, detached=False):
    argv = ["runc", "--root", os.path.join(d, "state")] + (["--criu", criu] if criu else [])
    # detached, runc hands its stdio to the container: no pipe of ours (never EOF)
    # and `run -d` gives it /dev/null (CRIU cannot dump a file outside the container)
    err = open(os.path.join(d, "runc.err") if args[0] != "run" else os.devnull, "w+")
    t0 = time.monotonic()
    p = subprocess.run(argv + args, cwd=os.path.join(d, "bundle"), stdin=subprocess.DEVNULL,
                       stdout=subprocess.DEVNULL if detached else subprocess.PIPE,
                       stderr=err, text=True, timeout=120)
    t = time.monotonic() - t0
    err.seek(0)
    msg = err.read()
    err.close()
    return p.returncode, (p.stdout or "") + msg, t


def read_counter(path):
    try:
        with open(path) as f:
            return int(f.read().strip() or -1)
    except (OSError, ValueError):
        return -1


class Watcher(threading.Thread):
    """Polls the counter every millisecond; the longest stretch without a change."""

    def __init__(self, path):
        super().__init__(daemon=True)
        self.path, self.stop, self.longest = path, False, 0.0

    def run(self):
        last, since = read_counter(self.path), time.monotonic()
        while not self.stop:
            v, now = read_counter(self.path), time.monotonic()
            if v != last and v >= 0:
                self.longest = max(self.longest, now - since)
                last, since = v, now
            time.sleep(0.001)


def reap(pid):
    for _ in range(1000):
        try:
            if os.waitpid(pid, os.WNOHANG)[0] == pid:
                return
        except ChildProcessError:
            if not os.path.exists("/proc/%d" % pid):
                return
        time.sleep(0.01)


def one_round(d, criu, n, verbose):
    cid = "bench-%d-%d" % (os.getpid(), n)
    counter = os.path.join(d, "data", "counter")
    img, work = os.path.join(d, "img-%d" % n), os.path.join(d, "work-%d" % n)
    pids = []
    try:
        rc, out, _ = runc(d, ["run", "-d", cid], detached=True)
        if rc:
            raise RuntimeError("runc run: " + out.strip()[-200:])
        start = read_counter(counter)
        deadline = time.monotonic() + 10
        while read_counter(counter) < start + 5:
            if time.monotonic() > deadline:
                raise RuntimeError("the container does not count")
            time.sleep(0.005)
        rc, out, _ = runc(d, ["state", cid])
        pids.append(json.loads(out)["pid"] if rc == 0 else 0)
        w = Watcher(counter)
        w.start()
        time.sleep(0.1)
        rc, out, t_ck = runc(d, ["checkpoint", "--image-path", img, "--work-path", work, cid],
                             criu)
        if rc:
            log = open(os.path.join(work, "dump.log")).read() if os.path.exists(
                os.path.join(work, "dump.log")) else ""
            raise RuntimeError("checkpoint: %s\n%s" % (out.strip()[-300:], log[-1500:]))
        reap(pids[0])
        frozen = read_counter(counter)
        rc, out, t_rs = runc(d, ["restore", "-d", "--image-path", img, "--work-path", work,
                                 cid], criu, detached=True)
        if rc:
            raise RuntimeError("restore: " + out.strip()[-300:])
        deadline = time.monotonic() + 10
        while read_counter(counter) <= frozen and time.monotonic() < deadline:
            time.sleep(0.001)
        time.sleep(0.1)
        w.stop = True
        w.join()
        after = read_counter(counter)
        rc, out, _ = runc(d, ["state", cid])
        if rc == 0:
            pids.append(json.loads(out)["pid"])
        if after <= frozen:
            raise RuntimeError("the counter does not move after restore")
        if verbose:
            print("  %s: checkpoint %.3f s, restore %.3f s, frozen %.3f s" % (
                "criu" if "criu-4" in criu else "stasis", t_ck, t_rs, w.longest))
        return t_ck, t_rs, w.longest
    finally:
        runc(d, ["delete", "-f", cid])
        for p in pids:
            if p:
                reap(p)
        shutil.rmtree(img, ignore_errors=True)
        shutil.rmtree(work, ignore_errors=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--repeat", type=int, default=7)
    ap.add_argument("--stasis", default="build/stasis")
    ap.add_argument("--criu", default="/work/shared/tools/criu-4.2/criu")
    ap.add_argument("--no-criu", action="store_true")
    ap.add_argument("-v", action="store_true")
    a = ap.parse_args()
    if os.geteuid() != 0 or not shutil.which("runc") or not os.path.exists("/bin/busybox"):
        sys.exit("bench/runc.py: needs root, runc and busybox-static")
    ctypes.CDLL(None).prctl(36, 1, 0, 0, 0)  # PR_SET_CHILD_SUBREAPER: reap the inits
    d = tempfile.mkdtemp(prefix="stasis-bench-runc-")
    try:
        make_bundle(d)
        tools = {"stasis": os.path.join(d, "criu")}
        os.symlink(os.path.abspath(a.stasis), tools["stasis"])
        if not a.no_criu and os.access(a.criu, os.X_OK):
            tools["criu"] = os.path.abspath(a.criu)
        res = {t: [] for t in tools}
        for n in range(a.repeat):
            for k, (t, path) in enumerate(tools.items()):
                res[t].append(one_round(d, path, n * 10 + k, a.v))
        print("runc %s, %d rounds, medians (s):" % (
            subprocess.run(["runc", "--version"], capture_output=True, text=True)
            .stdout.split("\n")[0].split()[-1], a.repeat))
        print("%-8s %10s %10s %10s" % ("", "checkpoint", "restore", "frozen"))
        med = {t: [statistics.median(x[i] for x in r) for i in range(3)]
               for t, r in res.items()}
        for t, m in med.items():
            print("%-8s %10.3f %10.3f %10.3f" % (t, m[0], m[1], m[2]))
        if "criu" in med:
            print("%-8s %10.2f %10.2f %10.2f" % ("s/CRIU", *[
                med["stasis"][i] / med["criu"][i] for i in range(3)]))
    finally:
        shutil.rmtree(d, ignore_errors=True)


if __name__ == "__main__":
    main()
