# stasis-check: timeout=60
"""Two dumps of the same process at once: while the first (--leave-running, a 256 MiB
process) is writing its pages, a second one into another directory fails with one line
saying the pid is already being dumped by the first stasis's pid, and leaves no
temporary directory; the first completes, and the process runs on untouched (not
traced, its blocked signals as before)."""
import os

from checks._failsafe import (check_untouched, finish, start_dump, start_mem, status_field,
                              stop, tmp_dirs, wait_tmp)
from lib.proc import Failure


def check(c):
    p = start_mem(c, 256, "concurrent")
    try:
        before = status_field(p.pid, "SigBlk")
        img_a = os.path.join(c.tmp, "concurrent-a")
        img_b = os.path.join(c.tmp, "concurrent-b")
        a = start_dump(c, p.pid, img_a, os.path.join(c.tmp, "concurrent-a.log"))
        wait_tmp(c, a, img_a, 8 << 20)
        line = c.expect_failure([c.stasis, "dump", "-t", str(p.pid), "-D", img_b],
                                "a second dump of pid %d" % p.pid, allowed=(p.pid, a.pid))
        want = "pid %d is already being dumped (by stasis pid %d)" % (p.pid, a.pid)
        if want not in line:
            raise Failure("the error does not say %r: %s" % (want, line))
        if tmp_dirs(img_b) or os.path.exists(img_b):
            raise Failure("the refused dump left %s" % (tmp_dirs(img_b) or img_b))
        rc, err = finish(c, a)
        if rc != 0:
            raise Failure("the first dump failed (status %s): %s" % (rc, err.strip()[:300]))
        if not os.path.isfile(os.path.join(img_a, "inventory.img")):
            raise Failure("the first dump left no image set")
        check_untouched(p.pid, blocked=before)
        return line
    finally:
        stop(p)
