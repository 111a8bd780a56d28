#!/usr/bin/env python3
"""stasis benchmark: dump and restore throughput beside this machine's limits.

For each image location and memory size, a workload holding N MiB of touched anonymous
memory is dumped and restored with `stasis`; in the same run and alternating with it,
bench/limits measures what the machine can do with the same bytes and the same
durability (the dump limit: writing them to a file there, plus fsync when the dump
syncs; the restore limit: copying them into freshly mapped memory). If criu is
installed it is run on the same workload too. Medians of --repeat rounds are printed.
See bench/README.md.

Run as root from anywhere:  python3 bench/run.py [--quick] [--sizes 64,512] [--repeat 5]
"""
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
PR_SET_CHILD_SUBREAPER = 36
TMPFS_MOUNT = "/tmp/stasis-bench-tmpfs"
TINY_KIB = 256
DUMP_TARGET = 0.70      # stasis dump >= 70% of the write limit
RESTORE_TARGET = 1.00   # stasis restore >= 100% of the fresh-memory copy rate
TINY_TARGET_MS = 20.0
CMD_TIMEOUT = 300       # seconds, for any one command
LIMIT_TRIES = 2         # a round's limit is the best of this many back-to-back measurements


class BenchError(Exception):
    pass


# ---------------------------------------------------------------- processes

LIVE = set()  # pids of workloads (started or restored) that may still be alive


LIBC = ctypes.CDLL(None, use_errno=True)


def settle(loc):
    """syncfs the location (not timed) so that a timed step does not pay for the
    writeback, journal commit or discard (the root fs here is mounted with `discard`)
    of what an earlier step wrote or deleted."""
    fd = os.open(loc.dir, os.O_RDONLY | os.O_DIRECTORY)
    try:
        LIBC.syncfs(fd)
    finally:
        os.close(fd)


def set_subreaper():
    libc = LIBC
    if libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0:
        raise BenchError(f"prctl(PR_SET_CHILD_SUBREAPER): {os.strerror(ctypes.get_errno())}")


def parent_of(pid):
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            stat = f.read()
    except OSError:
        return None
    return int(stat[stat.rindex(b")") + 2:].split()[1])


