# stasis-check: timeout=60
"""A real program under a seccomp filter that kills on getpid: `tests/tools/seccomp_exec`
installs the filter (getpid -> SECCOMP_RET_KILL_PROCESS) and execs python3, which counts
into a file every 50 ms. The python process is dumped and restored: it keeps counting
(other work goes on under the filter), /proc says Seccomp 2 with 1 filter, and when told
to call os.getpid() it dies by SIGSYS without reaching the next line. In a rootless
container (no CAP_SYS_ADMIN in the initial user namespace) the dump must be refused with
one line naming CAP_SYS_ADMIN, the program untraced and counting on."""
import os
import signal
import subprocess
import sys
import time

from lib.proc import Failure, end_started, in_rootless_container, run_cmd, wait_pid

PROG = r'''
import os, sys, time
out = sys.argv[1]
n = 0
while not os.path.exists(out + ".go"):
    n += 1
    with open(out + ".tmp", "w") as f:
        f.write("%d\n" % n)
    os.rename(out + ".tmp", out)
    time.sleep(0.05)
with open(out + ".before", "w") as f:
    f.write("calling getpid\n")
os.getpid()
with open(out + ".after", "w") as f:
    f.write("getpid returned\n")
'''


def count(path):
    try:
        with open(path) as f:
            return int(f.read() or 0)
    except (OSError, ValueError):
        return 0


def wait_count(path, above, deadline, what):
    while count(path) <= above:
        if time.monotonic() > deadline:
            raise Failure("%s: the count stays at %d" % (what, count(path)))
        time.sleep(0.02)
    return count(path)


def status_fields(pid):
    out = {}
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            k, _, v = line.partition(":")
            out[k] = v.strip()
    return out


def seccomp_of(pid):
    st = status_fields(pid)
    return st.get("Seccomp"), st.get("Seccomp_filters")


def check(c):
    loader = os.path.join(c.build, "tests", "tools", "seccomp_exec")
    out = os.path.join(c.tmp, "seccomp-kill-count")
    img = os.path.join(c.tmp, "seccomp-kill")
    proc = subprocess.Popen([loader, sys.executable, "-c", PROG, out],
                            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            stderr=open(os.path.join(c.tmp, "seccomp-kill.log"), "w"))
    pid, restored = proc.pid, False
    deadline = time.monotonic() + c.timeout
    try:
        wait_count(out, 3, deadline, "before the dump")
        if seccomp_of(pid) != ("2", "1"):
            raise Failure("the program's Seccomp/Seccomp_filters are %s, not 2/1" %
                          (seccomp_of(pid),))
        argv = [c.stasis, "dump", "-t", str(pid), "-D", img, "--no-sync"]
        if in_rootless_container():
            line = c.expect_failure(argv, "dump of a task under seccomp (rootless)",
                                    allowed=(pid,))
            if "CAP_SYS_ADMIN" not in line:
                raise Failure("the refusal does not name CAP_SYS_ADMIN: %s" % line)
            n = count(out)
            wait_count(out, n, deadline, "after the refused dump")
            if status_fields(pid).get("TracerPid") != "0":
                raise Failure("the program is still traced after the refused dump")
            return "refused: %s; the program counts on" % line
        rc, _, err = run_cmd(argv, c.timeout)
        if rc != 0:
            raise Failure("dump failed: %s" % err.strip()[:300])
        proc.wait(timeout=10)
        last = count(out)
        rc, _, err = run_cmd(c.restore_argv(img), c.timeout)
        if rc != 0:
            raise Failure("restore failed: %s" % err.strip()[:300])
        restored = True
        with open(os.path.join(c.tmp, "pidfile")) as f:
            if int(f.read()) != pid:
                raise Failure("restored with another pid")
        n = wait_count(out, last + 3, deadline, "after the restore")
        if seccomp_of(pid) != ("2", "1"):
            raise Failure("after the restore Seccomp/Seccomp_filters are %s, not 2/1" %
                          (seccomp_of(pid),))
        open(out + ".go", "w").close()
        st = wait_pid(pid, deadline)
        if st is None:
            raise Failure("the restored program did not die after getpid")
        if os.path.exists(out + ".after"):
            raise Failure("getpid returned in the restored program: the filter is gone")
        if not os.path.exists(out + ".before"):
            raise Failure("the restored program died before calling getpid (status %s)" %
                          st)
        if st != -1 and not (os.WIFSIGNALED(st) and os.WTERMSIG(st) == signal.SIGSYS):
            raise Failure("the restored program ended with status %#x, not SIGSYS" % st)
        restored = False
        return "counted on to %d after the restore; getpid killed it%s" % (
            n, " by SIGSYS" if st != -1 else "")
    finally:
        end_started(proc, restored)
