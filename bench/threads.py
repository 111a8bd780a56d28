#!/usr/bin/env python3
"""stasis thread benchmark: dump and restore time of one process with N sleeping threads.

    python3 bench/threads.py [--threads 100,1000,5000] [--repeat 3] [--stack-kib 64]
                             [--stages] [-v] [--stasis PATH] [--build DIR]

For each N, bench/thread_workload (built into BUILD/bench/) starts N threads that sleep in
FUTEX_WAIT; `stasis dump -t PID -D DIR --no-sync` and `stasis restore -D DIR -d` are timed
(wall time of the whole command) with the images on a tmpfs mounted for the run (or
/dev/shm if mounting fails). The restored process must run under this script's subreaper
with the same PID and N+1 threads; then it is killed by its PID. Medians of --repeat
rounds are printed with the time per thread, so linearity can be judged. --stages runs
stasis with -v and also prints the freeze and thread-restore stage times from its log.
Run as root from anywhere. The machine's thread limits are printed first.
"""
import argparse
import ctypes
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PR_SET_CHILD_SUBREAPER = 36
TMPFS_MOUNT = "/tmp/stasis-bench-threads-tmpfs"
CMD_TIMEOUT = 300   # seconds for any one stasis command
READY_TIMEOUT = 180  # seconds for the workload to start its threads
LIBC = ctypes.CDLL(None, use_errno=True)
LIVE = set()  # pids that may still be alive (ours: started or restored)


class BenchError(Exception):
    pass


def set_subreaper():
    if LIBC.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0:
        raise BenchError("prctl(PR_SET_CHILD_SUBREAPER): %s" % os.strerror(ctypes.get_errno()))


def parent_of(pid):
    try:
        with open("/proc/%d/stat" % pid, "rb") as f:
            stat = f.read()
    except OSError:
        return None
    return int(stat[stat.rindex(b")") + 2:].split()[1])


def reap(pid, timeout):
    """Wait status of our child pid, or None if it is not ours or did not exit in time."""
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
    """SIGKILL pid, only if it is our child (started by us, or restored and adopted)."""
    if parent_of(pid) != os.getpid():
        LIVE.discard(pid)
        return
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    if reap(pid, 120) is None and parent_of(pid) is not None:
        print("threads: warning: pid %d did not exit within 120 s" % pid, file=sys.stderr)


def thread_count(pid):
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                if line.startswith("Threads:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return -1


def start_workload(exe, n, stack_kib, scratch):
    ready = os.path.join(scratch, "ready.%d" % time.monotonic_ns())
    log = os.path.join(scratch, "workload.log")
    actions = [(os.POSIX_SPAWN_OPEN, 0, "/dev/null", os.O_RDONLY, 0),
               (os.POSIX_SPAWN_OPEN, 1, "/dev/null", os.O_WRONLY, 0),
               (os.POSIX_SPAWN_OPEN, 2, log, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)]
    pid = os.posix_spawn(exe, [exe, str(n), ready, str(stack_kib)], os.environ,
                         file_actions=actions, setsid=True)
    LIVE.add(pid)
    deadline = time.monotonic() + READY_TIMEOUT
    while not os.path.exists(ready):
        status = reap(pid, 0)
        if status is not None:
            with open(log, errors="replace") as f:
                why = f.read().strip().splitlines()
            raise BenchError("workload (%d threads) exited early, status %#x: %s"
                             % (n, status, why[-1] if why else "no message"))
        if time.monotonic() >= deadline:
            kill_and_reap(pid)
            raise BenchError("workload (%d threads) not ready within %d s" % (n, READY_TIMEOUT))
        time.sleep(0.01)
    os.unlink(ready)
    got = thread_count(pid)
    if got != n + 1:
        kill_and_reap(pid)
        raise BenchError("workload has %d threads, expected %d" % (got, n + 1))
    return pid


def timed(argv):
    t0 = time.perf_counter()
    try:
        r = subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, timeout=CMD_TIMEOUT, text=True,
                           errors="replace")
    except subprocess.TimeoutExpired:
        raise BenchError("%s timed out after %d s" % (" ".join(argv[:2]), CMD_TIMEOUT))
    return time.perf_counter() - t0, r


def last_line(text):
    lines = (text or "").strip().splitlines()
    return lines[-1] if lines else "(no output)"


STAGE_RES = {
    "freeze": re.compile(r"dump: (\d+) threads frozen in ([0-9.]+) ms"),
    "dump_state": re.compile(r"dump: task state collected in ([0-9.]+) ms"),
    "rst_threads": re.compile(r"restore: threads took ([0-9.]+) ms"),
    "rst_regs": re.compile(r"restore: registers took ([0-9.]+) ms"),
}


