# stasis-check: timeout=90
"""A restore copies private anonymous memory into the task with UFFDIO_COPY through a
userfaultfd the task makes (src/mem/pages.c), where no fault would map a huge page: a
python process holding 64 MiB of random bytes in an area it gave MADV_NOHUGEPAGE (commands
read from a file, incr_chain's workload) is dumped and restored with -vv. The restore's
log must say that at least 64 MiB came in through a userfaultfd, the restored process's
memory must hash the same (sha256, asked of it), no area of it may still be registered
with a userfaultfd (VmFlags `um`), and it must go on writing and hashing its memory. A
corrupted page of that area (a flipped byte in the pages file) must still fail the
restore with "checksum mismatch" and leave no process."""
import os
import re
import subprocess
import sys
import time

from checks.incr_chain import WORKLOAD, Work, must
from lib.proc import Failure, kill_pid, wait_pid

MIB = 1 << 20
NOHUGE = WORKLOAD.replace("buf = mmap.mmap(-1, N, flags=P)\n",
                          "buf = mmap.mmap(-1, N, flags=P)\nbuf.madvise(mmap.MADV_NOHUGEPAGE)\n")


def registered(pid):
    with open("/proc/%d/smaps" % pid) as f:
        return sum(1 for ln in f if ln.startswith("VmFlags:") and " um" in ln)


def check(c):
    if NOHUGE == WORKLOAD:
        raise Failure("incr_chain's workload changed: its buffer is not made here")
    wd = os.path.join(c.tmp, "fill-work")
    os.makedirs(wd, exist_ok=True)
    p = subprocess.Popen([sys.executable, "-c", NOHUGE], cwd=wd, stdin=subprocess.DEVNULL,
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    pid = p.pid
    w = Work(c, wd)
    try:
        want = w.wait(0)
        d = os.path.join(c.tmp, "fill-img")
        must(c, "dump", "dump", "-t", str(pid), "-D", d, "--no-sync")
        p.wait(timeout=c.timeout)

        pf = os.path.join(d, "pages-%d.img" % pid)
        off = os.path.getsize(pf) - 32 * MIB   # inside the 64 MiB buffer (the last run)
        c.flip(pf, off)
        line = c.expect_failure(c.restore_argv(d), "restore with a corrupted page", pid=pid)
        if "checksum mismatch" not in line:
            raise Failure("corrupted page: the error does not say so: %s" % line)
        c.flip(pf, off)

        log = os.path.join(c.tmp, "fill-restore.log")
        os.unlink(os.path.join(wd, "done"))
        must(c, "restore", *c.restore_argv(d)[1:], "-vv", "-o", log)
        with open(log) as f:
            m = re.findall(r"(\d+) KiB of pages copied in, (\d+) KiB through a userfaultfd",
                           f.read())
        if not m:
            raise Failure("the restore's log does not say how the pages came in")
        total, by_uffd = (int(x) for x in m[-1])
        if by_uffd < 64 * 1024:
            raise Failure("%d KiB of %d KiB came in through a userfaultfd, want at least "
                          "64 MiB" % (by_uffd, total))
        if registered(pid):
            raise Failure("%d areas of the restored process are still registered with a "
                          "userfaultfd (um)" % registered(pid))
        got = w.cmd("hash")
        if got != want:
            raise Failure("restored memory differs: sha256 %s, want %s" % (got, want))
        w.cmd("write 100 256")
        return "%d of %d MiB through a userfaultfd" % (by_uffd >> 10, total >> 10)
    finally:
        kill_pid(pid)
        wait_pid(pid, time.monotonic() + 5)
