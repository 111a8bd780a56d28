# stasis-check: timeout=30
"""A task holding /proc/S/stat of a process S outside the tree is restored only while S
is the same process: dumped, then S killed and reaped, the restore must fail with one line
naming the file, leaving nothing behind (a new process with S's pid would be another
one); a second dump with S alive restores, and the fd reads S's stat."""
import os
import shutil
import subprocess
import sys
import time

from lib.proc import Failure, kill_pid, popen_python, stop_popen, wait_pid

HOLDER = r"""
import os, sys, time
fd = os.open("/proc/%s/stat" % sys.argv[1], os.O_RDONLY)
os.dup2(fd, 9)
os.close(fd)
sys.stdout.write("ready\n")
sys.stdout.flush()
while True:
    time.sleep(0.05)
    if os.path.exists(sys.argv[2]):
        data = os.pread(9, 64, 0).split()[0].decode()
        with open(sys.argv[2] + ".out", "w") as f:
            f.write(data)
        os.unlink(sys.argv[2])
"""


def dump_holder(c, sleeper, tag):
    ask = os.path.join(c.tmp, tag + ".ask")
    p = popen_python(HOLDER, [str(sleeper.pid), ask])
    if p.stdout.readline() != b"ready\n":
        stop_popen(p)
        raise Failure("the holder did not start")
    img = os.path.join(c.tmp, tag)
    os.mkdir(img)
    rc = subprocess.run([c.stasis, "dump", "-t", str(p.pid), "-D", img],
                        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, timeout=c.timeout)
    p.wait(timeout=5)
    if rc.returncode:
        raise Failure("dump failed: %s" % rc.stderr.decode(errors="replace").strip())
    return p.pid, img, ask


def check(c):
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"],
                               stdin=subprocess.DEVNULL, start_new_session=True)
    restored = None
    try:
        pid, img, ask = dump_holder(c, sleeper, "procgone-alive")
        rc = subprocess.run(c.restore_argv(img), stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, timeout=c.timeout)
        if rc.returncode:
            raise Failure("restore with the process alive failed: %s" % rc.stderr.decode())
        restored = pid
        open(ask, "w").close()
        deadline = time.time() + 10
        while not os.path.exists(ask + ".out") and time.time() < deadline:
            time.sleep(0.05)
        with open(ask + ".out") as f:
            got = f.read()
        if got != str(sleeper.pid):
            raise Failure("the restored fd reads the stat of %s, not %d" % (got, sleeper.pid))
        kill_pid(restored)
        wait_pid(restored, time.monotonic() + 5)
        restored = None
        pid, img, _ = dump_holder(c, sleeper, "procgone-gone")
        kill_pid(sleeper.pid)
        sleeper.wait(timeout=5)
        line = c.expect_failure(c.restore_argv(img), "restore after the process was reaped",
                                pid=pid)
        if "/proc/%d/stat is no longer the file of the process outside the tree" % \
                sleeper.pid not in line:
            raise Failure("the error does not name the file: %r" % line)
        return "alive: the fd reads pid %s; gone: %s" % (got, line)
    finally:
        if restored:
            kill_pid(restored)
            wait_pid(restored, time.monotonic() + 5)
        kill_pid(sleeper.pid)
        sleeper.wait(timeout=5)
        for tag in ("procgone-alive", "procgone-gone"):
            shutil.rmtree(os.path.join(c.tmp, tag), ignore_errors=True)