def stages(path):
    out = {}
    try:
        with open(path, errors="replace") as f:
            text = f.read()
    except OSError:
        return out
    for key, rx in STAGE_RES.items():
        found = rx.findall(text)
        if found:
            last = found[-1]
            out[key] = float(last[-1] if isinstance(last, tuple) else last)
    return out


def du_bytes(path):
    total = 0
    for name in os.listdir(path):
        try:
            total += os.stat(os.path.join(path, name)).st_size
        except OSError:
            pass
    return total


def one_round(ctx, n):
    pid = start_workload(ctx.workload, n, ctx.args.stack_kib, ctx.scratch)
    img = tempfile.mkdtemp(prefix="img.", dir=ctx.loc)
    for name in ("dump.log", "restore.log"):  # stasis -o appends
        try:
            os.unlink(os.path.join(ctx.scratch, name))
        except FileNotFoundError:
            pass
    try:
        verbose = ["-v", "-o", os.path.join(ctx.scratch, "dump.log")] if ctx.args.stages else []
        t_dump, r = timed([ctx.stasis, "dump", "-t", str(pid), "-D", img, "--no-sync"] + verbose)
        if r.returncode != 0:
            kill_and_reap(pid)
            raise BenchError("stasis dump of %d threads: exit %d: %s"
                             % (n, r.returncode, last_line(r.stderr)))
        if reap(pid, 60) is None:
            alive = parent_of(pid) is not None
            kill_and_reap(pid)
            if alive:
                raise BenchError("stasis dump returned 0 but pid %d still runs" % pid)
        size = du_bytes(img)
        verbose = ["-v", "-o", os.path.join(ctx.scratch, "restore.log")] if ctx.args.stages else []
        t_rst, r = timed([ctx.stasis, "restore", "-D", img, "-d"] + verbose)
        if r.returncode != 0:
            kill_and_reap(pid)
            raise BenchError("stasis restore of %d threads: exit %d: %s"
                             % (n, r.returncode, last_line(r.stderr)))
        if parent_of(pid) != os.getpid():
            raise BenchError("restore returned 0 but pid %d is not under the subreaper" % pid)
        LIVE.add(pid)
        got = thread_count(pid)
        kill_and_reap(pid)
        if got != n + 1:
            raise BenchError("restored pid %d has %d threads, expected %d" % (pid, got, n + 1))
    finally:
        shutil.rmtree(img, ignore_errors=True)
    res = {"dump": t_dump * 1000, "restore": t_rst * 1000, "size": size}
    if ctx.args.stages:
        res.update(stages(os.path.join(ctx.scratch, "dump.log")))
        res.update(stages(os.path.join(ctx.scratch, "restore.log")))
    if ctx.args.verbose:
        extra = "".join("  %s %.1f" % (k, res[k]) for k in STAGE_RES if k in res)
        print("  %5d threads: dump %8.1f ms  restore %8.1f ms  images %.1f MiB%s"
              % (n, res["dump"], res["restore"], size / 1048576, extra), flush=True)
    return res


