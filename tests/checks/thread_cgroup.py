# stasis-check: timeout=60 needs=root
# stasis-check: why=(makes cgroups and moves threads into them)
# stasis-check: rootless-known=the check makes cgroups of the host
"""Threads in other cgroups than their process. A python process with two more threads:
where a v1 `pids` hierarchy is mounted, the process in cgroup p and its first thread in
cgroup t (its tid written to t's `tasks`); where cgroup v2 is, a threaded subtree: the
process in threaded cgroup b, its second thread in threaded cgroup a (`cgroup.threads`).
Dumped (killed), every cgroup removed, restored: each thread is in its cgroups again (the
others in the process's), the v2 cgroups made threaded again. Refused at dump before."""
import os
import subprocess
import sys
import time

from lib.cgroupfs import read, rmdirs, write
from lib.proc import Failure, Skip, kill_pid, run_cmd, wait_pid

PROG = r"""
import sys, threading, time, ctypes
def t():
    with open(sys.argv[1], "a") as f:
        f.write("%d\n" % ctypes.CDLL(None).gettid())
    while True:
        time.sleep(0.05)
for _ in range(2):
    threading.Thread(target=t, daemon=True).start()
    time.sleep(0.1)
while True:
    time.sleep(0.05)
"""


def v2_mount():
    for m in ("/sys/fs/cgroup", "/sys/fs/cgroup/unified"):
        if os.path.exists(os.path.join(m, "cgroup.controllers")):
            return m
    return None


def cgroup_of(pid, tid, hierarchy):
    """The path of thread @tid of @pid in the hierarchy whose line starts with @hierarchy."""
    for line in read("/proc/%d/task/%d/cgroup" % (pid, tid)).splitlines():
        if line.startswith(hierarchy):
            return line.split(":", 2)[2]
    return None


def setup(name, pid, tids):
    """The cgroups made (innermost first) and the expected (tid, hierarchy prefix, path)."""
    dirs, want = [], []
    v1 = "/sys/fs/cgroup/pids"
    if os.path.ismount(v1) and not os.path.exists(os.path.join(v1, "cgroup.controllers")):
        top = os.path.join(v1, name)
        for d in (top, top + "/p", top + "/t"):
            os.mkdir(d)
            dirs.insert(0, d)
        write(top + "/p/cgroup.procs", str(pid))
        write(top + "/t/tasks", str(tids[0]))
        pre = [l.split(":", 2)[0] + ":pids:" for l in read("/proc/%d/cgroup" % pid).splitlines()
               if l.split(":")[1] == "pids"][0]
        want += [(tids[0], pre, "/%s/t" % name), (tids[1], pre, "/%s/p" % name),
                 (pid, pre, "/%s/p" % name)]
    m2 = v2_mount()
    if m2:
        top = os.path.join(m2, name)
        os.mkdir(top)
        dirs.insert(0, top)
        for sub in ("a", "b"):
            os.mkdir(os.path.join(top, sub))
            dirs.insert(0, os.path.join(top, sub))
            write(os.path.join(top, sub, "cgroup.type"), "threaded")
        write(top + "/b/cgroup.procs", str(pid))
        write(top + "/a/cgroup.threads", str(tids[1]))
        want += [(tids[1], "0::", "/%s/a" % name), (tids[0], "0::", "/%s/b" % name),
                 (pid, "0::", "/%s/b" % name)]
    if not want:
        raise Skip("no v1 pids hierarchy and no cgroup v2 here")
    return dirs, want


def expect(pid, want, when):
    for tid, pre, path in want:
        got = cgroup_of(pid, tid, pre)
        if got != path:
            raise Failure("%s: thread %d of %d is in %s (%s), expected %s" % (
                when, tid, pid, got, pre, path))


def check(c):
    name = "stasis-check-thr-%d" % os.getpid()
    tidf = os.path.join(c.tmp, "thr-tids")
    p = subprocess.Popen([sys.executable, "-c", PROG, tidf], stdin=subprocess.DEVNULL,
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    dirs, restored = [], False
    try:
        deadline = time.monotonic() + 10
        while not os.path.exists(tidf) or len(read(tidf).split()) < 2:
            if p.poll() is not None or time.monotonic() > deadline:
                raise Failure("the threads did not start (status %s)" % p.poll())
            time.sleep(0.02)
        tids = [int(x) for x in read(tidf).split()]
        dirs, want = setup(name, p.pid, tids)
        expect(p.pid, want, "before the dump")
        img = os.path.join(c.tmp, "thr-img")
        rc, _, err = run_cmd([c.stasis, "dump", "-t", str(p.pid), "-D", img], c.timeout)
        if rc != 0:
            raise Failure("dump: %s" % err.strip()[-300:])
        p.wait(timeout=10)
        rmdirs(dirs)
        if any(os.path.exists(d) for d in dirs):
            raise Failure("the cgroups could not be removed after the dump")
        rc, _, err = run_cmd(c.restore_argv(img), c.timeout)
        if rc != 0:
            raise Failure("restore: %s" % err.strip()[-300:])
        restored = True
        expect(p.pid, want, "after the restore")
        m2 = v2_mount()
        if m2 and read(os.path.join(m2, name, "a", "cgroup.type")) != "threaded":
            raise Failure("the v2 cgroup a was not made threaded again")
        return "%d thread placements kept (%s)" % (
            len(want), ", ".join(sorted({w[1] for w in want})))
    finally:
        kill_pid(p.pid)
        if not restored:
            p.wait(timeout=10)
        else:
            p.poll()
            wait_pid(p.pid, time.monotonic() + 5)
        rmdirs(dirs)
