# stasis-check: timeout=30
"""A dump of kthreadd (pid 2, a kernel thread) must fail."""
import os

from lib.proc import Skip


def check(c):
    try:
        comm = open("/proc/2/comm").read().strip()
    except OSError:
        comm = ""
    if comm != "kthreadd":
        raise Skip("pid 2 is not kthreadd here")
    c.expect_failure([c.stasis, "dump", "-t", "2", "-D",
                      os.path.join(c.tmp, "kthread")], "dump of kthreadd")
