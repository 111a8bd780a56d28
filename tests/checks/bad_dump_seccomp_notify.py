# stasis-check: timeout=30
"""A dump of a task under a seccomp filter that can return SECCOMP_RET_USER_NOTIF (a
`sleep` started by `tests/tools/seccomp_exec --notify`: getcpu goes to a listener) must
fail with one line naming SECCOMP_RET_USER_NOTIF (in a rootless container: naming
CAP_SYS_ADMIN, refused before), and leave the task running, untraced."""
import os
import subprocess
import time

from lib.proc import Failure, in_rootless_container, kill_pid


def check(c):
    loader = os.path.join(c.build, "tests", "tools", "seccomp_exec")
    proc = subprocess.Popen([loader, "--notify", "sleep", "60"], stdin=subprocess.DEVNULL,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    pid = proc.pid
    try:
        deadline = time.monotonic() + 10
        while open("/proc/%d/comm" % pid).read().strip() != "sleep":
            if time.monotonic() > deadline or proc.poll() is not None:
                raise Failure("seccomp_exec --notify did not exec sleep")
            time.sleep(0.01)
        line = c.expect_failure([c.stasis, "dump", "-t", str(pid), "-D",
                                 os.path.join(c.tmp, "seccomp-notify")],
                                "dump of a task under a user-notification filter",
                                allowed=(pid,))
        want = "CAP_SYS_ADMIN" if in_rootless_container() else "SECCOMP_RET_USER_NOTIF"
        if want not in line:
            raise Failure("the refusal does not name %s: %s" % (want, line))
        st = {}
        for ln in open("/proc/%d/status" % pid):
            k, _, v = ln.partition(":")
            st[k] = v.strip()
        if proc.poll() is not None or st.get("TracerPid") != "0" or \
                not st.get("State", "").startswith("S"):
            raise Failure("the task is not left running untraced (State %s, TracerPid %s)" %
                          (st.get("State"), st.get("TracerPid")))
        return line
    finally:
        if proc.poll() is None:
            kill_pid(pid)
            proc.wait(timeout=10)
