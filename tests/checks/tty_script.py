# stasis-check: timeout=30
"""A real interactive program on a pty, end to end: `script` (util-linux) runs an
interactive bash on a pty pair it opened (script holds the master, bash's session has the
slave as controlling terminal) with a job in the background (`sleep 1000 &`) and one in
the foreground (`cat`, reading the terminal). The tree rooted at script is dumped and
restored; the keys are typed through script's stdin (a FIFO, an external file: the restored
script inherits stasis's stdin). After the restore the screen so far is unchanged and job
control answers: cat echoes a line, ^Z stops it, `jobs` lists both jobs, `fg %1` brings the
sleep to the foreground and ^Z stops it, `kill %1` ends it, `fg %2` resumes cat, which
echoes again and ends on ^D, and the shell computes `done-42`. (tmux: tmux_session.)"""
import os
import shutil
import subprocess
import time

from lib.proc import Failure, Skip, kill_pid, pid_alive, proc_descendants, reap_all


def wait_for(path, text, timeout, start=0):
    """The contents of @path once @text appears after offset @start (bounded)."""
    deadline = time.monotonic() + timeout
    data = ""
    while time.monotonic() < deadline:
        with open(path, errors="replace") as f:
            data = f.read()
        if text in data[start:]:
            return data
        time.sleep(0.05)
    raise Failure("%r did not appear; the screen ends with %r" % (text, data[-300:]))


def child_named(pid, name):
    for p in proc_descendants(pid):
        try:
            with open("/proc/%d/comm" % p) as f:
                if f.read().strip() == name:
                    return p
        except OSError:
            pass
    return None


def typed(fifo_w, keys):
    os.write(fifo_w, keys.encode())


def check(c):
    for tool in ("script", "bash"):
        if not shutil.which(tool):
            raise Skip("%s is not installed" % tool)
    fifo = os.path.join(c.tmp, "keys")
    out = os.path.join(c.tmp, "screen")
    img = os.path.join(c.tmp, "img")
    os.mkfifo(fifo)
    env = {"PATH": "/usr/bin:/bin", "TERM": "dumb", "HOME": c.tmp, "PS1": "$ "}
    fifo_rw = os.open(fifo, os.O_RDWR)  # script's stdin; never sees EOF
    pids, procs = [], []
    try:
        with open(out, "w") as o:
            p = subprocess.Popen(["script", "-q", "-f", "-c", "bash --norc --noprofile -i",
                                  os.path.join(c.tmp, "typescript")],
                                 stdin=fifo_rw, stdout=o, stderr=subprocess.STDOUT,
                                 start_new_session=True, cwd=c.tmp, env=env)
        procs.append(p)
        pids.append(p.pid)
        os.close(fifo_rw)
        fifo_rw = -1
        w = os.open(fifo, os.O_WRONLY)
        try:
            wait_for(out, "$ ", c.timeout)
            typed(w, "sleep 1000 &\n")
            wait_for(out, "[1] ", c.timeout)
            typed(w, "cat\n")
            deadline = time.monotonic() + c.timeout
            while child_named(p.pid, "cat") is None and time.monotonic() < deadline:
                time.sleep(0.05)
            typed(w, "before\n")
            screen = wait_for(out, "before\nbefore\n", c.timeout)
            pids += proc_descendants(p.pid)
            r = subprocess.run([c.stasis, "dump", "-t", str(p.pid), "-D", img],
                               stdin=subprocess.DEVNULL, capture_output=True, text=True,
                               timeout=c.timeout)
            if r.returncode != 0:
                raise Failure("dump failed: %s" % r.stderr.strip())
            p.wait(timeout=c.timeout)
            for x in pids:
                if pid_alive(x):
                    raise Failure("pid %d still runs after the dump" % x)
            # the killed tree's zombies (reparented to the runner) release their pids
            deadline = time.monotonic() + c.timeout
            while any(os.path.exists("/proc/%d" % x) for x in pids):
                if time.monotonic() > deadline:
                    raise Failure("the dumped tree's pids are not released")
                reap_all()
                time.sleep(0.02)
            rfd = os.open(fifo, os.O_RDWR)
            try:
                rp = subprocess.Popen([c.stasis, "restore", "-D", img], stdin=rfd,
                                      stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
            finally:
                os.close(rfd)
            procs.append(rp)
            deadline = time.monotonic() + c.timeout
            while not all(pid_alive(x) for x in pids) and time.monotonic() < deadline:
                if rp.poll() is not None:
                    raise Failure("restore failed: %s" % rp.stderr.read().decode().strip())
                time.sleep(0.05)
            time.sleep(0.2)
            with open(out, errors="replace") as f:
                if f.read() != screen:
                    raise Failure("the screen changed across the checkpoint")
            n = len(screen)
            typed(w, "after\n")
            wait_for(out, "after\nafter\n", c.timeout, n)
            typed(w, "\x1a")
            wait_for(out, "Stopped                 cat", c.timeout, n)
            typed(w, "jobs\n")
            j = wait_for(out, "$ jobs\n", c.timeout, n).index("$ jobs\n", n)
            s = wait_for(out, "Stopped                 cat\n$ ", c.timeout, j)
            if "Running                 sleep 1000 &" not in s[j:]:
                raise Failure("jobs does not list the background sleep: %r" % s[j:])
            typed(w, "fg %1\n")
            wait_for(out, "sleep 1000\n", c.timeout, n)
            time.sleep(0.2)
            typed(w, "\x1a")
            wait_for(out, "Stopped                 sleep 1000", c.timeout, n)
            typed(w, "kill %1\n")
            typed(w, "fg %2\n")
            m = len(wait_for(out, "fg %2\ncat\n", c.timeout, n))
            typed(w, "again\n")
            wait_for(out, "again\nagain\n", c.timeout, m)
            typed(w, "\x04")
            typed(w, "echo done-$((6*7))\n")
            wait_for(out, "\ndone-42\n", c.timeout, m)
            if child_named(p.pid, "sleep") is not None:
                raise Failure("kill %1 did not end the sleep job")
        finally:
            os.close(w)
        return "job control answers after the restore"
    finally:
        if fifo_rw >= 0:
            os.close(fifo_rw)
        for x in reversed(pids + proc_descendants(pids[0]) if pids else pids):
            kill_pid(x)
        for pr in procs:
            kill_pid(pr.pid)
            try:
                pr.wait(timeout=10)
            except subprocess.TimeoutExpired:
                pass
        deadline = time.monotonic() + 5
        while any(pid_alive(x) for x in pids) and time.monotonic() < deadline:
            reap_all()
            time.sleep(0.02)
