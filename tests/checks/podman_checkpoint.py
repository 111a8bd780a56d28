# stasis-check: timeout=180 needs=host-root
# stasis-check: why=(podman runs containers as root through runc: namespaces, cgroups, mounts)
"""Podman end to end with stasis as its CRIU: `criu` (a symlink to stasis) first in the
PATH of podman only; podman's own version check (go-criu: `criu swrk`, VERSION) and runc
(`--runtime runc`, which runs `criu swrk` from that PATH) both reach stasis's RPC server.

Everything podman keeps is under the check's directory, and nothing of the host's podman
state is touched: storage (vfs), run root, tmp dir, runc's state (`--runtime-flag root=`),
events, file locks (not /dev/shm), the network configuration directory, all named by a
containers.conf and a storage.conf given through CONTAINERS_CONF and
CONTAINERS_STORAGE_CONF; the containers' cgroups under a cgroup parent of its own
(removed at the end). The image is made offline: a busybox-static rootfs, `podman
import`ed from a tarball in a private mount namespace with a tmpfs on /var/lib (the
image library's blob cache, /var/lib/containers/cache, is not under --root). No network
(netns none). The container runs under podman's default seccomp profile (a filter
stasis carries across: checked after each restore).

A container counts into a file of a bind-mounted volume, each line "PID TOKEN N" with
PID its own pid in its namespace and TOKEN read once when it started.
`podman container checkpoint --print-stats` stops it (CRIU's stats-dump file read by
podman), `podman container restore --print-stats` brings it back (stats-restore): the
counter goes on from where it stopped (no reset, no gap: every value is kept), the same
TOKEN (no restart), pid 1 in its namespace with the same host pid, in the cgroup podman
made for it, podman's log going on. The same after `checkpoint --pre-checkpoint` (the
container runs on) and `checkpoint --with-previous` (the pre-dump as parent image). Then
`checkpoint --export FILE` (the archive with the
images), `podman rm`, `restore --import FILE --name NEW`: a new container with a new
rootfs directory (stasis's restore takes the root from runc's root option) carries on
the same counter. Reports every wall time and the frozen time stasis measured. Skipped
when podman, runc or busybox-static is missing or podman cannot run a container here."""
import json
import os
import re
import shutil
import subprocess
import time

from lib.nsfs import umount_under
from lib.podman import Podman
from lib.proc import Failure, Skip, kill_pid, pid_alive, reap_all, tail, wait_pid

BUSYBOX = "/bin/busybox"
IMAGE = "localhost/stasis-busybox:latest"
# a line per value, all kept: the whole sequence is checked afterwards
COUNTER = ('read s < /proc/sys/kernel/random/uuid; i=0; while true; do i=$((i+1)); '
           'echo "$$ $s $i" >> /data/log; echo $i; sleep 0.02; done')


def import_image(pm, rootfs):
    """The rootfs as image IMAGE. `podman import` copies it through the image library,
    whose blob cache for root is /var/lib/containers/cache whatever --root says: the
    import runs in a mount namespace of its own with a tmpfs on /var/lib."""
    tar = os.path.join(pm.d, "rootfs.tar")
    subprocess.run(["tar", "-C", rootfs, "-cf", tar, "."], check=True, timeout=60)
    script = ('mount -t tmpfs -o size=16m,mode=755 stasis-podman /var/lib && exec "$@"')
    rc, _, err, secs = pm.run(["import", "-q", tar, IMAGE], 60,
                              prefix=["unshare", "-m", "--propagation", "private", "sh",
                                      "-c", script, "sh"])
    if rc != 0:
        raise Skip("podman import of a busybox rootfs failed: %s" % err.strip()[-200:])
    return secs


def make_rootfs(d):
    rootfs = os.path.join(d, "rootfs")
    for sub in ("bin", "proc", "sys", "dev", "data", "tmp", "etc"):
        os.makedirs(os.path.join(rootfs, sub))
    shutil.copy(BUSYBOX, os.path.join(rootfs, "bin", "busybox"))
    for app in ("sh", "sleep", "echo", "cat"):
        os.symlink("busybox", os.path.join(rootfs, "bin", app))
    return rootfs


def read_lines(path):
    """[(pid, token, n)] of the counter file."""
    out = []
    try:
        with open(path) as f:
            for ln in f:
                p = ln.split()
                if len(p) == 3:
                    out.append((p[0], p[1], int(p[2])))
    except (OSError, ValueError):
        pass
    return out


def wait_counter(path, pred, secs):
    deadline = time.monotonic() + secs
    while time.monotonic() < deadline:
        v = read_lines(path)
        if v and pred(v[-1][2]):
            return v[-1][2]
        time.sleep(0.005)
    return None


