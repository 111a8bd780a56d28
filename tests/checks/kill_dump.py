# stasis-check: timeout=150
"""kill -9 of stasis never harms the dumped tree (issue 15): kill_survive (threads in a
blocked read, a nanosleep loop and a register-checking loop, each with its own mask and
altstack; the main thread in sigsuspend with a pending signal) is dumped with
`--leave-running` and stasis is SIGKILLed after a seeded random delay spread over the
whole dump (three complete dumps first measure how long one takes), ITERATIONS times within
BUDGET seconds. After each kill the task must be alive, every thread untraced
(TracerPid 0) and not stopped, with the blocked mask it had before the dump; its SIGTERM
check must PASS (masks, altstacks, registers, the restarted syscalls, the pending
signal, its memory); the images directory must be absent or complete, and a complete
one must restore (and PASS). The seed is STASIS_KILL_SEED if set, else fixed; a failure
names the iteration, the delay and the seed to replay it."""
import os
import random
import shutil
import signal
import subprocess
import time

from lib.proc import Failure, kill_pid, pid_alive, reap_all

TEST = "kill_survive"
ITERATIONS = 30
BUDGET = 60.0
DEFAULT_SEED = 15


def task_status(pid):
    """{tid: {field: value}} of every thread of @pid from /proc/PID/task/TID/status."""
    out = {}
    for tid in os.listdir("/proc/%d/task" % pid):
        try:
            with open("/proc/%d/task/%s/status" % (pid, tid)) as f:
                out[int(tid)] = dict(ln.rstrip("\n").split(":\t", 1) for ln in f if ":\t" in ln)
        except OSError:
            pass
    return out


def check_untouched(run, before, what):
    """The task runs on as it was: alive, untraced, not stopped, same blocked masks."""
    deadline = time.monotonic() + 2.0
    while True:
        if run.proc.poll() is not None:
            raise Failure("%s: the task died (%s)" % (what, run.proc.returncode))
        now = task_status(run.pid)
        bad = []
        if set(now) != set(before):
            bad.append("threads %s, were %s" % (sorted(now), sorted(before)))
        for tid, st in now.items():
            if st.get("TracerPid") != "0":
                bad.append("thread %d traced by %s" % (tid, st.get("TracerPid")))
            if st.get("State", "")[:1] in ("t", "T"):
                bad.append("thread %d is stopped (%s)" % (tid, st.get("State")))
            if tid in before and st.get("SigBlk") != before[tid].get("SigBlk"):
                bad.append("thread %d blocked mask %s, was %s" % (
                    tid, st.get("SigBlk"), before[tid].get("SigBlk")))
        if not bad:
            return
        if time.monotonic() >= deadline:
            raise Failure("%s: %s" % (what, "; ".join(bad)))
        time.sleep(0.02)


def images_complete(img):
    """False if @img is absent or empty; True if it holds a complete image set."""
    if not os.path.exists(img) or not os.listdir(img):
        return False
    if not os.path.exists(os.path.join(img, "inventory.img")):
        raise Failure("incomplete images in %s: %s" % (img, " ".join(sorted(os.listdir(img)))))
    return True


def one(c, delay, what):
    """One dump of a fresh kill_survive, stasis killed after @delay seconds (None: not
    killed). Returns (seconds the dump ran, whether it was killed, restored)."""
    run = c.start_test(TEST)
    try:
        before = task_status(run.pid)
        log = os.path.join(run.tmp, "dump.log")
        err = open(os.path.join(run.tmp, "dump.stderr"), "w")
        argv = [c.stasis, "dump", "-t", str(run.pid), "-D", run.img, "--no-sync",
                "--leave-running", "-v", "-o", log]
        t0 = time.monotonic()
        p = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=err, stderr=err)
        err.close()
        killed = False
        try:
            p.wait(timeout=delay if delay is not None else c.timeout)
        except subprocess.TimeoutExpired:
            if delay is None:
                p.kill()
                p.wait()
                raise Failure("%s: the dump timed out" % what) from None
            p.send_signal(signal.SIGKILL)
            p.wait()
            killed = p.returncode == -signal.SIGKILL
        took = time.monotonic() - t0
        if not killed and p.returncode != 0:
            raise Failure("%s: the dump failed (exit %s), see %s" % (what, p.returncode, log))
        check_untouched(run, before, what)
        complete = images_complete(run.img)
        if delay is None and not complete:
            raise Failure("%s: a complete dump left no images" % what)
        try:
            run.finish_original(0)
        except Failure as e:
            raise Failure("%s: the original after the dump: %s" % (what, e)) from None
        if complete:
            run.reset_status()
            try:
                run.restore_detached()
                run.finish_restored(0)
            except Failure as e:
                raise Failure("%s: the images it left: %s" % (what, e)) from None
        return took, killed, complete
    finally:
        run.cleanup()
        if run.pid and pid_alive(run.pid):
            kill_pid(run.pid)
        reap_all()
        # (the temporary directory a killed dump leaves beside run.img goes with run.tmp)
        shutil.rmtree(run.tmp, ignore_errors=True)


def check(c):
    seed = int(os.environ.get("STASIS_KILL_SEED") or DEFAULT_SEED)
    rng = random.Random(seed)
    # the length of a whole dump here: the median of three (the first is often slow)
    full = sorted(one(c, None, "complete dump %d" % k)[0] for k in range(3))[1]
    start = time.monotonic()
    kills = restored = n = 0
    for n in range(1, ITERATIONS + 1):
        delay = rng.uniform(0.0, full * 1.1)
        _, killed, complete = one(c, delay, "iteration %d (delay %.1f ms, seed %d)" % (
            n, delay * 1000, seed))
        kills += killed
        restored += complete
        if time.monotonic() - start > BUDGET:
            break
    return "%d dumps (a whole one took %.0f ms), %d killed, every task intact; %d left " \
        "complete images that restored (seed %d)" % (n, full * 1000, kills, restored, seed)
