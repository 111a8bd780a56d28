# stasis-check: timeout=60
"""A deleted file that a process holds open and maps while its child (forked) closed the
fd but kept the mapping: restored, the parent's file would be the one the files module
makes for its fd and the child's a copy made from the image, two files where there was
one. Refused at dump with one line naming the file; the tree keeps running (both ends
still see each other's writes)."""
import os
import subprocess
import sys
import time

from lib.proc import Failure, Skip, in_rootless_container, kill_pid, pid_alive, \
    proc_children, reap_all

HOLDER = r"""
import mmap, os, sys, time
d = sys.argv[1]
fd = os.open(os.path.join(d, "mixed"), os.O_RDWR | os.O_CREAT, 0o600)
os.ftruncate(fd, 4096)
m = mmap.mmap(fd, 4096)
os.unlink(os.path.join(d, "mixed"))
if os.fork() == 0:
    os.closerange(3, 256)  # the child keeps the mapping only (mmap holds a dup too)
    while True:
        if m[0] == 1:
            m[1] = 2
        time.sleep(0.01)
open(os.path.join(d, "ready"), "w").close()
while True:
    time.sleep(0.01)
    if os.path.exists(os.path.join(d, "go")):
        m[0] = 1
        for _ in range(500):
            if m[1] == 2:
                open(os.path.join(d, "seen"), "w").close()
                break
            time.sleep(0.01)
        os.unlink(os.path.join(d, "go"))
"""


def check(c):
    if in_rootless_container():
        raise Skip("known rootless limitation: a mapped deleted file is read through "
                   "/proc/PID/map_files (CAP_CHECKPOINT_RESTORE)")
    d = os.path.join(c.tmp, "mixed-dir")
    os.makedirs(d)
    p = subprocess.Popen([sys.executable, "-c", HOLDER, d], stdin=subprocess.DEVNULL,
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                         start_new_session=True)
    try:
        deadline = time.monotonic() + 20
        while not os.path.exists(os.path.join(d, "ready")) and time.monotonic() < deadline:
            time.sleep(0.02)
        kids = proc_children(p.pid)
        if not kids:
            raise Failure("the holder did not start its child")
        line = c.expect_failure([c.stasis, "dump", "-t", str(p.pid), "-D",
                                 os.path.join(c.tmp, "mixed-img")],
                                "dump of a deleted file held open and mapped without an fd",
                                allowed=(p.pid,))
        if "mixed" not in line or "not supported" not in line:
            raise Failure("the line does not name the file: %r" % line)
        open(os.path.join(d, "go"), "w").close()
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