def check_sequence(path, frozen, what):
    """Every value 1..N once, in order, all from pid 1 with one token: no reset, no gap,
    no restart. The last value."""
    lines = read_lines(path)
    for k, (pid, token, v) in enumerate(lines):
        if v != k + 1:
            raise Failure("%s: the counter went from %d to %d (a %s; frozen at %d)" % (
                what, lines[k - 1][2] if k else 0, v, "reset" if v <= k else "gap", frozen))
        if pid != "1" or token != lines[0][1]:
            raise Failure("%s: value %d written by pid %s with token %s, not pid 1 with %s "
                          "(the container restarted)" % (what, v, pid, token, lines[0][1]))
    return lines[-1][2]


def running_init(pm, name, what):
    """The host pid of the container's init, checked to be running as pid 1 of its
    namespace, under podman's seccomp filter, in the cgroup podman made for it."""
    st = pm.inspect(name)
    if not st or not st["State"].get("Running") or not st["State"].get("Pid"):
        raise Failure("%s: podman does not list %s as running" % (what, name))
    pid = st["State"]["Pid"]
    with open("/proc/%d/status" % pid) as f:
        status = dict(ln.split(":", 1) for ln in f if ":" in ln)
    nspid = status["NSpid"].split()
    if nspid[-1] != "1":
        raise Failure("%s: the container's init is pid %s in its namespace" % (what, nspid[-1]))
    sec = status.get("Seccomp", "").split()
    if sec != ["2"]:
        raise Failure("%s: the container's init is not under its seccomp filter (Seccomp: "
                      "%s)" % (what, sec))
    with open("/proc/%d/cgroup" % pid) as f:
        cg = f.read()
    if "libpod-" + st["Id"] not in cg:
        raise Failure("%s: the init is not in the container's cgroup: %s" % (
            what, cg.strip().replace("\n", "; ")[:200]))
    return pid, st


def frozen_after(pm, name, counter, what):
    """After a checkpoint: podman lists the container as exited and checkpointed, the
    counter stands still. The value it stopped at."""
    st = pm.inspect(name)
    if not st or st["State"].get("Running") or not st["State"].get("Checkpointed"):
        raise Failure("%s: podman lists %s as %s after the checkpoint" % (
            what, name, st["State"].get("Status") if st else "missing"))
    frozen = read_lines(counter)[-1][2]
    time.sleep(0.2)
    if read_lines(counter)[-1][2] != frozen:
        raise Failure("%s: the counter still moves after the checkpoint" % what)
    return frozen


def stats_of(out, key):
    """The CRIU statistics podman printed (--print-stats): from stasis's stats files."""
    try:
        return json.loads(out)["container_statistics"][0]["criu_statistics"]
    except (ValueError, KeyError, IndexError, TypeError):
        raise Failure("podman printed no CRIU statistics of the %s: %s" % (key, out[:200]))


def reap_gone(pids):
    """The container inits and conmons that ended: orphans reparented to our subreaper."""
    for p in pids:
        if p:
            wait_pid(p, time.monotonic() + 10)


def in_place(pm, name, counter, seen, pre=False):
    """Checkpoint and restore of one container (@pre: after a pre-checkpoint, the
    checkpoint made on it): its times and figures."""
    pid0, st = running_init(pm, name, "before the checkpoint")
    seen += [pid0, st["State"].get("ConmonPid")]
    args = ["--print-stats", name]
    if pre:
        # podman asks FEATURE_CHECK mem_track; runc sends PRE_DUMP, then DUMP with the
        # pre-dump as parent_img
        pm.must(["container", "checkpoint", "--pre-checkpoint", name],
                "podman container checkpoint --pre-checkpoint")
        at = read_lines(counter)[-1][2]
        if wait_counter(counter, lambda v: v > at + 2, 10) is None:
            raise Failure("the counter stands still after the pre-checkpoint")
        running_init(pm, name, "after the pre-checkpoint")
        args = ["--with-previous"] + args
    out, t_dump = pm.must(["container", "checkpoint"] + args,
                          "podman container checkpoint%s" % (" --with-previous" if pre else ""))
    ds = stats_of(out, "checkpoint")
    frozen = frozen_after(pm, name, counter, "checkpoint")
    reap_gone([pid0, st["State"].get("ConmonPid")])
    out, t_rst = pm.must(["container", "restore", "--print-stats", name],
                         "podman container restore")
    rs = stats_of(out, "restore")
    if wait_counter(counter, lambda v: v > frozen + 2, 10) is None:
        raise Failure("the counter does not move after the restore (at %d)" % frozen)
    pid, st = running_init(pm, name, "after the restore")
    seen += [pid, st["State"].get("ConmonPid")]
    if pid != pid0:
        raise Failure("the restored init is host pid %d, not %d" % (pid, pid0))
    check_sequence(counter, frozen, "restore")
    rc, out, _, _ = pm.run(["logs", name])
    logged = [int(x) for x in out.split() if x.isdigit()]
    if rc != 0 or not logged or logged[-1] <= frozen:
        raise Failure("podman logs does not go on after the restore (last %s, frozen at %d)"
                      % (logged[-1:] or "nothing", frozen))
    return t_dump, t_rst, frozen, ds, rs


