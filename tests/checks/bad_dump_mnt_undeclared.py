# stasis-check: timeout=30
"""A dump of a task (a sleep under `unshare -m`) with an overlayfs mount it did not declare
external must fail naming the mount point and `--external mnt[`; the task is left
untouched and not traced."""
import os

from lib.proc import Failure, proc_stat


def check(c):
    p, mnt = c.start_overlay("ovl-undeclared")
    try:
        line = c.expect_failure([c.stasis, "dump", "-t", str(p.pid), "-D",
                                 os.path.join(c.tmp, "ovl-undeclared-img")],
                                "dump of an undeclared overlay mount",
                                allowed=(p.pid,))
        if mnt not in line or "--external mnt[" not in line:
            raise Failure("the error does not name the mount: %r" % line)
        st = proc_stat(p.pid)
        if st is None or st[0] not in ("S", "R"):
            raise Failure("the task was disturbed by the failed dump (%s)" % (st,))
        with open("/proc/%d/status" % p.pid) as f:
            if any(ln.split()[1:2] != ["0"] for ln in f if ln.startswith("TracerPid:")):
                raise Failure("the task is still traced after the failed dump")
    finally:
        c.stop_overlay(p)
