# stasis-check: timeout=30
"""pidfds stasis cannot restore exactly are refused at dump with one line naming the fd,
and the task runs on untouched (running, not traced): a pidfd of a process outside the
tree (the check itself: its identity could not be checked at restore), and a pidfd of
the task's own child in flight in a unix socket's queue (it would be sent as the
placeholder that holds the pidfd's fd numbers until the pidfd is made)."""
import os

from lib.proc import Failure, popen_python, stop_popen

OUTSIDE = r"""
import os, sys, time
fd = os.pidfd_open(int(sys.argv[1]))
os.dup2(fd, 9)
os.close(fd)
sys.stdout.write("ready\n")
sys.stdout.flush()
while True:
    time.sleep(1)
"""

FLIGHT = r"""
import os, socket, sys, time
child = os.fork()
if child == 0:
    while True:
        time.sleep(1)
fd = os.pidfd_open(child)
os.dup2(fd, 9)
os.close(fd)
a, b = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)
socket.send_fds(a, [b"x"], [9])
sys.stdout.write("ready\n")
sys.stdout.flush()
while True:
    time.sleep(1)
"""


def refused(c, script, tag, args, want):
    p = popen_python(script, args)
    try:
        if p.stdout.readline() != b"ready\n":
            raise Failure("the holder did not start")
        return c.expect_dump_refused(p.pid, tag, [w.replace("PID", str(p.pid)) for w in want])
    finally:
        stop_popen(p)


def check(c):
    me = os.getpid()
    a = refused(c, OUTSIDE, "outside", [str(me)],
                ["fd 9 of pid PID is a pidfd of pid " + str(me), "not a running task of the tree"])
    b = refused(c, FLIGHT, "in-flight", [], ["of pid PID is a unix socket with a pidfd in "
                                             "flight"])
    return "%s / %s" % (a, b)