def read_int(path):
    try:
        with open(path) as f:
            return int(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def system_tasks():
    n = 0
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                n += len(os.listdir("/proc/%s/task" % d))
            except OSError:
                pass
    return n


def print_limits(max_n):
    import resource
    soft, hard = resource.getrlimit(resource.RLIMIT_NPROC)
    fmt = lambda v: "unlimited" if v == resource.RLIM_INFINITY else str(v)
    tmax = read_int("/proc/sys/kernel/threads-max")
    pmax = read_int("/proc/sys/kernel/pid_max")
    maps = read_int("/proc/sys/vm/max_map_count")
    tasks = system_tasks()
    print("limits: RLIMIT_NPROC (ulimit -u) %s/%s%s, threads-max %s, pid_max %s, "
          "vm.max_map_count %s; %d tasks on the system now"
          % (fmt(soft), fmt(hard), " (not enforced for root)" if os.geteuid() == 0 else "",
             tmax, pmax, maps, tasks))
    need = max_n + 1
    problems = []
    if os.geteuid() != 0 and soft != resource.RLIM_INFINITY and tasks + need > soft:
        problems.append("RLIMIT_NPROC %d < %d tasks" % (soft, tasks + need))
    if tmax is not None and tasks + need > tmax:
        problems.append("threads-max %d < %d tasks" % (tmax, tasks + need))
    if pmax is not None and tasks + need > pmax - 300:
        problems.append("pid_max %d leaves too few pids for %d tasks" % (pmax, tasks + need))
    if maps is not None and 2 * need + 200 > maps:
        problems.append("max_map_count %d < ~%d mappings (stack + guard per thread)"
                        % (maps, 2 * need + 200))
    print("limits: %d threads: %s" % (max_n, "; ".join(problems) if problems else "within limits"))
    return not problems


def build_workload(build_dir):
    out = os.path.join(build_dir, "bench")
    os.makedirs(out, exist_ok=True)
    src = os.path.join(ROOT, "bench", "thread_workload.c")
    exe = os.path.join(out, "thread_workload")
    if not os.path.exists(exe) or os.path.getmtime(src) > os.path.getmtime(exe):
        subprocess.run(["gcc", "-std=gnu11", "-O2", "-Wall", "-Wextra", "-Werror", "-o", exe,
                        src], check=True, stdin=subprocess.DEVNULL, timeout=120)
    return exe


def setup_location(cleanup):
    os.makedirs(TMPFS_MOUNT, exist_ok=True)
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2g,mode=0700", "stasis-bench-thr",
                        TMPFS_MOUNT], stdin=subprocess.DEVNULL, stderr=subprocess.PIPE,
                       text=True, timeout=30)
    if r.returncode == 0:
        def unmount():
            if subprocess.run(["umount", TMPFS_MOUNT], stdin=subprocess.DEVNULL,
                              timeout=60).returncode != 0:
                subprocess.run(["umount", "-l", TMPFS_MOUNT], stdin=subprocess.DEVNULL,
                               timeout=60)
            os.rmdir(TMPFS_MOUNT)
        cleanup.append(unmount)
        return TMPFS_MOUNT, "tmpfs mounted at %s, --no-sync" % TMPFS_MOUNT
    os.rmdir(TMPFS_MOUNT)
    path = tempfile.mkdtemp(prefix="stasis-bench-threads.", dir="/dev/shm")
    cleanup.append(lambda: shutil.rmtree(path, ignore_errors=True))
    return path, "%s (mounting a tmpfs failed: %s), --no-sync" % (path, last_line(r.stderr))


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", default="100,1000,5000",
                    help="comma-separated thread counts (default 100,1000,5000)")
    ap.add_argument("--repeat", type=int, default=3, help="rounds per count (median)")
    ap.add_argument("--stack-kib", type=int, default=64, help="thread stack size")
    ap.add_argument("--stages", action="store_true",
                    help="run stasis with -v and print its freeze/thread-restore stage times")
    ap.add_argument("-v", "--verbose", action="store_true", help="print every round")
    ap.add_argument("--build", default=os.path.join(ROOT, "build"))
    ap.add_argument("--stasis", default=None, help="stasis binary (default BUILD/stasis)")
    args = ap.parse_args()
    counts = [int(x) for x in args.threads.split(",") if x.strip()]
    if os.geteuid() != 0:
        sys.exit("threads: run as root (stasis dump/restore and the tmpfs mount need it)")
    ctx = argparse.Namespace(args=args)
    ctx.stasis = os.path.abspath(args.stasis or os.path.join(args.build, "stasis"))
    if not os.access(ctx.stasis, os.X_OK):
        sys.exit("threads: %s not found (run make)" % ctx.stasis)
    set_subreaper()
    print_limits(max(counts))
    ctx.workload = build_workload(args.build)
    cleanup = []
    ctx.scratch = tempfile.mkdtemp(prefix="stasis-bench-threads.")
    cleanup.append(lambda: shutil.rmtree(ctx.scratch, ignore_errors=True))
    failed = False
    results = {}
    try:
        ctx.loc, desc = setup_location(cleanup)
        print("images: %s; stasis: %s; %d rounds per count, medians" % (desc, ctx.stasis,
                                                                         args.repeat))
        for n in counts:
            rounds = []
            for _ in range(args.repeat):
                try:
                    rounds.append(one_round(ctx, n))
                except BenchError as e:
                    print("threads: %d threads: %s" % (n, e), file=sys.stderr, flush=True)
                    failed = True
                    break
            if rounds:
                results[n] = rounds
    finally:
        for pid in list(LIVE):
            kill_and_reap(pid)
        for fn in reversed(cleanup):
            try:
                fn()
            except Exception as e:  # cleanup must go on
                print("threads: cleanup: %s" % e, file=sys.stderr)

    med = lambda rs, k: statistics.median(r[k] for r in rs)
    hdr = "%7s %6s %10s %11s %10s %12s %14s %10s" % (
        "threads", "rounds", "dump ms", "restore ms", "total ms", "dump ms/thr",
        "restore ms/thr", "images MiB")
    if args.stages:
        hdr += " %10s %12s %12s" % ("freeze ms", "rst thr ms", "rst regs ms")
    print(hdr)
    for n, rs in results.items():
        d, r = med(rs, "dump"), med(rs, "restore")
        line = "%7d %6d %10.1f %11.1f %10.1f %12.3f %14.3f %10.1f" % (
            n, len(rs), d, r, d + r, d / max(n, 1), r / max(n, 1), med(rs, "size") / 1048576)
        if args.stages:
            line += "".join(" %s" % ("%10.1f" % med(rs, k) if all(k in x for x in rs) else "%10s" % "-")
                            for k in ("freeze", "rst_threads", "rst_regs"))
        print(line)
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
