# stasis-check: timeout=60
"""A dump of a process a debugger traces (a python tracer holding PTRACE_SEIZE, and
`strace -p` when it is installed) fails with one line naming the tracer's pid and name;
the process is left as it was: still traced by its debugger, running, its blocked
signals as before; no temporary directory is left."""
import os
import shutil
import subprocess
import sys
import time

from checks._failsafe import check_untouched, start_mem, status_field, stop, tmp_dirs
from lib.proc import Failure

# PTRACE_SEIZE (no stop) of ARGV[1], "attached" in ARGV[2], then hold it
TRACER = """
import ctypes, sys, time
libc = ctypes.CDLL(None, use_errno=True)
libc.ptrace.argtypes = [ctypes.c_long, ctypes.c_long, ctypes.c_void_p, ctypes.c_void_p]
if libc.ptrace(0x4206, int(sys.argv[1]), None, None) != 0:
    sys.exit("PTRACE_SEIZE: errno %d" % ctypes.get_errno())
with open(sys.argv[2], "w") as f:
    f.write("attached\\n")
while True:
    time.sleep(3600)
"""


def attach(c, argv, pid):
    """Starts the tracer @argv and waits until /proc/PID/status shows it: its Popen."""
    t = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                         stderr=subprocess.DEVNULL, cwd=c.tmp)
    deadline = time.monotonic() + c.timeout
    while time.monotonic() < deadline:
        if int(status_field(pid, "TracerPid")) == t.pid:
            return t
        if t.poll() is not None:
            raise Failure("the tracer %s exited (status %s)" % (argv[0], t.returncode))
        time.sleep(0.02)
    stop(t)
    raise Failure("%s did not attach to pid %d" % (argv[0], pid))


def one(c, p, tag, argv, name):
    before = status_field(p.pid, "SigBlk")
    t = attach(c, argv, p.pid)
    try:
        img = os.path.join(c.tmp, "traced-" + tag)
        line = c.expect_failure([c.stasis, "dump", "-t", str(p.pid), "-D", img],
                                "dump of a process traced by %s" % name,
                                allowed=(p.pid, t.pid))
        want = "pid %d is traced by pid %d (%s)" % (p.pid, t.pid, name)
        if want not in line:
            raise Failure("the error does not say %r: %s" % (want, line))
        check_untouched(p.pid, tracer=t.pid, blocked=before)
        if tmp_dirs(img) or os.path.exists(img):
            raise Failure("the refused dump left %s" % (tmp_dirs(img) or img))
        return line
    finally:
        stop(t)


def check(c):
    p = start_mem(c, 16, "traced")
    try:
        said = [one(c, p, "python", [sys.executable, "-c", TRACER, str(p.pid),
                                     os.path.join(c.tmp, "tracer.attached")], "python3")]
        strace = shutil.which("strace")
        if strace:
            said.append(one(c, p, "strace", [strace, "-p", str(p.pid), "-o", os.devnull],
                            "strace"))
        return " / ".join(said)
    finally:
        stop(p)
