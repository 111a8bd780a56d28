# stasis-check: timeout=180 needs=host-root
# stasis-check: why=(root makes the plain user and hands the check to it)
"""Rootless runc with stasis as its CRIU, the way rootless Podman runs its runtime: the
plain user stasis-test, in a user namespace of its own (its uid mapped to root there)
with new mount and pid namespaces, runs a busybox container from `runc spec --rootless`
(a second user namespace, the host's /sys bound with everything mounted below it);
`runc --rootless true checkpoint` through stasis stops it, `runc restore -d` brings it
back. The counter it writes goes on without a reset or gap, the restored init is pid 1
of its namespace, `runc list` shows it running. No capability of the initial user
namespace is used: stasis runs as root of the user's namespace. The restore binds the
host's /sys again: its submounts are locked there (they came from a more privileged
namespace), so the bind must take them along, and the image's mounts that are those
submounts are kept as they came (src/ns/mnt.c adopt_children: before, "bind /sys:
Invalid argument"). Skipped when runc, busybox-static, setpriv or unshare is missing."""
import json
import os
import shutil
import subprocess
import sys
import time

from lib.proc import Failure, Skip, wait_pid
from lib.users import ensure_user

TESTS = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def inner(d):
    """The container's whole life, in the user's namespaces (pid 1 of the new pid
    namespace: everything it started dies with it)."""
    from checks.runc_checkpoint import (container_pid, make_bundle, read_counter,
                                        restored_ok, runc, runc_detached, wait_counter)
    data, state, criu = (os.path.join(d, n) for n in ("data", "state", "criu"))
    bundle = make_bundle(d, data, rootless=True)
    cid = "stasis-rootless"
    counter = os.path.join(data, "log")
    img, work = os.path.join(d, "img"), os.path.join(d, "work")
    out = os.open(os.path.join(d, "out"), os.O_WRONLY | os.O_CREAT, 0o600)
    rc, err, _ = runc_detached(state, ["run", "-d", cid], 60, bundle, out,
                               os.path.join(d, "run.err"))
    if rc != 0:
        raise Skip("runc cannot run a rootless container here: %s" % err.strip()[-160:])
    if wait_counter(counter, lambda v: v >= 5, 20) is None:
        raise Failure("the container's counter does not run")
    _, pid0 = container_pid(state, cid, bundle)
    rc, _, err, t_dump = runc(state, ["--rootless", "true", "checkpoint", "--image-path", img,
                                      "--work-path", work, cid], 60, bundle, criu)
    if rc != 0:
        raise Failure("runc checkpoint failed: %s" % err.strip()[-300:])
    frozen = read_counter(counter)
    # the dumped init, orphaned to this process (pid 1 here) by `runc run -d`: reaped, so
    # that its pid is free again
    if pid0 and wait_pid(pid0, time.monotonic() + 10) is None:
        raise Failure("the checkpointed init %d is still there" % pid0)
    time.sleep(0.2)
    if frozen is None or read_counter(counter) != frozen:
        raise Failure("the counter still moves after the checkpoint")
    rc, err, t_rst = runc_detached(state, ["--rootless", "true", "restore", "-d", "--image-path",
                                           img, "--work-path", work, cid], 60, bundle, out,
                                   os.path.join(d, "restore.err"), criu)
    if rc != 0:
        with open(os.path.join(work, "restore.log")) as f:
            log = [ln for ln in f if "Error" in ln][-3:]
        raise Failure("runc restore failed: %s; restore.log: %s" % (
            err.strip()[-200:], " / ".join(ln.strip() for ln in log)))
    if wait_counter(counter, lambda v: v > frozen + 3, 10) is None:
        raise Failure("the counter does not move after the restore (at %d)" % frozen)
    values, _ = restored_ok(state, cid, bundle, counter, frozen, [])
    rc, listing, _, _ = runc(state, ["list"], 30, bundle)
    if cid not in listing or "running" not in listing:
        raise Failure("runc list does not show the container running: %s" % listing)
    return ("rootless runc checkpoint %.3f s, restore %.3f s; counter 1..%d with no gap "
            "across %d, init pid 1" % (t_dump, t_rst, values[-1], frozen))


def check(c):
    for tool in ("runc", "setpriv", "unshare", "/usr/bin/python3"):
        if not shutil.which(tool):
            raise Skip("%s is not installed (scripts/deps.sh)" % tool)
    if not os.path.exists("/bin/busybox"):
        raise Skip("busybox-static is not installed (scripts/deps.sh)")
    pw, reason = ensure_user()
    if reason:
        raise Skip(reason)
    d = os.path.join(c.tmp, "rootless")
    for sub in ("", "data", "state"):
        os.makedirs(os.path.join(d, sub), exist_ok=True)
        os.chown(os.path.join(d, sub), pw.pw_uid, pw.pw_gid)
    os.symlink(os.path.abspath(c.stasis), os.path.join(d, "criu"))
    os.chmod(c.tmp, 0o755)  # (made 0700 in /tmp) the user walks down to its directory
    argv = ["setpriv", "--reuid=%d" % pw.pw_uid, "--regid=%d" % pw.pw_gid, "--clear-groups",
            "--", "unshare", "--user", "--map-root-user", "--mount", "--pid", "--fork",
            "--mount-proc", "--kill-child", "/usr/bin/python3", os.path.abspath(__file__), d]
    # the system's python: the suite's own may live where the user cannot reach
    env = dict(os.environ, PYTHONPATH=TESTS, HOME=d)
    p = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True, env=env, cwd=d)
    try:
        out, err = p.communicate(timeout=150)
    except subprocess.TimeoutExpired:
        p.kill()  # unshare: --kill-child takes the namespace's init, and the pid
        p.communicate()  # namespace every process of the container with it
        raise Failure("the rootless run did not finish in 150 s")
    res = out.strip().splitlines()[-1:] or [""]
    kind, _, msg = res[0].partition(" ")
    if p.returncode == 0 and kind == "PASS":
        return msg
    if kind == "SKIP":
        raise Skip(msg)
    raise Failure(msg or "the rootless run failed (%d): %s" % (p.returncode, err.strip()[-300:]))


if __name__ == "__main__":
    try:
        print("PASS " + inner(sys.argv[1]))
    except Skip as e:
        print("SKIP %s" % e)
    except Failure as e:
        print("FAIL %s" % e)
        sys.exit(1)
