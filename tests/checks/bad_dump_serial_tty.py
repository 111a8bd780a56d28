# stasis-check: timeout=30 needs=host-root why=(opens /dev/ttyS0 and /dev/tty1)
"""A task holding a serial tty (/dev/ttyS0) or a virtual console (/dev/tty1) open, neither
its controlling terminal, cannot be checkpointed: the dump fails with one line naming the
fd and the device, and the task runs on untouched (not traced, not stopped)."""
import os
import subprocess
import sys
import time

from lib.proc import Failure, Skip, check_untouched, end_holder, proc_stat

HOLDER = r"""
import os, sys, time
fd = os.open(sys.argv[1], os.O_RDWR | os.O_NOCTTY | os.O_NONBLOCK)
os.dup2(fd, 7)
os.close(fd)
sys.stdout.write("ready\n")
sys.stdout.flush()
while True:
    time.sleep(1)
"""


def one(c, dev):
    p = subprocess.Popen([sys.executable, "-c", HOLDER, dev], stdin=subprocess.DEVNULL,
                         stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                         start_new_session=True)
    try:
        line = p.stdout.readline().decode()
        if line != "ready\n":
            p.wait(timeout=c.timeout)
            raise Skip("cannot open %s here" % dev)
        before = proc_stat(p.pid)
        err = c.expect_failure([c.stasis, "dump", "-t", str(p.pid), "-D",
                                os.path.join(c.tmp, os.path.basename(dev))],
                               "dump of a task holding %s" % dev, allowed=(p.pid,))
        if "fd 7 of pid %d" % p.pid not in err or dev not in err or \
                "virtual console or serial tty" not in err:
            raise Failure("the refusal does not name fd 7 and %s: %s" % (dev, err))
        check_untouched(p.pid, before)
        return err
    finally:
        end_holder(p)


def check(c):
    found = [d for d in ("/dev/ttyS0", "/dev/tty1") if os.path.exists(d)]
    if not found:
        raise Skip("no /dev/ttyS0 or /dev/tty1")
    return "; ".join(one(c, d) for d in found)
