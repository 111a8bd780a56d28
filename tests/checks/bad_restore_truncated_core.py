# stasis-check: timeout=30
"""A restore with core-PID.img truncated to half its size must fail."""
import os


def check(c):
    d, pid = c.variant("trunc-core")
    path = c.image_file(d, "core", pid)
    size = os.path.getsize(path)
    os.truncate(path, size // 2)
    c.expect_failure(c.restore_argv(d), "restore with a truncated core image",
                     pid=pid)
