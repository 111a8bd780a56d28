# stasis-check: timeout=30
"""A dump of a task (a sleep under `unshare -m`) with an overlayfs mount it did not declare
external must fail naming the mount point and `--external mnt[`; the task is left
untouched and not traced."""
import os
import time

from checks._failsafe import check_untouched
from lib.proc import Failure


def check(c):
    p, mnt = c.start_overlay("ovl-undeclared")
    try:
        line = c.expect_failure([c.stasis, "dump", "-t", str(p.pid), "-D",
                                 os.path.join(c.tmp, "ovl-undeclared-img")],
                                "dump of an undeclared overlay mount",
                                allowed=(p.pid,))
        if mnt not in line or "--external mnt[" not in line:
            raise Failure("the error does not name the mount: %r" % line)
        time.sleep(0.1)
        check_untouched(p.pid)
    finally:
        c.stop_overlay(p)
