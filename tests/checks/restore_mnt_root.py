# stasis-check: timeout=30
"""--root: the root mount declared external at dump (`--external mnt[/]:rootfs`);
a restore without --root fails naming it; with `--root DIR` (an overlay of the
host's / with a marker file on top, made by the check) the restored task's root
is DIR: the marker is there."""
import os
import time

from lib.proc import Failure, Skip, kill_pid, reap_all, run_cmd, wait_pid


def check(c):
    p, mnt = c.start_overlay("ovl-root")
    img = os.path.join(c.tmp, "ovl-root-img")
    pid = p.pid
    try:
        rc, out, err = run_cmd([c.stasis, "dump", "-t", str(pid), "-D", img,
                                "--no-sync", "--external", "mnt[/]:rootfs",
                                "--external", "mnt[%s]:ovl" % mnt],
                               c.timeout, cwd=c.tmp)
        if rc != 0:
            raise Failure("dump with --external mnt[/] failed: %s" % err.strip()[:300])
        p.wait(timeout=10)
    finally:
        c.stop_overlay(p)
    ovl = os.path.join(c.tmp, "ovl-root")
    argv = c.restore_argv(img) + ["--external", "mnt[ovl]:%s/l" % ovl]
    line = c.expect_failure(argv, "restore without --root", pid=pid)
    if "--root DIR" not in line:
        raise Failure("the error does not name --root: %r" % line)
    t, r = os.path.join(ovl, "t"), os.path.join(ovl, "r")
    os.makedirs(t)
    os.makedirs(r)
    # the overlay lives in a private mount namespace made for the restoring stasis:
    # never on the host, where concurrent dumps of copied mount trees would see it
    script = ('mount -t tmpfs stasis-root "$1" && mkdir "$1/u" "$1/w" && '
              'echo x > "$1/u/stasis-root-marker" && '
              'mount -t overlay overlay -o "lowerdir=/,upperdir=$1/u,workdir=$1/w" "$2" '
              '|| exit 99; shift 2; exec "$@"')
    rc, out, err = run_cmd(["unshare", "-m", "--propagation", "private", "sh", "-c", script,
                            "sh", t, r] + argv + ["--root", r], c.timeout, cwd=c.tmp)
    try:
        if rc == 99:
            raise Skip("cannot make an overlay of / here: %s" % err.strip()[:100])
        if rc != 0:
            raise Failure("restore with --root failed: %s" % err.strip()[:300])
        if not os.path.exists("/proc/%d/root/stasis-root-marker" % pid):
            raise Failure("the restored root is not the --root directory")
        if os.path.exists("/stasis-root-marker"):
            raise Failure("the marker leaked into the host's root")
    finally:
        kill_pid(pid)
        wait_pid(pid, time.monotonic() + 5)
        reap_all()
    return "the restored root is %s (its marker file is at /)" % r
