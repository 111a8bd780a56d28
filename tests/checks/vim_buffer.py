# stasis-check: timeout=40
"""vim editing an unsaved buffer on a pty (in a tmux pane): a file opened, lines typed in
insert mode and not written (vim holds its swap file open). The tree is dumped and
restored. After the restore the screen is the same, vim is still in insert mode (more
typed text lands after the first), undo history works (`u` removes the last insert), and
`:wq` writes exactly the buffer's lines."""
import os
import time

from checks._tmux import Tmux
from lib.proc import Failure


def check(c):
    path = os.path.join(c.tmp, "notes.txt")
    with open(path, "w") as f:
        f.write("first line on disk\n")
    t = Tmux(c, "vim -u NONE -i NONE -N %s" % path, tools=("vim",))
    try:
        t.pane_until(lambda s: "first line on disk" in s, "the file in vim")
        t.keys("G", "o", "typed before the checkpoint")
        t.pane_until(lambda s: "typed before the checkpoint" in s and "-- INSERT --" in s,
                     "the typed line")
        time.sleep(0.2)
        before = t.pane()
        with open(path) as f:
            if f.read() != "first line on disk\n":
                raise Failure("vim wrote the file before the checkpoint")
        t.checkpoint(2)  # server, vim
        after = t.pane()
        if after != before:
            raise Failure("the screen changed across the checkpoint:\n%s\n---\n%s"
                          % (before, after))
        t.keys(" and after")
        t.pane_until(lambda s: "typed before the checkpoint and after" in s,
                     "text typed after the restore")
        t.keys("Escape", "o", "a line to undo", "Escape")
        t.pane_until(lambda s: "a line to undo" in s, "the line to undo")
        t.keys("u")
        t.pane_until(lambda s: "a line to undo" not in s, "the undo")
        t.keys(":wq", "Enter")
        deadline = time.monotonic() + c.timeout
        want = "first line on disk\ntyped before the checkpoint and after\n"
        got = None
        while time.monotonic() < deadline:
            with open(path) as f:
                got = f.read()
            if got == want:
                return "the unsaved buffer survived; insert mode, undo and :wq work"
            time.sleep(0.05)
        raise Failure("the file reads %r, not %r" % (got, want))
    finally:
        t.close()
