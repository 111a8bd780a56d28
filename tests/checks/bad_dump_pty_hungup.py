# stasis-check: timeout=30
"""A pty slave whose master was closed (hung up: reads return EOF, writes fail) is refused
at dump with one line naming the fd, and the task runs on untouched (not traced)."""
import os
import subprocess
import sys

from lib.proc import Failure, kill_pid, proc_stat, reap_all

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
        now = proc_stat(p.pid)
        if now is None or now[0] not in ("S", "R") or now[2] != before[2]:
            raise Failure("the task was disturbed by the failed dump (%s)" % (now,))
        with open("/proc/%d/status" % p.pid) as f:
            if any(ln.startswith("TracerPid:") and ln.split()[1] != "0" for ln in f):
                raise Failure("the task is still traced after the failed dump")
        return err
    finally:
        kill_pid(p.pid)
        try:
            p.wait(timeout=10)
        except subprocess.TimeoutExpired:
            pass
        p.stdout.close()
        reap_all()
