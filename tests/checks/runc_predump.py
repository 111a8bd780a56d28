# stasis-check: timeout=180 needs=host-root
# stasis-check: why=(runc runs containers as root: namespaces, cgroups, mounts)
"""runc's incremental checkpoint with stasis as its CRIU (`runc --criu DIR/criu`): a
container runs tests/tools/memhog (static, alone in the root) holding 128 MiB and
rewriting 1 MiB of it without pause. `runc checkpoint --pre-dump --image-path p1` (runc
asks FEATURE_CHECK mem_track, then sends PRE_DUMP with track_mem) copies the memory and
the container runs on; `runc checkpoint --image-path d --parent-path ../p1` (a DUMP with
parent_img relative to the images directory) stores only what was written since, with a
`parent` link; `runc restore` brings the container back and memhog checks every page
(the cold ones read through the parent image): all as they must be. The final dump's
pages must be a small part of the pre-dump's (a dump that ignored the parent stores
them all, and fails here). Reports both sizes and the times. Skipped when runc is
missing or cannot run a container here."""
import os
import shutil
import signal
import time

from checks.runc_checkpoint import container_pid, runc, runc_detached, runc_dirs
from checks.runc_checkpoint import make_bundle as runc_bundle
from lib.proc import Failure, Skip, kill_pid, run_cmd, tail, wait_pid

MIB = 128
HOT_KIB = 1024


def pages_bytes(d):
    return sum(os.path.getsize(os.path.join(d, f)) for f in os.listdir(d)
               if f.startswith("pages-") and f.endswith(".img"))


def kernel_tracks_writes(stasis):
    """The kernel features of write tracking, as `stasis check` found them."""
    _, out, _ = run_cmd([stasis, "check"], 60)
    have = {ln.split()[0]: ln.split()[1] for ln in out.splitlines() if len(ln.split()) > 1}
    return have.get("pagemap_scan") == "yes" and have.get("uffd_wp_async") == "yes"


def make_bundle(d, memhog, data):
    return runc_bundle(d, data, memhog, ["/bin/memhog", str(MIB), str(HOT_KIB), "/data"])


def wait_file(path, secs):
    deadline = time.monotonic() + secs
    while time.monotonic() < deadline:
        if os.path.exists(path):
            return True
        time.sleep(0.01)
    return False


def verify(pid, data, what):
    """memhog's own check of every page: its generation."""
    result = os.path.join(data, "result")
    if os.path.exists(result):
        os.unlink(result)
    os.kill(pid, signal.SIGUSR1)
    if not wait_file(result, 20):
        raise Failure("%s: memhog does not answer its check" % what)
    with open(result) as f:
        line = f.read().strip()
    if not line.startswith("ok "):
        raise Failure("%s: memhog's memory is wrong: %s" % (what, line))
    return int(line.split()[1])


def checkpoint(state, bundle, criu, cid, args, work, what):
    rc, _, err, secs = runc(state, ["checkpoint"] + args + ["--work-path", work, cid], 120,
                            bundle, criu)
    if rc != 0:
        raise Failure("%s failed: %s; dump.log: %s" % (what, err.strip()[-300:],
                                                      tail(os.path.join(work, "dump.log"))))
    return secs


