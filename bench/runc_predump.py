#!/usr/bin/env python3
"""runc's incremental checkpoint (`runc checkpoint --pre-dump`, then `--parent-path`) with
stasis as runc's `--criu`, beside a plain `runc checkpoint` with stasis and with CRIU in
the same run, on a container holding SIZE MiB of which 1 MiB is rewritten without pause
(tests/tools/memhog, as in tests/checks/runc_predump.py).

    python3 bench/runc_predump.py [--size 256] [--repeat 3] [--build build]
                                  [--criu /work/shared/tools/criu-4.2/criu] [--no-criu]

Root only; needs runc and `make tests` (memhog). A benchmark, not a test. Per round and
tool: `runc run -d` the container, then
  stasis:  pre-dump (wall time, pages), final dump with --parent-path ../p1 (wall time:
           the container is frozen for about this long, pages), restore;
  full:    stasis, one plain `runc checkpoint` (the baseline) and restore;
  criu:    CRIU's pre-dump (what happens is printed: runc asks FEATURE_CHECK mem_track and
           CRIU has no soft-dirty here), then its plain checkpoint and restore.
Medians are printed."""
import argparse
import ctypes
import os
import re
import statistics
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tests"))

from checks.runc_checkpoint import container_pid, runc, runc_detached  # noqa: E402
from checks.runc_predump import make_bundle, pages_bytes, verify, wait_file  # noqa: E402
import checks.runc_predump as rp  # noqa: E402
from lib.proc import kill_pid, wait_pid  # noqa: E402


def one_round(tool, criu, memhog, size, n):
    """One container through one tool's sequence: a dict of figures."""
    d = tempfile.mkdtemp(prefix="bench-runc-pre-", dir="/tmp")
    data, state = os.path.join(d, "data"), os.path.join(d, "state")
    os.makedirs(data)
    os.makedirs(state)
    rp.MIB = size
    bundle = make_bundle(d, memhog, data)
    cid = "bench-pre-%d-%d" % (os.getpid(), n)
    out_r, out_w = os.pipe()
    res, pids = {}, []
    try:
        # stdout and stderr on a pipe: CRIU cannot dump a file of another mount namespace
        rc, err, _ = runc_detached(state, ["run", "-d", cid], 60, bundle, out_w,
                                   os.path.join(d, "run.err"), stderr_fd=out_w)
        _, pid = container_pid(state, cid, bundle)
        pids.append(pid)
        if rc or not wait_file(os.path.join(data, "ready"), 60):
            raise RuntimeError("the container did not start: %s" % err)
        args = ["--image-path", os.path.join(d, "d"), "--work-path", os.path.join(d, "d")]
        if tool in ("stasis", "criu"):
            p1 = os.path.join(d, "p1")
            rc, _, err, t = runc(state, ["checkpoint", "--pre-dump", "--image-path", p1,
                                         "--work-path", p1, cid], 300, bundle, criu)
            if rc != 0:
                msgs = re.findall(r'msg="([^"]*)"', err)
                res["pre-dump"] = "failed: %s" % (msgs[-1] if msgs else err.strip()[-160:])
                if tool == "criu":
                    res["pre-dump"] += "; dump.log: %s" % last_error(os.path.join(p1,
                                                                                  "dump.log"))
            else:
                res["pre"], res["pre_mib"] = t, pages_bytes(p1) / 2 ** 20
                time.sleep(0.5)
                args += ["--parent-path", "../p1"]
        rc, _, err, t = runc(state, ["checkpoint"] + args + [cid], 300, bundle, criu)
        if rc != 0:
            raise RuntimeError("%s checkpoint: %s" % (tool, err.strip()[-200:]))
        res["dump"], res["dump_mib"] = t, pages_bytes(os.path.join(d, "d")) / 2 ** 20
        wait_pid(pid, time.monotonic() + 10)
        rc, err, t = runc_detached(state, ["restore", "-d"] + args[:4] + [cid], 300, bundle,
                                   out_w, os.path.join(d, "restore.err"), criu, out_w)
        if rc != 0:
            raise RuntimeError("%s restore: %s" % (tool, err.strip()[-200:]))
        res["restore"] = t
        _, pid = container_pid(state, cid, bundle)
        pids.append(pid)
        verify(pid, data, "%s restore" % tool)
        return res
    finally:
        runc(state, ["delete", "-f", cid], 30, d)
        for p in pids:
            if p:
                kill_pid(p)
                wait_pid(p, time.monotonic() + 10)
        os.close(out_r)
        os.close(out_w)
        os.system("rm -rf %s" % d)


def last_error(path):
    try:
        with open(path, errors="replace") as f:
            errs = [ln.strip() for ln in f if "Error" in ln]
        return errs[-1] if errs else "(no error line)"
    except OSError:
        return "(no log)"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--size", type=int, default=256)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--build", default=os.path.join(ROOT, "build"))
    ap.add_argument("--criu", default="/work/shared/tools/criu-4.2/criu")
    ap.add_argument("--no-criu", action="store_true")
    a = ap.parse_args()
    ctypes.CDLL(None).prctl(36, 1, 0, 0, 0)  # PR_SET_CHILD_SUBREAPER: reap the inits
    memhog = os.path.join(a.build, "tests", "tools", "memhog")
    tmp = tempfile.mkdtemp(prefix="bench-criu-", dir="/tmp")
    stasis_criu = os.path.join(tmp, "criu")
    os.symlink(os.path.abspath(os.path.join(a.build, "stasis")), stasis_criu)
    tools = [("stasis", stasis_criu), ("full", stasis_criu)]
    if not a.no_criu and os.path.exists(a.criu):
        tools.append(("criu", a.criu))
    rounds = {t: [] for t, _ in tools}
    try:
        for n in range(a.repeat):
            for t, criu in tools:
                r = one_round(t, criu, memhog, a.size, n)
                rounds[t].append(r)
                print("round %d %-6s %s" % (n, t, r), flush=True)
    finally:
        os.unlink(stasis_criu)
        os.rmdir(tmp)
    print("\nmedians, %d MiB container (1 MiB rewritten without pause):" % a.size)
    for t, _ in tools:
        rs = rounds[t]
        med = {k: statistics.median(r[k] for r in rs) for k in rs[0]
               if isinstance(rs[0][k], float)}
        fails = {r[k] for r in rs for k in r if isinstance(r[k], str)}
        print("  %-6s %s%s" % (t, "  ".join("%s %.3f" % kv for kv in sorted(med.items())),
                               ("  [%s]" % "; ".join(fails)) if fails else ""))


if __name__ == "__main__":
    main()
