# stasis-check: timeout=30
"""The state comparison (tests/lib/statecmp.py) can fail: a helper process (python, an
open file, a dup of it, a mapping) is snapshotted twice with nothing changed (no
difference at all), then each of its state changes between a snapshot and the comparison
must be reported, naming the field and the task, and not be in the allow-list: a file
offset (lseek), the blocked signal mask, a mapping's protection (mprotect), its comm
(PR_SET_NAME), a new fd, a closed dup (the shared open file gone), a flock (/proc/locks),
an inotify watch and its mask, and from outside its nice value, oom_score_adj, a limit
(prlimit) and its CPU affinity.
No stasis involved: the comparison's own test."""
import os
import resource
import subprocess
import sys
import time

from lib import statecmp
from lib.proc import Failure, kill_pid, wait_pid
from lib.statecmp_allow import ALLOW

CHILD = r"""
import ctypes, fcntl, mmap, os, signal, sys
libc = ctypes.CDLL(None, use_errno=True)
f = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT, 0o600)
os.write(f, b"x" * 8192)
os.lseek(f, 100, 0)
d = os.dup(f)
m = mmap.mmap(-1, 3 * 4096)
addr = ctypes.addressof(ctypes.c_char.from_buffer(m))
extra = []
print("ready", flush=True)
for line in sys.stdin:
    cmd = line.strip()
    if cmd == "seek":
        os.lseek(f, 4000, 0)
    elif cmd == "block":
        signal.pthread_sigmask(signal.SIG_BLOCK, [signal.SIGUSR1])
    elif cmd == "mprotect":
        libc.mprotect(ctypes.c_void_p(addr + 4096), ctypes.c_size_t(4096), 1)
    elif cmd == "comm":
        libc.prctl(15, b"statecmp-new", 0, 0, 0)
    elif cmd == "open":
        extra.append(os.open("/dev/null", os.O_RDONLY))
    elif cmd == "close-dup":
        os.close(d)
    elif cmd == "inotify":
        ino = libc.inotify_init1(0)
        libc.inotify_add_watch(ino, sys.argv[1].encode(), 0x2)
        extra.append(ino)
    elif cmd == "inotify-mask":
        libc.inotify_add_watch(extra[-1], sys.argv[1].encode(), 0x2 | 0x4)
    elif cmd == "flock":
        fcntl.lockf(f, fcntl.LOCK_EX)
    print("done", flush=True)
"""


def check(c):
    path = os.path.join(c.tmp, "statecmp-detects.dat")
    p = subprocess.Popen([sys.executable, "-c", CHILD, path], stdin=subprocess.PIPE,
                         stdout=subprocess.PIPE, text=True)
    seen = []
    try:
        if p.stdout.readline().strip() != "ready":
            raise Failure("the helper did not start")
        pid = p.pid
        a = statecmp.snapshot(pid)
        b = statecmp.snapshot(pid)
        same = statecmp.compare(a, b, ALLOW, {})
        if same:
            raise Failure("two snapshots of an idle task differ: %s" %
                          "; ".join(statecmp.describe(d) for d in same[:5]))

        def inside(cmd):
            p.stdin.write(cmd + "\n")
            p.stdin.flush()
            if p.stdout.readline().strip() != "done":
                raise Failure("the helper did not do %s" % cmd)

        cases = [
            ("seek", lambda: inside("seek"), "fdinfo.pos"),
            ("block", lambda: inside("block"), "status.SigBlk"),
            ("mprotect", lambda: inside("mprotect"), "maps.prot"),
            ("comm", lambda: inside("comm"), "comm"),
            ("open", lambda: inside("open"), "fd"),
            ("close-dup", lambda: inside("close-dup"), "fd"),
            ("flock", lambda: inside("flock"), "locks"),
            ("inotify", lambda: inside("inotify"), "fd"),
            ("inotify-mask", lambda: inside("inotify-mask"), "fdinfo.inotify"),
            ("renice", lambda: os.setpriority(os.PRIO_PROCESS, pid, 7), "stat.nice"),
            ("oom_score_adj", lambda: open("/proc/%d/oom_score_adj" % pid, "w").write("123"),
             "oom_score_adj"),
            ("prlimit", lambda: resource.prlimit(pid, resource.RLIMIT_NOFILE, (64, 64)),
             "limits"),
        ]
        if len(os.sched_getaffinity(0)) > 1:
            one = {min(os.sched_getaffinity(0))}
            cases.append(("taskset", lambda: os.sched_setaffinity(pid, one),
                          "status.Cpus_allowed"))
        for name, change, field in cases:
            before = statecmp.snapshot(pid)
            change()
            diffs = statecmp.compare(before, statecmp.snapshot(pid), ALLOW, {})
            hits = [d for d in diffs if d[1] == field and d[0] == "pid %d" % pid or
                    (d[1] == field and d[0] == "tree")]
            if not hits:
                raise Failure("%s: no difference in %s reported (got: %s)" % (
                    name, field, "; ".join(statecmp.describe(d) for d in diffs) or "none"))
            if any(d[5] is not None for d in hits):
                raise Failure("%s: the difference in %s is allowed: %s" % (
                    name, field, hits[0][5]["reason"]))
            seen.append(statecmp.describe(hits[0], width=40))
    finally:
        kill_pid(p.pid)
        wait_pid(p.pid, time.monotonic() + 10)
        p.stdin.close()
        p.stdout.close()
    return "%d changes reported, e.g. %s" % (len(seen), seen[1])
