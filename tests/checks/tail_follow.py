# stasis-check: timeout=60
"""The real `tail -f` (coreutils follows a file with inotify) on a log that grows across
the checkpoint: dumped while it waits for more, a line appended while it is not running,
restored; the restored tail has an inotify watch again (an `inotify wd:` line in
/proc/PID/fdinfo, nothing needed but /proc) and lines appended after the restore show up
in its output at once (with inotify; polling would take a second), the one appended
meanwhile first."""
import os
import shutil
import subprocess
import time

from lib.proc import Failure, Skip, kill_pid, run_cmd, wait_pid


def wait_output(path, want, deadline):
    """Waits until the file @path ends with @want; the time it took."""
    start = time.monotonic()
    while True:
        with open(path) as f:
            if f.read().endswith(want):
                return time.monotonic() - start
        if time.monotonic() > deadline:
            with open(path) as f:
                raise Failure("tail's output does not end with %r: %r" % (want, f.read()[-200:]))
        time.sleep(0.005)


def append(path, text):
    with open(path, "a") as f:
        f.write(text)


def inotify_lines(pid):
    out = []
    for fd in os.listdir("/proc/%d/fdinfo" % pid):
        try:
            with open("/proc/%d/fdinfo/%s" % (pid, fd)) as f:
                out += [l for l in f.read().splitlines() if l.startswith("inotify wd:")]
        except OSError:
            pass
    return out


def check(c):
    tail = shutil.which("tail")
    if not tail:
        raise Skip("no tail")
    log = os.path.join(c.tmp, "tail-follow.log")
    out = os.path.join(c.tmp, "tail-follow.out")
    img = os.path.join(c.tmp, "tail-follow")
    with open(log, "w") as f:
        f.write("".join("line %d\n" % i for i in range(100)))
    proc = subprocess.Popen([tail, "-n", "+1", "-f", log], stdin=subprocess.DEVNULL,
                            stdout=open(out, "w"),
                            stderr=open(os.path.join(c.tmp, "tail-follow.err"), "w"))
    pid, restored = proc.pid, False
    try:
        deadline = time.monotonic() + c.timeout
        wait_output(out, "line 99\n", deadline)
        append(log, "before the dump\n")
        wait_output(out, "before the dump\n", deadline)
        before = inotify_lines(pid)
        if not before:
            raise Skip("this tail does not use inotify")
        time.sleep(0.2)  # in its read() of the inotify fd again
        rc, _, err = run_cmd([c.stasis, "dump", "-t", str(pid), "-D", img, "--no-sync"],
                             c.timeout)
        if rc != 0:
            raise Failure("dump failed: %s" % err.strip()[:300])
        proc.wait(timeout=10)
        append(log, "while dumped\n")
        rc, _, err = run_cmd(c.restore_argv(img), c.timeout)
        if rc != 0:
            raise Failure("restore failed: %s" % err.strip()[:300])
        restored = True
        after = inotify_lines(pid)
        if after != before:
            raise Failure("the restored tail's inotify watches %s, before the dump %s" % (
                after, before))
        lat = []
        for i in range(5):
            append(log, "after the restore %d\n" % i)
            lat.append(wait_output(out, "after the restore %d\n" % i, deadline))
            time.sleep(0.05)
        with open(out) as f:
            text = f.read()
        if not text.endswith("before the dump\nwhile dumped\nafter the restore 0\n"
                             "after the restore 1\nafter the restore 2\n"
                             "after the restore 3\nafter the restore 4\n"):
            raise Failure("tail's output after the restore: %r" % text[-200:])
        if max(lat) > 0.5:
            raise Failure("lines took up to %.2f s to show up after the restore (polling?)" %
                          max(lat))
        return "watch %s kept; lines shown within %.1f ms after the restore" % (
            after[0].split()[1], max(lat) * 1000)
    finally:
        if proc.poll() is None:
            kill_pid(pid)
            proc.wait(timeout=10)
        if restored:
            kill_pid(pid)
            wait_pid(pid, time.monotonic() + 5)
