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

from checks._tmux import SHELL, Tmux, job_control
from lib.proc import Failure


def check(c):
    t = Tmux(c, SHELL, tools=("bash", "top", "unshare"), own_devpts=True)
    try:
        job_control(t)
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
