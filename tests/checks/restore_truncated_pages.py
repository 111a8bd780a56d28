# stasis-check: timeout=60
"""A restore whose pages file is truncated while stasis reads it (a 512 MiB process; the
file cut to 1 MiB as soon as stasis has mapped it) fails with one line naming the pages
file and SIGBUS (not a silent "Bus error"), and leaves nothing behind: no process with
the pid, no new child."""
import os
import time

from checks._failsafe import finish, start_mem, start_restore, stop, wait_mapped
from lib.proc import Failure, kill_pid, my_children, pid_alive, reap_all, run_cmd, wait_pid


def check(c):
    p = start_mem(c, 512, "truncated")
    img = os.path.join(c.tmp, "truncated-img")
    rc, _, err = run_cmd([c.stasis, "dump", "-t", str(p.pid), "-D", img, "--no-sync"],
                         c.timeout)
    stop(p)
    if rc != 0:
        raise Failure("dump failed: %s" % err.strip()[:300])
    pid = p.pid
    name = "pages-%d.img" % pid
    pidfile = os.path.join(c.tmp, "truncated.pid")
    for attempt in range(3):
        before = set(my_children())
        r = start_restore(c, img, pidfile, os.path.join(c.tmp, "truncated.log"))
        cut = wait_mapped(c, r, name)
        if cut:
            os.truncate(os.path.join(img, name), 1 << 20)
        rc, err = finish(c, r)
        if rc == 0:
            kill_pid(pid)
            wait_pid(pid, time.monotonic() + 10)
            if cut:
                raise Failure("the restore completed although its pages file was cut")
            # it finished before it mapped the file: again
            continue
        time.sleep(0.2)
        reap_all()
        lines = err.splitlines()
        if len(lines) != 1 or name not in lines[0] or "SIGBUS" not in lines[0]:
            raise Failure("expected one line naming %s and SIGBUS, got (status %s) %r" % (
                name, rc, err[:400]))
        if pid_alive(pid):
            kill_pid(pid)
            raise Failure("pid %d is alive after the failed restore" % pid)
        left = [x for x in my_children() if x not in before]
        if left:
            for x in left:
                kill_pid(x)
            raise Failure("the failed restore left processes: %s" % left)
        return lines[0]
    raise Failure("the restore finished before its pages file could be cut, 3 times")
