# stasis-check: timeout=90
"""The real fio (Debian's) doing random reads and writes through its io_uring engine
(iodepth 8: a single-issuer ring with deferred task work, writes handed to io workers,
so requests are in flight at any moment), in an IPC namespace of its own (fio keeps its
job state in a SysV segment marked for removal). Dumped mid-run (the dump waits for the
requests in flight to complete and posts their CQEs), restored: the restored job's ring
goes on (its SQ head moves past where it was) and fio ends its timed run with no error,
reads and writes done."""
import json
import os
import shutil
import subprocess
import time

from lib.proc import Failure, Skip, kill_pid, pid_alive, reap_all, run_cmd, wait_pid


def uring_of(pid):
    """(fd, SqHead) of pid's first io_uring, or None. (The kernel prints a ring's part of
    fdinfo only when it gets the ring's lock at once: a busy ring's may be missing.)"""
    for _ in range(200):
        got = uring_once(pid)
        if got != "busy":
            return got
        time.sleep(0.005)
    return None


def uring_once(pid):
    try:
        fds = os.listdir("/proc/%d/fd" % pid)
    except OSError:
        return None
    for fd in sorted(fds, key=int):
        try:
            if os.readlink("/proc/%d/fd/%s" % (pid, fd)) != "anon_inode:[io_uring]":
                continue
            with open("/proc/%d/fdinfo/%s" % (pid, fd)) as f:
                for line in f:
                    if line.startswith("SqHead:"):
                        return fd, int(line.split()[1])
            return "busy"
        except OSError:
            continue
    return None


def children_of(pid):
    try:
        with open("/proc/%d/task/%d/children" % (pid, pid)) as f:
            return [int(x) for x in f.read().split()]
    except OSError:
        return []


def check(c):
    fio = shutil.which("fio")
    unshare = shutil.which("unshare")
    if not fio or not unshare:
        raise Skip("no fio (scripts/deps.sh installs it)")
    d = os.path.join(c.tmp, "fio-uring")
    os.makedirs(d)
    out = os.path.join(d, "fio.json")
    argv = [unshare, "--ipc", fio, "--name=uring", "--ioengine=io_uring",
            "--filename=" + os.path.join(d, "data"), "--size=8m", "--rw=randrw", "--bs=4k",
            "--iodepth=8", "--time_based", "--runtime=8", "--output-format=json",
            "--output=" + out]
    proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            stderr=open(os.path.join(d, "fio.err"), "w"))
    pid, restored, job = proc.pid, False, None
    try:
        deadline = time.monotonic() + 20
        while job is None:
            if proc.poll() is not None or time.monotonic() > deadline:
                raise Failure("fio's job never made an io_uring (exit %s)" % proc.poll())
            for ch in children_of(pid):
                if uring_of(ch):
                    job = ch
            time.sleep(0.05)
        time.sleep(1)
        before = uring_of(job)
        if before is None:
            with open(os.path.join(d, "fio.err")) as f:
                raise Failure("fio's job %d lost its io_uring before the dump (exit %s): %s" % (
                    job, proc.poll(), f.read()[-300:]))
        img = os.path.join(d, "img")
        rc, _, err = run_cmd([c.stasis, "dump", "-t", str(pid), "-D", img, "-o",
                              os.path.join(d, "dump.log"), "-v"], c.timeout)
        if rc != 0:
            raise Failure("dump: %s" % err.strip()[-300:])
        proc.wait(timeout=10)
        gone = time.monotonic() + 10
        while os.path.exists("/proc/%d" % job) and time.monotonic() < gone:
            reap_all()  # the job, reparented to the runner once fio was killed
            time.sleep(0.01)
        rc, _, err = run_cmd([c.stasis, "restore", "-D", img, "-d", "-o",
                              os.path.join(d, "restore.log"), "-v"], c.timeout)
        if rc != 0:
            raise Failure("restore: %s" % err.strip()[-300:])
        restored = True
        after = uring_of(job)
        if not after or after[1] < before[1]:
            raise Failure("the restored job's ring: %s (before the dump %s)" % (after, before))
        time.sleep(0.5)
        moved = uring_of(job)
        if not moved or moved[1] <= after[1]:
            raise Failure("the restored job's ring takes no more requests: SqHead %s, then %s"
                          % (after, moved))
        if wait_pid(pid, time.monotonic() + 30) is None:
            raise Failure("fio did not finish its run after the restore")
        restored = False
        try:
            with open(out) as f:
                text = f.read()
            res = json.loads(text[text.index("{"):])["jobs"][0]
        except (OSError, ValueError, KeyError, IndexError) as e:
            raise Failure("fio's result: %s" % e)
        if res.get("error") or not res["read"]["io_bytes"] or not res["write"]["io_bytes"]:
            raise Failure("fio ended with error %s, %s bytes read, %s written" % (
                res.get("error"), res["read"]["io_bytes"], res["write"]["io_bytes"]))
        return "ring SqHead %d at the dump, %d half a second after the restore; fio: " \
            "%d MiB read, %d MiB written, no error" % (
                after[1], moved[1], res["read"]["io_bytes"] >> 20,
                res["write"]["io_bytes"] >> 20)
    finally:
        if proc.poll() is None:
            kill_pid(pid)
            proc.wait(timeout=10)
        if restored or pid_alive(pid):
            for ch in children_of(pid):
                kill_pid(ch)
            kill_pid(pid)
            wait_pid(pid, time.monotonic() + 5)
