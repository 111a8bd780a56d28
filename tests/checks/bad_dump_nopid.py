# stasis-check: timeout=30
"""A dump of a free pid (the highest free one below pid_max) must fail."""
import os


def check(c):
    pid = 0
    maxpid = int(open("/proc/sys/kernel/pid_max").read())
    for cand in range(maxpid - 1, 300, -1):
        if not os.path.exists("/proc/%d" % cand):
            pid = cand
            break
    c.expect_failure([c.stasis, "dump", "-t", str(pid), "-D",
                      os.path.join(c.tmp, "nopid")], "dump of free pid %d" % pid)
