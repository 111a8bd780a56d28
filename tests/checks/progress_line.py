# stasis-check: timeout=90
"""The progress line of long dumps and restores. A process with 384 MiB of data is dumped
and restored with stderr on a file: nothing is written there (not a terminal). Again
with STASIS_PROGRESS=1 (on from the start, as on a terminal after half a second): stderr
holds only progress lines, "\\rstasis dump: DONE / TOTAL MiB, RATE MiB/s" + erase to the
end of line, DONE never decreasing nor past TOTAL, TOTAL covering the 384 MiB, and ends
by erasing the line; the same for the restore. The restored process still holds its
data (it checks it)."""
import os
import re
import subprocess
import sys
import time

from lib.proc import Failure, kill_pid, wait_pid

PROG = r"""
import hashlib, mmap, sys, time
m = mmap.mmap(-1, 384 << 20, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)
for i in range(0, 384 << 20, 1 << 20):
    m[i:i + (1 << 20)] = hashlib.sha256(b"%d" % i).digest() * (1 << 15)
want = hashlib.sha256(m).hexdigest()
sys.stdout.write("ready\n"); sys.stdout.flush()
while True:
    time.sleep(0.2)
    if hashlib.sha256(m).hexdigest() != want:
        open(sys.argv[1], "w").write("changed\n")
        break
    open(sys.argv[1] + ".tmp", "w").write("same\n")
    import os; os.rename(sys.argv[1] + ".tmp", sys.argv[1])
"""

LINE = re.compile(r"\rstasis (dump|restore): (\d+) / (\d+) MiB, (\d+) MiB/s\x1b\[K")


def lines(err, what):
    """The progress lines of @err (all of it): (done, total) in order."""
    rest = LINE.sub("", err)
    if rest != "\r\x1b[K":
        raise Failure("%s: stderr holds more than progress lines: %r" % (what, rest[:200]))
    got = [(m.group(1), int(m.group(2)), int(m.group(3))) for m in LINE.finditer(err)]
    if not got:
        raise Failure("%s: no progress line" % what)
    prev = 0
    for kind, done, total in got:
        if kind != what or done < prev or done > total or total < 384:
            raise Failure("%s: progress line %s %d / %d MiB after %d" % (what, kind, done,
                                                                         total, prev))
        prev = done
    return got


def run(c, argv, progress):
    env = dict(os.environ)
    env.pop("STASIS_PROGRESS", None)
    if progress:
        env["STASIS_PROGRESS"] = "1"
    errf = os.path.join(c.tmp, "progress.err")
    with open(errf, "w") as e:
        r = subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                           stderr=e, env=env, timeout=c.timeout)
    err = open(errf, errors="replace", newline="").read()
    if r.returncode != 0:
        raise Failure("%s failed: %s" % (argv[1], err.strip()[-300:]))
    return err


def cycle(c, img, progress):
    state = os.path.join(c.tmp, "progress.state")
    p = subprocess.Popen([sys.executable, "-c", PROG, state], stdin=subprocess.DEVNULL,
                         stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    pid = p.pid
    try:
        if p.stdout.readline() != b"ready\n":
            raise Failure("the process did not start")
        d = run(c, [c.stasis, "dump", "-t", str(pid), "-D", img], progress)
        p.wait(timeout=10)
        r = run(c, c.restore_argv(img), progress)
        deadline = time.monotonic() + 10
        os.path.exists(state) and os.unlink(state)
        while not os.path.exists(state) and time.monotonic() < deadline:
            time.sleep(0.05)
        if not os.path.exists(state) or open(state).read() != "same\n":
            raise Failure("the restored process does not hold its data")
        return d, r
    finally:
        kill_pid(pid)
        wait_pid(pid, time.monotonic() + 5)


def check(c):
    d, r = cycle(c, os.path.join(c.tmp, "progress-plain"), False)
    if d or r:
        raise Failure("stderr not a terminal, yet: dump %r, restore %r" % (d[:100], r[:100]))
    d, r = cycle(c, os.path.join(c.tmp, "progress-on"), True)
    dl, rl = lines(d, "dump"), lines(r, "restore")
    return "dump: %d lines, last %d / %d MiB; restore: %d lines, last %d / %d MiB" % (
        len(dl), dl[-1][1], dl[-1][2], len(rl), rl[-1][1], rl[-1][2])
