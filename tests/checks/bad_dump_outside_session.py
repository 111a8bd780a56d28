# stasis-check: timeout=30
"""A dump of a tree whose session leader is outside it must fail, leaving the tree
untouched and not traced. A calls setsid() and forks B; B forks C, then B calls setsid()
itself: C stays in A's session, whose leader is outside the tree rooted at B (dumped)."""
import os
import subprocess
import sys
import time

from lib.proc import Failure, kill_pid, proc_stat, reap_all


OUTSIDE_SESSION = r"""
import os, sys, time
os.setsid()
r, w = os.pipe()
b = os.fork()
if b == 0:
    c = os.fork()
    if c == 0:
        os.close(r); os.close(w)
        while True:
            time.sleep(1)
    os.setsid()
    os.write(w, b"%d %d\n" % (os.getpid(), c))
    os.close(r); os.close(w)
    while True:
        time.sleep(1)
os.close(w)
sys.stdout.write(os.read(r, 100).decode())
sys.stdout.flush()
while True:
    time.sleep(1)
"""


def check(c):
    p = subprocess.Popen([sys.executable, "-c", OUTSIDE_SESSION],
                         stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                         stderr=subprocess.DEVNULL)
    pids = []
    try:
        line = ""
        ready = time.monotonic() + c.timeout
        os.set_blocking(p.stdout.fileno(), False)
        while "\n" not in line and time.monotonic() < ready and p.poll() is None:
            chunk = p.stdout.read()
            line += (chunk or b"").decode()
            time.sleep(0.02)
        try:
            b, pc = (int(x) for x in line.split())
        except ValueError:
            raise Failure("the setsid helper did not start: %r" % line) from None
        pids = [pc, b]
        before = [proc_stat(x) for x in (b, pc)]
        c.expect_failure([c.stasis, "dump", "-t", str(b), "-D",
                          os.path.join(c.tmp, "outside-session")],
                         "dump of a tree whose session leader is outside it",
                         allowed=(b, pc))
        for x, st in zip((b, pc), before):
            now = proc_stat(x)
            if now is None or now[2] != st[2] or now[0] not in ("S", "R"):
                raise Failure("pid %d was disturbed by the failed dump (%s)" % (x, now))
            with open("/proc/%d/status" % x) as f:
                tracer = [ln for ln in f if ln.startswith("TracerPid:")]
            if tracer and tracer[0].split()[1] != "0":
                raise Failure("pid %d is still traced after the failed dump" % x)
    finally:
        for x in pids + [p.pid]:
            kill_pid(x)
        try:
            p.wait(timeout=10)
        except subprocess.TimeoutExpired:
            pass
        deadline = time.monotonic() + 5
        while any(proc_stat(x) is not None for x in pids) and time.monotonic() < deadline:
            reap_all()
            time.sleep(0.01)
        p.stdout.close()