def reap(pid, timeout):
    """Reap our child (or adopted orphan) pid; its wait status, or None if not ours or
    it did not exit within timeout seconds."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            got, status = os.waitpid(pid, os.WNOHANG)
        except ChildProcessError:
            LIVE.discard(pid)
            return None
        if got == pid:
            LIVE.discard(pid)
            return status
        if time.monotonic() >= deadline:
            return None
        time.sleep(0.005)


def kill_and_reap(pid):
    """SIGKILL pid only if it is our child (started, or restored and adopted by us)."""
    if parent_of(pid) == os.getpid():
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        if reap(pid, 60) is None and parent_of(pid) is not None:
            print(f"bench: warning: pid {pid} did not exit within 60 s", file=sys.stderr)
    else:
        LIVE.discard(pid)


def start_workload(exe, kib, scratch):
    ready = os.path.join(scratch, f"ready.{time.monotonic_ns()}")
    devnull_in = (os.POSIX_SPAWN_OPEN, 0, "/dev/null", os.O_RDONLY, 0)
    devnull_out = [(os.POSIX_SPAWN_OPEN, fd, "/dev/null", os.O_WRONLY, 0) for fd in (1, 2)]
    pid = os.posix_spawn(exe, [exe, str(kib), ready], os.environ,
                         file_actions=[devnull_in] + devnull_out, setsid=True)
    LIVE.add(pid)
    deadline = time.monotonic() + 120
    while not os.path.exists(ready):
        status = reap(pid, 0)
        if status is not None:
            raise BenchError(f"workload ({kib} KiB) exited early, status {status:#x}")
        if time.monotonic() >= deadline:
            kill_and_reap(pid)
            raise BenchError(f"workload ({kib} KiB) not ready within 120 s")
        time.sleep(0.01)
    os.unlink(ready)
    return pid


def timed(argv, cwd=None):
    t0 = time.perf_counter()
    try:
        r = subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, timeout=CMD_TIMEOUT, cwd=cwd)
    except subprocess.TimeoutExpired:
        raise BenchError(f"{' '.join(argv[:2])} timed out after {CMD_TIMEOUT} s")
    return time.perf_counter() - t0, r


def last_line(text):
    lines = [ln for ln in text.decode(errors="replace").splitlines() if ln.strip()]
    return lines[-1].strip() if lines else "(no message)"


def rss_kib(pid):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


# ---------------------------------------------------------------- locations


class Location:
    def __init__(self, name, path, sync, desc):
        self.name, self.dir, self.sync, self.desc = name, path, sync, desc


def fs_type(path):
    r = subprocess.run(["stat", "-f", "-c", "%T", path], stdout=subprocess.PIPE,
                       stderr=subprocess.DEVNULL, text=True, timeout=10)
    return r.stdout.strip() or "?"


def unmount_tmpfs():
    r = subprocess.run(["umount", TMPFS_MOUNT], stdin=subprocess.DEVNULL, timeout=60)
    if r.returncode != 0:
        subprocess.run(["umount", "-l", TMPFS_MOUNT], stdin=subprocess.DEVNULL, timeout=60)
    os.rmdir(TMPFS_MOUNT)


def setup_locations(names, max_mib, cleanup):
    locs = []
    if "tmpfs" in names:
        path = None
        os.makedirs(TMPFS_MOUNT, exist_ok=True)
        size = f"size={2 * max_mib + 512}m"
        r = subprocess.run(["mount", "-t", "tmpfs", "-o", size + ",mode=0700", "stasis-bench",
                            TMPFS_MOUNT], stdin=subprocess.DEVNULL, stderr=subprocess.PIPE,
                           timeout=30)
        if r.returncode == 0:
            path = TMPFS_MOUNT
            cleanup.append(unmount_tmpfs)
            desc = f"tmpfs mounted at {TMPFS_MOUNT}"
        else:
            os.rmdir(TMPFS_MOUNT)
            path = tempfile.mkdtemp(prefix="stasis-bench.", dir="/dev/shm")
            cleanup.append(lambda p=path: shutil.rmtree(p, ignore_errors=True))
            desc = f"{path} (mounting a tmpfs failed: {last_line(r.stderr)})"
        locs.append(Location("tmpfs", path, False, desc + ", --no-sync"))
    if "disk" in names or "disk-nosync" in names:
        base = tempfile.mkdtemp(prefix="stasis-bench.", dir="/var/tmp")
        cleanup.append(lambda: shutil.rmtree(base, ignore_errors=True))
        kind = fs_type(base)
        if "disk" in names:
            d = os.path.join(base, "sync")
            os.mkdir(d)
            locs.append(Location("disk", d, True, f"{d} ({kind}), fsync (default dump)"))
        if "disk-nosync" in names:
            d = os.path.join(base, "nosync")
            os.mkdir(d)
            locs.append(Location("disk-nosync", d, False, f"{d} ({kind}), --no-sync"))
    return locs


# ---------------------------------------------------------------- one round


def limit_dump(ctx, loc, nbytes):
    path = os.path.join(loc.dir, "limit.bin")
    r = subprocess.run([ctx.limits, "write", path, str(nbytes), "1" if loc.sync else "0",
                        str(LIMIT_TRIES)],
                       stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       timeout=CMD_TIMEOUT)
    if r.returncode != 0:
        raise BenchError(f"limits write: {last_line(r.stderr)}")
    return float(r.stdout)


def limit_restore(ctx, nbytes):
    r = subprocess.run([ctx.limits, "fresh", str(nbytes), str(LIMIT_TRIES)],
                       stdin=subprocess.DEVNULL,
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=CMD_TIMEOUT)
    if r.returncode != 0:
        raise BenchError(f"limits fresh: {last_line(r.stderr)}")
    return float(r.stdout)


def fresh_dir(loc, name):
    path = os.path.join(loc.dir, name)
    shutil.rmtree(path, ignore_errors=True)
    os.mkdir(path)
    return path


def after_dump(pid, tool):
    """The dump must have ended the task: reap it."""
    if reap(pid, 60) is None:
        alive = parent_of(pid) is not None
        kill_and_reap(pid)
        if alive:
            raise BenchError(f"{tool} dump returned 0 but pid {pid} is still running")


def after_restore(pid, kib, tool, warnings):
    if parent_of(pid) != os.getpid():
        raise BenchError(f"{tool} restore returned 0 but pid {pid} is not running under the"
                         " benchmark's subreaper")
    LIVE.add(pid)
    rss = rss_kib(pid)
    if rss < kib * 0.9:
        warnings.add(f"{tool}: restored pid {pid} has VmRSS {rss} KiB < {kib} KiB touched")
    kill_and_reap(pid)


def stasis_round(ctx, loc, kib, with_limits):
    nbytes = kib * 1024
    out = {}
    pid = start_workload(ctx.workload, kib, ctx.scratch)
    try:
        if with_limits:
            settle(loc)
            out["dump_limit"] = limit_dump(ctx, loc, nbytes)
        img = fresh_dir(loc, "stasis-img")
        settle(loc)
        argv = [ctx.stasis, "dump", "-t", str(pid), "-D", img] + ([] if loc.sync else ["--no-sync"])
        out["dump"], r = timed(argv)
        if r.returncode != 0:
            raise BenchError(f"stasis dump exit {r.returncode}: {last_line(r.stderr)}")
        after_dump(pid, "stasis")
        if with_limits:
            out["restore_limit"] = limit_restore(ctx, nbytes)
        pidfile = os.path.join(ctx.scratch, "restored.pid")
        out["restore"], r = timed([ctx.stasis, "restore", "-D", img, "-d", "--pidfile", pidfile])
        if r.returncode != 0:
            raise BenchError(f"stasis restore exit {r.returncode}: {last_line(r.stderr)}")
        after_restore(pid, kib, "stasis", ctx.warnings)
    finally:
        kill_and_reap(pid)
        shutil.rmtree(os.path.join(loc.dir, "stasis-img"), ignore_errors=True)
    return out


def criu_error(img, log, r):
    try:
        with open(os.path.join(img, log), "rb") as f:
            text = f.read()
    except OSError:
        text = r.stderr
    # criu's first errors are often a helper's "exited, status=1": name the first real
    # cause and the final verdict
    errs = [ln.strip() for ln in text.decode(errors="replace").splitlines()
            if "Error" in ln and "exited, status=" not in ln]
    if not errs:
        return last_line(text)
    return errs[0] if len(errs) == 1 else f"{errs[0]} ... {errs[-1]}"



def fsync_tree(path):
    for dirpath, _, files in os.walk(path):
        for name in files:
            fd = os.open(os.path.join(dirpath, name), os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
        fd = os.open(dirpath, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def criu_round(ctx, loc, kib):
    out = {}
    pid = start_workload(ctx.workload, kib, ctx.scratch)
    img = fresh_dir(loc, "criu-img")
    settle(loc)
    try:
        out["dump"], r = timed(["criu", "dump", "-t", str(pid), "-D", img, "--shell-job",
                                "-o", "dump.log"])
        if r.returncode != 0:
            raise BenchError(f"criu dump exit {r.returncode}: {criu_error(img, 'dump.log', r)}")
        if loc.sync:  # criu does not fsync its images: add it, for the same durability
            t0 = time.perf_counter()
            fsync_tree(img)
            out["dump"] += time.perf_counter() - t0
        after_dump(pid, "criu")
        out["restore"], r = timed(["criu", "restore", "-D", img, "-d", "--shell-job",
                                   "-o", "restore.log"])
        if r.returncode != 0:
            raise BenchError(f"criu restore exit {r.returncode}: "
                             f"{criu_error(img, 'restore.log', r)}")
        after_restore(pid, kib, "criu", ctx.warnings)
    finally:
        kill_and_reap(pid)
        shutil.rmtree(img, ignore_errors=True)
    return out


# ---------------------------------------------------------------- report


def gbps(kib, seconds):
    return kib * 1024 / seconds / 1e9


def median(rounds, key):
    vals = [r[key] for r in rounds if key in r]
    return statistics.median(vals) if vals else None


def fmt_rate(kib, t):
    return f"{gbps(kib, t):6.2f} GB/s" if t else "         -"


def report(results, criu_note):
    print()
    print("Medians. GB/s = 10^9 bytes per second of touched workload memory;"
          " stasis/limit = stasis rate / limit rate; stasis/criu = stasis time / criu time"
          " (< 1: stasis faster).")
    head = (f"{'location':<12} {'size':>9} {'op':<8} {'stasis':>12} {'limit':>12} "
            f"{'stasis/limit':>12} {'target':>12} {'criu':>12} {'stasis/criu':>11}  n")
    print(head)
    print("-" * len(head))
    for (loc, kib), res in results.items():
        if "error" in res and not res["stasis"]:
            print(f"{loc:<12} {size_label(kib):>9} {'-':<8} failed: {res['error']}")
            continue
        for op, target in (("dump", DUMP_TARGET), ("restore", RESTORE_TARGET)):
            st = median(res["stasis"], op)
            cr = median(res["criu"], op)
            n = len([r for r in res["stasis"] if op in r])
            crs = "-" if cr is None else (fmt_rate(kib, cr) if kib >= 1024
                                          else f"{cr * 1000:7.1f} ms")
            ratio_c = "-" if (cr is None or st is None) else f"{st / cr:.2f}"
            if kib < 1024:  # tiny process: milliseconds
                sts = "-" if st is None else f"{st * 1000:9.1f} ms"
                tgt = "-" if st is None else (f"<{TINY_TARGET_MS:.0f}ms " +
                                              ("ok" if st * 1000 < TINY_TARGET_MS else "MISS"))
                print(f"{loc:<12} {size_label(kib):>9} {op:<8} {sts:>12} {'-':>12} {'-':>12} "
                      f"{tgt:>12} {crs:>12} {ratio_c:>11}  {n}")
                continue
            lim = median(res["stasis"], op + "_limit")
            sts = "-" if st is None else fmt_rate(kib, st)
            lims = "-" if lim is None else fmt_rate(kib, lim)
            ratio = "-" if (st is None or lim is None) else f"{lim / st:.3f}"
            tgt = "-" if ratio == "-" else (f">={target:.2f} " +
                                            ("ok" if lim / st >= target else "MISS"))
            print(f"{loc:<12} {size_label(kib):>9} {op:<8} {sts:>12} {lims:>12} {ratio:>12} "
                  f"{tgt:>12} {crs:>12} {ratio_c:>11}  {n}")
        if "error" in res:
            print(f"{'':<12} {'':>9} {'':<8} (stopped early: {res['error']})")
    if criu_note:
        print(f"criu: {criu_note}")


def size_label(kib):
    return f"{kib // 1024} MiB" if kib >= 1024 else f"{kib} KiB"


# ---------------------------------------------------------------- main


class Ctx:
    pass


def build_helpers(build_dir):
    out = os.path.join(build_dir, "bench")
    os.makedirs(out, exist_ok=True)
    exes = {}
    for name in ("workload", "limits"):
        src = os.path.join(ROOT, "bench", name + ".c")
        exe = os.path.join(out, name)
        if not os.path.exists(exe) or os.path.getmtime(src) > os.path.getmtime(exe):
            subprocess.run(["gcc", "-std=gnu11", "-O2", "-Wall", "-Wextra", "-Werror",
                            "-o", exe, src], check=True, stdin=subprocess.DEVNULL, timeout=120)
        exes[name] = exe
    return exes


def parse_args():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="64,512,2048", help="MiB, comma-separated")
    ap.add_argument("--repeat", type=int, default=5, help="rounds per measurement (median)")
    ap.add_argument("--locations", default="tmpfs,disk,disk-nosync",
                    help="comma-separated: tmpfs, disk (fsync), disk-nosync")
    ap.add_argument("--quick", action="store_true",
                    help="short run: sizes 64, 3 rounds (unless given explicitly)")
    ap.add_argument("--no-criu", action="store_true", help="skip the CRIU comparison")
    ap.add_argument("--no-tiny", action="store_true", help="skip the tiny-process timing")
    ap.add_argument("-v", "--verbose", action="store_true", help="print every round's times")
    ap.add_argument("--limits-only", action="store_true",
                    help="measure only the machine's limits (no stasis, no criu)")
    ap.add_argument("--stasis", default=os.path.join(ROOT, "build", "stasis"))
    ap.add_argument("--build", default=os.path.join(ROOT, "build"),
                    help="where the helpers are built (BUILD/bench)")
    args = ap.parse_args()
    if args.quick:
        if "--sizes" not in sys.argv:
            args.sizes = "64"
        if "--repeat" not in sys.argv:
            args.repeat = 3
    args.sizes = [int(s) for s in args.sizes.split(",") if s]
    args.locations = [s for s in args.locations.split(",") if s]
    bad = set(args.locations) - {"tmpfs", "disk", "disk-nosync"}
    if bad or not args.sizes or args.repeat < 1:
        ap.error(f"bad --locations {sorted(bad)}" if bad else "bad --sizes/--repeat")
    return args


def run_limits_only(ctx, locs, sizes, repeat):
    print(f"{'location':<12} {'size':>9} {'dump limit':>12} {'restore limit':>14}")
    for loc in locs:
        for mib in sizes:
            kib = mib * 1024
            d = [limit_dump(ctx, loc, kib * 1024) for _ in range(repeat)]
            f = [limit_restore(ctx, kib * 1024) for _ in range(repeat)]
            print(f"{loc.name:<12} {size_label(kib):>9} "
                  f"{fmt_rate(kib, statistics.median(d)):>12} "
                  f"{fmt_rate(kib, statistics.median(f)):>14}", flush=True)


def main():
    args = parse_args()
    if os.geteuid() != 0:
        sys.exit("bench: run as root (stasis dump/restore and the tmpfs mount need it)")
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    set_subreaper()
    ctx = Ctx()
    exes = build_helpers(args.build)
    ctx.workload, ctx.limits = exes["workload"], exes["limits"]
    ctx.stasis = args.stasis
    ctx.warnings = set()
    if not args.limits_only and not os.access(ctx.stasis, os.X_OK):
        sys.exit(f"bench: {ctx.stasis} not found: run `make` first")
    use_criu = not args.no_criu and not args.limits_only and shutil.which("criu") is not None
    criu_note = None if use_criu or args.no_criu or args.limits_only else "not installed"

    cleanup = []
    ctx.scratch = tempfile.mkdtemp(prefix="stasis-bench-run.", dir="/tmp")
    cleanup.append(lambda: shutil.rmtree(ctx.scratch, ignore_errors=True))
    try:
        locs = setup_locations(args.locations, max(args.sizes), cleanup)
        print(f"stasis benchmark: sizes {args.sizes} MiB, {args.repeat} rounds, "
              f"kernel {os.uname().release}, {os.cpu_count()} cpus")
        for loc in locs:
            print(f"  {loc.name:<12} {loc.desc}")
        if args.limits_only:
            run_limits_only(ctx, locs, args.sizes, args.repeat)
            return 0

        results = {}
        plan = [(kib, True) for kib in (m * 1024 for m in args.sizes)]
        if not args.no_tiny:
            plan.insert(0, (TINY_KIB, False))
        for loc in locs:
            for kib, with_limits in plan:
                res = results[(loc.name, kib)] = {"stasis": [], "criu": []}
                print(f"  {loc.name} {size_label(kib)}: ", end="", flush=True)
                for _ in range(args.repeat):
                    try:
                        res["stasis"].append(stasis_round(ctx, loc, kib, with_limits))
                    except BenchError as e:
                        res["error"] = str(e)
                        break
                    if args.verbose:
                        print(" stasis[" + " ".join(f"{k}={v * 1000:.1f}ms" for k, v in
                                                   sorted(res["stasis"][-1].items())) + "]",
                              end="", flush=True)
                    else:
                        print(".", end="", flush=True)
                    if use_criu:
                        try:
                            res["criu"].append(criu_round(ctx, loc, kib))
                            if args.verbose:
                                print(" criu[" + " ".join(f"{k}={v * 1000:.1f}ms" for k, v in
                                                        sorted(res["criu"][-1].items())) + "]",
                                      end="", flush=True)
                        except BenchError as e:
                            use_criu, criu_note = False, f"failed, comparison skipped: {e}"
                print(" " + res.get("error", "done"), flush=True)
        report(results, criu_note)
        for w in sorted(ctx.warnings):
            print(f"warning: {w}")
        return 0 if all("error" not in r for r in results.values()) else 1
    finally:
        for pid in list(LIVE):
            kill_and_reap(pid)
        for fn in reversed(cleanup):
            try:
                fn()
            except OSError as e:
                print(f"bench: cleanup: {e}", file=sys.stderr)


if __name__ == "__main__":
    try:
        sys.exit(main())
    except BenchError as e:
        sys.exit(f"bench: {e}")
