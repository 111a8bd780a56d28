# stasis-check: timeout=30
"""A dump of a task holding an area with guard regions (MADV_GUARD_INSTALL, VmFlags "gu"),
which the restore does not rebuild, must fail with one line naming the area; the task is
left running untouched and not traced. Skipped where the kernel has no guard regions."""
import os
import subprocess
import sys
import time

from checks._failsafe import check_untouched
from lib.proc import Failure, Skip, kill_pid, wait_pid

PROG = r"""
import ctypes, mmap, os, sys, time
libc = ctypes.CDLL(None, use_errno=True)
libc.mmap.restype = ctypes.c_void_p
libc.mmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int, ctypes.c_int,
                      ctypes.c_int, ctypes.c_long]
libc.madvise.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
n = 16 * 4096
a = libc.mmap(None, n, 3, 0x22, -1, 0)
if libc.madvise(ctypes.c_void_p(a + 4096), 4096, 102) != 0:  # MADV_GUARD_INSTALL
    sys.stdout.write("unsupported %d\n" % ctypes.get_errno())
else:
    sys.stdout.write("%x\n" % a)
sys.stdout.flush()
while True:
    time.sleep(1)
"""


def check(c):
    p = subprocess.Popen([sys.executable, "-c", PROG], stdin=subprocess.DEVNULL,
                         stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    try:
        line = p.stdout.readline().decode().strip()
        if not line or line.startswith("unsupported"):
            raise Skip("no guard regions on this kernel (%s)" % (line or "no answer"))
        err = c.expect_failure([c.stasis, "dump", "-t", str(p.pid), "-D",
                                os.path.join(c.tmp, "guard-img")],
                               "dump of a task with guard regions", allowed=(p.pid,))
        if "guard regions" not in err or line not in err:
            raise Failure("the error does not name the area %s and its guard regions: %r"
                          % (line, err))
        time.sleep(0.1)
        check_untouched(p.pid)
        return err
    finally:
        kill_pid(p.pid)
        wait_pid(p.pid, time.monotonic() + 5)
