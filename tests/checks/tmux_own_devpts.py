# stasis-check: timeout=40 needs=root
# stasis-check: why=(the tmux server runs in a mount namespace with a devpts of its own)
"""tmux_session's scenario in a container's terminal setup: the tmux server runs in a
mount namespace of its own with a devpts instance of its own on /dev/pts (its ptmx bound
on /dev/ptmx), so every pane's pty is of that instance, its master in the server and its
slave in bash, top and the background sleep (a session of several processes). Dumped and
restored (the pairs are made in the rebuilt namespace's instance, at the same indices):
the same screen, top quits, `fg` and ^C end the job, the shell answers. Refused at dump
before (a pty of another devpts instance shared between processes)."""
import os
import time

from checks._tmux import Tmux
from lib.proc import Failure


def check(c):
    t = Tmux(c, "env PS1='$ ' bash --norc --noprofile -i", tools=("bash", "top", "unshare"),
             own_devpts=True)
    try:
        t.pane_until(lambda s: s.startswith("$"), "the prompt")
        t.keys("sleep 1000 &", "Enter")
        t.pane_until(lambda s: "[1] " in s, "the background job")
        t.keys("top -d 100", "Enter")
        t.pane_until(lambda s: "PID USER" in s, "top")
        time.sleep(0.3)
        before = t.pane()
        t.checkpoint(4)  # server, bash, sleep, top
        after = t.pane()
        if after != before:
            raise Failure("the screen changed across the checkpoint:\n%s\n---\n%s"
                          % (before, after))
        t.keys("q")
        t.pane_until(lambda s: s.rstrip().endswith("$"), "the prompt after top")
        t.keys("fg", "Enter")
        t.pane_until(lambda s: "fg\nsleep 1000" in s, "the sleep in the foreground")
        t.keys("C-c")
        t.keys("echo done-$((6*7))", "Enter")
        t.pane_until(lambda s: "\ndone-42\n" in s, "the shell's answer")
        # the restored panes' terminals are of the server's own devpts instance
        host = os.stat("/dev/pts").st_dev
        for p in t.pids[1:]:
            try:
                dev = os.stat("/proc/%d/fd/0" % p).st_dev
            except OSError:
                continue
            if dev == host:
                raise Failure("pid %d's terminal is of the host's /dev/pts" % p)
        return "own devpts instance: same screen after the restore; top quits, fg and ^C " \
               "end the sleep job"
    finally:
        t.close()
