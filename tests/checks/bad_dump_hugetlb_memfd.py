# stasis-check: timeout=30
"""A dump of a task holding an MFD_HUGETLB memfd (its contents would come back in a plain
memfd, and hugetlbfs has no write() to put them back) must fail with one line naming the
fd and the huge pages; the task is left running untouched and not traced."""
import os
import subprocess
import sys
import time

from checks._failsafe import check_untouched
from lib.proc import Failure, Skip, kill_pid, wait_pid

PROG = r"""
import os, sys, time
try:
    fd = os.memfd_create("huge", os.MFD_HUGETLB)
    os.ftruncate(fd, 2 << 20)
    sys.stdout.write("%d\n" % fd)
except OSError as e:
    sys.stdout.write("unsupported %s\n" % e)
sys.stdout.flush()
while True:
    time.sleep(1)
"""


def check(c):
    p = subprocess.Popen([sys.executable, "-c", PROG], stdin=subprocess.DEVNULL,
                         stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    try:
        line = p.stdout.readline().decode().strip()
        if not line or line.startswith("unsupported"):
            raise Skip("no MFD_HUGETLB here (%s)" % (line or "no answer"))
        err = c.expect_failure([c.stasis, "dump", "-t", str(p.pid), "-D",
                                os.path.join(c.tmp, "huge-img")],
                               "dump of a task with a hugetlb memfd", allowed=(p.pid,))
        if "huge pages" not in err or ("fd %s of pid %d" % (line, p.pid)) not in err:
            raise Failure("the error does not name fd %s and its huge pages: %r" % (line, err))
        time.sleep(0.1)
        check_untouched(p.pid)
        return err
    finally:
        kill_pid(p.pid)
        wait_pid(p.pid, time.monotonic() + 5)
