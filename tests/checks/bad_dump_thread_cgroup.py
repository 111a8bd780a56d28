# stasis-check: timeout=30 needs=root
# stasis-check: why=(makes cgroups and moves a thread into one)
# stasis-check: rootless-known=the check makes cgroups of the host
"""A thread in other cgroups than its process is refused: the restore would put every
thread in the process's cgroups. A python process's second thread is moved into a cgroup
of its own (cgroup v1: its tid into a `pids` cgroup's `tasks`; v2: a threaded subtree,
its tid into `cgroup.threads`); the dump fails with one line naming the thread, and the
process runs on."""
import os
import subprocess
import sys
import time

from lib.proc import Failure, Skip, kill_pid, wait_pid

PROG = r"""
import sys, threading, time
def t():
    import ctypes
    sys.stdout.write("%d\n" % ctypes.CDLL(None).gettid()); sys.stdout.flush()
    time.sleep(60)
threading.Thread(target=t, daemon=True).start()
time.sleep(60)
"""


def make_cgroups(name):
    """(the cgroup to move the thread into, the directories to remove, innermost first)"""
    if os.path.exists("/sys/fs/cgroup/cgroup.controllers"):  # v2
        top = os.path.join("/sys/fs/cgroup", name)
        os.mkdir(top)
        dirs = [top]
        try:
            for sub in ("a", "b"):
                d = os.path.join(top, sub)
                os.mkdir(d)
                dirs.insert(0, d)
                with open(os.path.join(d, "cgroup.type"), "w") as f:
                    f.write("threaded")
        except OSError as e:
            raise Skip("no threaded cgroups here: %s" % e)
        return dirs[0], dirs[1], dirs
    base = "/sys/fs/cgroup/pids"
    if not os.path.isdir(base):
        raise Skip("no cgroup v2 and no v1 pids hierarchy")
    d = os.path.join(base, name)
    os.mkdir(d)
    return d, None, [d]


def check(c):
    name = "stasis-check-thr-%d" % os.getpid()
    p = subprocess.Popen([sys.executable, "-c", PROG], stdin=subprocess.DEVNULL,
                         stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    dirs = []
    try:
        tid = int(p.stdout.readline())
        thr, proc_cg, dirs = make_cgroups(name)
        if proc_cg:  # v2: the process in one threaded cgroup, the thread in the other
            for d in (os.path.dirname(proc_cg), proc_cg):  # into the domain, then below
                with open(os.path.join(d, "cgroup.procs"), "w") as f:
                    f.write(str(p.pid))
            target = os.path.join(thr, "cgroup.threads")
        else:
            target = os.path.join(thr, "tasks")
        with open(target, "w") as f:
            f.write(str(tid))
        line = c.expect_failure([c.stasis, "dump", "-t", str(p.pid), "-D",
                                 os.path.join(c.tmp, "thr-img")], "dump", allowed=(p.pid,))
        if "thread %d" % tid not in line or "cgroups" not in line:
            raise Failure("the refusal does not name the thread: %s" % line)
        if p.poll() is not None:
            raise Failure("the process died with the failed dump")
        return line
    finally:
        kill_pid(p.pid)
        wait_pid(p.pid, time.monotonic() + 5)
        for d in dirs:
            for _ in range(50):
                try:
                    os.rmdir(d)
                    break
                except OSError:
                    time.sleep(0.05)
