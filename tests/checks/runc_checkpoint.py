# stasis-check: timeout=120 needs=host-root
# stasis-check: why=(runc runs containers as root: namespaces, cgroups, mounts)
"""runc end to end with stasis as its CRIU (`runc --criu DIR/criu`, a symlink named criu
to stasis: its RPC server, src/rpc/): a busybox container (rootfs made here from
busybox-static, config from `runc spec` without a terminal) counts into a bind-mounted
file; `runc checkpoint` stops it with the counter frozen, `runc restore -d` brings it
back: the counter goes on from where it stopped (no reset, no gap), its stdout is the
new pipe runc passed (inherit_fd), the container's init is still pid 1 in its pid namespace, `runc list` shows it running. Reports the
wall times of checkpoint and restore. Skipped when runc or busybox-static is missing or
runc cannot run a container here."""
import json
import os
import shutil
import subprocess
import time

from lib.proc import Failure, Skip, run_cmd, tail, wait_pid

BUSYBOX = "/bin/busybox"
# every value appended: the whole sequence is checked afterwards (a poller could miss one)
COUNTER = 'i=0; while true; do i=$((i+1)); echo $i >> /data/log; sleep 0.02; done'


def read_values(path):
    try:
        with open(path) as f:
            return [int(x) for x in f.read().split()]
    except (OSError, ValueError):
        return []


def read_counter(path):
    v = read_values(path)
    return v[-1] if v else None


def wait_counter(path, pred, secs):
    deadline = time.monotonic() + secs
    while time.monotonic() < deadline:
        v = read_counter(path)
        if v is not None and pred(v):
            return v
        time.sleep(0.002)
    return None


def make_bundle(d, data, program=None, args=None, rootless=False):
    """A bundle whose rootfs holds busybox and the counter as its process, or the
    static @program as /bin/NAME running @args; @data bind-mounted at /data. @rootless:
    `runc spec --rootless` (a user namespace mapping the caller's ids, the host's /sys
    bound)."""
    rootfs = os.path.join(d, "bundle", "rootfs")
    for sub in ("bin", "proc", "sys", "dev", "data", "tmp"):
        os.makedirs(os.path.join(rootfs, sub))
    if program:
        shutil.copy(program, os.path.join(rootfs, "bin", os.path.basename(program)))
    else:
        shutil.copy(BUSYBOX, os.path.join(rootfs, "bin", "busybox"))
        for app in ("sh", "sleep", "echo", "cat"):
            os.symlink("busybox", os.path.join(rootfs, "bin", app))
    bundle = os.path.join(d, "bundle")
    rc, _, err = run_cmd(["runc", "spec"] + (["--rootless"] if rootless else []), 30, cwd=bundle)
    if rc != 0:
        raise Skip("runc spec failed: %s" % err.strip()[:100])
    path = os.path.join(bundle, "config.json")
    with open(path) as f:
        cfg = json.load(f)
    cfg["process"]["terminal"] = False
    cfg["process"]["args"] = args or ["sh", "-c", COUNTER]
    cfg["root"]["readonly"] = False
    cfg["mounts"].append({"destination": "/data", "type": "bind", "source": data,
                          "options": ["rbind", "rw"]})
    with open(path, "w") as f:
        json.dump(cfg, f)
    return bundle


def runc(state, args, timeout, cwd, criu=None):
    argv = ["runc", "--root", state] + (["--criu", criu] if criu else []) + args
    t0 = time.monotonic()
    rc, out, err = run_cmd(argv, timeout, cwd=cwd)
    return rc, out, err, time.monotonic() - t0


def runc_detached(state, args, timeout, cwd, stdout_fd, errfile, criu=None, stderr_fd=None):
    """run -d / restore -d: runc hands its own stdio to the container (its stdout here
    the write end of a pipe whose read end the check holds), so no pipe of ours may
    be waited on for EOF. With stderr_fd, the container's stderr is that too (runc's
    errors are then lost: errfile stays empty)."""
    argv = ["runc", "--root", state] + (["--criu", criu] if criu else []) + args
    t0 = time.monotonic()
    with open(errfile, "w") as err:
        p = subprocess.Popen(argv, cwd=cwd, stdin=subprocess.DEVNULL, stdout=stdout_fd,
                             stderr=err if stderr_fd is None else stderr_fd)
        try:
            rc = p.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()
            rc = -9
    with open(errfile) as f:
        return rc, f.read(), time.monotonic() - t0


def pipe_ino(fd):
    return os.fstat(fd).st_ino


def container_pid(state, cid, cwd):
    rc, out, _, _ = runc(state, ["state", cid], 30, cwd)
    if rc != 0:
        return None, None
    st = json.loads(out)
    return st.get("status"), st.get("pid")


