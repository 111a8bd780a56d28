# stasis-check: timeout=60 needs=host-root
# stasis-check: why=(cgroups of the host)
"""The settings of the tree's cgroups (issue 16, --manage-cgroups). A sleeper is put in
cgroups the check makes in the v1 hierarchies: pids OUTER/inner (pids.max 99 and 77), cpu
OUTER (cpu.shares 333, a 25 ms quota per 50 ms period), cpuset OUTER (cpus 0, mems 0).
It is dumped, its cgroups are removed, and:
  - a restore with --manage-cgroups=none fails with one line naming the missing cgroup,
    and leaves nothing;
  - a restore (the default mode, soft) makes the cgroups again with their settings and
    puts the sleeper back in them;
  - dumped again with the cgroups in place but their settings changed, a restore with
    --manage-cgroups=full sets them back."""
import os
import subprocess
import time

from lib.cgroupfs import ROOT, read, rmdirs, write
from lib.proc import Failure, Skip, kill_pid, pid_alive, proc_stat, reap_all, run_cmd


def check(c):
    for h in ("pids", "cpu", "cpuset"):
        if not os.path.exists(os.path.join(ROOT, h, "cgroup.procs")):
            raise Skip("no cgroup v1 %s hierarchy at %s/%s" % (h, ROOT, h))
    name = "stasis-cgprops-%d" % os.getpid()
    outer = {h: os.path.join(ROOT, h, name) for h in ("pids", "cpu", "cpuset")}
    inner = os.path.join(outer["pids"], "inner")
    dirs = [outer["pids"], inner, outer["cpu"], outer["cpuset"]]
    settings = [(outer["pids"], "pids.max", "99"), (inner, "pids.max", "77"),
                (outer["cpu"], "cpu.shares", "333"), (outer["cpu"], "cpu.cfs_period_us", "50000"),
                (outer["cpu"], "cpu.cfs_quota_us", "25000"), (outer["cpuset"], "cpuset.cpus", "0"),
                (outer["cpuset"], "cpuset.mems", "0")]
    img = os.path.join(c.tmp, "cgprops-img")
    p = None
    pid = None
    try:
        for d in dirs:
            os.makedirs(d, exist_ok=True)
        for d, f, v in settings:
            write(os.path.join(d, f), v)
        p = subprocess.Popen(["sleep", "1000"], stdin=subprocess.DEVNULL,
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        pid = p.pid
        for d in (inner, outer["cpu"], outer["cpuset"]):
            write(os.path.join(d, "cgroup.procs"), str(pid))
        want = read("/proc/%d/cgroup" % pid)

        def dump(extra=()):
            if os.path.exists(img):
                subprocess.run(["rm", "-rf", img], check=True)
            rc, _, err = run_cmd([c.stasis, "dump", "-t", str(pid), "-D", img] + list(extra),
                                 c.timeout)
            if rc != 0:
                raise Failure("dump failed: %s" % err.strip()[-300:])
            p.wait(timeout=10)

        def restore(extra=()):
            rc, _, err = run_cmd([c.stasis, "restore", "-D", img, "-d"] + list(extra),
                                 c.timeout)
            if rc != 0:
                raise Failure("restore %s failed: %s" % (" ".join(extra), err.strip()[-300:]))
            if read("/proc/%d/cgroup" % pid) != want:
                raise Failure("the restored task is in %s, was in %s" % (
                    read("/proc/%d/cgroup" % pid), want))
            for d, f, v in settings:
                got = read(os.path.join(d, f))
                if got != v:
                    raise Failure("restore %s: %s/%s is %s, was %s" % (
                        " ".join(extra), d, f, got, v))

        dump()
        rmdirs(dirs)
        line = c.expect_failure([c.stasis, "restore", "-D", img, "-d", "--manage-cgroups=none"],
                                "restore into missing cgroups with --manage-cgroups=none",
                                pid=pid)
        if name not in line:
            raise Failure("the error does not name the missing cgroup: %s" % line)
        rmdirs(dirs)  # (none made: a failed restore leaves nothing)
        restore()
        # the settings changed while the cgroups stay: --manage-cgroups=full sets them back
        kill_pid(pid)
        deadline = time.monotonic() + 10
        while proc_stat(pid) is not None and time.monotonic() < deadline:
            reap_all()  # (a zombie keeps the pid the next restore needs)
            time.sleep(0.01)
        write(os.path.join(outer["pids"], "pids.max"), "5000")
        write(os.path.join(outer["cpu"], "cpu.shares", ), "1024")
        restore(["--manage-cgroups=full"])
        return "cgroups made again with pids.max, cpu.shares, CFS quota and cpuset (soft); " \
            "none refused the missing ones; full set changed settings back"
    finally:
        for q in (pid,):
            if q and pid_alive(q):
                kill_pid(q)
        reap_all()
        rmdirs(dirs)
