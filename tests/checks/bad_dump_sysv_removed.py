# stasis-check: timeout=30
"""A dump of a task attached to a SysV segment of stasis's own IPC namespace that was
marked for removal (it would be gone once the dumped tree lets go of it, and no image
carries the host's segments) must fail with one line naming the segment; the task runs on
untouched, not traced, still attached to its segment."""
import os
import time

from checks._failsafe import check_untouched
from lib.proc import Failure, popen_python, stop_popen

PROG = r"""
import ctypes, sys, time
libc = ctypes.CDLL(None, use_errno=True)
libc.shmat.restype = ctypes.c_void_p
libc.shmat.argtypes = [ctypes.c_int, ctypes.c_void_p, ctypes.c_int]
shmid = libc.shmget(0, 8192, 0o1600)  # IPC_PRIVATE, IPC_CREAT | 0600
addr = libc.shmat(shmid, None, 0)
libc.shmctl(shmid, 0, None)  # IPC_RMID: gone with its last user
sys.stdout.write("%d %x\n" % (shmid, addr))
sys.stdout.flush()
while True:
    time.sleep(1)
"""


def check(c):
    p = popen_python(PROG)
    try:
        line = p.stdout.readline().decode().split()
        if len(line) != 2 or int(line[0]) < 0:
            raise Failure("the task could not make its segment: %r" % line)
        shmid, addr = line
        err = c.expect_failure([c.stasis, "dump", "-t", str(p.pid), "-D",
                                os.path.join(c.tmp, "sysv-img")],
                               "dump of a task attached to a removed SysV segment",
                               allowed=(p.pid,))
        if "SysV segment %s" % shmid not in err or "marked for removal" not in err:
            raise Failure("the error does not name segment %s marked for removal: %r"
                          % (shmid, err))
        time.sleep(0.1)
        check_untouched(p.pid)
        with open("/proc/%d/maps" % p.pid) as f:
            if not any(ln.startswith(addr + "-") and "/SYSV" in ln for ln in f):
                raise Failure("the task lost its attachment at %s" % addr)
        return err
    finally:
        stop_popen(p)
