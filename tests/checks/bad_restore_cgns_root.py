# stasis-check: timeout=30
"""A cgroup namespace root climbing out of the hierarchy ("/../..") must be refused
on load, naming it, before any process exists."""
import os

from lib.proc import Failure, run_cmd


def check(c):
    d, pid = c.variant("cgns-root")
    rc, _, err = run_cmd([os.path.join(c.build, "tests", "tools", "imgedit"), d,
                          str(pid), "cgns-root", "/../../etc"], 30)
    if rc != 0:
        raise Failure("imgedit cgns-root failed: %s" % err.strip()[:200])
    line = c.expect_failure(c.restore_argv(d),
                            "restore with a cgroup namespace root outside the "
                            "hierarchy", pid=pid)
    if "/../../etc" not in line or "cgroup namespace" not in line:
        raise Failure("the error does not name the bad root: %s" % line)
    return line
