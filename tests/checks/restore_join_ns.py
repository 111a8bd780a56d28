# stasis-check: timeout=30 needs=host-root
# stasis-check: why=(bind mount of an nsfs file)
"""Restore into a pinned namespace: a UTS namespace made by a helper process,
bind-mounted on a file (the nsfs pin), the helper gone; `--join-ns uts:FILE` puts
the restored root in it (same inode, its hostname)."""
import os
import subprocess
import time

from lib.proc import Failure, Skip, kill_pid, run_cmd, wait_pid


def check(c):
    d, pid = c.variant("join-ns")
    pin = os.path.join(c.tmp, "uts-pin")
    open(pin, "w").close()
    holder = subprocess.Popen(["unshare", "--uts", "sh", "-c",
                               "hostname stasis-pinned && exec sleep 30"],
                              stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)
    mounted = False
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                if open("/proc/%d/comm" % holder.pid).read().strip() == "sleep":
                    break
            except OSError:
                pass
            if time.monotonic() > deadline or holder.poll() is not None:
                raise Failure("the namespace holder did not start")
            time.sleep(0.02)
        want = os.stat("/proc/%d/ns/uts" % holder.pid).st_ino
        rc, _, err = run_cmd(["mount", "--bind", "/proc/%d/ns/uts" % holder.pid, pin], 10)
        if rc != 0:
            raise Skip("cannot bind-mount an nsfs file: %s" % err.strip()[:100])
        mounted = True
        kill_pid(holder.pid)
        holder.wait(timeout=10)
        argv = c.restore_argv(d) + ["--join-ns", "uts:" + pin]
        rc, _, err = run_cmd(argv, c.timeout, cwd=c.tmp)
        if rc != 0:
            raise Failure("restore --join-ns failed: %s" % err.strip()[:200])
        try:
            got = os.stat("/proc/%d/ns/uts" % pid).st_ino
        finally:
            kill_pid(pid)
            wait_pid(pid, time.monotonic() + 5)
        if got != want:
            raise Failure("the restored task is in UTS namespace %d, not the pinned %d"
                          % (got, want))
        return "restored into the pinned UTS namespace %d" % want
    finally:
        if holder.poll() is None:
            kill_pid(holder.pid)
            holder.wait(timeout=10)
        if mounted:
            run_cmd(["umount", pin], 10)
