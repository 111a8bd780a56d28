# stasis-check: timeout=90
"""Python's multiprocessing (fork start method) checkpointed with its workers: three
worker processes take numbers from a Queue and put back their SHA-256, updating a shared
Value and Array under a Lock. The queues' locks and semaphores are POSIX semaphores made
with sem_open and unlinked at once (deleted files in /dev/shm, mapped shared by every
process, no fd left); Value and Array live in a deleted arena file. The parent checks
every round (the answers, the counter, the array's sum) and logs it. After the restore
the rounds go on, every one right. Before the deleted files were made once per tree at
restore, each process got a copy of its own: the semaphores were no longer shared and a
worker died with "semaphore or lock released too many times"."""
import os
import subprocess
import sys
import time

from lib.proc import Failure, Skip, in_rootless_container, kill_pid, pid_alive, \
    proc_children, reap_all, run_cmd

WORKLOAD = r"""
import hashlib, multiprocessing as mp, sys, time
def worker(q, r, arr, cnt, lock):
    while True:
        x = q.get()
        if x is None:
            return
        with lock:
            cnt.value += 1
            arr[x % len(arr)] += x
        r.put((x, hashlib.sha256(str(x).encode()).hexdigest()))
if __name__ == "__main__":
    mp.set_start_method("fork")
    out = open(sys.argv[1], "a", buffering=1)
    q, r = mp.Queue(), mp.Queue()
    arr, cnt, lock = mp.Array("q", 64), mp.Value("q", 0), mp.Lock()
    ps = [mp.Process(target=worker, args=(q, r, arr, cnt, lock)) for _ in range(3)]
    for p in ps:
        p.start()
    n = 0
    while True:
        for i in range(50):
            q.put(n + i)
        got = sorted(r.get(timeout=10) for _ in range(50))
        ok = [x for x, _ in got] == list(range(n, n + 50)) and \
            all(h == hashlib.sha256(str(x).encode()).hexdigest() for x, h in got)
        n += 50
        good = ok and cnt.value == n and sum(arr) == sum(range(n))
        out.write("%d %s\n" % (n, "ok" if good else "BAD cnt=%d" % cnt.value))
        time.sleep(0.01)
"""


def rounds(path, since, until, deadline):
    """The workload's lines after the first @since until its count reaches @until (or the
    deadline)."""
    while True:
        try:
            with open(path) as f:
                lines = [ln.strip() for ln in f if ln.endswith("\n")][since:]
        except OSError:
            lines = []
        if (lines and int(lines[-1].split()[0]) >= until) or time.monotonic() > deadline:
            return lines
        time.sleep(0.05)


def check(c):
    if in_rootless_container():
        raise Skip("known rootless limitation: reading a mapped deleted file through "
                   "/proc/PID/map_files needs CAP_CHECKPOINT_RESTORE in the initial user "
                   "namespace (the dump is refused with that line)")
    log = os.path.join(c.tmp, "mp-rounds")
    p = subprocess.Popen([sys.executable, "-c", WORKLOAD, log], stdin=subprocess.DEVNULL,
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                         start_new_session=True)
    pid = p.pid
    try:
        got = rounds(log, 0, 500, time.monotonic() + c.timeout / 3)
        if not got or int(got[-1].split()[0]) < 500 or any("ok" not in ln for ln in got):
            raise Failure("the workload before the dump: %s" % got[-3:])
        workers = proc_children(pid)
        img = os.path.join(c.tmp, "mp-img")
        rc, _, err = run_cmd([c.stasis, "dump", "-t", str(pid), "-D", img, "-v", "-o",
                              os.path.join(c.tmp, "mp-dump.log")], c.timeout / 3)
        if rc != 0:
            raise Failure("dump failed: %s" % err.strip()[-300:])
        p.wait(timeout=10)
        reap_all()
        rc, _, err = run_cmd([c.stasis, "restore", "-D", img, "-d", "-v", "-o",
                              os.path.join(c.tmp, "mp-restore.log")], c.timeout / 3)
        if rc != 0:
            raise Failure("restore failed: %s" % err.strip()[-300:])
        at = int(got[-1].split()[0])
        after = rounds(log, len(got), at + 1500, time.monotonic() + c.timeout / 3)
        bad = [ln for ln in after if "ok" not in ln]
        if bad or not after or int(after[-1].split()[0]) < at + 1500:
            raise Failure("after the restore: %s" % ((bad or after)[-3:] or "no round"))
        gone = [w for w in workers if not pid_alive(w)]
        if gone:
            raise Failure("workers died after the restore: %s" % gone)
        return "3 workers sharing queues, a lock and a Value/Array through deleted files: " \
            "%d rounds right after the restore" % ((int(after[-1].split()[0]) - at) // 50)
    finally:
        for w in proc_children(pid):
            kill_pid(w)
        if pid_alive(pid):
            kill_pid(pid)
        if p.poll() is None:
            p.kill()
        p.wait(timeout=10)
        reap_all()
