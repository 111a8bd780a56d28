# stasis-check: timeout=30
"""A vfork parent waiting for its child (which shares its memory until it execs or exits)
cannot be frozen: no ptrace stop interrupts that wait. The dump fails at once (not after
the 10 s freezing timeout) with one line naming the task, and both processes run on: the
child's exit status still reaches the parent."""
import os
import subprocess
import time

from lib.proc import Failure, kill_pid, proc_children, wait_pid


def check(c):
    tool = os.path.join(os.path.dirname(c.stasis), "tests", "tools", "vfork_wait")
    p = subprocess.Popen([tool], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                         stderr=subprocess.DEVNULL)
    try:
        if int(p.stdout.readline()) != p.pid:
            raise Failure("vfork_wait did not start")
        time.sleep(0.2)
        t0 = time.monotonic()
        line = c.expect_failure([c.stasis, "dump", "-t", str(p.pid), "-D",
                                 os.path.join(c.tmp, "vfork-img")], "dump",
                                allowed=(p.pid,))
        took = time.monotonic() - t0
        if "vfork" not in line or str(p.pid) not in line:
            raise Failure("the refusal does not name the vfork parent: %s" % line)
        if took > 3:
            raise Failure("the refusal took %.1f s" % took)
        if p.poll() is not None:
            raise Failure("the vfork parent died with the failed dump")
        return "%s (%.2f s)" % (line, took)
    finally:
        for k in proc_children(p.pid):
            kill_pid(k)  # the vfork child, ours through its parent
        kill_pid(p.pid)
        wait_pid(p.pid, time.monotonic() + 5)
