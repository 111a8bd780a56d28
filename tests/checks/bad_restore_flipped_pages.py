# stasis-check: timeout=30
"""A restore with a byte flipped in the first page of pages-PID.img (offset 4096+1234,
past the header page) must fail."""
import os

from lib.proc import Failure


def check(c):
    d, pid = c.variant("flip-pages")
    path = c.image_file(d, "pages", pid)
    size = os.path.getsize(path)
    if size <= 4096:
        raise Failure("pages-%d.img has no page data (%d bytes)" % (pid, size))
    c.flip(path, 4096 + 1234)
    c.expect_failure(c.restore_argv(d), "restore with a corrupted pages image",
                     pid=pid)
