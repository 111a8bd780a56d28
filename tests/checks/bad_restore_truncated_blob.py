# stasis-check: timeout=30
"""blobs.img of a dump of ns_mnt cut in half: refused when the images are read, before
any process exists, naming blobs.img."""
import os

from lib.proc import Failure


def check(c):
    d, pid, path = c.blob_variant("trunc-blob")
    os.truncate(path, 4096 + (os.path.getsize(path) - 4096) // 2)
    line = c.expect_failure(c.restore_argv(d), "restore with a truncated blobs.img",
                            pid=pid)
    if "blobs.img" not in line or "truncated" not in line:
        raise Failure("the error does not name the truncated blobs.img: %r" % line)
    return line
