# stasis-check: timeout=120 needs=root
# stasis-check: why=(userfaultfd of another process: pidfd_getfd, ptrace)
"""A fault served from a page server is checked before the task sees it. A lazy restore
from a page server serves a fault with the 64 KiB around it and the checksum of their
2 MiB piece, computed there (READC): the piece itself is not sent. A process holding
256 MiB is dumped, a byte near the end of its pages file flipped on the server, and the
restored process asked at once (the request queued before the restore) for the 8 bytes
holding it: the tree must be killed at that fault ("checksum mismatch"), never answer
with the flipped byte. (The background pass, which would also find the bad piece, is
still hundreds of MiB away from it: without the check at the fault the answer comes.)"""
import json
import os
import subprocess
import sys
import time

from checks.page_server_serve import Serve, copy_meta
from lib.proc import Failure, Skip, in_rootless_container, kill_pid, pid_alive, reap_all, \
    run_cmd, wait_pid

SIZE = 256 << 20
WORKLOAD = r"""
import ctypes, mmap, os, time
N = %d
buf = mmap.mmap(-1, N, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)
buf.write(bytes(range(1, 256)) * (N // 255) + bytes(N %% 255))
with open("ready.tmp", "w") as f:
    f.write("%%d" %% ctypes.addressof(ctypes.c_char.from_buffer(buf)))
os.rename("ready.tmp", "ready")
while True:
    time.sleep(0.005)
    try:
        cmd = open("cmd").read().split()
    except OSError:
        continue
    os.unlink("cmd")
    off = int(cmd[1])
    with open("done.tmp", "w") as f:
        f.write(buf[off:off + 8].hex())
    os.rename("done.tmp", "done")
""" % SIZE


def wait_file(path, p, timeout):
    deadline = time.monotonic() + timeout
    while not os.path.exists(path):
        if p.poll() is not None or time.monotonic() > deadline:
            raise Failure("the workload did not write %s" % os.path.basename(path))
        time.sleep(0.01)
    return open(path).read()


def check(c):
    if in_rootless_container():
        raise Skip("lazy restore needs CAP_SYS_PTRACE in the initial user namespace")
    wd, src = os.path.join(c.tmp, "lc-work"), os.path.join(c.tmp, "lc-src")
    os.makedirs(wd)
    os.makedirs(src)
    img, meta = os.path.join(src, "d"), os.path.join(c.tmp, "lc-meta", "d")
    p = subprocess.Popen([sys.executable, "-c", WORKLOAD], cwd=wd, stdin=subprocess.DEVNULL,
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    pid, srv = p.pid, None
    try:
        base = int(wait_file(os.path.join(wd, "ready"), p, c.timeout / 3))
        rc, _, err = run_cmd([c.stasis, "dump", "-t", str(pid), "-D", img], c.timeout)
        if rc != 0:
            raise Failure("dump: %s" % err.strip()[-300:])
        p.wait(timeout=c.timeout)
        rc, out, err = run_cmd([c.stasis, "show", os.path.join(img, "mm-%d.img" % pid)],
                               c.timeout)
        if rc != 0:
            raise Failure("show: %s" % err.strip()[-300:])
        runs = json.loads(out)
        runs = runs.get("mm", runs)["pages"]
        # a page 100 pages before the end of the buffer, in the run that holds it
        page = base + SIZE - 100 * 4096
        hit = [r for r in runs if int(str(r["vaddr"]), 0) <= page <
               int(str(r["vaddr"]), 0) + int(r["nr_pages"]) * 4096]
        if not hit:
            raise Failure("no run of the image holds the buffer's page %#x" % page)
        r = hit[0]
        c.flip(os.path.join(img, "pages-%d.img" % pid),
               int(str(r["offset"]), 0) + page - int(str(r["vaddr"]), 0) + 3)
        copy_meta(img, meta)
        with open(os.path.join(wd, "cmd"), "w") as f:  # asked before the restore
            f.write("peek %d\n" % (page - base))
        srv = Serve(c, src)
        log = os.path.join(c.tmp, "lc-restore.log")
        rc, _, err = run_cmd(c.restore_argv(meta) + [
            "--lazy-pages", "--page-server", "--address", "127.0.0.1", "--port", srv.port,
            "-v", "-o", log], c.timeout, cwd=wd)
        if rc != 0:
            raise Failure("lazy restore: rc %s: %s" % (rc, err.strip()[-300:]))
        wait_pid(pid, time.monotonic() + c.timeout / 3)
        done = os.path.join(wd, "done")
        if os.path.exists(done):
            raise Failure("the restored process read the flipped page and answered %s" %
                          open(done).read())
        if pid_alive(pid):
            raise Failure("a tree restored from a corrupted page still runs")
        if "checksum mismatch" not in open(log).read():
            raise Failure("the tree was killed without a checksum mismatch said")
        return "a flipped byte on the page server caught at the fault that read it: " \
               "the tree killed before it answered"
    finally:
        if srv:
            srv.stop()
        if p.poll() is None:
            p.kill()
            p.wait()
        kill_pid(pid)
        wait_pid(pid, time.monotonic() + 10)
        reap_all()
