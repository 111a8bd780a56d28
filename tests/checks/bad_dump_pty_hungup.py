# stasis-check: timeout=30
"""A pty slave whose master was closed (hung up: reads return EOF, writes fail) is refused
at dump with one line naming the fd, and the task runs on untouched (not traced)."""
import os
import subprocess
import sys

from lib.proc import Failure, check_untouched, end_holder, proc_stat

HOLDER = r"""
import os, sys, time
m, s = os.openpty()
os.dup2(s, 9)
os.close(s)
os.close(m)
sys.stdout.write("ready\n")
sys.stdout.flush()
while True:
    time.sleep(1)
"""


def check(c):
    p = subprocess.Popen([sys.executable, "-c", HOLDER], stdin=subprocess.DEVNULL,
                         stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                         start_new_session=True)
    try:
        if p.stdout.readline() != b"ready\n":
            raise Failure("the holder did not start")
        before = proc_stat(p.pid)
        err = c.expect_failure([c.stasis, "dump", "-t", str(p.pid), "-D",
                                os.path.join(c.tmp, "hungup")],
                               "dump of a task holding a hung-up pty slave", allowed=(p.pid,))
        if "fd 9 of pid %d" % p.pid not in err or "hung up" not in err:
            raise Failure("the refusal does not name fd 9 and the hang-up: %s" % err)
        check_untouched(p.pid, before)
        return err
    finally:
        end_holder(p)
