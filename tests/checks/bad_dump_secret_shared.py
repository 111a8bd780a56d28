# stasis-check: timeout=30
"""memfd_secret memory stasis cannot rebuild exactly is refused at dump with one line,
the tree left running untouched: a memfd_secret fd held open (its memory is carried, not
the fd), and secret memory shared by two processes (inherited across fork: each would
come back with a copy of its own; in a rootless container, where map_files is closed,
the refusal says the secret file's size cannot be read)."""
import os
import subprocess
import sys
import time

from checks._failsafe import check_untouched
from lib.proc import Failure, Skip, in_rootless_container, kill_pid, proc_children, wait_pid

PROG = r"""
import ctypes, mmap, os, sys, time
libc = ctypes.CDLL(None, use_errno=True)
fd = libc.syscall(447, 0)
if fd < 0:
    sys.stdout.write("unsupported %d\n" % ctypes.get_errno())
    sys.stdout.flush()
    time.sleep(60)
os.ftruncate(fd, 4096)
libc.mmap.restype = ctypes.c_void_p
libc.mmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int, ctypes.c_int,
                      ctypes.c_int, ctypes.c_long]
a = libc.mmap(None, 4096, 3, mmap.MAP_SHARED, fd, 0)  # (mmap.mmap would keep a dup)
ctypes.memmove(a, b"secret", 6)
if sys.argv[1] == "fork":
    os.close(fd)
    if os.fork() == 0:
        while True:
            time.sleep(1)
sys.stdout.write("%d\n" % fd)
sys.stdout.flush()
while True:
    time.sleep(1)
"""


def one(c, mode, want):
    p = subprocess.Popen([sys.executable, "-c", PROG, mode], stdin=subprocess.DEVNULL,
                         stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    kids = []
    try:
        line = p.stdout.readline().decode().strip()
        if not line or line.startswith("unsupported"):
            raise Skip("no memfd_secret here (%s)" % (line or "no answer"))
        kids = proc_children(p.pid)
        err = c.expect_failure([c.stasis, "dump", "-t", str(p.pid), "-D",
                                os.path.join(c.tmp, "secret-" + mode)],
                               "dump of a task with %s" % mode,
                               allowed=tuple([p.pid] + kids))
        if want not in err:
            raise Failure("%s: the error does not say %r: %r" % (mode, want, err))
        time.sleep(0.1)
        check_untouched(p.pid)
        return err
    finally:
        for k in kids:
            kill_pid(k)
        kill_pid(p.pid)
        wait_pid(p.pid, time.monotonic() + 5)


def check(c):
    a = one(c, "fd", "a memfd_secret fd")
    # rootless, the secret file's size cannot be read (map_files) and that is said first
    b = one(c, "fork", "the secret file's size" if in_rootless_container()
            else "is shared with pid")
    return a + " / " + b
