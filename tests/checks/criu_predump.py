# stasis-check: timeout=120 needs=root
"""Incremental dumps through stasis invoked as `criu` (a symlink), CRIU's spellings:
`criu check --feature mem_dirty_track` says yes (the kernel tracks writes with
userfaultfd WP_ASYNC and PAGEMAP_SCAN: stasis's way, not soft-dirty); `criu pre-dump
-t PID -D p1 --track-mem` copies the memory of tests/tools/memhog (64 MiB, 512 KiB of it
rewritten without pause), which runs on; `criu dump -t PID -D d --prev-images-dir ../p1
--track-mem` stores only what was written since, with a `parent` link; `criu restore -D d
-d` brings it back and memhog checks every page. --prev-images-dir at restore is refused
(a restore follows the parent link). Reports the sizes and times."""
import os
import subprocess
import time

from checks.runc_predump import kernel_tracks_writes, pages_bytes, verify, wait_file
from lib.proc import Failure, Skip, kill_pid, run_cmd, tail, wait_pid

MIB = 64


def criu_run(c, criu, args, what, log_dir, log):
    t0 = time.monotonic()
    rc, _, err = run_cmd([criu] + args, c.timeout)
    secs = time.monotonic() - t0
    if rc != 0:
        raise Failure("%s: rc %s: %s; log: %s" % (what, rc, err.strip()[-300:],
                                                  tail(os.path.join(log_dir, log))))
    return secs


def check(c):
    memhog = os.path.join(c.build, "tests", "tools", "memhog")
    if not os.path.exists(memhog):
        raise Failure("%s is not built (make tests)" % memhog)
    if not kernel_tracks_writes(c.stasis):
        raise Skip("this kernel cannot track writes (no PAGEMAP_SCAN or uffd WP_ASYNC)")
    d = os.path.join(c.tmp, "criu-pre")
    data = os.path.join(d, "data")
    p1, img = os.path.join(d, "p1"), os.path.join(d, "d")
    for x in (data, p1, img):
        os.makedirs(x)
    criu = os.path.join(d, "criu")
    os.symlink(os.path.abspath(c.stasis), criu)
    rc, out, err = run_cmd([criu, "check", "--feature", "mem_dirty_track"], 60)
    if rc != 0 or "supported" not in out:
        raise Failure("criu check --feature mem_dirty_track: rc %d: %s%s" % (rc, out, err))

    p = subprocess.Popen(["setsid", memhog, str(MIB), "512", data], stdin=subprocess.DEVNULL,
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    pid = p.pid
    try:
        if not wait_file(os.path.join(data, "ready"), 20):
            raise Failure("memhog did not start")
        gen0 = verify(pid, data, "before the pre-dump")
        t_pre = criu_run(c, criu, ["pre-dump", "-t", str(pid), "-D", p1, "--track-mem",
                                   "-o", "pre.log", "-v4"], "criu pre-dump", p1, "pre.log")
        if p.poll() is not None or verify(pid, data, "after the pre-dump") <= gen0:
            raise Failure("memhog does not run on after the pre-dump")
        time.sleep(0.2)
        t_dump = criu_run(c, criu, ["dump", "-t", str(pid), "-D", img, "--prev-images-dir",
                                    "../p1", "--track-mem", "-o", "dump.log", "-v4"],
                          "criu dump --prev-images-dir", img, "dump.log")
        p.wait(timeout=10)
        if os.readlink(os.path.join(img, "parent")) != "../p1":
            raise Failure("the dump's parent link is not ../p1")
        pre_b, dump_b = pages_bytes(p1), pages_bytes(img)
        if pre_b < MIB * 2 ** 20 * 0.9 or dump_b * 8 > pre_b:
            raise Failure("pages: pre-dump %d bytes, dump %d: the parent was not used" % (
                pre_b, dump_b))
        rc, _, err = run_cmd([criu, "restore", "-D", img, "-d", "--prev-images-dir", "../p1"],
                             30)
        if rc == 0 or "--prev-images-dir" not in err:
            raise Failure("criu restore --prev-images-dir: rc %d, %r" % (rc, err))
        t_rst = criu_run(c, criu, ["restore", "-D", img, "-d", "--pidfile", "restore.pid",
                                   "-o", "restore.log"], "criu restore", img, "restore.log")
        with open(os.path.join(img, "restore.pid")) as f:
            got = int(f.read())
        if got != pid:
            raise Failure("restored pid %d, not %d" % (got, pid))
        gen = verify(pid, data, "after the restore")
        return ("%d MiB: criu pre-dump %.3f s (%.1f MiB of pages), dump --prev-images-dir "
                "%.3f s (%.2f MiB), restore %.3f s; every page right (generation %d)" % (
                    MIB, t_pre, pre_b / 2 ** 20, t_dump, dump_b / 2 ** 20, t_rst, gen))
    finally:
        kill_pid(pid)
        wait_pid(pid, time.monotonic() + 10)
        if p.poll() is None:
            p.wait(timeout=10)
