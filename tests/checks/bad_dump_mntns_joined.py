# stasis-check: timeout=30 needs=root
# stasis-check: why=(the tree makes mount namespaces)
"""A mount namespace a task entered with setns that stasis can neither make it be born in
nor enter again stays refused at dump with one line, the tree left running: a task that
entered the namespace of its parent's sibling's child (a cousin's). The sibling shape is
restored (tests/ckpt/ns_mnt_setns_sibling.c), and so are namespaces of an ancestor or the
dumper (tests/ckpt/ns_setns_ancestor.c)."""
import os
import subprocess
import sys
import time

from lib.proc import Failure, kill_pid, proc_descendants, wait_pid

# "cousin": R's child A unshares, A's child K unshares again, R's other child B enters
# K's namespace.
PROG = r"""
import ctypes, os, sys, time
libc = ctypes.CDLL(None, use_errno=True)
CLONE_NEWNS = 0x20000
def must(r, what):
    if r != 0:
        sys.stderr.write("%s: %s\n" % (what, os.strerror(ctypes.get_errno())))
        os._exit(3)
def sleep_forever():
    while True:
        time.sleep(0.05)
shape, ready = sys.argv[1], sys.argv[2]
r, w = os.pipe()
if os.fork() == 0:
    must(libc.unshare(CLONE_NEWNS), "unshare")
    if os.fork() == 0:
        must(libc.unshare(CLONE_NEWNS), "unshare")
        os.write(w, b"%d\n" % os.getpid())
        sleep_forever()
    sleep_forever()
k = int(os.read(r, 32))
if os.fork() == 0:
    fd = os.open("/proc/%d/ns/mnt" % k, os.O_RDONLY)
    must(libc.setns(fd, CLONE_NEWNS), "setns")
    os.close(fd)
    open(ready, "w").close()
    sleep_forever()
sleep_forever()
"""


def check(c):
    lines = []
    for shape in ("cousin",):
        ready = os.path.join(c.tmp, "ready-" + shape)
        p = subprocess.Popen([sys.executable, "-c", PROG, shape, ready],
                             stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL)
        tree = []
        try:
            deadline = time.monotonic() + 10
            while not os.path.exists(ready) and time.monotonic() < deadline:
                time.sleep(0.02)
            if not os.path.exists(ready):
                raise Failure("%s: the tree did not start" % shape)
            tree = [p.pid] + proc_descendants(p.pid)
            err = c.expect_failure([c.stasis, "dump", "-t", str(p.pid), "-D",
                                    os.path.join(c.tmp, "img-" + shape)],
                                   "dump of a tree with a joined mount namespace (%s)" % shape,
                                   allowed=tree)
            if "mount namespace" not in err or "setns" not in err:
                raise Failure("%s: the error does not say what is refused: %r" % (shape, err))
            for t in tree:
                with open("/proc/%d/stat" % t) as f:
                    if f.read().rsplit(")", 1)[1].split()[0] not in "RS":
                        raise Failure("%s: pid %d is not running after the failed dump"
                                      % (shape, t))
            lines.append("%s: %s" % (shape, err.strip()[:120]))
        finally:
            for t in reversed(tree or [p.pid]):
                kill_pid(t)
            wait_pid(p.pid, time.monotonic() + 5)
    return " / ".join(lines)
