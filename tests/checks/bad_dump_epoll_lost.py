# stasis-check: timeout=60
"""An epoll watching a pipe whose fd was closed (without EPOLL_CTL_DEL) and its number
reused, while only a child that does not hold the epoll keeps the pipe open: the kernel
keys the target by file and number, and no process holding the epoll has that file, so
none can add it again. Refused at dump with one line naming the epoll and the number;
the tree keeps running (the epoll still reports the pipe when the child writes)."""
import os
import subprocess
import sys
import time

from lib.proc import Failure, kill_pid, pid_alive, proc_children, reap_all

HOLDER = r"""
import os, select, sys, time
d = sys.argv[1]
r, w = os.pipe()
ep = select.epoll()
ep.register(r, select.EPOLLIN)
if os.fork() == 0:
    ep.close()  # the child keeps the pipe, not the epoll
    open(os.path.join(d, "ready-child"), "w").close()
    while not os.path.exists(os.path.join(d, "go")):
        time.sleep(0.01)
    os.write(w, b"x")
    while True:
        time.sleep(1)
os.dup2(os.open("/dev/null", os.O_RDONLY), r)  # the parent's number r: /dev/null now
os.close(w)
open(os.path.join(d, "ready-parent"), "w").close()
while True:
    if ep.poll(0.05):
        open(os.path.join(d, "seen"), "w").close()
        time.sleep(1)
"""


def check(c):
    d = os.path.join(c.tmp, "epoll-lost")
    os.makedirs(d)
    p = subprocess.Popen([sys.executable, "-c", HOLDER, d], stdin=subprocess.DEVNULL,
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                         start_new_session=True)
    try:
        deadline = time.monotonic() + 20
        while len([f for f in os.listdir(d) if f.startswith("ready-")]) < 2 and \
                time.monotonic() < deadline:
            time.sleep(0.02)
        kids = proc_children(p.pid)
        if not kids:
            raise Failure("the holder did not start its child")
        line = c.expect_failure([c.stasis, "dump", "-t", str(p.pid), "-D",
                                 os.path.join(c.tmp, "epoll-lost-img")],
                                "dump of an epoll whose target no holder has open",
                                allowed=(p.pid,))
        if "epoll" not in line or "now refers to another file" not in line:
            raise Failure("the line does not say why: %r" % line)
        with open(os.path.join(d, "go"), "w"):
            pass
        deadline = time.monotonic() + 10
        while not os.path.exists(os.path.join(d, "seen")) and time.monotonic() < deadline:
            time.sleep(0.02)
        if not os.path.exists(os.path.join(d, "seen")) or not pid_alive(kids[0]):
            raise Failure("the tree does not run as before after the refused dump")
        return line
    finally:
        for k in proc_children(p.pid):
            kill_pid(k)
        if p.poll() is None:
            p.kill()
        p.wait(timeout=10)
        reap_all()
