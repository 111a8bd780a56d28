# stasis-check: timeout=30
"""A byte flipped in the middle of the data of blobs.img of a dump of ns_mnt (its tmpfs
files' contents): the restore child copying a file into the new tmpfs finds the chunk's
checksum wrong. One line naming blobs.img, the tmpfs file and the checksum; nothing left
(the tmpfs went with the mount namespace of the killed task)."""
import os

from lib.proc import Failure


def check(c):
    d, pid, path = c.blob_variant("flip-blob")
    c.flip(path, 4096 + (os.path.getsize(path) - 4096) // 2)
    line = c.expect_failure(c.restore_argv(d),
                            "restore with a corrupted tmpfs file in blobs.img", pid=pid)
    if "blobs.img" not in line or "checksum" not in line or "tmpfs file" not in line:
        raise Failure("the error does not name the damaged blob: %r" % line)
    return line
