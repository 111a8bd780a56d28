# stasis-check: timeout=60 needs=root
# stasis-check: why=(mounts a hugetlbfs and grows the huge page pool)
"""Deleted files of a hugetlbfs (refused at dump before, like MFD_HUGETLB memfds, which
the ckpt test mem_hugetlb_memfd covers): on a hugetlbfs the check mounts, a python
process makes file f of two 2 MiB pages (held by an fd and mapped shared, the first page
written) and file g of one page (mapped shared, its fd closed), then unlinks both. Dumped
(killed) and restored, the process checks itself: both still on the hugetlbfs, deleted,
with their sizes, mode and data, f's fd and mapping one file both ways."""
import os
import subprocess
import sys
import time

from lib.proc import (Failure, Skip, hugepages_release, hugepages_reserve, kill_pid,
                      run_cmd, wait_pid)

PROG = r"""
import ctypes, mmap, os, sys, time
d, out = sys.argv[1], sys.argv[2]
HP = 2 << 20
f = os.open(d + "/f", os.O_RDWR | os.O_CREAT, 0o640)
os.ftruncate(f, 2 * HP)
mf = mmap.mmap(f, 2 * HP, mmap.MAP_SHARED)
mf[:HP] = bytes(range(256)) * (HP // 256)
g = os.open(d + "/g", os.O_RDWR | os.O_CREAT, 0o600)
os.ftruncate(g, HP)
mg = mmap.mmap(g, HP, mmap.MAP_SHARED)
mg[HP - 4:] = b"gggg"
os.close(g)
os.unlink(d + "/f")
os.unlink(d + "/g")
open(out + ".ready", "w").close()
while not os.path.exists(out + ".go"):
    time.sleep(0.02)
bad = []
class statfs_t(ctypes.Structure):
    _fields_ = [("f_type", ctypes.c_long), ("f_bsize", ctypes.c_long), ("rest", ctypes.c_byte * 104)]
sf = statfs_t()
if ctypes.CDLL(None, use_errno=True).fstatfs(f, ctypes.byref(sf)) or sf.f_type != 0x958458f6 \
        or sf.f_bsize != HP:
    bad.append("f is not on 2 MiB huge pages (%#x, %d)" % (sf.f_type & 0xffffffff, sf.f_bsize))
lf = os.readlink("/proc/self/fd/%d" % f)
if lf != d + "/f (deleted)":
    bad.append("f is now %s" % lf)
if os.fstat(f).st_size != 2 * HP or (os.fstat(f).st_mode & 0o777) != 0o640:
    bad.append("f: size %d mode %o" % (os.fstat(f).st_size, os.fstat(f).st_mode))
if mf[:HP] != bytes(range(256)) * (HP // 256) or mf[HP:HP + 8] != bytes(8):
    bad.append("f's data differ")
if mg[HP - 4:] != b"gggg" or mg[0] != 0:
    bad.append("g's data differ")
maps = open("/proc/self/maps").read()
if (" %s/f (deleted)\n" % d) not in maps or (" %s/g (deleted)\n" % d) not in maps:
    bad.append("f and g are not mapped by their names")
mf[HP + 8:HP + 12] = b"abcd"
if os.pread(f, 4, HP + 8) != b"abcd":
    bad.append("a write through f's mapping is not seen through its fd")
with open(out + ".tmp", "w") as o:
    o.write("; ".join(bad) or "ok")
os.rename(out + ".tmp", out)
time.sleep(60)
"""


def wait_file(path, proc, what, deadline):
    while not os.path.exists(path):
        if (proc is not None and proc.poll() is not None) or time.monotonic() > deadline:
            raise Failure("%s (status %s)" % (what, proc.poll() if proc else "?"))
        time.sleep(0.02)


def check(c):
    total = hugepages_reserve(4)
    mnt = os.path.join(c.tmp, "hugetlbfs")
    os.makedirs(mnt, exist_ok=True)
    rc, _, err = run_cmd(["mount", "-t", "hugetlbfs", "-o", "pagesize=2M", "none", mnt], 10)
    if rc != 0:
        hugepages_release(total)
        raise Skip("cannot mount a hugetlbfs: %s" % err.strip())
    out = os.path.join(c.tmp, "hugetlbfs-result")
    p = subprocess.Popen([sys.executable, "-c", PROG, mnt, out], stdin=subprocess.DEVNULL,
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    pid, restored = p.pid, False
    try:
        deadline = time.monotonic() + c.timeout
        wait_file(out + ".ready", p, "the program did not start", deadline)
        img = os.path.join(c.tmp, "hugetlbfs-img")
        rc, _, err = run_cmd([c.stasis, "dump", "-t", str(pid), "-D", img], c.timeout)
        if rc != 0:
            raise Failure("dump: %s" % err.strip()[-300:])
        p.wait(timeout=10)
        rc, _, err = run_cmd(c.restore_argv(img), c.timeout)
        if rc != 0:
            raise Failure("restore: %s" % err.strip()[-300:])
        restored = True
        open(out + ".go", "w").close()
        wait_file(out, None, "the restored program did not answer", deadline)
        with open(out) as f:
            res = f.read()
        if res != "ok":
            raise Failure("after the restore: %s" % res)
        return "two deleted hugetlbfs files (held, mapped) restored on huge pages"
    finally:
        kill_pid(pid)
        if not restored:
            p.wait(timeout=10)
        else:
            wait_pid(pid, time.monotonic() + 5)
        for _ in range(50):
            if run_cmd(["umount", mnt], 10)[0] == 0:
                break
            time.sleep(0.1)
        hugepages_release(total)
