# stasis-check: timeout=30
"""An overlay mount declared external at dump (`--external mnt[MNT]:ovl`): a restore
without the `--external mnt[ovl]:HOSTPATH` mapping must fail naming the key; with it the
restore works and the host directory is mounted there."""
import os
import time

from lib.proc import Failure, kill_pid, reap_all, run_cmd, wait_pid


def check(c):
    p, mnt = c.start_overlay("ovl-external")
    img = os.path.join(c.tmp, "ovl-external-img")
    pid = p.pid
    try:
        rc, out, err = run_cmd([c.stasis, "dump", "-t", str(pid), "-D", img,
                                "--no-sync", "--external", "mnt[%s]:ovl" % mnt],
                               c.timeout, cwd=c.tmp)
        if rc != 0:
            raise Failure("dump with --external failed: %s" % err.strip()[:300])
        p.wait(timeout=10)
    finally:
        c.stop_overlay(p)
    line = c.expect_failure(c.restore_argv(img),
                            "restore without the external mount's mapping", pid=pid)
    if "ovl" not in line or "--external" not in line:
        raise Failure("the error does not say which mapping is missing: %r" % line)
    # with the mapping, the restore works and binds the given directory there
    host = os.path.join(c.tmp, "ovl-external", "l")
    with open(os.path.join(host, "marker"), "w") as f:
        f.write("x")
    rc, out, err = run_cmd(c.restore_argv(img) + ["--external", "mnt[ovl]:%s" % host],
                           c.timeout, cwd=c.tmp)
    try:
        if rc != 0:
            raise Failure("restore with --external mnt[ovl]:DIR failed: %s" %
                          err.strip()[:300])
        if not os.path.exists("/proc/%d/root%s/marker" % (pid, mnt)):
            raise Failure("the external directory is not mounted at %s" % mnt)
    finally:
        kill_pid(pid)
        wait_pid(pid, time.monotonic() + 5)
        reap_all()
