# stasis-check: timeout=30
"""pidfds stasis cannot restore exactly are refused at dump with one line naming the fd,
and the task runs on untouched (running, not traced): a pidfd of a process outside the
tree (the check itself: its identity could not be checked at restore), and a pidfd of
the task's own child in flight in a unix socket's queue (it would be sent as the
placeholder that holds the pidfd's fd numbers until the pidfd is made)."""
import os
import subprocess
import sys

from lib.proc import Failure, kill_pid, proc_stat, reap_all

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
    p = subprocess.Popen([sys.executable, "-c", script] + args, stdin=subprocess.DEVNULL,
                         stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                         start_new_session=True)
    try:
        if p.stdout.readline() != b"ready\n":
            raise Failure("the holder did not start")
        before = proc_stat(p.pid)
        err = c.expect_failure([c.stasis, "dump", "-t", str(p.pid), "-D",
                                os.path.join(c.tmp, tag)],
                               "dump of a task holding %s" % tag, allowed=(p.pid,))
        for w in want:
            w = w.replace("PID", str(p.pid))
            if w not in err:
                raise Failure("the refusal does not say '%s': %s" % (w, err))
        now = proc_stat(p.pid)
        if now is None or now[0] not in ("S", "R") or now[2] != before[2]:
            raise Failure("the task was disturbed by the failed dump (%s)" % (now,))
        with open("/proc/%d/status" % p.pid) as f:
            if any(ln.startswith("TracerPid:") and ln.split()[1] != "0" for ln in f):
                raise Failure("the task is still traced after the failed dump")
        return err
    finally:
        for k in [p.pid]:
            try:
                with open("/proc/%d/task/%d/children" % (k, k)) as f:
                    for ch in f.read().split():
                        kill_pid(int(ch))
            except OSError:
                pass
        kill_pid(p.pid)
        try:
            p.wait(timeout=10)
        except subprocess.TimeoutExpired:
            pass
        p.stdout.close()
        reap_all()


def check(c):
    me = os.getpid()
    a = refused(c, OUTSIDE, "outside", [str(me)],
                ["fd 9 of pid PID is a pidfd of pid " + str(me), "not in the tree"])
    b = refused(c, FLIGHT, "in-flight", [], ["of pid PID is a unix socket with a pidfd in "
                                             "flight"])
    return "%s / %s" % (a, b)
