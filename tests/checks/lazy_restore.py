# stasis-check: timeout=60 needs=root
# stasis-check: why=lazy restore needs CAP_SYS_PTRACE (userfaultfd for faults in kernel mode)
"""restore --lazy-pages of copies of the reference dump of pid_same.

Good images: the restore returns at once, the page server (a process named stasis-lazy)
serves the memory and exits by itself once all of it is in, while the tree runs on.

A byte flipped in the last page of pages-PID.img (the top of the stack: a lazy run, served
by the page server, verified when first used): the page server must kill the tree and
say so in one line naming the checksum mismatch; nothing is left behind (neither the
restored pid nor the page server)."""
import os
import time

from lib.proc import Failure, kill_pid, my_children, pid_alive, reap_all, run_cmd, wait_pid


def comm(pid):
    try:
        with open("/proc/%d/comm" % pid) as f:
            return f.read().strip()
    except OSError:
        return ""


def servers(before):
    return [p for p in my_children() if p not in before and comm(p) == "stasis-lazy"]


def wait_no_server(before, deadline):
    while time.monotonic() < deadline:
        if not servers(before):
            return True
        time.sleep(0.05)
    return False


def good(c):
    d, pid = c.variant("lazy-good")
    before = set(my_children())
    rc, _, err = run_cmd(c.restore_argv(d) + ["--lazy-pages"], c.timeout, cwd=c.tmp)
    try:
        if rc != 0:
            raise Failure("restore --lazy-pages: exit %s: %s" % (rc, err.strip()[:300]))
        if not pid_alive(pid):
            raise Failure("restore --lazy-pages: pid %d does not run" % pid)
        if not wait_no_server(before, time.monotonic() + 10):
            raise Failure("the page server still runs 10 s after the restore")
        if not pid_alive(pid):
            raise Failure("pid %d died once its memory was in" % pid)
    finally:
        for p in servers(before):
            kill_pid(p)
        if pid_alive(pid):
            kill_pid(pid)
            wait_pid(pid, time.monotonic() + 5)
        reap_all()


def corrupted(c):
    d, pid = c.variant("lazy-corrupt")
    path = c.image_file(d, "pages", pid)
    size = os.path.getsize(path)
    if size <= 2 * 4096:
        raise Failure("pages-%d.img has no page data (%d bytes)" % (pid, size))
    c.flip(path, size - 4096 + 100)
    before = set(my_children())
    rc, _, err = run_cmd(c.restore_argv(d) + ["--lazy-pages"], c.timeout, cwd=c.tmp)
    deadline = time.monotonic() + 10
    try:
        while time.monotonic() < deadline and (pid_alive(pid) or servers(before)):
            time.sleep(0.05)
        if pid_alive(pid):
            raise Failure("pid %d still runs on corrupted memory (restore exit %s)" % (
                pid, rc))
        if servers(before):
            raise Failure("the page server is left behind")
        lines = [l for l in err.splitlines() if l.strip()]
        if len(lines) != 1 or "checksum mismatch" not in lines[0] or \
                "killed" not in lines[0]:
            raise Failure("expected one line naming the checksum mismatch and the kill, "
                          "got %r" % err[:400])
    finally:
        for p in servers(before):
            kill_pid(p)
        if pid_alive(pid):
            kill_pid(pid)
            wait_pid(pid, time.monotonic() + 5)
        reap_all()


def check(c):
    good(c)
    corrupted(c)
