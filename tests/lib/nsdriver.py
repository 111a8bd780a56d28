"""What the checks' drivers share: the programs a check runs with `python3 -c` inside a
network namespace of its own (`unshare --net`), which import this module from the
directory the check passes them (tests/lib). Standard library only."""
import ctypes
import os
import signal
import time


def subreaper():
    """Orphans of the driver's trees come back to it (PR_SET_CHILD_SUBREAPER)."""
    ctypes.CDLL(None, use_errno=True).prctl(36, 1, 0, 0, 0)


def descendants(p):
    """Every descendant of @p, by /proc/PID/task/TID/children."""
    r = []
    try:
        for t in os.listdir("/proc/%d/task" % p):
            with open("/proc/%d/task/%s/children" % (p, t)) as f:
                for c in f.read().split():
                    r += [int(c)] + descendants(int(c))
    except OSError:
        pass
    return r


def reap(kill, secs=10):
    """Wait (@secs at most) until the driver has no descendant left, reaping; with @kill,
    killing them by their pids first."""
    deadline = time.monotonic() + secs
    while time.monotonic() < deadline:
        left = descendants(os.getpid())
        if not left:
            return
        for c in left if kill else ():
            try:
                os.kill(c, signal.SIGKILL)
            except OSError:
                pass
        try:
            while os.waitpid(-1, os.WNOHANG)[0] > 0:
                pass
        except ChildProcessError:
            pass
        time.sleep(0.01)
