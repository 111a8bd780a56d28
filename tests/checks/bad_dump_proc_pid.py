# stasis-check: timeout=30
"""Files of /proc/PID directories stasis cannot open again are refused at dump with one
line naming the fd, and the task runs on untouched: /proc/C/cmdline of a child that exited
and was reaped since it was opened (its directory is gone: a new process with that pid
would be another one), and /proc/Z/status of a zombie child (a restored zombie exits
before the files of the tree are made)."""
import os

from lib.proc import Failure, check_untouched, popen_python, proc_stat, stop_popen

HOLDER = r"""
import os, sys, time
child = os.fork()
if child == 0:
    if sys.argv[1] == "reaped":
        os.read(os.open("/dev/null", os.O_RDONLY), 1)
    os._exit(0)
fd = os.open("/proc/%d/%s" % (child, "cmdline" if sys.argv[1] == "reaped" else "status"),
             os.O_RDONLY)
os.dup2(fd, 9)
os.close(fd)
if sys.argv[1] == "reaped":
    os.waitpid(child, 0)
else:
    while open("/proc/%d/stat" % child).read().rsplit(")", 1)[1].split()[0] != "Z":
        time.sleep(0.01)
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
            raise Failure("the holder did not start")
        child = int(line[1])
        before = proc_stat(p.pid)
        err = c.expect_failure([c.stasis, "dump", "-t", str(p.pid), "-D",
                                os.path.join(c.tmp, tag)],
                               "dump of a task holding a /proc file (%s)" % tag,
                               allowed=(p.pid,))
        w = want.replace("PID", str(p.pid)).replace("CHILD", str(child))
        if w not in err:
            raise Failure("the refusal does not say '%s': %s" % (w, err))
        check_untouched(p.pid, before)
        return err
    finally:
        stop_popen(p)


def check(c):
    a = refused(c, "reaped", "fd 9 of pid PID: /proc/CHILD/cmdline is a file of a process "
                "that has exited")
    b = refused(c, "zombie", "fd 9 of pid PID is a file of the /proc directory of a zombie")
    return "%s / %s" % (a, b)
