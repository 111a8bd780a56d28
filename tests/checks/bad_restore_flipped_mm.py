# stasis-check: timeout=30
"""A restore with a byte flipped in the middle of mm-PID.img (a copy of the reference dump
of pid_same) must fail, with no process left with the dumped pid."""
import os


def check(c):
    d, pid = c.variant("flip-mm")
    path = c.image_file(d, "mm", pid)
    c.flip(path, os.path.getsize(path) // 2)
    c.expect_failure(c.restore_argv(d), "restore with a corrupted mm image",
                     pid=pid)
