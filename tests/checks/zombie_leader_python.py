# stasis-check: timeout=40
"""Python whose main thread exited (the raw exit syscall, status 5) while a thread of it
runs on, appending a tick to a file (a zombie thread-group leader, the process read
through its live thread): dumped, restored with -d, the leader is a zombie again with
the same exit code, the same thread ids are listed and the thread goes on ticking; the
same once more with the process stopped (SIGSTOP) at the dump: restored stopped, the
leader's own exit code kept, ticking again after SIGCONT. Then
the same shape with a child, forked by the thread, that set a parent-death signal: the
restored main thread would fork the child and exit, sending it that signal, so the dump
must refuse with one line naming it and leave the tree running."""
import os
import signal
import subprocess
import sys
import time

from lib.proc import Failure, kill_pid, proc_stat, run_cmd, wait_pid

PROG = r"""
import ctypes, os, sys, threading, time
libc = ctypes.CDLL(None)
tick = sys.argv[1]
def run():
    if sys.argv[2] == "pdeath" and os.fork() == 0:  # forked by this thread
        libc.prctl(1, 10)  # PR_SET_PDEATHSIG, SIGUSR1
        while True:
            time.sleep(0.05)
    n = 0
    while True:
        n += 1
        with open(tick, "a") as f:
            f.write("%d\n" % n)
        time.sleep(0.02)
threading.Thread(target=run, daemon=True).start()
time.sleep(0.1)
libc.syscall(60, 5)  # SYS_exit: the main thread only
"""


def leader_facts(pid):
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return fields[0], int(fields[-1]), sorted(os.listdir("/proc/%d/task" % pid))


def start(c, tick, mode):
    # (its output to nothing: a pipe to us would be restored as stasis's own)
    p = subprocess.Popen([sys.executable, "-c", PROG, tick, mode], stdin=subprocess.DEVNULL,
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 10
    while leader_facts(p.pid)[0] != "Z" and time.monotonic() < deadline:
        time.sleep(0.02)
    return p


def ticks(tick):
    with open(tick) as f:
        return len(f.read().split())


def ticking(tick, more, when):
    n = ticks(tick)
    deadline = time.monotonic() + 10
    while ticks(tick) < n + more and time.monotonic() < deadline:
        time.sleep(0.02)
    if ticks(tick) < n + more:
        raise Failure("the thread does not tick %s" % when)


def thread_facts(pid):
    """(state of each thread, the leader's own exit code: its task's stat, which a
    stopped process does not hide behind the stop signal). A thread that runs on is
    running or sleeping as the moment falls (it writes, then sleeps 20 ms): both 'S'."""
    states = []
    for t in sorted(os.listdir("/proc/%d/task" % pid)):
        with open("/proc/%d/task/%s/stat" % (pid, t)) as f:
            fields = f.read().rsplit(")", 1)[1].split()
        states.append("S" if fields[0] in ("R", "S", "D") else fields[0])
        if t == str(pid):
            code = int(fields[-1])
    return states, code


def dump_restore(c, p, tick, img, stopped):
    if stopped:
        os.kill(p.pid, signal.SIGSTOP)
        deadline = time.monotonic() + 10
        while "T" not in thread_facts(p.pid)[0] and time.monotonic() < deadline:
            time.sleep(0.02)
    before = leader_facts(p.pid), thread_facts(p.pid)
    if before[0][0] != "Z" or before[1][1] != 5 << 8 or len(before[0][2]) != 2:
        raise Failure("not a zombie leader with one thread: %r" % (before,))
    rc, _, err = run_cmd([c.stasis, "dump", "-t", str(p.pid), "-D", img], c.timeout)
    if rc != 0:
        raise Failure("dump failed: %s" % err.strip()[:300])
    if wait_pid(p.pid, time.monotonic() + 10) is None:
        raise Failure("the original was not killed by the dump")
    rc, _, err = run_cmd(c.restore_argv(img), c.timeout)
    if rc != 0:
        raise Failure("restore failed: %s" % err.strip()[:300])
    after = leader_facts(p.pid), thread_facts(p.pid)
    if after != before:
        raise Failure("after the restore%s: %r, was %r" % (" (stopped)" if stopped else "",
                                                          after, before))
    if stopped:
        os.kill(p.pid, signal.SIGCONT)
    ticking(tick, 5, "after the restore")
    return before


def check(c):
    tick = os.path.join(c.tmp, "zl.tick")
    for stopped in (False, True):
        p = start(c, tick, "plain")
        try:
            before = dump_restore(c, p, tick, os.path.join(c.tmp, "zl-img%d" % stopped),
                                  stopped)
        finally:
            kill_pid(p.pid)
            wait_pid(p.pid, time.monotonic() + 5)
    p = start(c, tick, "pdeath")
    kids = []
    try:
        for t in os.listdir("/proc/%d/task" % p.pid):
            with open("/proc/%d/task/%s/children" % (p.pid, t)) as f:
                kids += [int(k) for k in f.read().split()]
        err = c.expect_failure([c.stasis, "dump", "-t", str(p.pid), "-D",
                                os.path.join(c.tmp, "zl-img2")],
                               "dump of a zombie leader's child with a parent-death signal",
                               allowed=[p.pid] + kids)
        if "parent-death signal" not in err or "zombie thread-group leader" not in err:
            raise Failure("the error does not say what is refused: %r" % err)
        if leader_facts(p.pid)[0] != "Z" or not kids or proc_stat(kids[0]) is None:
            raise Failure("the tree is not as it was after the failed dump")
        ticking(tick, 3, "after the failed dump")
        return "restored as a zombie leader, running and stopped (exit code %d, threads %s); " \
            "the child with a parent-death signal refused: %s" % (
                before[1][1], before[0][2], err.strip()[:160])
    finally:
        for k in kids:
            kill_pid(k)
        kill_pid(p.pid)
        wait_pid(p.pid, time.monotonic() + 5)
