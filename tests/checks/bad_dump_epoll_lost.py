# stasis-check: timeout=60
"""An epoll shared through fork whose target (a pipe, still open under another number)
was added as an fd number that now names another file in both processes: the kernel keys
the target by file and number, so no process of the tree can add it again as it was.
Refused at dump with one line naming the epoll and the number; the tree keeps running
(the epoll still reports the pipe in both processes)."""
import os
import subprocess
import sys
import time

from lib.proc import Failure, kill_pid, pid_alive, proc_children, reap_all

HOLDER = r"""
import os, select, sys, time
d = sys.argv[1]
r, w = os.pipe()
keep = os.dup(r)
ep = select.epoll()
ep.register(r, select.EPOLLIN)
other = os.open("/dev/null", os.O_RDONLY)
os.dup2(other, r)  # the pipe stays open as `keep`; number r is /dev/null now
me = "parent"
if os.fork() == 0:
    me = "child"
open(os.path.join(d, "ready-" + me), "w").close()
wrote = False
while True:
    time.sleep(0.01)
    if not os.path.exists(os.path.join(d, "go")):
        continue
    if me == "parent" and not wrote:
        wrote = os.write(w, b"x") == 1  # level-triggered: both see it, unread
    if ep.poll(0):
        open(os.path.join(d, "seen-" + me), "w").close()
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
                                "dump of a shared epoll whose target no process holds "
                                "under its number", allowed=(p.pid,))
        if "epoll" not in line or "each of the 2 processes" not in line:
            raise Failure("the line does not say why: %r" % line)
        with open(os.path.join(d, "go"), "w"):
            pass
        deadline = time.monotonic() + 10
        while len([f for f in os.listdir(d) if f.startswith("seen-")]) < 2 and \
                time.monotonic() < deadline:
            time.sleep(0.02)
        if len([f for f in os.listdir(d) if f.startswith("seen-")]) < 2 or \
                not pid_alive(kids[0]):
            raise Failure("the tree does not run as before after the refused dump")
        return line
    finally:
        for k in proc_children(p.pid):
            kill_pid(k)
        if p.poll() is None:
            p.kill()
        p.wait(timeout=10)
        reap_all()
