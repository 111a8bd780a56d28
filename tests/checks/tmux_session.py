# stasis-check: timeout=40
"""tmux end to end: a detached tmux server (its listening unix socket, a pty per pane,
libevent's pipe) runs an interactive bash with a job in the background (`sleep 1000 &`)
and `top` in the foreground. The server's tree is dumped and restored (detached). After
the restore a new tmux client reaches the server through its socket, `capture-pane`
shows the same screen, `q` ends top, `fg` brings the sleep to the foreground, ^C ends it,
and the shell computes `done-42`."""
import os
import shutil
import subprocess
import time

from lib.proc import Failure, Skip, kill_pid, pid_alive, proc_descendants, reap_all


def check(c):
    for tool in ("tmux", "bash", "top"):
        if not shutil.which(tool):
            raise Skip("%s is not installed" % tool)
    sock = os.path.join(c.tmp, "tmux.sock")
    img = os.path.join(c.tmp, "img")
    env = {"PATH": "/usr/bin:/bin", "TERM": "xterm", "HOME": c.tmp, "PS1": "$ ",
           "TMUX_TMPDIR": c.tmp}

    def tmux(*args, check=True):
        r = subprocess.run(["tmux", "-S", sock] + list(args), capture_output=True, text=True,
                           timeout=c.timeout, env=env, stdin=subprocess.DEVNULL)
        if check and r.returncode != 0:
            raise Failure("tmux %s: %s" % (" ".join(args), r.stderr.strip()))
        return r.stdout

    def pane_until(pred, what):
        deadline = time.monotonic() + c.timeout
        screen = ""
        while time.monotonic() < deadline:
            screen = tmux("capture-pane", "-p")
            if pred(screen):
                return screen
            time.sleep(0.05)
        raise Failure("%s did not show; the pane reads %r" % (what, screen[-400:]))

    pids = []
    try:
        tmux("-f", "/dev/null", "new-session", "-d", "-x", "80", "-y", "24",
             "env PS1='$ ' bash --norc --noprofile -i")
        server = int(tmux("display", "-p", "#{pid}"))
        pids.append(server)
        pane_until(lambda s: s.startswith("$"), "the prompt")
        tmux("send-keys", "sleep 1000 &", "Enter")
        pane_until(lambda s: "[1] " in s, "the background job")
        tmux("send-keys", "top -d 100", "Enter")
        before = pane_until(lambda s: "PID USER" in s, "top")
        time.sleep(0.3)
        before = tmux("capture-pane", "-p")
        pids += proc_descendants(server)
        if len(pids) < 4:
            raise Failure("expected server, bash, sleep and top; found pids %s" % pids)
        r = subprocess.run([c.stasis, "dump", "-t", str(server), "-D", img],
                           stdin=subprocess.DEVNULL, capture_output=True, text=True,
                           timeout=c.timeout)
        if r.returncode != 0:
            raise Failure("dump failed: %s" % r.stderr.strip())
        deadline = time.monotonic() + c.timeout
        while any(os.path.exists("/proc/%d" % x) for x in pids):
            if time.monotonic() > deadline:
                raise Failure("the dumped tree's pids are not released")
            reap_all()
            time.sleep(0.02)
        r = subprocess.run([c.stasis, "restore", "-d", "-D", img], stdin=subprocess.DEVNULL,
                           capture_output=True, text=True, timeout=c.timeout)
        if r.returncode != 0:
            raise Failure("restore failed: %s" % r.stderr.strip())
        for x in pids:
            if not pid_alive(x):
                raise Failure("pid %d is not back after the restore" % x)
        after = tmux("capture-pane", "-p")
        if after != before:
            raise Failure("the screen changed across the checkpoint:\n%s\n---\n%s"
                          % (before, after))
        tmux("send-keys", "q")
        pane_until(lambda s: s.rstrip().endswith("$"), "the prompt after top")
        tmux("send-keys", "fg", "Enter")
        pane_until(lambda s: "fg\nsleep 1000" in s, "the sleep in the foreground")
        tmux("send-keys", "C-c")
        tmux("send-keys", "echo done-$((6*7))", "Enter")
        pane_until(lambda s: "\ndone-42\n" in s, "the shell's answer")
        return "same screen after the restore; top quits, fg and ^C end the sleep job"
    finally:
        tmux("kill-server", check=False)
        for x in reversed(pids + (proc_descendants(pids[0]) if pids else [])):
            kill_pid(x)
        deadline = time.monotonic() + 5
        while any(pid_alive(x) for x in pids) and time.monotonic() < deadline:
            reap_all()
            time.sleep(0.02)
