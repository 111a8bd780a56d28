# stasis-check: timeout=30
"""A process whose main thread exited (the raw exit syscall) while another thread runs
on: /proc/PID shows the zombie leader, whose memory, files and root are gone with it.
Not restored yet: the dump must fail with one line saying so (not "a zombie: nothing to
checkpoint"), the process left running, its thread untouched."""
import os
import subprocess
import sys
import time

from lib.proc import Failure, kill_pid, wait_pid

PROG = r"""
import ctypes, os, sys, threading, time
def run():
    while True:
        time.sleep(0.05)
threading.Thread(target=run, daemon=True).start()
sys.stdout.write("ready\n")
sys.stdout.flush()
ctypes.CDLL(None).syscall(60, 0)  # SYS_exit: the main thread only
"""


def check(c):
    p = subprocess.Popen([sys.executable, "-c", PROG], stdin=subprocess.DEVNULL,
                         stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    try:
        if p.stdout.readline().strip() != b"ready":
            raise Failure("the program did not start")
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            with open("/proc/%d/stat" % p.pid) as f:
                if f.read().rsplit(")", 1)[1].split()[0] == "Z":
                    break
            time.sleep(0.02)
        err = c.expect_failure([c.stasis, "dump", "-t", str(p.pid), "-D",
                                os.path.join(c.tmp, "zl-img")],
                               "dump of a process whose main thread exited",
                               allowed=(p.pid,))
        if "zombie thread-group leader" not in err or "1 other threads" not in err:
            raise Failure("the error does not say what is refused: %r" % err)
        tids = os.listdir("/proc/%d/task" % p.pid)
        if len(tids) != 2:
            raise Failure("the process has %d threads after the failed dump" % len(tids))
        for t in tids:
            with open("/proc/%d/task/%s/stat" % (p.pid, t)) as f:
                st = f.read().rsplit(")", 1)[1].split()[0]
            if t != str(p.pid) and st not in "RS":
                raise Failure("thread %s is %s after the failed dump" % (t, st))
        return err
    finally:
        kill_pid(p.pid)
        wait_pid(p.pid, time.monotonic() + 5)
