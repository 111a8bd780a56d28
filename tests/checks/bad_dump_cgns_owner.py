# stasis-check: timeout=30
"""A sleep that unshared a cgroup namespace and then a user namespace: its cgroup
namespace is owned by the user namespace above its own, which a restore (the
task enters its user namespace first) cannot rebuild. The dump must say so and
leave the task untouched."""
import os
import subprocess
import time

from lib.proc import Failure, Skip, kill_pid, proc_stat


def check(c):
    p = subprocess.Popen(["unshare", "-C", "unshare", "-Ur", "sleep", "60"],
                         stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                         stderr=subprocess.DEVNULL, cwd=c.tmp)
    try:
        deadline = time.monotonic() + c.timeout
        ready = False
        while not ready and time.monotonic() < deadline and p.poll() is None:
            try:
                with open("/proc/%d/comm" % p.pid) as f:
                    ready = f.read().strip() == "sleep"
            except OSError:
                pass
            time.sleep(0.02)
        if not ready:
            raise Skip("cannot unshare a cgroup and a user namespace here")
        line = c.expect_failure([c.stasis, "dump", "-t", str(p.pid), "-D",
                                 os.path.join(c.tmp, "cgns-owner-img")],
                                "dump of a cgroup namespace owned by another user "
                                "namespace", allowed=(p.pid,))
        if "cgroup namespace is owned by" not in line:
            raise Failure("the error does not name the cause: %r" % line)
        st = proc_stat(p.pid)
        if st is None or st[0] not in ("S", "R"):
            raise Failure("the task was disturbed by the failed dump (%s)" % (st,))
        return line
    finally:
        kill_pid(p.pid)
        try:
            p.wait(timeout=10)
        except subprocess.TimeoutExpired:
            pass