def check(c):
    memhog = os.path.join(c.build, "tests", "tools", "memhog")
    if not shutil.which("runc"):
        raise Skip("runc is not installed (scripts/deps.sh)")
    if not os.path.exists(memhog):
        raise Failure("%s is not built (make tests)" % memhog)
    d, data, state, criu = runc_dirs(c, "runc-pre")
    if not kernel_tracks_writes(c.stasis):
        raise Skip("this kernel cannot track writes (no PAGEMAP_SCAN or uffd WP_ASYNC)")
    # what runtimes ask (Podman, scripts): the kernel can, so stasis says yes
    rc, _, err = run_cmd([criu, "check", "--feature", "mem_dirty_track"], 60)
    if rc != 0:
        raise Failure("criu check --feature mem_dirty_track: %s" % err.strip())
    bundle = make_bundle(d, memhog, data)
    cid = "stasis-pre-%d" % os.getpid()
    p1, img = os.path.join(d, "p1"), os.path.join(d, "d")
    pids = []
    out_r, out_w = os.pipe()
    try:
        rc, err, _ = runc_detached(state, ["run", "-d", cid], 60, bundle, out_w,
                                   os.path.join(d, "run.err"))
        if rc != 0:
            raise Skip("runc cannot run a container here: %s" % err.strip()[-160:])
        _, pid0 = container_pid(state, cid, bundle)
        pids.append(pid0)
        if not pid0 or not wait_file(os.path.join(data, "ready"), 30):
            raise Failure("memhog did not start in the container")
        gen0 = verify(pid0, data, "before the pre-dump")

        t_pre = checkpoint(state, bundle, criu, cid, ["--pre-dump", "--image-path", p1], p1,
                           "runc checkpoint --pre-dump")
        status, pid = container_pid(state, cid, bundle)
        if status != "running" or pid != pid0:
            raise Failure("after the pre-dump runc lists the container as %s (pid %s, "
                          "was %d)" % (status, pid, pid0))
        gen1 = verify(pid0, data, "after the pre-dump")
        if gen1 <= gen0:
            raise Failure("memhog does not run on after the pre-dump (generation %d)" % gen1)
        time.sleep(0.3)  # it rewrites its hot part many times meanwhile

        t_dump = checkpoint(state, bundle, criu, cid, ["--image-path", img, "--parent-path",
                                                  "../p1"], img, "runc checkpoint")
        if wait_pid(pid0, time.monotonic() + 10) is None:
            raise Failure("the checkpointed container's init %d is still there" % pid0)
        try:
            link = os.readlink(os.path.join(img, "parent"))
        except OSError:
            link = None
        if link != "../p1":
            raise Failure("the dump's parent link is %r, not ../p1" % link)
        pre_b, dump_b = pages_bytes(p1), pages_bytes(img)
        if pre_b < MIB * 2 ** 20 * 0.9:
            raise Failure("the pre-dump's pages are %d bytes: not all of memhog's %d MiB" %
                          (pre_b, MIB))
        if dump_b * 8 > pre_b:
            raise Failure("the dump's pages are %d bytes, the pre-dump's %d: the parent "
                          "was not used" % (dump_b, pre_b))

        rc, err, t_rst = runc_detached(state, ["restore", "-d", "--image-path", img,
                                               "--work-path", img, cid], 120, bundle,
                                       out_w, os.path.join(d, "restore.err"), criu)
        if rc != 0:
            raise Failure("runc restore failed: %s; restore.log: %s" % (
                err.strip()[-300:], tail(os.path.join(img, "restore.log"))))
        status, pid = container_pid(state, cid, bundle)
        pids.append(pid)
        if status != "running" or not pid:
            raise Failure("runc lists the restored container as %s" % status)
        gen2 = verify(pid, data, "after the restore")
        if gen2 < gen1:
            raise Failure("the restored memhog is at generation %d, before the pre-dump's "
                          "%d" % (gen2, gen1))
        return ("%d MiB container: pre-dump %.3f s (%.1f MiB of pages), dump --parent-path "
                "%.3f s (%.2f MiB), restore %.3f s; every page right (generation %d)" % (
                    MIB, t_pre, pre_b / 2 ** 20, t_dump, dump_b / 2 ** 20, t_rst, gen2))
    finally:
        runc(state, ["delete", "-f", cid], 30, d)
        for p in pids:  # orphaned to our subreaper: reap them
            if p:
                kill_pid(p)
                wait_pid(p, time.monotonic() + 10)
        for fd in (out_r, out_w):
            os.close(fd)
