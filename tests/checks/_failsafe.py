"""What the fail-safe checks (gc_stale_tmp, dump_enospc, dump_erofs, dump_concurrent,
dump_traced, restore_truncated_pages, restore_lazy_umount) share: a process holding N MiB
of non-zero memory (python), stasis dumps run in the background, the temporary image
directories of a dump, and the state a failed dump must leave a task in."""
import glob
import os
import subprocess
import sys
import time

from lib.proc import Failure, Skip, kill_pid, proc_stat, run_cmd, wait_pid

# a process with @mib MiB of private, written, incompressible memory; "ready" in ARGV[2]
MEM_SCRIPT = """
import os, sys, time
b = bytearray(os.urandom(1 << 20)) * int(sys.argv[1])
with open(sys.argv[2], "w") as f:
    f.write("ready\\n")
while True:
    time.sleep(3600)
"""


def start_mem(c, mib, tag):
    """A python process holding @mib MiB, ready (a Popen)."""
    ready = os.path.join(c.tmp, "%s.ready" % tag)
    p = subprocess.Popen([sys.executable, "-c", MEM_SCRIPT, str(mib), ready],
                         stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                         stderr=subprocess.DEVNULL, cwd=c.tmp)
    deadline = time.monotonic() + c.timeout
    while time.monotonic() < deadline:
        if os.path.exists(ready):
            return p
        if p.poll() is not None:
            raise Failure("the %d MiB process exited (status %s)" % (mib, p.returncode))
        time.sleep(0.02)
    stop(p)
    raise Failure("the %d MiB process did not get ready in %.0f s" % (mib, c.timeout))


def stop(p):
    """Kill a Popen by its PID and reap it (bounded)."""
    if p is None:
        return
    kill_pid(p.pid)
    try:
        p.wait(timeout=10)
    except subprocess.TimeoutExpired:
        pass


def start_dump(c, pid, img, log, *extra):
    """`stasis dump -t PID -D IMG --leave-running -v -o LOG EXTRA` in the background."""
    argv = [c.stasis, "dump", "-t", str(pid), "-D", img, "--leave-running", "-v", "-o",
            log] + list(extra)
    return subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True, errors="replace", cwd=c.tmp)


def finish(c, p):
    """Waits for a background stasis (bounded): (rc, stderr)."""
    try:
        _, err = p.communicate(timeout=c.timeout)
    except subprocess.TimeoutExpired:
        stop(p)
        raise Failure("stasis pid %d did not finish in %.0f s" % (p.pid, c.timeout))
    return p.returncode, err


def tmp_dirs(img):
    """The temporary directories of dumps into @img, by name."""
    return sorted(glob.glob(glob.escape(img) + ".stasis-tmp.*"))


def tmp_size(d):
    total = 0
    for f in os.listdir(d):
        try:
            total += os.stat(os.path.join(d, f)).st_blocks * 512
        except OSError:
            pass
    return total


def wait_tmp(c, p, img, min_bytes):
    """The temporary directory of the running dump @p (a Popen) once it holds @min_bytes."""
    d = "%s.stasis-tmp.%d" % (img, p.pid)
    deadline = time.monotonic() + c.timeout
    while time.monotonic() < deadline:
        try:
            if tmp_size(d) >= min_bytes:
                return d
        except OSError:
            pass
        if p.poll() is not None:
            raise Failure("the dump (pid %d) ended (status %s) before %s held %d MiB: %s" % (
                p.pid, p.returncode, d, min_bytes >> 20, p.stderr.read().strip()[:300]))
        time.sleep(0.005)
    raise Failure("%s never held %d MiB" % (d, min_bytes >> 20))


def kill_dump(p):
    kill_pid(p.pid)
    wait_pid(p.pid, time.monotonic() + 10)
    p.wait(timeout=10)


def status_field(pid, name):
    with open("/proc/%d/status" % pid) as f:
        for ln in f:
            if ln.startswith(name + ":"):
                return ln.split(None, 1)[1].strip()
    return None


def check_untouched(pid, tracer=0, blocked="0000000000000000"):
    """A task a failed dump must have left as it was: running or sleeping, traced by
    @tracer only (0: nobody), its blocked mask @blocked."""
    st = proc_stat(pid)
    if st is None or st[0] not in ("S", "R", "t"):
        raise Failure("pid %d was disturbed by the failed dump (state %s)" % (pid, st))
    tr = int(status_field(pid, "TracerPid"))
    if tr != tracer:
        raise Failure("pid %d is traced by %d after the failed dump (expected %d)" % (
            pid, tr, tracer))
    blk = status_field(pid, "SigBlk")
    if blk != blocked:
        raise Failure("pid %d has blocked signals %s after the failed dump (was %s)" % (
            pid, blk, blocked))


def mount_tmpfs(c, name, opts):
    """A tmpfs mounted (with @opts) on a fresh TMP/@name: its path; Skip if impossible."""
    mnt = os.path.join(c.tmp, name)
    os.mkdir(mnt)
    rc, _, err = run_cmd(["mount", "-t", "tmpfs", "-o", opts, "tmpfs", mnt], c.timeout)
    if rc != 0:
        raise Skip("cannot mount a tmpfs (%s): %s" % (opts, err.strip()[:200]))
    return mnt


def umount(c, mnt):
    run_cmd(["umount", "-l", mnt], c.timeout)


def expect_storage_failure(c, mnt, mib, errtext):
    """A dump of a @mib MiB process into @mnt/img must fail with one line naming the
    directory and @errtext, leave the process as it was and nothing in @mnt."""
    p = start_mem(c, mib, os.path.basename(mnt))
    try:
        before = status_field(p.pid, "SigBlk")
        img = os.path.join(mnt, "img")
        line = c.expect_failure([c.stasis, "dump", "-t", str(p.pid), "-D", img],
                                "dump into %s" % img, allowed=(p.pid,))
        if img not in line or errtext not in line:
            raise Failure("the error does not name %s and %r: %s" % (img, errtext, line))
        check_untouched(p.pid, blocked=before)
        left = os.listdir(mnt)
        if left:
            raise Failure("the failed dump left %s in %s" % (left, mnt))
        return line
    finally:
        stop(p)


def start_restore(c, img, pidfile, log):
    """`stasis restore -D IMG -d --pidfile PIDFILE -v -o LOG` in the background."""
    argv = [c.stasis, "restore", "-D", img, "-d", "--pidfile", pidfile, "-v", "-o", log]
    return subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True, errors="replace", cwd=c.tmp)


def wait_mapped(c, p, name):
    """True once the running stasis @p maps a file whose path ends with /@name; False if
    it ended first."""
    deadline = time.monotonic() + c.timeout
    while time.monotonic() < deadline and p.poll() is None:
        try:
            with open("/proc/%d/maps" % p.pid) as f:
                if any(ln.rstrip("\n").endswith("/" + name) for ln in f):
                    return True
        except OSError:
            pass
        time.sleep(0.001)
    return False
