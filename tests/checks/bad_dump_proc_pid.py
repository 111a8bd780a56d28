# stasis-check: timeout=30
"""Files of /proc/PID directories stasis cannot make again exactly are refused at dump
with one line naming the fd, and the task runs on untouched: /proc/Z/status of a zombie
child (a restored zombie exits before the files of the tree are made); of a child that
exited and was reaped since they were opened: /proc/C/net/dev (it still shows the child's
network namespace), and /proc/C/mountinfo of a child that had a mount namespace of its
own (it still shows that mount table, not its holder's)."""
from lib.proc import Failure, popen_python, stop_popen

HOLDER = r"""
import ctypes, os, sys, time
kind = sys.argv[1]
r, w = os.pipe()
child = os.fork()
if child == 0:
    if kind == "mntns" and ctypes.CDLL(None, use_errno=True).unshare(0x20000):
        os._exit(3)
    os.write(w, b"x")
    if kind == "zombie":
        os._exit(0)
    time.sleep(100)
    os._exit(0)
os.read(r, 1)
name = {"zombie": "status", "net": "net/dev", "mntns": "mountinfo"}[kind]
fd = os.open("/proc/%d/%s" % (child, name), os.O_RDONLY)
os.dup2(fd, 9)
os.close(fd)
if kind == "zombie":
    while open("/proc/%d/stat" % child).read().rsplit(")", 1)[1].split()[0] != "Z":
        time.sleep(0.01)
else:
    os.kill(child, 9)
    os.waitpid(child, 0)
sys.stdout.write("ready %d\n" % child)
sys.stdout.flush()
while True:
    time.sleep(1)
"""


def refused(c, tag, want):
    p = popen_python(HOLDER, [tag])
    try:
        line = p.stdout.readline().split()
        if len(line) != 2 or line[0] != b"ready":
            raise Failure("the holder did not start (%s)" % tag)
        want = want.replace("PID", str(p.pid)).replace("CHILD", line[1].decode())
        return c.expect_dump_refused(p.pid, "procpid-" + tag, [want])
    finally:
        stop_popen(p)


def check(c):
    return " / ".join([
        refused(c, "zombie", "fd 9 of pid PID is a file of the /proc directory of a zombie"),
        refused(c, "net", "fd 9 of pid PID is a file of a thread or of the network namespace "
                "of a process that has exited (/proc/CHILD/net/dev)"),
        refused(c, "mntns", "fd 9 of pid PID is the mount table of a process that has exited "
                "other than its holder's (/proc/CHILD/mountinfo)")])
