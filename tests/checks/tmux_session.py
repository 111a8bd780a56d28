# stasis-check: timeout=40
"""tmux end to end: a detached tmux server (its listening unix socket, a pty per pane,
libevent's pipe) runs an interactive bash with a job in the background (`sleep 1000 &`)
and `top` in the foreground. The server's tree is dumped and restored (detached). After
the restore a new tmux client reaches the server through its socket, `capture-pane`
shows the same screen, `q` ends top, `fg` brings the sleep to the foreground, ^C ends it,
and the shell computes `done-42`."""
import time

from checks._tmux import Tmux
from lib.proc import Failure


def check(c):
    t = Tmux(c, "env PS1='$ ' bash --norc --noprofile -i", tools=("bash", "top"))
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
        return "same screen after the restore; top quits, fg and ^C end the sleep job"
    finally:
        t.close()
