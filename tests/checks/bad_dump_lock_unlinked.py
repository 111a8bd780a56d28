# stasis-check: timeout=30
"""Locks stasis cannot take again are refused at dump with one line naming the fd, the
pid and the lock, and the task runs on untouched (not traced): a flock on an unlinked
file (recreated at restore: another inode) and a POSIX lock on a memfd."""
import os
import subprocess
import sys

from lib.proc import Failure, check_untouched, proc_stat, stop_popen

HOLDER = r"""
import fcntl, os, sys, time
if sys.argv[1] == "unlinked":
    fd = os.open(sys.argv[2], os.O_RDWR | os.O_CREAT, 0o600)
    os.unlink(sys.argv[2])
else:
    fd = os.memfd_create("locked")
    os.write(fd, b"x" * 100)
os.dup2(fd, 9)
os.close(fd)
if sys.argv[1] == "unlinked":
    fcntl.flock(9, fcntl.LOCK_EX)
else:
    fcntl.lockf(9, fcntl.LOCK_EX, 10, 0)
sys.stdout.write("ready\n")
sys.stdout.flush()
while True:
    time.sleep(1)
"""


def one(c, kind, what):
    p = subprocess.Popen([sys.executable, "-c", HOLDER, kind, os.path.join(c.tmp, "gone")],
                         stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                         stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        if p.stdout.readline() != b"ready\n":
            raise Failure("the %s holder did not start" % kind)
        before = proc_stat(p.pid)
        err = c.expect_failure([c.stasis, "dump", "-t", str(p.pid), "-D",
                                os.path.join(c.tmp, "img-" + kind)],
                               "dump of a task holding a lock on %s" % what,
                               allowed=(p.pid,))
        if "fd 9 of pid %d" % p.pid not in err or "lock" not in err:
            raise Failure("the refusal does not name fd 9 and the lock: %s" % err)
        check_untouched(p.pid, before)
        with open("/proc/%d/fdinfo/9" % p.pid) as f:
            if "lock:" not in f.read():
                raise Failure("the task lost its lock on %s" % what)
        return err
    finally:
        stop_popen(p)


def check(c):
    return "; ".join((one(c, "unlinked", "an unlinked file"), one(c, "memfd", "a memfd")))