def exported(pm, name, new, counter, seen):
    """checkpoint --export, rm, restore --import --name NEW: the times."""
    archive = os.path.join(pm.d, "checkpoint.tar.gz")
    pid0, st = running_init(pm, name, "before the export")
    _, t_exp = pm.must(["container", "checkpoint", "--export", archive, name],
                       "podman container checkpoint --export")
    frozen = frozen_after(pm, name, counter, "export")
    reap_gone([pid0, st["State"].get("ConmonPid")])
    pm.must(["rm", name], "podman rm after the export")
    _, t_imp = pm.must(["container", "restore", "--import", archive, "--name", new],
                       "podman container restore --import")
    if wait_counter(counter, lambda v: v > frozen + 2, 10) is None:
        raise Failure("the counter does not move after the import (at %d)" % frozen)
    pid, st = running_init(pm, new, "after the import")
    seen += [pid, st["State"].get("ConmonPid")]
    last = check_sequence(counter, frozen, "import")
    return t_exp, t_imp, frozen, last, os.path.getsize(archive)


def holders(logs):
    """What holds a pid a restore found in use (a diagnosis for the failure line)."""
    out = ""
    for p in logs:
        for ln in tail(p, 3) or []:
            m = re.search(r"pid (\d+) is already in use", ln)
            if not m or m.group(1) in out:
                continue
            try:
                with open("/proc/%s/stat" % m.group(1)) as f:
                    out += "; pid %s is held by: %s" % (m.group(1), f.read()[:120])
            except OSError:
                out += "; pid %s is free now" % m.group(1)
    return out


def cleanup(pm, seen):
    pm.run(["rm", "-f", "-t", "0", "-a"], 60)
    for p in seen:  # whatever podman did not stop: killed by pid, reaped
        if p and pid_alive(p):
            kill_pid(p)
    reap_gone(seen)
    pm.run(["rmi", "-f", "-a"], 60)
    pm.run(["system", "reset", "-f"], 60)
    umount_under(pm.d)
    for cg in pm.cgroup_dirs():
        try:
            os.rmdir(cg)
        except OSError:
            pass
    reap_all()
    shutil.rmtree(pm.d, ignore_errors=True)


def check(c):
    for tool in ("podman", "runc", "conmon"):
        if not shutil.which(tool):
            raise Skip("%s is not installed (scripts/deps.sh)" % tool)
    if not os.path.exists(BUSYBOX):
        raise Skip("busybox-static is not installed (scripts/deps.sh)")
    pm = Podman(os.path.join(c.tmp, "podman"), c.stasis)
    name, new = "stasis-ctr-%d" % os.getpid(), "stasis-ctr2-%d" % os.getpid()
    counter = os.path.join(pm.d, "data", "log")
    seen = []
    try:
        t_imp_img = import_image(pm, make_rootfs(pm.d))
        rc, _, err, _ = pm.run(["run", "-d", "--name", name, "--cgroup-parent",
                                "/" + pm.cgparent, "-v", "%s:/data" % os.path.dirname(counter),
                                IMAGE, "sh", "-c", COUNTER])
        if rc != 0:
            raise Skip("podman cannot run a container here: %s" % err.strip()[-200:])
        if wait_counter(counter, lambda v: v >= 5, 20) is None:
            raise Failure("the container's counter does not run")
        t_dump, t_rst, f1, ds, rs = in_place(pm, name, counter, seen)
        t_dump2, t_rst2, f2, ds2, _ = in_place(pm, name, counter, seen, pre=True)
        t_exp, t_imp, f3, last, size = exported(pm, name, new, counter, seen)
        return ("image import %.2f s; checkpoint %.3f s (stasis frozen %.1f ms, %d pages), "
                "restore %.3f s (%d pages); after a pre-checkpoint: checkpoint %.3f s (%d of "
                "%d pages written), restore %.3f s; export %.3f s (%d KiB), import as a new "
                "container %.3f s; counter 1..%d with no gap across %d, %d and %d, pid 1, "
                "same token" % (
                    t_imp_img, t_dump, ds.get("frozen_time", 0) / 1e3,
                    ds.get("pages_written", 0), t_rst, rs.get("pages_restored", 0), t_dump2,
                    ds2.get("pages_written", 0), ds2.get("pages_scanned", 0), t_rst2, t_exp,
                    size // 1024, t_imp, last, f1, f2, f3))
    except Failure as e:
        logs = [os.path.join(r, f) for r, _, fs in os.walk(os.path.join(pm.d, "root"))
                for f in fs if f in ("dump.log", "restore.log")]
        raise Failure("%s%s%s" % (e, "".join("; %s: %s" % (os.path.basename(p), tail(p, 3))
                                             for p in logs), holders(logs)))
    finally:
        cleanup(pm, seen)
