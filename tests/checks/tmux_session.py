# stasis-check: timeout=40
"""tmux end to end: a detached tmux server (its listening unix socket, a pty per pane,
libevent's pipe) runs an interactive bash with a job in the background (`sleep 1000 &`)
and `top` in the foreground. The server's tree is dumped and restored (detached). After
the restore a new tmux client reaches the server through its socket, `capture-pane`
shows the same screen, `q` ends top, `fg` brings the sleep to the foreground, ^C ends it,
and the shell computes `done-42`."""
from checks._tmux import SHELL, Tmux, job_control


def check(c):
    t = Tmux(c, SHELL, tools=("bash", "top"))
    try:
        job_control(t)
        return "same screen after the restore; top quits, fg and ^C end the sleep job"
    finally:
        t.close()
