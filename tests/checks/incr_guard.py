# stasis-check: timeout=90 needs=root
# stasis-check: why=(userfaultfd of another process: pidfd_getfd, ptrace)
"""Guard regions (MADV_GUARD_INSTALL) through an incremental chain: incr_chain's workload
(64 MiB, commands read from a file) with a 16-page area of its own guarded on pages 1
and 8-9, the rest written. It is pre-dumped (write tracking armed: not on the guarded
area, whose swap-like guard markers write-protection would mark), writes 1 MiB and is
dumped against the pre-dump; the chain restores exactly (sha256 of its buffer) and the
guarded area's pages are guards exactly where they were (pagemap bit 58, PM_GUARD_REGION:
Linux 6.14), its other pages present. Skipped where the kernel has no guard regions."""
import os
import struct
import subprocess
import sys
import time

from checks.incr_chain import WORKLOAD, Work, must
from lib.proc import Failure, Skip, kill_pid, wait_pid

PAGE = 4096
GUARDED = {1, 8, 9}
SETUP = r"""
import ctypes
libc = ctypes.CDLL(None, use_errno=True)
libc.madvise.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
g = mmap.mmap(-1, 16 * 4096, flags=P)
g.write(bytes(range(256)) * (16 * 16))
ga = ctypes.addressof(ctypes.c_char.from_buffer(g))
ok = all(libc.madvise(ctypes.c_void_p(ga + p * 4096), 4096, 102) == 0 for p in (1, 8, 9))
with open("gaddr", "w") as f:
    f.write("%x %d\n" % (ga, 0 if ok else ctypes.get_errno()))
"""
GUARD_WORKLOAD = WORKLOAD.replace("extra = []\n", "extra = []\n" + SETUP)


def guard_pages(pid, addr):
    """The pages of the 16-page area at @addr of @pid that are guards, and those present."""
    with open("/proc/%d/pagemap" % pid, "rb") as f:
        f.seek(addr // PAGE * 8)
        ents = struct.unpack("16Q", f.read(16 * 8))
    return ({i for i, e in enumerate(ents) if e >> 58 & 1},
            {i for i, e in enumerate(ents) if e >> 63 & 1})


def check(c):
    if GUARD_WORKLOAD == WORKLOAD:
        raise Failure("incr_chain's workload changed: the guarded area is not made")
    wd = os.path.join(c.tmp, "guard-work")
    os.makedirs(wd, exist_ok=True)
    p = subprocess.Popen([sys.executable, "-c", GUARD_WORKLOAD], cwd=wd,
                         stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                         stderr=subprocess.DEVNULL)
    pid = p.pid
    w = Work(c, wd)
    try:
        w.wait(0)
        with open(os.path.join(wd, "gaddr")) as f:
            ga, err = f.read().split()
        if err != "0":
            raise Skip("no guard regions on this kernel (madvise errno %s)" % err)
        ga = int(ga, 16)
        guards, present = guard_pages(pid, ga)
        if guards != GUARDED:
            raise Skip("pagemap does not show guard regions here (bit 58: %s)" % sorted(guards))
        d1, d2 = os.path.join(c.tmp, "guard-pre"), os.path.join(c.tmp, "guard-dump")
        must(c, "pre-dump", "pre-dump", "-t", str(pid), "-D", d1, "--no-sync")
        want = w.cmd("write 100 256")
        must(c, "dump", "dump", "-t", str(pid), "-D", d2, "--no-sync", "--prev-images-dir",
             d1)
        p.wait(timeout=c.timeout)
        os.unlink(os.path.join(wd, "done"))
        must(c, "restore", *c.restore_argv(d2)[1:])
        got = w.cmd("hash")
        if got != want:
            raise Failure("restored memory differs: sha256 %s, want %s" % (got, want))
        g2, p2 = guard_pages(pid, ga)
        if g2 != guards or p2 != present:
            raise Failure("guarded area: guards %s, present %s; were %s, %s" % (
                sorted(g2), sorted(p2), sorted(guards), sorted(present)))
        return "guards on pages %s again after a pre-dump and a dump" % sorted(g2)
    finally:
        kill_pid(pid)
        wait_pid(pid, time.monotonic() + 5)
