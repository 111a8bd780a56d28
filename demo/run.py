#!/usr/bin/env python3
"""The stasis demo: checkpoint a running counter, show it is gone, restore it, and show
the count carrying on from where it stopped, with the same pid.

Run from the repository root after `make` (./demo.sh does all of it):
    python3 demo/run.py [--stasis build/stasis] [--counter build/demo/counter]

The counter runs under this script, which makes itself a child subreaper, so the
restored task (`restore -d` hands it to the nearest subreaper) is reaped here at once.
"""
import argparse
import ctypes
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time

PR_SET_CHILD_SUBREAPER = 36
LINE_RE = re.compile(rb"pid (\d+): count (\d+)")


def narrate(msg):
    print(f"\n== {msg} ==", flush=True)


def show_cmd(argv):
    print("$ " + " ".join(argv), flush=True)


def run(argv, timeout=60):
    """Run a command with its output shown; return its exit status (124 on timeout)."""
    show_cmd(argv)
    try:
        return subprocess.run(argv, stdin=subprocess.DEVNULL, timeout=timeout).returncode
    except subprocess.TimeoutExpired:
        print(f"(timed out after {timeout} s)", flush=True)
        return 124


def set_subreaper():
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0:
        err = ctypes.get_errno()
        sys.exit(f"demo: prctl(PR_SET_CHILD_SUBREAPER): {os.strerror(err)}")


def parent_of(pid):
    """The ppid of a live task, or None if it does not exist."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            stat = f.read()
    except OSError:
        return None
    return int(stat[stat.rindex(b")") + 2:].split()[1])


def reap(pid, timeout):
    """Wait for our child (or adopted orphan) pid to exit and reap it.
    Returns a wait status, or None when it is not ours or did not exit in time."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            got, status = os.waitpid(pid, os.WNOHANG)
        except ChildProcessError:
            return None
        if got == pid:
            return status
        if time.monotonic() >= deadline:
            return None
        time.sleep(0.02)


def describe_status(status):
    if status is None:
        return "not reaped"
    if os.WIFSIGNALED(status):
        return f"killed by {signal.Signals(os.WTERMSIG(status)).name}"
    return f"exited with status {os.WEXITSTATUS(status)}"


class Follower:
    """Shows what the counter appends to its output file."""

    def __init__(self, path):
        self.path = path
        self.pos = 0
        self.partial = b""
        self.lines = []  # (pid, count) in order

    def drain(self):
        with open(self.path, "rb") as f:
            f.seek(self.pos)
            data = f.read()
        self.pos += len(data)
        data = self.partial + data
        *complete, self.partial = data.split(b"\n")
        for line in complete:
            print("   counter | " + line.decode(errors="replace"), flush=True)
            m = LINE_RE.search(line)
            if m:
                self.lines.append((int(m.group(1)), int(m.group(2))))

    def follow(self, seconds):
        start = len(self.lines)
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            self.drain()
            time.sleep(0.05)
        self.drain()
        return self.lines[start:]


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--stasis", default="build/stasis")
    ap.add_argument("--counter", default="build/demo/counter")
    args = ap.parse_args()
    stasis, counter = args.stasis, args.counter  # paths as given: the shown commands stay short
    for path in (stasis, counter):
        if not os.access(path, os.X_OK):
            sys.exit(f"demo: {path} is missing: run `make` (or ./demo.sh) first")
    if "/" not in stasis:
        stasis = "./" + stasis

    set_subreaper()
    tmp = tempfile.mkdtemp(prefix="stasis-demo.", dir="/tmp")
    log_path = os.path.join(tmp, "counter.out")
    img_dir = os.path.join(tmp, "images")
    pid_file = os.path.join(tmp, "restored.pid")
    os.mkdir(img_dir)
    pid = None
    ok = False
    try:
        fd = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        # Own session, stdin /dev/null, stdout+stderr a regular file: a single task whose
        # state stasis handles in this version.
        proc = subprocess.Popen([counter], stdin=subprocess.DEVNULL, stdout=fd, stderr=fd,
                                start_new_session=True, close_fds=True)
        os.close(fd)
        pid = proc.pid
        follower = Follower(log_path)

        narrate(f"started the counter, pid {pid}; its output (to {log_path}) for 2 s")
        before = follower.follow(2.0)
        if not before:
            print("demo: the counter printed nothing", file=sys.stderr)
            return 1

        narrate(f"checkpointing pid {pid} into {img_dir}")
        rc = run([stasis, "dump", "-t", str(pid), "-D", img_dir])
        if rc != 0:
            print(f"demo: stasis dump failed (exit {rc}); the counter should still be running",
                  file=sys.stderr)
            return 1
        status = reap(pid, 10)
        follower.drain()  # a line printed just before the freeze
        last = follower.lines[-1][1]
        print(f"(stasis wrote the images and then ended the task: {describe_status(status)};"
              f" the last count it printed was {last})")
        run(["ls", "-l", img_dir])

        narrate(f"pid {pid} is gone")
        if run(["ps", "-p", str(pid), "-o", "pid,stat,cmd"]) != 0:
            print(f"(ps finds no process {pid})")
        else:
            print(f"demo: pid {pid} still exists after the dump", file=sys.stderr)
            return 1

        narrate(f"restoring from {img_dir}")
        rc = run([stasis, "restore", "-D", img_dir, "-d", "--pidfile", pid_file])
        if rc != 0:
            print(f"demo: stasis restore failed (exit {rc})", file=sys.stderr)
            return 1
        with open(pid_file) as f:
            restored = int(f.read().strip())
        run(["ps", "-p", str(restored), "-o", "pid,stat,cmd"])

        narrate(f"2 s more of output: the count should carry on from {last + 1}, pid {pid}")
        after = follower.follow(2.0)
        if not after:
            print("demo: the restored counter printed nothing", file=sys.stderr)
            return 1
        ok = restored == pid and after[0] == (pid, last + 1) and all(p == pid for p, _ in after)
        if ok:
            print(f"(the count went on from {last} to {after[0][1]}, still pid {pid}: it carried on)")
        else:
            print(f"demo: expected pid {pid} count {last + 1}, got pid {after[0][0]} count"
                  f" {after[0][1]} (restored pid {restored})", file=sys.stderr)
        return 0 if ok else 1
    finally:
        if pid is not None and parent_of(pid) == os.getpid():
            narrate(f"stopping the counter, pid {pid}")
            os.kill(pid, signal.SIGKILL)
            print(f"(counter {describe_status(reap(pid, 10))})")
        shutil.rmtree(tmp, ignore_errors=True)
        if ok:
            narrate("demo done")


if __name__ == "__main__":
    sys.exit(main())