def restored_ok(state, cid, bundle, counter, frozen, pids):
    """After `runc restore`: the counter's values 1, 2, ... without a reset or gap, the
    container running, its init pid 1 in its namespace. (values, init's pid); the pid
    is appended to @pids first (to be reaped)."""
    values = read_values(counter)
    for k, v in enumerate(values):
        if v != k + 1:
            raise Failure("the counter went from %d to %d (a %s; frozen at %d)" % (
                values[k - 1] if k else 0, v, "reset" if v <= k else "gap", frozen))
    status, pid = container_pid(state, cid, bundle)
    pids.append(pid)
    if status != "running" or not pid:
        raise Failure("runc lists the restored container as %s" % status)
    with open("/proc/%d/status" % pid) as f:
        nspid = [ln.split()[1:] for ln in f if ln.startswith("NSpid:")][0]
    if nspid[-1] != "1":
        raise Failure("the restored init is pid %s in its namespace, not 1" % nspid[-1])
    return values, pid


def runc_dirs(c, name):
    """The check's directory, its /data, runc's state and a `criu` symlink to stasis."""
    d = os.path.join(c.tmp, name)
    data = os.path.join(d, "data")
    state = os.path.join(d, "state")
    os.makedirs(data)
    os.makedirs(state)
    criu = os.path.join(d, "criu")
    os.symlink(os.path.abspath(c.stasis), criu)
    return d, data, state, criu


def check(c):
    if not shutil.which("runc") or not os.path.exists(BUSYBOX):
        raise Skip("runc or busybox-static is not installed (scripts/deps.sh)")
    d, data, state, criu = runc_dirs(c, "runc")
    bundle = make_bundle(d, data)
    cid = "stasis-rpc-%d" % os.getpid()
    counter = os.path.join(data, "log")
    work = os.path.join(d, "work")
    img = os.path.join(d, "img")
    pids = []
    out1_r, out1_w = os.pipe()
    out2_r, out2_w = os.pipe()
    try:
        rc, err, _ = runc_detached(state, ["run", "-d", cid], 60, bundle, out1_w,
                                   os.path.join(d, "run.err"))
        os.close(out1_w)
        out1_w = -1
        if rc != 0:
            raise Skip("runc cannot run a container here: %s" % err.strip()[-160:])
        if wait_counter(counter, lambda v: v >= 5, 20) is None:
            raise Failure("the container's counter does not run")
        _, pid0 = container_pid(state, cid, bundle)
        pids.append(pid0)
        rc, _, err, t_dump = runc(state, ["checkpoint", "--image-path", img, "--work-path",
                                          work, cid], 60, bundle, criu)
        if rc != 0:
            raise Failure("runc checkpoint failed: %s; dump.log: %s" % (
                err.strip()[-200:], tail(os.path.join(work, "dump.log"))))
        frozen = read_counter(counter)
        # the dumped init was orphaned by `runc run -d` (our subreaper's child): reap it
        # so that its pid is free again
        if pid0 and wait_pid(pid0, time.monotonic() + 10) is None:
            raise Failure("the checkpointed init %d is still there" % pid0)
        time.sleep(0.2)
        if read_counter(counter) != frozen or frozen is None:
            raise Failure("the counter still moves after the checkpoint")
        status, _ = container_pid(state, cid, bundle)
        if status == "running":
            raise Failure("runc still lists the container as running after checkpoint")
        # a new pipe for the restored container's stdout: runc passes it with
        # inherit_fd for the key of the old one (pipe:[INODE])
        rc, err, t_rst = runc_detached(state, ["restore", "-d", "--image-path", img,
                                               "--work-path", work, cid], 60, bundle,
                                       out2_w, os.path.join(d, "restore.err"), criu)
        if rc != 0:
            raise Failure("runc restore failed: %s; restore.log: %s" % (
                err.strip()[-200:], tail(os.path.join(work, "restore.log"))))
        nxt = wait_counter(counter, lambda v: v != frozen, 10)
        if nxt is None:
            raise Failure("the counter does not move after the restore (at %d)" % frozen)
        values, pid = restored_ok(state, cid, bundle, counter, frozen, pids)
        link = os.readlink("/proc/%d/fd/1" % pid)
        if link != "pipe:[%d]" % pipe_ino(out2_r):
            raise Failure("the restored container's stdout is %s, not the pipe runc "
                          "passed (pipe:[%d])" % (link, pipe_ino(out2_r)))
        rc, out, _, _ = runc(state, ["list"], 30, bundle)
        if cid not in out or "running" not in out:
            raise Failure("runc list does not show the container running: %s" % out)
        return ("runc checkpoint %.3f s, restore %.3f s; counter 1..%d with no gap across "
                "%d, init pid 1" % (t_dump, t_rst, values[-1], frozen))
    finally:
        runc(state, ["delete", "-f", cid], 30, d)
        for p in pids:  # orphaned to our subreaper: reap them
            if p:
                wait_pid(p, time.monotonic() + 10)
        for fd in (out1_r, out1_w, out2_r, out2_w):
            if fd >= 0:
                os.close(fd)
